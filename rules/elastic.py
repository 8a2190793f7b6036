"""A rule pack as Elasticsearch queries: ES|QL for every rule, Lucene query strings for
single-event rules, and Kibana detection rules (ndjson) made of them.

Single-event rules translate through :mod:`rules.esql` and :mod:`rules.lucene`. A
correlation is one ES|QL query: its rules' conditions, ``STATS`` per group-by values and per
``BUCKET`` of the timespan on :data:`TIME_FIELD`, then its condition on the aggregate. ES|QL
buckets are aligned to the clock where the in-stream engine slides its window with each event,
so a burst that straddles a bucket boundary can be missed: every correlation query says so in
its notes.
``temporal_ordered`` needs the order of events inside a group, which ``STATS`` loses, and
Lucene cannot aggregate at all: neither is exported.

A rule a target cannot express is a :class:`~rules.errors.RuleProblem` with its file, line and
reason, never a query that matches something else.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sigma.rule import SigmaRule

from rules.correlation import EVENT_COUNT, TEMPORAL, VALUE_COUNT, Correlation
from rules.elastic_query import Translation
from rules.errors import RuleProblem, UnsupportedRuleError
from rules.esql import esql_condition, esql_name
from rules.loader import Rule, RulePack
from rules.lucene import lucene_query

DEFAULT_INDEX: Final = ("logs-trustwatch.flow-*",)
"""The data stream our Elasticsearch store writes flow records to (type ``logs``, dataset
``trustwatch.flow``, any namespace)."""

TIME_FIELD: Final = "event.start"
"""What correlations bucket by: when a flow started, the time the in-stream engine windows by."""

BUCKET_NOTE: Final = (
    "ES|QL buckets the timespan by the clock: a burst that straddles a bucket boundary can be "
    "missed, where the in-stream engine's window slides with each event"
)
DISTINCT_NOTE: Final = "COUNT_DISTINCT is near-exact below 3000 distinct values, approximate above"
_INDEX: Final = re.compile(r"(?:[a-z0-9*][a-z0-9._*+-]*:)?[a-z0-9*][a-z0-9._*+-]*")
_OPERATORS: Final = {"gt": (">", "more than"), "gte": (">=", "at least"), "eq": ("==", "exactly")}
_UNITS: Final = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


class Language(enum.StrEnum):
    ESQL = "esql"
    LUCENE = "lucene"


@dataclass(frozen=True)
class ExportedRule:
    """One rule as a query in one language."""

    id: str
    title: str
    description: str
    level: str
    tags: tuple[str, ...]
    path: Path
    line: int
    language: Language
    query: str
    notes: tuple[str, ...] = ()  # what the query approximates
    timespan_seconds: int | None = None  # a correlation's
    building_block: bool = False  # in-stream it never alerts alone (a correlation's input)


@dataclass(frozen=True)
class ElasticExport:
    rules: tuple[ExportedRule, ...]
    problems: tuple[RuleProblem, ...]  # the rules that none of the languages can express


def index_patterns(text: str) -> tuple[str, ...]:
    """A comma-separated list of index patterns, checked (``ValueError`` says what is wrong).

    >>> index_patterns("logs-trustwatch.flow-*,remote:logs-*")
    ('logs-trustwatch.flow-*', 'remote:logs-*')
    """
    patterns = tuple(p.strip() for p in text.split(","))
    for pattern in patterns:
        if not _INDEX.fullmatch(pattern):
            raise ValueError(
                f"{pattern!r} is not an index pattern: lower-case letters, digits, . _ - + *, "
                "and an optional cluster: prefix"
            )
    return patterns


def sigma_rules(rules: Iterable[Rule]) -> dict[str, SigmaRule]:
    """The pySigma rules behind loaded rules, by id, in our field names (as the loader parsed
    and mapped them)."""
    return {rule.id: rule.sigma for rule in rules}


def export_rules(
    pack: RulePack,
    sigma: Mapping[str, SigmaRule],
    languages: Sequence[Language],
    index: Sequence[str] = DEFAULT_INDEX,
    *,
    metadata: bool = False,
) -> ElasticExport:
    """Every rule of ``pack`` in the first of ``languages`` that can express it.

    ``sigma`` holds each single-event rule's pySigma rule by id (:func:`sigma_rules`).
    With ``metadata``, single-event ES|QL reads ``_id``, ``_version`` and ``_index``: Kibana
    needs them to tell one alert from another.
    """
    source = f"FROM {', '.join(index)}" + (" METADATA _id, _version, _index" if metadata else "")
    silent = {rule_id for c in pack.correlations if not c.generate for rule_id in c.rule_ids}
    exported: list[ExportedRule] = []
    problems: list[RuleProblem] = []
    for rule in pack.rules:
        attempts = {language: _attempt(sigma[rule.id], language) for language in languages}
        language = next((k for k, v in attempts.items() if isinstance(v, Translation)), None)
        if language is None:
            problems.append(_problem(rule.path, rule.line, attempts))
            continue
        translation = attempts[language]
        assert isinstance(translation, Translation)  # noqa: S101 - found so just above
        exported.append(
            ExportedRule(
                **_about(rule, rule.description or rule.title),
                language=language,
                query=f"{source}\n| WHERE {translation.text}"
                if language is Language.ESQL
                else translation.text,
                notes=translation.notes,
                building_block=rule.id in silent,
            )
        )
    titles = {rule.id: rule.title for rule in pack.rules}
    conditions = {
        rule_id: _attempt(sigma[rule_id], Language.ESQL)
        for correlation in pack.correlations
        for rule_id in correlation.rule_ids
    }
    for correlation in pack.correlations:
        if Language.ESQL not in languages:
            unable = UnsupportedRuleError("a correlation aggregates events, which Lucene cannot")
            problems.append(_problem(correlation.path, correlation.line, {languages[0]: unable}))
            continue
        try:
            query, notes = correlation_query(correlation, conditions, index)
        except UnsupportedRuleError as exc:
            problems.append(_problem(correlation.path, correlation.line, {Language.ESQL: exc}))
            continue
        exported.append(
            ExportedRule(
                **_about(correlation, describe(correlation, titles)),
                language=Language.ESQL,
                query=query,
                notes=notes,
                timespan_seconds=correlation.timespan_ns // 1_000_000_000,
            )
        )
    return ElasticExport(tuple(exported), tuple(problems))


def correlation_query(
    correlation: Correlation,
    conditions: Mapping[str, Translation | UnsupportedRuleError],
    index: Sequence[str] = DEFAULT_INDEX,
) -> tuple[str, tuple[str, ...]]:
    """The ES|QL query that finds the groups and time buckets where ``correlation`` holds,
    and its notes; ``conditions`` holds the ES|QL condition of each referenced rule."""
    if correlation.kind not in (EVENT_COUNT, VALUE_COUNT, TEMPORAL):
        raise UnsupportedRuleError(
            f"{correlation.kind} needs the order of events in a group, which STATS does not keep"
        )
    notes = dict.fromkeys([BUCKET_NOTE])
    parts = []
    for rule_id in dict.fromkeys(correlation.rule_ids):  # the engine counts a rule once
        condition = conditions[rule_id]
        if isinstance(condition, UnsupportedRuleError):
            raise UnsupportedRuleError(f"its rule {rule_id}: {condition}")
        parts.append(condition.text)
        notes.update(dict.fromkeys(condition.notes))
    matched = parts[0] if len(parts) == 1 else " OR ".join(f"({p})" for p in parts)
    groups = [esql_name(g) for g in correlation.group_by]
    where = " AND ".join(
        [f"({matched})" if groups else matched] + [f"{g} IS NOT NULL" for g in groups]
    )
    span = _duration(correlation.timespan_ns // 1_000_000_000)
    by = ", ".join([f"window_start = BUCKET({esql_name(TIME_FIELD)}, {span})", *groups])
    operator = _OPERATORS[correlation.operator][0]
    lines = [f"FROM {', '.join(index)}", f"| WHERE {where}"]
    if correlation.kind == EVENT_COUNT and len(parts) == 1:
        lines.append(f"| STATS event_count = COUNT(*) BY {by}")
    elif correlation.kind == EVENT_COUNT:  # an event two rules match counts twice, as in-stream
        lines.append(f"| EVAL matches = {' + '.join(f'CASE({p}, 1, 0)' for p in parts)}")
        lines.append(f"| STATS event_count = SUM(matches) BY {by}")
    elif correlation.kind == VALUE_COUNT:
        assert correlation.field is not None  # noqa: S101 - the loader requires it
        lines.append(
            f"| STATS value_count = COUNT_DISTINCT({esql_name(correlation.field)}) BY {by}"
        )
        notes[DISTINCT_NOTE] = None
    else:  # temporal: every rule matched within the bucket
        lines.append(
            "| EVAL " + ", ".join(f"rule_{i} = CASE({p}, 1, 0)" for i, p in enumerate(parts))
        )
        lines.append(
            "| STATS "
            + ", ".join(f"seen_{i} = MAX(rule_{i})" for i in range(len(parts)))
            + f" BY {by}"
        )
        lines.append("| WHERE " + " AND ".join(f"seen_{i} == 1" for i in range(len(parts))))
    if correlation.kind != TEMPORAL:
        lines.append(f"| WHERE {correlation.kind} {operator} {correlation.count}")
    return "\n".join(lines), tuple(notes)


def describe(correlation: Correlation, titles: Mapping[str, str]) -> str:
    """A correlation in a sentence (correlation rules carry no description of their own)."""
    names = ", ".join(titles.get(r, r) for r in dict.fromkeys(correlation.rule_ids))
    words = _OPERATORS[correlation.operator][1]
    what = {
        EVENT_COUNT: f"{words} {correlation.count} events of {names}",
        VALUE_COUNT: f"{words} {correlation.count} {correlation.field} values in events of {names}",
        TEMPORAL: f"events of each of: {names}",
    }.get(correlation.kind, f"events of {names}, in that order")
    per = f", per {', '.join(correlation.group_by)}" if correlation.group_by else ""
    span = _duration(correlation.timespan_ns // 1_000_000_000)
    return f"{correlation.title}: {what} within {span}{per} (Sigma {correlation.kind} correlation)."


def as_text(export: ElasticExport) -> str:
    """The queries as a listing: each after a comment line naming its rule (``//`` for ES|QL,
    ``#`` for Lucene) and its notes."""
    blocks = []
    for rule in export.rules:
        mark = "//" if rule.language is Language.ESQL else "#"
        head = [f"{mark} {rule.title} ({rule.id}) {rule.path}:{rule.line}"]
        head.extend(f"{mark} note: {note}" for note in rule.notes)
        blocks.append("\n".join([*head, rule.query]) + "\n")
    return "\n".join(blocks)


def _attempt(rule: SigmaRule, language: Language) -> Translation | UnsupportedRuleError:
    try:
        return esql_condition(rule) if language is Language.ESQL else lucene_query(rule)
    except UnsupportedRuleError as exc:
        return exc


def _problem(
    path: Path, line: int, attempts: Mapping[Language, Translation | UnsupportedRuleError]
) -> RuleProblem:
    reasons = "; ".join(f"{language}: {reason}" for language, reason in attempts.items())
    return RuleProblem(path, line, f"not exported ({reasons})")


def _about(rule: Rule | Correlation, description: str) -> dict[str, Any]:
    return {
        "id": rule.id,
        "title": rule.title,
        "description": description,
        "level": rule.level,
        "tags": rule.tags,
        "path": rule.path,
        "line": rule.line,
    }


def _duration(seconds: int) -> str:
    """An ES|QL time span literal: ``120`` is ``2 minutes``."""
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable: every whole number of seconds is a number of seconds")
