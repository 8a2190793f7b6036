"""``trustwatch demo``: the main job in one command, each part a real process on 127.0.0.1.

::

    trustwatch receiver --port 0 --secret-file S --out deliveries.jsonl   the coordination centre
    trustwatch token create --role sensor --name demo-lab                  the sensor's token
    trustwatch serve   (TRUSTWATCH_RECEIVERS names the receiver)           the central service
    trustwatch sensor net --pcap CAPTURE ...                               once per capture

then the alerts are read back through the API, the demo waits until the service has delivered
them, and the report says what happened, from the receiver's out file for the deliveries.

The data directory is the service's own (``trustwatch serve --data-dir DIR`` opens it again);
the demo's files are in ``DIR/demo/``: the receiver's secret and out file, the sensor's token
and spool, the first admin token as ``serve`` printed it (``serve.out``) and each process's log.

Exceptions::

    TrustWatchError (api.errors)
    └── DemoError           a step failed: a process did not start or died, no alert, no delivery
        └── DemoUsageError  the options cannot be used (a data directory in use, no captures)
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import httpx
import orjson

from api.delivery.journal import ID_FIELD, PAYLOAD_FIELD
from api.delivery.signing import SigningKey
from api.demo.errors import DemoError, DemoUsageError
from api.demo.report import (
    MIN_SEVERITY,
    SENSOR_ID,
    AlertSummary,
    Delivery,
    Report,
    render,
    replay_line,
)

LAB: Final = Path(__file__).resolve().parent / "lab"
TRUSTWATCH: Final = (sys.executable, "-m", "api.cli")
RECEIVER_NAME: Final = "coordination-centre"
# The lab's story: ordinary traffic first, then an intrusion from reconnaissance to
# exfiltration. Captures of other names follow in name order, without a description.
STORY: Final = (
    ("browse", "a client fetches web pages (benign)"),
    ("dns", "a client looks up names at the resolver (benign)"),
    ("nmap_syn", "the attacker SYN-scans 20 ports of the server"),
    ("nmap_connect", "the same scan, with full TCP connections"),
    ("bruteforce", "hydra guesses an HTTP basic-auth password"),
    ("beacon", "a timer on the client checks in every 2 s, like an implant"),
    ("dns_tunnel", "iodine carries 16 KiB out through DNS queries"),
)
# The service loads its rules and detectors before it listens: about 2 s on two cores.
START_TIMEOUT: Final = 30.0
SENSOR_TIMEOUT: Final = 120.0  # a lab capture takes a second; a large --captures file longer
# The first alert of a group goes out at once, the next ones of its group after the window;
# the default minute would keep the demo waiting, 5 s still shows alerts travelling together.
GROUP_WINDOW: Final = 5
DELIVERY_TIMEOUT: Final = 30.0  # a window, a few retries (the first after 1 s), and some slack
STOP_TIMEOUT: Final = 15.0  # the service checkpoints its store and detectors as it stops
POLL: Final = 0.1
_RECEIVING = re.compile(rb"receiving on (http://\S+/)")
_ADMIN_TOKEN = re.compile(r"tw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


@dataclass(frozen=True)
class DemoOptions:
    """What ``trustwatch demo`` was told."""

    data_dir: Path | None = None  # None: a temporary directory, removed at exit
    port: int = 0  # the service's; 0: a free one
    keep_running: bool = False
    captures: Path = LAB


def find_captures(directory: Path) -> list[tuple[Path, str]]:
    """The captures in ``directory`` in story order, each with what happens in it."""
    if not directory.is_dir():
        raise DemoUsageError(f"--captures: {directory} is not a directory")
    found = sorted(p for p in directory.iterdir() if p.suffix in {".pcap", ".pcapng"})
    if not found:
        raise DemoUsageError(f"--captures: {directory} holds no .pcap or .pcapng file")
    order = {name: i for i, (name, _) in enumerate(STORY)}
    found.sort(key=lambda p: (order.get(p.stem, len(order)), p.name))
    return [(p, dict(STORY).get(p.stem, "")) for p in found]


def run_demo(options: DemoOptions, out: TextIO, progress: TextIO) -> int:
    """Run the demo, write the report to ``out`` (and what it is doing to ``progress``), stop
    everything it started. Returns the exit status; raises :class:`DemoError` on a failure and
    ``KeyboardInterrupt`` on Ctrl-C or SIGTERM, both after stopping the processes."""
    captures = find_captures(options.captures.resolve())
    if options.port:
        _check_port(options.port)
    root, temporary = _data_dir(options.data_dir)
    previous = _interrupt_on_signals()
    try:
        with _Processes(root) as processes:
            report = _run(processes, root, temporary, options, captures, progress)
            out.write(render(report))
            out.flush()
            if options.keep_running:
                progress.write("demo: running; Ctrl-C (or SIGTERM) stops it\n")
                progress.flush()
                with suppress(KeyboardInterrupt):
                    processes.watch()
            progress.write("demo: stopping\n")
            processes.stop_all(check=True)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _run(
    processes: _Processes,
    root: Path,
    temporary: bool,
    options: DemoOptions,
    captures: Sequence[tuple[Path, str]],
    progress: TextIO,
) -> Report:
    files = root / "demo"
    files.mkdir(mode=0o700)
    secret = files / "receiver.secret"
    token_file = files / "sensor.token"
    deliveries = files / "deliveries.jsonl"
    _write_private(secret, SigningKey(secrets.token_bytes(32)).secret + "\n")

    progress.write("demo: starting the receiver (the coordination centre)\n")
    receiver = processes.start(
        "receiver",
        ["receiver", "--port", "0", "--secret-file", str(secret), "--out", str(deliveries)],
        processes.env,
    )
    _write_private(token_file, _create_sensor_token(processes, root) + "\n")
    receiver_url = _wait_receiving(receiver)

    port = options.port or _free_port()
    service_url = f"http://127.0.0.1:{port}"
    progress.write(f"demo: starting the service on {service_url}\n")
    route = {"name": RECEIVER_NAME, "url": receiver_url, "secret_file": str(secret)}
    service_env = processes.env | {
        "TRUSTWATCH_DATA_DIR": str(root),
        "TRUSTWATCH_HOST": "127.0.0.1",
        "TRUSTWATCH_PORT": str(port),
        "TRUSTWATCH_RECEIVERS": orjson.dumps([route | {"min_severity": MIN_SEVERITY}]).decode(),
        "TRUSTWATCH_GROUP_WINDOW_SECONDS": str(GROUP_WINDOW),
    }
    service = processes.start("serve", ["serve"], service_env)
    with httpx.Client(base_url=service_url, timeout=10, trust_env=False) as client:
        _wait_healthy(client, service)
        match = _ADMIN_TOKEN.search((files / "serve.out").read_text(encoding="utf-8"))
        if match is None:
            raise DemoError(f"trustwatch serve printed no admin token; see {files / 'serve.out'}")
        client.headers["Authorization"] = f"Bearer {match.group(0)}"

        replays, seen = [], _alerts(client)
        for capture, what in captures:
            progress.write(f"demo: replaying {capture.name}\n")
            progress.flush()
            try:
                summary = _replay(processes, capture, service_url, token_file, files / "spool")
            except DemoError:
                service.check()  # the cause, when the service died under the sensor
                raise
            now = _alerts(client)
            replays.append(replay_line(capture.stem, what, summary, seen, now))
            seen = now
        if not seen:
            raise DemoError("the captures raised no alert")
        progress.write("demo: waiting for the receiver to confirm the deliveries\n")
        progress.flush()
        alerts, delivered = _wait_delivered(client, deliveries, (receiver, service))
    return Report(
        replays=tuple(replays),
        alerts=alerts,
        deliveries=delivered,
        receiver=RECEIVER_NAME,
        receiver_url=receiver_url,
        service_url=service_url,
        out_file=deliveries,
        logs=files,
        admin_token=match.group(0),
        data_dir=root,
        temporary=temporary,
        keep_running=options.keep_running,
    )


def _data_dir(requested: Path | None) -> tuple[Path, bool]:
    """The directory to run in, and whether it is a temporary one (to remove at exit)."""
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="trustwatch-demo-")), True
    root = requested.resolve()
    if root.exists() and not root.is_dir():
        raise DemoUsageError(f"--data-dir: {requested} is not a directory")
    if root.is_dir() and any(root.iterdir()):
        raise DemoUsageError(
            f"--data-dir: {requested} is not empty; the demo needs a new or empty directory, "
            "so that it never mixes with real data"
        )
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoUsageError(f"--data-dir: cannot create {requested}: {exc.strerror}") from exc
    return root, False


class _Child:
    """A process the demo started, its output in a log file."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.process, self.log = name, process, log

    def check(self) -> None:
        """Raise :class:`DemoError` with the end of its log if it has exited."""
        code = self.process.poll()
        if code is not None:
            raise DemoError(f"trustwatch {self.name} exited with status {code}{_tail(self.log)}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; SIGKILL if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


class _Processes:
    """Starts the demo's processes and stops every one of them, in reverse order, on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: list[_Child] = []
        # Nothing of the user's TRUSTWATCH_* configuration reaches the demo's processes, and
        # they import this very copy of TrustWatch (their working directory is the demo's).
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
        self.env["PYTHONPATH"] = os.pathsep.join(paths)

    def __enter__(self) -> _Processes:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all(check=False)

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> _Child:
        files = self.root / "demo"
        log = files / f"{name}.log"
        with _private_file(log) as stderr, _private_file(files / f"{name}.out") as stdout:
            process = subprocess.Popen(  # noqa: S603 - our own command, by sys.executable
                [*TRUSTWATCH, *args], stdout=stdout, stderr=stderr, **self._options(env)
            )
        child = _Child(name, process, log)
        self.children.append(child)
        return child

    def run(self, name: str, args: Sequence[str], env: Mapping[str, str], timeout: float) -> bytes:
        """Run a command to its end; its standard output, or :class:`DemoError`."""
        log = self.root / "demo" / f"{name}.log"
        with _private_file(log) as stderr:
            try:
                result = subprocess.run(  # noqa: S603 - our own command, by sys.executable
                    [*TRUSTWATCH, *args],
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    timeout=timeout,
                    check=False,
                    **self._options(env),
                )
            except subprocess.TimeoutExpired as exc:
                raise DemoError(f"trustwatch {name} took over {timeout:.0f} s; see {log}") from exc
        if result.returncode != 0:
            raise DemoError(f"trustwatch {name} exited with {result.returncode}{_tail(log)}")
        return bytes(result.stdout)

    def _options(self, env: Mapping[str, str]) -> dict[str, Any]:
        # A process group of their own: Ctrl-C in the terminal reaches the demo alone, which
        # stops the processes in order (the service before the receiver it delivers to).
        options: dict[str, Any] = {"env": dict(env), "cwd": self.root / "demo"}
        options |= {"stdin": subprocess.DEVNULL, "process_group": 0}
        if sys.platform == "linux":
            options["preexec_fn"] = _die_with_parent
        return options

    def watch(self) -> None:
        """Until interrupted: raise :class:`DemoError` if a process exits on its own."""
        while True:
            for child in self.children:
                child.check()
            time.sleep(0.5)

    def stop_all(self, *, check: bool) -> None:
        """Stop every process (a second Ctrl-C cannot cut this short); with ``check``, raise
        :class:`DemoError` if one did not exit cleanly."""
        with _signals_ignored():
            codes = [(child, child.stop()) for child in reversed(self.children)]
        self.children.clear()
        failed = [f"trustwatch {c.name} stopped with status {code}" for c, code in codes if code]
        if check and failed:
            raise DemoError("; ".join(failed) + f"; see the logs in {self.root / 'demo'}")


def _die_with_parent() -> None:
    # A demo killed with SIGKILL cannot stop its processes: the kernel sends them SIGTERM.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _create_sensor_token(processes: _Processes, root: Path) -> str:
    args = ["token", "create", "--role", "sensor", "--name", SENSOR_ID, "--data-dir", str(root)]
    token = processes.run("token", args, processes.env, timeout=START_TIMEOUT).decode().strip()
    if not token.startswith("tw_"):
        raise DemoError(f"trustwatch token create printed no token; see {root / 'demo'}")
    return token


def _wait_receiving(receiver: _Child) -> str:
    """The receiver's URL, from its log line ``receiving on http://127.0.0.1:PORT/``."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = _RECEIVING.search(receiver.log.read_bytes())
        if match:
            return match.group(1).decode()
        receiver.check()
        time.sleep(POLL)
    raise DemoError(
        f"trustwatch receiver did not start in {START_TIMEOUT:.0f} s{_tail(receiver.log)}"
    )


def _wait_healthy(client: httpx.Client, service: _Child) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        service.check()
        try:
            if client.get("/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL)
    raise DemoError(
        f"trustwatch serve was not healthy in {START_TIMEOUT:.0f} s{_tail(service.log)}"
    )


def _replay(
    processes: _Processes, capture: Path, url: str, token: Path, spool: Path
) -> Mapping[str, Any]:
    args = ["sensor", "net", "--pcap", str(capture), "--api", url, "--sensor-id", SENSOR_ID]
    # A short retry budget: the service is local, so a failure is not a passing outage.
    args += ["--token-file", str(token), "--spool", str(spool), "--retry-budget", "10"]
    printed = processes.run("sensor", args, processes.env, timeout=SENSOR_TIMEOUT)
    try:
        summary: Mapping[str, Any] = orjson.loads(printed)
    except orjson.JSONDecodeError as exc:
        raise DemoError(f"trustwatch sensor printed no JSON summary for {capture}") from exc
    return summary


def _alerts(client: httpx.Client) -> dict[str, AlertSummary]:
    """Every alert in the store, by id."""
    alerts: dict[str, AlertSummary] = {}
    params: dict[str, str | int] = {"limit": 1000}
    for _ in range(1000):  # a million alerts: far beyond what a demo raises
        try:
            response = client.get("/api/v1/alerts", params=params)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DemoError(f"GET /api/v1/alerts failed: {exc}") from exc
        page = response.json()
        alerts |= {item["id"]: AlertSummary.from_json(item) for item in page["items"]}
        if not page["next_cursor"]:
            return alerts
        params["cursor"] = page["next_cursor"]
    raise DemoError("GET /api/v1/alerts: the pages did not end")


def _wait_delivered(
    client: httpx.Client, out_file: Path, children: Sequence[_Child]
) -> tuple[tuple[AlertSummary, ...], tuple[Delivery, ...]]:
    """Wait until no alert waits for delivery and each delivered one is in the receiver's out
    file; the alerts and the deliveries then."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        for child in children:
            child.check()
        alerts, deliveries = _alerts(client), read_deliveries(out_file)
        arrived = {alert_id for d in deliveries for alert_id in d.alert_ids}
        waiting = [
            a
            for a in alerts.values()
            if a.delivery == "pending" or (a.deliverable and a.id not in arrived)
        ]
        dead = [a for a in alerts.values() if a.delivery == "dead"]
        if dead:
            raise DemoError(
                f"{len(dead)} alerts could not be delivered (dead-lettered): "
                f"{', '.join(a.title for a in dead)}; see the service's log"
            )
        if not waiting:
            return tuple(alerts.values()), deliveries
        if time.monotonic() > deadline:
            raise DemoError(
                f"{len(waiting)} of {len(alerts)} alerts were not delivered in "
                f"{DELIVERY_TIMEOUT:.0f} s: {', '.join(sorted({a.title for a in waiting}))}; "
                f"see the logs in {out_file.parent}"
            )
        time.sleep(4 * POLL)


def read_deliveries(out_file: Path) -> tuple[Delivery, ...]:
    """The deliveries the receiver recorded (it records only those whose signature it
    verified), in the order they arrived; a line still being written is left for later."""
    try:
        text = out_file.read_bytes()
    except FileNotFoundError:
        return ()
    deliveries = []
    for line in text.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        record = orjson.loads(line)
        payload = record.get(PAYLOAD_FIELD) or {}
        deliveries.append(
            Delivery(
                webhook_id=record[ID_FIELD],
                receiver=str(payload.get("receiver", "")),
                alert_ids=tuple(str(a.get("id")) for a in payload.get("alerts", ())),
                stix_objects=len((payload.get("stix") or {}).get("objects", ())),
            )
        )
    return tuple(deliveries)


def _check_port(port: int) -> None:
    """Refuse a ``--port`` already in use before anything is started."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the service binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DemoUsageError(f"--port: 127.0.0.1:{port} is in use ({exc.strerror})") from exc


def _free_port() -> int:
    # The port may be taken again before the service binds it; the service then fails to
    # start, and the demo says so with its log.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    with _private_file(path, append=False) as handle:
        handle.write(text.encode())


@contextmanager
def _private_file(path: Path, *, append: bool = True) -> Iterator[Any]:
    """A file only its owner may read: secrets, tokens, and logs that may quote them."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_EXCL)
    with os.fdopen(os.open(path, flags, 0o600), "ab" if append else "wb") as handle:
        yield handle


def _tail(log: Path, lines: int = 12) -> str:
    """The end of a process's log, for an error message; JSON log lines as plain text."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace").rstrip()
    except OSError:
        return ""
    if not text:
        return f" (its log {log} is empty)"
    last = "\n".join("    " + _plain(line) for line in text.splitlines()[-lines:])
    return f"; the end of {log}:\n{last}"


def _plain(line: str) -> str:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    return f"{record.get('level', '')} {record.get('logger', '')}: {record['message']}"


def _interrupt_on_signals() -> dict[int, Any]:
    """SIGTERM stops the demo as Ctrl-C does, and Ctrl-C works even where the demo was started
    with SIGINT ignored (a background job of a script); returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
