"""Structured logging: one JSON object per line on standard error.

Configured by ``trustwatch serve`` at start-up, never at import. Library code logs through
:mod:`logging` and never prints. Tokens never reach a log: the access log records method, path
and status, not headers or query strings.
"""

from __future__ import annotations

import logging
import sys

OWN_LOGGERS = ("api", "sensors", "trustwatch")


def configure_logging(level: str) -> None:
    from pythonjsonlogger.json import JsonFormatter  # the server extra

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our own loggers follow the setting too (the CLI gives them a level of their own).
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The delivery worker's HTTP client logs every request with its URL at INFO: the worker
    # records each attempt itself, and a receiver's URL (and any query in it) stays out of logs.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
