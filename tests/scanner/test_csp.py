"""The Content-Security-Policy parser (CSP Level 3 "parse a serialized CSP") and the
Observatory-v6 analysis of what it parsed."""

from __future__ import annotations

import pytest

from sensors.scanner.csp import (
    CspAnalysis,
    Directive,
    Policy,
    Source,
    SourceKind,
    analyze_csp,
    classify,
    parse_policies,
    parse_policy,
)


def test_a_policy_splits_on_semicolons_and_whitespace_and_lowercases_names() -> None:
    text = "  Default-Src 'self'\thttps://a.example ;; img-src * data: ;report-uri /r  "
    expected = Policy(
        (
            Directive("default-src", ("'self'", "https://a.example")),
            Directive("img-src", ("*", "data:")),
            Directive("report-uri", ("/r",)),
        ),
        serialized=text,
    )
    assert expected == parse_policy(text)


def test_the_first_occurrence_of_a_directive_wins_and_repeats_are_recorded() -> None:
    policy = parse_policy("script-src 'none'; SCRIPT-SRC *; script-src 'self'")
    assert (Directive("script-src", ("'none'",)),) == policy.directives
    assert ("script-src", "script-src") == policy.duplicates


def test_non_ascii_tokens_are_skipped_and_odd_names_recorded() -> None:
    policy = parse_policy("img-src caf\u00e9.example; x_y 'self'; object-src 'none'")
    assert ("x_y", "object-src") == tuple(d.name for d in policy.directives)
    assert ("x_y",) == policy.unknown


def test_several_headers_and_commas_make_several_policies() -> None:
    policies = parse_policies(["default-src 'self', img-src *", "script-src 'none'", " , "])
    assert [("default-src",), ("img-src",), ("script-src",)] == [
        tuple(d.name for d in p.directives) for p in policies
    ]


def test_an_empty_source_list_reads_as_none() -> None:
    policy = parse_policy("script-src; object-src 'none'")
    assert (Source("'none'", SourceKind.KEYWORD),) == policy.sources("script-src")
    assert () == policy.sources("img-src")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'self'", Source("'self'", SourceKind.KEYWORD)),
        ("'Unsafe-Inline'", Source("'Unsafe-Inline'", SourceKind.KEYWORD)),
        ("'strict-dynamic'", Source("'strict-dynamic'", SourceKind.KEYWORD)),
        ("'nonce-r4nd0m+/='", Source("'nonce-r4nd0m+/='", SourceKind.NONCE)),
        ("'sha256-abc123='", Source("'sha256-abc123='", SourceKind.HASH)),
        ("'sha1-abc'", Source("'sha1-abc'", SourceKind.INVALID)),
        ("https:", Source("https:", SourceKind.SCHEME, scheme="https")),
        ("Data:", Source("Data:", SourceKind.SCHEME, scheme="data")),
        ("*", Source("*", SourceKind.HOST, host="*")),
        ("example.com", Source("example.com", SourceKind.HOST, host="example.com")),
        (
            "https://*.CDN.example:8443/js/app.js",
            Source(
                "https://*.CDN.example:8443/js/app.js",
                SourceKind.HOST,
                scheme="https",
                host="*.cdn.example",
                port="8443",
                path="/js/app.js",
            ),
        ),
        (
            "http://a.example:*",
            Source(
                "http://a.example:*", SourceKind.HOST, scheme="http", host="a.example", port="*"
            ),
        ),
        ("'self", Source("'self", SourceKind.INVALID)),
        ("https://a.*.example", Source("https://a.*.example", SourceKind.INVALID)),
    ],
)
def test_source_expressions_are_classified(text: str, expected: Source) -> None:
    assert expected == classify(text)


# One policy per outcome of the Observatory's CSP test, following its rules (the first
# weakness in its order names the outcome).
OBSERVATORY_CASES = [
    ("default-src 'none'; form-action 'self'", "csp-implemented-with-no-unsafe-default-src-none"),
    ("default-src 'self'; object-src 'none'", "csp-implemented-with-no-unsafe"),
    (
        "default-src 'self'; style-src 'self' 'unsafe-inline'",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
    ),
    (
        "default-src 'self'; img-src 'self' http:",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    ),
    ("default-src 'self'; script-src 'self' 'unsafe-eval'", "csp-implemented-with-unsafe-eval"),
    ("default-src 'self'; script-src 'self' 'unsafe-inline'", "csp-implemented-with-unsafe-inline"),
    ("default-src 'self'; script-src 'self' data:", "csp-implemented-with-unsafe-inline"),
    ("default-src 'self'; script-src https:", "csp-implemented-with-unsafe-inline"),
    ("default-src 'self'; object-src *", "csp-implemented-with-unsafe-inline"),
    ("img-src 'self'", "csp-implemented-with-unsafe-inline"),  # script-src unrestricted
    ("default-src 'self'; script-src http://cdn.example", "csp-implemented-with-insecure-scheme"),
    ("default-src 'self'; script-src 'self'; script-src *", "csp-header-invalid"),
    ("def", "csp-header-invalid"),
    ("default-src 'self'; script-src 'strict-dynamic'", "csp-header-invalid"),
]


@pytest.mark.parametrize(("header", "expected"), OBSERVATORY_CASES)
def test_the_observatory_outcome_of_each_policy(header: str, expected: str) -> None:
    assert expected == analyze_csp([header]).result


def test_nonces_cancel_unsafe_inline_and_strict_dynamic_drops_hosts() -> None:
    nonce = analyze_csp(["default-src 'none'; script-src 'nonce-abc' 'unsafe-inline'"])
    dynamic = analyze_csp(
        ["object-src 'none'; script-src 'strict-dynamic' 'nonce-abc' https: 'unsafe-inline'"]
    )
    assert ("csp-implemented-with-no-unsafe-default-src-none", False) == (
        nonce.result,
        nonce.unsafe_inline,
    )
    assert ("csp-implemented-with-unsafe-inline-in-style-src-only", True) == (
        dynamic.result,  # style-src falls back to nothing: unrestricted styles
        dynamic.strict_dynamic,
    )


def test_a_weakness_counts_only_when_every_policy_has_it() -> None:
    """Each policy is enforced: the second one restricts what the first leaves open."""
    both = analyze_csp(["frame-ancestors 'none'", "default-src 'self'"])
    assert "csp-implemented-with-no-unsafe" == both.result
    assert (True, True) == (both.frame_ancestors, both.anti_clickjacking)


def test_http_sources_only_matter_on_https() -> None:
    header = ["default-src 'self'; script-src http://cdn.example"]
    assert "csp-implemented-with-no-unsafe" == analyze_csp(header, https=False).result


def test_report_only_and_missing() -> None:
    assert CspAnalysis("csp-not-implemented") == analyze_csp([])
    assert CspAnalysis("csp-not-implemented-but-reporting-enabled") == analyze_csp(
        [], report_only_values=["default-src 'none'"]
    )


def test_a_meta_policy_counts_but_cannot_set_frame_ancestors() -> None:
    analysis = analyze_csp([], ["default-src 'none'; frame-ancestors 'none'"])
    assert ("csp-implemented-with-no-unsafe-default-src-none", False) == (
        analysis.result,
        analysis.frame_ancestors,
    )


def test_repeated_report_directives_are_allowed() -> None:
    header = "default-src 'self'; report-uri /a; report-uri /b"
    assert "csp-implemented-with-no-unsafe" == analyze_csp([header]).result


def test_an_invalid_header_says_why() -> None:
    analysis = analyze_csp(["default-src 'self'; img-src *; IMG-SRC 'self'", ""])
    assert (
        CspAnalysis(
            "csp-header-invalid",
            1,
            ("policy too short to be one: ''", "directive img-src repeated in one policy"),
            directives=("default-src", "img-src"),
        )
        == analysis
    )
