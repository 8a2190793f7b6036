"""Draining the spool to the service, in order, with heartbeats.

A batch leaves the spool only once the service answered for it. When the service cannot be
reached, the batch stays and the forwarder tries again later; when the service refuses the
batch itself (400, 413, 415, 422: it will never be accepted), the batch is set aside so it does
not block the ones behind it; when the service refuses the *sensor* (401, 403: a revoked or
wrong token), forwarding stops, since every batch would fail the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sensors.errors import ShipError, ShipRejectedError, ShipUnreachableError
from sensors.shipper import Shipper
from sensors.spool import Spool
from sensors.wire import Rejection

log = logging.getLogger(__name__)

_SENSOR_REFUSED: Final = frozenset({401, 403})
MAX_REJECTIONS_KEPT: Final = 20
IDLE_WAIT: Final = 5.0  # seconds between looks at the spool when nothing woke the forwarder
RETRY_WAIT: Final = 1.0  # first pause after the service could not be reached
RETRY_CAP: Final = 30.0


@dataclass
class ForwardCounters:
    accepted: int = 0
    duplicates: int = 0
    rejected_records: int = 0
    rejections: list[dict[str, object]] = field(default_factory=list)


class Forwarder:
    def __init__(
        self,
        spool: Spool,
        shipper: Shipper,
        *,
        heartbeat: Callable[[], dict[str, int]] | None = None,
        sensor_version: str = "0",
        heartbeat_every: float = 30.0,
    ) -> None:
        self.spool = spool
        self.shipper = shipper
        self.counters = ForwardCounters()
        self._heartbeat = heartbeat
        self._sensor_version = sensor_version
        self._heartbeat_every = heartbeat_every
        self._last_heartbeat = float("-inf")
        self._wake = threading.Event()

    def wake(self) -> None:
        """A batch was spooled (or the run should stop): send without waiting for the poll."""
        self._wake.set()

    def drain(self) -> None:
        """Send every spooled batch, oldest first. Raises :class:`ShipError` when the service is
        unreachable (the batch stays) or refuses this sensor."""
        while (batch := self.spool.oldest()) is not None:
            try:
                reply = self.shipper.post_batch(self.spool.read(batch))
            except ShipRejectedError as exc:
                if exc.status in _SENSOR_REFUSED:
                    raise
                log.error("service refused batch %s for good: %s", batch.path.name, exc)
                self.spool.reject(batch)
                continue
            self.spool.done(batch)
            self.counters.accepted += reply.accepted
            self.counters.duplicates += reply.duplicates
            self.counters.rejected_records += len(reply.rejected)
            for rejection in reply.rejected[: MAX_REJECTIONS_KEPT - len(self.counters.rejections)]:
                self.counters.rejections.append(
                    Rejection(index=rejection.index, error=rejection.error).model_dump()
                )
            if reply.rejected:
                log.warning("service rejected %d records of a batch", len(reply.rejected))

    def beat(self, force: bool = False) -> None:
        """Send a heartbeat if one is due (or ``force``); never raises."""
        now = time.monotonic()
        if self._heartbeat is None or (
            not force and now - self._last_heartbeat < self._heartbeat_every
        ):
            return
        self._last_heartbeat = now
        try:
            self.shipper.heartbeat(self._sensor_version, self._heartbeat())
        except ShipError as exc:
            log.warning("heartbeat failed: %s", exc)

    def run(
        self, stop: threading.Event, *, idle_wait: float = IDLE_WAIT, retry_wait: float = RETRY_WAIT
    ) -> None:
        """Forward until ``stop`` is set: drain, beat, then sleep until :meth:`wake` (a batch
        was spooled) or ``idle_wait``. While the service is unreachable, back off from
        ``retry_wait`` doubling to :data:`RETRY_CAP`, and new batches do not cut the back-off
        short (they wait in the spool); only ``stop`` does. Call :meth:`wake` after setting
        ``stop`` so an idle forwarder notices at once."""
        backoff = retry_wait
        while not stop.is_set():
            self._wake.clear()  # a batch spooled from here on wakes the next sleep
            reachable = False
            try:
                self.drain()
                reachable = True
                backoff = retry_wait
            except ShipUnreachableError as exc:
                log.warning("service unreachable, batches wait in the spool: %s", exc)
            except ShipRejectedError as exc:
                log.error("service refused this sensor; forwarding stopped: %s", exc)
                return
            except ShipError as exc:
                log.warning("forwarding failed, will retry: %s", exc)
            self.beat()
            if reachable:
                self._wake.wait(idle_wait)
            else:
                stop.wait(backoff)
                backoff = min(backoff * 2, RETRY_CAP)
