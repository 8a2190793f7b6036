"""The sensor's disk spool: batches wait here until the service has acknowledged them.

Each batch is one file holding the exact request body to POST (a gzip-compressed envelope),
named ``<sequence>-<records>.batch`` so that order and size are known without opening it.
A batch is written to a temporary name, flushed to disk and renamed, so a crash leaves either
the whole batch or nothing. It is deleted only after the service answered for it; a resend
after a crash is harmless, since the service recognises records it already holds.

The spool is bounded in bytes: when a new batch would not fit, the oldest batches are dropped
(and counted) — under a long outage the newest traffic is the most useful. A batch the service
refuses as invalid (a 4xx that retrying cannot fix) is moved to ``rejected/`` for inspection
instead of blocking the queue, also bounded.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sensors.errors import SensorError

_NAME: Final = re.compile(r"^(\d{20})-(\d{1,9})\.batch$")
REJECTED_KEPT: Final = 100  # refused batches kept for inspection; older ones are deleted


@dataclass(frozen=True)
class SpooledBatch:
    path: Path
    sequence: int
    records: int
    size: int


@dataclass
class SpoolCounters:
    batches_spooled: int = 0
    batches_sent: int = 0
    batches_dropped: int = 0
    records_dropped: int = 0
    batches_rejected: int = 0


class Spool:
    """A directory of batches, oldest first. Safe for one writer thread and one sender thread."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        if max_bytes < 1024:
            raise SensorError("the spool needs at least 1 KiB")
        self.directory = directory
        self.max_bytes = max_bytes
        self.counters = SpoolCounters()
        self._lock = threading.Lock()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            (directory / "rejected").mkdir(mode=0o700, exist_ok=True)
            for leftover in directory.glob(".*.tmp"):  # a write cut short by a crash
                leftover.unlink()
            self._batches = sorted(
                (b for b in map(self._parse, directory.iterdir()) if b is not None),
                key=lambda b: b.sequence,
            )
        except OSError as exc:
            raise SensorError(f"cannot use spool directory {directory}: {exc.strerror}") from exc
        self._next = self._batches[-1].sequence + 1 if self._batches else 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._batches)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(b.size for b in self._batches)

    @property
    def records(self) -> int:
        with self._lock:
            return sum(b.records for b in self._batches)

    def put(self, body: bytes, records: int) -> SpooledBatch:
        """Store one batch durably; drop the oldest ones if it would not fit."""
        if len(body) > self.max_bytes:
            raise SensorError(f"a batch of {len(body)} bytes is larger than the whole spool")
        with self._lock:
            while self._batches and sum(b.size for b in self._batches) + len(body) > self.max_bytes:
                oldest = self._batches.pop(0)
                oldest.path.unlink(missing_ok=True)
                self.counters.batches_dropped += 1
                self.counters.records_dropped += oldest.records
            sequence = self._next
            self._next += 1
            path = self.directory / f"{sequence:020d}-{records}.batch"
            tmp = self.directory / f".{path.name}.tmp"
            try:
                with tmp.open("wb") as handle:
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
                tmp.replace(path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise SensorError(
                    f"cannot write to spool {self.directory}: {exc.strerror}"
                ) from exc
            batch = SpooledBatch(path, sequence, records, len(body))
            self._batches.append(batch)
            self.counters.batches_spooled += 1
            return batch

    def oldest(self) -> SpooledBatch | None:
        with self._lock:
            return self._batches[0] if self._batches else None

    def read(self, batch: SpooledBatch) -> bytes:
        return batch.path.read_bytes()

    def done(self, batch: SpooledBatch) -> None:
        """The service acknowledged ``batch``: forget it."""
        with self._lock:
            self._forget(batch)
            batch.path.unlink(missing_ok=True)
            self.counters.batches_sent += 1

    def reject(self, batch: SpooledBatch) -> None:
        """The service refused ``batch`` for good: keep it aside, bounded, and go on."""
        with self._lock:
            self._forget(batch)
            rejected = self.directory / "rejected"
            batch.path.replace(rejected / batch.path.name)
            kept = sorted(rejected.glob("*.batch"))
            for old in kept[: max(0, len(kept) - REJECTED_KEPT)]:
                old.unlink(missing_ok=True)
            self.counters.batches_rejected += 1

    def _forget(self, batch: SpooledBatch) -> None:
        self._batches = [b for b in self._batches if b.sequence != batch.sequence]

    def _parse(self, path: Path) -> SpooledBatch | None:
        match = _NAME.match(path.name)
        if match is None or not path.is_file():
            return None
        return SpooledBatch(path, int(match.group(1)), int(match.group(2)), path.stat().st_size)
