"""When a live sensor lets records go: the batcher's deadline counts from the flow's last
packet, and the forwarder sends a spooled batch at once rather than at its next poll (a real
HTTP server on loopback answers)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sensors.forwarder import Forwarder
from sensors.net import Batcher, SpoolSink
from sensors.spool import Spool
from tests.sensors.test_shipper import OK, ScriptedServer, shipper_for


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def write(self, records: list[dict[str, Any]]) -> None:
        self.batches.append(list(records))

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None


def rec(n: int) -> dict[str, Any]:
    return {"event.id": f"{n:032x}"}


def test_a_flow_that_lingered_goes_out_at_once_when_its_last_packet_is_old_enough() -> None:
    sink = ListSink()
    batcher = Batcher(sink, size=100, max_wait=1.0)
    # The flow ended by RST at wall 100.0 and left the meter after its 1 s linger, at 101.0:
    # it has waited its second already, so the next tick sends it; it does not wait another.
    batcher.add([(rec(1), 100.0)], now=5.0, wall=101.0)
    batcher.tick(now=5.0, wall=101.0)
    assert [[rec(1)]] == sink.batches


def test_a_fresh_flow_waits_for_company_until_its_deadline() -> None:
    sink = ListSink()
    batcher = Batcher(sink, size=100, max_wait=1.0)
    batcher.add([(rec(1), 100.0)], now=5.0, wall=100.2)
    batcher.tick(now=5.5, wall=100.7)
    assert [] == sink.batches
    batcher.add([(rec(2), 100.8)], now=5.6, wall=100.8)
    batcher.tick(now=5.9, wall=101.0)  # the oldest record's last packet is 1 s old
    assert [[rec(1), rec(2)]] == sink.batches


def test_the_oldest_last_packet_sets_the_deadline_whatever_the_order_added() -> None:
    sink = ListSink()
    batcher = Batcher(sink, size=100, max_wait=1.0)
    batcher.add([(rec(1), 100.5)], now=5.0, wall=100.5)
    batcher.add([(rec(2), 99.9)], now=5.1, wall=100.6)  # an idle flow ended just now
    batcher.tick(now=5.2, wall=100.9)
    assert [[rec(1), rec(2)]] == sink.batches


def test_a_wall_clock_stepping_back_cannot_hold_a_batch() -> None:
    sink = ListSink()
    batcher = Batcher(sink, size=100, max_wait=1.0)
    batcher.add([(rec(1), 100.0)], now=5.0, wall=100.0)
    batcher.tick(now=5.5, wall=40.0)  # the clock was set back a minute
    assert [] == sink.batches
    batcher.tick(now=6.0, wall=40.5)  # one second by the monotonic clock
    assert [[rec(1)]] == sink.batches


def test_a_full_batch_goes_at_once_and_the_rest_keeps_its_deadline() -> None:
    sink = ListSink()
    batcher = Batcher(sink, size=2, max_wait=1.0)
    batcher.add([(rec(n), 100.0) for n in range(3)], now=5.0, wall=100.1)
    assert [[rec(0), rec(1)]] == sink.batches
    batcher.tick(now=5.1, wall=100.5)
    assert 1 == len(sink.batches)
    batcher.flush()
    assert [rec(2)] == sink.batches[-1]


def test_a_spooled_batch_is_sent_at_once_not_at_the_next_poll(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    with ScriptedServer([OK, OK]) as server, shipper_for(server.url, []) as shipper:
        forwarder = Forwarder(spool, shipper)
        sink = SpoolSink(spool, shipper.encode, forwarder.wake)
        stop = threading.Event()
        # An hour's poll: only the wake can explain a prompt send.
        thread = threading.Thread(target=forwarder.run, args=(stop,), kwargs={"idle_wait": 3600})
        thread.start()
        try:
            time.sleep(0.2)  # the forwarder found the spool empty and sleeps
            assert [] == server.received
            sent = []
            for n in range(2):
                started = time.monotonic()
                sink.write([rec(n)])
                while len(server.received) <= n and time.monotonic() - started < 10:
                    time.sleep(0.005)
                sent.append(time.monotonic() - started)
        finally:
            stop.set()
            forwarder.wake()
            thread.join(timeout=10)
    assert not thread.is_alive(), "stop and wake did not end an idle forwarder"
    assert 2 == len(server.received)
    assert max(sent) < 5, sent
    assert 0 == len(spool)


def test_while_unreachable_new_batches_wait_out_the_back_off(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    # Nothing listens on this port; the shipper gives up at once (no retry budget).
    dead = ScriptedServer([])
    url = dead.url
    dead.httpd.server_close()
    with shipper_for(url, [], budget=0.0) as shipper:
        forwarder = Forwarder(spool, shipper)
        attempts_before = shipper.attempts
        sink = SpoolSink(spool, shipper.encode, forwarder.wake)
        stop = threading.Event()
        thread = threading.Thread(
            target=forwarder.run, args=(stop,), kwargs={"idle_wait": 3600, "retry_wait": 3600}
        )
        sink.write([rec(0)])
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while shipper.attempts == attempts_before and time.monotonic() < deadline:
                time.sleep(0.005)
            tried = shipper.attempts
            for n in range(1, 4):
                sink.write([rec(n)])
            time.sleep(0.3)
            assert tried == shipper.attempts, "a new batch cut the back-off short"
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive(), "stop did not end the back-off"
    assert 4 == len(spool)
