"""Online service providers, their sites and incidents: what the trust rating is about.

A provider is registered by an admin with its agency, its declared security level (Decree
85/2016, as for information systems) and its sites. Each site has an importance, TNM-1's
aggregation weight: 3 for the primary site, 2 for a transaction portal, 1 for any other.

>>> SiteRole("transaction").importance
2
>>> [role.value for role in SiteRole]
['primary', 'transaction', 'other']
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from scoring.trust_model import IncidentKind

MAX_PROVIDERS: Final = 100_000  # a national register is in the tens of thousands at most
MAX_SITES: Final = 64  # per provider: its public names, not every host it runs
MAX_INCIDENTS_PER_PROVIDER: Final = 10_000


class SiteRole(enum.StrEnum):
    """What a site is to its provider; the role fixes its importance in the aggregate."""

    PRIMARY = "primary"
    TRANSACTION = "transaction"
    OTHER = "other"

    @property
    def importance(self) -> int:
        return _IMPORTANCE[self]


_IMPORTANCE: Final = {SiteRole.PRIMARY: 3, SiteRole.TRANSACTION: 2, SiteRole.OTHER: 1}


@dataclass(frozen=True)
class Site:
    domain: str  # lower case, no trailing dot
    role: SiteRole

    @property
    def importance(self) -> int:
        return self.role.importance


@dataclass(frozen=True)
class NewProvider:
    id: str
    name: str
    agency: str
    level: int  # declared security level, 1 (least) to 5
    sites: tuple[Site, ...]


@dataclass(frozen=True)
class Provider(NewProvider):
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SiteRef:
    """A site with the provider it belongs to: what the scheduler scans."""

    domain: str
    provider: str
    importance: int


class IncidentState(enum.StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"  # recorded in error (or its alert was a false positive)


@dataclass(frozen=True)
class NewIncident:
    provider: str
    kind: IncidentKind
    started: datetime
    resolved: datetime | None = None
    site: str | None = None
    summary: str = ""
    alert_id: str | None = None  # the SOC alert it was confirmed from


@dataclass(frozen=True)
class Incident(NewIncident):
    id: str = ""
    state: IncidentState = IncidentState.ACTIVE
    created_at: datetime | None = None
    updated_at: datetime | None = None
    author: str = ""
