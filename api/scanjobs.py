"""What a scan job does when it fires: scan some areas of one site, hand the scan record to the
sink, and watch the served certificate so that a new one is TLS-scanned at once.

APScheduler keeps jobs in its SQLite job store by pickling a *reference* to the job function
(``api.scanjobs:scan_site``) and its arguments. A live store, sink or policy cannot be pickled,
and should not be: they are rebuilt at every start from the settings. So jobs carry only plain
values (a domain, area names), and the process's one :class:`Runtime` is bound here by the
scheduler when it starts and unbound when it stops. One slot suffices because exactly one
scheduler runs per process (it holds ``<data_dir>/scheduler.lock``); binding a second is an
error, not a silent swap.

>>> scan_event_id("www.example.gov", ("tls", "http"), "2026-01-02T03:04:05+00:00")
'ecf6bda344e0c49b7b5c0d020f54d692'
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, text

from api.store.timeconv import from_us, to_us
from sensors.errors import ScanError
from sensors.scanner.policy import IPAddress, ScanPolicy
from sensors.scanner.result import Area, ScanReport, SubGrade, could_not_check
from sensors.scanner.target import make_resolver, resolve
from sensors.scanner.web import tls_context

if TYPE_CHECKING:
    from api.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

ScanSink = Callable[[list[dict[str, Any]], datetime], None]
"""Where a finished scan's records go (the rating service: validate, store, alert, re-score)."""
ScanFn = Callable[[str, tuple[Area, ...], ScanPolicy], Awaitable[ScanReport]]
FingerprintFn = Callable[[str, ScanPolicy], Awaitable[frozenset[str] | None]]


def scan_policy(settings: Settings) -> ScanPolicy:
    """The scan policy the service's ``scan_*`` settings describe (as ``sensor scan`` options)."""
    return ScanPolicy(
        allowed_networks=tuple(settings.scan_allow_networks),
        https_port=settings.scan_https_port,
        http_port=settings.scan_http_port,
        nameservers=settings.scan_nameservers,
        ca_file=settings.scan_trust_ca,
        read_timeout=settings.scan_timeout_seconds,
        connect_timeout=min(5.0, settings.scan_timeout_seconds),
        host_budget=settings.scan_budget_seconds,
        port_rate=settings.scan_port_rate,
    )


def scan_event_id(domain: str, areas: Sequence[str], started: str) -> str:
    """A stable id for one scan of some areas: the same scan stored twice is stored once."""
    seed = f"scheduler|{domain}|{','.join(areas)}|{started}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


async def scan_areas(domain: str, areas: tuple[Area, ...], policy: ScanPolicy) -> ScanReport:
    """The real scan: the scanner's runner on the registry's specs of ``areas``.

    A site that cannot be scanned at all (no address, or only addresses the policy refuses)
    gives a report whose every check is *could not check*, with the reason: the rating sees
    the attempt and why, and never counts it as a failure."""
    # The checks' libraries (sslyze, dnspython) load when the first scan runs, not at import.
    from sensors.scanner.registry import AREAS
    from sensors.scanner.runner import scan_host

    specs = tuple(s for s in AREAS if s.area in areas)
    started = datetime.now(UTC)  # an observation's time, taken at the edge as the runner does
    try:
        return await scan_host(domain, policy, areas=specs)
    except ScanError as exc:
        log.info("site could not be scanned", extra={"domain": domain, "error": str(exc)})
        reason = str(exc)
        return ScanReport(
            host=domain,
            started=started,
            finished=datetime.now(UTC),
            addresses=(),
            checks=tuple(could_not_check(i, s.area, reason) for s in specs for i, _ in s.checks),
            grades=tuple(
                SubGrade(s.grade_name, None, reason=reason) for s in specs if s.grade_name
            ),
        )


async def leaf_fingerprints(domain: str, policy: ScanPolicy) -> frozenset[str] | None:
    """SHA-256 of the leaf certificate every address of ``domain`` serves on the HTTPS port,
    through the scanner's policy (addresses resolved and checked, then connected to directly).

    ``None`` unless every address answered: a site partly down has not changed its
    certificate, and a flapping address must not look like one."""
    try:
        target = await resolve(domain, policy, make_resolver(policy))
    except ScanError:
        return None
    # Unverified on purpose: a broken certificate is still the one served, and a change to it
    # is exactly what the TLS scan should look at.
    context = tls_context(policy, verify=False)

    async def leaf(address: IPAddress) -> str | None:
        try:
            async with asyncio.timeout(policy.connect_timeout + policy.read_timeout):
                _, writer = await asyncio.open_connection(
                    str(address), policy.https_port, ssl=context, server_hostname=target.host
                )
        except (OSError, TimeoutError, ssl.SSLError):
            return None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        finally:
            writer.transport.abort()  # nothing was sent: no close_notify to wait for
        return hashlib.sha256(der).hexdigest() if der else None

    found = await asyncio.gather(*(leaf(a) for a in target.addresses))
    if any(f is None for f in found):
        return None
    return frozenset(f for f in found if f is not None)


class ScanMemory:
    """What the scheduler remembers beside its jobs, in the same SQLite file so that a restart
    keeps it: the leaf certificates each site served last, and each provider's last requested
    rescan. Bounded: one row per site (dropped with the site), one per provider whose rescan is
    within its cooldown."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS served_leaf (domain TEXT PRIMARY KEY,"
                    " sha256 TEXT NOT NULL, changed_us INTEGER NOT NULL)"
                )
            )
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS rescan_request (provider TEXT PRIMARY KEY,"
                    " at_us INTEGER NOT NULL)"
                )
            )

    def note_leaf(self, domain: str, leaf: frozenset[str], now: datetime) -> bool:
        """Remember what ``domain`` serves; True if it now serves a certificate it did not
        serve last time (never on the first observation: nothing to compare with)."""
        joined = ",".join(sorted(leaf))
        with self._engine.begin() as conn:
            row = conn.execute(
                text("SELECT sha256 FROM served_leaf WHERE domain = :domain"), {"domain": domain}
            ).first()
            if row is not None and row[0] == joined:
                return False  # the usual case: nothing to write
            conn.execute(
                text(
                    "INSERT INTO served_leaf VALUES (:domain, :sha256, :at) ON CONFLICT(domain)"
                    " DO UPDATE SET sha256 = excluded.sha256, changed_us = excluded.changed_us"
                ),
                {"domain": domain, "sha256": joined, "at": to_us(now)},
            )
        return row is not None and not leaf <= frozenset(str(row[0]).split(","))

    def forget_sites(self, domains: Sequence[str]) -> None:
        with self._engine.begin() as conn:
            for domain in domains:
                conn.execute(
                    text("DELETE FROM served_leaf WHERE domain = :domain"), {"domain": domain}
                )

    def last_rescan(self, provider: str) -> datetime | None:
        """When ``provider``'s last rescan was requested."""
        with self._engine.begin() as conn:
            value = conn.execute(
                text("SELECT at_us FROM rescan_request WHERE provider = :provider"),
                {"provider": provider},
            ).scalar()
        return None if value is None else from_us(int(value))

    def note_rescan(self, provider: str, now: datetime, forget_before: datetime) -> None:
        """Record a rescan request; requests older than ``forget_before`` are out of their
        cooldown and dropped."""
        with self._engine.begin() as conn:
            conn.execute(
                text("DELETE FROM rescan_request WHERE at_us < :before"),
                {"before": to_us(forget_before)},
            )
            conn.execute(
                text(
                    "INSERT INTO rescan_request VALUES (:provider, :at) ON CONFLICT(provider)"
                    " DO UPDATE SET at_us = excluded.at_us"
                ),
                {"provider": provider, "at": to_us(now)},
            )


class Flights:
    """The scans running now (at most the pool's size), so that shutdown can cancel them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = set()
        self._closed = False

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on a fresh event loop in this (worker) thread; raises
        ``asyncio.CancelledError`` if :meth:`cancel_all` stops it."""
        with asyncio.Runner() as runner:
            return runner.run(self._tracked(work))

    async def _tracked(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside Runner.run
        key = (asyncio.get_running_loop(), task)
        with self._lock:
            if self._closed:
                work.close()
                raise asyncio.CancelledError
            self._running.add(key)
        try:
            return await work
        finally:
            with self._lock:
                self._running.discard(key)

    def cancel_all(self) -> None:
        """Cancel what runs and refuse what comes (the scheduler is stopping)."""
        with self._lock:
            self._closed = True
            for loop, task in self._running:
                loop.call_soon_threadsafe(task.cancel)


@dataclass
class Counters:
    """What the jobs did, for logs and metrics; thread-safe."""

    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True)
class Runtime:
    """The live parts a job needs, bound while the scheduler runs (see the module docstring).

    ``scan_soon(domain, areas, now)`` puts a one-off scan in the job store (a new certificate
    is TLS-scanned at once); ``done(job_id)`` removes a one-off that has run."""

    policy: ScanPolicy
    sink: ScanSink
    clock: Callable[[], datetime]
    scan: ScanFn
    fingerprint: FingerprintFn
    memory: ScanMemory
    scan_soon: Callable[[str, tuple[Area, ...], datetime], None]
    done: Callable[[str], None]
    flights: Flights = field(default_factory=Flights)
    counters: Counters = field(default_factory=Counters)


_bound: list[Runtime] = []  # at most one: the slot described in the module docstring
_bound_lock = threading.Lock()


def bind(runtime: Runtime) -> None:
    """Make ``runtime`` the one jobs use; ``RuntimeError`` if another is bound."""
    with _bound_lock:
        if _bound:
            raise RuntimeError("a scan scheduler already runs in this process")
        _bound.append(runtime)


def unbind(runtime: Runtime) -> None:
    with _bound_lock:
        if runtime in _bound:
            _bound.remove(runtime)


def _current() -> Runtime | None:
    with _bound_lock:
        return _bound[0] if _bound else None


def scan_site(domain: str, areas: list[str], one_off: str | None = None) -> None:
    """The job: scan ``areas`` of ``domain`` and hand the record to the sink. ``one_off`` is
    the id of a one-off job to remove once it has run (it stays if the scan was cut short by
    a shutdown, and runs again after the restart). Never raises: APScheduler would only log
    it, and one site's trouble is not the scheduler's."""
    runtime = _current()
    if runtime is None:
        log.error("a scan job ran with no scheduler bound", extra={"domain": domain})
        return
    try:
        _run(runtime, domain, tuple(Area(a) for a in areas))
    except asyncio.CancelledError:
        log.info("scan cut short by shutdown", extra={"domain": domain, "areas": areas})
        runtime.counters.add("cancelled")
        return
    except Exception:
        log.exception("scan job failed", extra={"domain": domain, "areas": areas})
        runtime.counters.add("failed")
    if one_off is not None:
        runtime.done(one_off)


def _run(runtime: Runtime, domain: str, areas: tuple[Area, ...]) -> None:
    try:
        report, leaf = runtime.flights.run(_observe(runtime, domain, areas))
    except ScanError as exc:  # from a scan function that does not report it as scan_areas does
        log.warning("cannot scan site", extra={"domain": domain, "error": str(exc)})
        runtime.counters.add("refused")
        return
    now = runtime.clock()
    names = tuple(a.value for a in areas)
    record = report.to_record(scan_event_id(report.host, names, report.started.isoformat()))
    runtime.sink([record], now)
    runtime.counters.add("scans")
    if leaf is not None and runtime.memory.note_leaf(domain, leaf, now) and Area.TLS not in areas:
        log.info("served certificate changed: TLS scan now", extra={"domain": domain})
        runtime.counters.add("certificate_changes")
        runtime.scan_soon(domain, (Area.TLS,), now)


async def _observe(
    runtime: Runtime, domain: str, areas: tuple[Area, ...]
) -> tuple[ScanReport, frozenset[str] | None]:
    report = await runtime.scan(domain, areas, runtime.policy)
    leaf = None
    if Area.AVAILABILITY in areas:  # the frequent job notes the certificate: one handshake
        leaf = await runtime.fingerprint(domain, runtime.policy)
    return report, leaf
