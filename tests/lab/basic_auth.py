"""A web server behind HTTP basic auth, for the lab's brute force and for an upload through the
DNS tunnel: 401 unless the user and password match; a POST's body is read and counted. It
logs each connection it accepts and each request it answers, one line each, so the lab knows
how many connections the attacker really made and how many bytes arrived.

    python basic_auth.py --bind 10.203.0.2 --port 8080 --user admin --password s3cret --log FILE
"""

from __future__ import annotations

import argparse
import base64
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a connection is one attempt.
    protocol_version = "HTTP/1.0"
    expected = ""
    journal: IO[str] = sys.stderr
    lock = threading.Lock()

    def setup(self) -> None:
        super().setup()
        self._note(f"connection {self.client_address[0]} {self.client_address[1]}")

    def do_GET(self) -> None:  # the name http.server dispatches to
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        self._note(f"upload {received}")
        self._answer()

    def _answer(self) -> None:
        given = self.headers.get("Authorization", "")
        if given == self.expected:
            self._note("request ok")
            self._reply(200, b"welcome\n")
        else:
            self._note("request denied" if given else "request anonymous")
            self._reply(401, b"denied\n", {"WWW-Authenticate": 'Basic realm="lab"'})

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _note(self, line: str) -> None:
        with self.lock:
            self.journal.write(line + "\n")
            self.journal.flush()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the journal says what matters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    with open(args.log, "a", encoding="utf-8") as journal:
        _Handler.expected = f"Basic {token}"
        _Handler.journal = journal
        server = ThreadingHTTPServer((args.bind, args.port), _Handler)
        # SIGTERM ends serve_forever from another thread, after the request in hand.
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever()
        server.server_close()


if __name__ == "__main__":
    main()
