"""The lab's network: its own namespaces joined by a bridge, and every process started in them.

One *switch* namespace holds a bridge ``br0``; each host (server, client, attacker) lives in a
namespace of its own with one interface ``eth0``, a veth pair whose other end is a port of the
bridge. The veth pairs are created inside the switch namespace with their peer moved straight
into the host's namespace, so nothing is ever created in, or linked to, the namespace the lab
was started from. No namespace has a default route: a packet for any address outside
10.203.0.0/24 or fd77:203::/64 has nowhere to go.

Names are ``twlab-<pid>-<role>`` so parallel runs never clash, and ``teardown`` can tell the
leftovers of a crashed run (its pid is gone) from a run in progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log_ = logging.getLogger("lab")

PREFIX = "twlab-"
SWITCH = "switch"
BRIDGE = "br0"
NETWORK4 = "10.203.0.0/24"
NETWORK6 = "fd77:203::/64"
_STOP_GRACE = 5.0  # seconds a process gets to exit on SIGTERM before SIGKILL


class LabError(RuntimeError):
    """The lab could not be built, or an activity did not do what it says."""


@dataclass(frozen=True)
class Host:
    role: str
    ipv4: str
    ipv6: str
    mac: str  # fixed, so that regenerated captures differ only in what the tools randomise


SERVER = Host("server", "10.203.0.2", "fd77:203::2", "02:cb:00:00:00:02")
CLIENT = Host("client", "10.203.0.10", "fd77:203::10", "02:cb:00:00:00:0a")
ATTACKER = Host("attacker", "10.203.0.66", "fd77:203::66", "02:cb:00:00:00:42")
HOSTS = (SERVER, CLIENT, ATTACKER)

# Written into each host namespace before its interface exists, so that eth0 starts quiet and
# can never learn a route: no router advertisements, no router solicitations, no duplicate
# address detection (the addresses are ours alone).
_HOST_SYSCTLS = (
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv6.conf.default.router_solicitations=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.accept_ra=0",
)
_OFFLOADS = ("tso", "off", "gso", "off", "gro", "off")
# The switch is a bridge and nothing else: it has no addresses and sends nothing of its own.
_SWITCH_SYSCTLS = (
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv6.conf.all.disable_ipv6=1",
)


def run(
    argv: list[str], *, timeout: float = 30, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, its output captured; a failure raises :class:`LabError`."""
    log_.debug("run %s", " ".join(argv))
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def list_namespaces() -> list[str]:
    """The names of every network namespace ``ip netns`` knows."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    """The processes running in ``namespace``."""
    done = run(["ip", "netns", "pids", namespace], check=False)
    return [int(pid) for pid in done.stdout.split() if pid.isdigit()]


def stop_pids(pids: list[int]) -> None:
    """SIGTERM, a grace period, then SIGKILL for what is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                alive.append(pid)
        deadline = time.monotonic() + _STOP_GRACE
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.05)
        pids = alive
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def delete_namespace(namespace: str) -> None:
    """Stop whatever still runs in ``namespace``, then delete it (its veths go with it)."""
    stop_pids(namespace_pids(namespace))
    run(["ip", "netns", "delete", namespace], check=False)


def teardown_leftovers(*, everything: bool = False) -> list[str]:
    """Delete the namespaces of lab runs whose process is gone (all of them with
    ``everything``); returns the names deleted."""
    deleted = []
    for namespace in list_namespaces():
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", namespace)
        if match is None:
            continue
        if not everything and Path(f"/proc/{match[1]}").exists():
            log_.info("leaving %s: lab run %s is still running", namespace, match[1])
            continue
        delete_namespace(namespace)
        deleted.append(namespace)
    return deleted


class Lab:
    """The namespaces of one run and the processes started in them. ``down`` undoes it all."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.namespaces: list[str] = []
        self._processes: list[subprocess.Popen[Any]] = []

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def up(self) -> None:
        """Create the switch, the hosts and their links; check that no route leads out."""
        switch = self.ns(SWITCH)
        self._add_namespace(switch, _SWITCH_SYSCTLS)
        run(["ip", "-n", switch, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0"])
        run(["ip", "-n", switch, "link", "set", BRIDGE, "type", "bridge", "forward_delay", "0"])
        for host in HOSTS:
            ns = self.ns(host.role)
            self._add_namespace(ns, _HOST_SYSCTLS)
            run(
                [
                    "ip",
                    "-n",
                    switch,
                    "link",
                    "add",
                    host.role,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    ns,
                ]
            )
            run(["ip", "-n", switch, "link", "set", host.role, "master", BRIDGE, "up"])
            run(["ip", "-n", ns, "link", "set", "eth0", "address", host.mac])
            run(["ip", "-n", ns, "addr", "add", f"{host.ipv4}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "addr", "add", f"{host.ipv6}/64", "dev", "eth0", "nodad"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self._no_offloads(ns, "eth0")
            self._no_offloads(switch, host.role)
        self._no_offloads(switch, BRIDGE)
        run(["ip", "-n", switch, "link", "set", BRIDGE, "up"])
        for namespace in self.namespaces:
            for family in ("-4", "-6"):
                routes = run(["ip", "-n", namespace, family, "route", "show", "default"]).stdout
                if routes.strip():
                    raise LabError(f"{namespace} has a default route: {routes.strip()}")

    def _no_offloads(self, namespace: str, device: str) -> None:
        # With segmentation and receive offloads a veth passes 64 KB TCP segments as one
        # "packet": a sensor on a real wire never sees those. Off, every frame is wire-sized,
        # and libpcap sizes its ring slots by the MTU instead of 64 KB (with 64 KB slots its
        # default ring holds ~30 frames, and a connect scan's burst overflowed it).
        self.run(namespace, ["ethtool", "-K", device, *_OFFLOADS])

    def _add_namespace(self, namespace: str, sysctls: tuple[str, ...]) -> None:
        run(["ip", "netns", "add", namespace])
        self.namespaces.append(namespace)
        run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        self.run(namespace, ["sysctl", "-q", "-w", *sysctls])

    def argv(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace of ``role`` (``ip netns exec`` execs it: the
        process started is the tool itself, so its pid is the tool's)."""
        namespace = role if role.startswith(PREFIX) else self.ns(role)
        return ["ip", "netns", "exec", namespace, *argv]

    def run(
        self,
        role: str,
        argv: list[str],
        *,
        timeout: float = 60,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(role, argv), timeout=timeout, check=check, cwd=cwd)

    def start(
        self, role: str, argv: list[str], *, log: Path | None = None
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` in the background, stdout and stderr appended to ``log``. In a
        session of its own: a Ctrl-C at the terminal reaches the lab, which stops it."""
        log_.debug("start in %s: %s", role, " ".join(argv))
        with open(log or os.devnull, "ab") as output:
            process = subprocess.Popen(
                self.argv(role, argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> int:
        """Signal a process started by :meth:`start` and wait for it; SIGKILL after a grace."""
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_STOP_GRACE)
        if process in self._processes:
            self._processes.remove(process)
        return process.returncode

    def wait_listening(
        self, role: str, transport: str, port: int, *, count: int = 1, timeout: float = 10
    ) -> None:
        """Wait until ``count`` sockets listen on ``port`` in ``role``'s namespace. Asks the
        kernel (``ss``) rather than connecting, so that the check puts no packet on the wire."""
        option = "-Hltn" if transport == "tcp" else "-Hlun"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listening = self.run(role, ["ss", option, f"sport = :{port}"]).stdout
            if len(listening.splitlines()) >= count:
                return
            time.sleep(0.05)
        raise LabError(f"nothing listens on {transport} port {port} in {role} after {timeout} s")

    def down(self) -> None:
        """Stop every process started here, then delete the namespaces. Safe to call twice."""
        for process in list(self._processes):
            with contextlib.suppress(OSError):
                self.stop(process)
        for namespace in reversed(self.namespaces):
            delete_namespace(namespace)
        self.namespaces.clear()
