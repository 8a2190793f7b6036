"""The ``trustwatch`` command as a user runs it: real processes, real files, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from sensors.wire import validate_record
from tests.conftest import DATA

TRUSTWATCH = [sys.executable, "-m", "api.cli"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    return subprocess.run(
        [*TRUSTWATCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        check=False,
    )


def test_token_create_list_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = run("token", "create", "--role", "sensor", "--name", "edge-1", "--data-dir", data)
    assert 0 == created.returncode, created.stderr
    token = created.stdout.strip()
    assert token.startswith("tw_")
    assert len(token.splitlines()) == 1
    assert "created sensor token 1 (edge-1) for sensor edge-1; shown once" in created.stderr

    listed = run("token", "list", "--data-dir", data)
    assert token.split("_", 2)[2] not in listed.stdout
    assert [
        "1",
        "sensor",
        token.split("_")[1],
        "edge-1",
        "active",
        "edge-1",
    ] == listed.stdout.splitlines()[1].split()

    assert 0 == run("token", "revoke", "1", "--data-dir", data).returncode
    assert "revoked" in run("token", "list", "--data-dir", data).stdout
    missing = run("token", "revoke", "42", "--data-dir", data)
    assert (1, "trustwatch: error: no token with id 42\n") == (missing.returncode, missing.stderr)
    assert 0o700 == (tmp_path / "data").stat().st_mode & 0o777
    assert 0o600 == (tmp_path / "data" / "trustwatch.sqlite3").stat().st_mode & 0o777


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "--role", "sensor", "--name", "bad name"), "sensor id 'bad name'"),
        (
            ("token", "create", "--role", "analyst", "--name", "x", "--sensor-id", "s"),
            "a sensor id applies to sensor tokens only",
        ),
    ],
)
def test_token_mistakes_are_clear(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run(*args, "--data-dir", str(tmp_path))
    assert (2, True, "Traceback" not in result.stderr) == (
        result.returncode,
        message in result.stderr,
        True,
    )


def test_serve_refuses_insecure_or_broken_configuration(tmp_path: Path) -> None:
    result = run("serve", env={"TRUSTWATCH_HOST": "0.0.0.0", "TRUSTWATCH_DATA_DIR": str(tmp_path)})  # noqa: S104
    assert 2 == result.returncode
    assert result.stderr.startswith("trustwatch: error: invalid configuration")
    assert "not loopback and no TLS" in result.stderr
    assert "Traceback" not in result.stderr
    typo = run("serve", env={"TRUSTWATCH_PORTT": "1"})
    assert (
        2,
        "trustwatch: error: unknown setting(s) TRUSTWATCH_PORTT; see the README's table\n",
    ) == (typo.returncode, typo.stderr)


def test_sensor_net_writes_valid_records_atomically(tmp_path: Path) -> None:
    out = tmp_path / "flows.jsonl"
    result = run(
        "sensor",
        "net",
        "--pcap",
        str(DATA / "mixed.pcap"),
        "--out",
        str(out),
        "--sensor-id",
        "edge-1",
    )
    assert 0 == result.returncode, result.stderr
    summary = orjson.loads(result.stdout)
    assert (56, 56, 19, False) == (
        summary["frames"],
        summary["packets"],
        summary["flows"],
        summary["truncated"],
    )
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert 19 == len(records)
    for record in records:
        validate_record(record)
    assert [out.name] == [p.name for p in tmp_path.iterdir()]  # no temporary file left behind


def _truncated(tmp_path: Path) -> Path:
    cut = tmp_path / "cut.pcap"
    data = (DATA / "mixed.pcap").read_bytes()
    cut.write_bytes(data[: len(data) - 30])
    return cut


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: d / "missing.pcap", "cannot open: No such file or directory"),
        (
            lambda d: (d / "text.pcap").write_text("hello, not a capture") and d / "text.pcap",
            "not a pcap or pcapng file",
        ),
        (lambda d: (d / "empty.pcap").write_bytes(b"") or d / "empty.pcap", "empty or too short"),
        (_truncated, "truncated at byte 4833, inside a record, after 55 complete packets"),
    ],
)
def test_sensor_net_refuses_bad_captures_and_writes_nothing(
    tmp_path: Path, make_input: object, message: str
) -> None:
    capture = make_input(tmp_path)  # type: ignore[operator]
    out = tmp_path / "out" / "flows.jsonl"
    out.parent.mkdir()
    result = run("sensor", "net", "--pcap", str(capture), "--out", str(out), "--sensor-id", "e")
    assert (2, "") == (result.returncode, result.stdout)
    assert message in result.stderr
    assert result.stderr.startswith("trustwatch: error: ")
    assert [] == list(out.parent.iterdir())


def test_allow_truncated_processes_the_complete_packets(tmp_path: Path) -> None:
    out = tmp_path / "flows.jsonl"
    result = run(
        "sensor",
        "net",
        "--pcap",
        str(_truncated(tmp_path)),
        "--out",
        str(out),
        "--sensor-id",
        "e",
        "--allow-truncated",
    )
    assert 0 == result.returncode, result.stderr
    summary = orjson.loads(result.stdout)
    assert (55, True) == (summary["frames"], summary["truncated"])
    assert "processing the 55 complete packets" in result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("extra", "env", "code", "message"),
    [
        ((), {}, 2, "no token: pass --token-file FILE, set TRUSTWATCH_TOKEN, or --token"),
        (("--token-file", "/nonexistent"), {}, 2, "--token-file: cannot read /nonexistent"),
        (
            ("--sensor-id", "no spaces please"),
            {"TRUSTWATCH_TOKEN": "t"},
            2,
            "--sensor-id 'no spaces please'",
        ),
        (
            ("--batch-size", "0"),
            {"TRUSTWATCH_TOKEN": "t"},
            2,
            "--batch-size must be between 1 and 10000",
        ),
        (("--idle-timeout", "0"), {"TRUSTWATCH_TOKEN": "t"}, 2, "flow timeouts must be positive"),
        (("--idle-timeout", "-1"), {"TRUSTWATCH_TOKEN": "t"}, 2, "give a finite number of seconds"),
        (
            ("--idle-timeout", "inf"),
            {"TRUSTWATCH_TOKEN": "t"},
            2,
            "give a finite number of seconds",
        ),
        (
            ("--retry-budget", "nan"),
            {"TRUSTWATCH_TOKEN": "t"},
            2,
            "give a finite number of seconds",
        ),
        (("--api", "127.0.0.1:18471"), {"TRUSTWATCH_TOKEN": "t"}, 2, "give the service's URL"),
        (("--api", "http://192.0.2.7:8470"), {"TRUSTWATCH_TOKEN": "t"}, 2, "plain HTTP beyond"),
        ((), {"TRUSTWATCH_TOKEN": "tw_\u00e9"}, 2, "the token holds characters"),
        (("--ca", str(DATA / "dns.pcap")), {"TRUSTWATCH_TOKEN": "t"}, 2, "as a CA bundle"),
        (("--retry-budget", "0.5"), {"TRUSTWATCH_TOKEN": "t"}, 1, "gave up after"),
    ],
)
def test_sensor_net_shipping_mistakes_are_clear(
    extra: tuple[str, ...], env: dict[str, str], code: int, message: str
) -> None:
    api = f"http://127.0.0.1:{_closed_port()}"
    args = ["sensor", "net", "--pcap", str(DATA / "dns.pcap")]
    if "--api" not in extra:
        args += ["--api", api]
    if "--sensor-id" not in extra:
        args += ["--sensor-id", "edge-1"]
    result = run(*args, *extra, env=env)
    assert code == result.returncode
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert 0 == result.returncode
    for command in ("serve", "token", "sensor", "receiver"):
        assert command in result.stdout


def test_out_naming_a_directory_is_refused(tmp_path: Path) -> None:
    result = run("sensor", "net", "--pcap", str(DATA / "dns.pcap"), "--out", str(tmp_path))
    assert (2, f"trustwatch: error: --out: {tmp_path} is a directory; name a file\n") == (
        result.returncode,
        result.stderr,
    )
