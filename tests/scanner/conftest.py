"""Real servers on loopback for the scanner's tests: web sites over HTTP and HTTPS with
certificates from a trustme CA, each answering from a table of routes the test chooses.

The scanner refuses loopback targets by default; :func:`loopback_policy` allows 127.0.0.0/8
and ::1 only, and points the web checks at the site's ports.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from sensors.scanner.policy import ScanPolicy

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Route:
    """What a path answers: status, headers (repeats allowed, in order) and body."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/html; charset=utf-8"),)
    body: bytes = b"<!doctype html><title>ok</title><p>ok</p>"


HandlerFn = Callable[[BaseHTTPRequestHandler], Route | None]


class _QuietServer(ThreadingHTTPServer):
    """Scanners probe with handshakes a server refuses (old protocols, odd ciphers); the
    standard server prints each one as a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None


@dataclass
class Site:
    """A web server on 127.0.0.1: ``routes`` maps a path to a :class:`Route` (or a function
    of the request returning one); unknown paths get 404. ``requests`` records what came."""

    routes: dict[str, Route | HandlerFn] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    address: str = "127.0.0.1"
    _server: ThreadingHTTPServer | None = None

    def start(self, context: ssl.SSLContext | None = None) -> Site:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "TestSite/1.0"

            def _answer(self, send_body: bool) -> None:
                site.requests.append((self.command, self.path, dict(self.headers)))
                path = self.path.split("?", 1)[0]
                route = site.routes.get(path)
                if callable(route):
                    route = route(self)
                if route is None:
                    route = Route(404, (("Content-Type", "text/plain"),), b"not found")
                self.send_response(route.status)
                for name, value in route.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(route.body)

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

            def do_OPTIONS(self) -> None:
                self._answer(True)

            def log_message(self, *_: Any) -> None:
                return None

        server = _QuietServer((self.address, self.port), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def server_context(ca: trustme.CA, *names: str, **issue: Any) -> ssl.SSLContext:
    """A server context with a certificate from ``ca`` for ``names`` (default 127.0.0.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*(names or ("127.0.0.1",)), **issue).configure_cert(context)
    return context


@pytest.fixture
def sites() -> Iterator[Callable[..., Site]]:
    """``sites(routes, context=None)`` starts a site (HTTPS when given a context) and stops
    it after the test."""
    started: list[Site] = []

    def start(
        routes: dict[str, Route | HandlerFn] | None = None, context: ssl.SSLContext | None = None
    ) -> Site:
        site = Site(routes=dict(routes or {})).start(context)
        started.append(site)
        return site

    yield start
    for site in started:
        site.stop()


def loopback_policy(
    *, https: Site | None = None, http: Site | None = None, ca_file: Path | None = None, **kw: Any
) -> ScanPolicy:
    """A policy that may scan loopback, with the web checks on the given sites' ports."""
    ports: dict[str, Any] = {}
    if https is not None:
        ports["https_port"] = https.port
    if http is not None:
        ports["http_port"] = http.port
    kw.setdefault("connect_timeout", 3.0)
    kw.setdefault("read_timeout", 5.0)
    kw.setdefault("host_budget", 60.0)
    return ScanPolicy(allowed_networks=LOOPBACK, ca_file=ca_file, **ports, **kw)
