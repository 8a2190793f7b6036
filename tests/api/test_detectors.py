"""The behavioural detectors in the service: an anomaly becomes an alert with its explanation;
their state is saved at shutdown and on a schedule and restored at start-up; a state that
cannot be restored means a fresh start that /healthz reports."""

from __future__ import annotations

import asyncio
import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api import checkpoint
from api.app import create_app
from api.pipeline import BUILTIN_RULES, Pipeline
from api.settings import Settings
from api.store import SqliteStore
from rules.loader import load_rules
from scoring.anomaly import AnomalyDetectors
from tests.api.test_ingest import envelope, flows, post
from tests.conftest import LiveServer, Tokens
from tests.sensors.test_wire import flow


def pipeline() -> Pipeline:
    return Pipeline(load_rules([BUILTIN_RULES]), anomaly=AnomalyDetectors())


def anomaly_health(server: LiveServer) -> dict[str, object]:
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    anomaly: dict[str, object] = health["anomaly"]
    return anomaly


def test_what_was_learned_survives_a_restart(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    state = checkpoint.state_path(settings.data_dir)
    with LiveServer(create_app(settings, store=store, pipeline=pipeline())) as first:
        assert "fresh" == anomaly_health(first)["state"]
        with httpx.Client(base_url=first.url, timeout=10) as client:
            assert 200 == post(client, tokens, envelope(flows(300))).status_code
        assert 300 == anomaly_health(first)["flows_judged"]
    assert 0o600 == stat.S_IMODE(state.stat().st_mode)
    with LiveServer(create_app(settings, store=store, pipeline=pipeline())) as second:
        assert {"state": "restored", "flows_judged": 300, "sensors": 1} == {
            key: anomaly_health(second)[key] for key in ("state", "flows_judged", "sensors")
        }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a TrustWatch detector state (bad magic)"),
        (b"TWSTATE\n\x00\x01" + bytes(32) + b"payload", "damaged (checksum mismatch); was"),
    ],
)
def test_a_state_that_does_not_load_means_a_fresh_start_that_healthz_reports(
    settings: Settings, store: SqliteStore, tokens: Tokens, content: bytes, reason: str
) -> None:
    state = checkpoint.state_path(settings.data_dir)
    state.write_bytes(content)
    with LiveServer(create_app(settings, store=store, pipeline=pipeline())) as server:
        note = str(anomaly_health(server)["state"])
        assert note.startswith("fresh: anomaly.state: "), note
        assert reason in note
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert 200 == post(client, tokens, envelope(flows(5))).status_code
    restored = checkpoint.state_path(settings.data_dir).read_bytes()
    assert restored.startswith(b"TWSTATE\n")  # replaced by a good one
    assert len(restored) > 1000


def test_checkpoints_are_written_on_the_schedule(tmp_path: Path) -> None:
    state = tmp_path / "anomaly.state"
    running = pipeline()
    running.detect([{"observer.name": "s", "source.ip": "10.0.0.1"}])

    async def two_periods() -> None:
        task = asyncio.create_task(checkpoint.run_checkpoints(running, state, 0.05))
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(two_periods())
    fresh = pipeline()
    checkpoint.restore(fresh, state)
    assert ("restored", 1) == (fresh.anomaly_state_note, fresh.anomaly.flow.counters.records)  # type: ignore[union-attr]
    assert [] == list(tmp_path.glob(".anomaly.state.*"))  # no temporary file left behind


def test_with_anomaly_detection_off_nothing_is_saved(
    settings: Settings, store: SqliteStore
) -> None:
    off = Pipeline(load_rules([BUILTIN_RULES]))
    with LiveServer(create_app(settings, store=store, pipeline=off)) as server:
        assert {"state": "off"} == anomaly_health(server)
    assert not checkpoint.state_path(settings.data_dir).exists()


def wire_flow(i: int, rng: random.Random, **changes: object) -> dict[str, object]:
    """A wire-valid web flow, one every half second."""
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC) + timedelta(seconds=i / 2)
    packets = rng.randint(5, 12)
    record = {
        "event.id": f"{i:032x}",
        "event.start": start.isoformat(),
        "event.end": (start + timedelta(seconds=0.3)).isoformat(),
        "event.duration": 300_000_000,
        "flow.state": "SF",
        "source.ip": f"10.0.0.{rng.randint(2, 30)}",
        "source.port": 20_000 + i % 40_000,
        "destination.ip": f"192.0.2.{rng.randint(1, 40)}",
        "destination.port": 443,
        "source.packets": packets,
        "destination.packets": packets + 2,
        "source.bytes": packets * rng.randint(60, 120),
        "destination.bytes": packets * rng.randint(600, 1400),
        **changes,
    }
    return flow(**record)


def test_an_anomaly_becomes_an_alert_with_its_explanation(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    rng = random.Random(1)
    normal = [wire_flow(i, rng) for i in range(2400)]  # 20 minutes: warmed up
    upload = wire_flow(
        2400,
        rng,
        **{"source.bytes": 3_000_000_000, "source.packets": 2_100_000, "source.ip": "10.0.0.66"},
    )
    app = create_app(settings, store=store, pipeline=pipeline())
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for start in range(0, len(normal), 1000):
            batch = envelope(normal[start : start + 1000])
            assert 200 == post(client, tokens, batch).status_code
        assert 200 == post(client, tokens, envelope([upload])).status_code
        found = client.get(
            "/api/v1/alerts",
            params={"source": "anomaly:flow", "entity": "10.0.0.66"},
            headers=tokens.of("analyst"),
        ).json()["items"]
    assert 1 == len(found), found
    alert = found[0]
    explained = {d["feature"] for d in alert["evidence"]["values"]["explanation"]}
    assert ("Unusual flow", [upload["event.id"]]) == (
        alert["title"],
        alert["evidence"]["event_ids"],
    )
    assert "source.bytes" in explained or "source.packets" in explained, explained
    assert alert["evidence"]["values"]["score"] > alert["evidence"]["values"]["threshold"]
