"""TLS checks and the SSL-Labs-compatible grade: sslyze against real HTTPS servers on loopback
with trustme certificates, then the pure checks and the grade on constructed values.

Each loopback scan takes about 1-2 s (sslyze: certificate, six protocol versions, Heartbleed,
ROBOT); the whole file runs in about 15 s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from sensors.scanner.context import ScanContext
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import CheckStatus, SubGrade
from sensors.scanner.target import Target, make_resolver
from sensors.scanner.tls import (
    CHECKS,
    Certificate,
    CipherSuite,
    Endpoint,
    Protocol,
    TlsSnapshot,
    evaluate_consistency,
    evaluate_expiry,
    evaluate_protocols,
    grade_ssllabs,
)
from sensors.scanner.tls_fetch import fetch_tls
from sensors.scanner.tls_grade import EndpointFacts, EndpointGrade, Suite, combine, endpoint_grade
from tests.scanner.conftest import Route, Site, loopback_policy, server_context

S = CheckStatus
YEAR = (("Strict-Transport-Security", "max-age=31536000"),)
IDS = (
    "tls.protocols",
    "tls.ciphers",
    "tls.key",
    "tls.chain",
    "tls.name_match",
    "tls.expiry",
    "tls.signature",
    "tls.ocsp_stapling",
    "tls.vulnerabilities",
    "tls.consistency",
)


def scan(policy: ScanPolicy, host: str = "127.0.0.1") -> TlsSnapshot:
    target = Target(host, (ipaddress.ip_address("127.0.0.1"),))

    async def run() -> TlsSnapshot:
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await fetch_tls(ctx)

    return asyncio.run(run())


def statuses(snapshot: TlsSnapshot) -> dict[str, CheckStatus]:
    return {check_id: evaluate(snapshot).status for check_id, evaluate in CHECKS}


def grade(snapshot: TlsSnapshot) -> SubGrade:
    return grade_ssllabs(snapshot, tuple(evaluate(snapshot) for _, evaluate in CHECKS))


def expect(**changed: CheckStatus) -> dict[str, CheckStatus]:
    """Every check passing except ``changed`` (dots as underscores); OCSP is info on loopback."""
    out = dict.fromkeys(IDS, S.PASS) | {"tls.ocsp_stapling": S.INFO}
    return out | {f"tls.{name}": status for name, status in changed.items()}


def https(sites: Callable[..., Site], context: ssl.SSLContext, hsts: bool = True) -> Site:
    headers = Route().headers + (YEAR if hsts else ())
    return sites({"/": Route(headers=headers)}, context)


def test_check_ids_in_report_order() -> None:
    assert IDS == tuple(check_id for check_id, _ in CHECKS)


def test_valid_modern_server_is_a_plus(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    site = https(sites, server_context(ca))
    snapshot = scan(loopback_policy(https=site, ca_file=ca_file))
    assert expect() == statuses(snapshot)
    # Protocol 100; key exchange X25519/P-256 = RSA 3072: 90; ciphers 128 to 256 bits: 90.
    assert SubGrade("tls_ssllabs_compat", "A+", 93.0) == grade(snapshot)
    endpoint = snapshot.endpoints[0]
    assert (Protocol.TLS12, Protocol.TLS13) == endpoint.protocols
    assert ("EC", 256, "sha256") == (
        endpoint.chain[0].key_type,
        endpoint.chain[0].key_bits,
        endpoint.chain[0].signature_hash,
    )
    assert "max-age=31536000" == snapshot.hsts


def test_without_hsts_is_capped_at_a_minus(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    site = https(sites, server_context(ca), hsts=False)
    snapshot = scan(loopback_policy(https=site, ca_file=ca_file))
    expected = SubGrade(
        "tls_ssllabs_compat", "A-", 93.0, ("A-: HSTS missing or shorter than 180 days",)
    )
    assert expected == grade(snapshot)


def test_expired_certificate(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    expired = datetime.now(UTC) - timedelta(days=2)
    site = https(sites, server_context(ca, not_after=expired))
    snapshot = scan(loopback_policy(https=site, ca_file=ca_file))
    assert expect(expiry=S.FAIL, chain=S.FAIL) == statuses(snapshot)
    result = evaluate_expiry(snapshot)
    assert (f"certificate expired on {expired.date().isoformat()}", -2) == (
        result.summary,
        result.evidence["127.0.0.1"]["days_left"],
    )
    # The HSTS page could not be read over a broken certificate: HSTS counts as missing.
    caps = (
        "T: certificate not trusted",
        "T: certificate expired or not yet valid",
        "A-: HSTS missing or shorter than 180 days",
    )
    assert SubGrade("tls_ssllabs_compat", "T", 93.0, caps) == grade(snapshot)


def test_wrong_name(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    site = https(sites, server_context(ca, "other.example"))
    snapshot = scan(loopback_policy(https=site, ca_file=ca_file))
    assert expect(name_match=S.FAIL) == statuses(snapshot)
    caps = ("M: certificate name mismatch", "A-: HSTS missing or shorter than 180 days")
    assert SubGrade("tls_ssllabs_compat", "M", 93.0, caps) == grade(snapshot)


def test_certificate_from_unknown_ca(sites: Callable[..., Site], ca_file: Path) -> None:
    site = https(sites, server_context(trustme.CA()))
    snapshot = scan(loopback_policy(https=site, ca_file=ca_file))
    assert expect(chain=S.FAIL) == statuses(snapshot)
    # Its root is neither served nor known, which from outside looks like a missing
    # intermediate: both are reported, and the trust failure decides the grade.
    caps = (
        "T: certificate not trusted",
        "B: incomplete certificate chain",
        "A-: HSTS missing or shorter than 180 days",
    )
    assert SubGrade("tls_ssllabs_compat", "T", 93.0, caps) == grade(snapshot)


def test_self_signed(sites: Callable[..., Site], tmp_path: Path, ca_file: Path) -> None:
    self_signed = trustme.CA()  # a CA certificate is self-signed; served as the site's own
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed.cert_pem.write_to_path(str(cert))
    self_signed.private_key_pem.write_to_path(str(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    snapshot = scan(loopback_policy(https=https(sites, context), ca_file=ca_file))
    result = next(evaluate(snapshot) for i, evaluate in CHECKS if i == "tls.chain")
    assert (S.FAIL, "self-signed certificate") == (result.status, result.summary)
    assert "T" == grade(snapshot).grade
    assert ("T: certificate not trusted", "T: self-signed certificate") == grade(snapshot).caps[:2]


def test_chain_with_and_without_intermediate(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    leaf = ca.create_child_ca().issue_cert("127.0.0.1")
    complete = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(complete)  # leaf and intermediate
    snapshot = scan(loopback_policy(https=https(sites, complete), ca_file=ca_file))
    assert expect() == statuses(snapshot)
    assert 2 == len(snapshot.endpoints[0].chain)

    cert, key = tmp_path / "leaf.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    incomplete = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    incomplete.load_cert_chain(cert, key)  # the leaf alone
    snapshot = scan(loopback_policy(https=https(sites, incomplete), ca_file=ca_file))
    assert expect(chain=S.FAIL) == statuses(snapshot)
    result = next(evaluate(snapshot) for i, evaluate in CHECKS if i == "tls.chain")
    assert ("incomplete chain: an intermediate is not served", False) == (
        result.summary,
        result.evidence["127.0.0.1"]["complete"],
    )
    # No AIA fetching (see the notes): served incomplete, the chain cannot be trusted either.
    assert ("T: certificate not trusted", "B: incomplete certificate chain") == (
        grade(snapshot).caps[:2]
    )


def test_tls10_only(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    context = server_context(ca)
    try:
        with warnings.catch_warnings():  # the point of the test: a deprecated version
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"the local OpenSSL refuses a TLS 1.0 server: {exc}")
    snapshot = scan(loopback_policy(https=https(sites, context), ca_file=ca_file))
    if not snapshot.endpoints[0].protocols:
        pytest.skip("the local OpenSSL would not complete a TLS 1.0 handshake")
    assert (Protocol.TLS10,) == snapshot.endpoints[0].protocols
    assert expect(protocols=S.FAIL, ciphers=S.WARN) == statuses(snapshot)
    assert "neither TLS 1.2 nor TLS 1.3 offered" == evaluate_protocols(snapshot).summary
    caps = (
        "C: no TLS 1.2",
        "B: TLS 1.0 or 1.1 offered",
        "B: no AEAD cipher suites",
        "A-: no TLS 1.3",
        "A-: HSTS missing or shorter than 180 days",  # Python's client will not speak TLS 1.0
    )
    # Protocol 90; key exchange 90; CBC ciphers of 128 and 256 bits: 90.
    assert SubGrade("tls_ssllabs_compat", "C", 90.0, caps) == grade(snapshot)


def test_rsa_key_exchange_only(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    context = server_context(ca, key_type=trustme.KeyType.RSA)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-SHA")
    snapshot = scan(loopback_policy(https=https(sites, context), ca_file=ca_file))
    assert expect(protocols=S.WARN, ciphers=S.WARN) == statuses(snapshot)
    suites = snapshot.endpoints[0].suites
    assert [("TLS_RSA_WITH_AES_128_CBC_SHA", Protocol.TLS12, 128, False, False)] == [
        (s.name, s.protocol, s.bits, s.forward_secret, s.aead) for s in suites
    ]
    assert "NOT_VULNERABLE_NO_ORACLE" == snapshot.endpoints[0].robot
    # Python's client refuses RSA key exchange, so the page (and its HSTS) cannot be read:
    # HSTS counts as missing.
    caps = (
        "B: no forward secrecy",
        "B: no AEAD cipher suites",
        "A-: no TLS 1.3",
        "A-: HSTS missing or shorter than 180 days",
    )
    # Protocol 100; RSA 2048 key exchange 90; AES-128: 80.
    assert SubGrade("tls_ssllabs_compat", "B", 89.0, caps) == grade(snapshot)


def test_unreachable_address_could_not_be_checked() -> None:
    closed = Site().start()  # a port that is free: started then stopped
    closed.stop()
    snapshot = scan(loopback_policy(https=closed))
    assert 1 == len(snapshot.endpoints)
    assert snapshot.endpoints[0].error
    assert dict.fromkeys(IDS, S.ERROR) == statuses(snapshot)
    assert (None, "1 of 1 addresses could not be graded") == (
        grade(snapshot).grade,
        grade(snapshot).reason,
    )


# ------------------------------------------------------------------ pure checks, made-up values

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def made_endpoint(address: str = "192.0.2.1", days_left: float = 90, **kw: object) -> Endpoint:
    leaf = Certificate(
        "CN=www.example.org",
        "CN=Example CA",
        "ab" * 32,
        NOW - timedelta(days=10),
        NOW + timedelta(days=days_left),
        "RSA",
        2048,
        "sha256",
        False,
        ("www.example.org",),
    )
    suite = CipherSuite(
        "TLS_AES_128_GCM_SHA256", Protocol.TLS13, 128, True, True, False, "ECDH 253", 3072
    )
    fields: dict[str, object] = {
        "protocols": (Protocol.TLS12, Protocol.TLS13),
        "suites": (
            suite,
            replace(suite, protocol=Protocol.TLS12, name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ),
        "chain": (leaf,),
        "trust": (("Mozilla", None),),
        "chain_complete": True,
        "ocsp_stapled": True,
        "ocsp_status": "successful",
        "heartbleed": False,
        "robot": "NOT_VULNERABLE_NO_ORACLE",
    } | kw
    return Endpoint(address, **fields)  # type: ignore[arg-type]


def made_snapshot(*endpoints: Endpoint, hsts: str | None = "max-age=31536000") -> TlsSnapshot:
    return TlsSnapshot("www.example.org", 443, NOW, endpoints, hsts)


@pytest.mark.parametrize(
    ("days_left", "status", "summary"),
    [
        (45, S.PASS, "certificate valid for 45 more days"),
        (30.5, S.PASS, "certificate valid for 30 more days"),
        (30, S.WARN, "certificate expires in 30 days"),
        (14, S.WARN, "certificate expires in 14 days"),
        (13.9, S.FAIL, "certificate expires in 13 days"),
        (-0.5, S.FAIL, "certificate expired on 2026-02-28"),
    ],
)
def test_expiry_margin(days_left: float, status: CheckStatus, summary: str) -> None:
    result = evaluate_expiry(made_snapshot(made_endpoint(days_left=days_left)))
    assert (status, summary) == (result.status, result.summary)


def test_several_endpoints_worst_counts_with_evidence_per_address() -> None:
    good = made_endpoint("192.0.2.1")
    old = made_endpoint("192.0.2.2", protocols=(Protocol.TLS10, Protocol.TLS12, Protocol.TLS13))
    down = Endpoint("2001:db8::1", error="ConnectionRefusedError")
    result = evaluate_protocols(made_snapshot(good, old))
    assert (S.WARN, "192.0.2.2: TLSv1.0 still offered") == (result.status, result.summary)
    assert {"192.0.2.1": "pass", "192.0.2.2": "warn"} == {
        a: e["status"] for a, e in result.evidence.items()
    }
    assert S.FAIL == evaluate_consistency(made_snapshot(good, old)).status
    assert S.PASS == evaluate_consistency(made_snapshot(good, replace(good, address="x"))).status
    assert S.ERROR == evaluate_consistency(made_snapshot(good, down)).status
    assert S.ERROR == evaluate_protocols(made_snapshot(good, down)).status
    assert S.ERROR == evaluate_protocols(made_snapshot(old, down)).status  # error over warn
    # The grade counts the worst endpoint and every cap, and says what it could not grade.
    expected = SubGrade(
        "tls_ssllabs_compat",
        "B",
        87.5,  # the worst endpoint's: protocols (100 + 90) / 2
        ("B: TLS 1.0 or 1.1 offered",),
        "1 of 3 addresses could not be graded",
    )
    snapshot = made_snapshot(good, old, down)
    assert expected == grade(snapshot)


def test_evidence_is_bounded_json() -> None:
    many = tuple(
        CipherSuite(f"TLS_ECDHE_RSA_WITH_X{i}_GCM", Protocol.TLS12, 128, True, True, False)
        for i in range(300)
    )
    snapshot = made_snapshot(made_endpoint(suites=many))
    for _, evaluate in CHECKS:
        result = evaluate(snapshot)
        assert len(result.evidence) <= 64
        for value in result.evidence["192.0.2.1"].values():
            assert not isinstance(value, list) or len(value) <= 40


# ------------------------------------------------------------------------- the grade, pure

T12, T13 = Protocol.TLS12, Protocol.TLS13
GOOD = Suite(T13, cipher_bits=256, kx_bits=3072, forward_secret=True, aead=True)


def facts(*suites: Suite, key_bits: int = 3072, **kw: object) -> EndpointFacts:
    chosen = suites or (GOOD,)
    protocols = kw.pop("protocols", frozenset(s.protocol for s in chosen) | {T12})
    return EndpointFacts(protocols, chosen, key_bits, **kw)  # type: ignore[arg-type]


def graded(f: EndpointFacts, hsts: int | None = 31536000, warnings: bool = False) -> EndpointGrade:
    return endpoint_grade(f, hsts_max_age=hsts, warnings=warnings)


def test_grade_a_plus_needs_no_warning_and_six_months_of_hsts() -> None:
    assert EndpointGrade("A+", 97.0, ()) == graded(facts())
    assert EndpointGrade("A", 97.0, ()) == graded(facts(), warnings=True)
    assert EndpointGrade("A+", 97.0, ()) == graded(facts(), hsts=180 * 86400)
    short = ("A-: HSTS missing or shorter than 180 days",)
    assert EndpointGrade("A-", 97.0, short) == graded(facts(), hsts=180 * 86400 - 1)
    assert EndpointGrade("A-", 97.0, short) == graded(facts(), hsts=None)


@pytest.mark.parametrize(
    ("suite", "protocols", "score", "letter"),
    [
        # 0.3 protocol + 0.3 key exchange + 0.4 cipher, each (best + worst) / 2.
        (Suite(T12, 256, 4096, True, True), {T12, T13}, 100.0, "A+"),
        (Suite(T12, 128, 2048, True, True), {T12, T13}, 89.0, "A+"),
        (Suite(T12, 128, 2047, True, True), {T12, T13}, 86.0, "A+"),
        (Suite(T12, 112, 1024, True, True), {T12, T13}, 62.0, "C"),
        (Suite(T12, 128, 1023, True, True), {T12}, 74.0, "B"),
        (Suite(T12, 128, 511, True, True), {T12}, 68.0, "B"),
        # TNM-1 has no SSLv3 cap (SSL Labs: C since POODLE); tls.protocols fails on it, and
        # that failure is what rules A+ out when the grade is computed from a scan.
        (Suite(T12, 128, 4096, True, True), {T12, T13, Protocol.SSL3}, 89.0, "A+"),
        (Suite(Protocol.SSL3, 128, 2048, True, True), {Protocol.SSL3}, 83.0, "C"),
    ],
)
def test_grade_score_tables(
    suite: Suite, protocols: set[Protocol], score: float, letter: str
) -> None:
    assert (score, letter) == (
        graded(facts(suite, protocols=frozenset(protocols), key_bits=4096)).score,
        graded(facts(suite, protocols=frozenset(protocols), key_bits=4096)).letter,
    )


def test_grade_letter_thresholds() -> None:
    # Protocol SSLv2 only (0) with 40-bit ciphers (20) and 511-bit keys (20): 0 + 6 + 8 = 14.
    weak = Suite(Protocol.SSL2, 40, 511, export=True)
    f = facts(weak, protocols=frozenset({Protocol.SSL2}), key_bits=4096)
    assert (14.0, "F") == (graded(f).score, graded(f).letter)
    # Best and worst averaged: TLS 1.2 + SSLv3 = 90; keys 100 and 20 = 60; ciphers 100/20 = 60.
    mixed = (Suite(T12, 256, 4096, True, True), Suite(Protocol.SSL3, 40, 300))
    f = facts(*mixed, protocols=frozenset({T12, Protocol.SSL3}), key_bits=4096)
    assert 69.0 == graded(f).score


@pytest.mark.parametrize(
    ("change", "cap"),
    [
        ({"protocols": frozenset({Protocol.SSL2, T12, T13})}, "F: SSL 2.0 offered"),
        ({"heartbleed": True}, "F: vulnerable to Heartbleed"),
        ({"robot": True}, "F: vulnerable to ROBOT"),
        ({"md5_signature": True}, "F: MD5 certificate signature"),
        ({"protocols": frozenset({T13})}, "C: no TLS 1.2"),
        ({"protocols": frozenset({Protocol.TLS11, T12, T13})}, "B: TLS 1.0 or 1.1 offered"),
        ({"chain_complete": False}, "B: incomplete certificate chain"),
        ({"protocols": frozenset({T12})}, "A-: no TLS 1.3"),
    ],
)
def test_grade_caps(change: dict[str, object], cap: str) -> None:
    result = graded(replace(facts(), **change))  # type: ignore[arg-type]
    assert (cap.split(":", maxsplit=1)[0], (cap,)) == (result.letter, result.caps)


@pytest.mark.parametrize(
    ("suite", "caps"),
    [
        (Suite(T13, 40, 3072, True, True, export=True), ("F: export or <112-bit cipher suites",)),
        (
            Suite(Protocol.TLS11, 168, 3072, True, False, triple_des=True),
            ("C: 3DES with TLS 1.1 or newer", "B: TLS 1.0 or 1.1 offered"),
        ),
        (
            Suite(T12, 128, 3072, True, False, rc4=True),
            ("C: RC4 with TLS 1.1 or 1.2", "B: RC4 offered"),
        ),
    ],
)
def test_grade_cipher_caps(suite: Suite, caps: tuple[str, ...]) -> None:
    """Caps of one weak suite beside a good one."""
    result = graded(facts(GOOD, suite))
    assert (caps[0].split(":", maxsplit=1)[0], caps) == (result.letter, result.caps)


@pytest.mark.parametrize(
    ("suite", "caps"),
    [
        (Suite(T13, 128, 3072, False, True), ("B: no forward secrecy",)),
        (Suite(T13, 128, 3072, True, False), ("B: no AEAD cipher suites",)),
    ],
)
def test_grade_caps_when_no_suite_has_it(suite: Suite, caps: tuple[str, ...]) -> None:
    """Forward secrecy and AEAD cap only when no accepted suite has them (as SSL Labs)."""
    result = graded(facts(suite))
    assert (caps[0].split(":", maxsplit=1)[0], caps) == (result.letter, result.caps)


def test_grade_key_caps_and_certificate_letters() -> None:
    assert ("F", ("F: key shorter than 1024 bits", "B: key shorter than 2048 bits")) == (
        graded(facts(key_bits=1000)).letter,
        graded(facts(key_bits=1000)).caps,
    )
    assert ("B", ("B: key shorter than 2048 bits",)) == (
        graded(facts(key_bits=1024)).letter,
        graded(facts(key_bits=1024)).caps,
    )
    assert EndpointGrade("T", 97.0, ("T: certificate expired or not yet valid",)) == graded(
        facts(expired=True)
    )
    both = facts(trusted=False, self_signed=True, name_match=False)
    assert EndpointGrade(
        "T", 97.0, ("T: certificate not trusted", "T: self-signed certificate")
    ) == (graded(both))
    assert EndpointGrade("M", 97.0, ("M: certificate name mismatch",)) == graded(
        facts(name_match=False)
    )


def test_combine_takes_the_worst_endpoint() -> None:
    a_plus, t = EndpointGrade("A+", 97.0, ()), EndpointGrade("T", 93.0, ("T: x",))
    f = EndpointGrade("F", 60.0, ("F: y",))
    assert SubGrade("tls_ssllabs_compat", "T", 93.0, ("T: x", "F: y")) == combine([a_plus, t, f])
    assert SubGrade("tls_ssllabs_compat", "A+", 97.0) == combine([a_plus])
    assert SubGrade("tls_ssllabs_compat", None, reason="no endpoint could be graded") == combine([])
