"""The storage contract every backend implements, and the values that cross it.

Backends: :mod:`api.store.sqlite` (the embedded default). Each must pass
``tests/contracts/test_store.py``. Times are timezone-aware ``datetime`` values in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Protocol

from api.tokens import Role
from sensors.wire import FlowRecord, ScanRecord


@dataclass(frozen=True)
class NewPrincipal:
    name: str
    role: Role
    key_id: str
    secret_hash: bytes = field(repr=False)
    sensor_id: str | None = None


@dataclass(frozen=True)
class PrincipalInfo:
    """A principal as an admin sees it: never the secret or its hash."""

    id: int
    name: str
    role: Role
    key_id: str
    sensor_id: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class PrincipalCredentials:
    """What authentication needs: the principal and the stored hash of its secret."""

    info: PrincipalInfo
    secret_hash: bytes = field(repr=False)


@dataclass(frozen=True)
class SensorInfo:
    sensor_id: str
    created_at: datetime
    last_seen: datetime | None
    records_received: int
    batches_received: int
    version: str | None
    counters: dict[str, int]
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class IngestCounts:
    inserted: int
    duplicates: int


@dataclass(frozen=True)
class FlowQuery:
    """Filters for flows; ``None`` means no filter. Newest first.

    ``ip`` matches either side; ``port`` is the destination (service) port: flows are
    bidirectional with the initiator as the source.
    """

    start: datetime | None = None
    end: datetime | None = None
    ip: IPv4Address | IPv6Address | None = None
    port: int | None = None
    sensor_id: str | None = None
    limit: int = 100
    after: tuple[int, int] | None = None  # keyset cursor: (event.start in µs, sequence)


@dataclass(frozen=True)
class FlowPage:
    items: list[dict[str, Any]]
    next_after: tuple[int, int] | None


class Store(Protocol):
    """Storage of principals, sensors, and what sensors send."""

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise :class:`~api.errors.StoreError` if the store cannot serve."""

    def add_principal(self, principal: NewPrincipal, now: datetime) -> PrincipalInfo:
        """Store a principal; a sensor principal registers its sensor id too."""

    def credentials(self, key_id: str) -> PrincipalCredentials | None: ...

    def list_principals(self) -> list[PrincipalInfo]: ...

    def revoke_principal(self, principal_id: int, now: datetime) -> PrincipalInfo | None:
        """Revoke; ``None`` if there is no such principal. Raises
        :class:`~api.errors.ConflictError` for the last active admin."""

    def count_active_admins(self) -> int: ...

    def record_heartbeat(
        self, sensor_id: str, version: str, counters: dict[str, int], now: datetime
    ) -> None: ...

    def list_sensors(self) -> list[SensorInfo]: ...

    def ingest(
        self,
        sensor_id: str,
        flows: Sequence[FlowRecord],
        scans: Sequence[ScanRecord],
        now: datetime,
    ) -> IngestCounts:
        """Store a batch in one transaction, ignoring records whose id the sensor sent before.
        Durable when it returns."""

    def query_flows(self, query: FlowQuery) -> FlowPage: ...
