"""The vocabulary of the session FSM: states, events, timers, settings and the actions it emits.

Data flow: the transport (``speaker/transport.py``) turns socket happenings and the clock into
calls on ``session_fsm.PeerFsm``; the FSM answers with the action values defined here (send
these bytes, open a connection, close one, the session is up or down, UPDATEs arrived), which
the transport carries out and logs. Nothing here does I/O: these are plain frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple

from speaker.capabilities import Capability
from speaker.control_messages import Notification, RouteRefresh
from speaker.negotiated import Negotiated
from speaker.open_message import Open
from speaker.update_message import Update


class State(IntEnum):
    """RFC 4271 section 8.2.2 session states, in the order a session climbs them."""

    IDLE = 1
    CONNECT = 2
    ACTIVE = 3
    OPEN_SENT = 4
    OPEN_CONFIRM = 5
    ESTABLISHED = 6

    @property
    def label(self) -> str:
        """The name BIRD and the RFC print: ``OpenSent``, ``Established``."""
        return "".join(word.title() for word in self.name.split("_"))


class Event(IntEnum):
    """RFC 4271 section 8.1 events (numbered as the RFC numbers them) plus later RFCs'.

    Optional events Myna does not use (DelayOpen, the damped starts, Tcp_CR_Invalid) are left
    out; ROUTE_REFRESH_MSG has no RFC number and takes one above the RFC's range.
    """

    MANUAL_START = 1
    MANUAL_STOP = 2
    AUTOMATIC_START = 3
    MANUAL_START_PASSIVE = 4
    CONNECT_RETRY_TIMER_EXPIRES = 9
    HOLD_TIMER_EXPIRES = 10
    KEEPALIVE_TIMER_EXPIRES = 11
    IDLE_HOLD_TIMER_EXPIRES = 13
    TCP_CR_ACKED = 16  # our outgoing connection is up
    TCP_CONNECTION_CONFIRMED = 17  # the peer's incoming connection is up
    TCP_CONNECTION_FAILS = 18
    BGP_OPEN = 19
    BGP_HEADER_ERR = 21
    BGP_OPEN_MSG_ERR = 22
    OPEN_COLLISION_DUMP = 23
    NOTIF_MSG_VER_ERR = 24
    NOTIF_MSG = 25
    KEEPALIVE_MSG = 26
    UPDATE_MSG = 27
    UPDATE_MSG_ERR = 28
    SEND_HOLD_TIMER_EXPIRES = 29  # RFC 9687
    ROUTE_REFRESH_MSG = 100
    # RFC 5882, from the peer's BFD session: the path failed (Up -> Down for a reason that is
    # not AdminDown, 3.2 and 4.2), or BFD no longer holds the session down (Up again, or BFD
    # stopped advising: disabled, AdminDown, its engine gone; 4.1 lets the session come up).
    BFD_DOWN = 101
    BFD_UP = 102


class Timer(Enum):
    """The FSM's timers; each is a deadline the FSM keeps and the transport waits for."""

    CONNECT_RETRY = "connect retry"
    IDLE_HOLD = "idle hold"  # error wait: back-off after a failed session (peer damping)
    HOLD = "hold"
    KEEPALIVE = "keepalive"
    SEND_HOLD = "send hold"  # RFC 9687


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What one peer's FSM is configured with (validated by the daemon's config before).

    The timer defaults are Calico's BIRD settings: connect delay 2 s, connect retry 5 s, error
    wait 5..30 s, and BIRD's hold 240 s / keepalive 80 s. ``peer_as`` None accepts any AS
    (the OPEN tells it). ``send_hold_time`` None means RFC 9687's max(8 minutes, 2 x hold).
    ``bfd_graceful`` is BIRD's ``bfd graceful`` (False: ``bfd on``): a BFD failure ends a
    session that negotiated graceful restart as a restart (no NOTIFICATION, the routes kept
    stale) instead of as a hard failure (Cease/BFD Down, routes flushed).
    """

    local_as: int
    router_id: int
    peer_as: int | None
    capabilities: tuple[Capability, ...] = ()
    passive: bool = False
    hold_time: int = 240
    keepalive_time: int | None = None  # None: a third of the negotiated hold time
    connect_delay: float = 2.0
    connect_retry: float = 5.0
    error_wait_min: float = 5.0
    error_wait_max: float = 30.0
    error_forget: float = 300.0  # an Established spell this long resets the error wait
    open_hold_time: float = 240.0  # hold timer while waiting for the peer's OPEN (RFC 8.2.2)
    send_hold_time: float | None = None
    bfd_graceful: bool = False


# Actions: what the FSM asks its transport to do. One NamedTuple each: cheap to build, and the
# transport dispatches on the type.


class Connect(NamedTuple):
    """Open an outgoing TCP connection; report it with id ``conn``."""

    conn: int


class Send(NamedTuple):
    """Write these bytes on connection ``conn``."""

    conn: int
    data: bytes


class SendNotification(NamedTuple):
    """Write this NOTIFICATION on ``conn`` (a Close follows); ``reason`` is for the log."""

    conn: int
    notification: Notification
    reason: str


class Close(NamedTuple):
    """Close connection ``conn`` once what was written has been flushed."""

    conn: int


class StateChange(NamedTuple):
    """The session moved from ``old`` to ``new``; ``reason`` says why, for the log."""

    old: State
    new: State
    reason: str


class NotificationReceived(NamedTuple):
    """The peer sent this NOTIFICATION on ``conn`` (logged decoded by the transport)."""

    conn: int
    notification: Notification


class SessionUp(NamedTuple):
    """The session reached Established on ``conn``: the RIB may send on it now."""

    conn: int
    negotiated: Negotiated
    sent_open: Open
    received_open: Open


class SessionDown(NamedTuple):
    """The Established session ended; ``graceful`` when RFC 4724 lets the RIB keep its routes."""

    reason: str
    graceful: bool


class UpdatesReceived(NamedTuple):
    """UPDATEs decoded from one chunk of the byte stream, in order, for the RIB."""

    conn: int
    updates: tuple[Update, ...]


class MalformedMessage(NamedTuple):
    """A malformed message from the peer, whole (header included), for the log.

    RFC 7606 section 8: the NLRI involved and the entire malformed UPDATE are logged.
    ``update`` is the decoded UPDATE when RFC 7606 lets the session survive it (its
    ``problems`` say what was done); None when the message resets the session (a
    ``SendNotification`` follows).
    """

    conn: int
    message: bytes
    update: Update | None


class RouteRefreshReceived(NamedTuple):
    """The peer asked for our routes again (RFC 2918) or marks a refresh (RFC 7313)."""

    conn: int
    refresh: RouteRefresh


Action = (
    Connect
    | Send
    | SendNotification
    | Close
    | StateChange
    | NotificationReceived
    | SessionUp
    | SessionDown
    | UpdatesReceived
    | MalformedMessage
    | RouteRefreshReceived
)
