"""The lab's activities: what they share, and the ordinary ones (web browsing, DNS lookups).

Each activity is a function of a :class:`Context` that starts the servers it needs in the
server's namespace, runs its client, stops the servers and returns its label (see
``labels.py``). The expectations come from what the tools were told to do and from what the
servers logged, never from the capture. An activity that cannot run here raises
:class:`Skip` with the reason. The attacks are in ``attacks.py``; ``lab.py`` lists them all.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labels import Expected, FlowGroup, Label
from netns import CLIENT, SERVER, Lab, LabError

HERE = Path(__file__).resolve().parent
WEB_PORT = 80
DNS_PORT = 53
DIG_FIRST_PORT = 40000  # lookup i leaves from this port + i: one flow each, none merged


class Skip(Exception):  # noqa: N818 - reads as `raise Skip("why")`
    """The activity cannot run here; the message says why."""


@dataclass(frozen=True)
class Sizes:
    """How much each activity does. The defaults are the committed captures' sizes."""

    pages: int = 5  # browse: pages fetched over IPv4 ...
    pages6: int = 2  # ... and over IPv6
    lookups: int = 5
    ports: str = "1-19,80"  # nmap: 20 ports, 80 open (the server's web server runs)
    passwords: int = 8  # the right one is last
    tunnel_seconds: float = 3.0
    beacons: int = 15  # beacon: requests, one every beacon_interval seconds
    beacon_interval: float = 2.0


@dataclass
class Context:
    lab: Lab
    work: Path  # a private temporary directory for files, logs and working directories
    sizes: Sizes
    versions: dict[str, str | None]

    def tool(self, name: str) -> str:
        return f"{name} {self.versions.get(name) or '?'}"


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is not installed (tests/lab/install.sh installs it)")


def web_server(ctx: Context, address: str, port: int, directory: Path) -> Any:
    return ctx.lab.start(
        "server",
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            address,
            "--directory",
            str(directory),
        ],
        log=ctx.work / f"http-{address}-{port}.log",
    )


def curl(ctx: Context, url: str, timeout: float = 10) -> str:
    argv = [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        str(timeout),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        url,
    ]
    return ctx.lab.run("client", argv, timeout=timeout + 5).stdout


def _requests(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"GET /' in line)


def wait_for(path: Path, text: str, process: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def browse(ctx: Context) -> Label:
    """curl fetches pages from the server's web server, one connection per page."""
    need("curl")
    www = ctx.work / "www"
    www.mkdir(exist_ok=True)
    pages = max(ctx.sizes.pages, ctx.sizes.pages6)
    for i in range(pages):
        (www / f"page{i}.html").write_text(f"<html><body>page {i}</body></html>\n" * (i + 1))
    start = time.time_ns()
    servers = [web_server(ctx, host, WEB_PORT, www) for host in (SERVER.ipv4, SERVER.ipv6)]
    ctx.lab.wait_listening("server", "tcp", WEB_PORT, count=2)
    for i in range(ctx.sizes.pages):
        curl(ctx, f"http://{SERVER.ipv4}/page{i}.html")
    for i in range(ctx.sizes.pages6):
        curl(ctx, f"http://[{SERVER.ipv6}]/page{i}.html")
    for server in servers:
        ctx.lab.stop(server)
    end = time.time_ns()
    served = {
        "ipv4": _requests(ctx.work / f"http-{SERVER.ipv4}-{WEB_PORT}.log"),
        "ipv6": _requests(ctx.work / f"http-{SERVER.ipv6}-{WEB_PORT}.log"),
    }
    if served != {"ipv4": ctx.sizes.pages, "ipv6": ctx.sizes.pages6}:
        raise LabError(f"browse: the web servers answered {served}")
    return Label(
        activity="browse",
        tool=ctx.tool("curl"),
        src=(CLIENT.ipv4, CLIENT.ipv6),
        dst=(SERVER.ipv4, SERVER.ipv6),
        transport="tcp",
        dst_ports=(WEB_PORT,),
        start=start,
        end=end,
        parameters={"pages": ctx.sizes.pages, "pages6": ctx.sizes.pages6},
        evidence={"requests_served": served},
        expected=Expected(
            flows=tuple(
                FlowGroup(src, dst, "tcp", (WEB_PORT,), count)
                for src, dst, count in (
                    (CLIENT.ipv4, SERVER.ipv4, ctx.sizes.pages),
                    (CLIENT.ipv6, SERVER.ipv6, ctx.sizes.pages6),
                )
                if count
            )
        ),
    )


def dns(ctx: Context) -> Label:
    """The client looks up names under lab.test at the server's dnsmasq, one query from a
    port of its own each (so each lookup is one UDP flow)."""
    need("dnsmasq")
    dig = shutil.which("dig") is not None
    log = ctx.work / "dnsmasq.log"
    start = time.time_ns()
    server = ctx.lab.start(
        "server",
        [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # no system configuration
            "--no-resolv",  # no upstream servers from resolv.conf, and none given: ...
            "--no-hosts",  # ... it answers lab.test itself and forwards nothing, ever
            "--bind-interfaces",
            f"--listen-address={SERVER.ipv4}",
            f"--port={DNS_PORT}",
            f"--address=/lab.test/{SERVER.ipv4}",
            "--log-queries",
            "--log-facility=-",  # stderr, into the log file
            f"--pid-file={ctx.work / 'dnsmasq.pid'}",
        ],
        log=log,
    )
    ctx.lab.wait_listening("server", "udp", DNS_PORT)
    names = [f"host{i}.lab.test" for i in range(ctx.sizes.lookups)]
    for i, name in enumerate(names):
        port = DIG_FIRST_PORT + i
        if dig:
            argv = [
                "dig",
                f"@{SERVER.ipv4}",
                "-b",
                f"{CLIENT.ipv4}#{port}",
                "+tries=1",
                "+time=2",
                "+short",
                name,
                "A",
            ]
        else:
            argv = [
                sys.executable,
                str(HERE / "dns_query.py"),
                "--server",
                SERVER.ipv4,
                "--source",
                CLIENT.ipv4,
                "--sport",
                str(port),
                name,
            ]
        answer = ctx.lab.run("client", argv, timeout=10).stdout.split()
        if answer != [SERVER.ipv4]:
            raise LabError(f"dns: {name} resolved to {answer}")
    ctx.lab.stop(server)
    end = time.time_ns()
    logged = len(re.findall(rf"query\[A\] host\d+\.lab\.test from {CLIENT.ipv4}", log.read_text()))
    if logged != len(names):
        raise LabError(f"dns: dnsmasq logged {logged} queries for {len(names)} lookups")
    return Label(
        activity="dns",
        tool=ctx.tool("dig") if dig else "tests/lab/dns_query.py",
        src=(CLIENT.ipv4,),
        dst=(SERVER.ipv4,),
        transport="udp",
        dst_ports=(DNS_PORT,),
        start=start,
        end=end,
        parameters={"lookups": ctx.sizes.lookups, "first_source_port": DIG_FIRST_PORT},
        evidence={"resolver": ctx.tool("dnsmasq"), "queries_logged": logged},
        expected=Expected(
            flows=(FlowGroup(CLIENT.ipv4, SERVER.ipv4, "udp", (DNS_PORT,), len(names)),)
            if names
            else ()
        ),
    )
