"""Where frames come from: a capture file, or a live interface (the only scapy user).

Live capture reads raw frames from scapy's layer-2 listening socket (an ``AF_PACKET`` socket
on Linux, kernel BPF filter optional); nothing is dissected here: the frames go to the same
header decoder as a file's. Reads wait at most ``timeout`` seconds so that the caller can keep
time (expire flows, flush batches, notice a stop request) while the wire is quiet.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from typing import Any, Final

from sensors.errors import CaptureError, CapturePermissionError
from sensors.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW
from sensors.pcapfile import Frame, read_frames

__all__ = ["Frame", "LiveCapture", "read_frames"]

_SNAPLEN = 65_535
# The link type of the frames an AF_PACKET raw socket delivers, by the interface's hardware
# type (ARPHRD_*, <linux/if_arp.h>), as libpcap maps them: Ethernet and loopback frames carry
# an Ethernet header; tun, SIT, IP-in-IP and raw-IP (e.g. WWAN) devices deliver bare IP.
_LINKTYPE_BY_ARPHRD: Final = {
    1: LINKTYPE_ETHERNET,  # ARPHRD_ETHER (also veth, bridges, VLAN devices)
    772: LINKTYPE_ETHERNET,  # ARPHRD_LOOPBACK
    519: LINKTYPE_RAW,  # ARPHRD_RAWIP
    768: LINKTYPE_RAW,  # ARPHRD_TUNNEL (ipip)
    769: LINKTYPE_RAW,  # ARPHRD_TUNNEL6
    776: LINKTYPE_RAW,  # ARPHRD_SIT
    65534: LINKTYPE_RAW,  # ARPHRD_NONE (tun, WireGuard)
}


class _QuietGuess(logging.Filter):
    """scapy warns "Unable to guess type" for interfaces it has no layer for (tun, WireGuard);
    we do not use its layer, we map the hardware type ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Unable to guess type" not in record.getMessage()


def linktype_of(interface: str, hardware: int) -> int:
    """The pcap link type of the frames captured on an interface of ``hardware`` type."""
    linktype = _LINKTYPE_BY_ARPHRD.get(hardware)
    if linktype is None:
        raise CaptureError(
            f"cannot decode frames of {interface!r}: its hardware type {hardware} (ARPHRD) is "
            "neither Ethernet, loopback nor a raw-IP tunnel"
        )
    return linktype


class LiveCapture:
    """Frames from a network interface. Use as a context manager; needs CAP_NET_RAW."""

    def __init__(self, interface: str, bpf: str | None = None) -> None:
        from scapy.arch.linux import L2ListenSocket  # scapy only where it is needed
        from scapy.error import Scapy_Exception

        self.interface = interface
        self.received = 0
        quiet = _QuietGuess()
        scapy_log = logging.getLogger("scapy.runtime")
        scapy_log.addFilter(quiet)
        try:
            self._socket: Any = L2ListenSocket(iface=interface, filter=bpf, promisc=True)
        except PermissionError as exc:
            raise CapturePermissionError(
                f"live capture on {interface} needs CAP_NET_RAW: run the sensor as root, or "
                "grant it with setcap cap_net_raw,cap_net_admin=eip on its Python"
            ) from exc
        except OSError as exc:
            raise CaptureError(f"cannot capture on {interface!r}: {exc.strerror or exc}") from exc
        except ValueError as exc:  # scapy: "Interface 'x' not found !"
            raise CaptureError(f"there is no network interface {interface!r} here") from exc
        except Scapy_Exception as exc:
            raise CaptureError(
                f"cannot capture on {interface!r} with filter {bpf!r}: {exc}"
            ) from exc
        finally:
            scapy_log.removeFilter(quiet)
        try:
            self.linktype: int = linktype_of(interface, self._socket.ins.getsockname()[3])
        except CaptureError:
            self._socket.close()
            raise

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
