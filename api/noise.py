"""Noise control, in the spirit of Prometheus Alertmanager: silences, inhibition, suppressions.

All three keep the alert itself: the SOC still sees it. What they stop is different:

- A **silence** (an analyst's, with an author, a comment and an expiry) mutes the *delivery*
  of alerts whose fields match all its matchers while it is active.
- **Inhibition** mutes the delivery of an alert below critical while an open critical alert
  is about one of the same hosts: the coordination centre hears about the worst thing on a
  host, not the noise around it. An alert's hosts are the IP addresses and host names among
  the words of its entity (a scan's entity is ``"<scanner> <target>"``), so a critical alert
  about either host inhibits.
- A **suppression**, made from a false-positive verdict, stops the detection of the same
  source about the same entity from opening an alert again (optionally only when the listed
  evidence values are the same too: narrower). It expires; each detection it swallows is
  counted on it, so a suppression that hides a real attack shows its hits.

Pure: the store keeps them and applies them inside its transactions.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.severity import rank

MatchField = Literal["source", "rule_id", "title", "severity", "entity", "agency", "system_id"]
MatchOp = Literal["=", "!=", "=~", "!~"]
MAX_MATCHERS: Final = 16
MAX_PATTERN_CHARS: Final = 200
MAX_SUPPRESSION_FIELDS: Final = 16
MAX_MATCHED_CHARS: Final = 1024  # far beyond any entity or title; bounds the work per match
# A host name as an entity word: labels of letters, digits, '-' and '_', at least one dot.
_HOSTNAME: Final = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_-]{1,63}\.)+[A-Za-z0-9_-]{1,63}\.?")


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's 422, not a line on stderr
    return options


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """A silence's regular expression, compiled once, in RE2: linear time whatever the pattern
    and the text (as Alertmanager's), so no pattern can stall the service. Raises
    ``re2.error`` for a pattern RE2 refuses."""
    return re2.compile(pattern, _re2_options())


class Matcher(BaseModel):
    """``field op value``: equality, or a regular expression that must match the whole value.

    >>> Matcher(field="entity", op="=~", value=r"10\\.0\\..*").matches({"entity": "10.0.0.1"})
    True
    >>> Matcher(field="agency", op="!=", value="MOF").matches({"agency": None})
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: MatchField
    op: MatchOp = "="
    value: str = Field(max_length=MAX_PATTERN_CHARS)

    @field_validator("value")
    @classmethod
    def _valid_pattern(cls, value: str, info: Any) -> str:
        if info.data.get("op") in {"=~", "!~"}:
            try:
                compile_pattern(value)
            except re2.error as exc:
                reason = (
                    exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
                )
                raise ValueError(f"not a regular expression (RE2 syntax): {reason}") from exc
        return value

    def matches(self, fields: Mapping[str, object]) -> bool:
        actual = fields.get(self.field)
        text = "" if actual is None else str(actual)[:MAX_MATCHED_CHARS]
        if self.op == "=":
            return text == self.value
        if self.op == "!=":
            return text != self.value
        found = compile_pattern(self.value).fullmatch(text) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str
    created_at: datetime
    expired_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, fields: Mapping[str, object]) -> bool:
        return all(matcher.matches(fields) for matcher in self.matchers)


@dataclass(frozen=True)
class Suppression:
    id: str
    source: str
    entity: str
    values: dict[str, Any]
    """Evidence values that must be equal too (empty: any detection of source about entity)."""
    alert_id: str
    author: str
    created_at: datetime
    expires_at: datetime
    hits: int = 0
    last_hit: datetime | None = None

    def matches(self, source: str, entity: str, values: Mapping[str, Any]) -> bool:
        """Whether a detection is the pattern this suppression was made for.

        >>> from datetime import UTC
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> s = Suppression("s", "rule:scan", "10.0.0.9", {"destination.port": 445}, "a", "x", t, t)
        >>> s.matches("rule:scan", "10.0.0.9", {"destination.port": 445, "count": 3})
        True
        >>> s.matches("rule:scan", "10.0.0.9", {"destination.port": 22})
        False
        """
        return (
            source == self.source
            and entity == self.entity
            and all(name in values and values[name] == want for name, want in self.values.items())
        )


def hosts(entity: str) -> frozenset[str]:
    """The hosts an alert is about: the words of its entity that are IP addresses or host
    names (a rule's entity may also carry a port or other values of its group-by fields).

    >>> sorted(hosts("10.0.0.66 10.0.0.2 22"))
    ['10.0.0.2', '10.0.0.66']
    >>> sorted(hosts("Portal.Example.gov. None unknown"))
    ['portal.example.gov']
    """
    found = set()
    for word in entity.split():
        try:
            found.add(str(ipaddress.ip_address(word)))
        except ValueError:
            if _HOSTNAME.fullmatch(word) and not word.replace(".", "").isdigit():
                found.add(word.lower().rstrip("."))
    return frozenset(found)


def inhibitor(
    severity: str, entity: str, criticals: Iterable[tuple[str, str]], alert_id: str
) -> str | None:
    """The id of an open critical alert that inhibits this one (of ``severity`` about
    ``entity``), or ``None``. ``criticals`` are (id, entity) of the open critical alerts.

    >>> inhibitor("high", "10.0.0.66 10.0.0.2", [("c1", "10.0.0.2")], "a1")
    'c1'
    >>> inhibitor("critical", "10.0.0.2", [("c1", "10.0.0.2")], "a1") is None
    True
    """
    if rank(severity) >= rank("critical"):
        return None
    mine = hosts(entity)
    for critical_id, critical_entity in criticals:
        if critical_id != alert_id and mine & hosts(critical_entity):
            return critical_id
    return None
