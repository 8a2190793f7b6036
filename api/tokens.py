"""Bearer tokens: how they look, how they are made, and how one is checked.

A token is ``tw_<key id>_<secret>``: the key id (12 hex digits) finds the principal, the secret
(32 random bytes, URL-safe base64) proves it. Only SHA-256 of the secret is stored; with 256
bits of randomness a fast hash is enough (nothing to brute-force), and the comparison is
constant-time. An unknown key id still costs one comparison so that timing does not tell which
ids exist.

>>> issued = issue_token()
>>> parsed = parse_token(issued.token)
>>> parsed is not None and parsed.key_id == issued.key_id
True
>>> verify_secret(parsed.secret, issued.secret_hash)
True
>>> parse_token("Bearer something-else") is None
True
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

PREFIX: Final = "tw"
_TOKEN: Final = re.compile(r"^tw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DUMMY_HASH: Final = hashlib.sha256(b"no such key").digest()


class Role(enum.StrEnum):
    """What a principal may do. Admin includes what an analyst may read."""

    SENSOR = "sensor"
    ANALYST = "analyst"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    id: int
    name: str
    role: Role
    sensor_id: str | None


@dataclass(frozen=True)
class IssuedToken:
    """A freshly made token. ``token`` is shown once and never stored."""

    token: str = field(repr=False)
    key_id: str
    secret_hash: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedToken:
    key_id: str
    secret: str = field(repr=False)


def issue_token() -> IssuedToken:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return IssuedToken(f"{PREFIX}_{key_id}_{secret}", key_id, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse_token(token: str) -> ParsedToken | None:
    match = _TOKEN.match(token)
    if match is None:
        return None
    return ParsedToken(match.group(1), match.group(2))


def verify_secret(secret: str, stored_hash: bytes | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash (``None``: unknown key)."""
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    return matches and stored_hash is not None
