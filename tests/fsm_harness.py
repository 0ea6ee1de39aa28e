"""Two sans-I/O FSMs wired together in memory, with a simulated clock: no sockets, no sleeps.

Data flow: ``Pair`` plays the transport for both FSMs. A ``Connect`` from one side becomes a
link whose other end is reported to the other FSM as an incoming connection (or refused when
that side does not listen); ``Send`` bytes are delivered to the other end's ``data_received``
(in the same step, optionally cut into small chunks); ``Close`` tells the other end its
connection failed. ``run_until`` advances the clock from deadline to deadline. Every action
each side emitted is kept in ``log`` for the assertions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from speaker.control_messages import Notification, decode_notification, encode_notification
from speaker.framing import MessageReader
from speaker.session_events import (
    Action,
    Close,
    Connect,
    Send,
    SendNotification,
    SessionSettings,
    State,
)
from speaker.session_fsm import PeerFsm


@dataclass
class Link:
    """One TCP connection between the two sides: each end's connection id."""

    ends: dict[str, int]
    up: bool = True


@dataclass
class Side:
    """One speaker: its FSM and what it did."""

    name: str
    fsm: PeerFsm
    log: list[tuple[float, Action]] = field(default_factory=list)
    listening: bool = True
    connect_fails: bool = False

    def actions(self, kind: type) -> list[Action]:
        """Every action of this type the side emitted, in order."""
        return [a for _, a in self.log if isinstance(a, kind)]

    def notifications_sent(self) -> list[Notification]:
        """The NOTIFICATIONs this side sent."""
        return [a.notification for a in self.actions(SendNotification)]  # type: ignore[attr-defined]


def settings(router_id: int, **overrides: object) -> SessionSettings:
    """Test settings: AS 64512 both sides, short timers unless overridden."""
    values: dict[str, object] = {
        "local_as": 64512,
        "router_id": router_id,
        "peer_as": 64512,
        "hold_time": 9,
        "connect_delay": 1.0,
        "connect_retry": 2.0,
    }
    values.update(overrides)
    return SessionSettings(**values)  # type: ignore[arg-type]


class Pair:
    """Side ``a`` and side ``b`` with a shared simulated clock."""

    def __init__(self, a: SessionSettings, b: SessionSettings, chunk: int = 0) -> None:
        self.now = 0.0
        self.a = Side("a", PeerFsm(a))
        self.b = Side("b", PeerFsm(b))
        self.links: list[Link] = []
        self.chunk = chunk  # deliver bytes in pieces this small (0: whole)
        self.cut = False  # when set, bytes are silently lost (a peer that vanished)
        self.queue: list[Callable[[], None]] = []

    def other(self, side: Side) -> Side:
        """The far side."""
        return self.b if side is self.a else self.a

    def link_of(self, side: Side, conn_id: int) -> Link | None:
        """The link whose end on ``side`` is ``conn_id``."""
        for link in self.links:
            if link.up and link.ends.get(side.name) == conn_id:
                return link
        return None

    def apply(self, side: Side, actions: list[Action]) -> None:
        """Play the transport for ``side``'s actions; what crosses the wire is queued in order
        and delivered by ``pump`` once the current step is done (as TCP would)."""
        for action in actions:
            side.log.append((self.now, action))
            if isinstance(action, Connect):
                self.queue.append(lambda side=side, c=action.conn: self._connect(side, c))
            elif isinstance(action, Send):
                self._send(side, action.conn, action.data)
            elif isinstance(action, SendNotification):
                self._send(side, action.conn, encode_notification(action.notification))
            elif isinstance(action, Close):
                link = self.link_of(side, action.conn)
                if link is not None:
                    link.up = False
                    far = self.other(side)
                    far_id = link.ends[far.name]
                    self.queue.append(
                        lambda far=far, far_id=far_id: self.apply(
                            far, far.fsm.connection_failed(self.now, far_id, "closed by the peer")
                        )
                    )

    def pump(self) -> None:
        """Deliver everything queued, and what that causes, until the wire is quiet."""
        while self.queue:
            self.queue.pop(0)()

    def _send(self, side: Side, conn_id: int, data: bytes) -> None:
        link = self.link_of(side, conn_id)
        if link is None or self.cut:
            return
        far = self.other(side)
        far_id = link.ends[far.name]
        pieces = (
            [data]
            if not self.chunk
            else [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)]
        )
        for piece in pieces:
            self.queue.append(
                lambda far=far, far_id=far_id, piece=piece: self.apply(
                    far, far.fsm.data_received(self.now, far_id, piece)
                )
            )

    def _connect(self, side: Side, conn_id: int) -> None:
        far = self.other(side)
        if side.connect_fails or not far.listening:
            self.apply(side, side.fsm.connection_failed(self.now, conn_id, "refused"))
            return
        far_id = far.fsm.new_connection_id()
        self.links.append(Link({side.name: conn_id, far.name: far_id}))
        self.apply(side, side.fsm.connection_made(self.now, conn_id, inbound=False))
        self.apply(far, far.fsm.connection_made(self.now, far_id, inbound=True))

    def start(self) -> None:
        """ManualStart on both sides."""
        self.apply(self.a, self.a.fsm.start(self.now))
        self.apply(self.b, self.b.fsm.start(self.now))
        self.pump()

    def next_deadline(self) -> float | None:
        """The earlier of the two sides' next timers."""
        deadlines = [d for d in (self.a.fsm.next_deadline(), self.b.fsm.next_deadline()) if d]
        return min(deadlines) if deadlines else None

    def run_until(self, done: Callable[[], bool], limit: float = 3600.0) -> float:
        """Advance the clock timer by timer until ``done()``; returns the time it took."""
        start = self.now
        while not done():
            deadline = self.next_deadline()
            assert deadline is not None, "no timer runs and the condition is not met"
            assert deadline - start <= limit, f"not done within {limit} s of simulated time"
            self.now = max(self.now, deadline)
            self.tick()
        return self.now - start

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, firing every timer on the way."""
        end = self.now + seconds
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                self.now = end
                return
            self.now = max(self.now, deadline)
            self.tick()

    def tick(self) -> None:
        """Fire both sides' due timers and deliver what they cause."""
        for side in (self.a, self.b):
            self.apply(side, side.fsm.timers_expired(self.now))
        self.pump()

    def do(self, side: Side, actions: list[Action]) -> None:
        """Apply actions a test obtained from one side directly, and deliver their effects."""
        self.apply(side, actions)
        self.pump()

    def both(self, state: State) -> bool:
        """Both sides are in ``state``."""
        return self.a.fsm.state == state and self.b.fsm.state == state


def notification_of(data: bytes) -> Notification:
    """Decode one whole NOTIFICATION message."""
    ((message_type, body),) = MessageReader().feed(data)
    assert message_type == 3
    return decode_notification(body)
