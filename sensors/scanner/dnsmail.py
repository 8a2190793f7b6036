"""The DNS and e-mail area: SPF, DMARC, DNSSEC, CAA and name-server diversity of a host's zone.

:func:`fetch_dns` does the I/O once and returns a :class:`DnsSnapshot`; each ``evaluate_*``
is a pure function of it; :data:`CHECKS` lists them in report order. The zone is found by
walking SOA records up from the host (no Public Suffix List); SPF and the name servers are
those of that zone, DMARC that of the host or else of the zone (the organisational domain),
CAA the relevant RRset found by climbing from the host, and DNSSEC is validated by the
scanner itself from a trust anchor down to the zone (see :mod:`.dnsmail_dnssec`).

A DNS question that goes unanswered makes its check ``error`` (could not check), never
``fail``; a missing record is a failure, or a warning where the methodology still gives
points (SPF ``?all``, DMARC ``p=none`` with reports, name servers in one network). A host
given as an IP address has no zone: every check is ``not_applicable``.

>>> from datetime import UTC
>>> snapshot = DnsSnapshot("192.0.2.1", datetime(2025, 1, 1, tzinfo=UTC))
>>> evaluate_caa(snapshot).status.value
'not_applicable'
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import dns.name
import dns.rdatatype

from sensors.scanner.context import ScanContext
from sensors.scanner.dnsmail_caa import CaaResult, check_caa
from sensors.scanner.dnsmail_dmarc import DmarcResult, check_dmarc
from sensors.scanner.dnsmail_dnssec import DnssecResult, DnssecStatus, validate_zone
from sensors.scanner.dnsmail_lookup import Lookup, LookupFailedError
from sensors.scanner.dnsmail_ns import NameServers, check_nameservers
from sensors.scanner.dnsmail_spf import SpfNode, SpfResult, check_spf
from sensors.scanner.result import Area, CheckResult, CheckStatus, could_not_check

__all__ = [
    "CHECKS",
    "DnsSnapshot",
    "evaluate_caa",
    "evaluate_dmarc",
    "evaluate_dnssec",
    "evaluate_nameservers",
    "evaluate_spf",
    "fetch_dns",
    "find_zone",
]

_MAX_CLIMB: Final = 16  # labels walked up looking for the zone apex
_MAX_ITEMS: Final = 20  # list items in one evidence field
_MAX_TEXT: Final = 500  # characters in one evidence string (CheckResult's contract)

_RFC: Final = "https://www.rfc-editor.org/rfc/rfc"
SPF_REFS: Final = (f"{_RFC}7208",)
DMARC_REFS: Final = (f"{_RFC}7489",)
DNSSEC_REFS: Final = (f"{_RFC}4033", f"{_RFC}4035", f"{_RFC}5155")
CAA_REFS: Final = (f"{_RFC}8659",)
NS_REFS: Final = (f"{_RFC}1034#section-4.1", f"{_RFC}2182")


@dataclass(frozen=True)
class DnsSnapshot:
    """What the DNS fetch saw of ``host`` at ``observed_at``: its ``zone`` (apex), and each
    part's result. ``error`` says why nothing could be checked (no zone found); a part that is
    ``None`` without an error was not applicable (the host is an IP address)."""

    host: str
    observed_at: datetime
    zone: str | None = None
    spf: SpfResult | None = None
    dmarc: DmarcResult | None = None
    caa: CaaResult | None = None
    nameservers: NameServers | None = None
    dnssec: DnssecResult | None = None
    error: str | None = None


async def fetch_dns(ctx: ScanContext) -> DnsSnapshot:
    """Find the host's zone, then fetch its SPF, DMARC, CAA, name servers and DNSSEC status
    at once. DNS failures are recorded in the snapshot, never raised."""
    observed = ctx.now()
    host = ctx.target.host
    if ctx.target.is_ip:
        return DnsSnapshot(host, observed)
    lookup = Lookup(ctx.resolver, ctx.policy.dns_port)
    try:
        zone = await find_zone(lookup, host)
    except LookupFailedError as exc:
        return DnsSnapshot(host, observed, error=str(exc))
    spf, dmarc, caa, nameservers, dnssec = await asyncio.gather(
        check_spf(lookup, zone),
        check_dmarc(lookup, host, zone),
        check_caa(lookup, host),
        check_nameservers(lookup, zone, ctx.policy),
        validate_zone(lookup, zone, ctx.policy.trust_anchors, observed.timestamp()),
    )
    return DnsSnapshot(host, observed, zone, spf, dmarc, caa, nameservers, dnssec)


async def find_zone(lookup: Lookup, host: str) -> str:
    """The apex of the zone ``host`` is in: the first name, climbing from the host, that has
    an SOA record, or the owner of the SOA a negative answer carries. A name that is an alias
    (CNAME) is skipped: the SOA in its answer is its target's zone. Raises
    :class:`LookupFailedError` when no zone below the root is found."""
    name = dns.name.from_text(host)
    for _ in range(_MAX_CLIMB):
        if len(name) <= 1:
            break
        reply = await lookup.query(name, dns.rdatatype.SOA)
        if reply.rrset(name, dns.rdatatype.SOA) is not None:
            return name.to_text(omit_final_dot=True)
        if not reply.has_cname(name):
            soa = next((r for r in reply.authority if r.rdtype == dns.rdatatype.SOA), None)
            if soa is not None and name.is_subdomain(soa.name) and len(soa.name) > 1:
                return soa.name.to_text(omit_final_dot=True)
        name = name.parent()
    raise LookupFailedError(f"no DNS zone found for {host} (no SOA below the root)")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _items(values: Iterable[object]) -> list[str]:
    return [_clip(str(v)) for v in list(values)[:_MAX_ITEMS]]


def _unchecked(snapshot: DnsSnapshot, check: str, part: object) -> CheckResult | None:
    """The result when the part could not be fetched or does not apply; else ``None``."""
    if snapshot.error is not None:
        return could_not_check(check, Area.DNS, snapshot.error, host=snapshot.host)
    if part is None:
        return CheckResult(
            check,
            Area.DNS,
            CheckStatus.NOT_APPLICABLE,
            "an IP address has no DNS zone to check",
            {"host": snapshot.host},
        )
    return None


def _result(
    check: str,
    status: CheckStatus,
    summary: str,
    evidence: dict[str, Any],
    advice: str,
    references: tuple[str, ...],
) -> CheckResult:
    return CheckResult(
        check,
        Area.DNS,
        status,
        summary,
        evidence,
        "" if status is CheckStatus.PASS else advice,
        references,
    )


def _spf_tree(node: SpfNode | None, depth: int = 0) -> list[str]:
    """The tree as indented lines, ``domain (via): record``, at most ``_MAX_ITEMS``."""
    if node is None:
        return []
    line = f"{'  ' * depth}{node.domain} ({node.via}): {node.record or node.problem or ''}"
    lines = [_clip(line)]
    for child in node.children:
        lines.extend(_spf_tree(child, depth + 1))
    return lines[:_MAX_ITEMS]


def evaluate_spf(snapshot: DnsSnapshot) -> CheckResult:  # noqa: PLR0911 - a return per outcome
    """SPF of the zone: ``-all``/``~all`` pass; ``?all`` or no ``all`` warn; missing, a
    permanent error or ``+all`` (which caps the grade at B) fail."""
    check = "dns.spf"
    if (early := _unchecked(snapshot, check, snapshot.spf)) is not None:
        return early
    spf = snapshot.spf
    assert spf is not None  # noqa: S101 - _unchecked returned for None
    evidence: dict[str, Any] = {
        "domain": spf.domain,
        "record": _clip(spf.records[0]) if spf.records else None,
        "records": len(spf.records),
        "lookups": spf.lookups,
        "void_lookups": spf.void_lookups,
        "all": spf.all_qualifier,
        "mechanisms": _items(spf.tree.terms) if spf.tree is not None else [],
        "tree": _spf_tree(spf.tree),
        "permerror": spf.permerror,
    }
    if spf.error is not None:
        return could_not_check(check, Area.DNS, spf.error, **evidence)
    domain = spf.domain
    publish = (
        f'Publish one TXT record at {domain} such as "v=spf1 mx include:<your mail provider> '
        '-all" listing every server that sends its mail, or "v=spf1 -all" if it sends none.'
    )
    if not spf.records:
        return _result(
            check, CheckStatus.FAIL, f"{domain} has no SPF record", evidence, publish, SPF_REFS
        )
    if spf.permerror is not None:
        if len(spf.records) > 1:
            advice = f"Merge the {len(spf.records)} SPF records of {domain} into one."
        elif "lookups" in spf.permerror:
            advice = (
                "Bring the record under 10 DNS lookups: replace includes by the ip4/ip6 ranges "
                "they stand for, or drop senders no longer used."
            )
        else:
            advice = f"Correct the SPF record of {domain}: {spf.permerror}."
        summary = f"the SPF record of {domain} is a permanent error: {spf.permerror}"
        return _result(check, CheckStatus.FAIL, _clip(summary), evidence, advice, SPF_REFS)
    qualifier = spf.all_qualifier
    if qualifier == "+":
        evidence["cap"] = "B"
        return _result(
            check,
            CheckStatus.FAIL,
            f"the SPF record of {domain} ends in +all: any server may send its mail",
            evidence,
            "End the record with -all (or ~all while testing) instead of +all.",
            SPF_REFS,
        )
    if qualifier in ("-", "~"):
        return _result(
            check,
            CheckStatus.PASS,
            f"the SPF record of {domain} ends in {qualifier}all ({spf.lookups} DNS lookups)",
            evidence,
            "",
            SPF_REFS,
        )
    ending = "?all" if qualifier == "?" else "no all mechanism (neutral)"
    return _result(
        check,
        CheckStatus.WARN,
        f"the SPF record of {domain} ends in {ending}: it asks receivers to reject nothing",
        evidence,
        "End the record with -all (or ~all) so that mail from other servers fails SPF.",
        SPF_REFS,
    )


def evaluate_dmarc(snapshot: DnsSnapshot) -> CheckResult:  # noqa: PLR0911 - a return per outcome
    """DMARC policy applying to the host: reject or quarantine pass (warn when ``pct`` is
    below 100); ``none`` with aggregate reports warns; ``none`` without, an invalid record or
    none at all fail."""
    check = "dns.dmarc"
    if (early := _unchecked(snapshot, check, snapshot.dmarc)) is not None:
        return early
    dmarc = snapshot.dmarc
    assert dmarc is not None  # noqa: S101 - _unchecked returned for None
    if dmarc.error is not None:
        return could_not_check(check, Area.DNS, dmarc.error, host=dmarc.host)
    parsed = dmarc.parsed
    policy = dmarc.effective_policy
    evidence: dict[str, Any] = {
        "host": dmarc.host,
        "found_at": dmarc.found_at,
        "record": _clip(dmarc.record) if dmarc.record else None,
        "records": dmarc.count,
        "policy": policy,
        "p": parsed.policy if parsed else None,
        "sp": parsed.subdomain_policy if parsed else None,
        "rua": _items(parsed.rua) if parsed else [],
        "pct": parsed.pct if parsed else None,
        "inherited": dmarc.inherited,
        "problem": parsed.problem if parsed else None,
    }
    zone = snapshot.zone or dmarc.host
    advice = (
        f'Publish "v=DMARC1; p=reject; rua=mailto:<reports address>" at _dmarc.{zone} '
        "(start with p=quarantine if unsure, after reading the reports)."
    )
    if dmarc.found_at is None:
        summary = f"no DMARC record at _dmarc.{dmarc.host} or _dmarc.{zone}"
        return _result(check, CheckStatus.FAIL, summary, evidence, advice, DMARC_REFS)
    if dmarc.count > 1:
        summary = f"{dmarc.found_at} has {dmarc.count} DMARC records: none applies"
        return _result(
            check, CheckStatus.FAIL, summary, evidence, "Keep one DMARC record.", DMARC_REFS
        )
    if parsed is None or parsed.problem is not None or policy is None:
        problem = parsed.problem if parsed else "unparsable"
        summary = _clip(f"the DMARC record at {dmarc.found_at} is invalid: {problem}")
        return _result(check, CheckStatus.FAIL, summary, evidence, advice, DMARC_REFS)
    if policy in ("reject", "quarantine"):
        if parsed.pct < 100:
            summary = f"DMARC p={policy} applies to only {parsed.pct}% of failing mail"
            return _result(
                check,
                CheckStatus.WARN,
                summary,
                evidence,
                "Remove pct (or set pct=100) so the policy covers all mail.",
                DMARC_REFS,
            )
        summary = f"DMARC policy {policy} (from {dmarc.found_at})"
        return _result(check, CheckStatus.PASS, summary, evidence, "", DMARC_REFS)
    if any(u.lower().startswith("mailto:") for u in parsed.rua):
        summary = "DMARC policy none: failing mail is only reported, not stopped"
        return _result(
            check,
            CheckStatus.WARN,
            summary,
            evidence,
            "Move to p=quarantine, then p=reject, once the aggregate reports show only "
            "legitimate senders pass.",
            DMARC_REFS,
        )
    summary = "DMARC policy none without aggregate reports (rua): it does nothing"
    return _result(check, CheckStatus.FAIL, summary, evidence, advice, DMARC_REFS)


def evaluate_dnssec(snapshot: DnsSnapshot) -> CheckResult:
    """DNSSEC status of the zone: secure passes; insecure (unsigned) fails; bogus fails and
    caps the grade at C; indeterminate could not be checked."""
    check = "dns.dnssec"
    if (early := _unchecked(snapshot, check, snapshot.dnssec)) is not None:
        return early
    dnssec = snapshot.dnssec
    assert dnssec is not None  # noqa: S101 - _unchecked returned for None
    evidence: dict[str, Any] = {
        "zone": dnssec.zone,
        "status": dnssec.status.value,
        "anchor": dnssec.anchor,
        "chain": _items(dnssec.chain),
        "link": _clip(dnssec.link),
        "proof": dnssec.proof,
    }
    zone = dnssec.zone
    if dnssec.status is DnssecStatus.INDETERMINATE:
        return could_not_check(check, Area.DNS, _clip(dnssec.link), **evidence)
    if dnssec.status is DnssecStatus.SECURE:
        summary = f"{zone} is DNSSEC-signed and validates from {dnssec.anchor}"
        return _result(check, CheckStatus.PASS, summary, evidence, "", DNSSEC_REFS)
    if dnssec.status is DnssecStatus.BOGUS:
        evidence["cap"] = "C"
        return _result(
            check,
            CheckStatus.FAIL,
            _clip(f"DNSSEC of {zone} is bogus: {dnssec.link}"),
            evidence,
            "Re-sign the zone (signatures must be current and made with the keys its DS "
            "records name), or remove the DS at the parent before unsigning it.",
            DNSSEC_REFS,
        )
    return _result(
        check,
        CheckStatus.FAIL,
        f"{zone} is not DNSSEC-signed (insecure)",
        evidence,
        f"Sign {zone} (most DNS hosts offer it) and publish its DS record at the registrar.",
        DNSSEC_REFS,
    )


def evaluate_caa(snapshot: DnsSnapshot) -> CheckResult:
    """CAA: a relevant RRset with an ``issue`` property passes; none, or one without
    ``issue`` (it restricts no CA for ordinary certificates), fails."""
    check = "dns.caa"
    if (early := _unchecked(snapshot, check, snapshot.caa)) is not None:
        return early
    caa = snapshot.caa
    assert caa is not None  # noqa: S101 - _unchecked returned for None
    evidence: dict[str, Any] = {
        "host": caa.host,
        "found_at": caa.found_at,
        "issue": _items(caa.values("issue")),
        "issuewild": _items(caa.values("issuewild")),
        "iodef": _items(caa.values("iodef")),
        "records": _items(caa.records),
        "unknown_critical": _items(caa.unknown_critical),
        "asked": _items(caa.asked),
    }
    if caa.error is not None:
        return could_not_check(check, Area.DNS, caa.error, **evidence)
    advice = (
        f"Publish CAA records at {snapshot.zone or caa.host} naming the CAs you use, e.g. "
        '0 issue "letsencrypt.org", plus 0 iodef "mailto:<security contact>".'
    )
    if caa.found_at is None:
        summary = f"no CAA record for {caa.host} or its parents: any CA may issue"
        return _result(check, CheckStatus.FAIL, summary, evidence, advice, CAA_REFS)
    if not caa.has_issue:
        summary = f"the CAA records at {caa.found_at} have no issue property"
        return _result(check, CheckStatus.FAIL, summary, evidence, advice, CAA_REFS)
    issuers = ", ".join(v or ";" for v in caa.issuers) or ";"
    summary = _clip(f"CAA at {caa.found_at} allows: {issuers}")
    return _result(check, CheckStatus.PASS, summary, evidence, "", CAA_REFS)


def evaluate_nameservers(snapshot: DnsSnapshot) -> CheckResult:  # noqa: PLR0911 - a return per outcome
    """Name servers: at least two answering with authority, in at least two networks (IPv4
    /24, IPv6 /48), pass; one network or one server warns; none answering with authority
    fails; none answering at all could not be checked (the scanner's network may block it)."""
    check = "dns.nameservers"
    if (early := _unchecked(snapshot, check, snapshot.nameservers)) is not None:
        return early
    ns = snapshot.nameservers
    assert ns is not None  # noqa: S101 - _unchecked returned for None
    responsive, networks = ns.responsive, ns.networks
    evidence: dict[str, Any] = {
        "zone": ns.zone,
        "servers": _items(
            f"{s.name}: " + (s.error or ", ".join(f"{a.address} {a.state}" for a in s.addresses))
            for s in ns.servers
        ),
        "responsive": len(responsive),
        "networks": _items(networks),
    }
    if ns.error is not None:
        return could_not_check(check, Area.DNS, ns.error, **evidence)
    advice = (
        f"Serve {ns.zone} from at least two name servers in different networks (another "
        "provider or a secondary DNS service), each answering with authority."
    )
    if not ns.servers:
        summary = f"{ns.zone} has no NS records"
        return _result(check, CheckStatus.FAIL, summary, evidence, advice, NS_REFS)
    if ns.none_reached:
        return could_not_check(
            check, Area.DNS, "no name server of the zone answered the scanner directly", **evidence
        )
    if len(responsive) >= 2 and len(networks) >= 2:
        summary = (
            f"{len(responsive)} name servers answer with authority from {len(networks)} networks"
        )
        return _result(check, CheckStatus.PASS, summary, evidence, "", NS_REFS)
    if responsive:
        summary = (
            f"{len(responsive)} name server(s) answer with authority, all in one network "
            f"({networks[0]})"
        )
        return _result(check, CheckStatus.WARN, summary, evidence, advice, NS_REFS)
    summary = f"no name server of {ns.zone} answers with authority (lame delegation)"
    return _result(check, CheckStatus.FAIL, summary, evidence, advice, NS_REFS)


CHECKS: Final[tuple[tuple[str, Callable[[DnsSnapshot], CheckResult]], ...]] = (
    ("dns.spf", evaluate_spf),
    ("dns.dmarc", evaluate_dmarc),
    ("dns.dnssec", evaluate_dnssec),
    ("dns.caa", evaluate_caa),
    ("dns.nameservers", evaluate_nameservers),
)
