"""Threat-intel lists: tolerant loading with every bad line's file:line, fast matching of
addresses, networks and domain suffixes, and detections about the internal side."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules.engine import Detection
from rules.errors import RuleFileError, RuleProblem
from rules.intel import (
    IndicatorKind,
    IntelFingerprint,
    IntelMatcher,
    intel_fingerprint,
    load_intel,
    parse_intel,
)
from tests.conftest import LAB
from tests.sensors.test_flows import meter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# What a day's exports look like when concatenated by hand: a feed header, Spamhaus DROP
# style networks with trailing comments, a Feodo-style address list, URLhaus URLs, a hosts
# file, Adblock rules, IPv6, host:port IOCs (ThreatFox), CRLF line ends and some junk.
FEED = (
    "\ufeff# Example combined feed\r\n"
    "# Last-Modified: 2026-01-01\r\n"
    "\r\n"
    "198.51.100.0/24 ; SBL000001\r\n"
    "203.0.113.7    # Dridex C2\r\n"
    "203.0.113.7\r\n"  # a duplicate keeps line 5
    "http://c2.evil.example/gate.php?id=1\r\n"
    "0.0.0.0 tracker.bad.example\r\n"
    "||ads.bad.example^\r\n"
    "*.wild.example\r\n"
    "2001:db8:bad::/48\r\n"
    "[2001:db8::66]:8443\r\n"
    "192.0.2.10:4444\r\n"
    "; a DROP-style comment\r\n"
    "! an Adblock comment\r\n"
    "300.1.2.3\r\n"
    "10.0.0.0/4\r\n"
    "localhost\r\n"
    "http:///nohost\r\n"
    "127.0.0.1\r\n"
    "bücher.example\r\n"
)


def flow(**fields: Any) -> dict[str, Any]:
    return {
        "event.id": "e1",
        "event.start": (T0 + timedelta(seconds=5)).isoformat(),
        "source.ip": "10.0.0.5",
        "destination.ip": "10.0.0.9",
        **fields,
    }


def write(tmp_path: Path, text: str, name: str = "feed.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_feed_export_loads_and_each_bad_line_is_a_problem_with_its_line(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, FEED)
    intel = load_intel(path)
    assert (
        {IndicatorKind.ADDRESS: 3, IndicatorKind.NETWORK: 2, IndicatorKind.DOMAIN: 5},
        1,
        [
            RuleProblem(path, 16, "'300.1.2.3' is not an IP address, network or domain name"),
            RuleProblem(path, 17, "'10.0.0.0/4' is broader than /8: refused"),
            RuleProblem(path, 18, "'localhost' is not an IP address, network or domain name"),
            RuleProblem(path, 19, "'http:///nohost' is a URL without a host"),
            RuleProblem(path, 20, "'127.0.0.1' is not an address a flow goes to"),
        ],
        0,
    ) == (intel.counts, intel.duplicates, list(intel.problems), intel.problems_dropped)
    found = {
        text: (hit.value, hit.kind, hit.line) if hit else None
        for text, hit in (
            ("198.51.100.77", intel.lookup_address("198.51.100.77")),
            ("203.0.113.7", intel.lookup_address("203.0.113.7")),
            ("192.0.2.10", intel.lookup_address("192.0.2.10")),
            ("2001:db8::66", intel.lookup_address("2001:db8::66")),
            ("c2.evil.example", intel.lookup_name("c2.evil.example")),
            ("tracker.bad.example", intel.lookup_name("tracker.bad.example")),
            ("ads.bad.example", intel.lookup_name("ads.bad.example")),
            ("x.wild.example", intel.lookup_name("x.wild.example")),
            ("xn--bcher-kva.example", intel.lookup_name("xn--bcher-kva.example")),
            ("bad.example", intel.lookup_name("bad.example")),
        )
    }
    assert {
        "198.51.100.77": ("198.51.100.0/24", IndicatorKind.NETWORK, 4),
        "203.0.113.7": ("203.0.113.7", IndicatorKind.ADDRESS, 5),
        "192.0.2.10": ("192.0.2.10", IndicatorKind.ADDRESS, 13),
        "2001:db8::66": ("2001:db8::66", IndicatorKind.ADDRESS, 12),
        "c2.evil.example": ("c2.evil.example", IndicatorKind.DOMAIN, 7),
        "tracker.bad.example": ("tracker.bad.example", IndicatorKind.DOMAIN, 8),
        "ads.bad.example": ("ads.bad.example", IndicatorKind.DOMAIN, 9),
        "x.wild.example": ("wild.example", IndicatorKind.DOMAIN, 10),
        "xn--bcher-kva.example": ("xn--bcher-kva.example", IndicatorKind.DOMAIN, 21),
        "bad.example": None,  # only names under it are listed
    } == found


def test_a_csv_export_takes_the_first_column_and_skips_its_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '"ioc","first_seen","malware"\n'
        '"203.0.113.50:443","2026-01-01 00:00:00","Cobalt Strike"\n'
        '"https://dl.evil.example/x.exe","2026-01-01 00:00:00","loader"\n'
        '"n/a","2026-01-01 00:00:00","?"\n',
        "threatfox.csv",
    )
    intel = load_intel(path)
    assert (
        2,
        [RuleProblem(path, 4, "'n/a' is not an IP network")],
        "203.0.113.50",
        "dl.evil.example",
    ) == (
        len(intel),
        list(intel.problems),
        getattr(intel.lookup_address("203.0.113.50"), "value", None),
        getattr(intel.lookup_name("dl.evil.example"), "value", None),
    )


def test_domains_match_by_whole_labels_from_the_right() -> None:
    intel = parse_intel("evil.example\nsub.other.example\n", Path("l.txt"))
    names = (
        "evil.example",
        "a.b.evil.example",
        "A.EVIL.EXAMPLE.",
        "notevil.example",
        "evil.example.org",
        "other.example",
        "x.sub.other.example",
        "example",
        "",
    )
    assert [True, True, True, False, False, False, True, False, False] == [
        intel.lookup_name(name) is not None for name in names
    ]


def test_networks_match_the_narrowest_first_in_both_ip_versions() -> None:
    intel = parse_intel(
        "198.51.0.0/16\n198.51.100.0/24\n198.51.100.9\n2001:db8::/32\n2001:db8:0:1::/64\n",
        Path("l.txt"),
    )
    addresses = (
        "198.51.100.9",
        "198.51.100.10",
        "198.51.7.1",
        "198.52.0.1",
        "2001:db8:0:1::5",
        "2001:DB8:0:0:0:0:0:5",  # another spelling of 2001:db8::5
        "2001:db9::1",
        "not an address",
    )
    assert [
        ("198.51.100.9", 3),
        ("198.51.100.0/24", 2),
        ("198.51.0.0/16", 1),
        None,
        ("2001:db8:0:1::/64", 5),
        ("2001:db8::/32", 4),
        None,
        None,
    ] == [
        (hit.value, hit.line) if (hit := intel.lookup_address(a)) is not None else None
        for a in addresses
    ]


def test_the_detection_is_about_the_internal_side() -> None:
    intel = parse_intel("203.0.113.7\nevil.example\n2001:db8:bad::/48\n", Path("l.txt"))
    matcher = IntelMatcher(intel)
    outbound = matcher.evaluate(flow(**{"destination.ip": "203.0.113.7"}))
    inbound = matcher.evaluate(
        flow(**{"source.ip": "203.0.113.7", "destination.ip": "10.0.0.80", "event.id": "e2"})
    )
    lookup = matcher.evaluate(
        flow(**{"destination.ip": "10.0.0.53", "dns.question.name": "x.evil.example"})
    )
    ipv6 = matcher.evaluate(flow(**{"source.ip": "fd00::5", "destination.ip": "2001:db8:bad::1"}))

    def expected(entity: str, values: dict[str, Any], event_id: str = "e1") -> Detection:
        return Detection(
            source="rule:threat-intel",
            rule_id="threat-intel",
            title="Connection to an address on the threat-intel list",
            level="high",
            tags=("attack.command-and-control", "attack.t1071"),
            entity=entity,
            first_seen=T0 + timedelta(seconds=5),
            last_seen=T0 + timedelta(seconds=5),
            count=1,
            event_ids=(event_id,),
            values=values,
        )

    def values(indicator: str, kind: str, name: str, observed: str, line: int) -> dict[str, Any]:
        return {
            "indicator": indicator,
            "kind": kind,
            "field": name,
            "observed": observed,
            "list": f"l.txt:{line}",
        }

    assert [
        expected("10.0.0.5", values("203.0.113.7", "address", "destination.ip", "203.0.113.7", 1)),
        expected(
            "10.0.0.80", values("203.0.113.7", "address", "source.ip", "203.0.113.7", 1), "e2"
        ),
        expected(
            "10.0.0.5",
            values("evil.example", "domain", "dns.question.name", "x.evil.example", 2),
        ),
        expected(
            "fd00::5",
            values("2001:db8:bad::/48", "network", "destination.ip", "2001:db8:bad::1", 3),
        ),
    ] == [outbound, inbound, lookup, ipv6]


def test_every_field_that_hits_is_evidence_the_destination_side_first() -> None:
    intel = parse_intel("203.0.113.7\nevil.example\n", Path("l.txt"))
    detection = IntelMatcher(intel).evaluate(
        flow(**{"destination.ip": "203.0.113.7", "tls.client.server_name": "cdn.evil.example"})
    )
    assert detection is not None
    assert ("10.0.0.5", ["destination.ip", "tls.client.server_name"]) == (
        detection.entity,
        [detection.values["field"]] + [m["field"] for m in detection.values["more"]],
    )


def test_private_traffic_and_unlisted_names_do_not_hit() -> None:
    intel = parse_intel("203.0.113.0/24\nevil.example\n2001:db8::/32\n", Path("l.txt"))
    matcher = IntelMatcher(intel)
    events = [
        flow(),
        flow(**{"source.ip": "192.168.1.10", "destination.ip": "172.16.0.1"}),
        flow(**{"source.ip": "fd00::1", "destination.ip": "fd00::2"}),
        flow(**{"dns.question.name": "www.example.org", "url.domain": "notevil.example"}),
        flow(**{"destination.ip": "203.0.114.1", "tls.client.server_name": "evil.example.org"}),
    ]
    assert ([], 5) == (matcher.evaluate_all(events), matcher.counters.events)


def test_a_hit_without_an_event_time_is_counted_not_raised() -> None:
    matcher = IntelMatcher(parse_intel("203.0.113.7\n", Path("l.txt")))
    event = flow(**{"destination.ip": "203.0.113.7", "event.start": "yesterday"})
    assert (None, 1) == (matcher.evaluate(event), matcher.counters.events_without_time)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read: [Errno 2] No such file or directory"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "binary (compressed?), not a text list"),
        (b"203.0.113.7\n" * 10, "larger than 100 bytes"),
    ],
)
def test_a_list_that_cannot_be_used_at_all_is_an_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "feed.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RuleFileError) as caught:
        load_intel(path, max_bytes=100)
    assert (path, None) == (caught.value.problem.path, caught.value.problem.line)
    assert caught.value.problem.message.startswith(message)


def test_the_list_is_bounded_and_so_are_its_problems(tmp_path: Path) -> None:
    lines = [f"203.0.113.{i}" for i in range(1, 6)] + ["junk"] * 150
    path = write(tmp_path, "\n".join(lines))
    intel = load_intel(path, max_indicators=3)
    assert (
        3,
        [RuleProblem(path, 4, "more than 3 indicators: the rest are ignored")],
        0,
    ) == (len(intel), list(intel.problems), intel.problems_dropped)
    intel = load_intel(path)
    assert (5, 100, 50) == (len(intel), len(intel.problems), intel.problems_dropped)


def test_the_fingerprint_says_when_to_reload(tmp_path: Path) -> None:
    path = write(tmp_path, "203.0.113.7\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    intel = load_intel(path)
    assert IntelFingerprint(str(path), 12, 1_000_000_000) == intel.fingerprint
    assert intel.fingerprint == intel_fingerprint(path)
    path.write_text("203.0.113.8\n", encoding="utf-8")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert intel.fingerprint != intel_fingerprint(path)
    path.unlink()
    assert intel_fingerprint(path) is None


def test_lab_traffic_hits_by_address_network_and_name() -> None:
    """Real flows from the traffic lab: curl to the server over IPv4 and IPv6, and dig
    looking up names under lab.test at the server's resolver."""
    intel = parse_intel("10.203.0.2\nfd77:203::2/127\nhost3.lab.test\n", Path("lab.txt"))
    matcher = IntelMatcher(intel)
    web = [r for r in meter(LAB / "browse.pcap")[0] if r["network.transport"] == "tcp"]
    browse = matcher.evaluate_all(web)
    dns = matcher.evaluate_all(meter(LAB / "dns.pcap")[0])
    assert [("10.203.0.10", "10.203.0.2")] * 5 + [("fd77:203::10", "fd77:203::2/127")] * 2 == (
        sorted((d.entity, d.values["indicator"]) for d in browse)
    )
    # Every lookup goes to the listed resolver address; host3's name is evidence as well.
    assert [
        ["destination.ip"],
        ["destination.ip"],
        ["destination.ip"],
        ["destination.ip", "dns.question.name"],
        ["destination.ip"],
    ] == [
        [d.values["field"]] + [m["field"] for m in d.values.get("more", [])]
        for d in sorted(dns, key=lambda d: d.first_seen)
    ]
