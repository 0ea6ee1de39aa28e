"""Two sans-I/O BFD sessions wired together in memory, with a simulated clock: no sockets.

Data flow: ``BfdPair`` plays the engine for sessions ``a`` and ``b``. A ``Transmit`` from one
side is decoded (``bfd.packet.decode``, as the engine does) and queued for delivery to the
other side ``latency`` seconds later, unless the path is cut in that direction; ``run_for``
and ``run_until`` advance the clock from event to event (deliveries and the sessions'
deadlines). Every packet sent and every action is recorded per side, with its time, for the
assertions.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from bfd.packet import ControlPacket, MalformedPacketError, decode
from bfd.session_events import Action, RemoteChanged, SessionSettings, StateChanged, Transmit
from bfd.session_fsm import BfdSession
from bfd.wire_codes import State

MS = 1000  # microseconds


def fast(**overrides: object) -> SessionSettings:
    """100 ms x 3, as Calico users ask for; overrides by field name."""
    values: dict[str, object] = {
        "desired_min_tx_us": 100 * MS,
        "required_min_rx_us": 100 * MS,
        "detect_mult": 3,
    }
    values.update(overrides)
    return SessionSettings(**values)  # type: ignore[arg-type]


@dataclass
class Side:
    """One end: its session and what it did."""

    name: str
    session: BfdSession
    sent: list[tuple[float, ControlPacket, bool]] = field(default_factory=list)
    changes: list[StateChanged] = field(default_factory=list)
    remote: list[RemoteChanged] = field(default_factory=list)
    undecodable: list[bytes] = field(default_factory=list)

    def periodic(self) -> list[tuple[float, ControlPacket]]:
        """The periodic packets sent (not the Finals), with their times."""
        return [(t, p) for t, p, final in self.sent if not final]

    def states(self) -> list[State]:
        """Every state the session entered, in order."""
        return [change.new for change in self.changes]


class BfdPair:
    """Sessions ``a`` and ``b`` on a simulated path with a shared clock."""

    def __init__(
        self,
        a: SessionSettings,
        b: SessionSettings,
        *,
        seed: int = 1,
        latency: float = 0.001,
        start: bool = True,
    ) -> None:
        self.now = 0.0
        rng = random.Random(seed)
        self.a = Side("a", BfdSession(a, 0x0A0A0A0A, random.Random(rng.random())))
        self.b = Side("b", BfdSession(b, 0x0B0B0B0B, random.Random(rng.random())))
        self.latency = latency
        self.cut_to: set[str] = set()  # names of the sides that receive nothing now
        # A finer loss: packets towards a side for which this says True are lost.
        self.lose: Callable[[str, ControlPacket], bool] = lambda _name, _packet: False
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = itertools.count()
        if start:
            self.apply(self.a, self.a.session.start(self.now))
            self.apply(self.b, self.b.session.start(self.now))

    def other(self, side: Side) -> Side:
        """The far side."""
        return self.b if side is self.a else self.a

    def cut(self, *names: str) -> None:
        """Lose every packet towards these sides (both when none is named)."""
        self.cut_to = set(names or ("a", "b"))

    def heal(self) -> None:
        """Deliver again in both directions."""
        self.cut_to = set()

    def apply(self, side: Side, actions: list[Action]) -> None:
        """Record ``side``'s actions and put its packets on the wire."""
        for action in actions:
            if isinstance(action, StateChanged):
                side.changes.append(action)
                continue
            if isinstance(action, RemoteChanged):
                side.remote.append(action)
                continue
            assert isinstance(action, Transmit)
            packet = decode(action.data)
            side.sent.append((self.now, packet, action.final))
            far = self.other(side)
            if far.name not in self.cut_to and not self.lose(far.name, packet):
                heapq.heappush(
                    self._queue, (self.now + self.latency, next(self._order), far.name, action.data)
                )

    def inject(self, side: Side, data: bytes) -> list[Action]:
        """Deliver raw octets to ``side`` now, as the engine would (decode, then receive)."""
        try:
            packet = decode(data)
        except MalformedPacketError:
            side.undecodable.append(data)
            return []
        actions = side.session.receive(packet, self.now)
        self.apply(side, actions)
        return actions

    def _next_event(self) -> float | None:
        times = [d for d in (self.a.session.next_deadline(), self.b.session.next_deadline()) if d]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def step(self) -> None:
        """Deliver what is due and fire both sides' due timers at ``now``."""
        while self._queue and self._queue[0][0] <= self.now:
            _, _, name, data = heapq.heappop(self._queue)
            self.inject(self.a if name == "a" else self.b, data)
        for side in (self.a, self.b):
            self.apply(side, side.session.timers_expired(self.now))

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, handling every event on the way."""
        end = self.now + seconds
        while True:
            due = self._next_event()
            if due is None or due > end:
                self.now = end
                return
            self.now = max(self.now, due)
            self.step()

    def run_until(self, done: Callable[[], bool], limit: float = 60.0) -> float:
        """Advance event by event until ``done()``; the simulated time it took."""
        start = self.now
        while not done():
            due = self._next_event()
            assert due is not None, "nothing is scheduled and the condition does not hold"
            assert due - start <= limit, f"not done within {limit} s of simulated time"
            self.now = max(self.now, due)
            self.step()
        return self.now - start

    def both(self, state: State) -> bool:
        """Both sessions are in ``state``."""
        return self.a.session.state == state and self.b.session.state == state

    def up(self) -> BfdPair:
        """Run until both are Up and the Poll sequences of coming Up are over."""
        self.run_until(lambda: self.both(State.UP))
        self.run_until(lambda: not (self.a.session.poll_active or self.b.session.poll_active))
        return self
