"""Information systems and their declared security level: which system an alert is about, and
how much the level raises the alert's severity.

Agencies declare each information system's level as Vietnam's Decree 85/2016/ND-CP classifies
it, 1 (least) to 5 (national defence and security). When an alert opens, its entity is matched
against the declared systems: every IP address in it against the systems' networks, every other
word against their host names (exact, case-insensitive). If several systems match, the highest
level wins (then the smallest id). The alert keeps the system's id, and its severity goes up by
:data:`SEVERITY_RAISE` steps, capped at critical:

>>> [raise_severity("medium", level) for level in (1, 2, 3, 4, 5)]
['medium', 'medium', 'high', 'high', 'critical']
>>> raise_severity("high", 5)
'critical'
>>> from datetime import UTC, datetime
>>> from ipaddress import ip_network
>>> portal = InformationSystem(id="portal", name="Public service portal", agency="Ministry",
...     level=4, networks=(ip_network("10.1.0.0/16"),), hosts=("portal.gov.example",),
...     created_at=datetime(2026, 1, 1, tzinfo=UTC))
>>> index = SystemIndex([portal])
>>> [getattr(index.match(entity), "id", None)
...  for entity in ("203.0.113.9 10.1.2.3", "PORTAL.gov.example", "10.2.0.1", "unknown")]
['portal', 'portal', None, None]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from types import MappingProxyType
from typing import Final

from api.severity import raise_by

SEVERITY_RAISE: Final[Mapping[int, int]] = MappingProxyType({1: 0, 2: 0, 3: 1, 4: 1, 5: 2})
"""Security level → severity steps an alert about such a system goes up. Levels 3 and 4 are
systems whose compromise harms public interest or national security; level 5 gravely harms
national security, so two steps: a low alert there is already high."""

MIN_LEVEL: Final = min(SEVERITY_RAISE)
MAX_LEVEL: Final = max(SEVERITY_RAISE)
MAX_SYSTEMS: Final = 10_000  # a national inventory is in the thousands
MAX_NETWORKS: Final = 256  # per system
MAX_HOSTS: Final = 256  # per system


@dataclass(frozen=True)
class NewSystem:
    """An information system as an admin declares it: who runs it, its Decree 85/2016 level,
    and the networks and host names it covers."""

    id: str
    name: str
    agency: str
    level: int
    networks: tuple[IPv4Network | IPv6Network, ...]
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class InformationSystem(NewSystem):
    created_at: datetime


def raise_severity(severity: str, level: int) -> str:
    """``severity`` raised as the table says for a system of security ``level``."""
    return raise_by(severity, SEVERITY_RAISE.get(level, 0))


def _rank(system: InformationSystem) -> tuple[int, str]:
    return (-system.level, system.id)


class SystemIndex:
    """The declared systems, looked up by address and host name.

    Networks are kept in one dictionary per prefix length, so matching an address costs one
    lookup per distinct prefix length declared, however many systems there are."""

    def __init__(self, systems: Iterable[InformationSystem]) -> None:
        self.by_id: dict[str, InformationSystem] = {}
        self._networks: dict[tuple[int, int], dict[int, InformationSystem]] = {}
        self._hosts: dict[str, InformationSystem] = {}
        for system in sorted(systems, key=_rank):  # best first: setdefault keeps the best
            self.by_id[system.id] = system
            for network in system.networks:
                table = self._networks.setdefault((network.version, network.prefixlen), {})
                table.setdefault(int(network.network_address), system)
            for host in system.hosts:
                self._hosts.setdefault(host.lower(), system)

    def match(self, entity: str) -> InformationSystem | None:
        """The best system any word of ``entity`` (an address or a host name) belongs to."""
        found = [
            system
            for word in entity.split()
            if (system := self._match_word(word.rstrip(".").lower())) is not None
        ]
        return min(found, key=_rank) if found else None

    def _match_word(self, word: str) -> InformationSystem | None:
        try:
            address = ip_address(word)
        except ValueError:
            return self._hosts.get(word)
        return self._match_address(address)

    def _match_address(self, address: IPv4Address | IPv6Address) -> InformationSystem | None:
        found = []
        for (version, prefixlen), table in self._networks.items():
            if version != address.version:
                continue
            key = int(ip_network((address, prefixlen), strict=False).network_address)
            if (system := table.get(key)) is not None:
                found.append(system)
        return min(found, key=_rank) if found else None
