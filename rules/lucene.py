"""Sigma detections as Lucene query strings (Kibana's ``lucene`` language, which Elasticsearch
runs as a ``query_string`` query), by the walk of :mod:`rules.elastic_query`.

Lucene has no case-insensitive term syntax, so a value with letters of two cases becomes a
regular expression with a class per letter (``/[tT]elnet/``), wildcards becoming ``.*`` and
``.``; other values are quoted terms, numbers ranges. It cannot compare two fields, match a
network on a text field, use wildcards or regular expressions on a number or an address, or
aggregate: those are refused. ``query_string`` reads AND, OR and NOT mixed in one group in its
own way, so every group holds one operator.

>>> from sigma.rule import SigmaRule
>>> rule = SigmaRule.from_yaml('''
... title: t
... logsource: {category: network}
... detection:
...   sel: {network.transport: TCP, dns.question.name|endswith: .Example.org}
...   internal: {source.ip|cidr: 10.0.0.0/8}
...   condition: sel and not internal
... ''')
>>> print(lucene_query(rule).text)  # doctest: +NORMALIZE_WHITESPACE
network.transport:"tcp" AND dns.question.name:/.*\\.[eE][xX][aA][mM][pP][lL][eE]\\.[oO][rR][gG]/
AND (NOT source.ip:"10.0.0.0/8")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sigma.rule import SigmaRule
from sigma.types import CompareOperators, SigmaExists, SigmaFieldReference

from rules.elastic_fields import FIELD_TYPES, IP, KEYWORD, NUMERIC, FieldType
from rules.elastic_query import (
    ATOM,
    MULTI,
    NOT,
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
from rules.lucene_regex import literal_pattern

_RANGES: Final = {
    CompareOperators.LT: "[* TO {}}}",
    CompareOperators.LTE: "[* TO {}]",
    CompareOperators.GT: "{{{} TO *]",
    CompareOperators.GTE: "[{} TO *]",
}
_RESERVED: Final = re.compile(r'([+\-=&|><!(){}\[\]^"~*?:\\/\s])')
TEXT_NUMBER_NOTE: Final = "a number on a text field matches its plain decimal form only"


def lucene_query(rule: SigmaRule, fields: Mapping[str, FieldType] = FIELD_TYPES) -> Translation:
    """The rule's condition as a Lucene query string."""
    return _Lucene(fields).rule(rule)


def quoted(text: str) -> str:
    """A Lucene phrase: one exact term on a keyword, number or ip field.

    >>> print(quoted('say "hi"'))
    "say \\"hi\\""
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Lucene(Target):
    never = Part("NOT *:*", NOT, nullable=False)
    set_kind = "terms"

    def wraps(self, part: Part, level: int) -> bool:
        return part.level not in (ATOM, level)

    def negate(self, part: Part) -> Part:
        return Part(f"NOT ({part.text})" if part.level != ATOM else f"NOT {part.text}", NOT)

    def members(self, kind: str, lhs: str, members: tuple[str, ...]) -> Part:
        if not members:
            return self.never
        terms = members[0] if len(members) == 1 else f"({' OR '.join(members)})"
        return Part(f"{lhs}:{terms}", merge=(kind, lhs), members=members)

    def name(self, field: str) -> str:
        return _RESERVED.sub(r"\\\1", field)

    def literal(self, value: str) -> str:
        return quoted(value)

    def presence(self, field: str, ftype: FieldType, value: Any) -> Part:
        if isinstance(value, SigmaFieldReference):
            raise UnsupportedRuleError("fieldref: Lucene cannot compare two fields")
        present = Part(f"_exists_:{self.name(field)}")
        return present if isinstance(value, SigmaExists) and value.exists else self.negate(present)

    def cidr(self, field: str, ftype: FieldType, network: str) -> Part:
        if ftype.kind in NUMERIC:
            return self.never  # in-stream, a number is in no network
        if ftype.kind != IP:
            raise UnsupportedRuleError(f"cidr on {field}: Lucene matches networks on ip fields")
        return self.members("terms", self.name(field), (quoted(network),))

    def compare(self, field: str, ftype: FieldType, op: CompareOperators, number: str) -> Part:
        if ftype.kind not in NUMERIC:
            raise UnsupportedRuleError(f"{field} is text: a Lucene range would compare letters")
        return Part(f"{self.name(field)}:{_RANGES[op].format(number)}")

    def number(self, field: str, ftype: FieldType, number: str) -> Part:
        if ftype.kind not in NUMERIC:
            self.notes[TEXT_NUMBER_NOTE] = None
            return self.members("terms", self.name(field), (quoted(number),))
        term = quoted(number) if number.startswith("-") else number
        return self.members("terms", self.name(field), (term,))

    def regex(self, field: str, ftype: FieldType, pattern: str) -> Part:
        if ftype.kind != KEYWORD:
            raise UnsupportedRuleError(f"re on {field}: Lucene has regular expressions on text")
        return self.members("terms", self.name(field), (f"/{pattern}/",))

    def string(self, field: str, ftype: FieldType, text: Text, cased: bool) -> Part:
        name = self.name(field)
        joined = "".join(p for p in text if isinstance(p, str))
        plain = all(isinstance(p, str) for p in text)
        if ftype.kind != KEYWORD:
            if not plain:
                raise UnsupportedRuleError(f"wildcards on {field}: Lucene has them on text only")
            folded = folding(cased)(joined)
            valid = canonical_int(folded) if ftype.kind in NUMERIC else canonical_ip(folded)
            return self.members("terms", name, (quoted(folded),)) if valid else self.never
        if plain and not joined:
            raise UnsupportedRuleError(f"an empty value for {field}: Lucene has no empty term")
        if plain and (cased or caseless(joined)):
            return self.members("terms", name, (quoted(joined),))
        pattern = "".join(
            literal_pattern(p, ignore_case=not cased)
            if isinstance(p, str)
            else (".*" if p is MULTI else ".")
            for p in text
        )
        return self.members("terms", name, (f"/{pattern}/",))
