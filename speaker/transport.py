"""The thin asyncio shell around one peer's FSM: sockets, timers, logging, back-pressure.

Data flow: ``BgpConnection`` (an asyncio Protocol: measured 2.5x faster than streams here)
hands every TCP happening of one connection to its ``PeerSession``, which passes it to the
sans-I/O ``PeerFsm`` with ``loop.time()`` and carries out the actions that come back: writes,
connects, closes, one ``call_at`` for the FSM's next deadline, and log lines. Decoded UPDATEs
and session up/down go to a ``SessionSink`` (the RIB, later; a counter in the first daemon).
When the sink says it is full the connection stops reading; when a peer stops reading and our
write buffer passes its high-water mark, the FSM's Send Hold Timer runs (RFC 9687). The
daemon's BFD wiring (``bgpd.bfd_peers``) feeds the peer's BFD verdicts in with ``bfd_down`` and
``bfd_up``, and may watch state changes through ``observers``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from speaker import socket_options
from speaker.control_messages import KEEPALIVE_MESSAGE, Notification, encode_notification
from speaker.nlri import prefix_text
from speaker.session_counters import SessionCounters
from speaker.session_events import (
    Action,
    Close,
    Connect,
    MalformedMessage,
    NotificationReceived,
    RouteRefreshReceived,
    Send,
    SendNotification,
    SessionDown,
    SessionSettings,
    SessionUp,
    State,
    StateChange,
    UpdatesReceived,
)
from speaker.session_fsm import PeerFsm
from speaker.update_message import Update

LOG = logging.getLogger("myna.session")
_NLRI_LOGGED = 100  # prefixes named in a malformed UPDATE's log line (the hex holds them all)
_CLOSE_GRACE = 5.0  # seconds a closed connection may take to flush before it is reset


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """How to reach one peer: where, from where, and how the packets are protected.

    ``ttl_security`` is GTSM's hop count (0: off); otherwise ``ttl`` is what we send with
    (BIRD's multihop default, 64, since Calico's iBGP peers are "multihop").
    """

    address: str
    port: int = 179
    source_address: str | None = None
    password: str | None = None
    ttl_security: int = 0
    ttl: int = 64
    write_high_water: int = 4 << 20
    write_low_water: int = 1 << 20


class SessionSink(Protocol):
    """Where a session's results go (the RIB task, later)."""

    def session_up(self, session: PeerSession, up: SessionUp) -> None:
        """The session is Established."""

    def session_down(self, session: PeerSession, down: SessionDown) -> None:
        """The Established session ended."""

    def updates(self, session: PeerSession, updates: tuple[Update, ...]) -> bool:
        """UPDATEs arrived; return False to stop reading until ``session.resume_reading()``."""

    def route_refresh(self, session: PeerSession, refresh: RouteRefreshReceived) -> None:
        """The peer asked for our routes again."""

    def state_changed(self, session: PeerSession, change: StateChange) -> None:
        """The FSM moved (for status output)."""

    def write_blocked(self, session: PeerSession, blocked: bool) -> None:
        """The Established connection's write buffer passed its high-water mark, or drained.

        True: hold further output for it; False: below its low-water mark again, resume.
        """


def canonical(address: str) -> str:
    """One spelling per address: v4-mapped IPv6 as IPv4, IPv6 compressed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class PeerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Every line names the peer it is about."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Prefix the message with the peer's name, and give the record a ``peer`` field."""
        peer = self.extra["peer"] if self.extra else "?"
        kwargs["extra"] = {**kwargs.get("extra", {}), "peer": peer}
        return f"[{peer}] {msg}", kwargs


class BgpConnection(asyncio.Protocol):
    """One TCP connection; everything it sees goes to its session."""

    def __init__(self, session: PeerSession, conn_id: int) -> None:
        self.session = session
        self.conn_id = conn_id
        self.transport: asyncio.Transport | None = None
        self.acked = -1  # octets the peer had acknowledged at our last KEEPALIVE (RFC 9687)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the session (its FSM sends our OPEN)."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        settings = self.session.transport_settings
        self.transport.set_write_buffer_limits(settings.write_high_water, settings.write_low_water)
        self.session.connected(self)

    def data_received(self, data: bytes) -> None:
        """Bytes from the peer, straight to the FSM."""
        self.session.data(self.conn_id, data)

    def pause_writing(self) -> None:
        """The peer is not keeping up with our writes."""
        self.session.write_blocked(self.conn_id, True)

    def resume_writing(self) -> None:
        """The peer caught up."""
        self.session.write_blocked(self.conn_id, False)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone (closed by either side, or reset)."""
        self.session.lost(self.conn_id, str(exc) if exc else "closed by the peer")


class PeerSession:
    """One configured peer: its FSM, its connections and its timer."""

    def __init__(
        self,
        name: str,
        settings: SessionSettings,
        transport_settings: TransportSettings,
        sink: SessionSink,
        jitter: random.Random | None = None,
    ) -> None:
        self.name = name
        # The FSM's timers are jittered (RFC 4271 10: connect delay and retry, keepalive, error
        # wait). One generator serves all of a daemon's sessions (the RFC: jitter "need not be
        # configured on a per-peer basis"): each of its own would hold 2.5 KB of Mersenne
        # Twister state per peer.
        self.fsm = PeerFsm(settings, jitter if jitter is not None else random.Random())
        self.transport_settings = transport_settings
        self.sink = sink
        self.log = PeerLog(LOG, {"peer": name})
        self.connections: dict[int, BgpConnection] = {}
        self.established_conn: int | None = None
        self.inbound_expected: dict[int, bool] = {}
        self.messages_sent = 0
        self.state_since = time.time()  # wall clock of the last state change (BIRD's "since")
        self.state_info = ""  # why it changed
        # Called with every state change after the sink (the daemon's BFD wiring uses it).
        self.observers: list[Callable[[PeerSession, StateChange], None]] = []
        self._connecting: dict[int, asyncio.Task[None]] = {}
        # uvloop answers a ``call_at`` in the past with a plain ``Handle`` (no ``when()``), and
        # fires timers on a millisecond clock: the deadline armed is kept beside the handle.
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        self._restart: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def state(self) -> State:
        """The FSM's state."""
        return self.fsm.state

    @property
    def coming_up(self) -> bool:
        """OpenSent, OpenConfirm or Established: the peer answers."""
        return self.fsm.state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED)

    @property
    def counters(self) -> SessionCounters:
        """Messages, NOTIFICATIONs, prefixes and flaps seen (kept by the FSM; bgpd.metrics)."""
        return self.fsm.counters

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting (or listening only, for a passive peer)."""
        self._apply(self.fsm.start(self._loop.time()))

    def stop(self, text: str = "") -> None:
        """Cease the session with an RFC 9003 shutdown text and stay Idle."""
        self._apply(self.fsm.stop(self._loop.time(), text))

    def cease(self, notification: Notification, reason: str, restart_after: float | None) -> None:
        """End the session with ``notification``; start again after ``restart_after`` s."""
        self._apply(self.fsm.stop(self._loop.time(), reason, notification))
        if restart_after is not None:
            self._restart = self._loop.call_later(restart_after, self.start)

    def close(self, graceful: bool = False) -> None:
        """Stop and release everything: timers, connect attempts, sockets.

        ``graceful``: we are restarting, not leaving (RFC 4724). An Established session that
        negotiated graceful restart then ends without a NOTIFICATION, as a crash ends it, so
        the peer keeps our routes (stale) until we are back or our restart time is over; a
        Cease would make it drop them at once. Other connections get the Cease.
        """
        conn = self.fsm.established
        if graceful and conn is not None and conn.graceful:
            connection = self.connections.get(conn.id)
            if connection is not None and connection.transport is not None:
                connection.transport.close()  # so the Cease below is not written
                self.log.info("restarting: session closed without a NOTIFICATION")
        self.stop("Myna is shutting down")
        if self._restart is not None:
            self._restart.cancel()
        for task in list(self._connecting.values()):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def bfd_down(self) -> None:
        """The peer's BFD session failed (RFC 5882): the FSM ends the session and holds it."""
        self._apply(self.fsm.bfd_down(self._loop.time()))

    def bfd_up(self, why: str) -> None:
        """BFD no longer holds the session down (``why``: Up again, or no longer advising)."""
        self._apply(self.fsm.bfd_up(self._loop.time(), why))

    def send(self, data: bytes) -> bool:
        """Write encoded messages on the Established connection; False when there is none."""
        conn = self.connections.get(self.established_conn or 0)
        if conn is None or conn.transport is None:
            return False
        conn.transport.write(data)
        self.counters.count_sent(data)
        return True

    def local_address(self) -> str | None:
        """Our address on the Established connection (the next hop we announce)."""
        conn = self.connections.get(self.established_conn or 0)
        if conn is None or conn.transport is None:
            return None
        sockname = conn.transport.get_extra_info("sockname")
        return canonical(sockname[0]) if sockname else None

    def resume_reading(self) -> None:
        """The sink has room again."""
        for conn in self.connections.values():
            if conn.transport is not None and not conn.transport.is_reading():
                conn.transport.resume_reading()
                self.fsm.reading_paused(self._loop.time(), conn.conn_id, False)
        self._reschedule()

    # -- from the connections ------------------------------------------------------------------

    def adopt_incoming(self, sock_transport: asyncio.Transport, protocol: BgpConnection) -> None:
        """The listener matched an incoming connection to this peer."""
        sock = sock_transport.get_extra_info("socket")
        if sock is not None and self.transport_settings.ttl_security:
            socket_options.set_gtsm(sock, self.transport_settings.ttl_security)
        elif sock is not None:
            socket_options.set_ttl(sock, self.transport_settings.ttl)

    def new_incoming_id(self) -> int:
        """An id for a connection the listener is about to hand over."""
        conn_id = self.fsm.new_connection_id()
        self.inbound_expected[conn_id] = True
        return conn_id

    def connected(self, conn: BgpConnection) -> None:
        """A connection (ours or the peer's) is up."""
        self.connections[conn.conn_id] = conn
        inbound = self.inbound_expected.pop(conn.conn_id, False)
        self._apply(self.fsm.connection_made(self._loop.time(), conn.conn_id, inbound))

    def data(self, conn_id: int, data: bytes) -> None:
        """Bytes arrived on a connection."""
        self.counters.received_bytes += len(data)
        self._apply(self.fsm.data_received(self._loop.time(), conn_id, data))

    def write_blocked(self, conn_id: int, blocked: bool) -> None:
        """A connection's write buffer crossed its high-water (or low-water) mark."""
        if blocked:
            queued = self._queued(conn_id)
            self.log.warning("the peer is not reading: %d octets wait to be sent", queued)
        if conn_id == self.established_conn:
            # The RIB holds what would go on piling up and sends the latest state once the
            # buffer drains (bounded output per peer); the FSM runs the Send Hold Timer.
            self.sink.write_blocked(self, blocked)
        self._apply(self.fsm.write_blocked(self._loop.time(), conn_id, blocked))

    def lost(self, conn_id: int, reason: str) -> None:
        """A connection closed."""
        if self.connections.pop(conn_id, None) is None:
            return
        self._apply(self.fsm.connection_failed(self._loop.time(), conn_id, reason))

    def _queued(self, conn_id: int) -> int:
        conn = self.connections.get(conn_id)
        if conn is None or conn.transport is None:
            return 0
        return conn.transport.get_write_buffer_size()

    # -- carrying out the FSM's actions ------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case UpdatesReceived(conn_id, updates):
                    self.counters.count_updates(updates)
                    if not self.sink.updates(self, updates):
                        self._pause_reading(conn_id)
                case Send(conn_id, data):
                    if data is KEEPALIVE_MESSAGE:
                        self._check_send_progress(conn_id)
                    self._write(conn_id, data)
                case Connect(conn_id):
                    self.log.debug(
                        "connecting to port %d (attempt %d)",
                        self.transport_settings.port,
                        self.fsm.connect_attempts,
                    )
                    self._connecting[conn_id] = self._loop.create_task(self._connect(conn_id))
                case SendNotification(conn_id, notification, reason):
                    if self._write(conn_id, encode_notification(notification)):
                        self.log.warning(
                            "sending NOTIFICATION %s (%s)", notification.describe(), reason
                        )
                        self.counters.count_notification_sent(notification)
                case Close(conn_id):
                    self._close(conn_id)
                case StateChange(old, new, reason):
                    down = new == State.IDLE and old != State.IDLE
                    level = logging.WARNING if down else logging.INFO
                    self.log.log(level, "%s -> %s: %s", old.label, new.label, reason)
                    self.state_since = time.time()
                    self.state_info = reason
                    self.sink.state_changed(self, action)
                    for observer in self.observers:
                        observer(self, action)
                case NotificationReceived(_, notification):
                    self.log.warning("received NOTIFICATION %s", notification.describe())
                    self.counters.count_notification_received(notification)
                case SessionUp():
                    self.established_conn = action.conn
                    self.sink.session_up(self, action)
                case SessionDown():
                    self.established_conn = None
                    self.counters.flaps += 1
                    self.sink.session_down(self, action)
                case RouteRefreshReceived():
                    self.sink.route_refresh(self, action)
                case MalformedMessage(_, message, update):
                    self._log_malformed(message, update)
        self._reschedule()

    def _log_malformed(self, message: bytes, update: Update | None) -> None:
        """RFC 7606 section 8: log the NLRI involved and the entire malformed message."""
        if update is None:
            self.log.warning("malformed message, the session is reset: %s", message.hex())
            return
        nlri = [prefix_text(p, entry.family) for entry in update.reach for p in entry.prefixes]
        nlri += [prefix_text(p, gone.family) for gone in update.unreach for p in gone.prefixes]
        listed = " ".join(nlri[:_NLRI_LOGGED])
        if len(nlri) > _NLRI_LOGGED:
            listed += f" and {len(nlri) - _NLRI_LOGGED} more"
        self.log.warning(
            "malformed UPDATE, %s, the session stays up: %s; NLRI: %s; message: %s",
            "treat-as-withdraw" if update.treat_as_withdraw else "attribute discard",
            "; ".join(problem.describe() for problem in update.problems),
            listed or "none",
            message.hex(),
        )

    def _write(self, conn_id: int, data: bytes) -> bool:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.write(data)
            self.messages_sent += 1
            self.counters.count_sent(data)
            return True
        return False

    def _close(self, conn_id: int) -> None:
        task = self._connecting.pop(conn_id, None)
        if task is not None:
            task.cancel()
        conn = self.connections.pop(conn_id, None)
        if conn is not None and conn.transport is not None:
            conn.transport.close()  # flushes what was written first (the NOTIFICATION)
            if conn.transport.get_write_buffer_size():
                # The peer is not reading (RFC 9687): the flush would keep the socket and all
                # that waits in it for as long as the peer holds its window shut. It gets a
                # few seconds to take the NOTIFICATION, then the connection is reset.
                self._loop.call_later(_CLOSE_GRACE, conn.transport.abort)

    def _check_send_progress(self, conn_id: int) -> None:
        """RFC 9687 for a backlog of any size, not only one past the high-water mark.

        At each KEEPALIVE we send, the kernel tells how many octets the peer has acknowledged
        so far and how many still wait. Octets waiting and none acknowledged since the last
        KEEPALIVE: the peer stopped reading (a zero window), and the Send Hold Timer runs
        until it acknowledges something again.
        """
        conn = self.connections.get(conn_id)
        if conn is None or conn.transport is None:
            return
        progress = socket_options.send_progress(conn.transport.get_extra_info("socket"))
        if progress is None:
            return
        acked, waiting = progress
        stuck = acked == conn.acked and waiting + conn.transport.get_write_buffer_size() > 0
        conn.acked = acked
        self.fsm.write_blocked(self._loop.time(), conn_id, stuck)

    def _pause_reading(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.transport is not None and conn.transport.is_reading():
            conn.transport.pause_reading()
            self.fsm.reading_paused(self._loop.time(), conn_id, True)

    def _reschedule(self) -> None:
        deadline = self.fsm.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer_when == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer_when = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        # A loop with a coarser clock may fire a little before the deadline; it has come all
        # the same (else the same deadline would be armed again and fire at once, in a spin).
        self._apply(self.fsm.timers_expired(max(self._loop.time(), deadline)))

    async def _connect(self, conn_id: int) -> None:
        settings = self.transport_settings
        family = socket.AF_INET6 if ":" in settings.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            socket_options.tune(sock)
            if settings.password:
                socket_options.set_md5_key(sock, settings.address, settings.password)
            if settings.ttl_security:
                socket_options.set_gtsm(sock, settings.ttl_security)
            else:
                socket_options.set_ttl(sock, settings.ttl)
            if settings.source_address:
                sock.bind((settings.source_address, 0))
            # A backstop only: the FSM's (jittered, so shorter) ConnectRetry abandons a slow
            # attempt first (RFC 4271 8.2.2), cancelling this task.
            await asyncio.wait_for(
                self._loop.sock_connect(sock, (settings.address, settings.port)),
                self.fsm.settings.connect_retry,
            )
            await self._loop.create_connection(lambda: BgpConnection(self, conn_id), sock=sock)
        except asyncio.CancelledError:
            sock.close()
            raise
        except (OSError, TimeoutError) as exc:
            sock.close()
            reason = str(exc) or type(exc).__name__
            self._connecting.pop(conn_id, None)
            self._apply(self.fsm.connection_failed(self._loop.time(), conn_id, reason))
            return
        self._connecting.pop(conn_id, None)
