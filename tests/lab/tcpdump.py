"""The lab's capture: tcpdump on the switch's bridge, so every frame between hosts is seen once.

tcpdump puts the bridge in promiscuous mode, which makes the bridge hand a copy of every frame
it forwards to its own interface: the capture holds each frame once, as it entered the switch.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from netns import BRIDGE, SWITCH, Lab, LabError

_READY_TIMEOUT = 10.0
# Packets a host sent just before the activity ended are on the wire a moment later; this
# much silence before stopping tcpdump lets the last ones land in the file.
_SETTLE = 0.3


class Capture:
    """``with Capture(lab, path) as capture:`` — tcpdump writes ``path`` (pcap, nanosecond
    timestamps, whole frames, each frame written as it arrives) from the moment the block
    starts until it ends; ``capture.stats`` then holds tcpdump's closing counters."""

    def __init__(self, lab: Lab, path: Path) -> None:
        self.lab = lab
        self.path = path
        self.stats: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log = b""

    def __enter__(self) -> Capture:
        argv = [
            "tcpdump",
            "-i",
            BRIDGE,
            "-n",
            "-s",
            "0",  # whole frames
            "-U",  # write each packet as it arrives ...
            "--immediate-mode",  # ... and get it from the kernel as it arrives
            "--time-stamp-precision=nano",
            "-B",
            "8192",  # KiB of ring: ~4000 wire-sized frames, for a scan's bursts
            "-Z",
            "root",  # keep root: the output directory may be writable by root alone
            "-w",
            str(self.path),
        ]
        process = subprocess.Popen(
            self.lab.argv(SWITCH, argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._process = process
        assert process.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + _READY_TIMEOUT
            while b"listening on" not in self._log:
                if time.monotonic() > deadline or process.poll() is not None:
                    self._kill()
                    raise LabError(f"tcpdump did not start: {self._log.decode(errors='replace')}")
                if selector.select(timeout=0.1):
                    self._log += os.read(process.stderr.fileno(), 4096)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if exc_type is None:
            time.sleep(_SETTLE)
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            raise LabError("tcpdump did not stop on SIGINT") from None
        self._log += err
        self._process = None
        text = self._log.decode(errors="replace")
        for count, what in re.findall(
            r"(\d+) packets? (captured|received by filter|dropped)", text
        ):
            self.stats[what.replace(" ", "_")] = int(count)
        if exc_type is None and self.stats.get("dropped", 0):
            raise LabError(f"tcpdump dropped packets: {text.strip()}")

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
