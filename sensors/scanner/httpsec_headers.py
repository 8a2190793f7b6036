"""The HTTP checks about the page's own security headers and markup: CSP, Referrer-Policy,
Subresource Integrity, X-Content-Type-Options, X-Frame-Options, CORP, COEP and COOP. Pure
functions of an :class:`HttpSnapshot`, graded on its final response.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

import httpx

from sensors.scanner.csp import CspAnalysis, analyze_csp
from sensors.scanner.httpsec_snapshot import HTML_TYPES, HttpSnapshot, Response
from sensors.scanner.httpsec_table import SCORE_TABLE, outcome_result
from sensors.scanner.result import Area, CheckResult, could_not_check

__all__ = [
    "csp_of",
    "evaluate_coep",
    "evaluate_coop",
    "evaluate_corp",
    "evaluate_csp",
    "evaluate_referrer_policy",
    "evaluate_sri",
    "evaluate_x_content_type_options",
    "evaluate_x_frame_options",
    "registrable",
]


def _no_response(check: str) -> CheckResult:
    return could_not_check(f"http.{check}", Area.HTTP, "the site gave no response to grade")


def csp_of(final: Response) -> CspAnalysis:
    """The CSP analysis of a response: its headers and, for HTML, its ``<meta>`` policies."""
    return analyze_csp(
        final.header_list("content-security-policy"),
        final.meta_values("content-security-policy") if final.is_html else (),
        final.header_list("content-security-policy-report-only"),
        https=final.is_https,
    )


def evaluate_csp(snapshot: HttpSnapshot) -> CheckResult:
    """Content-Security-Policy, parsed per CSP Level 3 and analysed as the Observatory does
    (see :func:`sensors.scanner.csp.analyze_csp`)."""
    if snapshot.final is None:
        return _no_response("content-security-policy")
    analysis = csp_of(snapshot.final)
    evidence: dict[str, Any] = {
        "header": " , ".join(snapshot.final.header_list("content-security-policy"))[:500] or None,
        "policies": analysis.policies,
        "directives": list(analysis.directives),
    }
    if analysis.problems:
        evidence["problems"] = list(analysis.problems)
    if analysis.policies:
        evidence["flags"] = {
            name: getattr(analysis, name)
            for name in (
                "unsafe_inline",
                "insecure_scheme_active",
                "unsafe_eval",
                "insecure_scheme_passive",
                "unsafe_inline_style",
                "default_none",
                "strict_dynamic",
                "anti_clickjacking",
            )
        }
    return outcome_result(analysis.result, evidence)


_RP_PRIVATE: Final = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)
_RP_UNSAFE: Final = (
    "origin",
    "origin-when-cross-origin",
    "unsafe-url",
    "no-referrer-when-downgrade",
)


def evaluate_referrer_policy(snapshot: HttpSnapshot) -> CheckResult:
    """Referrer-Policy from the headers and ``<meta name=referrer>``; as browsers do, the
    last value they recognise applies (a meta element after the headers)."""
    final = snapshot.final
    if final is None:
        return _no_response("referrer-policy")
    values = final.header_list("referrer-policy")
    if final.is_html:
        values += final.meta_values("referrer") + final.meta_values("referrer-policy")
    if not values:
        return outcome_result("referrer-policy-not-implemented", {"value": None})
    joined = ", ".join(values)
    known = [
        t.strip().lower()
        for t in joined.split(",")
        if t.strip().lower() in (*_RP_PRIVATE, *_RP_UNSAFE)
    ]
    policy = known[-1] if known else None
    if policy in _RP_PRIVATE:
        key = "referrer-policy-private"
    elif policy in _RP_UNSAFE:
        key = "referrer-policy-unsafe"
    else:
        key = "referrer-policy-header-invalid"
    return outcome_result(key, {"value": joined, "policy": policy})


# Second-level labels under which ccTLDs register names (example.co.uk): without the Public
# Suffix List this is the usual approximation of the registrable domain.
_SECOND_LEVEL: Final = frozenset(
    {"ac", "co", "com", "edu", "gob", "gov", "gv", "mil", "ne", "net", "nic", "or", "org", "go"}
)
_PROTOCOL_RELATIVE: Final = re.compile(r"^//[^/]")
_ABSOLUTE: Final = re.compile(r"^https?://", re.IGNORECASE)


def registrable(host: str) -> str:
    """An approximation of a host's registrable domain (the Observatory's "second-level
    domain"): an IP address is itself.

    >>> registrable("www.example.gov"), registrable("a.b.example.co.uk"), registrable("10.0.0.1")
    ('example.gov', 'example.co.uk', '10.0.0.1')
    """
    host = host.lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _unparsable(final: Response) -> bool:
    """Declared (or sniffed) HTML whose body is binary: NUL bytes early on, with no UTF-16/32
    charset or byte-order mark to explain them (a compressed body served without its
    Content-Encoding, an image served as text/html)."""
    head = final.body[:8192]
    if b"\x00" not in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return "utf-16" not in (final.header("content-type") or "").lower().replace("_", "-") and (
        "utf-32" not in (final.header("content-type") or "").lower()
    )


def evaluate_sri(snapshot: HttpSnapshot) -> CheckResult:  # noqa: PLR0912 - the Observatory's cases
    """Subresource Integrity on the page's scripts, as the Observatory grades it: a script is
    external when it is protocol-relative (``//host``) or on another registrable domain; the
    worst external script names the outcome."""
    final = snapshot.final
    if final is None:
        return _no_response("subresource-integrity")
    if final.mime and final.mime not in HTML_TYPES:
        return outcome_result("sri-not-implemented-response-not-html", {"content_type": final.mime})
    coding = (final.header("content-encoding") or "").strip().lower()
    if not final.body and coding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        return could_not_check(
            "http.subresource-integrity", Area.HTTP, f"body in content coding {coding!r} not read"
        )
    if _unparsable(final):
        return outcome_result("html-not-parseable", {"content_type": final.mime or None})
    site = registrable(snapshot.host)
    scripts = final.markup.scripts
    result: str | None = None
    foreign = False
    external: dict[str, dict[str, str | None]] = {}
    for script in scripts:
        src = script.src
        if src is None:
            continue
        relative_protocol = bool(_PROTOCOL_RELATIVE.match(src))
        absolute = bool(_ABSOLUTE.match(src))
        relative = not relative_protocol and not absolute
        same_site = relative or relative_protocol or _site_of(src) == site
        if relative or (same_site and not relative_protocol):
            if script.integrity and (
                (relative and final.is_https) or src.lower().startswith("https:")
            ):
                result = result or "sri-implemented-and-all-scripts-loaded-securely"
            continue
        foreign = True
        secure = src.lower().startswith("https:")
        if len(external) < 20:
            external[src[:300]] = {"integrity": script.integrity, "crossorigin": script.crossorigin}
        if script.integrity and not secure:
            candidate = "sri-implemented-but-external-scripts-not-loaded-securely"
        elif not script.integrity and secure:
            candidate = "sri-not-implemented-but-external-scripts-loaded-securely"
        elif not script.integrity:
            candidate = "sri-not-implemented-and-external-scripts-not-loaded-securely"
        else:
            continue
        if result is None or SCORE_TABLE[candidate].modifier < SCORE_TABLE[result].modifier:
            result = candidate
    if not scripts:
        result = "sri-not-implemented-but-no-scripts-loaded"
    elif result is None:
        result = (
            "sri-implemented-and-external-scripts-loaded-securely"
            if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        )
    return outcome_result(result, {"scripts": len(scripts), "external": external})


def _site_of(url: str) -> str | None:
    try:
        return registrable(httpx.URL(url).host)
    except httpx.InvalidURL:
        return None


def evaluate_x_content_type_options(snapshot: HttpSnapshot) -> CheckResult:
    """X-Content-Type-Options must be ``nosniff`` (the first header counts)."""
    if snapshot.final is None:
        return _no_response("x-content-type-options")
    value = snapshot.final.header("x-content-type-options")
    if value is None:
        return outcome_result("x-content-type-options-not-implemented", {"value": None})
    ok = value.strip().lower() == "nosniff"
    key = "x-content-type-options-nosniff" if ok else "x-content-type-options-header-invalid"
    return outcome_result(key, {"value": value})


def evaluate_x_frame_options(snapshot: HttpSnapshot) -> CheckResult:
    """X-Frame-Options, or a CSP ``frame-ancestors`` that is not wide open (which replaces it)."""
    final = snapshot.final
    if final is None:
        return _no_response("x-frame-options")
    value = final.header("x-frame-options")
    xfo = (value or "").strip().lower()
    if value is None:
        key = "x-frame-options-not-implemented"
    elif xfo in ("deny", "sameorigin"):
        key = "x-frame-options-sameorigin-or-deny"
    elif xfo.startswith("allow-from"):
        key = "x-frame-options-allow-from-origin"
    else:
        key = "x-frame-options-header-invalid"
    csp = csp_of(final)
    if csp.result != "csp-header-invalid" and csp.frame_ancestors and csp.anti_clickjacking:
        key = "x-frame-options-implemented-via-csp"
    return outcome_result(key, {"value": value, "csp_frame_ancestors": csp.frame_ancestors})


_SF_TOKEN: Final = re.compile(r"^[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*$")


def _policy_token(values: list[str]) -> str | None:
    """The token of a structured-field item (``same-origin; report-to="x"`` gives
    ``same-origin``); None when there are several headers or it is not a token."""
    if len(values) != 1:
        return None
    token = values[0].split(";", 1)[0].strip()
    return token if _SF_TOKEN.match(token) else None


def _cross_origin(
    snapshot: HttpSnapshot,
    test: str,
    header: str,
    prefix: str,
    good: tuple[str, ...],
    fair: tuple[str, ...],
) -> CheckResult:
    final = snapshot.final
    if final is None:
        return _no_response(test)
    values = final.header_list(header)
    if not values:
        return outcome_result(f"{prefix}-not-implemented", {"value": None})
    token = _policy_token(values)
    if token in good or token in fair:
        key = f"{prefix}-implemented-with-{token}"
    else:
        key = f"{prefix}-header-invalid"
    return outcome_result(key, {"value": ", ".join(values)})


def evaluate_corp(snapshot: HttpSnapshot) -> CheckResult:
    """Cross-Origin-Resource-Policy: same-origin or same-site earn the bonus."""
    final = snapshot.final
    if final is None:
        return _no_response("cross-origin-resource-policy")
    value = final.header("cross-origin-resource-policy")
    if value is None:
        return outcome_result("corp-not-implemented", {"value": None})
    policy = value[:256].strip().lower()
    key = (
        f"corp-implemented-with-{policy}"
        if policy in ("same-origin", "same-site", "cross-origin")
        else "corp-header-invalid"
    )
    return outcome_result(key, {"value": value})


def evaluate_coep(snapshot: HttpSnapshot) -> CheckResult:
    """Cross-Origin-Embedder-Policy: require-corp or credentialless earn the bonus."""
    return _cross_origin(
        snapshot, "cross-origin-embedder-policy", "cross-origin-embedder-policy", "coep",
        ("require-corp", "credentialless"), ("unsafe-none",),
    )  # fmt: skip


def evaluate_coop(snapshot: HttpSnapshot) -> CheckResult:
    """Cross-Origin-Opener-Policy: same-origin(-allow-popups) or noopener-allow-popups earn
    the bonus."""
    return _cross_origin(
        snapshot, "cross-origin-opener-policy", "cross-origin-opener-policy", "coop",
        ("same-origin", "same-origin-allow-popups", "noopener-allow-popups"), ("unsafe-none",),
    )  # fmt: skip
