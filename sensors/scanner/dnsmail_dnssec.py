"""The DNSSEC status of a zone, judged by the scanner itself along the chain of trust.

The chain starts at the deepest trust anchor above the zone: the IANA root KSKs (KSK-2017,
key tag 20326, and KSK-2024, 38696) or one of the policy's ``trust_anchors``. At each zone cut
down to the zone it asks (through the scan's resolvers, with ``CD`` set so a validating
resolver does not hide bogus data) the DNSKEY set, which must contain a key matching a trusted
DS and be signed by it, then the child's DS set, which must be signed by those keys; at the
zone itself, its SOA must be signed by its keys. The outcome is:

``secure``
    every link verified at the observation time;
``bogus``
    a signature does not verify or is outside its validity period, no DNSKEY matches a DS, a
    signed zone's records are unsigned, or a denial contradicts itself;
``insecure``
    a delegation has no DS and its parent shows that: an NSEC or NSEC3 record signed by the
    parent proving no DS at the cut (``proof`` ``nsec``/``nsec3``/``nsec3-opt-out``) or, more
    leniently, the parent's signed SOA in a NODATA answer without such a record
    (``signed-soa``); also when the DS records use only algorithms the scanner does not
    implement (RFC 4035 §5.2);
``indeterminate``
    the scanner could not tell: a question went unanswered, or the resolver does not pass
    DNSSEC records on (the trust anchor's DNSKEY set came back without signatures), or a
    denial of a DS came back unsigned. This is *could not check*, never a failure.

>>> sorted(parse_anchors(ROOT_ANCHORS)[dns.name.root], key=lambda d: d.key_tag)[0].key_tag
20326
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rrset

from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError, Reply
from sensors.scanner.dnsmail_sigs import ALGORITHMS, DIGESTS, DNSKEY, SignatureError, verify_rrset

__all__ = ["ROOT_ANCHORS", "DnssecResult", "DnssecStatus", "parse_anchors", "validate_zone"]

# https://data.iana.org/root-anchors/root-anchors.xml
ROOT_ANCHORS: Final = (
    ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
)
_MAX_DEPTH: Final = 12  # labels between the anchor and the zone; real zones have < 8
_NSEC3_OPT_OUT: Final = 1

DS = dns.rdtypes.ANY.DS.DS


class DnssecStatus(enum.StrEnum):
    """RFC 4035 §4.3's four states of validation."""

    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True)
class DnssecResult:
    """A zone's status; the trust anchor used; the links verified, top down; ``link`` the
    failing link (bogus) or the reason (insecure, indeterminate); ``proof`` how an insecure
    delegation was shown."""

    zone: str
    status: DnssecStatus
    anchor: str | None = None
    chain: tuple[str, ...] = ()
    link: str = ""
    proof: str | None = None


class _VerdictError(Exception):
    """The walk ends before the zone with this status."""

    def __init__(self, status: DnssecStatus, link: str, proof: str | None = None) -> None:
        super().__init__(link)
        self.status = status
        self.link = link
        self.proof = proof


def parse_anchors(texts: Iterable[str]) -> dict[dns.name.Name, tuple[DS, ...]]:
    """Trust anchors as DS records (``"zone. [ttl] [IN] DS tag alg digest-type digest"``),
    by zone. Raises ``ValueError`` naming the anchor that does not parse."""
    table: dict[dns.name.Name, list[DS]] = {}
    for text in texts:
        words = text.split()
        try:
            at = [w.upper() for w in words].index("DS")
            name = dns.name.from_text(words[0])
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.DS, " ".join(words[at + 1 :])
            )
        except (ValueError, IndexError, dns.exception.DNSException) as exc:
            raise ValueError(f"trust anchor {text!r} is not 'zone. DS <rdata>'") from exc
        assert isinstance(rdata, DS)  # noqa: S101 - from_text of type DS
        table.setdefault(name, []).append(rdata)
    return {name: tuple(ds) for name, ds in table.items()}


async def validate_zone(
    lookup: Lookup, zone: str, anchors: tuple[str, ...], now: float
) -> DnssecResult:
    """Validate ``zone`` from the deepest anchor above it (the root's and ``anchors``) at
    ``now`` (seconds since the epoch)."""
    apex = dns.name.from_text(zone)
    try:
        table = parse_anchors(ROOT_ANCHORS + anchors)
    except ValueError as exc:
        return DnssecResult(zone, DnssecStatus.INDETERMINATE, link=str(exc))
    anchor = max((n for n in table if apex.is_subdomain(n)), key=len)
    walk = _Walk(lookup, now)
    shown = anchor.to_text()
    try:
        await walk.run(apex, anchor, table[anchor])
    except _VerdictError as verdict:
        return DnssecResult(
            zone, verdict.status, shown, tuple(walk.steps), verdict.link, verdict.proof
        )
    except LookupFailedError as exc:
        return DnssecResult(
            zone, DnssecStatus.INDETERMINATE, shown, tuple(walk.steps), f"no answer: {exc}"
        )
    return DnssecResult(zone, DnssecStatus.SECURE, shown, tuple(walk.steps))


class _Walk:
    """One walk down the chain; ``steps`` records each link verified."""

    def __init__(self, lookup: Lookup, now: float) -> None:
        self.lookup = lookup
        self.now = now
        self.steps: list[str] = []

    async def run(self, apex: dns.name.Name, anchor: dns.name.Name, ds: tuple[DS, ...]) -> None:
        keys = await self._keys(anchor, ds, top=True)
        parent = anchor
        below = apex.relativize(anchor).labels if apex != anchor else ()
        if len(below) > _MAX_DEPTH:
            raise _VerdictError(DnssecStatus.INDETERMINATE, f"{apex} is too deep below {anchor}")
        for depth in range(len(below) - 1, -1, -1):
            name = dns.name.Name(apex.labels[depth:])
            if name != apex and not await self._is_cut(name):
                continue
            reply = await self.lookup.query(name, dns.rdatatype.DS)
            found = reply.rrset(name, dns.rdatatype.DS)
            if found is None:
                self._no_ds(reply, name, parent, keys)
            self._verify(found, reply.sigs(name, dns.rdatatype.DS), keys, parent)
            self.steps.append(f"{name} DS signed by {parent}")
            keys = await self._keys(name, tuple(r for r in found if isinstance(r, DS)), top=False)
            parent = name
        reply = await self.lookup.query(apex, dns.rdatatype.SOA)
        soa = reply.rrset(apex, dns.rdatatype.SOA)
        if soa is None:
            raise _VerdictError(DnssecStatus.INDETERMINATE, f"{apex} SOA: no answer")
        self._verify(soa, reply.sigs(apex, dns.rdatatype.SOA), keys, apex)
        self.steps.append(f"{apex} SOA signed by {apex}")

    def _verify(
        self,
        rrset: dns.rrset.RRset,
        sigs: dns.rrset.RRset | None,
        keys: Iterable[DNSKEY],
        signer: dns.name.Name,
    ) -> None:
        try:
            verify_rrset(rrset, sigs, keys, signer, self.now)
        except SignatureError as exc:
            raise _VerdictError(DnssecStatus.BOGUS, str(exc)) from exc

    async def _is_cut(self, name: dns.name.Name) -> bool:
        reply = await self.lookup.query(name, dns.rdatatype.SOA)
        return reply.rrset(name, dns.rdatatype.SOA) is not None

    async def _keys(
        self, name: dns.name.Name, ds: tuple[DS, ...], *, top: bool
    ) -> tuple[DNSKEY, ...]:
        """The DNSKEY set of ``name``, once a key matching ``ds`` is shown to sign it."""
        usable = [d for d in ds if d.algorithm in ALGORITHMS and d.digest_type in DIGESTS]
        if not usable:
            algorithms = sorted({d.algorithm for d in ds})
            raise _VerdictError(
                DnssecStatus.INSECURE,
                f"the DS records of {name} use only algorithms or digests the scanner does "
                f"not implement ({algorithms})",
                proof="unsupported-algorithm",
            )
        reply = await self.lookup.query(name, dns.rdatatype.DNSKEY)
        dnskeys = reply.rrset(name, dns.rdatatype.DNSKEY)
        if dnskeys is None:
            status = DnssecStatus.INDETERMINATE if top else DnssecStatus.BOGUS
            raise _VerdictError(status, f"{name} has a DS but no DNSKEY came back")
        keys = tuple(k for k in dnskeys if isinstance(k, DNSKEY))
        matching = [k for k in keys if any(_matches(name, k, d) for d in usable)]
        if not matching:
            tags = sorted({d.key_tag for d in usable})
            raise _VerdictError(DnssecStatus.BOGUS, f"no DNSKEY of {name} matches its DS {tags}")
        sigs = reply.sigs(name, dns.rdatatype.DNSKEY)
        if sigs is None and top:
            raise _VerdictError(
                DnssecStatus.INDETERMINATE,
                f"{name} DNSKEY came back without signatures: the resolver does not pass "
                "DNSSEC records on",
            )
        self._verify(dnskeys, sigs, matching, name)
        tags = sorted({dns.dnssec.key_id(k) for k in matching})
        source = "the trust anchor" if top else "its DS"
        self.steps.append(f"{name} DNSKEY signed by a key matching {source} {tags}")
        return keys

    def _no_ds(
        self,
        reply: Reply,
        name: dns.name.Name,
        parent: dns.name.Name,
        keys: tuple[DNSKEY, ...],
    ) -> NoReturn:
        """Raise the verdict on a delegation without DS: insecure when the parent shows it."""
        nsec = reply.rrset(name, dns.rdatatype.NSEC, authority=True)
        if nsec is not None:
            self._verify(nsec, reply.sigs(name, dns.rdatatype.NSEC, authority=True), keys, parent)
            rdata = nsec[0]
            assert isinstance(rdata, dns.rdtypes.ANY.NSEC.NSEC)  # noqa: S101
            self._denies_ds(_types(rdata.windows), name, parent, "nsec")
        for rrset in reply.authority:
            if rrset.rdtype != dns.rdatatype.NSEC3 or rrset.name.parent() != parent:
                continue
            rdata = rrset[0]
            assert isinstance(rdata, dns.rdtypes.ANY.NSEC3.NSEC3)  # noqa: S101
            hashed = dns.dnssec.nsec3_hash(name, rdata.salt, rdata.iterations, rdata.algorithm)
            owner = rrset.name.labels[0].decode("ascii").upper()
            following = base64.b32hexencode(rdata.next).decode("ascii").rstrip("=")
            sigs = reply.sigs(rrset.name, dns.rdatatype.NSEC3, authority=True)
            if owner == hashed:
                self._verify(rrset, sigs, keys, parent)
                self._denies_ds(_types(rdata.windows), name, parent, "nsec3")
            if rdata.flags & _NSEC3_OPT_OUT and _covers(owner, hashed, following):
                self._verify(rrset, sigs, keys, parent)
                raise _VerdictError(
                    DnssecStatus.INSECURE,
                    f"{parent} NSEC3 opt-out covers {name}: an unsigned delegation",
                    proof="nsec3-opt-out",
                )
        soa = reply.rrset(parent, dns.rdatatype.SOA, authority=True)
        if soa is not None and (sigs := reply.sigs(parent, dns.rdatatype.SOA, authority=True)):
            self._verify(soa, sigs, keys, parent)
            raise _VerdictError(
                DnssecStatus.INSECURE,
                f"{parent} answers, signed, that {name} has no DS (no NSEC proof)",
                proof="signed-soa",
            )
        raise _VerdictError(
            DnssecStatus.INDETERMINATE, f"the answer that {name} has no DS is not signed"
        )

    @staticmethod
    def _denies_ds(types: set[int], name: dns.name.Name, parent: dns.name.Name, how: str) -> None:
        if dns.rdatatype.DS in types:
            raise _VerdictError(
                DnssecStatus.BOGUS,
                f"{parent}'s {how.upper()} says {name} has a DS, yet none came back",
            )
        if dns.rdatatype.NS in types and dns.rdatatype.SOA not in types:
            raise _VerdictError(
                DnssecStatus.INSECURE, f"{parent} proves {name} has no DS ({how.upper()})", how
            )
        # An NSEC from the child's side (SOA set) or without NS proves nothing about a DS:
        # fall through to the weaker proofs.


def _matches(name: dns.name.Name, key: DNSKEY, ds: DS) -> bool:
    if key.algorithm != ds.algorithm or dns.dnssec.key_id(key) != ds.key_tag:
        return False
    try:
        made = dns.dnssec.make_ds(name, key, ds.digest_type, validating=True)
    except (ValueError, dns.exception.DNSException):
        return False
    return made.digest == ds.digest


def _types(windows: Iterable[tuple[int, bytes]]) -> set[int]:
    """The types of an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2)."""
    return {
        window * 256 + index * 8 + bit
        for window, bitmap in windows
        for index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (0x80 >> bit)
    }


def _covers(owner: str, hashed: str, following: str) -> bool:
    """Whether ``hashed`` falls strictly between an NSEC3's owner and next hash (the last
    NSEC3 of a zone wraps around to the first)."""
    if owner < following:
        return owner < hashed < following
    return hashed > owner or hashed < following
