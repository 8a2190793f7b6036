"""The service's exceptions and how each becomes an HTTP answer.

::

    TrustWatchError                     → 500 (never raised on purpose)
    ├── ConfigError                     settings are invalid (start-up; a CLI message)
    ├── StoreError                      the store failed or is in an unknown state
    └── ApiError                        a client's request cannot be served (4xx)
        ├── BadRequestError             400 malformed body (JSON, gzip)
        ├── UnauthorizedError           401 no token, or not a valid one
        ├── ForbiddenError              403 the token's role or sensor does not allow it
        ├── NotFoundError               404
        ├── ConflictError               409 the state does not allow it
        ├── PayloadTooLargeError        413 body or batch over its limit
        ├── UnsupportedMediaTypeError   415 content type or encoding we do not read
        ├── UnprocessableError          422 well-formed but invalid
        └── TooManyRequestsError        429 a public client over its rate (with Retry-After)
"""

from __future__ import annotations

import math
from typing import ClassVar


class TrustWatchError(Exception):
    """Root of the service's exceptions."""


class ConfigError(TrustWatchError):
    """The configuration cannot be used; the message says which setting and why."""


class StoreError(TrustWatchError):
    """The store failed (disk, corruption, an unknown schema version)."""


class ApiError(TrustWatchError):
    """A request the service refuses; ``status`` is the HTTP status to answer with."""

    status: ClassVar[int] = 400
    headers: dict[str, str] | None = None


class BadRequestError(ApiError):
    status = 400


class UnauthorizedError(ApiError):
    status = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class constant


class ForbiddenError(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class ConflictError(ApiError):
    status = 409


class PayloadTooLargeError(ApiError):
    status = 413


class UnsupportedMediaTypeError(ApiError):
    status = 415


class UnprocessableError(ApiError):
    status = 422


class TooManyRequestsError(ApiError):
    """A client over its request rate. ``retry_after`` is in seconds; the answer's
    ``Retry-After`` header carries it as a whole number, at least 1 (RFC 9110 allows no
    fractions, and 0 would invite an immediate retry)."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many requests; retry after {seconds} s")
        self.retry_after = seconds
        self.headers = {"Retry-After": str(seconds)}
