"""The scanner's core: target names, the address policy, the pinned HTTP client with its
bounded reads, and the runner's handling of areas that fail, hang or raise."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from sensors.errors import TargetError, TargetRefusedError
from sensors.scanner.context import ScanContext
from sensors.scanner.markup import parse_markup
from sensors.scanner.policy import ScanPolicy, parse_network
from sensors.scanner.registry import AreaSpec
from sensors.scanner.result import Area, CheckResult, CheckStatus, SubGrade, worst
from sensors.scanner.runner import scan_host
from sensors.scanner.target import Target, make_resolver, normalise_host, resolve
from sensors.scanner.web import fetch, web_client
from sensors.wire import validate_record
from tests.scanner.conftest import Route, Site, loopback_policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.GOV.vn.", "example.gov.vn"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_host_names_are_normalised(text: str, expected: str) -> None:
    assert expected == normalise_host(text)


@pytest.mark.parametrize(
    "text", ["", "https://example.com/", "example.com:8443", "a..b", "-x.example", "a b", "u@h"]
)
def test_what_is_not_a_host_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(TargetError):
        normalise_host(text)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # an IPv4-mapped address is judged as IPv4
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "private"),  # noqa: S104 - an address refused, not bound
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str, kind: str) -> None:
    with pytest.raises(TargetRefusedError, match=f"is a {kind} address"):
        ScanPolicy().check_address(ipaddress.ip_address(address), "h.example")


def test_an_allowed_network_opens_only_itself() -> None:
    policy = ScanPolicy(allowed_networks=(parse_network("10.9.0.0/16"),))
    policy.check_address(ipaddress.ip_address("10.9.3.4"), "x")
    policy.check_address(ipaddress.ip_address("8.8.8.8"), "x")  # public stays allowed
    with pytest.raises(TargetRefusedError):
        policy.check_address(ipaddress.ip_address("10.10.0.1"), "x")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_addresses": 0}, {"concurrency": 0}, {"read_timeout": float("nan")}, {"https_port": 0}],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScanPolicy(**kwargs)


def test_a_refused_literal_never_reaches_a_socket() -> None:
    policy = ScanPolicy()
    with pytest.raises(TargetRefusedError, match="loopback"):
        asyncio.run(resolve("127.0.0.1", policy, make_resolver(policy)))


def test_worst_status_wins() -> None:
    assert CheckStatus.FAIL == worst([CheckStatus.PASS, CheckStatus.ERROR, CheckStatus.FAIL])
    assert CheckStatus.ERROR == worst([CheckStatus.PASS, CheckStatus.ERROR])


def _pinned_get(policy: ScanPolicy, target: Target, url: str, max_bytes: int = 1 << 20) -> Any:
    async def go() -> Any:
        async with web_client(target, policy, make_resolver(policy)) as client:
            return await fetch(client, url, max_bytes)

    return asyncio.run(go())


def test_connections_go_to_the_checked_address_whatever_the_name(
    sites: Callable[..., Site],
) -> None:
    """``site.test`` resolves nowhere; the client connects to the target's checked address
    and still sends the name in Host (and would in SNI)."""
    site = sites({"/": Route(body=b"hello")})
    policy = loopback_policy(http=site)
    target = Target("site.test", (ipaddress.ip_address("127.0.0.1"),))
    page = _pinned_get(policy, target, f"http://site.test:{site.port}/")
    assert (200, b"hello") == (page.status, page.body)
    assert f"site.test:{site.port}" == site.requests[-1][2]["Host"]
    assert policy.user_agent == site.requests[-1][2]["User-Agent"]


def test_a_redirect_to_a_refused_address_is_not_followed_anywhere(
    sites: Callable[..., Site],
) -> None:
    site = sites({"/": Route(body=b"inside")})
    policy = ScanPolicy(allowed_networks=(parse_network("127.0.0.2/32"),), http_port=site.port)
    target = Target("127.0.0.2", (ipaddress.ip_address("127.0.0.2"),))
    with pytest.raises(httpx.ConnectError, match="loopback address"):
        _pinned_get(policy, target, f"http://127.0.0.1:{site.port}/")
    assert [] == site.requests


def test_a_body_is_read_only_up_to_the_limit_even_compressed(sites: Callable[..., Site]) -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))  # 20 MiB in ~20 KiB
    site = sites(
        {
            "/big": Route(body=b"x" * 100_000),
            "/bomb": Route(headers=(("Content-Encoding", "gzip"),), body=bomb),
        }
    )
    policy = loopback_policy(http=site)
    target = Target("127.0.0.1", (ipaddress.ip_address("127.0.0.1"),))
    big = _pinned_get(policy, target, f"http://127.0.0.1:{site.port}/big", 4096)
    assert (4096, True) == (len(big.body), big.truncated)
    unpacked = _pinned_get(policy, target, f"http://127.0.0.1:{site.port}/bomb", 4096)
    assert 4096 == len(unpacked.body)


def test_repeated_headers_keep_their_order(sites: Callable[..., Site]) -> None:
    site = sites({"/": Route(headers=(("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")))})
    policy = loopback_policy(http=site)
    target = Target("127.0.0.1", (ipaddress.ip_address("127.0.0.1"),))
    page = _pinned_get(policy, target, f"http://127.0.0.1:{site.port}/")
    assert ["a=1", "b=2"] == page.header_list("set-cookie")


def _check(check_id: str) -> Callable[[Any], CheckResult]:
    return lambda snapshot: CheckResult(check_id, Area.HTTP, CheckStatus.PASS, str(snapshot))


def test_the_runner_reports_what_it_could_not_check_as_errors_never_failures(
    sites: Callable[..., Site],
) -> None:
    site = sites({"/": Route(body=b"<title>t</title>")})
    policy = loopback_policy(http=site, host_budget=1.0)

    async def fine(ctx: ScanContext) -> str:
        page = await ctx.page(ctx.url("http"))
        return parse_markup(page.text).title

    async def broken(_: ScanContext) -> str:
        raise httpx.ConnectError("connection refused")

    async def hangs(_: ScanContext) -> str:
        await asyncio.sleep(60)
        return "never"

    def raises(_: Any) -> CheckResult:
        raise KeyError("a bug")

    areas = (
        AreaSpec(
            Area.HTTP,
            fine,
            (("http.a", _check("http.a")), ("http.bug", raises)),
            lambda snap, results: SubGrade("g", "A", 100.0),
            "g",
        ),
        AreaSpec(Area.DNS, broken, (("dns.b", _check("dns.b")),)),
        AreaSpec(Area.TLS, hangs, (("tls.c", _check("tls.c")),), None, "tls_g"),
    )
    started = datetime.now().astimezone()
    report = asyncio.run(scan_host("127.0.0.1", policy, areas=areas))
    assert (report.finished - started).total_seconds() < 10
    got = {c.id: (c.status, c.summary) for c in report.checks}
    assert {
        "http.a": (CheckStatus.PASS, "t"),
        "http.bug": (CheckStatus.ERROR, "could not check: internal error (KeyError)"),
        "dns.b": (CheckStatus.ERROR, "could not check: ConnectError: connection refused"),
        "tls.c": (CheckStatus.ERROR, "could not check: the host's time budget (1 s) ran out"),
    } == got
    assert [("g", "A"), ("tls_g", None)] == [(g.name, g.grade) for g in report.grades]
    record = report.to_record("0" * 32)
    validate_record(record)  # what the service's ingest will check
    assert ["http.a", "http.bug", "dns.b", "tls.c", "grade.g", "grade.tls_g"] == [
        c["id"] for c in record["checks"]
    ]
