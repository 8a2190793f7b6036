"""The application-layer parsers: exact results, independent references (scapy's DNS
dissector, tshark's SNI and JA3), and fuzzing for totality."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import UDP
from scapy.utils import PcapReader

from sensors.flows import FlowMeter, MeterConfig
from sensors.packet import PacketDecoder
from sensors.pcapfile import read_frames
from sensors.protocols.dns import DnsMessage, parse_dns, parse_dns_tcp, rcode_name, type_name
from sensors.protocols.http import HttpRequest, parse_request, parse_response
from sensors.protocols.tls import NEED_MORE, client_hello_for_tests, parse_client_hello
from tests.conftest import SHARED_DATA, shared_capture

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None)


# --- DNS ------------------------------------------------------------------------------------


def _query(name: bytes, qtype: str = "A", **flags: int) -> bytes:
    return bytes(DNS(id=7, rd=1, qd=DNSQR(qname=name, qtype=qtype), **flags))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_query(b"example.org."), DnsMessage(7, False, 0, "example.org", 1, 11)),
        (_query(b"a.b.c.", "TXT"), DnsMessage(7, False, 0, "a.b.c", 16, 5)),
        (_query(b"x.", "NULL"), DnsMessage(7, False, 0, "x", 10, 1)),
        (_query(b"ex.org.", qr=1, rcode=3), DnsMessage(7, True, 3, "ex.org", 1, 6)),
        # Non-printable bytes, quote and backslash are escaped as ECS asks; a dot in a label too.
        (
            bytes.fromhex("0007 0100 0001 0000 0000 0000")
            + b'\x04\x00a"\\'  # one label of 4 bytes: NUL, a, quote, backslash
            + b"\x02b\xff\x00\x00\x01\x00\x01",
            DnsMessage(7, False, 0, '\\000a\\"\\\\.b\\255', 1, 7),
        ),
        (
            bytes.fromhex("0007 0100 0001 0000 0000 0000") + b"\x03a.b\x00\x00\x01\x00\x01",
            DnsMessage(7, False, 0, "a\\.b", 1, 3),
        ),
        (_query(b".", "NS"), DnsMessage(7, False, 0, ".", 2, 0)),
    ],
)
def test_dns_messages(message: bytes, expected: DnsMessage) -> None:
    assert expected == parse_dns(message)


def test_a_compression_pointer_is_followed_backwards_only() -> None:
    header = bytes.fromhex("0007 0100 0001 0000 0000 0000")
    backwards = header + b"\x03org\x00" + b"\x07example\xc0\x0c"
    # The question starts at 12 with "org"; a second name pointing back to it parses too.
    assert "example.org" == _name_at(backwards, 17)  # 7 + 1 + 3 = 11 octets
    loop = header + b"\xc0\x0c\x00\x01\x00\x01"  # points at itself
    forward = header + b"\xc0\x20\x00\x01\x00\x01"
    assert (None, None) == (parse_dns(loop), parse_dns(forward))


def _name_at(message: bytes, pos: int) -> str | None:
    from sensors.protocols.dns import _name

    parsed = _name(message, pos)
    if parsed is not None:
        assert len(parsed[0].encode()) >= parsed[2]  # escapes only ever lengthen the text
    return None if parsed is None else parsed[0]


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00" * 11,
        _query(b"example.org.")[:20],
        bytes.fromhex("0007 0100 0001 0000 0000 0000") + b"\x40abc",
    ],
)
def test_a_short_or_odd_dns_message_is_none(message: bytes) -> None:
    assert parse_dns(message) is None


def test_dns_over_tcp_has_a_length_prefix() -> None:
    message = _query(b"tcp.example.")
    assert DnsMessage(7, False, 0, "tcp.example", 1, 11) == parse_dns_tcp(
        len(message).to_bytes(2, "big") + message
    )


def test_dns_names_of_types_and_codes() -> None:
    assert [("AAAA", "TYPE999"), ("NOERROR", "SERVFAIL", "RCODE15")] == [
        (type_name(28), type_name(999)),
        (rcode_name(0), rcode_name(2), rcode_name(15)),
    ]


@pytest.mark.parametrize("tool", ["iodine", "dnscat2", "dns2tcp", "dnsextrator", "sods"])
def test_dns_questions_agree_with_scapy_on_real_tunnels(tool: str) -> None:
    capture = shared_capture(f"malicious-dns/{tool}.pcap")
    compared = 0
    with PcapReader(str(capture)) as reader:
        for packet in reader:
            if UDP not in packet or DNS not in packet or not packet[DNS].qd:
                continue
            ours = parse_dns(bytes(packet[UDP].payload))
            theirs = packet[DNS].qd[0]
            assert ours is not None
            assert theirs.qtype == ours.qtype
            name = theirs.qname.rstrip(b".")
            if name.isascii() and all(32 < b < 127 and b not in b'"\\' for b in name):
                assert name.decode() == ours.qname  # printable: the same text
                compared += 1
    assert compared > 0


@FUZZ
@given(st.binary(max_size=300))
def test_the_dns_parser_is_total(data: bytes) -> None:
    parse_dns(data)
    parse_dns_tcp(data)


# --- TLS ------------------------------------------------------------------------------------


def test_a_client_hello_gives_sni_version_and_ja3_without_grease() -> None:
    hello = parse_client_hello(client_hello_for_tests("Portal.Example.GOV"))
    assert hello is not None
    assert hello is not NEED_MORE
    assert ("portal.example.gov", "1.3", "771,4865-4866-49195,0-10-11-43-21,29-23,0") == (
        hello.server_name,  # type: ignore[union-attr]
        hello.version,  # type: ignore[union-attr]
        hello.ja3,  # type: ignore[union-attr]
    )


def test_every_prefix_of_a_client_hello_needs_more() -> None:
    whole = client_hello_for_tests("a.example", pad=3000)  # larger than one segment
    assert {NEED_MORE} == {parse_client_hello(whole[:cut]) for cut in range(6, len(whole))}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
        b"\x17\x03\x03\x00\x10" + bytes(16),
    ],
)
def test_what_is_not_a_client_hello_is_none(data: bytes) -> None:
    assert parse_client_hello(data) is None


@FUZZ
@given(st.binary(max_size=400))
def test_the_tls_parser_is_total(data: bytes) -> None:
    parse_client_hello(b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data)


@FUZZ
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=4))
def test_a_damaged_client_hello_never_raises(position: int, junk: bytes) -> None:
    whole = bytearray(client_hello_for_tests("fuzz.example"))
    at = 5 + position % (len(whole) - 5)
    whole[at : at + len(junk)] = junk
    parse_client_hello(bytes(whole))


def _tshark_hellos(capture: Path) -> dict[tuple[str, int, str, int], tuple[str | None, str]]:
    fields = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport"]
    fields += ["tls.handshake.extensions_server_name", "tls.handshake.ja3"]
    out = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y", "tls.handshake.type == 1", "-T", "fields"]
        + [arg for field in fields for arg in ("-e", field)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    hellos: dict[tuple[str, int, str, int], tuple[str | None, str]] = {}
    for line in out.splitlines():
        src4, src6, sport, dst4, dst6, dport, sni, ja3 = line.split("\t")
        key = (src4 or src6, int(sport), dst4 or dst6, int(dport))
        hellos.setdefault(key, (sni.lower() or None, ja3))  # the first hello of a connection
    return hellos


@pytest.mark.parametrize(
    "capture",
    [
        "slips/test-cc/test-cc-capture-1.pcap",
        "slips/test-cc/test-cc-capture-2.pcap",
        "zeek-traces/tls/heartbleed-encrypted.pcap",
        "zeek-traces/tls/CVE-2015-3194.pcap",
        "suricata-verify/bug-5713-01/TLSv1-Extracted-MaliciousC2.pcap",
    ],
)
def test_sni_and_ja3_agree_with_tshark(capture: str) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (tests/run installs it)")
    path = shared_capture(capture)
    expected = _tshark_hellos(path)
    decoder, flow_meter = PacketDecoder(), FlowMeter(MeterConfig(idle_timeout=86_400))
    for frame in read_frames(path):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        if packet is not None:
            flow_meter.add(packet, frame.data)
    flow_meter.flush()
    ours = {}
    for flow in flow_meter.drain():
        fields = flow.app.result() if flow.app else {}
        if "tls.client.ja3" in fields:
            from sensors.flows import FlowExporter

            record = FlowExporter("s").record(flow)
            key = (
                record["source.ip"],
                record["source.port"],
                record["destination.ip"],
                record["destination.port"],
            )
            ours[key] = (fields.get("tls.client.server_name"), fields["tls.client.ja3"])
    assert expected == ours
    assert expected  # the capture does hold ClientHellos


# --- HTTP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"POST /wp-login.php HTTP/1.1\r\nUser-Agent: Mozilla/5.0\r\n"
            b"HOST: Example.org\r\n\r\nlog=admin",
            HttpRequest("POST", "/wp-login.php", "1.1", "example.org", "Mozilla/5.0"),
        ),
        (b"GET / HTTP/1.0\r\n\r\n", HttpRequest("GET", "/", "1.0", None, None)),
        (
            b"GET /x HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
            HttpRequest("GET", "/x", "1.1", "2001:db8::1", None),
        ),
        (
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            HttpRequest("CONNECT", "a.example:443", "1.1", "a.example", None),
        ),
        (
            b"GET /only-a-request-line HTTP/1.1",
            HttpRequest("GET", "/only-a-request-line", "1.1", None, None),
        ),
    ],
)
def test_http_requests(data: bytes, expected: HttpRequest) -> None:
    assert expected == parse_request(data)


@pytest.mark.parametrize(
    "data", [b"", b"GET\r\n", b"FETCH / HTTP/1.1\r\n", b"GET / SPDY/3\r\n", b"\x16\x03\x01"]
)
def test_what_is_not_an_http_request_is_none(data: bytes) -> None:
    assert parse_request(data) is None


def test_a_long_target_is_cut_not_refused() -> None:
    request = parse_request(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
    assert request is not None
    assert 2048 == len(request.target)


def test_http_response_status() -> None:
    assert [200, 401, None, None] == [
        parse_response(b"HTTP/1.1 200 OK\r\n"),
        parse_response(b"HTTP/1.0 401 Unauthorized\r\n"),
        parse_response(b"HTTP/1.1 2x0 Odd\r\n"),
        parse_response(b"SSH-2.0-OpenSSH_9.2\r\n"),
    ]


@FUZZ
@given(st.binary(max_size=300))
def test_the_http_parsers_are_total(data: bytes) -> None:
    parse_request(b"GET " + data)
    parse_response(b"HTTP/1." + data)


def test_shared_data_is_where_the_tests_expect_it() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"{SHARED_DATA} is absent: the shared reference data is not beside this checkout"
        )
    assert (SHARED_DATA / "README.md").is_file()
