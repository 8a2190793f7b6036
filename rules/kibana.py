"""Exported rules as Kibana detection rules: the ndjson that *Security → Rules → Import* (or
``POST /api/detection_engine/rules/_import``) reads.

Severity is the rule's level, with the risk score Elastic's prebuilt rules give it; ATT&CK
tactic tags become the rule's ``threat``; the notes of an approximated query become its
investigation guide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rules.elastic import DEFAULT_INDEX, ExportedRule, Language

RISK_SCORES: Final = {"low": 21, "medium": 47, "high": 73, "critical": 99}
"""Kibana's risk score per severity: the values Elastic's own prebuilt rules use."""

TACTICS: Final = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource-development": ("TA0042", "Resource Development"),
    "initial-access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege-escalation": ("TA0004", "Privilege Escalation"),
    "defense-evasion": ("TA0005", "Defense Evasion"),
    "credential-access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral-movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command-and-control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
"""MITRE ATT&CK's enterprise tactics by their Sigma tag. Techniques stay tags only: Kibana wants
each technique's name, which would take the whole ATT&CK catalogue to know."""

SCHEDULE: Final = 300  # seconds between two runs of a rule: Kibana's default, 5 minutes
OVERLAP: Final = 60  # each run looks this much further back, so that late events are not lost


def kibana_rule(rule: ExportedRule, index: Sequence[str] = DEFAULT_INDEX) -> dict[str, Any]:
    """The rule as Kibana's detection engine imports it (one line of an ndjson file for
    *Security → Rules → Import*, or ``POST /api/detection_engine/rules/_import``).

    Lucene rules are ``query`` rules over ``index``; ES|QL rules name their index in the query.
    A correlation looks back a further timespan, so that every bucket that closed since the
    last run is seen whole. A rule that in-stream only feeds a correlation
    (``generate: false``) is a building block: its alerts are kept but hidden by default.
    """
    lookback = SCHEDULE + OVERLAP + (rule.timespan_seconds or 0)
    document: dict[str, Any] = {
        "rule_id": rule.id,
        "name": rule.title,
        "description": rule.description,
        "type": "esql" if rule.language is Language.ESQL else "query",
        "language": str(rule.language),
        "query": rule.query,
        "severity": rule.level,
        "risk_score": RISK_SCORES[rule.level],
        "tags": list(rule.tags),
        "threat": [
            {
                "framework": "MITRE ATT&CK",
                "tactic": {
                    "id": TACTICS[tag][0],
                    "name": TACTICS[tag][1],
                    "reference": f"https://attack.mitre.org/tactics/{TACTICS[tag][0]}/",
                },
            }
            for tag in (t.removeprefix("attack.") for t in rule.tags if t.startswith("attack."))
            if tag in TACTICS
        ],
        "enabled": True,
        "interval": f"{SCHEDULE}s",
        "from": f"now-{lookback}s",
        "version": 1,
    }
    if rule.language is Language.LUCENE:
        document["index"] = list(index)
    if rule.notes:
        document["note"] = "\n".join(f"- {note}" for note in rule.notes)
    if rule.building_block:
        document["building_block_type"] = "default"
    return document
