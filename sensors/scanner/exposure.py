"""Exposure and hygiene (methodology category X): high-risk services reachable from the
internet, FTP, an exposed ``/.git/HEAD`` or ``/.env``, directory listings, and end-of-life
server software advertised in banners.

Ports are probed with a plain TCP connect on every address of the host, nothing sent: *open*
(the handshake completed), *closed* (refused), *filtered* (no answer within the connect timeout,
or an ICMP "host unreachable" from a firewall), *error* (the scanner could not try: no route,
a local firewall). Only *open* is reachable; a filtered port is not. Attempts are spaced to
``policy.port_rate`` per second across the whole scan and hold one of the scan's connection
slots each, never more than half of them, so the web checks running beside keep theirs.

Files are judged by their content, never by a 200 alone: many sites answer 200 with their home
page to every path, so a ``.git/HEAD`` must read like one (``ref: refs/...`` or a commit id) and
a ``.env`` like ``KEY=VALUE`` lines, and neither may equal the answer to a random path. The
snapshot keeps the *names* of a ``.env``'s keys, never a value: those are secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx

from sensors.scanner.context import ScanContext
from sensors.scanner.eol import TABLE_AS_OF, advertised_software
from sensors.scanner.home import visit_home
from sensors.scanner.policy import IPAddress
from sensors.scanner.result import Area, CheckResult, CheckStatus, could_not_check
from sensors.scanner.web import Page

# The methodology's high-risk service classes (TNM-1, category X), minus 8 points each
HIGH_RISK_CLASSES: Final[tuple[tuple[str, tuple[int, ...]], ...]] = (
    *(("Telnet", (23,)), ("SMB", (445,)), ("RDP", (3389,)), ("VNC", (5900,))),
    *(("MySQL", (3306,)), ("PostgreSQL", (5432,)), ("MSSQL", (1433,))),
    *(("MongoDB", (27017,)), ("Redis", (6379,)), ("Elasticsearch", (9200,))),
    *(("Memcached", (11211,)), ("Docker", (2375, 2376)), ("Kubernetes", (6443, 10250))),
)
FTP_PORT: Final = 21  # scored on its own, minus 3 points
DEFAULT_PORTS: Final = (FTP_PORT, *(p for _, ports in HIGH_RISK_CLASSES for p in ports))
LISTING_DIRS: Final = ("/images/", "/uploads/", "/static/", "/assets/", "/files/")
MAX_ENV_KEYS: Final = 30

_CLASS_OF: Final = {FTP_PORT: "FTP"} | {p: name for name, ports in HIGH_RISK_CLASSES for p in ports}
# An ICMP "host unreachable" is how a firewall that rejects (rather than drops) answers.
_FILTERED_ERRNOS: Final = frozenset({errno.EHOSTUNREACH})
_LISTING_MARKERS: Final = (
    (re.compile(r"<(?:title|h1)>\s*Index of /", re.I), "Index of /"),  # Apache, nginx, lighttpd
    (re.compile(r"Directory listing for /", re.I), "Directory listing for /"),  # Python
    (re.compile(r"\[To Parent Directory\]", re.I), "[To Parent Directory]"),  # IIS
)
_GIT_HEAD: Final = re.compile(r"ref: refs/[\x21-\x7e]{1,200}|[0-9a-f]{40}|[0-9a-f]{64}")
_ENV_LINE: Final = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]{0,100})\s*=")


class PortState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"
    ERROR = "error"


@dataclass(frozen=True)
class PortProbe:
    address: str
    port: int
    state: PortState
    detail: str = ""

    @property
    def endpoint(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


@dataclass(frozen=True)
class FileProbe:
    """A well-known file asked for: ``found`` holds what identifies it (the HEAD line of a
    ``.git/HEAD``; the key *names* of a ``.env``), empty when the content does not match;
    ``catch_all`` that the same body answers a random path."""

    url: str
    status: int | None
    error: str | None
    found: tuple[str, ...]
    catch_all: bool


@dataclass(frozen=True)
class ListingProbe:
    url: str
    status: int | None
    marker: str | None  # the directory-listing marker found, if any
    error: str | None


@dataclass(frozen=True)
class ExposureSnapshot:
    observed_at: datetime
    ports: tuple[PortProbe, ...]
    scanned_ports: tuple[int, ...]
    web_error: str | None  # the home page did not answer: the web checks could not run
    git: FileProbe | None
    env: FileProbe | None
    listings: tuple[ListingProbe, ...]
    banners: tuple[tuple[str, str], ...]  # (header, value) of Server and X-Powered-By


def git_head(body: bytes) -> tuple[str, ...]:
    """The body's one line when it reads like a ``.git/HEAD`` file, else ``()``.

    >>> git_head(b"ref: refs/heads/main\\n"), git_head(b"<html>ok</html>")
    (('ref: refs/heads/main',), ())
    """
    if len(body) > 300:  # a HEAD file is one short line
        return ()
    text = body.decode("ascii", errors="replace").strip()
    return (text,) if _GIT_HEAD.fullmatch(text) else ()


def env_keys(body: bytes) -> tuple[str, ...]:
    """The key names of a body that reads as ``KEY=VALUE`` lines (at least four in five of its
    lines that are not blank or comments), else ``()``. Values are never returned.

    >>> env_keys(b"# app\\nAPP_KEY=s3cret\\nexport DB_PASSWORD='x'\\n")
    ('APP_KEY', 'DB_PASSWORD')
    >>> env_keys(b"<!doctype html><p>A=B</p>")
    ()
    """
    text = body[:200_000].decode("utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        return ()
    lines = [line.strip() for line in text.splitlines()[:2000]]
    meaningful = [line for line in lines if line and not line.startswith("#")]
    keys = [m.group(1) for line in meaningful if (m := _ENV_LINE.match(line))]
    if not keys or len(keys) * 5 < len(meaningful) * 4:
        return ()
    return tuple(dict.fromkeys(keys))[:MAX_ENV_KEYS]


def listing_marker(page: Page) -> str | None:
    """The directory-listing marker of a 200 answer, if it is an auto-generated index."""
    if page.status != 200:
        return None
    head = page.body[:65536].decode("utf-8", errors="replace")
    return next((name for pattern, name in _LISTING_MARKERS if pattern.search(head)), None)


class _Pacer:
    """Spaces connection attempts ``1/rate`` seconds apart, across every caller."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            start = now if self._next is None else max(now, self._next)
            self._next = start + self._interval
        await asyncio.sleep(start - now)


async def _connect(address: IPAddress, port: int, timeout: float) -> PortProbe:
    host = str(address)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return PortProbe(host, port, PortState.FILTERED, f"no answer in {timeout:g} s")
    except ConnectionRefusedError:
        return PortProbe(host, port, PortState.CLOSED)
    except OSError as exc:
        state = PortState.FILTERED if exc.errno in _FILTERED_ERRNOS else PortState.ERROR
        return PortProbe(host, port, state, exc.strerror or type(exc).__name__)
    writer.close()
    with contextlib.suppress(OSError):  # a reset while closing changes nothing: it was open
        await writer.wait_closed()
    return PortProbe(host, port, PortState.OPEN)


async def scan_ports(ctx: ScanContext, ports: Iterable[int]) -> tuple[PortProbe, ...]:
    """Connect to each port on each of the target's addresses (see the module docstring)."""
    pacer = _Pacer(ctx.policy.port_rate)
    share = asyncio.Semaphore(max(1, ctx.policy.concurrency // 2))

    async def one(address: IPAddress, port: int) -> PortProbe:
        async with share, ctx.slots:
            await pacer.wait()
            return await _connect(address, port, ctx.policy.connect_timeout)

    pairs = [(a, p) for a in ctx.target.addresses for p in dict.fromkeys(ports)]
    return tuple(await asyncio.gather(*(one(a, p) for a, p in pairs)))


async def _get(ctx: ScanContext, url: str, verify: bool) -> Page | str:
    try:
        return await ctx.page(url, verify=verify)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _file_probe(
    url: str, answer: Page | str, random: Page | str, found: tuple[str, ...]
) -> FileProbe:
    if isinstance(answer, str):
        return FileProbe(url, None, answer, (), False)
    catch_all = (
        isinstance(random, Page) and random.status == answer.status and random.body == answer.body
    )
    return FileProbe(url, answer.status, None, found if answer.status == 200 else (), catch_all)


async def fetch_exposure(ctx: ScanContext) -> ExposureSnapshot:
    """Scan the ports and probe the web server (its files, listings and banners) at once."""
    ports = DEFAULT_PORTS if ctx.policy.high_risk_ports is None else ctx.policy.high_risk_ports
    port_scan = asyncio.ensure_future(scan_ports(ctx, ports))
    try:
        visit = await visit_home(ctx)
    except BaseException:
        port_scan.cancel()  # the fetch fails as a whole: leave no scan running behind it
        raise
    git = env = None
    listings: list[ListingProbe] = []
    if visit.hops:
        base = httpx.URL(visit.url)

        def url(path: str) -> str:
            return str(base.copy_with(path=path))

        # A dot path like the files asked for, so a rule that denies dot files treats it alike.
        random_path = f"/.{secrets.token_hex(8)}"
        paths = ("/.git/HEAD", "/.env", random_path, *LISTING_DIRS)
        answers = await asyncio.gather(*(_get(ctx, url(p), visit.verified) for p in paths))
        head, dotenv, random = answers[:3]
        git = _file_probe(
            url("/.git/HEAD"),
            head,
            random,
            _found(head, git_head),
        )
        env = _file_probe(url("/.env"), dotenv, random, _found(dotenv, env_keys))
        home = visit.hops[-1]
        listings.append(ListingProbe(home.url, home.status, listing_marker(home), None))
        for path, answer in zip(LISTING_DIRS, answers[3:], strict=True):
            if isinstance(answer, str):
                listings.append(ListingProbe(url(path), None, None, answer))
            else:
                marker = listing_marker(answer)
                listings.append(ListingProbe(answer.url, answer.status, marker, None))
    banners = {
        (name, value[:300])
        for page in visit.hops
        for name in ("server", "x-powered-by")
        for value in page.header_list(name)
    }
    probes = await port_scan
    return ExposureSnapshot(
        observed_at=ctx.now(),
        ports=probes,
        scanned_ports=tuple(dict.fromkeys(ports)),
        web_error=None if visit.hops else visit.error,
        git=git,
        env=env,
        listings=tuple(listings),
        banners=tuple(sorted(banners))[:10],
    )


def _found(answer: Page | str, read: Callable[[bytes], tuple[str, ...]]) -> tuple[str, ...]:
    return () if isinstance(answer, str) or answer.status != 200 else read(answer.body)


def _result(
    check: str, status: CheckStatus, summary: str, evidence: dict[str, Any], advice: str = ""
) -> CheckResult:
    return CheckResult(check, Area.EXPOSURE, status, summary, evidence, advice)


def _port_result(check: str, probes: list[PortProbe], what: str, advice: str) -> CheckResult:
    """Fail when a port is open; could not check when one could not be tried; else pass."""
    counts = {state.value: sum(1 for p in probes if p.state == state) for state in PortState}
    reachable = [p for p in probes if p.state == PortState.OPEN]
    if reachable:
        classes: dict[str, list[str]] = {}
        for p in reachable:
            classes.setdefault(_CLASS_OF.get(p.port, f"port {p.port}"), []).append(p.endpoint)
        summary = f"reachable from the internet: {', '.join(classes)}"
        evidence = {"open": classes, "classes": len(classes), "counts": counts}
        return _result(check, CheckStatus.FAIL, summary, evidence, advice)
    errors = [f"{p.endpoint}: {p.detail}" for p in probes if p.state == PortState.ERROR]
    if errors:
        return could_not_check(check, Area.EXPOSURE, errors[0], errors=errors[:10], counts=counts)
    endpoints = len(probes)
    return _result(
        check, CheckStatus.PASS, f"no {what} reachable ({endpoints} probed)", {"counts": counts}
    )


def evaluate_high_risk(s: ExposureSnapshot) -> CheckResult:
    """Fail for each high-risk service class with an open port (evidence: address:port)."""
    check = "exposure.high-risk-services"
    probes = [p for p in s.ports if p.port != FTP_PORT]
    if not probes:
        return could_not_check(check, Area.EXPOSURE, "the policy scans no high-risk port")
    advice = (
        "Close these ports to the internet (firewall), or reach the services over a VPN; "
        "databases, remote desktops and container APIs must never face the internet."
    )
    return _port_result(check, probes, "high-risk service", advice)


def evaluate_ftp(s: ExposureSnapshot) -> CheckResult:
    """Fail when FTP (21) is open on an address."""
    check = "exposure.ftp"
    if FTP_PORT not in s.scanned_ports:
        return could_not_check(check, Area.EXPOSURE, "the policy does not scan port 21")
    probes = [p for p in s.ports if p.port == FTP_PORT]
    advice = "Replace FTP (clear-text passwords) with SFTP or HTTPS uploads, and close port 21."
    return _port_result(check, probes, "FTP service", advice)


def _file_result(
    check: str,
    probe: FileProbe | None,
    s: ExposureSnapshot,
    what: str,
    advice: str,
    evidence_key: str,
) -> CheckResult:
    if probe is None:
        return could_not_check(check, Area.EXPOSURE, s.web_error or "the home page did not answer")
    if probe.error is not None:
        return could_not_check(check, Area.EXPOSURE, probe.error, url=probe.url)
    evidence: dict[str, Any] = {"url": probe.url, "status": probe.status}
    if probe.found and not probe.catch_all:
        evidence[evidence_key] = list(probe.found)
        return _result(
            check, CheckStatus.FAIL, f"{what} is exposed at {probe.url}", evidence, advice
        )
    if probe.catch_all:
        evidence["catch_all"] = True
    return _result(check, CheckStatus.PASS, f"{what} is not exposed", evidence)


def evaluate_git(s: ExposureSnapshot) -> CheckResult:
    """Fail when ``/.git/HEAD`` answers with a git HEAD (the repository can be downloaded)."""
    advice = (
        "Deny access to /.git (the whole repository, history and secrets included, can be "
        "downloaded) and deploy without the .git directory."
    )
    return _file_result("exposure.git", s.git, s, "/.git/HEAD", advice, "head")


def evaluate_env(s: ExposureSnapshot) -> CheckResult:
    """Fail when ``/.env`` answers with ``KEY=VALUE`` lines; the evidence names keys only."""
    advice = (
        "Remove .env from the web root or deny access to it, then rotate every secret it "
        "held: assume they have been read."
    )
    return _file_result("exposure.env", s.env, s, "/.env", advice, "keys")


def evaluate_listing(s: ExposureSnapshot) -> CheckResult:
    """Fail when the home page or a common directory is an auto-generated directory index."""
    check = "exposure.directory-listing"
    if not s.listings:
        return could_not_check(check, Area.EXPOSURE, s.web_error or "the home page did not answer")
    found = [{"url": p.url, "marker": p.marker} for p in s.listings if p.marker]
    checked = {p.url: p.status for p in s.listings}
    if found:
        summary = f"directory listing at {found[0]['url']}"
        advice = "Turn off automatic indexes (Apache Options -Indexes, nginx autoindex off)."
        return _result(
            check, CheckStatus.FAIL, summary, {"listings": found, "checked": checked}, advice
        )
    errors = [f"{p.url}: {p.error}" for p in s.listings if p.error]
    if errors:
        return could_not_check(check, Area.EXPOSURE, errors[0], checked=checked)
    return _result(check, CheckStatus.PASS, "no directory listing", {"checked": checked})


def evaluate_eol(s: ExposureSnapshot) -> CheckResult:
    """Warn (advisory) when a banner advertises a branch past its end of life on the day of
    the observation."""
    check = "exposure.eol-software"
    if s.web_error is not None:
        return could_not_check(check, Area.EXPOSURE, s.web_error)
    advertised, expired = advertised_software(s.banners, s.observed_at.date())
    evidence: dict[str, Any] = {
        "banners": [f"{h}: {v}" for h, v in s.banners],
        "end_of_life": expired,
        "table_as_of": TABLE_AS_OF.isoformat(),
    }
    if expired:
        names = ", ".join(f"{e['product']} {e['version']}" for e in expired)
        advice = (
            "Upgrade to a supported release, and stop advertising versions "
            "(ServerTokens Prod, server_tokens off, expose_php = Off)."
        )
        return _result(
            check, CheckStatus.WARN, f"end-of-life software advertised: {names}", evidence, advice
        )
    summary = (
        "no end-of-life version advertised" if advertised else "no software version advertised"
    )
    return _result(check, CheckStatus.PASS, summary, evidence)


CHECKS: Final = (
    ("exposure.high-risk-services", evaluate_high_risk),
    ("exposure.ftp", evaluate_ftp),
    ("exposure.git", evaluate_git),
    ("exposure.env", evaluate_env),
    ("exposure.directory-listing", evaluate_listing),
    ("exposure.eol-software", evaluate_eol),
)
