"""The lab's attacks: port scans, a password brute force, a DNS tunnel, a beacon.

Activities like those in ``activities.py``: each returns its label, with expectations taken
from the tools and the servers they attack, never from the capture.
"""

from __future__ import annotations

import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from activities import (
    DNS_PORT,
    HERE,
    WEB_PORT,
    Context,
    Skip,
    curl,
    need,
    wait_for,
    web_server,
)
from labels import DnsQueries, Expected, FlowGroup, Label
from netns import ATTACKER, CLIENT, SERVER, LabError

AUTH_PORT = 8080
TUNNEL_DOMAIN = "tun.lab.test"
TUNNEL_NETWORK = "10.99.0.1/27"  # inside the tunnel: iodined takes .1, iodine gets .2
TUNNEL_SERVER = "10.99.0.1"
TUNNEL_PORT = 8000
TUNNEL_UPLOAD = 16 * 1024  # bytes sent through the tunnel: about 90 queries
TUNNEL_FRAGMENT = 1000  # iodine's downstream fragment size: fits any path MTU here
BRUTE_USER = "admin"
BRUTE_PASSWORD = "letmein-42"  # the lab's own toy server: a fixed secret is the point
TUNNEL_PASSWORD = "twlab-tunnel"


def parse_ports(spec: str) -> tuple[int, ...]:
    """nmap's port list syntax, the part the lab uses.

    >>> parse_ports("1-3,80")
    (1, 2, 3, 80)
    """
    ports: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return tuple(sorted(ports))


def _port_states(report: Path) -> dict[str, list[int]]:
    """The ports of nmap's XML report by state; the ports it sums up (``extraports``) are
    listed in its ``extrareasons`` elements."""
    root = ET.parse(report).getroot()  # noqa: S314 - nmap's own report, written just now
    states: dict[str, list[int]] = {}
    for port in root.iter("port"):
        state = port.find("state")
        name = "?" if state is None else state.get("state", "?")
        states.setdefault(name, []).append(int(port.get("portid", "0")))
    for extra in root.iter("extraports"):
        name = extra.get("state", "?")
        for reason in extra.iter("extrareasons"):
            if reason.get("ports"):
                states.setdefault(name, []).extend(parse_ports(reason.get("ports", "")))
    return {name: sorted(ports) for name, ports in sorted(states.items())}


def _nmap(ctx: Context, activity: str, scan: str) -> Label:
    need("nmap")
    ports = parse_ports(ctx.sizes.ports)
    report = ctx.work / f"{activity}.xml"
    start = time.time_ns()
    # The server's web server runs during the scan, so a scan over port 80 finds one open.
    web = web_server(ctx, SERVER.ipv4, WEB_PORT, ctx.work)
    ctx.lab.wait_listening("server", "tcp", WEB_PORT)
    ctx.lab.run(
        "attacker",
        [
            "nmap",
            scan,
            "-Pn",
            "-n",
            "--max-retries",
            "0",
            "-p",
            ctx.sizes.ports,
            "-oX",
            str(report),
            SERVER.ipv4,
        ],
        timeout=120,
    )
    ctx.lab.stop(web)
    end = time.time_ns()
    states = _port_states(report)
    if sum(len(p) for p in states.values()) != len(ports):
        raise LabError(f"{activity}: nmap reported {states} for {len(ports)} ports")
    return Label(
        activity=activity,
        tool=ctx.tool("nmap"),
        src=(ATTACKER.ipv4,),
        dst=(SERVER.ipv4,),
        transport="tcp",
        dst_ports=ports,
        start=start,
        end=end,
        parameters={"ports": ctx.sizes.ports, "options": [scan, "-Pn", "-n", "--max-retries", "0"]},
        evidence={"port_states": states},
        # Every probed port is one flow, open or closed: -sS probes each port once from one
        # source port (closed ports answer RST; on the open one the attacker's kernel resets
        # the SYN-ACK), -sT connects once per port from its own ephemeral port.
        expected=Expected(flows=(FlowGroup(ATTACKER.ipv4, SERVER.ipv4, "tcp", ports, 1),)),
    )


def nmap_syn(ctx: Context) -> Label:
    """A SYN (half-open) scan of the server from the attacker."""
    return _nmap(ctx, "nmap_syn", "-sS")


def nmap_connect(ctx: Context) -> Label:
    """A connect() scan of the server from the attacker."""
    return _nmap(ctx, "nmap_connect", "-sT")


def bruteforce(ctx: Context) -> Label:
    """hydra guesses the password of a web page behind basic auth on the server."""
    need("hydra")
    words = [f"guess{i:03d}" for i in range(ctx.sizes.passwords - 1)] + [BRUTE_PASSWORD]
    wordlist = ctx.work / "passwords.txt"
    wordlist.write_text("".join(f"{w}\n" for w in words))
    journal = ctx.work / "basic_auth.log"
    hydra_dir = ctx.work / "hydra"  # hydra leaves hydra.restore in its working directory
    hydra_dir.mkdir(exist_ok=True)
    start = time.time_ns()
    server = ctx.lab.start(
        "server",
        [
            sys.executable,
            str(HERE / "basic_auth.py"),
            "--bind",
            SERVER.ipv4,
            "--port",
            str(AUTH_PORT),
            "--user",
            BRUTE_USER,
            "--password",
            BRUTE_PASSWORD,
            "--log",
            str(journal),
        ],
    )
    ctx.lab.wait_listening("server", "tcp", AUTH_PORT)
    found = ctx.work / "hydra-found.txt"
    done = ctx.lab.run(
        "attacker",
        [
            "hydra",
            "-l",
            BRUTE_USER,
            "-P",
            str(wordlist),
            "-t",
            "4",
            "-I",
            "-o",
            str(found),
            "-s",
            str(AUTH_PORT),
            SERVER.ipv4,
            "http-get",
            "/",
        ],
        timeout=120,
        cwd=hydra_dir,
    )
    ctx.lab.stop(server)
    end = time.time_ns()
    lines = journal.read_text().splitlines()
    connections = sum(1 for line in lines if line.startswith("connection "))
    requests = {
        kind: sum(1 for line in lines if line == f"request {kind}")
        for kind in ("ok", "denied", "anonymous")
    }
    cracked = BRUTE_PASSWORD in found.read_text() if found.exists() else False
    if not cracked:
        raise LabError(f"bruteforce: hydra did not find the password: {done.stdout[-500:]}")
    return Label(
        activity="bruteforce",
        tool=ctx.tool("hydra"),
        src=(ATTACKER.ipv4,),
        dst=(SERVER.ipv4,),
        transport="tcp",
        dst_ports=(AUTH_PORT,),
        start=start,
        end=end,
        parameters={
            "passwords": len(words),
            "tasks": 4,
            "module": "http-get",
            "right_password_position": len(words),
        },
        evidence={
            "server_connections": connections,
            "server_requests": requests,
            "password_found": cracked,
        },
        # As many flows as connections the server accepted (hydra may add a connection or
        # two of its own, e.g. a first request without credentials).
        expected=Expected(
            flows=(FlowGroup(ATTACKER.ipv4, SERVER.ipv4, "tcp", (AUTH_PORT,), connections),)
        ),
    )


def dns_tunnel(ctx: Context) -> Label:
    """iodine tunnels IP through DNS queries for names under tun.lab.test to iodined on the
    server, and curl uploads a file through the tunnel (data leaving in query names, as
    exfiltration over DNS does)."""
    need("iodine", "iodined", "curl")
    if not Path("/dev/net/tun").exists():
        raise Skip("/dev/net/tun is absent: iodine needs a TUN device")
    server_log, client_log = ctx.work / "iodined.log", ctx.work / "iodine.log"
    journal = ctx.work / "upload.log"
    blob = ctx.work / "blob.bin"
    blob.write_bytes(os.urandom(TUNNEL_UPLOAD))  # random: iodine's compression cannot shrink it
    processes = []
    start = time.time_ns()
    try:
        iodined = ctx.lab.start(
            "server",
            [
                "iodined",
                "-f",
                "-c",
                "-P",
                TUNNEL_PASSWORD,
                "-l",
                SERVER.ipv4,
                "-p",
                str(DNS_PORT),
                TUNNEL_NETWORK,
                TUNNEL_DOMAIN,
            ],
            log=server_log,
        )
        processes.append(iodined)
        ctx.lab.wait_listening("server", "udp", DNS_PORT)
        processes.append(
            ctx.lab.start(
                "server",
                [
                    sys.executable,
                    str(HERE / "basic_auth.py"),
                    "--bind",
                    TUNNEL_SERVER,
                    "--port",
                    str(TUNNEL_PORT),
                    "--user",
                    BRUTE_USER,
                    "--password",
                    BRUTE_PASSWORD,
                    "--log",
                    str(journal),
                ],
            )
        )
        ctx.lab.wait_listening("server", "tcp", TUNNEL_PORT)
        iodine = ctx.lab.start(
            "client",
            # -r: straight to DNS (no raw UDP mode); -m: a fixed downstream fragment size
            # instead of probing for it, which waits a second for each size that fails.
            [
                "iodine",
                "-f",
                "-r",
                "-m",
                str(TUNNEL_FRAGMENT),
                "-P",
                TUNNEL_PASSWORD,
                SERVER.ipv4,
                TUNNEL_DOMAIN,
            ],
            log=client_log,
        )
        processes.append(iodine)
        if not wait_for(client_log, "Connection setup complete", iodine, timeout=30):
            tail = client_log.read_text(errors="replace")[-400:]
            raise Skip(f"iodine could not set up the tunnel: {tail}")
        up = time.monotonic()
        argv = [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            f"{BRUTE_USER}:{BRUTE_PASSWORD}",
            "--data-binary",
            f"@{blob}",
            f"http://{TUNNEL_SERVER}:{TUNNEL_PORT}/upload",
        ]
        status = ctx.lab.run("client", argv, timeout=70).stdout
        time.sleep(max(0.0, ctx.sizes.tunnel_seconds - (time.monotonic() - up)))
        seconds = round(time.monotonic() - up, 1)
    finally:
        for process in reversed(processes):
            ctx.lab.stop(process)
    end = time.time_ns()
    uploaded = sum(
        int(line.split()[1])
        for line in journal.read_text().splitlines()
        if line.startswith("upload ")
    )
    if (status, uploaded) != ("200", TUNNEL_UPLOAD):
        raise LabError(f"dns_tunnel: the upload through the tunnel gave {status} ({uploaded} B)")
    setup = [line for line in client_log.read_text().splitlines() if "ing " in line]
    return Label(
        activity="dns_tunnel",
        tool=ctx.tool("iodine"),
        src=(CLIENT.ipv4,),
        dst=(SERVER.ipv4,),
        transport="udp",
        dst_ports=(DNS_PORT,),
        start=start,
        end=end,
        parameters={
            "domain": TUNNEL_DOMAIN,
            "seconds": ctx.sizes.tunnel_seconds,
            "uploaded_bytes": TUNNEL_UPLOAD,
            "fragment_size": TUNNEL_FRAGMENT,
        },
        evidence={"tunnel_seconds": seconds, "bytes_received": uploaded, "iodine": setup},
        # iodine sends every query from one UDP socket: one flow, many queries. A name has at
        # most 255 octets, so the upload alone needs more than upload/255 queries, each with
        # a long name (payload plus the domain). Encoded random data carries 5 (base32) to 7
        # (base128) bits per octet; host names like these carry about 3.3.
        expected=Expected(
            flows=(FlowGroup(CLIENT.ipv4, SERVER.ipv4, "udp", (DNS_PORT,), 1),),
            dns_queries=DnsQueries(
                suffix=TUNNEL_DOMAIN,
                min_count=TUNNEL_UPLOAD // 255,
                min_length=100,
                min_entropy=4.5,
            ),
        ),
    )


def beacon(ctx: Context) -> Label:
    """An implant's timer on the client: an HTTP request to the server every
    ``beacon_interval`` seconds, ``beacons`` times, each on a connection of its own, as a
    command-and-control check-in polls for tasks."""
    need("curl")
    c2 = ctx.work / "c2"
    c2.mkdir(exist_ok=True)
    (c2 / "tasks").write_text("sleep\n")
    start = time.time_ns()
    server = web_server(ctx, SERVER.ipv4, WEB_PORT, c2)
    ctx.lab.wait_listening("server", "tcp", WEB_PORT)
    first = time.monotonic()
    answers = []
    for i in range(ctx.sizes.beacons):
        # Deadlines from the first request: the time curl takes does not add up into drift.
        time.sleep(max(0.0, first + i * ctx.sizes.beacon_interval - time.monotonic()))
        answers.append(curl(ctx, f"http://{SERVER.ipv4}/tasks?n={i}"))
    ctx.lab.stop(server)
    end = time.time_ns()
    log = ctx.work / f"http-{SERVER.ipv4}-{WEB_PORT}.log"  # shared with browse: count ours
    served = sum(1 for line in log.read_text().splitlines() if '"GET /tasks?n=' in line)
    if served != ctx.sizes.beacons or any(not a.startswith("200 ") for a in answers):
        raise LabError(f"beacon: the server answered {served} of {answers}")
    return Label(
        activity="beacon",
        tool=ctx.tool("curl"),
        src=(CLIENT.ipv4,),
        dst=(SERVER.ipv4,),
        transport="tcp",
        dst_ports=(WEB_PORT,),
        start=start,
        end=end,
        parameters={"requests": ctx.sizes.beacons, "interval_seconds": ctx.sizes.beacon_interval},
        evidence={"requests_served": served},
        expected=Expected(
            flows=(FlowGroup(CLIENT.ipv4, SERVER.ipv4, "tcp", (WEB_PORT,), ctx.sizes.beacons),)
        ),
    )
