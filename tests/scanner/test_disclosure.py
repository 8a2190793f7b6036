"""Disclosure: security.txt files served by loopback sites (valid, expired, without Contact,
signed, HTML in its place, at the legacy path) and privacy-policy links in English and
Vietnamese; the parser and the evaluators on constructed values."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from sensors.scanner import disclosure
from sensors.scanner.context import ScanContext
from sensors.scanner.disclosure import (
    DisclosureSnapshot,
    SecurityTxt,
    TxtAnswer,
    fetch_disclosure,
    parse_security_txt,
)
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import Area, CheckResult, CheckStatus
from sensors.scanner.target import Target, make_resolver
from tests.scanner.conftest import Route, Site, loopback_policy, server_context

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


def observe(policy: ScanPolicy) -> DisclosureSnapshot:
    async def go() -> DisclosureSnapshot:
        target = Target("127.0.0.1", (ipaddress.ip_address("127.0.0.1"),))
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await fetch_disclosure(ctx)

    return asyncio.run(go())


def expires(days: int) -> str:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return when.isoformat().replace("+00:00", "Z")


def txt(body: str, headers: tuple[tuple[str, str], ...] = TEXT) -> Route:
    return Route(200, headers, body.encode())


def scan(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path, routes: dict[str, Any]
) -> DisclosureSnapshot:
    site: Site = sites(routes, server_context(ca))
    return observe(loopback_policy(https=site, ca_file=ca_file))


VALID = "Contact: mailto:security@portal.example\nContact: https://portal.example/report\n"


@pytest.mark.parametrize(
    ("body", "headers", "status", "state", "first"),
    [
        (VALID + f"Expires: {expires(180)}\n", TEXT, CheckStatus.PASS, "valid", None),
        (VALID + f"Expires: {expires(-1)}\n", TEXT, CheckStatus.WARN, "invalid", "expired on "),
        (f"Expires: {expires(30)}\n", TEXT, CheckStatus.WARN, "invalid", "no Contact field"),
        (VALID + f"Expires: {expires(800)}\n", TEXT, CheckStatus.WARN, "valid", None),
        (
            VALID + f"Expires: {expires(30)}\n",
            (("Content-Type", "application/octet-stream"),),
            CheckStatus.WARN,
            "invalid",
            "Content-Type is 'application/octet-stream', not text/plain",
        ),
        ("<!doctype html><title>Home</title>", (), CheckStatus.FAIL, "missing", None),
        ("OK", (("Content-Type", "text/plain"),), CheckStatus.FAIL, "missing", None),
    ],
    ids=["valid", "expired", "no-contact", "far-expiry", "not-text", "html", "plain-ok"],
)
def test_security_txt_states(
    sites: Callable[..., Site],
    ca: trustme.CA,
    ca_file: Path,
    body: str,
    headers: tuple[tuple[str, str], ...],
    status: CheckStatus,
    state: str,
    first: str | None,
) -> None:
    route = Route(200, headers or (("Content-Type", "text/html"),), body.encode())
    result = disclosure.evaluate_security_txt(
        scan(sites, ca, ca_file, {"/.well-known/security.txt": route})
    )
    assert (status, state) == (result.status, result.evidence["state"])
    if first is not None:
        assert result.evidence["problems"][0].startswith(first)


def test_a_signed_file_at_the_legacy_path_is_valid_with_a_note(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    signed = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
        f"# security.txt\n{VALID}Expires: {expires(90)}\n- -not a field\n"
        "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n"
    )
    snapshot = scan(sites, ca, ca_file, {"/security.txt": txt(signed)})
    result = disclosure.evaluate_security_txt(snapshot)
    assert (CheckStatus.PASS, True) == (result.status, result.evidence["signed"])
    assert ["mailto:security@portal.example", "https://portal.example/report"] == result.evidence[
        "contacts"
    ]
    assert [f"found at {result.evidence['url']}, not /.well-known/security.txt"] == result.evidence[
        "notes"
    ]


def test_security_txt_served_only_over_http_is_invalid(sites: Callable[..., Site]) -> None:
    site = sites({"/.well-known/security.txt": txt(VALID + f"Expires: {expires(30)}\n")})
    closed = sites({})  # started and stopped at once: its port is then closed
    closed.stop()
    snapshot = observe(loopback_policy(http=site, https_port=closed.port))
    result = disclosure.evaluate_security_txt(snapshot)
    assert (CheckStatus.WARN, ["served over HTTP: RFC 9116 requires HTTPS"]) == (
        result.status,
        result.evidence["problems"],
    )


@pytest.mark.parametrize(
    ("link", "matched"),
    [
        ('<a href="/legal">Privacy Policy</a>', "privacy"),
        ('<a href="/trang/12">Chính Sách Bảo Mật</a>', "chính sách bảo mật"),
        ('<a href="/chinh-sach-bao-mat.html">Điều khoản</a>', "chinh-sach-bao-mat"),
        ('<a href="/p/7">Bảo vệ dữ liệu cá nhân</a>', "bảo vệ dữ liệu cá nhân"),
        ('<a href="/about">About us</a><a href="mailto:privacy@x.example">mail</a>', None),
    ],
    ids=["english", "vietnamese-text", "vietnamese-path", "personal-data", "absent"],
)
def test_privacy_policy_link(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path, link: str, matched: str | None
) -> None:
    home = Route(body=f"<title>Portal</title><footer>{link}</footer>".encode())
    snapshot = scan(sites, ca, ca_file, {"/": home})
    result = disclosure.evaluate_privacy(snapshot)
    if matched is None:
        assert CheckStatus.FAIL == result.status
    else:
        assert (CheckStatus.PASS, matched) == (result.status, result.evidence["matched"])
        assert result.evidence["href"].startswith("https://127.0.0.1:")


def test_parse_strips_the_signature_and_ignores_comments_and_unknown_fields() -> None:
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n# hi\nContact: tel:+84-24-1\n"
        "X-Custom: kept\n- Expires: 2027-01-01T00:00:00+07:00\n-----BEGIN PGP SIGNATURE-----\n"
        "\nabc\n-----END PGP SIGNATURE-----\n"
    )
    assert SecurityTxt(
        (
            ("contact", "tel:+84-24-1"),
            ("x-custom", "kept"),
            ("expires", "2027-01-01T00:00:00+07:00"),
        ),
        True,
    ) == parse_security_txt(text)
    assert ("the OpenPGP signature is not complete",) == parse_security_txt(
        "-----BEGIN PGP SIGNED MESSAGE-----\n\nContact: mailto:a@b\n-----BEGIN PGP SIGNATURE-----\n"
    ).problems


def _snapshot(text: str, **changes: Any) -> DisclosureSnapshot:
    answer = TxtAnswer("https://h.example/.well-known/security.txt", 200, TEXT[0][1], text, None)
    base: dict[str, Any] = {
        "observed_at": NOW,
        "answers": (answer,),
        "home_url": "https://h.example/",
        "home_status": 200,
        "home_error": None,
        "links": (),
    }
    return DisclosureSnapshot(**(base | changes))


def test_evaluate_an_invalid_file_whole() -> None:
    text = (
        "Contact: http://h.example/report\nExpires: 2026-12-31\nExpires: 2027-01-01T00:00:00Z\n"
        "Preferred-Languages: en\nPreferred-Languages: vi\n"
    )
    assert CheckResult(
        "disclosure.security-txt",
        Area.DISCLOSURE,
        CheckStatus.WARN,
        "security.txt is invalid: Contact 'http://h.example/report' is not a URI (web URIs must "
        "be https)",
        {
            "state": "invalid",
            "url": "https://h.example/.well-known/security.txt",
            "contacts": ["http://h.example/report"],
            "expires": ["2026-12-31", "2027-01-01T00:00:00Z"],
            "signed": False,
            "problems": [
                "Contact 'http://h.example/report' is not a URI (web URIs must be https)",
                "Preferred-Languages appears more than once",
                "Expires must appear exactly once, not 2 times",
            ],
            "warnings": [],
            "notes": [],
        },
        "Publish /.well-known/security.txt over HTTPS (RFC 9116, https://securitytxt.org).",
    ) == disclosure.evaluate_security_txt(_snapshot(text))


def test_a_date_without_time_or_zone_is_not_an_expiry() -> None:
    for value in ("2027-01-01", "2027-01-01T00:00:00"):
        problems, _ = disclosure.validate_security_txt(
            _snapshot(f"Contact: mailto:a@b.example\nExpires: {value}\n").answers[0], NOW
        )
        assert [f"Expires {value!r} is not an RFC 3339 date and time"] == problems


def test_a_timeout_is_could_not_check_and_a_home_page_error_too() -> None:
    timed_out = TxtAnswer("https://h.example/.well-known/security.txt", None, None, "", "t", True)
    snapshot = _snapshot("", answers=(timed_out,), home_status=503)
    assert [CheckStatus.ERROR, CheckStatus.ERROR] == [
        evaluate(snapshot).status for _, evaluate in disclosure.CHECKS
    ]


def test_privacy_evidence_whole() -> None:
    links = (("https://h.example/", "Home"), ("https://h.example/privacy-policy", "Legal"))
    assert CheckResult(
        "disclosure.privacy-policy",
        Area.DISCLOSURE,
        CheckStatus.PASS,
        "privacy policy linked: https://h.example/privacy-policy",
        {
            "home": "https://h.example/",
            "href": "https://h.example/privacy-policy",
            "text": "Legal",
            "matched": "privacy",
        },
    ) == disclosure.evaluate_privacy(_snapshot("", links=links))
