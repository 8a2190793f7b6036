"""The rules package's exceptions.

::

    RulesError
    ├── RuleFileError     one rule (or file) cannot be used: it carries file, line and reason
    ├── UnsupportedRuleError   valid Sigma that the in-stream engine cannot evaluate
    └── CheckoutError     (rules.sigmahq) a directory that is not a SigmaHQ git checkout
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class RulesError(Exception):
    """Root of the rules package's exceptions."""


class UnsupportedRuleError(RulesError):
    """Valid Sigma, but using something the in-stream engine does not evaluate."""


@dataclass(frozen=True)
class RuleProblem:
    """One problem found while loading rules, where it is, and why."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class RuleFileError(RulesError):
    def __init__(self, problem: RuleProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem
