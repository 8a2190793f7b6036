"""Exceptions of delivery to the coordination centre: signing, verifying, the receiver.

::

    TrustWatchError (api.errors)
    └── DeliveryError                   root of this package's exceptions
        ├── SecretError                 a signing secret is not ``whsec_<base64>`` (a CLI message)
        ├── ReceiverError               the reference receiver cannot start (port, out file, lock)
        └── VerificationError           a delivery does not verify; ``status`` is the answer
            ├── MalformedHeadersError   400 a webhook-* header is missing or malformed
            ├── SignatureMismatchError  401 no signature matches any of our keys
            └── TimestampToleranceError 401 signed, but too old or too far in the future
"""

from __future__ import annotations

from typing import ClassVar

from api.errors import TrustWatchError


class DeliveryError(TrustWatchError):
    """Root of the delivery package's exceptions."""


class SecretError(DeliveryError):
    """A signing secret cannot be used; the message says why (never the secret itself)."""


class ReceiverError(DeliveryError):
    """The reference receiver cannot start; the message names the port or file and why."""


class VerificationError(DeliveryError):
    """A delivery is not authentic or not fresh; ``status`` is the HTTP status to answer."""

    status: ClassVar[int] = 400


class MalformedHeadersError(VerificationError):
    status = 400


class SignatureMismatchError(VerificationError):
    status = 401


class TimestampToleranceError(VerificationError):
    # 401, not 400: a replayed delivery is an authentication failure; the sender's next attempt
    # is signed afresh and passes.
    status = 401
