"""The embedded store: one SQLite file in the data directory.

WAL mode lets readers work while the single writer commits; ``synchronous=FULL`` makes a
commit durable before it returns, which is what an ingest acknowledgement promises. Writes are
serialised by one lock on one connection (SQLite admits one writer at a time anyway); reads use
a small pool of read-only connections.
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from api.delivery.routing import Routing
from api.errors import ConflictError, StoreError
from api.lifecycle import AlertStatus
from api.noise import Matcher, Silence, Suppression
from api.store import (
    sqlite_alerts,
    sqlite_lifecycle,
    sqlite_noise,
    sqlite_outbox,
    sqlite_scans,
    sqlite_systems,
)
from api.store.keyset import page_query
from api.store.migrations import MIGRATIONS
from api.store.protocol import (
    Alert,
    AlertPage,
    AlertQuery,
    AttemptResult,
    AuditPage,
    BulkAction,
    BulkResult,
    Claimed,
    Detector,
    FlowPage,
    FlowQuery,
    IngestCounts,
    NewPrincipal,
    Note,
    Notification,
    NotificationPage,
    PrincipalCredentials,
    PrincipalInfo,
    ScanPage,
    ScanQuery,
    SensorInfo,
    Suppress,
)
from api.store.sqlite_trust import TrustMethods
from api.store.timeconv import from_us, opt_from_us, to_us
from api.systems import InformationSystem, NewSystem, SystemIndex
from api.tokens import Principal, Role
from sensors.wire import FlowRecord, ScanRecord, dump_record, utc

_BUSY_TIMEOUT_MS: Final = 10_000
DEDUPE_WINDOW: Final = timedelta(hours=1)
"""A detection merges into an open alert of the same source and entity last seen this
recently; after a longer quiet, it opens a new alert."""


class SqliteStore(TrustMethods):
    """See the module docstring. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        dedupe_window: timedelta = DEDUPE_WINDOW,
        routing: Routing | None = None,
    ) -> None:
        self.path = path
        self.dedupe_window_us = dedupe_window // timedelta(microseconds=1)
        self.routing = routing or Routing(())
        self._writer = writer
        self._write_lock = threading.Lock()
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._systems = sqlite_systems.SystemsCache()  # used under the write lock
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        dedupe_window: timedelta = DEDUPE_WINDOW,
        routing: Routing | None = None,
    ) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``routing`` says which receivers take which alerts; without it nothing is queued."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Processes opening the same new store at once (the first `serve` and a
            # `token create`) take turns: switching to WAL and migrating are not safe to race.
            lock_fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                if not path.exists():
                    # Create the file private before SQLite does; WAL files follow its mode.
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
                writer = _connect(path, readonly=False)
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the store at {path}: {exc}") from exc
            store = cls(path, writer, dedupe_window, routing)
            try:
                store._migrate()
            except BaseException:
                writer.close()
                raise
            return store
        finally:
            os.close(lock_fd)  # closing releases the lock

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            self._writer.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    # -- plumbing ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        conn = self._writer
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this release "
                    f"understands ({len(MIGRATIONS)}); upgrade TrustWatch"
                )
            for number in range(version + 1, len(MIGRATIONS) + 1):
                script = MIGRATIONS[number - 1]
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except sqlite3.Error:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate {self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; SQLite's errors leave as :class:`StoreError`."""
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error | OverflowError):
                    raise StoreError(f"store write failed: {exc}") from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A pooled read-only connection; SQLite's errors leave as :class:`StoreError`."""
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            try:
                conn = _connect(self.path, readonly=True)
            except sqlite3.Error as exc:
                raise StoreError(f"store read failed: {exc}") from exc
            with self._readers_lock:
                self._all_readers.append(conn)
        try:
            yield conn
        except (sqlite3.Error, OverflowError) as exc:
            raise StoreError(f"store read failed: {exc}") from exc
        finally:
            # The pool grows to the number of threads reading at once (the server's thread
            # pool bounds it) and is reused from then on.
            self._readers.put(conn)

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute("SELECT 1").fetchone()

    # -- principals -------------------------------------------------------------------------

    def add_principal(self, principal: NewPrincipal, now: datetime) -> PrincipalInfo:
        if (principal.role is Role.SENSOR) != (principal.sensor_id is not None):
            raise ValueError("a sensor principal needs a sensor id, and only a sensor one")
        with self._write() as conn:
            if principal.sensor_id is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO sensors (sensor_id, created_us) VALUES (?, ?)",
                    (principal.sensor_id, to_us(now)),
                )
            cursor = conn.execute(
                "INSERT INTO principals (key_id, secret_hash, name, role, sensor_id, created_us)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    principal.key_id,
                    principal.secret_hash,
                    principal.name,
                    principal.role.value,
                    principal.sensor_id,
                    to_us(now),
                ),
            )
            row_id = cursor.lastrowid
        assert row_id is not None  # noqa: S101 - an INSERT always sets it
        return PrincipalInfo(
            id=row_id,
            name=principal.name,
            role=principal.role,
            key_id=principal.key_id,
            sensor_id=principal.sensor_id,
            created_at=from_us(to_us(now)),
            revoked_at=None,
        )

    def credentials(self, key_id: str) -> PrincipalCredentials | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_PRINCIPAL_COLUMNS}, secret_hash FROM principals WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            return None
        return PrincipalCredentials(info=_principal(row), secret_hash=bytes(row[7]))

    def list_principals(self) -> list[PrincipalInfo]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_PRINCIPAL_COLUMNS} FROM principals ORDER BY id")
            return [_principal(row) for row in rows]

    def revoke_principal(self, principal_id: int, now: datetime) -> PrincipalInfo | None:
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE id = ?", (principal_id,)
            ).fetchone()
            if row is None:
                return None
            info = _principal(row)
            if info.revoked_at is not None:
                return info
            if info.role is Role.ADMIN and _active_admins(conn) <= 1:
                raise ConflictError("refusing to revoke the last active admin token")
            conn.execute(
                "UPDATE principals SET revoked_us = ? WHERE id = ?", (to_us(now), principal_id)
            )
        return PrincipalInfo(
            id=info.id,
            name=info.name,
            role=info.role,
            key_id=info.key_id,
            sensor_id=info.sensor_id,
            created_at=info.created_at,
            revoked_at=from_us(to_us(now)),
        )

    def count_active_admins(self) -> int:
        with self._read() as conn:
            return _active_admins(conn)

    # -- sensors ----------------------------------------------------------------------------

    def record_heartbeat(
        self, sensor_id: str, version: str, counters: dict[str, int], now: datetime
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sensors SET version = ?, counters = ?, last_heartbeat_us = ?,"
                " last_seen_us = max(coalesce(last_seen_us, 0), ?) WHERE sensor_id = ?",
                (version, orjson.dumps(counters).decode(), to_us(now), to_us(now), sensor_id),
            )

    def list_sensors(self) -> list[SensorInfo]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT sensor_id, created_us, last_seen_us, records_received, batches_received,"
                " version, counters, last_heartbeat_us FROM sensors ORDER BY sensor_id"
            ).fetchall()
        return [
            SensorInfo(
                sensor_id=row[0],
                created_at=from_us(row[1]),
                last_seen=opt_from_us(row[2]),
                records_received=row[3],
                batches_received=row[4],
                version=row[5],
                counters=orjson.loads(row[6]),
                last_heartbeat=opt_from_us(row[7]),
            )
            for row in rows
        ]

    # -- records ----------------------------------------------------------------------------

    def ingest(
        self,
        sensor_id: str,
        flows: Sequence[FlowRecord],
        scans: Sequence[ScanRecord],
        now: datetime,
        detect: Detector | None = None,
    ) -> IngestCounts:
        received = to_us(now)
        extra = {"observer.name": sensor_id, "event.ingested": utc(now.astimezone(UTC))}
        docs = [dump_record(flow) | extra for flow in flows]
        flow_rows = [
            (
                sensor_id,
                flow.event_id,
                to_us(flow.event_start),
                to_us(flow.event_end),
                str(flow.source_ip),
                flow.source_port,
                str(flow.destination_ip),
                flow.destination_port,
                flow.network_transport.value,
                received,
                orjson.dumps(doc),
            )
            for flow, doc in zip(flows, docs, strict=True)
        ]
        scan_docs = [dump_record(scan) | extra for scan in scans]
        scan_rows = [
            (
                sensor_id,
                scan.event_id,
                scan.url_domain,
                to_us(scan.event_start),
                to_us(scan.event_end),
                received,
                orjson.dumps(doc),
            )
            for scan, doc in zip(scans, scan_docs, strict=True)
        ]
        opened = merged = suppressed = queued = 0
        with self._write() as conn:
            known = (
                sqlite_alerts.known_ids(conn, sensor_id, [row[1] for row in flow_rows])
                if detect
                else set()
            )
            known_scans = (
                sqlite_alerts.known_ids(conn, sensor_id, [row[1] for row in scan_rows], "scans")
                if detect
                else set()
            )
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO flows (sensor_id, event_id, start_us, end_us, src_ip,"
                " src_port, dst_ip, dst_port, transport, received_us, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                flow_rows,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO scans (sensor_id, event_id, target, start_us, end_us,"
                " received_us, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                scan_rows,
            )
            inserted = conn.total_changes - before
            conn.execute(
                "UPDATE sensors SET last_seen_us = max(coalesce(last_seen_us, 0), ?),"
                " records_received = records_received + ?,"
                " batches_received = batches_received + 1 WHERE sensor_id = ?",
                (received, inserted, sensor_id),
            )
            if detect is not None:
                # New records only, and each once (a batch may repeat one).
                fresh = list(
                    {d["event.id"]: d for d in docs if d["event.id"] not in known}.values()
                ) + list(
                    {
                        d["event.id"]: d for d in scan_docs if d["event.id"] not in known_scans
                    }.values()
                )
                detections = detect(fresh) if fresh else []
                systems = self._systems.current(conn) if detections else SystemIndex(())
                window = self.dedupe_window_us
                for detection in detections:
                    if sqlite_noise.suppressed(
                        conn, detection.source, detection.entity, detection.values, received
                    ):
                        suppressed += 1
                        continue
                    alert_id, new = sqlite_alerts.record_alert(
                        conn, detection, received, window, systems
                    )
                    opened += new
                    merged += not new
                    queued += sqlite_outbox.route_alert(
                        conn, alert_id, self.routing, systems, received, window
                    )
        return IngestCounts(
            inserted=inserted,
            duplicates=len(flows) + len(scans) - inserted,
            alerts_opened=opened,
            alerts_merged=merged,
            alerts_suppressed=suppressed,
            queued=queued,
        )

    def query_alerts(self, query: AlertQuery) -> AlertPage:
        with self._read() as conn:
            return sqlite_alerts.query_alerts(conn, query)

    def get_alert(self, alert_id: str) -> Alert | None:
        with self._read() as conn:
            return sqlite_alerts.get_alert(conn, alert_id)

    # -- the alert lifecycle (api.store.sqlite_lifecycle) -----------------------------------

    def transition_alert(
        self,
        alert_id: str,
        to: AlertStatus,
        actor: Principal,
        now: datetime,
        note: str | None = None,
        suppress: Suppress | None = None,
    ) -> Alert | None:
        with self._write() as conn:
            if not sqlite_lifecycle.transition(
                conn, alert_id, to, actor, to_us(now), note, suppress
            ):
                return None
            return sqlite_alerts.get_alert(conn, alert_id)

    def assign_alert(
        self, alert_id: str, assignee: str | None, actor: Principal, now: datetime
    ) -> Alert | None:
        with self._write() as conn:
            if sqlite_lifecycle.assign(conn, alert_id, assignee, actor, to_us(now)) is None:
                return None
            return sqlite_alerts.get_alert(conn, alert_id)

    def add_note(self, alert_id: str, text: str, actor: Principal, now: datetime) -> Note | None:
        with self._write() as conn:
            return sqlite_lifecycle.add_note(conn, alert_id, text, actor, to_us(now))

    def alert_notes(self, alert_id: str) -> list[Note]:
        with self._read() as conn:
            return sqlite_lifecycle.notes(conn, alert_id)

    def alert_audit(self, alert_id: str, after: int, limit: int) -> AuditPage | None:
        with self._read() as conn:
            return sqlite_lifecycle.audit(conn, alert_id, after, limit)

    def bulk_update(
        self, query: AlertQuery, action: BulkAction, actor: Principal, now: datetime
    ) -> BulkResult:
        with self._write() as conn:
            return sqlite_lifecycle.bulk(conn, query, action, actor, to_us(now))

    def add_system(self, system: NewSystem, now: datetime) -> InformationSystem:
        with self._write() as conn:
            return sqlite_systems.add_system(conn, system, to_us(now))

    def list_systems(self) -> list[InformationSystem]:
        with self._read() as conn:
            return sqlite_systems.list_systems(conn)

    # -- delivery (api.store.sqlite_outbox) --------------------------------------------------

    def claim_deliveries(self, now: datetime, limit: int) -> list[Claimed]:
        with self._write() as conn:
            systems = self._systems.current(conn)
            return sqlite_outbox.claim_due(conn, to_us(now), limit, systems, self.dedupe_window_us)

    def record_delivery_attempts(self, results: Sequence[AttemptResult]) -> None:
        with self._write() as conn:
            for result in results:
                sqlite_outbox.record_attempt(conn, result)

    def recover_deliveries(self) -> int:
        with self._write() as conn:
            return sqlite_outbox.recover(conn)

    def next_delivery_due(self) -> datetime | None:
        with self._read() as conn:
            due = sqlite_outbox.next_due_us(conn)
        return None if due is None else from_us(due)

    def get_notification(self, notification_id: str) -> Notification | None:
        with self._read() as conn:
            return sqlite_outbox.get_notification(conn, notification_id)

    def query_notifications(
        self,
        state: str | None = None,
        receiver: str | None = None,
        after: tuple[int, str] | None = None,
        limit: int = 100,
    ) -> NotificationPage:
        with self._read() as conn:
            return sqlite_outbox.query_notifications(conn, state, receiver, after, limit)

    def replay_notification(self, notification_id: str, now: datetime) -> Notification | None:
        with self._write() as conn:
            found = sqlite_outbox.get_notification(conn, notification_id)
            if found is None:
                return None
            if not sqlite_outbox.replay(conn, notification_id, to_us(now), self.routing.max_age_us):
                raise ConflictError(
                    f"notification {notification_id} is {found.state}: only a dead one is replayed"
                )
            return sqlite_outbox.get_notification(conn, notification_id)

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        with self._read() as conn:
            return sqlite_outbox.counts(conn)

    # -- noise control (api.store.sqlite_noise) ----------------------------------------------

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        starts: datetime,
        ends: datetime,
        comment: str,
        actor: Principal,
        now: datetime,
    ) -> Silence:
        with self._write() as conn:
            return sqlite_noise.add_silence(
                conn, matchers, to_us(starts), to_us(ends), comment, actor, to_us(now)
            )

    def list_silences(self, now: datetime, include_expired: bool = False) -> list[Silence]:
        with self._read() as conn:
            return sqlite_noise.list_silences(conn, to_us(now), include_expired)

    def expire_silence(self, silence_id: str, actor: Principal, now: datetime) -> Silence | None:
        with self._write() as conn:
            return sqlite_noise.expire_silence(conn, silence_id, actor, to_us(now))

    def list_suppressions(self, now: datetime, include_expired: bool = False) -> list[Suppression]:
        with self._read() as conn:
            return sqlite_noise.list_suppressions(conn, to_us(now), include_expired)

    def lift_suppression(self, suppression_id: str, now: datetime) -> Suppression | None:
        with self._write() as conn:
            if not sqlite_noise.lift_suppression(conn, suppression_id, to_us(now)):
                return None
            return sqlite_noise.get_suppression(conn, suppression_id)

    def query_scans(self, query: ScanQuery) -> ScanPage:
        with self._read() as conn:
            return sqlite_scans.query_scans(conn, query)

    def query_flows(self, query: FlowQuery) -> FlowPage:
        where: list[str] = []
        params: list[Any] = []
        if query.ip is not None:
            where.append("(src_ip = ? OR dst_ip = ?)")
            params += [str(query.ip), str(query.ip)]
        if query.port is not None:
            where.append("dst_port = ?")
            params.append(query.port)
        if query.sensor_id is not None:
            where.append("sensor_id = ?")
            params.append(query.sensor_id)
        sql, params = page_query(
            "SELECT seq, start_us, doc FROM flows",
            where,
            params,
            time_column="start_us",
            tie_column="seq",
            start_us=to_us(query.start) if query.start else None,
            end_us=to_us(query.end) if query.end else None,
            after=query.after,
            limit=query.limit,
        )
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items = [orjson.loads(row[2]) for row in rows]
        next_after = (rows[-1][1], rows[-1][0]) if more and rows else None
        return FlowPage(items=items, next_after=next_after)


_PRINCIPAL_COLUMNS: Final = "id, name, role, key_id, sensor_id, created_us, revoked_us"


def _principal(row: Sequence[Any]) -> PrincipalInfo:
    return PrincipalInfo(
        id=row[0],
        name=row[1],
        role=Role(row[2]),
        key_id=row[3],
        sensor_id=row[4],
        created_at=from_us(row[5]),
        revoked_at=opt_from_us(row[6]),
    )


def _active_admins(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM principals WHERE role = 'admin' AND revoked_us IS NULL"
    ).fetchone()
    return int(row[0])


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # an acknowledged batch survives power loss
    return conn
