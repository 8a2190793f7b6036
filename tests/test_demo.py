"""``trustwatch demo`` end to end: the command itself, as a user runs it, with the receiver, the
service and the sensors it starts as real processes on loopback."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import LAB

pytestmark = pytest.mark.e2e
TRUSTWATCH = [sys.executable, "-m", "api.cli"]
LAB_ALERTS = [
    ("HIGH", "DNS tunnelling suspected"),
    ("HIGH", "HTTP login brute force"),
    ("MEDIUM", "Vertical port scan"),
]


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRUSTWATCH, "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def test_the_lab_becomes_alerts_delivered_once_each(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = demo("--data-dir", str(data))
    assert 0 == result.returncode, result.stderr
    report = result.stdout

    # Every capture in story order, benign first, with the flows the service stored.
    assert [
        ("browse", 13),
        ("dns", 6),
        ("nmap_syn", 20),
        ("nmap_connect", 20),
        ("bruteforce", 9),
        ("beacon", 19),
        ("dns_tunnel", 2),
    ] == [(name, int(n)) for name, n in re.findall(r"^  (\w+) +(\d+) flows", report, re.M)]
    assert "7 captures, 89 flows ingested" in report
    # Which capture raised what: the second scan repeats the first one's alert.
    assert [
        "Vertical port scan (medium)",
        "Vertical port scan again: count 2",
        "HTTP login brute force (high)",
        "DNS tunnelling suspected (high)",
    ] == re.findall(r"^ +→ (.+)$", report, re.M)

    # The alerts, highest severity first, each with why it fired.
    assert LAB_ALERTS == re.findall(r"^  (CRITICAL|HIGH|MEDIUM|LOW) +(.+)$", report, re.M)
    assert "distinct destination.port: 15" in report
    assert "flow.dns.unique_names: 113" in report
    assert 3 == len(re.findall(r"^ +delivery  delivered in ", report, re.M))

    # The receiver recorded every alert exactly once, each with its STIX bundle.
    records = [
        orjson.loads(line)
        for line in (data / "demo" / "deliveries.jsonl").read_bytes().splitlines()
    ]
    delivered = [alert for r in records for alert in r["payload"]["alerts"]]
    assert sorted(title for _, title in LAB_ALERTS) == sorted(a["title"] for a in delivered)
    assert len({a["id"] for a in delivered}) == len(delivered)
    assert all(r["payload"]["stix"]["type"] == "bundle" for r in records)
    assert f"{len(records)} deliver" in report  # "1 delivery" or "N deliveries"
    assert "3 alerts delivered, each exactly once" in report

    # Everything was stopped cleanly: the store checkpointed and closed, the out file unlocked.
    assert not (data / "trustwatch.sqlite3-wal").exists()
    with (data / "demo" / "deliveries.jsonl").open("rb") as out:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    # The admin token is named as a throwaway one.
    assert re.search(r"admin token  tw_[0-9a-f]{12}_\S{43}\n.*throwaway", report)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_keep_running_stays_up_until_ctrl_c_or_sigterm(
    tmp_path: Path, stop: signal.Signals
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    printed = tmp_path / "report.txt"
    with printed.open("w", encoding="utf-8") as stdout:
        process = subprocess.Popen(
            [*TRUSTWATCH, "demo", "--keep-running"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"TMPDIR": str(tmp)},
        )
    try:
        deadline = time.monotonic() + 120
        while "Running until Ctrl-C" not in printed.read_text(encoding="utf-8"):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no report in 120 s"
            time.sleep(0.2)
        report = printed.read_text(encoding="utf-8")
        match = re.search(r"service +(http://127\.0\.0\.1:\d+)/healthz", report)
        assert match is not None, report
        service = match.group(1)
        token = re.search(r"admin token  (\S+)", report)
        assert token is not None

        time.sleep(1)  # still up after the report
        assert process.poll() is None
        admin = {"Authorization": f"Bearer {token.group(1)}"}
        alerts = httpx.get(f"{service}/api/v1/alerts", headers=admin, timeout=10).json()
        assert sorted(title for _, title in LAB_ALERTS) == sorted(
            a["title"] for a in alerts["items"]
        )
        # The service's record of its deliveries agrees with the receiver's.
        out_file = re.search(r"received +(\S+)", report)
        assert out_file is not None
        received = Path(out_file.group(1)).read_bytes().splitlines()
        sent = httpx.get(f"{service}/api/v1/deliveries", headers=admin, timeout=10).json()
        assert sorted((orjson.loads(line)["webhook-id"], "delivered") for line in received) == (
            sorted((n["id"], n["state"]) for n in sent["items"])
        )

        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert 0 == process.returncode, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{service}/healthz", timeout=2)
    assert [] == list(tmp.iterdir())  # the temporary directory is gone


def test_ctrl_c_during_the_run_stops_everything(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    progress = tmp_path / "progress.txt"
    with progress.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [*TRUSTWATCH, "demo"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=os.environ | {"TMPDIR": str(tmp)},
        )
    try:
        deadline = time.monotonic() + 120
        while "replaying nmap_syn" not in progress.read_text(encoding="utf-8"):
            assert process.poll() is None, progress.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the replay did not start in 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert 130 == process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    printed = progress.read_text(encoding="utf-8")
    assert "Traceback" not in printed
    match = re.search(r"starting the service on (\S+)", printed)
    assert match is not None, printed
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{match.group(1)}/healthz", timeout=2)
    assert [] == list(tmp.iterdir())


@pytest.mark.parametrize("case", ["not empty", "a file"])
def test_a_data_dir_that_is_not_new_is_refused(tmp_path: Path, case: str) -> None:
    target = tmp_path / "target"
    if case == "not empty":
        target.mkdir()
        (target / "trustwatch.sqlite3").write_bytes(b"real data")
    else:
        target.write_bytes(b"")
    before = sorted(tmp_path.rglob("*"))
    result = demo("--data-dir", str(target))
    assert 2 == result.returncode
    expected = "is not empty" if case == "not empty" else "is not a directory"
    assert f"trustwatch: error: --data-dir: {target} {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert before == sorted(tmp_path.rglob("*"))  # nothing created, nothing started


def test_a_directory_without_captures_is_refused(tmp_path: Path) -> None:
    result = demo("--captures", str(tmp_path), "--data-dir", str(tmp_path / "data"))
    assert 2 == result.returncode
    assert f"--captures: {tmp_path} holds no .pcap or .pcapng file" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = demo("--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert 2 == result.returncode
    assert f"trustwatch: error: --port: 127.0.0.1:{port} is in use" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_failed_step_stops_everything_the_demo_started(tmp_path: Path) -> None:
    captures, data = tmp_path / "captures", tmp_path / "demo"
    captures.mkdir()
    shutil.copy(LAB / "browse.pcap", captures)
    (captures / "broken.pcap").write_bytes(b"not a capture at all")
    result = demo("--data-dir", str(data), "--captures", str(captures))
    assert 1 == result.returncode
    assert "trustwatch: error: trustwatch sensor exited with 2" in result.stderr
    assert f"the end of {data / 'demo' / 'sensor.log'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "" == result.stdout  # no report
    # The service and the receiver were stopped: the store closed, the files unlocked.
    assert not (data / "trustwatch.sqlite3-wal").exists()
    for locked in (data / "serve.lock", data / "demo" / "deliveries.jsonl"):
        with locked.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
