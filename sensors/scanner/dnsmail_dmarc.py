"""DMARC (RFC 7489): the policy record at ``_dmarc.<host>``, or at the organisational domain's
when the host has none (§6.6.3), parsed into its tags.

The organisational domain is the zone apex found by walking SOA records, not the Public
Suffix List: the scanner keeps no list that goes stale. For a host below that domain the
policy that applies is ``sp`` when given, else ``p``.

>>> record = parse_dmarc("v=DMARC1; p=reject; rua=mailto:d@example.com; pct=50")
>>> record.policy, record.rua, record.pct, record.problem
('reject', ('mailto:d@example.com',), 50, None)
>>> parse_dmarc("v=DMARC1; p=block").problem
'p=block is not none, quarantine or reject'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError

__all__ = ["DmarcRecord", "DmarcResult", "check_dmarc", "parse_dmarc"]

POLICIES: Final = ("none", "quarantine", "reject")
_MAX_TAGS: Final = 32  # RFC 7489 defines 11 tags; more is noise kept out of the evidence
_MAX_URIS: Final = 10


@dataclass(frozen=True)
class DmarcRecord:
    """A parsed record: its tags in order, ``p``, ``sp``, the aggregate report addresses
    (``rua``), ``pct``, and the problem that makes it invalid (``None`` when valid)."""

    tags: tuple[tuple[str, str], ...]
    policy: str | None
    subdomain_policy: str | None
    rua: tuple[str, ...]
    pct: int
    problem: str | None


@dataclass(frozen=True)
class DmarcResult:
    """The DMARC of ``host``: where the record was found (``found_at``), its text and parsed
    form, how many records were there (more than one means none applies), and ``error`` when
    it could not be checked."""

    host: str
    found_at: str | None = None
    record: str | None = None
    parsed: DmarcRecord | None = None
    count: int = 0
    error: str | None = None

    @property
    def inherited(self) -> bool:
        return self.found_at is not None and self.found_at != f"_dmarc.{self.host}"

    @property
    def effective_policy(self) -> str | None:
        """The policy applied to mail from ``host``: ``sp`` for a subdomain using its
        organisational domain's record (when given), else ``p``."""
        if self.parsed is None or self.parsed.problem is not None or self.count != 1:
            return None
        if self.inherited and self.parsed.subdomain_policy is not None:
            return self.parsed.subdomain_policy
        return self.parsed.policy


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse a DMARC record. RFC 7489 §6.6.3: a record whose ``p`` is missing or invalid is
    still taken as ``p=none`` when it has a valid ``rua``."""
    tags: list[tuple[str, str]] = []
    for part in text.split(";")[:_MAX_TAGS]:
        name, sep, value = part.strip().partition("=")
        if part.strip() == "":
            continue
        if not sep:
            return DmarcRecord(tuple(tags), None, None, (), 100, f"{part.strip()!r} is not a tag")
        tags.append((name.strip().lower(), value.strip()))
    found = dict(reversed(tags))  # the first of a repeated tag counts
    rua = tuple(u.strip() for u in found.get("rua", "").split(",") if u.strip())[:_MAX_URIS]
    valid_rua = any(u.lower().startswith("mailto:") and "@" in u for u in rua)
    policy = found.get("p", "").lower() or None
    subdomain = found.get("sp", "").lower() or None
    problem = None
    if not tags or tags[0] != ("v", "DMARC1"):
        problem = "the record does not start with v=DMARC1"
    elif policy not in POLICIES:
        if valid_rua:
            policy = "none"
        else:
            problem = "p is missing" if policy is None else f"p={policy} is not {_choices()}"
    if problem is None and subdomain is not None and subdomain not in POLICIES:
        problem = f"sp={subdomain} is not {_choices()}"
    pct_text = found.get("pct", "100")
    valid_pct = pct_text.isdigit() and int(pct_text) <= 100
    pct = int(pct_text) if valid_pct else 100
    if problem is None and not valid_pct:
        problem = f"pct={pct_text} is not a number from 0 to 100"
    return DmarcRecord(tuple(tags), policy, subdomain, rua, pct, problem)


def _choices() -> str:
    return f"{', '.join(POLICIES[:-1])} or {POLICIES[-1]}"


async def check_dmarc(lookup: Lookup, host: str, organisational: str) -> DmarcResult:
    """The DMARC record of ``host``, or of ``organisational`` when ``host`` has none."""
    candidates = dict.fromkeys([host, organisational])
    for domain in candidates:
        owner = f"_dmarc.{domain}"
        try:
            reply = await lookup.query(dns.name.from_text(owner), dns.rdatatype.TXT)
        except LookupFailedError as exc:
            return DmarcResult(host, error=str(exc))
        txt = reply.first(dns.rdatatype.TXT)
        texts = [
            b"".join(r.strings).decode("utf-8", "replace")
            for r in (txt or ())
            if isinstance(r, dns.rdtypes.ANY.TXT.TXT)
        ]
        # RFC 7489 §6.6.3: records not starting with v=DMARC1 are ignored.
        records = [t for t in texts if t.replace(" ", "").startswith("v=DMARC1")]
        if records:
            return DmarcResult(host, owner, records[0], parse_dmarc(records[0]), len(records))
    return DmarcResult(host)
