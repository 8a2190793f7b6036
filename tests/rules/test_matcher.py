"""Single-event Sigma matching: every supported modifier and the specification's semantics."""

from __future__ import annotations

from typing import Any

import pytest
from sigma.rule import SigmaRule

from rules.errors import UnsupportedRuleError
from rules.matcher import compile_rule, fields_of

FLOW: dict[str, Any] = {
    "source.ip": "10.1.2.3",
    "destination.ip": "2001:db8::25",
    "destination.port": 445,
    "network.iana_number": "6",
    "network.transport": "tcp",
    "source.bytes": 1500,
    "dns.question.name": "AbCdEf0123456789.tunnel.Example.ORG",
    "url.original": "/wp-login.php?redirect=/Admin",
    "user_agent.original": "Mozilla/4.0 (Hydra)",
    "flow.state": "REJ",
    "url.domain": "example.org",
    "event.start": "2026-03-01T23:30:00+02:00",
}


def matches(detection: str, event: dict[str, Any] = FLOW) -> bool:
    rule = SigmaRule.from_yaml(
        "title: t\nlogsource: {category: network}\ndetection:\n"
        + "\n".join("  " + line for line in detection.strip().splitlines())
    )
    return compile_rule(rule)(event)


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        # plain values: strings case-insensitive, numbers as numbers (also numeric strings)
        ("s: {network.transport: TCP}\ncondition: s", True),
        ("s: {destination.port: 445}\ncondition: s", True),
        ("s: {network.iana_number: 6}\ncondition: s", True),
        ("s: {destination.port: '445'}\ncondition: s", True),
        ("s: {destination.port: 22}\ncondition: s", False),
        # lists: any value (three or more plain values become one set lookup)
        ("s: {destination.port: [22, 445, 3389]}\ncondition: s", True),
        ("s: {destination.port: [22, 23, 3389]}\ncondition: s", False),
        ("s: {network.transport: [udp, TCP, icmp]}\ncondition: s", True),
        ("s: {network.iana_number: [17, 6, 1]}\ncondition: s", True),
        ("s: {flow.state: [SF, S0, 're*']}\ncondition: s", True),
        ("s: {flow.state: [SF, S0, 'x*']}\ncondition: s", False),
        # string modifiers and wildcards
        ("s: {dns.question.name|endswith: .example.org}\ncondition: s", True),
        ("s: {dns.question.name|startswith: abcdef}\ncondition: s", True),
        ("s: {url.original|contains: ADMIN}\ncondition: s", True),
        ("s: {url.original|contains|all: [wp-login, redirect]}\ncondition: s", True),
        ("s: {url.original|contains|all: [wp-login, xmlrpc]}\ncondition: s", False),
        ("s: {user_agent.original: '*hydra*'}\ncondition: s", True),
        ("s: {user_agent.original: 'Mozilla/?.0 (Hydra)'}\ncondition: s", True),
        ("s: {user_agent.original|cased: '*hydra*'}\ncondition: s", False),
        ("s: {user_agent.original|cased: '*Hydra*'}\ncondition: s", True),
        # regular expressions with flags
        ("s: {dns.question.name|re: '^[a-z0-9]{16}\\.'}\ncondition: s", False),
        ("s: {dns.question.name|re|i: '^[a-z0-9]{16}\\.'}\ncondition: s", True),
        # networks, both families
        ("s: {source.ip|cidr: 10.0.0.0/8}\ncondition: s", True),
        ("s: {destination.ip|cidr: 2001:db8::/32}\ncondition: s", True),
        ("s: {destination.ip|cidr: 10.0.0.0/8}\ncondition: s", False),
        # comparisons
        ("s: {source.bytes|gt: 1000}\ncondition: s", True),
        ("s: {source.bytes|lte: 1000}\ncondition: s", False),
        ("s: {destination.port|gte: 445}\ncondition: s", True),
        # null and exists
        ("s: {tls.client.server_name: null}\ncondition: s", True),
        ("s: {dns.question.name: null}\ncondition: s", False),
        ("s: {http.request.method|exists: true}\ncondition: s", False),
        ("s: {flow.state|exists: true}\ncondition: s", True),
        # field references
        ("s: {source.ip|fieldref: destination.ip}\ncondition: s", False),
        # fieldref with startswith/endswith: one field's value begins/ends with another's
        ("s: {dns.question.name|fieldref|endswith: url.domain}\ncondition: s", True),
        ("s: {dns.question.name|fieldref|startswith: url.domain}\ncondition: s", False),
        ("s: {url.domain|fieldref|endswith: dns.question.name}\ncondition: s", False),
        # timestamp parts, in UTC (event.start 2026-03-01T23:30:00+02:00 is 21:30 UTC)
        ("s: {event.start|hour: 21}\ncondition: s", True),
        ("s: {event.start|hour: [22, 23]}\ncondition: s", False),
        ("s: {event.start|minute: 30}\ncondition: s", True),
        ("s: {event.start|day: 1}\ncondition: s", True),
        ("s: {event.start|week: 9}\ncondition: s", True),
        ("s: {event.start|month: 3}\ncondition: s", True),
        ("s: {event.start|year: 2025}\ncondition: s", False),
        # keywords: any string value
        ("k: [hydra]\ncondition: k", False),
        ("k: ['*hydra*']\ncondition: k", True),
        # conditions
        ("a: {destination.port: 445}\nb: {flow.state: SF}\ncondition: a and not b", True),
        ("a: {destination.port: 445}\nb: {flow.state: SF}\ncondition: a and b", False),
        ("a1: {destination.port: 1}\na2: {flow.state: REJ}\ncondition: 1 of a*", True),
        ("a1: {destination.port: 1}\na2: {flow.state: REJ}\ncondition: all of a*", False),
        ("a: {destination.port: 1}\nb: {flow.state: REJ}\ncondition: 1 of them", True),
        ("a: {source.ip|cidr: 10.0.0.0/8, destination.port: 445}\ncondition: a", True),
    ],
)
def test_detection(detection: str, expected: bool) -> None:
    assert expected == matches(detection)


def test_values_of_the_wrong_kind_never_match_nor_raise() -> None:
    odd = {"source.ip": "not-an-ip", "source.bytes": "lots", "destination.port": None}
    assert [False, False, False] == [
        matches("s: {source.ip|cidr: 10.0.0.0/8}\ncondition: s", odd),
        matches("s: {source.bytes|gt: 1}\ncondition: s", odd),
        matches("s: {destination.port: 445}\ncondition: s", odd),
    ]


def test_fields_of_a_rule() -> None:
    rule = SigmaRule.from_yaml(
        "title: t\nlogsource: {category: network}\ndetection:\n"
        "  a: {destination.port: 1, source.ip|cidr: 10.0.0.0/8}\n  b: {url.domain: x}\n"
        "  condition: a or b\n"
    )
    assert {"destination.port", "source.ip", "url.domain"} == fields_of(rule)


def test_an_expansion_placeholder_is_unsupported() -> None:
    rule = SigmaRule.from_yaml(
        "title: t\nlogsource: {category: network}\ndetection:\n"
        "  a: {source.ip|expand: '%admin_hosts%'}\n  condition: a\n"
    )
    with pytest.raises(UnsupportedRuleError, match="not supported"):
        compile_rule(rule)
