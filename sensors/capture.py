"""Where frames come from: a capture file, or a live interface (the only scapy user).

Live capture reads raw frames from scapy's layer-2 listening socket (an ``AF_PACKET`` socket
on Linux, kernel BPF filter optional); nothing is dissected here: the frames go to the same
header decoder as a file's. Reads wait at most ``timeout`` seconds so that the caller can keep
time (expire flows, flush batches, notice a stop request) while the wire is quiet.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

from sensors.errors import CaptureError, CapturePermissionError
from sensors.pcapfile import Frame, read_frames

__all__ = ["Frame", "LiveCapture", "read_frames"]

_SNAPLEN = 65_535


class LiveCapture:
    """Frames from a network interface. Use as a context manager; needs CAP_NET_RAW."""

    def __init__(self, interface: str, bpf: str | None = None) -> None:
        from scapy.arch.linux import L2ListenSocket  # scapy only where it is needed
        from scapy.config import conf
        from scapy.error import Scapy_Exception

        self.interface = interface
        self.received = 0
        try:
            self._socket: Any = L2ListenSocket(iface=interface, filter=bpf, promisc=True)
        except PermissionError as exc:
            raise CapturePermissionError(
                f"live capture on {interface} needs CAP_NET_RAW: run the sensor as root, or "
                "grant it with setcap cap_net_raw,cap_net_admin=eip on its Python"
            ) from exc
        except OSError as exc:
            raise CaptureError(f"cannot capture on {interface!r}: {exc.strerror or exc}") from exc
        except Scapy_Exception as exc:
            raise CaptureError(
                f"cannot capture on {interface!r} with filter {bpf!r}: {exc}"
            ) from exc
        layer = self._socket.LL
        self.linktype: int = conf.l2types.layer2num.get(layer, 1)

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()

    def frames(self, timeout: float, most: int = 1024) -> Iterator[Frame]:
        """The frames waiting now, or arriving within ``timeout`` seconds (possibly none),
        at most ``most`` of them."""
        wait = timeout
        for _ in range(most):
            ready, _, _ = select.select([self._socket.ins], [], [], wait)
            if not ready:
                return
            wait = 0.0  # after the first, take only what is already there
            _cls, data, ts = self._socket.recv_raw(_SNAPLEN)
            if data is None:
                continue
            self.received += 1
            # scapy gives seconds as a float: round to the microsecond the kernel stamped.
            yield Frame(round(ts * 1_000_000) * 1000, self.linktype, data, len(data))
