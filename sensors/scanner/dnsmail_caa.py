"""CAA (RFC 8659): the relevant RRset of a host, found as a CA finds it (§3): the host's own
CAA records, else its parent's, and so on up to the top-level domain (the root is not asked).
An alias is followed by the resolver, so a host that is a CNAME gets its target's records.

>>> caa = CaaResult("www.example.com", "example.com", (CaaRecord(0, "issue", "pki.goog"),))
>>> caa.issuers, caa.has_issue
(('pki.goog',), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.CAA

from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError

__all__ = ["CaaRecord", "CaaResult", "check_caa"]

_MAX_CLIMB: Final = 16  # labels asked at most (a host name has at most 127; real ones < 10)
_MAX_RECORDS: Final = 32
_CRITICAL: Final = 128  # RFC 8659 §4.1: the issuer-critical flag
_KNOWN_TAGS: Final = frozenset({"issue", "issuewild", "iodef", "issuemail", "issuevmc"})


@dataclass(frozen=True)
class CaaRecord:
    """One CAA property: flags, tag (lower case) and value."""

    flags: int
    tag: str
    value: str

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class CaaResult:
    """The relevant CAA RRset of ``host`` and the name it was found at (``None``: none up to
    the top-level domain), the names asked, and ``error`` when it could not be checked."""

    host: str
    found_at: str | None = None
    records: tuple[CaaRecord, ...] = ()
    asked: tuple[str, ...] = ()
    error: str | None = None

    def values(self, tag: str) -> tuple[str, ...]:
        return tuple(r.value for r in self.records if r.tag == tag)

    @property
    def issuers(self) -> tuple[str, ...]:
        return self.values("issue")

    @property
    def has_issue(self) -> bool:
        return any(r.tag == "issue" for r in self.records)

    @property
    def unknown_critical(self) -> tuple[str, ...]:
        """Tags a CA does not know but must understand to issue (§4.1: it then refuses)."""
        return tuple(
            r.tag for r in self.records if r.flags & _CRITICAL and r.tag not in _KNOWN_TAGS
        )


async def check_caa(lookup: Lookup, host: str) -> CaaResult:
    """Climb from ``host`` towards the root until a name has CAA records."""
    name = dns.name.from_text(host)
    asked: list[str] = []
    while len(name) > 1 and len(asked) < _MAX_CLIMB:
        asked.append(name.to_text(omit_final_dot=True))
        try:
            reply = await lookup.query(name, dns.rdatatype.CAA)
        except LookupFailedError as exc:
            return CaaResult(host, asked=tuple(asked), error=str(exc))
        rrset = reply.first(dns.rdatatype.CAA)
        if rrset is not None:
            records = tuple(
                CaaRecord(r.flags, r.tag.decode("ascii", "replace").lower(), _text(r.value))
                for r in rrset
                if isinstance(r, dns.rdtypes.ANY.CAA.CAA)
            )[:_MAX_RECORDS]
            owner = rrset.name.to_text(omit_final_dot=True)
            return CaaResult(host, owner, records, tuple(asked))
        name = name.parent()
    return CaaResult(host, asked=tuple(asked))


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
