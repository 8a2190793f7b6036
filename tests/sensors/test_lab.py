"""The flow meter on the traffic lab's captures: real tools between network namespaces
(``tests/lab/``), each capture labelled with what the tools did. The committed captures under
``api/demo/lab/`` are checked on every run; a live test runs the lab itself when it can.

The labels' expectations come from the tools and their servers (pages fetched, ports probed,
connections accepted, queries logged), never from metering, so these tests check the meter
against the tools.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS
from scapy.layers.l2 import Ether

from sensors.pcapfile import read_frames
from tests.conftest import LAB as LAB_DATA
from tests.sensors.test_flows import meter

LAB_SCRIPT = Path(__file__).resolve().parents[1] / "lab" / "lab.py"
ACTIVITIES = ("beacon", "browse", "bruteforce", "dns", "dns_tunnel", "nmap_connect", "nmap_syn")
MAX_CAPTURE_BYTES = 200 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Record = dict[str, Any]


def _ns(stamp: str) -> int:
    """An ``event.start`` (RFC 3339, microseconds, UTC) as Unix nanoseconds."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _key(record: Record) -> tuple[str, str, str, int]:
    return (
        record["source.ip"],
        record["destination.ip"],
        record["network.transport"],
        record["destination.port"],
    )


def _expected_flows(label: dict[str, Any]) -> Counter[tuple[str, str, str, int]]:
    expected: Counter[tuple[str, str, str, int]] = Counter()
    for group in label["expected"]["flows"]:
        for port in group["dst_ports"]:
            expected[(group["src"], group["dst"], group["transport"], port)] += group["count"]
    return expected


def activity_flows(records: list[Record], label: dict[str, Any]) -> list[Record]:
    """The TCP and UDP flows a label claims: started by one of its hosts in its time range
    (``event.start`` has microseconds: the range is widened to whole microseconds)."""
    start, end = label["start"] // 1000 * 1000, label["end"]
    return [
        r
        for r in records
        if r["network.transport"] in ("tcp", "udp")
        and r["source.ip"] in label["src"]
        and start <= _ns(r["event.start"]) <= end
    ]


def _shapes(label: dict[str, Any], flows: list[Record]) -> tuple[Any, Any]:
    """What each flow of the activity must look like, where the tools make it certain, as
    (expected, actual) whole values."""
    by_port = {r["destination.port"]: r for r in flows}
    shape = {
        port: (r["source.packets"], r["destination.packets"], r["flow.end_reason"])
        for port, r in by_port.items()
    }
    activity = label["activity"]
    if activity in ("nmap_syn", "nmap_connect"):
        # A closed port answers the SYN with RST. On the open one, -sS's SYN-ACK is reset by
        # the attacker's kernel (SYN, RST against SYN-ACK) and -sT completes the handshake,
        # then resets (SYN, ACK, RST against SYN-ACK). A filtered port (a lost answer: nmap
        # does not retry here) is a lone SYN.
        states = label["evidence"]["port_states"]
        opened = (2, 1, "rst") if activity == "nmap_syn" else (3, 1, "rst")
        expected = dict.fromkeys(states.get("closed", []), (1, 1, "rst"))
        expected |= dict.fromkeys(states.get("open", []), opened)
        expected |= dict.fromkeys(states.get("filtered", []), (1, 0, "end_of_capture"))
        return expected, shape
    if activity == "dns":  # one query, one answer; UDP has no end but the capture's
        return [(1, 1, "end_of_capture")] * len(flows), [
            (r["source.packets"], r["destination.packets"], r["flow.end_reason"]) for r in flows
        ]
    if activity == "browse":  # HTTP/1.0 pages: both sides close with FIN
        return ["fin"] * len(flows), [r["flow.end_reason"] for r in flows]
    return None, None


def _entropy(data: bytes) -> float:
    """Shannon entropy in bits per octet.

    >>> _entropy(b"abab"), _entropy(bytes(range(256)))
    (1.0, 8.0)
    """
    counts = Counter(data)
    return -sum(n / len(data) * math.log2(n / len(data)) for n in counts.values()) + 0.0


def dns_query_names(path: Path, label: dict[str, Any]) -> list[bytes]:
    """The names in the DNS queries the label's hosts sent to port 53 in its time range,
    read with scapy independently of the meter (without the trailing dot)."""
    names = []
    for frame in read_frames(path):
        if not label["start"] <= frame.ts_ns <= label["end"]:
            continue
        packet = Ether(frame.data)
        if not packet.haslayer(DNS) or packet[DNS].qr != 0 or not packet[DNS].qd:
            continue
        ip = packet.payload
        if ip.src in label["src"] and ip.dst in label["dst"] and ip.payload.dport == 53:
            names.append(bytes(packet[DNS].qd[0].qname).rstrip(b"."))
    return names


def check_capture(path: Path, labels_path: Path) -> dict[str, int]:
    """Assert every label's expectations on the capture; returns flows per activity."""
    document = json.loads(labels_path.read_text())
    records, _ = meter(path)
    claimed: Counter[tuple[str, str, str, int]] = Counter()
    found = {}
    for label in document["activities"]:
        flows = activity_flows(records, label)
        expected = _expected_flows(label)
        assert (label["activity"], expected) == (
            label["activity"],
            Counter(_key(r) for r in flows),
        )
        shape_expected, shape_actual = _shapes(label, flows)
        assert shape_expected == shape_actual
        queries = label["expected"]["dns_queries"]
        if queries is not None:
            suffix = queries["suffix"].encode()
            names = [n for n in dns_query_names(path, label) if n.endswith(b"." + suffix)]
            long = [n for n in names if len(n) >= queries["min_length"]]
            payload = b"".join(n[: -len(suffix) - 1].replace(b".", b"") for n in long)
            assert (True, True) == (
                len(long) >= queries["min_count"],
                _entropy(payload) >= queries["min_entropy"],
            ), (len(names), len(long), _entropy(payload))
        claimed += expected
        found[label["activity"]] = len(flows)
    # Nothing else: every TCP/UDP flow in the capture is one the labels explain.
    assert claimed == Counter(_key(r) for r in records if r["network.transport"] in ("tcp", "udp"))
    return found


def test_every_activity_has_a_small_committed_capture() -> None:
    labelled = sorted(p.name.removesuffix(".labels.json") for p in LAB_DATA.glob("*.labels.json"))
    sizes = {name: (LAB_DATA / f"{name}.pcap").stat().st_size for name in labelled}
    assert (list(ACTIVITIES), {}) == (
        labelled,
        {name: size for name, size in sizes.items() if size > MAX_CAPTURE_BYTES},
    )


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_committed_lab_capture_meets_its_labels(activity: str) -> None:
    labels = LAB_DATA / f"{activity}.labels.json"
    document = json.loads(labels.read_text())
    assert ([activity], []) == (
        [a["activity"] for a in document["activities"]],
        document["skipped"],
    )
    flows = check_capture(LAB_DATA / document["capture"], labels)
    assert flows[activity] > 0


def test_committed_scans_probe_twenty_ports_once_each() -> None:
    """The figures the README of api/demo/lab promises, spelled out."""
    for activity in ("nmap_syn", "nmap_connect"):
        records, _ = meter(LAB_DATA / f"{activity}.pcap")
        ports = Counter(r["destination.port"] for r in records if r["source.ip"] == "10.203.0.66")
        assert dict.fromkeys([*range(1, 20), 80], 1) == dict(ports)


def _lab_unavailable(tools: tuple[str, ...]) -> str | None:
    if sys.platform != "linux":
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, raw sockets); run the tests as root"
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE)
    capabilities = int(match[1], 16) if match else 0
    cap_net_admin, cap_sys_admin = 12, 21
    if not capabilities >> cap_net_admin & 1 or not capabilities >> cap_sys_admin & 1:
        return "no CAP_NET_ADMIN/CAP_SYS_ADMIN here (a restricted container?): no namespaces"
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (tests/lab/install.sh installs them)"
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False, timeout=10)
    if done.returncode != 0:
        return f"ip netns is unavailable: {done.stderr.decode(errors='replace').strip()}"
    return None


def test_live_lab_capture_meets_its_labels(tmp_path: Path) -> None:
    """Runs the lab for real (a short browse and a SYN scan), then meters what it captured."""
    reason = _lab_unavailable(("ip", "tcpdump", "ss", "sysctl", "ethtool", "curl", "nmap"))
    if reason:
        pytest.skip(reason)
    process = subprocess.Popen(
        [
            sys.executable,
            str(LAB_SCRIPT),
            "capture",
            "--out",
            str(tmp_path),
            "--activities",
            "browse,nmap_syn",
            "--pages",
            "3",
            "--pages6",
            "1",
            "--ports",
            "20-29,80",
            "--gap",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=60)
    assert 0 == process.returncode, err
    left = [n for n in _namespaces() if n.startswith(f"twlab-{process.pid}-")]
    assert ([], ["lab.pcap", "labels.json"]) == (left, json.loads(out)["files"])
    flows = check_capture(tmp_path / "lab.pcap", tmp_path / "labels.json")
    assert {"browse": 4, "nmap_syn": 11} == flows


def _namespaces() -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _records(activity: str) -> list[dict[str, object]]:
    return meter(LAB_DATA / f"{activity}.pcap")[0]


@pytest.mark.parametrize("activity", ["nmap_syn", "nmap_connect"])
def test_a_port_scan_shows_as_refused_connections(activity: str) -> None:
    states = Counter(
        r["flow.state"] for r in _records(activity) if r.get("network.transport") == "tcp"
    )
    # 19 closed ports answer RST (Zeek's REJ); the open port 80 is reset by the scanner.
    assert {"REJ": 19, "RSTO": 1} == dict(states)


def test_a_login_brute_force_shows_as_many_refused_http_logins() -> None:
    logins = [r for r in _records("bruteforce") if r.get("destination.port") == 8080]
    assert ([200] + [401] * 7, {"Mozilla/4.0 (Hydra)"}) == (
        sorted(r["http.response.status_code"] for r in logins),  # type: ignore[type-var]
        {r["user_agent.original"] for r in logins},
    )


def test_the_dns_tunnel_carries_every_query_in_one_flow() -> None:
    (tunnel,) = [r for r in _records("dns_tunnel") if r.get("flow.dns.queries")]
    labels = json.loads((LAB_DATA / "dns_tunnel.labels.json").read_text(encoding="utf-8"))
    assert 113 == tunnel["flow.dns.queries"] == tunnel["flow.dns.unique_names"]
    assert 200 <= tunnel["flow.dns.max_name_length"] <= 255  # type: ignore[operator]
    assert "tun.lab.test" in json.dumps(labels)
