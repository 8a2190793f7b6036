"""End to end: a real ``trustwatch serve`` process on loopback, the real sensor command shipping
captures to it, and the flows read back through the API."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import DATA, LAB, shared_capture

pytestmark = pytest.mark.e2e
TRUSTWATCH = [sys.executable, "-m", "api.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[str]
    url: str
    admin_token: str | None
    env: dict[str, str]

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: a clean exit that closes the store."""
        self.process.send_signal(signal.SIGTERM)
        assert 0 == self.process.wait(timeout=20)
        data_dir = Path(self.env["TRUSTWATCH_DATA_DIR"])
        assert not (data_dir / "trustwatch.sqlite3-wal").exists()  # checkpointed and closed


def start_service(
    data_dir: Path, port: int, extra_env: dict[str, str] | None = None, ca: Path | None = None
) -> Service:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    env |= {"TRUSTWATCH_DATA_DIR": str(data_dir), "TRUSTWATCH_PORT": str(port)}
    env |= extra_env or {}
    printed = data_dir.parent / f"serve-{port}.out"
    with printed.open("w", encoding="utf-8") as stdout:
        process = subprocess.Popen(
            [*TRUSTWATCH, "serve"], env=env, stdout=stdout, stderr=subprocess.DEVNULL, text=True
        )
    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, ca)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    # The admin token is printed (and flushed) before the server starts listening.
    match = re.search(r"tw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", printed.read_text(encoding="utf-8"))
    return Service(process, url, match.group(0) if match else None, env)


def _wait_healthy(process: subprocess.Popen[str], url: str, ca: Path | None) -> None:
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trustwatch serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("trustwatch serve did not become healthy")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = start_service(tmp_path / "data", _free_port())
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def sensor_token(service: Service, data_dir: Path, sensor_id: str) -> Path:
    created = subprocess.run(
        [
            *TRUSTWATCH,
            "token",
            "create",
            "--role",
            "sensor",
            "--name",
            sensor_id,
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=service.env,
        timeout=60,
    )
    path = data_dir.parent / f"{sensor_id}.token"
    path.write_text(created.stdout.strip(), encoding="utf-8")
    return path


def run_sensor(
    service: Service, capture: Path, sensor_id: str, token_file: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    args = ["--pcap", str(capture), "--api", service.url, "--sensor-id", sensor_id]
    args += ["--token-file", str(token_file), "--batch-size", "7", *extra]
    return subprocess.run(
        [*TRUSTWATCH, "sensor", "net", *args],
        capture_output=True,
        text=True,
        env=service.env,
        timeout=120,
        check=False,
    )


def ship(service: Service, capture: Path, sensor_id: str, token_file: Path) -> dict[str, object]:
    result = run_sensor(service, capture, sensor_id, token_file)
    assert 0 == result.returncode, result.stderr
    summary: dict[str, object] = orjson.loads(result.stdout)
    return summary


def all_flows(service: Service, token: str, **params: object) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, "limit": 50, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{service.url}/api/v1/flows",
            params=query,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_pcap_to_api_and_back(service: Service, tmp_path: Path) -> None:
    assert service.admin_token is not None, "the first serve prints an admin token"
    data_dir = tmp_path / "data"
    token_file = sensor_token(service, data_dir, "edge-1")

    summary = ship(service, DATA / "mixed.pcap", "edge-1", token_file)
    assert (56, 19, 19, 0, 0) == (
        summary["packets"],
        summary["flows"],
        summary["accepted"],
        summary["duplicates"],
        summary["rejected"],
    )

    flows = all_flows(service, service.admin_token)
    assert 19 == len(flows)
    assert {"edge-1"} == {f["observer.name"] for f in flows}
    assert sorted(
        [
            ("10.0.0.1", "10.0.0.2", 80, "fin"),
            ("10.0.0.1", "10.0.0.2", 23, "rst"),
            *[("10.0.0.9", "10.0.0.2", port, "rst") for port in range(20, 30)],
            ("10.0.0.1", "10.0.0.53", 53, "idle_timeout"),
            ("10.0.0.1", "10.0.0.53", 53, "idle_timeout"),
            ("10.0.0.1", "10.0.0.53", 53, "end_of_capture"),
            ("10.0.0.1", "10.0.0.2", None, "idle_timeout"),
            ("2001:db8::1", "2001:db8::2", 443, "fin"),
            ("10.1.0.1", "10.1.0.2", 443, "idle_timeout"),
            ("10.1.0.1", "10.1.0.2", 443, "idle_timeout"),
        ],
        key=repr,
    ) == sorted(
        (
            (f["source.ip"], f["destination.ip"], f.get("destination.port"), f["flow.end_reason"])
            for f in flows
        ),
        key=repr,
    )
    assert 10 == len(all_flows(service, service.admin_token, ip="10.0.0.9"))

    # Resending the same capture is acknowledged and stored once.
    again = ship(service, DATA / "mixed.pcap", "edge-1", token_file)
    assert (19, 19) == (again["accepted"], again["duplicates"])
    assert 19 == len(all_flows(service, service.admin_token))

    sensors = httpx.get(
        f"{service.url}/api/v1/sensors", headers={"Authorization": f"Bearer {service.admin_token}"}
    ).json()
    assert [("edge-1", 19, 3 + 3, 56)] == [  # 19 flows in batches of 7: 7 + 7 + 5, twice
        (s["sensor_id"], s["records_received"], s["batches_received"], s["counters"]["packets"])
        for s in sensors
    ]

    # A restart keeps everything and does not mint a second admin.
    service.stop()
    restarted = start_service(data_dir, _free_port())
    try:
        assert restarted.admin_token is None
        assert 19 == len(all_flows(restarted, service.admin_token))
    finally:
        restarted.stop()


def test_a_real_capture_arrives_whole(service: Service, tmp_path: Path) -> None:
    capture = shared_capture("slips/test7-malicious.pcap")
    assert service.admin_token is not None
    token_file = sensor_token(service, tmp_path / "data", "edge-2")
    summary = ship(service, capture, "edge-2", token_file)
    assert (summary["flows"], 0) == (summary["accepted"], summary["rejected"])
    assert summary["flows"] == len(all_flows(service, service.admin_token, sensor="edge-2"))


def test_a_second_service_on_the_same_data_dir_is_refused(service: Service, tmp_path: Path) -> None:
    result = subprocess.run(
        [*TRUSTWATCH, "serve", "--port", str(_free_port())],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 2 == result.returncode
    assert "another trustwatch serve is running on" in result.stderr


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, chain, key = tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    tls = {"TRUSTWATCH_TLS_CERT": str(chain), "TRUSTWATCH_TLS_KEY": str(key)}
    service = start_service(tmp_path / "data", _free_port(), tls, ca=ca_file)
    try:
        token_file = sensor_token(service, tmp_path / "data", "edge-tls")
        trusted = run_sensor(
            service, DATA / "mixed.pcap", "edge-tls", token_file, "--ca", str(ca_file)
        )
        assert (0, 19) == (trusted.returncode, orjson.loads(trusted.stdout)["accepted"])
        # Without the private CA the sensor refuses the server: verification is never off.
        untrusted = run_sensor(
            service, DATA / "dns.pcap", "edge-tls", token_file, "--retry-budget", "0"
        )
        assert 1 == untrusted.returncode
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    finally:
        service.stop()


def test_the_spool_delivers_every_flow_exactly_once_across_an_outage(tmp_path: Path) -> None:
    data, spool, port = tmp_path / "data", tmp_path / "spool", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    created = subprocess.run(
        [
            *TRUSTWATCH,
            "token",
            "create",
            "--role",
            "sensor",
            "--name",
            "edge-9",
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    token_file = tmp_path / "edge-9.token"
    token_file.write_text(created.stdout.strip(), encoding="utf-8")

    def sensor(capture: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *TRUSTWATCH,
                "sensor",
                "net",
                "--pcap",
                str(capture),
                "--api",
                f"http://127.0.0.1:{port}",
                "--sensor-id",
                "edge-9",
                "--token-file",
                str(token_file),
                "--spool",
                str(spool),
                "--batch-size",
                "7",
                "--retry-budget",
                "0.3",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    # The service is down: the batches wait in the spool, and the sensor says so.
    down = sensor(DATA / "mixed.pcap")
    assert 1 == down.returncode
    assert "3 batches (19 records) wait in the spool" in down.stderr
    waiting = {p.name: p.read_bytes() for p in spool.glob("*.batch")}
    assert 3 == len(waiting)

    service = start_service(data, port)
    try:
        assert service.admin_token is not None
        # The next run sends what waited, then its own flows.
        up = sensor(DATA / "dns.pcap")
        assert 0 == up.returncode, up.stderr
        summary = orjson.loads(up.stdout)
        assert (20, 0, 0) == (
            summary["accepted"],
            summary["duplicates"],
            summary["spool"]["spool_batches"],
        )
        assert 20 == len(all_flows(service, service.admin_token))

        # A crash between the service's answer and the spool forgetting the batch: it is sent
        # again, recognised, and stored once.
        name, body = sorted(waiting.items())[0]
        (spool / name).write_bytes(body)
        again = sensor(DATA / "dns.pcap")
        assert 0 == again.returncode, again.stderr
        assert (8, 8) == (
            orjson.loads(again.stdout)["accepted"],
            orjson.loads(again.stdout)["duplicates"],
        )
        assert 20 == len(all_flows(service, service.admin_token))
    finally:
        service.stop()


def test_attacks_from_the_lab_become_alerts(service: Service, tmp_path: Path) -> None:
    assert service.admin_token is not None
    admin = {"Authorization": f"Bearer {service.admin_token}"}
    token_file = sensor_token(service, tmp_path / "data", "edge-lab")
    for activity in ("browse", "dns", "nmap_syn", "bruteforce", "dns_tunnel"):
        summary = ship(service, LAB / f"{activity}.pcap", "edge-lab", token_file)
        assert 0 == summary["rejected"]
    alerts = httpx.get(f"{service.url}/api/v1/alerts", headers=admin, timeout=10).json()["items"]
    assert [
        ("DNS tunnelling suspected", "high", "10.203.0.10", 1),
        ("HTTP login brute force", "high", "10.203.0.66 10.203.0.2", 1),
        ("Vertical port scan", "medium", "10.203.0.66 10.203.0.2", 1),
    ] == sorted((a["title"], a["severity"], a["entity"], a["count"]) for a in alerts)
    assert {"new"} == {a["status"] for a in alerts}

    # The evidence names stored flows.
    scan = next(a for a in alerts if a["title"] == "Vertical port scan")
    detail = httpx.get(f"{service.url}/api/v1/alerts/{scan['id']}", headers=admin, timeout=10)
    evidence = detail.json()["evidence"]
    assert (15, 15, 15) == (
        evidence["events"],
        len(evidence["event_ids"]),
        evidence["values"]["distinct destination.port"],
    )
    stored = {f["event.id"] for f in all_flows(service, service.admin_token, ip="10.203.0.66")}
    assert set(evidence["event_ids"]) <= stored

    # A resent capture is recognised: nothing is evaluated twice, no count changes.
    ship(service, LAB / "nmap_syn.pcap", "edge-lab", token_file)
    again = httpx.get(f"{service.url}/api/v1/alerts", headers=admin, timeout=10).json()["items"]
    assert sorted((a["id"], a["count"]) for a in alerts) == sorted(
        (a["id"], a["count"]) for a in again
    )


def test_an_alert_stored_before_a_kill_9_is_delivered_after_the_restart(tmp_path: Path) -> None:
    """From a capture to a verified delivery, across a crash: the sensor ships the lab's port
    scan, the service stores the alert and its outbox row together, the coordination centre
    is down, the service dies by SIGKILL; after the restart (the receiver now up) the alert
    arrives, signed and verified, exactly once."""
    from tests.delivery.test_receiver import KEY, Receiver

    secret = tmp_path / "ncc.secret"
    secret.write_text(KEY.secret + "\n")
    receiver_port = _free_port()
    receivers = [
        {"name": "ncc", "url": f"http://127.0.0.1:{receiver_port}/", "secret_file": str(secret)}
    ]
    env = {"TRUSTWATCH_RECEIVERS": orjson.dumps(receivers).decode()}
    data_dir, port = tmp_path / "data", _free_port()
    service = start_service(data_dir, port, env)
    assert service.admin_token is not None
    admin = {"Authorization": f"Bearer {service.admin_token}"}
    token_file = sensor_token(service, data_dir, "edge-lab")
    ship(service, LAB / "nmap_syn.pcap", "edge-lab", token_file)
    (alert,) = httpx.get(f"{service.url}/api/v1/alerts", headers=admin, timeout=10).json()["items"]
    assert ("Vertical port scan", "pending") == (alert["title"], alert["delivery"]["state"])

    service.process.kill()  # SIGKILL: no shutdown, no checkpoint, whatever was in flight
    service.process.wait(timeout=10)
    receiver = Receiver(
        tmp_path,
        tmp_path / "ncc.jsonl",
        ["--port", str(receiver_port), "--secret-file", str(secret)],
        None,
    )
    try:
        restarted = start_service(data_dir, port, env)
        try:
            deadline = time.monotonic() + 20
            while not (receiver.out.exists() and receiver.records()):
                assert time.monotonic() < deadline, "not delivered after the restart"
                time.sleep(0.1)
            time.sleep(1.0)  # a second copy, if there were one, would be written by now
            (record,) = receiver.records()
            payload = record["payload"]
            assert isinstance(payload, dict)
            assert [alert["id"]] == [a["id"] for a in payload["alerts"]]
            after = httpx.get(
                f"{restarted.url}/api/v1/alerts/{alert['id']}", headers=admin, timeout=10
            ).json()
            assert "delivered" == after["delivery"]["state"]
        finally:
            restarted.stop()
    finally:
        assert 0 == receiver.stop()
