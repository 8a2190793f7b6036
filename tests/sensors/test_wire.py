"""The wire format: the committed schema snapshot, and what a record may and may not be."""

from __future__ import annotations

import doctest
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import sensors.wire
from sensors.wire import (
    ACCEPTED_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    Envelope,
    FlowRecord,
    ScanRecord,
    describe_error,
    dump_record,
    validate_record,
    wire_json_schema,
)

SNAPSHOT = Path(__file__).resolve().parents[1] / "contracts" / "wire.schema.json"


def flow(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event.id": "0123456789abcdef0123456789abcdef",
        "event.dataset": "trustwatch.flow",
        "event.start": "2026-01-01T00:00:00Z",
        "event.end": "2026-01-01T00:00:01.5Z",
        "event.duration": 1_500_000_000,
        "flow.end_reason": "fin",
        "network.transport": "tcp",
        "network.iana_number": "6",
        "network.type": "ipv4",
        "source.ip": "10.0.0.1",
        "source.port": 40000,
        "source.bytes": 300,
        "source.packets": 5,
        "destination.ip": "10.0.0.2",
        "destination.port": 80,
        "destination.bytes": 160,
        "destination.packets": 4,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def scan(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event.id": "scan-0123456789abcdef",
        "event.dataset": "trustwatch.scan",
        "event.start": "2026-01-01T00:00:00Z",
        "event.end": "2026-01-01T00:00:09Z",
        "url.domain": "Portal.Example.gov",
        "checks": [
            {"id": "tls.protocols", "status": "pass", "evidence": {"versions": ["TLSv1.3"]}},
            {"id": "http.hsts", "status": "fail", "advice": "Send Strict-Transport-Security."},
        ],
    }
    record.update(changes)
    return record


def test_schema_snapshot_matches_the_models() -> None:
    """Any change to the wire contract must show in review as a change to this file.

    Regenerate with: TRUSTWATCH_UPDATE_SNAPSHOTS=1 pytest tests/sensors/test_wire.py
    """
    actual = json.dumps(wire_json_schema(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("TRUSTWATCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(actual, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == actual


def test_doctests() -> None:
    assert doctest.testmod(sensors.wire).failed == 0


def test_the_server_accepts_this_version_and_the_one_before() -> None:
    assert {SCHEMA_VERSION, SCHEMA_VERSION - 1} - {0} == ACCEPTED_SCHEMA_VERSIONS


def test_a_flow_round_trips_with_canonical_values() -> None:
    record = validate_record(
        flow(
            **{
                "source.ip": "2001:DB8:0::1",
                "destination.ip": "2001:db8::2",
                "network.type": "ipv6",
            }
        )
    )
    assert isinstance(record, FlowRecord)
    expected = flow(
        **{"source.ip": "2001:db8::1", "destination.ip": "2001:db8::2", "network.type": "ipv6"}
    )
    expected["event.end"] = "2026-01-01T00:00:01.500000Z"
    assert expected == dump_record(record)


def test_a_scan_round_trips_and_lowercases_its_domain() -> None:
    record = validate_record(scan())
    assert isinstance(record, ScanRecord)
    dumped = dump_record(record)
    assert dumped["url.domain"] == "portal.example.gov"
    assert dumped["checks"] == [
        {
            "id": "tls.protocols",
            "status": "pass",
            "evidence": {"versions": ["TLSv1.3"]},
            "advice": "",
            "summary": "",  # optional: a sensor that does not send it is still understood
            "references": [],  # optional too; an absent modifier is not written
        },
        {
            "id": "http.hsts",
            "status": "fail",
            "evidence": {},
            "advice": "Send Strict-Transport-Security.",
            "summary": "",
            "references": [],
        },
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            flow(**{"source.port": 70000}),
            "source.port: Input should be less than or equal to 65535",
        ),
        (flow(bogus=1), "bogus: Extra inputs are not permitted"),
        (flow(**{"event.end": "2025-12-31T23:59:59Z"}), "event.end is before event.start"),
        (flow(**{"destination.ip": "2001:db8::2"}), "different IP versions"),
        (
            flow(**{"event.start": "2026-01-01T00:00:00"}),
            "event.start: Input should have timezone info",
        ),
        (flow(**{"event.id": "short"}), "event.id: String should match pattern"),
        (flow(**{"source.bytes": -1}), "source.bytes: Input should be greater than or equal to 0"),
        (flow(**{"network.transport": "carrier-pigeon"}), "network.transport: Input should be"),
        (flow(**{"source.ip": "10.0.0.300"}), "source.ip"),
        (flow(**{"event.dataset": "trustwatch.other"}), "does not match any of the expected tags"),
        (scan(checks=[]), "checks: List should have at least 1 item"),
        (
            scan(checks=[{"id": "a", "status": "pass"}, {"id": "a", "status": "fail"}]),
            "check ids repeat",
        ),
        (scan(checks=[{"id": "a", "status": "broken"}]), "checks.0.status: Input should be"),
        (
            flow(**{"source.ip": "2001:db8::1", "destination.ip": "2001:db8::2"}),
            "network.type is ipv4 but the addresses are not",
        ),
        (flow(**{"network.iana_number": "250"}), "network.iana_number 250 is not tcp (6)"),
        ([1, 2], "record: Input should be a valid dictionary"),
    ],
)
def test_an_invalid_record_is_rejected_with_a_readable_reason(record: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_record(record)
    assert message in describe_error(caught.value)


def test_an_envelope_with_an_unsupported_version_says_which_are_accepted() -> None:
    with pytest.raises(ValidationError) as caught:
        Envelope.model_validate(
            {
                "schema_version": 99,
                "sensor_id": "s1",
                "sent_at": "2026-01-01T00:00:00Z",
                "records": [],
            }
        )
    assert "schema_version 99 is not supported; this server accepts 1" in describe_error(
        caught.value
    )


def test_describe_error_counts_what_it_leaves_out() -> None:
    bad = flow(**{f"extra{i}": i for i in range(8)})
    with pytest.raises(ValidationError) as caught:
        validate_record(bad)
    assert describe_error(caught.value).endswith("(and 3 more)")
