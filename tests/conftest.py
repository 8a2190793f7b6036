"""Shared fixtures: a fresh store and app per test, served by a real uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.principals import create_principal
from api.settings import Settings, load_settings
from api.store import SqliteStore
from api.tokens import Role

DATA = Path(__file__).resolve().parent / "data"
LAB = Path(__file__).resolve().parents[1] / "api" / "demo" / "lab"  # the bundled lab captures
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Variables that steer the test-suite itself, not the code under test.
_TEST_CONTROLS = frozenset(
    {"TRUSTWATCH_TEST_ES_URL", "TRUSTWATCH_UPDATE_SNAPSHOTS", "TRUSTWATCH_SIGMAHQ_DIR"}
)


def shared_capture(relative: str) -> Path:
    """A capture from ../shared/data, or a skip that says why."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared reference data is not beside this checkout")
    return path


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TRUSTWATCH_* from the developer's shell leaks into a test, and sensors started by a
    test keep their default spool in the test's own directory, not the user's home."""
    import os

    for name in list(os.environ):
        if name.startswith("TRUSTWATCH_") and name not in _TEST_CONTROLS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A test certificate authority for HTTPS sites on loopback (scanner, scheduler, ratings)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No scheduler unless a test asks for one: it would scan the sites a test registers.
    return load_settings(data_dir=tmp_path / "data", scheduler=False)


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    opened = SqliteStore.open(settings.db_path)
    yield opened
    opened.close()


class LiveServer:
    """A real uvicorn serving one app on a loopback port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


class Tokens:
    """One token per role, created in the test's store."""

    def __init__(self, store: SqliteStore) -> None:
        self.admin = create_principal(store, Role.ADMIN, "admin", None, NOW)[0]
        self.analyst = create_principal(store, Role.ANALYST, "analyst", None, NOW)[0]
        self.sensor = create_principal(store, Role.SENSOR, "sensor-1", None, NOW)[0]
        self.other_sensor = create_principal(store, Role.SENSOR, "sensor-2", None, NOW)[0]

    def of(self, role: str | None) -> dict[str, str]:
        if role is None:
            return {}
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture
def tokens(store: SqliteStore) -> Tokens:
    return Tokens(store)


@pytest.fixture
def server(settings: Settings, store: SqliteStore) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, store=store)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http
