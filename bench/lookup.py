"""Public lookup throughput of a real ``trustwatch serve``, against its own ``/healthz`` rate.

What one run does (nothing leaves loopback):

1. writes ``--providers`` providers (default 10,000), each with one to three sites and a
   current rating, straight into a fresh SQLite store through the store API
   (``SqliteStore.add_provider`` and ``save_rating``, with a history point), before any server
   runs. The rating documents are realistic: the shape ``api.ratings.public_document`` stores
   (a :class:`scoring.trust_model.Rating` with its sites, categories, caps, penalties and one
   explanation per failing finding, with evidence, advice and references), ~13 KiB each;
2. starts ``trustwatch serve`` as a subprocess on a free loopback port on that data directory,
   with the public rate limit raised far above what one client address can send
   (``TRUSTWATCH_PUBLIC_RATE_PER_SECOND``, ``TRUSTWATCH_PUBLIC_BURST``: here every request
   comes from 127.0.0.1) and the scan scheduler off (``TRUSTWATCH_SCHEDULER=false``: it would
   scan the made-up sites);
3. checks one lookup answers the stored document, warms both endpoints up, then drives each
   for ``--seconds`` from a second process at ``--concurrency`` connections: ``/healthz``,
   then ``GET /public/v1/providers/{id}`` over uniformly random ids. The client is ``wrk``
   when it is on PATH (a Lua ``request`` function picks the ids), else an asyncio httpx
   client in a spawned child;
4. prints requests/s, p50/p99 latency and server CPU per request of each, and the ratio
   lookup ÷ healthz against the target of 0.7. Any non-2xx answer fails the run (a 404 would
   mean a wrong id, a 429 the rate limit).

Run from the repository root, with trustwatch installed in the interpreter's environment::

    /tmp/venv/bin/python bench/lookup.py --providers 10000 --seconds 10 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.providers import NewProvider, Provider, Site, SiteRole
from api.ratings import public_document
from api.store import SqliteStore
from api.store.protocol_trust import StoredRating

# The server helpers of the ingest benchmark: the same start, health wait, stop and CPU reading.
from bench.ingest import (
    LOOPBACK,
    BenchError,
    free_port,
    percentiles_ms,
    process_cpu_seconds,
    run_wrk,
    server_env,
    start_server,
    stop_server,
    wait_healthy,
)
from scoring.trust_model import (
    AppliedCap,
    Category,
    Explanation,
    IncidentKind,
    Penalty,
    Rating,
    RatingStatus,
    SiteRating,
)

TARGET_RATIO: Final = 0.7
ID_FORMAT: Final = "prov-{:05d}"
LOOKUP_PATH: Final = "/public/v1/providers/"
REQUEST_TIMEOUT_S: Final = 30.0
WARM_UP_REQUESTS: Final = 200
BENCH_SETTINGS: Final = {
    # Far above what one loopback client sends (the settings' maximum rate): no 429 measured.
    "TRUSTWATCH_PUBLIC_RATE_PER_SECOND": "100000",
    "TRUSTWATCH_PUBLIC_BURST": "1000000",
    # The scheduler would start scanning every registered site at once: DNS queries for the
    # made-up domains leave the machine, and the scans take the CPU being measured.
    "TRUSTWATCH_SCHEDULER": "false",
}
AGENCIES: Final = tuple(
    f"{kind} {name}"
    for kind in ("Ministry of", "Department of", "Provincial Office of")
    for name in ("Finance", "Health", "Education", "Transport", "Justice", "Industry", "Labour")
)
CATEGORY_MAX: Final = {
    Category.T: 30.0,
    Category.H: 25.0,
    Category.D: 15.0,
    Category.X: 15.0,
    Category.R: 10.0,
    Category.G: 5.0,
}


@dataclass(frozen=True)
class Check:
    """A finding the synthetic ratings draw from: what fails, what it costs, its evidence."""

    id: str
    category: Category
    points: float
    cap: str | None
    expectation: str
    advice: str
    evidence: dict[str, Any]


CHECKS: Final = (
    Check(
        "tls.protocols",
        Category.T,
        2.0,
        "B",
        "TLS 1.2 and 1.3 only",
        "Disable TLS 1.0 and 1.1 on every endpoint.",
        {"offered": ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"], "endpoint": "203.0.113.10"},
    ),
    Check(
        "tls.expiry",
        Category.T,
        1.0,
        None,
        "more than 30 days left",
        "Renew the certificate; automate renewal (ACME).",
        {"days_left": 21, "not_after": "2026-12-14T00:00:00Z"},
    ),
    Check(
        "tls.ocsp_stapling",
        Category.T,
        0.5,
        None,
        "an OCSP response is stapled",
        "Enable OCSP stapling.",
        {"stapled": False},
    ),
    Check(
        "http.content-security-policy",
        Category.H,
        6.25,
        None,
        "a Content-Security-Policy without unsafe-inline or unsafe-eval in script-src",
        "Send a Content-Security-Policy; start from default-src 'self'.",
        {"header": None, "modifier": -25},
    ),
    Check(
        "http.strict-transport-security",
        Category.H,
        5.0,
        "A",
        "HSTS with max-age of at least six months",
        "Send Strict-Transport-Security: max-age=31536000; includeSubDomains.",
        {"header": None, "modifier": -20},
    ),
    Check(
        "http.x-frame-options",
        Category.H,
        5.0,
        None,
        "X-Frame-Options DENY/SAMEORIGIN or CSP frame-ancestors",
        "Send X-Frame-Options: DENY, or CSP frame-ancestors 'none'.",
        {"header": None, "modifier": -20},
    ),
    Check(
        "http.x-content-type-options",
        Category.H,
        1.25,
        None,
        "X-Content-Type-Options: nosniff",
        "Send X-Content-Type-Options: nosniff.",
        {"header": None, "modifier": -5},
    ),
    Check(
        "http.subresource-integrity",
        Category.H,
        1.25,
        None,
        "external scripts carry integrity attributes",
        "Add integrity= and crossorigin= to external script tags.",
        {"scripts": ["https://cdn.example.net/jquery-3.7.1.min.js"], "modifier": -5},
    ),
    Check(
        "http.cookies",
        Category.H,
        5.0,
        None,
        "every cookie Secure, session cookies HttpOnly",
        "Set Secure, HttpOnly and SameSite on session cookies.",
        {"cookies": [{"name": "JSESSIONID", "secure": True, "httponly": False}], "modifier": -30},
    ),
    Check(
        "dns.dmarc",
        Category.D,
        3.0,
        None,
        "a DMARC policy of quarantine or reject",
        "Publish p=quarantine (then reject) once reports show legitimate mail aligns.",
        {"policy": "none", "pct": 100, "rua": ["mailto:dmarc@example.gov"]},
    ),
    Check(
        "dns.dnssec",
        Category.D,
        4.0,
        None,
        "a DNSSEC-signed zone that validates",
        "Sign the zone and publish the DS record at the parent.",
        {"status": "insecure"},
    ),
    Check(
        "dns.caa",
        Category.D,
        2.0,
        None,
        "a CAA record with an issue property",
        "Publish CAA records naming the CAs you use.",
        {"records": []},
    ),
    Check(
        "exposure.services",
        Category.X,
        3.0,
        None,
        "no high-risk or legacy service reachable",
        "Close FTP (21) to the internet or move it behind a VPN.",
        {"open": [{"port": 21, "service": "ftp", "banner": "vsFTPd 3.0.3"}]},
    ),
    Check(
        "disclosure.security_txt",
        Category.G,
        3.0,
        None,
        "a valid /.well-known/security.txt (RFC 9116)",
        "Publish security.txt with Contact and a future Expires.",
        {"state": "missing"},
    ),
)
REFERENCES: Final = (
    "https://developer.mozilla.org/en-US/observatory/docs/tests_and_scoring",
    "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide",
)


def band(score: float) -> str:
    for edge, grade in ((85.0, "A"), (70.0, "B"), (55.0, "C"), (40.0, "D")):
        if score >= edge:
            return grade
    return "F"


def synthetic_rating(rng: random.Random, provider: Provider, now: datetime) -> Rating:
    """A rating as TNM-1 would shape it, with random failing findings on each site."""
    sites: list[SiteRating] = []
    findings: list[Explanation] = []
    caps: list[AppliedCap] = []
    for site in provider.sites:
        failing = rng.sample(CHECKS, rng.randint(2, 8))
        lost = dict.fromkeys(Category, 0.0)
        explained = []
        for check in failing:
            lost[check.category] += check.points
            explained.append(
                Explanation(
                    check=check.id,
                    status="fail",
                    expectation=check.expectation,
                    category=check.category,
                    points_lost=check.points,
                    cap=check.cap,
                    evidence=check.evidence,
                    first_seen=now - timedelta(days=rng.randint(1, 200)),
                    last_verified=now - timedelta(hours=rng.randint(0, 23)),
                    confirmations=rng.randint(2, 40),
                    recommendation=check.advice,
                    references=REFERENCES,
                    methodology="TNM-1",
                    site=site.domain,
                )
            )
            if check.cap:
                caps.append(AppliedCap(check.cap, check.expectation, check.id, site.domain))
        categories = {c: round(max(0.0, CATEGORY_MAX[c] - lost[c]), 2) for c in Category}
        sites.append(
            SiteRating(
                domain=site.domain,
                importance=site.importance,
                posture=round(sum(categories.values()), 2),
                categories=categories,
                caps=tuple(c for c in caps if c.site == site.domain),
                findings=tuple(explained),
                testable=1.0,
                weight=float(site.importance),
            )
        )
        findings.extend(explained)
    posture = round(min(s.posture for s in sites), 1)  # the weakest site leads, as in TNM-1
    penalties: tuple[Penalty, ...] = ()
    if rng.random() < 0.1:  # one provider in ten has a recent outage on record
        penalties = (
            Penalty(
                "inc-" + provider.id,
                IncidentKind.OUTAGE,
                1.5,
                3.0,
                1.0,
                False,
                None,
                "total outage over 24 h, resolved 30 days ago (half-life 30 days)",
            ),
        )
    score = round(max(0.0, posture - sum(p.points for p in penalties)), 1)
    order = ["A+", "A", "B", "C", "D", "F"]
    grade = max([band(score), *(c.grade for c in caps)], key=order.index)
    return Rating(
        provider=provider.id,
        computed_at=now,
        methodology="TNM-1",
        status=RatingStatus.RATED,
        grade=grade,
        score=score,
        band=band(score),
        posture=posture,
        categories=sites[0].categories,
        caps=tuple(caps),
        penalties=penalties,
        findings=tuple(findings),
        sites=tuple(sites),
        a_plus_eligible=False,
        warning=False,
        last_scanned=now - timedelta(hours=2),
    )


def seed_store(db_path: Path, count: int, seed: int, now: datetime) -> tuple[float, int]:
    """Register ``count`` rated providers; returns the seconds it took and the mean doc size."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    started = time.perf_counter()
    total_bytes = 0
    store = SqliteStore.open(db_path)
    try:
        for i in range(1, count + 1):
            pid = ID_FORMAT.format(i)
            roles = [SiteRole.PRIMARY, SiteRole.TRANSACTION, SiteRole.OTHER][: rng.randint(1, 3)]
            sites = tuple(Site(f"{role.value}.{pid}.gov.example", role) for role in roles)
            agency = rng.choice(AGENCIES)
            provider = store.add_provider(
                NewProvider(
                    pid, f"{agency.split()[-1]} e-services {i}", agency, rng.randint(1, 5), sites
                ),
                now - timedelta(days=60),
            )
            rating = synthetic_rating(rng, provider, now)
            doc = orjson.dumps(public_document(provider, rating))
            total_bytes += len(doc)
            store.save_rating(
                StoredRating(
                    provider=pid,
                    name=provider.name,
                    agency=agency,
                    level=provider.level,
                    status=rating.status.value,
                    grade=rating.grade,
                    score=rating.score,
                    warning=rating.warning,
                    computed_at=now,
                    doc=doc,
                ),
                history=True,
            )
    finally:
        store.close()
    return time.perf_counter() - started, total_bytes // max(count, 1)


# -- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One endpoint's figures from one client run."""

    tool: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu_s: float | None


# wrk calls request() for every request; the ids are drawn uniformly, as ID_FORMAT makes them.
_WRK_LOOKUP: Final = """
math.randomseed({seed})
request = function()
  return wrk.format("GET", string.format("{path}prov-%05d", math.random({count})))
end
"""


def wrk_load(
    wrk: str, url: str, concurrency: int, seconds: int, script: Path | None = None
) -> Load:
    run = run_wrk(wrk, url, concurrency, seconds, script)
    return Load(
        tool=f"wrk -t1 -c{concurrency}",
        requests=run.requests,
        errors=run.errors,
        seconds=run.seconds,
        p50_ms=run.p50_ms,
        p99_ms=run.p99_ms,
        client_cpu_s=run.client_cpu_s,
    )


def httpx_worker(
    base_url: str, path: str, count: int, concurrency: int, seconds: float, seed: int
) -> Load:
    """Runs in a spawned child: ``concurrency`` asyncio tasks on one httpx client. ``count``
    0 requests ``path`` itself; otherwise ``path`` + a random provider id."""

    async def drive() -> Load:
        rng = random.Random(seed)  # noqa: S311 - which ids to ask for, not a secret
        latencies: list[float] = []
        errors = [0]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as client:
            deadline = time.perf_counter() + seconds

            async def task() -> None:
                while (started := time.perf_counter()) < deadline:
                    url = path + ID_FORMAT.format(rng.randint(1, count)) if count else path
                    try:
                        status = (await client.get(url)).status_code
                    except httpx.HTTPError:
                        status = 0
                    latencies.append(time.perf_counter() - started)
                    if not 200 <= status < 300:
                        errors[0] += 1

            cpu_before = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(task() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        p50, _, p99 = percentiles_ms(latencies)
        return Load(
            tool=f"httpx asyncio, {concurrency} connections in a child process",
            requests=len(latencies) - errors[0],
            errors=errors[0],
            seconds=elapsed,
            p50_ms=p50,
            p99_ms=p99,
            client_cpu_s=time.process_time() - cpu_before,
        )

    return asyncio.run(drive())


# -- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    health: Load
    health_server_cpu_s: float | None
    lookup: Load
    lookup_server_cpu_s: float | None


def check_lookup(base_url: str, count: int, seed: int) -> None:
    """One lookup must answer the stored document; then warm both endpoints up."""
    rng = random.Random(seed)  # noqa: S311 - which ids to ask for, not a secret
    pid = ID_FORMAT.format(rng.randint(1, count))
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        reply = client.get(LOOKUP_PATH + pid)
        if reply.status_code != 200 or reply.json().get("id") != pid:
            raise BenchError(f"lookup of {pid}: HTTP {reply.status_code} {reply.text[:300]}")
        missing = client.get(LOOKUP_PATH + "no-such-provider")
        if missing.status_code != 404:
            raise BenchError(f"lookup of an unknown id: HTTP {missing.status_code}, not 404")
        for _ in range(WARM_UP_REQUESTS):
            client.get("/healthz")
            client.get(LOOKUP_PATH + ID_FORMAT.format(rng.randint(1, count)))


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def measure(args: argparse.Namespace, data_dir: Path, tmp: Path) -> Measured:
    port = free_port()
    env = server_env(data_dir, port) | BENCH_SETTINGS
    base_url = f"http://{LOOPBACK}:{port}"
    log_path = tmp / "serve.log"
    wrk = None if args.no_wrk else shutil.which("wrk")
    script = tmp / "lookup.lua"
    script.write_text(_WRK_LOOKUP.format(seed=args.seed, path=LOOKUP_PATH, count=args.providers))
    spawn = multiprocessing.get_context("spawn")
    server = start_server(env, log_path)
    try:
        wait_healthy(base_url, server, log_path)
        check_lookup(base_url, args.providers, args.seed)
        results: list[tuple[Load, float | None]] = []
        for path, count in (("/healthz", 0), (LOOKUP_PATH, args.providers)):
            cpu_before = process_cpu_seconds(server.pid)
            if wrk:
                load = wrk_load(
                    wrk,
                    base_url + path,
                    args.concurrency,
                    args.seconds,
                    script if count else None,
                )
            else:
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    load = pool.submit(
                        httpx_worker,
                        base_url,
                        path,
                        count,
                        args.concurrency,
                        float(args.seconds),
                        args.seed,
                    ).result(timeout=args.seconds + REQUEST_TIMEOUT_S + 60)
            results.append((load, _delta(cpu_before, process_cpu_seconds(server.pid))))
            if load.errors:
                raise BenchError(f"{path}: {load.errors} requests failed or were not 2xx")
    finally:
        stop_server(server)
    (health, health_cpu), (lookup, lookup_cpu) = results
    return Measured(health, health_cpu, lookup, lookup_cpu)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def report(m: Measured) -> None:
    rates = {}
    for name, load, cpu in (
        ("/healthz", m.health, m.health_server_cpu_s),
        ("/public/v1/providers/{id}", m.lookup, m.lookup_server_cpu_s),
    ):
        rate = load.requests / load.seconds
        rates[name] = rate
        print(f"{name} ({load.tool}, {load.seconds:.1f} s)")
        print(f"  requests/s           {rate:,.0f}  ({load.requests:,} requests)")
        print(f"  latency p50/p99      {_fmt(load.p50_ms)} / {_fmt(load.p99_ms)} ms")
        if cpu:
            print(
                f"  server CPU           {cpu:.2f} s = {cpu / load.seconds:.2f} cores, "
                f"{cpu / load.requests * 1e6:.0f} us/request"
            )
        print(f"  client CPU           {_fmt(load.client_cpu_s)} s")
    ratio = rates["/public/v1/providers/{id}"] / rates["/healthz"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"ratio lookup / healthz req/s   {ratio:.3f}  (target >= {TARGET_RATIO}: {verdict})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--providers", type=int, default=10_000, help="providers (10000)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each phase (10)")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections (4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the data and the ids")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx client")
    args = parser.parse_args(argv)
    if not 1 <= args.providers <= 99_999:
        parser.error("--providers must be 1..99999")
    if not 1 <= args.seconds <= 600 or not 1 <= args.concurrency <= 256:
        parser.error("--seconds must be 1..600 and --concurrency 1..256")
    return args


def run(args: argparse.Namespace) -> None:
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    with tempfile.TemporaryDirectory(prefix="trustwatch-lookup-") as name:
        tmp = Path(name)
        data_dir = tmp / "data"
        seconds, doc_bytes = seed_store(
            data_dir / "trustwatch.sqlite3", args.providers, args.seed, datetime.now(UTC)
        )
        print(
            f"stored {args.providers:,} rated providers in {seconds:.1f} s "
            f"(rating documents {doc_bytes:,} bytes on average)"
        )
        measured = measure(args, data_dir, tmp)
        print()
        report(measured)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except BenchError as exc:
        print(f"bench/lookup.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
