"""What a lab capture holds: one label per activity, and the file that carries them.

A label says who did what when, and what a flow meter must find in that time range. The
expectations come from the tools and servers themselves (pages fetched, ports probed,
connections the brute-forced server accepted, queries the resolver logged), never from
metering the capture, so the tests that compare the two check the meter against the tools.

The file (``labels.json``, or ``<activity>.labels.json`` with ``--split``)::

    {"schema_version": 1, "capture": "lab.pcap", "created": "2026-...Z", "command": [...],
     "networks": {...}, "hosts": {"server": {"ipv4": ..., "ipv6": ..., "mac": ...}, ...},
     "tools": {"tcpdump": "4.99.3", ...}, "capture_stats": {"captured": n, ...},
     "activities": [<label>, ...], "skipped": [{"activity": ..., "reason": ...}]}

A label::

    {"activity": "browse", "tool": "curl 7.88.1", "src": [...], "dst": [...],
     "transport": "tcp", "dst_ports": [80], "start": <unix ns>, "end": <unix ns>,
     "parameters": {...}, "evidence": {...},
     "expected": {"flows": [{"src", "dst", "transport", "dst_ports", "count"}, ...],
                  "dns_queries": null | {"suffix", "min_count", "min_length", "min_entropy"}}}

``expected.flows`` lists *every* TCP/UDP flow the activity starts: ``count`` flows from
``src`` to ``dst`` for each port in ``dst_ports``. A flow belongs to the activity when its
source is one of ``src`` and it starts between ``start`` and ``end``.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netns import HOSTS, NETWORK4, NETWORK6

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FlowGroup:
    """``count`` flows from ``src`` to ``dst`` over ``transport`` to each of ``dst_ports``."""

    src: str
    dst: str
    transport: str
    dst_ports: tuple[int, ...]
    count: int


@dataclass(frozen=True)
class DnsQueries:
    """At least ``min_count`` queries for names under ``suffix`` of ``min_length`` octets or
    more (a DNS tunnel's data queries), whose labels, taken together, carry at least
    ``min_entropy`` bits per octet."""

    suffix: str
    min_count: int
    min_length: int
    min_entropy: float


@dataclass(frozen=True)
class Expected:
    flows: tuple[FlowGroup, ...]
    dns_queries: DnsQueries | None = None


@dataclass(frozen=True)
class Label:
    activity: str
    tool: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    transport: str
    dst_ports: tuple[int, ...]
    start: int
    end: int
    expected: Expected
    parameters: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    activity: str
    reason: str


# The first line of each tool's version output that names the version, and where it is.
_VERSIONS = {
    "tcpdump": (["tcpdump", "--version"], r"tcpdump version (\S+)"),
    "libpcap": (["tcpdump", "--version"], r"libpcap version (\S+)"),
    "curl": (["curl", "--version"], r"curl (\S+)"),
    "dnsmasq": (["dnsmasq", "--version"], r"Dnsmasq version (\S+)"),
    "dig": (["dig", "-v"], r"DiG (\S+)"),
    "nmap": (["nmap", "--version"], r"Nmap version (\S+)"),
    "hydra": (["hydra"], r"Hydra v(\S+)"),
    "iodine": (["iodine", "-v"], r"version: (\S+)"),
    "iodined": (["iodined", "-v"], r"version: (\S+)"),
}


def tool_versions() -> dict[str, str | None]:
    """The version of each tool the lab uses (None: not installed), the kernel and Python."""
    versions: dict[str, str | None] = {}
    for name, (argv, pattern) in _VERSIONS.items():
        versions[name] = None
        if shutil.which(argv[0]) is None:
            continue
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        match = re.search(pattern, done.stdout + done.stderr)
        versions[name] = match[1] if match else None
    versions["python"] = platform.python_version()
    versions["kernel"] = platform.release()
    return versions


def write_labels(
    path: Path,
    *,
    capture: str,
    labels: list[Label],
    skipped: list[Skipped],
    tools: dict[str, str | None],
    capture_stats: dict[str, int],
    created: datetime | None = None,
) -> None:
    """Write the label file for one capture (atomically: a temporary file renamed)."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "capture": capture,
        "created": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": ["python", "tests/lab/lab.py", *sys.argv[1:]],
        "networks": {"ipv4": NETWORK4, "ipv6": NETWORK6},
        "hosts": {h.role: {"ipv4": h.ipv4, "ipv6": h.ipv6, "mac": h.mac} for h in HOSTS},
        "tools": tools,
        "capture_stats": capture_stats,
        "activities": [asdict(label) for label in labels],
        "skipped": [asdict(skip) for skip in skipped],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
