"""What happens to records after validation: rules and anomaly detectors turn new ones into
detections, which the store makes alerts.

Built at start-up from the settings: the rule pack shipped in ``rules/pack/`` and, if set, the
operator's ``rules_dir``; the anomaly detectors of :mod:`scoring.anomaly`; and the site
streams of :mod:`scoring.sitestream`. Rule problems are logged (file, line, reason) and counted
on ``/healthz``; the other rules run. The store calls :meth:`Pipeline.detect` inside the ingest
transaction (one writer at a time); a lock keeps the detectors still while a checkpoint
(:mod:`api.checkpoint`) copies their state.

The site streams are always on, whatever ``anomaly_detection`` says: they are the trust
rating's availability, response time and content drift (:meth:`Pipeline.site_stats`), and
their early warnings (site down, certificate expiring, defacement suspected, response time
rising) are judgements on scan results, not a behavioural model that needs tuning per network.
Each kind is its own alert source, ``anomaly:site.<kind>``: the store merges repeats and
suppresses false positives by source and entity, and an outage must not disappear into an open
"response time rising" alert about the same site, nor be silenced by a verdict on a
certificate warning.

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
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from rules.engine import Detection, RuleEngine
from rules.errors import RuleFileError
from rules.intel import IntelFingerprint, IntelList, IntelMatcher, intel_fingerprint, load_intel
from rules.loader import RULE_SUFFIXES, RulePack, load_rules
from scoring.anomaly import AnomalyDetectors, AnomalyFinding
from scoring.beacon import BeaconFinding
from scoring.errors import StateError
from scoring.sitestream import SiteEvent, SiteEventKind, SiteStreams
from scoring.state import dumps, loads
from scoring.trust_model import StreamStats

log = logging.getLogger(__name__)

BUILTIN_RULES: Final = Path(__file__).resolve().parent.parent / "rules" / "pack"
COMMUNITY_RULES: Final = BUILTIN_RULES.parent / "community"
"""Filled by ``trustwatch rules import-sigmahq`` from a pinned SigmaHQ commit (README there)."""
RELOAD_CHECK: Final = 5.0  # seconds between looks at the rule files
ANOMALY_TITLES: Final = {
    "flow": "Unusual flow",
    "host-minute": "Unusual host behaviour in one minute",
}
BEACON_TITLE: Final = "Beaconing: connections at regular intervals to one destination"
BEACON_TAGS: Final = ("attack.command-and-control", "attack.t1071", "attack.t1573")
SITE_TAGS: Final = {
    SiteEventKind.SITE_DOWN: ("attack.impact", "attack.t1499"),  # endpoint denial of service
    SiteEventKind.CERTIFICATE_EXPIRING: (),
    SiteEventKind.DEFACEMENT_SUSPECTED: ("attack.impact", "attack.t1491.002"),  # external
    SiteEventKind.RESPONSE_TIME_DRIFT: (),
}


class Pipeline:
    def __init__(
        self,
        pack: RulePack,
        paths: tuple[Path, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
        anomaly: AnomalyDetectors | None = None,
        intel: IntelList | None = None,
        sites: SiteStreams | None = None,
    ) -> None:
        self.pack = pack
        self.engine = RuleEngine(pack)
        self.paths = paths
        self.reloads = 0
        self.intel = None if intel is None else IntelMatcher(intel)
        self._intel_seen: IntelFingerprint | None = None if intel is None else intel.fingerprint
        self.anomaly = anomaly
        self.anomaly_state_note = "off" if anomaly is None else "fresh"
        self.sites = SiteStreams() if sites is None else sites
        self.sites_state_note = "fresh"
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._fingerprint = _fingerprint(paths)
        self._next_check = monotonic() + RELOAD_CHECK

    @classmethod
    def from_directories(
        cls, extra: Path | None, *, anomaly: bool = True, intel: Path | None = None
    ) -> Pipeline:
        """The pipeline the settings describe; raises :class:`RuleFileError` if ``intel``
        names a file that cannot be read as a list."""
        paths = (BUILTIN_RULES, COMMUNITY_RULES, *((extra,) if extra is not None else ()))
        return cls(
            _load(paths),
            paths,
            anomaly=AnomalyDetectors() if anomaly else None,
            intel=None if intel is None else _load_intel(intel),
        )

    def detect(self, records: list[dict[str, Any]]) -> list[Detection]:
        with self._lock:
            self.maybe_reload()
            found = self.engine.evaluate_all(records)
            if self.intel is not None:
                found.extend(self.intel.evaluate_all(records))
            if self.anomaly is not None:
                found.extend(detection_from_anomaly(f) for f in self.anomaly.process_all(records))
                found.extend(_from_beacon(f) for f in self.anomaly.beacon.observe_all(records))
            found.extend(detection_from_site(e) for e in self.sites.observe_all(records))
            return found

    def site_stats(self, domain: str, now: datetime) -> StreamStats:
        """``domain``'s streaming statistics at ``now``, for the trust rating."""
        with self._lock:
            return self.sites.stats(domain, now)

    def _maybe_reload_intel(self) -> None:
        if self.intel is None:
            return
        if self.intel.intel.fingerprint is None:
            return
        path = Path(self.intel.intel.fingerprint.path)
        seen = intel_fingerprint(path)
        if seen is None or seen == self._intel_seen:
            return  # unchanged, or gone for now (a feed being replaced): keep what we have
        self._intel_seen = seen
        try:
            self.intel = IntelMatcher(_load_intel(path))
        except RuleFileError as exc:
            log.error("threat-intel list not reloaded, old one kept", extra={"error": str(exc)})

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

    def site_state(self) -> bytes:
        """The site streams' state, to save."""
        with self._lock:
            return dumps(self.sites)

    def restore_sites(self, data: bytes) -> str | None:
        """Take the site streams saved in ``data``; or say why not (the current ones stay)."""
        try:
            restored = loads(data, SiteStreams)
        except StateError as exc:
            return str(exc)
        with self._lock:
            self.sites = restored
            self.sites_state_note = "restored"
        return None

    def sites_started_fresh(self, reason: str | None) -> None:
        self.sites_state_note = "fresh" if reason is None else f"fresh: {reason}"

    def maybe_reload(self) -> bool:
        """Reload the rules (and the threat-intel list) if a file changed since the last look;
        say whether the rules did."""
        now = self._monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + RELOAD_CHECK
        self._maybe_reload_intel()
        if not self.paths:
            return False
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
        with self._lock:
            sites = {"state": self.sites_state_note, **self.sites.health()}
        health: dict[str, Any] = {
            "rules": len(self.pack.rules),
            "correlations": len(self.pack.correlations),
            "rule_problems": len(self.pack.problems),
            "anomaly": anomaly,
            "sites": sites,
        }
        if self.intel is not None:
            intel = self.intel.intel
            health["threat_intel"] = {
                "indicators": len(intel),
                "problems": len(intel.problems) + intel.problems_dropped,
            }
        return health


def detection_from_anomaly(finding: AnomalyFinding) -> Detection:
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


def _from_beacon(finding: BeaconFinding) -> Detection:
    key = finding.key
    return Detection(
        source="anomaly:beacon",
        rule_id="anomaly-beacon",
        title=BEACON_TITLE,
        level="medium",
        tags=BEACON_TAGS,
        entity=key.source,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
        count=1,
        event_ids=finding.event_ids,
        values={
            "observer.name": key.sensor,
            "destination": key.destination,
            "destination.port": key.port,
            "network.transport": key.transport,
            "check-ins": finding.connections,
            "median interval (s)": round(finding.median_interval, 3),
            "dispersion": round(finding.dispersion, 4),
            "skew": round(finding.skew, 4),
        },
    )


def detection_from_site(event: SiteEvent) -> Detection:
    """A site's early warning as a detection about the site (its domain is the entity)."""
    rule_id = f"site.{event.kind.value}"
    return Detection(
        source=f"anomaly:{rule_id}",
        rule_id=rule_id,
        title=event.title,
        level=event.severity,
        tags=SITE_TAGS[event.kind],
        entity=event.domain,
        first_seen=event.first_seen,
        last_seen=event.at,
        count=1,
        event_ids=event.event_ids,
        values={"observer.name": event.sensor, "url.domain": event.domain, **event.values},
    )


def _load_intel(path: Path) -> IntelList:
    intel = load_intel(path)
    for problem in intel.problems:
        log.warning("threat-intel problem: %s", problem)
    log.info(
        "threat-intel list loaded",
        extra={"path": str(path), "indicators": len(intel), "problems": len(intel.problems)},
    )
    return intel


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
