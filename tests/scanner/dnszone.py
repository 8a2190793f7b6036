"""A local authoritative DNS server for tests, built on dnslib, and a zone signer.

:class:`ZoneServer` serves zones given as zone-file text (each with its SOA, ``$ORIGIN`` and
``$TTL`` allowed) or as lists of ``dnslib.RR``, over UDP and TCP, on one free port of every
address it is given (any of 127.0.0.0/8 works on Linux without configuration)::

    server = ZoneServer([SITE], addresses=("127.0.0.1", "127.0.1.1")).start()
    policy = loopback_policy(nameservers=(f"127.0.0.1:{server.port}",), dns_port=server.port)
    ...
    server.stop()

One server plays both roles a test needs: the recursive resolver the scanner asks (it answers
questions with RD set as if it had recursed) and every authoritative server named in the
zones' NS records. Answers carry AA; names outside every zone, and every question on a
``refuse_on`` address, get REFUSED. A DS question at a zone's apex is answered from the
parent zone when the server has it. CNAMEs are followed within the served zones. With the DO
bit, answers carry their RRSIGs and negative answers the NSEC record at the name or the one
covering it. Not supported: wildcards, NSEC3 denials, DNAME.

:func:`sign_zone` signs zone-file text with a :class:`ZoneKey` (ECDSA P-256, algorithm 13)
and builds the NSEC chain, the way a signer would; ``tamper`` spoils the signatures over one
record type, and past ``inception``/``expiration`` make expired signatures.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util
import dns.rrset
import dns.zone
import dnslib
import dnslib.server
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sensors.scanner.dnsmail_sigs import signed_data

_MAX_CHASE = 8  # CNAMEs followed in one answer
_DO = 0x8000  # the DNSSEC OK bit in the OPT record's flags


def _key(name: str) -> tuple[str, ...]:
    """Canonical DNS order (RFC 4034 §6.1): compare labels from the right, case-blind."""
    return tuple(reversed(name.lower().rstrip(".").split("."))) if name != "." else ()


def _under(name: str, apex: str) -> bool:
    return apex in (".", name) or name.endswith("." + apex)


class _Zone:
    """One zone's records by owner and type; RRSIGs by owner and the type they cover."""

    def __init__(self, records: Iterable[dnslib.RR]) -> None:
        self.rrs: dict[str, dict[int, list[dnslib.RR]]] = {}
        self.sigs: dict[str, dict[int, list[dnslib.RR]]] = {}
        apex = None
        for rr in records:
            owner = str(rr.rname).lower()
            if rr.rtype == dnslib.QTYPE.RRSIG:
                self.sigs.setdefault(owner, {}).setdefault(rr.rdata.covered, []).append(rr)
                continue
            self.rrs.setdefault(owner, {}).setdefault(rr.rtype, []).append(rr)
            if rr.rtype == dnslib.QTYPE.SOA:
                apex = owner
        if apex is None:
            raise ValueError("a zone needs an SOA record")
        self.apex: str = apex
        self.nsec_owners = sorted(
            (n for n, types in self.rrs.items() if dnslib.QTYPE.NSEC in types), key=_key
        )

    def rrset(self, name: str, rtype: int, do: bool) -> list[dnslib.RR]:
        found = list(self.rrs.get(name, {}).get(rtype, []))
        if found and do:
            found += self.sigs.get(name, {}).get(rtype, [])
        return found

    def cut(self, name: str) -> str | None:
        """The delegation (an NS set below the apex) at or above ``name``, if any."""
        labels = name.split(".")
        for i in range(len(labels) - 1, -1, -1):
            candidate = ".".join(labels[i:]) or "."
            if (
                candidate != self.apex
                and _under(candidate, self.apex)
                and dnslib.QTYPE.NS in self.rrs.get(candidate, {})
            ):
                return candidate
        return None

    def covering_nsec(self, name: str) -> str | None:
        before = [n for n in self.nsec_owners if _key(n) < _key(name)]
        return before[-1] if before else (self.nsec_owners[-1] if self.nsec_owners else None)


class _Resolver(dnslib.server.BaseResolver):  # type: ignore[misc]
    def __init__(self, zones: list[_Zone], refuse_on: frozenset[str]) -> None:
        self.zones = zones
        self.refuse_on = refuse_on

    def resolve(self, request: dnslib.DNSRecord, handler: Any) -> dnslib.DNSRecord:
        reply = request.reply(ra=1, aa=1)
        opts = [rr for rr in request.ar if rr.rtype == dnslib.QTYPE.OPT]
        do = any(rr.ttl & _DO for rr in opts)
        if opts:
            reply.add_ar(dnslib.EDNS0(udp_len=1232, flags="do" if do else ""))
        if handler.server.server_address[0] in self.refuse_on:
            reply.header.aa = 0
            reply.header.rcode = dnslib.RCODE.REFUSED
            return reply
        self._answer(reply, str(request.q.qname).lower(), request.q.qtype, do, 0)
        return reply

    def _zone(self, name: str, qtype: int) -> _Zone | None:
        served = sorted((z for z in self.zones if _under(name, z.apex)), key=lambda z: -len(z.apex))
        if qtype == dnslib.QTYPE.DS and served and served[0].apex == name and len(served) > 1:
            return served[1]  # a DS lives in the parent zone
        return served[0] if served else None

    def _answer(
        self, reply: dnslib.DNSRecord, name: str, qtype: int, do: bool, chased: int
    ) -> None:
        zone = self._zone(name, qtype)
        if zone is None:
            if chased == 0:
                reply.header.aa = 0
                reply.header.rcode = dnslib.RCODE.REFUSED
            return
        cut = zone.cut(name)
        if cut is not None and not (qtype == dnslib.QTYPE.DS and name == cut):
            reply.header.aa = 0  # a referral
            reply.add_auth(*zone.rrset(cut, dnslib.QTYPE.NS, False))
            reply.add_auth(*zone.rrset(cut, dnslib.QTYPE.DS, do))
            return
        node = zone.rrs.get(name)
        if node is not None and qtype in node:
            reply.add_answer(*zone.rrset(name, qtype, do))
            return
        if node is not None and dnslib.QTYPE.CNAME in node and chased < _MAX_CHASE:
            reply.add_answer(*zone.rrset(name, dnslib.QTYPE.CNAME, do))
            target = str(node[dnslib.QTYPE.CNAME][0].rdata.label).lower()
            self._answer(reply, target, qtype, do, chased + 1)
            return
        exists = node is not None or any(n.endswith("." + name) for n in zone.rrs)
        if not exists:
            reply.header.rcode = dnslib.RCODE.NXDOMAIN
        reply.add_auth(*zone.rrset(zone.apex, dnslib.QTYPE.SOA, do))
        if do:
            nsec = name if node is not None and dnslib.QTYPE.NSEC in node else None
            owner = nsec or zone.covering_nsec(name)
            if owner is not None:
                reply.add_auth(*zone.rrset(owner, dnslib.QTYPE.NSEC, do))


class _Quiet(dnslib.server.DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("-request,-reply,-truncated,-error")


@dataclass
class ZoneServer:
    """Serves ``zones`` on every one of ``addresses`` at one port (UDP and TCP)."""

    zones: Sequence[str | Sequence[dnslib.RR]]
    addresses: tuple[str, ...] = ("127.0.0.1",)
    refuse_on: tuple[str, ...] = ()
    port: int = 0

    def __post_init__(self) -> None:
        parsed = [_Zone(dnslib.RR.fromZone(z) if isinstance(z, str) else z) for z in self.zones]
        self._resolver = _Resolver(parsed, frozenset(self.refuse_on))
        self._servers: list[tuple[Any, threading.Thread]] = []

    def start(self) -> ZoneServer:
        for _ in range(20):  # another process may take the free port between probe and bind
            port = _free_port(self.addresses[0])
            try:
                self._bind(port)
            except OSError:
                self.stop()
                continue
            self.port = port
            return self
        raise OSError("no free port for the DNS server")

    def _bind(self, port: int) -> None:
        for address in self.addresses:
            for tcp in (False, True):
                server = dnslib.server.DNSServer(
                    self._resolver, address=address, port=port, tcp=tcp, logger=_Quiet()
                ).server
                thread = threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                )
                self._servers.append((server, thread))
                thread.start()

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join()
        self._servers.clear()


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class ZoneKey:
    """An ECDSA P-256 key (DNSSEC algorithm 13) as a KSK/ZSK in one (flags 257)."""

    private: ec.EllipticCurvePrivateKey
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY

    @classmethod
    def generate(cls) -> ZoneKey:
        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        raw = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
        dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN, dns.rdatatype.DNSKEY, 257, 3, 13, raw
        )
        return cls(private, dnskey)

    def ds(self, zone: str) -> str:
        """The DS record of this key for ``zone``, as a trust anchor: ``"zone. DS ..."``."""
        ds = dns.dnssec.make_ds(zone, self.dnskey, "SHA256")
        return f"{dns.name.from_text(zone)} DS {ds}"

    def ds_rdata(self, zone: str) -> str:
        """Only the DS RDATA, for a parent zone's file."""
        return str(dns.dnssec.make_ds(zone, self.dnskey, "SHA256"))

    def sign(
        self, rrset: dns.rrset.RRset, signer: dns.name.Name, inception: int, expiration: int
    ) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        labels = len(rrset.name) - 1 - (1 if rrset.name.is_wild() else 0)
        template = dns.rdtypes.ANY.RRSIG.RRSIG(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN,
            dns.rdatatype.RRSIG,
            rrset.rdtype,
            13,
            labels,
            rrset.ttl,
            expiration,
            inception,
            dns.dnssec.key_id(self.dnskey),
            signer,
            b"",
        )
        der = self.private.sign(signed_data(rrset, template), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return cast(dns.rdtypes.ANY.RRSIG.RRSIG, template.replace(signature=signature))


def sign_zone(
    text: str,
    key: ZoneKey,
    *,
    inception: datetime | None = None,
    expiration: datetime | None = None,
    tamper: str | None = None,
) -> str:
    """``text`` (with ``$ORIGIN``) signed with ``key``: DNSKEY added, NSEC chain built, every
    authoritative RRset signed (at a delegation only DS and NSEC). ``tamper`` names a type
    (``"SOA"``) whose signatures get one byte flipped."""
    now = datetime.now(UTC)
    start = int((inception or now - timedelta(hours=1)).timestamp())
    end = int((expiration or now + timedelta(days=7)).timestamp())
    zone = dns.zone.from_text(text, relativize=False)
    origin = zone.origin
    assert origin is not None
    zone.find_rdataset(origin, dns.rdatatype.DNSKEY, create=True).add(key.dnskey, 3600)
    names = sorted(zone.nodes)
    cuts = [n for n in names if n != origin and zone.get_rdataset(n, dns.rdatatype.NS)]
    secure = [n for n in names if not any(n.is_subdomain(c) and n != c for c in cuts)]
    ttl = zone.get_soa().minimum
    for i, name in enumerate(secure):
        types = [r.rdtype for r in zone.nodes[name].rdatasets]
        types += [dns.rdatatype.NSEC, dns.rdatatype.RRSIG]
        windows = dns.rdtypes.util.Bitmap.from_rdtypes(types).windows
        following = secure[(i + 1) % len(secure)]
        nsec = dns.rdtypes.ANY.NSEC.NSEC(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN, dns.rdatatype.NSEC, following, windows
        )
        zone.find_rdataset(name, dns.rdatatype.NSEC, create=True).add(nsec, ttl)
    for name in secure:
        for rdataset in list(zone.nodes[name].rdatasets):
            if name in cuts and rdataset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC):
                continue
            rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            rrsig = key.sign(rrset, origin, start, end)
            if tamper is not None and dns.rdatatype.from_text(tamper) == rdataset.rdtype:
                spoiled = bytes([rrsig.signature[0] ^ 0xFF]) + rrsig.signature[1:]
                rrsig = cast(dns.rdtypes.ANY.RRSIG.RRSIG, rrsig.replace(signature=spoiled))
            sigs = zone.find_rdataset(name, dns.rdatatype.RRSIG, rdataset.rdtype, create=True)
            sigs.add(rrsig, rdataset.ttl)
    return zone.to_text(relativize=False)
