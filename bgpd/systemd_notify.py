"""systemd's notify protocol: READY=1 when serving, WATCHDOG=1 while the loop turns, STOPPING=1.

Data flow: under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a datagram socket path, or
an abstract one starting with ``@``) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. The daemon
calls ``ready()`` once it listens and the kernel's routes are adopted, ``stopping()`` when it
begins to shut down, and ``start_watchdog()``, which pings at half the interval from the event
loop itself: a loop that stops turning stops the pings, and systemd restarts the service.
Without ``NOTIFY_SOCKET`` every call does nothing.

These few lines stand in for a library (``sdnotify``, ``systemd-python``): neither is among the
chosen run-time dependencies, and the protocol is one datagram of text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

LOG = logging.getLogger("myna.systemd")


class SystemdNotifier:
    """Sends state lines to systemd when it asked for them (see the module docstring)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 1e6 if usec.isdigit() and mine else 0.0
        self._timer: asyncio.TimerHandle | None = None

    def send(self, state: str) -> None:
        """One notification (``READY=1``, ``STATUS=...``); errors are logged, never raised."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self.address)
        except OSError as error:
            LOG.warning("cannot notify systemd (%s): %s", state, error)

    def ready(self, status: str) -> None:
        """Serving: systemd may start what depends on us."""
        self.send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """A one-line status for ``systemctl status``."""
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        """Shutting down."""
        self.send("STOPPING=1")
        self.stop_watchdog()

    def start_watchdog(self) -> None:
        """Ping at half of ``WatchdogSec`` while the event loop runs."""
        if self.watchdog_interval > 0 and self.address:
            self._ping()

    def stop_watchdog(self) -> None:
        """No more pings."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _ping(self) -> None:
        self.send("WATCHDOG=1")
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.watchdog_interval / 2, self._ping)
