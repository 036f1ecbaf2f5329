"""systemd notifications (READY, WATCHDOG, STOPPING) without a dependency.

The protocol is one datagram on the socket named by ``NOTIFY_SOCKET``; when the
variable is absent (not under systemd, tests) every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def sd_notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``) to systemd; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as e:
        log.warning("could not notify systemd (%s): %s", message.split("=")[0], e)
        return False
    return True


def watchdog_period_s(default_s: float) -> float:
    """How often to send WATCHDOG=1: half the interval systemd asked for, else ``default_s``."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if usec and (not pid or pid == str(os.getpid())):
        try:
            return max(int(usec) / 2e6, 0.1)
        except ValueError:
            pass
    return default_s
