"""An alert as a STIX 2.1 bundle, for the coordination centre.

The bundle holds what an analyst at the other end needs to act on the alert without asking:

- an ``identity`` for TrustWatch (the producer, ``created_by_ref`` of everything else);
- the entity as a cyber-observable (``ipv4-addr``, ``ipv6-addr`` or ``domain-name``) inside an
  ``observed-data`` (first and last seen, how many times);
- an ``indicator`` whose pattern matches the entity, named after the rule or detector;
- a ``sighting`` of that indicator, pointing at the observed data, with the count;
- one ``attack-pattern`` per ATT&CK technique the rule is tagged with (``attack.t1046``), with
  its ``mitre-attack`` external reference, and ``indicates`` relationships to them;
- an ``incident`` carrying the triage state through the OASIS Incident Core Extension
  (``investigation_status``, ``determination``, ``criticality``), ``related-to`` the indicator
  (STIX lets no relationship point at a sighting).

Every object is marked with the TLP given (AMBER by default: the alert names an agency's host).
Ids derive from the alert's id, so sending the same alert again yields the same objects (the
receiver sees an update, not a new incident); ``modified`` follows the alert's last change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import stix2

from api.noise import hosts
from api.store.protocol import Alert

INCIDENT_CORE_EXTENSION: Final = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
"""The OASIS CTI TC's Incident Core Extension (a property extension of ``incident``)."""

_NAMESPACE: Final = uuid.UUID("2f6c1f0e-7d1a-5b7e-9c7a-54a1d1f0c0de")  # TrustWatch's STIX ids
_TECHNIQUE: Final = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$")
TLP: Final = {
    "white": stix2.TLP_WHITE,
    "green": stix2.TLP_GREEN,
    "amber": stix2.TLP_AMBER,
    "red": stix2.TLP_RED,
}
_INVESTIGATION: Final = {
    "new": "new",
    "acknowledged": "open",
    "in_progress": "open",
    "resolved": "closed",
    "false_positive": "closed",
}
_CRITICALITY: Final = {"low": 25, "medium": 50, "high": 75, "critical": 100}


def _id(kind: str, *parts: str) -> str:
    """A stable id: the same alert gives the same objects. STIX 2.1 wants UUIDv4 for domain
    objects, so the name's SHA-256 fills a version-4 UUID (random-looking, but reproducible)."""
    digest = hashlib.sha256("/".join((str(_NAMESPACE), kind, *parts)).encode()).digest()
    return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"


def _observables(entity: str) -> tuple[list[Any], str]:
    """The entity's hosts as SCOs (a scan's entity names the scanner and its target; ports and
    other words are left out) and the STIX pattern that matches any of them."""
    found = [_observable(host) for host in sorted(hosts(entity)) or [entity]]
    return [sco for sco, _ in found], " OR ".join(pattern for _, pattern in found)


def _observable(entity: str) -> tuple[Any, str]:
    """One host as an SCO and the STIX pattern that matches it."""
    try:
        address = ipaddress.ip_address(entity)
    except ValueError:
        name = entity.lower().rstrip(".")
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        return stix2.DomainName(value=name), f"[domain-name:value = '{quoted}']"
    if address.version == 4:
        return stix2.IPv4Address(value=str(address)), f"[ipv4-addr:value = '{address}']"
    return stix2.IPv6Address(value=str(address)), f"[ipv6-addr:value = '{address}']"


def techniques(tags: list[str]) -> list[str]:
    """The ATT&CK technique ids among a rule's tags.

    >>> techniques(["attack.discovery", "attack.t1046", "attack.t1071.004"])
    ['T1046', 'T1071.004']
    """
    return [m.group(1).upper() for tag in tags if (m := _TECHNIQUE.match(tag.lower()))]


def alert_bundle(alert: Alert, tlp: str = "amber") -> stix2.Bundle:
    """The STIX 2.1 bundle of ``alert`` (see the module's description)."""
    marking = TLP[tlp]
    producer = stix2.Identity(
        id=_id("identity", "trustwatch"),
        name="TrustWatch",
        identity_class="system",
        created=datetime(2026, 1, 1, tzinfo=alert.created_at.tzinfo),
        modified=datetime(2026, 1, 1, tzinfo=alert.created_at.tzinfo),
    )
    common: dict[str, Any] = {
        "created_by_ref": producer.id,
        "object_marking_refs": [marking.id],
        "created": alert.created_at,
        "modified": max(alert.updated_at, alert.created_at),
    }
    observables, pattern = _observables(alert.entity)
    observed = stix2.ObservedData(
        id=_id("observed-data", alert.id),
        first_observed=alert.first_seen,
        last_observed=max(alert.last_seen, alert.first_seen),
        number_observed=max(alert.count, 1),
        object_refs=[sco.id for sco in observables],
        **common,
    )
    indicator = stix2.Indicator(
        id=_id("indicator", alert.id),
        name=alert.title,
        description=f"TrustWatch {alert.source} about {alert.entity}",
        indicator_types=[
            "anomalous-activity" if alert.source.startswith("anomaly:") else "malicious-activity"
        ],
        pattern=pattern,
        pattern_type="stix",
        valid_from=alert.first_seen,
        labels=[alert.severity],
        **common,
    )
    sighting = stix2.Sighting(
        id=_id("sighting", alert.id),
        sighting_of_ref=indicator.id,
        observed_data_refs=[observed.id],
        first_seen=alert.first_seen,
        last_seen=max(alert.last_seen, alert.first_seen),
        count=max(alert.count, 1),
        **common,
    )
    patterns = [
        stix2.AttackPattern(
            id=_id("attack-pattern", technique),
            name=technique,
            external_references=[{"source_name": "mitre-attack", "external_id": technique}],
            # Shared by every alert with the technique: one version, whatever alert sends it.
            **{**common, "created": producer.created, "modified": producer.modified},
        )
        for technique in techniques(alert.tags)
    ]
    indicates = [
        stix2.Relationship(
            id=_id("relationship", alert.id, p.name),
            relationship_type="indicates",
            source_ref=indicator.id,
            target_ref=p.id,
            **common,
        )
        for p in patterns
    ]
    incident = stix2.Incident(
        id=_id("incident", alert.id),
        name=f"{alert.title}: {alert.entity}",
        description=f"TrustWatch alert {alert.id}, status {alert.status}",
        external_references=[{"source_name": "trustwatch", "external_id": alert.id}],
        extensions={
            INCIDENT_CORE_EXTENSION: {
                "extension_type": "property-extension",
                "investigation_status": _INVESTIGATION.get(alert.status, "open"),
                "determination": "false-positive" if alert.status == "false_positive" else "tbd",
                "criticality": _CRITICALITY.get(alert.severity, 50),
            }
        },
        **common,
    )
    related = stix2.Relationship(
        id=_id("relationship", alert.id, "incident"),
        relationship_type="related-to",
        source_ref=incident.id,
        target_ref=indicator.id,
        **common,
    )
    return stix2.Bundle(
        objects=[
            producer,
            marking,
            *observables,
            observed,
            indicator,
            sighting,
            *patterns,
            *indicates,
            incident,
            related,
        ],
        allow_custom=False,
    )


def alerts_bundle(alerts: Sequence[Alert], tlp: str, key: str) -> dict[str, Any]:
    """One bundle (as JSON) of several alerts' objects, each object once; ``key`` (a
    notification's id) names the bundle, so the same notification gives the same bundle."""
    objects: dict[str, Any] = {}
    for alert in alerts:
        for obj in json.loads(alert_bundle(alert, tlp).serialize())["objects"]:
            objects.setdefault(obj["id"], obj)
    return {"type": "bundle", "id": _id("bundle", key), "objects": list(objects.values())}
