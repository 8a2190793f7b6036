"""What the HTTP checks look at: the redirect chains from ``http://`` and ``https://``, the
response the headers are graded on, the CORS probes, and which endpoint that was.

Built by :func:`sensors.scanner.httpsec_fetch.fetch_snapshots`; read by the pure checks in
:mod:`sensors.scanner.httpsec_transport` and :mod:`sensors.scanner.httpsec_headers`. A test
builds one by hand:

>>> page = Response("https://a.example/", 200, (("x-frame-options", "DENY"),))
>>> snap = HttpSnapshot("a.example", OBSERVED, final=page)
>>> snap.final.header("X-Frame-Options"), snap.final.is_https
('DENY', True)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from html.parser import HTMLParser
from typing import Final

import httpx

from sensors.scanner.markup import Markup, parse_markup
from sensors.scanner.web import first_header, header_values

__all__ = [
    "OBSERVED",
    "CorsProbe",
    "Endpoint",
    "Hop",
    "HttpSnapshot",
    "PreloadList",
    "Response",
    "read_meta",
]

OBSERVED: Final = datetime(2025, 1, 1, tzinfo=UTC)  # a fixed time for examples and tests
HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
MAX_META: Final = 100  # <meta> elements kept from one page (a hostile page could send more)


@dataclass(frozen=True)
class Hop:
    """One request of a redirect chain. ``status`` is None when it got no answer (``error``
    says why); ``verified`` is None for plain HTTP, else whether the certificate verified
    (an unverified hop was re-read without verification to go on); ``unreachable`` that no
    connection could be made at all (nothing listens: not the same as a timeout mid-way)."""

    url: str
    status: int | None = None
    location: str | None = None
    verified: bool | None = None
    set_cookies: tuple[str, ...] = ()
    error: str | None = None
    unreachable: bool = False

    @property
    def scheme(self) -> str:
        return httpx.URL(self.url).scheme

    @property
    def host(self) -> str:
        return httpx.URL(self.url).host.lower()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"url": self.url[:500], "status": self.status}
        if self.location is not None:
            out["location"] = self.location[:500]
        if self.verified is not None:
            out["verified"] = self.verified
        if self.error is not None:
            out["error"] = self.error[:500]
        return out


@dataclass(frozen=True)
class Response:
    """The response the headers are graded on (the end of a redirect chain): headers in order
    with repeats, lower-case names; the body already size-limited; whether every certificate
    on the way to it verified; the address it came from when the fetch was pinned."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    verified: bool = True
    address: str | None = None

    def header(self, name: str) -> str | None:
        return first_header(self.headers, name)

    def header_list(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    @property
    def is_https(self) -> bool:
        return httpx.URL(self.url).scheme == "https"

    @property
    def mime(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def is_html(self) -> bool:
        """Declared HTML, or undeclared (browsers sniff it; the Observatory parses it)."""
        return self.mime in HTML_TYPES or not self.mime

    @cached_property
    def text(self) -> str:
        charset = httpx.Response(200, headers=list(self.headers)).charset_encoding or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    @cached_property
    def markup(self) -> Markup:
        return parse_markup(self.text)

    @cached_property
    def meta(self) -> tuple[tuple[str, str], ...]:
        return read_meta(self.text)

    def meta_values(self, name: str) -> list[str]:
        """The contents of ``<meta http-equiv=name>`` (or ``name=name``) elements."""
        lowered = name.lower()
        return [content for key, content in self.meta if key == lowered]


@dataclass(frozen=True)
class CorsProbe:
    """A request with an ``Origin`` header (a GET, or an OPTIONS preflight) and the CORS
    headers it got back."""

    method: str
    origin: str
    status: int | None = None
    allow_origin: str | None = None
    allow_credentials: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One address the final page was fetched from, and its Observatory score there."""

    address: str
    score: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class HttpSnapshot:
    """Everything the HTTP checks need, for one endpoint (the worst one, when the page was
    read from each address). ``preloaded`` is None when no HSTS preload list was given."""

    host: str
    observed_at: datetime
    http_chain: tuple[Hop, ...] = ()
    https_chain: tuple[Hop, ...] = ()
    final: Response | None = None
    cors: tuple[CorsProbe, ...] = ()
    preloaded: bool | None = None
    endpoints: tuple[Endpoint, ...] = ()
    max_redirects: int = 10
    notes: tuple[str, ...] = field(default=())

    @property
    def https_reached(self) -> bool:
        """Whether the site answered over HTTPS (the final response is an HTTPS one)."""
        return self.final is not None and self.final.is_https

    def set_cookies(self) -> list[tuple[str, str]]:
        """Every Set-Cookie seen on both chains, with the URL that set it, in order."""
        seen: list[tuple[str, str]] = []
        for hop in (*self.http_chain, *self.https_chain):
            seen.extend((hop.url, value) for value in hop.set_cookies)
        return seen


@dataclass(frozen=True)
class PreloadList:
    """Host names on the HSTS preload list (``include_subdomains`` covers their subdomains).

    >>> PreloadList(frozenset(), frozenset({"example.gov"})).covers("www.example.gov")
    True
    """

    exact: frozenset[str]
    include_subdomains: frozenset[str]

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> PreloadList:
        """Read ``host`` or ``host include_subdomains`` per line; ``#`` starts a comment."""
        exact: set[str] = set()
        subdomains: set[str] = set()
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            host = words[0].lower().rstrip(".")
            (subdomains if "include_subdomains" in words[1:] else exact).add(host)
        return cls(frozenset(exact), frozenset(subdomains))

    def covers(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return False
        if host in self.exact or host in self.include_subdomains:
            return True
        labels = host.split(".")
        return any(".".join(labels[i:]) in self.include_subdomains for i in range(1, len(labels)))


class _MetaReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta" or len(self.found) >= MAX_META:
            return
        a = {k.lower(): v for k, v in attrs}
        key = a.get("http-equiv") or a.get("name")
        content = a.get("content")
        if key and content is not None:
            self.found.append((key.strip().lower(), content[:4096]))


def read_meta(html: str) -> tuple[tuple[str, str], ...]:
    """``(http-equiv or name, content)`` of a page's ``<meta>`` elements, names lowercased.

    >>> read_meta('<meta http-equiv="Content-Security-Policy" content="default-src *">')
    (('content-security-policy', 'default-src *'),)
    """
    reader = _MetaReader()
    reader.feed(html)
    reader.close()
    return tuple(reader.found)
