"""Running ``trustwatch sensor net``: a source (file or interface), a destination (a JSONL
file, or the service through the spool), and the signals that stop a live sensor."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensors.capture import LiveCapture
from sensors.errors import ShipUnreachableError
from sensors.flows import MeterConfig
from sensors.forwarder import Forwarder
from sensors.net import JsonlSink, NetSummary, RecordSink, SpoolSink, meter_capture, run_live
from sensors.shipper import Shipper, ShipperConfig
from sensors.spool import Spool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetJob:
    """What one run of the network sensor does; built from the command line."""

    sensor_id: str
    pcap: Path | None
    interface: str | None
    bpf: str | None
    meter: MeterConfig
    batch_size: int
    batch_wait: float
    allow_truncated: bool


def default_spool_dir(sensor_id: str) -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "trustwatch" / f"spool-{sensor_id}"


def to_file(job: NetJob, out: Path) -> NetSummary:
    sink = JsonlSink(out)
    try:
        if job.pcap is not None:
            return _meter_file(job, sink)
        return _live(job, sink, None)
    except BaseException:
        sink.abort()  # also when the source could not be opened: no partial or stray file
        raise


def to_service(
    job: NetJob, config: ShipperConfig, spool_dir: Path, spool_bytes: int, version: str
) -> tuple[NetSummary, bool]:
    """Meter into the spool and forward it. Returns the summary and whether everything was
    delivered (batches that could not be are still in the spool for the next run)."""
    spool = Spool(spool_dir, spool_bytes)
    counters: dict[str, int] = {}
    with Shipper(config) as shipper:
        forwarder = Forwarder(
            spool,
            shipper,
            heartbeat=lambda: {**counters, **_spool_counters(spool)},
            sensor_version=version,
        )
        if job.pcap is not None:
            try:
                forwarder.drain()  # what an earlier run could not deliver goes first
            except ShipUnreachableError as exc:
                log.warning("service unreachable before metering: %s", exc)
            summary = _meter_file(job, SpoolSink(spool, shipper.encode))
            counters.update(packets=summary.packets, flows=summary.flows)
        else:
            done = threading.Event()
            thread = threading.Thread(target=forwarder.run, args=(done,), daemon=True)
            thread.start()
            try:
                summary = _live(job, SpoolSink(spool, shipper.encode, forwarder.wake), counters)
            finally:
                done.set()
                forwarder.wake()
                thread.join()
        delivered = True
        try:
            forwarder.drain()
        except ShipUnreachableError as exc:
            delivered = False
            log.error(
                "%s; %d batches (%d records) wait in the spool %s for the next run",
                exc,
                len(spool),
                spool.records,
                spool.directory,
            )
        forwarder.beat(force=True)
    summary.accepted = forwarder.counters.accepted
    summary.duplicates = forwarder.counters.duplicates
    summary.rejected = forwarder.counters.rejected_records
    summary.rejections = forwarder.counters.rejections
    summary.spool = _spool_counters(spool)
    return summary, delivered


def _meter_file(job: NetJob, sink: RecordSink) -> NetSummary:
    assert job.pcap is not None  # noqa: S101 - callers check
    return meter_capture(
        job.pcap,
        job.sensor_id,
        sink,
        meter_config=job.meter,
        batch_size=job.batch_size,
        allow_truncated=job.allow_truncated,
    )


def _live(job: NetJob, sink: RecordSink, counters: dict[str, int] | None) -> NetSummary:
    assert job.interface is not None  # noqa: S101 - callers check
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with LiveCapture(job.interface, job.bpf) as capture:
            log.info("capturing on %s", job.interface)
            return run_live(
                capture,
                job.sensor_id,
                sink,
                stop,
                meter_config=job.meter,
                batch_size=job.batch_size,
                batch_wait=job.batch_wait,
                counters=counters,
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _spool_counters(spool: Spool) -> dict[str, Any]:
    return {
        "spool_batches": len(spool),
        "spool_bytes": spool.size,
        "spool_batches_dropped": spool.counters.batches_dropped,
        "spool_records_dropped": spool.counters.records_dropped,
        "spool_batches_rejected": spool.counters.batches_rejected,
    }
