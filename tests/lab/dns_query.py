"""A one-shot DNS client for the lab when ``dig`` is not installed: one A query over UDP
from a given source port, one answer awaited, no retry.

    python dns_query.py --server 10.203.0.2 --source 10.203.0.10 --sport 40000 host0.lab.test

Prints the answer's IPv4 addresses, one per line; exits 1 without an answer.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys


def build_query(query_id: int, name: str) -> bytes:
    """A recursive A query.

    >>> build_query(1, "a.b").hex()
    '000101000001000000000000016101620000010001'
    """
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.strip(".").split("."))
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + labels + b"\0" + b"\0\1\0\1"


def answer_addresses(reply: bytes, query_id: int) -> list[str]:
    """The A records of a reply to ``query_id`` (names compressed or not)."""
    rid, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    if rid != query_id or not flags & 0x8000 or flags & 0x000F:
        return []
    offset = 12
    for _ in range(qd):
        offset = _skip_name(reply, offset) + 4
    found = []
    for _ in range(an):
        offset = _skip_name(reply, offset)
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return found


def _skip_name(data: bytes, offset: int) -> int:
    while data[offset]:
        if data[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += data[offset] + 1
    return offset + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sport", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("name")
    args = parser.parse_args()
    query_id = random.randrange(1 << 16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((args.source, args.sport))
        sock.settimeout(args.timeout)
        sock.sendto(build_query(query_id, args.name), (args.server, 53))
        try:
            reply, _ = sock.recvfrom(4096)
        except TimeoutError:
            sys.exit(1)
    addresses = answer_addresses(reply, query_id)
    sys.stdout.write("".join(f"{a}\n" for a in addresses))
    sys.exit(0 if addresses else 1)


if __name__ == "__main__":
    main()
