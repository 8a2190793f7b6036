"""Packets per second per core of our flow meter, side by side with nfstream, cicflowmeter, tshark.

One large capture, every tool on the same file in the same run, each as a child process whose
wall-clock time, CPU time (user + system, from ``wait4``, so it includes the child's own
children, such as nfstream's meter process) and peak RSS are measured from outside:

* **ours**, the project's pipeline as ``trustwatch sensor net`` runs it, without shipping:
  ``read_frames`` → ``PacketDecoder.decode`` → ``FlowMeter.add(packet, frame)`` (the frame
  lets it read DNS/TLS/HTTP metadata) → ``FlowExporter.record``, the records built in memory and
  counted. Four cut-down variants show where the time goes: reading frames only; reading and
  decoding; the meter on headers only (``add(packet)``); the meter with application metadata
  but without records;
* **nfstream 6.6** (``NFStreamer(source=FILE, n_meters=1)``), DPI off (``n_dissections=0``,
  ``statistical_analysis=False``) and on (default ``n_dissections``);
* **tshark** ``-q -z conv,tcp -z conv,udp -r FILE``, counting conversations;
* **cicflowmeter**, scapy-based and slow, on a prefix of the capture (20,000 packets by
  default, written as a separate small pcap), next to ours on the same prefix.

nfstream and cicflowmeter are installed into a virtualenv of their own under the cache directory
(created on first use; the project's environment is untouched) and run by small driver snippets.
A tool that cannot be installed or run is reported with the reason, and the others still run.
Packets per second per core is the input's packet count divided by the child's CPU seconds.

The input is ``--pcap FILE``, or else a capture of ≥ ``--packets`` packets of mixed traffic that
``bench/make_capture.py`` generates (seeded) into the cache directory the first time. Its manifest
gives the expected flows per transport, which every tool's counts are checked against.

Run from the repository root, with trustwatch installed in the interpreter's environment::

    /tmp/venv/bin/python bench/sensor.py --repeat 3 --profile \
        --tools-python /root/.pyenv/versions/3.12.1/bin/python3.12
    /tmp/venv/bin/python bench/sensor.py --repeat 3 \
        --tools-python /root/.pyenv/versions/3.12.1/bin/python3.12 \
        --pcap ../shared/data/slips/test-cc/test-cc-capture-1.pcap

``--tools-python`` picks the interpreter of the tools' virtualenv (default: this one).
cicflowmeter 0.5 needs Python 3.12; on 3.11 pip picks an older release. The figures and how to
read them are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sensors.errors import CaptureError
from sensors.pcapfile import read_frames

REPO: Final = Path(__file__).resolve().parent.parent
GENERATOR: Final = REPO / "bench" / "make_capture.py"
NFSTREAM_REQUIREMENT: Final = "nfstream==6.6.0"
CICFLOWMETER_REQUIREMENT: Final = "cicflowmeter"
INSTALL_TIMEOUT_S: Final = 900.0
GENERATE_TIMEOUT_S: Final = 1800.0
POLL_S: Final = 0.01  # how often a running child is checked; bounds the wall-clock error
TOP_FUNCTIONS: Final = 15
OUR_STAGES: Final = (
    ("read", "ours: read_frames only"),
    ("decode", "ours: read + decode"),
    ("headers", "ours: decode + meter, headers only"),
    ("meter", "ours: decode + meter + app metadata"),
    ("export", "ours: full pipeline (records)"),
)
TOOLS: Final = ("ours", "nfstream", "tshark", "cicflowmeter")


class BenchError(Exception):
    """The benchmark cannot run at all; the message says why."""


# -- the drivers, run as ``python -c DRIVER args`` in the child processes -----------------------

OUR_DRIVER: Final = r"""
import inspect, json, sys, time
from pathlib import Path
from sensors.flows import FlowExporter, FlowMeter
from sensors.packet import PacketDecoder
from sensors.pcapfile import read_frames

# FlowMeter.add(packet, frame) also reads application metadata from the frame's payload.
WITH_FRAME = len(inspect.signature(FlowMeter.add).parameters) >= 3
NAMES = ("dns.question.name", "tls.client.server_name", "url.domain")


def run(path, stage):
    frames = flows = named = 0
    by_transport = {}
    decoder = PacketDecoder()
    meter = FlowMeter()
    exporter = FlowExporter("bench-sensor")

    def take():  # ended flows are taken every 4,096 frames and at the end
        nonlocal flows, named
        ended = meter.drain()
        flows += len(ended)
        if stage == "export":
            records = [exporter.record(flow) for flow in ended]
            for record in records:
                name = record["network.transport"]
                by_transport[name] = by_transport.get(name, 0) + 1
                named += any(k in record for k in NAMES)

    if stage == "read":
        for frame in read_frames(path):
            frames += 1
    elif stage == "decode":
        for frame in read_frames(path):
            frames += 1
            decoder.decode(frame.ts_ns, frame.linktype, frame.data)
    elif stage == "headers" or not WITH_FRAME:
        for frame in read_frames(path):
            frames += 1
            packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
            if packet is not None:
                meter.add(packet)
            if not frames & 0xFFF:
                take()
        meter.flush()
        take()
    else:
        for frame in read_frames(path):
            frames += 1
            packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
            if packet is not None:
                meter.add(packet, frame.data)
            if not frames & 0xFFF:
                take()
        meter.flush()
        take()
    return {
        "frames": frames,
        "flows": flows if stage not in ("read", "decode") else None,
        "by_transport": by_transport,
        "server_names": named,
        "app_metadata": WITH_FRAME and stage in ("meter", "export"),
        "decode": dict(vars(decoder.counters)),
        "meter": dict(vars(meter.counters)),
    }


path, stage = Path(sys.argv[1]), sys.argv[2]
if stage == "profile":
    import cProfile, pstats
    profiler = cProfile.Profile()
    result = profiler.runcall(run, path, "export")
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())
    top = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:int(sys.argv[3])]
    ours = sorted(
        (item for item in stats.stats.items() if "/sensors/" in item[0][0]),
        key=lambda item: -item[1][3],
    )[:int(sys.argv[3])]
    def rows(items):
        return [
            {"function": f"{Path(k[0]).name}:{k[1]}({k[2]})", "calls": v[1], "own_s": v[2],
             "cum_s": v[3]}
            for k, v in items
        ]
    result["profile_total_s"] = total
    result["profile"] = rows(top)
    result["profile_sensors"] = rows(ours)
else:
    result = run(path, stage)
print(json.dumps(result))
"""

NFSTREAM_DRIVER: Final = r"""
import json, sys
import nfstream
path, dissections = sys.argv[1], int(sys.argv[2])
options = {"source": path, "n_meters": 1, "statistical_analysis": False}
if dissections >= 0:
    options["n_dissections"] = dissections
names = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}
flows = packets = named = 0
by_transport = {}
for flow in nfstream.NFStreamer(**options):
    flows += 1
    packets += flow.bidirectional_packets
    name = names.get(flow.protocol, "other")
    by_transport[name] = by_transport.get(name, 0) + 1
    if getattr(flow, "requested_server_name", ""):
        named += 1
print(json.dumps({"version": nfstream.__version__, "flows": flows, "packets": packets,
                  "by_transport": by_transport, "server_names": named}))
"""

CICFLOWMETER_DRIVER: Final = r"""
import csv, json, shutil, sys
from importlib.metadata import version
import cicflowmeter.sniffer as sniffer
path, out = sys.argv[1], sys.argv[2]
note = ""
if shutil.which("tcpdump") is None:
    # scapy applies an offline BPF filter by running tcpdump; without it, filter in Python.
    from scapy.layers.inet import IP, TCP, UDP
    original = sniffer.AsyncSniffer

    def without_bpf(*args, **kwargs):
        kwargs.pop("filter", None)
        kwargs["lfilter"] = lambda p: IP in p and (TCP in p or UDP in p)
        return original(*args, **kwargs)

    sniffer.AsyncSniffer = without_bpf
    note = "no tcpdump: BPF 'ip and (tcp or udp)' applied as a scapy lfilter"
# What the tool's main() does for "-f FILE -c OUT", called with keywords: 0.5.0's main() passes
# its arguments to create_sniffer() by position, one place off, and fails.
made = sniffer.create_sniffer(input_file=path, input_interface=None, output_mode="csv", output=out)
capture, session = made if isinstance(made, tuple) else (made, None)  # 0.5 returns both
capture.start()
capture.join()
if session is not None:
    if hasattr(session, "_gc_stop"):
        session._gc_stop.set()
        session._gc_thread.join(timeout=2.0)
    session.flush_flows()
rows = 0
by_transport = {}
tuples = set()
with open(out, newline="") as handle:
    for row in csv.DictReader(handle):
        rows += 1
        name = {"6": "tcp", "17": "udp"}.get(row.get("protocol", ""), "other")
        by_transport[name] = by_transport.get(name, 0) + 1
        tuples.add(tuple(row.get(k) for k in ("src_ip", "dst_ip", "src_port", "dst_port",
                                              "protocol")))
print(json.dumps({"version": version("cicflowmeter"), "flows": rows,
                  "by_transport": by_transport, "distinct_5_tuples": len(tuples), "note": note}))
"""


# -- child processes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """How one child process ran, measured from outside."""

    returncode: int
    timed_out: bool
    wall_s: float
    cpu_s: float
    maxrss_kib: int
    stdout: str
    stderr: str

    def last_json(self) -> dict[str, Any] | None:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    value: dict[str, Any] = json.loads(line)
                    return value
        return None

    def why(self) -> str:
        if self.timed_out:
            return f"timed out after {self.wall_s:.1f} s"
        lines = [x for x in self.stderr.splitlines() if "Running as user" not in x]
        return f"exit status {self.returncode}: " + " | ".join(lines[-3:])


def run_child(argv: Sequence[str], timeout_s: float, workdir: Path, cwd: Path = REPO) -> Child:
    """Run ``argv`` with its output in files (a pipe could fill and stall it), reap it with
    ``wait4`` for its resource usage, and kill its whole process group on timeout."""
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so a timeout ends its children too
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    child = Child(
        returncode=proc.returncode,
        timed_out=timed_out,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_kib=usage.ru_maxrss,  # KiB on Linux: the largest single process of the tree
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )
    out_path.unlink()
    err_path.unlink()
    return child


# -- results -------------------------------------------------------------------------------------


@dataclass
class Result:
    """One tool's run on one input; ``error`` says why there are no figures."""

    tool: str
    input_name: str
    packets: int
    flows: int | None = None
    by_transport: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    maxrss_mib: float = 0.0
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_core(self) -> float:
        return self.packets / self.cpu_s if self.cpu_s > 0 else 0.0


def measured(
    tool: str, input_name: str, packets: int, argv: Sequence[str], args: argparse.Namespace
) -> tuple[Result, dict[str, Any] | None]:
    """Run ``argv`` ``--repeat`` times; keep the run with the median CPU time."""
    runs: list[tuple[Child, dict[str, Any]]] = []
    for _ in range(args.repeat):
        child = run_child(argv, args.timeout, args.workdir)
        payload = child.last_json() if child.returncode == 0 else None
        if payload is None:
            print(f"  {tool}: failed, {child.why()}")
            return Result(tool, input_name, packets, error=child.why()), None
        runs.append((child, payload))
    runs.sort(key=lambda run: run[0].cpu_s)
    child, payload = runs[len(runs) // 2]
    result = Result(
        tool,
        input_name,
        packets,
        flows=payload.get("flows"),
        by_transport=payload.get("by_transport", {}),
        wall_s=child.wall_s,
        cpu_s=child.cpu_s,
        maxrss_mib=child.maxrss_kib / 1024,
        note=payload.get("note", ""),
    )
    if args.repeat > 1:
        result.note = (
            result.note + f" median of {args.repeat}; CPU s "
            f"{', '.join(f'{r[0].cpu_s:.2f}' for r in runs)}"
        ).strip()
    print(
        f"  {tool}: {child.wall_s:.2f} s wall, {child.cpu_s:.2f} s CPU, "
        f"{result.per_core:,.0f} packets/s per core, {result.flows} flows, "
        f"{result.maxrss_mib:,.0f} MiB"
    )
    return result, payload


def tshark_conversations(stdout: str) -> tuple[dict[str, int], int]:
    """Conversations per section of ``-z conv,tcp -z conv,udp`` and the frames they hold."""
    counts: dict[str, int] = {}
    frames = 0
    section = ""
    total = re.compile(r"<->\s+\S+\s+\d+\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+(\d+)\s")
    for line in stdout.splitlines():
        if line.endswith(" Conversations"):
            section = line.split()[0].lower()
        elif "<->" in line and section:
            counts[section] = counts.get(section, 0) + 1
            match = total.search(line)
            if match:
                frames += int(match.group(1))
    return counts, frames


# -- inputs and tools ----------------------------------------------------------------------------


def generated_capture(args: argparse.Namespace) -> Path:
    """The cached capture for these settings, generated on first use.

    The file name carries a hash of the generator's source, so editing the generator makes a
    new capture instead of reusing a stale one.
    """
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:8]
    path: Path = args.cache / f"mixed-{args.packets}-seed{args.seed}-{digest}.pcap"
    if path.exists() and path.with_name(path.name + ".json").exists():
        return path
    print(f"generating {path} ...")
    command = [sys.executable, str(GENERATOR), "--packets", str(args.packets)]
    command += ["--seed", str(args.seed), "--out", str(path)]
    done = subprocess.run(command, cwd=REPO, timeout=GENERATE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise BenchError(f"bench/make_capture.py failed with status {done.returncode}")
    return path


def given_capture(path: Path) -> Path:
    capture = path.expanduser().resolve()
    if not capture.is_file():
        raise BenchError(f"{capture}: no such file")
    return capture


def scan_capture(path: Path, prefix_path: Path, prefix_packets: int) -> tuple[int, int]:
    """Count the frames of ``path`` (this also warms the page cache, so that no tool pays for
    the first read from disk) and write its first ``prefix_packets`` to a libpcap file."""
    count = written = 0
    record = struct.Struct("<IIII")
    with prefix_path.open("wb") as out:
        linktype = -1
        for frame in read_frames(path):
            count += 1
            if written >= prefix_packets:
                continue
            if linktype < 0:
                linktype = frame.linktype
                out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262_144, linktype))
            if frame.linktype != linktype:
                continue  # a pcap file has one link type; a pcapng may mix them
            sec, ns = divmod(frame.ts_ns, 1_000_000_000)
            out.write(record.pack(sec, ns, len(frame.data), frame.wirelen) + frame.data)
            written += 1
    return count, written


@dataclass
class ToolsEnv:
    python: Path | None
    versions: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def tools_env(args: argparse.Namespace) -> ToolsEnv:
    """A virtualenv of its own for nfstream and cicflowmeter, created and filled on demand."""
    wanted = [
        (name, requirement)
        for name, requirement in (
            ("nfstream", NFSTREAM_REQUIREMENT),
            ("cicflowmeter", CICFLOWMETER_REQUIREMENT),
        )
        if name not in args.skip
    ]
    env = ToolsEnv(python=None)
    if not wanted:
        return env
    try:
        env.python = tools_venv(args)
    except BenchError as exc:
        for name, _ in wanted:
            env.errors[name] = str(exc)
        return env
    for name, requirement in wanted:
        version = _installed(env.python, name)
        if version is None and not args.no_install:
            print(f"installing {requirement} into {env.python.parent.parent} ...")
            error = _pip_install(env.python, requirement)
            if error:
                env.errors[name] = error
            version = _installed(env.python, name)
        if version is not None:
            env.versions[name] = version
        else:
            env.errors.setdefault(name, f"{name} is not installed beside {env.python}")
    return env


def tools_venv(args: argparse.Namespace) -> Path:
    """The tools' virtualenv for ``--tools-python`` (one per Python version), made if missing."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        done = subprocess.run(
            [args.tools_python, "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"tools interpreter {args.tools_python} unusable: {exc}") from exc
    venv: Path = args.cache / f"tools-py{done.stdout.strip()}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    if args.no_install:
        raise BenchError(f"no virtualenv at {venv} and --no-install")
    print(f"creating {venv} ...")
    made = subprocess.run(
        [args.tools_python, "-m", "venv", str(venv)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if made.returncode != 0:
        raise BenchError(f"python -m venv failed: {made.stderr.strip()[-300:]}")
    return python


def _pip_install(python: Path, requirement: str) -> str:
    """Install ``requirement`` with the virtualenv's pip; an error message, or ``""``."""
    try:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", requirement],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"pip install timed out after {INSTALL_TIMEOUT_S:.0f} s"
    if pip.returncode == 0:
        return ""
    lines = [x for x in pip.stderr.splitlines() if not x.startswith("WARNING")]
    return "pip install failed: " + " | ".join(lines[-3:])


def _installed(python: Path, name: str) -> str | None:
    code = f"from importlib.metadata import version; import {name}; print(version({name!r}))"
    try:
        done = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def versions_line(tools: ToolsEnv) -> str:
    tshark = shutil.which("tshark")
    tshark_version = "not found"
    if tshark:
        done = subprocess.run(
            [tshark, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        tshark_version = (done.stdout.splitlines() or ["?"])[0]
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "sensors"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.strip()
    ours = f"trustwatch {head}"
    if dirty:  # others may be editing the sensor: name the exact sources measured
        sources = hashlib.sha256()
        for path in sorted((REPO / "sensors").rglob("*.py")):
            sources.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
        ours += f" + uncommitted changes in sensors/ (sources sha256 {sources.hexdigest()[:12]})"
    tools_python = "n/a"
    if tools.python is not None:
        tools_python = subprocess.run(
            [str(tools.python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
    parts = [ours, f"Python {platform.python_version()} (ours)", tshark_version]
    parts += [f"{k} {v}" for k, v in sorted(tools.versions.items())]
    parts.append(f"tools venv Python {tools_python}")
    return "; ".join(parts)


# -- the run -------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, capture: Path) -> list[Result]:
    prefix = args.workdir / "prefix.pcap"
    started = time.perf_counter()
    packets, prefix_packets = scan_capture(capture, prefix, args.prefix_packets)
    print(
        f"{capture}: {packets:,} packets, {capture.stat().st_size / 2**20:,.0f} MiB "
        f"(counted in {time.perf_counter() - started:.1f} s); prefix of {prefix_packets:,} "
        "packets for cicflowmeter"
    )
    tools = tools_env(args) if {"nfstream", "cicflowmeter"} - set(args.skip) else ToolsEnv(None)
    print("versions: " + versions_line(tools))
    for name, error in tools.errors.items():
        print(f"  {name}: not run, {error}")
    print(f"load average before: {os.getloadavg()}")

    results: list[Result] = []
    if "ours" not in args.skip:
        results += [run_ours(args, stage, label, capture, packets) for stage, label in OUR_STAGES]
    if "nfstream" not in args.skip:
        results += run_nfstream(args, tools, capture, packets)
    if "tshark" not in args.skip:
        results.append(run_tshark(args, capture, packets))
    if "cicflowmeter" not in args.skip:
        if "ours" not in args.skip:
            results.append(run_ours(args, "export", OUR_STAGES[-1][1], prefix, prefix_packets))
            results[-1].input_name = "prefix"
        results.append(run_cicflowmeter(args, tools, prefix, prefix_packets))
    print(f"load average after: {os.getloadavg()}")
    if args.profile and "ours" not in args.skip:
        profile(args, capture)
    return results


def run_ours(
    args: argparse.Namespace, stage: str, label: str, capture: Path, packets: int
) -> Result:
    argv = [sys.executable, "-c", OUR_DRIVER, str(capture), stage]
    result, payload = measured(label, "full", packets, argv, args)
    if payload and stage == "export":
        note = f"{payload['server_names']:,} flows with a server name"
        if not payload["app_metadata"]:
            note = "FlowMeter.add takes no frame: no application metadata"
        result.note = "; ".join(x for x in (note, result.note) if x)
    return result


def run_nfstream(
    args: argparse.Namespace, tools: ToolsEnv, capture: Path, packets: int
) -> list[Result]:
    results = []
    for label, dissections in (("nfstream, DPI off", 0), ("nfstream, DPI on", -1)):
        if tools.python is None or "nfstream" not in tools.versions:
            results.append(Result(label, "full", packets, error=tools.errors["nfstream"]))
            continue
        argv = [str(tools.python), "-c", NFSTREAM_DRIVER, str(capture), str(dissections)]
        result, payload = measured(label, "full", packets, argv, args)
        if payload and dissections:
            result.note = f"{payload['server_names']:,} flows with a server name"
        results.append(result)
    return results


def run_tshark(args: argparse.Namespace, capture: Path, packets: int) -> Result:
    label = "tshark -z conv,tcp -z conv,udp"
    tshark = shutil.which("tshark")
    if tshark is None:
        print("  tshark: not run, not on PATH")
        return Result(label, "full", packets, error="not on PATH")
    argv = [tshark, "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", str(capture)]
    runs: list[tuple[Child, dict[str, int], int]] = []
    for _ in range(args.repeat):
        child = run_child(argv, args.timeout, args.workdir)
        if child.returncode != 0:
            print(f"  tshark: failed, {child.why()}")
            return Result(label, "full", packets, error=child.why())
        counts, frames = tshark_conversations(child.stdout)
        runs.append((child, counts, frames))
    runs.sort(key=lambda run: run[0].cpu_s)
    child, counts, frames = runs[len(runs) // 2]
    result = Result(
        label,
        "full",
        packets,
        flows=sum(counts.values()),
        by_transport=counts,
        wall_s=child.wall_s,
        cpu_s=child.cpu_s,
        maxrss_mib=child.maxrss_kib / 1024,
        note=f"TCP and UDP only; {frames:,} frames in conversations",
    )
    print(
        f"  tshark: {child.wall_s:.2f} s wall, {child.cpu_s:.2f} s CPU, "
        f"{result.per_core:,.0f} packets/s per core, {result.flows} conversations"
    )
    return result


def run_cicflowmeter(
    args: argparse.Namespace, tools: ToolsEnv, prefix: Path, packets: int
) -> Result:
    label = "cicflowmeter"
    if tools.python is None or "cicflowmeter" not in tools.versions:
        return Result(label, "prefix", packets, error=tools.errors.get("cicflowmeter", "?"))
    label = f"cicflowmeter {tools.versions['cicflowmeter']}"
    out = args.workdir / "cicflowmeter.csv"
    argv = [str(tools.python), "-c", CICFLOWMETER_DRIVER, str(prefix), str(out)]
    result, payload = measured(label, "prefix", packets, argv, args)
    out.unlink(missing_ok=True)
    if payload:
        note = f"{payload['distinct_5_tuples']:,} distinct 5-tuples"
        result.note = "; ".join(x for x in (note, payload.get("note", ""), result.note) if x)
    return result


def profile(args: argparse.Namespace, capture: Path) -> None:
    """cProfile our full pipeline once and print the functions with the most own time."""
    argv = [sys.executable, "-c", OUR_DRIVER, str(capture), "profile", str(TOP_FUNCTIONS)]
    child = run_child(argv, args.timeout * 3, args.workdir)  # cProfile slows it 2-3x
    payload = child.last_json()
    if child.returncode != 0 or payload is None:
        print(f"profile: failed, {child.why()}")
        return
    total = payload["profile_total_s"]
    print(
        f"\ncProfile of our full pipeline ({child.wall_s:.1f} s under the profiler, "
        f"{total:.1f} s of own time in all): top {TOP_FUNCTIONS} functions by own time"
    )
    print("| function | calls | own s | share | cumulative s |")
    print("|---|---:|---:|---:|---:|")
    for row in payload["profile"]:
        print(
            f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.2f} | "
            f"{row['own_s'] / total:.0%} | {row['cum_s']:.2f} |"
        )
    print(f"\nfunctions of sensors/ by cumulative time (share of {total:.1f} s)")
    print("| function | calls | own s | cumulative s | share |")
    print("|---|---:|---:|---:|---:|")
    for row in payload["profile_sensors"]:
        print(
            f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.2f} | "
            f"{row['cum_s']:.2f} | {row['cum_s'] / total:.0%} |"
        )


def expected_flows(capture: Path) -> dict[str, int] | None:
    path = capture.with_name(capture.name + ".json")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value: dict[str, int] = manifest.get("expected_flows")
    return value


def report(results: list[Result], capture: Path) -> None:
    baseline = next(
        (r for r in results if r.tool == "nfstream, DPI off" and not r.error and r.cpu_s), None
    )
    print(f"\nResults on {capture.name} (packets/s per core = packets / CPU s)")
    head = "| tool | input | packets | flows | wall s | CPU s | packets/s per core | "
    head += "peak RSS MiB | ÷ nfstream DPI off |"
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if r.error:
            print(f"| {r.tool} | {r.input_name} | {r.packets:,} | not run: {r.error} |")
            continue
        ratio = f"{r.per_core / baseline.per_core:.2f}x" if baseline else "n/a"
        flows = "n/a" if r.flows is None else f"{r.flows:,}"
        print(
            f"| {r.tool} | {r.input_name} | {r.packets:,} | {flows} | {r.wall_s:.2f} | "
            f"{r.cpu_s:.2f} | {r.per_core:,.0f} | {r.maxrss_mib:,.0f} | {ratio} |"
        )
    notes = [r for r in results if r.note and not r.error]
    for r in notes:
        print(f"- {r.tool} ({r.input_name}): {r.note}")

    expected = expected_flows(capture)
    print("\nFlows by transport (icmp includes ipv6-icmp)")
    print("| tool | input | tcp | udp | icmp | other |")
    print("|---|---|---:|---:|---:|---:|")
    if expected:
        print(f"| expected (generator manifest) | full | {_by_transport_cells(expected)} |")
    for r in results:
        if r.by_transport and not r.error:
            print(f"| {r.tool} | {r.input_name} | {_by_transport_cells(r.by_transport)} |")

    ours = next((r for r in results if r.tool.startswith("ours: full") and not r.error), None)
    meter_only = next((r for r in results if r.tool.startswith("ours: decode + meter +")), None)
    dpi_on = next((r for r in results if r.tool == "nfstream, DPI on" and not r.error), None)
    if ours and baseline:
        print(
            f"\nours (full pipeline) ÷ nfstream DPI off: {ours.per_core / baseline.per_core:.2f}x "
            f"per core, {baseline.wall_s / ours.wall_s:.2f}x wall "
            "(target: at least 1x, ideally 3x)"
        )
        if meter_only and not meter_only.error:
            print(
                "ours (decode + meter + app metadata, no records) ÷ nfstream DPI off: "
                f"{meter_only.per_core / baseline.per_core:.2f}x per core"
            )
        if dpi_on and dpi_on.cpu_s:
            print(f"ours ÷ nfstream DPI on: {ours.per_core / dpi_on.per_core:.2f}x per core")
    tshark = next((r for r in results if r.tool.startswith("tshark") and not r.error), None)
    if ours and tshark:
        for name in ("tcp", "udp"):
            a, b = ours.by_transport.get(name, 0), tshark.by_transport.get(name, 0)
            if a != b:
                print(f"CHECK: ours found {a:,} {name} flows, tshark {b:,} conversations")


def _by_transport_cells(counts: dict[str, int]) -> str:
    icmp = counts.get("icmp", 0) + counts.get("ipv6-icmp", 0)
    other = sum(v for k, v in counts.items() if k not in ("tcp", "udp", "icmp", "ipv6-icmp"))
    return f"{counts.get('tcp', 0):,} | {counts.get('udp', 0):,} | {icmp:,} | {other:,}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--pcap", type=Path, help="use this capture instead of a generated one")
    parser.add_argument("--packets", type=int, default=1_000_000, help="generated size (1e6)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated capture")
    parser.add_argument(
        "--cache",
        type=Path,
        help="generated captures and the tools' virtualenv "
        "(default $XDG_CACHE_HOME/trustwatch-bench or ~/.cache/trustwatch-bench)",
    )
    parser.add_argument(
        "--tools-python",
        default=sys.executable,
        help="interpreter for the nfstream/cicflowmeter virtualenv (default: this one)",
    )
    parser.add_argument("--prefix-packets", type=int, default=20_000, help="cicflowmeter's input")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per child, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the median counts")
    parser.add_argument("--skip", action="append", default=[], choices=TOOLS, help="repeatable")
    parser.add_argument("--no-install", action="store_true", help="never create or pip install")
    parser.add_argument("--profile", action="store_true", help="cProfile our pipeline once")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 20 or args.timeout <= 0 or args.prefix_packets < 1:
        parser.error("--repeat must be 1..20, --timeout positive, --prefix-packets at least 1")
    if args.cache is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        args.cache = Path(base) / "trustwatch-bench"
    args.cache = args.cache.expanduser().resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    try:
        args.cache.mkdir(parents=True, exist_ok=True)
        capture = given_capture(args.pcap) if args.pcap else generated_capture(args)
        with tempfile.TemporaryDirectory(prefix="sensor-bench-", dir=args.cache) as name:
            args.workdir = Path(name)
            results = bench(args, capture)
    except (BenchError, CaptureError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench/sensor.py: {exc}", file=sys.stderr)
        return 1
    report(results, capture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
