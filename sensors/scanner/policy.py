"""The scan policy: what the scanner may touch and how hard it may push.

A scanner that takes a host name from anyone must not become a way into the networks it runs
beside. It therefore resolves each name itself, refuses every address that is not globally
routable (private, loopback, link-local, CGNAT, reserved, multicast) unless that network is
named in ``allowed_networks``, and then connects only to the addresses it checked, so a name
that changes its answer between the check and the connection (DNS rebinding) cannot steer it.
Every read has a timeout and a size limit, every host a total time budget, and the number of
connections at a time is bounded.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sensors.errors import TargetRefusedError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

USER_AGENT: Final = "TrustWatch-Scanner/0.1 (site posture check; +https://github.com/trustwatch)"


@dataclass(frozen=True)
class ScanPolicy:
    """Limits and permissions of one scanner. The defaults suit scanning public sites.

    ``https_port``/``http_port`` move the web checks off 443/80 (a staging server, a test);
    ``nameservers`` (``IP`` or ``IP:port``) replace the system's resolvers; ``ca_file`` adds
    trust anchors to the system's (a private CA); ``high_risk_ports`` is scanned by the exposure
    checks at most ``port_rate`` connection attempts per second. ``dns_port`` is where the DNS
    checks ask a zone's authoritative servers directly, and ``trust_anchors`` adds DNSSEC trust
    anchors to the root's (a private or test zone).
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    user_agent: str = USER_AGENT
    max_addresses: int = 8
    max_redirects: int = 10
    max_body_bytes: int = 2 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    host_budget: float = 180.0
    concurrency: int = 8
    port_rate: float = 20.0
    https_port: int = 443
    http_port: int = 80
    nameservers: tuple[str, ...] = ()
    ca_file: Path | None = None
    high_risk_ports: tuple[int, ...] | None = None  # None: the methodology's list
    dns_port: int = 53  # where authoritative name servers are asked directly
    trust_anchors: tuple[str, ...] = ()  # DS records ("zone. DS ...") trusted beside the root's

    def __post_init__(self) -> None:
        limits = {
            "max_addresses": (self.max_addresses, 1, 64),
            "max_redirects": (self.max_redirects, 0, 30),
            "max_body_bytes": (self.max_body_bytes, 1024, 64 * 1024 * 1024),
            "concurrency": (self.concurrency, 1, 256),
            "https_port": (self.https_port, 1, 65535),
            "http_port": (self.http_port, 1, 65535),
            "dns_port": (self.dns_port, 1, 65535),
        }
        for name, (value, low, high) in limits.items():
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, not {value}")
        for name, seconds in (
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("host_budget", self.host_budget),
            ("port_rate", self.port_rate),
        ):
            if not (seconds > 0 and math.isfinite(seconds)):
                raise ValueError(f"{name} must be a positive finite number, not {seconds}")

    def check_address(self, address: IPAddress, host: str) -> None:
        """Raise :class:`TargetRefusedError` unless the scan may connect to ``address``."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return
        if address.is_global and not address.is_multicast:
            return
        kind = next(
            (
                name
                for name, flag in (
                    ("loopback", address.is_loopback),
                    ("link-local", address.is_link_local),
                    ("private", address.is_private),
                    ("multicast", address.is_multicast),
                    ("reserved", address.is_reserved),
                    ("unspecified", address.is_unspecified),
                )
                if flag
            ),
            "not globally routable",
        )
        where = host if host == str(address) else f"{host} ({address})"
        raise TargetRefusedError(
            f"{where} is a {kind} address: the scanner only scans public addresses unless the "
            f"network is allowed (--allow-network {address}/{address.max_prefixlen})"
        )


def parse_network(text: str) -> IPNetwork:
    """``--allow-network`` values: a CIDR or a single address."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IP network (e.g. 127.0.0.0/8 or ::1)") from exc
