"""``trustwatch rules export`` as an operator runs it: a real process, queries on stdout, what
could not be exported on stderr with file and line, and an exit status that says which."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from api.pipeline import BUILTIN_RULES
from rules.elastic import Language, as_text, export_rules, sigma_rules
from rules.kibana import kibana_rule
from rules.loader import load_rules

PACK = load_rules([BUILTIN_RULES])


def run(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "rules", "export", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
        check=False,
    )


def test_esql_exports_every_rule_of_the_pack() -> None:
    sigma = sigma_rules(PACK.rules)
    result = run("--backend", "elasticsearch", str(BUILTIN_RULES))
    assert (
        0,
        as_text(export_rules(PACK, sigma, [Language.ESQL])),
        "10 of 10 rules exported as esql; 0 could not be\n",
    ) == (result.returncode, result.stdout, result.stderr)


def test_lucene_cannot_say_correlations_and_says_where_they_are() -> None:
    sigma = sigma_rules(PACK.rules)
    result = run("--backend", "elasticsearch", "--format", "lucene", str(BUILTIN_RULES))
    reason = "not exported (lucene: a correlation aggregates events, which Lucene cannot)"
    assert (
        1,
        as_text(export_rules(PACK, sigma, [Language.LUCENE])),
        [
            f"{BUILTIN_RULES / 'bruteforce.yml'}:14: {reason}",
            f"{BUILTIN_RULES / 'bruteforce.yml'}:40: {reason}",
            f"{BUILTIN_RULES / 'scans.yml'}:17: {reason}",
            f"{BUILTIN_RULES / 'scans.yml'}:30: {reason}",
            "6 of 10 rules exported as lucene; 4 could not be",
        ],
    ) == (result.returncode, result.stdout, result.stderr.splitlines())


def test_ndjson_is_kibana_rules_over_the_index_given() -> None:
    sigma = sigma_rules(PACK.rules)
    index = ("logs-trustwatch.flow-*", "remote:logs-*")
    result = run(
        "--backend",
        "elasticsearch",
        "--format",
        "ndjson",
        "--index",
        ",".join(index),
        str(BUILTIN_RULES),
    )
    rules = export_rules(PACK, sigma, [Language.LUCENE, Language.ESQL], index, metadata=True)
    assert (
        0,
        [kibana_rule(rule, index) for rule in rules.rules],
        "10 of 10 rules exported as ndjson; 0 could not be\n",
    ) == (
        result.returncode,
        [orjson.loads(line) for line in result.stdout.splitlines()],
        result.stderr,
    )


def test_mistakes_are_usage_errors_and_export_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("title: [\n", encoding="utf-8")
    outcomes = [
        run("--backend", "elasticsearch", "--index", "Logs", str(BUILTIN_RULES)),
        run("--backend", "elasticsearch", str(broken)),
        run("--backend", "elasticsearch", str(tmp_path / "missing.yml")),
        run("--backend", "splunk", str(BUILTIN_RULES)),
        run(str(BUILTIN_RULES)),
    ]
    assert [
        (
            2,
            "",
            "trustwatch: error: 'Logs' is not an index pattern: lower-case letters, digits, "
            ". _ - + *, and an optional cluster: prefix\n",
        ),
        (
            2,
            "",
            f"{broken}:2: not valid YAML: expected the node content, but found '<stream end>'\n"
            "trustwatch: error: the rules do not load (see above); nothing exported\n",
        ),
        (
            2,
            "",
            f"{tmp_path / 'missing.yml'}: no such file or directory\n"
            "trustwatch: error: the rules do not load (see above); nothing exported\n",
        ),
        (2, "", "argument --backend: invalid choice: 'splunk'"),
        (2, "", "the following arguments are required: --backend"),
    ] == [
        (
            o.returncode,
            o.stdout,
            o.stderr if o.returncode != 2 or "usage:" not in o.stderr else _last(o.stderr),
        )
        for o in outcomes
    ]


def _last(stderr: str) -> str:
    """What argparse says after its usage line, without the choices it lists."""
    return stderr.splitlines()[-1].split(": error: ")[1].split(" (choose")[0]
