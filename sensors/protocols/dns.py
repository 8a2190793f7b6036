"""DNS messages: the question, the response code, and what a flow meter needs of them.

A minimal parser, not a dissector: it reads the header and the first question, and nothing
else, because that is all a flow record carries and scapy's full dissection costs ~200 µs a
packet (a DNS tunnel sends nothing but DNS). Names are rendered as ECS asks for
``dns.question.name``: printable ASCII as is, backslash and quote escaped, anything else as
``\\DDD``. Compression pointers are followed only backwards and at most 16 times.

>>> header = bytes.fromhex("1234 0100 0001 0000 0000 0000")
>>> parse_dns(header + b"\\x07example\\x03org\\x00" + b"\\x00\\x01\\x00\\x01")
DnsMessage(id=4660, is_response=False, rcode=0, qname='example.org', qtype=1)
>>> (type_name(1), rcode_name(3))
('A', 'NXDOMAIN')
"""

from __future__ import annotations

from typing import Final, NamedTuple

DNS_PORTS: Final = frozenset({53, 5353, 5355})  # DNS, multicast DNS, LLMNR

_MAX_POINTERS: Final = 16
_MAX_NAME: Final = 255

_TYPES: Final = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    10: "NULL",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    252: "AXFR",
    255: "ANY",
    257: "CAA",
}
_RCODES: Final = (
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
)
# ECS: printable ASCII stays; backslash and quote are escaped; \t \r \n by name; the rest \DDD.
_ESCAPES: Final = tuple(
    {9: "\\t", 10: "\\n", 13: "\\r", 34: '\\"', 92: "\\\\"}.get(
        b, chr(b) if 32 <= b <= 126 else f"\\{b:03d}"
    )
    for b in range(256)
)


class DnsMessage(NamedTuple):
    id: int
    is_response: bool
    rcode: int
    qname: str | None
    qtype: int | None
    qname_octets: int = 0  # the name's length on the wire, dots included (escapes are longer)


def parse_dns(payload: bytes) -> DnsMessage | None:
    """The header and first question of a DNS message, or ``None`` if it is not one."""
    if len(payload) < 12:
        return None
    ident = (payload[0] << 8) | payload[1]
    flags = (payload[2] << 8) | payload[3]
    qdcount = (payload[4] << 8) | payload[5]
    if flags & 0x7800:  # opcode other than QUERY (0): not a lookup, nothing to report
        return DnsMessage(ident, bool(flags & 0x8000), flags & 0x000F, None, None)
    qname = qtype = None
    octets = 0
    if qdcount:
        parsed = _name(payload, 12)
        if parsed is None:
            return None
        qname, end, octets = parsed
        if end + 4 > len(payload):
            return None
        qtype = (payload[end] << 8) | payload[end + 1]
    return DnsMessage(ident, bool(flags & 0x8000), flags & 0x000F, qname, qtype, octets)


def parse_dns_tcp(payload: bytes) -> DnsMessage | None:
    """DNS over TCP: a 2-byte length, then the message (the first one of the segment)."""
    if len(payload) < 2:
        return None
    length = (payload[0] << 8) | payload[1]
    return parse_dns(payload[2 : 2 + length])


def type_name(qtype: int) -> str:
    return _TYPES.get(qtype) or f"TYPE{qtype}"


def rcode_name(rcode: int) -> str:
    return _RCODES[rcode] if rcode < len(_RCODES) else f"RCODE{rcode}"


def _name(payload: bytes, pos: int) -> tuple[str, int, int] | None:
    """Decode the name at ``pos``; return it, the position after it in the message, and its
    length in octets (labels and the dots between them)."""
    labels: list[str] = []
    length = 0
    end = -1  # where the name ends in the message: after its first pointer, if any
    jumps = 0
    while True:
        if pos >= len(payload):
            return None
        size = payload[pos]
        if size == 0:
            if end < 0:
                end = pos + 1
            break
        if size & 0xC0 == 0xC0:  # compression pointer
            if pos + 1 >= len(payload) or jumps >= _MAX_POINTERS:
                return None
            target = ((size & 0x3F) << 8) | payload[pos + 1]
            if target >= pos:  # only backwards: no loops
                return None
            if end < 0:
                end = pos + 2
            pos = target
            jumps += 1
            continue
        if size & 0xC0:  # 0x40 and 0x80: extended label types, obsolete
            return None
        label = payload[pos + 1 : pos + 1 + size]
        if len(label) < size:
            return None
        length += size + 1
        if length > _MAX_NAME:
            return None
        labels.append("".join([_ESCAPES[b] for b in label]).replace(".", "\\."))
        pos += 1 + size
    return (".".join(labels) if labels else "."), end, max(length - 1, 0)
