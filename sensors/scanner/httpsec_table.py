"""The Observatory-v6 score table (methodology TNM-1, "Observatory-v6 modifiers"): every
outcome of every HTTP test, its modifier, the line people read, and the fix.

Outcomes keep the Observatory's own names (``csp-implemented-with-no-unsafe``, ...) so a
result can be compared with the Observatory's, and :func:`outcome_result` turns one into a
:class:`CheckResult`. The status follows from the modifier: a bonus or 0 passes, -5 warns,
anything worse fails; a check that could not run is ``error`` and carries no modifier.

>>> r = outcome_result("x-content-type-options-not-implemented", {"value": None})
>>> r.id, r.status.value, r.modifier
('http.x-content-type-options', 'warn', -5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sensors.scanner.result import Area, CheckResult, CheckStatus

__all__ = ["MDN", "SCORE_TABLE", "Outcome", "outcome_result", "status_for"]

_GUIDES: Final = (
    "https://developer.mozilla.org/en-US/docs/Web/Security/Practical_implementation_guides"
)
_HEADERS: Final = "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers"

MDN: Final[Mapping[str, tuple[str, ...]]] = {
    "redirection": (f"{_GUIDES}/TLS#http_redirections",),
    "content-security-policy": (f"{_GUIDES}/CSP", f"{_HEADERS}/Content-Security-Policy"),
    "cookies": (f"{_GUIDES}/Cookies", f"{_HEADERS}/Set-Cookie"),
    "cors": (f"{_GUIDES}/CORS", f"{_HEADERS}/Access-Control-Allow-Origin"),
    "referrer-policy": (f"{_GUIDES}/Referrer_policy", f"{_HEADERS}/Referrer-Policy"),
    "strict-transport-security": (
        f"{_GUIDES}/TLS#http_strict_transport_security",
        f"{_HEADERS}/Strict-Transport-Security",
    ),
    "subresource-integrity": (
        "https://developer.mozilla.org/en-US/docs/Web/Security/Subresource_Integrity",
    ),
    "x-content-type-options": (f"{_GUIDES}/MIME_types", f"{_HEADERS}/X-Content-Type-Options"),
    "x-frame-options": (f"{_GUIDES}/Clickjacking", f"{_HEADERS}/X-Frame-Options"),
    "cross-origin-resource-policy": (f"{_GUIDES}/CORP", f"{_HEADERS}/Cross-Origin-Resource-Policy"),
    "cross-origin-embedder-policy": (f"{_HEADERS}/Cross-Origin-Embedder-Policy",),
    "cross-origin-opener-policy": (f"{_HEADERS}/Cross-Origin-Opener-Policy",),
}


@dataclass(frozen=True)
class Outcome:
    """One row: the test it belongs to, its modifier, a summary and the fix."""

    test: str
    modifier: int
    summary: str
    advice: str = ""


def _rows(test: str, *rows: tuple[str, int, str, str]) -> dict[str, Outcome]:
    return {
        key: Outcome(test, modifier, summary, advice) for key, modifier, summary, advice in rows
    }


_HTTPS_ADVICE: Final = (
    "Redirect http:// to https:// on the same host first, then to the final host."
)
_CERT_ADVICE: Final = (
    "Install a certificate that browsers trust and that covers the host name "
    "(e.g. from Let's Encrypt or your hosting provider)."
)
_XFO_ADVICE: Final = (
    "Send Content-Security-Policy: frame-ancestors 'self' (or X-Frame-Options: DENY)."
)
_RP_ADVICE: Final = "Send Referrer-Policy: strict-origin-when-cross-origin (or stricter)."

SCORE_TABLE: Final[Mapping[str, Outcome]] = {
    **_rows(
        "redirection",
        ("redirection-not-needed-no-http", 0, "Not reachable over http://: no redirect needed", ""),
        ("redirection-all-redirects-preloaded", 0,
         "Every host redirected through is HSTS-preloaded", ""),
        ("redirection-to-https", 0, "http:// redirects to https:// on the same host first", ""),
        ("redirection-off-host-from-http", -5,
         "The first redirect from http:// goes to another host, so HSTS cannot be set there",
         _HTTPS_ADVICE),
        ("redirection-not-to-https-on-initial-redirection", -10,
         "Reaches https:// eventually, but the first redirect goes to another http:// URL",
         _HTTPS_ADVICE),
        ("redirection-not-to-https", -20, "Redirects, but the final destination is not https://",
         _HTTPS_ADVICE),
        ("redirection-missing", -20, "http:// does not redirect to https://",
         "Answer every http:// request with a 301 to the same URL on https://."),
        ("redirection-invalid-cert", -20, "An invalid certificate was met on the redirect chain",
         _CERT_ADVICE),
    ),
    **_rows(
        "content-security-policy",
        ("csp-implemented-with-no-unsafe-default-src-none", 10,
         "CSP with default-src 'none' and nothing unsafe", ""),
        ("csp-implemented-with-no-unsafe", 5, "CSP without 'unsafe-inline' or 'unsafe-eval'",
         "Consider default-src 'none' and allowing each kind of resource explicitly."),
        ("csp-implemented-with-unsafe-inline-in-style-src-only", 0,
         "CSP is sound for scripts, but style-src allows inline, data: or overly broad sources",
         "Remove 'unsafe-inline', data: and broad sources from style-src."),
        ("csp-implemented-with-insecure-scheme-in-passive-content-only", -10,
         "CSP lets images or media load over http://",
         "Load images and media over https:// and drop http: from img-src/media-src."),
        ("csp-implemented-with-unsafe-eval", -10, "CSP allows 'unsafe-eval'",
         "Stop using eval() and remove 'unsafe-eval'."),
        ("csp-implemented-with-unsafe-inline", -20,
         "CSP allows inline or overly broad scripts, or leaves script-src/object-src unrestricted",
         "Remove 'unsafe-inline', data: and broad sources from script-src; set object-src "
         "'none' (or default-src); use nonces or hashes for inline scripts."),
        ("csp-implemented-with-insecure-scheme", -20, "CSP lets resources load over http://",
         "Load every resource over https:// and remove http: sources from the policy."),
        ("csp-header-invalid", -25, "Content-Security-Policy cannot be parsed",
         "Fix the policy's syntax (one of each directive, no empty policies); check it with "
         "a CSP evaluator."),
        ("csp-not-implemented", -25, "No Content-Security-Policy",
         "Send a Content-Security-Policy, e.g. default-src 'self'; object-src 'none'; "
         "frame-ancestors 'self'."),
        ("csp-not-implemented-but-reporting-enabled", -25,
         "Only Content-Security-Policy-Report-Only: nothing is enforced",
         "Once the reports are clean, send the policy as Content-Security-Policy."),
    ),
    **_rows(
        "cookies",
        ("cookies-secure-with-httponly-sessions-and-samesite", 5,
         "Every cookie is Secure, session cookies HttpOnly, all with SameSite", ""),
        ("cookies-secure-with-httponly-sessions", 0,
         "Every cookie is Secure and session cookies HttpOnly", "Add SameSite=Lax or Strict."),
        ("cookies-not-found", 0, "No cookies set", ""),
        ("cookies-without-secure-flag-but-protected-by-hsts", -5,
         "Cookies without Secure (HSTS keeps them off http://)", "Add Secure to every cookie."),
        ("cookies-session-without-secure-flag-but-protected-by-hsts", -10,
         "A session cookie without Secure (HSTS keeps it off http://)",
         "Add Secure to every cookie."),
        ("cookies-without-secure-flag", -20, "Cookies without Secure, or set over http://",
         "Add Secure to every cookie and send HSTS."),
        ("cookies-samesite-flag-invalid", -20,
         "A SameSite attribute is invalid (or None without Secure)",
         "Use SameSite=Strict or Lax (None only with Secure)."),
        ("cookies-anticsrf-without-samesite-flag", -20, "An anti-CSRF cookie without SameSite",
         "Add SameSite=Strict or Lax to the anti-CSRF cookie."),
        ("cookies-session-without-httponly-flag", -30, "A session cookie without HttpOnly",
         "Add HttpOnly to session cookies."),
        ("cookies-session-without-secure-flag", -40,
         "A session cookie without Secure, or set over http://",
         "Add Secure to session cookies and send HSTS."),
    ),
    **_rows(
        "cors",
        ("cross-origin-resource-sharing-not-implemented", 0, "No CORS access granted", ""),
        ("cross-origin-resource-sharing-implemented-with-public-access", 0,
         "Public CORS access (Access-Control-Allow-Origin: *) without credentials", ""),
        ("cross-origin-resource-sharing-implemented-with-restricted-access", 0,
         "CORS access restricted to specific origins", ""),
        ("cross-origin-resource-sharing-implemented-with-universal-access", -50,
         "Any origin is reflected in Access-Control-Allow-Origin with credentials allowed",
         "Allow only a fixed list of origins when credentials are needed; never echo Origin "
         "back with Access-Control-Allow-Credentials: true."),
    ),
    **_rows(
        "referrer-policy",
        ("referrer-policy-private", 5,
         "Referrer-Policy is no-referrer, same-origin, strict-origin or "
         "strict-origin-when-cross-origin", ""),
        ("referrer-policy-not-implemented", 0,
         "No Referrer-Policy (browsers default to strict-origin-when-cross-origin)", _RP_ADVICE),
        ("referrer-policy-unsafe", -5, "Referrer-Policy leaks full URLs or origins", _RP_ADVICE),
        ("referrer-policy-header-invalid", -5, "Referrer-Policy cannot be recognised", _RP_ADVICE),
    ),
    **_rows(
        "strict-transport-security",
        ("hsts-preloaded", 5, "On the HSTS preload list", ""),
        ("hsts-implemented-max-age-at-least-six-months", 0, "HSTS for at least six months",
         "Consider includeSubDomains; preload with max-age=31536000 and preloading."),
        ("hsts-implemented-max-age-less-than-six-months", -10, "HSTS for less than six months",
         "Raise max-age to at least 15552000 (six months); 31536000 is usual."),
        ("hsts-not-implemented", -20, "No Strict-Transport-Security header",
         "Send Strict-Transport-Security: max-age=31536000; includeSubDomains."),
        ("hsts-header-invalid", -20, "Strict-Transport-Security cannot be recognised",
         "Send one header: Strict-Transport-Security: max-age=31536000; includeSubDomains."),
        ("hsts-not-implemented-no-https", -20, "No HTTPS, so no HSTS",
         "Serve the site over HTTPS, then send HSTS."),
        ("hsts-invalid-cert", -20, "HSTS cannot work: the certificate is invalid", _CERT_ADVICE),
    ),
    **_rows(
        "subresource-integrity",
        ("sri-implemented-and-all-scripts-loaded-securely", 5,
         "Subresource Integrity on scripts, all from the site's own origin", ""),
        ("sri-implemented-and-external-scripts-loaded-securely", 5,
         "Subresource Integrity on every external script, all over https://", ""),
        ("sri-not-implemented-response-not-html", 0,
         "Not HTML: Subresource Integrity not needed", ""),
        ("sri-not-implemented-but-no-scripts-loaded", 0,
         "No scripts: Subresource Integrity not needed", ""),
        ("sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0,
         "All scripts come from the site's own domain",
         "Add integrity attributes for the bonus."),
        ("sri-not-implemented-but-external-scripts-loaded-securely", -5,
         "External scripts over https:// without Subresource Integrity",
         "Add integrity (and crossorigin) attributes to external scripts, or host them."),
        ("sri-implemented-but-external-scripts-not-loaded-securely", -20,
         "Subresource Integrity used, but external scripts load over http:// or //",
         "Load external scripts over https://."),
        ("sri-not-implemented-and-external-scripts-not-loaded-securely", -50,
         "External scripts load over http:// (or //) without Subresource Integrity",
         "Load external scripts over https:// with integrity attributes."),
        ("html-not-parseable", -20, "Declared HTML, but the body is not HTML (binary content)",
         "Serve the page with the right Content-Type and content coding."),
    ),
    **_rows(
        "x-content-type-options",
        ("x-content-type-options-nosniff", 0, "X-Content-Type-Options: nosniff", ""),
        ("x-content-type-options-not-implemented", -5, "No X-Content-Type-Options",
         "Send X-Content-Type-Options: nosniff."),
        ("x-content-type-options-header-invalid", -5, "X-Content-Type-Options is not nosniff",
         "Send X-Content-Type-Options: nosniff."),
    ),
    **_rows(
        "x-frame-options",
        ("x-frame-options-implemented-via-csp", 5, "Framing limited by CSP frame-ancestors", ""),
        ("x-frame-options-sameorigin-or-deny", 5, "X-Frame-Options is SAMEORIGIN or DENY",
         "Also send CSP frame-ancestors, which replaces X-Frame-Options."),
        ("x-frame-options-allow-from-origin", 0,
         "X-Frame-Options ALLOW-FROM (ignored by current browsers)", _XFO_ADVICE),
        ("x-frame-options-not-implemented", -20,
         "Framing is not limited (clickjacking)", _XFO_ADVICE),
        ("x-frame-options-header-invalid", -20,
         "X-Frame-Options cannot be recognised", _XFO_ADVICE),
    ),
    **_rows(
        "cross-origin-resource-policy",
        ("corp-implemented-with-same-origin", 10, "Cross-Origin-Resource-Policy: same-origin", ""),
        ("corp-implemented-with-same-site", 10, "Cross-Origin-Resource-Policy: same-site", ""),
        ("corp-implemented-with-cross-origin", 0, "Cross-Origin-Resource-Policy: cross-origin",
         "Use same-origin or same-site unless other sites must embed the page."),
        ("corp-not-implemented", 0, "No Cross-Origin-Resource-Policy",
         "Send Cross-Origin-Resource-Policy: same-origin (or same-site)."),
        ("corp-header-invalid", -5, "Cross-Origin-Resource-Policy cannot be recognised",
         "Send Cross-Origin-Resource-Policy: same-origin, same-site or cross-origin."),
    ),
    **_rows(
        "cross-origin-embedder-policy",
        ("coep-implemented-with-require-corp", 10,
         "Cross-Origin-Embedder-Policy: require-corp", ""),
        ("coep-implemented-with-credentialless", 10,
         "Cross-Origin-Embedder-Policy: credentialless", ""),
        ("coep-implemented-with-unsafe-none", 0, "Cross-Origin-Embedder-Policy: unsafe-none",
         "Use require-corp or credentialless where the page allows it."),
        ("coep-not-implemented", 0, "No Cross-Origin-Embedder-Policy",
         "Consider Cross-Origin-Embedder-Policy: credentialless (or require-corp)."),
        ("coep-header-invalid", -5, "Cross-Origin-Embedder-Policy cannot be recognised",
         "Send one header: require-corp, credentialless or unsafe-none."),
    ),
    **_rows(
        "cross-origin-opener-policy",
        ("coop-implemented-with-same-origin", 10, "Cross-Origin-Opener-Policy: same-origin", ""),
        ("coop-implemented-with-same-origin-allow-popups", 10,
         "Cross-Origin-Opener-Policy: same-origin-allow-popups", ""),
        ("coop-implemented-with-noopener-allow-popups", 10,
         "Cross-Origin-Opener-Policy: noopener-allow-popups", ""),
        ("coop-implemented-with-unsafe-none", 0, "Cross-Origin-Opener-Policy: unsafe-none",
         "Use same-origin (or same-origin-allow-popups)."),
        ("coop-not-implemented", 0, "No Cross-Origin-Opener-Policy",
         "Send Cross-Origin-Opener-Policy: same-origin."),
        ("coop-header-invalid", -5, "Cross-Origin-Opener-Policy cannot be recognised",
         "Send one header: same-origin, same-origin-allow-popups, noopener-allow-popups or "
         "unsafe-none."),
    ),
}  # fmt: skip


def status_for(modifier: int) -> CheckStatus:
    """0 or a bonus passes; -5 (a minor gap) warns; anything worse fails."""
    if modifier >= 0:
        return CheckStatus.PASS
    return CheckStatus.WARN if modifier > -10 else CheckStatus.FAIL


_MAX_EVIDENCE_KEYS: Final = 64
_MAX_TEXT: Final = 500


def _bounded(value: Any) -> Any:
    """Evidence within the wire limits: strings at most 500 characters, lists at most 20."""
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, list | tuple):
        return [_bounded(v) for v in list(value)[:20]]
    if isinstance(value, Mapping):
        return {str(k)[:_MAX_TEXT]: _bounded(v) for k, v in list(value.items())[:20]}
    return value


def outcome_result(key: str, evidence: Mapping[str, Any] | None = None) -> CheckResult:
    """The check result of outcome ``key``, its evidence bounded; the Observatory's name of
    the outcome is kept as ``evidence["result"]``."""
    row = SCORE_TABLE[key]
    bounded = {"result": key, **{k: _bounded(v) for k, v in (evidence or {}).items()}}
    status = status_for(row.modifier)
    return CheckResult(
        f"http.{row.test}",
        Area.HTTP,
        status,
        row.summary,
        dict(list(bounded.items())[:_MAX_EVIDENCE_KEYS]),
        row.advice,
        MDN[row.test],
        row.modifier,
    )
