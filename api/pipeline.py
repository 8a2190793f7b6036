"""What happens to records after validation: rules and anomaly detectors turn new ones into
detections, which the store makes alerts.

Built at start-up from the settings: the rule pack shipped in ``rules/pack/`` and, if set, the
operator's ``rules_dir``; and the anomaly detectors of :mod:`scoring.anomaly`. Rule problems
are logged (file, line, reason) and counted on ``/healthz``; the other rules run. The store
calls :meth:`Pipeline.detect` inside the ingest transaction (one writer at a time); a lock
keeps the detectors still while a checkpoint (:mod:`api.checkpoint`) copies their state.

Rule files reload without a restart: at most every :data:`RELOAD_CHECK` seconds, the next
batch checks whether any rule file changed (path, size, modification time); if so the pack is
loaded again and the engine replaced. Correlations whose definition did not change keep their
windows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from rules.engine import Detection, RuleEngine
from rules.loader import RULE_SUFFIXES, RulePack, load_rules
from scoring.anomaly import AnomalyDetectors, AnomalyFinding
from scoring.errors import StateError
from scoring.state import dumps, loads

log = logging.getLogger(__name__)

BUILTIN_RULES: Final = Path(__file__).resolve().parent.parent / "rules" / "pack"
RELOAD_CHECK: Final = 5.0  # seconds between looks at the rule files
ANOMALY_TITLES: Final = {
    "flow": "Unusual flow",
    "host-minute": "Unusual host behaviour in one minute",
}


class Pipeline:
    def __init__(
        self,
        pack: RulePack,
        paths: tuple[Path, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
        anomaly: AnomalyDetectors | None = None,
    ) -> None:
        self.pack = pack
        self.engine = RuleEngine(pack)
        self.paths = paths
        self.reloads = 0
        self.anomaly = anomaly
        self.anomaly_state_note = "off" if anomaly is None else "fresh"
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._fingerprint = _fingerprint(paths)
        self._next_check = monotonic() + RELOAD_CHECK

    @classmethod
    def from_directories(cls, extra: Path | None, *, anomaly: bool = True) -> Pipeline:
        paths = (BUILTIN_RULES, *((extra,) if extra is not None else ()))
        return cls(_load(paths), paths, anomaly=AnomalyDetectors() if anomaly else None)

    def detect(self, records: list[dict[str, Any]]) -> list[Detection]:
        with self._lock:
            self.maybe_reload()
            found = self.engine.evaluate_all(records)
            if self.anomaly is not None:
                found.extend(_from_anomaly(f) for f in self.anomaly.process_all(records))
            return found

    def __getstate__(self) -> dict[str, Any]:
        """A copy (``copy.deepcopy``: the evaluation harness tries each attack on a copy of
        one warmed-up pipeline) gets a lock of its own."""
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def anomaly_state(self) -> bytes | None:
        """The anomaly detectors' state, to save (None when anomaly detection is off)."""
        with self._lock:
            return None if self.anomaly is None else dumps(self.anomaly)

    def restore_anomaly(self, data: bytes) -> str | None:
        """Take the detectors saved in ``data``; or say why not (the current ones stay)."""
        if self.anomaly is None:
            return None
        try:
            restored = loads(data, AnomalyDetectors)
        except StateError as exc:
            return str(exc)
        with self._lock:
            self.anomaly = restored
            self.anomaly_state_note = "restored"
        return None

    def anomaly_started_fresh(self, reason: str | None) -> None:
        if self.anomaly is not None:
            self.anomaly_state_note = "fresh" if reason is None else f"fresh: {reason}"

    def maybe_reload(self) -> bool:
        """Reload the rules if a file changed since the last look; say whether it did."""
        now = self._monotonic()
        if not self.paths or now < self._next_check:
            return False
        self._next_check = now + RELOAD_CHECK
        fingerprint = _fingerprint(self.paths)
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        pack = _load(self.paths)
        engine = RuleEngine(pack)
        engine.adopt_windows(self.engine)
        self.pack, self.engine = pack, engine
        self.reloads += 1
        return True

    def health(self) -> dict[str, Any]:
        anomaly: dict[str, Any] = {"state": self.anomaly_state_note}
        if self.anomaly is not None:
            with self._lock:
                anomaly |= self.anomaly.health()
        return {
            "rules": len(self.pack.rules),
            "correlations": len(self.pack.correlations),
            "rule_problems": len(self.pack.problems),
            "anomaly": anomaly,
        }


def _from_anomaly(finding: AnomalyFinding) -> Detection:
    """An anomaly as a detection: the alert model is the same for rules and detectors."""
    explanation = [
        {"feature": d.feature, "value": d.value, "typical": d.typical, "z": d.z}
        for d in finding.deviations
    ]
    return Detection(
        source=f"anomaly:{finding.detector}",
        rule_id=f"anomaly-{finding.detector}",
        title=ANOMALY_TITLES.get(finding.detector, f"Anomaly ({finding.detector})"),
        level=finding.severity,
        tags=(),
        entity=finding.entity,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
        count=1,
        event_ids=finding.event_ids,
        values={
            "observer.name": finding.sensor,
            "score": finding.score,
            "threshold": finding.threshold,
            "explanation": explanation,
        },
    )


def _load(paths: tuple[Path, ...]) -> RulePack:
    pack = load_rules(paths)
    for problem in pack.problems:
        log.warning("rule problem: %s", problem)
    log.info(
        "rules loaded",
        extra={
            "rules": len(pack.rules),
            "correlations": len(pack.correlations),
            "problems": len(pack.problems),
        },
    )
    return pack


def _fingerprint(paths: tuple[Path, ...]) -> frozenset[tuple[str, int, int]]:
    """Every rule file's path, size and modification time: a change in any is a reload."""
    found: set[tuple[str, int, int]] = set()
    for root in paths:
        candidates = root.rglob("*") if root.is_dir() else [root]
        for path in candidates:
            if path.suffix in RULE_SUFFIXES:
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.add((str(path), stat.st_size, stat.st_mtime_ns))
    return frozenset(found)
