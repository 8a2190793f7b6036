"""End-to-end alert latency: from the last packet of an attack to its verified delivery at the
coordination centre's receiver, next to the sensor's own batching interval in the same run.

What one invocation does (as root, on Linux):

1. creates a network namespace ``twbench-e2e-<pid>`` holding ``lo`` and a veth pair
   ``vethA``/``vethB``, both ends inside, with no addresses and IPv6 off, so that the kernel
   puts nothing of its own on the wire. The benchmark joins the namespace (``setns``) and starts
   every process in it with ``ip netns exec``: every socket of the run, the benchmark's own
   included, is in the namespace, and nothing can reach any other network;
2. starts there the reference receiver (``trustwatch receiver``), the service (``trustwatch
   serve``, with the receiver as its one ``TRUSTWATCH_RECEIVERS`` entry) and a live sensor
   (``trustwatch sensor net --interface vethB``, default batching) shipping to it;
3. per run, rewrites a lab capture (``api/demo/lab``) to addresses of the run's own (alerts
   merge by rule and entity for an hour: a scan from the same address again would only raise a
   count) and sends the attack's IPv4 frames on ``vethA`` with their original spacing (the ARP
   and IPv6 frames of the capture are left out); vethB receives them, and the sensor's
   ``AF_PACKET`` socket sees them before any MAC filtering;
4. waits until the receiver's out file holds a delivery of an alert about the run's attacker,
   then pauses 0.5-1.5 s at random (seeded) before the next run, so that the runs meet the
   sensor's 0.2 s housekeeping tick at every phase. One warm-up run is not counted.

Four moments per run, all on the machine's one wall clock:

* **sent**: ``time.time_ns()`` after the attack's last frame left ``vethA``;
* **batched**: the ``sent_at`` of the sensor's batch holding the run's flows, read from its
  spool file (a thread watches the spool directory every millisecond): when the sensor let the
  batch go. *sent → batched* is the sensor's batching: ``--batch-wait`` counted from the
  flow's last packet, which the flow's linger after its RST or FIN overlaps, rounded up to the
  housekeeping tick;
* **stored**: the latest ``event.ingested`` of the run's flows, read back from
  ``GET /api/v1/flows``: the forwarder's pick-up, the POST, and the ingest transaction, in which
  the rules run and the alert and its outbox row are stored;
* **delivered**: the ``received_at`` the receiver recorded for the delivery, which it records
  only once the signature and timestamp are verified: the outbox worker's pick-up, signing, the
  POST.

The figure of issue 5 is *sent → delivered* (target: p95 ≤ 2 s with default settings), beside
*sent → batched*, the sensor's part, as the baseline measured in the same run.

Grouping. Every run raises the same rule. With the default ``group_by`` (``rule_id``) each run
after the first would wait out ``group_window_seconds`` (60 s): that window exists to batch a
burst of one rule into one notification, and is a deliberate delay, not the pipeline's latency.
So by default (``--grouping entity``) the service runs with ``TRUSTWATCH_GROUP_BY`` =
``["rule_id", "entity"]`` and the default window: each run's alert is the first of its group, as
an isolated attack's is, and nothing else differs from the defaults. ``--grouping window0``
instead keeps ``group_by`` and sets ``TRUSTWATCH_GROUP_WINDOW_SECONDS=0``; ``--grouping
defaults`` changes nothing and spaces the runs a window apart (about a minute a run).

Run from the repository root, as root, with trustwatch installed in the interpreter's
environment::

    /tmp/venv/bin/python bench/e2e.py --runs 20

The exit status is 0 when every run was delivered (whether or not the target was met: the
verdict is printed), 1 when a run was not delivered in time or the setup failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gzip
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import httpx

from sensors.flows import MeterConfig
from sensors.net import TICK
from sensors.wire import parse_time, to_ns

REPO: Final = Path(__file__).resolve().parent.parent
LAB: Final = REPO / "api" / "demo" / "lab"
TRUSTWATCH: Final = [sys.executable, "-m", "api.cli"]
PREFIX: Final = "twbench-e2e-"
SENDER: Final = "vethA"
SENSOR_IF: Final = "vethB"
SENSOR_ID: Final = "bench"
LOOPBACK: Final = "127.0.0.1"
TARGET_P95_S: Final = 2.0
# The alert each capture raises with the built-in rule pack: medium and high, at or above the
# receiver's min_severity (medium), so it is delivered.
ATTACKS: Final = {"nmap_syn": "Vertical port scan", "bruteforce": "HTTP login brute force"}
CLONE_NEWNET: Final = 0x40000000
STARTUP_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
SPOOL_POLL_S: Final = 0.001
DELIVERY_POLL_S: Final = 0.01
# The pause between runs varies by up to this much at random. The sensor keeps house every
# 0.2 s; a fixed pause would make every run meet that tick at the same phase, and measure one
# point of its cycle instead of all of it.
PAUSE_JITTER_S: Final = 1.0
# The kernel must not answer the replayed frames or send anything of its own on the veths.
NAMESPACE_SYSCTLS: Final = (
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)
DELIVERIES: Final = "deliveries.jsonl"  # the receiver's out file, in the work directory
TOKEN: Final = re.compile(r"tw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


class BenchError(Exception):
    """The benchmark could not run, or a run went wrong; the message says which."""


# -- the namespace -------------------------------------------------------------------------------


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise BenchError(f"ip {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone (killed with SIGKILL)."""
    removed = []
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)", name)
        if match and not Path(f"/proc/{match[1]}").exists():
            ip("netns", "delete", name, check=False)
            removed.append(name)
    return removed


def create_namespace(name: str) -> None:
    """The namespace with ``lo`` and the veth pair, all up; nothing linked to any other."""
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    sysctl = ["ip", "netns", "exec", name, "sysctl", "-q", "-w", *NAMESPACE_SYSCTLS]
    done = subprocess.run(sysctl, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise BenchError(f"sysctl in {name} failed: {done.stderr.strip()}")
    ip("-n", name, "link", "add", SENDER, "type", "veth", "peer", "name", SENSOR_IF)
    ip("-n", name, "link", "set", SENDER, "up")
    ip("-n", name, "link", "set", SENSOR_IF, "up")
    routes = ip("-n", name, "route", "show").stdout.strip()
    if routes:
        raise BenchError(f"{name} has routes it should not have: {routes}")


def join_namespace(name: str) -> None:
    """Move this process into ``name``: its HTTP requests and frames stay there. Called before
    any thread starts (``setns`` moves only the calling thread; later ones inherit it)."""
    with Path(f"/run/netns/{name}").open("rb") as handle:
        setns = getattr(os, "setns", None)  # Python 3.12+
        if setns is not None:
            setns(handle.fileno(), CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise BenchError(f"setns into {name}: {os.strerror(ctypes.get_errno())}")


# -- the attack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """A lab capture's attack: its IPv4 frames between attacker and victim, as offsets from the
    first one, and what the service must make of it."""

    name: str
    attacker: str
    victim: str
    frames: tuple[tuple[float, Any], ...]  # (seconds after the first frame, scapy packet)
    flows: int
    title: str

    @property
    def span(self) -> float:
        return self.frames[-1][0]

    def rewritten(self, attacker: str, victim: str) -> list[tuple[float, bytes]]:
        """The frames with the run's addresses, IPv4 and TCP/UDP checksums recomputed."""
        from scapy.layers.inet import IP, TCP, UDP

        mapping = {self.attacker: attacker, self.victim: victim}
        out = []
        for offset, packet in self.frames:
            copy = packet.copy()
            copy[IP].src = mapping[copy[IP].src]
            copy[IP].dst = mapping[copy[IP].dst]
            del copy[IP].chksum  # scapy computes a deleted checksum when it builds the bytes
            for layer in (TCP, UDP):
                if layer in copy:
                    del copy[layer].chksum
            out.append((offset, bytes(copy)))
        return out


def load_attack(name: str) -> Attack:
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    labels = json.loads((LAB / f"{name}.labels.json").read_text(encoding="utf-8"))
    activity = labels["activities"][0]
    attacker, victim = activity["src"][0], activity["dst"][0]
    pair = {attacker, victim}
    packets = [p for p in rdpcap(str(LAB / f"{name}.pcap")) if IP in p]
    packets = [p for p in packets if {p[IP].src, p[IP].dst} == pair]
    if not packets:
        raise BenchError(f"{name}.pcap holds no IPv4 frame between {attacker} and {victim}")
    first = packets[0].time
    flows = sum(f["count"] * len(f["dst_ports"]) for f in activity["expected"]["flows"])
    return Attack(
        name=name,
        attacker=attacker,
        victim=victim,
        frames=tuple((float(p.time - first), p) for p in packets),
        flows=flows,
        title=ATTACKS[name],
    )


def run_addresses(index: int) -> tuple[str, str]:
    """Attacker and victim of run ``index``: fresh for every run, never seen before.

    >>> run_addresses(0), run_addresses(300)
    (('10.166.0.1', '10.102.0.1'), ('10.166.1.51', '10.102.1.51'))
    """
    high, low = divmod(index, 250)
    return f"10.166.{high}.{low + 1}", f"10.102.{high}.{low + 1}"


def send(frames: list[tuple[float, bytes]], interface: str, original_timing: bool) -> int:
    """Send the frames on ``interface``; returns the wall-clock time (Unix ns) the last one
    left. With ``original_timing``, each goes at its offset from the first."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        started = time.perf_counter()
        for offset, frame in frames:
            if original_timing:
                delay = started + offset - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sock.send(frame)
        return time.time_ns()


# -- the sensor's spool --------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A batch the sensor spooled, as the watcher saw it."""

    name: str
    sent_at_ns: int  # the envelope's sent_at: when the sensor closed the batch
    addresses: frozenset[str]  # of the records in it


class SpoolWatcher:
    """Reads every batch file that appears in the sensor's spool before the forwarder sends and
    deletes it (it stays at least for the POST, tens of ms; the watcher looks every ms)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.batches: list[Batch] = []
        self.missed: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="spool-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def find(self, address: str) -> Batch | None:
        """The last batch with a flow of ``address`` (a run's flows may span two)."""
        with self._lock:
            return max(
                (b for b in self.batches if address in b.addresses),
                key=lambda b: b.sent_at_ns,
                default=None,
            )

    def _watch(self) -> None:
        while not self._stop.wait(SPOOL_POLL_S):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.directory):
                    if entry.name.endswith(".batch") and entry.name not in self._seen:
                        self._seen.add(entry.name)
                        self._read(Path(entry.path))

    def _read(self, path: Path) -> None:
        try:
            envelope = json.loads(gzip.decompress(path.read_bytes()))
        except FileNotFoundError:
            with self._lock:
                self.missed.append(path.name)
            return
        sent_at = parse_time(envelope["sent_at"])
        assert sent_at is not None  # the sensor always writes it
        records = envelope["records"]
        addresses = {r.get(side) for r in records for side in ("source.ip", "destination.ip")}
        batch = Batch(path.name, to_ns(sent_at), frozenset(map(str, addresses)))
        with self._lock:
            self.batches.append(batch)


# -- the processes -------------------------------------------------------------------------------


@dataclass
class Processes:
    """What the run started, in the order to stop them: sensor, service, receiver."""

    namespace: str
    logs: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``argv`` in the namespace, output to ``<logs>/<name>.log``, in a session of its own
        (a Ctrl-C at the terminal reaches only the benchmark, which stops the rest in order)."""
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *argv],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((name, process))
        return process

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> list[tuple[str, int]]:
        """SIGTERM each (the sensor first: it flushes), SIGKILL after a grace period."""
        statuses = []
        for name, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT_S)
            statuses.append((name, process.returncode))
        self.started.clear()
        return statuses


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(what: str, ready: Any, processes: Processes) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        processes.check_alive()
        with contextlib.suppress(httpx.TransportError):
            if ready():
                return
        time.sleep(0.05)
    raise BenchError(f"{what} was not ready within {STARTUP_TIMEOUT_S:.0f} s")


def create_token(env: dict[str, str], role: str, name: str, data_dir: Path) -> str:
    argv = [*TRUSTWATCH, "token", "create", "--role", role, "--name", name]
    done = subprocess.run(
        [*argv, "--data-dir", str(data_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    token = done.stdout.strip()
    if done.returncode != 0 or not TOKEN.fullmatch(token):
        raise BenchError(f"trustwatch token create failed ({done.returncode}): {done.stderr}")
    return token


def write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    return path


@dataclass(frozen=True)
class Setup:
    service_url: str
    analyst_token: str
    spool: Path
    group_window_s: int


def start_everything(args: argparse.Namespace, work: Path, processes: Processes) -> Setup:
    from api.delivery.signing import SigningKey

    receiver_port, service_port = free_port(), free_port()
    secret = write_private(work / "receiver.secret", SigningKey(secrets.token_bytes(32)).secret)
    out = work / DELIVERIES
    data_dir = work / "data"
    spool = work / "spool"
    receiver = {
        "name": "ncc",
        "url": f"http://{LOOPBACK}:{receiver_port}/",
        "secret_file": str(secret),
        "min_severity": "medium",
    }
    # The caller's TRUSTWATCH_* (a config file, another port) would change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    env |= {
        "TRUSTWATCH_DATA_DIR": str(data_dir),
        "TRUSTWATCH_PORT": str(service_port),
        "TRUSTWATCH_HOST": LOOPBACK,
        "TRUSTWATCH_RECEIVERS": json.dumps([receiver]),
    }
    group_window = 60  # the service's default group_window_seconds
    if args.grouping == "entity":
        env["TRUSTWATCH_GROUP_BY"] = json.dumps(["rule_id", "entity"])
    elif args.grouping == "window0":
        env["TRUSTWATCH_GROUP_WINDOW_SECONDS"] = "0"
        group_window = 0

    processes.start(
        "receiver",
        [
            *TRUSTWATCH,
            "receiver",
            "--port",
            str(receiver_port),
            "--secret-file",
            str(secret),
            "--out",
            str(out),
        ],
        env,
    )
    wait_until(
        "the receiver",
        lambda: httpx.get(f"http://{LOOPBACK}:{receiver_port}/health", timeout=1).is_success,
        processes,
    )

    sensor_token = create_token(env, "sensor", SENSOR_ID, data_dir)
    analyst_token = create_token(env, "analyst", "bench-reader", data_dir)
    processes.start("service", [*TRUSTWATCH, "serve"], env)
    service_url = f"http://{LOOPBACK}:{service_port}"
    wait_until(
        "the service", lambda: httpx.get(f"{service_url}/healthz", timeout=1).is_success, processes
    )

    token_file = write_private(work / "sensor.token", sensor_token)
    sensor = [*TRUSTWATCH, "sensor", "net", "--interface", SENSOR_IF, "--api", service_url]
    sensor += ["--token-file", str(token_file), "--sensor-id", SENSOR_ID]
    sensor += ["--spool", str(spool), "--batch-wait", str(args.batch_wait)]
    processes.start("sensor", sensor, env)
    wait_until(
        "the sensor",
        lambda: f"capturing on {SENSOR_IF}" in processes.tail("sensor", 50),
        processes,
    )
    return Setup(service_url, analyst_token, spool, group_window)


# -- the runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    index: int
    attacker: str
    victim: str
    sent_ns: int
    captured_ns: int | None  # the latest event.end of the run's flows: the kernel's stamp
    batched_ns: int | None
    stored_ns: int | None
    delivered_ns: int
    flows: int
    alert: dict[str, Any]

    def seconds(self, start: int | None, end: int | None) -> float | None:
        return seconds(start, end)


def seconds(start_ns: int | None, end_ns: int | None) -> float | None:
    """From one moment to another (Unix ns), in seconds; ``None`` if either is unknown."""
    return None if start_ns is None or end_ns is None else (end_ns - start_ns) / 1e9


class Deliveries:
    """Reads the receiver's out file as it grows: one verified delivery per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[dict[str, Any]] = []
        self._handle: IO[bytes] | None = None
        self._partial = b""

    def poll(self) -> None:
        if self._handle is None:
            if not self.path.exists():
                return
            self._handle = self.path.open("rb")
        data = self._partial + self._handle.read()
        *complete, self._partial = data.split(b"\n")
        self.lines += [json.loads(line) for line in complete if line]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def find(self, attacker: str) -> tuple[int, dict[str, Any]] | None:
        """The first delivery carrying an alert about ``attacker``: its time and the alert."""
        for line in self.lines:
            for alert in alerts_in(line["payload"]):
                if attacker in str(alert.get("entity", "")).split():
                    received = parse_time(line["received_at"])
                    assert received is not None  # the receiver always writes it
                    return to_ns(received), alert
        return None


def alerts_in(payload: Any) -> list[dict[str, Any]]:
    """The alerts a delivery carries (a notification holds a list of them)."""
    if isinstance(payload, dict):
        alerts = payload.get("alerts")
        if isinstance(alerts, list):
            return [a for a in alerts if isinstance(a, dict)]
        if isinstance(payload.get("alert"), dict):
            return [payload["alert"]]
    return []


def read_flows(setup: Setup, attacker: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{setup.service_url}/api/v1/flows",
        params={"ip": attacker, "limit": 1000},
        headers={"Authorization": f"Bearer {setup.analyst_token}"},
        timeout=10,
    )
    if reply.status_code != 200:
        raise BenchError(f"GET /api/v1/flows: HTTP {reply.status_code} {reply.text[:300]}")
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def latest(flows: list[dict[str, Any]], name: str) -> int | None:
    moments = [parse_time(f.get(name)) for f in flows]
    return max((to_ns(m) for m in moments if m is not None), default=None)


def one_run(
    index: int,
    attack: Attack,
    args: argparse.Namespace,
    setup: Setup,
    deliveries: Deliveries,
    watcher: SpoolWatcher,
    processes: Processes,
) -> Run:
    attacker, victim = run_addresses(index)
    frames = attack.rewritten(attacker, victim)
    sent = send(frames, SENDER, original_timing=args.timing == "original")
    deadline = time.monotonic() + args.timeout
    while (found := deliveries.find(attacker)) is None:
        if time.monotonic() > deadline:
            batch, flows = watcher.find(attacker), read_flows(setup, attacker)
            batched = None if batch is None else batch.sent_at_ns
            raise BenchError(
                f"run {index}: no delivery about {attacker} within {args.timeout:g} s; "
                f"sent → batched {_s(seconds(sent, batched))} s, "
                f"sent → stored {_s(seconds(sent, latest(flows, 'event.ingested')))} s "
                f"({len(flows)} flows)"
            )
        processes.check_alive()
        time.sleep(DELIVERY_POLL_S)
        deliveries.poll()
    delivered, alert = found
    flows = read_flows(setup, attacker)
    batch = watcher.find(attacker)
    return Run(
        index=index,
        attacker=attacker,
        victim=victim,
        sent_ns=sent,
        captured_ns=latest(flows, "event.end"),
        batched_ns=batch.sent_at_ns if batch else None,
        stored_ns=latest(flows, "event.ingested"),
        delivered_ns=delivered,
        flows=len(flows),
        alert=alert,
    )


# -- the report ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def describe(run: Run, label: str) -> str:
    return (
        f"{label:>7}  {run.attacker:<12} flows {run.flows:3d}  "
        f"sent→batched {_s(run.seconds(run.sent_ns, run.batched_ns))}  "
        f"batched→stored {_s(run.seconds(run.batched_ns, run.stored_ns))}  "
        f"stored→delivered {_s(run.seconds(run.stored_ns, run.delivered_ns))}  "
        f"total {_s(run.seconds(run.sent_ns, run.delivered_ns))} s"
    )


def quantiles(values: Sequence[float]) -> tuple[float, float, float] | None:
    """p50, p95 and max (``inclusive`` quantiles: no value beyond the largest measured)."""
    if len(values) < 2:
        return None
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], max(values)


def report(args: argparse.Namespace, attack: Attack, runs: list[Run], setup: Setup) -> bool:
    """Print the summary; returns whether the target was met."""
    stages = {
        "sent → batched (sensor: batch wait)": [r.seconds(r.sent_ns, r.batched_ns) for r in runs],
        "batched → stored (forwarder + ingest)": [
            r.seconds(r.batched_ns, r.stored_ns) for r in runs
        ],
        "stored → delivered (outbox worker + receiver)": [
            r.seconds(r.stored_ns, r.delivered_ns) for r in runs
        ],
        "sent → stored": [r.seconds(r.sent_ns, r.stored_ns) for r in runs],
        "sent → delivered (end to end)": [r.seconds(r.sent_ns, r.delivered_ns) for r in runs],
    }
    print()
    print(f"{len(runs)} runs, seconds        {'p50':>8} {'p95':>8} {'max':>8}   n")
    summary: dict[str, tuple[float, float, float] | None] = {}
    for name, values in stages.items():
        measured = [v for v in values if v is not None]
        summary[name] = cut = quantiles(measured)
        figures = " ".join(f"{v:8.3f}" for v in cut) if cut else f"{'n/a':>8}" * 3
        print(f"  {name:<46} {figures}  {len(measured):3d}")

    # The last frame's kernel receive stamp (the flows' latest event.end) against "sent": the
    # replay must reach the sensor at once for "sent" to stand for the attack's last packet.
    lags = [s * 1e6 for r in runs if (s := r.seconds(r.sent_ns, r.captured_ns)) is not None]
    if lags:
        print(
            f"  check: last frame's capture stamp - sent: {round(min(lags))} to "
            f"{round(max(lags))} µs (negative: the sensor's socket had it before send() returned)"
        )
    linger = MeterConfig().linger
    print()
    print(
        f"sensor: --batch-wait {args.batch_wait:g} s; flow linger {linger:g} s (MeterConfig); "
        f"housekeeping tick {TICK:g} s; the forwarder is woken when a batch is spooled"
    )
    print(
        f"service: group_by {'rule_id,entity' if args.grouping == 'entity' else 'rule_id'}, "
        f"group_window_seconds {setup.group_window_s}; receiver min_severity medium"
    )
    total = summary["sent → delivered (end to end)"]
    sensor = summary["sent → batched (sensor: batch wait)"]
    if total and sensor:
        print(
            f"ratio end to end ÷ sensor batching: p50 {total[0] / sensor[0]:.2f}, "
            f"p95 {total[1] / sensor[1]:.2f}"
        )
    if total and args.batch_wait:
        print(f"ratio end to end p95 ÷ --batch-wait: {total[1] / args.batch_wait:.2f}")
    titles = sorted({str(r.alert.get("title", "?")) for r in runs})
    short = [r.index for r in runs if r.flows != attack.flows]
    print(f"alerts delivered: {', '.join(titles)}; expected '{attack.title}'")
    if short:
        print(f"NOTE: runs {short} stored a flow count other than the {attack.flows} expected")
    met = total is not None and total[1] <= TARGET_P95_S
    figure = "n/a" if total is None else f"{total[1]:.3f} s"
    print(f"target p95 ≤ {TARGET_P95_S:g} s end to end: {'PASS' if met else 'FAIL'} ({figure})")
    return met


def exactly_once(deliveries: Deliveries, runs: list[Run]) -> str:
    """How often each run's alert reached the receiver (the receiver dedupes on webhook-id;
    this catches one alert sent under two ids)."""
    counts: dict[str, int] = {}
    for line in deliveries.lines:
        for alert in alerts_in(line["payload"]):
            key = str(alert.get("id"))
            counts[key] = counts.get(key, 0) + 1
    repeated = {r.attacker: counts[str(r.alert.get("id"))] for r in runs}
    extra = {a: n for a, n in repeated.items() if n != 1}
    return (
        f"deliveries recorded: {len(deliveries.lines)}; every run's alert exactly once"
        if not extra
        else f"deliveries recorded: {len(deliveries.lines)}; NOT exactly once: {extra}"
    )


def cpu_use(processes: Processes, elapsed: float) -> str:
    """CPU seconds each process used, this one included (its spool watcher wakes every ms)."""
    used = []
    for name, process in processes.started:
        try:  # ip netns exec execs the command: the pid is the command's
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the ")" that ends the command name, utime and stime are the 12th and 13th.
        used.append(f"{name} {(int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'):.1f}")
    own = resource.getrusage(resource.RUSAGE_SELF)
    used.append(f"benchmark {own.ru_utime + own.ru_stime:.1f}")
    return f"CPU seconds, start-up included (the runs took {elapsed:.0f} s): {', '.join(used)}"


# -- main ----------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, attack: Attack, work: Path, namespace: str) -> int:
    processes = Processes(namespace, work)
    deliveries = Deliveries(work / DELIVERIES)
    watcher: SpoolWatcher | None = None
    try:
        setup = start_everything(args, work, processes)
        started = time.monotonic()
        watcher = SpoolWatcher(setup.spool)
        watcher.start()
        runs: list[Run] = []
        rng = random.Random(args.seed)  # noqa: S311 - spacing runs, not secrets
        total = args.warmup + args.runs
        delivered_s = 0.0  # when the previous run was delivered
        for index in range(total):
            pause = args.pause + rng.uniform(0, PAUSE_JITTER_S)
            if args.grouping == "defaults":
                # One rule, one group: its next alert goes at once only after the window.
                pause += setup.group_window_s
            if index:
                time.sleep(max(0.0, delivered_s + pause - time.time()))
            run = one_run(index, attack, args, setup, deliveries, watcher, processes)
            delivered_s = run.delivered_ns / 1e9
            warm = index < args.warmup
            print(describe(run, "warm-up" if warm else f"run {index - args.warmup + 1}"))
            if not warm:
                runs.append(run)
        if watcher.missed:
            print(f"NOTE: {len(watcher.missed)} spooled batches left before they could be read")
        report(args, attack, runs, setup)
        print(exactly_once(deliveries, runs))
        print(cpu_use(processes, time.monotonic() - started))
    except BenchError as exc:
        print(f"bench/e2e.py: {exc}", file=sys.stderr)
        for name, _ in processes.started:
            print(f"--- {name} log (last lines):\n{processes.tail(name)}", file=sys.stderr)
        return 1
    finally:
        if watcher is not None:
            watcher.stop()
        deliveries.close()
        statuses = processes.stop_all()
    print("exit statuses: " + ", ".join(f"{name} {code}" for name, code in statuses))
    return 0


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds through the finally blocks: processes and namespace go, as on Ctrl-C.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def namespace_for_this_run() -> Iterator[str]:
    """A fresh namespace, joined, and deleted at the end however the run ends."""
    name = f"{PREFIX}{os.getpid()}"
    try:
        create_namespace(name)
        join_namespace(name)
        yield name
    finally:
        # What was started in it is stopped by then; anything else still in it was started by
        # this run too (a private namespace), so it goes before the namespace does.
        pids = ip("netns", "pids", name, check=False).stdout.split()
        for pid in {int(p) for p in pids if p.isdigit()} - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ip("netns", "delete", name, check=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs (20)")
    parser.add_argument("--warmup", type=int, default=1, help="runs before, not counted (1)")
    parser.add_argument("--attack", choices=sorted(ATTACKS), default="nmap_syn")
    parser.add_argument(
        "--timing",
        choices=["original", "fast"],
        default="original",
        help="send at the capture's spacing (default) or back to back",
    )
    parser.add_argument(
        "--batch-wait", type=float, default=1.0, help="the sensor's --batch-wait (default 1)"
    )
    parser.add_argument(
        "--grouping",
        choices=["entity", "window0", "defaults"],
        default="entity",
        help="entity: group_by rule_id+entity (default); window0: group window 0; "
        "defaults: neither, runs a group window apart",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.5,
        help=f"least seconds between a delivery and the next run; up to {PAUSE_JITTER_S:g} s "
        "more, at random (0.5)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the random pauses (1)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a run may take to be delivered"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if not 2 <= args.runs <= 10_000 or not 0 <= args.warmup <= 100:
        parser.error("--runs must be 2..10000 and --warmup 0..100")
    if args.batch_wait < 0 or args.pause < 0 or args.timeout <= 0:
        parser.error("--batch-wait and --pause must be 0 or more, --timeout more than 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        print("bench/e2e.py needs root on Linux: network namespaces, raw sockets", file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "sysctl") if shutil.which(tool) is None]
    if missing:
        print(
            f"bench/e2e.py needs {' '.join(missing)}: apt-get install iproute2 procps",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}; "
        f"attack {args.attack}, {args.timing} timing, --batch-wait {args.batch_wait:g}, "
        f"grouping {args.grouping}"
    )
    try:
        removed = remove_leftovers()
        if removed:
            print(f"removed namespaces of earlier, killed runs: {' '.join(removed)}")
        attack = load_attack(args.attack)
        print(
            f"{attack.name}: {len(attack.frames)} IPv4 frames over {attack.span * 1000:.1f} ms, "
            f"{attack.flows} flows expected; alert '{attack.title}'"
        )
        work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
        try:
            with namespace_for_this_run() as namespace:
                return measure(args, attack, work, namespace)
        finally:
            if args.keep:
                print(f"work directory kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    except BenchError as exc:
        print(f"bench/e2e.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/e2e.py: interrupted; processes and namespace removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
