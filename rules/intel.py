"""Threat intelligence: flows to or from addresses and names on a configured list.

The list is a plain text file of indicators, such as an export of a public feed. Loading is
tolerant of what such exports look like, and a bad line costs only itself (it becomes a
:class:`~rules.errors.RuleProblem` with file and line)::

    # comment                 ; comment            ! comment (Adblock)       // comment
    203.0.113.7               2001:db8::7          203.0.113.7:443          [2001:db8::7]:443
    198.51.100.0/24 ; SBL123  (trailing comments after whitespace)
    evil.example              *.evil.example       .evil.example            ||evil.example^
    http://evil.example/gate.php    (a URL: its host)
    0.0.0.0 evil.example      (a hosts file: the name)
    "203.0.113.9","2024-01-01",...  (CSV: the first column; a first line that is not an
                                      indicator is the header)

Blank lines and CRLF line ends are fine; duplicates keep their first line. A file that cannot
be used as a whole (missing, unreadable, binary, larger than ``max_bytes``) raises
:class:`~rules.errors.RuleFileError`, so that the caller keeps the list it had.

Use::

    intel = load_intel(path)                 # IntelList: lookups, problems, fingerprint
    matcher = IntelMatcher(intel)
    detections = matcher.evaluate_all(records)   # rules.engine.Detection, one per hit flow
    detection = matcher.evaluate(record)         # Detection | None; matcher.counters
    if intel_fingerprint(path) != intel.fingerprint:   # changed on disk: load it again
        ...

A flow hits when ``source.ip`` or ``destination.ip`` is a listed address or lies in a listed
network, or a name it carries (``dns.question.name``, ``tls.client.server_name``,
``url.domain``) is a listed domain or under one: ``evil.example`` lists
``a.b.evil.example`` too, but not ``notevil.example``. The detection's entity is the side of
the flow that is not the indicator: the internal host.

Matching parses an address with the C parser (``inet_pton``) and looks it up once per
distinct prefix length on the list (an address is a /32 or /128), and a name once per label:
about 2 us for a flow that hits nothing (measured with 50 000 addresses and 1000 networks).
"""

from __future__ import annotations

import csv
import enum
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from rules.engine import Detection
from rules.errors import RuleFileError, RuleProblem
from sensors.wire import parse_time

MAX_INTEL_FILE: Final = 32 << 20
"""Bytes. Public feeds (abuse.ch, Spamhaus DROP, ThreatFox) are well under a megabyte; the
large domain blocklists a few tens of megabytes."""
MAX_INDICATORS: Final = 500_000  # about 80 MB of lookup tables; the big blocklists fit
MAX_PROBLEMS: Final = 100  # kept with their lines; the rest are only counted
MAX_LINE: Final = 4096  # a URL can be long; a longer line is not an indicator
# A network broader than this would match a large part of the internet: a typo, not intel.
MIN_PREFIX: Final = {4: 8, 6: 16}

SOURCE: Final = "rule:threat-intel"
RULE_ID: Final = "threat-intel"
TITLE: Final = "Connection to an address on the threat-intel list"
LEVEL: Final = "high"
TAGS: Final = ("attack.command-and-control", "attack.t1071")
NAME_FIELDS: Final = ("dns.question.name", "tls.client.server_name", "url.domain")
# The destination side first: its hit is the one a detection reports first.
FIELDS: Final = ("destination.ip", *NAME_FIELDS, "source.ip")

Event = Mapping[str, Any]
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FAMILIES: Final = {4: socket.AF_INET, 6: socket.AF_INET6}
_K = TypeVar("_K", str, int)

_TRAILING_COMMENT: Final = re.compile(r"\s+[#;!].*$")
_LABEL: Final = re.compile(r"^[a-z0-9_-]{1,63}$")
_TOP_LABEL: Final = re.compile(r"^[a-z0-9-]*[a-z][a-z0-9-]*$")  # not all digits
_HOSTS_SINKS: Final = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1"})  # noqa: S104 - text
_COMMENT_STARTS: Final = ("#", ";", "!", "//", "[Adblock")  # "[Adblock Plus 2.0]": a header


class IndicatorKind(enum.StrEnum):
    ADDRESS = "address"
    NETWORK = "network"
    DOMAIN = "domain"


@dataclass(frozen=True)
class Indicator:
    """One listed indicator (canonical form) and where the list says it."""

    value: str  # "203.0.113.7", "198.51.100.0/24", "evil.example"
    kind: IndicatorKind
    path: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class IntelFingerprint:
    """What identifies one version of the list file: a change in any field means reload."""

    path: str
    size: int
    mtime_ns: int


_Tables = tuple[tuple[int, dict[int, int]], ...]


@dataclass(frozen=True)
class IntelList:
    """A loaded list: its lookup tables, what it holds, and the problems of its lines."""

    path: Path
    fingerprint: IntelFingerprint | None
    counts: Mapping[IndicatorKind, int]
    duplicates: int
    problems: tuple[RuleProblem, ...]
    problems_dropped: int  # problems beyond MAX_PROBLEMS, only counted
    # By IP version, the narrowest prefix first (an address is a /32 or /128):
    # ((prefix length, {address int >> host bits: line}), ...)
    _tables: Mapping[int, _Tables] = field(repr=False, compare=False)
    _domains: Mapping[str, int] = field(repr=False, compare=False)  # name: line

    def __len__(self) -> int:
        return sum(self.counts.values())

    def lookup_address(self, text: str) -> Indicator | None:
        """The indicator an address hits: the address itself, or the narrowest network.

        >>> intel = parse_intel("198.51.100.0/24\\n203.0.113.7\\n", Path("feed.txt"))
        >>> hit = intel.lookup_address("198.51.100.9")
        >>> hit.value, hit.kind, hit.where, intel.lookup_address("203.0.113.8")
        ('198.51.100.0/24', <IndicatorKind.NETWORK: 'network'>, 'feed.txt:1', None)
        """
        version = 6 if ":" in text else 4
        tables = self._tables.get(version)
        if tables is None:
            return None
        try:
            # The C parser: a tenth of ipaddress's cost, and every IPv6 spelling is one int.
            number = int.from_bytes(socket.inet_pton(_FAMILIES[version], text), "big")
        except (OSError, ValueError):
            return None
        bits = 32 if version == 4 else 128
        for prefix, table in tables:
            line = table.get(number >> (bits - prefix))
            if line is not None:
                return _found(version, number, prefix, self.path, line)
        return None

    def lookup_name(self, name: str) -> Indicator | None:
        """The listed domain a name is, or is under (the longest such).

        >>> intel = parse_intel("evil.example\\n", Path("feed.txt"))
        >>> [intel.lookup_name(n) is not None for n in ("a.b.EVIL.example.", "notevil.example")]
        [True, False]
        """
        name = name.lower().rstrip(".")
        domains = self._domains
        start = 0
        while True:
            line = domains.get(name[start:] if start else name)
            if line is not None:
                return Indicator(name[start:], IndicatorKind.DOMAIN, self.path, line)
            dot = name.find(".", start)
            if dot < 0:
                return None
            start = dot + 1


def intel_fingerprint(path: Path) -> IntelFingerprint | None:
    """The list file's path, size and modification time; ``None`` if it cannot be looked at."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return IntelFingerprint(str(path), stat.st_size, stat.st_mtime_ns)


def load_intel(
    path: Path, *, max_bytes: int = MAX_INTEL_FILE, max_indicators: int = MAX_INDICATORS
) -> IntelList:
    """Read and parse a list file; raises :class:`RuleFileError` if it is unusable as a whole."""
    fingerprint = intel_fingerprint(path)
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise RuleFileError(RuleProblem(path, None, f"cannot read: {exc}")) from exc
    if len(data) > max_bytes:
        raise RuleFileError(RuleProblem(path, None, f"larger than {max_bytes} bytes"))
    if b"\x00" in data:
        raise RuleFileError(RuleProblem(path, None, "binary (compressed?), not a text list"))
    # An export may carry a BOM or a stray non-UTF-8 byte: that line becomes a problem.
    text = data.decode("utf-8-sig", errors="replace")
    return parse_intel(text, path, max_indicators=max_indicators, fingerprint=fingerprint)


def parse_intel(
    text: str,
    path: Path,
    *,
    max_indicators: int = MAX_INDICATORS,
    fingerprint: IntelFingerprint | None = None,
) -> IntelList:
    """Parse a list's text (see the module's description of the formats); never raises.

    >>> intel = parse_intel("# feed\\n203.0.113.7 # C2\\nnot an indicator!\\n", Path("f.txt"))
    >>> len(intel), [str(p) for p in intel.problems]
    (1, ["f.txt:3: 'not' is not an IP address, network or domain name"])
    """
    networks: dict[int, dict[int, dict[int, int]]] = {4: {}, 6: {}}
    domains: dict[str, int] = {}
    counts = dict.fromkeys(IndicatorKind, 0)
    problems: list[RuleProblem] = []
    dropped = duplicates = total = 0
    header_possible = True

    def problem(line: int, message: str) -> None:
        nonlocal dropped
        if len(problems) < MAX_PROBLEMS:
            problems.append(RuleProblem(path, line, message))
        else:
            dropped += 1

    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith(_COMMENT_STARTS):
            continue
        if len(line) > MAX_LINE:
            problem(number, f"longer than {MAX_LINE} characters")
            continue
        first_line, header_possible = header_possible, False
        token = _token(_TRAILING_COMMENT.sub("", line))
        parsed = _indicator(token)
        if isinstance(parsed, str):
            if not (first_line and "," in line):  # else a CSV export's header
                problem(number, parsed)
            continue
        if total >= max_indicators:
            problem(number, f"more than {max_indicators} indicators: the rest are ignored")
            break
        kind, value = parsed
        if isinstance(value, str):
            new = _put(domains, value, number)
        else:
            if isinstance(value, _Address):
                value = ipaddress.ip_network(value)
            by_prefix = networks[value.version].setdefault(value.prefixlen, {})
            shift = value.max_prefixlen - value.prefixlen
            new = _put(by_prefix, int(value.network_address) >> shift, number)
        if not new:
            duplicates += 1
            continue
        counts[kind] += 1
        total += 1
    ordered = {
        version: tuple(sorted(by_prefix.items(), reverse=True))  # the narrowest network first
        for version, by_prefix in networks.items()
        if by_prefix
    }
    return IntelList(
        path=path,
        fingerprint=fingerprint,
        counts=counts,
        duplicates=duplicates,
        problems=tuple(problems),
        problems_dropped=dropped,
        _tables=ordered,
        _domains=domains,
    )


def _found(version: int, number: int, prefix: int, path: Path, line: int) -> Indicator:
    bits = 32 if version == 4 else 128
    if prefix == bits:
        address = (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(number)
        return Indicator(str(address), IndicatorKind.ADDRESS, path, line)
    base = number >> (bits - prefix) << (bits - prefix)
    network = (ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network)((base, prefix))
    return Indicator(str(network), IndicatorKind.NETWORK, path, line)


def _put(table: dict[_K, int], key: _K, line: int) -> bool:
    """Add ``key`` from ``line`` unless it is there already (the first line is kept)."""
    if key in table:
        return False
    table[key] = line
    return True


def _token(line: str) -> str:
    """The indicator's text on a line: CSV's first field, a hosts file's name, or the first
    word."""
    if "," in line:
        fields = next(csv.reader([line]), [""])
        return fields[0].strip() if fields else ""
    words = line.split()
    if len(words) >= 2 and words[0] in _HOSTS_SINKS:
        return words[1]
    return words[0].strip("\"'") if words else ""


def _indicator(token: str) -> tuple[IndicatorKind, _Address | _Network | str] | str:
    """(kind, value) of one indicator's text, or why it is none."""
    text = _host(token)
    if text is None:
        return f"{token!r} is a URL without a host"
    if "/" in text:
        return _network(text, token)
    try:
        return _address(ipaddress.ip_address(text), token)
    except ValueError:
        pass
    return _domain(text.removeprefix("*.").removeprefix(".").rstrip("."), token)


def _host(token: str) -> str | None:
    """The host of a URL (``None`` if it has none), of an Adblock rule or of a ``host:port``;
    other text as it is."""
    if "://" in token:
        try:
            return urlsplit(token).hostname or None  # without port, brackets or user
        except ValueError:
            return None
    text = token[2:].split("^", 1)[0] if token.startswith("||") else token  # ||evil.example^
    if text.startswith("["):  # [2001:db8::7] or [2001:db8::7]:443
        return text[1:].split("]", 1)[0]
    host, colon, port = text.partition(":")
    if colon and port.isdigit():  # 203.0.113.7:443 or evil.example:8080 (IPv6 has 2+ colons)
        return host
    return text


def _network(text: str, token: str) -> tuple[IndicatorKind, _Address | _Network] | str:
    try:
        network = ipaddress.ip_network(text, strict=False)  # host bits set: the network
    except ValueError:
        return f"{token!r} is not an IP network"
    if network.prefixlen < MIN_PREFIX[network.version]:
        return f"{token!r} is broader than /{MIN_PREFIX[network.version]}: refused"
    if network.num_addresses == 1:
        return _address(network.network_address, token)
    return IndicatorKind.NETWORK, network


def _address(address: _Address, token: str) -> tuple[IndicatorKind, _Address] | str:
    if address.is_unspecified or address.is_loopback:
        return f"{token!r} is not an address a flow goes to"
    return IndicatorKind.ADDRESS, address


def _domain(text: str, token: str) -> tuple[IndicatorKind, str] | str:
    name = text.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")  # records carry the ASCII form
        except UnicodeError:
            return f"{token!r} is not a valid international domain name"
    labels = name.split(".")
    if (
        len(labels) < 2  # one label is a word or a column name, not a domain
        or len(name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or not _TOP_LABEL.match(labels[-1])  # a numeric top label is a broken IP address
    ):
        return f"{token!r} is not an IP address, network or domain name"
    return IndicatorKind.DOMAIN, name


@dataclass
class IntelCounters:
    events: int = 0
    events_without_time: int = 0
    detections: int = 0


class IntelMatcher:
    """Turns flows that touch a listed indicator into detections (one per flow)."""

    def __init__(self, intel: IntelList) -> None:
        self.intel = intel
        self.counters = IntelCounters()

    def evaluate_all(self, events: Iterable[Event]) -> list[Detection]:
        found: list[Detection] = []
        for event in events:
            detection = self.evaluate(event)
            if detection is not None:
                found.append(detection)
        return found

    def evaluate(self, event: Event) -> Detection | None:
        """The detection one event causes, if it touches the list.

        The entity is the side that is not the indicator: ``source.ip`` when the destination
        or a name hit, ``destination.ip`` when only the source did (traffic from a listed
        address).
        """
        self.counters.events += 1
        hits = self._hits(event)
        if not hits:
            return None
        moment = parse_time(event.get("event.start"))
        if moment is None:
            self.counters.events_without_time += 1
            return None
        inbound = all(name == "source.ip" for name, _, _ in hits)
        entity = event.get("destination.ip" if inbound else "source.ip")
        (name, observed, indicator), *more = hits
        values: dict[str, Any] = _evidence(name, observed, indicator)
        if more:
            values["more"] = [_evidence(*hit) for hit in more]
        self.counters.detections += 1
        return Detection(
            source=SOURCE,
            rule_id=RULE_ID,
            title=TITLE,
            level=LEVEL,
            tags=TAGS,
            entity=str(entity) if entity is not None else "unknown",
            first_seen=moment,
            last_seen=moment,
            count=1,
            event_ids=(str(event.get("event.id", "")),),
            values=values,
        )

    def _hits(self, event: Event) -> list[tuple[str, str, Indicator]]:
        """(field, value, indicator) for each field that hits, the destination side first."""
        intel = self.intel
        hits = []
        for name in FIELDS:
            value = event.get(name)
            if not isinstance(value, str) or not value:
                continue
            found = intel.lookup_name(value) if name in NAME_FIELDS else intel.lookup_address(value)
            if found is not None:
                hits.append((name, value, found))
        return hits


def _evidence(name: str, observed: str, indicator: Indicator) -> dict[str, str]:
    return {
        "indicator": indicator.value,
        "kind": str(indicator.kind),
        "field": name,
        "observed": observed,
        "list": indicator.where,
    }
