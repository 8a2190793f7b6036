"""The network sensor's pipeline: capture → header decoding → flow meter → records → sink.

A sink is where records go: :class:`JsonlSink` (a local file, written atomically) or
:class:`ApiSink` (the central service through :class:`~sensors.shipper.Shipper`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from sensors.errors import CaptureTruncatedError
from sensors.flows import FlowExporter, FlowMeter, MeterConfig
from sensors.packet import PacketDecoder
from sensors.pcapfile import count_frames, read_frames
from sensors.shipper import Shipper
from sensors.wire import Rejection

log = logging.getLogger(__name__)

MAX_REJECTIONS_KEPT = 20
"""How many rejection reasons a run keeps to show; the count is always exact."""


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
    decode: dict[str, int] = field(default_factory=dict)
    meter: dict[str, int] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)


class JsonlSink:
    """Writes records as JSON lines to a temporary file and renames it into place on commit,
    so a failed run never leaves a partial file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


class ApiSink:
    """Ships each batch and tallies the server's answers."""

    def __init__(self, shipper: Shipper, summary: NetSummary) -> None:
        self.shipper = shipper
        self.summary = summary

    def write(self, records: list[dict[str, Any]]) -> None:
        reply = self.shipper.send(records)
        self.summary.accepted += reply.accepted
        self.summary.duplicates += reply.duplicates
        self.summary.rejected += len(reply.rejected)
        for rejection in reply.rejected:
            if len(self.summary.rejections) >= MAX_REJECTIONS_KEPT:
                break
            self.summary.rejections.append(
                Rejection(index=rejection.index, error=rejection.error).model_dump()
            )
        if reply.rejected:
            log.warning("service rejected %d records of a batch", len(reply.rejected))

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None


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
    summary.packets = meter.counters.packets
    summary.flows = meter.counters.flows_ended
    summary.decode = asdict(decoder.counters)
    summary.meter = asdict(meter.counters)
    return summary
