"""Per-client rate limiting of the public endpoints: a token bucket per client address.

Each client may send ``burst`` requests at once, then ``rate`` per second: its bucket holds up
to ``burst`` tokens, refills continuously at ``rate`` tokens a second, and every request takes
one. A request that finds less than one token is refused with the time until one is there.

The table of buckets is bounded: past ``max_clients`` the least recently seen client is dropped
(and counted). A dropped client starts again with a full bucket, which is what it would have
had anyway unless it sent a request in the last ``burst / rate`` seconds; so eviction only
matters if over ``max_clients`` clients are active at once, and then it errs on serving them.

IPv6 clients are limited per /64, the block one subscriber line usually gets: otherwise one
client could rotate through its addresses, each with a full bucket, and push everyone else's
buckets out of the table.

Settings (:class:`~api.settings.Settings`): ``public_rate_per_second``, ``public_burst``,
``public_max_clients``; ``create_app`` puts the limiter on ``app.state.public_limiter``.

>>> t = [0.0]
>>> limiter = RateLimiter(rate=2.0, burst=2, max_clients=10, clock=lambda: t[0])
>>> limiter.take("192.0.2.1"), limiter.take("192.0.2.1"), limiter.take("192.0.2.1")
(None, None, 0.5)
>>> t[0] = 0.5
>>> limiter.take("192.0.2.1") is None
True
>>> client_key("2001:db8:1:2:3:4:5:6")
'2001:db8:1:2::/64'
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request

from api.errors import TooManyRequestsError

__all__ = [
    "LimiterStats",
    "PublicLimit",
    "RateLimiter",
    "client_key",
    "limit_public",
]

IPV6_CLIENT_PREFIX: Final = 64
UNKNOWN_CLIENT: Final = "unknown"  # no peer address (a test transport); they share one bucket


@dataclass(frozen=True)
class LimiterStats:
    """What a limiter holds and has done: clients with a bucket now, clients dropped to keep
    the table within ``max_clients``, and requests refused."""

    clients: int
    evicted: int
    refused: int


class RateLimiter:
    """A token bucket per key, bounded to ``max_clients`` keys, safe to share between threads.

    ``clock`` returns seconds and must not go backwards by much (``time.monotonic``); a step
    back is treated as no time passing.
    """

    __slots__ = ("_buckets", "_burst", "_clock", "_lock", "_max", "_rate", "evicted", "refused")

    def __init__(
        self,
        rate: float,
        burst: int,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, not {max_clients}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._max = max_clients
        self._clock = clock
        # key -> [tokens, time of the last update]; a list, updated in place, is the cheapest
        # mutable pair. Insertion order is recency order: the first key is the one to drop.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.refused = 0

    def take(self, key: str) -> float | None:
        """Take one token from ``key``'s bucket: ``None`` if the request may go ahead, else
        the seconds until a token will be there (the request is refused, nothing is taken)."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max:
                    self._buckets.popitem(last=False)
                    self.evicted += 1
                self._buckets[key] = [self._burst - 1.0, now]
                return None
            self._buckets.move_to_end(key)
            tokens, then = bucket
            if now > then:
                tokens = min(self._burst, tokens + (now - then) * self._rate)
                bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return None
            bucket[0] = tokens
            self.refused += 1
            return (1.0 - tokens) / self._rate

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(len(self._buckets), self.evicted, self.refused)


def client_key(host: str | None) -> str:
    """The bucket a peer address falls in: an IPv4 address as it is, an IPv6 address by its
    /64 (an IPv4-mapped one as the IPv4 address), anything else as given.

    >>> client_key("192.0.2.7"), client_key("::ffff:192.0.2.7"), client_key(None)
    ('192.0.2.7', '192.0.2.7', 'unknown')
    """
    if host is None:
        return UNKNOWN_CLIENT
    if ":" not in host:  # IPv4, or a name a test transport made up: no parsing on the hot path
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


async def limit_public(request: Request) -> None:
    """A dependency of the public routes: refuse the client with 429 when it is over its rate.

    The address is the TCP peer (``request.client``), never a forwarding header: a header is
    whatever the client wants it to be. Behind a reverse proxy, run uvicorn with
    ``--proxy-headers`` and the proxy in ``--forwarded-allow-ips`` so that the peer is the
    real client.

    ``async`` although it does no I/O: FastAPI runs a plain function dependency in its
    threadpool, and that hop would cost more than the bucket itself.
    """
    limiter: RateLimiter = request.app.state.public_limiter
    client = request.client
    wait = limiter.take(client_key(None if client is None else client.host))
    if wait is not None:
        raise TooManyRequestsError(wait)


PublicLimit = Annotated[None, Depends(limit_public)]
