"""Helpers for tests that run Myna daemons in-process on loopback addresses (127.0.0.x).

Data flow: a test picks free ports with ``free_port``, builds ``Daemon``s, starts them with
``running`` (which closes every started one, whatever happens) and polls conditions with
``wait_for`` on the same event loop, never sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bgpd.daemon import Daemon

POLL = 0.02  # seconds between two looks at a condition


def free_port(address: str) -> int:
    """A TCP port nobody listens on at ``address`` right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


async def wait_for(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL)


@asynccontextmanager
async def running(*daemons: Daemon) -> AsyncIterator[None]:
    """Start the daemons in order; close every started one afterwards, whatever happened."""
    started: list[Daemon] = []
    try:
        for daemon in daemons:
            await daemon.start()
            started.append(daemon)
        yield
    finally:
        for daemon in reversed(started):
            await daemon.close()
