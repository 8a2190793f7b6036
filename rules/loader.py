"""Loading rule files: every problem is collected with its file and line, and a bad rule costs
only itself.

A file may hold several YAML documents (rules). Each is parsed and validated by pySigma, its
condition compiled (:mod:`rules.matcher`), and its fields checked against what our events
carry: a rule on a field no event has would never fire, which is a mistake worth saying.
A rule written for one of SigmaHQ's log sources (proxy, webserver, dns, firewall, Zeek) is first
translated to our field names (:mod:`rules.community`), unmodified on disk.
Correlation rules are parsed and kept for the in-stream engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from rules.community import translate
from rules.correlation import Correlation, compile_correlation
from rules.errors import RuleProblem, RulesError
from rules.matcher import Predicate, compile_rule, fields_of
from sensors.wire import FlowRecord, ScanRecord

MAX_RULE_FILE: Final = 1 << 20  # a rule file is text a person wrote; a megabyte is plenty
RULE_SUFFIXES: Final = (".yml", ".yaml")
LEVELS: Final = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}

KNOWN_FIELDS: Final = frozenset(
    info.alias
    for model in (FlowRecord, ScanRecord)
    for info in model.model_fields.values()
    if info.alias
) | {"observer.name", "event.ingested"}
"""The ECS fields our events carry: the wire records' fields and what the service adds."""


@dataclass(frozen=True)
class Rule:
    """A single-event rule, ready to match."""

    id: str
    name: str | None
    title: str
    level: str
    tags: tuple[str, ...]
    description: str
    path: Path
    line: int
    fields: frozenset[str]
    matches: Predicate = field(compare=False, repr=False)
    sigma: SigmaRule = field(compare=False, repr=False)  # as parsed (and mapped): for export


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    correlations: tuple[Correlation, ...]
    problems: tuple[RuleProblem, ...]


def load_rules(paths: Iterable[Path], known_fields: frozenset[str] = KNOWN_FIELDS) -> RulePack:
    """Load every rule file under ``paths`` (files or directories, searched recursively)."""
    rules: list[Rule] = []
    pending: list[tuple[SigmaCorrelationRule, Path, int]] = []
    problems: list[RuleProblem] = []
    seen: dict[str, Path] = {}
    for path in sorted(_rule_files(paths, problems)):
        for line, document, node in _documents(path, problems):
            rule = _one(path, line, document, node, known_fields, problems)
            if rule is None:
                continue
            rule_id = str(rule.id) if rule.id else None
            if rule_id is not None:
                if rule_id in seen:
                    problems.append(
                        RuleProblem(
                            path, line, f"rule id {rule_id} is also used in {seen[rule_id]}"
                        )
                    )
                    continue
                seen[rule_id] = path
            if isinstance(rule, SigmaCorrelationRule):
                pending.append((rule, path, line))
            else:
                compiled = _compiled(rule, path, line, node, known_fields, problems)
                if compiled is not None:
                    rules.append(compiled)
    # Correlations last: the rules they refer to may be in any file.
    by_reference = {rule.id: rule.id for rule in rules}
    by_reference.update({rule.name: rule.id for rule in rules if rule.name})
    correlations: list[Correlation] = []
    for sigma, path, line in pending:
        correlation = compile_correlation(sigma, path, line, by_reference, known_fields, LEVELS)
        if isinstance(correlation, RuleProblem):
            problems.append(correlation)
        else:
            correlations.append(correlation)
    return RulePack(tuple(rules), tuple(correlations), tuple(problems))


def _rule_files(paths: Iterable[Path], problems: list[RuleProblem]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from (p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            problems.append(RuleProblem(path, None, "no such file or directory"))


def _documents(path: Path, problems: list[RuleProblem]) -> Iterator[tuple[int, Any, Any]]:
    try:
        if path.stat().st_size > MAX_RULE_FILE:
            problems.append(RuleProblem(path, None, f"larger than {MAX_RULE_FILE} bytes"))
            return
        text = path.read_text(encoding="utf-8")
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(RuleProblem(path, None, f"cannot read: {exc}"))
        return
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problems.append(RuleProblem(path, line, f"not valid YAML: {exc.problem}"))
        return
    except yaml.YAMLError as exc:
        problems.append(RuleProblem(path, None, f"not valid YAML: {exc}"))
        return
    for node, document in zip(nodes, documents, strict=True):
        if node is None:
            continue
        line = node.start_mark.line + 1
        if not isinstance(document, dict):
            problems.append(RuleProblem(path, line, "a rule is a YAML mapping"))
            continue
        yield line, document, node


def _one(
    path: Path,
    line: int,
    document: dict[str, Any],
    node: Any,
    known_fields: frozenset[str],
    problems: list[RuleProblem],
) -> SigmaRule | SigmaCorrelationRule | None:
    kind = SigmaCorrelationRule if "correlation" in document else SigmaRule
    try:
        rule = kind.from_dict(document, collect_errors=True)
    except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:
        problems.append(RuleProblem(path, line, f"not a valid Sigma rule: {exc}"))
        return None
    if rule.errors:
        for error in rule.errors:
            problems.append(RuleProblem(path, _error_line(error, node, line), str(error)))
        return None
    return rule


def _compiled(
    rule: SigmaRule,
    path: Path,
    line: int,
    node: Any,
    known_fields: frozenset[str],
    problems: list[RuleProblem],
) -> Rule | None:
    misses = translate(rule)  # a rule in SigmaHQ's field names gets ours, whole or not at all
    for miss in misses:
        where = _key_line(node, miss.field or "logsource") or line
        problems.append(RuleProblem(path, where, miss.reason))
    if misses:
        return None
    fields = fields_of(rule)
    unknown = sorted(fields - known_fields)
    if unknown:
        for name in unknown:
            problems.append(
                RuleProblem(
                    path,
                    _key_line(node, name) or line,
                    f"field {name!r} is not one our events carry",
                )
            )
        return None
    try:
        matches = compile_rule(rule)
    except (RulesError, SigmaError) as exc:
        problems.append(RuleProblem(path, line, str(exc)))
        return None
    level = LEVELS.get(rule.level.name.lower() if rule.level else "medium", "medium")
    return Rule(
        id=str(rule.id) if rule.id else f"{path.stem}:{line}",
        name=rule.name,
        title=rule.title,
        level=level,
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags),
        description=rule.description or "",
        path=path,
        line=line,
        fields=frozenset(fields),
        matches=matches,
        sigma=rule,
    )


def _error_line(error: SigmaError, node: Any, default: int) -> int:
    source = getattr(error, "source", None)
    line = getattr(source, "line", None)
    if line:
        return int(line)
    # pySigma names the culprit in quotes (a modifier, a field, an identifier): find its key.
    match = re.search(r"'([^']+)'", str(error))
    if match is not None:
        found = _key_line(node, match.group(1), modifier=True)
        if found is not None:
            return found
    return default


def _key_line(node: Any, field_name: str, *, modifier: bool = False) -> int | None:
    """The line of the mapping key that names ``field_name`` (with or without modifiers), or
    with ``modifier``, the key that applies that modifier."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    name, *modifiers = str(key.value).split("|")
                    if field_name in (modifiers if modifier else [name]):
                        return int(key.start_mark.line) + 1
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None
