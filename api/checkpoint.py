"""The anomaly detectors' state file: restored at start-up, saved on a schedule and at shutdown.

The file is ``<data_dir>/anomaly.state`` (mode 0600, like the store). It is written whole or
not at all: a temporary file in the same directory, flushed to disk, then renamed over the
old one. A state that cannot be restored (missing, damaged, from an incompatible version) is
not fatal: the detectors start fresh, the log says why, and so does ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Final

from anyio import to_thread

from api.pipeline import Pipeline

log = logging.getLogger(__name__)

STATE_FILE: Final = "anomaly.state"
MAX_STATE_BYTES: Final = 512 << 20  # far above what 256 sensors' models take (~0.4 MB each)


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def restore(pipeline: Pipeline, path: Path) -> None:
    """Give ``pipeline`` the detectors saved at ``path``, or let it start fresh, saying why."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        pipeline.anomaly_started_fresh(None)
        return
    except OSError as exc:
        _fresh(pipeline, path, f"cannot read it: {exc.strerror}")
        return
    if size > MAX_STATE_BYTES:
        _fresh(pipeline, path, f"it is {size} bytes, more than the {MAX_STATE_BYTES} allowed")
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fresh(pipeline, path, f"cannot read it: {exc.strerror}")
        return
    problem = pipeline.restore_anomaly(data)
    if problem is not None:
        _fresh(pipeline, path, problem)
    else:
        log.info("anomaly detectors restored", extra={"path": str(path), "bytes": size})


def _fresh(pipeline: Pipeline, path: Path, reason: str) -> None:
    log.warning("anomaly detectors start fresh", extra={"path": str(path), "reason": reason})
    pipeline.anomaly_started_fresh(f"{path.name}: {reason}")


def save(pipeline: Pipeline, path: Path) -> int | None:
    """Write the detectors' state atomically; return its size (None if there is none)."""
    data = pipeline.anomaly_state()
    if data is None:
        return None
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return len(data)


async def run_checkpoints(pipeline: Pipeline, path: Path, every: float) -> None:
    """Save every ``every`` seconds until cancelled; a failed save is logged and retried."""
    while True:
        await asyncio.sleep(every)
        try:
            size = await to_thread.run_sync(save, pipeline, path)
        except OSError as exc:
            log.error("anomaly checkpoint failed", extra={"path": str(path), "error": str(exc)})
        else:
            log.debug("anomaly checkpoint", extra={"bytes": size})
