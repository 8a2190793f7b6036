"""The scan scheduler against a real SQLite job store in each test's data directory: jobs per
site and cadence group, spread and jittered; reconciled with the providers; one scheduler per
data directory; jobs, next run times and requested rescans surviving a restart; the
concurrency limit; a new certificate TLS-scanned at once; and real scans of loopback sites
handed to the sink."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from api import scanjobs
from api.errors import NotFoundError
from api.providers import NewProvider, Site, SiteRole
from api.scanplan import Cadences, spread
from api.scheduler import JOB_FILE, LOCK_FILE, CooldownError, RescanTicket, Scheduler, SyncResult
from api.store import SqliteStore
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import Area, CheckResult, CheckStatus, ScanReport
from sensors.wire import ScanRecord, validate_record
from tests.scanner.conftest import Route, loopback_policy, server_context
from tests.scanner.conftest import Site as WebSite
from tests.scanner.dnszone import ZoneServer

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ALL = tuple(area.value for area in Area)
MONTH = timedelta(days=30)
# Every area monthly: in tests that run the pool, only the jobs the test makes fire.
LONG = Cadences(MONTH, MONTH, MONTH, MONTH, MONTH, MONTH)
PORTAL_ZONE = """$ORIGIN portal.test.
$TTL 300
@ SOA ns.portal.test. hostmaster.portal.test. 1 3600 600 86400 300
@ NS ns.portal.test.
@ A 127.0.0.1
ns A 127.0.0.1
@ TXT "v=spf1 -all"
"""
# Another process holding the scheduler's lock, until its stdin closes.
HOLD_LOCK = (
    "import fcntl, sys\n"
    "handle = open(sys.argv[1], 'ab')\n"
    "fcntl.flock(handle, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


@dataclass
class Sink:
    """Collects what the jobs hand over, in the rating service's place."""

    records: list[dict[str, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, records: list[dict[str, Any]], now: datetime) -> None:
        with self._changed:
            self.records.extend(records)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.records) >= count, timeout)
            return list(self.records)


class Gauge:
    """How many scans run at once, and the most that ever did."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.running -= 1


def report(domain: str, areas: tuple[Area, ...]) -> ScanReport:
    """What a fake scan returns: one passing check per area."""
    checks = tuple(CheckResult(f"{a.value}.fake", a, CheckStatus.PASS, "fake") for a in areas)
    return ScanReport(domain, T0, T0, ("192.0.2.1",), checks)


async def no_fingerprint(domain: str, policy: ScanPolicy) -> frozenset[str] | None:
    return None


def register(store: SqliteStore, provider_id: str, *domains: str) -> None:
    sites = tuple(
        Site(domain, SiteRole.PRIMARY if i == 0 else SiteRole.OTHER)
        for i, domain in enumerate(domains)
    )
    store.add_provider(NewProvider(provider_id, provider_id.title(), "Agency", 3, sites), T0)


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"  # the conftest's store lives there too


@pytest.fixture
def schedulers(store: SqliteStore, data_dir: Path) -> Iterator[Callable[..., Scheduler]]:
    """``schedulers(sink=None, **options)`` makes a scheduler on the test's data directory and
    store; every one is shut down after the test (before the store closes)."""
    made: list[Scheduler] = []

    def make(sink: Sink | None = None, **options: Any) -> Scheduler:
        options.setdefault("policy", ScanPolicy())
        scheduler = Scheduler(
            data_dir, store, sink or Sink(), options.pop("policy"), clock=lambda: T0, **options
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.shutdown()


def test_one_job_per_site_and_cadence_group_spread_over_its_cadence(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "portal.example.gov", "pay.example.gov")
    register(store, "city", "city.example.gov")
    scheduler = schedulers()
    assert scheduler.start(T0, paused=True)
    jobs = scheduler.jobs()
    domains = ("portal.example.gov", "pay.example.gov", "city.example.gov")
    groups = (
        (("availability",), timedelta(minutes=5), 30),  # jitter: a tenth of the cadence
        (("http", "dns", "disclosure"), timedelta(days=1), 60),
        (("tls", "exposure"), timedelta(days=7), 60),
    )
    expected = {(d, areas): (every, jitter) for d in domains for areas, every, jitter in groups}
    assert expected == {(j.domain, j.areas): (j.every, j.jitter) for j in jobs if j.kind == "scan"}
    late = [j for j in jobs if j.kind == "scan" and not T0 <= j.next_run < T0 + j.every]
    assert [] == late
    # New sites get a full first scan, spread over what the pool needs for them: three
    # sites at 8 s a scan on 4 threads, 6 s.
    first = {
        j.domain: (j.areas, T0 <= j.next_run < T0 + timedelta(seconds=6))
        for j in jobs
        if j.kind == "first"
    }
    assert dict.fromkeys(domains, (ALL, True)) == first


def test_ten_thousand_sites_never_fire_together() -> None:
    week, five_minutes = timedelta(days=7), timedelta(minutes=5)
    per_day = Counter(
        spread(f"scan|tls+exposure|604800|site{i}.example.gov", week) // timedelta(days=1)
        for i in range(10_000)
    )
    per_second = Counter(
        spread(f"scan|availability|300|site{i}.example.gov", five_minutes) // timedelta(seconds=1)
        for i in range(10_000)
    )
    # Evenly: 1428.6 a day and 33.3 a second on average.
    assert (7, True) == (len(per_day), all(1300 < n < 1560 for n in per_day.values()))
    assert (300, True) == (len(per_second), max(per_second.values()) < 60)


def test_sync_follows_the_providers_and_keeps_the_other_jobs_times(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "portal.example.gov", "pay.example.gov")
    scheduler = schedulers()
    scheduler.start(T0, paused=True)
    before = {j.id: j.next_run for j in scheduler.jobs()}
    register(store, "city", "city.example.gov")
    site = Site("portal.example.gov", SiteRole.PRIMARY)
    store.replace_provider(NewProvider("ministry", "Ministry", "Agency", 3, (site,)), T0)
    later = T0 + timedelta(hours=1)

    assert SyncResult(("city.example.gov",), ("pay.example.gov",)) == scheduler.sync(later)
    after = {j.id: j.next_run for j in scheduler.jobs()}
    kept = {i: t for i, t in before.items() if not i.endswith("|pay.example.gov")}
    assert kept == {i: t for i, t in after.items() if not i.endswith("|city.example.gov")}
    city = sorted(i.split("|", 1)[0] for i in after if i.endswith("|city.example.gov"))
    assert ["first", "scan", "scan", "scan"] == city
    assert SyncResult((), ()) == scheduler.sync(later)


def test_a_changed_cadence_replaces_only_its_jobs(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "portal.example.gov")
    first = schedulers()
    first.start(T0, paused=True)
    before = {j.id: j.next_run for j in first.jobs() if j.kind == "scan"}
    first.shutdown()
    again = schedulers(cadences=Cadences(availability=timedelta(minutes=1)))
    again.start(T0 + timedelta(hours=1), paused=True)
    after = {j.id: j.next_run for j in again.jobs() if j.kind == "scan"}
    assert {i: t for i, t in before.items() if "|availability|" not in i} == {
        i: t for i, t in after.items() if "|availability|" not in i
    }
    assert [("availability", timedelta(minutes=1))] == [
        (j.areas[0], j.every) for j in again.jobs() if j.areas == ("availability",)
    ]


def test_a_second_scheduler_on_the_data_directory_does_not_start(
    store: SqliteStore,
    schedulers: Callable[..., Scheduler],
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(data_dir / LOCK_FILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert "locked\n" == holder.stdout.readline()
        scheduler = schedulers()
        with caplog.at_level(logging.WARNING, logger="api.scheduler"):
            started = scheduler.start(T0)
        holder.stdin.close()  # the other process ends
    said = [r.getMessage() for r in caplog.records if r.name == "api.scheduler"]
    assert (False, False) == (started, scheduler.running)
    assert ["another process runs the scan scheduler of this data directory; not here"] == said
    assert scheduler.start(T0, paused=True)  # the other process is gone
    assert not schedulers().start(T0)  # and a second one in this process stays off too


def test_jobs_their_times_and_a_requested_rescan_survive_a_restart(
    store: SqliteStore, schedulers: Callable[..., Scheduler], data_dir: Path
) -> None:
    register(store, "ministry", "portal.example.gov", "pay.example.gov")
    first = schedulers()
    first.start(T0, paused=True)
    first.request_rescan("ministry", T0 + timedelta(minutes=1))
    before = sorted(first.jobs(), key=lambda j: j.id)
    first.shutdown()
    assert 0o600 == (data_dir / JOB_FILE).stat().st_mode & 0o777

    again = schedulers()
    assert again.start(T0 + timedelta(hours=2), paused=True)
    assert before == sorted(again.jobs(), key=lambda j: j.id)
    rescans = sorted((j.domain, j.areas) for j in again.jobs() if j.kind == "rescan")
    assert [("pay.example.gov", ALL), ("portal.example.gov", ALL)] == rescans
    with pytest.raises(CooldownError):  # the cooldown is remembered too
        again.request_rescan("ministry", T0 + timedelta(minutes=5))


def test_a_rescan_on_request_and_its_cooldown(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "portal.example.gov", "pay.example.gov")
    scheduler = schedulers(cooldown=timedelta(minutes=15))
    scheduler.start(T0, paused=True)
    at = T0 + timedelta(minutes=1)

    ticket = scheduler.request_rescan("ministry", at)
    assert RescanTicket("ministry", at, ALL, ("portal.example.gov", "pay.example.gov")) == ticket
    rescans = sorted(
        (j.domain, j.areas, j.next_run) for j in scheduler.jobs() if j.kind == "rescan"
    )
    assert [("pay.example.gov", ALL, at), ("portal.example.gov", ALL, at)] == rescans
    with pytest.raises(CooldownError) as caught:
        scheduler.request_rescan("ministry", at + timedelta(minutes=10, seconds=0.5))
    assert (429, {"Retry-After": "300"}) == (caught.value.status, caught.value.headers)
    assert scheduler.request_rescan("ministry", at + timedelta(minutes=15)).domains  # over
    with pytest.raises(NotFoundError):
        scheduler.request_rescan("nobody", at)


def test_at_most_concurrency_scans_run_at_once(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    # A fake scan: the limit is about overlap, and only scans that last a known time make
    # overlap certain (a real scan takes what the site and the network make it take).
    domains = [f"site{i}.example.gov" for i in range(6)]
    register(store, "ministry", *domains)
    gauge = Gauge()

    async def slow(domain: str, areas: tuple[Area, ...], policy: ScanPolicy) -> ScanReport:
        with gauge:
            await asyncio.sleep(0.25)
        return report(domain, areas)

    sink = Sink()
    scheduler = schedulers(
        sink, concurrency=2, cadences=LONG, scan=slow, fingerprint=no_fingerprint
    )
    # Started an hour late: the six first scans are all due, and all wait for a thread.
    scheduler.start(datetime.now(UTC) - timedelta(hours=1))
    records = sink.wait(6)
    assert (sorted(domains), 2) == (sorted(r["url.domain"] for r in records), gauge.peak)
    wait_until(lambda: not [j for j in scheduler.jobs() if j.kind == "first"])  # done: removed
    assert 6 == scheduler.counters()["scans"]


def test_a_scan_that_overruns_its_slot_is_not_started_twice(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "slow.example.gov")
    release = threading.Event()
    started: list[float] = []

    async def stuck(domain: str, areas: tuple[Area, ...], policy: ScanPolicy) -> ScanReport:
        if areas == (Area.AVAILABILITY,):
            started.append(time.monotonic())
            while not release.is_set():
                await asyncio.sleep(0.02)
        return report(domain, areas)

    every_second = Cadences(timedelta(seconds=1), MONTH, MONTH, MONTH, MONTH, MONTH)
    scheduler = schedulers(
        cadences=every_second, jitter_seconds=0, scan=stuck, fingerprint=no_fingerprint
    )
    scheduler.start(datetime.now(UTC))
    wait_until(lambda: scheduler.counters().get("overran", 0) >= 1)
    assert 1 == len(started)
    release.set()


def test_a_rescan_cut_short_by_a_shutdown_runs_after_the_restart(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    register(store, "ministry", "portal.example.gov")
    began = threading.Event()

    async def endless(domain: str, areas: tuple[Area, ...], policy: ScanPolicy) -> ScanReport:
        began.set()
        await asyncio.sleep(60)
        raise AssertionError("not cancelled")

    now = datetime.now(UTC)
    tomorrow = now + timedelta(days=1)  # nothing but the rescan is due
    scheduler = schedulers(cadences=LONG, scan=endless, fingerprint=no_fingerprint)
    scheduler.start(tomorrow)
    scheduler.request_rescan("ministry", now)
    assert began.wait(10)
    stopping = time.monotonic()
    scheduler.shutdown()
    assert (True, 1) == (time.monotonic() - stopping < 5, scheduler.counters()["cancelled"])

    again = schedulers(cadences=LONG)
    again.start(tomorrow, paused=True)
    assert [("portal.example.gov", ALL)] == [
        (j.domain, j.areas) for j in again.jobs() if j.kind == "rescan"
    ]


def test_a_new_certificate_is_tls_scanned_at_once(
    store: SqliteStore, schedulers: Callable[..., Scheduler], ca: trustme.CA, ca_file: Path
) -> None:
    site = WebSite({"/": Route()}).start(server_context(ca))
    try:
        register(store, "ministry", "127.0.0.1")
        sink = Sink()
        scheduler = schedulers(sink, policy=loopback_policy(https=site, ca_file=ca_file))
        # Paused: the job function runs here, in the test's thread, with the runtime it binds.
        scheduler.start(T0, paused=True)
        scanjobs.scan_site("127.0.0.1", ["availability"])
        scanjobs.scan_site("127.0.0.1", ["availability"])  # the same certificate: nothing
        assert [] == [j for j in scheduler.jobs() if j.kind == "tls"]
        site.stop()
        site = WebSite({"/": Route()}, port=site.port).start(server_context(ca))  # renewed
        scanjobs.scan_site("127.0.0.1", ["availability"])
    finally:
        site.stop()
    tls = [(j.domain, j.areas, j.next_run) for j in scheduler.jobs() if j.kind == "tls"]
    assert [("127.0.0.1", ("tls",), T0)] == tls
    checks = [{c["id"]: c["status"] for c in r["checks"]} for r in sink.records]
    availability = {
        "availability.status": "pass",
        "availability.ttfb": "pass",
        "availability.fingerprint": "info",
        "availability.content-integrity": "pass",
    }
    assert [availability] * 3 == checks
    assert {"scans": 3, "certificate_changes": 1} == scheduler.counters()


def test_a_real_scan_of_a_loopback_site_reaches_the_sink(
    store: SqliteStore, schedulers: Callable[..., Scheduler], ca: trustme.CA, ca_file: Path
) -> None:
    zone = ZoneServer([PORTAL_ZONE]).start()
    https = WebSite({"/": Route()}).start(server_context(ca, "portal.test"))
    to_https = Route(301, (("Location", f"https://portal.test:{https.port}/"),), b"")
    http = WebSite({"/": to_https}).start()
    try:
        policy = loopback_policy(
            https=https,
            http=http,
            ca_file=ca_file,
            nameservers=(f"127.0.0.1:{zone.port}",),
            dns_port=zone.port,
            port_rate=500.0,
        )
        register(store, "ministry", "portal.test")
        sink = Sink()
        scheduler = schedulers(sink, policy=policy, cadences=LONG)
        assert scheduler.start(datetime.now(UTC))  # the new site's first scan: every area
        (record,) = sink.wait(1)
    finally:
        zone.stop()
        https.stop()
        http.stop()
    scan = validate_record(record)
    assert isinstance(scan, ScanRecord)
    areas = {check.id.split(".", 1)[0] for check in scan.checks}
    assert ("portal.test", {*ALL, "grade"}) == (scan.url_domain, areas)
    statuses = {check.id: check.status.value for check in scan.checks}
    assert ("pass", "pass") == (statuses["availability.status"], statuses["dns.spf"])


def test_a_site_that_cannot_be_scanned_is_reported_as_not_checked(
    store: SqliteStore, schedulers: Callable[..., Scheduler]
) -> None:
    nowhere = ZoneServer([]).start()  # refuses every question: the name has no address
    try:
        register(store, "ministry", "gone.example.gov")
        sink = Sink()
        policy = ScanPolicy(nameservers=(f"127.0.0.1:{nowhere.port}",), read_timeout=2.0)
        scheduler = schedulers(sink, policy=policy)
        scheduler.start(T0, paused=True)
        scanjobs.scan_site("gone.example.gov", ["availability", "tls"])
    finally:
        nowhere.stop()
    (record,) = sink.records
    statuses = {check["id"].split(".", 1)[0]: check["status"] for check in record["checks"]}
    assert ("gone.example.gov", {"availability": "error", "tls": "error", "grade": "error"}) == (
        record["url.domain"],
        statuses,
    )
    assert all("no address" in check["summary"] for check in record["checks"][:-1])
