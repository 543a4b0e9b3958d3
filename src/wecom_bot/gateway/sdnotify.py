"""systemd's notification protocol, without a dependency: readiness, stopping, watchdog.

When systemd starts the gateway with ``Type=notify`` and ``WatchdogSec=``, it sets
``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC``). The gateway says ``READY=1`` once it serves,
``STOPPING=1`` when it stops, and ``WATCHDOG=1`` from its event loop at half the watchdog
interval: if the loop is ever blocked for a whole interval, systemd kills and restarts the
gateway. Without ``NOTIFY_SOCKET`` every call does nothing. A notification is one datagram
on a unix socket (``@`` starts an abstract socket name).
"""

from __future__ import annotations

import asyncio
import os
import socket

__all__ = ["notify", "watchdog"]


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; whether there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half of ``WATCHDOG_USEC``), or ``None``."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def watchdog() -> None:
    """Tell systemd the event loop runs, at half the watchdog interval, until cancelled."""
    interval = watchdog_interval()
    if interval is None or not os.environ.get("NOTIFY_SOCKET"):
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
