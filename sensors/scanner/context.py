"""What every area's fetch gets: the target, the policy, the resolver, and pages fetched once
and shared (the home page serves the HTTP, availability, exposure and disclosure checks)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dns.asyncresolver
import httpx

from sensors.scanner.policy import IPAddress, ScanPolicy
from sensors.scanner.target import Target
from sensors.scanner.web import Page, fetch, web_client


@dataclass
class ScanContext:
    """One host's scan in progress. Use as an async context manager (it owns HTTP clients).

    :meth:`page` fetches a URL once per (URL, pinned address, verification) and shares the
    result, or the error, with every area that asks for it; :meth:`client` gives the pooled
    client behind it for requests that should not be shared (other methods, extra headers).
    ``slots`` bounds the connections the whole scan holds at once.
    """

    target: Target
    policy: ScanPolicy
    resolver: dns.asyncresolver.Resolver
    slots: asyncio.Semaphore = field(init=False)
    _stack: AsyncExitStack = field(init=False, default_factory=AsyncExitStack)
    _clients: dict[tuple[IPAddress | None, bool], httpx.AsyncClient] = field(
        init=False, default_factory=dict
    )
    _pages: dict[tuple[str, IPAddress | None, bool], asyncio.Task[Page]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.policy.concurrency)

    async def __aenter__(self) -> ScanContext:
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._pages.values():
            task.cancel()
        await self._stack.aclose()

    def now(self) -> datetime:
        """The time of an observation, taken by fetches (evaluation is pure and gets it)."""
        return datetime.now(UTC)

    async def client(
        self, *, pin: IPAddress | None = None, verify: bool = True
    ) -> httpx.AsyncClient:
        key = (pin, verify)
        if key not in self._clients:
            self._clients[key] = await self._stack.enter_async_context(
                web_client(self.target, self.policy, self.resolver, pin=pin, verify=verify)
            )
        return self._clients[key]

    async def page(self, url: str, *, pin: IPAddress | None = None, verify: bool = True) -> Page:
        """GET ``url`` once (no redirect followed); raises ``httpx.HTTPError`` as fetch does."""
        key = (url, pin, verify)
        if key not in self._pages:
            self._pages[key] = asyncio.ensure_future(self._get(url, pin, verify))
        return await asyncio.shield(self._pages[key])

    async def _get(self, url: str, pin: IPAddress | None, verify: bool) -> Page:
        client = await self.client(pin=pin, verify=verify)
        async with self.slots:
            return await fetch(client, url, self.policy.max_body_bytes)

    def url(self, scheme: str, path: str = "/") -> str:
        """``scheme://host[:port]path`` with the policy's port for that scheme."""
        port = self.policy.https_port if scheme == "https" else self.policy.http_port
        default = 443 if scheme == "https" else 80
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        return f"{scheme}://{host}{'' if port == default else f':{port}'}{path}"
