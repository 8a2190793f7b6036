"""The network sensor's pipeline: capture → header decoding → flow meter → records → sink.

A sink is where records go: :class:`JsonlSink` (a local file, written atomically) or
:class:`SpoolSink` (the disk spool, from which :class:`~sensors.forwarder.Forwarder` sends
them). :func:`meter_capture` reads a file; :func:`run_live` an interface until told to stop,
releasing a batch when it is full or when its oldest flow's last packet is
:data:`BATCH_WAIT` old.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import orjson

from sensors.capture import LiveCapture
from sensors.errors import CaptureTruncatedError, SensorError
from sensors.flows import FlowExporter, FlowMeter, MeterConfig
from sensors.packet import PacketDecoder
from sensors.pcapfile import Frame, count_frames, read_frames
from sensors.spool import Spool

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    def write(self, records: list[dict[str, Any]]) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@dataclass
class NetSummary:
    """What one run did; printed as JSON at the end of ``trustwatch sensor net``."""

    capture: str
    frames: int = 0
    packets: int = 0
    flows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    truncated: bool = False
    spool: dict[str, int] = field(default_factory=dict)
    decode: dict[str, int] = field(default_factory=dict)
    meter: dict[str, int] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)


class JsonlSink:
    """Writes records as JSON lines to a temporary file and renames it into place on commit,
    so a failed run never leaves a partial file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise SensorError(f"--out: cannot write in {path.parent}: {exc.strerror}") from exc
        self._tmp = Path(tmp)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self.written = 0

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self.written += len(records)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class SpoolSink:
    """Encodes each batch and stores it in the spool for the forwarder."""

    def __init__(
        self,
        spool: Spool,
        encode: Callable[[list[dict[str, Any]]], bytes],
        on_put: Callable[[], None] = lambda: None,
    ) -> None:
        self.spool = spool
        self.encode = encode
        self.on_put = on_put  # e.g. wake the forwarder: a batch is waiting

    def write(self, records: list[dict[str, Any]]) -> None:
        self.spool.put(self.encode(records), len(records))
        self.on_put()

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None  # what is spooled is whole and valid; it is sent


class Batcher:
    """Gathers records into batches of ``size``; a partial batch goes out once its oldest
    record's flow saw its last packet ``max_wait`` seconds ago, so on a quiet network a record
    leaves at most that long after the traffic it describes (the flow meter's linger counts
    towards it rather than adding to it). The same bound also holds from the moment a record
    was added, by the monotonic clock, so a wall clock that steps back cannot hold a batch."""

    def __init__(self, sink: RecordSink, size: int, max_wait: float) -> None:
        self.sink = sink
        self.size = size
        self.max_wait = max_wait
        self._pending: list[dict[str, Any]] = []
        self._oldest_packet = 0.0  # wall clock, seconds: the earliest last packet pending
        self._since = 0.0  # monotonic, seconds: when the first pending record was added

    def add(self, records: list[tuple[dict[str, Any], float]], now: float, wall: float) -> None:
        """Add ``(record, last_packet)`` pairs, ``last_packet`` in wall-clock seconds."""
        if not records:
            return
        if not self._pending:
            self._since = now
            self._oldest_packet = wall
        self._oldest_packet = min(self._oldest_packet, *(last for _, last in records))
        self._pending.extend(record for record, _ in records)
        while len(self._pending) >= self.size:
            self.sink.write(self._pending[: self.size])
            del self._pending[: self.size]
            self._since = now

    def tick(self, now: float, wall: float) -> None:
        if self._pending and (
            wall - self._oldest_packet >= self.max_wait or now - self._since >= self.max_wait
        ):
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.sink.write(self._pending)
            self._pending = []


def meter_capture(
    path: Path,
    sensor_id: str,
    sink: RecordSink,
    *,
    meter_config: MeterConfig | None = None,
    batch_size: int = 1000,
    allow_truncated: bool = False,
) -> NetSummary:
    """Turn the capture at ``path`` into flow records and hand them to ``sink`` in batches.

    The whole file is checked first: a truncated or corrupt capture raises before any record
    leaves, unless ``allow_truncated`` asks to process the complete packets of a cut file.
    """
    summary = NetSummary(capture=str(path))
    pending: list[dict[str, Any]] = []
    try:
        decoder = PacketDecoder()
        meter = FlowMeter(meter_config)
        exporter = FlowExporter(sensor_id)
        try:
            count_frames(path)
        except CaptureTruncatedError as exc:
            if not allow_truncated:
                raise
            log.warning("%s; processing the %d complete packets", exc, exc.complete)
            summary.truncated = True
        try:
            for frame in read_frames(path):
                summary.frames += 1
                packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
                if packet is None:
                    continue
                meter.add(packet, frame.data)
                if meter.ended:
                    pending.extend(exporter.record(flow) for flow in meter.drain())
                    if len(pending) >= batch_size:
                        sink.write(pending[:batch_size])
                        del pending[:batch_size]
        except CaptureTruncatedError:
            if not allow_truncated:
                raise
        meter.flush()
        pending.extend(exporter.record(flow) for flow in meter.drain())
        for start in range(0, len(pending), batch_size):
            sink.write(pending[start : start + batch_size])
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return _summarised(summary, decoder, meter)


BATCH_WAIT: Final = 1.0  # seconds after a flow's last packet its record may wait for a batch
TICK: Final = 0.2  # seconds between housekeeping rounds when the wire is quiet


def run_live(
    capture: LiveCapture,
    sensor_id: str,
    sink: RecordSink,
    stop: threading.Event,
    *,
    meter_config: MeterConfig | None = None,
    batch_size: int = 1000,
    batch_wait: float = BATCH_WAIT,
    counters: dict[str, int] | None = None,
) -> NetSummary:
    """Meter live traffic until ``stop`` is set; then end every flow and release everything.

    ``counters``, when given, is kept up to date for heartbeats (packets, flows, drops).
    """
    summary = NetSummary(capture=capture.interface)
    decoder = PacketDecoder()
    meter = FlowMeter(meter_config)
    exporter = FlowExporter(sensor_id)
    batcher = Batcher(sink, batch_size, batch_wait)

    def take(frames: Iterator[Frame]) -> None:
        for frame in frames:
            summary.frames += 1
            packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
            if packet is not None:
                meter.add(packet, frame.data)

    def ended() -> list[tuple[dict[str, Any], float]]:
        return [(exporter.record(flow), flow.last_ns / 1e9) for flow in meter.drain()]

    try:
        while not stop.is_set():
            take(capture.frames(TICK))
            wall_ns = time.time_ns()  # live: packet time is wall-clock time
            meter.expire(wall_ns)
            now, wall = time.monotonic(), wall_ns / 1e9
            batcher.add(ended(), now, wall)
            batcher.tick(now, wall)
            if counters is not None:
                counters.update(_live_counters(decoder, meter, capture))
        # Asked to stop: what the kernel already captured is still read, then every flow ends.
        take(capture.frames(0.0, most=1_000_000))
        meter.flush()
        batcher.add(ended(), time.monotonic(), time.time())
        batcher.flush()
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return _summarised(summary, decoder, meter)


def _live_counters(
    decoder: PacketDecoder, meter: FlowMeter, capture: LiveCapture
) -> dict[str, int]:
    return {
        "frames": capture.received,
        "packets": meter.counters.packets,
        "flows": meter.counters.flows_ended,
        "flows_open": len(meter),
        "flows_evicted": meter.counters.flows_evicted,
        "decode_malformed": decoder.counters.malformed,
        "decode_unsupported": decoder.counters.unsupported_link + decoder.counters.non_ip,
    }


def _summarised(summary: NetSummary, decoder: PacketDecoder, meter: FlowMeter) -> NetSummary:
    summary.packets = meter.counters.packets
    summary.flows = meter.counters.flows_ended
    summary.decode = asdict(decoder.counters)
    summary.meter = asdict(meter.counters)
    return summary
