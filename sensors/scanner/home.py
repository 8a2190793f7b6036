"""The home page as every area sees it: HTTPS first, then HTTP; when HTTPS fails only on its
certificate, HTTPS again without verification (a bad certificate is the TLS area's finding and
must not make the site look down); then its redirects, hop by hop, through the shared page
cache, so the areas that read the home page cost one visit."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

from sensors.scanner.context import ScanContext
from sensors.scanner.web import Page


@dataclass(frozen=True)
class HomeVisit:
    """The responses from the home page to the end of its redirect chain (``hops``, empty
    when nothing answered), and the error that stopped it, if one did."""

    url: str
    hops: tuple[Page, ...]
    error: str | None
    verified: bool

    @property
    def final(self) -> Page | None:
        return self.hops[-1] if self.hops else None


def _reason(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):  # httpx wraps httpcore, which wraps ssl
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def visit_home(ctx: ScanContext) -> HomeVisit:
    """Read the home page and follow its redirects (see the module docstring)."""
    problems: list[str] = []
    attempts = [("https", True), ("http", True)]
    while attempts:
        scheme, verify = attempts.pop(0)
        url = ctx.url(scheme)
        try:
            page = await ctx.page(url, verify=verify)
        except httpx.HTTPError as exc:
            problems.append(f"{url}{'' if verify else ' (unverified)'}: {_reason(exc)}")
            if scheme == "https" and verify and _tls_failure(exc):
                attempts.append(("https", False))
            continue
        hops = [page]
        error = None
        while hops[-1].location is not None and len(hops) <= ctx.policy.max_redirects:
            following = str(httpx.URL(hops[-1].url).join(hops[-1].location or ""))
            if not following.startswith(("https://", "http://")):
                error = f"redirect to a URL that is not HTTP(S): {following[:200]}"
                break
            try:
                hops.append(await ctx.page(following, verify=verify))
            except httpx.HTTPError as exc:
                error = f"redirect to {following[:200]}: {_reason(exc)}"
                break
        return HomeVisit(url, tuple(hops), error, verify)
    return HomeVisit(ctx.url("https"), (), "; ".join(problems), True)
