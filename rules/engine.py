"""The in-stream rule engine: events in, detections out, in event time, with bounded state.

Each event is matched against every single-event rule. A matching rule yields a detection of
its own (unless a correlation that uses it says ``generate: false``) and feeds the windows of
the correlations that refer to it: one window per correlation and group-by values, holding the
events of the last ``timespan`` (by the events' own ``event.start``). When a correlation's
condition holds, it yields a detection with the evidence of its window, and the window starts
over: the next detection needs a fresh set of events, and the alert layer merges repeats.

State is bounded: at most :data:`MAX_GROUPS` windows per correlation (the least recently used
goes) and :data:`MAX_WINDOW` events per window (the oldest go); both are counted.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rules.correlation import EVENT_COUNT, TEMPORAL, TEMPORAL_ORDERED, VALUE_COUNT, Correlation
from rules.loader import Rule, RulePack
from sensors.wire import from_ns, parse_time, to_ns

MAX_GROUPS: Final = 50_000
MAX_WINDOW: Final = 10_000
MAX_EVIDENCE: Final = 50  # event ids kept per detection; the count is exact

Event = Mapping[str, Any]
_ENTITY_FIELDS: Final = ("source.ip", "url.domain", "destination.ip")


@dataclass(frozen=True)
class Detection:
    """What fired, about what, when, and why."""

    source: str  # "rule:<id>"
    rule_id: str
    title: str
    level: str
    tags: tuple[str, ...]
    entity: str
    first_seen: datetime
    last_seen: datetime
    count: int
    event_ids: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EngineCounters:
    events: int = 0
    events_without_time: int = 0
    detections: int = 0
    groups_evicted: int = 0
    window_events_dropped: int = 0


@dataclass
class _Entry:
    ts: int
    event_id: str
    value: Any
    rule: int  # index of the matched rule in the correlation's list


class RuleEngine:
    def __init__(self, pack: RulePack) -> None:
        self.rules = pack.rules
        self.correlations = pack.correlations
        self.counters = EngineCounters()
        silent = {rid for c in pack.correlations if not c.generate for rid in c.rule_ids}
        self._alerting = [rule.id not in silent for rule in pack.rules]
        self._users: dict[str, list[Correlation]] = {}
        for correlation in pack.correlations:
            for rule_id in dict.fromkeys(correlation.rule_ids):
                self._users.setdefault(rule_id, []).append(correlation)
        self._windows: dict[str, OrderedDict[tuple[Any, ...], deque[_Entry]]] = {
            c.id: OrderedDict() for c in pack.correlations
        }

    def adopt_windows(self, previous: RuleEngine) -> None:
        """Take over the windows of ``previous``'s correlations that this engine has unchanged
        (a rule reload must not forget a scan half-way through)."""
        old = {c.id: c for c in previous.correlations}
        for correlation in self.correlations:
            if old.get(correlation.id) == correlation:
                self._windows[correlation.id] = previous._windows[correlation.id]

    def evaluate_all(self, events: Iterable[Event]) -> list[Detection]:
        found: list[Detection] = []
        for event in events:
            found.extend(self.evaluate(event))
        return found

    def evaluate(self, event: Event) -> list[Detection]:
        """The detections one event causes (usually none)."""
        self.counters.events += 1
        found: list[Detection] = []
        moment: datetime | None = None
        for index, rule in enumerate(self.rules):
            if not rule.matches(event):
                continue
            if moment is None:
                moment = _event_time(event)
                if moment is None:
                    self.counters.events_without_time += 1
                    return found
            if self._alerting[index]:
                found.append(_single(rule, event, moment))
            for correlation in self._users.get(rule.id, ()):
                detection = self._correlate(correlation, rule.id, event, moment)
                if detection is not None:
                    found.append(detection)
        self.counters.detections += len(found)
        return found

    def _correlate(
        self, correlation: Correlation, rule_id: str, event: Event, moment: datetime
    ) -> Detection | None:
        group = tuple(event.get(name) for name in correlation.group_by)
        if any(value is None for value in group):
            return None  # the event does not say what to group it by
        windows = self._windows[correlation.id]
        window = windows.get(group)
        if window is None:
            if len(windows) >= MAX_GROUPS:
                windows.popitem(last=False)
                self.counters.groups_evicted += 1
            window = windows[group] = deque()
        else:
            windows.move_to_end(group)
        ts = to_ns(moment)
        horizon = ts - correlation.timespan_ns
        while window and window[0].ts < horizon:
            window.popleft()
        if len(window) >= MAX_WINDOW:
            window.popleft()
            self.counters.window_events_dropped += 1
        value = event.get(correlation.field) if correlation.field else None
        positions = [i for i, rid in enumerate(correlation.rule_ids) if rid == rule_id]
        window.append(_Entry(ts, str(event.get("event.id", "")), value, positions[0]))
        if not _holds(correlation, window):
            return None
        entries = list(window)
        window.clear()
        values: dict[str, Any] = dict(zip(correlation.group_by, group, strict=True))
        if correlation.kind == VALUE_COUNT:
            distinct = sorted({str(e.value) for e in entries if e.value is not None})
            values[f"distinct {correlation.field}"] = len(distinct)
            values[f"{correlation.field} (first 20)"] = distinct[:20]
        return Detection(
            source=f"rule:{correlation.id}",
            rule_id=correlation.id,
            title=correlation.title,
            level=correlation.level,
            tags=correlation.tags,
            entity=" ".join(str(v) for v in group) or correlation.title,
            first_seen=from_ns(entries[0].ts),
            last_seen=from_ns(entries[-1].ts),
            count=len(entries),
            event_ids=tuple(e.event_id for e in entries[:MAX_EVIDENCE]),
            values=values,
        )


def _holds(correlation: Correlation, window: deque[_Entry]) -> bool:
    kind = correlation.kind
    if kind == EVENT_COUNT:
        return _compare(correlation.operator, len(window), correlation.count)
    if kind == VALUE_COUNT:
        distinct = len({e.value for e in window if e.value is not None})
        return _compare(correlation.operator, distinct, correlation.count)
    if kind == TEMPORAL:
        return len({e.rule for e in window}) >= len(set(correlation.rule_ids))
    if kind == TEMPORAL_ORDERED:
        wanted = 0  # the rules must appear in the given order, each after the one before
        for entry in window:
            if (
                entry.rule == wanted
                or correlation.rule_ids[entry.rule] == correlation.rule_ids[wanted]
            ):
                wanted += 1
                if wanted == len(correlation.rule_ids):
                    return True
        return False
    return False


def _compare(operator: str, actual: int, bound: int) -> bool:
    if operator == "gt":
        return actual > bound
    if operator == "gte":
        return actual >= bound
    return actual == bound


def _single(rule: Rule, event: Event, moment: datetime) -> Detection:
    return Detection(
        source=f"rule:{rule.id}",
        rule_id=rule.id,
        title=rule.title,
        level=rule.level,
        tags=rule.tags,
        entity=_entity(event),
        first_seen=moment,
        last_seen=moment,
        count=1,
        event_ids=(str(event.get("event.id", "")),),
        values={name: event.get(name) for name in sorted(rule.fields)},
    )


def _entity(event: Event) -> str:
    for name in _ENTITY_FIELDS:
        value = event.get(name)
        if value is not None:
            return str(value)
    return "unknown"


def _event_time(event: Event) -> datetime | None:
    return parse_time(event.get("event.start"))
