"""The HTTP checks about getting to the page and what travels with it: redirection from
``http://``, HSTS, cookies and CORS. Pure functions of an :class:`HttpSnapshot`; each returns
the Observatory-v6 outcome as a :class:`CheckResult` (see :mod:`httpsec_table`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from sensors.scanner.httpsec_snapshot import HttpSnapshot
from sensors.scanner.httpsec_table import outcome_result
from sensors.scanner.result import Area, CheckResult, could_not_check

__all__ = [
    "Cookie",
    "evaluate_cookies",
    "evaluate_cors",
    "evaluate_hsts",
    "evaluate_redirection",
    "hsts_outcome",
    "parse_set_cookie",
]

# 15768000 s is six months; the Observatory accepts the common 15552000 (180 days).
SIX_MONTHS: Final = 15_552_000
_MAX_AGE: Final = re.compile(r'^"?([0-9]{1,18})"?$')


def evaluate_redirection(snapshot: HttpSnapshot) -> CheckResult:  # noqa: PLR0911 - one per outcome
    """Walk the chain from ``http://``: the Observatory's redirection test.

    A first request that could not connect means no HTTP (no redirect needed); a chain still
    redirecting after ``max_redirects`` hops did not reach HTTPS; a hop that got no answer
    further on leaves the test undecided (error)."""
    chain = snapshot.http_chain
    check = "http.redirection"
    evidence: dict[str, Any] = {"chain": [hop.to_json() for hop in chain[:12]]}
    if not chain or (chain[0].status is None and chain[0].unreachable):
        return outcome_result("redirection-not-needed-no-http", evidence)
    broken = next((hop for hop in chain if hop.status is None), None)
    if broken is not None:
        return could_not_check(
            check, Area.HTTP, f"{broken.url[:200]}: {broken.error or 'no answer'}", **evidence
        )
    if any(hop.verified is False for hop in chain):
        return outcome_result("redirection-invalid-cert", evidence)
    if len(chain) == 1:
        return outcome_result("redirection-missing", {**evidence, "status": chain[0].status})
    if chain[-1].location is not None:
        evidence["capped_after"] = len(chain) - 1
        return outcome_result("redirection-not-to-https", evidence)
    if chain[-1].scheme != "https":
        return outcome_result("redirection-not-to-https", evidence)
    if chain[1].scheme == "http":
        return outcome_result("redirection-not-to-https-on-initial-redirection", evidence)
    if chain[0].host != chain[1].host:
        return outcome_result("redirection-off-host-from-http", evidence)
    return outcome_result("redirection-to-https", evidence)


def hsts_outcome(snapshot: HttpSnapshot) -> tuple[str, dict[str, Any]] | None:
    """The HSTS outcome and its evidence, or None when there is no response to read."""
    final = snapshot.final
    if final is None:
        return None
    evidence: dict[str, Any] = {"preloaded": snapshot.preloaded}
    values = final.header_list("strict-transport-security")
    if not final.is_https:
        key = "hsts-not-implemented-no-https"
    elif not final.verified:
        key = "hsts-invalid-cert"
    elif not values:
        key = "hsts-not-implemented"
    else:
        evidence["value"] = values[0][:500]
        key, parsed = _parse_hsts(values)
        evidence.update(parsed)
    if final.is_https and snapshot.preloaded:
        key = "hsts-preloaded"  # the preload list overrides the header, as in the Observatory
    return key, evidence


def _parse_hsts(values: list[str]) -> tuple[str, dict[str, Any]]:
    parsed: dict[str, Any] = {"max_age": None, "include_subdomains": False, "preload": False}
    # Two headers (or one with a comma, as proxies join them) make the policy ambiguous.
    if len(values) > 1 or "," in values[0]:
        return "hsts-header-invalid", {**parsed, "problem": "header set more than once"}
    seen: set[str] = set()
    for part in values[0][:1024].split(";"):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in seen:  # RFC 6797 §6.1: a repeated directive invalidates the header
            return "hsts-header-invalid", {**parsed, "problem": f"{name} repeated"}
        seen.add(name)
        if name == "max-age":
            match = _MAX_AGE.match(value.strip())
            if match is None:
                return "hsts-header-invalid", {**parsed, "problem": "max-age is not a number"}
            parsed["max_age"] = int(match.group(1))
        elif name == "includesubdomains":
            parsed["include_subdomains"] = True
        elif name == "preload":
            parsed["preload"] = True
    if parsed["max_age"] is None:
        return "hsts-header-invalid", {**parsed, "problem": "no max-age"}
    if parsed["max_age"] < SIX_MONTHS:
        return "hsts-implemented-max-age-less-than-six-months", parsed
    return "hsts-implemented-max-age-at-least-six-months", parsed


def evaluate_hsts(snapshot: HttpSnapshot) -> CheckResult:
    """Strict-Transport-Security on the final HTTPS response (six months = 15552000 s)."""
    found = hsts_outcome(snapshot)
    if found is None:
        return could_not_check("http.strict-transport-security", Area.HTTP, "no response")
    return outcome_result(*found)


@dataclass(frozen=True)
class Cookie:
    """A cookie as a browser's jar keeps it (the attributes the test reads)."""

    name: str
    secure: bool
    httponly: bool
    samesite: str | None  # lax, strict, none; None when absent or unrecognised
    samesite_invalid: bool
    domain: str | None
    path: str | None
    set_by: str

    @property
    def session(self) -> bool:
        lowered = self.name.lower()
        return "login" in lowered or "sess" in lowered

    @property
    def anticsrf(self) -> bool:
        return "csrf" in self.name.lower()


def parse_set_cookie(header: str, set_by: str = "") -> Cookie | None:
    """Read one ``Set-Cookie`` value (RFC 6265 §5.2); None when it has no name.

    >>> c = parse_set_cookie("SESSIONID=a1; Path=/; Secure; HttpOnly; SameSite=Lax")
    >>> c.name, c.secure, c.httponly, c.samesite, c.session
    ('SESSIONID', True, True, 'lax', True)
    """
    pair, *attributes = header.split(";")
    name, eq, _ = pair.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    flags: dict[str, str | None] = {}
    for attribute in attributes:
        key, has_value, value = attribute.partition("=")
        flags[key.strip().lower()] = value.strip() if has_value else None
    samesite = (flags.get("samesite") or "").lower()
    invalid = "samesite" in flags and samesite not in ("lax", "strict", "none")
    return Cookie(
        name=name,
        secure="secure" in flags,
        httponly="httponly" in flags,
        samesite=samesite if samesite in ("lax", "strict", "none") else None,
        samesite_invalid=invalid,
        domain=(flags.get("domain") or "").lower().lstrip(".") or None,
        path=flags.get("path"),
        set_by=set_by,
    )


# The Observatory's order of cookie outcomes, best first: a worse one replaces a better.
_COOKIE_ORDER: Final = (
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
)
_IGNORED_COOKIES: Final = frozenset({"heroku-session-affinity"})  # as the Observatory does


def _worse(candidate: str, current: str | None) -> str:
    if current is None or _COOKIE_ORDER.index(candidate) > _COOKIE_ORDER.index(current):
        return candidate
    return current


def evaluate_cookies(snapshot: HttpSnapshot) -> CheckResult:
    """Every cookie set on either chain, as the jar ends up (a later cookie with the same
    name, domain and path replaces an earlier one). Session cookies have "login" or "sess"
    in their name, anti-CSRF ones "csrf"."""
    if snapshot.final is None:
        return could_not_check("http.cookies", Area.HTTP, "no response")
    jar: dict[tuple[str, str | None, str | None], Cookie] = {}
    for url, header in snapshot.set_cookies():
        cookie = parse_set_cookie(header, url)
        if cookie is not None and cookie.name not in _IGNORED_COOKIES:
            jar[(cookie.name, cookie.domain, cookie.path)] = cookie
    if not jar:
        return outcome_result("cookies-not-found", {"cookies": {}})
    hsts = hsts_outcome(snapshot)
    protected = hsts is not None and hsts[0] in (
        "hsts-preloaded",
        "hsts-implemented-max-age-at-least-six-months",
    )
    result: str | None = None
    for cookie in jar.values():
        if cookie.samesite_invalid or (cookie.samesite == "none" and not cookie.secure):
            result = _worse("cookies-samesite-flag-invalid", result)
        if not cookie.secure:
            result = _worse(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if protected
                else "cookies-without-secure-flag",
                result,
            )
        if cookie.anticsrf and cookie.samesite is None:
            result = _worse("cookies-anticsrf-without-samesite-flag", result)
        if cookie.session and not cookie.secure:
            result = _worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if protected
                else "cookies-session-without-secure-flag",
                result,
            )
        if cookie.session and not cookie.httponly:
            result = _worse("cookies-session-without-httponly-flag", result)
    if result is None:
        all_samesite = all(c.samesite is not None for c in jar.values())
        result = (
            "cookies-secure-with-httponly-sessions-and-samesite"
            if all_samesite
            else "cookies-secure-with-httponly-sessions"
        )
    cookies = {
        c.name: {
            "secure": c.secure,
            "httponly": c.httponly,
            "samesite": c.samesite,
            "session": c.session,
        }
        for c in list(jar.values())[:20]
    }
    return outcome_result(result, {"cookies": cookies, "hsts_protected": protected})


def evaluate_cors(snapshot: HttpSnapshot) -> CheckResult:
    """Whether a foreign ``Origin`` is reflected with credentials (GET and preflight)."""
    answered = [p for p in snapshot.cors if p.error is None]
    if snapshot.final is None or not answered:
        reasons = "; ".join(f"{p.method}: {p.error}" for p in snapshot.cors) or "no probe made"
        return could_not_check("http.cors", Area.HTTP, reasons[:500])
    result = "cross-origin-resource-sharing-not-implemented"
    evidence: dict[str, Any] = {"origin": answered[0].origin, "probes": []}
    for probe in answered:
        evidence["probes"].append(
            {
                "method": probe.method,
                "status": probe.status,
                "allow_origin": probe.allow_origin,
                "allow_credentials": probe.allow_credentials,
            }
        )
        if not probe.allow_origin:
            continue
        acao = probe.allow_origin.strip()
        credentials = (probe.allow_credentials or "").strip().lower() == "true"
        if acao == probe.origin and credentials:
            result = "cross-origin-resource-sharing-implemented-with-universal-access"
        elif result == "cross-origin-resource-sharing-not-implemented":
            result = (
                "cross-origin-resource-sharing-implemented-with-public-access"
                if acao == "*"
                else "cross-origin-resource-sharing-implemented-with-restricted-access"
            )
    return outcome_result(result, evidence)
