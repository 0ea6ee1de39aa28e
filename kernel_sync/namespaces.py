"""Running a function inside another network namespace, for sockets that must live there.

The daemon itself runs inside the namespace whose routes it programs and never needs this.
Tests, the benchmark and a lab that drives several namespaces from one process do: a socket
belongs to the namespace its creating thread was in when it was made, and keeps it for life.
So ``call_in_namespace(name, open_netlink_socket)`` runs the opener on a short-lived thread of
its own that first joins the namespace (``setns(2)``, which changes only the calling thread),
and hands the socket back to the caller's thread, which may use it from its event loop like any
other. Nothing else in the process changes namespace.

Data flow: ``netlink_socket.open_netlink_socket(netns=...)`` calls ``call_in_namespace``; the
result or exception of the function comes back to the caller. Needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")  # where ``ip netns add`` mounts named namespaces

T = TypeVar("T")


def namespace_path(netns: str) -> Path:
    """The file of namespace ``netns``: a name under /run/netns, or a path as given."""
    return Path(netns) if "/" in netns else NETNS_RUN_DIR / netns


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def call_in_namespace(netns: str, function: Callable[[], T]) -> T:
    """``function()`` run on a thread inside network namespace ``netns``; its result."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    path = namespace_path(netns)

    def enter_and_call() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            outcome.append(function())
        except BaseException as error:  # handed back to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=enter_and_call, name=f"netns-{path.name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
