"""Online anomaly detection on the flow stream: per flow, and per source host and minute.

:class:`FlowDetector` judges each flow on its own feature vector
(:func:`scoring.features.flow_features`). :class:`HostMinuteDetector` gathers each source
host's flows by minute of ``event.end`` and judges the minute's behaviour (flows, distinct
destinations and ports, failed-connection ratio, bytes out, distinct DNS names) when the
minute is over. Both keep one :class:`~scoring.guarded.GuardedHalfSpaceTrees` per sensor
(networks differ; one agency's normal is another's anomaly), so each warms up, thresholds and
learns on its own sensor's traffic.

Time is the records' own (``event.end``): a minute is over when the sensor's records have
reached ``grace`` seconds past its end, so a replayed capture is judged as it was recorded.
Late records (their minute already judged) count towards the host's oldest open minute.

All state is bounded: at most ``max_models`` sensors (least recently active goes), at most
``max_hosts`` hosts per open minute; both count what they drop. :class:`AnomalyDetectors`
bundles the two for the service; :mod:`scoring.state` saves and restores it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from scoring.beacon import BeaconDetector
from scoring.features import FLOW_FEATURES, HOST_FEATURES, Feature, HostMinute, flow_features
from scoring.guarded import Deviation, GuardedHalfSpaceTrees, Verdict
from sensors.wire import from_ns, parse_time, to_ns

MAX_EVIDENCE: Final = 50  # event ids a host-minute finding keeps
MINUTE_NS: Final = 60 * 1_000_000_000


@dataclass(frozen=True)
class DetectorConfig:
    """The parameters of one detector (apart from what it learns). The defaults were chosen
    by measuring quality and speed together: ``bench/detect.py``, ``bench/RESULTS.md``."""

    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    warm_up: int = 1000
    warm_up_seconds: float = 600.0
    """Besides ``warm_up`` points, this much event time from a sensor's first record: a
    sensor's first minutes need not show its whole mix (UDP flows, for one, are exported
    only when they go idle, two minutes after TCP flows that closed)."""
    learn_below: float = 0.99
    alert_above: float = 0.999
    seed: int = 42
    learn_every: int = 1  # learn one in this many unflagged points (all are scored)
    explain: int = 3
    min_deviation: float = 3.0
    """A point above the score threshold alerts only if some feature is this many standard
    deviations from its learned mean: the quantile threshold alone passes a fixed share of
    perfectly ordinary traffic (0.1% of a million flows a day is a thousand alerts)."""
    max_models: int = 256

    def model(self, features: tuple[Feature, ...]) -> GuardedHalfSpaceTrees:
        """A fresh model with these parameters, for one sensor."""
        return GuardedHalfSpaceTrees(
            features,
            n_trees=self.n_trees,
            height=self.height,
            window_size=self.window_size,
            warm_up=self.warm_up,
            learn_below=self.learn_below,
            alert_above=self.alert_above,
            seed=self.seed,
            learn_every=self.learn_every,
        )


FLOW_CONFIG: Final = DetectorConfig(learn_every=2)
"""Flows are many: learning every other one costs nothing measurable on KDD99 HTTP (ROC-AUC
0.998 either way; SMTP 0.88 -> 0.85) and takes a fifth off the detector's per-record cost."""
HOST_CONFIG: Final = DetectorConfig(warm_up=500, alert_above=0.995)
"""A host-minute is a summary; there are fewer of them, and each matters more."""


@dataclass(frozen=True)
class AnomalyFinding:
    """One anomaly: which detector, about what, how unusual, and why."""

    detector: str  # "flow" or "host-minute"
    sensor: str
    entity: str
    score: float
    threshold: float
    severity: str
    first_seen: datetime
    last_seen: datetime
    event_ids: tuple[str, ...]
    deviations: tuple[Deviation, ...]


@dataclass
class DetectorCounters:
    records: int = 0
    records_without_time: int = 0
    findings: int = 0
    not_deviating: int = 0  # above the score threshold, but no feature far from usual
    models_evicted: int = 0
    hosts_dropped: int = 0
    late_records: int = 0


def severity(verdict: Verdict) -> str:
    """``high`` in the upper half of the range above the threshold, else ``medium``."""
    if verdict.score >= verdict.threshold + (1.0 - verdict.threshold) / 2:
        return "high"
    return "medium"


def _deviations(
    model: GuardedHalfSpaceTrees,
    x: Mapping[str, float],
    config: DetectorConfig,
    counters: DetectorCounters,
) -> tuple[Deviation, ...] | None:
    """The explanation of an alert, or None if no feature deviates enough to report it."""
    deviations = model.explain(x, config.explain)
    if not deviations or abs(deviations[0].z) < config.min_deviation:  # furthest first
        counters.not_deviating += 1
        return None
    return deviations


class _PerSensor:
    """One model per sensor, least recently active evicted past ``max_models``."""

    def __init__(
        self, features: tuple[Feature, ...], config: DetectorConfig, counters: DetectorCounters
    ) -> None:
        self.features = features
        self.config = config
        self.counters = counters
        self.models: OrderedDict[str, GuardedHalfSpaceTrees] = OrderedDict()
        self.span_ns: dict[str, tuple[int, int]] = {}  # first and last event time per sensor

    def warming(self, sensor: str, ns: int) -> bool:
        """Whether ``sensor`` is still in its warm-up time, as of event time ``ns``."""
        first, last = self.span_ns.get(sensor, (ns, ns))
        self.span_ns[sensor] = (min(first, ns), max(last, ns))
        return max(last, ns) - first < self.config.warm_up_seconds * 1e9

    def warm(self) -> list[str]:
        """The sensors whose models may alert."""
        needed = self.config.warm_up_seconds * 1e9
        warm = []
        for sensor, model in self.models.items():
            first, last = self.span_ns.get(sensor, (0, 0))
            if model.warmed_up and last - first >= needed:
                warm.append(sensor)
        return sorted(warm)

    def model(self, sensor: str) -> GuardedHalfSpaceTrees:
        found = self.models.get(sensor)
        if found is not None:
            self.models.move_to_end(sensor)
            return found
        if len(self.models) >= self.config.max_models:
            evicted, _ = self.models.popitem(last=False)
            self.span_ns.pop(evicted, None)
            self.counters.models_evicted += 1
        created = self.models[sensor] = self.config.model(self.features)
        return created


class FlowDetector:
    """Judges every flow; finds flows unlike their sensor's usual ones."""

    name: Final = "flow"

    def __init__(self, config: DetectorConfig = FLOW_CONFIG) -> None:
        self.config = config
        self.counters = DetectorCounters()
        self._models = _PerSensor(FLOW_FEATURES, config, self.counters)

    def process(self, record: Mapping[str, Any]) -> AnomalyFinding | None:
        self.counters.records += 1
        sensor = str(record.get("observer.name", ""))
        start = parse_time(record.get("event.start"))
        end = parse_time(record.get("event.end")) or start
        if start is None or end is None:
            self.counters.records_without_time += 1
            return None
        x = flow_features(record)
        model = self._models.model(sensor)
        verdict = model.judge(x, self._models.warming(sensor, to_ns(end)))
        if not verdict.alert:
            return None
        deviations = _deviations(model, x, self.config, self.counters)
        if deviations is None:
            return None
        self.counters.findings += 1
        return AnomalyFinding(
            detector=self.name,
            sensor=sensor,
            entity=str(record.get("source.ip", "unknown")),
            score=round(verdict.score, 4),
            threshold=round(verdict.threshold, 4),
            severity=severity(verdict),
            first_seen=start,
            last_seen=end,
            event_ids=(str(record.get("event.id", "")),),
            deviations=deviations,
        )

    def models(self) -> Mapping[str, GuardedHalfSpaceTrees]:
        return self._models.models

    def warm(self) -> list[str]:
        return self._models.warm()


@dataclass
class _SensorMinutes:
    watermark_ns: int = 0
    minutes: dict[int, dict[str, HostMinute]] = field(default_factory=dict)


class HostMinuteDetector:
    """Gathers each source host's flows by minute and judges each minute once it is over."""

    name: Final = "host-minute"

    def __init__(
        self,
        config: DetectorConfig = HOST_CONFIG,
        grace_seconds: float = 30.0,
        max_hosts: int = 100_000,
    ) -> None:
        self.config = config
        self.grace_ns = int(grace_seconds * 1e9)
        self.max_hosts = max_hosts
        self.counters = DetectorCounters()
        self._models = _PerSensor(HOST_FEATURES, config, self.counters)
        self._sensors: dict[str, _SensorMinutes] = {}

    def process(self, record: Mapping[str, Any]) -> list[AnomalyFinding]:
        """Add ``record`` to its host's minute; judge the minutes it shows to be over."""
        self.counters.records += 1
        host = record.get("source.ip")
        moment = parse_time(record.get("event.end")) or parse_time(record.get("event.start"))
        if moment is None or host is None:
            self.counters.records_without_time += 1
            return []
        sensor = str(record.get("observer.name", ""))
        state = self._sensors.get(sensor)
        if state is None:
            state = self._sensors[sensor] = _SensorMinutes()
        ns = to_ns(moment)
        minute = ns - ns % MINUTE_NS
        if state.minutes and minute < min(state.minutes):
            self.counters.late_records += 1
            minute = min(state.minutes)
        elif not state.minutes and minute + MINUTE_NS + self.grace_ns <= state.watermark_ns:
            self.counters.late_records += 1  # everything up to here has been judged
            minute = state.watermark_ns - state.watermark_ns % MINUTE_NS
        hosts = state.minutes.setdefault(minute, {})
        summary = hosts.get(str(host))
        if summary is None:
            if len(hosts) >= self.max_hosts:
                self.counters.hosts_dropped += 1
                return []
            summary = hosts[str(host)] = HostMinute()
        summary.add(record, ns, MAX_EVIDENCE)
        state.watermark_ns = max(state.watermark_ns, ns)
        return self._close(sensor, state, state.watermark_ns - self.grace_ns)

    def flush(self) -> list[AnomalyFinding]:
        """Judge every open minute now (the end of a replay, or a shutdown)."""
        found: list[AnomalyFinding] = []
        for sensor, state in self._sensors.items():
            found.extend(self._close(sensor, state, None))
        return found

    def _close(self, sensor: str, state: _SensorMinutes, until: int | None) -> list[AnomalyFinding]:
        found: list[AnomalyFinding] = []
        for minute in sorted(state.minutes):
            if until is not None and minute + MINUTE_NS > until:
                break
            hosts = state.minutes.pop(minute)
            model = self._models.model(sensor)
            warming = self._models.warming(sensor, minute + MINUTE_NS)
            for host, summary in hosts.items():
                finding = self._judge(model, sensor, host, summary, warming)
                if finding is not None:
                    found.append(finding)
        return found

    def _judge(
        self,
        model: GuardedHalfSpaceTrees,
        sensor: str,
        host: str,
        summary: HostMinute,
        warming: bool,
    ) -> AnomalyFinding | None:
        x = summary.features()
        verdict = model.judge(x, warming)
        if not verdict.alert:
            return None
        deviations = _deviations(model, x, self.config, self.counters)
        if deviations is None:
            return None
        self.counters.findings += 1
        return AnomalyFinding(
            detector=self.name,
            sensor=sensor,
            entity=host,
            score=round(verdict.score, 4),
            threshold=round(verdict.threshold, 4),
            severity=severity(verdict),
            first_seen=from_ns(summary.first_ns),
            last_seen=from_ns(summary.last_ns),
            event_ids=tuple(summary.event_ids),
            deviations=deviations,
        )

    def models(self) -> Mapping[str, GuardedHalfSpaceTrees]:
        return self._models.models

    def warm(self) -> list[str]:
        return self._models.warm()


class AnomalyDetectors:
    """The behavioural detectors over one stream of flow records, as the service runs them
    and checkpoints them together: per flow, per host-minute, and beaconing
    (:mod:`scoring.beacon`, which the caller asks through :attr:`beacon`)."""

    def __init__(
        self,
        flow: FlowDetector | None = None,
        host: HostMinuteDetector | None = None,
        beacon: BeaconDetector | None = None,
    ) -> None:
        self.flow = flow or FlowDetector()
        self.host = host or HostMinuteDetector()
        self.beacon = beacon or BeaconDetector()

    def process_all(self, records: Iterable[Mapping[str, Any]]) -> list[AnomalyFinding]:
        found: list[AnomalyFinding] = []
        for record in records:
            if record.get("event.dataset") == "trustwatch.scan":
                continue  # scan results are not traffic
            finding = self.flow.process(record)
            if finding is not None:
                found.append(finding)
            found.extend(self.host.process(record))
        return found

    def flush(self) -> list[AnomalyFinding]:
        return self.host.flush()

    def health(self) -> dict[str, Any]:
        flow, host = self.flow.models(), self.host.models()
        return {
            "sensors": len(set(flow) | set(host)),
            "warming_up": sorted(set(flow) - set(self.flow.warm())),
            "flows_judged": self.flow.counters.records,
            "findings": self.flow.counters.findings + self.host.counters.findings,
            "beacon_keys": len(self.beacon),
        }
