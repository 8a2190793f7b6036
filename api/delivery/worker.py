"""The delivery worker: posts the outbox's notifications to the receivers, signed, until each
is delivered or dead.

It runs as one task in the serving process (``trustwatch serve`` holds the data directory's
lock, so there is one worker per store). Ingest wakes it when it queues an alert; otherwise it
sleeps until the next notification is due. Each round it takes the due notifications from the
store (sealing them), posts them concurrently, and records every attempt:

- 2xx: delivered.
- 410 Gone: the receiver says stop: dead at once.
- anything else (429, 5xx, a refused signature, a timeout, a refused connection): retried
  after an exponential backoff with jitter (``delivery_retry_seconds`` doubling up to
  ``delivery_max_retry_seconds``); a ``Retry-After`` (seconds or an HTTP date) is honoured
  when it asks for longer, up to that cap. Past the notification's deadline
  (``delivery_max_age_seconds`` after it was due) it is dead; an admin replays it by hand.

The body is built once, at the first attempt, and stored: every retry sends the same bytes
under the same ``webhook-id`` (signed afresh, with a fresh timestamp), which the receiver
dedupes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import orjson
from anyio import to_thread
from pydantic import TypeAdapter

from api.delivery.routing import Receiver
from api.delivery.signing import sign_headers
from api.delivery.stix import alerts_bundle
from api.metrics import Metrics
from api.store import Store
from api.store.protocol import Alert, AttemptResult, Claimed

log = logging.getLogger(__name__)

PAYLOAD_TYPE: Final = "trustwatch.alerts"
PAYLOAD_VERSION: Final = 1
BATCH: Final = 32  # notifications posted at once; more wait for the next round
IDLE_POLL_SECONDS: Final = 30.0  # a safety net: ingest wakes the worker when it queues
MAX_ERROR_CHARS: Final = 300
_ALERT_JSON: Final = TypeAdapter(Alert)


@dataclass(frozen=True)
class RetryPolicy:
    first: float = 1.0
    cap: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: ``first * 2**(attempt-1)`` capped, with
        "equal jitter" (half fixed, half random, so retries of many notifications spread out
        but none comes back at once), or the receiver's ``Retry-After`` if longer (capped).

        >>> policy = RetryPolicy(first=1.0, cap=8.0)
        >>> 0.5 <= policy.delay(1, None, random.Random(0)) <= 1.0
        True
        >>> 4.0 <= policy.delay(10, None, random.Random(0)) <= 8.0
        True
        >>> policy.delay(1, 30.0, random.Random(0))
        8.0
        """
        base = min(self.cap, self.first * 2.0 ** min(attempt - 1, 62))
        jittered: float = base / 2 + rng.uniform(0, base / 2)
        if retry_after is not None:
            jittered = max(jittered, min(retry_after, self.cap))
        return jittered


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (``None`` if absent or unreadable).

    >>> from datetime import UTC
    >>> retry_after_seconds("120", datetime(2026, 1, 1, tzinfo=UTC))
    120.0
    >>> retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", datetime(2026, 1, 1, tzinfo=UTC))
    60.0
    >>> retry_after_seconds("soon", datetime(2026, 1, 1, tzinfo=UTC)) is None
    True
    >>> retry_after_seconds("9" * 5000, datetime(2026, 1, 1, tzinfo=UTC))
    10000000000.0
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Beyond ten digits it is past any cap anyway (and int() of a huge string is refused).
        return float(int(value[:10])) if len(value) <= 10 else 1e10
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def build_payload(claimed: Claimed, alerts: Sequence[Alert], receiver: Receiver) -> bytes:
    """The notification's body: its alerts as the API shows them and their STIX 2.1 bundle."""
    documents: list[Any] = [
        _ALERT_JSON.dump_python(replace(alert, delivery=None), mode="json", exclude={"delivery"})
        for alert in alerts
    ]
    return orjson.dumps(
        {
            "type": PAYLOAD_TYPE,
            "version": PAYLOAD_VERSION,
            "notification_id": claimed.id,
            "receiver": receiver.name,
            "group": claimed.group,
            "alerts": documents,
            "stix": alerts_bundle(alerts, receiver.config.tlp, claimed.id),
        }
    )


class DeliveryWorker:
    """See the module docstring. :meth:`run` until cancelled; :meth:`wake` from any thread."""

    def __init__(
        self,
        store: Store,
        receivers: Sequence[Receiver],
        policy: RetryPolicy,
        timeout: float,
        clock: Callable[[], datetime],
        metrics: Metrics,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.receivers = {receiver.name: receiver for receiver in receivers}
        self.policy = policy
        self.timeout = timeout
        self.clock = clock
        self.metrics = metrics
        self.rng = rng or random.SystemRandom()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run_logged(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a task whose unexpected end is logged at once, not at exit."""
        task = asyncio.create_task(self.run())
        task.add_done_callback(_log_end)
        return task

    def wake(self) -> None:
        """Something was queued: look now (safe from any thread; a no-op before :meth:`run`)."""
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the worker is gone
                loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        limits = httpx.Limits(max_connections=BATCH, max_keepalive_connections=8)
        async with httpx.AsyncClient(
            timeout=self.timeout, limits=limits, follow_redirects=False, trust_env=False
        ) as client:
            recovered = False
            while True:
                self._event.clear()
                try:
                    if not recovered:
                        # What a previous run (or a failed round) left sending is due again.
                        count = await to_thread.run_sync(self.store.recover_deliveries)
                        recovered = True
                        if count:
                            log.warning("interrupted deliveries are due again", extra={"n": count})
                    if await self.round(client):
                        continue  # there may be more due at once
                    await self._sleep()
                except Exception:  # a store hiccup must not end delivery for good
                    log.exception("delivery round failed; trying again shortly")
                    recovered = False  # what this round took is sending: put it back
                    await asyncio.sleep(1.0)

    async def _sleep(self) -> None:
        assert self._event is not None  # noqa: S101 - run() set it
        due = await to_thread.run_sync(self.store.next_delivery_due)
        wait = IDLE_POLL_SECONDS
        if due is not None:
            wait = min(wait, max(0.0, (due - self.clock()).total_seconds()))
        if wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=wait)

    async def round(self, client: httpx.AsyncClient) -> int:
        """Take what is due, post it, record the outcomes; the number taken."""
        claimed = await to_thread.run_sync(self.store.claim_deliveries, self.clock(), BATCH)
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._guarded(client, item) for item in claimed))
        await to_thread.run_sync(self.store.record_delivery_attempts, results)
        for result in results:
            self.metrics.delivery_attempts.labels(
                self._receiver_of(result, claimed), result.outcome
            ).inc()
        return len(claimed)

    @staticmethod
    def _receiver_of(result: AttemptResult, claimed: Sequence[Claimed]) -> str:
        return next(c.receiver for c in claimed if c.id == result.notification_id)

    async def _guarded(self, client: httpx.AsyncClient, claimed: Claimed) -> AttemptResult:
        """One attempt; whatever goes wrong in it is that attempt's failure (retried), never
        the round's: the other notifications' outcomes are recorded."""
        try:
            return await self._attempt(client, claimed)
        except Exception as exc:
            log.exception("delivery attempt failed", extra={"notification": claimed.id})
            error = f"internal error: {type(exc).__name__}"
            delay = self.policy.delay(claimed.attempts + 1, None, self.rng)
            now = self.clock()
            return AttemptResult(
                claimed.id,
                now,
                0.0,
                "retry",
                claimed.payload,
                None,
                error,
                now + timedelta(seconds=delay),
            )

    async def _attempt(self, client: httpx.AsyncClient, claimed: Claimed) -> AttemptResult:
        receiver = self.receivers.get(claimed.receiver)
        started = self.clock()
        if receiver is None:
            return AttemptResult(
                claimed.id,
                started,
                0.0,
                "dead",
                claimed.payload,
                error=f"receiver {claimed.receiver} is no longer configured",
            )
        payload = claimed.payload
        if payload is None:
            payload = await to_thread.run_sync(self._payload, claimed, receiver)
        headers = sign_headers(receiver.keys, claimed.id, started, payload)
        headers["content-type"] = "application/json"
        clock = time.perf_counter()
        status: int | None = None
        retry_after: float | None = None
        try:
            # The whole attempt, not each read: a receiver trickling its answer is cut off too.
            async with asyncio.timeout(self.timeout):
                response = await client.post(receiver.config.url, content=payload, headers=headers)
            status = response.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
            retry_after = retry_after_seconds(response.headers.get("retry-after"), started)
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS] or type(exc).__name__
        elapsed_ms = (time.perf_counter() - clock) * 1000
        if error is None:
            return AttemptResult(claimed.id, started, elapsed_ms, "delivered", payload, status)
        if status == 410:
            return AttemptResult(
                claimed.id, started, elapsed_ms, "dead", payload, status, "410 Gone: stopped"
            )
        delay = self.policy.delay(claimed.attempts + 1, retry_after, self.rng)
        next_at = self.clock() + timedelta(seconds=delay)
        if next_at > claimed.deadline:
            return AttemptResult(
                claimed.id,
                started,
                elapsed_ms,
                "dead",
                payload,
                status,
                f"gave up after {claimed.attempts + 1} attempts: {error}",
            )
        return AttemptResult(
            claimed.id, started, elapsed_ms, "retry", payload, status, error, next_at
        )

    def _payload(self, claimed: Claimed, receiver: Receiver) -> bytes:
        alerts = [a for a in map(self.store.get_alert, claimed.alert_ids) if a is not None]
        return build_payload(claimed, alerts, receiver)


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the delivery worker stopped", exc_info=task.exception())
