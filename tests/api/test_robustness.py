"""Failure paths found in review: oversized bodies before auth, a busy store, numbers too
large for the store, concurrent first opens, and start-up mistakes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.store import SqliteStore
from tests.conftest import Tokens

TRUSTWATCH = [sys.executable, "-m", "api.cli"]


def test_a_large_body_without_a_token_is_refused_before_it_is_read(client: httpx.Client) -> None:
    body = b"x" * (4 * 1024 * 1024)
    response = client.post(
        "/api/v1/tokens", content=body, headers={"Content-Type": "application/json"}
    )
    assert (413, "body of 4194304 bytes exceeds the limit of 65536") == (
        response.status_code,
        response.json()["detail"],
    )


def test_a_large_chunked_body_is_cut_off(client: httpx.Client, tokens: Tokens) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * 4096

    response = client.post(
        "/api/v1/tokens",
        content=chunks(),
        headers={"Content-Type": "application/json", **tokens.of("admin")},
    )
    assert response.status_code in (400, 413)


@pytest.fixture
def locked(store: SqliteStore, tokens: Tokens) -> Iterator[None]:
    """Another writer holds the database for longer than the store waits (cut to 0.1 s)."""
    store._writer.execute("PRAGMA busy_timeout = 100")
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


@pytest.mark.usefixtures("locked")
def test_a_busy_store_is_503_not_500(client: httpx.Client, tokens: Tokens) -> None:
    beat = {
        "schema_version": 1,
        "sensor_id": "sensor-1",
        "sent_at": "2026-01-02T03:04:05Z",
        "sensor_version": "1",
        "counters": {},
    }
    responses = [
        client.post("/api/v1/sensors/heartbeat", json=beat, headers=tokens.of("sensor")),
        client.post(
            "/api/v1/tokens", json={"role": "analyst", "name": "x"}, headers=tokens.of("admin")
        ),
    ]
    assert [(503, "5"), (503, "5")] == [
        (r.status_code, r.headers["retry-after"]) for r in responses
    ]


def test_token_create_on_a_busy_store_is_a_clear_error(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "trustwatch.sqlite3")
    store.close()
    holder = sqlite3.connect(tmp_path / "trustwatch.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = subprocess.run(
            [
                *TRUSTWATCH,
                "token",
                "create",
                "--role",
                "admin",
                "--name",
                "a",
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 2 == result.returncode
    assert result.stderr.startswith("trustwatch: error: store write failed: database is locked")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/flows?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OjE"),  # 10**23:1
        ("DELETE", "/api/v1/tokens/99999999999999999999"),
    ],
)
def test_numbers_beyond_the_store_are_422(
    client: httpx.Client, tokens: Tokens, method: str, path: str
) -> None:
    assert 422 == client.request(method, path, headers=tokens.of("admin")).status_code


def test_revoke_with_a_huge_id_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*TRUSTWATCH, "token", "revoke", "99999999999999999999", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 2 == result.returncode
    assert "is not a token id" in result.stderr


def _open_and_close(path: str) -> str:
    try:
        SqliteStore.open(Path(path)).close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_many_processes_opening_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    outcomes: list[str] = []
    with context.Pool(6) as pool:
        for round_ in range(5):
            path = str(tmp_path / f"round{round_}" / "trustwatch.sqlite3")
            outcomes += pool.map(_open_and_close, [path] * 6)
    assert ["ok"] * 30 == outcomes


def test_serve_leaves_an_existing_data_directory_s_mode_alone(tmp_path: Path) -> None:
    from api.service import _lock_data_dir

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    handle = _lock_data_dir(shared)
    handle.close()
    assert 0o755 == shared.stat().st_mode & 0o777


def test_a_missing_tls_file_stops_serve_before_anything_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [*TRUSTWATCH, "serve", "--data-dir", str(data)],
        env={
            "PATH": "/usr/bin:/bin",
            "TRUSTWATCH_TLS_CERT": str(tmp_path / "missing.pem"),
            "TRUSTWATCH_TLS_KEY": str(tmp_path / "missing.key"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 2 == result.returncode
    assert "trustwatch: error: cannot use TLS certificate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists()
