"""A site's availability over a sliding window of time (30 days by default), to the hour.

river's ``utils.TimeRolling(stats.Mean, period=...)`` keeps every probe until a newer one
pushes it out: at the 5-minute cadence that is 8,640 probes (about a megabyte) per site, and
it cannot say what the window holds *now* unless a probe has just arrived. Here the window is
a ring of fixed buckets (an hour each): probes up and probes made per bucket, in three flat
arrays (under 6 kB per site, whatever the cadence), so the fraction at any ``now`` is a sum
over the buckets still inside the window. The trend beside it is river's ``stats.EWMean`` of
the probes (1 up, 0 down), which follows the last few hours rather than the month.

>>> from datetime import UTC, datetime, timedelta
>>> window = AvailabilityWindow(timedelta(days=30), timedelta(hours=1))
>>> t0 = datetime(2026, 3, 1, tzinfo=UTC)
>>> for i in range(10):
...     _ = window.add(t0 + timedelta(minutes=5 * i), up=i != 3)
>>> window.counts(t0 + timedelta(hours=1))
(9, 10)
>>> window.counts(t0 + timedelta(days=30))  # the first hour has left the window
(0, 0)
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime, timedelta
from typing import Final

from river import stats

from sensors.wire import to_ns

_NS: Final = 1_000_000_000
_MAX_COUNT: Final = 0xFFFF  # probes per bucket an unsigned short holds (12 at the cadence)


class AvailabilityWindow:
    """Probes up and made per bucket over ``period``, and an exponentially weighted trend."""

    def __init__(self, period: timedelta, bucket: timedelta, trend_fading: float = 0.05) -> None:
        if bucket <= timedelta(0) or period < bucket:
            raise ValueError("need 0 < bucket <= period")
        self.bucket_ns = int(bucket.total_seconds() * _NS)
        self.slots = math.ceil(period / bucket)
        # Which bucket each slot holds (0: none yet; bucket 0 is in 1970), and its counts.
        self._bucket = array("I", [0]) * self.slots
        self._up = array("H", [0]) * self.slots
        self._probes = array("H", [0]) * self.slots
        self.trend = stats.EWMean(trend_fading)
        self.dropped = 0  # probes older than the window when they came

    def _number(self, at: datetime) -> int:
        return to_ns(at) // self.bucket_ns

    def add(self, at: datetime, *, up: bool, trend: bool = True) -> bool:
        """Count a probe at ``at``; False (and counted in ``dropped``) if it is older than
        every bucket the window still holds (or its bucket is full). ``trend``: also feed the
        trend (the caller says no for a probe that arrives after a newer one)."""
        number = self._number(at)
        slot = number % self.slots
        held = self._bucket[slot]
        if held > number or self._probes[slot] == _MAX_COUNT:
            self.dropped += 1
            return False
        if held < number:
            self._bucket[slot], self._up[slot], self._probes[slot] = number, 0, 0
        self._up[slot] += up
        self._probes[slot] += 1
        if trend:
            self.trend.update(1.0 if up else 0.0)
        return True

    def counts(self, now: datetime) -> tuple[int, int]:
        """Probes up and probes made in the window that ends with the bucket holding ``now``."""
        last = self._number(now)
        first = last - self.slots
        up = probes = 0
        for number, u, p in zip(self._bucket, self._up, self._probes, strict=True):
            if first < number <= last:
                up += u
                probes += p
        return up, probes

    def fraction(self, now: datetime) -> float | None:
        """The share of probes that found the site up (None when the window holds none).

        >>> from datetime import UTC, datetime, timedelta
        >>> window = AvailabilityWindow(timedelta(days=30), timedelta(hours=1))
        >>> at = datetime(2026, 3, 1, tzinfo=UTC)
        >>> window.fraction(at) is None
        True
        >>> _ = window.add(at, up=True), window.add(at, up=False)
        >>> window.fraction(at)
        0.5
        """
        up, probes = self.counts(now)
        return None if probes == 0 else up / probes
