"""Availability and integrity of the home page: does it answer, how fast is the first byte,
and what does it look like (a fingerprint the scoring side follows per provider, and the
keywords of defacement and of gambling/SEO spam).

:func:`~sensors.scanner.home.visit_home` reads the home page (shared with the other areas).

The fingerprint is :class:`PageFeatures`: a frozen, JSON-able value (``to_json``) with the hash
of the normalised body and structural counts. Drift across observations is judged by scoring
(river), not here: one observation can only say *suspected*.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Final

import httpx

from sensors.scanner.context import ScanContext
from sensors.scanner.home import visit_home
from sensors.scanner.markup import parse_markup
from sensors.scanner.result import Area, CheckResult, CheckStatus, could_not_check
from sensors.scanner.web import Page, host_of

FEATURES_SCHEMA: Final = 1  # bump when PageFeatures changes: scoring keys its state on it
TTFB_LIMIT: Final = 1.0  # seconds; the methodology's R point for response time
MAX_DOMAINS: Final = 50  # per list of domains in the fingerprint
MAX_HITS: Final = 50
MAX_HIDDEN_LINKS: Final = 500

# Keyword lists, matched on NFC-normalised, casefolded text between word boundaries (\w is
# Unicode-aware, so Vietnamese letters are word characters). Strong defacement phrases count
# anywhere; weak ones are ordinary English ("owned by" a ministry) and count only in the title,
# where defacement pages put their signature.
DEFACEMENT_STRONG: Final = (
    *("hacked by", "defaced by", "h4ck3d", "h4cked by", "pwned by", "0wned by", "greetz"),
    *("bị hack bởi", "hack bởi", "đã bị hack"),  # Vietnamese: "hacked by", "has been hacked"
    "di hack oleh",  # Indonesian: "hacked by"
)
DEFACEMENT_TITLE_ONLY: Final = ("owned by", "hacked")
# Gambling and SEO spam injected into compromised sites, in English, Indonesian (slot/judi
# spam is the most common injection in the region) and Vietnamese. Words that government news
# uses when reporting on gambling crime ("đánh bạc", "cá độ") are left out on purpose.
SPAM: Final = (
    *("casino", "online casino", "online slots", "slot online", "slot gacor", "slot88"),
    *("maxwin", "rtp slot", "sportsbook", "sports betting", "online betting", "poker online"),
    *("viagra", "cialis"),  # pharmacy spam, the other classic injection
    *("judi online", "judi bola", "situs judi", "agen judi", "situs slot", "togel"),
    *("bandar togel", "sbobet"),
    # Vietnamese: jackpot slots, sic bo, betting, bookmaker, online football (the betting
    # sites' lure), betting tips, illegal lottery, xoc dia, card games for prizes.
    *("nổ hũ", "tài xỉu", "cá cược", "nhà cái", "bóng đá trực tuyến", "soi kèo", "lô đề"),
    *("xóc đĩa", "game bài đổi thưởng"),
)


def fold(text: str) -> str:
    """Text as the keyword lists are matched: NFC, casefolded (casefolding may denormalise).

    >>> fold("NỔ HŨ") == fold("nổ hũ")
    True
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(fold(w)) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


_STRONG: Final = _pattern(DEFACEMENT_STRONG)
_TITLE_ONLY: Final = _pattern(DEFACEMENT_TITLE_ONLY)
_SPAM: Final = _pattern(SPAM)


def _ascii_tokens(text: str) -> list[str]:
    """Lower-case ASCII words of a URL, diacritics removed (``nổ-hũ`` and ``no-hu`` alike)."""
    plain = unicodedata.normalize("NFD", fold(text).replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return [t for t in re.split(r"[^0-9a-z]+", plain) if t]


_SPAM_TOKENS: Final = tuple((w, _ascii_tokens(w)) for w in SPAM)


def _url_spam(href: str) -> list[str]:
    """Spam words in a URL, as whole ASCII words (``/nha-cai/``) or run together as one
    (``slotgacor.example``) — never inside another word (``technohub`` is not ``no hu``)."""
    tokens = _ascii_tokens(href)
    found = []
    for word, parts in _SPAM_TOKENS:
        runs = (tokens[i : i + len(parts)] for i in range(len(tokens) - len(parts) + 1))
        if "".join(parts) in tokens or parts in runs:
            found.append(word)
    return found


@dataclass(frozen=True)
class KeywordHit:
    """A keyword found on the page: ``kind`` defacement or spam; ``where`` title, text, link
    (a visible link's address) or hidden-link (a link hidden by style, its text or address)."""

    kind: str
    word: str
    where: str


@dataclass(frozen=True)
class PageFeatures:
    """The fingerprint of one page, compared across observations by scoring. JSON-able."""

    schema: int
    sha256: str  # of the normalised body (see normalised_body)
    size: int  # bytes read
    truncated: bool
    title: str
    scripts: int
    inline_scripts: int
    script_domains: tuple[str, ...]  # external, sorted, at most MAX_DOMAINS
    iframes: int
    iframe_domains: tuple[str, ...]
    forms: int
    links: int
    foreign_domains: tuple[str, ...]  # linked domains not the site's, sorted, bounded
    foreign_domains_total: int  # before the bound
    hidden_links: int
    hits: tuple[KeywordHit, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass(frozen=True)
class AvailabilitySnapshot:
    """The home page as observed: the last answer of the redirect chain from ``url``."""

    observed_at: datetime
    url: str
    status: int | None  # None: no answer at all
    final_url: str | None
    redirects: int
    ttfb: float | None  # of the first request, in seconds
    error: str | None  # why nothing answered, or why the redirect chain stopped
    verified: bool  # False: only HTTPS with an unverified certificate answered
    features: PageFeatures | None


def normalised_body(text: str) -> str:
    """The body as hashed: NFC, per-response nonces removed, whitespace collapsed, so that
    the same page served twice hashes the same.

    >>> normalised_body('<script nonce="a1">x</script>\\n  <p>Hi</p>')
    '<script>x</script> <p>Hi</p>'
    """
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\snonce=(\"[^\"]*\"|'[^']*'|[^\s>]*)", "", text)
    return " ".join(text.split())


def _same_site(host: str, site: str) -> bool:
    """One host within the other's domain, ``www.`` aside (no public-suffix list: a link
    between sister sites of one registrable domain counts as foreign only if neither host
    contains the other)."""
    a, b = host.removeprefix("www."), site.removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _domain(url: str, base: str) -> str | None:
    try:
        absolute = httpx.URL(base).join(url)
    except (httpx.InvalidURL, ValueError):
        return None
    if absolute.scheme not in ("http", "https") or not absolute.host:
        return None
    return host_of(str(absolute))


# Elements without an end tag: never pushed on the stack of open elements.
_VOID: Final = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr")
)
# Styles that hide an element from visitors (looked for with whitespace removed). A negative
# offset of three digits or more moves it off screen: the classic "left:-9999px".
_HIDING: Final = re.compile(
    r"display:none|visibility:hidden|(?:left|top|text-indent|margin-left):-\d{3,}"
    r"|font-size:0(?:px)?(?:;|$)"
)


@dataclass
class _HiddenLinks(HTMLParser):
    """The links inside elements hidden by style: SEO spam's way of feeding crawlers links
    that visitors never see. Bounded in depth and in links kept."""

    links: list[tuple[str, str]]
    _stack: list[tuple[str, bool]]  # open elements, and whether each hides its content
    _hiding: int = 0  # how many of them hide: a count, so that a tag costs no stack walk
    _anchor: list[str] | None = None
    _href: str = ""

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        style = re.sub(r"\s+", "", (a.get("style") or "").lower())
        hidden = "hidden" in a or bool(_HIDING.search(style))
        if tag == "a" and (hidden or self._hiding) and len(self.links) < MAX_HIDDEN_LINKS:
            self._anchor, self._href = [], (a.get("href") or "").strip()
        if tag not in _VOID and len(self._stack) < 500:
            self._stack.append((tag, hidden))
            self._hiding += hidden

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._anchor is not None:
            self.links.append((self._href, " ".join("".join(self._anchor).split())[:200]))
            self._anchor = None
        for depth in range(len(self._stack) - 1, max(-1, len(self._stack) - 50), -1):
            if self._stack[depth][0] == tag:  # close it and whatever was left open inside
                self._hiding -= sum(h for _, h in self._stack[depth:])
                del self._stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self._anchor is not None and len(self._anchor) < 50:
            self._anchor.append(data)


def page_features(page: Page) -> PageFeatures:
    """The fingerprint of ``page`` (pure: the page in, the value out)."""
    text = page.text
    markup = parse_markup(text)
    site = host_of(page.url)
    script_domains = {
        d for s in markup.scripts if s.src and (d := _domain(s.src, page.url)) and d != site
    }
    iframe_domains = {d for src in markup.iframes if src and (d := _domain(src, page.url))}
    foreign = {
        d
        for link in markup.links
        if (d := _domain(link.href, page.url)) is not None and not _same_site(d, site)
    }
    hidden_parser = _HiddenLinks([], [])
    hidden_parser.feed(text)
    hidden_parser.close()
    hits: dict[KeywordHit, None] = {}
    places = (("title", markup.title), ("text", markup.text))
    for where, content in places:
        folded = fold(content)
        for match in _STRONG.finditer(folded):
            hits[KeywordHit("defacement", match.group(), where)] = None
        for match in _SPAM.finditer(folded):
            hits[KeywordHit("spam", match.group(), where)] = None
    for match in _TITLE_ONLY.finditer(fold(markup.title)):
        hits[KeywordHit("defacement", match.group(), "title")] = None
    for link in markup.links:
        for word in _url_spam(link.href):
            hits[KeywordHit("spam", word, "link")] = None
    for href, label in hidden_parser.links:
        words = {m.group() for m in _SPAM.finditer(fold(label))} | set(_url_spam(href))
        for word in sorted(words):
            hits[KeywordHit("spam", word, "hidden-link")] = None
    body = normalised_body(text).encode()
    return PageFeatures(
        schema=FEATURES_SCHEMA,
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(page.body),
        truncated=page.truncated,
        title=markup.title[:200],
        scripts=len(markup.scripts),
        inline_scripts=sum(1 for s in markup.scripts if s.src is None),
        script_domains=tuple(sorted(script_domains))[:MAX_DOMAINS],
        iframes=len(markup.iframes),
        iframe_domains=tuple(sorted(iframe_domains))[:MAX_DOMAINS],
        forms=len(markup.forms),
        links=len(markup.links),
        foreign_domains=tuple(sorted(foreign))[:MAX_DOMAINS],
        foreign_domains_total=len(foreign),
        hidden_links=len(hidden_parser.links),
        hits=tuple(hits)[:MAX_HITS],
    )


async def fetch_availability(ctx: ScanContext) -> AvailabilitySnapshot:
    """Visit the home page and fingerprint the last page of its redirect chain."""
    visit = await visit_home(ctx)
    observed_at = ctx.now()
    final = visit.final
    return AvailabilitySnapshot(
        observed_at=observed_at,
        url=visit.url,
        status=None if final is None else final.status,
        final_url=None if final is None else final.url,
        redirects=max(0, len(visit.hops) - 1),
        ttfb=visit.hops[0].ttfb if visit.hops else None,
        error=visit.error,
        verified=visit.verified,
        features=None if final is None else page_features(final),
    )


_ID_STATUS, _ID_TTFB = "availability.status", "availability.ttfb"
_ID_FINGERPRINT, _ID_INTEGRITY = "availability.fingerprint", "availability.content-integrity"


def _result(
    check: str, status: CheckStatus, summary: str, evidence: dict[str, Any], advice: str = ""
) -> CheckResult:
    return CheckResult(check, Area.AVAILABILITY, status, summary, evidence, advice)


def evaluate_status(s: AvailabilitySnapshot) -> CheckResult:
    """Up on 2xx, 3xx, 401 or 403 (the answers the Observatory grades); down on 5xx or no
    answer; another 4xx (404, 429) answers but is not a working home page: a warning."""
    evidence: dict[str, Any] = {"url": s.url, "status": s.status, "final_url": s.final_url}
    evidence |= {"redirects": s.redirects, "certificate_verified": s.verified}
    if s.error is not None:
        evidence["error"] = s.error
    if s.status is None:
        advice = "Check that the web server runs and answers on ports 443 and 80."
        return _result(
            _ID_STATUS, CheckStatus.FAIL, "the home page did not answer", evidence, advice
        )
    if 200 <= s.status < 400 or s.status in (401, 403):
        return _result(_ID_STATUS, CheckStatus.PASS, f"the home page answers {s.status}", evidence)
    if s.status >= 500:
        summary = f"the home page answers with a server error ({s.status})"
        advice = "Look at the server's error log: the application is failing."
        return _result(_ID_STATUS, CheckStatus.FAIL, summary, evidence, advice)
    summary = f"the home page answers with a client error ({s.status})"
    advice = "Serve the home page at / (or redirect / to it)."
    return _result(_ID_STATUS, CheckStatus.WARN, summary, evidence, advice)


def evaluate_ttfb(s: AvailabilitySnapshot) -> CheckResult:
    """Pass when the first byte of the home page came within a second, else warn."""
    if s.ttfb is None:
        return could_not_check(_ID_TTFB, Area.AVAILABILITY, s.error or "no answer")
    seconds = round(s.ttfb, 3)
    evidence: dict[str, Any] = {"seconds": seconds, "limit": TTFB_LIMIT, "url": s.url}
    if s.ttfb <= TTFB_LIMIT:
        return _result(_ID_TTFB, CheckStatus.PASS, f"first byte after {seconds} s", evidence)
    summary = f"first byte after {seconds} s (more than {TTFB_LIMIT:g} s)"
    advice = "Cache the home page or speed up what builds it."
    return _result(_ID_TTFB, CheckStatus.WARN, summary, evidence, advice)


def evaluate_fingerprint(s: AvailabilitySnapshot) -> CheckResult:
    """Information only: the page's features, for scoring to follow over time."""
    if s.features is None:
        return could_not_check(_ID_FINGERPRINT, Area.AVAILABILITY, s.error or "no answer")
    f = s.features
    summary = f"{f.size} bytes, {f.scripts} scripts, {len(f.foreign_domains)} foreign domains"
    return _result(
        _ID_FINGERPRINT, CheckStatus.INFO, summary, {"final_url": s.final_url, **f.to_json()}
    )


def evaluate_integrity(s: AvailabilitySnapshot) -> CheckResult:
    """Warn (suspected) on any defacement or spam keyword; confirmation over two observations
    and the cap belong to scoring."""
    if s.features is None:
        return could_not_check(_ID_INTEGRITY, Area.AVAILABILITY, s.error or "no answer")
    hits = s.features.hits
    if not hits:
        summary = "no defacement or spam keywords"
        return _result(_ID_INTEGRITY, CheckStatus.PASS, summary, {"final_url": s.final_url})
    kinds = sorted({h.kind for h in hits})
    words = sorted({h.word for h in hits})
    evidence = {"final_url": s.final_url, "suspected": kinds, "hits": [asdict(h) for h in hits]}
    advice = (
        "Look at the page and the server for injected content; if it is compromised, take it "
        "offline, restore from a clean copy and find how it got in."
    )
    summary = f"suspected {' and '.join(kinds)}: {', '.join(words[:5])}"
    return _result(_ID_INTEGRITY, CheckStatus.WARN, summary, evidence, advice)


CHECKS: Final = (
    (_ID_STATUS, evaluate_status),
    (_ID_TTFB, evaluate_ttfb),
    (_ID_FINGERPRINT, evaluate_fingerprint),
    (_ID_INTEGRITY, evaluate_integrity),
)
