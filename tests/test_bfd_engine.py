"""The engine's handling of sessions the daemon is done with: AdminDown for a Detection Time.

RFC 5880 6.8.16: "BFD Control packets SHOULD be transmitted for at least a Detection Time
after transitioning to AdminDown state in order to ensure that the remote system is aware of
the state change." RFC 5882 8: "the system on which BFD is being deconfigured SHOULD put the
session into AdminDown state and maintain this state for a Detection Time". The engine
(``bfd.engine``) runs here in this process with a simulated clock: its UDP sockets are
recorders (``sockets.open_sender`` and the receivers replaced), its waits advance the clock,
and packets from the peer enter through ``Engine._datagram`` as the receiving socket would
give them, so nothing binds a port and no test sleeps.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bfd import ipc
from bfd import sockets as bfd_sockets
from bfd.engine import STOP_LINGER, Engine, _Entry
from bfd.packet import ControlPacket, decode, encode
from bfd.sockets import Datagram
from bfd.wire_codes import HopMode, State

PEER = "198.18.0.2"
THEIRS = 0x0B0B0B0B


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Wire:
    """Every packet every session sent, with the time and the socket it left from."""

    clock: Clock
    sent: list[tuple[float, int, ControlPacket]] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)


class RecordingSocket:
    def __init__(self, wire: Wire, port: int) -> None:
        self.wire, self.port = wire, port

    def sendto(self, data: bytes, _destination: object) -> None:
        self.wire.sent.append((self.wire.clock(), self.port, decode(data)))

    def close(self) -> None:
        self.wire.closed.add(self.port)


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Wire, socket.socket]]:
    clock = Clock()
    wire = Wire(clock)
    ports = iter(range(49152, 65536))

    def open_sender(*_args: Any) -> tuple[RecordingSocket, int]:
        port = next(ports)
        return RecordingSocket(wire, port), port

    monkeypatch.setattr(bfd_sockets, "open_sender", open_sender)
    monkeypatch.setattr(Engine, "_receiver", lambda _self, _family, _mode: None)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    engine = Engine(theirs, clock=clock, seed=5)

    def wait(timeout: float | None) -> None:
        assert timeout is not None  # the engine under test always has something due
        clock.now += timeout

    engine._wait = wait  # type: ignore[method-assign]
    yield engine, wire, ours
    ours.close()
    theirs.close()


def config(key: str, local: str = "198.18.0.1") -> ipc.PeerConfig:
    return ipc.PeerConfig(
        key=key,
        peer=PEER,
        local=local,
        mode=HopMode.MULTIHOP,
        desired_min_tx_us=100_000,
        required_min_rx_us=100_000,
        detect_mult=3,
    )


def from_peer(entry: _Entry, state: State, your: int) -> Datagram:
    packet = ControlPacket(state, THEIRS, your, 100_000, 100_000, 3)
    return Datagram(encode(packet), PEER, entry.config.local or "", 0, 64)


def bring_up(engine: Engine, key: str) -> _Entry:
    """The session of ``key`` Up, its coming-Up Poll answered, as the peer would."""
    entry = engine.entries[key]
    ours = entry.session.local_discriminator
    engine._datagram(from_peer(entry, State.DOWN, 0), HopMode.MULTIHOP)
    engine._datagram(from_peer(entry, State.UP, ours), HopMode.MULTIHOP)
    final = ControlPacket(State.UP, THEIRS, ours, 100_000, 100_000, 3, final=True)
    data = Datagram(encode(final), PEER, entry.config.local or "", 0, 64)
    engine._datagram(data, HopMode.MULTIHOP)
    assert entry.session.state == State.UP and not entry.session.poll_active
    return entry


def run_timers(engine: Engine, until: float) -> None:
    clock: Clock = engine.clock  # type: ignore[assignment]
    while engine._heap and engine._heap[0][0] <= until:
        clock.now = max(clock.now, engine._heap[0][0])
        engine._fire_timers()
    clock.now = max(clock.now, until)


def admin_downs(wire: Wire, port: int) -> list[float]:
    return [t for t, p, packet in wire.sent if p == port and packet.state == State.ADMIN_DOWN]


def test_a_removed_session_tells_admin_down_for_a_detection_time(
    rig: tuple[Engine, Wire, socket.socket],
) -> None:
    engine, wire, _ = rig
    engine._handle(ipc.AddSession(config("k")))
    entry = bring_up(engine, "k")
    peer_detection_time = 3 * 0.1  # the peer's for us: our Detect Mult x 100 ms
    removed_at = engine.clock()
    engine._handle(ipc.RemoveSession("k"))
    assert "k" not in engine.entries and not entry.gone  # the daemon's view: gone at once
    run_timers(engine, removed_at + 60)
    told = admin_downs(wire, entry.port)
    # The first at once, then at the interval in force (1 s once not Up, RFC 5880 6.8.3)
    # until a Detection Time at that interval (3 s) is over; then the session goes.
    assert told[0] == removed_at and len(told) >= 3
    assert told[-1] - removed_at >= max(peer_detection_time, 3 * 1.0)
    gaps = [b - a for a, b in itertools.pairwise(told[1:])]
    assert all(0.75 - 1e-9 <= gap <= 1.0 + 1e-9 for gap in gaps)
    assert entry.gone and entry.port in wire.closed and not engine.leaving
    assert engine.demux.free(entry.session.local_discriminator)


def test_stopping_tells_every_peer_admin_down_for_a_while_then_exits(
    rig: tuple[Engine, Wire, socket.socket],
) -> None:
    engine, wire, _ = rig
    engine._handle(ipc.AddSession(config("a")))
    engine._handle(ipc.AddSession(config("b", local="198.18.0.9")))
    entries = [bring_up(engine, "a"), bring_up(engine, "b")]
    stopped_at = engine.clock()
    engine._shutdown()  # what run() does once the daemon has closed the control socket
    for entry in entries:
        told = admin_downs(wire, entry.port)
        assert told[0] == stopped_at and len(told) >= 2
        # Beyond the peer's Detection Time (300 ms), within the engine's stop limit.
        assert 0.3 <= told[-1] - stopped_at <= STOP_LINGER
        assert entry.port in wire.closed
    assert engine.clock() - stopped_at <= STOP_LINGER
    assert not engine.entries and not engine.leaving


def test_a_new_path_lets_the_old_session_finish_and_the_same_path_does_not(
    rig: tuple[Engine, Wire, socket.socket],
) -> None:
    engine, wire, _ = rig
    engine._handle(ipc.AddSession(config("k")))
    old = bring_up(engine, "k")
    # The daemon moves the peer's session to a new local address (key k#1): the old one goes
    # on telling AdminDown on its own path (the peer has a session per address pair, RFC
    # 5883 4) while the new one starts.
    engine._handle(ipc.RemoveSession("k"))
    engine._handle(ipc.AddSession(config("k#1", local="198.18.0.9")))
    new = engine.entries["k#1"]
    assert not old.gone and engine.leaving == {old.session.local_discriminator: old}
    run_timers(engine, engine.clock() + 2.5)
    assert len(admin_downs(wire, old.port)) >= 3 and not old.gone
    # Removed and made again on the same path (the same key even, as the wiring does after
    # a config error): one packet with Your Discriminator 0 could not tell the two apart, so
    # the old one ends at once; it has told AdminDown once already.
    engine._handle(ipc.RemoveSession("k#1"))
    engine._handle(ipc.AddSession(config("k#1", local="198.18.0.9")))
    assert new.gone and new.port in wire.closed and admin_downs(wire, new.port)
    again = engine.entries["k#1"]
    assert again is not new and [p.state for _, port, p in wire.sent if port == again.port] == [
        State.DOWN
    ]
    run_timers(engine, engine.clock() + 10)
    assert old.gone and not engine.leaving
