"""Application metadata of a flow, read from its first payload-carrying packets.

Which protocol a flow speaks is judged by its content, not its port (TLS and HTTP are
recognised on any port; DNS on the DNS ports). Each flow looks at a bounded number of packets
and bytes, then stops: after that, a packet costs the flow meter one attribute check.

What a flow yields, by ECS name:

* DNS: ``dns.question.name``, ``dns.question.type`` (first query), ``dns.response_code``
  (first answer), and over the whole flow ``flow.dns.queries``, ``flow.dns.unique_names``
  (counted up to :data:`MAX_NAMES`) and ``flow.dns.max_name_length`` (octets) — a tunnel shows as
  many long, distinct names in one flow;
* TLS: ``tls.client.server_name``, ``tls.client.ja3``, ``tls.version``,
  ``tls.version_protocol``;
* HTTP: ``http.request.method``, ``http.version``, ``url.original``, ``url.domain``,
  ``user_agent.original`` (first request), ``http.response.status_code`` (first response).
"""

from __future__ import annotations

from typing import Any, Final

from sensors.protocols.dns import DNS_PORTS, parse_dns, parse_dns_tcp, rcode_name, type_name
from sensors.protocols.http import MAX_HEAD, looks_like_request, parse_request, parse_response
from sensors.protocols.tls import NEED_MORE, ClientHello, looks_like_tls, parse_client_hello

MAX_PACKETS: Final = 6  # per direction, before a flow stops looking
MAX_BUFFER: Final = 16 * 1024  # client bytes kept to complete a ClientHello or request head
MAX_NAMES: Final = 256  # distinct DNS names remembered per flow

_UNKNOWN, _DNS, _DNS_TCP, _TLS, _HTTP, _DONE = range(6)
_TCP: Final = 6
_UDP: Final = 17


class AppState:
    """One flow's inspection: what it has found and what it still waits for."""

    __slots__ = (
        "buffer",
        "client_packets",
        "dns_max",
        "dns_names",
        "dns_queries",
        "fields",
        "kind",
        "server_packets",
        "want_response",
    )

    def __init__(self, proto: int, sport: int, dport: int) -> None:
        self.fields: dict[str, Any] = {}
        self.buffer = b""
        self.client_packets = 0
        self.server_packets = 0
        self.want_response = False
        self.dns_queries = 0
        self.dns_max = 0
        self.dns_names: set[str] = set()
        dns_port = sport in DNS_PORTS or dport in DNS_PORTS
        if proto == _UDP:
            self.kind = _DNS if dns_port else _DONE
        elif proto == _TCP:
            self.kind = _DNS_TCP if dns_port else _UNKNOWN
        else:
            self.kind = _DONE

    @property
    def done(self) -> bool:
        return self.kind == _DONE

    def feed(self, forward: bool, payload: bytes) -> None:
        """One payload, from the client (``forward``) or the server."""
        if forward:
            self.client_packets += 1
        else:
            self.server_packets += 1
        kind = self.kind
        if kind == _DNS:
            self._dns(parse_dns(payload))
            return
        if kind == _DNS_TCP:
            self._dns(parse_dns_tcp(payload))
            if self.client_packets + self.server_packets >= 2 * MAX_PACKETS:
                self.kind = _DONE
            return
        if forward:
            if kind == _UNKNOWN:
                kind = self.kind = self._classify(payload)
            if kind == _TLS:
                self._tls(payload)
            elif kind == _HTTP and not self.want_response:
                self._http_request(payload)
        elif self.want_response:
            status = parse_response(payload)
            if status is not None:
                self.fields["http.response.status_code"] = status
            self.kind = _DONE
        if self.client_packets >= MAX_PACKETS or self.server_packets >= MAX_PACKETS:
            self.kind = _DONE

    def result(self) -> dict[str, Any]:
        """The ECS fields found so far (DNS aggregates included)."""
        if self.dns_queries:
            self.fields["flow.dns.queries"] = self.dns_queries
            self.fields["flow.dns.unique_names"] = len(self.dns_names)
            self.fields["flow.dns.max_name_length"] = self.dns_max
        return self.fields

    # -- per protocol ---------------------------------------------------------------------------

    def _classify(self, payload: bytes) -> int:
        if looks_like_tls(payload):
            return _TLS
        if looks_like_request(payload):
            return _HTTP
        return _DONE

    def _dns(self, message: Any) -> None:
        if message is None:
            return
        fields = self.fields
        if message.is_response:
            if "dns.response_code" not in fields:
                fields["dns.response_code"] = rcode_name(message.rcode)
            return
        if message.qname is None:
            return
        self.dns_queries += 1
        self.dns_max = max(self.dns_max, message.qname_octets)
        if len(self.dns_names) < MAX_NAMES:
            self.dns_names.add(message.qname.lower())
        if "dns.question.name" not in fields:
            fields["dns.question.name"] = message.qname
            fields["dns.question.type"] = type_name(message.qtype or 0)

    def _tls(self, payload: bytes) -> None:
        self.buffer = (self.buffer + payload)[:MAX_BUFFER]
        hello = parse_client_hello(self.buffer)
        if hello is NEED_MORE and len(self.buffer) < MAX_BUFFER:
            return
        self.buffer = b""
        self.kind = _DONE
        if not isinstance(hello, ClientHello):
            return
        fields = self.fields
        if hello.server_name:
            fields["tls.client.server_name"] = hello.server_name
        fields["tls.client.ja3"] = hello.ja3_hash
        fields["tls.version"] = hello.version
        fields["tls.version_protocol"] = "tls"

    def _http_request(self, payload: bytes) -> None:
        self.buffer = (self.buffer + payload)[:MAX_HEAD]
        complete = b"\r\n\r\n" in self.buffer or len(self.buffer) >= MAX_HEAD
        if not complete and self.client_packets < MAX_PACKETS:
            return
        request = parse_request(self.buffer)
        self.buffer = b""
        if request is None:
            self.kind = _DONE
            return
        fields = self.fields
        fields["http.request.method"] = request.method
        fields["http.version"] = request.version
        fields["url.original"] = request.target
        if request.host:
            fields["url.domain"] = request.host
        if request.user_agent:
            fields["user_agent.original"] = request.user_agent
        self.want_response = True
