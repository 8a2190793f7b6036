"""The pipeline: rule reload without restart (unchanged correlations keep state), the
threat-intel list and its reload, beaconing, and start-up refusals."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.app import create_app
from api.errors import ConfigError
from api.pipeline import RELOAD_CHECK, Pipeline
from api.settings import load_settings
from rules.intel import load_intel
from rules.loader import load_rules
from scoring.anomaly import AnomalyDetectors

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = """\
title: Port {port}
id: 00000000-0000-4000-8000-00000000{port:04d}
logsource: {{category: network}}
detection:
  sel: {{destination.port: {port}}}
  condition: sel
level: high
"""


def event(port: int, i: int = 0) -> dict[str, object]:
    return {
        "event.id": f"e{i}",
        "event.start": (T0 + timedelta(seconds=i)).isoformat(),
        "destination.port": port,
        "source.ip": "10.0.0.9",
        "flow.state": "REJ",
        "network.transport": "tcp",
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_changed_rule_file_is_reloaded_after_the_check_interval(tmp_path: Path) -> None:
    rule_file = tmp_path / "mine.yml"
    rule_file.write_text(RULE.format(port=8443), encoding="utf-8")
    clock = Clock()
    pipeline = Pipeline(load_rules([tmp_path]), (tmp_path,), monotonic=clock)
    assert ["Port 8443"] == [d.title for d in pipeline.detect([event(8443)])]

    rule_file.write_text(RULE.format(port=9443), encoding="utf-8")
    os.utime(rule_file, ns=(1, 10**18))  # a clearly different modification time
    assert ["Port 8443"] == [d.title for d in pipeline.detect([event(8443, 1)])]  # not yet due
    clock.now += RELOAD_CHECK
    assert [] == pipeline.detect([event(8443, 2)])
    assert ["Port 9443"] == [d.title for d in pipeline.detect([event(9443, 3)])]
    assert 1 == pipeline.reloads


def test_a_broken_edit_keeps_the_other_rules_running(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(RULE.format(port=8443), encoding="utf-8")
    clock = Clock()
    pipeline = Pipeline(load_rules([tmp_path]), (tmp_path,), monotonic=clock)
    (tmp_path / "bad.yml").write_text("title: [\n", encoding="utf-8")
    clock.now += RELOAD_CHECK
    assert ["Port 8443"] == [d.title for d in pipeline.detect([event(8443)])]
    expected = {
        "rules": 1,
        "correlations": 0,
        "rule_problems": 1,
        "anomaly": {"state": "off"},
        "sites": {
            "state": "fresh",
            "tracked": 0,
            "evicted": 0,
            "scans": 0,
            "probes": 0,
            "late_scans": 0,
            "unreadable": 0,
            "events": {},
        },
    }
    assert expected == pipeline.health()


def test_an_unchanged_correlation_keeps_its_window_across_a_reload(tmp_path: Path) -> None:
    base = RULE.format(port=22).replace("title: Port 22", "title: SSH\nname: ssh")
    correlation = (
        "title: SSH burst\nid: 00000000-0000-4000-8000-00000000beef\ncorrelation:\n"
        "  type: event_count\n  rules: [ssh]\n  group-by: [source.ip]\n  timespan: 1m\n"
        "  condition: {gte: 4}\nlevel: high\n"
    )
    (tmp_path / "ssh.yml").write_text(base + "---\n" + correlation, encoding="utf-8")
    clock = Clock()
    pipeline = Pipeline(load_rules([tmp_path]), (tmp_path,), monotonic=clock)
    assert [] == pipeline.detect([event(22, i) for i in range(3)])
    (tmp_path / "other.yml").write_text(RULE.format(port=8443), encoding="utf-8")
    clock.now += RELOAD_CHECK
    assert ["SSH burst"] == [d.title for d in pipeline.detect([event(22, 3)])]
    assert 1 == pipeline.reloads


def to(address: str, i: int = 0, **extra: object) -> dict[str, object]:
    return {**event(443, i), "destination.ip": address, **extra}


def test_the_threat_intel_list_raises_alerts_and_reloads_when_it_changes(tmp_path: Path) -> None:
    feed = tmp_path / "feed.txt"
    feed.write_text("# exported feed\n203.0.113.7\nbad.example\n", encoding="utf-8")
    clock = Clock()
    pipeline = Pipeline(load_rules([]), monotonic=clock, intel=load_intel(feed))
    found = pipeline.detect([to("203.0.113.7"), to("198.51.100.1", 1)])
    assert [("rule:threat-intel", "10.0.0.9", "203.0.113.7")] == [
        (d.source, d.entity, d.values["indicator"]) for d in found
    ]
    assert [] == pipeline.detect([to("198.51.100.9", 2)])

    feed.write_text("198.51.100.0/24\n", encoding="utf-8")
    os.utime(feed, ns=(1, 10**18))
    clock.now += RELOAD_CHECK
    assert ["198.51.100.0/24"] == [
        d.values["indicator"] for d in pipeline.detect([to("198.51.100.9", 3)])
    ]
    assert {"indicators": 1, "problems": 0} == pipeline.health()["threat_intel"]

    feed.write_bytes(b"\x00\x01binary")  # a half-written or wrong file: keep the last good list
    os.utime(feed, ns=(1, 2 * 10**18))
    clock.now += RELOAD_CHECK
    assert 1 == len(pipeline.detect([to("198.51.100.9", 4)]))


def test_a_regular_check_in_is_reported_as_beaconing() -> None:
    pipeline = Pipeline(load_rules([]), anomaly=AnomalyDetectors())
    found = []
    for i in range(14):
        start = T0 + timedelta(seconds=60 * i + (i % 3))
        found += pipeline.detect(
            [
                {
                    **to("192.0.2.80", i, **{"observer.name": "s1", "flow.state": "SF"}),
                    "event.start": start.isoformat(),
                    "event.end": (start + timedelta(seconds=1)).isoformat(),
                }
            ]
        )
    beacons = [d for d in found if d.source == "anomaly:beacon"]
    assert 1 == len(beacons), found
    assert ("10.0.0.9", "192.0.2.80", 12) == (
        beacons[0].entity,
        beacons[0].values["destination"],
        beacons[0].values["check-ins"],
    )


def test_an_unreadable_threat_intel_file_stops_start_up_with_a_clear_error(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.gz"
    feed.write_bytes(b"\x1f\x8b\x00\x00compressed")
    with pytest.raises(ConfigError, match=r"threat_intel_file: .*binary"):
        create_app(load_settings(data_dir=tmp_path / "data", threat_intel_file=feed))
    with pytest.raises(ConfigError, match=r"threat_intel_file .*missing\.txt is not a file"):
        load_settings(data_dir=tmp_path / "data", threat_intel_file=tmp_path / "missing.txt")
