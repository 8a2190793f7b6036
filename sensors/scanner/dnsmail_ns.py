"""The zone's name servers: the NS set, each server's addresses, and each address asked
directly (at the policy's ``dns_port``) for the zone's SOA, to see whether it answers and
whether it answers with authority (the ``AA`` flag and the SOA).

Diversity is measured by network prefix, IPv4 /24 and IPv6 /48 (the longest prefixes routed
between networks): the scanner has no ASN data offline, so two servers in different /24s of
one provider count as two networks. An address the scan policy refuses (a private or loopback
address in a public zone) is recorded and not asked.

>>> network("192.0.2.53"), network("2001:db8:1:2::53")
('192.0.2.0/24', '2001:db8:1::/48')
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Final

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.NS

from sensors.errors import TargetRefusedError
from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError
from sensors.scanner.policy import ScanPolicy

__all__ = ["NameServer", "NameServers", "ServerAddress", "check_nameservers", "network"]

MAX_SERVERS: Final = 13  # as many as fit a classic 512-byte referral; more is not diversity
MAX_ADDRESSES: Final = 4  # per server and family

AUTHORITATIVE: Final = "authoritative"
NO_ANSWER: Final = "no answer"
REFUSED_BY_POLICY: Final = "not asked (address refused by the scan policy)"


@dataclass(frozen=True)
class ServerAddress:
    """One address of a name server and how it answered: ``authoritative``, ``no answer``,
    ``not authoritative``, an rcode (``REFUSED``), or not asked."""

    address: str
    state: str

    @property
    def responsive(self) -> bool:
        return self.state == AUTHORITATIVE


@dataclass(frozen=True)
class NameServer:
    """A name server of the zone, its addresses, and ``error`` when it has none: because the
    name has no address (``resolved``), or because the lookup failed (not ``resolved``)."""

    name: str
    addresses: tuple[ServerAddress, ...] = ()
    error: str | None = None
    resolved: bool = True

    @property
    def responsive(self) -> bool:
        return any(a.responsive for a in self.addresses)


@dataclass(frozen=True)
class NameServers:
    """The NS set of ``zone`` (``error``: it could not be fetched)."""

    zone: str
    servers: tuple[NameServer, ...] = ()
    error: str | None = None

    @property
    def responsive(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servers if s.responsive)

    @property
    def networks(self) -> tuple[str, ...]:
        """The distinct prefixes of the addresses that answered with authority."""
        found = (a.address for s in self.servers for a in s.addresses if a.responsive)
        return tuple(sorted({network(a) for a in found}))

    @property
    def none_reached(self) -> bool:
        """Whether nothing was observed of the servers: no address answered at all (timeouts,
        unreachable, not asked) and no name was seen without an address. Then the scanner's
        own network, not the zone, is the likely cause."""
        states = [a.state for s in self.servers for a in s.addresses]
        addressless = any(s.resolved and not s.addresses for s in self.servers)
        return not addressless and all(s in (NO_ANSWER, REFUSED_BY_POLICY) for s in states)


def network(address: str) -> str:
    """The prefix an address counts in for diversity: IPv4 /24, IPv6 /48."""
    ip = ipaddress.ip_address(address)
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))


async def check_nameservers(lookup: Lookup, zone: str, policy: ScanPolicy) -> NameServers:
    """The NS set of ``zone`` with each server's addresses asked directly."""
    apex = dns.name.from_text(zone)
    try:
        reply = await lookup.query(apex, dns.rdatatype.NS)
    except LookupFailedError as exc:
        return NameServers(zone, error=str(exc))
    ns = reply.rrset(apex, dns.rdatatype.NS)
    names = sorted(
        {r.target for r in (ns or ()) if isinstance(r, dns.rdtypes.ANY.NS.NS)},
    )[:MAX_SERVERS]
    servers = await asyncio.gather(*(_server(lookup, apex, n, policy) for n in names))
    return NameServers(zone, tuple(servers))


async def _server(
    lookup: Lookup, zone: dns.name.Name, name: dns.name.Name, policy: ScanPolicy
) -> NameServer:
    shown = name.to_text(omit_final_dot=True)
    addresses: list[str] = []
    try:
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found = (await lookup.query(name, rdtype)).first(rdtype)
            addresses.extend(r.to_text() for r in list(found or ())[:MAX_ADDRESSES])
    except LookupFailedError as exc:
        return NameServer(shown, error=str(exc), resolved=False)
    if not addresses:
        return NameServer(shown, error="the name has no address")
    states = await asyncio.gather(*(_ask(lookup, zone, a, policy) for a in addresses))
    return NameServer(
        shown, tuple(ServerAddress(a, s) for a, s in zip(addresses, states, strict=True))
    )


async def _ask(lookup: Lookup, zone: dns.name.Name, address: str, policy: ScanPolicy) -> str:
    try:
        policy.check_address(ipaddress.ip_address(address), address)
    except TargetRefusedError:
        return REFUSED_BY_POLICY
    try:
        reply = await lookup.ask(address, zone, dns.rdatatype.SOA)
    except LookupFailedError:
        return NO_ANSWER
    if reply.rcode != dns.rcode.NOERROR:
        return dns.rcode.to_text(reply.rcode)
    if not reply.authoritative or reply.rrset(zone, dns.rdatatype.SOA) is None:
        return "not authoritative"
    return AUTHORITATIVE
