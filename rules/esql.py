"""Sigma detections as ES|QL boolean expressions (for ``WHERE``), by the walk of
:mod:`rules.elastic_query`.

ES|QL has no case-insensitive comparison, so the field is lower-cased: ``TO_LOWER(f) == "x"``,
``LIKE`` for wildcards (``*`` and ``?``, a backslash escaping them), ``RLIKE`` for regular
expressions. A value without letters of two cases needs no folding. Numbers, addresses and
networks use the field's type (``CIDR_MATCH``, ``TO_IP``); a text field compared with a number
is read as one (``TO_DOUBLE``), as the in-stream engine does. ES|QL's logic has three values: a
missing field makes a test null, which ``WHERE`` drops, as the engine would; but ``NOT null``
is still null, so a negation is ``NOT COALESCE(x, false)``.

>>> from sigma.rule import SigmaRule
>>> rule = SigmaRule.from_yaml('''
... title: t
... logsource: {category: network}
... detection:
...   sel: {network.transport: TCP, dns.question.name|endswith: .Example.org}
...   internal: {source.ip|cidr: 10.0.0.0/8}
...   condition: sel and not internal
... ''')
>>> print(esql_condition(rule).text)  # doctest: +NORMALIZE_WHITESPACE
network.transport == "tcp" AND TO_LOWER(dns.question.name) LIKE "*.example.org"
AND NOT COALESCE(CIDR_MATCH(source.ip, "10.0.0.0/8"), false)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from sigma.rule import SigmaRule
from sigma.types import CompareOperators, SigmaExists, SigmaFieldReference

from rules.elastic_fields import FIELD_TYPES, IP, KEYWORD, NUMERIC, FieldType
from rules.elastic_query import (
    AND,
    MULTI,
    NOT,
    OR,
    Part,
    Target,
    Text,
    Translation,
    canonical_int,
    canonical_ip,
    caseless,
    folding,
)
from rules.errors import UnsupportedRuleError

_OPERATORS: Final = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
}
_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*|[_@][A-Za-z0-9_]+")
_KEYWORDS: Final = frozenset(
    ("and", "asc", "by", "desc", "false", "first", "in", "is", "last", "like", "match"),
) | frozenset(("metadata", "not", "null", "nulls", "on", "or", "rlike", "true", "with"))


def esql_condition(rule: SigmaRule, fields: Mapping[str, FieldType] = FIELD_TYPES) -> Translation:
    """The rule's condition as an ES|QL boolean expression."""
    return _Esql(fields).rule(rule)


def esql_string(text: str) -> str:
    """An ES|QL string literal.

    >>> print(esql_string('say "hi"\\\\'))
    "say \\"hi\\"\\\\"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def esql_name(field: str) -> str:
    """A field name as ES|QL reads it: backquoted unless every part is a plain identifier.

    >>> esql_name("source.ip"), esql_name("odd-name.by")
    ('source.ip', '`odd-name.by`')
    """
    parts = field.split(".")
    if all(_IDENTIFIER.fullmatch(p) and p.lower() not in _KEYWORDS for p in parts):
        return field
    return "`" + field.replace("`", "``") + "`"


class _Esql(Target):
    never = Part("false", nullable=False)
    set_kind = "in"

    def wraps(self, part: Part, level: int) -> bool:
        return part.level in (AND, OR) and part.level != level  # explicit, though not needed

    def negate(self, part: Part) -> Part:
        if part.nullable:
            return Part(f"NOT COALESCE({part.text}, false)", NOT, nullable=False)
        return Part(f"NOT ({part.text})", NOT, nullable=False)

    def members(self, kind: str, lhs: str, members: tuple[str, ...]) -> Part:
        if kind == "cidr":
            text = f"CIDR_MATCH({lhs}, {', '.join(members)})"
        elif not members:
            return self.never
        elif len(members) == 1:
            text = f"{lhs} == {members[0]}"
        else:
            text = f"{lhs} IN ({', '.join(members)})"
        return Part(text, merge=(kind, lhs), members=members)

    def name(self, field: str) -> str:
        return esql_name(field)

    def literal(self, value: str) -> str:
        return esql_string(value)

    def presence(self, field: str, ftype: FieldType, value: Any) -> Part:
        name = esql_name(field)
        if isinstance(value, SigmaFieldReference):
            if value.starts_with or value.ends_with:
                raise UnsupportedRuleError("fieldref with startswith or endswith")
            if self.fields.get(value.field, FieldType(KEYWORD)).kind != ftype.kind:
                raise UnsupportedRuleError(f"fieldref: {field} and {value.field} differ in type")
            return Part(f"{name} == {esql_name(value.field)}")
        present = isinstance(value, SigmaExists) and value.exists
        return Part(f"{name} IS {'NOT ' if present else ''}NULL", nullable=False)

    def cidr(self, field: str, ftype: FieldType, network: str) -> Part:
        if ftype.kind in NUMERIC:
            return self.never  # in-stream, a number is in no network
        lhs = esql_name(field) if ftype.kind == IP else f"TO_IP({esql_name(field)})"
        return self.members("cidr", lhs, (esql_string(network),))

    def compare(self, field: str, ftype: FieldType, op: CompareOperators, number: str) -> Part:
        return Part(f"{_as_number(field, ftype)} {_OPERATORS[op]} {number}")

    def number(self, field: str, ftype: FieldType, number: str) -> Part:
        return self.members("in", _as_number(field, ftype), (number,))

    def regex(self, field: str, ftype: FieldType, pattern: str) -> Part:
        name = esql_name(field)
        lhs = name if ftype.kind == KEYWORD else f"TO_STRING({name})"
        return Part(f"{lhs} RLIKE {esql_string(pattern)}")

    def string(self, field: str, ftype: FieldType, text: Text, cased: bool) -> Part:
        name = esql_name(field)
        fold = folding(cased)
        joined = fold("".join(p for p in text if isinstance(p, str)))
        plain = all(isinstance(p, str) for p in text)
        if ftype.kind in NUMERIC and plain and canonical_int(joined):
            return self.members("in", name, (joined,))
        if ftype.kind == IP and plain and canonical_ip(joined):
            return self.members("in", name, (f"TO_IP({esql_string(joined)})",))
        if ftype.kind != KEYWORD:
            lhs = f"TO_STRING({name})"  # digits, or an address in lower case: nothing to fold
        else:
            lhs = name if cased or caseless(joined) else f"TO_LOWER({name})"
        if plain:
            return self.members("in", lhs, (esql_string(joined),))
        return Part(f"{lhs} LIKE {esql_string(_like(text, fold))}")


def _as_number(field: str, ftype: FieldType) -> str:
    name = esql_name(field)
    return name if ftype.kind in NUMERIC else f"TO_DOUBLE({name})"


def _like(text: Text, fold: Callable[[str], str]) -> str:
    """A ``LIKE`` pattern: ``*`` and ``?`` wildcards, a backslash before a literal one."""
    return "".join(
        re.sub(r"[*?\\]", r"\\\g<0>", fold(p)) if isinstance(p, str) else "*" if p is MULTI else "?"
        for p in text
    )
