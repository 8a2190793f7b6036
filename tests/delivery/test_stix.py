"""The STIX 2.1 bundle of an alert: valid for the OASIS validator (strict), stable ids, ATT&CK
patterns from the tags, the triage state in the Incident Core Extension, TLP on every object
that describes the alert."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_string

from api.delivery.stix import INCIDENT_CORE_EXTENSION, TLP, alert_bundle
from api.store.protocol import Alert

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ALERT = Alert(
    id="0123456789abcdef0123456789abcdef",
    source="rule:6a2e7c2a-4f0e-4c54-9b0e-1c1a3f6b0a02",
    rule_id="6a2e7c2a-4f0e-4c54-9b0e-1c1a3f6b0a02",
    title="Vertical port scan",
    severity="high",
    entity="10.0.0.66",
    status="new",
    first_seen=T0,
    last_seen=T0 + timedelta(minutes=3),
    count=4,
    tags=["attack.discovery", "attack.t1046"],
    evidence={"event_ids": ["e1"]},
    created_at=T0,
    updated_at=T0 + timedelta(minutes=3),
)


def objects(alert: Alert, tlp: str = "amber") -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for obj in json.loads(alert_bundle(alert, tlp).serialize())["objects"]:
        by_type.setdefault(obj["type"], []).append(obj)
    return by_type


def valid(alert: Alert) -> tuple[bool, list[str]]:
    result = validate_string(alert_bundle(alert).serialize(), ValidationOptions(strict=True))
    return result.is_valid, [str(e) for e in result.errors]


@pytest.mark.parametrize("entity", ["10.0.0.66", "fd77:203::66", "Portal.Example.gov"])
@pytest.mark.parametrize(
    "status", ["new", "acknowledged", "in_progress", "resolved", "false_positive"]
)
def test_the_oasis_validator_accepts_every_bundle(entity: str, status: str) -> None:
    assert (True, []) == valid(replace(ALERT, entity=entity, status=status))


def test_the_validator_is_a_real_check() -> None:
    bundle = json.loads(alert_bundle(ALERT).serialize())
    for obj in bundle["objects"]:
        if obj["type"] == "indicator":
            obj["pattern"] = "[ipv4-addr:value = "  # cut short
    result = validate_string(json.dumps(bundle), ValidationOptions(strict=True))
    assert not result.is_valid


def test_the_bundle_says_what_happened() -> None:
    found = objects(ALERT)
    (indicator,) = found["indicator"]
    (observed,) = found["observed-data"]
    (sighting,) = found["sighting"]
    (pattern,) = found["attack-pattern"]
    (address,) = found["ipv4-addr"]
    assert "[ipv4-addr:value = '10.0.0.66']" == indicator["pattern"]
    assert (4, [address["id"]]) == (observed["number_observed"], observed["object_refs"])
    assert (indicator["id"], [observed["id"]], 4) == (
        sighting["sighting_of_ref"],
        sighting["observed_data_refs"],
        sighting["count"],
    )
    assert [{"source_name": "mitre-attack", "external_id": "T1046"}] == pattern[
        "external_references"
    ]
    assert {("indicates", indicator["id"], pattern["id"])} <= {
        (r["relationship_type"], r["source_ref"], r["target_ref"]) for r in found["relationship"]
    }


@pytest.mark.parametrize(
    ("status", "investigation", "determination"),
    [
        ("new", "new", "tbd"),
        ("in_progress", "open", "tbd"),
        ("resolved", "closed", "tbd"),
        ("false_positive", "closed", "false-positive"),
    ],
)
def test_the_triage_state_travels_in_the_incident_core_extension(
    status: str, investigation: str, determination: str
) -> None:
    (incident,) = objects(replace(ALERT, status=status))["incident"]
    extension = incident["extensions"][INCIDENT_CORE_EXTENSION]
    assert ("property-extension", investigation, determination, 75) == (
        extension["extension_type"],
        extension["investigation_status"],
        extension["determination"],
        extension["criticality"],
    )


def test_ids_are_stable_and_an_update_is_a_newer_version_of_the_same_objects() -> None:
    first = objects(ALERT)
    later = objects(replace(ALERT, count=9, updated_at=T0 + timedelta(hours=1)))
    ids = {t: sorted(o["id"] for o in objs) for t, objs in first.items()}
    assert ids == {t: sorted(o["id"] for o in objs) for t, objs in later.items()}
    assert later["incident"][0]["modified"] > first["incident"][0]["modified"]
    other = objects(replace(ALERT, id="f" * 32))
    assert first["incident"][0]["id"] != other["incident"][0]["id"]


@pytest.mark.parametrize("tlp", ["white", "green", "amber", "red"])
def test_every_object_carries_the_tlp_marking(tlp: str) -> None:
    found = objects(ALERT, tlp)
    marked = [
        o
        for kind, objs in found.items()
        if kind not in ("marking-definition", "identity", "ipv4-addr")
        for o in objs
    ]
    assert {TLP[tlp].id} == {ref for o in marked for ref in o["object_marking_refs"]}
