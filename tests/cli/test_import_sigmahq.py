"""``trustwatch rules import-sigmahq`` as an operator runs it: a real process, a git checkout
laid out like SigmaHQ's, a summary on stdout and a clear error for what is not a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rules.sigmahq import LICENCE_FILE, SOURCE_FILE
from tests.rules.test_sigmahq import KEPT, make_checkout


def run(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "rules", "import-sigmahq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
        check=False,
    )


SUMMARY = [
    "kept 7 of 14 rule files, rejected 7",
    "     1 deprecated or unsupported",
    "     1 a correlation rule",
    "     2 a log source TrustWatch flows do not answer",
    "     1 a field TrustWatch flows do not carry",
    "     1 does not load",
    "     1 a rule id already imported",
]


def test_import_then_check(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    commit = make_checkout(checkout)
    imported = run(str(checkout), "--out", str(out))
    lines = imported.stdout.splitlines()
    checked = subprocess.run(
        [sys.executable, "-m", "api.cli", "rules", "check", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert (
        0,
        "",
        [f"SigmaHQ/sigma {commit[:12]}: {SUMMARY[0]}", *SUMMARY[1:], f"written to {out}"],
        sorted([LICENCE_FILE, SOURCE_FILE, *(k.removeprefix("rules/") for k in KEPT)]),
        (0, "7 rules and 0 correlation rules load; 0 problems\n"),
    ) == (
        imported.returncode,
        imported.stderr,
        lines,
        written,
        (checked.returncode, checked.stderr),
    )


def test_a_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    make_checkout(checkout)
    result = run(str(checkout), "--out", str(out), "--dry-run")
    assert (0, "dry run: nothing written", False) == (
        result.returncode,
        result.stdout.splitlines()[-1],
        out.exists(),
    )


def test_what_is_not_a_checkout_is_a_clear_error(tmp_path: Path) -> None:
    result = run(str(tmp_path), "--out", str(tmp_path / "out"))
    assert (
        2,
        "",
        f"trustwatch: error: {tmp_path} is not a SigmaHQ/sigma checkout: it has no "
        f"{LICENCE_FILE}, rules/web, rules/network (clone https://github.com/SigmaHQ/sigma)\n",
        False,
    ) == (result.returncode, result.stdout, result.stderr, (tmp_path / "out").exists())
