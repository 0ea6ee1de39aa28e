"""Driving the RIB task without sockets: fake sessions that record what the RIB writes.

Data flow: a test builds a ``Rib``, adds ``FakeSession`` peers, and calls the sink methods the
real transport would call (``session_up`` with a ``SessionUp`` made by ``up_event``,
``updates``, ``session_down``); ``settle`` lets the RIB task drain its inbox. Each fake session
decodes the bytes the RIB sent it with Myna's codec into ``received`` (announced prefixes with
their attributes, withdrawals, End-of-RIB markers) so tests assert on BGP content, not bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

from rib.adj_rib_out import ExportSettings, NextHopMode
from rib.rib_task import Rib
from speaker.capabilities import (
    AddPathCapability,
    Capability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    MultiprotocolCapability,
)
from speaker.control_messages import Notification
from speaker.framing import MessageReader
from speaker.messages import decode_message, decode_wire
from speaker.negotiated import Negotiated, negotiate
from speaker.open_message import Open
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import SessionDown, SessionUp
from speaker.update_message import Update, encode_announcements, encode_end_of_rib
from speaker.wire_codes import Family

LOCAL_AS = 64512
V4 = Family.IPV4_UNICAST


@dataclass
class Settings:
    """Stand-in for TransportSettings: the RIB reads the peer's address."""

    address: str


@dataclass(eq=False)  # hashable by identity, as the RIB's set of paused sessions needs
class FakeSession:
    """A peer session as the RIB sees it, recording what it is sent."""

    name: str
    local: str = "198.18.0.1"
    sent: list[bytes] = field(default_factory=list)
    resumed: int = 0
    ceased: list[tuple[Notification, str, float | None]] = field(default_factory=list)
    established_conn: int | None = 1  # up_event's connection id

    def __post_init__(self) -> None:
        self.transport_settings = Settings(self.name)
        self.log = logging.LoggerAdapter(logging.getLogger("test.peer"), {"peer": self.name})
        self.negotiated = Negotiated()

    def send(self, data: bytes) -> bool:
        """Record what the RIB writes."""
        if data:
            self.sent.append(data)
        return True

    def cease(self, notification: Notification, reason: str, restart_after: float | None) -> None:
        """Record how the RIB ended the session."""
        self.ceased.append((notification, reason, restart_after))

    @property
    def coming_up(self) -> bool:
        """Never between connection and SessionUp: the tests bring sessions up at once."""
        return False

    def resume_reading(self) -> None:
        """Count resumes (back-pressure)."""
        self.resumed += 1

    def local_address(self) -> str:
        """Our address towards this peer."""
        return self.local

    def updates_received(self) -> list[Update]:
        """Every UPDATE the RIB sent this peer, decoded."""
        reader = MessageReader(self.negotiated.max_message_len)
        out = []
        for data in self.sent:
            for kind, body in reader.feed(data):
                message = decode_message(kind, body, self.negotiated)
                if isinstance(message, Update):
                    out.append(message)
        return out

    def table(self, family: Family = V4) -> dict[int, PathAttributes]:
        """What the peer holds from us after applying every UPDATE in order."""
        held: dict[int, PathAttributes] = {}
        for update in self.updates_received():
            for gone in update.unreach:
                if gone.family == family:
                    for prefix in gone.prefixes:
                        held.pop(prefix, None)
            for reach in update.reach:
                if reach.family == family:
                    for prefix in reach.prefixes:
                        held[prefix] = reach.attributes
        return held

    def end_of_ribs(self) -> list[Family]:
        """The End-of-RIB markers received, in order."""
        return [u.end_of_rib for u in self.updates_received() if u.end_of_rib is not None]


def capabilities(gr: bool = False, restarting: bool = False, add_path: int = 0) -> tuple[
    Capability, ...
]:  # fmt: skip
    """IPv4 unicast, 4-octet AS, optionally GR (with R flag) and ADD-PATH (1 rx, 2 tx, 3)."""
    caps: list[Capability] = [MultiprotocolCapability(1, 1), FourOctetAsCapability(LOCAL_AS)]
    if gr:
        caps.append(GracefulRestartCapability(0x8 if restarting else 0, 120, ((1, 1, 0x80),)))
    if add_path:
        caps.append(AddPathCapability(((1, 1, add_path),)))
    return tuple(caps)


def up_event(
    session: FakeSession,
    router_id: str,
    asn: int = LOCAL_AS,
    ours: tuple[Capability, ...] | None = None,
    theirs: tuple[Capability, ...] | None = None,
    conn: int = 1,
) -> SessionUp:
    """A SessionUp as the FSM builds it, negotiated from both OPENs, on connection ``conn``."""
    sent = Open(LOCAL_AS, 90, int(ipaddress.IPv4Address("198.18.0.1")), ours or capabilities())
    received = Open(asn, 90, int(ipaddress.IPv4Address(router_id)), theirs or capabilities())
    negotiated = negotiate(sent, received, LOCAL_AS, asn)
    session.negotiated = Negotiated(
        asn4=negotiated.asn4,
        ibgp=negotiated.ibgp,
        peer_as=LOCAL_AS,
        families=negotiated.families,
        add_path_receive=negotiated.add_path_send,
        add_path_send=negotiated.add_path_receive,
    )  # how the peer decodes what we send it
    session.established_conn = conn
    return SessionUp(conn, negotiated, sent, received)


def export_settings(session: object, _negotiated: Negotiated) -> ExportSettings:
    """Next hop self is the fake session's local address."""
    local = session.local_address()  # type: ignore[attr-defined]
    return ExportSettings(
        local_as=LOCAL_AS,
        next_hop_v4=ipaddress.IPv4Address(local).packed,
        next_hop_v6=b"",
        next_hop_mode=NextHopMode.AUTO,
    )


def attrs(next_hop: str, **fields: object) -> PathAttributes:
    """An interned attribute set with this next hop."""
    return ATTRIBUTES.intern(
        PathAttributes(next_hop=ipaddress.IPv4Address(next_hop).packed, **fields)  # type: ignore[arg-type]
    )


def announce(
    session: FakeSession, prefixes: list[int], next_hop: str, **fields: object
) -> tuple[Update, ...]:
    """The decoded UPDATEs a peer would send for these prefixes."""
    wire = encode_announcements(
        V4,
        PathAttributes(next_hop=ipaddress.IPv4Address(next_hop).packed, **fields),  # type: ignore[arg-type]
        prefixes,
        Negotiated(),
    )
    return tuple(decode_wire(w, Negotiated()) for w in wire)  # type: ignore[misc]


def end_of_rib() -> Update:
    """An IPv4 End-of-RIB as decoded."""
    update = decode_wire(encode_end_of_rib(V4), Negotiated())
    assert isinstance(update, Update)
    return update


async def settle(rib: Rib) -> None:
    """Let the RIB task work through everything queued (and whatever that queued in turn)."""
    for _ in range(1000):
        await asyncio.sleep(0)
        if not rib.core.has_work and not rib._wake.is_set():
            await asyncio.sleep(0)
            if not rib.core.has_work and not rib._wake.is_set():
                return
    raise AssertionError("the RIB did not settle")


def down(graceful: bool) -> SessionDown:
    """A SessionDown."""
    return SessionDown("test", graceful)
