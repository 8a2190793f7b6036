"""Delivery of record batches to the central service.

Each batch is one gzip-compressed JSON :class:`~sensors.wire.Envelope`, POSTed with the
sensor's bearer token over verified TLS (a private CA can be named). Transient failures
(connection errors, timeouts, 408, 429, 5xx) are retried with exponential backoff and full
jitter, honouring ``Retry-After``, until a time budget runs out; a client error is final and
raised at once with the server's explanation.

The disk spool that holds batches while the service is unreachable wraps this class.
"""

from __future__ import annotations

import gzip
import math
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
from pydantic import ValidationError

from sensors.errors import SensorError, ShipError, ShipRejectedError, ShipUnreachableError
from sensors.wire import SCHEMA_VERSION, IngestReply, utc

USER_AGENT: Final = "trustwatch-sensor/0.1"
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER: Final = 300.0  # never let a server park us for longer than five minutes


@dataclass(frozen=True)
class ShipperConfig:
    """Where and how to ship. ``token`` is kept out of ``repr`` so it never reaches a log."""

    api_url: str
    token: str = field(repr=False)
    sensor_id: str
    ca_file: Path | None = None
    timeout: float = 10.0
    retry_budget: float = 60.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    gzip_level: int = 6


class Shipper:
    """Posts batches and heartbeats; see the module docstring for the retry policy."""

    def __init__(
        self,
        config: ShipperConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock = clock
        self._jitter = jitter
        self._client = httpx.Client(
            base_url=config.api_url.rstrip("/"),
            verify=_tls_context(config.ca_file),
            timeout=httpx.Timeout(config.timeout),
            headers={
                "Authorization": f"Bearer {config.token}",
                "User-Agent": USER_AGENT,
            },
        )
        self.attempts = 0
        self.retries = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Shipper:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, records: Sequence[dict[str, Any]]) -> IngestReply:
        """Deliver one batch; return the server's reply (accepted, duplicates, rejected)."""
        return self.post_batch(self.encode(records))

    def encode(self, records: Sequence[dict[str, Any]]) -> bytes:
        """The request body of one batch: a gzip-compressed envelope, ready to spool or send."""
        envelope = {
            "schema_version": SCHEMA_VERSION,
            "sensor_id": self.config.sensor_id,
            "sent_at": utc(self._clock()),
            "records": records,
        }
        return gzip.compress(orjson.dumps(envelope), compresslevel=self.config.gzip_level)

    def post_batch(self, body: bytes) -> IngestReply:
        """POST one encoded batch (see :meth:`encode`), retrying within the budget."""
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        response = self._post("/api/v1/ingest", body, headers)
        try:
            return IngestReply.model_validate_json(response.content)
        except ValidationError as exc:
            # The batch may or may not have been stored; resending it is safe (duplicates are
            # recognised), so say so rather than guess.
            raise ShipError(
                f"{self.config.api_url} answered {response.status_code} with something that is "
                "not a TrustWatch ingest reply; is --api the TrustWatch service?"
            ) from exc

    def heartbeat(self, sensor_version: str, counters: dict[str, int]) -> None:
        body = orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "sensor_id": self.config.sensor_id,
                "sent_at": utc(self._clock()),
                "sensor_version": sensor_version,
                "counters": counters,
            }
        )
        self._post("/api/v1/sensors/heartbeat", body, {"Content-Type": "application/json"})

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        started = self._monotonic()
        attempt = 0
        while True:
            self.attempts += 1
            wait: float | None = None
            try:
                response = self._client.post(path, content=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return response
                problem = f"HTTP {response.status_code}: {_detail(response)}"
                if response.status_code not in _RETRYABLE_STATUS:
                    raise ShipRejectedError(
                        f"{self.config.api_url}{path} refused the request: {problem}",
                        status=response.status_code,
                    )
                wait = _retry_after(response)
            if wait is None:
                ceiling = min(self.config.backoff_cap, self.config.backoff_base * 2**attempt)
                wait = ceiling * self._jitter()  # full jitter: spreads sensors that failed together
            elapsed = self._monotonic() - started
            if elapsed + wait > self.config.retry_budget:
                raise ShipUnreachableError(
                    f"{self.config.api_url}{path}: gave up after {attempt + 1} attempts in "
                    f"{elapsed:.1f}s; last problem: {problem}"
                )
            attempt += 1
            self.retries += 1
            self._sleep(wait)


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification is always on: the system's trust store, or the private CA given."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SensorError(f"cannot use {ca_file} as a CA bundle: {exc}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = response.text
    return str(detail)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date; fall back to our own backoff
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
