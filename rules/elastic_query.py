"""The walk from a Sigma rule's detection to Elasticsearch query text; :mod:`rules.esql` and
:mod:`rules.lucene` write the two languages.

It walks the condition tree pySigma parses, as :mod:`rules.matcher` does, and keeps the
in-stream engine's semantics, which are Sigma's:

- Strings compare case-insensitively unless ``cased``. A field whose values the wire format
  closes (an enum such as ``flow.state``) is compared exactly with the allowed values that
  match, as the engine would match them.
- A missing field matches nothing but ``null``; lists are any of their values; ``1 of``,
  ``all of`` and ``not`` are Boolean logic.
- A value without a field (a keyword) matches any field that holds text: numbers do not.
- A test that can never hold in-stream (a number against an address) becomes the language's
  "nothing", and drops out of an ``or``.

What a language cannot express raises :class:`~rules.errors.UnsupportedRuleError` with the
reason, never a query that matches something else; what it approximates is said in ``notes``.
"""

from __future__ import annotations

import abc
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from rules.elastic_fields import DATE, FIELD_TYPES, IP, KEYWORD, NUMERIC, FieldType
from rules.errors import UnsupportedRuleError
from rules.lucene_regex import to_lucene

ATOM, NOT, AND, OR = 0, 1, 2, 3  # how loosely a part binds
MULTI: Final = SpecialChars.WILDCARD_MULTI
_COMPARE: Final = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
}
_TEXT_FORMS: Final = {  # the characters of an address or a time as the in-stream events write them
    IP: frozenset("0123456789abcdef:."),
    DATE: frozenset("0123456789-t:.z+"),
}

Text = tuple[str | SpecialChars, ...]  # a Sigma string: text and wildcards


@dataclass(frozen=True)
class Translation:
    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    """A translated expression. Parts with ``merge`` (a field among literals, or in networks)
    merge under ``or`` into one ``IN``, ``CIDR_MATCH`` or ``field:(a OR b)``."""

    text: str
    level: int = ATOM
    nullable: bool = True  # whether ES|QL can evaluate it to null (unknown)
    merge: tuple[str, str] | None = None  # (kind, left-hand side)
    members: tuple[str, ...] = ()


class Target(abc.ABC):
    """The walk over pySigma's condition tree; a subclass writes one language: how to join,
    negate and group parts, and each kind of test on a field."""

    never: Part  # what a test that can never hold becomes
    set_kind: str  # the merge kind of "the field holds one of these values"

    def __init__(self, fields: Mapping[str, FieldType] = FIELD_TYPES) -> None:
        self.fields = fields
        self.notes: dict[str, None] = {}

    def rule(self, rule: SigmaRule) -> Translation:
        parts = [self.node(condition.parse()) for condition in rule.detection.parsed_condition]
        return Translation(self.any_of(parts).text, tuple(self.notes))

    def node(self, node: Any) -> Part:
        if isinstance(node, ConditionAND):
            parts = [self.node(arg) for arg in node.args]
            return self.never if self.never in parts else self.join(parts, "AND", AND)
        if isinstance(node, ConditionOR):
            return self.any_of([self.node(arg) for arg in node.args])
        if isinstance(node, ConditionNOT):
            return self.negate(self.node(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            ftype = self.fields.get(node.field, FieldType(KEYWORD))
            return self.leaf(node.field, ftype, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise UnsupportedRuleError(f"condition element {type(node).__name__}")

    def keyword(self, value: Any) -> Part:
        """A value without a field. An address or a time is text in-stream, but Elasticsearch
        keeps another form of it: a keyword that could match one is refused, one that could not
        (it has a character no address or time has) leaves those fields out."""
        if not isinstance(value, SigmaString):
            raise UnsupportedRuleError(f"keyword {value}: only strings are searched as keywords")
        letters = set("".join(p for p in value.s if isinstance(p, str)).lower())
        parts = []
        for field, ftype in sorted(self.fields.items()):
            if ftype.kind == KEYWORD:
                parts.append(self.leaf(field, ftype, value))
            elif ftype.kind in _TEXT_FORMS and letters <= _TEXT_FORMS[ftype.kind]:
                raise UnsupportedRuleError(
                    f"keyword {value} could match the text of {field}, which Elasticsearch "
                    f"keeps as {ftype.kind}: name the fields"
                )
        return self.any_of(parts)

    def any_of(self, parts: list[Part]) -> Part:
        merged: list[Part] = []
        for part in [p for p in parts if p != self.never] or [self.never]:
            same = next((i for i, m in enumerate(merged) if part.merge == m.merge), None)
            if part.merge is None or same is None:
                merged.append(part)
            else:
                kind, lhs = part.merge
                merged[same] = self.members(kind, lhs, merged[same].members + part.members)
        return self.join(merged, "OR", OR)

    def join(self, parts: list[Part], word: str, level: int) -> Part:
        if len(parts) == 1:
            return parts[0]
        texts = [f"({p.text})" if self.wraps(p, level) else p.text for p in parts]
        return Part(f" {word} ".join(texts), level, any(p.nullable for p in parts))

    def leaf(self, field: str, ftype: FieldType, value: Any) -> Part:  # noqa: PLR0911 - a return per value type
        if isinstance(value, SigmaNull | SigmaExists | SigmaFieldReference):
            return self.presence(field, ftype, value)
        if ftype.kind not in NUMERIC and ftype.kind not in (IP, KEYWORD):
            raise UnsupportedRuleError(f"{field} is of type {ftype.kind}: only null and exists")
        if isinstance(value, SigmaCIDRExpression):
            return self.cidr(field, ftype, str(value.network))
        if isinstance(value, SigmaCompareExpression):
            return self.numeric(field, ftype, value.number, value.op)
        if isinstance(value, SigmaNumber):
            return self.numeric(field, ftype, value, None)
        if isinstance(value, SigmaRegularExpression):
            if ftype.values is not None:
                pattern = re.compile(str(value.regexp), _python_flags(value))
                return self.among(field, (v for v in ftype.values if pattern.search(v)))
            regex = to_lucene(str(value.regexp), **_lucene_flags(value))
            self.notes.update(dict.fromkeys(regex.notes))
            return self.regex(field, ftype, regex.pattern)
        text, cased = string_parts(value)
        if ftype.values is not None:
            return self.among(field, _matching(text, cased, ftype.values))
        return self.string(field, ftype, text, cased)

    def numeric(
        self, field: str, ftype: FieldType, number: SigmaNumber, op: CompareOperators | None
    ) -> Part:
        """Equal to ``number`` (``op`` None), or compared with it."""
        if isinstance(number, SigmaTimestampPart):
            raise UnsupportedRuleError("the minute/hour/day/week/month/year modifiers")
        if ftype.values is not None:
            test = operator.eq if op is None else _COMPARE[op]
            return self.among(field, (v for v in ftype.values if _is(test, v, number.number)))
        if ftype.kind == IP:
            return self.never  # in-stream, an address is no number
        text = number_text(number)
        return (
            self.number(field, ftype, text) if op is None else self.compare(field, ftype, op, text)
        )

    def among(self, field: str, values: Iterable[str]) -> Part:
        """The field holds one of ``values`` (of those the wire format allows it)."""
        literals = tuple(self.literal(v) for v in sorted(values))
        return self.members(self.set_kind, self.name(field), literals)

    @abc.abstractmethod
    def wraps(self, part: Part, level: int) -> bool:
        """Whether ``part`` needs parentheses inside an expression of ``level``."""

    @abc.abstractmethod
    def negate(self, part: Part) -> Part: ...

    @abc.abstractmethod
    def members(self, kind: str, lhs: str, members: tuple[str, ...]) -> Part:
        """``lhs`` among ``members`` (literals), or none of them."""

    @abc.abstractmethod
    def name(self, field: str) -> str: ...

    @abc.abstractmethod
    def literal(self, value: str) -> str: ...

    @abc.abstractmethod
    def presence(self, field: str, ftype: FieldType, value: Any) -> Part:
        """``null``, ``exists`` or ``fieldref``."""

    @abc.abstractmethod
    def cidr(self, field: str, ftype: FieldType, network: str) -> Part: ...

    @abc.abstractmethod
    def compare(self, field: str, ftype: FieldType, op: CompareOperators, number: str) -> Part: ...

    @abc.abstractmethod
    def number(self, field: str, ftype: FieldType, number: str) -> Part: ...

    @abc.abstractmethod
    def regex(self, field: str, ftype: FieldType, pattern: str) -> Part:
        """``pattern`` is in Lucene's syntax already (:mod:`rules.lucene_regex`)."""

    @abc.abstractmethod
    def string(self, field: str, ftype: FieldType, text: Text, cased: bool) -> Part: ...


def string_parts(value: Any) -> tuple[Text, bool]:
    """A string value's parts (text and wildcards) and whether it is ``cased``."""
    if isinstance(value, SigmaBool):  # in-stream, true matches the text "true" in any case
        return ("true" if value.boolean else "false",), False
    if not isinstance(value, SigmaString):
        raise UnsupportedRuleError(f"value type {type(value).__name__}")
    text = tuple(p for p in value.s if isinstance(p, str | SpecialChars))
    if len(text) != len(value.s):  # a placeholder (the `expand` modifier)
        raise UnsupportedRuleError("a placeholder: give the values")
    return text, isinstance(value, SigmaCasedString)


def number_text(value: SigmaNumber) -> str:
    number = value.number
    if isinstance(number, float) and not math.isfinite(number):
        raise UnsupportedRuleError(f"number {number}")
    return str(number)


def folding(cased: bool) -> Callable[[str], str]:
    return (lambda s: s) if cased else str.lower


def caseless(text: str) -> bool:
    """Whether ``text`` has no letters of two cases (so folding cannot change a match)."""
    return text.lower() == text.upper()


def canonical_int(text: str) -> bool:
    """Whether a number's text is the one Elasticsearch would write for it."""
    return re.fullmatch(r"-?(0|[1-9][0-9]*)", text) is not None


def canonical_ip(text: str) -> bool:
    """Whether an address's text is the one the wire format (and Elasticsearch) writes."""
    try:
        return str(ipaddress.ip_address(text)) == text
    except ValueError:
        return False


def _matching(text: Text, cased: bool, values: Iterable[str]) -> list[str]:
    """The values that the string matches, as the in-stream engine would."""
    regex = "".join(
        re.escape(p) if isinstance(p, str) else (".*" if p is MULTI else ".") for p in text
    )
    pattern = re.compile(regex, re.DOTALL | (0 if cased else re.IGNORECASE))
    return [v for v in values if pattern.fullmatch(v)]


def _is(test: Callable[[Any, Any], bool], text: str, number: float) -> bool:
    """``test`` on a text read as the in-stream engine reads numbers (no number: no match)."""
    try:
        return test(float(text) if "." in text else int(text), number)
    except ValueError:
        return False


def _python_flags(value: SigmaRegularExpression) -> int:
    flags = _lucene_flags(value)
    return (
        (re.IGNORECASE if flags["ignore_case"] else 0)
        | (re.MULTILINE if flags["multiline"] else 0)
        | (re.DOTALL if flags["dotall"] else 0)
    )


def _lucene_flags(value: SigmaRegularExpression) -> dict[str, bool]:
    return {
        "ignore_case": SigmaRegularExpressionFlag.IGNORECASE in value.flags,
        "multiline": SigmaRegularExpressionFlag.MULTILINE in value.flags,
        "dotall": SigmaRegularExpressionFlag.DOTALL in value.flags,
    }
