"""RFC 4271 10's jitter on the session FSM's timers, driven without sockets.

The RFC: "jitter SHOULD be applied to the timers associated with MinASOriginationIntervalTimer,
KeepaliveTimer, MinRouteAdvertisementIntervalTimer, and ConnectRetryTimer ... determined by
multiplying the base value of the appropriate timer by a random factor, which is uniformly
distributed in the range from 0.75 to 1.0. A new random value SHOULD be picked each time the
timer is set." The hold timer is not in that list. Myna has no MinASOrigination or MRAI timer
(BIRD has neither), so these tests take ConnectRetry (which also times BIRD's connect delay),
Keepalive and the hold timers. RFC 4271 4.4 puts a floor under Keepalive: KEEPALIVE
messages "MUST NOT be sent more frequently than one per second". An FSM built without a random
generator keeps exact timers (``test_session_fsm``'s scenarios).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from fsm_harness import settings

from speaker.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.control_messages import KEEPALIVE_MESSAGE
from speaker.open_message import Open, encode_open
from speaker.session_events import Connect, Send, State, Timer
from speaker.session_fsm import PeerFsm

A_ID, B_ID = 0xC6120001, 0xC6120002  # 198.18.0.1 and 198.18.0.2
CAPS = (MultiprotocolCapability(1, 1), FourOctetAsCapability(64512))
LOW, HIGH = 0.75, 1.0  # RFC 4271 10's factor
DRAWS = 400


class ShortestDraw(random.Random):
    """Every draw shortens a timer by the whole quarter the RFC allows (factor 0.75)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _state(fsm: PeerFsm) -> State:
    """Read afresh (mypy would keep the state an earlier assert narrowed it to)."""
    return fsm.state


def _open(hold: int) -> bytes:
    return encode_open(Open(asn=64512, hold_time=hold, bgp_id=B_ID, capabilities=CAPS))


def _open_confirm(hold: int, seed: int) -> tuple[PeerFsm, int]:
    """A jittered passive FSM at time 0 that got the peer's OPEN on connection 1 (OpenConfirm)."""
    fsm = PeerFsm(
        settings(A_ID, capabilities=CAPS, passive=True, hold_time=hold), random.Random(seed)
    )
    fsm.start(0.0)
    conn = fsm.new_connection_id()
    fsm.connection_made(0.0, conn, inbound=True)
    fsm.data_received(0.0, conn, _open(hold))
    return fsm, conn


def _keepalive_sent(actions: Sequence[object]) -> bool:
    return any(isinstance(a, Send) and a.data == KEEPALIVE_MESSAGE for a in actions)


def _factor(fsm: PeerFsm, timer: Timer, now: float, base: float, conn: int = 0) -> float:
    deadline = fsm.timer_deadline(timer, conn)
    assert deadline is not None, f"{timer.name} is not armed"
    return (deadline - now) / base


def _spread(factors: list[float]) -> None:
    """Within the RFC's range, and a new value each time the timer was set."""
    assert all(LOW - 1e-9 <= f <= HIGH + 1e-9 for f in factors), (min(factors), max(factors))
    assert len(set(factors)) == len(factors)
    # Uniform over [0.75, 1]: 400 draws leave no quarter of the range empty (each quarter is
    # missed with probability (3/4)^400); a fixed or one-sided factor fails this.
    quarters = {min(int((f - LOW) / (HIGH - LOW) * 4), 3) for f in factors}
    assert quarters == {0, 1, 2, 3}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_connect_delay_and_connect_retry_are_jittered(seed: int) -> None:
    connect_delay, connect_retry = 5.0, 120.0
    fsm = PeerFsm(
        settings(A_ID, capabilities=CAPS, connect_delay=connect_delay, connect_retry=connect_retry),
        random.Random(seed),
    )
    now = 0.0
    fsm.start(now)
    delays = [_factor(fsm, Timer.CONNECT_RETRY, now, connect_delay)]
    retries = []
    for _ in range(DRAWS):
        now = fsm.next_deadline() or now
        actions = fsm.timers_expired(now)
        assert any(isinstance(a, Connect) for a in actions)  # the SYN went unanswered
        assert _state(fsm) == State.CONNECT
        retries.append(_factor(fsm, Timer.CONNECT_RETRY, now, connect_retry))
    _spread(retries)
    assert LOW <= delays[0] <= HIGH


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_failed_connects_are_retried_after_a_jittered_wait(seed: int) -> None:
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS, connect_retry=120.0), random.Random(seed))
    now = 0.0
    fsm.start(now)
    factors = []
    for _ in range(DRAWS):
        now = fsm.next_deadline() or now
        (connect,) = [a for a in fsm.timers_expired(now) if isinstance(a, Connect)]
        now += 0.001
        fsm.connection_failed(now, connect.conn, "connection refused")
        assert _state(fsm) == State.ACTIVE
        factors.append(_factor(fsm, Timer.CONNECT_RETRY, now, 120.0))
    _spread(factors)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_keepalives_are_jittered(seed: int) -> None:
    hold = 90
    fsm, conn = _open_confirm(hold, seed)
    now = 0.0
    assert _state(fsm) == State.OPEN_CONFIRM
    keepalive = hold / 3  # RFC 4271 4.4: one third of the hold time
    factors = [_factor(fsm, Timer.KEEPALIVE, now, keepalive, conn)]
    fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
    assert _state(fsm) == State.ESTABLISHED
    for _ in range(DRAWS):
        # The peer's KEEPALIVEs keep the session up; ours go out when our timer says.
        now = fsm.timer_deadline(Timer.KEEPALIVE, conn) or now
        fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
        assert _keepalive_sent(fsm.timers_expired(now))
        factors.append(_factor(fsm, Timer.KEEPALIVE, now, keepalive, conn))
    assert _state(fsm) == State.ESTABLISHED
    _spread(factors)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_keepalives_stay_a_second_apart(seed: int) -> None:
    # Hold time 3 (the least the RFC allows besides 0) gives a keepalive time of 1 s, which
    # jitter must not shorten (4.4). Where jitter has room above 1 s it still varies.
    for hold, floor in ((3, 1.0), (4, 1.0)):
        fsm, conn = _open_confirm(hold, seed)
        now = 0.0
        fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
        waits = []
        for _ in range(DRAWS):
            deadline = fsm.timer_deadline(Timer.KEEPALIVE, conn)
            assert deadline is not None
            waits.append(deadline - now)
            now = deadline
            fsm.data_received(now, conn, KEEPALIVE_MESSAGE)
            assert _keepalive_sent(fsm.timers_expired(now))
        assert min(waits) >= floor - 1e-9, (hold, min(waits))
        assert max(waits) <= hold / 3 + 1e-9
        if hold == 4:  # 4/3 s jittered over [1, 4/3]: not stuck at either end
            assert min(waits) < 1.05 and max(waits) > 4 / 3 - 0.05


def test_every_arming_of_connect_retry_and_keepalive_is_jittered() -> None:
    # With every draw at the RFC's shortest (0.75), each place that sets ConnectRetry or
    # Keepalive shows it, and the hold timers (OPEN's, the session's, RFC 9687's send hold)
    # stay as configured.
    fsm = PeerFsm(
        settings(
            A_ID,
            capabilities=CAPS,
            hold_time=90,
            connect_delay=4.0,
            connect_retry=120.0,
            error_wait_min=8.0,
            error_wait_max=8.0,
            open_hold_time=240.0,
            send_hold_time=600.0,
        ),
        ShortestDraw(),
    )

    def deadline(timer: Timer, conn: int = 0) -> float | None:
        return fsm.timer_deadline(timer, conn)

    def connect(now: float) -> int:
        (found,) = [a for a in fsm.timers_expired(now) if isinstance(a, Connect)]
        return found.conn

    fsm.start(0.0)
    assert deadline(Timer.CONNECT_RETRY) == 3.0  # the connect delay, 4 s
    first = connect(3.0)
    assert deadline(Timer.CONNECT_RETRY) == 3.0 + 90.0  # connect retry, 120 s
    fsm.connection_failed(4.0, first, "connection refused")
    assert deadline(Timer.CONNECT_RETRY) == 4.0 + 90.0
    second = connect(94.0)
    fsm.connection_made(95.0, second, inbound=False)
    assert _state(fsm) == State.OPEN_SENT
    assert deadline(Timer.HOLD, second) == 95.0 + 240.0
    fsm.connection_failed(96.0, second, "connection reset")  # 8.2.2: back to Active
    assert _state(fsm) == State.ACTIVE
    assert deadline(Timer.CONNECT_RETRY) == 96.0 + 90.0
    third = connect(186.0)
    fsm.connection_made(187.0, third, inbound=False)
    wrong_as = encode_open(
        Open(
            asn=65000,
            hold_time=90,
            bgp_id=B_ID,
            capabilities=(CAPS[0], FourOctetAsCapability(65000)),
        )
    )
    fsm.data_received(187.0, third, wrong_as)
    assert _state(fsm) == State.IDLE
    assert deadline(Timer.IDLE_HOLD) == 187.0 + 6.0  # the error wait, 8 s
    fsm.timers_expired(193.0)
    assert deadline(Timer.CONNECT_RETRY) == 193.0 + 3.0  # out of it, the connect delay
    fourth = connect(196.0)
    fsm.connection_made(197.0, fourth, inbound=False)
    fsm.data_received(197.0, fourth, _open(90))
    assert _state(fsm) == State.OPEN_CONFIRM
    assert deadline(Timer.KEEPALIVE, fourth) == 197.0 + 22.5  # a third of hold 90
    assert deadline(Timer.HOLD, fourth) == 197.0 + 90.0
    fsm.data_received(198.0, fourth, KEEPALIVE_MESSAGE)
    assert _state(fsm) == State.ESTABLISHED
    assert deadline(Timer.HOLD, fourth) == 198.0 + 90.0
    assert _keepalive_sent(fsm.timers_expired(219.5))
    assert deadline(Timer.KEEPALIVE, fourth) == 219.5 + 22.5
    assert deadline(Timer.HOLD, fourth) == 198.0 + 90.0  # sending does not touch it
    fsm.write_blocked(220.0, fourth, True)
    assert deadline(Timer.SEND_HOLD, fourth) == 220.0 + 600.0


def test_without_a_generator_the_timers_are_exact() -> None:
    fsm = PeerFsm(settings(A_ID, capabilities=CAPS, connect_delay=5.0, connect_retry=120.0))
    fsm.start(0.0)
    assert fsm.timer_deadline(Timer.CONNECT_RETRY) == 5.0
    (connect,) = [a for a in fsm.timers_expired(5.0) if isinstance(a, Connect)]
    assert fsm.timer_deadline(Timer.CONNECT_RETRY) == 125.0
    fsm.connection_failed(6.0, connect.conn, "connection refused")
    assert fsm.timer_deadline(Timer.CONNECT_RETRY) == 126.0
