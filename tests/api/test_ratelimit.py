"""The public endpoints' per-client token buckets, and the dependency that answers 429."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import ApiError, TooManyRequestsError
from api.ratelimit import LimiterStats, PublicLimit, RateLimiter, client_key
from tests.conftest import LiveServer


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_then_a_wait_until_the_next_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=4.0, burst=3, max_clients=10, clock=clock)
    burst = [limiter.take("a") for _ in range(4)]
    clock.now += 0.125  # half a token
    half = limiter.take("a")
    clock.now += 0.125  # the second half
    whole = [limiter.take("a"), limiter.take("a")]
    assert ([None, None, None, 0.25], 0.125, [None, 0.25]) == (burst, half, whole)
    assert LimiterStats(clients=1, evicted=0, refused=3) == limiter.stats()


def test_an_idle_bucket_fills_to_the_burst_and_no_further() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=2, max_clients=10, clock=clock)
    for _ in range(2):
        limiter.take("a")
    clock.now += 3600
    assert [None, None, 0.1] == [limiter.take("a") for _ in range(3)]


def test_clients_have_their_own_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=10, clock=clock)
    assert [None, 1.0, None, 1.0] == [
        limiter.take("a"),
        limiter.take("a"),
        limiter.take("b"),
        limiter.take("b"),
    ]


def test_a_clock_that_steps_back_gives_no_tokens() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=10, clock=clock)
    limiter.take("a")
    clock.now -= 50
    refused = limiter.take("a")
    clock.now += 50 + 1  # one second after the first request, by the original time line
    assert (1.0, None) == (refused, limiter.take("a"))


def test_past_max_clients_the_least_recently_seen_is_dropped_and_counted() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=2, clock=clock)
    limiter.take("a")
    limiter.take("b")
    limiter.take("a")  # refused, but it makes "a" recent: "b" is now the oldest
    limiter.take("c")  # drops "b"
    answers = {key: limiter.take(key) for key in ("a", "c")}
    # "b" comes back with a full bucket, and drops "a" (seen before "c")
    back = limiter.take("b")
    assert ({"a": 1.0, "c": 1.0}, None) == (answers, back)
    assert LimiterStats(clients=2, evicted=2, refused=3) == limiter.stats()


def test_one_bucket_shared_by_threads_gives_exactly_its_burst() -> None:
    clock = FakeClock()  # frozen: no refill during the test
    limiter = RateLimiter(rate=1.0, burst=500, max_clients=10, clock=clock)
    allowed = [0] * 8
    start = threading.Barrier(8)

    def hammer(index: int) -> None:
        start.wait()
        for _ in range(1000):
            if limiter.take("shared") is None:
                allowed[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (500, LimiterStats(clients=1, evicted=0, refused=7500)) == (
        sum(allowed),
        limiter.stats(),
    )


def test_many_clients_from_threads_stay_within_the_table() -> None:
    limiter = RateLimiter(rate=100.0, burst=5, max_clients=100)
    start = threading.Barrier(4)

    def clients(index: int) -> None:
        start.wait()
        for n in range(2000):
            limiter.take(f"10.{index}.{n // 256}.{n % 256}")

    threads = [threading.Thread(target=clients, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert LimiterStats(clients=100, evicted=8000 - 100, refused=0) == limiter.stats()


@pytest.mark.parametrize(
    ("rate", "burst", "max_clients", "message"),
    [
        (0.0, 1, 1, "rate must be a positive number of requests per second, not 0.0"),
        (float("inf"), 1, 1, "rate must be a positive number of requests per second, not inf"),
        (float("nan"), 1, 1, "rate must be a positive number of requests per second, not nan"),
        (1.0, 0, 1, "burst must be at least 1, not 0"),
        (1.0, 1, 0, "max_clients must be at least 1, not 0"),
    ],
)
def test_unusable_parameters_are_refused(
    rate: float, burst: int, max_clients: int, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RateLimiter(rate, burst, max_clients)


def test_client_keys_group_an_ipv6_subscriber_and_unwrap_mapped_ipv4() -> None:
    hosts = [
        "192.0.2.1",
        "2001:db8:aa:bb:1::1",
        "2001:db8:aa:bb:ffff::2",
        "2001:db8:aa:bc::1",
        "::ffff:198.51.100.9",
        "fe80::1%eth0",
        "::1",
        "testclient",
        None,
    ]
    assert [
        "192.0.2.1",
        "2001:db8:aa:bb::/64",
        "2001:db8:aa:bb::/64",
        "2001:db8:aa:bc::/64",
        "198.51.100.9",
        "fe80::/64",
        "::/64",
        "testclient",
        "unknown",
    ] == [client_key(host) for host in hosts]


@pytest.mark.parametrize(
    ("wait", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")]
)
def test_retry_after_is_whole_seconds_and_at_least_one(wait: float, header: str) -> None:
    error = TooManyRequestsError(wait)
    assert (429, {"Retry-After": header}, f"too many requests; retry after {header} s") == (
        error.status,
        error.headers,
        str(error),
    )


# -- the dependency, on a real server ----------------------------------------------------------


def tiny_app(limiter: RateLimiter) -> FastAPI:
    """One limited route and one free one, answering ApiError as the service does."""
    app = FastAPI()
    app.state.public_limiter = limiter

    @app.get("/public")
    def public(_: PublicLimit) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/free")
    def free() -> dict[str, str]:
        return {"ok": "yes"}

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    return app


class ServiceLikeServer(LiveServer):
    """A live server with uvicorn configured as ``api.service`` runs it: no proxy headers.
    (uvicorn's default believes ``X-Forwarded-For`` from 127.0.0.1, which is every client
    in a loopback test.)"""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", proxy_headers=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )


@pytest.fixture
def limited() -> Iterator[tuple[httpx.Client, RateLimiter]]:
    # 1 request every 100 s after a burst of 3: the test cannot earn a token by being slow.
    limiter = RateLimiter(rate=0.01, burst=3, max_clients=10)
    with ServiceLikeServer(tiny_app(limiter)) as live, httpx.Client(base_url=live.url) as client:
        yield client, limiter


def test_the_dependency_answers_429_with_retry_after_past_the_burst(
    limited: tuple[httpx.Client, RateLimiter],
) -> None:
    client, limiter = limited
    statuses = [client.get("/public").status_code for _ in range(3)]
    refused = client.get("/public")
    free = client.get("/free")
    assert (
        [200, 200, 200],
        429,
        "100",
        {"detail": "too many requests; retry after 100 s"},
        200,
        LimiterStats(clients=1, evicted=0, refused=1),
    ) == (
        statuses,
        refused.status_code,
        refused.headers["retry-after"],
        refused.json(),
        free.status_code,
        limiter.stats(),
    )


def test_the_dependency_keys_on_the_peer_address_not_forwarding_headers(
    limited: tuple[httpx.Client, RateLimiter],
) -> None:
    client, limiter = limited
    statuses = [
        client.get("/public", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(5)
    ]
    assert ([200, 200, 200, 429, 429], 1) == (statuses, limiter.stats().clients)
