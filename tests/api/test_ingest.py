"""POST /api/v1/ingest over a real server: what is accepted, what is refused, and that a
refused request leaves nothing behind."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from api.app import create_app
from api.settings import load_settings
from api.store import SqliteStore
from api.store.protocol import FlowQuery
from tests.conftest import LiveServer, Tokens
from tests.sensors.test_wire import flow, scan


def envelope(records: list[Any], sensor_id: str = "sensor-1", **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "sensor_id": sensor_id,
        "sent_at": "2026-01-02T03:04:05Z",
        "records": records,
        **extra,
    }


def flows(n: int, prefix: str = "f") -> list[dict[str, Any]]:
    return [flow(**{"event.id": f"{prefix}{i:031d}", "source.port": 1024 + i}) for i in range(n)]


def post(
    client: httpx.Client,
    tokens: Tokens,
    payload: Any,
    *,
    role: str = "sensor",
    compress: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    sent = {"Content-Type": "application/json", **tokens.of(role)}
    if compress:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    sent.update(headers or {})
    return client.post("/api/v1/ingest", content=body, headers=sent)


def stored(store: SqliteStore) -> int:
    return len(store.query_flows(FlowQuery(limit=1000)).items)


def received(store: SqliteStore, sensor_id: str = "sensor-1") -> tuple[int, int]:
    (sensor,) = [s for s in store.list_sensors() if s.sensor_id == sensor_id]
    return sensor.records_received, sensor.batches_received


def test_a_batch_is_stored_and_acknowledged(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    response = post(client, tokens, envelope([*flows(250), scan()]))
    assert (
        response.status_code,
        response.json(),
    ) == (200, {"accepted": 251, "duplicates": 0, "rejected": []})
    assert (stored(store), received(store)) == (250, (251, 1))


def test_plain_json_is_accepted_too(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    response = post(client, tokens, envelope(flows(3)), compress=False)
    assert (response.status_code, response.json()["accepted"]) == (200, 3)
    assert stored(store) == 3


def test_a_resent_batch_is_acknowledged_but_stored_once(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    batch = envelope(flows(10))
    post(client, tokens, batch)
    again = post(client, tokens, batch)
    assert again.json() == {"accepted": 10, "duplicates": 10, "rejected": []}
    assert (stored(store), received(store)) == (10, (10, 2))


def test_bad_records_are_rejected_one_by_one_and_the_rest_stored(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    records: list[Any] = flows(3)
    records.insert(1, flow(**{"event.id": "x" * 32, "source.port": 99999}))
    records.append(flow(**{"event.id": "y" * 32, "surprise": True}))
    records.append("not an object")
    response = post(client, tokens, envelope(records))
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "error": "source.port: Input should be less than or equal to 65535"},
            {"index": 4, "error": "surprise: Extra inputs are not permitted"},
            {
                "index": 5,
                "error": "record: Input should be a valid dictionary or object to extract "
                "fields from",
            },
        ],
    }
    assert stored(store) == 3


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"", 400, "malformed JSON"),
        # orjson reads an integer beyond 64 bits as a float; the envelope then refuses it.
        (
            b'{"schema_version": 1' + b"0" * 100 + b"}",
            422,
            "schema_version: Input should be a valid integer",
        ),
        (orjson.dumps(envelope([], schema_version=True)), 422, "schema_version: Input should be"),
        (orjson.dumps([1, 2]), 422, "invalid envelope: record: Input should be a valid dictionary"),
        (
            orjson.dumps(envelope(flows(1), schema_version=0)),
            422,
            "schema_version 0 is not supported",
        ),
        (
            orjson.dumps(envelope(flows(1), schema_version=3)),
            422,
            "schema_version 3 is not supported; this server accepts 1, 2",
        ),
        (
            orjson.dumps(envelope(flows(1), extra_field=1)),
            422,
            "extra_field: Extra inputs are not permitted",
        ),
        (
            orjson.dumps({**envelope([]), "records": {"a": 1}}),
            422,
            "records: Input should be a valid list",
        ),
        (orjson.dumps({**envelope([]), "sent_at": "yesterday"}), 422, "sent_at"),
        (
            orjson.dumps(envelope(flows(1), sensor_id="../etc")),
            422,
            "sensor_id: String should match pattern",
        ),
    ],
)
def test_a_bad_envelope_is_refused_and_nothing_is_stored(
    client: httpx.Client,
    tokens: Tokens,
    store: SqliteStore,
    payload: bytes,
    status: int,
    detail: str,
) -> None:
    response = post(client, tokens, payload)
    assert status == response.status_code
    assert detail in response.json()["detail"]
    assert (stored(store), received(store)) == (0, (0, 0))


@pytest.mark.parametrize(
    ("role", "sensor_id", "status", "detail"),
    [
        (None, "sensor-1", 401, "a bearer token is required"),
        ("analyst", "sensor-1", 403, "this needs a sensor token"),
        ("admin", "sensor-1", 403, "this needs a sensor token"),
        (
            "other_sensor",
            "sensor-1",
            403,
            "this token belongs to sensor 'sensor-2', not 'sensor-1'",
        ),
    ],
)
def test_only_the_sensor_bound_to_the_token_may_send(
    client: httpx.Client,
    tokens: Tokens,
    store: SqliteStore,
    role: str | None,
    sensor_id: str,
    status: int,
    detail: str,
) -> None:
    response = post(client, tokens, envelope(flows(2), sensor_id=sensor_id), role=role)  # type: ignore[arg-type]
    assert (status, detail) == (response.status_code, response.json()["detail"])
    assert stored(store) == 0


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer tw_000000000000_" + "A" * 43,  # well-formed, unknown key
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_a_wrong_token_is_401(
    client: httpx.Client, tokens: Tokens, store: SqliteStore, authorization: str
) -> None:
    response = post(
        client, tokens, envelope(flows(1)), role=None, headers={"Authorization": authorization}
    )  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert stored(store) == 0


def test_a_token_with_the_right_key_and_a_wrong_secret_is_401(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    key = tokens.sensor.split("_")[1]
    forged = f"tw_{key}_{'B' * 43}"
    response = post(
        client, tokens, envelope(flows(1)), role=None, headers={"Authorization": f"Bearer {forged}"}
    )  # type: ignore[arg-type]
    assert (response.status_code, response.json()["detail"]) == (401, "invalid or revoked token")


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({"Content-Type": "text/plain"}, 415, "send Content-Type: application/json"),
        ({"Content-Encoding": "br"}, 415, "Content-Encoding 'br' is not supported"),
    ],
)
def test_unsupported_media_is_415(
    client: httpx.Client,
    tokens: Tokens,
    store: SqliteStore,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    response = post(client, tokens, envelope(flows(1)), headers=headers)
    assert (status, True) == (response.status_code, detail in response.json()["detail"])
    assert stored(store) == 0


def test_broken_gzip_is_400(client: httpx.Client, tokens: Tokens, store: SqliteStore) -> None:
    body = gzip.compress(orjson.dumps(envelope(flows(5))))
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        **tokens.of("sensor"),
    }
    cut = client.post("/api/v1/ingest", content=body[: len(body) // 2], headers=headers)
    plain = client.post("/api/v1/ingest", content=orjson.dumps(envelope(flows(5))), headers=headers)
    trailing = client.post("/api/v1/ingest", content=body + b"junk", headers=headers)
    assert [(r.status_code, r.json()["detail"].split(":")[0]) for r in (cut, plain, trailing)] == [
        (400, "gzip body is truncated"),
        (400, "body is not valid gzip"),
        (400, "unexpected bytes after the gzip stream"),
    ]
    assert stored(store) == 0


@pytest.fixture
def small_server(tmp_path: Any, store: SqliteStore) -> Iterator[httpx.Client]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        max_body_bytes=64 * 1024,
        max_decompressed_bytes=256 * 1024,
        max_records_per_batch=50,
    )
    with (
        LiveServer(create_app(settings, store=store)) as live,
        httpx.Client(base_url=live.url, timeout=10) as http,
    ):
        yield http


def test_an_oversize_body_is_413(
    small_server: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    body = orjson.dumps(envelope(flows(1), padding="x" * 70_000))
    response = post(small_server, tokens, body, compress=False)
    assert (response.status_code, response.json()["detail"][:7]) == (413, "body of")
    assert stored(store) == 0


def test_an_oversize_body_without_a_length_is_413(
    small_server: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    body = orjson.dumps(envelope(flows(1), padding="x" * 70_000))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = small_server.post(
        "/api/v1/ingest",
        content=chunks(),
        headers={"Content-Type": "application/json", **tokens.of("sensor")},
    )
    assert (
        response.status_code,
        response.json()["detail"],
    ) == (413, "body exceeds the limit of 65536 bytes")
    assert stored(store) == 0


def test_a_gzip_bomb_is_413_without_inflating_it(
    small_server: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = compressor.compress(b"[" + b" " * (50 * 1024 * 1024)) + compressor.flush()
    assert len(bomb) < 64 * 1024  # 50 MiB that fits under the wire limit
    response = post(
        small_server, tokens, bomb, compress=False, headers={"Content-Encoding": "gzip"}
    )
    assert (
        response.status_code,
        response.json()["detail"],
    ) == (413, "decompressed body exceeds the limit of 262144 bytes")
    assert stored(store) == 0


def test_too_many_records_is_413(
    small_server: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    response = post(small_server, tokens, envelope(flows(51)))
    assert (
        response.status_code,
        response.json()["detail"],
    ) == (413, "batch of 51 records exceeds the limit of 50")
    assert stored(store) == 0


def test_ingest_counts_show_on_metrics(client: httpx.Client, tokens: Tokens) -> None:
    batch = envelope([*flows(4), flow(**{"event.id": "z" * 32, "source.port": -1})])
    post(client, tokens, batch)
    post(client, tokens, batch)
    text = client.get("/metrics", headers=tokens.of("analyst")).text
    for line in (
        'trustwatch_ingest_records_total{outcome="accepted"} 4.0',
        'trustwatch_ingest_records_total{outcome="duplicate"} 4.0',
        'trustwatch_ingest_records_total{outcome="rejected"} 2.0',
        "trustwatch_ingest_batches_total 2.0",
        'trustwatch_http_requests_total{method="POST",route="/api/v1/ingest",status="200"} 2.0',
    ):
        assert line in text.splitlines()
