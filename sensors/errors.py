"""The sensor's exceptions. Every error a sensor raises on purpose is a :class:`SensorError`.

::

    SensorError
    ├── CaptureError                 a capture could not be read
    │   ├── CaptureFormatError       not a pcap/pcapng file, or an unsupported variant
    │   ├── CaptureTruncatedError    the file ends inside a record
    │   └── CapturePermissionError   live capture without CAP_NET_RAW
    ├── ShipError                    records could not be delivered
    │   ├── ShipRejectedError        the service refused the request (4xx): retrying cannot help
    │   └── ShipUnreachableError     the service did not answer in time, or answered 5xx
    └── ScanError                    a site scan could not start
        ├── TargetError              not a host name or IP address the scanner can take
        └── TargetRefusedError       the target resolves to an address the policy forbids
                                     (private, loopback, link-local, ...), or to none

What a scan finds out about a site (a timeout, a refused connection, a bad certificate) is
never an exception: it is a check result with status ``error``, ``fail`` or ``warn``.
"""

from __future__ import annotations


class SensorError(Exception):
    """Root of the sensor's exceptions."""


class CaptureError(SensorError):
    """A capture could not be read."""


class CaptureFormatError(CaptureError):
    """The input is not a capture this sensor reads."""


class CaptureTruncatedError(CaptureError):
    """The capture ends in the middle of a record.

    ``complete`` is the number of whole packets before the cut.
    """

    def __init__(self, message: str, *, complete: int) -> None:
        super().__init__(message)
        self.complete = complete


class CapturePermissionError(CaptureError):
    """Live capture needs CAP_NET_RAW (or root)."""


class ShipError(SensorError):
    """Records could not be delivered to the service."""


class ShipRejectedError(ShipError):
    """The service answered with a client error; the same request would fail again."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ShipUnreachableError(ShipError):
    """The service could not be reached, or kept failing, until the retry budget ran out."""


class ScanError(SensorError):
    """A site scan could not start."""


class TargetError(ScanError):
    """The target is not a host name or IP address the scanner can take."""


class TargetRefusedError(ScanError):
    """The target resolves to no address, or to one the scan policy does not allow."""
