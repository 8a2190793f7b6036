"""SigmaHQ's field conventions in our ECS names: the pySigma processing pipeline that lets
SigmaHQ's community rules run on TrustWatch flows.

SigmaHQ writes its web, DNS and Zeek rules in the field names of the logs they were written for
(a proxy's ``c-uri``, a web server's ``cs-uri-query``, Zeek's ``id.resp_h``). :data:`CONVENTIONS`
says, for each such log source, which of its fields a TrustWatch flow carries under which ECS
name, and why the others are not carried. :func:`translate` runs a rule through a pySigma
processing pipeline built from that table: the values that need it are converted (a URL's path
or extension becomes a regular expression over ``url.original``, Zeek's ``proto`` and
``qtype_name`` spellings become ours, seconds become nanoseconds, a keyword is searched for
within values as it would be within a log line), the fields renamed, and every
field we lack is named with its reason, so that a rule is used whole or not at all. A rule
whose log source is none of these (our own ``category: network`` rules) is left as it is.

>>> from sigma.rule import SigmaRule
>>> from rules.matcher import fields_of
>>> rule = SigmaRule.from_yaml('''
... title: sqlmap
... logsource: {category: proxy}
... detection:
...   sel: {c-useragent|contains: sqlmap, cs-method: POST}
...   condition: sel
... ''')
>>> translate(rule), sorted(fields_of(rule))
((), ['http.request.method', 'user_agent.original'])

Importing SigmaHQ's rule files from a checkout is :mod:`rules.sigmahq`'s job.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

from sigma.exceptions import SigmaError
from sigma.processing.conditions import (
    ExcludeFieldCondition,
    IncludeFieldCondition,
    LogsourceCondition,
    RuleProcessingCondition,
)
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    FieldMappingTransformation,
    MapStringTransformation,
    ReplaceStringTransformation,
)
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
    StringValueTransformation,
    ValueTransformation,
)
from sigma.rule import SigmaDetectionItem, SigmaLogSource, SigmaRule
from sigma.types import (
    Placeholder,
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaType,
    SpecialChars,
)

COMMUNITY_RULES: Final = Path(__file__).resolve().parent / "community"
"""Where the service finds imported community rules, beside the built-in ``pack/``."""
ZEEK_LOGS: Final = ("conn", "dns", "http", "ssl")


class Conversion(enum.Enum):
    """How a SigmaHQ field's values become values of our field."""

    URL_STEM = "the path of url.original (its query string may follow)"
    URL_EXTENSION = "the extension of url.original's path"
    HTTP_VERSION = "HTTP/1.1 becomes 1.1"
    ZEEK_PROTO = "Zeek's icmp is also ECS's ipv6-icmp"
    ZEEK_QTYPE = "Zeek's * and query-N become ANY and TYPEN"
    SECONDS = "seconds become nanoseconds"


@dataclass(frozen=True)
class Convention:
    """One SigmaHQ log source: the fields a flow carries (SigmaHQ name → ECS name or names,
    any of which may match), their value conversions, and why the others are not carried."""

    name: str
    logsource: SigmaLogSource
    fields: Mapping[str, str | tuple[str, ...]]
    uncarried: Mapping[str, str]
    conversions: Mapping[str, Conversion]


def _why(reason: str, names: str) -> dict[str, str]:
    """``names`` (space-separated SigmaHQ fields) that flows do not carry, for one reason."""
    return dict.fromkeys(names.split(), reason)


def _logsource(category: str | None = None, service: str | None = None) -> SigmaLogSource:
    return SigmaLogSource(category, "zeek" if service else None, service)


_HOST: Final = ("url.domain", "tls.client.server_name")  # HTTP's Host, or HTTPS's server name
_NOT_TIMES: Final = "rules match values, not times"
_HTTP_UNCARRIED: Final = (
    _why("the sensor does not read cookies", "cs-cookie")
    | _why("the sensor does not read the Referer header", "cs-referrer cs-referer")
    | _why("flows count a connection's IP bytes, not one HTTP message's", "cs-bytes sc-bytes")
    | _why("the sensor does not read user names", "cs-username")
    | _why("the sensor does not read Content-Type", "cs-content-type")
)
_ZEEK_ID: Final = {
    "id.orig_h": "source.ip",
    "id.orig_p": "source.port",
    "id.resp_h": "destination.ip",
    "id.resp_p": "destination.port",
}
_ZEEK_UNCARRIED: Final = _why(_NOT_TIMES, "ts") | _why(
    "flows are named by event.id and network.community_id, not Zeek's uid", "uid"
)
_NUMBERS: Final = _why(
    "flows carry the names of query types and response codes (qtype_name, rcode_name), "
    "not their numbers",
    "qtype rcode",
)
_ANSWERS: Final = "the sensor reads the question and the response code, not the answers"

CONVENTIONS: Final = (
    Convention(
        "proxy",
        _logsource("proxy"),
        {
            "c-uri": "url.original",
            "cs-uri": "url.original",
            "c-uri-stem": "url.original",
            # SigmaHQ's rules search the query fields for paths too: the whole target it is.
            "c-uri-query": "url.original",
            "c-uri-extension": "url.original",
            "c-useragent": "user_agent.original",
            "cs-host": _HOST,
            "r-dns": _HOST,
            "cs-method": "http.request.method",
            "sc-status": "http.response.status_code",
            "cs-version": "http.version",
            "c-ip": "source.ip",
            "src_ip": "source.ip",
            "dst_ip": "destination.ip",
        },
        _HTTP_UNCARRIED,
        {
            "c-uri-stem": Conversion.URL_STEM,
            "c-uri-extension": Conversion.URL_EXTENSION,
            "cs-version": Conversion.HTTP_VERSION,
        },
    ),
    Convention(
        "webserver",
        _logsource("webserver"),
        {
            "cs-uri-stem": "url.original",
            "cs-uri-query": "url.original",
            "cs-uri": "url.original",
            "cs-user-agent": "user_agent.original",
            "cs-host": _HOST,
            "cs-method": "http.request.method",
            "sc-status": "http.response.status_code",
            "cs-version": "http.version",
            "c-ip": "source.ip",
            "s-ip": "destination.ip",
            "s-port": "destination.port",
        },
        _HTTP_UNCARRIED
        | _why(_NOT_TIMES, "date time")
        | _why("flows carry a connection's duration, not one request's", "time-taken")
        | _why(
            "a web server's own names and status codes are not on the wire",
            "s-sitename s-computername sc-substatus sc-win32-status",
        ),
        {"cs-uri-stem": Conversion.URL_STEM, "cs-version": Conversion.HTTP_VERSION},
    ),
    Convention(
        "dns",
        _logsource("dns"),
        {
            "query": "dns.question.name",
            "QueryName": "dns.question.name",
            "record_type": "dns.question.type",
            "qtype_name": "dns.question.type",
            "rcode_name": "dns.response_code",
            "src_ip": "source.ip",
            "dst_ip": "destination.ip",
            "src_port": "source.port",
            "dst_port": "destination.port",
        },
        _NUMBERS
        | _why(_ANSWERS, "answer answers QueryResults")
        | _why(
            "flows keep the longest name (flow.dns.max_name_length), not each one's length",
            "question_length",
        ),
        {"qtype_name": Conversion.ZEEK_QTYPE},
    ),
    Convention(
        "firewall",
        _logsource("firewall"),
        {
            "src_ip": "source.ip",
            "dst_ip": "destination.ip",
            "src_port": "source.port",
            "dst_port": "destination.port",
        },
        _why("a passive sensor sees the traffic, not a firewall's verdict", "action blocked")
        | _why("flows count each TCP flag (flow.tcp_flags.*), not flag strings", "tcp_flags"),
        {},
    ),
    Convention(
        "zeek conn",
        _logsource(service="conn"),
        {
            **_ZEEK_ID,
            "proto": "network.transport",
            "conn_state": "flow.state",
            "history": "flow.history",
            "duration": "event.duration",
            "orig_pkts": "source.packets",
            "resp_pkts": "destination.packets",
            "orig_ip_bytes": "source.bytes",
            "resp_ip_bytes": "destination.bytes",
            "community_id": "network.community_id",
            "vlan": "network.vlan.id",
        },
        _ZEEK_UNCARRIED
        | _why("flows count IP-layer bytes (*_ip_bytes), not payload", "orig_bytes resp_bytes")
        | _why("the sensor does not reassemble streams", "missed_bytes")
        | _why("the sensor does not name a flow's application protocol", "service")
        | _why("Zeek's Site::local_nets is not the sensor's", "local_orig local_resp")
        | _why("the sensor does not decapsulate tunnels", "tunnel_parents")
        | _why("flows carry no MAC addresses", "orig_l2_addr resp_l2_addr")
        | _why("flows carry the outer VLAN only", "inner_vlan"),
        {"proto": Conversion.ZEEK_PROTO, "duration": Conversion.SECONDS},
    ),
    Convention(
        "zeek dns",
        _logsource(service="dns"),
        {
            **_ZEEK_ID,
            "proto": "network.transport",
            "query": "dns.question.name",
            "qtype_name": "dns.question.type",
            "rcode_name": "dns.response_code",
        },
        _ZEEK_UNCARRIED
        | _NUMBERS
        | _why(_ANSWERS, "answers TTLs auth addl")
        | _why("the sensor does not keep DNS header fields", "trans_id AA TC RD RA Z rejected")
        | _why("the sensor does not keep the query class", "qclass qclass_name")
        | _why("flows carry a connection's duration, not each answer's delay", "rtt"),
        {"proto": Conversion.ZEEK_PROTO, "qtype_name": Conversion.ZEEK_QTYPE},
    ),
    Convention(
        "zeek http",
        _logsource(service="http"),
        {
            **_ZEEK_ID,
            "host": "url.domain",
            "uri": "url.original",
            "method": "http.request.method",
            "user_agent": "user_agent.original",
            "status_code": "http.response.status_code",
            "version": "http.version",
            # Some of SigmaHQ's Zeek http rules are written with the proxy names.
            "c-uri": "url.original",
            "c-useragent": "user_agent.original",
            "cs-method": "http.request.method",
            "cs-host": "url.domain",
            "sc-status": "http.response.status_code",
        },
        _ZEEK_UNCARRIED
        | _HTTP_UNCARRIED
        | _why(
            "the sensor reads the first request line, Host, User-Agent and status code only",
            "trans_depth referrer origin request_body_len response_body_len status_msg "
            "info_code info_msg tags username password proxied post_body client_header_names "
            "server_header_names cookie_vars uri_vars orig_fuids orig_filenames "
            "orig_mime_types resp_fuids resp_filenames resp_mime_types",
        ),
        {},
    ),
    Convention(
        "zeek ssl",
        _logsource(service="ssl"),
        {**_ZEEK_ID, "server_name": "tls.client.server_name", "ja3": "tls.client.ja3"},
        _ZEEK_UNCARRIED
        | _why(
            "Zeek logs the negotiated version; flows carry the highest offered (tls.version)",
            "version",
        )
        | _why(
            "the sensor reads the ClientHello, not the server's answer",
            "cipher curve resumed established next_protocol ja3s last_alert ssl_history",
        )
        | _why(
            "the sensor reads the ClientHello, not the certificates",
            "subject issuer client_subject client_issuer cert_chain_fps client_cert_chain_fps "
            "cert_chain_fuids client_cert_chain_fuids validation_status sni_matches_cert",
        ),
        {},
    ),
)
"""Every SigmaHQ log source whose rules a flow can answer, written out."""

_CATEGORIES: Final = frozenset(c.logsource.category for c in CONVENTIONS if c.logsource.category)
_MISSES: Final = "trustwatch.untranslatable"  # the pipeline state key RejectField writes to


@dataclass(frozen=True)
class Untranslatable:
    """Why a rule cannot run on flows: a field we lack, or (``field`` None) its log source."""

    field: str | None
    reason: str


def follows_sigmahq(logsource: SigmaLogSource) -> bool:
    """Whether a rule's log source is one of SigmaHQ's that :data:`CONVENTIONS` translates."""
    return logsource.product == "zeek" or logsource.category in _CATEGORIES


def translate(rule: SigmaRule) -> tuple[Untranslatable, ...]:
    """Rewrite ``rule`` in place from SigmaHQ's field names and values to ours, or say what
    stops it; a rule on our own log sources is left alone. Whatever it returns, a rule with
    misses must not be used: parts of it may be translated."""
    source = rule.logsource
    if not follows_sigmahq(source):
        return ()
    if source.product == "zeek" and source.service not in ZEEK_LOGS:
        return (
            Untranslatable(
                None,
                f"TrustWatch flows answer Zeek's {', '.join(ZEEK_LOGS)} logs, not its "
                f"{source.service or 'unnamed'} log",
            ),
        )
    if source.product == "zeek" and source.category:
        return (
            Untranslatable(None, f"logsource names both category {source.category} and a Zeek log"),
        )
    pipeline = community_pipeline()  # fresh: a pipeline keeps per-rule state while it applies
    try:
        pipeline.apply(rule)
    except SigmaError as exc:
        return (Untranslatable(None, exc.args[0] if exc.args else str(exc)),)
    misses: dict[str, str] = pipeline.state.get(_MISSES, {})
    return tuple(Untranslatable(name, reason) for name, reason in misses.items())


def community_pipeline() -> ProcessingPipeline:
    """The pySigma pipeline that :data:`CONVENTIONS` describes: per log source, the fields a
    flow lacks are noted, values converted (keywords too), then names mapped."""
    items: list[ProcessingItem] = []
    for convention in CONVENTIONS:
        source = convention.logsource
        when = partial(_when, source)
        items.append(
            ProcessingItem(
                RejectField(convention.name, dict(convention.uncarried)),
                rule_conditions=when(),
                field_name_conditions=[ExcludeFieldCondition(fields=list(convention.fields))],
            )
        )
        for name, conversion in convention.conversions.items():
            items += [
                ProcessingItem(
                    transformation,
                    rule_conditions=when(),
                    field_name_conditions=[IncludeFieldCondition(fields=[name])],
                )
                for transformation in _converters(conversion)
            ]
        items.append(ProcessingItem(KeywordAnywhere(), rule_conditions=when()))
        mapping: dict[str | None, str | list[str]] = {
            k: v if isinstance(v, str) else list(v) for k, v in convention.fields.items()
        }
        items.append(ProcessingItem(FieldMappingTransformation(mapping), rule_conditions=when()))
    return ProcessingPipeline(items=items, name="TrustWatch: SigmaHQ log sources to ECS")


def _when(source: SigmaLogSource) -> list[RuleProcessingCondition]:
    """A rule condition for one processing item (pySigma binds each to one pipeline)."""
    return [LogsourceCondition(source.category, source.product, source.service)]


def _converters(conversion: Conversion) -> list[PreprocessingTransformation]:
    if conversion in (Conversion.URL_STEM, Conversion.URL_EXTENSION):
        return [UrlPartTransformation(extension=conversion is Conversion.URL_EXTENSION)]
    if conversion is Conversion.HTTP_VERSION:
        return [ReplaceStringTransformation(regex="^(?i:HTTP/)", replacement="")]
    if conversion is Conversion.ZEEK_PROTO:
        return [MapStringTransformation({"icmp": ["icmp", "ipv6-icmp"]})]
    if conversion is Conversion.ZEEK_QTYPE:
        # Zeek names type 255 "*" (literal, so escaped in Sigma) and unknown types query-N.
        return [
            MapStringTransformation({"\\*": "ANY"}),
            ReplaceStringTransformation(regex=r"^query-(\d+)$", replacement=r"TYPE\1"),
        ]
    return [ScaleTransformation(1_000_000_000)]  # Conversion.SECONDS


@dataclass
class RejectField(DetectionItemTransformation):
    """Note each field a flow does not carry, with its reason, in the pipeline's state; the
    caller reports them all (pySigma's failure transformations stop at the first)."""

    convention: str
    reasons: dict[str, str]

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        name = detection_item.field
        if name is None or self._pipeline is None:  # a keyword matches any of our values
            return
        why = self.reasons.get(name)
        reason = (
            f"field {name} is not carried by TrustWatch flows: {why}"
            if why
            else f"field {name} is not one of SigmaHQ's {self.convention} fields that "
            "TrustWatch flows carry"
        )
        self._pipeline.state.setdefault(_MISSES, {}).setdefault(name, reason)


@dataclass
class UrlPartTransformation(StringValueTransformation):
    """A value about a URL's path (or its extension) as a regular expression over the whole
    request target: ``*.php`` on the path matches ``/a.php?x=1`` but not ``/a?x=.php``."""

    extension: bool = False

    def apply_string_value(self, field: str | None, val: SigmaString) -> SigmaType | None:
        if val.contains_placeholder():
            return None
        inner = "[^?#/.]" if self.extension else "[^?#]"
        body = "".join(
            re.escape(part)
            if isinstance(part, str)
            else (f"{inner}*" if part is SpecialChars.WILDCARD_MULTI else inner)
            for part in val.s
            if not isinstance(part, Placeholder)
        )
        prefix = r"^[^?#]*\." if self.extension else "^"
        flags = (
            set() if isinstance(val, SigmaCasedString) else {SigmaRegularExpressionFlag.IGNORECASE}
        )
        return SigmaRegularExpression(f"{prefix}{body}(?:[?#].*)?$", flags)


@dataclass
class KeywordAnywhere(StringValueTransformation):
    """A keyword (a value without a field) found anywhere in one of the event's values: SigmaHQ
    writes them for a search through a whole log line, where our matcher compares values."""

    def apply_string_value(self, field: str | None, val: SigmaString) -> SigmaType | None:
        if field is not None:
            return None
        multi = SpecialChars.WILDCARD_MULTI
        start = val if val.startswith(multi) else multi + val
        return start if start.endswith(multi) else start + multi


@dataclass
class ScaleTransformation(ValueTransformation):
    """Numbers (and comparisons) times ``factor``: Zeek's seconds as ECS's nanoseconds."""

    factor: int

    def apply_value(self, field: str | None, val: SigmaType) -> SigmaType | None:
        if isinstance(val, SigmaCompareExpression):
            return SigmaCompareExpression(self._scaled(val.number), val.op)
        if isinstance(val, SigmaNumber):
            return self._scaled(val)
        return None  # anything else stays as it is

    def _scaled(self, number: SigmaNumber) -> SigmaNumber:
        return SigmaNumber(round(number.number * self.factor))
