"""The plan of scans, as values: how often each area is scanned (:class:`Cadences`), the
areas scanned together (:class:`AreaGroup`), job ids, and where each job's runs fall.

>>> [group.name for group in Cadences().groups()]
['availability', 'http+dns+disclosure', 'tls+exposure']
>>> first_scan_window(10_000, 4)
datetime.timedelta(seconds=20000)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Final

from scoring.trust import METHODOLOGY
from sensors.scanner.result import Area

# A full scan holds a pool thread for about 4 s (bench/RESULTS.md: 117.8 hosts/min at
# concurrency 8); twice that, so that first scans spread at this pace leave room for the rest.
SECONDS_PER_SCAN: Final = 8.0
MAX_GRACE: Final = timedelta(hours=1)


@dataclass(frozen=True)
class AreaGroup:
    """Areas scanned together because they share a cadence."""

    areas: tuple[Area, ...]
    every: timedelta

    @property
    def name(self) -> str:
        return "+".join(area.value for area in self.areas)

    def job_id(self, domain: str) -> str:
        # The cadence is part of the id: a changed cadence makes a new job (and drops the old).
        return f"scan|{self.name}|{int(self.every.total_seconds())}|{domain}"

    @property
    def misfire_grace(self) -> int:
        """Seconds a run may start late and still run: a quarter of the cadence, at most an
        hour; later, it waits for its next slot (a restart does not rescan everything).

        >>> AreaGroup((Area.AVAILABILITY,), timedelta(minutes=5)).misfire_grace
        75
        """
        return max(1, int(min(self.every / 4, MAX_GRACE).total_seconds()))

    def jitter(self, seconds: int) -> int:
        """The jitter to use: as configured, but at most a tenth of the cadence.

        >>> AreaGroup((Area.AVAILABILITY,), timedelta(minutes=5)).jitter(60)
        30
        """
        return max(0, min(seconds, int(self.every.total_seconds() // 10)))


@dataclass(frozen=True)
class Cadences:
    """How often each area is scanned. The service uses :meth:`of_methodology`; the defaults
    here are the same values, for tests that build their own."""

    availability: timedelta = timedelta(minutes=5)
    http: timedelta = timedelta(days=1)
    dns: timedelta = timedelta(days=1)
    disclosure: timedelta = timedelta(days=1)
    tls: timedelta = timedelta(days=7)
    exposure: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < timedelta(seconds=1):
                raise ValueError(f"the {item.name} cadence must be at least a second")
        missing = {a.value for a in Area} - {item.name for item in fields(self)}
        if missing:  # an area added to the scanner must get a cadence here
            raise ValueError(f"no cadence for {', '.join(sorted(missing))}")

    @classmethod
    def of_methodology(cls) -> Cadences:
        """The cadences of the rating methodology's table (``scoring.trust.METHODOLOGY``)."""
        table = METHODOLOGY.cadences
        return cls(**{item.name: getattr(table, item.name) for item in fields(cls)})

    def every(self, area: Area) -> timedelta:
        value: timedelta = getattr(self, area.value)
        return value

    def groups(self) -> tuple[AreaGroup, ...]:
        """Areas with equal cadences together, shortest cadence first, areas in report order."""
        by_cadence: dict[timedelta, list[Area]] = {}
        for area in Area:
            by_cadence.setdefault(self.every(area), []).append(area)
        return tuple(AreaGroup(tuple(a), every) for every, a in sorted(by_cadence.items()))


def spread(key: str, window: timedelta) -> timedelta:
    """A stable offset in ``[0, window)`` for ``key``: jobs hash evenly over their cadence,
    and each keeps its place when the schedule is rebuilt.

    >>> spread("scan|tls+exposure|604800|example.gov", timedelta(days=7)) < timedelta(days=7)
    True
    >>> spread("a", timedelta(seconds=100)) == spread("a", timedelta(seconds=100))
    True
    """
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return timedelta(seconds=window.total_seconds() * fraction)


def domain_of(job_id: str) -> str:
    """Every job id ends with the domain it scans.

    >>> domain_of("rescan|ministry|1767323045000000|portal.example.gov")
    'portal.example.gov'
    """
    return job_id.rsplit("|", 1)[-1]


def first_scan_window(sites: int, concurrency: int) -> timedelta:
    """The time over which the first scans of ``sites`` new sites are spread: what the pool
    of ``concurrency`` threads needs for them at :data:`SECONDS_PER_SCAN` each."""
    return timedelta(seconds=sites * SECONDS_PER_SCAN / concurrency)
