"""Stability (TNM-1 principle 6): when a new observation counts, and the band hysteresis.

**Confirmation.** Observations of one check are compared by their severity on their own
(:func:`scoring.trust_points.severity`: the strictest cap, then the points lost, then the
status), so a worse result within the same status (a -40 cookie outcome after a -5 one, a
second service class open) also needs confirming.

* The first observation of a check counts at once: there is no published rating to protect
  yet, and the scheduler rescans within the hour anyway.
* A better one (a fix) counts at once.
* An equally severe one refreshes the counted one (fresh evidence, ``last_verified``,
  ``confirmations + 1``) and drops a pending worse one: two observations in a row confirm.
* A worse one waits in ``pending``. It is counted when a second observation at least as bad
  comes at least an hour after the first pending one, or from another vantage point (a
  sensor id; an empty vantage is unknown and never counts as another). What counts then is
  the level both agree on; if the second is worse still, it waits in turn.
* ``error`` (could not check) never replaces a pass or a failure: the counted result keeps
  counting and its ``last_verified`` shows how old it is (the error stays in the scan
  history). A check that has only ever been ``error`` stays ``error``, which scoring treats as
  not testable; its first real result counts at once if it is clean, else it waits as any
  worse result does.
* An observation older than the last verified one is ignored (scans may arrive out of
  order).

**Hysteresis.** A score must pass a band edge by a full point to leave the previous band:
with a previous B (70-85), 85.9 is still B and 86 is A; 69.1 is still B and 69 is C. Caps are
applied after, without hysteresis.

>>> from datetime import UTC, datetime, timedelta
>>> from scoring.trust import METHODOLOGY as TNM
>>> at = datetime(2026, 11, 1, tzinfo=UTC)
>>> ok = observe(None, Observation("dns.caa", "pass", at), TNM)
>>> bad = observe(ok, Observation("dns.caa", "fail", at + timedelta(minutes=5)), TNM)
>>> bad.counted.status, bad.pending.status
('pass', 'fail')
>>> observe(bad, Observation("dns.caa", "fail", at + timedelta(hours=2)), TNM).counted.status
'fail'
>>> with_hysteresis(85.5, eligible=False, previous="B", table=TNM)
'B'
"""

from __future__ import annotations

import math
from dataclasses import replace

from scoring.trust_model import FindingState, Observation
from scoring.trust_points import ERROR, severity
from scoring.trust_table import Methodology

__all__ = ["band_of", "observe", "with_hysteresis"]

_CLEAN = (0, 0, 0)


def _another_vantage(vantage: str, seen: tuple[str, ...], table: Methodology) -> bool:
    if not vantage or "" in seen:
        return False
    return len({*seen, vantage}) >= table.stability.confirm_vantages


def _worse(state: FindingState, obs: Observation, table: Methodology) -> FindingState:
    pending, since = state.pending, state.pending_since
    if pending is None or since is None:
        return replace(
            state, pending=obs, pending_since=obs.observed_at, pending_vantages=(obs.vantage,)
        )
    confirmed = obs.observed_at - since >= table.stability.confirm_after or _another_vantage(
        obs.vantage, state.pending_vantages, table
    )
    # The level both observations agree on is the less severe of the two.
    newer_is_lesser = severity(obs, table) <= severity(pending, table)
    lesser, worse = (obs, None) if newer_is_lesser else (pending, obs)
    if not confirmed:
        vantages = tuple(dict.fromkeys((*state.pending_vantages, obs.vantage)))
        return replace(state, pending=lesser, pending_vantages=vantages)
    counted = FindingState(
        check=state.check,
        counted=lesser,
        first_seen=since,
        last_verified=max(obs.observed_at, since),
        confirmations=2,
    )
    if worse is None:
        return counted
    return replace(
        counted, pending=worse, pending_since=worse.observed_at, pending_vantages=(worse.vantage,)
    )


def observe(  # noqa: PLR0911 - a return per case of principle 6
    state: FindingState | None, observation: Observation, table: Methodology
) -> FindingState:
    """The finding state after ``observation`` (see the module docstring)."""
    if state is None:
        return FindingState.first(observation)
    if observation.check != state.check:
        raise ValueError(f"an observation of {observation.check} given to {state.check}")
    counted = state.counted
    if observation.observed_at < state.last_verified:
        return state
    if observation.status == ERROR:
        if counted.status != ERROR:
            return state
        return _same(state, observation)
    new = severity(observation, table)
    if counted.status == ERROR:
        return (
            FindingState.first(observation) if new == _CLEAN else _worse(state, observation, table)
        )
    old = severity(counted, table)
    if new < old:
        return FindingState.first(observation)
    if new == old:
        return _same(state, observation)
    return _worse(state, observation, table)


def _same(state: FindingState, obs: Observation) -> FindingState:
    return replace(
        state,
        counted=obs,
        last_verified=obs.observed_at,
        confirmations=state.confirmations + 1,
        pending=None,
        pending_since=None,
        pending_vantages=(),
    )


def band_of(score: float, *, eligible: bool, table: Methodology) -> str:
    """The band of ``score``: A+ only when ``eligible``."""
    if eligible and score >= table.a_plus.min_score:
        return "A+"
    return next((g for g, floor in table.bands.bands if score >= floor), table.bands.lowest)


def _ranges(eligible: bool, table: Methodology) -> list[tuple[str, float, float]]:
    """(band, lowest score, score it ends below), best first."""
    floors = list(table.bands.bands)
    if eligible:
        floors.insert(0, ("A+", table.a_plus.min_score))
    floors.append((table.bands.lowest, -math.inf))
    tops = [math.inf] + [floor for _, floor in floors[:-1]]
    return [(g, floor, top) for (g, floor), top in zip(floors, tops, strict=True)]


def with_hysteresis(
    score: float, *, eligible: bool, previous: str | None, table: Methodology
) -> str:
    """The band of ``score``, kept at ``previous`` unless the score passed its edge by the
    hysteresis (1 point)."""
    raw = band_of(score, eligible=eligible, table=table)
    margin = table.bands.hysteresis
    for grade, floor, top in _ranges(eligible, table):
        if grade == previous and floor - margin < score < top + margin:
            return grade
    return raw
