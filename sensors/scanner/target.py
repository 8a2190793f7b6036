"""The host to scan: its name checked and normalised, its addresses resolved (A and AAAA, at
most ``max_addresses``) and each one allowed by the policy before anything connects.

>>> normalise_host("WWW.Example.COM.")
'www.example.com'
>>> normalise_host("bücher.example")
'xn--bcher-kva.example'
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.inet
import dns.resolver

from sensors.errors import TargetError, TargetRefusedError
from sensors.scanner.policy import IPAddress, ScanPolicy

_LABEL: Final = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Target:
    """A host and the addresses the scan may connect to (checked against the policy)."""

    host: str
    addresses: tuple[IPAddress, ...]

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def normalise_host(text: str) -> str:
    """A host name in IDNA form, lower case, without a trailing dot; or an IP literal.
    Raises :class:`TargetError` for anything else (a URL, a port, spaces, an empty label)."""
    raw = text.strip()
    if not raw or "/" in raw or "@" in raw or " " in raw:
        raise TargetError(f"{text!r}: give a host name such as www.example.gov, not a URL")
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    if ":" in raw:
        raise TargetError(f"{text!r}: give the host without a port (see --https-port)")
    try:
        host = raw.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise TargetError(f"{text!r} is not a valid host name: {exc}") from exc
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetError(f"{text!r} is not a valid host name")
    return host


def make_resolver(policy: ScanPolicy) -> dns.asyncresolver.Resolver:
    """The resolver every area uses: the system's, or the policy's ``nameservers``."""
    if not policy.nameservers:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers, ports = [], {}
        for entry in policy.nameservers:
            address, port = _server(entry)
            servers.append(address)
            ports[address] = port
        resolver.nameservers = servers
        resolver.nameserver_ports = ports
    resolver.timeout = policy.connect_timeout
    resolver.lifetime = policy.read_timeout
    return resolver


def _server(entry: str) -> tuple[str, int]:
    text = entry.strip()
    if text.startswith("["):  # [v6]:port
        address, _, port = text[1:].partition("]:")
    elif text.count(":") == 1:
        address, _, port = text.partition(":")
    else:
        address, port = text, "53"
    if not dns.inet.is_address(address) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not a name server address (IP or IP:port)")
    return address, int(port)


async def resolve(host: str, policy: ScanPolicy, resolver: dns.asyncresolver.Resolver) -> Target:
    """Resolve ``host`` and check every address it has against the policy.

    A host with an address the policy refuses is refused as a whole, even if it has public
    addresses too: a scan connects to every address, and a name that points inwards is the
    trick the policy exists to stop.
    """
    name = normalise_host(host)
    try:
        literal: IPAddress | None = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        policy.check_address(literal, name)
        return Target(name, (literal,))
    found: list[IPAddress] = []
    problems: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise TargetRefusedError(f"{name} does not exist (NXDOMAIN)") from exc
        except (dns.resolver.NoAnswer, dns.resolver.NoNameservers) as exc:
            problems.append(f"{rdtype}: {exc}")
            continue
        except dns.exception.DNSException as exc:
            problems.append(f"{rdtype}: {exc}")
            continue
        found.extend(ipaddress.ip_address(r.address) for r in answer)
    if not found:
        detail = "; ".join(problems) or "no A or AAAA records"
        raise TargetRefusedError(f"{name} has no address to scan ({detail})")
    for address in found:
        policy.check_address(address, name)
    unique = tuple(dict.fromkeys(found))
    return Target(name, _interleave(unique)[: policy.max_addresses])


def _interleave(addresses: tuple[IPAddress, ...]) -> tuple[IPAddress, ...]:
    """IPv4 and IPv6 alternately, so that a cut at ``max_addresses`` keeps both families."""
    v4 = [a for a in addresses if a.version == 4]
    v6 = [a for a in addresses if a.version == 6]
    out: list[IPAddress] = []
    for pair in zip(v4, v6, strict=False):
        out.extend(pair)
    shorter = min(len(v4), len(v6))
    out.extend(v4[shorter:] or v6[shorter:])
    return tuple(out)
