"""The storage contract every backend implements, and the values that cross it.

Backends: :mod:`api.store.sqlite` (the embedded default). Each must pass
``tests/contracts/test_store.py``. Times are timezone-aware ``datetime`` values in UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal, Protocol

from api.lifecycle import OPEN_STATUSES as _OPEN
from api.lifecycle import AlertStatus
from api.noise import Matcher, Silence, Suppression
from api.severity import SEVERITIES as _SEVERITIES
from api.store.protocol_trust import TrustStore
from api.systems import InformationSystem, NewSystem
from api.tokens import Principal, Role
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
    alerts_opened: int = 0
    alerts_merged: int = 0
    alerts_suppressed: int = 0
    """Detections a suppression (from a false-positive verdict) kept from opening an alert."""
    queued: int = 0
    """Alerts put in the outbox for delivery by this batch."""


ALERT_STATUSES = tuple(status.value for status in AlertStatus)
OPEN_STATUSES = tuple(status.value for status in AlertStatus if status in _OPEN)
SEVERITIES = _SEVERITIES


@dataclass(frozen=True)
class Alert:
    """An alert as the SOC sees it (DESIGN.md); repeats of one detection raise ``count``."""

    id: str
    source: str
    rule_id: str
    title: str
    severity: str
    entity: str
    status: str
    first_seen: datetime
    last_seen: datetime
    count: int
    tags: list[str]
    evidence: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    assignee: str | None = None
    system_id: str | None = None
    """The information system the entity belongs to (its level may have raised the severity)."""
    delivery: DeliveryView | None = None
    """Where the alert is on its way to the coordination centre (see :class:`DeliveryView`)."""


DeliveryState = Literal["pending", "delivered", "dead", "silenced", "inhibited", "not_routed"]
NotificationState = Literal["pending", "sending", "delivered", "dead", "muted"]


@dataclass(frozen=True)
class NotificationRef:
    """One notification an alert travels in (one per receiver)."""

    id: str
    receiver: str
    state: NotificationState
    attempts: int
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryView:
    """An alert's delivery: ``delivered`` once every receiver that takes it confirmed it,
    ``pending`` while one is still trying, ``dead`` if one gave up (replay by hand);
    ``silenced`` or ``inhibited`` when noise control muted it (``muted_by`` says by what:
    ``silence:<id>`` or ``inhibited:<alert id>``), ``not_routed`` when no receiver takes it."""

    state: DeliveryState
    muted_by: str | None
    notifications: list[NotificationRef]


@dataclass(frozen=True)
class DeliveryAttempt:
    at: datetime
    duration_ms: float
    outcome: Literal["delivered", "retry", "dead"]
    status: int | None
    error: str | None


@dataclass(frozen=True)
class Notification:
    """One signed POST to one receiver (its ``id`` is the ``webhook-id``), carrying the alerts
    of one group; retried with the same id until delivered or dead."""

    id: str
    receiver: str
    state: NotificationState
    group: dict[str, Any]
    alert_ids: list[str]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    deadline: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[DeliveryAttempt] | None = None


@dataclass(frozen=True)
class NotificationPage:
    items: list[Notification]
    next_after: tuple[int, str] | None


@dataclass(frozen=True)
class Claimed:
    """A notification the delivery worker took to send: ``payload`` is the body sent before
    (retries send it unchanged), ``None`` before the first attempt."""

    id: str
    receiver: str
    group: dict[str, Any]
    alert_ids: list[str]
    attempts: int
    deadline: datetime
    payload: bytes | None


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to, for the store to record."""

    notification_id: str
    at: datetime
    duration_ms: float
    outcome: Literal["delivered", "retry", "dead"]
    payload: bytes | None
    """The body sent (kept for the retries); ``None`` if none was built (kept as it was)."""
    status: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Note:
    """An analyst's note on an alert; notes are only ever appended."""

    id: int
    alert_id: str
    author_id: int
    author: str
    created_at: datetime
    text: str


class AuditField(enum.StrEnum):
    STATUS = "status"
    ASSIGNEE = "assignee"
    NOTE = "note"


@dataclass(frozen=True)
class AuditEntry:
    """One change to an alert: who (the token's principal), when, which field, old and new.

    A note's entry has the note's text as ``new``, so the trail reads on its own."""

    seq: int
    alert_id: str
    at: datetime
    actor_id: int
    actor: str
    field: AuditField
    old: str | None
    new: str | None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    next_after: int | None


@dataclass(frozen=True)
class Suppress:
    """What a false-positive verdict suppresses: detections of the alert's source about its
    entity (see :mod:`api.noise`), narrowed to those whose evidence values named in
    ``fields`` equal the alert's, for ``days``."""

    fields: tuple[str, ...] = ()
    days: int = 30


@dataclass(frozen=True)
class BulkTransition:
    to: AlertStatus
    note: str | None = None
    suppress: Suppress | None = None


@dataclass(frozen=True)
class BulkAssign:
    assignee: str | None


BulkAction = BulkTransition | BulkAssign


@dataclass(frozen=True)
class BulkSkip:
    id: str
    status: str
    reason: str


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did. Each alert is judged on its own: the valid ones change, the
    others are listed in ``skipped``; ``truncated`` says more alerts matched than the limit."""

    matched: int
    changed: int
    unchanged: int
    skipped: list[BulkSkip]
    truncated: bool


@dataclass(frozen=True)
class AlertQuery:
    status: str | None = None
    severity: str | None = None
    source: str | None = None
    entity: str | None = None
    start: datetime | None = None  # last seen at or after
    end: datetime | None = None  # last seen before
    limit: int = 100
    after: tuple[int, str] | None = None  # keyset cursor: (last seen in µs, id)


@dataclass(frozen=True)
class AlertPage:
    items: list[Alert]
    next_after: tuple[int, str] | None


Detector = Callable[[list[dict[str, Any]]], list[Any]]
"""Given the records a batch newly stored (ECS dicts), the detections they cause
(``rules.engine.Detection``-shaped: source, rule_id, title, level, tags, entity, first_seen,
last_seen, count, event_ids, values)."""


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


@dataclass(frozen=True)
class ScanQuery:
    """Filters for stored scans; newest first. ``domain`` matches ``url.domain`` exactly."""

    domain: str | None = None
    limit: int = 20
    after: tuple[int, int] | None = None  # keyset cursor: (event.start in µs, sequence)


@dataclass(frozen=True)
class ScanPage:
    items: list[dict[str, Any]]
    next_after: tuple[int, int] | None


class Store(TrustStore, Protocol):
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
        detect: Detector | None = None,
    ) -> IngestCounts:
        """Store a batch in one transaction, ignoring records whose id the sensor sent before.

        ``detect`` runs on the records that are new, inside the transaction, and the alerts
        it yields are stored (or merged into an open alert of the same source and entity seen
        within ``dedupe_window``) in the same transaction. Durable when it returns."""

    def query_flows(self, query: FlowQuery) -> FlowPage: ...

    def query_scans(self, query: ScanQuery) -> ScanPage:
        """Stored scan records: as sent, plus ``observer.name`` (the sensor) and
        ``event.ingested``."""

    def query_alerts(self, query: AlertQuery) -> AlertPage: ...

    def get_alert(self, alert_id: str) -> Alert | None: ...

    def transition_alert(
        self,
        alert_id: str,
        to: AlertStatus,
        actor: Principal,
        now: datetime,
        note: str | None = None,
        suppress: Suppress | None = None,
    ) -> Alert | None:
        """Move the alert to ``to`` if :data:`api.lifecycle.TRANSITIONS` allows it from the
        status it has inside the write transaction (compare-and-set: of two racing callers,
        one wins and the other gets :class:`~api.lifecycle.TransitionError`). Writes the audit
        row, and the note with its own row if given. A false-positive verdict with ``suppress``
        adds a suppression; reopening a false positive lifts its suppressions. ``None`` if
        there is no such alert; :class:`~api.errors.ConflictError` if the alert has its maximum
        of notes; :class:`~api.errors.UnprocessableError` if ``suppress`` names evidence values
        the alert lacks."""

    def assign_alert(
        self, alert_id: str, assignee: str | None, actor: Principal, now: datetime
    ) -> Alert | None:
        """Set (or clear) the assignee; an audit row if it changed. ``None``: no such alert."""

    def add_note(self, alert_id: str, text: str, actor: Principal, now: datetime) -> Note | None:
        """Append a note and its audit row. ``None``: no such alert;
        :class:`~api.errors.ConflictError` past :data:`~api.lifecycle.MAX_NOTES_PER_ALERT`."""

    def alert_notes(self, alert_id: str) -> list[Note]:
        """The alert's notes, oldest first."""

    def alert_audit(self, alert_id: str, after: int, limit: int) -> AuditPage | None:
        """The alert's audit trail, oldest first, from after ``seq`` ``after``; ``None``: no
        such alert."""

    def bulk_update(
        self, query: AlertQuery, action: BulkAction, actor: Principal, now: datetime
    ) -> BulkResult:
        """Apply ``action`` to the alerts ``query`` selects (at most ``query.limit``, newest
        first) in one write transaction, each alert judged on its own."""

    def add_system(self, system: NewSystem, now: datetime) -> InformationSystem:
        """Declare an information system; :class:`~api.errors.ConflictError` if its id exists
        or the store has its maximum of systems."""

    def list_systems(self) -> list[InformationSystem]: ...

    # -- delivery -----------------------------------------------------------------------------

    def claim_deliveries(self, now: datetime, limit: int) -> list[Claimed]:
        """Take the notifications due at ``now`` for sending (see :mod:`api.store.sqlite_outbox`
        for the states); noise control gets a last word on unsealed ones."""

    def record_delivery_attempts(self, results: Sequence[AttemptResult]) -> None: ...

    def recover_deliveries(self) -> int:
        """Make notifications left ``sending`` by a crash due again; how many."""

    def next_delivery_due(self) -> datetime | None: ...

    def get_notification(self, notification_id: str) -> Notification | None: ...

    def query_notifications(
        self,
        state: str | None = None,
        receiver: str | None = None,
        after: tuple[int, str] | None = None,
        limit: int = 100,
    ) -> NotificationPage: ...

    def replay_notification(self, notification_id: str, now: datetime) -> Notification | None:
        """Make a dead notification due now; ``None``: no such one;
        :class:`~api.errors.ConflictError` if it is not dead."""

    def delivery_counts(self) -> dict[tuple[str, str], int]: ...

    # -- noise control --------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        starts: datetime,
        ends: datetime,
        comment: str,
        actor: Principal,
        now: datetime,
    ) -> Silence: ...

    def list_silences(self, now: datetime, include_expired: bool = False) -> list[Silence]: ...

    def expire_silence(self, silence_id: str, actor: Principal, now: datetime) -> Silence | None:
        """End a silence now; ``None``: no such silence."""

    def list_suppressions(
        self, now: datetime, include_expired: bool = False
    ) -> list[Suppression]: ...

    def lift_suppression(self, suppression_id: str, now: datetime) -> Suppression | None:
        """End a suppression now; ``None``: no such suppression."""
