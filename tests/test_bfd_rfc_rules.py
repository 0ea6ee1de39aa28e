"""RFC 5880, 5881 and 5882 rules that a review of Myna's BFD found broken: regression tests.

Each test takes its expected value from the RFC text quoted in its docstring, and each failed
against the code as reviewed (main at 0a74807): where a docstring says what "Myna does", it
describes that code, the defect since fixed. The tests drive the sans-I/O session
(``bfd.session_fsm``), the demultiplexer, the engine's translation of session actions, or the
daemon's wiring (``bgpd.bfd_peers``). Sessions run at 100 ms x 3 (the ``fast`` settings of
``bfd_harness``) unless said otherwise; times are simulated seconds.

What the fixes added beyond these rules (the hold limit, the engine's AdminDown on removal
and shutdown) is tested with the code it belongs to: ``test_bfd_hold.py``,
``test_bfd_engine.py``, ``test_bfd_wiring.py``.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from typing import Any

import pytest
from bfd_harness import MS, BfdPair, fast
from bfd_wiring_fakes import NAME
from bfd_wiring_fakes import Engine as RecordingService
from bfd_wiring_fakes import Session as BgpSession
from bfd_wiring_fakes import peer as _peer

from bfd import auth, ipc
from bfd.auth import AuthSettings
from bfd.demux import Binding, Demultiplexer
from bfd.engine import Engine, _Entry
from bfd.packet import ControlPacket, decode
from bfd.service import BfdService
from bfd.session_events import Action, SessionSettings, Transmit
from bfd.session_fsm import BfdSession
from bfd.wire_codes import AuthType, DropReason, HopMode, State
from bgpd.bfd_peers import BfdPeers

SECOND = 1_000_000
US = 1e-6
OURS = 0x0A0A0A0A  # our session's discriminator in the lone-session tests
THEIRS = 0x0B0B0B0B  # the simulated peer's


# -- a lone session and a simulated peer ----------------------------------------------------------


def from_peer(state: State, **fields: Any) -> ControlPacket:
    """A packet the peer sends to our session (it knows our discriminator unless told)."""
    values: dict[str, Any] = {
        "my_discriminator": THEIRS,
        "your_discriminator": OURS,
        "desired_min_tx_us": 10 * MS,
        "required_min_rx_us": 10 * MS,
        "detect_mult": 3,
    }
    values.update(fields)
    return ControlPacket(state, **values)


def sent(actions: list[Action]) -> list[ControlPacket]:
    return [decode(action.data) for action in actions if isinstance(action, Transmit)]


def run(session: BfdSession, until: float) -> list[tuple[float, ControlPacket]]:
    """Fire the session's timers up to ``until``; what it transmitted, with the times."""
    out: list[tuple[float, ControlPacket]] = []
    while (due := session.next_deadline()) is not None and due <= until:
        out += [(due, packet) for packet in sent(session.timers_expired(due))]
    return out


def up_session(settings: SessionSettings | None = None) -> BfdSession:
    """Our session brought Up by a peer at t = 0.01-0.03, its coming-Up Poll answered."""
    session = BfdSession(settings or fast(), OURS, random.Random(7))
    session.start(0.0)
    session.receive(from_peer(State.DOWN, your_discriminator=0), 0.01)
    session.receive(from_peer(State.UP), 0.02)
    session.receive(from_peer(State.UP, final=True), 0.03)
    assert session.state == State.UP and not session.poll_active
    return session


# -- 1. AdminDown is told for one packet only ------------------------------------------------------


def test_admin_down_is_transmitted_for_at_least_a_detection_time() -> None:
    """RFC 5880 6.8.16 and RFC 5882 8: AdminDown must last a Detection Time on the wire.

    RFC 5880 6.8.16: "BFD Control packets SHOULD be transmitted for at least a Detection Time
    after transitioning to AdminDown state in order to ensure that the remote system is aware
    of the state change." RFC 5882 8: "the system on which BFD is being deconfigured SHOULD put
    the session into AdminDown state and maintain this state for a Detection Time".

    Myna sends one AdminDown packet and falls silent: ``_entered_admin_down`` computes how
    long to go on from ``advertised_tx_us`` before ``_advertise`` has raised it to the 1 s of
    a session that is not Up, so it allows 3 x 100 ms, while the next packet is due 0.75-1 s
    later (6.8.3's one second). One lost datagram and the peer sees a path failure. The same
    session code runs when the engine removes a session (RemoveSession, a reload that disables
    BFD or deletes the peer, a path change).
    """
    pair = BfdPair(fast(), fast()).up()
    peer_detection_time = pair.a.session.detection_time_us * US  # A's for B: 3 x 100 ms
    start = pair.now
    pair.apply(pair.b, pair.b.session.admin_down(pair.now))
    pair.run_for(10)
    admin_down = [t for t, p, final in pair.b.sent if t >= start and p.state == State.ADMIN_DOWN]
    assert len(admin_down) >= 2, f"AdminDown packets at {admin_down}"
    assert admin_down[-1] - start >= peer_detection_time


# -- 2. a changed state waits for the next periodic packet ---------------------------------------


def test_fall_to_down_on_detection_timeout_is_sent_at_once() -> None:
    """RFC 5880 6.8.7: a packet whose contents changed goes out between periodic packets.

    "A BFD Control packet SHOULD be transmitted during the interval between periodic Control
    packet transmissions when the contents of that packet would differ from that in the
    previously transmitted packet (other than the Poll and Final bits) in order to more rapidly
    communicate a change in state."

    Myna reschedules to the last packet + 0.75-1 s (the idle interval), so a peer that still
    hears us learns of our Down up to a second late, after its own Detection Time: BIRD
    (``bfd_session_timeout`` -> ``bfd_session_control_tx_timer(s, 1)``) and FRR
    (``ptm_bfd_sess_dn`` -> ``ptm_bfd_snd``) both send the Down at once.
    """
    pair = BfdPair(fast(), fast()).up()
    pair.cut("a")  # A hears nothing (a one-way failure): B still hears A
    pair.run_until(lambda: pair.a.session.state == State.DOWN)
    changed_at = pair.a.changes[-1].at
    pair.run_for(2)
    first_down = min(t for t, p, _ in pair.a.sent if t >= changed_at and p.state == State.DOWN)
    assert first_down - changed_at <= 0.001


def test_fall_to_down_on_the_peers_down_is_sent_at_once() -> None:
    """RFC 5880 6.8.7 (as above): Up -> Down on a received Down is told to the peer at once.

    "A BFD Control packet SHOULD be transmitted during the interval between periodic Control
    packet transmissions when the contents of that packet would differ from that in the
    previously transmitted packet".
    """
    session = up_session()
    run(session, 0.2)
    now = 0.2  # within the Detection Time (3 x 100 ms) of the peer's last packet
    packets = sent(session.receive(from_peer(State.DOWN, diagnostic=1), now))
    assert session.state == State.DOWN
    packets += [p for _, p in run(session, now + 0.001)]
    assert any(p.state == State.DOWN for p in packets)


def test_init_is_sent_at_once_when_the_peer_is_heard() -> None:
    """RFC 5880 6.8.7 (as above): Down -> Init is told at once, not at the next 1 s packet.

    "A BFD Control packet SHOULD be transmitted during the interval between periodic Control
    packet transmissions when the contents of that packet would differ from that in the
    previously transmitted packet (other than the Poll and Final bits) in order to more rapidly
    communicate a change in state." Without it each leg of the three-way handshake waits up
    to one second.
    """
    session = BfdSession(fast(), OURS, random.Random(7))
    session.start(0.0)
    packets = sent(session.receive(from_peer(State.DOWN, your_discriminator=0), 0.1))
    assert session.state == State.INIT
    packets += [p for _, p in run(session, 0.101)]
    assert any(p.state == State.INIT for p in packets)


# -- 3. bfd.RemoteMinRxInterval outlives the peer -------------------------------------------------


def test_remote_min_rx_is_reset_after_a_detection_time_without_packets() -> None:
    """RFC 5880 6.8.18: after a Detection Time of silence RemoteMinRx goes back to 1.

    "If the remote system does not receive any BFD Control packets for a Detection Time, it
    SHOULD reset bfd.RemoteMinRxInterval to its initial value of 1 (per section 6.8.1, since it
    is no longer required to maintain previous session state) and then can transmit at its own
    rate." (6.8.1: "bfd.RemoteMinRxInterval ... MUST be initialized to 1.")

    Myna keeps the last value. A peer that asked for no packets (Required Min RX 0, 6.8.18's
    hold-down) and then went away leaves the session silent for good: against a passive peer
    (RFC 5883 4.3, BIRD's and FRR's ``passive``) neither side ever speaks again.
    """
    session = up_session()
    session.receive(from_peer(State.UP, required_min_rx_us=0), 0.1)
    assert run(session, 0.3) == []  # 6.8.7: no periodic packets while it asks for none
    run(session, 10.0)  # the peer is gone: Detection Time (3 x 100 ms) long past
    assert session.state == State.DOWN
    assert session.remote_min_rx_us == 1
    assert any(p.state == State.DOWN for _, p in run(session, 12.0))


# -- 4. a Final for an older Poll ends a later one ------------------------------------------------


def test_a_final_answering_an_earlier_poll_does_not_end_a_later_one() -> None:
    """RFC 5880 6.8.3: a lower Required Min RX counts only once the peer has confirmed it.

    "If bfd.RequiredMinRxInterval is reduced and bfd.SessionState is Up, the previous value of
    bfd.RequiredMinRxInterval MUST be used when calculating the Detection Time for the remote
    system until the Poll Sequence described above has terminated." And, because a Final does
    not say which Poll it answers: "if multiple changes are made that require the use of a Poll
    Sequence, there are three choices: 1) they MUST be communicated in a single BFD Control
    packet ..., or 2) sufficient time must have transpired since the Poll Sequence was
    completed ... (at least a round trip time since the last Poll was transmitted) prior to
    the initiation of another Poll Sequence, or 3) an additional BFD Control packet with the
    Final (F) bit *clear* MUST be received after the Poll Sequence has completed prior to the
    initiation of another Poll Sequence".

    Here Required Min RX goes 100 -> 500 ms (two Polls carry 500) and then to 50 ms while that
    Poll Sequence runs. The first Final ends it and Myna starts the next Poll Sequence at once;
    the second Final, which answers the second 500 ms Poll, ends that one too although no
    packet carrying 50 ms was ever sent. Myna then expects the peer every 50 ms (Detection
    Time 150 ms) while the peer, told 500 ms, sends every 375-500 ms: a false Down.
    """
    session = up_session()
    run(session, 0.04)
    session.receive(from_peer(State.UP), 0.04)
    session.change_parameters(0.04, fast(required_min_rx_us=500 * MS))
    polls: list[tuple[float, ControlPacket]] = []
    while len(polls) < 2:  # two Polls carrying 500 ms leave before any Final comes back
        polls += [(t, p) for t, p in run(session, session.next_deadline() or 0.0) if p.poll]
    assert all(p.required_min_rx_us == 500 * MS for _, p in polls)
    now = polls[-1][0] + 0.001
    # 6.5: "the Poll Sequence MUST be performed by setting the Poll (P) bit on those scheduled
    # periodic transmissions; additional packets MUST NOT be sent."
    assert sent(session.change_parameters(now, fast(required_min_rx_us=50 * MS))) == []
    assert session.detection_time_us == 1500 * MS  # the reduction waits for its Final
    session.receive(from_peer(State.UP, final=True), now + 0.001)  # answers the first Poll
    session.receive(from_peer(State.UP, final=True), now + 0.002)  # answers the second
    # Nothing carrying 50 ms has been sent: the peer cannot have confirmed it.
    assert run(session, now + 0.002) == []
    assert session.detection_time_us == 1500 * MS


# -- 5. keyed authentication: the same sequence number across a state change ----------------------


@pytest.mark.parametrize("auth_type", [AuthType.KEYED_MD5, AuthType.KEYED_SHA1])
def test_keyed_sequence_number_rises_when_the_state_changes(auth_type: AuthType) -> None:
    """RFC 5880 6.7.3 / 6.7.4: bfd.XmitAuthSeq SHOULD rise on a change of state.

    "For Keyed MD5, bfd.XmitAuthSeq MAY be incremented in a circular fashion ...
    bfd.XmitAuthSeq SHOULD be incremented when the session state changes, or when the
    transmitted BFD Control packet carries different contents than the previously transmitted
    packet." (6.7.4 says the same of Keyed SHA1.) The receiver accepts a number equal to the
    last one, so an old packet with the same number (here: our Down) can be replayed after the
    state moved on. Myna bumps the number once a second only, whatever the packet says.
    """
    keys = AuthSettings.single(auth_type, "s3cret")
    session = BfdSession(fast(auth=keys), OURS, random.Random(7))
    (down,) = sent(session.start(0.0))
    # Not Up, the peer sends every second (6.8.3): our Detection Time for it is 3 s.
    idle = from_peer(State.DOWN, your_discriminator=0, desired_min_tx_us=SECOND)
    peer_down = auth.sign(idle, keys, auth.AuthState(1000), 0.05)
    session.receive(decode(peer_down), 0.1)
    assert session.state == State.INIT
    (init, *_) = [p for _, p in run(session, 1.0) if p.state == State.INIT]

    def sequence(packet: ControlPacket) -> int:
        assert packet.auth is not None
        return int(struct.unpack_from("!I", packet.auth.body, 1)[0])

    assert sequence(init) != sequence(down)


# -- 6. the peer's AdminDown while BGP is held ---------------------------------------------------


class _NoSocket:
    def sendto(self, _data: bytes, _destination: object) -> None:
        pass


def test_peer_admin_down_releases_a_held_bgp_session() -> None:
    """RFC 5882 4.1: the peer's AdminDown MUST let the BGP session be established.

    "If the session state on either the local or remote system (if known) is AdminDown, BFD has
    been administratively disabled, and the establishment of a control protocol adjacency MUST
    be allowed." RFC 5882 8 has a system that deconfigures BFD send AdminDown for a Detection
    Time, so that its neighbour takes no action.

    A path failure holds the BGP session in Idle (BFD_DOWN). The path comes back and the peer
    has disabled BFD meanwhile: it sends AdminDown. Our session is Down, so 6.8.6 leaves it Down
    (no state change), the engine reports nothing (it reports state changes only) and the
    wiring never learns that the remote state is AdminDown: BGP stays held for good. The real
    engine translation (``Engine._apply``) and service dispatch (``BfdService._dispatch``) carry
    the session's actions to the wiring here.
    """
    service = RecordingService()
    wiring = BfdPeers()
    wiring.service = service  # type: ignore[assignment]
    bgp = BgpSession()
    wiring.attach(_peer(source_address="198.18.0.1", bfd=True), bgp)  # type: ignore[arg-type]
    ((_, config),) = service.calls
    daemon = BfdService()
    daemon._listeners[config.key] = service.listeners[config.key]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    engine = Engine(theirs, clock=time.monotonic)
    session = BfdSession(fast(), OURS, random.Random(7))
    entry = _Entry(
        config=config,
        session=session,
        binding=Binding(HopMode.MULTIHOP, NAME, "198.18.0.1"),
        sock=_NoSocket(),  # type: ignore[arg-type]
        port=49152,
        destination=(NAME, HopMode.MULTIHOP.port),
    )

    def carry(actions: list[Action]) -> None:
        engine._apply(entry, actions)
        while True:
            try:
                data = ours.recv(ipc.MAX_MESSAGE)
            except BlockingIOError:
                return
            daemon._dispatch(ipc.decode(data))

    try:
        carry(session.start(0.0))
        carry(session.receive(from_peer(State.DOWN, your_discriminator=0), 0.01))
        carry(session.receive(from_peer(State.UP), 0.02))
        assert bgp.verdicts == ["up: BFD session Up"]
        carry(session.timers_expired(1.0))  # the path fails: Detection Time expired
        assert session.state == State.DOWN and bgp.verdicts[-1] == "down"
        # The path is back; the peer's BFD is administratively disabled now.
        carry(session.receive(from_peer(State.ADMIN_DOWN, your_discriminator=0, diagnostic=7), 5))
        assert session.remote_state == State.ADMIN_DOWN
        assert bgp.verdicts[-1].startswith("up"), bgp.verdicts
        assert not wiring.peers[NAME].failed
    finally:
        engine.selector.close()
        ours.close()
        theirs.close()


# -- 7. a single-hop session in the Passive role --------------------------------------------------


@pytest.mark.asyncio
async def test_a_single_hop_session_takes_the_active_role() -> None:
    """RFC 5881 3: both ends of a single-hop session MUST be Active.

    "In this application, there will be only a single BFD session between two systems over a
    given interface (logical or physical) for a particular protocol. ... As such, both sides of
    a session MUST take the "Active" role (sending initial BFD Control packets with a zero value
    of Your Discriminator)". RFC 5883 (multihop) is where a Passive end is allowed (4.3).

    ``bfd: {passive: true}`` is passed to the engine for a single-hop session as for a
    multihop one; the session then sends nothing until it hears the peer.
    """
    try:
        peer = _peer(source_address="198.18.0.1", bfd={"passive": True, "multihop": False})
    except ValueError:
        return  # refused by the config: that complies too
    service = RecordingService()
    wiring = BfdPeers()
    wiring.service = service  # type: ignore[assignment]
    wiring.attach(peer, BgpSession())  # type: ignore[arg-type]
    for what, config in service.calls:
        if what == "add":
            assert not (config.mode is HopMode.SINGLE_HOP and config.passive), config


# -- 8. demultiplexing by Your Discriminator also demands the same source address ----------------


def test_a_known_your_discriminator_selects_the_session_whatever_the_source() -> None:
    """RFC 5880 6.3 and RFC 5881 6: once discriminators are known, they alone demultiplex.

    RFC 5880 6.3: "Once the remote end echoes back the local discriminator, all further
    received packets are demultiplexed based on the Your Discriminator field only (which means
    that, among other things, the source address field can change or the interface over which
    the packets are received can change, but the packets will still be associated with the
    proper session)." RFC 5881 6: "On a point-to-point link, the source address of a BFD
    Control packet MUST NOT be used to identify the session. This means that the initial BFD
    packet MUST be accepted with any source address, and that subsequent BFD packets MUST be
    demultiplexed solely by the Your Discriminator field (as is always the case)."

    Myna drops such a packet as WRONG_PEER when it comes from another address of the neighbour
    (BIRD's ``bfd_find_session_by_id`` looks at the discriminator only; FRR's
    ``bfd_find_disc`` does compare the source with the session's peer address, against the
    RFC text above). The TTL 255 rule (RFC 5881 5), checked after demultiplexing, already
    keeps off-link senders out.
    """
    table: Demultiplexer[str] = Demultiplexer()
    table.add(1, Binding(HopMode.SINGLE_HOP, "198.18.0.2", ifindex=2), "p2p link to .2")
    packet = ControlPacket(State.UP, 77, 1, 100 * MS, 100 * MS, 3)
    # The neighbour's other address on the same point-to-point link, same interface.
    found = table.lookup(packet, HopMode.SINGLE_HOP, "198.18.0.3", "198.18.0.1", 2)
    assert found == "p2p link to .2", found
    assert found is not DropReason.WRONG_PEER
