"""What kind of address a host name or IP literal is: the policy questions the sensor and the
service ask before talking to it (is a plaintext connection local? may a scan target it?).

>>> is_loopback_host("127.0.0.1"), is_loopback_host("::1"), is_loopback_host("localhost")
(True, True, True)
>>> is_loopback_host("10.0.0.1"), is_loopback_host("tw.example.gov")
(False, False)
"""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; a name is not resolved (and so False)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
