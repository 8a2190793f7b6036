"""SigmaHQ's rules on our flows: the field mapping, loading and matching, rejection with file and
line, and the importer on a checkout laid out like SigmaHQ's. The rules here are our own,
written in SigmaHQ's conventions; no SigmaHQ rule is copied."""

from __future__ import annotations

import itertools
import os
import subprocess
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from sigma.conditions import ConditionAND
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCompareExpression, SigmaNumber, SigmaRegularExpression

from rules.community import (
    COMMUNITY_RULES,
    LICENCE_FILE,
    SOURCE_FILE,
    CheckoutError,
    ImportReport,
    Rejection,
    Verdict,
    import_sigmahq,
    open_checkout,
    source_markdown,
    translate,
)
from rules.engine import RuleEngine
from rules.loader import load_rules
from sensors.wire import dump_record, validate_record

# Read at collection: the autouse fixture clears TRUSTWATCH_* before each test runs.
SIGMAHQ_DIR = os.environ.get("TRUSTWATCH_SIGMAHQ_DIR")
TODAY = date(2026, 1, 2)
LICENCE_TEXT = "Placeholder for the Detection Rule License, written by the test.\n"

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


# The importer, on a checkout laid out like SigmaHQ's.

TELNET_ID = "7e57c0de-0000-4000-8000-000000000004"
CHECKOUT = {
    "rules/web/proxy_generic/proxy_test_download.yml": PROXY,
    "rules/web/webserver_generic/web_test_traversal.yml": WEBSERVER,
    "rules/network/dns/net_dns_test_tunnel.yml": DNS,
    "rules/network/zeek/zeek_conn_test.yml": ZEEK_CONN,
    "rules/network/zeek/zeek_dns_test.yml": ZEEK_DNS,
    "rules/network/zeek/zeek_http_test.yml": ZEEK_HTTP,
    "rules/network/zeek/zeek_ssl_test.yml": ZEEK_SSL,
    "rules/web/proxy_generic/proxy_test_cookie.yml": (
        "title: Test cookie\nid: 7e57c0de-0000-4000-8000-000000000010\nstatus: test\n"
        "logsource: {category: proxy}\ndetection:\n  sel:\n    cs-cookie|contains: evil\n"
        "  condition: sel\nlevel: low\n"
    ),
    "rules/web/proxy_generic/proxy_test_deprecated.yml": PROXY.replace(
        "status: test", "status: deprecated"
    ).replace("-000000000001", "-000000000011"),
    "rules/network/zeek/zeek_zz_conn_copy.yml": ZEEK_CONN.replace("zeek conn", "zeek conn again"),
    "rules/network/zeek/zeek_dce_rpc_test.yml": (
        "title: Test dce rpc\nid: 7e57c0de-0000-4000-8000-000000000012\nstatus: test\n"
        "logsource:\n  product: zeek\n  service: dce_rpc\ndetection:\n"
        "  sel: {operation: NetrJobAdd}\n  condition: sel\nlevel: low\n"
    ),
    "rules/network/cisco/aaa/cisco_test.yml": (
        "title: Test cisco\nid: 7e57c0de-0000-4000-8000-000000000013\nstatus: test\n"
        "logsource:\n  product: cisco\n  service: aaa\ndetection:\n  keywords: [clear logging]\n"
        "  condition: keywords\nlevel: low\n"
    ),
    "rules/network/firewall/net_firewall_test_count.yml": (
        "title: Test old aggregation\nid: 7e57c0de-0000-4000-8000-000000000014\nstatus: test\n"
        "logsource: {category: firewall}\ndetection:\n  sel: {dst_port: 53}\n"
        "  condition: sel | count() by src_ip > 1000\nlevel: low\n"
    ),
    "rules/network/firewall/net_firewall_test_correlation.yml": (
        "title: Test correlation\nid: 7e57c0de-0000-4000-8000-000000000015\nstatus: test\n"
        f"correlation:\n  type: event_count\n  rules: [{TELNET_ID}]\n  group-by: [src_ip]\n"
        "  timespan: 1m\n  condition: {gte: 10}\nlevel: low\n"
    ),
    "rules/windows/process_creation/proc_creation_test.yml": PROXY,  # not walked
}
KEPT = (
    "rules/network/dns/net_dns_test_tunnel.yml",
    "rules/network/zeek/zeek_conn_test.yml",
    "rules/network/zeek/zeek_dns_test.yml",
    "rules/network/zeek/zeek_http_test.yml",
    "rules/network/zeek/zeek_ssl_test.yml",
    "rules/web/proxy_generic/proxy_test_download.yml",
    "rules/web/webserver_generic/web_test_traversal.yml",
)
_GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        [
            *("git", "-C", str(root), "-c", "user.name=TrustWatch tests"),
            *("-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", *args),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **_GIT_ENV},
    )
    return result.stdout.strip()


def make_checkout(root: Path, files: dict[str, str] = CHECKOUT) -> str:
    """A git repository laid out like SigmaHQ/sigma, committed; its commit id."""
    for relative, text in {LICENCE_FILE: LICENCE_TEXT, **files}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "rules")
    return git(root, "rev-parse", "HEAD")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_importer_keeps_exactly_the_rules_that_map(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    commit = make_checkout(checkout)
    report = import_sigmahq(checkout, out, today=TODAY)
    rejected = [(str(v.path), v.rejection, v.detail) for v in report.rejected]
    assert sorted(
        [
            (
                "rules/network/cisco/aaa/cisco_test.yml",
                Rejection.LOGSOURCE,
                "logsource {product: cisco, service: aaa}",
            ),
            (
                "rules/network/firewall/net_firewall_test_correlation.yml",
                Rejection.CORRELATION,
                "correlation rules are not imported",
            ),
            (
                "rules/network/firewall/net_firewall_test_count.yml",
                Rejection.UNUSABLE,
                "line 1: The pipe syntax in Sigma "
                "conditions has been deprecated and replaced by Sigma correlations. pySigma "
                "doesn't supports this syntax.",
            ),
            (
                "rules/network/zeek/zeek_dce_rpc_test.yml",
                Rejection.LOGSOURCE,
                "line 4: TrustWatch flows answer Zeek's conn, dns, http, ssl logs, not its "
                "dce_rpc log",
            ),
            (
                "rules/web/proxy_generic/proxy_test_cookie.yml",
                Rejection.FIELD,
                "line 7: field cs-cookie is not carried by TrustWatch flows: the sensor does "
                "not read cookies",
            ),
            (
                "rules/web/proxy_generic/proxy_test_deprecated.yml",
                Rejection.STATUS,
                "status deprecated",
            ),
            (
                "rules/network/zeek/zeek_zz_conn_copy.yml",
                Rejection.DUPLICATE,
                f"id {TELNET_ID} is also that of rules/network/zeek/zeek_conn_test.yml",
            ),
        ]
    ) == sorted(rejected)
    assert (commit, False, KEPT) == (
        report.commit,
        report.changed,
        tuple(sorted(str(v.path) for v in report.kept)),
    )
    expected = {
        **{k.removeprefix("rules/"): CHECKOUT[k].encode() for k in KEPT},
        LICENCE_FILE: LICENCE_TEXT.encode(),
        SOURCE_FILE: source_markdown(report).encode(),
    }
    assert expected == tree(out)
    assert f"- commit: {commit}" in source_markdown(report).splitlines()
    pack = load_rules([out])
    assert ((), 7) == (pack.problems, len(pack.rules))


def test_the_importer_is_idempotent_and_removes_only_rules_it_no_longer_keeps(
    tmp_path: Path,
) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    make_checkout(checkout)
    import_sigmahq(checkout, out, today=TODAY)
    first = tree(out)
    (out / "web" / "old").mkdir()
    (out / "web" / "old" / "gone.yml").write_text(PROXY, encoding="utf-8")
    (out / "README.md").write_text("ours\n", encoding="utf-8")
    import_sigmahq(checkout, out, today=TODAY)
    assert ({**first, "README.md": b"ours\n"}, False) == (tree(out), (out / "web/old").exists())


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    make_checkout(checkout)
    report = import_sigmahq(checkout, out, today=TODAY, dry_run=True)
    assert (7, False) == (len(report.kept), out.exists())


def test_the_commit_is_read_without_git_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "sigma"
    commit = make_checkout(checkout)
    (checkout / "rules/network/dns/net_dns_test_tunnel.yml").write_text(DNS + "# local\n")

    def without_git() -> tuple[str, bool | None]:
        with monkeypatch.context() as patch:
            patch.setenv("PATH", "")
            found = open_checkout(checkout)
        return found.commit, found.changed

    with_git = open_checkout(checkout)
    loose = without_git()
    git(checkout, "pack-refs", "--all")
    packed = without_git()
    git(checkout, "checkout", "-q", "--detach")
    detached = without_git()
    assert [(commit, True), (commit, None), (commit, None), (commit, None)] == [
        (with_git.commit, with_git.changed),
        loose,
        packed,
        detached,
    ]


def test_what_is_not_a_sigmahq_checkout_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    make_checkout(outer, {"README": "another repository\n"})
    inner = outer / "copy"
    for relative in (LICENCE_FILE, "rules/web/x.yml", "rules/network/y.yml"):
        (inner / relative).parent.mkdir(parents=True, exist_ok=True)
        (inner / relative).write_text("x\n", encoding="utf-8")
    (tmp_path / "half" / "rules" / "web").mkdir(parents=True)
    messages = []
    for root in (tmp_path / "missing", tmp_path / "half", inner):
        with pytest.raises(CheckoutError) as caught:
            open_checkout(root)
        messages.append(str(caught.value))
    assert [
        f"{tmp_path / 'missing'} is not a directory",
        f"{tmp_path / 'half'} is not a SigmaHQ/sigma checkout: it has no {LICENCE_FILE}, "
        "rules/network (clone https://github.com/SigmaHQ/sigma)",
        f"{inner} is not a git checkout: the import records the commit its rules come from; "
        "clone https://github.com/SigmaHQ/sigma with git",
    ] == messages


def test_source_md_names_commit_date_and_every_verdict() -> None:
    report = ImportReport(
        "0" * 40,
        None,
        TODAY,
        (
            Verdict(PurePosixPath("rules/web/a.yml"), "A rule"),
            Verdict(PurePosixPath("rules/web/b.yml"), "B", Rejection.STATUS, "status deprecated"),
        ),
    )
    assert (
        "# Community rules: source\n\n"
        "Imported by `trustwatch rules import-sigmahq` from SigmaHQ/sigma; the rule files are\n"
        "copied unmodified and licensed under the Detection Rule License "
        "(LICENSE.Detection.Rules.md).\n\n"
        "- repository: https://github.com/SigmaHQ/sigma\n"
        f"- commit: {'0' * 40}\n"
        "- local changes in the checkout: unknown (no git)\n"
        "- imported: 2026-01-02\n"
        "- rule files kept: 1 of 2 under rules/web, rules/network\n\n"
        "## Kept (1)\n\n- `rules/web/a.yml`: A rule\n\n"
        "## Rejected (1)\n\n- `rules/web/b.yml`: deprecated or unsupported: status deprecated\n"
    ) == source_markdown(report)
    assert [
        f"SigmaHQ/sigma {'0' * 12}: kept 1 of 2 rule files, rejected 1",
        "     1 deprecated or unsupported",
    ] == report.summary()


# What ships in rules/community/, and a real SigmaHQ checkout when one is at hand.


def test_the_community_directory_loads_clean_and_stays_quiet_on_benign_flows() -> None:
    files = sorted(p for p in COMMUNITY_RULES.rglob("*") if p.suffix in (".yml", ".yaml"))
    pack = load_rules([COMMUNITY_RULES])
    detections = RuleEngine(pack).evaluate_all(list(BENIGN))
    provenance = {(COMMUNITY_RULES / n).is_file() for n in (LICENCE_FILE, SOURCE_FILE)}
    assert ((), (), [], True, {bool(files)}) == (
        pack.problems,
        pack.correlations,
        detections,
        (COMMUNITY_RULES / "README.md").is_file(),
        provenance,
    )
    assert len(files) <= len(pack.rules)


@pytest.mark.skipif(
    SIGMAHQ_DIR is None,
    reason="TRUSTWATCH_SIGMAHQ_DIR is not set: point it at a SigmaHQ/sigma git checkout",
)
def test_a_real_sigmahq_checkout_imports_rules_that_load_and_run(tmp_path: Path) -> None:
    out = tmp_path / "community"
    report = import_sigmahq(Path(str(SIGMAHQ_DIR)), out, today=TODAY)
    pack = load_rules([out])
    RuleEngine(pack).evaluate_all(list(BENIGN))  # runs every rule on every record
    loaded = {r.path.relative_to(out).as_posix() for r in pack.rules}
    kept = {v.path.relative_to("rules").as_posix() for v in report.kept}
    assert (True, (), (), kept) == (len(kept) > 0, pack.problems, pack.correlations, loaded)
