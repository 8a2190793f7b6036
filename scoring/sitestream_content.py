"""Content drift: how far a site's home page has moved from the structure it usually has.

Each :class:`~scoring.sitestream_scan.PageShape` becomes a few numbers (:data:`PAGE_FEATURES`:
size, scripts, iframes, forms, links, foreign and hidden links, keyword hits, script or
iframe domains never seen on the site, whether the title or the body changed). Per site and
feature, river's ``stats.EWMean`` and ``stats.EWVar`` follow what is usual; a page's score is
the largest ``|z|`` of its features, where the spread is never taken below the feature's
``floor`` (a count that never varied would otherwise turn one extra link into infinity).
Some features count only upwards: a script domain *not* seen before is news, one that went
missing is not.

For scale: a defaced page that drops its 10 scripts and most of its links scores about 10; a
page stuffed with 40 hidden spam links, 40; a news page's daily churn, under 3.

A page is judged only after ``warm_up`` pages have been learned. A flagged page (score at or
above ``threshold``) is never learned, nor is one the caller says not to learn (keywords of
defacement on it): a defacement must not become the usual. A change that lasts
``rebaseline_after`` (three days of flagged pages) is the site's new normal, not an attack
that nobody noticed: the statistics start again from it.

>>> from datetime import UTC, datetime, timedelta
>>> from scoring.sitestream_scan import PageShape
>>> def page(scripts, links, hidden=0, title="Ministry"):
...     return PageShape("h", title, 40_000, scripts, 2, ("cdn.example",), 0, (), 1, links,
...                      12, hidden, 0)
>>> baseline = ContentBaseline(warm_up=5)
>>> t0 = datetime(2026, 3, 1, tzinfo=UTC)
>>> [baseline.judge(page(10, 80 + i), t0 + timedelta(minutes=5 * i)).flagged for i in range(6)]
[False, False, False, False, False, False]
>>> verdict = baseline.judge(page(10, 80, hidden=40), t0 + timedelta(hours=1))
>>> (verdict.flagged, verdict.learned, verdict.deviations[0].feature)
(True, False, 'hidden links')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from river import stats

from scoring.guarded import Deviation
from scoring.sitestream_scan import PageShape

MAX_KNOWN_DOMAINS: Final = 100  # script and iframe domains remembered per site


@dataclass(frozen=True)
class PageFeature:
    """One number of a page: ``floor`` is the least spread its z is measured with (in the
    feature's own unit, after ``log`` if set); ``upward_only``: only above usual counts."""

    key: str
    label: str
    floor: float
    log: bool = False
    upward_only: bool = False


PAGE_FEATURES: Final = (
    # ln(bytes): 0.35 is a third more or less; pages of news sites vary less than that.
    PageFeature("size", "page size (bytes)", 0.35, log=True),
    PageFeature("scripts", "scripts", 1.5),
    PageFeature("inline_scripts", "inline scripts", 1.5),
    PageFeature("script_domains", "script domains", 1.0),
    PageFeature("iframes", "iframes", 1.0),
    PageFeature("forms", "forms", 1.0),
    PageFeature("links", "links", 0.35, log=True),
    PageFeature("foreign_domains", "foreign domains linked", 0.5, log=True),
    PageFeature("hidden_links", "hidden links", 1.0),
    PageFeature("keyword_hits", "defacement or spam keywords", 0.5, upward_only=True),
    # Novelty and change flags: never above 2 on their own, they explain rather than decide.
    PageFeature("new_domains", "script or iframe domains never seen", 0.5, upward_only=True),
    PageFeature("title_changed", "title changed", 0.5, upward_only=True),
    PageFeature("body_changed", "body changed", 0.5, upward_only=True),
)


@dataclass(frozen=True)
class ContentVerdict:
    """How unusual a page is. ``score`` is 0 while warming up; ``rebaselined`` says the
    statistics started again from this page (a lasting change)."""

    score: float
    threshold: float
    flagged: bool
    warming_up: bool
    learned: bool
    rebaselined: bool = False
    deviations: tuple[Deviation, ...] = ()


_RAW: Final[dict[str, Callable[[PageShape], float]]] = {
    "size": lambda p: p.size,
    "scripts": lambda p: p.scripts,
    "inline_scripts": lambda p: p.inline_scripts,
    "script_domains": lambda p: len(p.script_domains),
    "iframes": lambda p: p.iframes,
    "forms": lambda p: p.forms,
    "links": lambda p: p.links,
    "foreign_domains": lambda p: p.foreign_domains,
    "hidden_links": lambda p: p.hidden_links,
    "keyword_hits": lambda p: p.keyword_hits,
}


class ContentBaseline:
    """What one site's home page usually looks like, and how far a page is from it."""

    def __init__(
        self,
        fading: float = 0.1,
        warm_up: int = 12,
        threshold: float = 6.0,
        rebaseline_after: timedelta = timedelta(days=3),
        explain: int = 3,
    ) -> None:
        self.fading = fading
        self.warm_up = warm_up
        self.threshold = threshold
        self.rebaseline_after = rebaseline_after
        self.explain = explain
        self._reset()
        self.rebaselines = 0

    def _reset(self) -> None:
        self._mean = {f.key: stats.EWMean(self.fading) for f in PAGE_FEATURES}
        self._var = {f.key: stats.EWVar(self.fading) for f in PAGE_FEATURES}
        self._known: set[str] = set()
        self._last_sha = ""
        self._last_title: str | None = None
        self.learned = 0
        self.unlearned_since: datetime | None = None  # first page of the current unlearned run

    @property
    def warming_up(self) -> bool:
        return self.learned < self.warm_up

    def features(self, page: PageShape) -> dict[str, float]:
        """``page`` as the model's numbers (log taken where the feature says so)."""
        x = {key: float(raw(page)) for key, raw in _RAW.items()}
        seen = {*page.script_domains, *page.iframe_domains}
        x["new_domains"] = float(len(seen - self._known)) if self.learned else 0.0
        x["title_changed"] = float(self._last_title not in (None, page.title))
        x["body_changed"] = float(bool(self._last_sha) and page.sha256 != self._last_sha)
        for feature in PAGE_FEATURES:
            if feature.log:
                x[feature.key] = math.log1p(x[feature.key])
        return x

    def _deviations(self, x: dict[str, float]) -> list[tuple[float, Deviation]]:
        ranked = []
        for feature in PAGE_FEATURES:
            mean = self._mean[feature.key].get()
            spread = max(math.sqrt(max(self._var[feature.key].get(), 0.0)), feature.floor)
            z = (x[feature.key] - mean) / spread
            weight = z if feature.upward_only else abs(z)
            if weight > 0.0:
                shown = (math.expm1(x[feature.key]), math.expm1(mean)) if feature.log else None
                value, typical = shown or (x[feature.key], mean)
                deviation = Deviation(
                    feature.label, _rounded(value), _rounded(typical), round(z, 1)
                )
                ranked.append((weight, deviation))
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        return ranked

    def judge(self, page: PageShape, at: datetime, *, learnable: bool = True) -> ContentVerdict:
        """Score ``page`` (seen at ``at``), decide whether it is flagged, and learn it unless
        it is flagged or not ``learnable``."""
        x = self.features(page)
        warming = self.warming_up
        ranked = [] if warming else self._deviations(x)
        score = round(ranked[0][0], 2) if ranked else 0.0
        flagged = score >= self.threshold
        rebaselined = False
        learn = learnable and not flagged
        if not learn:
            if self.unlearned_since is None:
                self.unlearned_since = at
            elif at - self.unlearned_since >= self.rebaseline_after:
                # Lasting: a flagged structure becomes the usual one; a clean structure that
                # only carried keywords is learned again.
                if flagged:
                    self._reset()
                    self.rebaselines += 1
                    rebaselined = True
                    flagged, score = False, 0.0
                learn = True
        if learn:
            self._learn(page, self.features(page) if rebaselined else x)
            self.unlearned_since = None
        return ContentVerdict(
            score=score,
            threshold=self.threshold,
            flagged=flagged,
            warming_up=warming or rebaselined,
            learned=learn,
            rebaselined=rebaselined,
            deviations=() if rebaselined else tuple(d for _, d in ranked[: self.explain]),
        )

    def _learn(self, page: PageShape, x: dict[str, float]) -> None:
        for key, value in x.items():
            self._mean[key].update(value)
            self._var[key].update(value)
        for domain in (*page.script_domains, *page.iframe_domains):
            if len(self._known) >= MAX_KNOWN_DOMAINS:
                break
            self._known.add(domain)
        self._last_sha, self._last_title = page.sha256, page.title
        self.learned += 1


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")
