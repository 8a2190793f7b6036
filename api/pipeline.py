"""What happens to records after validation: the rule engine turns new ones into detections.

Built at start-up from the settings: the rule pack shipped in ``rules/pack/`` and, if set, the
operator's ``rules_dir``. Rule problems are logged (file, line, reason) and counted on
``/healthz``; the other rules run. The engine is called by the store inside the ingest
transaction (one writer at a time), so its state needs no lock of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from rules.engine import Detection, RuleEngine
from rules.loader import RulePack, load_rules

log = logging.getLogger(__name__)

BUILTIN_RULES: Final = Path(__file__).resolve().parent.parent / "rules" / "pack"


class Pipeline:
    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.engine = RuleEngine(pack)

    @classmethod
    def from_directories(cls, extra: Path | None) -> Pipeline:
        paths = [BUILTIN_RULES] + ([extra] if extra is not None else [])
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
        return cls(pack)

    def detect(self, records: list[dict[str, Any]]) -> list[Detection]:
        return self.engine.evaluate_all(records)

    def health(self) -> dict[str, int]:
        return {
            "rules": len(self.pack.rules),
            "correlations": len(self.pack.correlations),
            "rule_problems": len(self.pack.problems),
        }
