"""The HTTP area: each Observatory-v6 test on constructed snapshots, the score and sub-grade,
and the methodology's modifier table. Whole scans of loopback sites are in
test_httpsec_sites.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sensors.scanner import httpsec
from sensors.scanner.httpsec_headers import (
    evaluate_coep,
    evaluate_coop,
    evaluate_corp,
    evaluate_referrer_policy,
    evaluate_sri,
    evaluate_x_content_type_options,
    evaluate_x_frame_options,
)
from sensors.scanner.httpsec_snapshot import (
    OBSERVED,
    CorsProbe,
    Hop,
    HttpSnapshot,
    PreloadList,
    Response,
)
from sensors.scanner.httpsec_table import MDN, SCORE_TABLE
from sensors.scanner.httpsec_transport import (
    evaluate_cookies,
    evaluate_cors,
    evaluate_hsts,
    evaluate_redirection,
)
from sensors.scanner.result import Area, CheckResult, CheckStatus, SubGrade

URL = "https://a.example/"
REDIRECTED = (Hop("http://a.example/", 301, URL), Hop(URL, 200, verified=True))
STRONG_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def snap(
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    *,
    url: str = URL,
    status: int = 200,
    verified: bool = True,
    http_chain: tuple[Hop, ...] = REDIRECTED,
    cookies: tuple[str, ...] = (),
    cors: tuple[CorsProbe, ...] = (),
    preloaded: bool | None = None,
) -> HttpSnapshot:
    """A snapshot of a site at a.example whose final response has ``headers``."""
    lowered = tuple((k.lower(), v) for k, v in headers)
    final = Response(url, status, lowered, body, verified=verified)
    https_hop = Hop(url, status, verified=verified, set_cookies=cookies)
    return HttpSnapshot("a.example", OBSERVED, http_chain, (https_hop,), final, cors, preloaded)


def outcome(result: CheckResult) -> tuple[str, int | None, CheckStatus]:
    return result.evidence.get("result", ""), result.modifier, result.status


# --- the score table is the methodology's ---------------------------------------------------

# TRUST_METHOD.md, "Observatory-v6 modifiers", transcribed outcome by outcome.
METHODOLOGY = {
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-all-redirects-preloaded": 0,
    "redirection-to-https": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "redirection-invalid-cert": -20,
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    "hsts-preloaded": 5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "hsts-invalid-cert": -20,
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 5,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-implemented-with-cross-origin": 0,
    "corp-not-implemented": 0,
    "corp-header-invalid": -5,
    "coep-implemented-with-require-corp": 10,
    "coep-implemented-with-credentialless": 10,
    "coep-implemented-with-unsafe-none": 0,
    "coep-not-implemented": 0,
    "coep-header-invalid": -5,
    "coop-implemented-with-same-origin": 10,
    "coop-implemented-with-same-origin-allow-popups": 10,
    "coop-implemented-with-noopener-allow-popups": 10,
    "coop-implemented-with-unsafe-none": 0,
    "coop-not-implemented": 0,
    "coop-header-invalid": -5,
    "html-not-parseable": -20,
}


def test_the_score_table_is_the_methodologys() -> None:
    assert METHODOLOGY == {key: row.modifier for key, row in SCORE_TABLE.items()}


@pytest.mark.parametrize(
    ("modifiers", "expected"),
    [
        # TRUST_METHOD worked examples: H = 25 x penalty-only / 100.
        ((10, 5, 5, 10, 10, 10), (100, 50, 150, "A+")),  # modern, well run: H 25
        ((-25, -20, -5, -5, 5), (45, 5, 45, "C-")),  # typical portal: H 11.25
        ((-5, 10, 5), (95, 15, 110, "A+")),  # good configuration: H 23.75
        # Bonuses only when the penalty-only score is at least 90.
        ((-15, 10, 10), (85, 20, 85, "A-")),
        ((-10, 10, 10), (90, 20, 110, "A+")),
        ((-10,), (90, 0, 90, "A")),
        ((-36,), (64, 0, 64, "C+")),
        ((-50, -50, -50), (0, 0, 0, "F")),
    ],
)
def test_the_observatory_score(modifiers: tuple[int, ...], expected: tuple[Any, ...]) -> None:
    results = tuple(
        CheckResult(f"http.t{i}", Area.HTTP, CheckStatus.PASS, "", modifier=m)
        for i, m in enumerate(modifiers)
    )
    score = httpsec.observatory_score(results)
    assert expected == (
        score.penalty_only,
        score.bonuses,
        score.score,
        httpsec.grade_for_score(score.score),
    )


def test_the_grade_table_rounds_down_to_multiples_of_five() -> None:
    scores = (100, 99, 95, 90, 89, 85, 84, 80, 79, 75, 70, 69, 65, 60, 55, 50, 45, 40, 35)
    grades = [httpsec.grade_for_score(s) for s in (*scores, 30, 29, 25, 24, 0)]
    assert [
        "A+",
        "A",
        "A",
        "A",
        "A-",
        "A-",
        "B+",
        "B+",
        "B",
        "B",
        "B",
        "B-",
        "B-",
        "C+",
        "C",
        "C",
        "C-",
        "D+",
        "D",
        "D",
        "D-",
        "D-",
        "F",
        "F",
    ] == grades


def test_a_site_answering_an_error_is_not_graded() -> None:
    snapshot = snap(status=500)
    grade = httpsec.grade_observatory(snapshot, httpsec.evaluate_all(snapshot))
    reason = "the site answered 500: not graded (needs 2xx, 3xx, 401 or 403)"
    assert SubGrade("http_observatory_compat", None, reason=reason) == grade


def test_a_check_that_could_not_run_leaves_the_grade_open() -> None:
    snapshot = snap(cors=(CorsProbe("GET", "https://o.example", error="timeout"),))
    grade = httpsec.grade_observatory(snapshot, httpsec.evaluate_all(snapshot))
    reason = "could not check http.cors: score incomplete"
    assert SubGrade("http_observatory_compat", None, reason=reason) == grade


# --- each test on constructed snapshots -----------------------------------------------------


def test_a_missing_header_in_full() -> None:
    expected = CheckResult(
        "http.x-content-type-options",
        Area.HTTP,
        CheckStatus.WARN,
        "No X-Content-Type-Options",
        {"result": "x-content-type-options-not-implemented", "value": None},
        "Send X-Content-Type-Options: nosniff.",
        MDN["x-content-type-options"],
        -5,
    )
    assert expected == evaluate_x_content_type_options(snap())


def test_redirection_in_full() -> None:
    expected = CheckResult(
        "http.redirection",
        Area.HTTP,
        CheckStatus.PASS,
        "http:// redirects to https:// on the same host first",
        {
            "result": "redirection-to-https",
            "chain": [
                {"url": "http://a.example/", "status": 301, "location": URL},
                {"url": URL, "status": 200, "verified": True},
            ],
        },
        "",
        MDN["redirection"],
        0,
    )
    assert expected == evaluate_redirection(snap())


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (
            (Hop("http://a.example/", error="refused", unreachable=True),),
            "redirection-not-needed-no-http",
        ),
        ((Hop("http://a.example/", 200),), "redirection-missing"),
        (
            (
                Hop("http://a.example/", 301, "https://www.a.example/"),
                Hop("https://www.a.example/", 200, verified=True),
            ),
            "redirection-off-host-from-http",
        ),
        (
            (
                Hop("http://a.example/", 301, "http://www.a.example/"),
                Hop("http://www.a.example/", 301, URL),
                Hop(URL, 200, verified=True),
            ),
            "redirection-not-to-https-on-initial-redirection",
        ),
        (
            (Hop("http://a.example/", 301, "/x"), Hop("http://a.example/x", 200)),
            "redirection-not-to-https",
        ),
        (
            (Hop("http://a.example/", 301, URL), Hop(URL, 200, verified=False)),
            "redirection-invalid-cert",
        ),
        (
            (Hop("http://a.example/", 301, "/"), Hop("http://a.example/", 301, "/")),
            "redirection-not-to-https",
        ),
    ],
)
def test_redirection_outcomes(chain: tuple[Hop, ...], expected: str) -> None:
    assert expected == outcome(evaluate_redirection(snap(http_chain=chain)))[0]


def test_a_chain_cut_short_by_a_timeout_is_not_a_failure() -> None:
    chain = (Hop("http://a.example/", 301, URL), Hop(URL, error="ReadTimeout: timed out"))
    result = evaluate_redirection(snap(http_chain=chain))
    assert (CheckStatus.ERROR, None) == (result.status, result.modifier)


@pytest.mark.parametrize(
    ("headers", "kwargs", "expected"),
    [
        ((), {}, ("hsts-not-implemented", -20, CheckStatus.FAIL)),
        (
            (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),),
            {},
            ("hsts-implemented-max-age-at-least-six-months", 0, CheckStatus.PASS),
        ),
        (
            (("Strict-Transport-Security", 'max-age="15552000"'),),
            {},
            ("hsts-implemented-max-age-at-least-six-months", 0, CheckStatus.PASS),
        ),
        (
            (("Strict-Transport-Security", "max-age=86400"),),
            {},
            ("hsts-implemented-max-age-less-than-six-months", -10, CheckStatus.FAIL),
        ),
        (
            (("Strict-Transport-Security", "includeSubDomains"),),
            {},
            ("hsts-header-invalid", -20, CheckStatus.FAIL),
        ),
        (
            (
                ("Strict-Transport-Security", "max-age=1"),
                ("Strict-Transport-Security", "max-age=2"),
            ),
            {},
            ("hsts-header-invalid", -20, CheckStatus.FAIL),
        ),
        (
            (("Strict-Transport-Security", "max-age=31536000"),),
            {"verified": False},
            ("hsts-invalid-cert", -20, CheckStatus.FAIL),
        ),
        (
            (("Strict-Transport-Security", "max-age=31536000"),),
            {"url": "http://a.example/"},
            ("hsts-not-implemented-no-https", -20, CheckStatus.FAIL),
        ),
        ((), {"preloaded": True}, ("hsts-preloaded", 5, CheckStatus.PASS)),
    ],
)
def test_hsts(
    headers: tuple[tuple[str, str], ...], kwargs: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert expected == outcome(evaluate_hsts(snap(headers, **kwargs)))


HSTS = (("Strict-Transport-Security", "max-age=31536000"),)


@pytest.mark.parametrize(
    ("cookies", "headers", "expected"),
    [
        ((), (), "cookies-not-found"),
        (
            ("SID=1; Secure; HttpOnly; SameSite=Lax", "lang=en; Secure; SameSite=Strict"),
            (),
            "cookies-secure-with-httponly-sessions-and-samesite",
        ),
        (("sessionid=1; Secure; HttpOnly",), (), "cookies-secure-with-httponly-sessions"),
        (("lang=en",), (), "cookies-without-secure-flag"),
        (("lang=en",), HSTS, "cookies-without-secure-flag-but-protected-by-hsts"),
        (
            ("sessionid=1; HttpOnly",),
            HSTS,
            "cookies-session-without-secure-flag-but-protected-by-hsts",
        ),
        (("lang=en; Secure; SameSite=Sometimes",), (), "cookies-samesite-flag-invalid"),
        (("lang=en; SameSite=None",), HSTS, "cookies-samesite-flag-invalid"),
        (("csrftoken=1; Secure",), (), "cookies-anticsrf-without-samesite-flag"),
        (("login=1; Secure; SameSite=Lax",), (), "cookies-session-without-httponly-flag"),
        (("PHPSESSID=1; HttpOnly",), (), "cookies-session-without-secure-flag"),
        (("heroku-session-affinity=1",), (), "cookies-not-found"),
        # The jar keeps the last cookie of a name: the fixed one replaces the first.
        (
            ("sessionid=1", "sessionid=2; Secure; HttpOnly; SameSite=Lax"),
            (),
            "cookies-secure-with-httponly-sessions-and-samesite",
        ),
    ],
)
def test_cookies(
    cookies: tuple[str, ...], headers: tuple[tuple[str, str], ...], expected: str
) -> None:
    assert expected == outcome(evaluate_cookies(snap(headers, cookies=cookies)))[0]


def test_cookies_set_over_http_on_the_way_count_too() -> None:
    chain = (
        Hop("http://a.example/", 301, URL, set_cookies=("sessid=1",)),
        Hop(URL, 200, verified=True),
    )
    result = evaluate_cookies(snap(http_chain=chain))
    assert ("cookies-session-without-secure-flag", -40, CheckStatus.FAIL) == outcome(result)
    assert {"sessid": {"secure": False, "httponly": False, "samesite": None, "session": True}} == (
        result.evidence["cookies"]
    )


ORIGIN = "https://http-observatory.security.mozilla.org"


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        ((CorsProbe("GET", ORIGIN, 200),), "cross-origin-resource-sharing-not-implemented"),
        (
            (CorsProbe("GET", ORIGIN, 200, "*"),),
            "cross-origin-resource-sharing-implemented-with-public-access",
        ),
        (
            (CorsProbe("GET", ORIGIN, 200, "https://b.example", "true"),),
            "cross-origin-resource-sharing-implemented-with-restricted-access",
        ),
        (
            (CorsProbe("GET", ORIGIN, 200, ORIGIN),),
            "cross-origin-resource-sharing-implemented-with-restricted-access",
        ),
        (
            (CorsProbe("GET", ORIGIN, 200), CorsProbe("OPTIONS", ORIGIN, 204, ORIGIN, "True")),
            "cross-origin-resource-sharing-implemented-with-universal-access",
        ),
    ],
)
def test_cors(probes: tuple[CorsProbe, ...], expected: str) -> None:
    assert expected == outcome(evaluate_cors(snap(cors=probes)))[0]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((), ("referrer-policy-not-implemented", 0)),
        (("no-referrer",), ("referrer-policy-private", 5)),
        (("unsafe-url, strict-origin-when-cross-origin",), ("referrer-policy-private", 5)),
        (("strict-origin, bogus-value",), ("referrer-policy-private", 5)),
        (("no-referrer", "unsafe-url"), ("referrer-policy-unsafe", -5)),
        (("origin-when-cross-origin",), ("referrer-policy-unsafe", -5)),
        (("whatever",), ("referrer-policy-header-invalid", -5)),
    ],
)
def test_referrer_policy(values: tuple[str, ...], expected: tuple[str, int]) -> None:
    headers = tuple(("Referrer-Policy", v) for v in values)
    assert expected == outcome(evaluate_referrer_policy(snap(headers)))[:2]


def test_a_meta_referrer_comes_after_the_header() -> None:
    body = b'<meta name="referrer" content="unsafe-url"><p>x'
    result = evaluate_referrer_policy(snap((("Referrer-Policy", "no-referrer"),), body))
    assert ("referrer-policy-unsafe", -5) == outcome(result)[:2]


HTML = (("Content-Type", "text/html; charset=utf-8"),)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<p>no scripts</p>", "sri-not-implemented-but-no-scripts-loaded"),
        (
            b"<script>inline()</script>",
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        ),
        (
            b'<script src="/app.js"></script><script src="https://static.a.example/x.js"></script>',
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        ),
        (
            b'<script src="/app.js" integrity="sha384-x"></script>',
            "sri-implemented-and-all-scripts-loaded-securely",
        ),
        (
            b'<script src="https://cdn.example.net/x.js" integrity="sha384-x" '
            b'crossorigin="anonymous"></script>',
            "sri-implemented-and-external-scripts-loaded-securely",
        ),
        (
            b'<script src="https://cdn.example.net/x.js"></script>',
            "sri-not-implemented-but-external-scripts-loaded-securely",
        ),
        (
            b'<script src="//cdn.example.net/x.js" integrity="sha384-x"></script>',
            "sri-implemented-but-external-scripts-not-loaded-securely",
        ),
        (
            b'<script src="http://cdn.example.net/x.js"></script>',
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
        ),
        # The worst external script names the outcome, whatever the order.
        (
            b'<script src="http://cdn.example.net/x.js" integrity="sha384-x"></script><script src="https://cdn.example.net/y.js"></script>',
            "sri-implemented-but-external-scripts-not-loaded-securely",
        ),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03<html>", "html-not-parseable"),
    ],
)
def test_subresource_integrity(body: bytes, expected: str) -> None:
    assert expected == outcome(evaluate_sri(snap(HTML, body)))[0]


def test_sri_is_not_needed_for_what_is_not_html() -> None:
    result = evaluate_sri(snap((("Content-Type", "application/json"),), b"{}"))
    assert ("sri-not-implemented-response-not-html", 0, CheckStatus.PASS) == outcome(result)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), ("x-frame-options-not-implemented", -20)),
        ((("X-Frame-Options", "DENY"),), ("x-frame-options-sameorigin-or-deny", 5)),
        ((("X-Frame-Options", " sameorigin "),), ("x-frame-options-sameorigin-or-deny", 5)),
        (
            (("X-Frame-Options", "ALLOW-FROM https://b.example"),),
            ("x-frame-options-allow-from-origin", 0),
        ),
        ((("X-Frame-Options", "ALLOWALL"),), ("x-frame-options-header-invalid", -20)),
        (
            (("Content-Security-Policy", "frame-ancestors 'self'"),),
            ("x-frame-options-implemented-via-csp", 5),
        ),
        (
            (("Content-Security-Policy", "frame-ancestors *"),),
            ("x-frame-options-not-implemented", -20),
        ),
    ],
)
def test_x_frame_options(headers: tuple[tuple[str, str], ...], expected: tuple[str, int]) -> None:
    assert expected == outcome(evaluate_x_frame_options(snap(headers)))[:2]


@pytest.mark.parametrize(
    ("evaluate", "header", "value", "expected"),
    [
        (
            evaluate_x_content_type_options,
            "X-Content-Type-Options",
            "nosniff",
            ("x-content-type-options-nosniff", 0),
        ),
        (
            evaluate_x_content_type_options,
            "X-Content-Type-Options",
            "sniff",
            ("x-content-type-options-header-invalid", -5),
        ),
        (
            evaluate_corp,
            "Cross-Origin-Resource-Policy",
            "same-origin",
            ("corp-implemented-with-same-origin", 10),
        ),
        (
            evaluate_corp,
            "Cross-Origin-Resource-Policy",
            "Same-Site",
            ("corp-implemented-with-same-site", 10),
        ),
        (
            evaluate_corp,
            "Cross-Origin-Resource-Policy",
            "cross-origin",
            ("corp-implemented-with-cross-origin", 0),
        ),
        (evaluate_corp, "Cross-Origin-Resource-Policy", "everyone", ("corp-header-invalid", -5)),
        (evaluate_corp, "X-None", "", ("corp-not-implemented", 0)),
        (
            evaluate_coep,
            "Cross-Origin-Embedder-Policy",
            "require-corp",
            ("coep-implemented-with-require-corp", 10),
        ),
        (
            evaluate_coep,
            "Cross-Origin-Embedder-Policy",
            'credentialless; report-to="e"',
            ("coep-implemented-with-credentialless", 10),
        ),
        (
            evaluate_coep,
            "Cross-Origin-Embedder-Policy",
            "unsafe-none",
            ("coep-implemented-with-unsafe-none", 0),
        ),
        (
            evaluate_coep,
            "Cross-Origin-Embedder-Policy",
            "require corp",
            ("coep-header-invalid", -5),
        ),
        (
            evaluate_coop,
            "Cross-Origin-Opener-Policy",
            "same-origin",
            ("coop-implemented-with-same-origin", 10),
        ),
        (
            evaluate_coop,
            "Cross-Origin-Opener-Policy",
            "same-origin-allow-popups",
            ("coop-implemented-with-same-origin-allow-popups", 10),
        ),
        (
            evaluate_coop,
            "Cross-Origin-Opener-Policy",
            "noopener-allow-popups",
            ("coop-implemented-with-noopener-allow-popups", 10),
        ),
        (
            evaluate_coop,
            "Cross-Origin-Opener-Policy",
            "unsafe-none",
            ("coop-implemented-with-unsafe-none", 0),
        ),
        (evaluate_coop, "Cross-Origin-Opener-Policy", '"same-origin"', ("coop-header-invalid", -5)),
        (evaluate_coop, "X-None", "", ("coop-not-implemented", 0)),
    ],
)
def test_simple_headers(
    evaluate: Callable[[HttpSnapshot], CheckResult], header: str, value: str, expected: Any
) -> None:
    assert expected == outcome(evaluate(snap(((header, value),))))[:2]


def test_no_response_means_every_check_could_not_run() -> None:
    snapshot = HttpSnapshot("a.example", OBSERVED, (Hop("http://a.example/", error="reset"),))
    results = httpsec.evaluate_all(snapshot)
    assert [CheckStatus.ERROR] * 12 == [r.status for r in results]
    assert [None] * 12 == [r.modifier for r in results]
    assert [i for i, _ in httpsec.CHECKS] == [r.id for r in results]


def test_the_preload_list() -> None:
    preload = PreloadList.from_lines(["# comment", "example.gov include_subdomains", "b.example"])
    covered = ("example.gov", "www.example.gov", "b.example", "www.b.example", "127.0.0.1")
    assert [True, True, True, False, False] == [preload.covers(h) for h in covered]
