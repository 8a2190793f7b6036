"""The alert lifecycle: its statuses, the one table of allowed transitions, and the limits of
what analysts attach to an alert.

::

    new ──► acknowledged ──► in_progress ──► resolved
     │           │               │              │
     └───────────┴───────────────┴─► false_positive
                 ▲                              │
                 └──────── reopen ◄─────────────┘ (from resolved or false_positive)

A false positive may be declared from any open status: discarding noise at first sight is
what triage is for. ``resolved`` claims that work was done, so it comes from ``in_progress``
only. Reopening goes to ``acknowledged``, not ``new``: a person has looked at the alert and
decided it needs more work, and ``new`` means that nobody has looked yet. Moving to the status
an alert already has is not a transition (409 like any other), so a retried request cannot
write a second audit row.

>>> allowed_next(AlertStatus.NEW)
(<AlertStatus.ACKNOWLEDGED: 'acknowledged'>, <AlertStatus.FALSE_POSITIVE: 'false_positive'>)
>>> check_transition("a1", "resolved", AlertStatus.IN_PROGRESS)
Traceback (most recent call last):
...
api.lifecycle.TransitionError: alert a1 is resolved and cannot go to in_progress; from resolved \
it can go to: acknowledged
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from api.errors import ConflictError


class AlertStatus(enum.StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


TRANSITIONS: Final[Mapping[AlertStatus, frozenset[AlertStatus]]] = MappingProxyType(
    {
        AlertStatus.NEW: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.FALSE_POSITIVE}),
        AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.IN_PROGRESS, AlertStatus.FALSE_POSITIVE}),
        AlertStatus.IN_PROGRESS: frozenset({AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE}),
        AlertStatus.RESOLVED: frozenset({AlertStatus.ACKNOWLEDGED}),  # reopen
        AlertStatus.FALSE_POSITIVE: frozenset({AlertStatus.ACKNOWLEDGED}),  # reopen
    }
)
"""Status → the statuses it may move to. Everything not listed is refused with 409."""

OPEN_STATUSES: Final = frozenset(
    {AlertStatus.NEW, AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS}
)
"""Statuses in which an alert absorbs repeats of its detection (``count`` goes up). A closed
alert does not: a repeat after it was resolved opens a new alert."""

MAX_NOTE_CHARS: Final = 4000  # a paragraph or two of findings; longer material is evidence
MAX_NOTES_PER_ALERT: Final = 200  # bounds the alert detail (≤ 800 000 characters of notes)
MAX_ASSIGNEE_CHARS: Final = 128  # as a principal's name
MAX_BULK: Final = 1000  # alerts one bulk request may change, in one write transaction


class TransitionError(ConflictError):
    """The lifecycle does not allow the move from the alert's current status (409)."""

    def __init__(self, alert_id: str, current: AlertStatus, to: AlertStatus) -> None:
        self.current = current
        self.allowed = allowed_next(current)
        names = ", ".join(status.value for status in self.allowed)
        super().__init__(
            f"alert {alert_id} is {current.value} and cannot go to {to.value}; "
            f"from {current.value} it can go to: {names}"
        )


def allowed_next(current: AlertStatus) -> tuple[AlertStatus, ...]:
    """The statuses ``current`` may move to, in lifecycle order."""
    return tuple(status for status in AlertStatus if status in TRANSITIONS[current])


def check_transition(alert_id: str, current: str, to: AlertStatus) -> AlertStatus:
    """Return ``current`` as a status if it may move to ``to``; raise :class:`TransitionError`."""
    status = AlertStatus(current)
    if to not in TRANSITIONS[status]:
        raise TransitionError(alert_id, status, to)
    return status
