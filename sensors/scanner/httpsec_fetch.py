"""The HTTP area's I/O: walk the redirect chains from ``http://`` and ``https://`` hop by
hop, read the final response (again without verification when its certificate fails, so its
headers can still be graded), probe CORS, and, when the host has several addresses, read the
final page from each of them.

Every request goes through the scan context's clients, so each host a redirect leads to is
resolved and checked against the policy before anything connects to it.
"""

from __future__ import annotations

import ssl
from typing import Final

import httpx

from sensors.scanner.context import ScanContext
from sensors.scanner.httpsec_snapshot import CorsProbe, Hop, HttpSnapshot, PreloadList, Response
from sensors.scanner.policy import IPAddress
from sensors.scanner.web import Page, host_of

__all__ = ["PROBE_ORIGIN", "fetch_snapshots"]

# The origin the Observatory sends, so that results compare with its own.
PROBE_ORIGIN: Final = "https://http-observatory.security.mozilla.org"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _tls_verification_failed(exc: BaseException) -> bool:
    """Whether an httpx error was caused by a certificate that did not verify."""
    seen: BaseException | None = exc
    for _ in range(10):  # the chain is httpx -> httpcore -> ssl; bounded against cycles
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


async def _get(ctx: ScanContext, url: str) -> tuple[Page, bool | None] | Hop:
    """GET ``url``: the page and whether its certificate verified (None for http), or a Hop
    saying why there is no page."""
    https = url.startswith("https:")
    try:
        return await ctx.page(url), (True if https else None)
    except httpx.HTTPError as exc:
        if not (https and _tls_verification_failed(exc)):
            unreachable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            return Hop(url, error=_describe(exc), unreachable=unreachable)
    try:
        return await ctx.page(url, verify=False), False
    except httpx.HTTPError as exc:
        return Hop(url, verified=False, error=_describe(exc))


async def walk(ctx: ScanContext, start: str) -> tuple[tuple[Hop, ...], Page | None]:
    """Follow redirects from ``start`` (at most ``max_redirects``). Returns the hops and the
    last page read (a 3xx when the chain was cut at the limit)."""
    hops: list[Hop] = []
    url = start
    page: Page | None = None
    for _ in range(ctx.policy.max_redirects + 1):
        got = await _get(ctx, url)
        if isinstance(got, Hop):
            hops.append(got)
            return tuple(hops), None
        page, verified = got
        location = page.location
        hops.append(
            Hop(url, page.status, location, verified, tuple(page.header_list("set-cookie")))
        )
        if location is None:
            break
        try:
            following = httpx.URL(url).join(location.strip())
        except httpx.InvalidURL as exc:
            hops.append(Hop(location[:500], error=f"invalid Location: {exc}"))
            return tuple(hops), None
        if following.scheme not in ("http", "https"):
            hops.append(Hop(str(following)[:500], error="redirect to a non-web scheme"))
            return tuple(hops), None
        url = str(following)
    return tuple(hops), page


def _response(page: Page, verified: bool, address: IPAddress | None = None) -> Response:
    return Response(
        url=page.url,
        status=page.status,
        headers=page.headers,
        body=page.body,
        truncated=page.truncated,
        verified=verified,
        address=None if address is None else str(address),
    )


async def _cors(ctx: ScanContext, url: str, verified: bool) -> tuple[CorsProbe, ...]:
    """A GET with a foreign Origin and a preflight OPTIONS. Only the headers matter, so the
    body is never read (a server may announce one it does not send to an OPTIONS); these
    requests carry extra headers, so they go through the client, not the shared pages."""
    client = await ctx.client(verify=verified)
    probes = []
    for method, headers in (
        ("GET", {"Origin": PROBE_ORIGIN}),
        ("OPTIONS", {"Origin": PROBE_ORIGIN, "Access-Control-Request-Method": "GET"}),
    ):
        try:
            async with ctx.slots, client.stream(method, url, headers=headers) as response:
                probe = CorsProbe(
                    method,
                    PROBE_ORIGIN,
                    response.status_code,
                    response.headers.get("access-control-allow-origin"),
                    response.headers.get("access-control-allow-credentials"),
                )
        except httpx.HTTPError as exc:
            probe = CorsProbe(method, PROBE_ORIGIN, error=_describe(exc))
        probes.append(probe)
    return tuple(probes)


async def _per_address(
    ctx: ScanContext, final: Response
) -> list[tuple[IPAddress, Response | None, str | None]]:
    """The final page read from each of the host's addresses (pinned)."""
    out: list[tuple[IPAddress, Response | None, str | None]] = []
    for address in ctx.target.addresses:
        try:
            page = await ctx.page(final.url, pin=address, verify=final.verified)
        except httpx.HTTPError as exc:
            out.append((address, None, _describe(exc)))
            continue
        out.append((address, _response(page, final.verified, address), None))
    return out


async def fetch_snapshots(
    ctx: ScanContext, *, preload: PreloadList | None = None
) -> tuple[HttpSnapshot, list[tuple[IPAddress, Response | None, str | None]]]:
    """Fetch everything once, and the final page per address when there are several.

    Returns the snapshot (its ``final`` is the response read through the shared client) and
    the per-address responses (empty when the host has one address or the final page is on
    another host, where pinning does not apply)."""
    observed_at = ctx.now()
    http_chain, http_page = await walk(ctx, ctx.url("http"))
    https_chain, https_page = await walk(ctx, ctx.url("https"))
    final: Response | None = None
    notes: list[str] = []
    if https_page is not None:
        final = _response(https_page, all(h.verified is not False for h in https_chain))
    elif http_page is not None:
        # No HTTPS: grade what http:// serves, as the Observatory does.
        final = _response(http_page, all(h.verified is not False for h in http_chain))
        notes.append("no HTTPS response: the headers graded are those of the http:// chain")
    cors: tuple[CorsProbe, ...] = ()
    per_address: list[tuple[IPAddress, Response | None, str | None]] = []
    if final is not None:
        cors = await _cors(ctx, final.url, final.verified)
        if len(ctx.target.addresses) > 1 and host_of(final.url) == ctx.target.host:
            per_address = await _per_address(ctx, final)
    snapshot = HttpSnapshot(
        host=ctx.target.host,
        observed_at=observed_at,
        http_chain=http_chain,
        https_chain=https_chain,
        final=final,
        cors=cors,
        preloaded=None if preload is None else preload.covers(ctx.target.host),
        max_redirects=ctx.policy.max_redirects,
        notes=tuple(notes),
    )
    return snapshot, per_address
