"""Delivery over real sockets: the service (uvicorn on loopback, its delivery worker) posting to
the reference receiver (a real ``trustwatch receiver`` process), through outages, 429s and 410s.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from stix2validator import ValidationOptions, validate_string

from api.app import create_app
from api.settings import Settings, load_settings
from api.store import SqliteStore, routing
from tests.api.test_ingest import envelope, post
from tests.conftest import LiveServer, Tokens
from tests.delivery.test_receiver import (  # noqa: F401 - start is a fixture
    KEY,
    OTHER,
    Receiver,
    Start,
    start,
)
from tests.sensors.test_wire import flow

_IDS = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_scan(attacker: str, victim: str = "10.9.0.2", ports: int = 15) -> list[dict[str, Any]]:
    """What a vertical port scan leaves: refused connections to ``ports`` ports of one host
    (the rule pack's "Vertical port scan" fires at 15)."""
    return [
        flow(
            **{
                "event.id": f"{next(_IDS):032x}",
                "source.ip": attacker,
                "source.port": 40000 + port,
                "destination.ip": victim,
                "destination.port": port,
                "flow.state": "REJ",
                "flow.end_reason": "rst",
            }
        )
        for port in range(1, ports + 1)
    ]


def delivery_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    secret = tmp_path / "ncc.secret"
    secret.write_text(KEY.secret + "\n")
    receivers = [{"name": "ncc", "url": f"http://127.0.0.1:{port}/", "secret_file": str(secret)}]
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "receivers": receivers,
        "delivery_retry_seconds": 0.1,
        "delivery_max_retry_seconds": 0.5,
        "group_window_seconds": 0,
        # A port that something else took meanwhile must not stall a test for the default 10 s.
        "delivery_timeout_seconds": 2,
        **overrides,
    }
    return load_settings(**values)


class Service:
    """The app on a real server, its store opened with the settings' routing."""

    def __init__(self, settings: Settings) -> None:
        self.store = SqliteStore.open(settings.db_path, routing=routing(settings))
        self.tokens = Tokens(self.store)
        self.live = LiveServer(create_app(settings, store=self.store)).__enter__()
        self.http = httpx.Client(base_url=self.live.url, timeout=10)

    def ingest(self, records: list[dict[str, Any]]) -> None:
        response = post(self.http, self.tokens, envelope(records))
        assert 200 == response.status_code, response.text
        assert [] == response.json()["rejected"]

    def alerts(self) -> list[dict[str, Any]]:
        headers = self.tokens.of("analyst")
        items: list[dict[str, Any]] = self.http.get("/api/v1/alerts", headers=headers).json()[
            "items"
        ]
        return items

    def deliveries(self, **params: str) -> list[dict[str, Any]]:
        headers = self.tokens.of("analyst")
        response = self.http.get("/api/v1/deliveries", headers=headers, params=params)
        assert 200 == response.status_code, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def close(self) -> None:
        self.http.close()
        self.live.__exit__()
        self.store.close()


@pytest.fixture
def services() -> Iterator[Callable[[Settings], Service]]:
    opened: list[Service] = []

    def _open(settings: Settings) -> Service:
        service = Service(settings)
        opened.append(service)
        return service

    yield _open
    for service in opened:
        service.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def delivered_alert_ids(receiver: Receiver) -> list[str]:
    if not receiver.out.exists():
        return []
    return [a["id"] for r in receiver.records() for a in r["payload"]["alerts"]]  # type: ignore[index]


def test_an_alert_reaches_the_receiver_signed_with_its_stix_bundle(
    start: Start,  # noqa: F811 - the fixture
    services: Callable[[Settings], Service],
    tmp_path: Path,
) -> None:
    port = free_port()
    receiver = start("--port", str(port))
    service = services(delivery_settings(tmp_path, port))
    service.ingest(port_scan("10.9.0.66"))
    wait_for(lambda: len(delivered_alert_ids(receiver)) == 1)

    (alert,) = service.alerts()
    (record,) = receiver.records()
    payload: dict[str, Any] = record["payload"]  # type: ignore[assignment]
    # The alert as the API shows it, less its delivery state (which the delivery changes).
    assert {k: v for k, v in alert.items() if k != "delivery"} == payload["alerts"][0]
    assert ("trustwatch.alerts", 1, "ncc", record["webhook-id"]) == (
        payload["type"],
        payload["version"],
        payload["receiver"],
        payload["notification_id"],
    )
    checked = validate_string(json.dumps(payload["stix"]), ValidationOptions(strict=True))
    assert (True, []) == (checked.is_valid, [str(e) for e in checked.errors])
    kinds = sorted({obj["type"] for obj in payload["stix"]["objects"]})
    assert [
        "attack-pattern",
        "identity",
        "incident",
        "indicator",
        "ipv4-addr",
        "marking-definition",
        "observed-data",
        "relationship",
        "sighting",
    ] == kinds

    # The alert says it was delivered; the notification lists the one attempt.
    wait_for(lambda: service.alerts()[0]["delivery"]["state"] == "delivered")
    (notification,) = service.deliveries()
    detail = service.http.get(
        f"/api/v1/deliveries/{notification['id']}", headers=service.tokens.of("analyst")
    ).json()
    assert (record["webhook-id"], "delivered", 1, [alert["id"]]) == (
        detail["id"],
        detail["state"],
        detail["attempts"],
        detail["alert_ids"],
    )
    assert [("delivered", 200)] == [(a["outcome"], a["status"]) for a in detail["attempt_log"]]
    metrics = service.http.get("/metrics", headers=service.tokens.of("analyst")).text
    assert 'trustwatch_notifications{receiver="ncc",state="delivered"} 1.0' in metrics
    assert 'trustwatch_delivery_attempts_total{outcome="delivered",receiver="ncc"} 1.0' in metrics


def test_a_receiver_down_for_a_while_gets_every_alert_once(
    start: Start,  # noqa: F811 - the fixture
    services: Callable[[Settings], Service],
    tmp_path: Path,
) -> None:
    port = free_port()
    service = services(delivery_settings(tmp_path, port))
    attackers = [f"10.9.1.{i}" for i in range(1, 7)]
    for attacker in attackers[:3]:
        service.ingest(port_scan(attacker))
    # Nobody listens: attempts fail, are recorded, and are retried.
    wait_for(
        lambda: (
            all(n["attempts"] >= 2 for n in service.deliveries()) and len(service.deliveries()) == 3
        )
    )
    assert {"pending"} == {a["delivery"]["state"] for a in service.alerts()}
    receiver = start("--port", str(port))
    for attacker in attackers[3:]:
        service.ingest(port_scan(attacker))
    wait_for(lambda: len(delivered_alert_ids(receiver)) >= 6)
    time.sleep(1.0)  # retries still in flight would show up as a second line now

    ids = delivered_alert_ids(receiver)
    assert sorted(a["id"] for a in service.alerts()) == sorted(ids)  # each once
    assert {"delivered"} == {a["delivery"]["state"] for a in service.alerts()}
    webhook_ids = [r["webhook-id"] for r in receiver.records()]
    assert len(set(webhook_ids)) == len(webhook_ids)


def test_429_with_retry_after_is_honoured_and_410_stops_until_replayed(
    start: Start,  # noqa: F811 - the fixture
    services: Callable[[Settings], Service],
    tmp_path: Path,
) -> None:
    port = free_port()
    busy = start(
        "--port", str(port), "--fail-first", "1", "--fail-status", "429", "--retry-after", "1"
    )
    # Retry-After is honoured up to the longest retry delay: make that 2 s here.
    service = services(delivery_settings(tmp_path, port, delivery_max_retry_seconds=2))
    service.ingest(port_scan("10.9.2.1"))
    wait_for(lambda: len(delivered_alert_ids(busy)) == 1)
    (notification,) = service.deliveries()
    attempts = service.http.get(
        f"/api/v1/deliveries/{notification['id']}", headers=service.tokens.of("analyst")
    ).json()["attempt_log"]
    assert [("retry", 429), ("delivered", 200)] == [(a["outcome"], a["status"]) for a in attempts]
    # The retry waited for Retry-After (1 s), not the configured 0.1 s backoff.
    first, second = (a["at"] for a in attempts)
    gap = datetime.fromisoformat(second) - datetime.fromisoformat(first)
    assert gap.total_seconds() >= 0.99
    assert 0 == busy.stop()

    gone = start("--port", str(port), "--fail-first", "1", "--fail-status", "410")
    service.ingest(port_scan("10.9.2.2"))
    wait_for(lambda: len(service.deliveries(state="dead")) == 1)
    (dead,) = service.deliveries(state="dead")
    assert ("410 Gone: stopped", 1) == (dead["last_error"], dead["attempts"])
    time.sleep(0.5)
    assert 1 == len(service.deliveries(state="dead"))  # 410 means stop: no more attempts
    # An analyst may not replay; an admin may.
    replay = f"/api/v1/deliveries/{dead['id']}/replay"
    assert 403 == service.http.post(replay, headers=service.tokens.of("analyst")).status_code
    replayed = service.http.post(replay, headers=service.tokens.of("admin"))
    assert (200, "pending") == (replayed.status_code, replayed.json()["state"])
    wait_for(lambda: len(delivered_alert_ids(gone)) == 1)
    again = service.http.post(replay, headers=service.tokens.of("admin"))
    assert 409 == again.status_code  # only a dead one is replayed


def test_a_retry_that_would_fall_past_the_max_age_is_not_made(
    services: Callable[[Settings], Service], tmp_path: Path
) -> None:
    port = free_port()  # nobody will listen
    # The first retry would come 30-60 min later, past the 60 s the notification may live.
    settings = delivery_settings(
        tmp_path,
        port,
        delivery_max_age_seconds=60,
        delivery_retry_seconds=3600,
        delivery_max_retry_seconds=3600,
    )
    service = services(settings)
    service.ingest(port_scan("10.9.3.1"))
    wait_for(lambda: len(service.deliveries(state="dead")) == 1)
    (notification,) = service.deliveries()
    assert 1 == notification["attempts"]
    assert notification["last_error"].startswith("gave up after 1 attempts: ConnectError")
    assert "dead" == service.alerts()[0]["delivery"]["state"]


def test_a_receiver_refuses_a_delivery_signed_with_the_wrong_key(
    start: Start,  # noqa: F811 - the fixture
    services: Callable[[Settings], Service],
    tmp_path: Path,
) -> None:
    port = free_port()
    receiver = start("--port", str(port))
    settings = delivery_settings(tmp_path, port)
    (settings.receivers[0].secret_file).write_text(OTHER.secret + "\n")  # not the receiver's
    service = services(settings)
    service.ingest(port_scan("10.9.4.1"))
    wait_for(lambda: bool(service.deliveries()) and service.deliveries()[0]["attempts"] >= 2)
    (notification,) = service.deliveries()
    assert ("pending", "HTTP 401") == (notification["state"], notification["last_error"])
    assert [] == delivered_alert_ids(receiver)
