"""The DNS/e-mail area against a real authoritative DNS server on loopback (dnslib), serving
test zones: SPF, DMARC, CAA, name servers and DNSSEC (zones signed in the test), and the pure
evaluators on constructed snapshots."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dns.dnssec
import dns.name
import dns.rrset
import pytest

from sensors.scanner import dnsmail
from sensors.scanner.context import ScanContext
from sensors.scanner.dnsmail import (
    CHECKS,
    DnsSnapshot,
    evaluate_caa,
    evaluate_dmarc,
    evaluate_dnssec,
    evaluate_nameservers,
    evaluate_spf,
    fetch_dns,
)
from sensors.scanner.dnsmail_caa import CaaRecord, CaaResult
from sensors.scanner.dnsmail_dmarc import DmarcResult, parse_dmarc
from sensors.scanner.dnsmail_dnssec import DnssecResult, DnssecStatus
from sensors.scanner.dnsmail_ns import NameServer, NameServers, ServerAddress
from sensors.scanner.dnsmail_sigs import SignatureError, verify_rrset
from sensors.scanner.dnsmail_spf import SpfNode, SpfResult, SpfTerm, parse_spf
from sensors.scanner.registry import AreaSpec
from sensors.scanner.result import Area, CheckResult, CheckStatus
from sensors.scanner.runner import scan_host
from sensors.scanner.target import Target, make_resolver
from tests.scanner.conftest import loopback_policy
from tests.scanner.dnszone import ZoneKey, ZoneServer, sign_zone

# Every address the server listens on: a and c share 127.0.0.0/24, b is in 127.0.1.0/24;
# lame answers REFUSED; dead (127.0.3.1) has no server at all.
LISTEN = ("127.0.0.1", "127.0.0.2", "127.0.1.1", "127.0.4.1")
LAME = "127.0.4.1"
NS_ZONE = """$ORIGIN ns.test.
$TTL 300
@ SOA a.ns.test. hostmaster.ns.test. 1 3600 600 86400 300
@ NS a.ns.test.
a A 127.0.0.1
b A 127.0.1.1
c A 127.0.0.2
dead A 127.0.3.1
lame A 127.0.4.1
"""
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def zone(origin: str, body: str = "", ns: tuple[str, ...] = ("a", "b")) -> str:
    """Zone-file text for ``origin`` with an SOA, NS records at ``<x>.ns.test`` and ``body``."""
    lines = [
        f"$ORIGIN {origin}.",
        "$TTL 300",
        f"@ SOA a.ns.test. hostmaster.{origin}. 1 3600 600 86400 300",
    ]
    lines += [f"@ NS {n}.ns.test." for n in ns]
    return "\n".join(lines) + "\n" + body + "\n"


def spf_chain() -> str:
    """11 nested includes: one more DNS lookup than RFC 7208 allows."""
    lines = ['@ TXT "v=spf1 include:i1.spf-many.test -all"']
    lines += [f'i{n} TXT "v=spf1 include:i{n + 1}.spf-many.test -all"' for n in range(1, 11)]
    lines.append('i11 TXT "v=spf1 -all"')
    return "\n".join(lines)


PLAIN_ZONES = [
    zone("test", ns=("a",)),
    NS_ZONE,
    zone("spf-fail.test", '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"\n@ TXT "other text"'),
    zone(
        "spf-soft.test",
        '@ TXT "v=spf1 include:_spf.spf-soft.test ~all"\n'
        '_spf TXT "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"',
    ),
    zone("spf-neutral.test", '@ TXT "v=spf1 ip4:192.0.2.1 ?all"'),
    zone("spf-noall.test", '@ TXT "v=spf1 ip4:192.0.2.1"'),
    zone("spf-plus.test", '@ TXT "v=spf1 " "+all"'),
    zone("spf-none.test", '@ TXT "google-site-verification=abc"'),
    zone("spf-many.test", spf_chain()),
    zone("spf-two.test", '@ TXT "v=spf1 -all"\n@ TXT "v=spf1 mx -all"'),
    zone("spf-syntax.test", '@ TXT "v=spf1 ip4:192.0.2.300 -all"'),
    zone(
        "spf-void.test",
        '@ TXT "v=spf1 a:x1.spf-void.test a:x2.spf-void.test exists:x3.spf-void.test -all"',
    ),
    zone(
        "spf-redirect.test",
        '@ TXT "v=spf1 redirect=_spf.spf-redirect.test"\n'
        '_spf TXT "v=spf1 mx -all"\n'
        "_spf MX 10 mail.spf-redirect.test.\nmail A 192.0.2.25",
    ),
    zone("spf-noinclude.test", '@ TXT "v=spf1 include:nothing.spf-noinclude.test -all"'),
    zone("dmarc-reject.test", '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:d@dmarc-reject.test"'),
    zone("dmarc-quarantine.test", '_dmarc TXT "v=DMARC1; p=quarantine"'),
    zone("dmarc-none-rua.test", '_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@example.org"'),
    zone("dmarc-none.test", '_dmarc TXT "v=DMARC1; p=none"'),
    zone("dmarc-missing.test"),
    zone("dmarc-sub.test", '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine"\nwww A 127.0.0.1'),
    zone("dmarc-pct.test", '_dmarc TXT "v=DMARC1; p=reject; pct=25"'),
    zone("dmarc-bad.test", '_dmarc TXT "v=DMARC1; p=block"'),
    zone(
        "caa.test",
        '@ CAA 0 issue "letsencrypt.org"\n@ CAA 0 iodef "mailto:s@caa.test"\n'
        'cdn CAA 0 issue "letsencrypt.org"',
    ),
    zone("caa-own.test", '@ CAA 0 issue "letsencrypt.org"\nwww CAA 0 issue "pki.goog"'),
    zone("caa-none.test", "www A 127.0.0.1"),
    zone("caa-iodef.test", '@ CAA 0 iodef "mailto:s@caa-iodef.test"'),
    zone("caa-alias.test", "www CNAME cdn.caa.test."),
    zone("ns-one.test", ns=("a", "c")),
    zone("ns-dead.test", ns=("a", "dead")),
    zone("ns-lame.test", ns=("lame",)),
    zone("ns-unreached.test", ns=("dead",)),
    zone("ns-noaddr.test", ns=("ghost",)),
]


class Keys:
    """The DNSSEC test keys: the sec. parent (the trust anchor) and its children."""

    def __init__(self) -> None:
        self.parent = ZoneKey.generate()
        self.good = ZoneKey.generate()
        self.bad = ZoneKey.generate()
        self.old = ZoneKey.generate()
        self.anchored = ZoneKey.generate()
        self.stranger = ZoneKey.generate()


def signed_zones(keys: Keys) -> list[str]:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    children = {
        "good": sign_zone(zone("good.sec", "www A 127.0.0.1"), keys.good),
        "bad": sign_zone(zone("bad.sec"), keys.bad, tamper="SOA"),
        "old": sign_zone(
            zone("old.sec"),
            keys.old,
            inception=long_ago,
            expiration=long_ago + timedelta(days=7),
        ),
    }
    delegations = "\n".join(
        f"{name} NS a.ns.test.\n{name} DS {key.ds_rdata(f'{name}.sec.')}"
        for name, key in (("good", keys.good), ("bad", keys.bad), ("old", keys.old))
    )
    parent = sign_zone(zone("sec", f"{delegations}\nplain NS a.ns.test."), keys.parent)
    return [
        parent,
        *children.values(),
        zone("plain.sec"),
        sign_zone(zone("anchored.test"), keys.anchored),
    ]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def server(keys: Keys) -> Iterator[ZoneServer]:
    started = ZoneServer(
        [*PLAIN_ZONES, *signed_zones(keys)], addresses=LISTEN, refuse_on=(LAME,)
    ).start()
    yield started
    started.stop()


def scan(server: ZoneServer, host: str, anchors: tuple[str, ...] = ()) -> DnsSnapshot:
    policy = loopback_policy(
        nameservers=(f"127.0.0.1:{server.port}",),
        dns_port=server.port,
        trust_anchors=anchors,
        connect_timeout=0.5,
        read_timeout=1.0,
    )

    async def go() -> DnsSnapshot:
        target = Target(host, (ipaddress.ip_address("127.0.0.1"),))
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await fetch_dns(ctx)

    return asyncio.run(go())


def brief(result: CheckResult, *keys: str) -> tuple[str, dict[str, Any]]:
    return result.status.value, {k: result.evidence[k] for k in keys}


# --- SPF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("spf-fail.test", ("pass", {"all": "-", "lookups": 0, "permerror": None})),
        ("www.spf-soft.test", ("pass", {"all": "~", "lookups": 1, "permerror": None})),
        ("spf-neutral.test", ("warn", {"all": "?", "lookups": 0, "permerror": None})),
        ("spf-noall.test", ("warn", {"all": None, "lookups": 0, "permerror": None})),
        ("spf-plus.test", ("fail", {"all": "+", "lookups": 0, "permerror": None})),
        ("spf-none.test", ("fail", {"all": None, "lookups": 0, "permerror": None})),
        (
            "spf-many.test",
            (
                "fail",
                {
                    "all": "-",
                    "lookups": 11,
                    "permerror": "more than 10 DNS lookups (at include:i11.spf-many.test)",
                },
            ),
        ),
        (
            "spf-two.test",
            ("fail", {"all": None, "lookups": 0, "permerror": "2 SPF records at spf-two.test"}),
        ),
        (
            "spf-syntax.test",
            (
                "fail",
                {"all": None, "lookups": 0, "permerror": "'ip4:192.0.2.300': not an IPv4 network"},
            ),
        ),
        (
            "spf-void.test",
            ("fail", {"all": "-", "lookups": 3, "permerror": "more than 2 void lookups"}),
        ),
        ("spf-redirect.test", ("pass", {"all": "-", "lookups": 2, "permerror": None})),
        (
            "spf-noinclude.test",
            (
                "fail",
                {
                    "all": "-",
                    "lookups": 1,
                    "permerror": "include:nothing.spf-noinclude.test has no SPF record",
                },
            ),
        ),
    ],
)
def test_spf(server: ZoneServer, host: str, expected: tuple[str, dict[str, Any]]) -> None:
    assert expected == brief(evaluate_spf(scan(server, host)), "all", "lookups", "permerror")


def test_spf_plus_all_caps_at_b_and_shows_the_tree(server: ZoneServer) -> None:
    result = evaluate_spf(scan(server, "spf-plus.test"))
    assert "B" == result.evidence["cap"]
    soft = evaluate_spf(scan(server, "www.spf-soft.test"))
    assert [
        "spf-soft.test (top): v=spf1 include:_spf.spf-soft.test ~all",
        "  _spf.spf-soft.test (include): v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all",
    ] == soft.evidence["tree"]
    assert ["include:_spf.spf-soft.test", "~all"] == soft.evidence["mechanisms"]


def test_spf_parse() -> None:
    assert (
        (
            SpfTerm("-", "a", "mail.example.com/24"),
            SpfTerm("+", "mx", "/26"),
            SpfTerm("~", "ip6", "2001:db8::/32"),
            SpfTerm("+", "redirect", "_spf.example.com", modifier=True),
        ),
        None,
    ) == parse_spf(
        "v=spf1 -a:mail.example.com/24 mx/26 ~ip6:2001:db8::/32 redirect=_spf.example.com"
    )
    assert "'foo': unknown mechanism" == parse_spf("v=spf1 foo -all")[1]
    assert "redirect= appears twice" == parse_spf("v=spf1 redirect=a.example redirect=b.example")[1]
    assert "'include:': needs :domain" == parse_spf("v=spf1 include: -all")[1]
    assert None is parse_spf("v=spf1 exists:%{i}._spf.%{d} unknown=x -all")[1]
    assert "'exists:%{q}.example': needs :domain" == parse_spf("v=spf1 exists:%{q}.example")[1]


# --- DMARC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("dmarc-reject.test", ("pass", {"policy": "reject", "inherited": False})),
        ("dmarc-quarantine.test", ("pass", {"policy": "quarantine", "inherited": False})),
        ("dmarc-none-rua.test", ("warn", {"policy": "none", "inherited": False})),
        ("dmarc-none.test", ("fail", {"policy": "none", "inherited": False})),
        ("dmarc-missing.test", ("fail", {"policy": None, "inherited": False})),
        ("www.dmarc-sub.test", ("pass", {"policy": "quarantine", "inherited": True})),
        ("dmarc-pct.test", ("warn", {"policy": "reject", "inherited": False})),
        ("dmarc-bad.test", ("fail", {"policy": None, "inherited": False})),
    ],
)
def test_dmarc(server: ZoneServer, host: str, expected: tuple[str, dict[str, Any]]) -> None:
    assert expected == brief(evaluate_dmarc(scan(server, host)), "policy", "inherited")


def test_dmarc_inherited_evidence(server: ZoneServer) -> None:
    result = evaluate_dmarc(scan(server, "www.dmarc-sub.test"))
    assert {
        "host": "www.dmarc-sub.test",
        "found_at": "_dmarc.dmarc-sub.test",
        "record": "v=DMARC1; p=reject; sp=quarantine",
        "records": 1,
        "policy": "quarantine",
        "p": "reject",
        "sp": "quarantine",
        "rua": [],
        "pct": 100,
        "inherited": True,
        "problem": None,
    } == result.evidence


def test_dmarc_parse() -> None:
    record = parse_dmarc("v=DMARC1;p=quarantine;sp=none;rua=mailto:a@x.example,mailto:b@x.example")
    assert (("mailto:a@x.example", "mailto:b@x.example"), "quarantine", "none", None) == (
        record.rua,
        record.policy,
        record.subdomain_policy,
        record.problem,
    )
    # RFC 7489 §6.6.3: an invalid p with a valid rua is taken as p=none.
    assert ("none", None) == (
        parse_dmarc("v=DMARC1; p=bogus; rua=mailto:a@x.example").policy,
        parse_dmarc("v=DMARC1; p=bogus; rua=mailto:a@x.example").problem,
    )
    assert "the record does not start with v=DMARC1" == parse_dmarc("p=reject; v=DMARC1").problem
    assert (
        "pct=150 is not a number from 0 to 100"
        == parse_dmarc("v=DMARC1; p=reject; pct=150").problem
    )


# --- CAA ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("caa.test", ("pass", {"found_at": "caa.test", "issue": ["letsencrypt.org"]})),
        ("www.caa.test", ("pass", {"found_at": "caa.test", "issue": ["letsencrypt.org"]})),
        ("www.caa-own.test", ("pass", {"found_at": "www.caa-own.test", "issue": ["pki.goog"]})),
        ("www.caa-none.test", ("fail", {"found_at": None, "issue": []})),
        ("caa-iodef.test", ("fail", {"found_at": "caa-iodef.test", "issue": []})),
        # an alias gets its target's records (the resolver follows the CNAME)
        (
            "www.caa-alias.test",
            ("pass", {"found_at": "cdn.caa.test", "issue": ["letsencrypt.org"]}),
        ),
    ],
)
def test_caa(server: ZoneServer, host: str, expected: tuple[str, dict[str, Any]]) -> None:
    assert expected == brief(evaluate_caa(scan(server, host)), "found_at", "issue")


def test_caa_climbs_to_the_top_level_domain(server: ZoneServer) -> None:
    result = evaluate_caa(scan(server, "www.caa-none.test"))
    assert ["www.caa-none.test", "caa-none.test", "test"] == result.evidence["asked"]


# --- name servers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            "spf-fail.test",
            (
                "pass",
                {
                    "responsive": 2,
                    "networks": ["127.0.0.0/24", "127.0.1.0/24"],
                    "servers": [
                        "a.ns.test: 127.0.0.1 authoritative",
                        "b.ns.test: 127.0.1.1 authoritative",
                    ],
                },
            ),
        ),
        (
            "ns-one.test",
            (
                "warn",
                {
                    "responsive": 2,
                    "networks": ["127.0.0.0/24"],
                    "servers": [
                        "a.ns.test: 127.0.0.1 authoritative",
                        "c.ns.test: 127.0.0.2 authoritative",
                    ],
                },
            ),
        ),
        (
            "ns-dead.test",
            (
                "warn",
                {
                    "responsive": 1,
                    "networks": ["127.0.0.0/24"],
                    "servers": [
                        "a.ns.test: 127.0.0.1 authoritative",
                        "dead.ns.test: 127.0.3.1 no answer",
                    ],
                },
            ),
        ),
        (
            "ns-lame.test",
            (
                "fail",
                {"responsive": 0, "networks": [], "servers": ["lame.ns.test: 127.0.4.1 REFUSED"]},
            ),
        ),
        (
            "ns-unreached.test",
            (
                "error",
                {"responsive": 0, "networks": [], "servers": ["dead.ns.test: 127.0.3.1 no answer"]},
            ),
        ),
        (
            "ns-noaddr.test",
            (
                "fail",
                {
                    "responsive": 0,
                    "networks": [],
                    "servers": ["ghost.ns.test: the name has no address"],
                },
            ),
        ),
    ],
)
def test_nameservers(server: ZoneServer, host: str, expected: tuple[str, dict[str, Any]]) -> None:
    result = evaluate_nameservers(scan(server, host))
    assert expected == brief(result, "responsive", "networks", "servers")


# --- DNSSEC ---------------------------------------------------------------------------------


def test_dnssec_secure_along_the_chain(server: ZoneServer, keys: Keys) -> None:
    snapshot = scan(server, "www.good.sec", (keys.parent.ds("sec."),))
    parent_tag, good_tag = keys.parent.dnskey, keys.good.dnskey
    tags = [dns.dnssec.key_id(parent_tag), dns.dnssec.key_id(good_tag)]
    assert (
        DnssecResult(
            "good.sec",
            DnssecStatus.SECURE,
            "sec.",
            (
                f"sec. DNSKEY signed by a key matching the trust anchor [{tags[0]}]",
                "good.sec. DS signed by sec.",
                f"good.sec. DNSKEY signed by a key matching its DS [{tags[1]}]",
                "good.sec. SOA signed by good.sec.",
            ),
        )
        == snapshot.dnssec
    )
    assert CheckStatus.PASS == evaluate_dnssec(snapshot).status


def test_dnssec_secure_with_the_zone_as_anchor(server: ZoneServer, keys: Keys) -> None:
    result = evaluate_dnssec(scan(server, "anchored.test", (keys.anchored.ds("anchored.test."),)))
    assert ("pass", {"status": "secure", "anchor": "anchored.test."}) == brief(
        result, "status", "anchor"
    )


def test_dnssec_bogus_signature(server: ZoneServer, keys: Keys) -> None:
    result = evaluate_dnssec(scan(server, "bad.sec", (keys.parent.ds("sec."),)))
    tag = dns.dnssec.key_id(keys.bad.dnskey)
    assert (
        "fail",
        {
            "status": "bogus",
            "link": f"bad.sec. SOA: the signature (key {tag}) does not verify",
            "cap": "C",
        },
    ) == brief(result, "status", "link", "cap")


def test_dnssec_bogus_when_expired(server: ZoneServer, keys: Keys) -> None:
    result = evaluate_dnssec(scan(server, "old.sec", (keys.parent.ds("sec."),)))
    assert ("fail", "bogus") == (result.status.value, result.evidence["status"])
    assert "expired" in result.evidence["link"]
    assert result.evidence["link"].startswith("old.sec. DNSKEY: the signature")


def test_dnssec_bogus_when_no_key_matches_the_anchor(server: ZoneServer, keys: Keys) -> None:
    result = evaluate_dnssec(scan(server, "anchored.test", (keys.stranger.ds("anchored.test."),)))
    tag = dns.dnssec.key_id(keys.stranger.dnskey)
    assert (
        "fail",
        {"status": "bogus", "link": f"no DNSKEY of anchored.test. matches its DS [{tag}]"},
    ) == brief(result, "status", "link")


def test_dnssec_insecure_delegation(server: ZoneServer, keys: Keys) -> None:
    result = evaluate_dnssec(scan(server, "plain.sec", (keys.parent.ds("sec."),)))
    assert (
        "fail",
        {"status": "insecure", "proof": "nsec", "link": "sec. proves plain.sec. has no DS (NSEC)"},
    ) == brief(result, "status", "proof", "link")


def test_dnssec_indeterminate_without_an_answer_from_the_root(server: ZoneServer) -> None:
    # The test server serves no root zone: the chain cannot start, which is not a failure.
    result = evaluate_dnssec(scan(server, "spf-fail.test"))
    assert ("error", "indeterminate", ".") == (
        result.status.value,
        result.evidence["status"],
        result.evidence["anchor"],
    )


# --- the whole area -------------------------------------------------------------------------


def test_unknown_zone_is_could_not_check_everywhere(server: ZoneServer) -> None:
    snapshot = scan(server, "www.elsewhere.example")
    assert snapshot.zone is None
    assert ["error"] * 5 == [check(snapshot).status.value for _, check in CHECKS]


def test_runs_as_an_area_of_a_scan(server: ZoneServer, keys: Keys) -> None:
    policy = loopback_policy(
        nameservers=(f"127.0.0.1:{server.port}",),
        dns_port=server.port,
        trust_anchors=(keys.parent.ds("sec."),),
        connect_timeout=0.5,
        read_timeout=1.0,
    )
    areas = (AreaSpec(Area.DNS, fetch_dns, CHECKS),)
    report = asyncio.run(scan_host("www.good.sec", policy, areas=areas))
    assert [
        ("dns.spf", "fail"),  # good.sec publishes no SPF
        ("dns.dmarc", "fail"),
        ("dns.dnssec", "pass"),
        ("dns.caa", "fail"),
        ("dns.nameservers", "pass"),
    ] == [(c.id, c.status.value) for c in report.checks]


def test_checks_in_report_order() -> None:
    assert ("dns.spf", "dns.dmarc", "dns.dnssec", "dns.caa", "dns.nameservers") == tuple(
        check_id for check_id, _ in CHECKS
    )


def test_ip_literal_is_not_applicable() -> None:
    snapshot = DnsSnapshot("192.0.2.1", NOW)
    assert [
        CheckResult(
            check_id,
            Area.DNS,
            CheckStatus.NOT_APPLICABLE,
            "an IP address has no DNS zone to check",
            {"host": "192.0.2.1"},
        )
        for check_id, _ in CHECKS
    ] == [check(snapshot) for _, check in CHECKS]


# --- pure evaluators on constructed snapshots ------------------------------------------------


def snap(**parts: Any) -> DnsSnapshot:
    return DnsSnapshot("www.example.com", NOW, "example.com", **parts)


def test_evaluate_spf_plus_all() -> None:
    tree = SpfNode("example.com", "top", "v=spf1 +all", (SpfTerm("+", "all"),))
    spf = SpfResult("example.com", ("v=spf1 +all",), tree, all_qualifier="+")
    assert CheckResult(
        "dns.spf",
        Area.DNS,
        CheckStatus.FAIL,
        "the SPF record of example.com ends in +all: any server may send its mail",
        {
            "domain": "example.com",
            "record": "v=spf1 +all",
            "records": 1,
            "lookups": 0,
            "void_lookups": 0,
            "all": "+",
            "mechanisms": ["all"],
            "tree": ["example.com (top): v=spf1 +all"],
            "permerror": None,
            "cap": "B",
        },
        "End the record with -all (or ~all while testing) instead of +all.",
        dnsmail.SPF_REFS,
    ) == evaluate_spf(snap(spf=spf))


def test_evaluate_spf_could_not_check() -> None:
    spf = SpfResult("example.com", error="example.com TXT: 192.0.2.53: timed out")
    result = evaluate_spf(snap(spf=spf))
    assert (CheckStatus.ERROR, "could not check: example.com TXT: 192.0.2.53: timed out") == (
        result.status,
        result.summary,
    )


def test_evaluate_dmarc_none_with_reports() -> None:
    record = "v=DMARC1; p=none; rua=mailto:d@example.com"
    dmarc = DmarcResult("example.com", "_dmarc.example.com", record, parse_dmarc(record), 1)
    assert CheckResult(
        "dns.dmarc",
        Area.DNS,
        CheckStatus.WARN,
        "DMARC policy none: failing mail is only reported, not stopped",
        {
            "host": "example.com",
            "found_at": "_dmarc.example.com",
            "record": record,
            "records": 1,
            "policy": "none",
            "p": "none",
            "sp": None,
            "rua": ["mailto:d@example.com"],
            "pct": 100,
            "inherited": False,
            "problem": None,
        },
        "Move to p=quarantine, then p=reject, once the aggregate reports show only "
        "legitimate senders pass.",
        dnsmail.DMARC_REFS,
    ) == evaluate_dmarc(snap(dmarc=dmarc))


def test_evaluate_dmarc_two_records_fail() -> None:
    dmarc = DmarcResult(
        "example.com",
        "_dmarc.example.com",
        "v=DMARC1; p=reject",
        parse_dmarc("v=DMARC1; p=reject"),
        2,
    )
    result = evaluate_dmarc(snap(dmarc=dmarc))
    assert (CheckStatus.FAIL, "_dmarc.example.com has 2 DMARC records: none applies") == (
        result.status,
        result.summary,
    )


def test_evaluate_dnssec_bogus() -> None:
    dnssec = DnssecResult(
        "example.com",
        DnssecStatus.BOGUS,
        ".",
        ("com. DS signed by .",),
        "example.com. DNSKEY: the signature (key 1234) expired 2025-05-01T00:00:00Z",
    )
    assert CheckResult(
        "dns.dnssec",
        Area.DNS,
        CheckStatus.FAIL,
        "DNSSEC of example.com is bogus: example.com. DNSKEY: the signature (key 1234) expired "
        "2025-05-01T00:00:00Z",
        {
            "zone": "example.com",
            "status": "bogus",
            "anchor": ".",
            "chain": ["com. DS signed by ."],
            "link": "example.com. DNSKEY: the signature (key 1234) expired 2025-05-01T00:00:00Z",
            "proof": None,
            "cap": "C",
        },
        "Re-sign the zone (signatures must be current and made with the keys its DS records "
        "name), or remove the DS at the parent before unsigning it.",
        dnsmail.DNSSEC_REFS,
    ) == evaluate_dnssec(snap(dnssec=dnssec))


def test_evaluate_dnssec_indeterminate_is_error() -> None:
    dnssec = DnssecResult("example.com", DnssecStatus.INDETERMINATE, ".", (), "no answer: x")
    assert CheckStatus.ERROR == evaluate_dnssec(snap(dnssec=dnssec)).status


def test_evaluate_caa_without_issue() -> None:
    caa = CaaResult(
        "www.example.com",
        "example.com",
        (CaaRecord(0, "iodef", "mailto:s@example.com"),),
        ("www.example.com", "example.com"),
    )
    assert CheckResult(
        "dns.caa",
        Area.DNS,
        CheckStatus.FAIL,
        "the CAA records at example.com have no issue property",
        {
            "host": "www.example.com",
            "found_at": "example.com",
            "issue": [],
            "issuewild": [],
            "iodef": ["mailto:s@example.com"],
            "records": ['0 iodef "mailto:s@example.com"'],
            "unknown_critical": [],
            "asked": ["www.example.com", "example.com"],
        },
        "Publish CAA records at example.com naming the CAs you use, e.g. 0 issue "
        '"letsencrypt.org", plus 0 iodef "mailto:<security contact>".',
        dnsmail.CAA_REFS,
    ) == evaluate_caa(snap(caa=caa))


def test_evaluate_nameservers_one_network_ipv6() -> None:
    ns = NameServers(
        "example.com",
        (
            NameServer("ns1.example.com", (ServerAddress("2001:db8:1:1::53", "authoritative"),)),
            NameServer("ns2.example.com", (ServerAddress("2001:db8:1:2::53", "authoritative"),)),
        ),
    )
    assert CheckResult(
        "dns.nameservers",
        Area.DNS,
        CheckStatus.WARN,
        "2 name server(s) answer with authority, all in one network (2001:db8:1::/48)",
        {
            "zone": "example.com",
            "servers": [
                "ns1.example.com: 2001:db8:1:1::53 authoritative",
                "ns2.example.com: 2001:db8:1:2::53 authoritative",
            ],
            "responsive": 2,
            "networks": ["2001:db8:1::/48"],
        },
        "Serve example.com from at least two name servers in different networks (another "
        "provider or a secondary DNS service), each answering with authority.",
        dnsmail.NS_REFS,
    ) == evaluate_nameservers(snap(nameservers=ns))


def test_evaluate_nameservers_unresolvable_is_error() -> None:
    ns = NameServers(
        "example.com",
        (NameServer("ns1.example.com", error="ns1.example.com A: timed out", resolved=False),),
    )
    result = evaluate_nameservers(snap(nameservers=ns))
    assert (
        CheckStatus.ERROR,
        "could not check: no name server of the zone answered the scanner directly",
    ) == (result.status, result.summary)


def test_evidence_is_bounded() -> None:
    record = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(60)) + " -all"
    tree = SpfNode("example.com", "top", record, parse_spf(record)[0])
    spf = SpfResult("example.com", (record,), tree, all_qualifier="-")
    result = evaluate_spf(snap(spf=spf))
    assert (500, 20) == (len(result.evidence["record"]), len(result.evidence["mechanisms"]))
    assert len(result.evidence) <= 64


# --- signatures against published vectors -----------------------------------------------------

# RFC 8080 §6.1, the first Ed25519 example.
ED25519_KEY = dns.rrset.from_text(
    "example.com.", 3600, "IN", "DNSKEY", "257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="
)
ED25519_MX = dns.rrset.from_text("example.com.", 3600, "IN", "MX", "10 mail.example.com.")
ED25519_SIG = dns.rrset.from_text(
    "example.com.",
    3600,
    "IN",
    "RRSIG",
    "MX 15 2 3600 1440021600 1438207200 3613 example.com. oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGr"
    "HpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==",
)


def test_verify_rfc8080_vector() -> None:
    owner = dns.name.from_text("example.com.")
    verify_rrset(ED25519_MX, ED25519_SIG, ED25519_KEY, owner, 1439000000)
    other = dns.rrset.from_text("example.com.", 3600, "IN", "MX", "11 mail.example.com.")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_rrset(other, ED25519_SIG, ED25519_KEY, owner, 1439000000)
    with pytest.raises(SignatureError, match="expired 2015-08-19T22:00:00Z"):
        verify_rrset(ED25519_MX, ED25519_SIG, ED25519_KEY, owner, 1440021601)


@pytest.mark.parametrize(
    "module",
    [
        "sensors.scanner.dnsmail",
        "sensors.scanner.dnsmail_spf",
        "sensors.scanner.dnsmail_dmarc",
        "sensors.scanner.dnsmail_caa",
        "sensors.scanner.dnsmail_ns",
        "sensors.scanner.dnsmail_dnssec",
        "sensors.scanner.dnsmail_sigs",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert (0, True) == (result.failed, result.attempted > 0)
