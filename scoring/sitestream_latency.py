"""A site's response time: the 95th percentile of time to first byte, and drift upwards.

The percentile is river's ``stats.RollingQuantile`` over the last ``window`` answers (288:
a day at the 5-minute availability cadence). Drift is river's ``drift.ADWIN`` on the same
stream; ADWIN says *that* the mean changed, not how much nor which way, and with ``clock=1``
it says so early, while its window still holds mostly old values. So each detection is
judged against a fast exponentially weighted mean (the level now) and the mean of what ADWIN
dropped (the level before): an upward change counts only if it is at least ``min_ratio``
times and ``min_seconds`` above the old level, so that a busy site's 0.20 → 0.23 s is not an
early warning; the fast mean has ``settle`` more answers to get there. After an upward change
fires, the next one needs a downward change first (one alert per episode).

>>> import random
>>> rng = random.Random(7)
>>> times = ResponseTimes()
>>> drifts = [times.add(rng.gauss(0.3, 0.03)) for _ in range(300)]
>>> drifts += [times.add(rng.gauss(1.5, 0.1)) for _ in range(100)]
>>> [(round(d.before, 1), round(d.after, 1)) for d in drifts if d is not None]
[(0.3, 1.5)]
>>> round(times.p95() or 0.0, 1)
1.6
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river import drift, stats

# river's ADWIN is untyped: held as Any, its calls stay checked here.
_ADWIN: Any = drift.ADWIN


@dataclass(frozen=True)
class Drift:
    """An upward change of the mean time to first byte: from ``before`` to ``after`` s."""

    before: float
    after: float
    samples: int  # how many answers ADWIN had seen when it noticed


class ResponseTimes:
    """Rolling p95 and ADWIN drift detection of one site's time to first byte."""

    def __init__(
        self,
        window: int = 288,
        delta: float = 0.002,
        min_ratio: float = 1.5,
        min_seconds: float = 0.25,
        fast_fading: float = 0.3,
        settle: int = 12,
    ) -> None:
        self.window = window
        self.delta = delta
        self.min_ratio = min_ratio
        self.min_seconds = min_seconds
        self._p95 = stats.RollingQuantile(q=0.95, window_size=window)
        # ``clock=1``: look for a change at every answer (a few per hour), not every 32nd.
        self._adwin: Any = _ADWIN(delta=delta, clock=1)
        self._level = stats.EWMean(fast_fading)
        self.settle = settle
        self._pending: float | None = None  # the old level of an upward change being judged
        self._pending_left = 0
        self.samples = 0
        self.armed = True  # may fire; False from an upward drift until a downward one
        self.drifts = 0
        self.last: float | None = None

    def add(self, seconds: float) -> Drift | None:
        """Take one answer's time to first byte; the upward drift it completes, if any."""
        before_total, before_width = self._adwin.total, self._adwin.width
        self._p95.update(seconds)
        self._level.update(seconds)
        self._adwin.update(seconds)
        self.samples += 1
        self.last = seconds
        if self._adwin.drift_detected:
            dropped = before_width + 1 - self._adwin.width
            if dropped > 0:
                old = (before_total + seconds - self._adwin.total) / dropped
                if self._level.get() < old:
                    self.armed, self._pending = True, None
                    return None
                # Upward, perhaps before the fast mean has caught up: judged from now on.
                self._pending, self._pending_left = old, self.settle
        return self._judge()

    def _judge(self) -> Drift | None:
        if self._pending is None:
            return None
        old, now = self._pending, self._level.get()
        if self.armed and now >= old * self.min_ratio and now - old >= self.min_seconds:
            self.armed, self._pending = False, None
            self.drifts += 1
            return Drift(before=old, after=now, samples=self.samples)
        self._pending_left -= 1
        if self._pending_left <= 0:
            self._pending = None
        return None

    def p95(self) -> float | None:
        return self._p95.get()

    def mean(self) -> float:
        """ADWIN's estimate of the current mean (0 before any answer)."""
        estimation: float = self._adwin.estimation
        return estimation
