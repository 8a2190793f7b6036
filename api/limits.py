"""Request body limits, enforced before any route runs.

A route handler (or FastAPI's own JSON parsing) reads the body *before* authentication is
checked, so without a limit in front of the app anyone could make the service buffer an
arbitrarily large body. Each path has a limit (ingest: ``max_body_bytes``; everything else a
small one): a declared ``Content-Length`` over it is refused at once with 413, and a body sent
without one is cut off when it passes the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLargeError

SMALL_BODY_LIMIT: Final = 64 * 1024  # tokens, heartbeats: a few hundred bytes each


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(
                scope, receive, send, f"body of {declared} bytes exceeds the limit of {limit}"
            )
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None  # not a number: h11 refuses it
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=PayloadTooLargeError.status)
    await response(scope, receive, send)
