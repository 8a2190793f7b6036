"""Signing and verifying deliveries in the Standard Webhooks form (https://www.standardwebhooks.com).

A delivery carries three headers::

    webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek          the idempotency key; receivers dedupe on it
    webhook-timestamp: 1614265330                     Unix seconds when it was signed
    webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=

where the signature is the base64 HMAC-SHA256, keyed with the secret, of
``{id}.{timestamp}.{body}`` over the body's exact bytes. A secret is written ``whsec_<base64>``.
To rotate a secret the sender signs with the old and the new key at once (signatures separated
by spaces) and the receiver accepts any one that matches a key it holds.

Pure functions: the time is passed in. The example is the specification's own test vector:

>>> from datetime import UTC, datetime
>>> key = SigningKey.from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
>>> body = b'{"test": 2432232314}'
>>> signed_at = datetime.fromtimestamp(1614265330, UTC)
>>> headers = sign_headers([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", signed_at, body)
>>> headers["webhook-signature"]
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> verify([key], headers, body, now=datetime.fromtimestamp(1614265330 + 60, UTC)).id
'msg_p5jXN8AQM9LWM0D4loKWxJek'
>>> verify([key], headers, body + b" ", now=signed_at)
Traceback (most recent call last):
...
api.delivery.errors.SignatureMismatchError: no signature matches
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from api.delivery.errors import (
    MalformedHeadersError,
    SecretError,
    SignatureMismatchError,
    TimestampToleranceError,
)

HEADER_ID: Final = "webhook-id"
HEADER_TIMESTAMP: Final = "webhook-timestamp"
HEADER_SIGNATURE: Final = "webhook-signature"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the form of a secret, not one
SIGNATURE_VERSION: Final = "v1"
# The specification's recommendation: wide enough for clock skew and a slow network, narrow
# enough that a captured delivery cannot be replayed later.
DEFAULT_TOLERANCE: Final = timedelta(minutes=5)
MAX_ID_LENGTH: Final = 256
# Rotation needs two; the bound keeps the work per request small whatever a sender claims.
MAX_SIGNATURES: Final = 16
_DIGEST_SIZE: Final = hashlib.sha256().digest_size

# Visible ASCII: the id goes into the signed string, our records and log lines unchanged.
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")
# Whole seconds, as the specification writes them; 12 digits reach beyond the year 30000.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An HMAC-SHA256 key. Its ``repr`` leaves the key out, so it never reaches a log."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.raw:
            raise SecretError("the signing secret is empty")

    @classmethod
    def from_secret(cls, secret: str) -> SigningKey:
        """Read a secret written ``whsec_<base64>`` (the prefix and the padding may be left out).

        >>> SigningKey.from_secret("whsec_c2VjcmV0") == SigningKey(b"secret")
        True
        >>> SigningKey.from_secret("whsec_not base64!")
        Traceback (most recent call last):
        ...
        api.delivery.errors.SecretError: the signing secret is not whsec_ followed by base64
        """
        text = secret.strip().removeprefix(SECRET_PREFIX)
        text += "=" * (-len(text) % 4)  # padding may be left out, as the reference allows
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            # Never the secret in the message: it may end up in a terminal or a log.
            raise SecretError(
                f"the signing secret is not {SECRET_PREFIX} followed by base64"
            ) from exc
        return cls(raw)

    @property
    def secret(self) -> str:
        """The key written as a secret: ``whsec_<base64>``."""
        return SECRET_PREFIX + base64.b64encode(self.raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """What verification establishes about a delivery: its id and when it was signed."""

    id: str
    timestamp: datetime


def signature(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    digest = _digest(key, msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign_headers(
    keys: Sequence[SigningKey], msg_id: str, signed_at: datetime, body: bytes
) -> dict[str, str]:
    """The three headers of a delivery, signed with every key given (old and new in rotation).

    ``signed_at`` must carry a time zone; it is written as whole Unix seconds.
    """
    if not keys:
        raise ValueError("sign with at least one key")
    if _ID.fullmatch(msg_id) is None:
        raise ValueError(f"a webhook id is 1 to {MAX_ID_LENGTH} visible ASCII characters")
    timestamp = math.floor(_aware(signed_at, "signed_at").timestamp())
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }


def verify(
    keys: Sequence[SigningKey],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> SignedDelivery:
    """Check a delivery's signature, then its freshness; return its id and signing time.

    Header names are matched in any case. A signature of another version (``v1a``, say) is
    skipped, as is one that is not base64; the delivery passes when one ``v1`` signature matches
    one of ``keys`` (compared in constant time). The timestamp must lie within ``tolerance`` of
    ``now`` either way (the bounds included): older is a replay, newer a clock far off.

    Raises :class:`MalformedHeadersError`, :class:`SignatureMismatchError` or
    :class:`TimestampToleranceError`.
    """
    if not keys:
        raise ValueError("verify with at least one key")
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = _header(lowered, HEADER_ID)
    stamp = _header(lowered, HEADER_TIMESTAMP)
    signatures = _header(lowered, HEADER_SIGNATURE).split()
    if _ID.fullmatch(msg_id) is None:
        raise MalformedHeadersError(
            f"{HEADER_ID} must be 1 to {MAX_ID_LENGTH} visible ASCII characters"
        )
    if _TIMESTAMP.fullmatch(stamp) is None:
        raise MalformedHeadersError(f"{HEADER_TIMESTAMP} must be whole Unix seconds")
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedHeadersError(f"more than {MAX_SIGNATURES} signatures")
    timestamp = int(stamp)
    expected = [_digest(key, msg_id, timestamp, body) for key in keys]
    if not any(
        hmac.compare_digest(candidate, digest)
        for candidate in _v1_digests(signatures)
        for digest in expected
    ):
        raise SignatureMismatchError("no signature matches")
    # Compared as numbers: a far-off timestamp is refused, not an overflow in datetime.
    now_seconds = _aware(now, "now").timestamp()
    if timestamp < now_seconds - tolerance.total_seconds():
        raise TimestampToleranceError(f"{HEADER_TIMESTAMP} is older than the tolerance")
    if timestamp > now_seconds + tolerance.total_seconds():
        raise TimestampToleranceError(f"{HEADER_TIMESTAMP} is in the future beyond the tolerance")
    return SignedDelivery(msg_id, datetime.fromtimestamp(timestamp, UTC))


def _digest(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (msg_id.encode("ascii"), timestamp, body)
    return hmac.new(key.raw, signed, hashlib.sha256).digest()


def _v1_digests(signatures: Sequence[str]) -> list[bytes]:
    digests = []
    for entry in signatures:
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(digest) == _DIGEST_SIZE:
            digests.append(digest)
    return digests


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise MalformedHeadersError(f"the {name} header is missing")
    return value


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone")
    return moment
