"""Whatever a client sends to ingest, the answer is a 2xx or a 4xx with a reason, never a 5xx,
and the store holds exactly what was acknowledged."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.store import SqliteStore
from api.store.protocol import FlowQuery
from tests.api.test_ingest import envelope
from tests.conftest import Tokens
from tests.sensors.test_wire import flow

# What a JSON encoder can write: 64-bit integers, finite floats, text without lone surrogates.
# (Bodies beyond that come from ``st.binary`` and the explicit cases in test_ingest.py.)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
FIELDS = list(flow().keys())


@st.composite
def mutated_flows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid flow with a few fields replaced, dropped or added."""
    record = flow(**{"event.id": draw(st.from_regex(r"[a-f0-9]{32}", fullmatch=True))})
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        name = draw(st.sampled_from(FIELDS))
        if action == "replace":
            record[name] = draw(json_values)
        elif action == "drop":
            record.pop(name, None)
        else:
            record[draw(text.filter(bool))] = draw(json_values)
    return record


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.lists(mutated_flows(), max_size=5).map(lambda records: orjson.dumps(envelope(records))),
    st.fixed_dictionaries(
        {
            "schema_version": json_values,
            "sensor_id": text | st.just("sensor-1"),
            "sent_at": text | st.just("2026-01-01T00:00:00Z"),
            "records": st.lists(json_values, max_size=3),
        }
    ).map(orjson.dumps),
)


def test_ingest_never_fails_with_a_server_error(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    acknowledged: set[str] = set()

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=bodies, compress=st.booleans())
    def post_one(body: bytes, compress: bool) -> None:
        headers = {"Content-Type": "application/json", **tokens.of("sensor")}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        response = client.post("/api/v1/ingest", content=body, headers=headers)
        assert response.status_code in (200, 400, 413, 415, 422), response.text
        if response.status_code != 200:
            assert response.json()["detail"]
            return
        reply = response.json()
        sent = orjson.loads(gzip.decompress(body) if compress else body)["records"]
        rejected = {entry["index"] for entry in reply["rejected"]}
        assert len(sent) == reply["accepted"] + len(rejected)
        acknowledged.update(r["event.id"] for i, r in enumerate(sent) if i not in rejected)

    post_one()
    stored = {item["event.id"] for item in store.query_flows(FlowQuery(limit=1000)).items}
    assert acknowledged == stored
