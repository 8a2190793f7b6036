"""The wire format: the versioned contract between a sensor and the central service.

A sensor POSTs an :class:`Envelope` of records. Records use Elastic Common Schema names
flattened with dots (``source.ip``, ``network.community_id``) so that one schema serves the
wire, the store, Sigma rules and Kibana. Fields ECS has no name for live under ``flow.*``
(the namespace Elastic's own flow events use).

The server accepts :data:`SCHEMA_VERSION` and the version before it. Any change to these models
changes ``tests/contracts/wire.schema.json``; the snapshot test makes it show in review.

Records are validated one by one (:func:`validate_record`) so that one bad record costs only
itself: an ingest answers ``accepted`` and ``rejected[{index, error}]``.

>>> record = validate_record({
...     "event.id": "0123456789abcdef0123456789abcdef",
...     "event.dataset": "trustwatch.flow",
...     "event.start": "2026-01-01T00:00:00Z", "event.end": "2026-01-01T00:00:01Z",
...     "event.duration": 1_000_000_000, "flow.end_reason": "fin",
...     "network.transport": "tcp", "network.iana_number": "6", "network.type": "ipv4",
...     "source.ip": "10.0.0.1", "source.port": 40000, "source.bytes": 120, "source.packets": 2,
...     "destination.ip": "10.0.0.2", "destination.port": 443,
...     "destination.bytes": 60, "destination.packets": 1,
... })
>>> record.destination_port, str(record.source_ip)
(443, '10.0.0.1')
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

SCHEMA_VERSION: Final = 2
"""The version this code writes. The server also accepts ``SCHEMA_VERSION - 1``.

History: 1, the first; 2 adds the connection state and history (``flow.state``,
``flow.history``) and application metadata (DNS, TLS, HTTP). Every version-1 record is a valid
version-2 record, so one model reads both."""

ACCEPTED_SCHEMA_VERSIONS: Final = frozenset(
    v for v in (SCHEMA_VERSION, SCHEMA_VERSION - 1) if v >= 1
)

FLOW_DATASET: Final = "trustwatch.flow"
SCAN_DATASET: Final = "trustwatch.scan"

SensorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A sensor's name: letters, digits, ``.``, ``_``, ``-``; at most 64 characters."""

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
"""A record's id, unique per sensor; the server ignores a second record with the same id."""

Count = Annotated[int, Field(ge=0, le=2**62)]
Port = Annotated[int, Field(ge=0, le=65535)]
IpAddress = IPv4Address | IPv6Address
ShortText = Annotated[str, StringConstraints(max_length=2048)]
Text8 = Annotated[str, StringConstraints(max_length=8)]
Text255 = Annotated[str, StringConstraints(max_length=255)]
Text1024 = Annotated[str, StringConstraints(max_length=1024)]

# Records are immutable, reject fields they do not know, and are addressed by their ECS names.
_RECORD_CONFIG = ConfigDict(
    extra="forbid", frozen=True, populate_by_name=True, ser_json_timedelta="float"
)


class FlowEndReason(enum.StrEnum):
    """Why the flow meter closed a flow."""

    FIN = "fin"
    RST = "rst"
    IDLE_TIMEOUT = "idle_timeout"
    ACTIVE_TIMEOUT = "active_timeout"
    EVICTED = "evicted"
    END_OF_CAPTURE = "end_of_capture"


class Transport(enum.StrEnum):
    """``network.transport``: the IANA keyword, lower case, as ECS asks."""

    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"
    ICMPV6 = "ipv6-icmp"
    SCTP = "sctp"
    GRE = "gre"
    ESP = "esp"
    AH = "ah"
    OTHER = "other"


_IANA_NUMBERS: Final = {
    Transport.TCP: "6",
    Transport.UDP: "17",
    Transport.ICMP: "1",
    Transport.ICMPV6: "58",
    Transport.SCTP: "132",
    Transport.GRE: "47",
    Transport.ESP: "50",
    Transport.AH: "51",
}


class NetworkType(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class FlowRecord(BaseModel):
    """A bidirectional flow, keyed by its 5-tuple; ``source`` is the side that started it.

    Byte counts are IP-layer bytes (IP header and payload, as Zeek's ``orig_ip_bytes``), taken
    from the IP length field so that a short snap length does not undercount.
    """

    model_config = _RECORD_CONFIG

    event_id: EventId = Field(alias="event.id")
    event_dataset: Literal["trustwatch.flow"] = Field(alias="event.dataset")
    event_start: AwareDatetime = Field(alias="event.start")
    event_end: AwareDatetime = Field(alias="event.end")
    event_duration: Count = Field(alias="event.duration", description="nanoseconds")
    flow_end_reason: FlowEndReason = Field(alias="flow.end_reason")

    network_transport: Transport = Field(alias="network.transport")
    network_iana_number: Annotated[str, StringConstraints(pattern=r"^\d{1,3}$")] = Field(
        alias="network.iana_number"
    )
    network_type: NetworkType = Field(alias="network.type")
    network_community_id: (
        Annotated[str, StringConstraints(pattern=r"^1:[A-Za-z0-9+/]{27}=$")] | None
    ) = Field(default=None, alias="network.community_id")
    network_vlan_id: Annotated[str, StringConstraints(pattern=r"^\d{1,4}$")] | None = Field(
        default=None, alias="network.vlan.id"
    )

    source_ip: IpAddress = Field(alias="source.ip")
    source_port: Port | None = Field(default=None, alias="source.port")
    source_bytes: Count = Field(alias="source.bytes")
    source_packets: Count = Field(alias="source.packets")
    destination_ip: IpAddress = Field(alias="destination.ip")
    destination_port: Port | None = Field(default=None, alias="destination.port")
    destination_bytes: Count = Field(alias="destination.bytes")
    destination_packets: Count = Field(alias="destination.packets")

    icmp_type: Annotated[int, Field(ge=0, le=255)] | None = Field(default=None, alias="icmp.type")
    icmp_code: Annotated[int, Field(ge=0, le=255)] | None = Field(default=None, alias="icmp.code")

    tcp_flags_fin: Count | None = Field(default=None, alias="flow.tcp_flags.fin")
    tcp_flags_syn: Count | None = Field(default=None, alias="flow.tcp_flags.syn")
    tcp_flags_rst: Count | None = Field(default=None, alias="flow.tcp_flags.rst")
    tcp_flags_psh: Count | None = Field(default=None, alias="flow.tcp_flags.psh")
    tcp_flags_ack: Count | None = Field(default=None, alias="flow.tcp_flags.ack")
    tcp_flags_urg: Count | None = Field(default=None, alias="flow.tcp_flags.urg")
    tcp_flags_ece: Count | None = Field(default=None, alias="flow.tcp_flags.ece")
    tcp_flags_cwr: Count | None = Field(default=None, alias="flow.tcp_flags.cwr")

    # Version 2: connection state, and what the first packets said at the application layer.
    flow_state: ConnState | None = Field(default=None, alias="flow.state")
    flow_history: Annotated[str, StringConstraints(pattern=r"^\^?[SHADFRshadfr]{0,12}$")] | None = (
        Field(default=None, alias="flow.history")
    )
    dns_question_name: Text1024 | None = Field(default=None, alias="dns.question.name")
    dns_question_type: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,10}$")] | None = (
        Field(default=None, alias="dns.question.type")
    )
    dns_response_code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,12}$")] | None = (
        Field(default=None, alias="dns.response_code")
    )
    dns_queries: Count | None = Field(default=None, alias="flow.dns.queries")
    dns_unique_names: Count | None = Field(default=None, alias="flow.dns.unique_names")
    dns_max_name_length: Count | None = Field(default=None, alias="flow.dns.max_name_length")
    tls_server_name: Text255 | None = Field(default=None, alias="tls.client.server_name")
    tls_ja3: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = Field(
        default=None, alias="tls.client.ja3"
    )
    tls_version: Text8 | None = Field(default=None, alias="tls.version")
    tls_version_protocol: Literal["tls"] | None = Field(default=None, alias="tls.version_protocol")
    http_request_method: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,16}$")] | None = Field(
        default=None, alias="http.request.method"
    )
    http_version: Text8 | None = Field(default=None, alias="http.version")
    url_original: ShortText | None = Field(default=None, alias="url.original")
    url_domain: Text1024 | None = Field(default=None, alias="url.domain")
    user_agent_original: Text1024 | None = Field(default=None, alias="user_agent.original")
    http_response_status_code: Annotated[int, Field(ge=100, le=999)] | None = Field(
        default=None, alias="http.response.status_code"
    )

    @model_validator(mode="after")
    def _consistent(self) -> FlowRecord:
        if self.event_end < self.event_start:
            raise ValueError("event.end is before event.start")
        if type(self.source_ip) is not type(self.destination_ip):
            raise ValueError("source.ip and destination.ip are of different IP versions")
        if (self.network_type is NetworkType.IPV4) != (self.source_ip.version == 4):
            raise ValueError(f"network.type is {self.network_type} but the addresses are not")
        expected = _IANA_NUMBERS.get(self.network_transport)
        if expected is not None and self.network_iana_number != expected:
            raise ValueError(
                f"network.iana_number {self.network_iana_number} is not "
                f"{self.network_transport} ({expected})"
            )
        return self


class ConnState(enum.StrEnum):
    """``flow.state``: Zeek's ``conn_state`` (see ``sensors.flows.conn_state``)."""

    S0 = "S0"
    S1 = "S1"
    SF = "SF"
    REJ = "REJ"
    S2 = "S2"
    S3 = "S3"
    RSTO = "RSTO"
    RSTR = "RSTR"
    RSTOS0 = "RSTOS0"
    RSTRH = "RSTRH"
    SH = "SH"
    SHR = "SHR"
    OTH = "OTH"


class CheckStatus(enum.StrEnum):
    """A check's outcome. ``error`` means *could not check*: it is never a failure."""

    PASS = "pass"  # noqa: S105 - a check status, not a password
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


class Check(BaseModel):
    """One posture check of a scan."""

    model_config = _RECORD_CONFIG

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
    status: CheckStatus
    evidence: Annotated[dict[str, JsonValue], Field(max_length=64)] = Field(default_factory=dict)
    advice: ShortText = ""
    summary: ShortText = ""  # one line for people; optional, so older sensors' records pass
    # The Observatory-v6 modifier of an ``http.*`` check (trust scoring's H category reads it)
    # and where the advice comes from; optional like ``summary``.
    modifier: Annotated[int, Field(ge=-100, le=100)] | None = None
    references: Annotated[list[Text1024], Field(max_length=8)] = Field(default_factory=list)


class ScanRecord(BaseModel):
    """One scan of one provider's site at one time: a list of checks."""

    model_config = _RECORD_CONFIG

    event_id: EventId = Field(alias="event.id")
    event_dataset: Literal["trustwatch.scan"] = Field(alias="event.dataset")
    event_start: AwareDatetime = Field(alias="event.start")
    event_end: AwareDatetime = Field(alias="event.end")
    url_domain: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9._:\[\]-]{1,253}$", to_lower=True)
    ] = Field(alias="url.domain")
    checks: Annotated[list[Check], Field(min_length=1, max_length=512)]

    @model_validator(mode="after")
    def _consistent(self) -> ScanRecord:
        if self.event_end < self.event_start:
            raise ValueError("event.end is before event.start")
        ids = [check.id for check in self.checks]
        if len(ids) != len(set(ids)):
            raise ValueError("check ids repeat within one scan")
        return self


Record = Annotated[FlowRecord | ScanRecord, Field(discriminator="event_dataset")]
_RECORD: Final[TypeAdapter[FlowRecord | ScanRecord]] = TypeAdapter(Record)


class Envelope(BaseModel):
    """A batch as a sensor sends it. Records stay raw here and are validated one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: StrictInt
    sensor_id: SensorId
    sent_at: AwareDatetime
    records: list[Any]

    @model_validator(mode="after")
    def _supported_version(self) -> Envelope:
        if self.schema_version not in ACCEPTED_SCHEMA_VERSIONS:
            accepted = ", ".join(str(v) for v in sorted(ACCEPTED_SCHEMA_VERSIONS))
            raise ValueError(
                f"schema_version {self.schema_version} is not supported; this server accepts "
                f"{accepted}"
            )
        return self


class Heartbeat(BaseModel):
    """A sensor's periodic sign of life with its own counters (packets, flows, drops, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: StrictInt
    sensor_id: SensorId
    sent_at: AwareDatetime
    sensor_version: Annotated[str, StringConstraints(max_length=64)]
    counters: Annotated[
        dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")], Count],
        Field(max_length=64),
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _supported_version(self) -> Heartbeat:
        if self.schema_version not in ACCEPTED_SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {self.schema_version} is not supported")
        return self


class IngestReply(BaseModel):
    """The server's answer to a batch: every record is either accepted or rejected.

    ``duplicates`` counts accepted records whose id the server already held (a resend).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: int
    duplicates: int = 0
    rejected: list[Rejection] = Field(default_factory=list)


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    error: str


IngestReply.model_rebuild()


def validate_record(raw: object) -> FlowRecord | ScanRecord:
    """Validate one raw record; raises :class:`pydantic.ValidationError`."""
    return _RECORD.validate_python(raw)


def describe_error(exc: ValidationError) -> str:
    """A one-line, human reading of a validation error, naming fields by their ECS names."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        # The first element of loc names the union member chosen by the discriminator.
        loc = [str(p) for p in error["loc"] if p not in {FLOW_DATASET, SCAN_DATASET}]
        where = ".".join(loc) if loc else "record"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def dump_record(record: FlowRecord | ScanRecord) -> dict[str, Any]:
    """The record as JSON-ready ECS-named values, without unset optional fields."""
    return record.model_dump(by_alias=True, mode="json", exclude_none=True)


def wire_json_schema() -> dict[str, Any]:
    """The JSON Schema of everything on the wire, for the committed snapshot."""
    return {
        "schema_version": SCHEMA_VERSION,
        "envelope": Envelope.model_json_schema(by_alias=True),
        "record": _RECORD.json_schema(by_alias=True),
        "heartbeat": Heartbeat.model_json_schema(by_alias=True),
        "ingest_reply": IngestReply.model_json_schema(by_alias=True),
    }


def utc(dt: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, microsecond precision, as every timestamp on the wire."""
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """A record's timestamp (RFC 3339 text, or a datetime) as an aware datetime (naive means
    UTC); None if it is neither.

    >>> parse_time("2026-01-01T00:00:01.5Z")
    datetime.datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=datetime.timezone.utc)
    >>> parse_time("yesterday") is None
    True
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime) -> int:
    """Unix nanoseconds of an aware datetime, exactly (no float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ts: int) -> datetime:
    """The UTC datetime of Unix nanoseconds (to the microsecond)."""
    seconds, rest = divmod(ts, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
