"""The scan scheduler: every site of every provider scanned at its areas' cadences, in exactly
one process per data directory, with jobs that survive a restart.

* **One per deployment.** :meth:`Scheduler.start` takes ``<data_dir>/scheduler.lock``
  (non-blocking); if another process holds it, this one does not schedule and says why.
* **Persistent.** APScheduler's SQLAlchemy job store on ``<data_dir>/scheduler.sqlite3``
  (mode 0600) keeps each job and its next run time; a restart resumes the schedule instead of
  rescanning everything, and a requested rescan not yet done is still there.
* **Jobs.** One interval job per site and *area group* (areas sharing a cadence, e.g.
  ``http+dns+disclosure`` daily). Start times are spread evenly over the cadence by a hash of
  the job (the same place across restarts), and each run gets up to ``jitter`` seconds more, so
  ten thousand sites never fire together. A site new to the schedule also gets a one-off full
  first scan, spread over the time the pool needs for all the new ones.
* **Bounded work.** A pool of ``concurrency`` threads runs the scans; a job still running (or
  waiting for a thread) when its next slot comes is not started twice (``max_instances=1``,
  counted as ``overran``); runs missed while stopped collapse into one (``coalesce``), and only
  if they are recent (``misfire_grace_time``, counted as ``missed`` otherwise) — the rest wait
  for their next slot.
* **Certificates.** The availability job notes the served leaf certificate; a new one is
  TLS-scanned at once (:mod:`api.scanjobs`).
* **Rescans on request**, per provider, refused within the cooldown (:class:`CooldownError`).

The schedule's values (cadences, area groups, job ids, spread) are in :mod:`api.scanplan`;
what a job does when it fires is in :mod:`api.scanjobs`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, create_engine, event, text
from starlette.datastructures import State

from api import scanjobs
from api.errors import NotFoundError, TooManyRequestsError
from api.providers import Provider, SiteRef
from api.scanjobs import FingerprintFn, Runtime, ScanFn, ScanMemory, ScanSink
from api.scanplan import AreaGroup, Cadences, domain_of, first_scan_window, spread
from api.settings import Settings
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import Area

if TYPE_CHECKING:
    from api.ratings import RatingService

log = logging.getLogger(__name__)

SENSOR_ID: Final = "scheduler"  # what the scheduler's scan records are stored as coming from
JOB_FILE: Final = "scheduler.sqlite3"
LOCK_FILE: Final = "scheduler.lock"
_TABLE: Final = "apscheduler_jobs"
_JOB: Final = "api.scanjobs:scan_site"
# A one-off job repeats at this interval until it has run to the end and removed itself, so
# that one cut short by a shutdown runs again after the restart.
_ONE_OFF_RETRY: Final = timedelta(hours=1)


class _Background(BackgroundScheduler):  # type: ignore[misc]  # APScheduler has no types
    """APScheduler 3's background scheduler, without the round of job processing its loop runs
    after :meth:`shutdown` (the loop tests the state only before it waits): that round would
    advance the next run time of every due job, in the job store, without running it."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()
        return wait


class SiteSource(Protocol):
    """What the scheduler reads of the store: the sites to scan and a provider's sites."""

    def list_sites(self) -> list[SiteRef]: ...

    def get_provider(self, provider_id: str) -> Provider | None: ...


class CooldownError(TooManyRequestsError):
    """A rescan of this provider was requested less than the cooldown ago."""

    def __init__(self, provider: str, retry_after: float) -> None:
        super().__init__(retry_after)
        self.args = (
            f"a rescan of provider {provider} was requested less than the cooldown ago;"
            f" retry in {self.retry_after} s",
        )


@dataclass(frozen=True)
class RescanTicket:
    provider: str
    scheduled_at: datetime
    areas: tuple[str, ...]
    domains: tuple[str, ...]


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`Scheduler.sync` changed: domains added to and removed from the schedule."""

    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ScheduledScan:
    """A job as stored: ``kind`` is scan (interval), first, tls or rescan (one-offs)."""

    id: str
    kind: str
    domain: str
    areas: tuple[str, ...]
    next_run: datetime | None
    every: timedelta | None  # None: a one-off
    jitter: int | None  # seconds added at random to each run; None: a one-off


class Scheduler:
    """The scan scheduler of one data directory; nothing happens before :meth:`start`."""

    def __init__(
        self,
        data_dir: Path,
        sites: SiteSource,
        sink: ScanSink,
        policy: ScanPolicy,
        *,
        clock: Callable[[], datetime],
        cadences: Cadences | None = None,
        concurrency: int = 4,
        jitter_seconds: int = 60,
        cooldown: timedelta = timedelta(minutes=15),
        scan: ScanFn = scanjobs.scan_areas,
        fingerprint: FingerprintFn = scanjobs.leaf_fingerprints,
    ) -> None:
        self._data_dir = data_dir
        self._sites = sites
        self._sink = sink
        self._policy = policy
        self._clock = clock
        self._groups = (cadences or Cadences.of_methodology()).groups()
        self._concurrency = concurrency
        self._jitter = jitter_seconds
        self._cooldown = cooldown
        self._scan = scan
        self._fingerprint = fingerprint
        self._lock_file: IO[bytes] | None = None
        self._engine: Engine | None = None
        self._aps: Any = None
        self._runtime: Runtime | None = None
        self._memory: ScanMemory | None = None
        self._sync_lock = threading.Lock()
        self._rescan_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, sites: SiteSource, sink: ScanSink, clock: Callable[[], datetime]
    ) -> Scheduler:
        return cls(
            settings.data_dir,
            sites,
            sink,
            scanjobs.scan_policy(settings),
            clock=clock,
            concurrency=settings.scan_concurrency,
            jitter_seconds=settings.scan_jitter_seconds,
            cooldown=timedelta(seconds=settings.rescan_cooldown_seconds),
        )

    @property
    def running(self) -> bool:
        return self._aps is not None

    def start(self, now: datetime, *, paused: bool = False) -> bool:
        """Take the lock, open the job store, start the pool and reconcile the jobs with the
        sites. False (and a log line saying why) if another scheduler holds the lock.
        ``paused``: keep the jobs but run none until :meth:`resume` (tests, maintenance)."""
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = _try_lock(self._data_dir / LOCK_FILE)
        if lock is None:
            log.warning(
                "another process runs the scan scheduler of this data directory; not here",
                extra={"data_dir": str(self._data_dir)},
            )
            return False
        engine = _engine(self._data_dir / JOB_FILE)
        memory = ScanMemory(engine)
        runtime = Runtime(
            policy=self._policy,
            sink=self._sink,
            clock=self._clock,
            scan=self._scan,
            fingerprint=self._fingerprint,
            memory=memory,
            scan_soon=self._scan_soon,
            done=self._done,
        )
        try:
            scanjobs.bind(runtime)
        except RuntimeError as exc:
            engine.dispose()
            lock.close()
            log.warning("scan scheduler not started", extra={"error": str(exc)})
            return False
        aps = _Background(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=_TABLE)},
            executors={"default": ThreadPoolExecutor(self._concurrency)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        aps.add_listener(self._count, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)
        aps.start(paused=paused)
        self._lock_file, self._engine, self._aps = lock, engine, aps
        self._runtime, self._memory = runtime, memory
        try:
            self.sync(now)
        except Exception:  # the persisted schedule still runs; the next sync() retries
            log.exception("the scan schedule could not be reconciled with the sites")
        log.info(
            "scan scheduler started",
            extra={"data_dir": str(self._data_dir), "jobs": len(self._job_ids())},
        )
        return True

    def resume(self) -> None:
        self._aps.resume()

    def shutdown(self) -> None:
        """Cancel running scans (their one-offs stay for after a restart), stop the pool,
        close the job store and release the lock."""
        if self._aps is None:
            return
        assert self._runtime is not None  # noqa: S101 - set with _aps
        assert self._engine is not None  # noqa: S101 - set with _aps
        assert self._lock_file is not None  # noqa: S101 - set with _aps
        self._runtime.flights.cancel_all()
        self._aps.shutdown(wait=True)
        scanjobs.unbind(self._runtime)
        self._engine.dispose()
        self._lock_file.close()
        self._aps = self._engine = self._lock_file = None

    def counters(self) -> dict[str, int]:
        """scans, refused, failed, cancelled, certificate_changes, missed, overran, errors."""
        return {} if self._runtime is None else self._runtime.counters.snapshot()

    def sync(self, now: datetime | None = None) -> SyncResult:
        """Make the jobs match the sites: add the missing (with a first scan for a new site),
        drop those of removed sites or of changed cadences; the others keep their times.
        Call it after every change to providers (``now`` defaults to the scheduler's clock)."""
        if self._aps is None:  # not started: start() reconciles
            return SyncResult((), ())
        now = self._clock() if now is None else now
        with self._sync_lock:
            sites = self._sites.list_sites()
            domains = {site.domain for site in sites}
            wanted = {
                group.job_id(domain): (domain, group)
                for domain in sorted(domains)
                for group in self._groups
            }
            existing = self._job_ids()
            scheduled = {domain_of(job_id) for job_id in existing}
            for job_id in existing:
                stale_cadence = job_id.startswith("scan|") and job_id not in wanted
                if stale_cadence or domain_of(job_id) not in domains:
                    with suppress(JobLookupError):
                        self._aps.remove_job(job_id)
            for job_id, (domain, group) in wanted.items():
                if job_id not in existing:
                    self._add_interval(job_id, domain, group, now)
            added = sorted(domains - scheduled)
            removed = sorted(scheduled - domains)
            self._first_scans(added, now)
            assert self._memory is not None  # noqa: S101 - started
            self._memory.forget_sites(removed)
        if added or removed:
            log.info("scan schedule updated", extra={"added": len(added), "removed": len(removed)})
        return SyncResult(tuple(added), tuple(removed))

    def request_rescan(self, provider_id: str, now: datetime) -> RescanTicket:
        """Scan every area of every site of the provider now (persisted until done).

        :class:`~api.errors.NotFoundError` for an unknown provider; :class:`CooldownError` within
        the cooldown of its last requested rescan."""
        provider = self._sites.get_provider(provider_id)
        if provider is None:
            raise NotFoundError(f"no provider {provider_id!r}")
        assert self._memory is not None  # noqa: S101 - started
        with self._rescan_lock:
            last = self._memory.last_rescan(provider_id)
            if last is not None and now - last < self._cooldown:
                wait = (self._cooldown - (now - last)).total_seconds()
                raise CooldownError(provider_id, wait)
            domains = tuple(site.domain for site in provider.sites)
            stamp = _stamp(now)
            for domain in domains:
                self._add_one_off(
                    f"rescan|{provider_id}|{stamp}|{domain}", domain, tuple(Area), now
                )
            self._memory.note_rescan(provider_id, now, forget_before=now - self._cooldown)
        log.info("rescan requested", extra={"provider": provider_id, "domains": len(domains)})
        return RescanTicket(provider_id, now, tuple(a.value for a in Area), domains)

    def jobs(self) -> list[ScheduledScan]:
        """Every stored job, soonest first (for operators and tests)."""
        out = []
        for job in self._aps.get_jobs():
            kind = job.id.split("|", 1)[0]
            out.append(
                ScheduledScan(
                    id=job.id,
                    kind=kind,
                    domain=job.args[0],
                    areas=tuple(job.args[1]),
                    next_run=job.next_run_time,
                    every=job.trigger.interval if kind == "scan" else None,
                    jitter=(job.trigger.jitter or 0) if kind == "scan" else None,
                )
            )
        return out

    # -- internals ------------------------------------------------------------------------------

    def _add_interval(self, job_id: str, domain: str, group: AreaGroup, now: datetime) -> None:
        start = now + spread(job_id, group.every)
        self._aps.add_job(
            _JOB,
            IntervalTrigger(
                seconds=group.every.total_seconds(),
                start_date=start,
                timezone=UTC,
                jitter=group.jitter(self._jitter) or None,
            ),
            args=[domain, [a.value for a in group.areas]],
            id=job_id,
            name=f"{group.name} of {domain}",
            next_run_time=start,
            misfire_grace_time=group.misfire_grace,
            replace_existing=True,
        )

    def _add_one_off(self, job_id: str, domain: str, areas: Sequence[Area], at: datetime) -> None:
        self._aps.add_job(
            _JOB,
            IntervalTrigger(seconds=_ONE_OFF_RETRY.total_seconds(), start_date=at, timezone=UTC),
            args=[domain, [a.value for a in areas]],
            kwargs={"one_off": job_id},
            id=job_id,
            name=f"{job_id.split('|', 1)[0]} of {domain}",
            next_run_time=at,
            misfire_grace_time=None,  # however late: it was asked for
            replace_existing=True,
        )

    def _first_scans(self, domains: Sequence[str], now: datetime) -> None:
        """A full scan of each new site, spread over the time the pool needs for them all."""
        window = first_scan_window(len(domains), self._concurrency)
        for domain in domains:
            job_id = f"first|{domain}"
            self._add_one_off(job_id, domain, tuple(Area), now + spread(job_id, window))

    def _scan_soon(self, domain: str, areas: tuple[Area, ...], now: datetime) -> None:
        kind = "tls" if areas == (Area.TLS,) else "soon"
        self._add_one_off(f"{kind}|{_stamp(now)}|{domain}", domain, areas, now)

    def _done(self, job_id: str) -> None:
        if self._aps is not None:
            with suppress(JobLookupError):
                self._aps.remove_job(job_id)

    def _job_ids(self) -> set[str]:
        # Straight from the table: get_jobs() would unpickle every job to read its id.
        assert self._engine is not None  # noqa: S101 - started
        with self._engine.begin() as conn:
            return {str(row[0]) for row in conn.execute(text(f"SELECT id FROM {_TABLE}"))}

    def _count(self, job_event: Any) -> None:
        if self._runtime is None:
            return
        names = {EVENT_JOB_MISSED: "missed", EVENT_JOB_MAX_INSTANCES: "overran"}
        self._runtime.counters.add(names.get(job_event.code, "errors"))


def _stamp(now: datetime) -> int:
    """Microseconds since the epoch: one-off ids are unique per request."""
    return int((now - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def _try_lock(path: Path) -> IO[bytes] | None:
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _engine(path: Path) -> Engine:
    # Made private before SQLite opens it (its journal files copy the mode): it lists every
    # site's schedule.
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    event.listen(engine, "connect", _pragmas)
    return engine


def _pragmas(connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a commit per fired job costs no fsync; a crash of the
    # process loses nothing, a power cut at most the last moments of schedule updates.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def app_sink(state: State) -> ScanSink:
    """The sink the service gives the scheduler: the rating service (``state.ratings``:
    validate, store, raise alerts, rate again), looked up at each call."""

    def sink(records: list[dict[str, Any]], now: datetime) -> None:
        ratings: RatingService = state.ratings
        counts = ratings.record_scans(SENSOR_ID, records, now)
        if counts.queued:
            state.wake_delivery()  # an alert is committed: the delivery worker may take it

    return sink


def start_scheduler(
    settings: Settings, sites: SiteSource, sink: ScanSink, clock: Callable[[], datetime]
) -> Scheduler | None:
    """The service's scheduler, started; None when ``settings.scheduler`` is off or another
    process holds the lock."""
    if not settings.scheduler:
        return None
    scheduler = Scheduler.from_settings(settings, sites, sink, clock)
    return scheduler if scheduler.start(clock()) else None


def stop_scheduler(state: State) -> None:
    """Stop the service's scheduler, if it runs (``state.scheduler``), and forget it."""
    scheduler: Scheduler | None = getattr(state, "scheduler", None)
    state.scheduler = None
    if scheduler is not None:
        scheduler.shutdown()
