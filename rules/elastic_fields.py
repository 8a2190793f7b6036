"""The Elasticsearch type of each event field, read from the wire format.

A query must know a field's type: ES|QL refuses ``TO_LOWER`` on a number, Lucene a wildcard on
an ip. The wire format's JSON schema says it: integers are ``long``, addresses ``ip``,
timestamps ``date``, the rest ``keyword``; an enum or a constant also closes the set of values a
stored record can hold, which lets a case-insensitive match become an exact one.

>>> FIELD_TYPES["destination.port"], FIELD_TYPES["source.ip"].kind
(FieldType(kind='long', values=None), 'ip')
>>> sorted(FIELD_TYPES["event.dataset"].values or ())
['trustwatch.flow', 'trustwatch.scan']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sensors.wire import FlowRecord, ScanRecord

KEYWORD: Final = "keyword"
LONG: Final = "long"
DOUBLE: Final = "double"
IP: Final = "ip"
DATE: Final = "date"
BOOLEAN: Final = "boolean"
OBJECT: Final = "object"
NUMERIC: Final = frozenset({LONG, DOUBLE})


@dataclass(frozen=True)
class FieldType:
    kind: str
    values: frozenset[str] | None = None  # every value a stored record can hold, if closed


def field_types() -> dict[str, FieldType]:
    """The type of every field of the wire's records, and of those the service adds."""
    found: dict[str, FieldType] = {
        "observer.name": FieldType(KEYWORD),
        "event.ingested": FieldType(DATE),
    }
    for model in (FlowRecord, ScanRecord):
        schema = model.model_json_schema(by_alias=True)
        definitions = schema.get("$defs", {})
        for name, prop in schema["properties"].items():
            kind = _type_of(prop, definitions)
            found[name] = _either(found[name], kind) if name in found else kind
    return found


def _type_of(prop: Mapping[str, Any], definitions: Mapping[str, Any]) -> FieldType:  # noqa: PLR0911 - one return per JSON type
    if "$ref" in prop:
        return _type_of(definitions[prop["$ref"].rsplit("/", 1)[1]], definitions)
    if "anyOf" in prop:
        options = [_type_of(p, definitions) for p in prop["anyOf"] if p.get("type") != "null"]
        kind = options[0]
        for option in options[1:]:
            kind = _either(kind, option)
        return kind
    if "enum" in prop or "const" in prop:
        values = prop.get("enum", [prop.get("const")])
        if all(isinstance(v, str) for v in values):
            return FieldType(KEYWORD, frozenset(values))
    json_type = prop.get("type")
    if json_type == "integer":
        return FieldType(LONG)
    if json_type == "number":
        return FieldType(DOUBLE)
    if json_type == "boolean":
        return FieldType(BOOLEAN)
    if json_type == "string":
        form = prop.get("format")
        if form in ("ipv4", "ipv6", "ipvanyaddress"):
            return FieldType(IP)
        return FieldType(DATE) if form == "date-time" else FieldType(KEYWORD)
    return FieldType(OBJECT)


def _either(one: FieldType, other: FieldType) -> FieldType:
    """A field that holds ``one`` in some records and ``other`` in others."""
    if one.kind != other.kind:
        return FieldType(OBJECT)  # no single Elasticsearch type: nothing to query it with
    if one.values is None or other.values is None:
        return FieldType(one.kind)
    return FieldType(one.kind, one.values | other.values)


FIELD_TYPES: Final[Mapping[str, FieldType]] = field_types()
