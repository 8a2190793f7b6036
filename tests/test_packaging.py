"""``pip install 'trustwatch[sensor]'`` gives a working sensor without the server's packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = ("fastapi", "starlette", "uvicorn", "pydantic_settings", "prometheus_client")


@pytest.fixture(scope="module")
def sensor_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("sensor-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{ROOT}[sensor]"],
        check=True,
        timeout=600,
        env=env,
        capture_output=True,
    )
    return venv


def test_the_sensor_extra_leaves_out_the_server(sensor_venv: Path) -> None:
    probe = f"import importlib.util as u; print([m for m in {SERVER_ONLY!r} if u.find_spec(m)])"
    result = subprocess.run(
        [str(sensor_venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "[]" == result.stdout.strip()


def test_a_sensor_only_install_meters_a_capture(sensor_venv: Path, tmp_path: Path) -> None:
    out = tmp_path / "flows.jsonl"
    result = subprocess.run(
        [
            str(sensor_venv / "bin" / "trustwatch"),
            "sensor",
            "net",
            "--pcap",
            str(DATA / "mixed.pcap"),
            "--out",
            str(out),
            "--sensor-id",
            "edge-1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert 0 == result.returncode, result.stderr
    assert 19 == orjson.loads(result.stdout)["flows"]
    assert 19 == len(out.read_bytes().splitlines())


def test_server_commands_on_a_sensor_host_name_the_missing_extra(
    sensor_venv: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(sensor_venv / "bin" / "trustwatch"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert 2 == result.returncode
    assert "this command needs pip install 'trustwatch[server]'" in result.stderr
    assert "Traceback" not in result.stderr
