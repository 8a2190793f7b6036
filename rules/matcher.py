"""Single-event matching: a Sigma rule's condition, compiled to a predicate over one event.

pySigma parses and validates the rule and applies its modifiers (``contains`` becomes a
wildcard string, ``cidr`` a network, ``gt`` a comparison, ...); this module turns the resulting
condition tree into nested Python closures once, so that matching an event is plain function
calls. Events are flat dicts with ECS names (the records of :mod:`sensors.wire`).

Semantics follow the Sigma specification: string comparison is case-insensitive unless the
``cased`` modifier is used, ``*`` and ``?`` are wildcards, a list means any of its values,
``null`` matches a missing field, ``exists`` tests presence, keywords (values without a field)
match any string value of the event.

>>> from sigma.rule import SigmaRule
>>> rule = SigmaRule.from_yaml('''
... title: t
... logsource: {category: network}
... detection:
...   ssh: {destination.port: 22, source.ip|cidr: 10.0.0.0/8}
...   internal_dns: {dns.question.name|endswith: .corp.example}
...   condition: ssh and not internal_dns
... ''')
>>> matches = compile_rule(rule)
>>> matches({"destination.port": 22, "source.ip": "10.1.2.3"})
True
>>> matches({"destination.port": 22, "source.ip": "192.0.2.1"})
False
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
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
    TimestampPart,
)

from rules.errors import UnsupportedRuleError

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]

_REGEX_FLAGS: Final = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}
_COMPARE: Final[dict[CompareOperators, Callable[[float, float], bool]]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
}


def compile_rule(rule: SigmaRule) -> Predicate:
    """The rule's condition as one predicate (several conditions: any of them)."""
    predicates = [_node(condition.parse()) for condition in rule.detection.parsed_condition]
    return _any(predicates)


def fields_of(rule: SigmaRule) -> set[str]:
    """The event fields a rule's detection refers to."""
    found: set[str] = set()
    for detection in rule.detection.detections.values():
        stack: list[Any] = list(detection.detection_items)
        while stack:
            item = stack.pop()
            if hasattr(item, "detection_items"):
                stack.extend(item.detection_items)
            elif item.field:
                found.add(item.field)
    return found


def _node(node: Any) -> Predicate:
    if isinstance(node, ConditionAND):
        return _all([_node(arg) for arg in node.args])
    if isinstance(node, ConditionOR):
        lookup = _set_lookup(node.args)
        if lookup is not None:
            return lookup
        return _any([_node(arg) for arg in node.args])
    if isinstance(node, ConditionNOT):
        inner = _node(node.args[0])
        return lambda event: not inner(event)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        test = _value_test(node.value)
        return lambda event: any(isinstance(v, str) and test(v) for v in event.values())
    raise UnsupportedRuleError(f"condition element {type(node).__name__} is not supported")


def _all(parts: list[Predicate]) -> Predicate:
    # Plain loops: all()/any() over a generator cost a frame per call, on every event.
    if len(parts) == 1:
        return parts[0]

    def every(event: Event) -> bool:
        for part in parts:  # noqa: SIM110 - a loop: all() over a generator is slower here
            if not part(event):
                return False
        return True

    return every


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]

    def some(event: Event) -> bool:
        for part in parts:  # noqa: SIM110 - a loop: any() over a generator is slower here
            if part(event):
                return True
        return False

    return some


def _set_lookup(args: list[Any]) -> Predicate | None:
    """``field: [a, b, c]`` with plain numbers or strings: one set lookup instead of a test
    per value. ``None`` when the values are not all plain, or name several fields."""
    fields = {getattr(arg, "field", None) for arg in args}
    if len(args) < 3 or len(fields) != 1 or None in fields:
        return None
    numbers: set[float | int] = set()
    strings: set[str] = set()
    for arg in args:
        value = arg.value
        if not isinstance(arg, ConditionFieldEqualsValueExpression):
            return None
        if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
            numbers.add(value.number)
        elif type(value) is SigmaString and not value.contains_special():
            strings.add("".join(p for p in value.s if isinstance(p, str)).lower())
        else:
            return None
    field = str(next(iter(fields)))

    def member(actual: Any) -> bool:
        if numbers:
            number = _number(actual)
            if number is not None and number in numbers:
                return True
        return bool(strings) and _text(actual).lower() in strings

    def lookup(event: Event) -> bool:
        actual = event.get(field)
        if actual is None:
            return False
        if isinstance(actual, list):
            return any(member(item) for item in actual)
        return member(actual)

    return lookup


def _field(field: str, value: Any) -> Predicate:
    if isinstance(value, SigmaNull):
        return lambda event: event.get(field) is None
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return lambda event: (event.get(field) is not None) is wanted
    if isinstance(value, SigmaFieldReference):
        return _field_reference(field, value)
    test = _value_test(value)

    def matches(event: Event) -> bool:
        actual = event.get(field)
        if actual is None:
            return False
        if isinstance(actual, list):
            return any(test(item) for item in actual)
        return test(actual)

    return matches


def _field_reference(field: str, value: SigmaFieldReference) -> Predicate:
    """``field`` equal to (or, with ``startswith``/``endswith``, beginning or ending with) the
    value of another field of the same event; case-insensitive on text, as Sigma compares."""
    other = value.field

    def compare(event: Event) -> bool:
        actual, reference = event.get(field), event.get(other)
        if actual is None or reference is None:
            return False
        if not (value.starts_with or value.ends_with):
            return bool(actual == reference) or _text(actual).lower() == _text(reference).lower()
        text, wanted = _text(actual).lower(), _text(reference).lower()
        if value.starts_with and not text.startswith(wanted):
            return False
        return not (value.ends_with and not text.endswith(wanted))

    return compare


def _timestamp_part(value: SigmaTimestampPart) -> Callable[[Any], bool]:
    """The ``minute`` ... ``year`` modifiers: a part of the field's timestamp (UTC) equals the
    number (``week`` is the ISO week)."""
    part, expected = value.timestamp_part, value.number

    def test(actual: Any) -> bool:
        if isinstance(actual, datetime):
            moment = actual
        else:
            try:
                moment = datetime.fromisoformat(_text(actual))
            except ValueError:
                return False
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return bool(_TIMESTAMP_PARTS[part](moment) == expected)

    return test


_TIMESTAMP_PARTS: Final[dict[TimestampPart, Callable[[datetime], int]]] = {
    TimestampPart.MINUTE: lambda moment: moment.minute,
    TimestampPart.HOUR: lambda moment: moment.hour,
    TimestampPart.DAY: lambda moment: moment.day,
    TimestampPart.WEEK: lambda moment: moment.isocalendar().week,
    TimestampPart.MONTH: lambda moment: moment.month,
    TimestampPart.YEAR: lambda moment: moment.year,
}


def _value_test(value: Any) -> Callable[[Any], bool]:
    if isinstance(value, SigmaTimestampPart):  # before SigmaNumber: it is one
        return _timestamp_part(value)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return lambda actual: _in_network(str(actual), network)
    if isinstance(value, SigmaCompareExpression):
        compare = _COMPARE[value.op]
        bound = float(value.number.number)
        return lambda actual: (number := _number(actual)) is not None and compare(number, bound)
    if isinstance(value, SigmaNumber):
        expected = value.number
        return lambda actual: _number(actual) == expected
    if isinstance(value, SigmaBool):
        wanted = value.boolean
        return lambda actual: actual is wanted or str(actual).lower() == str(wanted).lower()
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for regex_flag in value.flags:
            flags |= _REGEX_FLAGS.get(regex_flag, 0)
        pattern = re.compile(str(value.regexp), flags)
        return lambda actual: pattern.search(_text(actual)) is not None
    if isinstance(value, SigmaString):
        return _string_test(value, cased=isinstance(value, SigmaCasedString))
    raise UnsupportedRuleError(f"value type {type(value).__name__} is not supported")


def _string_test(value: SigmaString, *, cased: bool) -> Callable[[Any], bool]:
    parts = value.s
    odd = [p for p in parts if not isinstance(p, str | SpecialChars)]
    if odd:  # a placeholder (the `expand` modifier) needs a processing pipeline
        raise UnsupportedRuleError(f"placeholder {odd[0]} is not supported: give the values")
    plain = [p for p in parts if isinstance(p, str)]
    fold = (lambda s: s) if cased else str.lower
    multi = SpecialChars.WILDCARD_MULTI
    if not value.contains_special():
        expected = fold("".join(plain))
        return lambda actual: fold(_text(actual)) == expected
    # The common shapes (prefix*, *suffix, *inner*) without a regex.
    if len(parts) == 2 and parts[1] is multi and isinstance(parts[0], str):
        prefix = fold(parts[0])
        return lambda actual: fold(_text(actual)).startswith(prefix)
    if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        suffix = fold(parts[1])
        return lambda actual: fold(_text(actual)).endswith(suffix)
    if len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
        inner = fold(parts[1])
        return lambda actual: inner in fold(_text(actual))
    regex = "".join(
        re.escape(p) if isinstance(p, str) else (".*" if p is multi else ".") for p in parts
    )
    pattern = re.compile(f"^{regex}$", re.DOTALL | (0 if cased else re.IGNORECASE))
    return lambda actual: pattern.match(_text(actual)) is not None


def _text(actual: Any) -> str:
    if isinstance(actual, bool):
        return "true" if actual else "false"
    return actual if isinstance(actual, str) else str(actual)


def _number(actual: Any) -> float | int | None:
    if isinstance(actual, bool):
        return None
    if isinstance(actual, int | float):
        return actual
    if isinstance(actual, str):
        try:
            return float(actual) if "." in actual else int(actual)
        except ValueError:
            return None
    return None


@lru_cache(maxsize=65_536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_network(text: str, network: Any) -> bool:
    address = _address(text)
    return address is not None and address.version == network.version and address in network
