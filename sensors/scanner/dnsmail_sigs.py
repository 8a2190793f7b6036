"""Checking one DNSSEC signature (RFC 4034 §3.1.8.1, RFC 4035 §5.3.1) with ``cryptography``.

dnspython supplies the canonical forms (owner names, RDATA, key tags); the signature itself is
checked here because dnspython 2.9's ``dns.dnssec.validate`` needs cryptography ≥ 50, which the
TLS checks' sslyze does not allow (< 47). The rules are those of ``dns.dnssec.validate_rrsig``:
the RRSIG covers the RRset's type, is within its validity period at the observation time, names
a zone key of its algorithm and key tag, and verifies over the canonical RRset.

>>> sorted(ALGORITHMS)[:3]
[5, 7, 8]
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["ALGORITHMS", "DIGESTS", "SignatureError", "signed_data", "verify_rrset"]

# RFC 8624 §3.1: what a validator implements. RSAMD5, DSA and GOST are not: a zone signed only
# with them is treated as unsigned (RFC 4035 §5.2), never as bogus.
ALGORITHMS: Final = {
    5: "RSASHA1",
    7: "RSASHA1-NSEC3-SHA1",
    8: "RSASHA256",
    10: "RSASHA512",
    13: "ECDSAP256SHA256",
    14: "ECDSAP384SHA384",
    15: "ED25519",
    16: "ED448",
}
# DS digest types: SHA-1, SHA-256, SHA-384 (RFC 8624 §3.3; GOST is not implemented).
DIGESTS: Final = frozenset({1, 2, 4})
_ZONE_KEY: Final = 0x0100  # DNSKEY flags bit 7 (RFC 4034 §2.1.1)
_RRSIG_FIXED: Final = 18  # type covered .. key tag: the RRSIG RDATA before the signer's name

DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG


class SignatureError(Exception):
    """A signature that does not prove its RRset; the message says why (expired, no such
    key, does not verify)."""


def signed_data(rrset: dns.rrset.RRset, rrsig: RRSIG) -> bytes:
    """What ``rrsig`` signs: its RDATA without the signature, then the RRset in canonical form
    and order (RFC 4034 §3.1.8.1, §6), a wildcard owner rebuilt from the label count."""
    name = rrset.name
    labels = len(name) - 1 - (1 if name.is_wild() else 0)
    if rrsig.labels > labels:
        raise SignatureError(f"the RRSIG counts {rrsig.labels} labels, {name} has {labels}")
    if rrsig.labels < labels:
        name = dns.name.Name((b"*", *name.labels[-(rrsig.labels + 1) :]))
    wire = rrsig.to_wire()
    assert wire is not None  # noqa: S101 - to_wire without a file returns bytes
    data = wire[:_RRSIG_FIXED] + rrsig.signer.to_digestable()
    owner = name.to_digestable()
    fixed = struct.pack("!HHI", rrset.rdtype, rrset.rdclass, rrsig.original_ttl)
    for rdata in sorted(r.to_digestable() for r in rrset):
        data += owner + fixed + struct.pack("!H", len(rdata)) + rdata
    return data


def verify_rrset(
    rrset: dns.rrset.RRset,
    sigs: dns.rrset.RRset | None,
    keys: Iterable[DNSKEY],
    signer: dns.name.Name,
    now: float,
) -> None:
    """Return if one of ``sigs``, made by ``signer`` with one of ``keys``, proves ``rrset`` at
    ``now`` (seconds since the epoch); raise :class:`SignatureError` saying why none does."""
    if not sigs:
        raise SignatureError(f"{_label(rrset)} is not signed")
    keys = tuple(keys)
    reasons: list[str] = []
    for sig in sigs:
        assert isinstance(sig, RRSIG)  # noqa: S101 - an RRSIG RRset holds RRSIG rdata
        if sig.signer != signer:
            reasons.append(f"signed by {sig.signer}, not by {signer}")
            continue
        try:
            _verify_one(rrset, sig, keys, now)
        except SignatureError as exc:
            reasons.append(str(exc))
        else:
            return
    raise SignatureError(f"{_label(rrset)}: {'; '.join(dict.fromkeys(reasons))}")


def _label(rrset: dns.rrset.RRset) -> str:
    return f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}"


def _verify_one(rrset: dns.rrset.RRset, sig: RRSIG, keys: tuple[DNSKEY, ...], now: float) -> None:
    if sig.type_covered != rrset.rdtype:
        raise SignatureError("the RRSIG covers another type")
    if sig.expiration < now:
        raise SignatureError(f"the signature (key {sig.key_tag}) expired {_when(sig.expiration)}")
    if sig.inception > now:
        raise SignatureError(
            f"the signature (key {sig.key_tag}) is valid from {_when(sig.inception)}"
        )
    if sig.algorithm not in ALGORITHMS:
        raise SignatureError(f"algorithm {sig.algorithm} is not implemented")
    candidates = [
        key
        for key in keys
        if key.algorithm == sig.algorithm
        and key.protocol == 3  # RFC 4034 §2.1.2: any other value is not a DNSSEC key
        and key.flags & _ZONE_KEY
        and dns.dnssec.key_id(key) == sig.key_tag
    ]
    if not candidates:
        raise SignatureError(f"no trusted key has tag {sig.key_tag} (algorithm {sig.algorithm})")
    data = signed_data(rrset, sig)
    for key in candidates:
        try:
            _check(key, sig.signature, data)
        except (InvalidSignature, ValueError):  # ValueError: a malformed key or signature
            continue
        return
    raise SignatureError(f"the signature (key {sig.key_tag}) does not verify")


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(key: DNSKEY, signature: bytes, data: bytes) -> None:
    """Raise ``InvalidSignature`` (or ``ValueError``) unless ``signature`` verifies."""
    raw = key.key
    if key.algorithm in (5, 7, 8, 10):  # RFC 3110 key: exponent length, exponent, modulus
        if not raw:
            raise ValueError("empty RSA key")
        length, start = (int.from_bytes(raw[1:3]), 3) if raw[0] == 0 else (raw[0], 1)
        exponent = int.from_bytes(raw[start : start + length])
        modulus = int.from_bytes(raw[start + length :])
        digest: hashes.HashAlgorithm = {
            5: hashes.SHA1(),  # noqa: S303 - RSASHA1 (5, 7) is SHA-1 by definition
            7: hashes.SHA1(),  # noqa: S303
            8: hashes.SHA256(),
            10: hashes.SHA512(),
        }[key.algorithm]
        public = rsa.RSAPublicNumbers(exponent, modulus).public_key()
        public.verify(signature, data, padding.PKCS1v15(), digest)
    elif key.algorithm in (13, 14):  # RFC 6605: key is x | y, signature r | s
        size, curve, ec_hash = (
            (32, ec.SECP256R1(), hashes.SHA256())
            if key.algorithm == 13
            else (48, ec.SECP384R1(), hashes.SHA384())
        )
        if len(signature) != 2 * size:
            raise InvalidSignature
        point = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + raw)
        der = encode_dss_signature(
            int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
        )
        point.verify(der, data, ec.ECDSA(ec_hash))
    elif key.algorithm == 15:  # RFC 8080
        ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(signature, data)
    elif key.algorithm == 16:
        ed448.Ed448PublicKey.from_public_bytes(raw).verify(signature, data)
    else:
        raise ValueError(f"algorithm {key.algorithm} is not implemented")
