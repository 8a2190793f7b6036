"""Saving and restoring detector state, so that a restart continues learning where it stopped.

The state is river's own objects, pickled (river's documented way to persist a model), inside
an envelope that says what it is and proves it arrived whole::

    b"TWSTATE\\n" | format (2 bytes, big-endian) | SHA-256 of the payload (32) | payload

Restoring never runs arbitrary code: the unpickler admits only the classes a detector is made
of (river's, this package's, and a few plain containers); anything else, a bad magic, an
unknown format, a checksum that does not match or a pickle that does not load is a
:class:`~scoring.errors.StateError` saying why, and the caller starts fresh. Writing the bytes
to disk is the caller's (this package does no I/O).

>>> from scoring.anomaly import AnomalyDetectors
>>> restored = loads(dumps(AnomalyDetectors()), AnomalyDetectors)
>>> type(restored).__name__
'AnomalyDetectors'
>>> loads(b"junk", AnomalyDetectors)
Traceback (most recent call last):
...
scoring.errors.StateError: not a TrustWatch detector state (bad magic)
"""

from __future__ import annotations

import hashlib
import io
import pickle
from typing import Any, Final, TypeVar

from scoring.errors import StateError

MAGIC: Final = b"TWSTATE\n"
FORMAT: Final = 1
_HEADER: Final = len(MAGIC) + 2 + 32

_ALLOWED_MODULES: Final = ("river.", "scoring.")
_ALLOWED_NAMES: Final = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "float"),
        ("builtins", "int"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        ("array", "array"),
        ("array", "_array_reconstructor"),
        ("builtins", "object"),
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("collections", "defaultdict"),
        ("copyreg", "_reconstructor"),
        ("random", "Random"),
        ("functools", "partial"),
        ("datetime", "datetime"),
        ("datetime", "timezone"),
        ("datetime", "timedelta"),
    }
)

T = TypeVar("T")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_NAMES or module.startswith(_ALLOWED_MODULES):
            return super().find_class(module, name)
        raise StateError(f"the state refers to {module}.{name}, which a detector never holds")


def dumps(detectors: object) -> bytes:
    """The state of ``detectors`` as bytes to write (atomically) wherever the caller keeps it."""
    payload = pickle.dumps(detectors, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + FORMAT.to_bytes(2, "big") + hashlib.sha256(payload).digest() + payload


def loads(data: bytes, expected: type[T]) -> T:
    """The detectors saved in ``data``, which must be an ``expected``; else :class:`StateError`."""
    if not data.startswith(MAGIC):
        raise StateError("not a TrustWatch detector state (bad magic)")
    if len(data) < _HEADER:
        raise StateError("the state is cut short (no header)")
    version = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 2], "big")
    if version != FORMAT:
        raise StateError(f"state format {version} is not the one this version reads ({FORMAT})")
    digest, payload = data[len(MAGIC) + 2 : _HEADER], data[_HEADER:]
    if hashlib.sha256(payload).digest() != digest:
        raise StateError("the state is damaged (checksum mismatch); was it cut short?")
    try:
        restored = _Unpickler(io.BytesIO(payload)).load()
    except StateError:
        raise
    except Exception as exc:  # a pickle from another river version fails in many ways
        raise StateError(f"the state does not load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(restored, expected):
        raise StateError(f"the state holds a {type(restored).__name__}, not a {expected.__name__}")
    return restored
