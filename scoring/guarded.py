"""Half-Space Trees on fixed feature ranges that never learn what they flag.

river's :class:`~river.anomaly.HalfSpaceTrees` scores a point by how little mass the trees'
reference window holds around it. Two things cost it most of its quality on real streams
(measured on KDD99 HTTP, ``bench/detect.py``): a ``MinMaxScaler`` in front keeps moving the
space under the trees, and learning every point turns a burst of attacks into the reference
mass, so the burst stops looking unusual. Here the trees split known ranges (the features'
physical limits, :mod:`scoring.features`) and a point whose score reaches the running
``learn_below`` quantile of all scores is not learned. The quantile itself sees every score,
so lasting change (more than ``1 - learn_below`` of the traffic) is learned after all.

A point alerts when, after ``warm_up`` points, its score is above the running ``alert_above``
quantile. Each feature keeps running mean and variance over the learned points, and an alert
names the features furthest from them (in standard deviations).

The protocol is river's: ``score_one`` and ``learn_one``, plus :meth:`judge`, which does both
and decides, for the stream.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from river import anomaly, stats
from river.base import AnomalyDetector

from scoring.features import Feature


@dataclass(frozen=True)
class Deviation:
    """One feature of an alert, against what the detector has learned as usual."""

    feature: str
    value: float
    typical: float
    z: float  # standard deviations from the learned mean (on the model's scale)


@dataclass(frozen=True)
class Verdict:
    score: float
    threshold: float  # the alert threshold when the point came; inf while warming up
    alert: bool
    learned: bool


class GuardedHalfSpaceTrees(AnomalyDetector):
    """Half-Space Trees on ``features``' fixed ranges, learning only unflagged points.

    >>> from scoring.features import Feature
    >>> detector = GuardedHalfSpaceTrees((Feature("x", "x", 0.0, 1.0, log=False),),
    ...                                  window_size=50, warm_up=200)
    >>> verdicts = [detector.judge({"x": 0.1 + (i % 10) / 100}) for i in range(400)]
    >>> any(v.alert for v in verdicts[:200])  # warming up
    False
    >>> detector.judge({"x": 0.95}).alert
    True
    """

    def __init__(
        self,
        features: tuple[Feature, ...],
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        warm_up: int = 1000,
        learn_below: float = 0.99,
        alert_above: float = 0.999,
        seed: int = 42,
        learn_every: int = 1,
    ) -> None:
        if warm_up <= window_size:
            raise ValueError("warm_up must exceed window_size: HST scores 0 in its first window")
        if not 0.0 < learn_below <= alert_above < 1.0:
            raise ValueError("need 0 < learn_below <= alert_above < 1")
        self.features = features
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.warm_up = warm_up
        self.learn_below = learn_below
        self.alert_above = alert_above
        self.seed = seed
        if learn_every < 1:
            raise ValueError("learn_every must be at least 1")
        # Learn one in ``learn_every`` of the points that may be learned; score every point.
        # Halves (at 2) the per-record cost of learning; its price in quality is measured in
        # bench/detect.py.
        self.learn_every = learn_every
        self._skipped = 0
        # river's HalfSpaceTrees is untyped: held as Any, its calls stay checked here.
        self._hst: Any = anomaly.HalfSpaceTrees(
            n_trees=n_trees,
            height=height,
            window_size=window_size,
            limits={f.key: (f.low, f.high) for f in features},
            seed=seed,
        )
        self._guard = stats.Quantile(learn_below)
        self._alert = stats.Quantile(alert_above)
        self._moments = {f.key: stats.Var() for f in features}
        self.seen = 0
        self.learned = 0
        self.alerts = 0

    @property
    def warmed_up(self) -> bool:
        return self.seen >= self.warm_up

    def score_one(self, x: dict[Hashable, Any]) -> float:
        score: float = self._hst.score_one(x)
        return score

    def learn_one(self, x: dict[Hashable, Any]) -> None:
        self.judge(cast(Mapping[str, float], x))

    def judge(self, x: Mapping[str, float], warming: bool = False) -> Verdict:
        """Score ``x``, decide whether it alerts, and learn it unless it looks unusual.

        ``warming`` extends the warm-up by the caller's own measure (e.g. event time: a
        sensor's first minutes may not show its whole traffic mix)."""
        score: float = self._hst.score_one(x)
        if self.warmed_up and not warming:
            guard = self._guard.get()
            threshold = self._alert.get()
            flagged = guard is not None and score >= guard
            alert = threshold is not None and score > threshold
        else:
            flagged = alert = False
            threshold = None
        self.seen += 1
        self._guard.update(score)
        self._alert.update(score)
        if not flagged:
            self._skipped += 1
            if self._skipped >= self.learn_every:
                self._skipped = 0
                self._hst.learn_one(x)
                for key, moments in self._moments.items():
                    moments.update(x[key])
                self.learned += 1
        if alert:
            self.alerts += 1
        return Verdict(
            score=score,
            threshold=math.inf if threshold is None else threshold,
            alert=alert,
            learned=not flagged,
        )

    def explain(self, x: Mapping[str, float], top: int = 3) -> tuple[Deviation, ...]:
        """The ``top`` features of ``x`` furthest from their learned mean, furthest first
        (for an ``upward_only`` feature, only above the mean counts)."""
        ranked: list[tuple[float, Deviation]] = []
        for feature in self.features:
            moments = self._moments[feature.key]
            mean = moments.mean.get()
            # A feature that never varied (std 0) still deviates: measure it against a
            # hundredth of its range rather than dividing by zero.
            spread = max(math.sqrt(max(moments.get(), 0.0)), (feature.high - feature.low) / 100)
            z = (x[feature.key] - mean) / spread
            weight = z if feature.upward_only else abs(z)
            if weight <= 0.0:
                continue
            deviation = Deviation(
                feature=feature.label,
                value=_rounded(feature.display(x[feature.key])),
                typical=_rounded(feature.display(mean)),
                z=round(z, 1),
            )
            ranked.append((weight, deviation))
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        return tuple(deviation for _, deviation in ranked[:top])

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {
            "features": (
                Feature("x", "x", 0.0, 1.0, log=False),
                Feature("y", "y", 0.0, 1.0, log=False),
            ),
            "window_size": 10,
            "warm_up": 20,
        }


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")
