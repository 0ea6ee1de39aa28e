"""The BFD session state machine driven without sockets: two sessions in memory (``bfd_harness``).

Expected values come from RFC 5880's text, quoted or cited by section at each assertion.
"""

from __future__ import annotations

import itertools
import random

import pytest
from bfd_harness import MS, BfdPair, fast
from hypothesis import given, settings
from hypothesis import strategies as st

from bfd import session_fsm
from bfd.packet import ControlPacket, encode
from bfd.session_events import Event, SessionSettings, StateChanged, Transmit
from bfd.session_fsm import BfdSession
from bfd.wire_codes import Diagnostic, State

SECOND = 1_000_000


def test_transition_table_is_complete() -> None:
    # h11's rule: an event the table does not list is a bug of ours, so every pair is listed.
    missing = [
        (state.name, event.name)
        for state, event in itertools.product(State, Event)
        if (state, event) not in session_fsm._TRANSITIONS
        and not (state == State.ADMIN_DOWN and event.name.startswith("RECEIVED"))
    ]
    assert missing == []


# 6.8.6's state machine, written out from the RFC's pseudo-code (received state -> new state,
# diagnostic), independently of the table in session_fsm.
RFC_6_8_6 = {
    (State.DOWN, State.ADMIN_DOWN): (State.DOWN, None),
    (State.DOWN, State.DOWN): (State.INIT, None),
    (State.DOWN, State.INIT): (State.UP, None),
    (State.DOWN, State.UP): (State.DOWN, None),
    (State.INIT, State.ADMIN_DOWN): (State.DOWN, Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (State.INIT, State.DOWN): (State.INIT, None),
    (State.INIT, State.INIT): (State.UP, None),
    (State.INIT, State.UP): (State.UP, None),
    (State.UP, State.ADMIN_DOWN): (State.DOWN, Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (State.UP, State.DOWN): (State.DOWN, Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (State.UP, State.INIT): (State.UP, None),
    (State.UP, State.UP): (State.UP, None),
}


def session_in(state: State) -> BfdSession:
    """A lone session brought to ``state`` by the packets a peer would send."""
    session = BfdSession(fast(), 1, random.Random(1))
    session.start(0.0)
    peer = {"my_discriminator": 99, "desired_min_tx_us": SECOND, "required_min_rx_us": SECOND}
    if state in (State.INIT, State.UP):
        session.receive(ControlPacket(State.DOWN, your_discriminator=0, detect_mult=3, **peer), 0.1)
    if state == State.UP:
        session.receive(ControlPacket(State.UP, your_discriminator=1, detect_mult=3, **peer), 0.2)
    assert session.state == state
    return session


@pytest.mark.parametrize(("start", "received"), sorted(RFC_6_8_6, key=str))
def test_received_state_moves_the_session_as_6_8_6_says(start: State, received: State) -> None:
    session = session_in(start)
    your = 0 if received in (State.DOWN, State.ADMIN_DOWN) else 1
    packet = ControlPacket(received, 99, your, SECOND, SECOND, 3)
    actions = session.receive(packet, 0.3)
    new, diagnostic = RFC_6_8_6[(start, received)]
    assert session.state == new
    changes = [a for a in actions if isinstance(a, StateChanged)]
    assert len(changes) == (new != start)
    if diagnostic is not None:
        assert session.local_diag == diagnostic


def test_three_way_handshake_brings_both_up_with_slow_packets_until_up() -> None:
    pair = BfdPair(fast(), fast())
    took = pair.run_until(lambda: pair.both(State.UP))
    # 6.8.3: "When bfd.SessionState is not Up, the system MUST set bfd.DesiredMinTxInterval
    # to a value of not less than one second".
    for side in (pair.a, pair.b):
        for _, packet, _ in side.sent:
            if packet.state != State.UP:
                assert packet.desired_min_tx_us >= SECOND
        first = side.sent[0][1]
        assert first.state == State.DOWN and first.your_discriminator == 0  # 6.8.7, 5881 3
        assert first.required_min_echo_rx_us == 0  # no Echo function
        assert not first.demand and not first.multipoint
    # Both sent Down at once, so both go Down -> Init on the other's Down, then Init -> Up on
    # the other's Init (6.8.6).
    assert pair.a.states() == pair.b.states() == [State.INIT, State.UP]
    # Both sent at once; each packet crosses in 1 ms; the third leg waits for a periodic one,
    # 0.75-1 s after the first.
    assert took <= 2 * 1.0 + 0.01


def test_a_late_starter_sees_init_and_goes_straight_up() -> None:
    pair = BfdPair(fast(), fast(), start=False)
    pair.cut("b")  # B has no session yet: what A sends is lost
    pair.apply(pair.a, pair.a.session.start(0.0))
    pair.run_for(3.5)
    assert pair.a.session.state == State.DOWN and pair.a.sent  # nobody answers yet
    pair.heal()
    pair.apply(pair.b, pair.b.session.start(pair.now))
    pair.run_until(lambda: pair.both(State.UP), limit=3)
    # B's Down makes A Init; A's Init makes B Up at once; B's Up makes A Up (6.8.6).
    assert pair.a.states() == [State.INIT, State.UP]
    assert pair.b.states() == [State.UP]


def test_coming_up_polls_for_the_fast_rate_and_then_sends_at_it() -> None:
    pair = BfdPair(fast(), fast()).up()
    for side in (pair.a, pair.b):
        up_at = side.changes[-1].at
        after = [p for t, p in side.periodic() if t >= up_at]
        # 6.8.3: Desired Min TX changed, so a Poll Sequence; 6.5: P on periodic packets.
        assert after[0].poll and after[0].desired_min_tx_us == 100 * MS
        finals = [p for _, p, final in pair.other(side).sent if final]
        assert finals and all(p.final and not p.poll for p in finals)  # 6.5: never P and F
    pair.run_for(5)
    times = [t for t, _ in pair.a.periodic() if t > pair.now - 4]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 6.8.7: the interval is the larger of Desired Min TX and Remote Min RX (both 100 ms),
    # less 0-25 % jitter.
    assert min(gaps) >= 0.075 - 1e-9 and max(gaps) <= 0.100 + 1e-9
    status = pair.a.session.status()
    assert status.tx_interval_us == 100 * MS and status.rx_interval_us == 100 * MS
    # Between two of B's Up packets the wait is one jittered interval (plus nothing: the
    # latency is constant); the handshake's 1 s packets do not count.
    assert 75 * MS <= status.longest_silence_us <= 100 * MS
    assert status.detection_time_us == 300 * MS  # 6.8.4: 3 x max(100 ms, 100 ms)


def test_detection_time_expiry_takes_the_session_down_with_diagnostic_1() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.cut("a")
    last_heard = max(t for t, _, _ in pair.b.sent) + pair.latency
    pair.run_until(lambda: pair.a.session.state == State.DOWN)
    change = pair.a.changes[-1]
    assert change.diagnostic == Diagnostic.CONTROL_DETECTION_TIME_EXPIRED
    # 6.8.4: down exactly one Detection Time (3 x 100 ms) after the last packet arrived.
    assert change.at == pytest.approx(last_heard + 0.3)
    # 6.8.1: bfd.RemoteDiscr is zeroed; what we send says so, Down, slowly (6.8.3). 6.8.7: the
    # changed packet goes out at once, between the periodic ones, so B (which still hears A)
    # falls at once too, told by A (diagnostic 3), not after its own Detection Time.
    (first_down,) = [(t, p) for t, p, _ in pair.a.sent if t == change.at]
    assert first_down[1].state == State.DOWN and first_down[1].your_discriminator == 0
    assert first_down[1].desired_min_tx_us == SECOND
    pair.run_until(lambda: pair.b.session.state != State.UP)
    assert pair.b.session.local_diag == Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN
    assert pair.now == pytest.approx(change.at + pair.latency)
    # The periodic packets go on at 0.75-1 s (6.8.3's 1 s once not Up, with 6.8.7's jitter).
    pair.run_for(3)
    downs = [t for t, p in pair.a.periodic() if t > change.at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(downs)]
    assert gaps and all(0.75 - 1e-9 <= gap <= 1.0 + 1e-9 for gap in gaps)
    pair.heal()
    pair.run_until(lambda: pair.both(State.UP), limit=5)


def test_silence_in_both_directions_takes_both_down_and_healing_brings_them_back() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.cut()
    pair.run_until(lambda: pair.both(State.DOWN), limit=1)
    pair.run_for(10)
    assert pair.both(State.DOWN)  # nothing more happens without packets
    pair.heal()
    pair.run_until(lambda: pair.both(State.UP), limit=5)


def test_admin_down_tells_the_peer_then_falls_silent() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.apply(pair.b, pair.b.session.admin_down(pair.now))
    pair.run_until(lambda: pair.a.session.state == State.DOWN, limit=1)
    # 6.8.6: received AdminDown -> Down with diagnostic 3; B says 7 (6.8.16 "appropriate").
    assert pair.a.session.local_diag == Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN
    assert pair.b.sent[-1][1].state == State.ADMIN_DOWN
    assert pair.b.sent[-1][1].diagnostic == Diagnostic.ADMINISTRATIVELY_DOWN
    pair.run_for(10)
    # AdminDown from B keeps A Down, not Init (6.8.6); B has ceased transmitting (6.8.16).
    assert pair.a.session.state == State.DOWN
    assert pair.b.session.finished
    quiet_since = pair.b.sent[-1][0]
    pair.run_for(10)
    assert pair.b.sent[-1][0] == quiet_since
    pair.apply(pair.b, pair.b.session.admin_up(pair.now))
    pair.run_until(lambda: pair.both(State.UP), limit=5)


def test_packets_received_in_admin_down_are_discarded() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.apply(pair.a, pair.a.session.admin_down(pair.now))
    pair.run_for(5)
    assert pair.a.session.state == State.ADMIN_DOWN  # 6.8.6: "Discard the packet"
    assert not any(p.final for t, p, _ in pair.a.sent if t > 0 and p.state == State.ADMIN_DOWN)


def test_slower_tx_takes_effect_only_after_the_poll_is_answered() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.lose = lambda name, packet: name == "a" and packet.final  # A hears no Final yet
    changed_at = pair.now
    pair.apply(pair.a, pair.a.session.change_parameters(pair.now, fast(desired_min_tx_us=500 * MS)))
    pair.run_for(1)
    polls = [(t, p) for t, p in pair.a.periodic() if t >= changed_at]
    assert all(p.poll and p.desired_min_tx_us == 500 * MS for _, p in polls)
    # 6.8.3: "If bfd.DesiredMinTxInterval is increased and bfd.SessionState is Up, the
    # actual transmission interval used MUST NOT change until the Poll Sequence ... has
    # terminated." B still hears A every 75-100 ms, so B stays Up.
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(polls)]
    assert max(gaps) <= 0.1 + 1e-9
    assert pair.b.session.state == State.UP
    # B's Detection Time for A already uses the advertised 500 ms (6.8.4).
    assert pair.b.session.detection_time_us == 1500 * MS
    pair.lose = lambda _name, _packet: False
    pair.run_until(lambda: not pair.a.session.poll_active, limit=1)
    final_at = pair.now
    pair.run_for(5)
    later = [t for t, _ in pair.a.periodic() if t > final_at]
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert min(gaps) >= 0.375 - 1e-9 and max(gaps) <= 0.5 + 1e-9
    assert not any(p.poll for t, p in pair.a.periodic() if t > final_at)
    assert pair.both(State.UP)


def test_faster_tx_takes_effect_at_once() -> None:
    pair = BfdPair(fast(desired_min_tx_us=500 * MS), fast(required_min_rx_us=50 * MS)).up()
    pair.lose = lambda name, packet: name == "a" and packet.final
    changed_at = pair.now
    pair.apply(pair.a, pair.a.session.change_parameters(pair.now, fast(desired_min_tx_us=50 * MS)))
    pair.run_for(1)
    times = [t for t, _ in pair.a.periodic() if t >= changed_at]
    # 6.8.3 allows a reduction without waiting: the peer's Detection Time only shrinks once
    # it receives the new Desired Min TX, carried by these faster packets.
    assert max(b - a for a, b in itertools.pairwise(times)) <= 0.05 + 1e-9


def test_lower_required_rx_keeps_the_old_detection_time_until_the_final() -> None:
    pair = BfdPair(fast(required_min_rx_us=500 * MS), fast()).up()
    assert pair.a.session.detection_time_us == 1500 * MS
    pair.lose = lambda name, packet: name == "a" and packet.final  # A hears no Final yet
    pair.apply(pair.a, pair.a.session.change_parameters(pair.now, fast()))
    # 6.8.3: "the previous value of bfd.RequiredMinRxInterval MUST be used when calculating
    # the Detection Time ... until the Poll Sequence ... has terminated."
    assert pair.a.session.detection_time_us == 1500 * MS
    assert pair.a.session.advertised_rx_us == 100 * MS
    pair.run_for(1)
    assert pair.a.session.detection_time_us == 1500 * MS
    pair.lose = lambda _name, _packet: False
    pair.run_until(lambda: not pair.a.session.poll_active, limit=2)
    assert pair.a.session.detection_time_us == 300 * MS
    pair.run_for(5)
    assert pair.both(State.UP)


def test_higher_required_rx_lengthens_detection_at_once() -> None:
    pair = BfdPair(fast(), fast()).up()
    pair.lose = lambda name, packet: name == "a" and packet.final
    pair.apply(pair.a, pair.a.session.change_parameters(pair.now, fast(required_min_rx_us=SECOND)))
    assert pair.a.session.detection_time_us == 3 * SECOND


def test_a_peer_that_slows_down_is_followed() -> None:
    # 6.8.7: we send at the larger of our Desired Min TX and the peer's Required Min RX.
    pair = BfdPair(fast(), fast(required_min_rx_us=400 * MS)).up()
    pair.run_for(5)
    times = [t for t, _ in pair.a.periodic() if t > pair.now - 3]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.3 - 1e-9 and max(gaps) <= 0.4 + 1e-9


@given(seed=st.integers(0, 2**32 - 1), mult=st.sampled_from([1, 3]))
@settings(max_examples=30, deadline=None)
def test_jitter_stays_within_6_8_7_bounds(seed: int, mult: int) -> None:
    pair = BfdPair(fast(detect_mult=mult), fast(detect_mult=mult), seed=seed).up()
    start = pair.now
    pair.run_for(3)
    times = [t for t, _ in pair.a.periodic() if t > start]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # "reduced by a random value of 0 to 25%"; with Detect Mult 1 "no more than 90% ... no
    # less than 75%".
    top = 0.090 if mult == 1 else 0.100
    assert all(0.075 - 1e-9 <= gap <= top + 1e-9 for gap in gaps)


def test_jitter_is_spread_over_the_range() -> None:
    pair = BfdPair(fast(), fast()).up()
    start = pair.now
    pair.run_for(60)
    gaps = [b - a for a, b in itertools.pairwise(t for t, _ in pair.a.periodic() if t > start)]
    # Uniform over 75-100 %: the mean near 87.5 % (the RFC's "roughly 12.5% less").
    assert sum(gaps) / len(gaps) == pytest.approx(0.0875, abs=0.002)


def test_remote_required_min_rx_zero_stops_periodic_packets_but_polls_are_answered() -> None:
    session = session_in(State.UP)  # the peer sends every second, Detect Mult 3
    session.timers_expired(0.3)
    peer = ControlPacket(State.UP, 99, 1, SECOND, 0, 3)
    session.receive(peer, 0.3)
    # 6.8.7: MUST NOT periodically transmit (within the Detection Time, 3 s, of that packet).
    assert not any(isinstance(a, Transmit) for a in session.timers_expired(3.2))
    actions = session.receive(ControlPacket(State.UP, 99, 1, SECOND, 0, 3, poll=True), 3.2)
    (final,) = [a for a in actions if isinstance(a, Transmit)]
    assert final.final
    assert not any(isinstance(a, Transmit) for a in session.timers_expired(6.1))
    # 6.8.18: a Detection Time without packets puts bfd.RemoteMinRxInterval back to 1, and
    # the session (Down now) is heard from again.
    assert any(isinstance(a, Transmit) for a in session.timers_expired(6.3))
    assert session.state == State.DOWN and session.remote_min_rx_us == 1


def test_peer_in_demand_mode_stops_our_periodic_packets_while_both_are_up() -> None:
    pair = BfdPair(fast(), fast()).up()
    session = pair.a.session
    demand = ControlPacket(State.UP, 0x0B0B0B0B, 0x0A0A0A0A, 100 * MS, 100 * MS, 3, demand=True)
    pair.apply(pair.a, session.receive(demand, pair.now))
    assert session.remote_demand_active
    # 6.8.7: "MUST NOT periodically transmit ... if Demand mode is active on the remote
    # system ... and a Poll Sequence is not being transmitted."
    sent = len(pair.a.sent)
    pair.apply(pair.a, session.timers_expired(pair.now + 0.29))  # within the Detection Time
    assert len(pair.a.sent) == sent
    pair.now += 0.29
    # A Poll from it is answered at once (6.8.7); a Poll of ours resumes periodic sending.
    polled = ControlPacket(
        State.UP, 0x0B0B0B0B, 0x0A0A0A0A, 100 * MS, 100 * MS, 3, demand=True, poll=True
    )
    actions = session.receive(polled, pair.now)
    assert [a.final for a in actions if isinstance(a, Transmit)] == [True]
    session.change_parameters(pair.now, fast(desired_min_tx_us=200 * MS))
    assert session.next_deadline() is not None
    # We never ask for Demand mode ourselves.
    assert not any(p.demand for _, p, _ in pair.a.sent)


def test_passive_session_waits_for_the_peer() -> None:
    pair = BfdPair(fast(passive=True), fast(), start=False)
    pair.apply(pair.a, pair.a.session.start(0.0))
    pair.run_for(5)
    assert pair.a.sent == []  # 6.8.7: "MUST NOT transmit ... if bfd.RemoteDiscr is zero"
    pair.apply(pair.b, pair.b.session.start(pair.now))
    pair.run_until(lambda: pair.both(State.UP), limit=5)


def test_admin_down_session_from_the_start_sends_nothing() -> None:
    session = BfdSession(fast(), 7, random.Random(1), admin_down=True)
    assert session.start(0.0) == []
    assert session.next_deadline() is None
    assert session.finished


def test_idle_tx_interval_paces_a_session_that_is_not_up() -> None:
    # BIRD's "idle tx interval": bfd.DesiredMinTxInterval while not Up, at least 1 s (6.8.3).
    pair = BfdPair(fast(idle_tx_us=2 * SECOND), fast(), start=False)
    pair.cut("b")  # b hears nothing: a stays Down and keeps sending at its idle rate
    pair.apply(pair.a, pair.a.session.start(pair.now))
    pair.run_for(20)
    sent = pair.a.periodic()
    assert {p.desired_min_tx_us for _, p in sent} == {2 * SECOND}
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    # 6.8.7: each interval is 75-100 % of the negotiated one, here the 2 s we advertise.
    assert all(1.5 - 1e-9 <= gap <= 2.0 + 1e-9 for gap in gaps), gaps
    # Up, the session sends at its Desired Min TX again.
    pair.heal()
    pair.apply(pair.b, pair.b.session.start(pair.now))
    pair.up()
    assert pair.a.periodic()[-1][1].desired_min_tx_us == 100 * MS


def test_settings_refuse_what_the_rfc_does_not_allow() -> None:
    with pytest.raises(ValueError, match="idle_tx_us"):
        SessionSettings(idle_tx_us=SECOND - 1)  # 6.8.3: not less than one second
    with pytest.raises(ValueError, match="detect_mult"):
        SessionSettings(detect_mult=0)
    with pytest.raises(ValueError, match="required_min_rx_us"):
        SessionSettings(required_min_rx_us=0)
    with pytest.raises(ValueError, match="discriminator"):
        BfdSession(fast(), 0, random.Random(1))


def test_encoded_packets_carry_the_rfc_fields() -> None:
    packet = ControlPacket(State.UP, 1, 2, 3, 4, 5, diagnostic=7, poll=True)
    data = encode(packet)
    # 4.1: Vers 1 in the top 3 bits, Diag 7; Sta 3 in the top 2 bits, P = 0x20; Length 24.
    assert data[:4] == bytes([0x20 | 7, 0xC0 | 0x20, 5, 24])
