"""The reference receiver: ``trustwatch receiver``, for integrators to test against and for our
own tests.

It accepts ``POST`` (on any path) of a JSON body signed in the Standard Webhooks form and
answers:

=====  ==================================================================================
200    recorded: the delivery is appended to the out file and fsync'd; or a duplicate of a
       ``webhook-id`` already there, answered 200 and not appended again
400    a ``webhook-*`` header is missing or malformed, or the body is not JSON
401    no signature matches a key (``SignatureMismatchError``), or the timestamp lies outside
       the tolerance either way (``TimestampToleranceError``)
413    the body is over the limit (1 MiB by default)
503    the delivery cannot be written (a full disk, say): send it again later
=====  ==================================================================================

For testing a sender's retries, ``fail_first=N`` answers the first N authentic deliveries
(retries of one id included) with ``fail_status`` (503 or 429, with ``Retry-After``; or 410)
and records nothing. ``GET /health`` answers ``{"status": "ok", "recorded": n}``.

Deliveries are handled one at a time on the event loop, on purpose: between the check for a
seen id and the append there is no ``await``, so two copies of one delivery cannot both pass.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.body import read_body
from api.delivery.errors import ReceiverError, SecretError, VerificationError
from api.delivery.journal import Journal, record_line
from api.delivery.signing import DEFAULT_TOLERANCE, SigningKey, verify
from api.errors import ApiError, BadRequestError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY: Final = 1024 * 1024  # an alert with its STIX bundle is a few KiB
FAILURE_STATUSES: Final = (503, 429, 410)
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """What ``trustwatch receiver`` was told; built once by the command."""

    keys: tuple[SigningKey, ...]
    out: Path
    host: str = "127.0.0.1"
    port: int = 0
    tolerance: timedelta = DEFAULT_TOLERANCE
    max_body: int = DEFAULT_MAX_BODY
    fail_first: int = 0
    fail_status: int = 503
    retry_after: int = 1

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretError("no secret to verify deliveries with")
        if self.fail_status not in FAILURE_STATUSES:
            raise ReceiverError(f"--fail-status must be one of {FAILURE_STATUSES}")


@dataclass(slots=True)
class _Failures:
    """How many more authentic deliveries to refuse on purpose (counts down to 0)."""

    left: int


def parse_secrets(text: str) -> tuple[SigningKey, ...]:
    """Keys from secrets separated by white space (one per line in a file): several while a
    secret is rotated.

    >>> [key.secret for key in parse_secrets("whsec_b2xk\\nwhsec_bmV3\\n")]
    ['whsec_b2xk', 'whsec_bmV3']
    """
    return tuple(SigningKey.from_secret(secret) for secret in text.split())


def read_secret_file(path: Path) -> tuple[SigningKey, ...]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise SecretError(f"--secret-file: cannot read {path}: {reason}") from exc
    keys = parse_secrets(text)
    if not keys:
        raise SecretError(f"--secret-file: {path} holds no secret")
    return keys


def create_receiver_app(
    settings: ReceiverSettings, journal: Journal, clock: Callable[[], datetime]
) -> Starlette:
    """The receiver as an ASGI app writing to ``journal``; ``clock`` gives the current time."""
    failures = _Failures(settings.fail_first)

    async def deliver(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, max_bytes=settings.max_body)
            now = clock()
            delivery = verify(
                settings.keys, request.headers, body, now=now, tolerance=settings.tolerance
            )
            line = _record_line(delivery.id, now, body)
        except (ApiError, VerificationError) as exc:
            log.info("a delivery refused with %d: %s", exc.status, exc)
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        if failures.left > 0:
            failures.left -= 1
            log.info(
                "%s: answering %d on purpose (--fail-first)", delivery.id, settings.fail_status
            )
            return _injected(settings)
        if delivery.id in journal:
            log.info("%s: duplicate, already recorded", delivery.id)
            return JSONResponse({"status": "duplicate", "webhook-id": delivery.id})
        return _append(journal, delivery.id, line, settings.retry_after)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "recorded": len(journal)})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/{path:path}", deliver, methods=["POST"]),
        ]
    )


def run_receiver(settings: ReceiverSettings) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); the out file is closed and unlocked then."""
    listener = _listen(settings.host, settings.port)
    try:
        journal = Journal.open(settings.out)
        try:
            app = create_receiver_app(settings, journal, lambda: datetime.now(UTC))
            config = uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                server_header=False,
                proxy_headers=False,
                lifespan="off",
            )
            host, port = listener.getsockname()[:2]
            if settings.host not in _LOOPBACK:
                log.warning(
                    "listening beyond loopback over plain HTTP: deliveries are signed, "
                    "not encrypted; put TLS in front of it"
                )
            log.info(
                "receiving on http://%s:%d/ into %s (deliveries already in it: %d)",
                f"[{host}]" if ":" in host else host,
                port,
                settings.out,
                len(journal),
            )
            # As in `trustwatch serve`: uvicorn re-raises SIGTERM after its graceful shutdown;
            # make that an exit so the ``finally`` blocks close and unlock the out file.
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            journal.close()
    finally:
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """Bind now, so a port in use is a clear message before anything is opened or started."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ReceiverError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        # Listening before the server loop runs: a client that read the "receiving on" line
        # and connects at once waits in the backlog instead of being refused.
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise ReceiverError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return listener


def _record_line(msg_id: str, now: datetime, body: bytes) -> bytes:
    try:
        return record_line(msg_id, now, body)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc


def _append(journal: Journal, msg_id: str, line: bytes, retry_after: int) -> JSONResponse:
    try:
        journal.append(msg_id, line)
    except OSError as exc:
        log.error("%s: cannot record it: %s", msg_id, exc.strerror)
        return JSONResponse(
            {"detail": f"cannot record the delivery: {exc.strerror}"},
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )
    log.info("%s: recorded", msg_id)
    return JSONResponse({"status": "recorded", "webhook-id": msg_id})


def _injected(settings: ReceiverSettings) -> JSONResponse:
    status = settings.fail_status
    headers = {"Retry-After": str(settings.retry_after)} if status in (503, 429) else None
    return JSONResponse({"detail": "failing on purpose (--fail-first)"}, status, headers=headers)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(0)
