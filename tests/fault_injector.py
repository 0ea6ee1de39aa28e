"""The raw injector: a hand-driven BGP peer on a real TCP socket, for the fault tests.

Role: ``test_faults_malformed.py``, ``test_faults_transport.py`` and
``test_fuzz_live_session.py`` drive a running Myna (an in-process ``bgpd.daemon.Daemon``
listening on a 127.0.0.x address) through ``RawPeer`` with bytes no well-behaved speaker sends:
malformed messages, half messages followed by a TCP reset, a zero receive window, floods of
reconnects, fuzzed streams.

Data flow: a ``RawPeer`` binds its own loopback address (Myna's peer entry for that address is
passive, so Myna never dials it) and connects to Myna's listener. Whatever Myna writes is
reassembled by ``speaker.framing.MessageReader`` into ``inbox`` as (type, body) pairs; whatever
the test hands ``send`` goes out unchanged: valid OPEN/UPDATE/KEEPALIVE built with Myna's codec
(``open_bytes``, ``announce``) or the hand-made malformed ones of ``rfc7606_builders``.
``reset`` ends the connection with an RST (SO_LINGER 0). ``LogTap`` collects every log record
of the process so tests can check what Myna logged and that no traceback escaped;
``ModuleLoop`` keeps one uvloop event loop (and the daemons in it) for a whole test module.
Every wait polls a condition with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, Self, TypeVar

import uvloop
import yaml
from loopback_daemons import free_port, wait_for

from bgpd.config import DaemonConfig, parse_config
from bgpd.daemon import Daemon
from rib.route import Route
from speaker.capabilities import (
    Capability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.control_messages import KEEPALIVE_MESSAGE, Notification, decode_notification
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated
from speaker.open_message import Open, decode_open, encode_open, open_for
from speaker.path_attributes import PathAttributes
from speaker.session_events import State
from speaker.update_message import encode_announcements, encode_withdrawals
from speaker.wire_codes import (
    Family,
    GracefulRestartFamilyFlag,
    GracefulRestartFlag,
    MessageType,
)

T = TypeVar("T")
V4, V6 = Family.IPV4_UNICAST, Family.IPV6_UNICAST
POLL = 0.005  # seconds between two looks at a condition


# The daemons of the in-process tests: Myna under test (M) and a well-behaved witness (W).
M, W = "127.0.0.1", "127.0.0.4"
M_ID, W_ID = "198.18.0.10", "198.18.0.20"
M_BLOCK, W_BLOCK = "198.19.1.0/26", "198.19.2.0/26"
LOCAL_AS = 64512


class PeerClosedError(AssertionError):
    """Myna closed (or reset) the connection while the test waited for a message."""


def myna_config(
    address: str,
    port: int,
    router_id: str,
    peers: Sequence[dict[str, Any]],
    *,
    local_as: int = 64512,
    timers: dict[str, Any] | None = None,
    **top: Any,
) -> DaemonConfig:
    """A daemon on ``address``:``port`` with ``peers`` (config dicts), short timers, no sockets.

    Selection deferral is off (``selection_deferral: 0``) so routes reach the Loc-RIB at once.
    """
    data: dict[str, Any] = {
        "router_id": router_id,
        "local_as": local_as,
        "listen": {"addresses": [address], "port": port},
        "timers": {
            "hold_time": 30,
            "connect_delay": 0.05,
            "connect_retry": 0.5,
            "error_wait": [0.05, 0.2],
            **(timers or {}),
        },
        "control": {"socket": None},
        "selection_deferral": 0,
        "peers": list(peers),
        **top,
    }
    return parse_config(yaml.safe_dump(data))


def capabilities(
    asn: int,
    *,
    families: Sequence[Family] = (V4, V6),
    asn4: bool = True,
    route_refresh: bool = True,
    graceful: int | None = None,
    restarting: bool = False,
    extended_message: bool = False,
    extended_next_hop: bool = False,
) -> tuple[Capability, ...]:
    """An OPEN's capabilities; ``graceful`` is a restart time (None: no graceful restart).

    ``restarting`` sets graceful restart's Restart State flag (RFC 4724 3).
    """
    caps: list[Capability] = [MultiprotocolCapability(f.afi, f.safi) for f in families]
    if route_refresh:
        caps.append(RouteRefreshCapability())
    if asn4:
        caps.append(FourOctetAsCapability(asn))
    if graceful is not None:
        flags = int(GracefulRestartFlag.RESTART_STATE) if restarting else 0
        forwarding = int(GracefulRestartFamilyFlag.FORWARDING_STATE)
        kept = tuple((f.afi, f.safi, forwarding) for f in families)
        caps.append(GracefulRestartCapability(flags, graceful, kept))
    if extended_message:
        caps.append(ExtendedMessageCapability())
    if extended_next_hop:
        caps.append(ExtendedNextHopCapability(((1, 1, 2),)))
    return tuple(caps)


def open_bytes(asn: int, bgp_id: str, hold_time: int = 90, **caps: Any) -> bytes:
    """A whole valid OPEN from the injector (see ``capabilities`` for the keywords)."""
    bgp_id_int = struct.unpack(">I", socket.inet_aton(bgp_id))[0]
    return encode_open(open_for(asn, hold_time, bgp_id_int, capabilities(asn, **caps)))


def announce(
    family: Family, attrs: PathAttributes, prefixes: Sequence[int], neg: Negotiated
) -> bytes:
    """Valid UPDATEs announcing ``prefixes``, encoded by Myna's own encoder, as one stream."""
    return b"".join(encode_announcements(family, attrs, prefixes, neg))


def withdraw(family: Family, prefixes: Sequence[int], neg: Negotiated) -> bytes:
    """Valid UPDATEs withdrawing ``prefixes``, as one stream."""
    return b"".join(encode_withdrawals(family, prefixes, neg))


def pair(
    injectors: Sequence[dict[str, Any]], m_top: dict[str, Any] | None = None
) -> tuple[Daemon, Daemon]:
    """M with W and the injector peers (``injectors``: passive peer entries), and W.

    W peers with M over iBGP; each announces its block. Start them with ``running(w, m)``.
    """
    port_m, port_w = free_port(M), free_port(W)
    m = Daemon(
        myna_config(
            M,
            port_m,
            M_ID,
            [
                {"address": W, "as": LOCAL_AS, "port": port_w, "source_address": M},
                *({"passive": True, **peer} for peer in injectors),
            ],
            **{"announce": [M_BLOCK], **(m_top or {})},
        )
    )
    w = Daemon(
        myna_config(
            W,
            port_w,
            W_ID,
            [{"address": M, "as": LOCAL_AS, "port": port_m, "passive": True}],
            announce=[W_BLOCK],
        )
    )
    return m, w


def in_loc_rib(daemon: Daemon, text: str, source: str) -> bool:
    """The control API lists a route for ``text`` from ``source``."""
    return any(r["from"] == source for r in daemon.api.routes({"prefix": text}))


def route_from(daemon: Daemon, family: Family, prefix: int, source: str) -> Route | None:
    """The Loc-RIB route for ``prefix`` from ``source`` (None when there is none)."""
    for route in daemon.rib.view.candidates(family, prefix):
        if route.source.name == source:
            return route
    return None


def established(m: Daemon, w: Daemon) -> bool:
    """M and W see their session Established."""
    return m.session(W).state == State.ESTABLISHED and w.session(M).state == State.ESTABLISHED


def blocks_exchanged(m: Daemon, w: Daemon) -> bool:
    """M holds W's block and W holds M's."""
    return in_loc_rib(m, W_BLOCK, W) and in_loc_rib(w, M_BLOCK, M)


class RawPeer:
    """One TCP connection to Myna, written and read by hand (see the module docstring)."""

    def __init__(self, local: str, remote: str, port: int, *, rcvbuf: int | None = None) -> None:
        self.local, self.remote, self.port = local, remote, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:
            # Before connect(), so the window scale and initial window are negotiated small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.reader = MessageReader(65535)
        self.inbox: list[tuple[int, bytes]] = []
        self.eof = False
        self.received_bytes = 0

    async def connect(self, timeout: float = 5.0) -> RawPeer:
        """Connect from ``local`` to Myna's listener."""
        self.sock.bind((self.local, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(self.sock, (self.remote, self.port)), timeout)
        return self

    async def send(self, data: bytes) -> None:
        """Write ``data`` whole (waits while the socket buffer is full)."""
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def _read(self, timeout: float) -> bool:
        """Read one chunk into ``inbox``; False on EOF or reset, or when nothing came in time."""
        if self.eof:
            return False
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), timeout)
        except TimeoutError:
            return False
        except OSError:  # ECONNRESET
            data = b""
        if not data:
            self.eof = True
            return False
        self.received_bytes += len(data)
        self.inbox.extend(self.reader.feed(data))
        return True

    async def next_message(
        self, kinds: Sequence[int] = (), timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """The next message of one of ``kinds`` (any when empty); others are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self.inbox:
                kind, body = self.inbox.pop(0)
                if not kinds or kind in kinds:
                    return kind, body
            if self.eof:
                raise PeerClosedError(f"Myna closed the connection from {self.local}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no message of types {list(kinds)} within {timeout} s")
            await self._read(left)

    async def notification(self, timeout: float = 5.0) -> Notification:
        """The NOTIFICATION Myna sends (messages before it skipped)."""
        _, body = await self.next_message((MessageType.NOTIFICATION,), timeout)
        return decode_notification(body)

    async def closed(self, timeout: float = 5.0) -> None:
        """Wait until Myna has closed the connection (everything it sent is in ``inbox``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"Myna did not close the connection within {timeout} s")
            await self._read(left)

    async def drain(self) -> None:
        """Read whatever Myna has sent by now, without waiting."""
        while await self._read(0.0001):
            pass

    async def handshake(self, open_message: bytes, timeout: float = 5.0) -> Open:
        """Send our OPEN, read Myna's, exchange KEEPALIVEs; Myna's OPEN is returned.

        Myna counts the session Established once our KEEPALIVE is read: the caller waits on the
        daemon for that.
        """
        await self.send(open_message)
        _, body = await self.next_message((MessageType.OPEN,), timeout)
        await self.next_message((MessageType.KEEPALIVE,), timeout)
        await self.send(KEEPALIVE_MESSAGE)
        return decode_open(body)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER on, timeout 0), unread data dropped."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.eof = True

    def close(self) -> None:
        """Close the socket (FIN); idempotent."""
        self.sock.close()
        self.eof = True


class LogTap(logging.Handler):
    """Every log record of the process, formatted, with its exception text if it had one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._saved: list[tuple[logging.Logger, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)

    def install(self) -> LogTap:
        """Attach to the root logger; Myna's loggers log INFO and up meanwhile."""
        logging.getLogger().addHandler(self)
        for name in ("myna", "asyncio"):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level))
            logger.setLevel(logging.INFO)
        return self

    def remove(self) -> None:
        """Detach and restore the levels."""
        logging.getLogger().removeHandler(self)
        for logger, level in self._saved:
            logger.setLevel(level)

    def mark(self) -> int:
        """A position: ``since(mark)`` returns what was logged after it."""
        return len(self.records)

    def since(self, mark: int = 0) -> list[str]:
        """The messages logged since ``mark``."""
        return [r.getMessage() for r in self.records[mark:]]

    def tracebacks(self, mark: int = 0) -> list[str]:
        """Records since ``mark`` carrying an exception or a traceback, formatted whole."""
        out = []
        for record in self.records[mark:]:
            text = record.getMessage()
            if record.exc_info or record.exc_text or "Traceback" in text:
                out.append(logging.Formatter().format(record))
        return out


class ModuleLoop:
    """One uvloop event loop kept for a whole test module (daemons live across tests).

    The loop runs only inside ``run``; between tests sockets buffer and timers wait, which the
    short gaps between tests make harmless. Exceptions that reach the loop's handler (a
    callback or a protocol method that raised) are kept in ``loop_errors``.
    """

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coroutine`` to completion on the loop, failing after ``timeout`` seconds."""
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def close(self) -> None:
        """Cancel what is left and close the loop."""
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class WitnessBed:
    """M (under test) and W (a well-behaved witness) on one loop for a whole test module.

    ``injector_peers`` are the extra peers M is configured with (the raw injector connects as
    them). ``before_waiting`` runs once both daemons started, before W's session is awaited.
    ``for_module`` is the body of a module-scoped fixture: start, yield, always clean up.
    """

    def __init__(self, injector_peers: list[dict[str, Any]]) -> None:
        self.loop = ModuleLoop()
        self.tap = LogTap().install()
        fast = {"error_wait": [0.01, 0.02]}
        self.m, self.w = pair([{**peer, "timers": fast} for peer in injector_peers])
        self.started: list[Daemon] = []
        self.w_conn: int | None = None

    def before_waiting(self) -> None:
        """A hook for subclasses (e.g. capabilities to offer the injector)."""

    async def start(self) -> None:
        for daemon in (self.w, self.m):
            await daemon.start()
            self.started.append(daemon)
        self.before_waiting()
        await wait_for("M and W Established", lambda: established(self.m, self.w))
        await wait_for("M and W exchanged their blocks", lambda: blocks_exchanged(self.m, self.w))
        self.w_conn = self.m.session(W).established_conn

    def check_daemons(self) -> None:
        """W's session never flapped, its routes are still exchanged; nothing reached the loop."""
        assert established(self.m, self.w), "the witness session went down"
        assert self.m.session(W).established_conn == self.w_conn
        assert self.m.session(W).counters.flaps == 0
        assert self.w.session(M).counters.flaps == 0
        assert blocks_exchanged(self.m, self.w), "the witness routes changed"
        assert not self.loop.loop_errors, self.loop.loop_errors

    async def close(self) -> None:
        for daemon in reversed(self.started):
            await daemon.close()

    def for_module(self) -> Iterator[Self]:
        """Start, hand the bed to the module's tests, then stop everything whatever happened."""
        try:
            self.loop.run(self.start())
            yield self
        finally:
            try:
                self.loop.run(self.close())
            finally:
                self.tap.remove()
                self.loop.close()
