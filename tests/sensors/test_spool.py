"""The disk spool: order, durability across restarts, its bound, and refused batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.errors import SensorError
from sensors.spool import REJECTED_KEPT, Spool, SpoolCounters


def test_batches_leave_in_the_order_they_came(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    for i in range(3):
        spool.put(f"batch {i}".encode(), records=10 + i)
    seen = []
    while (batch := spool.oldest()) is not None:
        seen.append((spool.read(batch), batch.records))
        spool.done(batch)
    assert [(b"batch 0", 10), (b"batch 1", 11), (b"batch 2", 12)] == seen
    assert SpoolCounters(batches_spooled=3, batches_sent=3) == spool.counters
    assert [] == [p.name for p in (tmp_path / "spool").glob("*.batch")]


def test_a_restart_finds_the_batches_and_continues_the_sequence(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.put(b"a", 1)
    first.put(b"b", 2)
    (tmp_path / ".00000000000000000002-5.batch.tmp").write_bytes(b"cut short by a crash")
    second = Spool(tmp_path, max_bytes=1 << 20)
    added = second.put(b"c", 3)
    assert (2, 3, 3) == (added.sequence, len(second), second.records - 3)
    assert [b"a", b"b", b"c"] == [p.read_bytes() for p in sorted(tmp_path.glob("*.batch"))]
    assert [] == list(tmp_path.glob(".*.tmp"))


def test_a_full_spool_drops_the_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=2048)
    for i in range(5):
        spool.put(bytes([i]) * 600, records=100)
    assert (3, 1800) == (len(spool), spool.size)
    assert (2, 200) == (spool.counters.batches_dropped, spool.counters.records_dropped)
    oldest = spool.oldest()
    assert oldest is not None
    assert bytes([2]) * 600 == spool.read(oldest)


def test_a_batch_larger_than_the_spool_is_an_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024)
    with pytest.raises(SensorError, match="larger than the whole spool"):
        spool.put(bytes(2000), 1)
    with pytest.raises(SensorError, match="at least 1 KiB"):
        Spool(tmp_path, max_bytes=10)


def test_refused_batches_are_kept_aside_and_bounded(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(REJECTED_KEPT + 5):
        spool.reject(spool.put(b"%d" % i, 1))
    kept = sorted((tmp_path / "rejected").glob("*.batch"))
    assert (REJECTED_KEPT, b"%d" % (REJECTED_KEPT + 4), 0) == (
        len(kept),
        kept[-1].read_bytes(),
        len(spool),
    )
