"""Ingest throughput of a real ``trustwatch serve``, measured against its own ``/healthz`` rate.

What it measures, in one run against one server (a subprocess on a free loopback port with a
fresh temporary data directory and a sensor token made with ``trustwatch token create``):

* the ``/healthz`` request rate, from a client in a second process: ``wrk`` when it is on PATH,
  else a multi-threaded httpx client in a ``multiprocessing`` child;
* flow records per second accepted by ``POST /api/v1/ingest`` in gzip-compressed batches of
  1,000 varied flow records with unique ``event.id`` values (never the duplicate path), from C
  concurrent connections in a second process; batch latency percentiles;
* the ratio of the two, so that figures from different machines can be compared;
* after stopping the server, the database file size and ``SELECT count(*) FROM flows``, which
  must equal the number of records the server acknowledged.

With ``--profile`` it also times, in-process, what the server does per batch of 1,000 records:
gzip decompression, the envelope's JSON parse and validation, ``validate_record`` x 1,000, the
store's row building and ``SqliteStore.ingest``, and one access-log line.

Run from the repository root, with trustwatch installed in the interpreter's environment::

    /tmp/venv/bin/python bench/ingest.py --seconds 10 --concurrency 4 --profile
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import ipaddress
import itertools
import logging
import multiprocessing
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from api.store.timeconv import to_us
from sensors.flows import event_id
from sensors.wire import FLOW_DATASET, SCHEMA_VERSION, utc, validate_record

REPO: Final = Path(__file__).resolve().parent.parent
SENSOR_ID: Final = "bench-sensor"
LOOPBACK: Final = "127.0.0.1"
BATCH_SIZE: Final = 1000
GZIP_LEVEL: Final = 6  # what sensors.shipper.ShipperConfig ships with
STARTUP_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
REQUEST_TIMEOUT_S: Final = 60.0
# Upper bound on prebuilt batches (about 0.1 MB compressed each), whatever --seconds asks for.
MAX_BATCHES: Final = 5000
# Batches prebuilt per second of ingest phase: several times what a 2-core machine sustains, so
# that the phase ends on time rather than by running out (which is reported if it happens).
BATCHES_PER_SECOND_BUDGET: Final = 40
# A healthz worker thread stops after this many requests even if the deadline has not passed.
MAX_REQUESTS_PER_THREAD: Final = 2_000_000
BASE_TIME: Final = datetime(2026, 11, 23, tzinfo=UTC)


class BenchError(Exception):
    """The benchmark could not run or a check failed; the message says which."""


# -- flow records --------------------------------------------------------------------------------

_TCP_PORTS: Final = (443, 443, 443, 80, 22, 25, 993, 3389, 8080, 445, 5432)
_UDP_PORTS: Final = (53, 53, 53, 123, 443, 514, 161, 5353)
_PUBLIC_FIRST_OCTETS: Final = (8, 23, 31, 52, 93, 104, 142, 151, 172, 185, 203, 212)


def _ipv4(rng: random.Random, internal: bool) -> str:
    if internal:
        return f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    first = rng.choice(_PUBLIC_FIRST_OCTETS)
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ipv6(rng: random.Random, internal: bool) -> str:
    prefix = "2001:db8:10:" if internal else "2001:db8:ff00:"
    return f"{prefix}{rng.randrange(16):x}::{rng.randrange(1, 0xFFFF):x}"


def community_id(proto: int, src: str, dst: str, sport: int, dport: int) -> str:
    """Community ID v1 (seed 0) of a TCP or UDP 5-tuple, as the sensors compute it.

    Written out because the ``communityid`` package takes ~40 us a record, which would make
    building a few hundred thousand records take longer than the benchmark.

    >>> community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80)
    '1:LQU9qZlK+B5F3KDmev6m5PMibrg='
    """
    a, b = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    digest = hashlib.sha1(  # noqa: S324 - the Community ID spec is SHA-1, not a security use
        b"\x00\x00" + a + b + bytes((proto, 0)) + sport.to_bytes(2) + dport.to_bytes(2)
    ).digest()
    return "1:" + base64.b64encode(digest).decode()


def flow_record(rng: random.Random, seq: int, run_tag: str) -> dict[str, Any]:
    """One realistic flow record: mixed directions, IPv4/IPv6, TCP/UDP/ICMP, sizes and ends."""
    v6 = rng.random() < 0.1
    make_ip = _ipv6 if v6 else _ipv4
    outbound = rng.random() < 0.75
    src, dst = make_ip(rng, True), make_ip(rng, not outbound)
    kind = rng.choices(("tcp", "udp", "icmp"), weights=(70, 25, 5))[0]
    start = BASE_TIME + timedelta(milliseconds=seq * 3 + rng.randrange(1000))
    duration_us = rng.randrange(0, 120_000_000) if kind == "tcp" else rng.randrange(0, 5_000_000)
    packets_out = max(1, int(rng.lognormvariate(2.0, 1.5)))
    packets_in = 0 if rng.random() < 0.08 else max(1, int(packets_out * rng.uniform(0.5, 1.5)))
    record: dict[str, Any] = {
        # As the sensor makes them (sensors.flows.event_id): start time, then a hash.
        "event.id": event_id(SENSOR_ID, f"{run_tag}/{seq}", to_us(start) * 1000),
        "event.dataset": FLOW_DATASET,
        "event.start": utc(start),
        "event.end": utc(start + timedelta(microseconds=duration_us)),
        "event.duration": duration_us * 1000,
        "network.type": "ipv6" if v6 else "ipv4",
        "source.ip": src,
        "source.bytes": packets_out * rng.randint(40, 1500),
        "source.packets": packets_out,
        "destination.ip": dst,
        "destination.bytes": packets_in * rng.randint(40, 1500),
        "destination.packets": packets_in,
    }
    if rng.random() < 0.05:
        record["network.vlan.id"] = str(rng.choice((10, 20, 100, 4000)))
    if kind == "icmp":
        record["network.transport"] = "ipv6-icmp" if v6 else "icmp"
        record["network.iana_number"] = "58" if v6 else "1"
        record["icmp.type"] = rng.choice((128, 1, 135)) if v6 else rng.choice((8, 8, 3, 11))
        record["icmp.code"] = 0
        record["flow.end_reason"] = "idle_timeout"
        return record
    proto = 6 if kind == "tcp" else 17
    sport = rng.randint(32768, 60999)
    dport = rng.choice(_TCP_PORTS if kind == "tcp" else _UDP_PORTS)
    if rng.random() < 0.1:
        dport = rng.randint(1024, 65535)
    record["network.transport"] = kind
    record["network.iana_number"] = str(proto)
    record["source.port"] = sport
    record["destination.port"] = dport
    record["network.community_id"] = community_id(proto, src, dst, sport, dport)
    if kind == "udp":
        record["flow.end_reason"] = rng.choice(("idle_timeout", "idle_timeout", "active_timeout"))
        return record
    reset = rng.random() < 0.1
    record["flow.end_reason"] = (
        rng.choices(("rst", "fin", "idle_timeout", "active_timeout"), weights=(0, 80, 15, 5))[0]
        if not reset
        else "rst"
    )
    total = packets_out + packets_in
    record["flow.tcp_flags.syn"] = 2 if packets_in else 1
    record["flow.tcp_flags.ack"] = max(0, total - 1)
    record["flow.tcp_flags.fin"] = 0 if reset else 2
    record["flow.tcp_flags.rst"] = 1 if reset else 0
    record["flow.tcp_flags.psh"] = rng.randrange(0, total + 1)
    return record


def encode_batch(records: Sequence[dict[str, Any]], sent_at: datetime) -> bytes:
    """The request body a sensor sends: a gzip-compressed JSON envelope."""
    envelope = {
        "schema_version": SCHEMA_VERSION,
        "sensor_id": SENSOR_ID,
        "sent_at": utc(sent_at),
        "records": list(records),
    }
    return gzip.compress(orjson.dumps(envelope), compresslevel=GZIP_LEVEL)


def build_records(count: int, seed: int, first_seq: int) -> list[list[dict[str, Any]]]:
    """``count`` batches of :data:`BATCH_SIZE` records with ids unique across the run."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    run_tag = f"{SENSOR_ID}/{seed}"
    return [
        [flow_record(rng, first_seq + b * BATCH_SIZE + i, run_tag) for i in range(BATCH_SIZE)]
        for b in range(count)
    ]


def check_batch(records: Sequence[dict[str, Any]]) -> None:
    """Every record must pass the server's own validation, and ids must not repeat."""
    for index, raw in enumerate(records):
        try:
            validate_record(raw)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise BenchError(f"generated record {index} is invalid: {exc}") from exc
    if len({r["event.id"] for r in records}) != len(records):
        raise BenchError("generated event ids repeat")


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    # Any TRUSTWATCH_* of the caller's shell (a config file, another port) would change what is
    # measured, and unknown ones make the service refuse to start.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    env |= {
        "TRUSTWATCH_DATA_DIR": str(data_dir),
        "TRUSTWATCH_PORT": str(port),
        "TRUSTWATCH_HOST": LOOPBACK,
        "TRUSTWATCH_LOG_LEVEL": "warning",
    }
    return env


def create_sensor_token(env: dict[str, str], data_dir: Path) -> str:
    command = [sys.executable, "-m", "api.cli", "token", "create", "--role", "sensor"]
    command += ["--name", SENSOR_ID, "--data-dir", str(data_dir)]
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    token = done.stdout.strip()
    if done.returncode != 0 or not token.startswith("tw_"):
        raise BenchError(f"trustwatch token create failed ({done.returncode}): {done.stderr}")
    return token


def start_server(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        # stdout carries the first admin token, which nobody here needs to see.
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def wait_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        for _ in range(int(STARTUP_TIMEOUT_S / 0.05)):
            if server.poll() is not None:
                raise BenchError(f"the server exited with {server.returncode}:\n{tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    raise BenchError(f"/healthz did not answer 200 within {STARTUP_TIMEOUT_S} s")


def stop_server(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT_S)
    return server.returncode


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def process_written_bytes(pid: int) -> int | None:
    """Bytes a process caused to be written to storage (``/proc/<pid>/io``), else ``None``."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from ``/proc`` (Linux), else ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" that ends the command name, utime and stime are the 12th and 13th fields.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- /healthz --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthzResult:
    tool: str
    requests_per_s: float
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    client_cpu_s: float | None = None


_WRK_RATE: Final = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL: Final = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_PERCENTILE: Final = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_NON_2XX: Final = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET_ERRORS: Final = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+)")
_UNIT_S: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run printed, and the CPU it took."""

    requests_per_s: float
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu_s: float


def run_wrk(
    wrk: str, url: str, concurrency: int, seconds: int, script: Path | None = None
) -> WrkRun:
    """``wrk`` with one thread (it drives tens of thousands of requests/s, far beyond this
    server; more threads would only take CPU from it) and ``concurrency`` connections."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = _WRK_RATE.search(done.stdout)
    total = _WRK_TOTAL.search(done.stdout)
    if done.returncode != 0 or rate is None or total is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    percentiles = {
        m.group(1): float(m.group(2)) * _UNIT_S[m.group(3)] * 1000
        for m in _WRK_PERCENTILE.finditer(done.stdout)
    }
    errors = sum(int(n) for n in _WRK_NON_2XX.findall(done.stdout))
    socket_errors = _WRK_SOCKET_ERRORS.search(done.stdout)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkRun(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        errors=errors,
        seconds=float(total.group(2)) * _UNIT_S[total.group(3)],
        p50_ms=percentiles.get("50"),
        p99_ms=percentiles.get("99"),
        client_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def healthz_wrk(wrk: str, url: str, concurrency: int, seconds: int) -> HealthzResult:
    run = run_wrk(wrk, url, concurrency, seconds)
    return HealthzResult(
        tool=f"wrk -t1 -c{concurrency}",
        requests_per_s=run.requests_per_s,
        requests=run.requests,
        errors=run.errors,
        seconds=run.seconds,
        p50_ms=run.p50_ms,
        p99_ms=run.p99_ms,
        client_cpu_s=run.client_cpu_s,
    )


def healthz_httpx_worker(url: str, concurrency: int, seconds: float) -> HealthzResult:
    """Runs in a child process: ``concurrency`` threads, one keep-alive connection each."""
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    counts = {"ok": 0, "errors": 0}
    latencies: list[float] = []

    def loop() -> None:
        ok = errors = 0
        mine: list[float] = []
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            for _ in range(MAX_REQUESTS_PER_THREAD):
                started = time.perf_counter()
                if started >= deadline:
                    break
                try:
                    status = client.get(url).status_code
                except httpx.HTTPError:
                    status = 0
                mine.append(time.perf_counter() - started)
                if status == 200:
                    ok += 1
                else:
                    errors += 1
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors
            latencies.extend(mine)

    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    p50, _, p99 = percentiles_ms(latencies)
    return HealthzResult(
        tool=f"httpx, {concurrency} threads in a child process",
        requests_per_s=counts["ok"] / elapsed,
        requests=counts["ok"],
        errors=counts["errors"],
        seconds=elapsed,
        p50_ms=p50,
        p99_ms=p99,
        client_cpu_s=time.process_time() - cpu_before,
    )


# -- ingest ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    batches: int
    accepted: int
    duplicates: int
    rejected: int
    errors: list[str]
    seconds: float
    latencies_s: list[float] = field(repr=False)
    exhausted: bool
    client_cpu_s: float


def ingest_worker(
    url: str, token: str, bodies: list[bytes], concurrency: int, seconds: float
) -> IngestResult:
    """Runs in a child process: ``concurrency`` threads post the prebuilt bodies in turn."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    next_index = itertools.count()
    lock = threading.Lock()
    totals = {"batches": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[str] = []
    latencies: list[float] = []
    last_done = [0.0]
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S, headers=headers) as client:
            for _ in range(len(bodies)):
                if time.perf_counter() >= deadline or errors:
                    return
                with lock:
                    index = next(next_index)
                if index >= len(bodies):
                    return
                started = time.perf_counter()
                try:
                    response = client.post(url, content=bodies[index])
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"batch {index}: {type(exc).__name__}: {exc}")
                    return
                done = time.perf_counter()
                with lock:
                    last_done[0] = max(last_done[0], done)
                    if response.status_code != 200:
                        errors.append(f"batch {index}: HTTP {response.status_code} {response.text}")
                        return
                    reply = orjson.loads(response.content)
                    latencies.append(done - started)
                    totals["batches"] += 1
                    totals["accepted"] += reply["accepted"]
                    totals["duplicates"] += reply["duplicates"]
                    totals["rejected"] += len(reply["rejected"])
                    if reply["rejected"]:
                        errors.append(f"batch {index}: rejected {reply['rejected'][:3]}")

    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT_S)
    with lock:
        handed_out = next(next_index)
    return IngestResult(
        batches=totals["batches"],
        accepted=totals["accepted"],
        duplicates=totals["duplicates"],
        rejected=totals["rejected"],
        errors=errors,
        seconds=(last_done[0] or time.perf_counter()) - started,
        latencies_s=latencies,
        exhausted=handed_out > len(bodies),
        client_cpu_s=time.process_time() - cpu_before,
    )


def percentiles_ms(samples: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 in milliseconds (``None`` without enough samples)."""
    if len(samples) < 2:
        return None, None, None
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


# -- in-process profile --------------------------------------------------------------------------


def profile_split(batches: list[list[dict[str, Any]]], workdir: Path) -> list[tuple[str, float]]:
    """Median milliseconds, per batch of 1,000 records, of each step the server takes."""
    # Imported here: only --profile needs the server's modules in this process.
    from api.body import gunzip
    from api.pipeline import Pipeline
    from api.routers.ingest import parse_envelope
    from api.settings import Settings
    from api.store import SqliteStore
    from api.tokens import Principal, Role
    from sensors.wire import FlowRecord, dump_record

    settings = Settings(data_dir=workdir)
    principal = Principal(id=1, name=SENSOR_ID, role=Role.SENSOR, sensor_id=SENSOR_ID)
    now = BASE_TIME + timedelta(days=1)
    extra = {"observer.name": SENSOR_ID, "event.ingested": utc(now)}
    samples: dict[str, list[float]] = {}

    def timed(name: str, started: float) -> None:
        samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    full = SqliteStore.open(workdir / "full.sqlite3")
    off = SqliteStore.open(workdir / "off.sqlite3")
    detecting = SqliteStore.open(workdir / "detect.sqlite3")
    pipeline = Pipeline.from_directories(None)  # the built-in rule pack, as the service runs it
    # Private on purpose: only to show how much of the store's time is the commit's fsync.
    off._writer.execute("PRAGMA synchronous = OFF")
    try:
        for records in batches:
            body = encode_batch(records, now)
            started = time.perf_counter()
            raw = gunzip(body, settings.max_decompressed_bytes)
            timed("gunzip body", started)
            started = time.perf_counter()
            envelope = parse_envelope(raw, principal, settings)
            timed("JSON parse + Envelope validation", started)
            started = time.perf_counter()
            parsed = [validate_record(r) for r in envelope.records]
            timed("validate_record x 1000", started)
            flows = [r for r in parsed if isinstance(r, FlowRecord)]
            started = time.perf_counter()
            for flow in flows:
                orjson.dumps(dump_record(flow) | extra)
            timed("store: dump_record + orjson.dumps x 1000", started)
            started = time.perf_counter()
            full.ingest(SENSOR_ID, flows, [], now)
            timed("store.ingest, all of it (synchronous=FULL)", started)
            started = time.perf_counter()
            off.ingest(SENSOR_ID, flows, [], now)
            timed("store.ingest, synchronous=OFF (comparison)", started)
            started = time.perf_counter()
            detecting.ingest(SENSOR_ID, flows, [], now, detect=pipeline.detect)
            timed("store.ingest with the rule pack (as served)", started)
    finally:
        full.close()
        off.close()
        detecting.close()
    result = [(name, statistics.median(values)) for name, values in samples.items()]
    result.append(("one access-log line (per request)", access_log_line_ms()))
    return result


def access_log_line_ms(lines: int = 2000) -> float:
    """What one JSON access-log line costs, formatted as ``trustwatch serve`` formats it."""
    from api.logs import configure_logging

    configure_logging("info")
    root = logging.getLogger()
    handler = root.handlers[0]
    access_log = logging.getLogger("trustwatch.access")
    with Path(os.devnull).open("w") as devnull:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(devnull)
        extra = {"method": "POST", "path": "/api/v1/ingest", "status": 200}
        extra |= {"duration_ms": 12.34, "client": LOOPBACK}
        started = time.perf_counter()
        for _ in range(lines):
            access_log.info("request", extra=extra)
        elapsed = time.perf_counter() - started
        root.handlers[:] = []
    return elapsed * 1000 / lines


# -- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """Everything one server run yields."""

    health: HealthzResult
    health_server_cpu_s: float | None
    ingest: IngestResult
    ingest_server_cpu_s: float | None
    ingest_server_written: int | None
    exit_status: int
    stored: int
    db_bytes: int
    wal_bytes: int
    log_lines: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each phase (10)")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections (4)")
    parser.add_argument(
        "--batches",
        type=int,
        default=0,
        help=f"batches to prebuild (default {BATCHES_PER_SECOND_BUDGET} per second, "
        f"at most {MAX_BATCHES})",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated records")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx fallback for healthz")
    parser.add_argument(
        "--no-anomaly",
        action="store_true",
        help="serve with TRUSTWATCH_ANOMALY_DETECTION=false (rules only), to price the detectors",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also time the server's steps in-process"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600 or not 1 <= args.concurrency <= 256:
        parser.error("--seconds must be 1..600 and --concurrency 1..256")
    if args.batches <= 0:
        args.batches = args.seconds * BATCHES_PER_SECOND_BUDGET
    args.batches = min(args.batches, MAX_BATCHES)
    return args


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def measure(args: argparse.Namespace, bodies: list[bytes], tmp: Path) -> Measured:
    """Start the server, run both phases against it, stop it, and count what it stored."""
    data_dir = tmp / "data"
    log_path = tmp / "serve.log"
    port = free_port()
    env = server_env(data_dir, port)
    if args.no_anomaly:
        env["TRUSTWATCH_ANOMALY_DETECTION"] = "false"
    base_url = f"http://{LOOPBACK}:{port}"
    wrk = None if args.no_wrk else shutil.which("wrk")
    spawn = multiprocessing.get_context("spawn")
    token = create_sensor_token(env, data_dir)
    server = start_server(env, log_path)
    try:
        wait_healthy(base_url, server, log_path)
        warm_up(base_url, token, bodies[0])

        cpu_before = process_cpu_seconds(server.pid)
        if wrk:
            health = healthz_wrk(wrk, base_url + "/healthz", args.concurrency, args.seconds)
        else:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                health = pool.submit(
                    healthz_httpx_worker,
                    base_url + "/healthz",
                    args.concurrency,
                    float(args.seconds),
                ).result(timeout=args.seconds + REQUEST_TIMEOUT_S + 30)
        health_cpu = _delta(cpu_before, process_cpu_seconds(server.pid))
        if health.errors:
            raise BenchError(f"/healthz: {health.errors} failed requests")

        cpu_before = process_cpu_seconds(server.pid)
        written_before = process_written_bytes(server.pid)
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            ingest = pool.submit(
                ingest_worker,
                base_url + "/api/v1/ingest",
                token,
                bodies[1:],
                args.concurrency,
                float(args.seconds),
            ).result(timeout=args.seconds + REQUEST_TIMEOUT_S + 60)
        ingest_cpu = _delta(cpu_before, process_cpu_seconds(server.pid))
        written_after = process_written_bytes(server.pid)
    finally:
        status = stop_server(server)
    if ingest.errors:
        raise BenchError("ingest failed: " + "; ".join(ingest.errors[:5]))
    if ingest.rejected or ingest.duplicates:
        raise BenchError(f"rejected {ingest.rejected}, duplicates {ingest.duplicates}")

    db_path = data_dir / "trustwatch.sqlite3"
    wal = db_path.with_name(db_path.name + "-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        stored = int(db.execute("SELECT count(*) FROM flows").fetchone()[0])
    return Measured(
        health=health,
        health_server_cpu_s=health_cpu,
        ingest=ingest,
        ingest_server_cpu_s=ingest_cpu,
        ingest_server_written=(
            None
            if written_before is None or written_after is None
            else written_after - written_before
        ),
        exit_status=status,
        stored=stored,
        db_bytes=db_path.stat().st_size,
        wal_bytes=wal_bytes,
        log_lines=len(log_path.read_bytes().splitlines()),
    )


def warm_up(base_url: str, token: str, body: bytes) -> None:
    """A few healthz requests and one batch (counted in the stored total) before timing."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(50):
            client.get("/healthz")
        reply = client.post("/api/v1/ingest", content=body, headers=headers)
    if reply.status_code != 200 or reply.json() != {
        "accepted": BATCH_SIZE,
        "duplicates": 0,
        "rejected": [],
    }:
        raise BenchError(f"warm-up batch: HTTP {reply.status_code} {reply.text[:500]}")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def report(args: argparse.Namespace, m: Measured, prebuilt: int) -> None:
    health, ingest = m.health, m.ingest
    records_per_s = ingest.accepted / ingest.seconds
    batches_per_s = ingest.batches / ingest.seconds
    p50, p95, p99 = percentiles_ms(ingest.latencies_s)
    print(f"/healthz ({health.tool}, {health.seconds:.1f} s)")
    print(f"  requests/s           {health.requests_per_s:,.0f}  ({health.requests:,} requests)")
    print(f"  latency p50/p99      {_fmt(health.p50_ms, 2)} / {_fmt(health.p99_ms, 2)} ms")
    if m.health_server_cpu_s:
        print(
            f"  server CPU           {m.health_server_cpu_s:.2f} s = "
            f"{m.health_server_cpu_s / health.seconds:.2f} cores, "
            f"{m.health_server_cpu_s / health.requests * 1e6:.0f} us/request"
        )
    print(f"  client CPU           {_fmt(health.client_cpu_s, 2)} s")
    print(
        f"POST /api/v1/ingest ({args.concurrency} connections, {BATCH_SIZE} records/batch, "
        f"gzip, {ingest.seconds:.1f} s)"
    )
    print(f"  records/s            {records_per_s:,.0f}  ({ingest.accepted:,} accepted)")
    print(f"  batches/s            {batches_per_s:,.2f}  ({ingest.batches} batches)")
    print(f"  latency p50/p95/p99  {_fmt(p50)} / {_fmt(p95)} / {_fmt(p99)} ms")
    if m.ingest_server_cpu_s:
        print(
            f"  server CPU           {m.ingest_server_cpu_s:.2f} s = "
            f"{m.ingest_server_cpu_s / ingest.seconds:.2f} cores, "
            f"{m.ingest_server_cpu_s / ingest.batches * 1000:.1f} ms/batch"
        )
    if m.ingest_server_written is not None and ingest.batches:
        print(
            f"  server disk writes   {m.ingest_server_written / 2**20:,.0f} MiB = "
            f"{m.ingest_server_written / ingest.batches / 2**20:.1f} MiB/batch"
        )
    print(f"  client CPU           {ingest.client_cpu_s:.2f} s")
    fifth = len(ingest.latencies_s) // 5
    if fifth >= 2:
        first = statistics.median(ingest.latencies_s[:fifth]) * 1000
        last = statistics.median(ingest.latencies_s[-fifth:]) * 1000
        print(f"  median latency, first / last fifth of batches  {first:.1f} / {last:.1f} ms")
    if ingest.exhausted:
        print(f"  NOTE: all {prebuilt} prebuilt batches were sent early; raise --batches")
    print("ratios")
    print(f"  ingest records/s / healthz req/s   {records_per_s / health.requests_per_s:.3f}")
    print(f"  ingest batches/s / healthz req/s   {batches_per_s / health.requests_per_s:.5f}")
    stored_per_flow = m.db_bytes / max(m.stored, 1)
    print("store (after the server stopped)")
    print(f"  server exit status   {m.exit_status}; WAL left behind: {m.wal_bytes:,} bytes")
    print(f"  database file        {m.db_bytes / 2**20:,.1f} MiB ({stored_per_flow:,.0f} B/flow)")
    print(f"  flows stored         {m.stored:,} (acknowledged {BATCH_SIZE + ingest.accepted:,}")
    print("                       including the warm-up batch)")
    print(f"  server log lines     {m.log_lines:,} at TRUSTWATCH_LOG_LEVEL=warning")


def run(args: argparse.Namespace) -> None:
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    sent_at = datetime.now(UTC)
    started = time.perf_counter()
    # One batch more than the timed phase may post: it warms the server up.
    batches = build_records(args.batches + 1, args.seed, first_seq=0)
    check_batch(batches[0])
    bodies = [encode_batch(b, sent_at) for b in batches]
    print(
        f"prebuilt {len(bodies)} batches of {BATCH_SIZE} records in "
        f"{time.perf_counter() - started:.1f} s: "
        f"{len(orjson.dumps(batches[0])) / 1024:.0f} KiB JSON, "
        f"{len(bodies[0]) / 1024:.0f} KiB gzip per batch; "
        f"{sum(map(len, bodies)) / 2**20:.0f} MiB in all"
    )
    with tempfile.TemporaryDirectory(prefix="trustwatch-bench-") as name:
        tmp = Path(name)
        measured = measure(args, bodies, tmp)
        print()
        report(args, measured, len(bodies) - 1)
        if args.profile:
            profile = profile_split(batches[1:8], tmp)
            print(f"in-process profile: median ms per batch of {BATCH_SIZE} records")
            for step, ms in profile:
                print(f"  {step:<46} {ms:8.2f}")
    acknowledged = BATCH_SIZE + measured.ingest.accepted
    if measured.stored != acknowledged:
        raise BenchError(
            f"the database holds {measured.stored} flows; the server acknowledged {acknowledged}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except BenchError as exc:
        print(f"bench/ingest.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
