"""The in-stream engine: single rules, the four correlation types, event time, bounds, and
real attacks from the traffic lab."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import rules.engine
from rules.engine import RuleEngine
from rules.loader import load_rules
from tests.conftest import LAB
from tests.sensors.test_flows import meter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFUSED = """\
title: Refused connection
id: 00000000-0000-4000-8000-0000000000a1
name: refused
logsource: {category: network}
detection:
  sel: {flow.state: REJ}
  condition: sel
level: low
"""
UNAUTHORIZED = """\
title: HTTP login refused
id: 00000000-0000-4000-8000-0000000000a2
name: http_401
logsource: {category: network}
detection:
  sel: {http.response.status_code: 401}
  condition: sel
level: low
"""


def engine_for(tmp_path: Path, *documents: str) -> RuleEngine:
    (tmp_path / "rules.yml").write_text("---\n".join(documents), encoding="utf-8")
    pack = load_rules([tmp_path])
    assert () == pack.problems
    return RuleEngine(pack)


def correlation(kind: str, body: str, *, generate: bool = False, rule: str = "refused") -> str:
    return (
        f"title: {kind}\nid: {uuid.uuid5(uuid.NAMESPACE_URL, kind + body + rule)}\n"
        f"correlation:\n  type: {kind}\n  rules: [{rule}]\n  group-by: [source.ip]\n"
        f"{body}  generate: {str(generate).lower()}\nlevel: high\n"
    )


def refused(
    i: int, seconds: float, source: str = "10.0.0.9", port: int | None = None
) -> dict[str, Any]:
    return {
        "event.id": f"e{i}",
        "event.start": (T0 + timedelta(seconds=seconds)).isoformat(),
        "flow.state": "REJ",
        "source.ip": source,
        "destination.port": port if port is not None else 1000 + i,
    }


def test_a_single_rule_detection_carries_its_evidence(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, REFUSED)
    (found,) = engine.evaluate(refused(1, 5))
    assert (
        "rule:00000000-0000-4000-8000-0000000000a1",
        "Refused connection",
        "low",
        "10.0.0.9",
        T0 + timedelta(seconds=5),
        1,
        ("e1",),
        {"flow.state": "REJ"},
    ) == (
        found.source,
        found.title,
        found.level,
        found.entity,
        found.first_seen,
        found.count,
        found.event_ids,
        found.values,
    )
    assert [] == engine.evaluate({"flow.state": "SF", "event.start": T0.isoformat()})


def test_event_count_fires_per_full_window_and_starts_over(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path, REFUSED, correlation("event_count", "  timespan: 1m\n  condition: {gte: 5}\n")
    )
    fired = [len(engine.evaluate(refused(i, i))) for i in range(12)]
    # generate: false keeps the base rule quiet; the correlation fires at the 5th and 10th.
    assert [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0] == fired


def test_event_count_needs_the_events_within_the_timespan(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path, REFUSED, correlation("event_count", "  timespan: 10s\n  condition: {gte: 3}\n")
    )
    assert [] == engine.evaluate_all(
        refused(i, i * 6) for i in range(10)
    )  # 6 s apart: ≤ 2 per 10 s
    assert 1 == len(engine.evaluate_all(refused(100 + i, 1000 + i) for i in range(3)))


def test_groups_are_separate(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path, REFUSED, correlation("event_count", "  timespan: 1m\n  condition: {gte: 3}\n")
    )
    events = [refused(i, i, source=f"10.0.0.{i % 2}") for i in range(6)]
    found = engine.evaluate_all(events)
    assert [("10.0.0.0", 3, ("e0", "e2", "e4")), ("10.0.0.1", 3, ("e1", "e3", "e5"))] == [
        (d.entity, d.count, d.event_ids) for d in found
    ]


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        REFUSED,
        correlation(
            "value_count", "  timespan: 1m\n  condition: {gte: 3, field: destination.port}\n"
        ),
    )
    same_port = [refused(i, i, port=22) for i in range(5)]
    assert [] == engine.evaluate_all(same_port)
    (found,) = engine.evaluate_all(refused(10 + i, 10 + i, port=p) for i, p in enumerate((80, 443)))
    assert {
        "source.ip": "10.0.0.9",
        "distinct destination.port": 3,
        "destination.port (first 20)": ["22", "443", "80"],
    } == dict(found.values)


def test_generate_true_keeps_the_base_rule_alerting(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        REFUSED,
        correlation("event_count", "  timespan: 1m\n  condition: {gte: 2}\n", generate=True),
    )
    found = engine.evaluate_all(refused(i, i) for i in range(2))
    assert ["Refused connection", "Refused connection", "event_count"] == [d.title for d in found]


@pytest.mark.parametrize(
    ("kind", "order", "fires"),
    [
        ("temporal", ("http_401", "refused"), True),
        ("temporal_ordered", ("refused", "http_401"), True),
        ("temporal_ordered", ("http_401", "refused"), False),
    ],
)
def test_temporal_correlations(
    tmp_path: Path, kind: str, order: tuple[str, str], fires: bool
) -> None:
    doc = correlation(kind, "  timespan: 1m\n", rule="refused, http_401")
    engine = engine_for(tmp_path, REFUSED, UNAUTHORIZED, doc)
    first = {**refused(1, 1), "flow.state": "REJ"}
    second = {
        "event.id": "e2",
        "event.start": (T0 + timedelta(seconds=2)).isoformat(),
        "source.ip": "10.0.0.9",
        "http.response.status_code": 401,
    }
    events = [first, second] if order[0] == "refused" else [second, first]
    found = engine.evaluate_all(events)
    assert fires == any(d.title == kind for d in found)


def test_state_is_bounded_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules.engine, "MAX_GROUPS", 3)
    monkeypatch.setattr(rules.engine, "MAX_WINDOW", 4)
    engine = engine_for(
        tmp_path, REFUSED, correlation("event_count", "  timespan: 1h\n  condition: {gte: 1000}\n")
    )
    engine.evaluate_all(refused(i, i, source=f"10.0.1.{i}") for i in range(5))
    engine.evaluate_all(refused(100 + i, 100 + i, source="10.0.2.1") for i in range(6))
    assert (3, 2) == (engine.counters.groups_evicted, engine.counters.window_events_dropped)


def test_an_event_without_a_time_is_counted_not_matched(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, REFUSED)
    assert [] == engine.evaluate({"flow.state": "REJ", "event.start": "yesterday"})
    assert 1 == engine.counters.events_without_time


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  timespan: 1m\n  condition: {lt: 5}\n", "condition lt is decided when a window closes"),
        (
            "  timespan: 1m\n  condition: {gte: 5, field: process.name}\n",
            "field 'process.name' is not one",
        ),
    ],
)
def test_correlations_the_engine_cannot_evaluate_are_refused(
    tmp_path: Path, body: str, message: str
) -> None:
    (tmp_path / "rules.yml").write_text(
        REFUSED + "---\n" + correlation("event_count", body), encoding="utf-8"
    )
    pack = load_rules([tmp_path])
    (problem,) = pack.problems
    # REFUSED is 8 lines, then "---": the correlation starts on line 10.
    assert (tmp_path / "rules.yml", 10) == (problem.path, problem.line)
    assert message in problem.message


def test_a_real_port_scan_and_a_real_brute_force(tmp_path: Path) -> None:
    scan = correlation(
        "value_count", "  timespan: 1m\n  condition: {gte: 15, field: destination.port}\n"
    )
    brute = correlation("event_count", "  timespan: 1m\n  condition: {gte: 5}\n", rule="http_401")
    engine = engine_for(tmp_path, REFUSED, UNAUTHORIZED, scan, brute)
    scanned = engine.evaluate_all(meter(LAB / "nmap_syn.pcap")[0])
    forced = engine.evaluate_all(meter(LAB / "bruteforce.pcap")[0])
    # nmap probed 20 ports, 19 closed (refused): one detection at the 15th distinct port.
    assert [("value_count", "10.203.0.66", 15)] == [(d.title, d.entity, d.count) for d in scanned]
    # hydra tried 8 passwords, 7 refused with 401: one detection at the 5th.
    assert [("event_count", "10.203.0.66", 5)] == [(d.title, d.entity, d.count) for d in forced]
