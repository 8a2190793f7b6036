"""What happens to records after validation: the rule engine turns new ones into detections.

Built at start-up from the settings: the rule pack shipped in ``rules/pack/`` and, if set, the
operator's ``rules_dir``. Rule problems are logged (file, line, reason) and counted on
``/healthz``; the other rules run. The engine is called by the store inside the ingest
transaction (one writer at a time), so its state needs no lock of its own.

Rule files reload without a restart: at most every :data:`RELOAD_CHECK` seconds, the next
batch checks whether any rule file changed (path, size, modification time); if so the pack is
loaded again and the engine replaced. Correlations whose definition did not change keep their
windows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from rules.engine import Detection, RuleEngine
from rules.loader import RULE_SUFFIXES, RulePack, load_rules

log = logging.getLogger(__name__)

BUILTIN_RULES: Final = Path(__file__).resolve().parent.parent / "rules" / "pack"
RELOAD_CHECK: Final = 5.0  # seconds between looks at the rule files


class Pipeline:
    def __init__(
        self,
        pack: RulePack,
        paths: tuple[Path, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pack = pack
        self.engine = RuleEngine(pack)
        self.paths = paths
        self.reloads = 0
        self._monotonic = monotonic
        self._fingerprint = _fingerprint(paths)
        self._next_check = monotonic() + RELOAD_CHECK

    @classmethod
    def from_directories(cls, extra: Path | None) -> Pipeline:
        paths = (BUILTIN_RULES, *((extra,) if extra is not None else ()))
        return cls(_load(paths), paths)

    def detect(self, records: list[dict[str, Any]]) -> list[Detection]:
        self.maybe_reload()
        return self.engine.evaluate_all(records)

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

    def health(self) -> dict[str, int]:
        return {
            "rules": len(self.pack.rules),
            "correlations": len(self.pack.correlations),
            "rule_problems": len(self.pack.problems),
        }


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
