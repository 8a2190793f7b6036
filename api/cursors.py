"""Keyset pagination cursors: an opaque, URL-safe token for (position in µs, tie-breaker).

>>> decode_cursor(encode_cursor(1700000000000000, 42), int)
(1700000000000000, 42)
>>> decode_cursor(encode_cursor(1700000000000000, "ab12"), str)
(1700000000000000, 'ab12')
"""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

from api.errors import UnprocessableError

Tie = TypeVar("Tie", int, str)

_MAX: int = 2**63  # what SQLite's integers hold


def encode_cursor(position: int, tie: int | str) -> str:
    return base64.urlsafe_b64encode(f"{position}:{tie}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tie_type: type[Tie]) -> tuple[int, Tie]:
    """The (position, tie-breaker) a cursor stands for, or 422 if it is not one we issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        position_text, tie_text = raw.split(":")
        position = int(position_text)
        tie = tie_type(tie_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise UnprocessableError("cursor is not one this API issued") from exc
    in_range = 0 <= position < _MAX and (not isinstance(tie, int) or 0 <= tie < _MAX)
    if not in_range or (isinstance(tie, str) and not 0 < len(tie) <= 64):
        raise UnprocessableError("cursor is not one this API issued")
    return position, tie
