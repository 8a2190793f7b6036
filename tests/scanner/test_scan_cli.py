"""``trustwatch sensor scan`` as a user runs it: a real process scanning real loopback sites,
printing by area, as JSON, and shipping the result to a real service that stores it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
import trustme

from tests.conftest import LiveServer, Tokens
from tests.scanner.conftest import Route, Site, server_context

TRUSTWATCH = [sys.executable, "-m", "api.cli", "sensor", "scan"]
HOME = Route(
    headers=(
        ("Content-Type", "text/html; charset=utf-8"),
        ("Strict-Transport-Security", "max-age=31536000"),
    ),
    body=b'<!doctype html><title>Portal</title><a href="/privacy">Privacy policy</a>',
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRUSTWATCH, *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _site_args(https: Site, http: Site, ca_file: Path) -> list[str]:
    return [
        "127.0.0.1",
        "--allow-network",
        "127.0.0.1/32",
        "--https-port",
        str(https.port),
        "--http-port",
        str(http.port),
        "--trust-ca",
        str(ca_file),
        "--timeout",
        "3",
        "--port-rate",
        "200",
    ]


@pytest.fixture
def portal(sites: Callable[..., Site], ca: trustme.CA) -> tuple[Site, Site]:
    https = sites({"/": HOME}, server_context(ca))
    redirect = Route(301, (("Location", f"https://127.0.0.1:{https.port}/"),), b"")
    http = sites({"/": redirect})
    return https, http


def test_a_scan_prints_every_area_and_both_sub_grades(
    portal: tuple[Site, Site], ca_file: Path
) -> None:
    https, http = portal
    done = _run(*_site_args(https, http, ca_file))
    assert 0 == done.returncode, done.stderr
    for title in ("TLS and certificates", "HTTP security", "Exposure", "Disclosure"):
        assert title in done.stdout
    assert "tls_ssllabs_compat" in done.stdout
    assert "http_observatory_compat" in done.stdout
    assert "Traceback" not in done.stderr


def test_json_output_is_the_whole_report(portal: tuple[Site, Site], ca_file: Path) -> None:
    https, http = portal
    done = _run(*_site_args(https, http, ca_file), "--json", "--only", "http,disclosure")
    assert 0 == done.returncode, done.stderr
    report = orjson.loads(done.stdout)
    assert ("127.0.0.1", ["127.0.0.1"]) == (report["host"], report["addresses"])
    assert {"http", "disclosure"} == {c["area"] for c in report["checks"]}
    assert ["http_observatory_compat"] == [g["name"] for g in report["grades"]]
    privacy = next(c for c in report["checks"] if c["id"] == "disclosure.privacy-policy")
    assert "pass" == privacy["status"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1"], "loopback address"),
        (["https://example.gov/"], "not a URL"),
        (["example.gov", "--only", "tls,bogus"], "unknown area bogus"),
        (["example.gov", "--trust-ca", "/nonexistent.pem"], "is not a file"),
        (["example.gov", "--allow-network", "10.0.0.0/33"], "not an IP network"),
        (["example.gov", "--api", "ftp://x"], "give the service's URL"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(args: list[str], message: str) -> None:
    done = _run(*args)
    assert (2, "") == (done.returncode, done.stdout)
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_with_api_the_scan_is_stored_and_readable(
    portal: tuple[Site, Site], ca_file: Path, server: LiveServer, tokens: Tokens, tmp_path: Path
) -> None:
    https, http = portal
    token_file = tmp_path / "token"
    token_file.write_text(tokens.sensor)
    args = [*_site_args(https, http, ca_file), "--only", "http,availability"]
    ship = ["--api", server.url, "--token-file", str(token_file), "--sensor-id", "sensor-1"]
    done = _run(*args, *ship)
    assert 0 == done.returncode, done.stderr
    assert "stored" in done.stderr
    stored = httpx.get(
        f"{server.url}/api/v1/scans",
        params={"domain": "127.0.0.1"},
        headers=tokens.of("analyst"),
        timeout=10,
    ).json()["items"]
    assert 1 == len(stored)
    (scan,) = stored
    assert ("127.0.0.1", "sensor-1") == (scan["url.domain"], scan["observer.name"])
    ids = {c["id"] for c in scan["checks"]}
    assert "grade.http_observatory_compat" in ids
    assert any(i.startswith("availability.") for i in ids)
    assert all(c["summary"] for c in scan["checks"])


def test_a_wrong_token_is_refused_after_the_scan_printed(
    portal: tuple[Site, Site], ca_file: Path, server: LiveServer, tokens: Tokens
) -> None:
    https, http = portal
    args = [*_site_args(https, http, ca_file), "--only", "availability"]
    done = _run(
        *args,
        "--api",
        server.url,
        "--sensor-id",
        "sensor-1",
        env={"TRUSTWATCH_TOKEN": "tw_000000000000_" + "A" * 43},
    )
    assert 1 == done.returncode
    assert "Availability" in done.stdout
    assert "401" in done.stderr
