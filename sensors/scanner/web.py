"""Fetching web pages for the checks, within the policy.

:func:`web_client` gives an ``httpx.AsyncClient`` whose connections go only to addresses the
policy allows: the scanned host's checked addresses (or one of them, ``pin``, when a check
looks at each endpoint), and for any other host (a redirect elsewhere) addresses resolved and
checked on the spot. TLS still verifies the *name* of the URL (SNI and certificate), so pinning
the address changes nothing a site can see. Redirects are never followed by the client: the
HTTP checks walk the chain themselves, hop by hop, up to ``max_redirects``.

:func:`fetch` reads a response within the size limit and records the time to first byte.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import httpcore
import httpx

from sensors.errors import ScanError
from sensors.scanner.policy import IPAddress, ScanPolicy
from sensors.scanner.target import Target, resolve


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to checked addresses instead of whatever the system resolver says."""

    def __init__(
        self,
        target: Target,
        policy: ScanPolicy,
        resolver: dns.asyncresolver.Resolver,
        pin: IPAddress | None,
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._policy = policy
        self._resolver = resolver
        self._known: dict[str, tuple[IPAddress, ...]] = {
            target.host: (pin,) if pin is not None else target.addresses
        }

    async def _addresses(self, host: str) -> tuple[IPAddress, ...]:
        host = host.strip("[]").lower()
        if host not in self._known:
            try:
                self._known[host] = (await resolve(host, self._policy, self._resolver)).addresses
            except ScanError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        return self._known[host]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        problems = []
        for address in await self._addresses(host):
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                problems.append(f"{address}: {exc or type(exc).__name__}")
        raise httpcore.ConnectError("; ".join(problems) or f"no address for {host}")

    async def connect_unix_socket(self, *_: Any, **__: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the scanner does not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def tls_context(policy: ScanPolicy, *, verify: bool) -> ssl.SSLContext:
    """A client context: the system's trust store plus ``policy.ca_file``; or, for reading a
    site whose certificate is broken (the failure is a finding of its own), no verification."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context()
    if policy.ca_file is not None:
        context.load_verify_locations(cafile=str(policy.ca_file))
    return context


@asynccontextmanager
async def web_client(
    target: Target,
    policy: ScanPolicy,
    resolver: dns.asyncresolver.Resolver,
    *,
    pin: IPAddress | None = None,
    verify: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for one host's checks; see the module docstring."""
    transport = httpx.AsyncHTTPTransport()
    # httpx has no parameter for the network backend; its transport is a thin shell around
    # an httpcore pool, which has one, so the pool is replaced (tests check that it is used).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=tls_context(policy, verify=verify),
        max_connections=policy.concurrency,
        network_backend=_PinnedBackend(target, policy, resolver, pin),
    )
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        # Only the codings _decoded undoes, whatever optional packages httpx finds installed.
        headers={"User-Agent": policy.user_agent, "Accept": "*/*", "Accept-Encoding": "gzip"},
        trust_env=False,  # no proxy from the environment: the policy decides where we go
    )
    async with client:
        yield client


def first_header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of a header (``headers`` with lower-case names, in order), or None."""
    lowered = name.lower()
    return next((v for k, v in headers if k == lowered), None)


def header_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    """Every value of a header, in order (Set-Cookie, repeated CSP headers, ...)."""
    lowered = name.lower()
    return [v for k, v in headers if k == lowered]


@dataclass(frozen=True)
class Page:
    """One response as read by :func:`fetch`: at most ``max_bytes`` of body (``truncated``
    says there was more), the headers in order with repeats, and the time to first byte."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool
    ttfb: float
    http_version: str

    def header(self, name: str) -> str | None:
        return first_header(self.headers, name)

    def header_list(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    @property
    def location(self) -> str | None:
        return self.header("location") if 300 <= self.status < 400 else None

    @property
    def text(self) -> str:
        """The body decoded with the declared charset, else UTF-8, errors replaced."""
        charset = httpx.Response(200, headers=dict(self.headers)).charset_encoding or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Page:
    """Request ``url`` (no redirect followed) and read at most ``max_bytes`` of the body.
    Raises ``httpx.HTTPError`` (connection, TLS, timeout, protocol) for the caller to report
    as a check that could not run."""
    started = time.perf_counter()
    async with client.stream(method, url, headers=headers) as response:
        ttfb = time.perf_counter() - started
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                truncated = True
                break
        raw = b"".join(chunks)[:max_bytes]
        body = _decoded(response, raw, max_bytes)
        return Page(
            url=str(response.url),
            status=response.status_code,
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw
            ),
            body=body,
            truncated=truncated,
            ttfb=ttfb,
            http_version=response.http_version,
        )


def _decoded(response: httpx.Response, raw: bytes, max_bytes: int) -> bytes:
    """The body with its content coding undone, still within ``max_bytes`` (a compressed
    body may expand a thousandfold: a decompression bomb stops at the limit)."""
    coding = response.headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in coding else zlib.MAX_WBITS
        try:
            return zlib.decompressobj(wbits).decompress(raw, max_bytes)
        except zlib.error:
            try:  # raw deflate, as some servers send it
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, max_bytes)
            except zlib.error:
                return b""
    return b""  # a coding we do not undo (br, zstd): no body to analyse


def host_of(url: str) -> str:
    host = httpx.URL(url).host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()
