"""Rule reload without restart: a changed file is picked up; unchanged correlations keep state."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.pipeline import RELOAD_CHECK, Pipeline
from rules.loader import load_rules

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
    expected = {"rules": 1, "correlations": 0, "rule_problems": 1, "anomaly": {"state": "off"}}
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
