"""The session FSM driven without sockets: two FSMs wired in memory (``fsm_harness``).

Each scenario is a plain function so that the last test can run them all again while recording
which (state, event) pairs of ``session_fsm._TRANSITIONS`` fire, and assert that together they
walk the whole table (with ``test_session_fsm_bfd``'s scenarios for the BFD events).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fsm_harness import Pair, settings

from speaker import session_fsm
from speaker.capabilities import (
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.control_messages import (
    KEEPALIVE_MESSAGE,
    Notification,
    RouteRefresh,
    encode_notification,
    encode_route_refresh,
)
from speaker.framing import frame
from speaker.open_message import Open, encode_open
from speaker.session_connection import ErrorKind, SessionError
from speaker.session_events import (
    Close,
    Connect,
    Event,
    NotificationReceived,
    RouteRefreshReceived,
    SessionDown,
    SessionUp,
    State,
    StateChange,
    Timer,
    UpdatesReceived,
)
from speaker.session_fsm import PeerFsm
from speaker.update_message import encode_end_of_rib
from speaker.wire_codes import Family, MessageType

A_ID, B_ID = 0xC6120001, 0xC6120002  # 198.18.0.1 and 198.18.0.2
V4 = MultiprotocolCapability(1, 1)
CAPS = (V4, RouteRefreshCapability(), FourOctetAsCapability(64512))
GR = GracefulRestartCapability(0, 120, ((1, 1, 0x80),))


def established_pair(chunk: int = 0, **overrides: object) -> Pair:
    """A (active) and B (passive) brought up to Established; bytes cross in ``chunk``s."""
    overrides.setdefault("capabilities", CAPS)
    pair = Pair(
        settings(A_ID, **overrides),
        settings(B_ID, passive=True, **overrides),
        chunk=chunk,
    )
    pair.start()
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    return pair


def raw_open(**fields: object) -> bytes:
    """An OPEN from the peer with chosen fields (defaults: a good AS 64512 OPEN)."""
    values: dict[str, object] = {
        "asn": 64512,
        "hold_time": 9,
        "bgp_id": B_ID,
        "capabilities": CAPS,
    }
    values.update(fields)
    return encode_open(Open(**values))  # type: ignore[arg-type]


def opened(**overrides: object) -> tuple[PeerFsm, int, float]:
    """A lone FSM in OpenSent on incoming connection 1, with the time."""
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS, passive=True, **overrides))
    fsm.start(0.0)
    conn = fsm.new_connection_id()
    fsm.connection_made(0.0, conn, inbound=True)
    assert fsm.state == State.OPEN_SENT
    return fsm, conn, 0.0


def sent_notification(actions: list[object]) -> Notification:
    """The one NOTIFICATION among ``actions``."""
    (note,) = [a.notification for a in actions if type(a).__name__ == "SendNotification"]  # type: ignore[attr-defined]
    return note


# -- scenarios -----------------------------------------------------------------------------------


def scenario_active_passive_up() -> None:
    pair = established_pair()
    # The connect delay (1 s here) passed before A connected; B never connected.
    assert [t for t, a in pair.a.log if isinstance(a, Connect)] == [1.0]
    assert not pair.b.actions(Connect)
    (up,) = pair.a.actions(SessionUp)
    assert isinstance(up, SessionUp)
    assert up.negotiated.families == {Family.IPV4_UNICAST}
    assert up.negotiated.ibgp and up.negotiated.asn4
    states = [a.new for a in pair.a.actions(StateChange)]  # type: ignore[attr-defined]
    assert states == [
        State.ACTIVE,
        State.CONNECT,
        State.OPEN_SENT,
        State.OPEN_CONFIRM,
        State.ESTABLISHED,
    ]


def scenario_hold_timer_with_llgr_ends_the_session_gracefully() -> None:
    # RFC 9494 as BIRD applies it ("when use of LLGR is negotiated, handle hold timeout by LLGR
    # instead of by hard restart"): no NOTIFICATION, and a graceful end for the RIB.
    llgr = (
        *CAPS,
        GracefulRestartCapability(0, 120, ((1, 1, 0x80),)),
        LongLivedGracefulRestartCapability(((1, 1, 0x80, 3600),)),
    )
    pair = established_pair(capabilities=llgr)
    pair.cut = True
    pair.run_until(lambda: pair.a.fsm.state == State.IDLE)
    assert pair.a.notifications_sent() == []
    (down,) = pair.a.actions(SessionDown)
    assert down.graceful  # type: ignore[attr-defined]


def scenario_keepalives_hold_the_session() -> None:
    pair = established_pair()
    pair.run_for(600)
    assert pair.both(State.ESTABLISHED)
    # hold 9 -> keepalive every 3 s
    assert pair.a.fsm.established is not None
    assert pair.a.fsm.established.keepalive_time == 3


def scenario_hold_timer_expires_then_back_off() -> None:
    pair = established_pair()
    start = pair.now
    pair.cut = True  # B vanished: nothing it sends arrives any more
    pair.run_until(lambda: pair.a.fsm.state == State.IDLE)
    assert pair.now - start == pytest.approx(9.0, abs=3.01)  # hold 9, last KEEPALIVE <= 3 s ago
    assert pair.a.notifications_sent()[-1] == Notification(4, 0)
    (down,) = pair.a.actions(SessionDown)
    assert down == SessionDown("hold timer expired: the peer went silent", False)
    # Error wait: 5 s before the next attempt.
    assert pair.a.fsm.timer_deadline(Timer.IDLE_HOLD) == pytest.approx(pair.now + 5.0)
    pair.cut = False
    pair.run_until(lambda: pair.both(State.ESTABLISHED))


def scenario_error_wait_doubles_to_its_maximum() -> None:
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    now = 0.0
    fsm.start(now)
    waits = []
    for _ in range(5):
        # Out of the error wait it listens first and connects after the connect delay (BIRD).
        connects: list[Connect] = []
        while not connects:
            now = fsm.next_deadline() or now
            connects = [a for a in fsm.timers_expired(now) if isinstance(a, Connect)]
        (connect,) = connects
        fsm.connection_made(now, connect.conn, inbound=False)
        wrong_as = raw_open(asn=65000, capabilities=(V4, FourOctetAsCapability(65000)))
        actions = fsm.data_received(now, connect.conn, wrong_as)
        assert sent_notification(actions) == Notification(2, 2)
        assert fsm.state == State.IDLE
        deadline = fsm.timer_deadline(Timer.IDLE_HOLD)
        assert deadline is not None
        waits.append(deadline - now)
    assert waits == [5.0, 10.0, 20.0, 30.0, 30.0]


def scenario_connect_fails_then_retries() -> None:
    pair = Pair(settings(A_ID, capabilities=CAPS), settings(B_ID, capabilities=CAPS))
    pair.b.listening = False
    pair.apply(pair.a, pair.a.fsm.start(pair.now))
    pair.pump()
    pair.run_until(lambda: len(pair.a.actions(Connect)) >= 3)
    times = [t for t, a in pair.a.log if isinstance(a, Connect)]
    assert times == [1.0, 3.0, 5.0]  # connect delay 1 s, then connect retry 2 s
    assert pair.a.fsm.state == State.ACTIVE
    assert pair.a.fsm.last_error == "connect failed: refused"
    pair.b.listening = True
    pair.apply(pair.b, pair.b.fsm.start(pair.now))
    pair.pump()
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    # BIRD (1.6 and 2, bgp_conn_enter_established_state) clears the last error when the session
    # comes up; "show protocols all" prints none for an Established session.
    assert pair.a.fsm.last_error == "" and pair.b.fsm.last_error == ""
    pair.cut = True
    pair.run_until(lambda: pair.a.fsm.state == State.IDLE)
    assert pair.a.fsm.last_error == "hold timer expired: the peer went silent"


def scenario_a_spare_connections_error_is_not_the_sessions() -> None:
    # BIRD's bgp_store_error: "During PS_UP, we ignore errors on secondary connection".
    fsm, conn, now = fsm_in(State.OPEN_SENT)
    spare = fsm.new_connection_id()
    fsm.connection_made(now, spare, inbound=True)
    fsm.data_received(now, conn, raw_open())
    fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED and spare in fsm.connections
    fsm.connection_failed(now, spare, "reset")
    assert fsm.state == State.ESTABLISHED and fsm.error is None


def scenario_the_last_errors_class_is_birds() -> None:
    # What BIRD 1.6 stores (bgp.c, packets.c): BE_MISC/Graceful restart when a graceful-restart
    # peer reconnects while up, BE_AUTO_DOWN for the route limit, BE_MAN_DOWN for a stop (and
    # bgp_bfd_notify stores nothing once it is down), BE_BGP_TX with the code we sent,
    # BE_BGP_RX with the code received, BE_SOCKET when the connection is lost.
    fsm, now = PeerFsm(settings(A_ID, capabilities=(*CAPS, GR), passive=True)), 0.0
    fsm.start(now)
    conn = fsm.new_connection_id()
    fsm.connection_made(now, conn, inbound=True)
    fsm.data_received(now, conn, raw_open(capabilities=(*CAPS, GR)))
    fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
    assert fsm.established is not None and fsm.established.graceful
    fsm.connection_made(now, fsm.new_connection_id(), inbound=True)
    assert fsm.error is not None and fsm.error.kind == ErrorKind.GRACEFUL
    for notification, kind in (
        (Notification(6, 1), ErrorKind.LIMIT),
        (None, ErrorKind.STOPPED),
        (Notification(6, 3), ErrorKind.STOPPED),  # the peer removed from the config
    ):
        fsm, _conn, now = fsm_in(State.ESTABLISHED)
        fsm.stop(now, "bye", notification)
        fsm.bfd_down(now)
        assert fsm.error is not None and fsm.error.kind == kind and fsm.stopped
    fsm, conn, now = fsm_in(State.ESTABLISHED)
    fsm.timers_expired(now + 9)  # hold time 9, nothing heard
    assert fsm.error is not None and fsm.error.kind == ErrorKind.SENT
    assert fsm.error.notification == Notification(4, 0)
    fsm, conn, now = fsm_in(State.ESTABLISHED)
    fsm.connection_failed(now, conn, "closed by the peer")
    assert fsm.error == SessionError(ErrorKind.SOCKET, "connection lost: closed by the peer")
    fsm, conn, now = fsm_in(State.OPEN_SENT)
    fsm.bfd_down(now)
    assert fsm.error is not None and fsm.error.kind == ErrorKind.BFD
    # Our connect fails while the peer's connection is still opening (PS_START: stored).
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
    fsm.connection_made(1.1, fsm.new_connection_id(), inbound=True)
    fsm.connection_failed(1.2, connect.conn, "[Errno 111] refused")
    assert fsm.error == SessionError(ErrorKind.SOCKET, "connect failed: [Errno 111] refused")
    fsm, conn, now = fsm_in(State.ESTABLISHED)
    fsm.data_received(now, conn, encode_notification(Notification(6, 2)))
    assert fsm.error == SessionError(
        ErrorKind.RECEIVED,
        "NOTIFICATION received: Cease/Administrative Shutdown (6/2)",
        Notification(6, 2),
    )


def scenario_connect_retry_abandons_a_slow_attempt() -> None:
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    first = fsm.timers_expired(1.0)
    assert fsm.state == State.CONNECT
    (connect,) = [a for a in first if isinstance(a, Connect)]
    again = fsm.timers_expired(3.0)  # the SYN went unanswered for connect retry's 2 s
    assert Close(connect.conn) in again
    assert fsm.connection_made(3.5, connect.conn, inbound=False) == [Close(connect.conn)]
    assert fsm.state == State.CONNECT


def scenario_collision_keeps_the_higher_identifiers_connection() -> None:
    # Both sides active and starting together: two connections, one survives (6.8).
    pair = Pair(settings(A_ID, capabilities=CAPS), settings(B_ID, capabilities=CAPS))
    pair.start()
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    assert len(pair.a.actions(Connect)) == 1 and len(pair.b.actions(Connect)) == 1
    sent = pair.a.notifications_sent() + pair.b.notifications_sent()
    assert Notification(6, 7) in sent
    # B has the higher identifier: the connection B opened is the one left.
    survivor = pair.b.fsm.established
    assert survivor is not None and not survivor.inbound
    assert len(pair.a.fsm.connections) == 1 and len(pair.b.fsm.connections) == 1
    pair.run_for(60)
    assert pair.both(State.ESTABLISHED)


def scenario_collision_with_established_is_refused() -> None:
    pair = established_pair()
    fsm = pair.b.fsm
    conn = fsm.new_connection_id()
    actions = fsm.connection_made(pair.now, conn, inbound=True)
    assert sent_notification(actions) == Notification(6, 7)
    assert Close(conn) in actions
    assert fsm.state == State.ESTABLISHED


def scenario_graceful_restart_reconnect() -> None:
    # RFC 4724 4.2: with GR, a new connection while Established means the peer restarted.
    pair = established_pair(capabilities=(*CAPS, GR))
    old = pair.b.fsm.established
    assert old is not None and old.graceful
    pair.cut = True  # A's process dies silently...
    a_restarted = PeerFsm(settings(A_ID, capabilities=(*CAPS, GR)))
    pair.a.fsm = a_restarted  # ...and comes back with a fresh FSM
    pair.cut = False
    pair.links.clear()
    pair.do(pair.a, a_restarted.start(pair.now))
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    downs = pair.b.actions(SessionDown)
    assert downs == [SessionDown("the peer reconnected (graceful restart)", True)]
    assert len(pair.b.actions(SessionUp)) == 2


def scenario_peer_loss_with_graceful_restart_is_graceful() -> None:
    pair = established_pair(capabilities=(*CAPS, GR))
    conn = pair.a.fsm.established
    assert conn is not None
    actions = pair.a.fsm.connection_failed(pair.now, conn.id, "Connection reset by peer")
    assert SessionDown("connection lost: Connection reset by peer", True) in actions


def scenario_manual_stop_sends_shutdown_text() -> None:
    pair = established_pair()
    pair.do(pair.a, pair.a.fsm.stop(pair.now, "maintenance: node drained"))
    assert pair.a.fsm.state == State.IDLE
    (received,) = pair.b.actions(NotificationReceived)
    assert received.notification.shutdown_text == "maintenance: node drained"  # type: ignore[attr-defined]
    assert pair.b.actions(SessionDown) == [
        SessionDown(
            "NOTIFICATION received: Cease/Administrative Shutdown (6/2): "
            '"maintenance: node drained"',
            False,
        )
    ]
    # A stays down: no timer runs, and B's connection attempts are refused.
    assert pair.a.fsm.next_deadline() is None
    conn = pair.a.fsm.new_connection_id()
    refused = pair.a.fsm.connection_made(pair.now, conn, inbound=True)
    assert sent_notification(refused) == Notification(6, 5)


def scenario_updates_and_route_refresh_reach_the_rib() -> None:
    pair = established_pair(chunk=7)  # bytes arrive 7 at a time
    conn = pair.a.fsm.established
    assert conn is not None
    eor = encode_end_of_rib(Family.IPV4_UNICAST)
    refresh = encode_route_refresh(RouteRefresh(1, 1))
    actions = []
    data = eor + refresh + KEEPALIVE_MESSAGE
    for i in range(0, len(data), 7):
        actions += pair.a.fsm.data_received(pair.now, conn.id, data[i : i + 7])
    updates = [a for a in actions if isinstance(a, UpdatesReceived)]
    assert [u.updates[0].end_of_rib for u in updates] == [Family.IPV4_UNICAST]
    assert [a for a in actions if isinstance(a, RouteRefreshReceived)] == [
        RouteRefreshReceived(conn.id, RouteRefresh(1, 1))
    ]


def scenario_unexpected_messages_are_fsm_errors() -> None:
    # RFC 6608 subcodes: 1 in OpenSent, 2 in OpenConfirm, 3 in Established.
    fsm, conn, now = opened()
    assert sent_notification(fsm.data_received(now, conn, KEEPALIVE_MESSAGE)) == Notification(5, 1)
    fsm, conn, now = opened()
    eor = encode_end_of_rib(Family.IPV4_UNICAST)
    assert sent_notification(fsm.data_received(now, conn, eor)) == Notification(5, 1)
    fsm, conn, now = opened()
    fsm.data_received(now, conn, raw_open())
    assert fsm.state == State.OPEN_CONFIRM
    assert sent_notification(fsm.data_received(now, conn, raw_open())) == Notification(5, 2)
    fsm, conn, now = opened()
    fsm.data_received(now, conn, raw_open() + KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED
    assert sent_notification(fsm.data_received(now, conn, raw_open())) == Notification(5, 3)
    assert fsm.state == State.IDLE


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": 3}, Notification(2, 1, b"\x00\x04")),
        ({"asn": 64513, "capabilities": (V4, FourOctetAsCapability(64513))}, Notification(2, 2)),
        (
            {"asn": 64512, "capabilities": (V4, FourOctetAsCapability(4200000000))},
            Notification(2, 2),
        ),
        ({"bgp_id": 0}, Notification(2, 3)),
        ({"bgp_id": A_ID}, Notification(2, 3)),  # iBGP peer with our own router id
        ({"hold_time": 1}, Notification(2, 6)),
        ({"hold_time": 2}, Notification(2, 6)),
    ],
)
def test_open_is_refused(fields: dict[str, object], expected: Notification) -> None:
    fsm, conn, now = opened()
    actions = fsm.data_received(now, conn, raw_open(**fields))
    assert sent_notification(actions) == expected
    assert Close(conn) in actions
    assert fsm.state == State.IDLE


def scenario_open_checks_accept() -> None:
    # Hold 0 is accepted and means no keepalives and no hold timer.
    fsm, conn, now = opened()
    fsm.data_received(now, conn, raw_open(hold_time=0) + KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED
    assert fsm.next_deadline() is None
    # A 4-octet AS over AS_TRANS, with peer_as None taking whatever the OPEN says.
    fsm, conn, now = opened(peer_as=None, local_as=4200000001)
    big = raw_open(asn=23456, capabilities=(V4, FourOctetAsCapability(4200000000)))
    fsm.data_received(now, conn, big + KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED
    up = fsm.established
    assert up is not None and up.negotiated.peer_as == 4200000000 and not up.negotiated.ibgp


def scenario_unsupported_capability_is_dropped_on_retry() -> None:
    # RFC 5492: the peer refuses a capability with 2/7; the next OPEN leaves it out.
    fsm, conn, now = opened()
    refusal = Notification(2, 7, bytes((2, 0)))  # route refresh, code 2
    fsm.data_received(now, conn, encode_notification(refusal))
    assert RouteRefreshCapability() not in fsm.capabilities
    assert V4 in fsm.capabilities
    fsm.timers_expired(fsm.next_deadline() or 0.0)
    conn2 = fsm.new_connection_id()
    (send,) = [a for a in fsm.connection_made(10.0, conn2, inbound=True) if hasattr(a, "data")]
    assert send.data == encode_open(  # type: ignore[attr-defined]
        Open(64512, 9, A_ID, (V4, FourOctetAsCapability(64512)))
    )


def scenario_send_hold_timer() -> None:
    # RFC 9687: a peer that reads nothing is dropped after max(8 min, 2 x hold).
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    pair.do(pair.a, pair.a.fsm.write_blocked(pair.now, conn.id, True))
    start = pair.now
    pair.run_until(lambda: pair.a.fsm.state == State.IDLE)
    assert pair.now - start == pytest.approx(480.0)
    assert Notification(8, 0) in pair.a.notifications_sent()
    # Unblocking in time keeps the session.
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    pair.a.fsm.write_blocked(pair.now, conn.id, True)
    pair.run_for(400)
    pair.a.fsm.write_blocked(pair.now, conn.id, False)
    pair.run_for(400)
    assert pair.both(State.ESTABLISHED)


def scenario_paused_reading_stops_the_hold_timer() -> None:
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    pair.a.fsm.reading_paused(pair.now, conn.id, True)
    assert pair.a.fsm.timer_deadline(Timer.HOLD, conn.id) is None
    pair.a.fsm.reading_paused(pair.now, conn.id, False)
    assert pair.a.fsm.timer_deadline(Timer.HOLD, conn.id) == pytest.approx(pair.now + 9)


def scenario_malformed_message_resets_with_its_notification() -> None:
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    bad_marker = b"\x00" * 16 + KEEPALIVE_MESSAGE[16:]
    actions = pair.a.fsm.data_received(pair.now, conn.id, bad_marker)
    assert sent_notification(actions) == Notification(1, 1)
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    truncated_update = b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x05\x00\x00"  # withdrawn overruns
    actions = pair.a.fsm.data_received(pair.now, conn.id, truncated_update)
    assert sent_notification(actions).code == 3
    pair = established_pair()
    conn = pair.a.fsm.established
    assert conn is not None
    short_refresh = b"\xff" * 16 + b"\x00\x16\x05" + b"\x00\x01\x00"
    actions = pair.a.fsm.data_received(pair.now, conn.id, short_refresh)
    assert sent_notification(actions) == Notification(7, 1, short_refresh)


def scenario_connection_lost_in_open_sent_returns_to_active() -> None:
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
    fsm.connection_made(1.0, connect.conn, inbound=False)
    assert fsm.state == State.OPEN_SENT
    fsm.connection_failed(1.5, connect.conn, "reset")
    assert fsm.state == State.ACTIVE
    assert fsm.timer_deadline(Timer.CONNECT_RETRY) == pytest.approx(3.5)
    # OpenSent's own hold timer (4 minutes by default) catches a peer that never sends OPEN.
    fsm, _conn, _now = opened()
    actions = fsm.timers_expired(240.0)
    assert sent_notification(actions) == Notification(4, 0)


def scenario_open_confirm_endings() -> None:
    for ending in ("notification", "lost", "hold", "malformed"):
        fsm, conn, now = opened()
        fsm.data_received(now, conn, raw_open())
        assert fsm.state == State.OPEN_CONFIRM
        if ending == "notification":
            actions = fsm.data_received(now, conn, encode_notification(Notification(6, 4)))
            assert NotificationReceived(conn, Notification(6, 4)) in actions
        elif ending == "lost":
            actions = fsm.connection_failed(now, conn, "reset")
        elif ending == "hold":
            actions = fsm.timers_expired(now + 9)
            assert sent_notification(actions) == Notification(4, 0)
        else:
            actions = fsm.data_received(now, conn, b"\x00" * 19)
            assert sent_notification(actions) == Notification(1, 1)
        assert fsm.state == State.IDLE
        assert not [a for a in actions if isinstance(a, SessionDown)]  # it was never up


def scenario_version_notification_in_open_sent() -> None:
    fsm, conn, now = opened()
    actions = fsm.data_received(now, conn, encode_notification(Notification(2, 1, b"\x00\x03")))
    assert NotificationReceived(conn, Notification(2, 1, b"\x00\x03")) in actions
    assert fsm.state == State.IDLE


def fsm_in(state: State, **overrides: object) -> tuple[PeerFsm, int, float]:
    """A lone FSM whose incoming connection 1 is in ``state`` (OpenSent or later)."""
    fsm, conn, now = opened(**overrides)
    if state >= State.OPEN_CONFIRM:
        fsm.data_received(now, conn, raw_open())
    if state >= State.ESTABLISHED:
        fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
    assert fsm.state == state
    return fsm, conn, now


_ENDINGS: dict[str, tuple[bytes | None, Notification | None]] = {
    # what the peer sends -> what we answer (None: no NOTIFICATION)
    "bad marker": (b"\x00" * 16 + KEEPALIVE_MESSAGE[16:], Notification(1, 1)),
    # optional parameters length 5, but only 2 octets follow
    "malformed OPEN": (
        frame(MessageType.OPEN, bytes((4, 0xFC, 0, 0, 9, 198, 18, 0, 2, 5, 2, 0))),
        Notification(2, 0),
    ),
    "short ROUTE-REFRESH": (
        b"\xff" * 16 + b"\x00\x16\x05\x00\x01\x00",
        Notification(7, 1, b"\xff" * 16 + b"\x00\x16\x05\x00\x01\x00"),
    ),
    "version NOTIFICATION": (encode_notification(Notification(2, 1, b"\x00\x03")), None),
    "Cease": (encode_notification(Notification(6, 3)), None),
}


def scenario_every_open_state_ends_on_every_error() -> None:
    for state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
        for what, (wire, answer) in _ENDINGS.items():
            fsm, conn, now = fsm_in(state)
            actions = fsm.data_received(now, conn, wire or b"")
            notes = [a for a in actions if type(a).__name__ == "SendNotification"]
            if answer is None:
                assert not notes, (state, what)
            else:
                assert sent_notification(actions) == answer, (state, what)
            assert Close(conn) in actions, (state, what)
            assert fsm.state == State.IDLE, (state, what)
            downs = [a for a in actions if isinstance(a, SessionDown)]
            assert len(downs) == (state == State.ESTABLISHED), (state, what)
        # The Send Hold Timer runs in every state that has a connection (RFC 9687).
        fsm, conn, now = fsm_in(state, send_hold_time=5.0)
        fsm.write_blocked(now, conn, True)
        actions = fsm.timers_expired(now + 5)
        assert sent_notification(actions) == Notification(8, 0)
        # And ManualStop ends each of them with a Cease.
        fsm, conn, now = fsm_in(state)
        actions = fsm.stop(now, "bye")
        assert sent_notification(actions) == Notification.shutdown("bye")
        assert fsm.state == State.IDLE and fsm.next_deadline() is None


def scenario_manual_stop_without_a_connection() -> None:
    for steps in (0, 1, 2):  # Idle, then Active (connect delay), then Connect
        fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
        if steps:
            fsm.start(0.0)
        if steps == 2:
            fsm.timers_expired(1.0)
        assert fsm.state == (State.IDLE, State.ACTIVE, State.CONNECT)[steps]
        actions = fsm.stop(2.0)
        assert fsm.state == State.IDLE and fsm.next_deadline() is None
        assert fsm.pending_connect is None
        assert (Close(1) in actions) == (steps == 2)


def scenario_second_connection_in_open_confirm() -> None:
    # A's connection reached OpenConfirm when B's own connection arrives; A (lower id) keeps
    # the connection B opened, which is the incoming one on A's side.
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
    fsm.connection_made(1.0, connect.conn, inbound=False)
    fsm.data_received(1.0, connect.conn, raw_open())
    assert fsm.state == State.OPEN_CONFIRM
    incoming = fsm.new_connection_id()
    fsm.connection_made(1.1, incoming, inbound=True)
    assert len(fsm.connections) == 2
    actions = fsm.data_received(1.2, incoming, raw_open())
    assert sent_notification(actions) == Notification(6, 7)
    assert Close(connect.conn) in actions
    # BIRD's bgp_rx_open stores the Cease it sends the loser (BE_BGP_TX) while nothing is up.
    assert fsm.error is not None and fsm.error.notification == Notification(6, 7)
    fsm.data_received(1.3, incoming, KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED
    # Our own attempt completing while the peer's connection is in OpenConfirm races it too.
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
    incoming = fsm.new_connection_id()
    fsm.connection_made(1.1, incoming, inbound=True)
    fsm.data_received(1.2, incoming, raw_open())
    assert fsm.state == State.OPEN_CONFIRM
    fsm.connection_made(1.3, connect.conn, inbound=False)
    actions = fsm.data_received(1.4, connect.conn, raw_open())
    assert sent_notification(actions) == Notification(6, 7)
    assert Close(connect.conn) in actions and list(fsm.connections) == [incoming]
    # A third connection while two race is refused.
    fsm2, _conn, now = fsm_in(State.OPEN_CONFIRM)
    fsm2.connection_made(now, fsm2.new_connection_id(), inbound=True)
    third = fsm2.new_connection_id()
    assert sent_notification(fsm2.connection_made(now, third, inbound=True)) == Notification(6, 5)


def scenario_our_late_attempt_in_active() -> None:
    # B's connection took over while our SYN was in flight, then died: back in Active, our
    # old attempt may still finish (it carries the session) or fail (retry later).
    for outcome in ("made", "failed"):
        fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
        fsm.start(0.0)
        (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
        incoming = fsm.new_connection_id()
        fsm.connection_made(1.1, incoming, inbound=True)
        fsm.connection_failed(1.2, incoming, "reset")
        assert fsm.state == State.ACTIVE and fsm.pending_connect == connect.conn
        if outcome == "made":
            fsm.connection_made(1.3, connect.conn, inbound=False)
            assert fsm.state == State.OPEN_SENT
        else:
            fsm.connection_failed(1.3, connect.conn, "no route to host")
            assert fsm.state == State.ACTIVE
            assert fsm.timer_deadline(Timer.CONNECT_RETRY) == pytest.approx(3.3)


SCENARIOS: list[Callable[[], None]] = [
    value for name, value in sorted(globals().items()) if name.startswith("scenario_")
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__[len("scenario_") :])
def test_scenario(scenario: Callable[[], None]) -> None:
    scenario()


@contextmanager
def recording_transitions() -> Iterator[set[tuple[State, Event]]]:
    """Record every table entry that fires while the block runs."""
    seen: set[tuple[State, Event]] = set()
    table = session_fsm._TRANSITIONS
    original = dict(table)

    def wrap(key: tuple[State, Event], handler: session_fsm.Handler) -> session_fsm.Handler:
        def recorded(fsm: PeerFsm, event: Event, conn: object, payload: object) -> None:
            seen.add(key)
            handler(fsm, event, conn, payload)  # type: ignore[arg-type]

        return recorded

    for key, handler in original.items():
        table[key] = wrap(key, handler)
    try:
        yield seen
    finally:
        table.update(original)


def test_the_scenarios_walk_the_whole_transition_table() -> None:
    # The BFD events' scenarios live in their own module, which imports this one's helpers
    # (so it cannot be imported at the top of this one).
    from test_session_fsm_bfd import SCENARIOS as BFD_SCENARIOS  # noqa: PLC0415

    with recording_transitions() as seen:
        for scenario in SCENARIOS + BFD_SCENARIOS:
            scenario()
        for fields, _ in [({"version": 3}, None), ({"hold_time": 1}, None)]:
            fsm, conn, now = opened()
            fsm.data_received(now, conn, raw_open(**fields))
    missing = set(session_fsm._TRANSITIONS) - seen
    assert not missing, "transitions no test walks: " + ", ".join(
        f"({s.label}, {e.name})" for s, e in sorted(missing)
    )
