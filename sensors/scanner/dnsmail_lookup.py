"""Asking DNS questions for the DNS/e-mail checks.

:class:`Lookup` asks the scan's resolvers (the policy's ``nameservers`` or the system's)
recursively, always with the DNSSEC records (``DO``) and with checking disabled (``CD``), so
that a validating resolver hands over data it thinks bogus and the scanner can judge it
itself; or it asks one authoritative server directly, at the policy's ``dns_port``, without
recursion. Each answer is a :class:`Reply`. Every question has the resolver's timeouts, and a
scan asks at most ``budget`` questions: a zone cannot make the scanner ask forever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = ["Lookup", "LookupFailedError", "Reply"]

# A scan's questions: SPF needs at most ~25 (10 terms, their A/AAAA, includes' TXT), CAA one
# per label, DNSSEC about three per zone cut, the name servers three per server: 300 leaves
# room for all of them on a deep name and still stops a zone built to make the scanner loop.
MAX_QUESTIONS: Final = 300
# EDNS payload of the DNS Flag Day 2020: large enough for signed answers, small enough not to
# be fragmented; a larger answer comes back truncated and is asked again over TCP.
_PAYLOAD: Final = 1232


class LookupFailedError(Exception):
    """A question got no usable answer: every server timed out or failed (SERVFAIL, REFUSED,
    unreachable), or the scan's budget of questions is spent. Never leaves the DNS fetch: it
    becomes a check that could not be done."""


@dataclass(frozen=True)
class Reply:
    """One answer: its rcode, whether the server said it is authoritative (``AA``), and its
    answer and authority sections."""

    rcode: dns.rcode.Rcode
    authoritative: bool
    answer: tuple[dns.rrset.RRset, ...]
    authority: tuple[dns.rrset.RRset, ...]

    @property
    def nxdomain(self) -> bool:
        return self.rcode == dns.rcode.NXDOMAIN

    def rrset(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, authority: bool = False
    ) -> dns.rrset.RRset | None:
        """The RRset of ``name`` and ``rdtype`` in the answer (or authority) section."""
        section = self.authority if authority else self.answer
        return next((r for r in section if r.name == name and r.rdtype == rdtype), None)

    def sigs(
        self, name: dns.name.Name, covered: dns.rdatatype.RdataType, *, authority: bool = False
    ) -> dns.rrset.RRset | None:
        """The RRSIGs over ``name``/``covered`` in the answer (or authority) section."""
        section = self.authority if authority else self.answer
        return next(
            (
                r
                for r in section
                if r.name == name and r.rdtype == dns.rdatatype.RRSIG and r.covers == covered
            ),
            None,
        )

    def first(self, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        """The first RRset of ``rdtype`` in the answer, whatever its owner (after a CNAME)."""
        return next((r for r in self.answer if r.rdtype == rdtype), None)

    def has_cname(self, name: dns.name.Name) -> bool:
        return self.rrset(name, dns.rdatatype.CNAME) is not None


def _reply(message: dns.message.Message) -> Reply:
    return Reply(
        rcode=message.rcode(),
        authoritative=bool(message.flags & dns.flags.AA),
        answer=tuple(message.answer),
        authority=tuple(message.authority),
    )


class Lookup:
    """The DNS questions of one scan, through ``resolver``'s servers or straight to a server.

    Successful recursive answers are kept for the scan, so that SPF includes, DMARC and the
    DNSSEC chain asking the same question cost one query.
    """

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        dns_port: int,
        *,
        budget: int = MAX_QUESTIONS,
    ) -> None:
        self._servers = _servers(resolver)
        self._timeout = float(resolver.timeout)
        self._lifetime = float(resolver.lifetime)
        self._port = dns_port
        self._left = budget
        self._cache: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], Reply] = {}

    def _spend(self) -> None:
        if self._left <= 0:
            raise LookupFailedError("the scan's budget of DNS questions is spent")
        self._left -= 1

    async def query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Reply:
        """Ask the resolvers (recursion desired, ``DO`` and ``CD`` set); NOERROR and NXDOMAIN
        are answers, anything else is tried on the next server until the lifetime is spent.
        Raises :class:`LookupFailedError`."""
        key = (name, rdtype)
        if key in self._cache:
            return self._cache[key]
        if not self._servers:
            raise LookupFailedError("no resolver the DNS checks can ask (Do53 only)")
        message = _question(name, rdtype, recursive=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lifetime
        problems: list[str] = []
        attempt = 0
        while (left := deadline - loop.time()) > 0:
            address, port = self._servers[attempt % len(self._servers)]
            attempt += 1
            self._spend()
            try:
                answer, _ = await dns.asyncquery.udp_with_fallback(
                    message, address, timeout=min(self._timeout, left), port=port
                )
            except dns.exception.Timeout:
                problems.append(f"{address}: timed out")
                continue
            except (OSError, dns.exception.DNSException) as exc:
                problems.append(f"{address}: {type(exc).__name__}")
            else:
                if answer.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    reply = _reply(answer)
                    self._cache[key] = reply
                    return reply
                problems.append(f"{address}: {dns.rcode.to_text(answer.rcode())}")
            # A server that answered with a failure (or refused the connection) would answer
            # the same again at once: one round over the servers is enough.
            if attempt >= len(self._servers) and not any("timed out" in p for p in problems):
                break
        shown = "; ".join(dict.fromkeys(problems)) or "no time left"
        raise LookupFailedError(f"{name} {dns.rdatatype.to_text(rdtype)}: {shown}")

    async def ask(
        self, address: str, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> Reply:
        """Ask the server at ``address`` (and the policy's ``dns_port``) directly, without
        recursion, once. Any rcode is an answer; raises :class:`LookupFailedError` on a timeout or
        a network error."""
        self._spend()
        message = _question(name, rdtype, recursive=False)
        try:
            answer, _ = await dns.asyncquery.udp_with_fallback(
                message, address, timeout=self._timeout, port=self._port
            )
        except dns.exception.Timeout as exc:
            raise LookupFailedError(f"{address}: no answer in {self._timeout:g} s") from exc
        except (OSError, dns.exception.DNSException) as exc:
            raise LookupFailedError(f"{address}: {type(exc).__name__}") from exc
        return _reply(answer)


def _question(
    name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, recursive: bool
) -> dns.message.QueryMessage:
    message = dns.message.make_query(
        name, rdtype, use_edns=0, want_dnssec=recursive, payload=_PAYLOAD
    )
    if recursive:
        message.flags |= dns.flags.CD
    else:
        message.flags &= ~dns.flags.RD
    return message


def _servers(resolver: dns.asyncresolver.Resolver) -> list[tuple[str, int]]:
    """The resolver's plain-DNS servers as (address, port); DoH/DoT/DoQ servers are skipped
    (the raw questions the checks need go over UDP and TCP)."""
    out: list[tuple[str, int]] = []
    for server in resolver.nameservers:
        if isinstance(server, str):
            out.append((server, resolver.nameserver_ports.get(server, resolver.port)))
        elif isinstance(server, dns.nameserver.Do53Nameserver):
            out.append((server.address, server.port))
    return out
