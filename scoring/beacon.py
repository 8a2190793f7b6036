"""Beaconing: a host that connects to one destination at regular intervals, as implants
check in with their command-and-control server.

Use::

    detector = BeaconDetector(BeaconConfig(ignore_destinations=("10.0.0.53",)))
    for record in records:                      # flow records: ECS dicts (sensors.wire)
        finding = detector.observe(record)      # BeaconFinding | None
    checkpoint = detector.state()               # plain JSON types, versioned
    detector = BeaconDetector.from_state(checkpoint, config)   # StateError if unusable

**Key.** Connections are grouped by sensor (``observer.name``), ``source.ip``, destination,
``destination.port`` and ``network.transport``. The destination is the server name when the
flow carries one (``tls.client.server_name``, else ``url.domain``: an implant behind a CDN
keeps its name while the addresses change), else ``destination.ip``.

**Check-ins.** Per key the detector keeps the start times (``event.start``, event time: a
replay gives the same findings) of the last ``window`` check-ins. A connection that starts
less than ``min_interval`` after the key's previous connection belongs to the same check-in
(an implant that opens two connections per check-in is still regular; a chatty client that
never pauses is one long burst, not a beacon). A slice of a long connection (the sensor cuts
flows at its active timeout and the next record keeps the ports) is not a connection: a
day-long session would otherwise look like a perfect 30-minute beacon.

**Score**, as RITA and AC-Hunter do, on the intervals between check-ins (robust statistics:
one missed check-in does not hide a beacon):

* ``dispersion`` = median absolute deviation / median. Regular timers with jitter stay well
  under 0.1 (±10 % uniform jitter: about 0.05; Cobalt Strike's 25 % jitter: about 0.07);
  exponential (Poisson) arrivals, the model of independent human actions, sit near 0.7.
* ``skew`` = Bowley's quartile skew (Q1 + Q3 - 2·Q2) / (Q3 - Q1), in [-1, 1]. It is
  scale-free: when the intervals barely vary, the quartiles are noise and so is the skew
  (simulated, ±2 % jitter, 7 intervals: |skew| above 0.36 in half the windows, above 0.8 in
  one in twenty). So it counts weighted by the spread it describes, ``|skew| · spread`` with
  ``spread`` = (Q3 - Q1) / median: how far the median sits from the middle of the
  quartiles, as a fraction of the median.
* enough check-ins (``min_connections``), and a median interval between ``min_interval`` and
  ``max_interval``.

A key is a beacon when dispersion <= ``max_dispersion`` and |skew| · spread <= ``max_skew``.
Simulated with the defaults (12 check-ins, 0.1 and 0.1), 200 streams of 1000 connections
each: a 60 s timer with ±10 % or 0 to -25 % jitter was found in every stream, at its 12th
check-in (at the 29th at worst); with 0 to -50 % jitter in 197 of 200, later (median: the
118th). Exponential arrivals (mean 60 s or 600 s: independent human actions) and bursty
arrivals were found in none; log-normal arrivals (sigma 0.5, fairly regular) in one. With 8
check-ins, exponential arrivals were found in 4 of 400 streams, always in their first
windows: small samples look regular by chance, hence 12.

**Alerts.** A key fires when it becomes a beacon, then again at most every
``quiet_period`` of event time while it stays one: a beacon raises one finding, not one per
flow, and the alert layer merges the repeats.

**Not counted**: records that are not flows or lack addresses or a start time; destinations
that are multicast or the limited broadcast (periodic by design: mDNS, SSDP, routing
protocols, DHCP); destinations in ``ignore_destinations``. DNS to the resolvers is not
special by default: all of a host's lookups share one key (the resolver, port 53), so the
many names mix into one irregular stream; a deployment lists its resolvers, NTP servers and
monitoring systems in ``ignore_destinations`` to skip them outright.

**Bounds**: at most ``max_keys`` keys (the least recently seen goes; counted in
``counters.keys_evicted``), ``window`` times and ``max_evidence`` event ids per key: about
1.3 KB a key with the defaults (measured), some 65 MB for 50 000 keys. An evicted key forgets
that it fired: if it comes back a beacon, it fires again.
"""

from __future__ import annotations

import bisect
import ipaddress
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

from scoring.errors import StateError
from sensors.wire import from_ns, parse_time, to_ns

STATE_FORMAT: Final = "trustwatch.beacon"
STATE_VERSION: Final = 1
MAX_SLICED: Final = 8  # concurrent long connections per key whose next slice is awaited

_NS: Final = 1_000_000_000
_BROADCAST: Final = "255.255.255.255"

Record = Mapping[str, Any]
_Key = tuple[str, str, str, int | None, str]  # BeaconKey's fields: a tuple hashes faster


@dataclass(frozen=True)
class BeaconConfig:
    """The detector's parameters (its learned state is apart: :meth:`BeaconDetector.state`).

    Times are seconds."""

    window: int = 32  # check-ins kept per key: a 60 s beacon's last half hour
    min_connections: int = 12  # fewer: random arrivals look regular by chance (see above)
    min_interval: float = 5.0  # closer connections are one check-in
    max_interval: float = 86_400.0  # a daily one takes 12 days to find: slower is moot
    max_dispersion: float = 0.1
    max_skew: float = 0.1  # |Bowley skew| x spread
    quiet_period: float = 43_200.0  # at most twice a day per beacon while it lasts
    max_keys: int = 50_000
    max_evidence: int = 5  # event ids kept per key: enough to pivot to the flows
    ignore_destinations: tuple[str, ...] = ()  # addresses or CIDR networks

    def __post_init__(self) -> None:
        if not 3 <= self.min_connections <= self.window:
            raise ValueError("need 3 <= min_connections <= window (quartiles need intervals)")
        if not 0 < self.min_interval < self.max_interval:
            raise ValueError("need 0 < min_interval < max_interval")
        if min(self.max_dispersion, self.max_skew, self.quiet_period) < 0:
            raise ValueError("max_dispersion, max_skew and quiet_period cannot be negative")
        if self.max_keys < 1 or self.max_evidence < 0:
            raise ValueError("need max_keys >= 1 and max_evidence >= 0")
        for text in self.ignore_destinations:
            ipaddress.ip_network(text, strict=False)  # raises ValueError naming it


@dataclass(frozen=True)
class BeaconKey:
    sensor: str  # observer.name, "" when the record has none
    source: str
    destination: str  # server name, else address
    port: int | None
    transport: str


@dataclass(frozen=True)
class IntervalStats:
    """What the intervals between check-ins look like; ratios are to the median."""

    median: float  # in the unit of the times
    dispersion: float  # median absolute deviation / median
    skew: float  # Bowley's quartile skew, 0 when the quartiles coincide
    spread: float  # interquartile range / median


@dataclass(frozen=True)
class BeaconFinding:
    """A key found beaconing, with the statistics that say so."""

    key: BeaconKey
    connections: int  # check-ins the statistics rest on
    median_interval: float  # seconds
    dispersion: float
    skew: float
    spread: float
    first_seen: datetime  # the first and the last check-in in the window
    last_seen: datetime
    event_ids: tuple[str, ...]  # the last max_evidence connections' event.id


@dataclass
class BeaconCounters:
    records: int = 0
    connections: int = 0  # new check-ins
    merged: int = 0  # connections within min_interval of the one before: same check-in
    continuations: int = 0  # slices of a long connection
    ignored: int = 0  # not a flow, no addresses, multicast or broadcast, ignored destination
    without_time: int = 0
    late: int = 0  # older than every check-in of a full window: dropped
    keys_evicted: int = 0
    findings: int = 0


class _Track:
    """One key's learned state."""

    __slots__ = ("events", "fired", "last", "sliced", "times")

    def __init__(self) -> None:
        self.times = array("q")  # check-in start times, ns, sorted
        self.events: list[str] = []  # the last max_evidence event ids (a deque costs 600 B)
        self.last = 0  # the latest connection start seen, ns (check-ins and merged ones)
        self.fired: int | None = None  # when it last fired, ns of event time
        self.sliced: list[int | None] = []  # source ports whose next slice is awaited


def interval_stats(times_ns: Sequence[int]) -> IntervalStats | None:
    """The statistics of the intervals between sorted start times (``None`` under three
    times, or when the median interval is zero).

    >>> stats = interval_stats([0, 60, 121, 180, 242, 300, 360])  # seconds, here
    >>> stats.median, round(stats.dispersion, 4), stats.skew, round(stats.spread, 4)
    (60.0, 0.0167, 0.0, 0.025)
    """
    if len(times_ns) < 3:
        return None
    intervals = sorted(b - a for a, b in pairwise(times_ns))
    median = _quantile(intervals, 0.5)
    if median <= 0:
        return None
    deviations = sorted(abs(x - median) for x in intervals)
    q1, q3 = _quantile(intervals, 0.25), _quantile(intervals, 0.75)
    iqr = q3 - q1
    skew = (q1 + q3 - 2 * median) / iqr if iqr > 0 else 0.0
    return IntervalStats(
        median=median,
        dispersion=_quantile(deviations, 0.5) / median,
        skew=skew,
        spread=iqr / median,
    )


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, R's type 7)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    if low + 1 >= len(ordered):
        return float(ordered[low])
    return float(ordered[low] + (ordered[low + 1] - ordered[low]) * (position - low))


class BeaconDetector:
    """Finds beaconing keys in a stream of flow records, in event time, with bounded state."""

    def __init__(self, config: BeaconConfig | None = None) -> None:
        self.config = config = config or BeaconConfig()
        self.counters = BeaconCounters()
        self._tracks: OrderedDict[_Key, _Track] = OrderedDict()
        self._ignored = tuple(
            ipaddress.ip_network(text, strict=False) for text in config.ignore_destinations
        )
        self._min_gap = round(config.min_interval * _NS)
        self._max_gap = config.max_interval * _NS
        self._quiet = round(config.quiet_period * _NS)

    def __len__(self) -> int:
        return len(self._tracks)

    def observe_all(self, records: Iterable[Record]) -> list[BeaconFinding]:
        found = []
        for record in records:
            finding = self.observe(record)
            if finding is not None:
                found.append(finding)
        return found

    def observe(self, record: Record) -> BeaconFinding | None:
        """Learn one flow record; the finding, if its key just became (or is again, after the
        quiet period) a beacon."""
        counters = self.counters
        counters.records += 1
        key = self._key(record)
        if key is None:
            counters.ignored += 1
            return None
        moment = parse_time(record.get("event.start"))
        ts = None if moment is None else to_ns(moment)
        if ts is None:
            counters.without_time += 1
            return None
        track = self._track(key)
        port = record.get("source.port")
        finding = None
        if port in track.sliced:
            track.sliced.remove(port)
            counters.continuations += 1
        elif self._add(track, ts):
            counters.connections += 1
            events = track.events
            events.append(str(record.get("event.id", "")))
            if len(events) > self.config.max_evidence:
                del events[0]
            finding = self._judge(key, track)
            if finding is not None:
                counters.findings += 1
                track.fired = track.times[-1]
        if record.get("flow.end_reason") == "active_timeout" and isinstance(port, int | None):
            if len(track.sliced) >= MAX_SLICED:
                del track.sliced[0]
            track.sliced.append(port)  # the next record from this port is the next slice
        return finding

    def _key(self, record: Record) -> _Key | None:
        source, destination = record.get("source.ip"), record.get("destination.ip")
        if not isinstance(source, str) or not isinstance(destination, str):
            return None
        if record.get("event.dataset", "trustwatch.flow") != "trustwatch.flow":
            return None
        if self._ignored_destination(destination):
            return None
        name = record.get("tls.client.server_name") or record.get("url.domain")
        port = record.get("destination.port")
        return (
            str(record.get("observer.name", "")),
            source,
            name.lower().rstrip(".") if isinstance(name, str) else destination,
            port if isinstance(port, int) else None,
            str(record.get("network.transport", "")),
        )

    def _ignored_destination(self, address: str) -> bool:
        if ":" in address:
            if address[:2].lower() == "ff":  # IPv6 multicast
                return True
        elif address == _BROADCAST or 224 <= _first_octet(address) <= 239:  # IPv4 multicast
            return True
        if not self._ignored:
            return False
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._ignored)

    def _track(self, key: _Key) -> _Track:
        tracks = self._tracks
        track = tracks.get(key)
        if track is not None:
            tracks.move_to_end(key)
            return track
        if len(tracks) >= self.config.max_keys:
            tracks.popitem(last=False)
            self.counters.keys_evicted += 1
        track = tracks[key] = _Track()
        return track

    def _add(self, track: _Track, ts: int) -> bool:
        """Add a connection's start; whether it is a new check-in (not merged or late)."""
        times, gap = track.times, self._min_gap
        if not times or ts >= track.last:
            merged = bool(times) and ts - track.last < gap
            track.last = ts
            if merged:
                self.counters.merged += 1
                return False
            times.append(ts)
        else:  # out of order: flows are reported when they end, not when they start
            at = bisect.bisect_left(times, ts)
            if (at > 0 and ts - times[at - 1] < gap) or (at < len(times) and times[at] - ts < gap):
                self.counters.merged += 1
                return False
            if at == 0 and len(times) >= self.config.window:
                self.counters.late += 1
                return False
            times.insert(at, ts)
        if len(times) > self.config.window:
            del times[0]
        return True

    def _judge(self, key: _Key, track: _Track) -> BeaconFinding | None:
        config, times = self.config, track.times
        if len(times) < config.min_connections:
            return None
        if track.fired is not None and times[-1] - track.fired < self._quiet:
            return None
        stats = interval_stats(times)
        if (
            stats is None
            or stats.dispersion > config.max_dispersion
            or abs(stats.skew) * stats.spread > config.max_skew
            or not self._min_gap <= stats.median <= self._max_gap
        ):
            return None
        return BeaconFinding(
            key=BeaconKey(*key),
            connections=len(times),
            median_interval=stats.median / _NS,
            dispersion=stats.dispersion,
            skew=stats.skew,
            spread=stats.spread,
            first_seen=from_ns(times[0]),
            last_seen=from_ns(times[-1]),
            event_ids=tuple(track.events),
        )

    def state(self) -> dict[str, Any]:
        """The learned state as plain JSON types (the parameters are the caller's)."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "counters": asdict(self.counters),
            "keys": [
                {
                    "key": list(key),
                    "times": list(track.times),
                    "events": list(track.events),
                    "last": track.last,
                    "fired": track.fired,
                    "sliced": list(track.sliced),
                }
                for key, track in self._tracks.items()  # least recently seen first
            ],
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], config: BeaconConfig | None = None
    ) -> BeaconDetector:
        """A detector with ``config`` and the learned ``state``; raises :class:`StateError`
        if the state is not one this version wrote. A smaller window, evidence or key limit
        than the state's keeps the newest."""
        detector = cls(config)
        config = detector.config
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise StateError(f"not a beacon detector's state (format is not {STATE_FORMAT!r})")
        if state.get("version") != STATE_VERSION:
            raise StateError(
                f"beacon state version {state.get('version')!r} is not {STATE_VERSION}"
            )
        counters = _mapping(state.get("counters"), "counters")
        names = {f.name for f in fields(BeaconCounters)}
        if set(counters) != names:
            raise StateError(f"counters: expected the keys {sorted(names)}")
        detector.counters = BeaconCounters(**{n: _int(counters[n], f"counters.{n}") for n in names})
        entries = _list(state.get("keys"), "keys")
        for index, entry in enumerate(entries[-config.max_keys :]):
            where = f"keys[{index}]"
            key, track = _restore(_mapping(entry, where), where, config)
            detector._tracks[key] = track
        return detector


def _restore(entry: Mapping[str, Any], where: str, config: BeaconConfig) -> tuple[_Key, _Track]:
    parts = _list(entry.get("key"), f"{where}.key")
    if len(parts) != 5:
        raise StateError(f"{where}.key: expected 5 parts")
    sensor, source, destination, port, transport = parts
    for name, value in (("sensor", sensor), ("source", source), ("destination", destination)):
        _str(value, f"{where}.key.{name}")
    key = (
        sensor,
        source,
        destination,
        None if port is None else _int(port, f"{where}.key.port"),
        _str(transport, f"{where}.key.transport"),
    )
    track = _Track()
    times = [_int(t, f"{where}.times") for t in _list(entry.get("times"), f"{where}.times")]
    if times != sorted(times):
        raise StateError(f"{where}.times: not in order")
    track.times.extend(times[-config.window :])
    events = [_str(e, f"{where}.events") for e in _list(entry.get("events"), f"{where}.events")]
    track.events.extend(events[-config.max_evidence :] if config.max_evidence else [])
    track.last = _int(entry.get("last"), f"{where}.last")
    fired = entry.get("fired")
    track.fired = None if fired is None else _int(fired, f"{where}.fired")
    for port in _list(entry.get("sliced"), f"{where}.sliced")[-MAX_SLICED:]:
        track.sliced.append(None if port is None else _int(port, f"{where}.sliced"))
    return key, track


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StateError(f"{where}: expected an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"{where}: expected a list")
    return value


def _int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
        raise StateError(f"{where}: expected a 64-bit integer, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where}: expected a string, got {value!r}")
    return value


def _first_octet(address: str) -> int:
    head = address.split(".", 1)[0]
    return int(head) if head.isdigit() else -1
