"""Reading request bodies within limits.

The size limit applies twice: to the bytes on the wire (checked against ``Content-Length``
before reading, and again while streaming, since the header may lie or be absent) and to the
bytes after gzip decompression, which stops at the limit instead of inflating a bomb.
"""

from __future__ import annotations

import zlib
from typing import Final

from starlette.requests import Request

from api.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


def json_encoding(request: Request) -> str:
    """Check a JSON request's headers; return its content encoding (``identity`` or ``gzip``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError("send Content-Type: application/json")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none"
        )
    return encoding


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The body as sent, at most ``max_bytes`` (the header may lie, or be absent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequestError("Content-Length is not a number")
        if int(declared) > max_bytes:
            raise PayloadTooLargeError(f"body of {declared} bytes exceeds the limit of {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_body(request: Request, *, max_bytes: int, max_decompressed: int) -> bytes:
    """Return the (decompressed) body of a small JSON request, or raise a 4xx :class:`ApiError`.

    Decompresses on the event loop: for small bodies only. Large ones (ingest) read with
    :func:`read_body` and decompress in a worker thread with :func:`gunzip`.
    """
    encoding = json_encoding(request)
    body = await read_body(request, max_bytes=max_bytes)
    return gunzip(body, max_decompressed) if encoding == "gzip" else body


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress one gzip member of at most ``limit`` bytes.

    >>> import gzip
    >>> gunzip(gzip.compress(b"{}"), 10)
    b'{}'
    """
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequestError(f"body is not valid gzip: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLargeError(f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequestError("gzip body is truncated")
    if inflater.unused_data:
        raise BadRequestError("unexpected bytes after the gzip stream")
    return data
