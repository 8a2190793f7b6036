"""The scoring package's exceptions.

::

    ScoringError            anything scoring refuses
    └── StateError          saved model state that cannot be restored (corrupt, foreign,
                            from an incompatible version); the caller starts fresh
"""

from __future__ import annotations


class ScoringError(Exception):
    """Root of the scoring package's exceptions."""


class StateError(ScoringError):
    """Saved detector state that cannot be restored; the message says why."""
