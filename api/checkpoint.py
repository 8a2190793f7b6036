"""The detectors' state files: restored at start-up, saved on a schedule and at shutdown.

Two files, each with its own fate: ``<data_dir>/anomaly.state`` holds the flow detectors
(:mod:`scoring.anomaly`, only when anomaly detection is on) and ``sites.state`` beside it the
site streams (:mod:`scoring.sitestream`, always). Apart, a damaged file costs only what it
held: the sites' month of availability does not go with a broken flow model, nor the other way
round; and a state written before the site streams existed still restores.

Each file (mode 0600, like the store) is written whole or not at all: a temporary file in the
same directory, flushed to disk, then renamed over the old one. A state that cannot be
restored (missing, damaged, from an incompatible version) is not fatal: that part starts
fresh, the log says why, and so does ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from anyio import to_thread

from api.pipeline import Pipeline

log = logging.getLogger(__name__)

STATE_FILE: Final = "anomaly.state"
SITES_FILE: Final = "sites.state"
# Far above what 256 sensors' models take (~0.4 MB each) or 10,000 sites' streams (~15 kB each).
MAX_STATE_BYTES: Final = 512 << 20


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def sites_path(state: Path) -> Path:
    """The site streams' file, beside the anomaly detectors' ``state``."""
    return state.with_name(SITES_FILE)


@dataclass(frozen=True)
class _Part:
    """One state file: what it holds (for the log), how to take it, how to start fresh."""

    what: str
    take: Callable[[bytes], str | None]
    fresh: Callable[[str | None], None]


def _parts(pipeline: Pipeline, state: Path) -> tuple[tuple[_Part, Path], ...]:
    return (
        (
            _Part("anomaly detectors", pipeline.restore_anomaly, pipeline.anomaly_started_fresh),
            state,
        ),
        (
            _Part("site streams", pipeline.restore_sites, pipeline.sites_started_fresh),
            sites_path(state),
        ),
    )


def restore(pipeline: Pipeline, path: Path) -> None:
    """Give ``pipeline`` the detectors saved at ``path`` and the site streams beside it; each
    part that cannot be restored starts fresh, saying why."""
    for part, where in _parts(pipeline, path):
        _restore(part, where)


def _restore(part: _Part, path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        part.fresh(None)
        return
    except OSError as exc:
        _fresh(part, path, f"cannot read it: {exc.strerror}")
        return
    if size > MAX_STATE_BYTES:
        _fresh(part, path, f"it is {size} bytes, more than the {MAX_STATE_BYTES} allowed")
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fresh(part, path, f"cannot read it: {exc.strerror}")
        return
    problem = part.take(data)
    if problem is not None:
        _fresh(part, path, problem)
    else:
        log.info("%s restored", part.what, extra={"path": str(path), "bytes": size})


def _fresh(part: _Part, path: Path, reason: str) -> None:
    log.warning("%s start fresh", part.what, extra={"path": str(path), "reason": reason})
    part.fresh(f"{path.name}: {reason}")


def save(pipeline: Pipeline, path: Path) -> int:
    """Write the detectors' state to ``path`` (when anomaly detection is on) and the site
    streams' beside it, each atomically; return the bytes written."""
    written = 0
    anomaly = pipeline.anomaly_state()
    if anomaly is not None:
        _write(path, anomaly)
        written += len(anomaly)
    sites = pipeline.site_state()
    _write(sites_path(path), sites)
    return written + len(sites)


def _write(path: Path, data: bytes) -> None:
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
