"""Times in the store: integers, microseconds since the epoch in UTC, exact both ways.

>>> from datetime import UTC, datetime
>>> moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
>>> from_us(to_us(moment)) == moment
True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; exact, unlike ``timestamp()`` which goes through a float."""
    return (moment - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)
