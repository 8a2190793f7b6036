"""Saving and restoring detector state: a restored detector continues exactly where the saved
one stopped; anything else is refused with a reason, and never runs code."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from scoring.anomaly import AnomalyDetectors, DetectorConfig, FlowDetector, HostMinuteDetector
from scoring.errors import StateError
from scoring.state import FORMAT, MAGIC, dumps, loads
from tests.scoring.test_anomaly import exfiltration, normal, scan_minute


def detectors() -> AnomalyDetectors:
    config = DetectorConfig(window_size=50, warm_up=200)
    return AnomalyDetectors(FlowDetector(config), HostMinuteDetector(config))


def test_a_restored_detector_continues_exactly_where_the_saved_one_stopped() -> None:
    original = detectors()
    original.process_all(normal(1500))
    restored = loads(dumps(original), AnomalyDetectors)
    later = [*normal(1500, seed=2, start=1500), exfiltration(3001), *scan_minute("10.0.0.5", 40)]
    expected = original.process_all(later) + original.flush()
    actual = restored.process_all(later) + restored.flush()
    assert expected == actual
    assert any(f.event_ids == ("s1-3001",) for f in actual)  # and it did find something


def test_a_fresh_detector_does_not_behave_like_a_restored_one() -> None:
    """The check above can fail: without the learned state the same stream gives other results."""
    original = detectors()
    original.process_all(normal(1500))
    later = [*normal(1500, seed=2, start=1500), exfiltration(3001)]
    assert original.process_all(later) != detectors().process_all(later)


def envelope(payload: bytes, version: int = FORMAT) -> bytes:
    return MAGIC + version.to_bytes(2, "big") + hashlib.sha256(payload).digest() + payload


class Boom:
    """A pickle that runs a command when loaded: the unpickler must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04 a zip file", "bad magic"),
        (MAGIC + b"\x00", "cut short"),
        (envelope(b"x", version=9), "state format 9"),
        (dumps(AnomalyDetectors())[:-10], "checksum"),
        (envelope(pickle.dumps({"not": "detectors"})), "holds a dict"),
        (envelope(b"\x80\x05not a pickle"), "does not load"),
    ],
    ids=["empty", "foreign", "short", "version", "truncated", "wrong-type", "garbage"],
)
def test_a_bad_state_is_refused_with_the_reason(data: bytes, reason: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = data.replace(b"{marker}", str(marker).encode())
    with pytest.raises(StateError, match=reason):
        loads(data, AnomalyDetectors)
    assert not marker.exists()


def test_a_flipped_bit_is_caught() -> None:
    data = bytearray(dumps(detectors()))
    data[len(data) // 2] ^= 0x01
    with pytest.raises(StateError, match="checksum"):
        loads(bytes(data), AnomalyDetectors)
