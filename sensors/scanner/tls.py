"""TLS and certificates (methodology TNM-1, category T): fetched with sslyze, as internet.nl
does, from every address of the host, then judged by pure checks and the SSL-Labs-compatible
sub-grade (:mod:`sensors.scanner.tls_grade`).

:func:`~sensors.scanner.tls_fetch.fetch_tls` runs sslyze against each address (SNI and
certificate name: the host) for the certificate, SSL 2.0 to TLS 1.3 cipher suites, Heartbleed
and ROBOT; verifies the chain as served against Mozilla's roots (sslyze's copy) and
``policy.ca_file``; and reads HSTS from the shared home-page fetch. An address that cannot be
reached is an endpoint with ``error`` set: its checks say *could not check*, never *failed*.

Trust is verified here rather than taken from sslyze: sslyze's verifier enforces the CA/Browser
Forum's extension profile (a critical subjectAltName beside a subject is refused), which
browsers do not, and which trustme's test certificates break. Ours checks the path, validity
at observation time, CA constraints and serverAuth usage; names are a check of their own.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple, TypeVar

from sslyze.plugins.scan_commands import ScanCommand

from sensors.scanner.result import Area, CheckResult, CheckStatus, SubGrade, could_not_check, worst
from sensors.wire import utc

__all__ = [
    "CHECKS",
    "Certificate",
    "CipherSuite",
    "Endpoint",
    "Protocol",
    "TlsSnapshot",
    "grade_ssllabs",
    "names_match",
]


class Protocol(enum.StrEnum):
    """SSL/TLS protocol versions, oldest first."""

    SSL2 = "SSLv2"
    SSL3 = "SSLv3"
    TLS10 = "TLSv1.0"
    TLS11 = "TLSv1.1"
    TLS12 = "TLSv1.2"
    TLS13 = "TLSv1.3"


_MAX_CONNECTIONS: Final = 5  # sslyze's default per server; each one takes a slot of the scan
_MAX_LIST: Final = 40  # items of a list kept in evidence
_MAX_TEXT: Final = 500
_PROTOCOL_COMMANDS: Final = (
    (Protocol.SSL2, ScanCommand.SSL_2_0_CIPHER_SUITES),
    (Protocol.SSL3, ScanCommand.SSL_3_0_CIPHER_SUITES),
    (Protocol.TLS10, ScanCommand.TLS_1_0_CIPHER_SUITES),
    (Protocol.TLS11, ScanCommand.TLS_1_1_CIPHER_SUITES),
    (Protocol.TLS12, ScanCommand.TLS_1_2_CIPHER_SUITES),
    (Protocol.TLS13, ScanCommand.TLS_1_3_CIPHER_SUITES),
)
_REFS: Final = {
    "ssllabs": "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide",
    "mozilla": "https://wiki.mozilla.org/Security/Server_Side_TLS",
    "rfc8996": "https://www.rfc-editor.org/rfc/rfc8996",
    "rfc9325": "https://www.rfc-editor.org/rfc/rfc9325",
    "rfc5280": "https://www.rfc-editor.org/rfc/rfc5280",
    "rfc6125": "https://www.rfc-editor.org/rfc/rfc6125",
    "rfc6066": "https://www.rfc-editor.org/rfc/rfc6066#section-8",
}
_WARNINGS_LOCK: Final = threading.Lock()
_T = TypeVar("_T")


@dataclass(frozen=True)
class CipherSuite:
    """A cipher suite the server accepted with ``protocol``; ``kx`` is the ephemeral key
    (``"ECDH 253"``, ``"DH 2048"``) when there is one, ``kx_bits`` its RSA-equivalent size."""

    name: str
    protocol: Protocol
    bits: int
    forward_secret: bool
    aead: bool
    anonymous: bool
    kx: str | None = None
    kx_bits: int | None = None


@dataclass(frozen=True)
class Certificate:
    """One certificate as served; ``key_bits`` is the key's own size (curve size for EC)."""

    subject: str
    issuer: str
    sha256: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_bits: int
    signature_hash: str | None
    self_signed: bool
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    @property
    def rsa_equivalent_bits(self) -> int:
        """The key's strength in RSA bits (NIST SP 800-57), as SSL Labs compares keys."""
        if self.key_type in ("RSA", "DSA"):
            return self.key_bits
        return _ec_equivalent(self.key_bits)


@dataclass(frozen=True)
class Endpoint:
    """What one address served. ``error`` set: it could not be scanned (nothing else is).
    ``scan_errors`` names the scan commands that failed (``"TLSv1.0"``, ``"certificate"``...)."""

    address: str
    error: str | None = None
    protocols: tuple[Protocol, ...] = ()
    suites: tuple[CipherSuite, ...] = ()
    chain: tuple[Certificate, ...] = ()
    trust: tuple[tuple[str, str | None], ...] = ()  # (trust store, error or None if trusted)
    chain_complete: bool | None = None
    ocsp_stapled: bool | None = None
    ocsp_status: str | None = None
    must_staple: bool = False
    heartbleed: bool | None = None
    robot: str | None = None
    scan_errors: tuple[tuple[str, str], ...] = ()

    @property
    def trusted(self) -> bool:
        return any(problem is None for _, problem in self.trust)

    def failed(self, *commands: str) -> str | None:
        """The error of the first of ``commands`` that failed, or None."""
        return next((e for c, e in self.scan_errors if c in commands), None)


@dataclass(frozen=True)
class TlsSnapshot:
    """The TLS view of one host at ``observed_at``: one :class:`Endpoint` per address, and the
    Strict-Transport-Security header of the home page (``hsts_error`` if it could not be read)."""

    host: str
    port: int
    observed_at: datetime
    endpoints: tuple[Endpoint, ...]
    hsts: str | None = None
    hsts_error: str | None = None


def _ec_equivalent(bits: int) -> int:
    """RSA bits of equal strength (NIST SP 800-57 part 1, table 2)."""
    return next((rsa_bits for ec_bits, rsa_bits in _EC_TABLE if bits <= ec_bits), 15360)


_EC_TABLE: Final = ((160, 1024), (223, 2048), (256, 3072), (384, 7680))


def _text(value: str) -> str:
    return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 1] + "…"


# ---------------------------------------------------------------------------------- checks


class _Finding(NamedTuple):
    status: CheckStatus
    summary: str
    evidence: dict[str, Any]
    advice: str = ""


_Judge = Callable[[Endpoint, TlsSnapshot], _Finding]


def _per_endpoint(check_id: str, judge: _Judge, *refs: str) -> Callable[[TlsSnapshot], CheckResult]:
    """A check that judges each endpoint and reports the worst, with evidence per address."""

    def evaluate(snapshot: TlsSnapshot) -> CheckResult:
        if not snapshot.endpoints:
            return could_not_check(check_id, Area.TLS, "no address to scan")
        found = {
            e.address: _Finding(
                CheckStatus.ERROR, f"could not connect: {e.error}", {"error": e.error}
            )
            if e.error is not None
            else judge(e, snapshot)
            for e in snapshot.endpoints
        }
        status = worst(f.status for f in found.values())
        where, pick = next((a, f) for a, f in found.items() if f.status == status)
        evidence = {a: {"status": f.status.value, **f.evidence} for a, f in found.items()}
        if status is CheckStatus.ERROR:
            return could_not_check(
                check_id, Area.TLS, pick.summary.removeprefix("could not connect: "), **evidence
            )
        summary = pick.summary if len(found) == 1 else f"{where}: {pick.summary}"
        advice = "" if status is CheckStatus.PASS else pick.advice
        return CheckResult(
            check_id, Area.TLS, status, summary, evidence, advice, tuple(_REFS[r] for r in refs)
        )

    evaluate.__name__ = evaluate.__qualname__ = "evaluate_" + check_id.removeprefix("tls.")
    evaluate.__doc__ = judge.__doc__
    return evaluate


def _missing(endpoint: Endpoint, *commands: str) -> _Finding | None:
    problem = endpoint.failed(*commands)
    if problem is None and "certificate" in commands and not endpoint.chain:
        problem = "the server sent no certificate"
    return None if problem is None else _Finding(CheckStatus.ERROR, problem, {"error": problem})


def _judge_protocols(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Pass: TLS 1.2 and 1.3 only. Warn: TLS 1.0/1.1 offered or no TLS 1.3. Fail: SSL 2.0/3.0
    offered or neither TLS 1.2 nor 1.3."""
    offered = set(e.protocols)
    evidence: dict[str, Any] = {"offered": [p.value for p in e.protocols]}
    if e.scan_errors:
        evidence["not_tested"] = [c for c, _ in e.scan_errors if c.startswith(("SSL", "TLS"))]
    fix = "Offer TLS 1.3 and TLS 1.2 only (Mozilla's intermediate configuration)."
    if bad := sorted(offered & {Protocol.SSL2, Protocol.SSL3}):
        return _Finding(CheckStatus.FAIL, f"{', '.join(bad)} offered", evidence, fix)
    if not offered & {Protocol.TLS12, Protocol.TLS13}:
        return _Finding(CheckStatus.FAIL, "neither TLS 1.2 nor TLS 1.3 offered", evidence, fix)
    if old := sorted(offered & {Protocol.TLS10, Protocol.TLS11}):
        return _Finding(CheckStatus.WARN, f"{', '.join(old)} still offered", evidence, fix)
    if evidence.get("not_tested"):
        return _Finding(CheckStatus.ERROR, f"not tested: {evidence['not_tested']}", evidence)
    if Protocol.TLS13 not in offered:
        return _Finding(CheckStatus.WARN, "TLS 1.3 not offered", evidence, fix)
    return _Finding(CheckStatus.PASS, "TLS 1.2 and 1.3 only", evidence)


def _judge_ciphers(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Fail: export, NULL, anonymous, RC4 or <112-bit suites. Warn: 3DES, suites without
    forward secrecy, or no AEAD suite at all. Pass otherwise (CBC beside AEAD is tolerated)."""
    suites = e.suites
    broken = [
        s.name
        for s in suites
        if "EXPORT" in s.name or s.bits < 112 or s.anonymous or "RC4" in s.name
    ]
    weak_3des = [s.name for s in suites if "3DES" in s.name or "DES_192" in s.name]
    no_fs = [s.name for s in suites if not s.forward_secret]
    evidence: dict[str, Any] = {
        "accepted": [f"{s.protocol.value} {s.name}" for s in suites][:_MAX_LIST],
        "accepted_count": len(suites),
        "broken": sorted(set(broken))[:_MAX_LIST],
        "triple_des": sorted(set(weak_3des))[:_MAX_LIST],
        "without_forward_secrecy": sorted(set(no_fs))[:_MAX_LIST],
        "without_aead": sorted({s.name for s in suites if not s.aead})[:_MAX_LIST],
    }
    fix = "Offer only ECDHE/DHE suites with AES-GCM or ChaCha20-Poly1305 (Mozilla intermediate)."
    if broken:
        return _Finding(
            CheckStatus.FAIL, f"{len(set(broken))} broken cipher suites offered", evidence, fix
        )
    if weak_3des or no_fs or not any(s.aead for s in suites):
        what = (
            "3DES" if weak_3des else "suites without forward secrecy" if no_fs else "no AEAD suite"
        )
        return _Finding(CheckStatus.WARN, f"weak cipher suites offered ({what})", evidence, fix)
    if e.failed(*(p.value for p in Protocol)):
        return _Finding(CheckStatus.ERROR, "some protocol versions could not be tested", evidence)
    return _Finding(CheckStatus.PASS, f"{len(suites)} strong cipher suites", evidence)


def _judge_key(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Pass: a key of at least 2048 RSA-equivalent bits (RSA 2048, EC P-256). Fail below."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    leaf = e.chain[0]
    strength = leaf.rsa_equivalent_bits
    evidence = {"type": leaf.key_type, "bits": leaf.key_bits, "rsa_equivalent_bits": strength}
    if strength < 2048:
        fix = "Use an RSA key of 2048 bits or more, or an ECDSA P-256 key."
        return _Finding(
            CheckStatus.FAIL, f"{leaf.key_type} {leaf.key_bits}-bit key is too weak", evidence, fix
        )
    return _Finding(CheckStatus.PASS, f"{leaf.key_type} {leaf.key_bits}-bit key", evidence)


def _judge_chain(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Pass: the chain as served leads to a trusted root. Fail: untrusted, self-signed, or
    an intermediate certificate is missing."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    evidence: dict[str, Any] = {
        "served": [
            {"subject": c.subject, "issuer": c.issuer, "sha256": c.sha256} for c in e.chain[:8]
        ],
        "complete": e.chain_complete,
        "trust": {store: problem or "trusted" for store, problem in e.trust},
    }
    if not e.chain_complete:
        fix = "Send the intermediate certificates after the server's certificate."
        return _Finding(
            CheckStatus.FAIL, "incomplete chain: an intermediate is not served", evidence, fix
        )
    if not e.trusted:
        self_signed = len(e.chain) == 1 and e.chain[0].self_signed
        what = "self-signed certificate" if self_signed else "certificate not trusted"
        return _Finding(
            CheckStatus.FAIL, what, evidence, "Use a certificate from a publicly trusted CA."
        )
    return _Finding(CheckStatus.PASS, "complete chain to a trusted root", evidence)


def names_match(host: str, cert: Certificate) -> bool:
    """Whether ``cert`` is valid for ``host`` (RFC 6125: subjectAltName only; a wildcard
    stands for exactly one left-most label).

    >>> cert = Certificate("", "", "", datetime.min, datetime.max, "EC", 256, None, False,
    ...                    ("*.example.org", "example.org"))
    >>> names_match("www.example.org", cert), names_match("a.b.example.org", cert)
    (True, False)
    """
    try:
        return str(ipaddress.ip_address(host)) in cert.ip_addresses
    except ValueError:
        pass
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in cert.dns_names):
        if name == host or (
            name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]
        ):
            return True
    return False


def _judge_name(e: Endpoint, s: TlsSnapshot) -> _Finding:
    """Pass: the certificate's subjectAltName covers the host. Fail otherwise."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    leaf = e.chain[0]
    evidence = {
        "host": s.host,
        "dns_names": list(leaf.dns_names),
        "ip_addresses": list(leaf.ip_addresses),
    }
    if names_match(s.host, leaf):
        return _Finding(CheckStatus.PASS, f"certificate covers {s.host}", evidence)
    fix = f"Use a certificate whose subjectAltName includes {s.host}."
    return _Finding(CheckStatus.FAIL, f"certificate does not cover {s.host}", evidence, fix)


def _judge_expiry(e: Endpoint, s: TlsSnapshot) -> _Finding:
    """Pass: more than 30 days left. Warn: 14 to 30 days. Fail: under 14 days, expired or
    not yet valid."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    leaf = e.chain[0]
    days = (leaf.not_after - s.observed_at).total_seconds() / 86400
    evidence = {
        "days_left": int(days),
        "not_after": utc(leaf.not_after),
        "not_before": utc(leaf.not_before),
    }
    fix = "Renew the certificate (automate it, e.g. with ACME) well before it expires."
    if leaf.not_before > s.observed_at:
        return _Finding(
            CheckStatus.FAIL,
            "certificate not valid yet",
            evidence,
            "Check the server's clock and certificate.",
        )
    if days < 0:
        return _Finding(
            CheckStatus.FAIL,
            f"certificate expired on {leaf.not_after.date().isoformat()}",
            evidence,
            fix,
        )
    if days < 14:
        return _Finding(
            CheckStatus.FAIL, f"certificate expires in {math.floor(days)} days", evidence, fix
        )
    if days <= 30:
        return _Finding(
            CheckStatus.WARN, f"certificate expires in {math.floor(days)} days", evidence, fix
        )
    return _Finding(
        CheckStatus.PASS, f"certificate valid for {math.floor(days)} more days", evidence
    )


def _judge_signature(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Pass: SHA-2 (or EdDSA) signatures on the served certificates below the root. Fail: MD5
    or SHA-1."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    signed = [c for c in e.chain if not c.self_signed] or list(e.chain[:1])
    hashes = [c.signature_hash or "eddsa" for c in signed]
    evidence = {"signature_hashes": hashes}
    if weak := sorted({h for h in hashes if h in ("md5", "sha1", "md2", "md4")}):
        fix = "Reissue the certificate (and intermediates) signed with SHA-256 or better."
        return _Finding(CheckStatus.FAIL, f"{'/'.join(weak).upper()} signature", evidence, fix)
    return _Finding(CheckStatus.PASS, f"{hashes[0].upper()} signature", evidence)


def _judge_ocsp(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Pass: an OCSP response is stapled. Info: none (clients ask the CA). Fail: the certificate
    demands stapling (must-staple) and none came."""
    if (missing := _missing(e, "certificate")) is not None:
        return missing
    evidence = {
        "stapled": e.ocsp_stapled,
        "response_status": e.ocsp_status,
        "must_staple": e.must_staple,
    }
    fix = "Enable OCSP stapling (nginx: ssl_stapling on; Apache: SSLUseStapling on)."
    if e.ocsp_stapled and e.ocsp_status == "successful":
        return _Finding(CheckStatus.PASS, "OCSP response stapled", evidence)
    if e.must_staple:
        return _Finding(
            CheckStatus.FAIL,
            "must-staple certificate without a stapled OCSP response",
            evidence,
            fix,
        )
    what = (
        "no OCSP response stapled"
        if not e.ocsp_stapled
        else f"stapled OCSP response: {e.ocsp_status}"
    )
    return _Finding(CheckStatus.INFO, what, evidence, fix)


def _judge_vulnerabilities(e: Endpoint, _s: TlsSnapshot) -> _Finding:
    """Fail: Heartbleed or ROBOT (a weak or strong padding oracle). Pass when both were tested."""
    evidence = {"heartbleed": e.heartbleed, "robot": e.robot}
    found = [
        n for n, hit in (("Heartbleed", e.heartbleed), ("ROBOT", robot_vulnerable(e.robot))) if hit
    ]
    if found:
        fix = "Update the TLS library (OpenSSL) and disable RSA key exchange."
        return _Finding(CheckStatus.FAIL, f"vulnerable to {' and '.join(found)}", evidence, fix)
    if (missing := _missing(e, "heartbleed", "robot")) is not None:
        return missing._replace(evidence={**evidence, "error": missing.summary})
    if e.robot == "UNKNOWN_INCONSISTENT_RESULTS":
        return _Finding(CheckStatus.ERROR, "ROBOT: inconsistent answers", evidence)
    return _Finding(CheckStatus.PASS, "not vulnerable to Heartbleed or ROBOT", evidence)


def robot_vulnerable(value: str | None) -> bool:
    """Whether sslyze's ROBOT result is a (weak or strong) padding oracle."""
    return value is not None and value.startswith("VULNERABLE")


def evaluate_consistency(snapshot: TlsSnapshot) -> CheckResult:
    """T4. Pass: every address serves the same certificate, protocols and cipher suites.
    Fail: they differ. Could not check: an address could not be scanned."""
    check = "tls.consistency"
    if errors := {e.address: e.error for e in snapshot.endpoints if e.error is not None}:
        return could_not_check(check, Area.TLS, "an address could not be scanned", **errors)
    if not snapshot.endpoints:
        return could_not_check(check, Area.TLS, "no address to scan")
    setups = {e.address: _fingerprint(e) for e in snapshot.endpoints}
    evidence = {
        a: {"certificate": c, "protocols": list(p), "suites": len(s)}
        for a, (c, p, s) in setups.items()
    }
    if len(set(setups.values())) == 1:
        many = f"all {len(setups)} addresses" if len(setups) > 1 else "one address"
        return CheckResult(
            check, Area.TLS, CheckStatus.PASS, f"same configuration on {many}", evidence
        )
    return CheckResult(
        check,
        Area.TLS,
        CheckStatus.FAIL,
        "addresses differ in certificate, protocols or suites",
        evidence,
        "Deploy the same certificate and TLS configuration on every address.",
    )


def _fingerprint(e: Endpoint) -> tuple[str | None, tuple[str, ...], frozenset[str]]:
    cert = e.chain[0].sha256 if e.chain else None
    return (
        cert,
        tuple(p.value for p in e.protocols),
        frozenset(f"{s.protocol} {s.name}" for s in e.suites),
    )


evaluate_protocols = _per_endpoint("tls.protocols", _judge_protocols, "rfc8996", "mozilla")
evaluate_ciphers = _per_endpoint("tls.ciphers", _judge_ciphers, "rfc9325", "mozilla")
evaluate_key = _per_endpoint("tls.key", _judge_key, "ssllabs", "mozilla")
evaluate_chain = _per_endpoint("tls.chain", _judge_chain, "rfc5280", "ssllabs")
evaluate_name_match = _per_endpoint("tls.name_match", _judge_name, "rfc6125")
evaluate_expiry = _per_endpoint("tls.expiry", _judge_expiry, "rfc5280")
evaluate_signature = _per_endpoint("tls.signature", _judge_signature, "ssllabs")
evaluate_ocsp_stapling = _per_endpoint("tls.ocsp_stapling", _judge_ocsp, "rfc6066")
evaluate_vulnerabilities = _per_endpoint("tls.vulnerabilities", _judge_vulnerabilities, "ssllabs")

CHECKS: tuple[tuple[str, Callable[[TlsSnapshot], CheckResult]], ...] = (
    ("tls.protocols", evaluate_protocols),
    ("tls.ciphers", evaluate_ciphers),
    ("tls.key", evaluate_key),
    ("tls.chain", evaluate_chain),
    ("tls.name_match", evaluate_name_match),
    ("tls.expiry", evaluate_expiry),
    ("tls.signature", evaluate_signature),
    ("tls.ocsp_stapling", evaluate_ocsp_stapling),
    ("tls.vulnerabilities", evaluate_vulnerabilities),
    ("tls.consistency", evaluate_consistency),
)


def grade_ssllabs(snapshot: TlsSnapshot, results: tuple[CheckResult, ...]) -> SubGrade:
    """``tls_ssllabs_compat``; see :func:`sensors.scanner.tls_grade.grade_ssllabs` (that module
    builds on this one's types, hence the import here)."""
    from sensors.scanner import tls_grade

    return tls_grade.grade_ssllabs(snapshot, results)
