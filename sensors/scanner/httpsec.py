"""The HTTP area: the redirection chain from ``http://``, every Observatory-v6 test, and the
Observatory-compatible score and sub-grade ``http_observatory_compat``.

Modelled on mozilla's mdn-http-observatory: :func:`fetch_http` does the I/O once
(:mod:`httpsec_fetch`), pure functions grade the snapshot (:mod:`httpsec_transport`,
:mod:`httpsec_headers`, with CSP parsed by :mod:`csp`), and one score table
(:mod:`httpsec_table`) gives each outcome its modifier. When the host has several addresses
the final page is read from each and the worst endpoint is the one reported (methodology
TNM-1: the worst endpoint counts for H).

The score (methodology principle 3): start at 100, add every negative modifier; if that
penalty-only score is at least 90, add the bonuses too; the grade comes from the score
rounded down to a multiple of 5.

>>> grade_for_score(105), grade_for_score(92), grade_for_score(64), grade_for_score(20)
('A+', 'A', 'C+', 'F')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from sensors.scanner.context import ScanContext
from sensors.scanner.httpsec_fetch import fetch_snapshots
from sensors.scanner.httpsec_headers import (
    evaluate_coep,
    evaluate_coop,
    evaluate_corp,
    evaluate_csp,
    evaluate_referrer_policy,
    evaluate_sri,
    evaluate_x_content_type_options,
    evaluate_x_frame_options,
)
from sensors.scanner.httpsec_snapshot import Endpoint, HttpSnapshot, PreloadList
from sensors.scanner.httpsec_transport import (
    evaluate_cookies,
    evaluate_cors,
    evaluate_hsts,
    evaluate_redirection,
)
from sensors.scanner.result import CheckResult, CheckStatus, SubGrade

__all__ = [
    "CHECKS",
    "GRADE_NAME",
    "HttpSnapshot",
    "ObservatoryScore",
    "evaluate_all",
    "fetch_http",
    "grade_for_score",
    "grade_observatory",
    "observatory_score",
]

GRADE_NAME: Final = "http_observatory_compat"

CHECKS: Final[tuple[tuple[str, Callable[[HttpSnapshot], CheckResult]], ...]] = (
    ("http.redirection", evaluate_redirection),
    ("http.content-security-policy", evaluate_csp),
    ("http.cookies", evaluate_cookies),
    ("http.cors", evaluate_cors),
    ("http.referrer-policy", evaluate_referrer_policy),
    ("http.strict-transport-security", evaluate_hsts),
    ("http.subresource-integrity", evaluate_sri),
    ("http.x-content-type-options", evaluate_x_content_type_options),
    ("http.x-frame-options", evaluate_x_frame_options),
    ("http.cross-origin-resource-policy", evaluate_corp),
    ("http.cross-origin-embedder-policy", evaluate_coep),
    ("http.cross-origin-opener-policy", evaluate_coop),
)

# Methodology principle 3: the lowest score (a multiple of 5) of each grade.
_GRADES: Final = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
)
MINIMUM_SCORE_FOR_BONUS: Final = 90
GRADABLE_STATUS: Final = frozenset({401, 403})  # besides 2xx and 3xx


def evaluate_all(snapshot: HttpSnapshot) -> tuple[CheckResult, ...]:
    """Every check of :data:`CHECKS` on ``snapshot``, in report order."""
    return tuple(evaluate(snapshot) for _, evaluate in CHECKS)


@dataclass(frozen=True)
class ObservatoryScore:
    """``penalty_only`` is 100 plus every negative modifier (TNM-1's H uses it); ``score``
    adds the bonuses when ``penalty_only`` is at least 90; never below 0."""

    penalty_only: int
    bonuses: int
    score: int


def observatory_score(results: tuple[CheckResult, ...]) -> ObservatoryScore:
    """Sum the modifiers of ``results`` (checks without one, e.g. errors, count nothing).

    >>> observatory_score(()).score
    100
    """
    modifiers = [r.modifier for r in results if r.modifier is not None]
    penalty_only = 100 + sum(m for m in modifiers if m < 0)
    bonuses = sum(m for m in modifiers if m > 0)
    score = penalty_only + bonuses if penalty_only >= MINIMUM_SCORE_FOR_BONUS else penalty_only
    return ObservatoryScore(max(penalty_only, 0), bonuses, max(score, 0))


def grade_for_score(score: int) -> str:
    """The grade of a score: rounded down to a multiple of 5, then the methodology's table."""
    rounded = min(max(score, 0) // 5 * 5, 100)
    return next((grade for floor, grade in _GRADES if rounded >= floor), "F")


def grade_observatory(snapshot: HttpSnapshot, results: tuple[CheckResult, ...]) -> SubGrade:
    """The ``http_observatory_compat`` sub-grade. No grade (None, with the reason) when the
    site gave no response, answered with a status the Observatory does not grade (not 2xx,
    3xx, 401 or 403), or a check could not run (the score would be incomplete)."""
    final = snapshot.final
    if final is None:
        return SubGrade(GRADE_NAME, None, reason="the site gave no HTTP or HTTPS response")
    if not (200 <= final.status < 400 or final.status in GRADABLE_STATUS):
        return SubGrade(
            GRADE_NAME, None, reason=f"the site answered {final.status}: not graded (needs "
            "2xx, 3xx, 401 or 403)"
        )  # fmt: skip
    missing = [r.id for r in results if r.status is CheckStatus.ERROR]
    if missing:
        return SubGrade(
            GRADE_NAME, None, reason=f"could not check {', '.join(missing)}: score incomplete"
        )
    score = observatory_score(results)
    applied = "applied" if score.penalty_only >= MINIMUM_SCORE_FOR_BONUS else "not applied"
    reason = f"penalty-only score {score.penalty_only}; bonuses +{score.bonuses} {applied}"
    graded = [e for e in snapshot.endpoints if e.score is not None]
    if len(snapshot.endpoints) > 1:
        address = final.address or "?"
        reason += f"; worst of {len(graded)} endpoints graded ({address})"
    reason += "".join(f"; {note}" for note in snapshot.notes)
    return SubGrade(GRADE_NAME, grade_for_score(score.score), float(score.score), reason=reason)


async def fetch_http(ctx: ScanContext, *, preload: PreloadList | None = None) -> HttpSnapshot:
    """Fetch the HTTP area's snapshot (see :mod:`httpsec_fetch`). With several addresses,
    the final page is read from each and the snapshot of the worst endpoint (lowest score,
    then lowest penalty-only score) is returned; ``endpoints`` lists them all.

    ``preload`` is the HSTS preload list (none is bundled: without one, no site earns the
    preload bonus)."""
    snapshot, per_address = await fetch_snapshots(ctx, preload=preload)
    if not per_address:
        address = ctx.target.addresses[0] if ctx.target.addresses else None
        score = observatory_score(evaluate_all(snapshot)).score
        return replace(snapshot, endpoints=(Endpoint(str(address), score),))
    candidates: list[tuple[tuple[int, int], HttpSnapshot]] = []
    endpoints: list[Endpoint] = []
    for address, response, error in per_address:
        if response is None:
            endpoints.append(Endpoint(str(address), None, error))
            continue
        pinned = replace(snapshot, final=response)
        scored = observatory_score(evaluate_all(pinned))
        endpoints.append(Endpoint(str(address), scored.score))
        candidates.append(((scored.score, scored.penalty_only), pinned))
    if not candidates:
        return replace(snapshot, endpoints=tuple(endpoints))
    _, worst = min(candidates, key=lambda c: c[0])
    return replace(worst, endpoints=tuple(endpoints))
