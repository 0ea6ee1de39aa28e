"""The session FSM's BFD events (RFC 5882) driven without sockets, as ``test_session_fsm`` does.

Expected values come from the RFCs: Cease subcode 10 "BFD Down" (RFC 9384 2); no action on a
fall caused by AdminDown (RFC 5882 3.2, 4.2: the daemon feeds no event then, so nothing here
is told); the session held down while the peer, which has shown it runs BFD, cannot bring BFD
Up (4.1); a NOTIFICATION ending graceful restart and a silent end keeping it (RFC 4724 4.2,
which BIRD's ``bfd on`` and ``bfd graceful`` choose between). ``SCENARIOS`` joins
``test_session_fsm``'s walk of the whole transition table.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from fsm_harness import Pair, settings
from test_session_fsm import (
    A_ID,
    B_ID,
    CAPS,
    GR,
    fsm_in,
    raw_open,
    sent_notification,
)

from speaker.control_messages import KEEPALIVE_MESSAGE, Notification
from speaker.session_events import Close, Connect, SessionDown, SessionUp, State, Timer
from speaker.session_fsm import PeerFsm

BFD_DOWN_CEASE = Notification(6, 10)  # RFC 9384: Cease, subcode 10 "BFD Down"
REJECTED = Notification(6, 5)  # RFC 4486: Cease, Connection Rejected


def active_pair(**overrides: object) -> Pair:
    """A and B both active (so B reconnects on its own), brought up to Established."""
    overrides.setdefault("capabilities", CAPS)
    pair = Pair(settings(A_ID, **overrides), settings(B_ID, **overrides))
    pair.start()
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    return pair


def scenario_bfd_down_ends_an_established_session_and_holds_it() -> None:
    # GR negotiated, and yet `bfd on` (the default) makes the fall a hard one.
    pair = active_pair(capabilities=(*CAPS, GR))
    before = len(pair.a.notifications_sent())  # the collision's Cease 6/7 (both connect)
    pair.do(pair.a, pair.a.fsm.bfd_down(pair.now))
    assert pair.a.notifications_sent()[before:] == [BFD_DOWN_CEASE]
    assert pair.a.actions(SessionDown) == [
        SessionDown("BFD session down: the path to the peer failed", False)
    ]
    assert pair.a.fsm.state == State.IDLE and pair.a.fsm.bfd_held
    # The peer got a NOTIFICATION: for it too the end is not graceful (RFC 4724 4.2).
    (b_down,) = pair.b.actions(SessionDown)
    assert not b_down.graceful  # type: ignore[attr-defined]
    # B comes back after its error wait; A refuses it, and opens nothing, while held.
    connects_before = len(pair.a.actions(Connect))
    pair.run_for(120)
    assert pair.a.fsm.state == State.IDLE
    assert len(pair.a.actions(Connect)) == connects_before
    refusals = [n for n in pair.a.notifications_sent()[before:] if n == REJECTED]
    assert len(refusals) >= 3  # B's error wait doubles 5, 10, 20, 30, 30 ...
    assert pair.b.fsm.state != State.ESTABLISHED
    # B waits for A's connection from now on (its own would race A's, each side refusing
    # the other from its error wait: both active is not what this scenario is about).
    pair.b.fsm.settings = replace(pair.b.fsm.settings, passive=True)
    pair.run_until(lambda: pair.b.fsm.state == State.ACTIVE)
    # BFD Up again: A starts at once (its error wait is long over), listening first and
    # connecting after the connect delay, as after any error wait; the session returns.
    pair.do(pair.a, pair.a.fsm.bfd_up(pair.now))
    assert not pair.a.fsm.bfd_held and pair.a.fsm.state == State.ACTIVE
    assert pair.a.fsm.timer_deadline(Timer.CONNECT_RETRY) == pytest.approx(pair.now + 1.0)
    pair.run_until(lambda: pair.both(State.ESTABLISHED))
    assert len(pair.a.actions(SessionUp)) == 2


def scenario_bfd_graceful_ends_a_graceful_restart_session_silently() -> None:
    # BIRD's `bfd graceful`: no NOTIFICATION, so both sides keep the routes (RFC 4724).
    pair = active_pair(capabilities=(*CAPS, GR), bfd_graceful=True)
    before = len(pair.a.notifications_sent())
    pair.do(pair.a, pair.a.fsm.bfd_down(pair.now))
    assert pair.a.notifications_sent()[before:] == []
    (down,) = pair.a.actions(SessionDown)
    assert down.graceful  # type: ignore[attr-defined]
    (b_down,) = pair.b.actions(SessionDown)
    assert b_down.graceful  # type: ignore[attr-defined]
    assert pair.a.fsm.bfd_held
    # Without graceful restart negotiated there is nothing to keep: a hard end after all.
    pair = active_pair(bfd_graceful=True)
    before = len(pair.a.notifications_sent())
    pair.do(pair.a, pair.a.fsm.bfd_down(pair.now))
    assert pair.a.notifications_sent()[before:] == [BFD_DOWN_CEASE]
    (down,) = pair.a.actions(SessionDown)
    assert not down.graceful  # type: ignore[attr-defined]


def scenario_bfd_graceful_keeps_the_established_connections_reason() -> None:
    # A spare connection in OpenSent beside the Established one: both end, and the session's
    # error is the Established connection's (BIRD keeps the error that took it down).
    fsm = PeerFsm(settings(A_ID, capabilities=(*CAPS, GR), passive=True, bfd_graceful=True))
    fsm.start(0.0)
    conn, spare = fsm.new_connection_id(), fsm.new_connection_id()
    fsm.connection_made(0.0, conn, inbound=True)
    fsm.connection_made(0.0, spare, inbound=True)
    fsm.data_received(0.0, conn, raw_open(capabilities=(*CAPS, GR)))
    fsm.data_received(0.0, conn, KEEPALIVE_MESSAGE)
    assert fsm.state == State.ESTABLISHED and spare in fsm.connections
    fsm.bfd_down(1.0)
    assert not fsm.connections
    assert fsm.last_error == "BFD session down: the path to the peer failed (graceful restart)"


def scenario_bfd_down_while_opening_ends_every_connection() -> None:
    for state in (State.OPEN_SENT, State.OPEN_CONFIRM):
        fsm, conn, now = fsm_in(state)
        actions = fsm.bfd_down(now)
        assert sent_notification(actions) == BFD_DOWN_CEASE, state
        assert Close(conn) in actions, state
        assert not [a for a in actions if isinstance(a, SessionDown)], state  # never up
        assert fsm.state == State.IDLE and fsm.bfd_held, state
        # Its error wait runs out; it stays Idle, held, until BFD is Up.
        fsm.timers_expired(fsm.next_deadline() or now)
        assert fsm.state == State.IDLE and fsm.next_deadline() is None
        actions = fsm.bfd_up(now + 60)
        assert fsm.state == State.ACTIVE, state  # passive (fsm_in): listening again


def scenario_bfd_down_without_a_connection_stops_trying() -> None:
    # Active (waiting for the connect delay): the delay no longer leads to a Connect.
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    assert fsm.state == State.ACTIVE
    fsm.bfd_down(0.5)
    assert fsm.state == State.IDLE and fsm.next_deadline() is None
    # Connect (our SYN in flight): the attempt is abandoned.
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.start(0.0)
    (connect,) = [a for a in fsm.timers_expired(1.0) if isinstance(a, Connect)]
    assert fsm.state == State.CONNECT
    assert Close(connect.conn) in fsm.bfd_down(1.5)
    assert fsm.state == State.IDLE and fsm.pending_connect is None
    assert fsm.connection_made(1.6, connect.conn, inbound=False) == [Close(connect.conn)]
    # Idle, not started yet: a start while held stays Idle; BFD Up then starts it.
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS))
    fsm.bfd_down(0.0)
    fsm.start(0.0)
    assert fsm.state == State.IDLE and fsm.next_deadline() is None
    fsm.bfd_up(2.0)
    assert fsm.state == State.ACTIVE  # error wait over long ago: it starts at once
    assert fsm.timer_deadline(Timer.CONNECT_RETRY) == pytest.approx(3.0)  # connect delay 1 s


def scenario_bfd_up_waits_for_the_error_wait() -> None:
    # BFD comes back before the error wait is over: the session waits for the error wait.
    fsm, _conn, now = fsm_in(State.ESTABLISHED)
    fsm.bfd_down(now)
    restart_at = fsm.timer_deadline(Timer.IDLE_HOLD)
    assert restart_at == pytest.approx(now + 5.0)  # error wait min 5 s (the default)
    fsm.bfd_up(now + 1.0)
    assert fsm.state == State.IDLE and not fsm.bfd_held
    fsm.timers_expired(restart_at)
    assert fsm.state == State.ACTIVE  # passive: listening


def scenario_bfd_up_without_a_hold_changes_nothing() -> None:
    # BFD coming Up (or stopping advising) while nothing waits for it: no action at all.
    for state in State:
        if state >= State.OPEN_SENT:
            fsm, _conn, now = fsm_in(state)
        else:
            fsm, now = PeerFsm(settings(A_ID, capabilities=CAPS)), 0.0
            if state in (State.CONNECT, State.ACTIVE):
                fsm.start(now)
            if state == State.CONNECT:
                fsm.timers_expired(1.0)
        assert fsm.state == state
        deadline = fsm.next_deadline()
        assert fsm.bfd_up(now) == [], state
        assert fsm.state == state and fsm.next_deadline() == deadline, state


def scenario_manual_stop_is_not_undone_by_bfd_up() -> None:
    fsm, _conn, now = fsm_in(State.ESTABLISHED)
    fsm.bfd_down(now)
    fsm.stop(now + 1)
    assert fsm.bfd_up(now + 2) == []
    assert fsm.state == State.IDLE and fsm.next_deadline() is None


def scenario_both_ends_failing_at_once_come_back() -> None:
    # One path, two BFD sessions: both active ends fall within milliseconds of each other and
    # wait out equal error waits, ending a few ms apart. Were each to connect at once, each
    # would find the other still Idle and be refused, again and again; out of its error wait
    # each listens first (as BIRD does), so the earlier one's connection gets in. With RFC
    # 4271 10's jitter on the timers (the daemon's sessions) as without it.
    def run(jitter: bool) -> Pair:
        timers = {"capabilities": CAPS, "error_wait_min": 2.0, "error_wait_max": 2.0}
        pair = Pair(settings(A_ID, **timers), settings(B_ID, **timers))
        if jitter:
            pair.a.fsm = PeerFsm(pair.a.fsm.settings, random.Random(1))
            pair.b.fsm = PeerFsm(pair.b.fsm.settings, random.Random(2))
        pair.start()
        pair.run_until(lambda: pair.both(State.ESTABLISHED))
        pair.cut = True  # the path is gone: BFD tells both ends, 10 ms apart
        pair.do(pair.a, pair.a.fsm.bfd_down(pair.now))
        pair.now += 0.01
        pair.do(pair.b, pair.b.fsm.bfd_down(pair.now))
        pair.cut = False
        pair.links.clear()
        pair.do(pair.a, pair.a.fsm.bfd_up(pair.now))  # back, before the error waits end
        pair.do(pair.b, pair.b.fsm.bfd_up(pair.now))
        pair.run_for(120)
        return pair

    assert run(jitter=True).both(State.ESTABLISHED)
    assert run(jitter=False).both(State.ESTABLISHED)


SCENARIOS: list[Callable[[], None]] = [
    value for name, value in sorted(globals().items()) if name.startswith("scenario_")
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__[len("scenario_") :])
def test_scenario(scenario: Callable[[], None]) -> None:
    scenario()
