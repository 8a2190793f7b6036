"""HTTP/1.x: the request line, ``Host`` and ``User-Agent`` of a client's first request, and the
status code of the server's first response. On any port: what starts like HTTP is HTTP.

>>> request = parse_request(
...     b"GET /login?next=%2F HTTP/1.1\\r\\nHost: Portal.Example.gov:8080\\r\\n"
...     b"User-Agent: curl/8.5\\r\\n\\r\\n"
... )
>>> (request.method, request.target, request.host, request.user_agent)
('GET', '/login?next=%2F', 'portal.example.gov', 'curl/8.5')
>>> parse_response(b"HTTP/1.1 401 Unauthorized\\r\\n")
401
"""

from __future__ import annotations

from typing import Final, NamedTuple

METHODS: Final = frozenset(
    {b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"}
)
MAX_HEAD: Final = 8192  # request line and headers read at most; longer ones are cut
MAX_TARGET: Final = 2048
MAX_FIELD: Final = 1024


class HttpRequest(NamedTuple):
    method: str
    target: str
    version: str
    host: str | None
    user_agent: str | None


def looks_like_request(payload: bytes) -> bool:
    space = payload.find(b" ", 0, 8)
    return space > 0 and payload[:space] in METHODS


def parse_request(payload: bytes) -> HttpRequest | None:
    """The request at the start of ``payload``, or ``None`` if it does not start one."""
    head = payload[:MAX_HEAD]
    line_end = head.find(b"\r\n")
    line = head if line_end < 0 else head[:line_end]
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] not in METHODS or not parts[2].startswith(b"HTTP/"):
        return None
    method, target, version = parts
    host = user_agent = None
    if line_end >= 0:
        for raw in head[line_end + 2 :].split(b"\r\n"):
            if not raw:
                break
            name, sep, value = raw.partition(b":")
            if not sep:
                continue
            lowered = name.strip().lower()
            if lowered == b"host" and host is None:
                host = _text(_strip_port(value.strip()), MAX_FIELD).lower() or None
            elif lowered == b"user-agent" and user_agent is None:
                user_agent = _text(value.strip(), MAX_FIELD) or None
    return HttpRequest(
        method.decode("ascii"),
        _text(target, MAX_TARGET),
        _text(version[5:], 8),
        host,
        user_agent,
    )


def parse_response(payload: bytes) -> int | None:
    """The status code of a response that starts ``payload``."""
    if not payload.startswith(b"HTTP/1.") or len(payload) < 12 or payload[8:9] != b" ":
        return None
    code = payload[9:12]
    return int(code) if code.isdigit() else None


def _strip_port(host: bytes) -> bytes:
    if host.startswith(b"["):  # [IPv6]:port
        end = host.find(b"]")
        return host[1:end] if end > 0 else host
    name, sep, port = host.rpartition(b":")
    return name if sep and port.isdigit() else host


def _text(raw: bytes, limit: int) -> str:
    return raw[:limit].decode("latin-1")  # any bytes decode; nothing is lost or invented
