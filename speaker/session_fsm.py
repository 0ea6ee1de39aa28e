"""The BGP session FSM of RFC 4271 section 8 for one peer: sans-I/O, every transition in one table.

The table is ``_TRANSITIONS``, at the bottom of this file.

Data flow: the transport calls ``start``, ``stop``, ``connection_made``, ``connection_failed``,
``data_received``, ``write_blocked`` and ``timers_expired`` with the current time; each returns
the actions (``session_events``) to carry out. The FSM owns the byte reassembly and decoding of
each connection so that decoding always uses what that connection negotiated; decoded UPDATEs
leave in one ``UpdatesReceived`` per chunk. Timers are deadlines kept here; the transport asks
``next_deadline()`` and calls ``timers_expired(now)`` when it passes (time is passed in, as in
aioquic, so tests drive hours of protocol time in microseconds).

During a connection collision (RFC 4271 section 6.8) a peer has two connections, each with its
own state; ``state`` is the most advanced of them, or Idle/Connect/Active when there is none.

BFD (RFC 5882) reaches the session as two events of the same table, fed by the transport:
``bfd_down`` when the peer's BFD session falls from Up for a reason that is not AdminDown (3.2,
4.2: the path failed), ``bfd_up`` when BFD no longer holds the session down. A failure ends
every connection (Cease/BFD Down, RFC 9384; or, with ``bfd_graceful`` and graceful restart
negotiated, no NOTIFICATION so that both sides keep the routes as stale, RFC 4724) and holds the
session in Idle, refusing the peer's connections and opening none, until ``bfd_up``: 4.1 blocks
an adjacency when both systems are willing to run BFD (the peer has shown it is: its session
was Up) and the BFD session cannot come up. The error wait runs as after any error, so the
session comes back at the later of BFD Up and the error wait's end.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import cast

from speaker.capabilities import GracefulRestartCapability, LongLivedGracefulRestartCapability
from speaker.codec_errors import MessageError
from speaker.control_messages import (
    KEEPALIVE_MESSAGE,
    Notification,
    decode_notification,
    decode_route_refresh,
)
from speaker.framing import frame
from speaker.open_checks import OpenRefused, check_open, without_refused
from speaker.open_message import Open, decode_open, encode_open, open_for
from speaker.session_connection import Connection, ErrorKind, SessionError
from speaker.session_counters import SessionCounters
from speaker.session_events import (
    Action,
    Close,
    Connect,
    Event,
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
    Timer,
    UpdatesReceived,
)
from speaker.update_message import Update, decode_update
from speaker.wire_codes import (
    MAX_MESSAGE_LEN,
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    MessageType,
    OpenSubcode,
)

_RFC_9687_MINIMUM = 480.0  # 8 minutes
_MAX_NOTIFICATION_DATA = MAX_MESSAGE_LEN - 21  # a NOTIFICATION's header, code and subcode


class PeerFsm:
    """RFC 4271's FSM for one configured peer (see the module docstring)."""

    def __init__(self, settings: SessionSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        # RFC 4271 10's jitter (None: exact timers, for tests): ``_jittered``. The RFC's
        # reason: no peaks in what a speaker sends (sessions that came up together would send
        # their KEEPALIVEs together for ever). And without it two active peers failing at the
        # same moment (a path failure that both BFD sessions see) come out of identical error
        # waits a few ms apart, each refusing the other's connection from its own Idle, again
        # and again.
        self._rng = rng
        self.capabilities = settings.capabilities  # less what the peer refused (RFC 5492)
        self.connections: dict[int, Connection] = {}
        self.pending_connect: int | None = None  # our outgoing attempt, not yet up
        self.error_wait = settings.error_wait_min
        self.established_at: float | None = None
        self.bfd_held = False  # a BFD failure holds the session down until BFD is Up again
        self.error: SessionError | None = None  # why the session is not up (None: it is)
        self.connect_attempts = 0
        self.counters = SessionCounters()  # read by bgpd.metrics at scrape time
        self._idle_state = State.IDLE  # the state while no connection has sent an OPEN
        self._running = False  # started and not stopped: what bfd_up may start again
        self._timers: dict[tuple[Timer, int], float] = {}
        self._next_id = 1
        self._out: list[Action] = []
        self._reason = ""
        self._now = 0.0

    # -- what the transport reads ------------------------------------------------------------

    @property
    def state(self) -> State:
        """The session's state: the most advanced connection's, or the connection-less one."""
        if not self.connections:
            return self._idle_state
        return max(conn.state for conn in self.connections.values())

    @property
    def established(self) -> Connection | None:
        """The Established connection, if there is one."""
        for conn in self.connections.values():
            if conn.state == State.ESTABLISHED:
                return conn
        return None

    @property
    def stopped(self) -> bool:
        """Not started, or stopped since (ManualStop): BIRD's protocol is down then."""
        return not self._running

    @property
    def last_error(self) -> str:
        """Myna's words for why the session is not up ("" while it is, as BIRD clears it)."""
        return "" if self.error is None else self.error.text

    def next_deadline(self) -> float | None:
        """When the transport must call ``timers_expired`` next (None: no timer runs)."""
        return min(self._timers.values()) if self._timers else None

    def timer_deadline(self, timer: Timer, conn_id: int = 0) -> float | None:
        """One timer's deadline, for tests and status output."""
        return self._timers.get((timer, conn_id))

    def new_connection_id(self) -> int:
        """An id for an incoming connection the transport is about to report."""
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    # -- inputs --------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """ManualStart (passive or not, as configured)."""
        event = Event.MANUAL_START_PASSIVE if self.settings.passive else Event.MANUAL_START
        return self._run(now, event, None, None)

    def stop(
        self, now: float, text: str = "", notification: Notification | None = None
    ) -> list[Action]:
        """ManualStop: a Cease with ``text`` (RFC 9003) on every connection, then Idle.

        ``notification`` replaces that Cease (e.g. 6/1 when the peer sent too many prefixes).
        """
        return self._run(now, Event.MANUAL_STOP, None, (text, notification))

    def bfd_down(self, now: float) -> list[Action]:
        """The peer's BFD session failed (RFC 5882 4.2): end the session, hold it down."""
        return self._run(now, Event.BFD_DOWN, None, None)

    def bfd_up(self, now: float, why: str = "BFD session Up") -> list[Action]:
        """BFD no longer holds the session down (Up again, or not advising any more)."""
        return self._run(now, Event.BFD_UP, None, why)

    def connection_made(self, now: float, conn_id: int, inbound: bool) -> list[Action]:
        """A TCP connection is up: ours (``Connect`` action's id) or the peer's."""
        if not inbound and conn_id != self.pending_connect:
            return [Close(conn_id)]  # an attempt we already gave up on
        if not inbound:
            self.pending_connect = None
        event = Event.TCP_CONNECTION_CONFIRMED if inbound else Event.TCP_CR_ACKED
        return self._run(now, event, None, (conn_id, inbound))

    def connection_failed(self, now: float, conn_id: int, reason: str) -> list[Action]:
        """Our attempt failed, or an open connection was closed or reset."""
        if conn_id == self.pending_connect:
            self.pending_connect = None
            if self.connections:  # another connection carries the session; this one was spare
                self._record(SessionError(ErrorKind.SOCKET, f"connect failed: {reason}"))
                return []
            return self._run(now, Event.TCP_CONNECTION_FAILS, None, reason)
        conn = self.connections.get(conn_id)
        if conn is None:
            return []
        return self._run(now, Event.TCP_CONNECTION_FAILS, conn, reason)

    def write_blocked(self, now: float, conn_id: int, blocked: bool) -> list[Action]:
        """Our send buffer is above (True) or back below (False) its high-water mark.

        The RFC 9687 Send Hold Timer runs while the peer reads nothing.
        """
        conn = self.connections.get(conn_id)
        if conn is None:
            return []
        self._now = now
        if blocked:
            if (Timer.SEND_HOLD, conn_id) not in self._timers:
                self._arm(Timer.SEND_HOLD, self._send_hold_time(conn), conn_id)
        else:
            self._timers.pop((Timer.SEND_HOLD, conn_id), None)
        return []

    def reading_paused(self, now: float, conn_id: int, paused: bool) -> None:
        """Our side stopped reading the connection (the RIB is behind) or resumed.

        The peer's KEEPALIVEs wait unread in the socket meanwhile; that is not the peer's
        fault, so the hold timer stops while reading is paused and starts afresh after.
        """
        conn = self.connections.get(conn_id)
        if conn is None or not conn.hold_time:
            return
        if paused:
            self._timers.pop((Timer.HOLD, conn_id), None)
        else:
            self._timers[(Timer.HOLD, conn_id)] = now + conn.hold_time

    def timers_expired(self, now: float) -> list[Action]:
        """Fire every timer whose deadline has passed."""
        out: list[Action] = []
        while True:
            due = [key for key, deadline in self._timers.items() if deadline <= now]
            if not due:
                return out
            timer, conn_id = min(due, key=self._timers.__getitem__)
            del self._timers[(timer, conn_id)]
            conn = self.connections.get(conn_id) if conn_id else None
            if conn_id and conn is None:
                continue
            out += self._run(now, _TIMER_EVENTS[timer], conn, None)

    def data_received(self, now: float, conn_id: int, data: bytes) -> list[Action]:
        """Bytes from connection ``conn_id``: reassembled, decoded and acted on in order."""
        conn = self.connections.get(conn_id)
        if conn is None:
            return []
        self._now = now
        try:
            messages = conn.reader.feed(data)
        except MessageError as exc:
            return self._run(now, Event.BGP_HEADER_ERR, conn, exc)
        out: list[Action] = []
        updates: list[Update] = []
        heard = False
        received = self.counters.received
        for message_type, body in messages:
            received[message_type] += 1
            if conn.state == State.ESTABLISHED and message_type == MessageType.UPDATE:
                # The hot path: no table lookup per UPDATE, one action per chunk.
                try:
                    update = decode_update(body, conn.negotiated)
                except MessageError as exc:
                    out += self._flush(conn, updates)
                    out.append(MalformedMessage(conn.id, frame(MessageType.UPDATE, body), None))
                    return out + self._run(now, Event.UPDATE_MSG_ERR, conn, exc)
                if update.problems:  # RFC 7606: kept the session; logged whole all the same
                    out.append(MalformedMessage(conn.id, frame(MessageType.UPDATE, body), update))
                updates.append(update)
                heard = True
                continue
            out += self._flush(conn, updates)
            event, payload = self._classify(message_type, body)
            if isinstance(payload, MessageError):
                out.append(MalformedMessage(conn.id, frame(MessageType(message_type), body), None))
            heard = heard or event in (Event.KEEPALIVE_MSG, Event.UPDATE_MSG)
            out += self._run(now, event, conn, payload)
            if conn.id not in self.connections:
                return out  # closed by that message: the rest of the chunk is moot
        out += self._flush(conn, updates)
        if heard and conn.state == State.ESTABLISHED and conn.hold_time:
            self._timers[(Timer.HOLD, conn.id)] = now + conn.hold_time
        return out

    # -- the engine ----------------------------------------------------------------------------

    def _classify(self, message_type: int, body: bytes) -> tuple[Event, object]:
        """Decode a non-UPDATE-in-Established message into its FSM event."""
        try:
            if message_type == MessageType.OPEN:
                return Event.BGP_OPEN, decode_open(body)
            if message_type == MessageType.KEEPALIVE:
                return Event.KEEPALIVE_MSG, None
            if message_type == MessageType.NOTIFICATION:
                notification = decode_notification(body)
                version_error = (notification.code, notification.subcode) == (
                    ErrorCode.OPEN_MESSAGE,
                    OpenSubcode.UNSUPPORTED_VERSION,
                )
                return (Event.NOTIF_MSG_VER_ERR if version_error else Event.NOTIF_MSG), notification
            if message_type == MessageType.ROUTE_REFRESH:
                return Event.ROUTE_REFRESH_MSG, decode_route_refresh(body)
        except MessageError as exc:
            return Event.BGP_OPEN_MSG_ERR if message_type == MessageType.OPEN else (
                Event.UPDATE_MSG_ERR
            ), exc
        return Event.UPDATE_MSG, None  # an UPDATE before Established: not decoded, refused

    def _flush(self, conn: Connection, updates: list[Update]) -> list[Action]:
        if not updates:
            return []
        batch = tuple(updates)
        updates.clear()
        return [UpdatesReceived(conn.id, batch)]

    def _run(
        self, now: float, event: Event, conn: Connection | None, payload: object
    ) -> list[Action]:
        """Look the transition up and run it; report the state change it made, if any."""
        self._now = now
        before = self.state
        key_state = conn.state if conn is not None else before
        handler = _TRANSITIONS.get((key_state, event))
        if handler is None:
            handler = PeerFsm._unexpected if key_state >= State.OPEN_SENT else PeerFsm._ignore
        self._reason = event.name.lower()
        handler(self, event, conn, payload)
        out, self._out = self._out, []
        after = self.state
        if after != before:
            out.insert(0, StateChange(before, after, self._reason))
        return out

    def _arm(self, timer: Timer, seconds: float, conn_id: int = 0) -> None:
        self._timers[(timer, conn_id)] = self._now + seconds

    def _jittered(self, seconds: float) -> float:
        """RFC 4271 10: ``seconds`` times a factor uniform in [0.75, 1], drawn anew each time.

        For the RFC's ConnectRetry (which also times BIRD's connect delay here) and the error
        wait; Keepalive's goes through ``_keepalive_wait``. BIRD's ``bgp_start_timer``
        shortens its timers by up to a quarter the same way, its hold timers too; Myna's hold
        timer is exact: the RFC does not ask to jitter it, and a shorter one could end a
        session whose peer keeps it alive in time.
        """
        if self._rng is None:
            return seconds
        return seconds - self._rng.uniform(0.0, seconds / 4)

    def _keepalive_wait(self, keepalive_time: float) -> float:
        """The jittered keepalive interval, never under a second.

        RFC 4271 4.4: KEEPALIVE messages "MUST NOT be sent more frequently than one per
        second", and hold time 3 gives a keepalive time of 1 s.
        """
        return max(self._jittered(keepalive_time), min(keepalive_time, 1.0))

    def _cancel(self, timer: Timer, conn_id: int = 0) -> None:
        self._timers.pop((timer, conn_id), None)

    def _send_hold_time(self, conn: Connection) -> float:
        if self.settings.send_hold_time is not None:
            return self.settings.send_hold_time
        hold = conn.hold_time or self.settings.hold_time
        return max(_RFC_9687_MINIMUM, 2.0 * hold)

    def _notify(self, conn: Connection, notification: Notification, reason: str) -> SessionError:
        self._reason = reason
        self._out.append(SendNotification(conn.id, notification, reason))
        return SessionError(ErrorKind.SENT, reason, notification)

    def _record(self, error: SessionError, conn: Connection | None = None) -> None:
        """Keep ``error`` as the session's: not a spare connection's while up (as BIRD)."""
        self._reason = error.text
        up = self.established
        if up is None or up is conn:
            self.error = error

    def _drop(self, conn: Connection) -> None:
        """Forget one connection and its timers (the caller decides what the peer does next)."""
        self.connections.pop(conn.id, None)
        for timer in (Timer.HOLD, Timer.KEEPALIVE, Timer.SEND_HOLD):
            self._cancel(timer, conn.id)
        self._out.append(Close(conn.id))

    def _fail(self, conn: Connection, error: SessionError, notified: bool) -> None:
        """A connection ended in error: end the session if it was up, then back off.

        RFC 4724: an Established session that ends without a NOTIFICATION either way, and that
        negotiated graceful restart, lets the RIB keep the peer's routes as stale.
        """
        self._record(error, conn)
        reason = error.text
        was_up = conn.state == State.ESTABLISHED
        self._drop(conn)
        if was_up:
            self._out.append(
                SessionDown(reason, (conn.graceful or conn.long_lived) and not notified)
            )
            if self.established_at is not None and (
                self._now - self.established_at >= self.settings.error_forget
            ):
                self.error_wait = self.settings.error_wait_min
            self.established_at = None
        if self.connections:
            return  # the other connection of a collision carries on
        self._back_off()

    def _back_off(self) -> None:
        """Idle for the error wait (doubling up to its maximum): damps a flapping peer."""
        self._idle_state = State.IDLE
        self._cancel(Timer.CONNECT_RETRY)
        if self.pending_connect is not None:
            self._out.append(Close(self.pending_connect))
            self.pending_connect = None
        self._arm(Timer.IDLE_HOLD, self._jittered(self.error_wait))
        self.error_wait = min(self.error_wait * 2, self.settings.error_wait_max)

    def _connect(self) -> None:
        if self.pending_connect is not None:
            self._out.append(Close(self.pending_connect))
        self.pending_connect = self._next_id
        self._next_id += 1
        self.connect_attempts += 1
        self._out.append(Connect(self.pending_connect))
        self._idle_state = State.CONNECT
        self._arm(Timer.CONNECT_RETRY, self._jittered(self.settings.connect_retry))

    # -- transitions (each named for what it does; the table below says when) ------------------

    def _ignore(self, _event: Event, _conn: Connection | None, _payload: object) -> None:
        pass

    def _start(self, event: Event, _conn: Connection | None, _payload: object) -> None:
        self._running = True
        if self.bfd_held:
            self._reason = "started, held down until BFD is Up again (RFC 5882 4.1)"
            return
        self._idle_state = State.ACTIVE
        self._reason = "started"
        if event != Event.MANUAL_START_PASSIVE:
            # BIRD's "connect delay": listen first, connect when the delay runs out.
            self._arm(Timer.CONNECT_RETRY, self._jittered(self.settings.connect_delay))

    def _restart(self, _event: Event, _conn: Connection | None, _payload: object) -> None:
        """The error wait is over: AutomaticStart (unless BFD holds the session down).

        As BIRD restarts after its error wait (``bgp_startup`` -> ``bgp_active``): listen
        first, connect when the connect delay runs out. Connecting at once would leave two
        active peers that failed together (one path, one BFD failure each) refusing each
        other's connections from their error waits without end; listening first lets the
        earlier one's connection in.
        """
        if self.bfd_held:
            self._reason = "error wait over, held down until BFD is Up again (RFC 5882 4.1)"
            return
        self._reason = "error wait over"
        self._idle_state = State.ACTIVE
        if not self.settings.passive:
            self._arm(Timer.CONNECT_RETRY, self._jittered(self.settings.connect_delay))

    def _retry_connect(self, _event: Event, _conn: Connection | None, _payload: object) -> None:
        self._reason = "connect retry timer expired"
        self._connect()

    def _connect_failed(self, _event: Event, _conn: Connection | None, payload: object) -> None:
        self._record(SessionError(ErrorKind.SOCKET, f"connect failed: {payload}"))
        self._idle_state = State.ACTIVE
        self._arm(Timer.CONNECT_RETRY, self._jittered(self.settings.connect_retry))

    def _refuse(self, _event: Event, _conn: Connection | None, payload: object) -> None:
        conn_id, inbound = cast(tuple[int, bool], payload)
        if inbound:
            note = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_REJECTED)
            why = "held down until BFD is Up again" if self.bfd_held else "session is down (idle)"
            self._out.append(SendNotification(conn_id, note, why))
        self._out.append(Close(conn_id))

    def _open_connection(self, _event: Event, _conn: Connection | None, payload: object) -> None:
        """TCP is up: send our OPEN and wait for the peer's (RFC 4271 8.2.2 Connect/Active)."""
        conn_id, inbound = cast(tuple[int, bool], payload)
        if len(self.connections) >= 2:
            self._refuse(_event, None, payload)
            return
        sent = open_for(
            self.settings.local_as,
            self.settings.hold_time,
            self.settings.router_id,
            self.capabilities,
        )
        conn = Connection(conn_id, inbound, sent)
        self.connections[conn_id] = conn
        self._cancel(Timer.CONNECT_RETRY)
        self._out.append(Send(conn_id, encode_open(sent)))
        self._arm(Timer.HOLD, self.settings.open_hold_time, conn_id)
        self._reason = "incoming connection accepted" if inbound else "connected"

    def _established_collision(
        self, event: Event, conn: Connection | None, payload: object
    ) -> None:
        """A new connection while Established (RFC 4271 6.8; RFC 4724 4.2 for GR)."""
        current = self.established
        if current is not None and current.graceful:
            # The peer restarted and reconnects: its old session is gone, its routes go stale.
            self._drop(current)
            self._record(
                SessionError(ErrorKind.GRACEFUL, "the peer reconnected (graceful restart)")
            )
            self._out.append(SessionDown(self._reason, True))
            self.established_at = None
            self._open_connection(event, conn, payload)
            return
        conn_id, _ = cast(tuple[int, bool], payload)
        note = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
        self._out.append(SendNotification(conn_id, note, "collision with the Established session"))
        self._out.append(Close(conn_id))

    def _open_received(self, _event: Event, conn: Connection | None, payload: object) -> None:
        assert conn is not None
        received: Open = payload  # type: ignore[assignment]
        verdict = check_open(
            received,
            conn.sent_open,
            self.settings.local_as,
            self.settings.router_id,
            self.settings.peer_as,
        )
        if isinstance(verdict, OpenRefused):
            self._fail(conn, self._notify(conn, verdict.notification, verdict.reason), True)
            return
        conn.received_open = received
        if self._loses_collision(conn, received):
            return
        conn.negotiated = verdict.negotiated
        conn.hold_time = verdict.hold_time
        conn.graceful = any(
            isinstance(c, GracefulRestartCapability) for c in received.capabilities
        ) and any(isinstance(c, GracefulRestartCapability) for c in conn.sent_open.capabilities)
        # RFC 9494 4.1/4.5: LLGR counts only beside GR.
        conn.long_lived = (
            conn.graceful
            and any(
                isinstance(c, LongLivedGracefulRestartCapability) for c in received.capabilities
            )
            and any(
                isinstance(c, LongLivedGracefulRestartCapability)
                for c in conn.sent_open.capabilities
            )
        )
        if conn.negotiated.extended_message:
            conn.reader.enable_extended_messages()
        conn.state = State.OPEN_CONFIRM
        self._out.append(Send(conn.id, KEEPALIVE_MESSAGE))
        self._cancel(Timer.HOLD, conn.id)
        if conn.hold_time:
            wanted = self.settings.keepalive_time or conn.hold_time / 3
            conn.keepalive_time = min(wanted, conn.hold_time / 3)
            self._arm(Timer.HOLD, conn.hold_time, conn.id)
            self._arm(Timer.KEEPALIVE, self._keepalive_wait(conn.keepalive_time), conn.id)
        self._reason = "OPEN accepted"

    def _loses_collision(self, conn: Connection, received: Open) -> bool:
        """RFC 4271 6.8: of two connections, the one the higher BGP identifier's side opened lives.

        RFC 6286 2.3: on equal identifiers, the higher AS's side wins.
        """
        other = next((c for c in self.connections.values() if c is not conn), None)
        if other is None or other.state == State.OPEN_SENT:
            return False  # no collision yet: it is judged when the other one's OPEN arrives
        if other.state == State.ESTABLISHED:
            loser = conn
        else:
            ours = (self.settings.router_id, self.settings.local_as)
            theirs = (received.bgp_id, received.real_asn)
            # The surviving connection is the one the higher side opened.
            keep_outbound = ours > theirs
            pair = (conn, other)
            loser = next(c for c in pair if c.inbound == keep_outbound)
        note = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
        self._record(self._notify(loser, note, "connection collision resolved"), loser)
        self._drop(loser)  # OpenCollisionDump: the other connection carries on
        return loser is conn

    def _session_up(self, _event: Event, conn: Connection | None, _payload: object) -> None:
        assert conn is not None and conn.received_open is not None
        conn.state = State.ESTABLISHED
        self.established_at = self._now
        self.error = None  # it says why the session is not up; BIRD clears it here too
        if self.pending_connect is not None:
            # Our own attempt still in flight is not wanted any more.
            self._out.append(Close(self.pending_connect))
            self.pending_connect = None
        self._reason = "KEEPALIVE received"
        if conn.hold_time:
            self._arm(Timer.HOLD, conn.hold_time, conn.id)
        self._out.append(SessionUp(conn.id, conn.negotiated, conn.sent_open, conn.received_open))

    def _keepalive_heard(self, _event: Event, conn: Connection | None, _payload: object) -> None:
        assert conn is not None
        if conn.hold_time:
            self._arm(Timer.HOLD, conn.hold_time, conn.id)

    def _send_keepalive(self, _event: Event, conn: Connection | None, _payload: object) -> None:
        assert conn is not None
        self._out.append(Send(conn.id, KEEPALIVE_MESSAGE))
        self._arm(Timer.KEEPALIVE, self._keepalive_wait(conn.keepalive_time), conn.id)

    def _route_refresh(self, _event: Event, conn: Connection | None, payload: object) -> None:
        assert conn is not None
        self._out.append(RouteRefreshReceived(conn.id, payload))  # type: ignore[arg-type]

    def _hold_expired(self, _event: Event, conn: Connection | None, _payload: object) -> None:
        assert conn is not None
        reason = "hold timer expired: the peer went silent"
        if conn.state == State.ESTABLISHED and conn.long_lived:
            # RFC 9494 (as BIRD does it): with LLGR negotiated a silent peer is a graceful end,
            # not a hard reset: no NOTIFICATION, and its routes are kept (GR, then LLGR).
            llgr = SessionError(ErrorKind.OTHER, f"{reason} (long-lived graceful restart)")
            self._fail(conn, llgr, notified=False)
            return
        note = Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0)
        self._fail(conn, self._notify(conn, note, reason), notified=True)

    def _send_hold_expired(self, _event: Event, conn: Connection | None, _payload: object) -> None:
        assert conn is not None
        reason = "send hold timer expired: the peer stopped reading (RFC 9687)"
        note = Notification(ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0)
        self._fail(conn, self._notify(conn, note, reason), notified=True)

    def _notification_received(
        self, _event: Event, conn: Connection | None, payload: object
    ) -> None:
        assert conn is not None
        notification: Notification = payload  # type: ignore[assignment]
        self._out.append(NotificationReceived(conn.id, notification))
        if conn.state == State.OPEN_SENT:
            self.capabilities = without_refused(self.capabilities, notification)
        text = f"NOTIFICATION received: {notification.describe()}"
        self._fail(conn, SessionError(ErrorKind.RECEIVED, text, notification), notified=True)

    def _message_error(self, _event: Event, conn: Connection | None, payload: object) -> None:
        assert conn is not None
        exc: MessageError = payload  # type: ignore[assignment]
        reason = f"the peer sent a malformed message: {exc}"
        # The data echoes the offending message or attribute (RFC 4271 6.3, RFC 7313 5); one
        # longer than a NOTIFICATION can carry is cut to fit rather than not sent at all.
        data = exc.data[:_MAX_NOTIFICATION_DATA]
        note = Notification(exc.code, exc.subcode, data)
        self._fail(conn, self._notify(conn, note, reason), notified=True)

    def _connection_lost(self, _event: Event, conn: Connection | None, payload: object) -> None:
        assert conn is not None
        if conn.state == State.OPEN_SENT and len(self.connections) == 1:
            # RFC 4271 8.2.2 OpenSent: TcpConnectionFails -> Active, ConnectRetry restarted.
            self._drop(conn)
            text = f"connection lost before the peer's OPEN: {payload}"
            self._record(SessionError(ErrorKind.SOCKET, text))
            self._idle_state = State.ACTIVE
            if not self.settings.passive:
                self._arm(Timer.CONNECT_RETRY, self._jittered(self.settings.connect_retry))
            return
        self._fail(conn, SessionError(ErrorKind.SOCKET, f"connection lost: {payload}"), False)

    def _unexpected(self, event: Event, conn: Connection | None, _payload: object) -> None:
        """RFC 6608: an event the state does not expect is an FSM Error."""
        if conn is None:
            return  # a stray peer-level event (a stale timer): nothing to tell anyone
        subcode = _FSM_SUBCODES[conn.state]
        reason = f"{event.name} is unexpected in {conn.state.label}"
        self._fail(conn, self._notify(conn, Notification(ErrorCode.FSM, subcode), reason), True)

    def _manual_stop(self, _event: Event, _conn: Connection | None, payload: object) -> None:
        text, notification = cast(tuple[str, Notification | None], payload)
        reason = text or "stopped by the operator"
        for conn in list(self.connections.values()):
            was_up = conn.state == State.ESTABLISHED
            self._notify(conn, notification or Notification.shutdown(text), reason)
            self._drop(conn)
            if was_up:
                self._out.append(SessionDown(reason, False))
        if self.pending_connect is not None:
            self._out.append(Close(self.pending_connect))
            self.pending_connect = None
        self._timers.clear()
        self.established_at = None
        self._idle_state = State.IDLE
        self._running = False
        cease = (notification.code, notification.subcode) if notification else None
        limit = cease == (ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED)
        self._record(SessionError(ErrorKind.LIMIT if limit else ErrorKind.STOPPED, reason))

    def _bfd_hold(self, _event: Event, _conn: Connection | None, _payload: object) -> None:
        """BFD failed while no connection is open: stop trying until BFD is Up (5882 4.1)."""
        self.bfd_held = True
        if self._running:  # BIRD's bgp_bfd_notify: a stopped session keeps why it stopped
            self._record(SessionError(ErrorKind.BFD, "BFD session down"))
        self._cancel(Timer.CONNECT_RETRY)
        if self.pending_connect is not None:
            self._out.append(Close(self.pending_connect))
            self.pending_connect = None
        self._idle_state = State.IDLE

    def _bfd_failed(self, _event: Event, _conn: Connection | None, _payload: object) -> None:
        """BFD failed: the path is gone (RFC 5882 4.2); end every connection, hold the session.

        BIRD's split: ``bfd on`` (``bfd_graceful`` False) is a hard failure, Cease/BFD Down
        (RFC 9384), after which RFC 4724 has both sides drop the routes (Myna offers no RFC
        8538 N bit, so any NOTIFICATION ends graceful restart). ``bfd graceful`` ends a session
        that negotiated graceful restart without a NOTIFICATION, as a restart: both sides keep
        the routes as stale (RFC 5882 4.3.2: Myna's BFD shares fate with its control plane,
        the C bit is clear, so the failure may be the peer restarting).
        """
        reason = "BFD session down: the path to the peer failed"
        # The Established connection last: its error is the session's (BIRD keeps the first).
        for conn in sorted(self.connections.values(), key=lambda c: c.state == State.ESTABLISHED):
            graceful = (
                self.settings.bfd_graceful
                and conn.state == State.ESTABLISHED
                and (conn.graceful or conn.long_lived)
            )
            if not graceful:
                self._notify(conn, Notification(ErrorCode.CEASE, CeaseSubcode.BFD_DOWN), reason)
            text = reason + (" (graceful restart)" if graceful else "")
            self._fail(conn, SessionError(ErrorKind.BFD, text), not graceful)
        self.bfd_held = True

    def _bfd_released(self, _event: Event, _conn: Connection | None, payload: object) -> None:
        """BFD no longer holds the session: start it again if nothing else keeps it Idle."""
        if not self.bfd_held:
            return  # BFD was Up, or came Up, with nothing waiting for it
        self.bfd_held = False
        waiting = (Timer.IDLE_HOLD, 0) in self._timers
        if self.state == State.IDLE and self._running and not waiting:
            self._restart(_event, None, None)
        self._reason = f"{payload}: no longer held down"


Handler = Callable[[PeerFsm, Event, Connection | None, object], None]

_TIMER_EVENTS = {
    Timer.CONNECT_RETRY: Event.CONNECT_RETRY_TIMER_EXPIRES,
    Timer.IDLE_HOLD: Event.IDLE_HOLD_TIMER_EXPIRES,
    Timer.HOLD: Event.HOLD_TIMER_EXPIRES,
    Timer.KEEPALIVE: Event.KEEPALIVE_TIMER_EXPIRES,
    Timer.SEND_HOLD: Event.SEND_HOLD_TIMER_EXPIRES,
}

_FSM_SUBCODES = {
    State.OPEN_SENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPEN_CONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}

_S, _E, _F = State, Event, PeerFsm
_TCP_UP = (_E.TCP_CR_ACKED, _E.TCP_CONNECTION_CONFIRMED)
_NOTIFIED = (_E.NOTIF_MSG, _E.NOTIF_MSG_VER_ERR)
_MALFORMED = (_E.BGP_HEADER_ERR, _E.BGP_OPEN_MSG_ERR, _E.UPDATE_MSG_ERR)
_OPEN_STATES = (_S.OPEN_SENT, _S.OPEN_CONFIRM, _S.ESTABLISHED)

# Every transition of the FSM: (the state the event finds, the event) -> what is done. Events
# on a connection are looked up with that connection's state; the others with the session's.
# A pair not listed is ignored in Idle, Connect and Active, and is an FSM Error (RFC 6608)
# with a connection in OpenSent, OpenConfirm or Established.
_TRANSITIONS: dict[tuple[State, Event], Handler] = {
    # Idle: only a start leaves it; the peer's connections are refused meanwhile.
    (_S.IDLE, _E.MANUAL_START): _F._start,
    (_S.IDLE, _E.MANUAL_START_PASSIVE): _F._start,
    (_S.IDLE, _E.IDLE_HOLD_TIMER_EXPIRES): _F._restart,
    (_S.IDLE, _E.TCP_CONNECTION_CONFIRMED): _F._refuse,
    # Connect and Active: waiting for TCP, ours or the peer's.
    **{(s, _E.CONNECT_RETRY_TIMER_EXPIRES): _F._retry_connect for s in (_S.CONNECT, _S.ACTIVE)},
    **{(s, _E.TCP_CONNECTION_FAILS): _F._connect_failed for s in (_S.CONNECT, _S.ACTIVE)},
    **{(s, e): _F._open_connection for s in (_S.CONNECT, _S.ACTIVE) for e in _TCP_UP},
    # OpenSent and OpenConfirm: a second connection may race the first (RFC 4271 6.8).
    **{(s, e): _F._open_connection for s in (_S.OPEN_SENT, _S.OPEN_CONFIRM) for e in _TCP_UP},
    (_S.OPEN_SENT, _E.BGP_OPEN): _F._open_received,
    (_S.OPEN_CONFIRM, _E.KEEPALIVE_MSG): _F._session_up,
    (_S.OPEN_CONFIRM, _E.KEEPALIVE_TIMER_EXPIRES): _F._send_keepalive,
    # Established.
    (_S.ESTABLISHED, _E.TCP_CONNECTION_CONFIRMED): _F._established_collision,
    (_S.ESTABLISHED, _E.KEEPALIVE_MSG): _F._keepalive_heard,
    (_S.ESTABLISHED, _E.KEEPALIVE_TIMER_EXPIRES): _F._send_keepalive,
    (_S.ESTABLISHED, _E.ROUTE_REFRESH_MSG): _F._route_refresh,
    # Endings shared by every state with a connection.
    **{(s, _E.HOLD_TIMER_EXPIRES): _F._hold_expired for s in _OPEN_STATES},
    **{(s, _E.SEND_HOLD_TIMER_EXPIRES): _F._send_hold_expired for s in _OPEN_STATES},
    **{(s, e): _F._notification_received for s in _OPEN_STATES for e in _NOTIFIED},
    **{(s, e): _F._message_error for s in _OPEN_STATES for e in _MALFORMED},
    **{(s, _E.TCP_CONNECTION_FAILS): _F._connection_lost for s in _OPEN_STATES},
    **{(s, _E.MANUAL_STOP): _F._manual_stop for s in State},
    # BFD (RFC 5882): a failure ends the session and holds it Idle; BFD_UP lets it go again.
    **{(s, _E.BFD_DOWN): _F._bfd_hold for s in (_S.IDLE, _S.CONNECT, _S.ACTIVE)},
    **{(s, _E.BFD_DOWN): _F._bfd_failed for s in _OPEN_STATES},
    **{(s, _E.BFD_UP): _F._bfd_released for s in State},
}
