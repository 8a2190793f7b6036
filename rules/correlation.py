"""Sigma correlation rules, checked and compiled for in-stream evaluation.

Supported: ``event_count`` and ``value_count`` with ``gt``, ``gte`` or ``eq`` (a condition
that holds as events arrive), ``temporal`` and ``temporal_ordered``; ``timespan`` and
``group-by``. Not supported, and refused with the reason: ``lt``, ``lte`` and ``neq`` (they are
decided when a window closes without events, not when one arrives) and the ``value_sum``
family. Referenced rules are looked up by ``name`` or ``id``; a correlation that is not
``generate: true`` keeps its referenced rules from alerting on their own, as the spec says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from rules.errors import RuleProblem

EVENT_COUNT: Final = "event_count"
VALUE_COUNT: Final = "value_count"
TEMPORAL: Final = "temporal"
TEMPORAL_ORDERED: Final = "temporal_ordered"

_TYPES: Final = {
    SigmaCorrelationType.EVENT_COUNT: EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT: VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL: TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED: TEMPORAL_ORDERED,
}
_OPERATORS: Final = {
    SigmaCorrelationConditionOperator.GT: "gt",
    SigmaCorrelationConditionOperator.GTE: "gte",
    SigmaCorrelationConditionOperator.EQ: "eq",
}


@dataclass(frozen=True)
class Correlation:
    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    kind: str
    rule_ids: tuple[str, ...]  # the referenced rules, in the order given
    group_by: tuple[str, ...]
    timespan_ns: int
    operator: str
    count: int
    field: str | None  # value_count: the field whose distinct values are counted
    generate: bool
    path: Path
    line: int


def compile_correlation(
    rule: SigmaCorrelationRule,
    path: Path,
    line: int,
    rule_ids: Mapping[str, str],
    known_fields: frozenset[str],
    levels: Mapping[str, str],
) -> Correlation | RuleProblem:
    """The correlation ready for the engine, or the problem that keeps it out.

    ``rule_ids`` maps each loaded rule's name and id to its id.
    """
    kind = _TYPES.get(rule.type)
    if kind is None:
        return RuleProblem(
            path, line, f"correlation type {rule.type.name.lower()} is not supported"
        )
    referenced = []
    for reference in rule.rules or ():
        target = rule_ids.get(str(reference.reference))
        if target is None:
            return RuleProblem(
                path, line, f"correlation refers to unknown rule {reference.reference!r}"
            )
        referenced.append(target)
    condition = rule.condition
    if condition is not None and not isinstance(condition, SigmaCorrelationCondition):
        return RuleProblem(path, line, "extended correlation conditions are not supported")
    operator = _OPERATORS.get(condition.op) if condition is not None else "gte"
    if operator is None:
        assert condition is not None  # noqa: S101 - only a condition can name an operator
        return RuleProblem(
            path,
            line,
            f"condition {condition.op.name.lower()} is decided when a window closes, not as "
            "events arrive: not supported in-stream",
        )
    has_count = condition is not None and condition.count is not None
    count = condition.count if condition is not None and has_count else len(referenced)
    fieldref = condition.fieldref if condition is not None else None
    if isinstance(fieldref, list):
        if len(fieldref) != 1:
            return RuleProblem(path, line, "value_count counts the values of one field")
        fieldref = fieldref[0]
    field = str(fieldref) if fieldref else None
    if kind == VALUE_COUNT and not field:
        return RuleProblem(path, line, "value_count needs condition.field")
    group_by = tuple(rule.group_by or ())
    unknown = sorted({*group_by, *([field] if field else [])} - known_fields)
    if unknown:
        return RuleProblem(path, line, f"field {unknown[0]!r} is not one our events carry")
    if rule.timespan is None:
        return RuleProblem(path, line, "a correlation needs a timespan")
    return Correlation(
        id=str(rule.id) if rule.id else f"{path.stem}:{line}",
        title=rule.title,
        level=levels.get(rule.level.name.lower() if rule.level else "medium", "medium"),
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags),
        kind=kind,
        rule_ids=tuple(referenced),
        group_by=group_by,
        timespan_ns=int(rule.timespan.seconds) * 1_000_000_000,
        operator=operator,
        count=int(count),
        field=field,
        generate=bool(rule.generate),
        path=path,
        line=line,
    )
