"""One connection of a peer's session, and why the session is not up: values the FSM keeps.

``PeerFsm`` (``session_fsm``) holds a ``Connection`` per TCP connection (two during a collision,
RFC 4271 6.8) and one ``SessionError``: the last error, in the classes BIRD shows on its control
socket (``bgpd.bird_control.bird_errors`` renders it) and as Myna's own text (the JSON API and
``myna show peers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from speaker.control_messages import Notification
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated
from speaker.open_message import Open
from speaker.session_events import State

# Before the OPENs are exchanged nothing is negotiated; nothing is decoded with this but OPEN,
# KEEPALIVE, NOTIFICATION and ROUTE-REFRESH, which do not depend on it.
UNNEGOTIATED = Negotiated()


class Connection:
    """One TCP connection of the peer and where its own OPEN exchange stands."""

    __slots__ = (
        "graceful",
        "hold_time",
        "id",
        "inbound",
        "keepalive_time",
        "long_lived",
        "negotiated",
        "reader",
        "received_open",
        "sent_open",
        "state",
    )

    def __init__(self, conn_id: int, inbound: bool, sent_open: Open) -> None:
        self.id = conn_id
        self.inbound = inbound
        self.state = State.OPEN_SENT
        self.reader = MessageReader()
        self.sent_open = sent_open
        self.received_open: Open | None = None
        self.negotiated = UNNEGOTIATED
        self.hold_time = 0
        self.keepalive_time = 0.0
        self.graceful = False
        self.long_lived = False  # RFC 9494 LLGR in both OPENs


class ErrorKind(Enum):
    """Whose doing the error was, in BIRD's error classes (``bgp_err_classes``)."""

    SOCKET = "socket"  # the connection failed or was closed (BIRD: "Socket: ")
    SENT = "sent"  # we sent the NOTIFICATION (BIRD: "BGP Error: ")
    RECEIVED = "received"  # the peer sent it (BIRD: "Received: ")
    BFD = "bfd"  # BFD saw the path fail (BIRD: "Error: BFD session down")
    GRACEFUL = "graceful"  # the peer reconnected while up: it restarted (RFC 4724)
    LIMIT = "limit"  # the import limit ended it (BIRD: "Automatic shutdown: ")
    STOPPED = "stopped"  # the operator or a reload stopped it (BIRD shows none)
    OTHER = "other"  # no NOTIFICATION either way (the hold timer under LLGR)


@dataclass(frozen=True, slots=True)
class SessionError:
    """The last error: its class, Myna's words for it and the NOTIFICATION, if one went."""

    kind: ErrorKind
    text: str
    notification: Notification | None = None
