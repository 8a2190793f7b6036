"""Disclosure (methodology category G): a ``security.txt`` per RFC 9116 and a privacy-policy
link on the home page.

``security.txt`` is asked for at ``https://host/.well-known/security.txt``, then at the legacy
``/security.txt`` (noted: RFC 9116 section 3 keeps it for compatibility only), following
redirects; over HTTP only when HTTPS does not answer, to tell the owner the file exists but is
not served as the RFC requires. An answer is a security.txt only when it is a 200, not HTML,
and names at least one RFC 9116 field: many sites answer every path with their home page or a
plain "OK", and that is a missing file, not an invalid one.

Validation follows the RFC's MUSTs: HTTPS, ``text/plain`` (charset utf-8 when given), one or
more ``Contact`` URIs (``https`` when a web URI), exactly one ``Expires`` with a time zone and in
the future of the observation, ``Preferred-Languages`` at most once; an OpenPGP cleartext
signature is removed before parsing (not verified: the scanner has no key to check it against).
An ``Expires`` more than a year ahead is valid but a warning (the RFC recommends less).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx

from sensors.scanner.availability import fold
from sensors.scanner.context import ScanContext
from sensors.scanner.home import visit_home
from sensors.scanner.markup import parse_markup
from sensors.scanner.result import Area, CheckResult, CheckStatus, could_not_check
from sensors.scanner.web import Page

WELL_KNOWN: Final = "/.well-known/security.txt"
LEGACY: Final = "/security.txt"
MAX_EXPIRY: Final = timedelta(days=365)  # RFC 9116 section 2.5.5: "less than a year"
MAX_HOPS: Final = 5
FIELDS: Final = frozenset(  # RFC 9116 section 2.5 and the IANA registry
    {"acknowledgments", "canonical", "contact", "encryption", "expires", "hiring", "policy"}
    | {"preferred-languages", "csaf"}
)
# How a privacy policy is named in link text (folded: NFC, casefolded) and in addresses.
PRIVACY_TEXT: Final = (
    *("privacy", "data protection", "personal data"),
    *("chính sách bảo mật", "quyền riêng tư", "bảo vệ dữ liệu cá nhân", "chính sách riêng tư"),
    "kebijakan privasi",  # Indonesian
)
PRIVACY_PATHS: Final = (
    *("privacy", "chinh-sach-bao-mat", "chinhsachbaomat", "quyen-rieng-tu"),
    *("bao-ve-du-lieu-ca-nhan", "chinh-sach-rieng-tu", "kebijakan-privasi"),
)

_FIELD: Final = re.compile(r"([A-Za-z0-9-]+):[ \t]*(.*)")
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


@dataclass(frozen=True)
class TxtAnswer:
    """One request for a security.txt: the final answer after redirects, or the error."""

    url: str  # the final URL (after redirects)
    status: int | None
    content_type: str | None
    text: str  # public by design; bounded by the policy's max_body_bytes
    error: str | None
    timed_out: bool = False


@dataclass(frozen=True)
class DisclosureSnapshot:
    observed_at: datetime
    answers: tuple[TxtAnswer, ...]  # well-known, then legacy, then well-known over HTTP
    home_url: str | None
    home_status: int | None
    home_error: str | None
    links: tuple[tuple[str, str], ...]  # (absolute href, text) of the home page


@dataclass(frozen=True)
class SecurityTxt:
    """The fields of a security.txt, in order, names lower case; ``signed`` when it was an
    OpenPGP cleartext-signed message; ``problems`` what made the structure unreadable."""

    fields: tuple[tuple[str, str], ...]
    signed: bool
    problems: tuple[str, ...] = ()

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.fields if k == name]


def parse_security_txt(text: str) -> SecurityTxt:
    """Fields of a security.txt (comments, blank and malformed lines ignored).

    >>> t = parse_security_txt("# hi\\nContact: mailto:a@example.org\\nExpires: 2030-01-01Z")
    >>> t.fields, t.signed
    ((('contact', 'mailto:a@example.org'), ('expires', '2030-01-01Z')), False)
    """
    lines = text.lstrip("\ufeff").splitlines()
    signed = bool(lines) and lines[0].strip() == "-----BEGIN PGP SIGNED MESSAGE-----"
    problems: list[str] = []
    if signed:
        # RFC 4880 section 7: armor headers, a blank line, the dash-escaped text, the signature.
        try:
            start = lines.index("") + 1
            end = lines.index("-----BEGIN PGP SIGNATURE-----", start)
        except ValueError:
            problems.append("the OpenPGP signed message is malformed")
            start, end = 1, len(lines)
        if "-----END PGP SIGNATURE-----" not in lines[end:]:
            problems.append("the OpenPGP signature is not complete")
        lines = [line[2:] if line.startswith("- ") else line for line in lines[start:end]]
    fields = []
    for line in lines[:5000]:
        match = _FIELD.fullmatch(line.strip())
        if match and not line.lstrip().startswith("#"):
            fields.append((match.group(1).lower(), match.group(2).strip()))
    return SecurityTxt(tuple(fields), signed, tuple(problems))


def _answer(page: Page) -> TxtAnswer:
    return TxtAnswer(page.url, page.status, page.header("content-type"), page.text, None)


async def _txt(ctx: ScanContext, url: str) -> TxtAnswer:
    """GET ``url`` and follow its redirects (RFC 9116 allows them) up to MAX_HOPS."""
    try:
        page = await ctx.page(url)
        for _ in range(MAX_HOPS):
            if page.location is None:
                break
            page = await ctx.page(str(httpx.URL(page.url).join(page.location)))
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        timed_out = isinstance(exc, httpx.TimeoutException)
        return TxtAnswer(url, None, None, "", reason, timed_out)
    return _answer(page)


def is_security_txt(answer: TxtAnswer) -> bool:
    """A 200 that is not HTML and names at least one RFC 9116 field."""
    content_type = (answer.content_type or "").split(";")[0].strip().lower()
    if answer.status != 200 or "html" in content_type or answer.text.lstrip().startswith("<"):
        return False
    return any(name in FIELDS for name, _ in parse_security_txt(answer.text).fields)


async def fetch_disclosure(ctx: ScanContext) -> DisclosureSnapshot:
    """Ask for security.txt where the RFC puts it, and read the home page's links."""
    answers = [await _txt(ctx, ctx.url("https", WELL_KNOWN))]
    if not is_security_txt(answers[0]):
        answers.append(await _txt(ctx, ctx.url("https", LEGACY)))
    if all(a.error is not None and not a.timed_out for a in answers):
        answers.append(await _txt(ctx, ctx.url("http", WELL_KNOWN)))
    visit = await visit_home(ctx)
    home = visit.final
    links: tuple[tuple[str, str], ...] = ()
    if home is not None:
        links = tuple(
            (_absolute(link.href, home.url), link.text) for link in parse_markup(home.text).links
        )
    return DisclosureSnapshot(
        observed_at=ctx.now(),
        answers=tuple(answers),
        home_url=None if home is None else home.url,
        home_status=None if home is None else home.status,
        home_error=visit.error if home is None else None,
        links=links,
    )


def _absolute(href: str, base: str) -> str:
    try:
        return str(httpx.URL(base).join(href))
    except (httpx.InvalidURL, ValueError):
        return href


def validate_security_txt(answer: TxtAnswer, now: datetime) -> tuple[list[str], list[str]]:
    """The problems (each makes the file invalid) and the warnings of a security.txt answer,
    judged at ``now``."""
    parsed = parse_security_txt(answer.text)
    problems = [*parsed.problems, *_transport_problems(answer)]
    contacts = parsed.values("contact")
    if not contacts:
        problems.append("no Contact field (at least one is required)")
    for contact in contacts:
        if not _URI.fullmatch(contact) or contact.lower().startswith("http://"):
            problems.append(f"Contact {contact[:100]!r} is not a URI (web URIs must be https)")
    if len(parsed.values("preferred-languages")) > 1:
        problems.append("Preferred-Languages appears more than once")
    warnings: list[str] = []
    expires = parsed.values("expires")
    if len(expires) != 1:
        problems.append(f"Expires must appear exactly once, not {len(expires)} times")
        return problems, warnings
    try:
        when: datetime | None = datetime.fromisoformat(expires[0])
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or "T" not in expires[0].upper():
        problems.append(f"Expires {expires[0][:60]!r} is not an RFC 3339 date and time")
    elif when <= now:
        problems.append(f"expired on {when.isoformat()}")
    elif when - now > MAX_EXPIRY:
        warnings.append(f"Expires is more than a year ahead ({when.date().isoformat()})")
    return problems, warnings


def _transport_problems(answer: TxtAnswer) -> list[str]:
    problems = []
    if not answer.url.startswith("https://"):
        problems.append("served over HTTP: RFC 9116 requires HTTPS")
    media, _, params = (answer.content_type or "").partition(";")
    charset = re.search(r"charset=\"?([\w-]+)", params, re.I)
    if media.strip().lower() != "text/plain":
        problems.append(f"Content-Type is {answer.content_type!r}, not text/plain")
    elif charset is not None and charset.group(1).lower() != "utf-8":
        problems.append(f"charset is {charset.group(1)}, not utf-8")
    return problems


_TXT_ID, _PRIVACY_ID = "disclosure.security-txt", "disclosure.privacy-policy"


def _result(
    check: str, status: CheckStatus, summary: str, evidence: dict[str, Any], advice: str = ""
) -> CheckResult:
    return CheckResult(check, Area.DISCLOSURE, status, summary, evidence, advice)


def evaluate_security_txt(s: DisclosureSnapshot) -> CheckResult:
    """Valid → pass; valid with a far Expires → warn; present but invalid → warn (the
    methodology's 1 point); missing → fail. ``evidence["state"]`` is what scoring reads."""
    asked = [{"url": a.url, "status": a.status, "error": a.error} for a in s.answers]
    found = next((a for a in s.answers if is_security_txt(a)), None)
    advice = "Publish /.well-known/security.txt over HTTPS (RFC 9116, https://securitytxt.org)."
    if found is None:
        if any(a.timed_out for a in s.answers):
            return could_not_check(_TXT_ID, Area.DISCLOSURE, "no answer in time", asked=asked)
        missing = {"state": "missing", "asked": asked}
        return _result(_TXT_ID, CheckStatus.FAIL, "no security.txt", missing, advice)
    problems, warnings = validate_security_txt(found, s.observed_at)
    notes = []
    if not found.url.endswith(WELL_KNOWN):
        notes.append(f"found at {found.url}, not {WELL_KNOWN}")
    parsed = parse_security_txt(found.text)
    evidence: dict[str, Any] = {
        "state": "invalid" if problems else "valid",
        "url": found.url,
        "contacts": parsed.values("contact")[:10],
        "expires": parsed.values("expires")[:2],
        "signed": parsed.signed,
        "problems": problems,
        "warnings": warnings,
        "notes": notes,
    }
    if problems:
        summary = f"security.txt is invalid: {problems[0]}"
        return _result(_TXT_ID, CheckStatus.WARN, summary, evidence, advice)
    if warnings:
        summary = f"security.txt is valid; {warnings[0]}"
        advice = "Set Expires less than a year ahead and renew the file before then."
        return _result(_TXT_ID, CheckStatus.WARN, summary, evidence, advice)
    return _result(_TXT_ID, CheckStatus.PASS, "security.txt is valid", evidence)


def privacy_link(href: str, text: str) -> str | None:
    """The privacy-policy term a link's text or address names, or None.

    >>> privacy_link("/chinh-sach-bao-mat.html", "Chính sách"), privacy_link("/", "Trang chủ")
    ('chinh-sach-bao-mat', None)
    """
    if href.lower().startswith(("mailto:", "tel:", "javascript:")):
        return None
    label = fold(text)
    for term in PRIVACY_TEXT:
        if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", label):
            return term
    path = fold(urllib.parse.unquote(urllib.parse.urlsplit(href).path))
    return next((term for term in (*PRIVACY_PATHS, *PRIVACY_TEXT) if term in path), None)


def evaluate_privacy(s: DisclosureSnapshot) -> CheckResult:
    """Pass when the home page links to a privacy policy; fail when it does not."""
    if s.home_status is None:
        return could_not_check(_PRIVACY_ID, Area.DISCLOSURE, s.home_error or "no home page")
    if not 200 <= s.home_status < 300:
        reason = f"the home page answered {s.home_status}"
        return could_not_check(_PRIVACY_ID, Area.DISCLOSURE, reason, url=s.home_url)
    for href, text in s.links:
        term = privacy_link(href, text)
        if term is not None:
            found = {"home": s.home_url, "href": href, "text": text, "matched": term}
            summary = f"privacy policy linked: {href}"
            return _result(_PRIVACY_ID, CheckStatus.PASS, summary, found)
    evidence: dict[str, Any] = {"home": s.home_url, "links": len(s.links)}
    advice = "Link the privacy policy from the home page (usually in the footer)."
    return _result(_PRIVACY_ID, CheckStatus.FAIL, "no privacy-policy link", evidence, advice)


CHECKS: Final = ((_TXT_ID, evaluate_security_txt), (_PRIVACY_ID, evaluate_privacy))
