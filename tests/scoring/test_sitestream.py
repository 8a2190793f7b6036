"""Site streams on scan records as the scanner writes them: availability over a sliding 30
days, p95 and drift of the time to first byte, content drift with a warm-up that never learns
a flagged page, early warnings once per episode, bounded state, and a checkpoint round trip.

The records are made by the scanner's own evaluators from snapshots (no network): the evidence
is exactly what a scan ships."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring.anomaly import AnomalyDetectors
from scoring.errors import StateError
from scoring.sitestream import SiteEvent, SiteEventKind, SiteStreams, SiteStreamsConfig
from scoring.sitestream_scan import Certificate, Integrity, PageShape, SiteScan, read_scan
from scoring.state import dumps, loads
from scoring.trust_model import StreamStats
from sensors.scanner import availability, tls
from sensors.scanner.result import ScanReport
from sensors.scanner.web import Page
from sensors.wire import dump_record, utc, validate_record

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOST = "portal.example.gov"
MINUTES_5 = timedelta(minutes=5)


def home_page(
    rng: random.Random,
    *,
    title: str = "Ministry of Health",
    defaced: bool = False,
    gutted: bool = False,
    hidden_spam: int = 0,
    casino: bool = False,
) -> str:
    """A ministry's home page whose news list changes from one visit to the next."""
    if defaced:
        return (
            "<html><head><title>Hacked by Z</title></head><body><h1>Hacked by Z</h1>"
            "<p>greetz to all</p><a href='https://t.me/z'>z</a></body></html>"
        )
    if gutted:
        return f"<html><head><title>{title}</title></head><body><h1>Back soon</h1></body></html>"
    scripts = "".join(f'<script src="https://cdn.example.net/s{i}.js"></script>' for i in range(6))
    nav = "".join(f'<a href="/section/{i}">Section {i}</a>' for i in range(30))
    news = "".join(
        f'<li><a href="/news/{rng.randint(1, 99999)}">News {i}</a></li>'
        for i in range(rng.randint(15, 25))
    )
    partners = "".join(f'<a href="https://partner{i}.example.org/">Partner</a>' for i in range(8))
    spam = "".join(f'<a href="https://spam{i}.example.com/">cheap</a>' for i in range(hidden_spam))
    ad = "<p>Play at our casino tonight</p>" if casino else ""
    return (
        f"<html><head><title>{title}</title>{scripts}<script>var x = 1;</script></head><body>"
        f"<nav>{nav}</nav><ul>{news}</ul>{partners}{ad}<form action='/search'><input name=q>"
        f"</form><div style='display:none'>{spam}</div></body></html>"
    )


def scan(
    i: int,
    at: datetime,
    *,
    host: str = HOST,
    status: int | None = 200,
    ttfb: float | None = 0.2,
    body: str | None = None,
    certificate_days: float | None = None,
    not_after: datetime | None = None,
    sensor: str = "scheduler",
    page_checks: bool = True,
) -> dict[str, Any]:
    """A scan record as the service hands it to the pipeline: built by the scanner's
    evaluators, validated and dumped as the wire does, with ``observer.name`` added."""
    url = f"https://{host}/"
    ttfb = None if status is None else ttfb  # nothing answered: no first byte
    features = None
    if status is not None:
        text = body if body is not None else home_page(random.Random(i))
        page = Page(url, status, (("Content-Type", "text/html"),), text.encode(), False, 0.2, "1.1")
        features = availability.page_features(page)
    error = None if status is not None else "ConnectError: connection refused"
    snap = availability.AvailabilitySnapshot(
        at, url, status, url if status else None, 0, ttfb, error, True, features
    )
    evaluators = availability.CHECKS if page_checks else availability.CHECKS[:2]
    checks = [evaluate(snap) for _, evaluate in evaluators]
    if certificate_days is not None or not_after is not None:
        expires = not_after or at + timedelta(days=certificate_days or 0.0)
        leaf = tls.Certificate(
            f"CN={host}", "CN=CA", "ab" * 32, expires - timedelta(days=90), expires,
            "RSA", 2048, "sha256", False, (host,),
        )  # fmt: skip
        endpoint = tls.Endpoint("203.0.113.5", chain=(leaf,))
        checks.append(tls.evaluate_expiry(tls.TlsSnapshot(host, 443, at, (endpoint,))))
    report = ScanReport(host, at - timedelta(seconds=3), at, ("203.0.113.5",), tuple(checks))
    record = report.to_record(f"scan-{host.split('.', maxsplit=1)[0]}-{i:012d}")
    return dump_record(validate_record(record)) | {
        "observer.name": sensor,
        "event.ingested": utc(at + timedelta(seconds=1)),
    }


def kinds(events: list[SiteEvent]) -> list[str]:
    return [e.kind.value for e in events]


def warm(streams: SiteStreams, n: int = 20, start: int = 0) -> datetime:
    """``n`` ordinary scans five minutes apart; the time of the last."""
    for i in range(start, start + n):
        assert [] == streams.observe(scan(i, T0 + i * MINUTES_5))
    return T0 + (start + n - 1) * MINUTES_5


# ------------------------------------------------------------------------ reading a scan


def test_a_scan_record_is_read_as_the_streams_need_it() -> None:
    at = T0 + timedelta(hours=1)
    doc = scan(7, at, status=503, ttfb=0.42, certificate_days=10.5)
    assert SiteScan(
        domain=HOST,
        event_id="scan-portal-000000000007",
        at=at,
        sensor="scheduler",
        up=False,
        status_code=503,
        probe_summary="the home page answers with a server error (503)",
        ttfb=0.42,
        page=None,  # a 5xx page is not the site's content
        integrity=Integrity(()),
        certificate=Certificate(at + timedelta(days=10.5), 10.5, "203.0.113.5"),
    ) == read_scan(doc)


def test_the_page_structure_comes_from_the_fingerprint() -> None:
    body = home_page(random.Random(1), hidden_spam=3, casino=True)
    read = read_scan(scan(1, T0, body=body))
    assert read is not None
    assert (
        PageShape(
            sha256=availability.page_features(
                Page(f"https://{HOST}/", 200, (), body.encode(), False, 0.2, "1.1")
            ).sha256,
            title="Ministry of Health",
            size=len(body.encode()),
            scripts=7,
            inline_scripts=1,
            script_domains=("cdn.example.net",),
            iframes=0,
            iframe_domains=(),
            forms=1,
            links=30 + body.count("/news/") + 8 + 3,
            foreign_domains=8 + 3,
            hidden_links=3,
            keyword_hits=1,
        ),
        Integrity(("spam",), ("casino",)),
    ) == (read.page, read.integrity)


@pytest.mark.parametrize(
    ("doc", "counted"),
    [
        ({"event.dataset": "trustwatch.flow", "source.ip": "10.0.0.1"}, (0, 0, 0)),
        ({"event.dataset": "trustwatch.scan", "checks": []}, (1, 1, 0)),  # no site, no time
        (scan(1, T0, page_checks=False) | {"checks": []}, (1, 0, 0)),  # not a probe
    ],
)
def test_what_is_not_a_probe_is_not_counted_as_one(
    doc: dict[str, Any], counted: tuple[int, int, int]
) -> None:
    streams = SiteStreams()
    assert [] == streams.observe(doc)
    c = streams.counters
    assert counted == (c.scans, c.unreadable, c.probes)


def test_could_not_check_is_not_down() -> None:
    streams = SiteStreams()
    down = scan(1, T0, status=None, ttfb=None)
    could_not = down | {
        "event.id": "scan-portal-couldnot0001",
        "event.end": utc(T0 + MINUTES_5),
        "checks": [{"id": "availability.status", "status": "error", "summary": "budget ran out"}],
    }
    assert [[], []] == [streams.observe(down), streams.observe(could_not)]
    stats = streams.stats(HOST, T0 + timedelta(hours=1))
    assert (1, 0.0, T0) == (stats.observations, stats.availability, stats.unreachable_since)


# -------------------------------------------------------------------------- availability


def test_availability_is_the_share_of_probes_up_over_the_last_30_days() -> None:
    streams = SiteStreams()
    hour = timedelta(hours=1)
    seen = {}
    # Day 0 down all day, then up every hour; the statistics asked as time goes by.
    for i in range(24 * 40):
        at = T0 + i * hour
        streams.observe(scan(i, at, status=None if i < 24 else 200, ttfb=None))
        if at in (T0 + timedelta(days=10), T0 + timedelta(days=30) - hour, T0 + timedelta(days=30)):
            stats = streams.stats(HOST, at)
            seen[(at - T0) / hour] = (stats.observations, stats.availability)
    later = streams.stats(HOST, T0 + timedelta(days=80))
    assert {
        240: (241, 217 / 241),
        719: (720, 696 / 720),  # 30 days to the hour: day 0 still counts
        720: (720, 697 / 720),  # its first hour has rolled off
    } == seen
    assert (0, None) == (later.observations, later.availability)  # nothing in the window


def test_a_late_scan_counts_for_availability_but_moves_nothing_else() -> None:
    streams = SiteStreams()
    streams.observe(scan(1, T0 + timedelta(hours=2)))
    assert [] == streams.observe(scan(2, T0, status=None, ttfb=None))  # delivered late
    stats = streams.stats(HOST, T0 + timedelta(hours=3))
    assert (2, 0.5, None, 1) == (
        stats.observations,
        stats.availability,
        stats.unreachable_since,
        streams.counters.late_scans,
    )


def test_stream_stats_of_a_site_never_scanned_are_empty() -> None:
    assert StreamStats() == SiteStreams().stats("nowhere.example", T0)


# ------------------------------------------------------------------------- response time


def test_p95_of_the_time_to_first_byte_is_over_the_last_window_of_answers() -> None:
    streams = SiteStreams(SiteStreamsConfig(ttfb_window=50))
    rng = random.Random(3)
    times = [round(rng.uniform(0.1, 0.9), 3) for _ in range(120)]
    for i, seconds in enumerate(times):
        streams.observe(scan(i, T0 + i * MINUTES_5, ttfb=seconds, page_checks=False))
    expected = statistics.quantiles(times[-50:], n=20, method="inclusive")[-1]
    now = T0 + timedelta(days=1)
    assert round(expected, 4) == streams.stats(HOST, now).ttfb_p95
    assert streams.stats(HOST, now + timedelta(days=30)).ttfb_p95 is None  # too old to count


def drift_events(
    series: list[float], start: int = 0, streams: SiteStreams | None = None
) -> list[tuple[int, SiteEvent]]:
    streams = streams or SiteStreams()
    found = []
    for i, seconds in enumerate(series, start):
        at = T0 + i * MINUTES_5
        for event in streams.observe(scan(i, at, ttfb=seconds, page_checks=False)):
            found.append((i, event))
    return found


def test_a_step_up_in_response_time_is_one_drift_event_per_episode() -> None:
    rng = random.Random(5)

    def level(mean: float, n: int) -> list[float]:
        return [max(0.01, rng.gauss(mean, mean / 10)) for _ in range(n)]

    series = level(0.3, 200) + level(1.5, 100) + level(0.3, 100) + level(1.6, 100)
    found = drift_events(series)
    assert [SiteEventKind.RESPONSE_TIME_DRIFT] * 2 == [e.kind for _, e in found]
    (first, up), (second, _) = found
    assert 200 <= first < 215, first  # within an hour and a quarter at the 5-minute cadence
    assert 400 <= second < 415, second  # re-armed by the way down in between
    assert ("low", 0.3, 1.5) == (
        up.severity,
        round(up.values["mean_before"], 1),
        round(up.values["mean_now"], 1),
    )


def test_a_noisy_but_steady_site_and_a_small_rise_are_not_drift() -> None:
    rng = random.Random(11)
    noisy = [rng.lognormvariate(-1.5, 0.5) for _ in range(1500)]
    small = [max(0.01, rng.gauss(0.20, 0.02)) for _ in range(300)] + [
        max(0.01, rng.gauss(0.26, 0.02)) for _ in range(300)
    ]
    assert ([], []) == (drift_events(noisy), drift_events(small))


# ------------------------------------------------------------------------- content drift


def test_the_structure_is_not_judged_while_warming_up_and_flagged_after() -> None:
    streams = SiteStreams(SiteStreamsConfig(content_warm_up=12))
    for i in range(11):
        streams.observe(scan(i, T0 + i * MINUTES_5))
    gutted = home_page(random.Random(0), gutted=True)
    warming = T0 + 11 * MINUTES_5
    streams.observe(scan(11, warming, body=gutted))  # learned: the 12th page of the warm-up
    assert (False, 0.0, 12) == (
        streams.stats(HOST, warming).content_anomaly,
        streams.stats(HOST, warming).anomaly_score,
        streams.stats(HOST, warming).evidence["content"]["pages_learned"],
    )
    last = warm(streams, 20, start=12)
    assert streams.stats(HOST, last).anomaly_score < 3.0  # the news churn is ordinary
    streams.observe(scan(40, last + MINUTES_5, body=gutted))
    stats = streams.stats(HOST, last + MINUTES_5)
    assert (True, 8.9) == (stats.content_anomaly, round(stats.anomaly_score, 1))
    assert [
        {"feature": "links", "value": 0.0, "typical": 55, "z": -8.9},
        {"feature": "page size (bytes)", "value": 90.0, "typical": 2693, "z": -8.9},
        {"feature": "scripts", "value": 0.0, "typical": 7, "z": -4.6},
    ] == [d | {"typical": round(d["typical"])} for d in stats.evidence["content"]["deviations"]]


def test_a_flagged_page_is_never_learned() -> None:
    streams = SiteStreams()
    last = warm(streams, 30)
    site = streams._sites[HOST]
    before = (site.content.learned, [m.get() for m in site.content._mean.values()])
    spam = home_page(random.Random(1), hidden_spam=40)
    for k in range(1, 10):
        streams.observe(scan(100 + k, last + k * MINUTES_5, body=spam))
    after = (site.content.learned, [m.get() for m in site.content._mean.values()])
    assert before == after
    score = streams.stats(HOST, last + timedelta(hours=1)).anomaly_score
    assert 40.0 == score  # still as unusual as the first time: nothing of it was learned


def test_a_lasting_change_becomes_the_new_normal() -> None:
    config = SiteStreamsConfig(rebaseline_after=timedelta(hours=2))
    streams = SiteStreams(config)
    last = warm(streams, 30)
    redesign = home_page(random.Random(0), gutted=True, title="Ministry of Health - new")
    flagged = []
    for k in range(1, 40):
        streams.observe(scan(100 + k, last + k * MINUTES_5, body=redesign))
        flagged.append(streams.stats(HOST, last + k * MINUTES_5).content_anomaly)
    assert [True] * 24 + [False] * 15 == flagged  # two hours of flags, then a fresh start
    assert 1 == streams._sites[HOST].content.rebaselines


# ---------------------------------------------------------------------- early warnings


def test_site_down_fires_on_the_second_failed_probe_once_per_episode() -> None:
    streams = SiteStreams()
    statuses = [200, None, 200, 503, None, 503, 404, 200, 500, 503]
    found = []
    for i, status in enumerate(statuses):
        at = T0 + i * MINUTES_5
        found.append(kinds(streams.observe(scan(i, at, status=status, page_checks=False))))
    assert [[], [], [], [], ["site_down"], [], [], [], [], ["site_down"]] == found
    again = SiteStreams()
    events = [
        again.observe(scan(i, T0 + i * MINUTES_5, status=s, page_checks=False))
        for i, s in enumerate([200, 503, None])
    ][-1]
    assert [
        SiteEvent(
            kind=SiteEventKind.SITE_DOWN,
            domain=HOST,
            at=T0 + 2 * MINUTES_5,
            severity="medium",
            title="Site down: the home page does not answer or fails",
            values={
                "down_since": utc(T0 + MINUTES_5),
                "failed_probes": 2,
                "status": None,
                "summary": "the home page did not answer",
                "availability_30d": round(1 / 3, 4),
            },
            event_ids=("scan-portal-000000000001", "scan-portal-000000000002"),
            first_seen=T0 + MINUTES_5,
            sensor="scheduler",
        )
    ] == events
    assert T0 + 8 * MINUTES_5 == streams.stats(HOST, T0 + timedelta(hours=1)).unreachable_since


def test_certificate_expiring_fires_once_per_certificate_and_once_more_when_expired() -> None:
    streams = SiteStreams()
    cert = T0 + timedelta(days=20)
    renewed = T0 + timedelta(days=110)
    day = timedelta(days=1)
    found = {}
    for d in (0, 6, 7, 8, 15, 19, 20, 21, 22, 23, 100, 101):
        at = T0 + d * day
        current = cert if d < 23 else renewed
        events = streams.observe(scan(d, at, not_after=current, page_checks=False))
        found[d] = [(e.severity, e.title, e.values["days_left"]) for e in events]
    assert {
        0: [],
        6: [],
        7: [("low", "Certificate expires in under 14 days", 13.0)],
        8: [],
        15: [],  # under 7 days now, but this certificate has been told about
        19: [],
        20: [],  # valid to the last second of not_after (RFC 5280)
        21: [("high", "Certificate expired", -1.0)],
        22: [],
        23: [],  # renewed: 87 days left
        100: [("low", "Certificate expires in under 14 days", 10.0)],
        101: [],
    } == found


def test_defacement_keywords_fire_at_once_and_a_structure_change_on_the_second_page() -> None:
    streams = SiteStreams()
    last = warm(streams, 30)
    defaced = home_page(random.Random(0), defaced=True)
    gutted = home_page(random.Random(0), gutted=True)
    pages = [defaced, defaced, None, gutted, gutted, gutted, None, gutted, None]
    found = []
    for k, body in enumerate(pages, 1):
        events = streams.observe(scan(100 + k, last + k * MINUTES_5, body=body))
        found.append([(e.severity, e.values["signal"]) for e in events])
    assert [
        [("high", "keywords and structure")],  # keywords: no need to wait
        [],
        [],  # back to normal: re-armed
        [],  # structure only: one page may be a glitch
        [("medium", "structure")],
        [],
        [],
        [],  # one odd page again: not yet
        [],
    ] == found


def test_a_defacement_event_says_why() -> None:
    streams = SiteStreams()
    last = warm(streams, 30)
    at = last + MINUTES_5
    (event,) = streams.observe(scan(100, at, body=home_page(random.Random(0), defaced=True)))
    assert (
        SiteEventKind.DEFACEMENT_SUSPECTED,
        "Defacement or injected content suspected",
        ("scan-portal-000000000100",),
        at,
        {
            "signal": "keywords and structure",
            "suspected": ["defacement"],
            "keywords": ["greetz", "hacked", "hacked by"],
            "threshold": 6.0,
        },
        ["links", "page size (bytes)", "defacement or spam keywords"],
    ) == (
        event.kind,
        event.title,
        event.event_ids,
        event.first_seen,
        {k: event.values[k] for k in ("signal", "suspected", "keywords", "threshold")},
        [d["feature"] for d in event.values["explanation"]],
    )


# ------------------------------------------------------------------ bounds and checkpoint


def test_sites_are_bounded_and_the_least_recently_scanned_goes() -> None:
    streams = SiteStreams(SiteStreamsConfig(max_sites=3))
    hosts = [f"site{n}.example.gov" for n in range(5)]
    for n, host in enumerate([*hosts[:3], hosts[0], *hosts[3:]]):
        streams.observe(scan(n, T0 + n * MINUTES_5, host=host, page_checks=False))
    assert (3, 2, [True, False, False, True, True]) == (
        len(streams),
        streams.counters.sites_evicted,
        [h in streams for h in hosts],
    )
    assert StreamStats() == streams.stats(hosts[1], T0 + timedelta(hours=1))


def test_a_restored_state_carries_on_exactly_as_the_original() -> None:
    original = SiteStreams()
    last = warm(original, 30)
    original.observe(scan(90, last + MINUTES_5, status=None, ttfb=None))
    restored = loads(dumps(original), SiteStreams)
    now = last + timedelta(hours=1)
    assert original.stats(HOST, now) == restored.stats(HOST, now)
    following = [
        scan(91, last + 2 * MINUTES_5, status=None, ttfb=None),
        scan(92, last + 3 * MINUTES_5, body=home_page(random.Random(0), defaced=True)),
        scan(93, last + 4 * MINUTES_5, certificate_days=3),
    ]
    expected = original.observe_all(following)
    assert ["site_down", "defacement_suspected", "certificate_expiring"] == kinds(expected)
    assert expected == restored.observe_all(following)
    assert original.health() == restored.health()


def test_a_foreign_state_is_refused() -> None:
    with pytest.raises(StateError, match="holds a AnomalyDetectors, not a SiteStreams"):
        loads(dumps(AnomalyDetectors()), SiteStreams)
