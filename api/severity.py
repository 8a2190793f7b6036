"""Alert severity: the one ordering of the four levels, and moving along it.

>>> worst("medium", "high")
'high'
>>> raise_by("high", 2)
'critical'
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
"""Mildest first; detectors and rules name their level with one of these."""


def rank(severity: str) -> int:
    """0 for ``low`` up to 3 for ``critical``; -1 for a name that is not a severity."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def worst(first: str, second: str) -> str:
    return max(first, second, key=rank)


def raise_by(severity: str, steps: int) -> str:
    """``severity`` moved up ``steps`` levels, capped at critical (a name that is not a
    severity is returned as it is, for the store to refuse)."""
    if severity not in SEVERITIES:
        return severity
    return SEVERITIES[min(rank(severity) + steps, len(SEVERITIES) - 1)]
