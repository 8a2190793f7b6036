"""Running the service: ``trustwatch serve``.

Exactly one service runs per data directory: it holds an exclusive lock on
``<data_dir>/serve.lock`` (so that background jobs, added later, run in exactly one process).
On an empty store it creates the first admin token and prints it once.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import uvicorn

from api.app import create_app
from api.errors import ConfigError
from api.logs import configure_logging
from api.principals import bootstrap_admin
from api.settings import Settings
from api.store import open_store

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Run the service until interrupted (SIGINT or SIGTERM), then close everything."""
    configure_logging(settings.log_level)
    _check_tls(settings)
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal with the handler
    # it found in place: make that handler an exit, so the ``finally`` blocks below run (the
    # store checkpoints and closes, the lock is released) instead of the process dying.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    lock = _lock_data_dir(settings.data_dir)
    try:
        store = open_store(settings)
        try:
            token = bootstrap_admin(store, datetime.now(UTC))
            if token is not None:
                _announce_admin(token)
            app = create_app(settings, store=store)
            config = uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
                ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
                log_config=None,
                access_log=False,
                server_header=False,
                proxy_headers=False,
                timeout_keep_alive=30,
            )
            scheme = "https" if settings.tls else "http"
            log.info(
                "serving",
                extra={
                    "url": f"{scheme}://{settings.host}:{settings.port}",
                    "data_dir": str(settings.data_dir),
                },
            )
            uvicorn.Server(config).run()
        finally:
            store.close()
    finally:
        lock.close()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _check_tls(settings: Settings) -> None:
    """Load the certificate and key now, so a mistake stops start-up before anything is made."""
    if settings.tls_cert is None or settings.tls_key is None:
        return
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use TLS certificate {settings.tls_cert} with key {settings.tls_key}: {exc}"
        ) from exc


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    try:
        if not data_dir.exists():
            data_dir.mkdir(mode=0o700, parents=True)
        elif data_dir.stat().st_mode & 0o077:
            # Not ours to change (it may be shared): the store's files are private anyway.
            log.warning(
                "data directory is readable by other users; the store files themselves are not",
                extra={"data_dir": str(data_dir)},
            )
        handle = (data_dir / "serve.lock").open("ab")
    except OSError as exc:
        raise ConfigError(f"cannot use data directory {data_dir}: {exc.strerror}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise ConfigError(
            f"another trustwatch serve is running on {data_dir}; one service per data directory"
        ) from exc
    return handle


def _announce_admin(token: str) -> None:
    # Printed, not logged: the token must not end up in log collection. Shown only this once.
    sys.stdout.write(
        "\nTrustWatch created the first admin token. It is shown only now; store it safely:\n\n"
        f"    {token}\n\n"
        "Create more tokens with `trustwatch token create` or POST /api/v1/tokens.\n\n"
    )
    sys.stdout.flush()
