"""The daemon's side of BFD: the asyncio API that BGP sessions use (RFC 5882 clients).

Data flow: ``BfdService.start`` makes a ``SOCK_SEQPACKET`` socket pair and starts the engine
(``engine``) in its own process on one end (``Isolation.PROCESS``; the engine module says
why), then reads the other end from the event loop with ``add_reader``. Calls from the
daemon become ``ipc`` messages; the engine's replies come back as calls on each session's
``BfdListener`` (state changes, changes of what the session knows of its peer, a session
that could not be made) and as the results of ``status()``. Nothing here waits on the engine
except ``start``, ``close`` and ``status``.

How BGP uses it (``bgpd.bfd_peers`` is the real thing):

    bfd = BfdService(); await bfd.start()                       # once, in the daemon
    bfd.add_session(PeerConfig(key="peer 198.18.0.2", peer="198.18.0.2",
                               local="198.18.0.1", mode=HopMode.MULTIHOP,
                               desired_min_tx_us=100_000, required_min_rx_us=100_000,
                               detect_mult=3), listener=peer_session)
    # peer_session.bfd_state_changed(change): if change.failure, stop the BGP session
    # (Cease, subcode 10 "BFD Down", RFC 9384) and start it again later; a fall because the
    # peer went AdminDown is not a failure (RFC 5882 3.2) and leaves BGP alone.
    # peer_session.bfd_remote_changed(remote): the peer's state (AdminDown releases a held
    # session, RFC 5882 4.1) and whether it is heard at all.
    bfd.remove_session("peer 198.18.0.2")                         # when the peer is deleted
    await bfd.status()                                             # for birdc-like output
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from bfd import ipc
from bfd.engine import STOP_LINGER, Engine
from bfd.wire_codes import Diagnostic, State

LOG = logging.getLogger("myna.bfd")
START_TIMEOUT = 10.0
STOP_TIMEOUT = STOP_LINGER + 2.0  # the engine tells its peers AdminDown first, then exits


class Isolation(enum.Enum):
    """Where the engine runs: its own process (always, in the daemon) or a thread (measuring)."""

    PROCESS = "process"
    THREAD = "thread"


@dataclass(frozen=True, slots=True)
class BfdStateChange:
    """Session ``key`` went from ``old`` to ``new`` at ``at`` (``time.monotonic()``'s clock).

    ``diagnostic`` is why (RFC 5880 4.1; 1 the peer fell silent, 3 the peer said Down);
    ``remote_state`` is what the peer last sent.
    """

    key: str
    old: State
    new: State
    diagnostic: Diagnostic | int
    remote_state: State
    at: float

    @property
    def failure(self) -> bool:
        """Up to Down for a reason that is not an administrative one (RFC 5882 3.2).

        The client (BGP) acts on these only: the path is gone.
        """
        return (
            self.old == State.UP
            and self.new == State.DOWN
            and self.remote_state != State.ADMIN_DOWN
        )


@dataclass(frozen=True, slots=True)
class BfdRemoteChange:
    """What session ``key`` knows of its peer changed at ``at`` (``time.monotonic()``'s clock).

    ``state`` is what the peer last sent (bfd.RemoteSessionState), ``heard`` whether it sent
    anything accepted within the last Detection Time, ``diagnostic`` its diagnostic. Whatever
    the session's own state: a client held down by a failure learns here that the peer went
    AdminDown (RFC 5882 4.1: the adjacency MUST then be allowed) or fell silent.
    """

    key: str
    state: State
    heard: bool
    diagnostic: Diagnostic | int
    at: float


class BfdListener(Protocol):
    """What a client of a BFD session hears (a BGP peer session)."""

    def bfd_state_changed(self, change: BfdStateChange) -> None:
        """The session changed state."""

    def bfd_remote_changed(self, change: BfdRemoteChange) -> None:
        """The peer's state, or whether it is heard at all, changed."""

    def bfd_session_failed(self, key: str, reason: str) -> None:
        """The session could not be made, or the engine stopped: BFD tells nothing now."""


@dataclass(frozen=True, slots=True)
class BfdStatus:
    """Every session's status, and the engine's drops before a packet reaches a session.

    ``sessions`` maps each key to ``SessionStatus``'s fields plus peer, mode and source_port.
    """

    sessions: dict[str, dict[str, Any]]
    dropped: dict[str, int]
    packets_in: int


class BfdError(RuntimeError):
    """The engine is not running (not started, or it died): Myna's or the host's trouble."""


class BfdService:
    """The daemon-facing BFD API (see the module docstring)."""

    def __init__(self, isolation: Isolation = Isolation.PROCESS) -> None:
        self.isolation = isolation
        self.engine_pid: int | None = None
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, BfdListener] = {}
        self._ready: asyncio.Future[int] | None = None
        self._replies: dict[int, asyncio.Future[ipc.StatusReply]] = {}
        self._request_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """The engine serves (started, not closed, not exited)."""
        return self._sock is not None and self.engine_pid is not None

    async def start(self) -> None:
        """Start the engine and wait until it serves."""
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._sock = ours
        self._ready = self._loop.create_future()
        self._loop.add_reader(ours.fileno(), self._readable)
        if self.isolation is Isolation.PROCESS:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bfd.engine", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            theirs.close()
        else:
            engine = Engine(theirs)
            self._thread = threading.Thread(target=engine.run, name="bfd-engine", daemon=True)
            self._thread.start()
        try:
            self.engine_pid = await asyncio.wait_for(self._ready, START_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise BfdError("the BFD engine did not start within 10 s") from None

    def stop(self) -> None:
        """Tell the engine to stop: every session tells its peer AdminDown, then it exits.

        The first AdminDown of each session goes at once, the rest for up to
        ``engine.STOP_LINGER`` seconds; ``close`` waits for the end.
        """
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def close(self) -> None:
        """Stop the engine (``stop``) and wait until it has exited."""
        self.stop()
        if self._process is not None:
            process, self._process = self._process, None
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, STOP_TIMEOUT)
            self._thread = None
        for future in self._replies.values():
            future.cancel()
        self._replies.clear()

    # -- sessions ----------------------------------------------------------------------------------

    def add_session(self, config: ipc.PeerConfig, listener: BfdListener) -> None:
        """Create a session; ``listener`` hears its state changes (or why it failed)."""
        if config.key in self._listeners:
            raise ValueError(f"BFD session {config.key!r} exists (caller's mistake)")
        self._listeners[config.key] = listener
        self._send(ipc.AddSession(config))

    def reconfigure_session(self, config: ipc.PeerConfig) -> None:
        """New timers, passivity or authentication for session ``config.key``, in place.

        The path (peer, local address, interface, hop mode) must be the session's own: a new
        path is a new session (``remove_session`` then ``add_session``).
        """
        if config.key not in self._listeners:
            raise ValueError(f"no BFD session {config.key!r} to reconfigure (caller's mistake)")
        self._send(ipc.ReconfigureSession(config))

    def remove_session(self, key: str) -> None:
        """Delete a session: the peer is told AdminDown, then the engine forgets it."""
        if self._listeners.pop(key, None) is not None:
            self._send(ipc.RemoveSession(key))

    def set_admin_down(self, key: str, admin_down: bool) -> None:
        """RFC 5880 6.8.16: disable (True) or re-enable (False) a session."""
        self._send(ipc.SetAdminDown(key, admin_down))

    async def status(self) -> BfdStatus:
        """Every session's status, fresh from the engine."""
        if self._loop is None:
            raise BfdError("the BFD service was not started")
        request_id = next(self._request_ids)
        future: asyncio.Future[ipc.StatusReply] = self._loop.create_future()
        self._replies[request_id] = future
        self._send(ipc.StatusRequest(request_id))
        reply = await asyncio.wait_for(future, START_TIMEOUT)
        return BfdStatus(reply.sessions, reply.dropped, reply.packets_in)

    # -- the engine's side -------------------------------------------------------------------------

    def _send(self, message: ipc.Message) -> None:
        if self._sock is None:
            raise BfdError("the BFD engine is not running")
        # Small messages on a local socket whose reader drains at once: a full buffer would
        # mean a dead engine, which the reader notices.
        self._sock.setblocking(True)
        try:
            self._sock.send(ipc.encode(message))
        finally:
            self._sock.setblocking(False)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(ipc.MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._engine_gone()
                return
            self._dispatch(ipc.decode(data))

    def _dispatch(self, message: ipc.Message) -> None:
        match message:
            case ipc.Ready(pid):
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(pid)
            case ipc.SessionStateChanged():
                listener = self._listeners.get(message.key)
                if listener is not None:
                    change = BfdStateChange(
                        message.key,
                        State(message.old),
                        State(message.new),
                        Diagnostic.of(message.diagnostic),
                        State(message.remote_state),
                        message.at,
                    )
                    listener.bfd_state_changed(change)
            case ipc.RemoteStateChanged():
                listener = self._listeners.get(message.key)
                if listener is not None:
                    remote = BfdRemoteChange(
                        message.key,
                        State(message.state),
                        message.heard,
                        Diagnostic.of(message.diagnostic),
                        message.at,
                    )
                    listener.bfd_remote_changed(remote)
            case ipc.SessionFailed(key, reason):
                LOG.error("BFD session %s failed: %s", key, reason)
                failed = self._listeners.pop(key, None)
                if failed is not None:
                    failed.bfd_session_failed(key, reason)
            case ipc.StatusReply(request_id):
                future = self._replies.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(message)
            case _:
                LOG.error("the BFD engine sent a daemon-side message: %s", message)

    def _engine_gone(self) -> None:
        LOG.error("the BFD engine exited (pid %s)", self.engine_pid)
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        listeners, self._listeners = self._listeners, {}
        for key, listener in listeners.items():
            listener.bfd_session_failed(key, "the BFD engine exited")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(BfdError("the BFD engine exited while starting"))


def engine_command() -> list[str]:
    """How the engine process is started (for operators' process listings and docs)."""
    return [sys.executable, "-m", "bfd.engine", "FD"]


__all__ = [
    "BfdError",
    "BfdListener",
    "BfdRemoteChange",
    "BfdService",
    "BfdStateChange",
    "BfdStatus",
    "Isolation",
    "engine_command",
]
