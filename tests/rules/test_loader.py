"""Loading rule files: problems are collected with file and line; a bad rule costs only itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rules.loader import KNOWN_FIELDS, load_rules

GOOD = """\
title: Telnet out
id: 0a0a0a0a-0000-4000-8000-000000000001
logsource: {category: network}
detection:
  sel: {destination.port: 23, network.transport: tcp}
  condition: sel
level: high
tags: [attack.t1021, attack.lateral-movement]
"""
CORRELATION = """\
title: Many refused connections
id: 0a0a0a0a-0000-4000-8000-000000000003
correlation:
  type: event_count
  rules: [0a0a0a0a-0000-4000-8000-000000000001]
  group-by: [source.ip]
  timespan: 1m
  condition: {gte: 10}
level: medium
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_rules_load_and_bad_ones_are_listed_with_file_and_line(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yml", GOOD + "---\n" + CORRELATION)
    bad = write(
        tmp_path,
        "bad.yaml",
        "title: a\nlogsource: {category: network}\ndetection:\n  s:\n    destination.port|nope: 1\n"
        "  condition: s\n---\n"
        "title: b\nlogsource: {category: network}\ndetection:\n  s:\n    destination.port: 1\n"
        "    process.name: sshd\n  condition: s\n",
    )
    broken = write(tmp_path, "broken.yml", "title: [\n")
    write(tmp_path, "notes.txt", "not a rule file")
    pack = load_rules([tmp_path])
    assert [("Telnet out", "high", ("attack.t1021", "attack.lateral-movement"), good, 1)] == [
        (r.title, r.level, r.tags, r.path, r.line) for r in pack.rules
    ]
    assert ["Many refused connections"] == [c.title for c in pack.correlations]
    assert sorted(
        [
            f"{bad}:5: Unknown modifier 'nope'",
            f"{bad}:13: field 'process.name' is not one our events carry",
            f"{broken}:2: not valid YAML: expected the node content, but found '<stream end>'",
        ]
    ) == sorted(str(p) for p in pack.problems)
    assert pack.rules[0].matches({"destination.port": 23, "network.transport": "tcp"})


def test_a_rule_id_used_twice_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    second = write(tmp_path, "b.yml", GOOD.replace("Telnet out", "Telnet again"))
    pack = load_rules([tmp_path])
    assert ["Telnet out"] == [r.title for r in pack.rules]
    assert [
        f"{second}:1: rule id 0a0a0a0a-0000-4000-8000-000000000001 is also used in "
        f"{tmp_path / 'a.yml'}"
    ] == [str(p) for p in pack.problems]


def test_unreadable_or_odd_files_are_problems_not_crashes(tmp_path: Path) -> None:
    write(tmp_path, "list.yml", "- just\n- a list\n")
    (tmp_path / "big.yml").write_bytes(b"#" * (1 << 20) + b"\n")
    (tmp_path / "latin1.yml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    pack = load_rules([tmp_path, tmp_path / "missing"])
    assert [
        f"{tmp_path / 'big.yml'}: larger than 1048576 bytes",
        f"{tmp_path / 'latin1.yml'}: cannot read: 'utf-8' codec can't decode byte 0xe9 in "
        "position 10: invalid continuation byte",
        f"{tmp_path / 'list.yml'}:1: a rule is a YAML mapping",
        f"{tmp_path / 'missing'}: no such file or directory",
    ] == sorted(str(p) for p in pack.problems)


def test_the_known_fields_are_the_wire_records() -> None:
    assert {
        "source.ip",
        "destination.port",
        "dns.question.name",
        "tls.client.server_name",
        "flow.state",
        "url.domain",
        "observer.name",
    } <= KNOWN_FIELDS


def test_rules_check_command(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", GOOD)
    clean = subprocess.run(
        [sys.executable, "-m", "api.cli", "rules", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    write(tmp_path, "broken.yml", "title: [\n")
    dirty = subprocess.run(
        [sys.executable, "-m", "api.cli", "rules", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (0, "", "1 rules and 0 correlation rules load; 0 problems\n") == (
        clean.returncode,
        clean.stdout,
        clean.stderr,
    )
    assert (1, f"{tmp_path / 'broken.yml'}:2: not valid YAML") == (
        dirty.returncode,
        dirty.stdout.split(":", 3)[0]
        + ":"
        + dirty.stdout.split(":")[1]
        + ":"
        + dirty.stdout.split(":")[2],
    )
