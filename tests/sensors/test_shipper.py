"""The shipper against a real HTTP server on loopback that answers from a script."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sensors.errors import ShipError, ShipRejectedError, ShipUnreachableError
from sensors.shipper import Shipper, ShipperConfig
from sensors.wire import SCHEMA_VERSION


class ScriptedServer:
    """Answers each POST with the next (status, headers, body) of its script, and records
    what it received."""

    def __init__(self, script: list[tuple[int, dict[str, str], dict[str, Any]]]) -> None:
        self.script = list(script)
        self.received: list[tuple[str, dict[str, str], Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                owner.received.append((self.path, dict(self.headers), json.loads(body)))
                status, headers, payload = owner.script.pop(0)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


OK = (200, {}, {"accepted": 2, "duplicates": 0, "rejected": []})
RECORDS = [{"event.id": "a" * 32}, {"event.id": "b" * 32}]


def shipper_for(url: str, sleeps: list[float], budget: float = 60.0) -> Shipper:
    """A shipper whose sleeps are recorded instead of slept; its clock advances by them."""
    config = ShipperConfig(api_url=url, token="tw_secret", sensor_id="edge-1", retry_budget=budget)
    return Shipper(config, sleep=sleeps.append, monotonic=lambda: sum(sleeps), jitter=lambda: 1.0)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def test_a_batch_is_sent_gzip_with_token_and_envelope(sleeps: list[float]) -> None:
    with ScriptedServer([OK]) as server, shipper_for(server.url, sleeps) as shipper:
        reply = shipper.send(RECORDS)
    assert (2, 0, []) == (reply.accepted, reply.duplicates, reply.rejected)
    ((path, headers, body),) = server.received
    assert ("/api/v1/ingest", "Bearer tw_secret", "gzip") == (
        path,
        headers["Authorization"],
        headers["Content-Encoding"],
    )
    assert (SCHEMA_VERSION, "edge-1", RECORDS) == (
        body["schema_version"],
        body["sensor_id"],
        body["records"],
    )
    assert [] == sleeps


def test_transient_failures_are_retried_with_exponential_backoff(sleeps: list[float]) -> None:
    script = [(503, {}, {"detail": "busy"}), (502, {}, {}), (500, {}, {}), OK]
    with ScriptedServer(script) as server, shipper_for(server.url, sleeps) as shipper:
        reply = shipper.send(RECORDS)
    assert 2 == reply.accepted
    assert [0.5, 1.0, 2.0] == sleeps  # base 0.5 s doubling; the jitter here draws its maximum
    assert 4 == len(server.received)


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    script = [(429, {"Retry-After": "7"}, {"detail": "slow down"}), OK]
    with ScriptedServer(script) as server, shipper_for(server.url, sleeps) as shipper:
        shipper.send(RECORDS)
    assert [7.0] == sleeps


@pytest.mark.parametrize("status", [400, 401, 403, 413, 422])
def test_a_client_error_is_final_and_says_why(sleeps: list[float], status: int) -> None:
    script = [(status, {}, {"detail": "because"})]
    with (
        ScriptedServer(script) as server,
        shipper_for(server.url, sleeps) as shipper,
        pytest.raises(ShipRejectedError) as caught,
    ):
        shipper.send(RECORDS)
    assert (status, f"HTTP {status}: because") == (
        caught.value.status,
        str(caught.value).split(": ", 1)[1],
    )
    assert [] == sleeps


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_service_gives_up_when_the_budget_is_spent(sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with (
        shipper_for(url, sleeps, budget=5.0) as shipper,
        pytest.raises(ShipUnreachableError) as caught,
    ):
        shipper.send(RECORDS)
    # 0.5 + 1 + 2 = 3.5 s of (recorded, not slept) backoff fits in 5 s; the next 4 s does not.
    assert [0.5, 1.0, 2.0] == sleeps
    assert "gave up after 4 attempts" in str(caught.value)
    assert "ConnectError" in str(caught.value)


def test_the_token_never_appears_in_the_config_repr() -> None:
    config = ShipperConfig(api_url="https://x", token="tw_abc_supersecret", sensor_id="s")
    assert "supersecret" not in repr(config)


def test_a_nonsense_retry_after_falls_back_to_backoff(sleeps: list[float]) -> None:
    script = [(503, {"Retry-After": "nan"}, {}), (429, {"Retry-After": "Wed, 21 Oct 2026"}, {}), OK]
    with ScriptedServer(script) as server, shipper_for(server.url, sleeps) as shipper:
        shipper.send(RECORDS)
    assert [0.5, 1.0] == sleeps


def test_a_reply_that_is_not_from_trustwatch_is_a_ship_error(sleeps: list[float]) -> None:
    script = [(200, {}, {"html": "<h1>captive portal</h1>"})]
    with (
        ScriptedServer(script) as server,
        shipper_for(server.url, sleeps) as shipper,
        pytest.raises(ShipError, match="is --api the TrustWatch service"),
    ):
        shipper.send(RECORDS)
