"""The SSL-Labs-compatible TLS grade (``tls_ssllabs_compat``, methodology TNM-1, T1), a pure
function of plain values so that every threshold and cap can be tested with made-up endpoints.

How an endpoint is graded (SSL Labs rating guide 2009r as the methodology states it):

* a certificate that is not trusted, expired or self-signed gives ``T``; one that does not
  cover the host name gives ``M`` (``T`` first when both);
* otherwise the score is ``0.3·protocol + 0.3·key exchange + 0.4·cipher``, each the mean of the
  best and the worst value offered, and the letter follows from it (A ≥ 80, B ≥ 65, C ≥ 50,
  D ≥ 35, E ≥ 20, else F);
* caps lower the letter (the table in :func:`_caps`, in the methodology's order); ``A+`` needs an
  ``A`` with no cap, no warning and HSTS of at least 180 days.

Several endpoints: the worst one counts; the caps reported are all the endpoints' caps.

>>> suite = Suite(Protocol.TLS13, cipher_bits=256, kx_bits=3072, forward_secret=True, aead=True)
>>> facts = EndpointFacts(frozenset({Protocol.TLS12, Protocol.TLS13}), (suite,), key_bits=3072)
>>> grade = endpoint_grade(facts, hsts_max_age=31536000, warnings=False)
>>> grade.letter, grade.score, grade.caps
('A+', 97.0, ())
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sensors.scanner.result import CheckResult, CheckStatus, SubGrade
from sensors.scanner.tls import Endpoint, Protocol, TlsSnapshot, names_match, robot_vulnerable

__all__ = [
    "GRADE_NAME",
    "HSTS_MIN_AGE",
    "EndpointFacts",
    "EndpointGrade",
    "Suite",
    "combine",
    "endpoint_grade",
    "grade_ssllabs",
]

GRADE_NAME: Final = "tls_ssllabs_compat"
HSTS_MIN_AGE: Final = 180 * 24 * 3600  # "6 months", as SSL Labs counts it for A+


_PROTOCOL_SCORE: Final = {
    Protocol.SSL2: 0,
    Protocol.SSL3: 80,
    Protocol.TLS10: 90,
    Protocol.TLS11: 95,
    Protocol.TLS12: 100,
    Protocol.TLS13: 100,
}
# (upper bound exclusive, score): the rating guide's key-exchange and cipher-strength tables.
_KEY_SCORE: Final = ((512, 20), (1024, 40), (2048, 80), (4096, 90))
_CIPHER_SCORE: Final = ((128, 20), (256, 80))
_LETTERS: Final = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))
# Best first; T and M rank below F because they stand for "whatever the configuration".
ORDER: Final = ("A+", "A", "A-", "B", "C", "D", "E", "F", "M", "T")


@dataclass(frozen=True)
class Suite:
    """One accepted cipher suite: the protocol it was accepted with, the cipher's key bits,
    the key exchange's strength in RSA-equivalent bits (0 for anonymous), and its flags."""

    protocol: Protocol
    cipher_bits: int
    kx_bits: int
    forward_secret: bool = False
    aead: bool = False
    export: bool = False
    rc4: bool = False
    triple_des: bool = False


@dataclass(frozen=True)
class EndpointFacts:
    """What the grade needs to know about one endpoint. ``key_bits`` is the leaf key in
    RSA-equivalent bits; certificate flags default to a good certificate."""

    protocols: frozenset[Protocol]
    suites: tuple[Suite, ...]
    key_bits: int
    trusted: bool = True
    expired: bool = False
    self_signed: bool = False
    name_match: bool = True
    chain_complete: bool = True
    md5_signature: bool = False
    heartbleed: bool = False
    robot: bool = False


@dataclass(frozen=True)
class EndpointGrade:
    """An endpoint's letter, its numeric score and the caps (``"<letter>: <reason>"``)."""

    letter: str
    score: float
    caps: tuple[str, ...]


def _table(bits: int, table: tuple[tuple[int, int], ...]) -> int:
    return next((score for bound, score in table if bits < bound), 100)


def _mean_of_extremes(values: Sequence[int]) -> float:
    return (max(values) + min(values)) / 2


def _caps(facts: EndpointFacts, hsts_max_age: int | None) -> list[str]:
    p, suites = facts.protocols, facts.suites
    tls11_up = {Protocol.TLS11, Protocol.TLS12, Protocol.TLS13}
    rules = (
        ("F", "SSL 2.0 offered", Protocol.SSL2 in p),
        ("F", "vulnerable to Heartbleed", facts.heartbleed),
        ("F", "vulnerable to ROBOT", facts.robot),
        (
            "F",
            "export or <112-bit cipher suites",
            any(s.export or s.cipher_bits < 112 for s in suites),
        ),
        ("F", "MD5 certificate signature", facts.md5_signature),
        ("F", "key shorter than 1024 bits", facts.key_bits < 1024),
        ("C", "no TLS 1.2", Protocol.TLS12 not in p),
        (
            "C",
            "3DES with TLS 1.1 or newer",
            any(s.triple_des and s.protocol in tls11_up for s in suites),
        ),
        (
            "C",
            "RC4 with TLS 1.1 or 1.2",
            any(s.rc4 and s.protocol in {Protocol.TLS11, Protocol.TLS12} for s in suites),
        ),
        ("B", "TLS 1.0 or 1.1 offered", bool(p & {Protocol.TLS10, Protocol.TLS11})),
        ("B", "no forward secrecy", not any(s.forward_secret for s in suites)),
        ("B", "no AEAD cipher suites", not any(s.aead for s in suites)),
        ("B", "RC4 offered", any(s.rc4 for s in suites)),
        ("B", "key shorter than 2048 bits", facts.key_bits < 2048),
        ("B", "incomplete certificate chain", not facts.chain_complete),
        ("A-", "no TLS 1.3", Protocol.TLS13 not in p),
        ("A-", "HSTS missing or shorter than 180 days", (hsts_max_age or 0) < HSTS_MIN_AGE),
    )
    return [f"{letter}: {reason}" for letter, reason, hit in rules if hit]


def endpoint_grade(
    facts: EndpointFacts, *, hsts_max_age: int | None, warnings: bool
) -> EndpointGrade:
    """Grade one endpoint (see the module docstring). ``warnings`` is whether any TLS check
    warned or failed on it, which rules out ``A+``.

    >>> rsa = Suite(Protocol.TLS12, cipher_bits=128, kx_bits=2048)
    >>> endpoint_grade(EndpointFacts(frozenset({Protocol.TLS12}), (rsa,), key_bits=2048),
    ...                hsts_max_age=None, warnings=False).letter
    'B'
    """
    if not facts.protocols or not facts.suites:
        raise ValueError("an endpoint without an accepted protocol and cipher suite is not graded")
    protocol = _mean_of_extremes([_PROTOCOL_SCORE[p] for p in facts.protocols])
    kx = _mean_of_extremes([_table(s.kx_bits, _KEY_SCORE) for s in facts.suites])
    cipher = _mean_of_extremes([_table(s.cipher_bits, _CIPHER_SCORE) for s in facts.suites])
    score = round(0.3 * protocol + 0.3 * kx + 0.4 * cipher, 2)
    letter = next((name for bound, name in _LETTERS if score >= bound), "F")
    caps = _caps(facts, hsts_max_age)
    for cap in caps:
        letter = max(letter, cap.split(":", 1)[0], key=ORDER.index)
    if letter == "A" and not caps and not warnings:
        letter = "A+"
    trust = [
        reason
        for reason, hit in (
            ("certificate not trusted", not facts.trusted),
            ("certificate expired or not yet valid", facts.expired),
            ("self-signed certificate", facts.self_signed),
        )
        if hit
    ]
    if trust:
        return EndpointGrade("T", score, tuple(f"T: {r}" for r in trust) + tuple(caps))
    if not facts.name_match:
        return EndpointGrade("M", score, ("M: certificate name mismatch", *caps))
    return EndpointGrade(letter, score, tuple(caps))


def combine(grades: Sequence[EndpointGrade], *, reason: str = "") -> SubGrade:
    """The sub-grade of several endpoints: the worst letter and its score, every cap once.

    >>> b = EndpointGrade("B", 90.0, ("B: no AEAD cipher suites",))
    >>> combine([EndpointGrade("A", 90.0, ()), b]).grade
    'B'
    """
    if not grades:
        return SubGrade(GRADE_NAME, None, reason=reason or "no endpoint could be graded")
    worst = max(grades, key=lambda g: (ORDER.index(g.letter), -g.score))
    caps = tuple(dict.fromkeys(cap for g in grades for cap in g.caps))
    return SubGrade(GRADE_NAME, worst.letter, worst.score, caps, reason)


# ------------------------------------------------------------------------- from a snapshot


def hsts_max_age(header: str | None) -> int | None:
    """The max-age of a Strict-Transport-Security value, or None if absent or invalid.

    >>> hsts_max_age('max-age="31536000"; includeSubDomains'), hsts_max_age("includeSubDomains")
    (31536000, None)
    """
    found = re.search(r'(?:^|;)\s*max-age\s*=\s*"?(\d+)"?\s*(?:;|$)', header or "", re.IGNORECASE)
    return int(found.group(1)) if found else None


def endpoint_facts(e: Endpoint, host: str, at: datetime) -> EndpointFacts | None:
    """What the grade needs from an endpoint; None if what it needs could not be scanned."""
    if e.error is not None or not e.chain or not e.suites or e.failed(*(p.value for p in Protocol)):
        return None
    leaf = e.chain[0]
    key = leaf.rsa_equivalent_bits
    suites = tuple(
        Suite(
            s.protocol,
            s.bits,
            0 if s.anonymous else (s.kx_bits if s.forward_secret and s.kx_bits else key),
            forward_secret=s.forward_secret,
            aead=s.aead,
            export="EXPORT" in s.name,
            rc4="RC4" in s.name,
            triple_des="3DES" in s.name or "DES_192" in s.name,
        )
        for s in e.suites
    )
    return EndpointFacts(
        frozenset(e.protocols),
        suites,
        key,
        trusted=e.trusted,
        expired=not leaf.not_before <= at <= leaf.not_after,
        self_signed=len(e.chain) == 1 and leaf.self_signed,
        name_match=names_match(host, leaf),
        chain_complete=bool(e.chain_complete),
        md5_signature=any(c.signature_hash == "md5" for c in e.chain if not c.self_signed),
        heartbleed=bool(e.heartbleed),
        robot=robot_vulnerable(e.robot),
    )


def grade_ssllabs(snapshot: TlsSnapshot, results: Iterable[CheckResult]) -> SubGrade:
    """``tls_ssllabs_compat``: each scanned endpoint graded by
    :func:`~sensors.scanner.tls_grade.endpoint_grade`, the worst counting. A warning or
    failure of any TLS check rules out A+; an unreadable HSTS header counts as missing."""
    warned = any(r.status in (CheckStatus.WARN, CheckStatus.FAIL) for r in results)
    max_age = hsts_max_age(snapshot.hsts)
    facts = [endpoint_facts(e, snapshot.host, snapshot.observed_at) for e in snapshot.endpoints]
    grades = [endpoint_grade(f, hsts_max_age=max_age, warnings=warned) for f in facts if f]
    missing = len(facts) - len(grades)
    reason = f"{missing} of {len(facts)} addresses could not be graded" if missing else ""
    return combine(grades, reason=reason)
