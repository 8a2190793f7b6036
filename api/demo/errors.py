"""The demo's errors: ``DemoError`` (a step failed: exit 1) and ``DemoUsageError`` (the
options were refused before anything started: exit 2), under the project's root."""

from __future__ import annotations

from api.errors import TrustWatchError


class DemoError(TrustWatchError):
    """A step of the demo failed; the message says which and, for a process, its log's end."""


class DemoUsageError(DemoError):
    """The demo's options cannot be used; nothing was started."""
