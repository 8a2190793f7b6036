"""The reference receiver's out file: one JSON line per delivery, and the ids it already holds.

Each line is ``{"webhook-id": ..., "received_at": ..., "payload": ...}``. The file is the only
record: at start the ids are read back from it, so a restarted receiver still refuses to append
a delivery twice, and there is no second file to fall out of step with it. An append is written
and fsync'd before :meth:`Journal.append` returns, so a receiver that answers 200 afterwards has
the delivery on disk.

One receiver per file: the file is locked (``flock``) for as long as it is open. A line cut
short by a crash (it has no newline: its delivery was never answered 200, so the sender will
retry it) is cut off at start; any other line that is not a record stops the start, with its
line number.

The ids are kept in memory, a few hundred bytes per delivery in the file: the file itself grows
as fast, and a receiver for tests and integrators is rotated long before either matters.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from api.delivery.errors import ReceiverError

log = logging.getLogger(__name__)

ID_FIELD: Final = "webhook-id"
RECEIVED_FIELD: Final = "received_at"
PAYLOAD_FIELD: Final = "payload"


def record_line(msg_id: str, received_at: datetime, body: bytes) -> bytes:
    """The journal line for a delivery whose body is JSON; ``ValueError`` when it is not.

    The body is parsed and written again on one line (a pretty-printed body would otherwise
    span several). Python's parser keeps big integers exact; ``NaN`` and ``Infinity`` are not
    JSON and are refused.

    >>> from datetime import UTC, datetime
    >>> record_line("msg_1", datetime(2026, 1, 2, tzinfo=UTC), b'{\\n "n": 12345678901234567890}')
    b'{"webhook-id":"msg_1","received_at":"2026-01-02T00:00:00.000000Z","payload":{"n":12345678901234567890}}\\n'
    >>> record_line("msg_1", datetime(2026, 1, 2, tzinfo=UTC), b"[NaN]")
    Traceback (most recent call last):
    ...
    ValueError: the body is not JSON: NaN is not a JSON value
    """
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
        record = {
            ID_FIELD: msg_id,
            RECEIVED_FIELD: received_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            PAYLOAD_FIELD: payload,
        }
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    except RecursionError as exc:  # nesting deeper than the parser follows
        raise ValueError("the body is not JSON we can record: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a refused constant
        raise ValueError(f"the body is not JSON: {exc}") from exc
    return line.encode("utf-8") + b"\n"


class Journal:
    """An open, locked out file and the ids of the deliveries in it."""

    def __init__(self, path: Path, fd: int, ids: set[str], size: int) -> None:
        self.path = path
        self._fd = fd
        self._ids = ids
        self._size = size

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (or create, private to this user) and lock ``path``; read back its ids."""
        if path.is_dir():
            raise ReceiverError(f"--out: {path} is a directory; name a file")
        created = not path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ReceiverError(f"--out: cannot open {path}: {exc.strerror}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ReceiverError(
                    f"--out: another receiver is writing to {path}; one receiver per file"
                ) from exc
            if created:
                _fsync_directory(path.parent)
            ids, size = _read_back(path, fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, ids, size)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, msg_id: str, line: bytes) -> None:
        """Append one record line and fsync it. On a failure (a full disk, say) the file is cut
        back to where it was, so no partial line stays, and the ``OSError`` propagates."""
        try:
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(line)
        self._ids.add(msg_id)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock too
            self._fd = -1


def _read_back(path: Path, fd: int) -> tuple[set[str], int]:
    """The ids in the file and the size of its complete lines; cut off a torn last line."""
    ids: set[str] = set()
    complete = 0
    with os.fdopen(os.dup(fd), "rb") as stream:
        stream.seek(0)
        for number, line in enumerate(stream, start=1):
            if not line.endswith(b"\n"):
                log.warning(
                    "%s:%d: cutting off a line left incomplete by a crash (%d bytes); "
                    "its delivery was never acknowledged",
                    path,
                    number,
                    len(line),
                )
                os.ftruncate(fd, complete)
                os.fsync(fd)
                break
            complete += len(line)
            if line.strip():
                ids.add(_record_id(path, number, line))
    return ids, complete


def _record_id(path: Path, number: int, line: bytes) -> str:
    try:
        record: Any = json.loads(line)
    except (ValueError, RecursionError):
        record = None
    msg_id = record.get(ID_FIELD) if isinstance(record, dict) else None
    if not isinstance(msg_id, str):
        raise ReceiverError(
            f"{path}:{number}: not a delivery record (a JSON object with a {ID_FIELD!r}); "
            "give another --out or move the file"
        )
    return msg_id


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's name durable, not only its contents."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
