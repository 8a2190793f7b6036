"""Command-line options the sensor commands share: the sensor's id, the service's URL, the
token (from a file, the environment or the command line), and durations in seconds."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

from sensors.addresses import is_loopback_host
from sensors.errors import SensorError
from sensors.wire import SensorId


def checked_sensor_id(value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    try:
        checked: str = TypeAdapter(SensorId).validate_python(value)
    except ValidationError as exc:
        raise SensorError(
            f"--sensor-id {value!r}: use letters, digits, '.', '_' or '-', at most 64"
        ) from exc
    return checked


def seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds, 0 or more")
    return value


def check_api_url(url: str, *, allow_plaintext: bool) -> None:
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SensorError(f"--api {url!r}: give the service's URL, e.g. https://tw.example:8470")
    if parsed.scheme == "http" and not allow_plaintext and not is_loopback_host(parsed.hostname):
        raise SensorError(
            f"--api {url!r} is plain HTTP beyond this host: the token would cross the network "
            "in clear. Use https://, or --allow-plaintext inside a protected segment."
        )


def token_from(args: argparse.Namespace) -> str:
    token = _read_token(args)
    if not token.isascii() or not token.isprintable() or " " in token:
        raise SensorError("the token holds characters a token never has; check its source")
    return token


def _read_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if args.token_file is not None:
        try:
            token_file: Path = args.token_file
            return token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SensorError(
                f"--token-file: cannot read {args.token_file}: {exc.strerror}"
            ) from exc
    token = os.environ.get("TRUSTWATCH_TOKEN", "").strip()
    if not token:
        raise SensorError("no token: pass --token-file FILE, set TRUSTWATCH_TOKEN, or --token")
    return token
