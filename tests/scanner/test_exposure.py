"""Exposure: ports on a dedicated loopback address (real listening, refusing and silent
sockets), well-known files and listings on loopback sites, banners of end-of-life software,
and the pure evaluators on constructed snapshots."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from sensors.scanner import exposure
from sensors.scanner.context import ScanContext
from sensors.scanner.exposure import (
    ExposureSnapshot,
    FileProbe,
    ListingProbe,
    PortProbe,
    PortState,
    env_keys,
    fetch_exposure,
    git_head,
    scan_ports,
)
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.registry import AreaSpec
from sensors.scanner.result import Area, CheckResult, CheckStatus
from sensors.scanner.runner import scan_host
from sensors.scanner.target import Target, make_resolver
from tests.scanner.conftest import Route, Site, loopback_policy, server_context

PORT_HOST = "127.0.0.77"  # ports are bound here, away from anything else on 127.0.0.1
NOW = datetime(2026, 6, 1, tzinfo=UTC)
T = TypeVar("T")


def run_fetch(
    fetch: Callable[[ScanContext], Awaitable[T]], policy: ScanPolicy, host: str = "127.0.0.1"
) -> T:
    async def go() -> T:
        target = Target(host, (ipaddress.ip_address(host),))
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await fetch(ctx)

    return asyncio.run(go())


def listener(port: int = 0, backlog: int = 16) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((PORT_HOST, port))
    sock.listen(backlog)
    return sock


def closed_port() -> int:
    """A port on PORT_HOST with nothing listening (bound, then released)."""
    sock = listener()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="binding ports below 1024 (FTP 21) needs root")
def test_real_high_risk_ports_open_are_failed_by_class(sockets: list[socket.socket]) -> None:
    sockets.extend(listener(port) for port in (21, 3389, 6379, 2375))
    policy = loopback_policy(high_risk_ports=(21, 3389, 6379, 2375, 2376, 5432))
    snapshot = run_fetch(fetch_exposure, policy, PORT_HOST)
    states = {p.port: p.state for p in snapshot.ports}
    assert {
        21: PortState.OPEN,
        3389: PortState.OPEN,
        6379: PortState.OPEN,
        2375: PortState.OPEN,
        2376: PortState.CLOSED,
        5432: PortState.CLOSED,
    } == states
    high_risk = exposure.evaluate_high_risk(snapshot)
    ftp = exposure.evaluate_ftp(snapshot)
    assert (CheckStatus.FAIL, CheckStatus.FAIL) == (high_risk.status, ftp.status)
    assert {
        "RDP": [f"{PORT_HOST}:3389"],
        "Redis": [f"{PORT_HOST}:6379"],
        "Docker": [f"{PORT_HOST}:2375"],
    } == high_risk.evidence["open"]
    assert {"FTP": [f"{PORT_HOST}:21"]} == ftp.evidence["open"]


def test_open_closed_and_filtered_ports_are_told_apart(sockets: list[socket.socket]) -> None:
    open_sock = listener()
    # A listener whose queue (backlog 0: one connection) is full drops further handshakes,
    # which is what a filtering firewall looks like from outside: no answer at all.
    silent = listener(backlog=0)
    sockets.extend((open_sock, silent))
    filler = socket.create_connection(silent.getsockname())
    sockets.append(filler)
    open_port, silent_port, shut = (
        open_sock.getsockname()[1],
        silent.getsockname()[1],
        closed_port(),
    )
    policy = loopback_policy(high_risk_ports=(open_port, silent_port, shut), connect_timeout=0.3)

    async def scan(ctx: ScanContext) -> tuple[PortProbe, ...]:
        return await scan_ports(ctx, ctx.policy.high_risk_ports or ())

    probes = run_fetch(scan, policy, PORT_HOST)
    assert (
        PortProbe(PORT_HOST, open_port, PortState.OPEN),
        PortProbe(PORT_HOST, silent_port, PortState.FILTERED, "no answer in 0.3 s"),
        PortProbe(PORT_HOST, shut, PortState.CLOSED),
    ) == probes


def test_a_filtered_port_is_not_reachable() -> None:
    snapshot = _snapshot(ports=(PortProbe("192.0.2.1", 3389, PortState.FILTERED, "no answer"),))
    assert CheckResult(
        "exposure.high-risk-services",
        Area.EXPOSURE,
        CheckStatus.PASS,
        "no high-risk service reachable (1 probed)",
        {"counts": {"open": 0, "closed": 0, "filtered": 1, "error": 0}},
    ) == exposure.evaluate_high_risk(snapshot)


def test_the_port_rate_is_honoured() -> None:
    ports = tuple(closed_port() for _ in range(8))
    rate = 20.0
    policy = loopback_policy(high_risk_ports=ports, port_rate=rate, concurrency=8)

    async def scan(ctx: ScanContext) -> tuple[PortProbe, ...]:
        return await scan_ports(ctx, ports)

    started = time.perf_counter()
    probes = run_fetch(scan, policy, PORT_HOST)
    elapsed = time.perf_counter() - started
    assert [PortState.CLOSED] * 8 == [p.state for p in probes]
    assert elapsed >= (len(ports) - 1) / rate


class CatchAll(dict[str, Any]):
    """Routes that answer every path with the same route, as many real sites do."""

    def __init__(self, route: Route) -> None:
        super().__init__()
        self.route = route

    def get(self, key: str, default: Any = None) -> Any:
        return self.route


def _https_site(sites: Callable[..., Site], ca: trustme.CA, routes: dict[str, Any]) -> Site:
    site: Site = sites(routes, server_context(ca))
    return site


def _web_policy(site: Site, ca_file: Path) -> ScanPolicy:
    return loopback_policy(https=site, ca_file=ca_file, high_risk_ports=(_closed_local_port(),))


def test_exposed_git_env_and_listing_are_failed_with_keys_only(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    secret = b"sk_live_do_not_leak"
    listing = b"<html><head><title>Index of /uploads</title></head><body><h1>Index of /uploads"
    site = _https_site(
        sites,
        ca,
        {
            "/": Route(
                headers=(("Server", "Apache/2.2.15 (CentOS)"), ("X-Powered-By", "PHP/5.6.40"))
            ),
            "/.git/HEAD": Route(200, (("Content-Type", "text/plain"),), b"ref: refs/heads/main\n"),
            "/.env": Route(
                200, (("Content-Type", "text/plain"),), b"APP_KEY=" + secret + b"\nDB_PASSWORD=x\n"
            ),
            "/uploads/": Route(200, body=listing + b"</h1><a href='../'>Parent Directory</a>"),
        },
    )
    policy = _web_policy(site, ca_file)
    report = asyncio.run(
        scan_host(
            "127.0.0.1", policy, areas=(AreaSpec(Area.EXPOSURE, fetch_exposure, exposure.CHECKS),)
        )
    )
    by_id = {c.id: c for c in report.checks}
    assert [c[0] for c in exposure.CHECKS] == [c.id for c in report.checks]
    assert CheckStatus.FAIL == by_id["exposure.git"].status
    assert ["ref: refs/heads/main"] == by_id["exposure.git"].evidence["head"]
    assert CheckStatus.FAIL == by_id["exposure.env"].status
    assert ["APP_KEY", "DB_PASSWORD"] == by_id["exposure.env"].evidence["keys"]
    assert secret.decode() not in repr(report.to_json())
    base = f"https://127.0.0.1:{site.port}"
    assert [{"url": f"{base}/uploads/", "marker": "Index of /"}] == by_id[
        "exposure.directory-listing"
    ].evidence["listings"]
    eol = by_id["exposure.eol-software"]
    assert CheckStatus.WARN == eol.status
    assert ["apache 2.2.15", "php 5.6.40"] == sorted(
        f"{e['product']} {e['version']}" for e in eol.evidence["end_of_life"]
    )


def test_a_site_answering_200_to_everything_exposes_nothing(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    page = Route(200, body=b"<!doctype html><title>Portal</title><p>Welcome A=B</p>")
    site = _https_site(sites, ca, {})
    site.routes = CatchAll(page)
    snapshot = run_fetch(fetch_exposure, _web_policy(site, ca_file))
    results = [evaluate(snapshot).status for _, evaluate in exposure.CHECKS[2:5]]
    assert [CheckStatus.PASS] * 3 == results


def test_a_catch_all_that_answers_a_git_head_to_everything_is_not_an_exposure(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    site = _https_site(sites, ca, {})
    head = Route(200, (("Content-Type", "text/plain"),), b"ref: refs/heads/main\n")
    site.routes = CatchAll(head)
    snapshot = run_fetch(fetch_exposure, _web_policy(site, ca_file))
    assert (True, CheckStatus.PASS) == (
        snapshot.git is not None and snapshot.git.catch_all,
        exposure.evaluate_git(snapshot).status,
    )


def test_home_over_http_when_https_does_not_answer(sites: Callable[..., Site]) -> None:
    site = sites({"/.env": Route(200, (("Content-Type", "text/plain"),), b"TOKEN=abc\n")})
    policy = loopback_policy(http=site, https_port=_closed_local_port(), high_risk_ports=(1,))
    snapshot = run_fetch(fetch_exposure, policy)
    assert (
        FileProbe(f"http://127.0.0.1:{site.port}/.env", 200, None, ("TOKEN",), False)
        == snapshot.env
    )


def _closed_local_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_git_head_and_env_formats() -> None:
    assert ("0123456789abcdef0123456789abcdef01234567",) == git_head(
        b"0123456789abcdef0123456789abcdef01234567\n"
    )
    assert () == git_head(b"ref: refs/heads/main\n" * 20)  # not one line
    assert () == env_keys(b"Welcome!\nWe are a ministry.\nOpening hours=9-17\nCall us")
    assert ("A", "B", "C", "D") == env_keys(b"A=1\nB=2\n\n# c\nC=3\nD=\nstray\n")  # 1 in 5
    assert () == env_keys(b"A=1\nB=2\nstray\n")  # one stray line in three


def _snapshot(**changes: Any) -> ExposureSnapshot:
    base: dict[str, Any] = {
        "observed_at": NOW,
        "ports": (),
        "scanned_ports": (21, 3389),
        "web_error": None,
        "git": FileProbe("https://h.example/.git/HEAD", 404, None, (), False),
        "env": FileProbe("https://h.example/.env", 404, None, (), False),
        "listings": (ListingProbe("https://h.example/", 200, None, None),),
        "banners": (),
    }
    return ExposureSnapshot(**(base | changes))


def test_an_error_on_one_port_without_an_open_one_is_could_not_check() -> None:
    snapshot = _snapshot(
        ports=(
            PortProbe("192.0.2.1", 3389, PortState.CLOSED),
            PortProbe("2001:db8::1", 3389, PortState.ERROR, "Network is unreachable"),
        )
    )
    assert CheckResult(
        "exposure.high-risk-services",
        Area.EXPOSURE,
        CheckStatus.ERROR,
        "could not check: [2001:db8::1]:3389: Network is unreachable",
        {
            "error": "[2001:db8::1]:3389: Network is unreachable",
            "errors": ["[2001:db8::1]:3389: Network is unreachable"],
            "counts": {"open": 0, "closed": 1, "filtered": 0, "error": 1},
        },
    ) == exposure.evaluate_high_risk(snapshot)


def test_ftp_not_scanned_by_policy_is_not_a_failure() -> None:
    result = exposure.evaluate_ftp(_snapshot(scanned_ports=(3389,)))
    assert (CheckStatus.ERROR, "could not check: the policy does not scan port 21") == (
        result.status,
        result.summary,
    )


def test_eol_is_judged_on_the_observation_day() -> None:
    banners = (("server", "nginx/1.26.2"), ("x-powered-by", "PHP/8.1.2"))
    before = exposure.evaluate_eol(
        _snapshot(banners=banners, observed_at=datetime(2025, 1, 1, tzinfo=UTC))
    )
    after = exposure.evaluate_eol(_snapshot(banners=banners))
    assert (
        CheckResult(
            "exposure.eol-software",
            Area.EXPOSURE,
            CheckStatus.PASS,
            "no end-of-life version advertised",
            {
                "banners": ["server: nginx/1.26.2", "x-powered-by: PHP/8.1.2"],
                "end_of_life": [],
                "table_as_of": "2026-11-01",
            },
        )
        == before
    )
    assert (CheckStatus.WARN, "end-of-life software advertised: nginx 1.26.2, php 8.1.2") == (
        after.status,
        after.summary,
    )


def test_no_banner_and_unreachable_web() -> None:
    assert "no software version advertised" == exposure.evaluate_eol(_snapshot()).summary
    unreachable = _snapshot(web_error="ConnectError: refused", git=None, env=None, listings=())
    assert [CheckStatus.ERROR] * 4 == [
        evaluate(unreachable).status for _, evaluate in exposure.CHECKS[2:]
    ]
