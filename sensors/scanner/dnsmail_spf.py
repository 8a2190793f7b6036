"""SPF (RFC 7208): a domain's record parsed, and its tree of ``include`` and ``redirect``
followed and counted as a receiver would count them.

There is no message to check, so the tree is walked whole: every term that makes a DNS query
(``include``, ``a``, ``mx``, ``ptr``, ``exists``, ``redirect``) counts once, as §4.6.4 counts
them, and more than 10 is a permanent error; so are more than 2 void lookups (a name that does
not exist or has no record of the type asked), a syntax error, two SPF records at one name and
an ``include`` or ``redirect`` to a domain without one. ``a`` and ``exists`` are resolved (A,
then AAAA) and ``mx`` asked for its MX set to count void lookups; the MX hosts' addresses are
not (they would count only towards §4.6.4's separate limit of 10 names per ``mx``, checked on
the MX set). Terms with macros (``%{i}``) cannot be expanded without a message: they count but
are not followed.

>>> parse_spf("v=spf1 ip4:192.0.2.0/24 include:_spf.example.com -all")[1]
>>> [str(t) for t in parse_spf("v=spf1 mx ~all")[0]]
['mx', '~all']
>>> parse_spf("v=spf1 ip4:192.0.2.300 -all")[1]
"'ip4:192.0.2.300': not an IPv4 network"
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError

__all__ = ["SpfNode", "SpfResult", "SpfTerm", "check_spf", "parse_spf", "spf_records"]

MAX_LOOKUPS: Final = 10  # RFC 7208 §4.6.4
MAX_VOID: Final = 2  # RFC 7208 §4.6.4 (SHOULD, the common default)
MAX_MX_NAMES: Final = 10  # RFC 7208 §4.6.4: an mx term resolves at most 10 names
_MAX_TERMS: Final = 64  # a record longer than this is surely wrong; bounds the walk

_LOOKUP_TERMS: Final = frozenset({"include", "a", "mx", "ptr", "exists"})
_MECHANISMS: Final = frozenset({"all", "ip4", "ip6", *_LOOKUP_TERMS})
_MODIFIER: Final = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MECHANISM: Final = re.compile(r"^([+\-~?]?)([a-z][a-z0-9_.-]*)(.*)$", re.IGNORECASE)
_MACRO: Final = re.compile(r"%(?:\{[slodiphcrtv]\d*r?[.\-+,/_=]*\}|%|_|-)", re.IGNORECASE)
_CIDRS: Final = re.compile(r"^(.*?)(?:/(\d{1,2}))?(?://(\d{1,3}))?$")


@dataclass(frozen=True)
class SpfTerm:
    """A mechanism (``qualifier``, ``name``, ``value``: ``-``, ``ip4``, ``192.0.2.0/24``) or a
    modifier (``redirect``, ``example.com``, ``modifier=True``)."""

    qualifier: str
    name: str
    value: str = ""
    modifier: bool = False

    def __str__(self) -> str:
        if self.modifier:
            return f"{self.name}={self.value}"
        shown = "" if self.qualifier == "+" else self.qualifier
        separator = "" if self.value.startswith("/") or not self.value else ":"
        return f"{shown}{self.name}{separator}{self.value}"


@dataclass(frozen=True)
class SpfNode:
    """One record of the tree: the domain, how it was reached (``top``, ``include``,
    ``redirect``), its text and terms, the records it leads to, and what went wrong there."""

    domain: str
    via: str
    record: str | None
    terms: tuple[SpfTerm, ...] = ()
    children: tuple[SpfNode, ...] = ()
    problem: str | None = None

    def all_qualifier(self) -> str | None:
        """The qualifier of the ``all`` that ends this record's evaluation: its own first
        ``all``, or else its redirect target's (RFC 7208 §6.1); ``None`` when neither."""
        own = next((t.qualifier for t in self.terms if t.name == "all" and not t.modifier), None)
        if own is not None:
            return own
        redirect = next((c for c in self.children if c.via == "redirect"), None)
        return redirect.all_qualifier() if redirect is not None else None


@dataclass(frozen=True)
class SpfResult:
    """A domain's SPF: its records (more than one is an error), the tree, the counts of DNS
    lookups and void lookups, the effective ``all`` qualifier, a permanent error, or ``error``
    when it could not be checked (a DNS failure: SPF's temperror)."""

    domain: str
    records: tuple[str, ...] = ()
    tree: SpfNode | None = None
    lookups: int = 0
    void_lookups: int = 0
    all_qualifier: str | None = None
    permerror: str | None = None
    error: str | None = None


def spf_records(strings: list[tuple[bytes, ...]]) -> tuple[str, ...]:
    """The SPF records among TXT records (each given as its strings, joined without spaces
    as RFC 7208 §3.3 says): those that are ``v=spf1`` alone or followed by a space."""
    out = []
    for parts in strings:
        text = b"".join(parts).decode("utf-8", "replace")
        if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 "):
            out.append(text)
    return tuple(out)


def parse_spf(record: str) -> tuple[tuple[SpfTerm, ...], str | None]:  # noqa: PLR0911 - per error
    """The terms of ``record`` and the first syntax error (``None`` when valid)."""
    words = record.split()
    if not words or words[0].lower() != "v=spf1":
        return (), "the record does not start with v=spf1"
    terms: list[SpfTerm] = []
    seen_modifiers: set[str] = set()
    for word in words[1 : _MAX_TERMS + 1]:
        modifier = _MODIFIER.match(word)
        if modifier is not None:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in seen_modifiers and name in ("redirect", "exp"):
                return tuple(terms), f"{name}= appears twice"
            seen_modifiers.add(name)
            if name in ("redirect", "exp") and not _valid_domain_spec(value):
                return tuple(terms), f"{word!r}: not a domain"
            terms.append(SpfTerm("+", name, value, modifier=True))
            continue
        mechanism = _MECHANISM.match(word)
        if mechanism is None or mechanism.group(2).lower() not in _MECHANISMS:
            return tuple(terms), f"{word!r}: unknown mechanism"
        term = SpfTerm(mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism.group(3))
        problem = _term_problem(term)
        if problem is not None:
            return tuple(terms), f"{word!r}: {problem}"
        terms.append(SpfTerm(term.qualifier, term.name, term.value.removeprefix(":")))
    if len(words) > _MAX_TERMS + 1:
        return tuple(terms), f"more than {_MAX_TERMS} terms"
    return tuple(terms), None


def _term_problem(term: SpfTerm) -> str | None:  # noqa: PLR0911 - a return per mechanism
    rest = term.value
    if term.name == "all":
        return None if rest == "" else "all takes no argument"
    if term.name in ("include", "exists"):
        ok = rest.startswith(":") and _valid_domain_spec(rest[1:])
        return None if ok else "needs :domain"
    if term.name == "ptr":
        ok = rest == "" or (rest.startswith(":") and _valid_domain_spec(rest[1:]))
        return None if ok else "not a domain"
    if term.name in ("a", "mx"):
        match = _CIDRS.match(rest)
        assert match is not None  # noqa: S101 - the pattern matches every string
        domain, v4, v6 = match.groups()
        if domain and not (domain.startswith(":") and _valid_domain_spec(domain[1:])):
            return "not a domain"
        if (v4 is not None and int(v4) > 32) or (v6 is not None and int(v6) > 128):
            return "prefix length out of range"
        return None
    version = 4 if term.name == "ip4" else 6
    try:
        network = ipaddress.ip_network(rest.removeprefix(":"), strict=False)
    except ValueError:
        network = None
    if not rest.startswith(":") or network is None or network.version != version:
        return f"not an IPv{version} network"
    return None


def _valid_domain_spec(text: str) -> bool:
    """A domain-spec (RFC 7208 §7.1): labels, possibly with macros; no stray ``%``."""
    plain = _MACRO.sub("x", text)
    if not plain or "%" in plain or len(plain) > 253:
        return False
    labels = plain.rstrip(".").split(".")
    return all(0 < len(label) <= 63 for label in labels)


def _has_macro(text: str) -> bool:
    return "%" in text


async def check_spf(lookup: Lookup, domain: str) -> SpfResult:
    """The SPF of ``domain``: its records and, when there is exactly one, the walked tree."""
    try:
        records = await _records_at(lookup, domain)
    except LookupFailedError as exc:
        return SpfResult(domain, error=str(exc))
    if records is None or not records:
        return SpfResult(domain)
    if len(records) > 1:
        return SpfResult(domain, records, permerror=f"{len(records)} SPF records at {domain}")
    walk = _Walk(lookup)
    try:
        tree = await walk.node(domain, "top", records[0], depth=0)
    except LookupFailedError as exc:
        return SpfResult(domain, records, lookups=walk.lookups, error=str(exc))
    return SpfResult(
        domain,
        records,
        tree,
        lookups=walk.lookups,
        void_lookups=walk.voids,
        all_qualifier=tree.all_qualifier(),
        permerror=walk.permerror,
    )


async def _records_at(lookup: Lookup, domain: str) -> tuple[str, ...] | None:
    """The SPF records at ``domain``; ``None`` when the name does not exist or has no TXT
    (a void lookup)."""
    reply = await lookup.query(dns.name.from_text(domain), dns.rdatatype.TXT)
    txt = reply.first(dns.rdatatype.TXT)
    if txt is None:
        return None
    return spf_records([r.strings for r in txt if isinstance(r, dns.rdtypes.ANY.TXT.TXT)])


class _Walk:
    """The counters of one evaluation, shared by every record of the tree."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.lookups = 0
        self.voids = 0
        self.permerror: str | None = None

    def _fail(self, reason: str) -> str:
        if self.permerror is None:
            self.permerror = reason
        return reason

    def _count(self, term: SpfTerm) -> bool:
        """Count a DNS-querying term; ``False`` (and a permerror) past the limit."""
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            self._fail(f"more than {MAX_LOOKUPS} DNS lookups (at {term})")
            return False
        return True

    def _void(self) -> None:
        self.voids += 1
        if self.voids > MAX_VOID:
            self._fail(f"more than {MAX_VOID} void lookups")

    async def node(self, domain: str, via: str, record: str, depth: int) -> SpfNode:
        terms, problem = parse_spf(record)
        if problem is not None:
            return SpfNode(domain, via, record, terms, problem=self._fail(problem))
        children: list[SpfNode] = []
        modifiers = [t for t in terms if t.modifier and t.name == "redirect"]
        has_all = any(t.name == "all" and not t.modifier for t in terms)
        # RFC 7208 §6.1: redirect is ignored when the record has an all mechanism.
        walked = [t for t in terms if not t.modifier] + ([] if has_all else modifiers)
        for term in walked:
            if self.permerror is not None:
                break
            if term.name not in _LOOKUP_TERMS and term.name != "redirect":
                continue
            if not self._count(term):
                break
            child = await self._term(domain, term, depth)
            if child is not None:
                children.append(child)
        return SpfNode(domain, via, record, terms, tuple(children))

    async def _term(  # noqa: PLR0911 - a return per kind of term
        self, domain: str, term: SpfTerm, depth: int
    ) -> SpfNode | None:
        target = term.value.split("/", 1)[0] if term.name in ("a", "mx") else term.value
        target = target or domain
        if term.name == "ptr":
            return None  # needs the sender's address; counted only
        if _has_macro(target):
            if term.name in ("include", "redirect"):
                return SpfNode(target, term.name, None, problem="macro: not expanded")
            return None
        name = dns.name.from_text(target)
        if term.name in ("include", "redirect"):
            return await self._follow(target, term.name, depth)
        if term.name == "mx":
            reply = await self.lookup.query(name, dns.rdatatype.MX)
            mx = reply.first(dns.rdatatype.MX)
            if mx is None:
                self._void()
            elif len(mx) > MAX_MX_NAMES:
                self._fail(f"mx:{target} has {len(mx)} names, more than {MAX_MX_NAMES}")
            return None
        # a and exists: an address of either family makes the lookup non-void
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            reply = await self.lookup.query(name, rdtype)
            if reply.first(rdtype) is not None:
                return None
            if term.name == "exists" or reply.nxdomain:
                break
        self._void()
        return None

    async def _follow(self, target: str, via: str, depth: int) -> SpfNode:
        if depth >= MAX_LOOKUPS:  # unreachable within the count; bounds recursion anyway
            return SpfNode(target, via, None, problem=self._fail("includes nested too deep"))
        records = await _records_at(self.lookup, target)
        if records is None:
            self._void()
        if not records:
            reason = f"{via}:{target} has no SPF record"
            return SpfNode(target, via, None, problem=self._fail(reason))
        if len(records) > 1:
            reason = f"{via}:{target} has {len(records)} SPF records"
            return SpfNode(target, via, records[0], problem=self._fail(reason))
        return await self.node(target, via, records[0], depth + 1)
