"""Every RFC error-handling case sent over a real TCP session to a running Myna.

Role: ``test_error_handling_table.py`` checks the codec's answer to each row of
``rfc7606_cases.CASES``; this module checks the daemon's: the same bytes, written by the raw
injector (``fault_injector.RawPeer``) on a live session, must give the exact NOTIFICATION on the
wire, or (treat-as-withdraw, attribute discard) a session that stays Established with the
prefixes withdrawn from, or kept in, Myna's Loc-RIB with the attribute gone. Further cases cover
the RFC 4271 section 6 errors that only a session can see (OPEN semantics 6.2, hold timer 6.5,
FSM errors 6.6 / RFC 6608, NEXT_HOP semantics 6.3) and NOTIFICATIONs whose data would not fit
in a message.

Data flow: one uvloop loop per module (``fault_injector.ModuleLoop``) holds Myna ``M`` (127.0.0.1)
and a witness Myna ``W`` (127.0.0.4) that peers with M over iBGP and each announces one block.
M has two passive peers for the injector: 127.0.0.2 (iBGP, AS 64512) and 127.0.0.3 (eBGP,
AS 64496, the builders' PEER_AS). M's sessions to the injector offer IPv6 unicast, extended
messages and extended next hops on top of what the daemon offers, so that every session a row
names (``rfc7606_builders``: IBGP, EBGP, IBGP_2OCTET, EXT_NEXT_HOP, EXT_MESSAGE) can be
negotiated; the injector's OPEN picks which. Per case: connect, OPEN exchange (or the row's
OPEN), announce known prefixes with Myna's own encoder, send the row's bytes, then either read
the NOTIFICATION and see the connection closed and the routes gone, or send a sentinel route and,
once it is in the Loc-RIB (so the row was processed), compare the Loc-RIB (control API and the
RIB's routes) with the row's outcome. Each case also checks the log (the NOTIFICATION, and the
whole malformed message in hex, RFC 7606 section 8), that no traceback was logged, that W's
session never flapped and both blocks are still exchanged, and closes its session with a Cease
so the next case starts clean.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fault_injector import (
    LOCAL_AS,
    M_ID,
    V4,
    V6,
    LogTap,
    M,
    RawPeer,
    WitnessBed,
    announce,
    in_loc_rib,
    open_bytes,
    route_from,
)
from loopback_daemons import wait_for
from rfc7606_builders import (
    EBGP,
    EXT_MESSAGE,
    EXT_NEXT_HOP,
    IBGP,
    IBGP_2OCTET,
    NH,
    NH6,
    P1,
    P2,
    P6,
    PEER_AS,
    WK,
    Decoded,
    Kept,
    Outcome,
    Reset,
    Withdraw,
    attr,
    check_fields,
    route_refresh,
    upd,
)
from rfc7606_cases import CASES

from speaker.capabilities import (
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    MultiprotocolCapability,
)
from speaker.control_messages import KEEPALIVE_MESSAGE, Notification, encode_notification
from speaker.negotiated import Negotiated
from speaker.nlri import prefix_from_text, prefix_text
from speaker.open_message import Open
from speaker.path_attributes import PathAttributes
from speaker.session_events import State
from speaker.wire_codes import MessageType

IBGP_PEER, EBGP_PEER = "127.0.0.2", "127.0.0.3"
SENTINEL = prefix_from_text("198.18.200.0/24")


@dataclass(frozen=True)
class Kind:
    """How the injector opens a session: from which address, as which AS, offering what."""

    peer: str
    asn: int
    caps: tuple[tuple[str, Any], ...]
    neg: Negotiated  # what the injector encodes its valid UPDATEs with

    def open(self, **extra: Any) -> bytes:
        return open_bytes(self.asn, "198.18.0.1", **{**dict(self.caps), **extra})


KINDS: dict[Negotiated, Kind] = {
    IBGP: Kind(IBGP_PEER, LOCAL_AS, (), Negotiated(asn4=True, ibgp=True)),
    EBGP: Kind(EBGP_PEER, PEER_AS, (("families", (V4,)),), Negotiated(asn4=True, ibgp=False)),
    IBGP_2OCTET: Kind(IBGP_PEER, LOCAL_AS, (("asn4", False),), Negotiated(asn4=False)),
    EXT_NEXT_HOP: Kind(IBGP_PEER, LOCAL_AS, (("extended_next_hop", True),), Negotiated()),
    EXT_MESSAGE: Kind(
        IBGP_PEER,
        LOCAL_AS,
        (("extended_message", True),),
        Negotiated(extended_message=True),
    ),
}


class Bed(WitnessBed):
    """M, W and the log tap, alive for the whole module."""

    def __init__(self) -> None:
        super().__init__(
            [{"address": IBGP_PEER, "as": LOCAL_AS}, {"address": EBGP_PEER, "as": PEER_AS}]
        )

    def before_waiting(self) -> None:
        # Offer what the rows' sessions need (the daemon itself offers IPv4 or IPv6, not both,
        # and neither extended messages nor extended next hops).
        fsm = self.m.session(IBGP_PEER).fsm
        fsm.capabilities = (
            *fsm.capabilities,
            MultiprotocolCapability(2, 1),
            ExtendedMessageCapability(),
            ExtendedNextHopCapability(((1, 1, 2),)),
        )


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    yield from Bed().for_module()


# ---------------------------------------------------------------------------------------------
# One session of the injector


class Session:
    """One injector connection of one case, with the checks every case shares."""

    def __init__(self, bed: Bed, kind: Kind) -> None:
        self.bed, self.kind = bed, kind
        self.peer = RawPeer(kind.peer, M, bed.m.listener.bound_port)
        self.myna = bed.m.session(kind.peer)
        self.announced: dict[Any, set[int]] = {}

    async def connect(self) -> None:
        await wait_for(
            f"M ready to accept {self.kind.peer}",
            lambda: self.myna.state == State.ACTIVE and not self.myna.connections,
        )
        await self.peer.connect()
        await self.peer.next_message((MessageType.OPEN,))

    async def establish(self, open_message: bytes | None = None, known: bool = True) -> None:
        """Connect, exchange OPENs, announce P1, P2 (and P6 if IPv6 is up) when ``known``."""
        await wait_for(
            f"M ready to accept {self.kind.peer}",
            lambda: self.myna.state == State.ACTIVE and not self.myna.connections,
        )
        await self.peer.connect()
        await self.peer.handshake(open_message or self.kind.open())
        await wait_for("Established", lambda: self.myna.state == State.ESTABLISHED)
        if not known:
            return
        conn = self.myna.fsm.established
        assert conn is not None
        self.announced = {V4: {P1, P2}}
        stream = announce(V4, self.attrs4(), [P1, P2], self.kind.neg)
        if V6 in conn.negotiated.families:
            self.announced[V6] = {P6}
            stream += announce(V6, self.attrs6(), [P6], self.kind.neg)
        await self.peer.send(stream)
        await wait_for("the known routes in M's Loc-RIB", self.all_announced_present)

    def attrs4(self) -> PathAttributes:
        ibgp = self.kind.neg.ibgp
        return PathAttributes(
            origin=0,
            as_path=((2, (PEER_AS,)),),
            next_hop=NH,
            local_pref=100 if ibgp else None,
        )

    def attrs6(self) -> PathAttributes:
        return self.attrs4()._replace(next_hop=NH6)

    def present(self, family: Any, prefix: int) -> bool:
        return route_from(self.bed.m, family, prefix, self.kind.peer) is not None

    def all_announced_present(self) -> bool:
        return all(self.present(f, p) for f, ps in self.announced.items() for p in ps)

    def none_left(self) -> bool:
        rib_peer = self.bed.m.rib.view.peer(self.kind.peer)
        assert rib_peer is not None
        return sum(rib_peer.received.values()) == 0 and not any(
            self.present(f, p) for f, ps in self.announced.items() for p in (*ps, SENTINEL)
        )

    async def expect_reset(self, note: Notification) -> None:
        """The exact NOTIFICATION, then the connection closed and every route withdrawn."""
        got = await self.peer.notification()
        assert (got.code, got.subcode, got.data.hex()) == (
            note.code,
            note.subcode,
            note.data.hex(),
        ), f"NOTIFICATION {got.describe()}, expected {note.describe()}"
        await self.peer.closed()
        await wait_for("M's session down", lambda: self.myna.state != State.ESTABLISHED)
        await wait_for("the injector's routes withdrawn", self.none_left)
        assert self.myna.counters.notifications_sent[(note.code, note.subcode)] >= 1

    async def sentinel(self) -> None:
        """A valid route after the case: once it is in, the case's bytes were processed."""
        await self.peer.send(announce(V4, self.attrs4(), [SENTINEL], self.kind.neg))
        await wait_for("the sentinel route", lambda: self.present(V4, SENTINEL))
        assert self.myna.state == State.ESTABLISHED

    async def close(self) -> None:
        """End the session with a Cease and wait until M is ready for the next case."""
        if not self.peer.eof:
            with contextlib.suppress(OSError):
                await self.peer.send(encode_notification(Notification(6, 2)))
        self.peer.close()
        await wait_for(
            "M back to Active with nothing of the injector left",
            lambda: self.myna.state == State.ACTIVE and self.none_left(),
        )


# ---------------------------------------------------------------------------------------------
# The table's rows over the wire


def session_kind(wire: bytes, neg: Negotiated) -> tuple[Kind, bool]:
    """(kind, in OpenSent): OPEN rows are the peer's OPEN, except the extended-message one."""
    if wire[18] == MessageType.OPEN and neg == IBGP:
        return KINDS[EBGP], True
    return KINDS[neg], False


def check_table_log(tap: LogTap, mark: int, wire: bytes, expected: Outcome) -> None:
    lines = tap.since(mark)
    assert not tap.tracebacks(mark), tap.tracebacks(mark)
    if isinstance(expected, Reset):
        note = Notification(expected.code, expected.subcode, expected.data)
        assert any("sending NOTIFICATION" in line and note.describe() in line for line in lines), (
            lines
        )
        if expected.code != 1:  # a header error has no whole message to log
            assert any(wire.hex() in line for line in lines), "malformed message not logged"
        return
    problems = expected.problems if isinstance(expected, Withdraw | Kept) else ()
    logged = [line for line in lines if "malformed UPDATE" in line and wire.hex() in line]
    if problems:
        assert logged, f"malformed UPDATE not logged whole: {lines}"
        for _, attr_type, _ in problems:
            assert any(f"attribute {attr_type}:" in line for line in logged), lines
    elif isinstance(expected, Kept) and not expected.tolerate:
        assert not logged, logged


async def table_case(bed: Bed, wire: bytes, neg: Negotiated, expected: Outcome) -> None:
    kind, open_sent = session_kind(wire, neg)
    session = Session(bed, kind)
    try:
        if open_sent:
            await session.connect()
        else:
            await session.establish()
        mark = bed.tap.mark()
        await session.peer.send(wire)
        if isinstance(expected, Reset):
            await session.expect_reset(Notification(expected.code, expected.subcode, expected.data))
        elif isinstance(expected, Decoded) and expected.kind is Open:
            await session.peer.next_message((MessageType.KEEPALIVE,))
            await session.peer.send(KEEPALIVE_MESSAGE)
            await wait_for("Established", lambda: session.myna.state == State.ESTABLISHED)
            conn = session.myna.fsm.established
            assert conn is not None and conn.received_open is not None
            for name, want in expected.fields:
                assert getattr(conn.received_open, name) == want, name
        else:
            await session.sentinel()
            check_outcome(session, expected)
        check_table_log(bed.tap, mark, wire, expected)
        bed.check_daemons()
    finally:
        await session.close()


def check_outcome(session: Session, expected: Outcome) -> None:
    """The Loc-RIB after a row that keeps the session (the sentinel is in)."""
    m, peer = session.bed.m, session.kind.peer
    if isinstance(expected, Decoded):  # ROUTE-REFRESH: ignored or answered, never an error
        assert session.all_announced_present()
        return
    assert isinstance(expected, Withdraw | Kept)
    gone = {(f, p) for f, ps in expected.unreach for p in ps}
    for family, prefix in gone:
        assert not session.present(family, prefix), f"{prefix_text(prefix, family)} still there"
        assert not in_loc_rib(m, prefix_text(prefix, family), peer)
    # What the row did not touch stays.
    for family, prefixes in session.announced.items():
        for prefix in prefixes:
            if (family, prefix) not in gone:
                assert session.present(family, prefix), prefix_text(prefix, family)
    if isinstance(expected, Withdraw):
        return
    assert isinstance(expected, Kept)
    for family, reached in expected.reach:
        for prefix in reached:
            assert in_loc_rib(m, prefix_text(prefix, family), peer), prefix_text(prefix, family)
            route = route_from(m, family, prefix, peer)
            assert route is not None
            check_fields(route.attrs, expected.fields, expected.absent)
    if expected.end_of_rib is not None:
        assert expected.end_of_rib in m.rib.view.peer(peer).end_of_rib  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("wire", "neg", "expected"), [pytest.param(w, n, e, id=i) for i, w, n, e in CASES]
)
def test_table_row_over_tcp(bed: Bed, wire: bytes, neg: Negotiated, expected: Outcome) -> None:
    bed.loop.run(table_case(bed, wire, neg, expected), timeout=30)


# ---------------------------------------------------------------------------------------------
# RFC 4271 section 6 errors only a session sees, and oversized NOTIFICATION data


def with_version(open_message: bytes, version: int) -> bytes:
    return open_message[:19] + bytes((version,)) + open_message[20:]


def open_with(asn: int, bgp_id: str, hold: int = 90, **caps: Any) -> bytes:
    return open_bytes(asn, bgp_id, hold, **caps)


EBGP_OPENS: list[tuple[str, bytes, Notification]] = [
    (
        "4271-6.2-unsupported-version-3",
        with_version(KINDS[EBGP].open(), 3),
        Notification(2, 1, b"\x00\x04"),
    ),
    (
        "4271-6.2-bad-peer-as",
        open_with(PEER_AS + 1, "198.18.0.1", families=(V4,)),
        Notification(2, 2),
    ),
    (
        "6793-4.1-2-octet-as-not-as-trans",
        open_bytes(PEER_AS, "198.18.0.1", families=(V4,))[:-4] + struct.pack(">I", 65536),
        Notification(2, 2),
    ),
    ("4271-6.2-bgp-identifier-zero", open_with(PEER_AS, "0.0.0.0"), Notification(2, 3)),
    ("4271-6.2-hold-time-1", open_with(PEER_AS, "198.18.0.1", 1), Notification(2, 6)),
    ("4271-6.2-hold-time-2", open_with(PEER_AS, "198.18.0.1", 2), Notification(2, 6)),
    (
        "5492-no-common-family",
        open_with(PEER_AS, "198.18.0.1", families=(V6,)),
        Notification(2, 7, bytes((1, 4, 0, 1, 0, 1))),
    ),
]


@pytest.mark.parametrize(("wire", "note"), [pytest.param(w, n, id=i) for i, w, n in EBGP_OPENS])
def test_open_refused_with_its_notification(bed: Bed, wire: bytes, note: Notification) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[EBGP])
        try:
            await session.connect()
            mark = bed.tap.mark()
            await session.peer.send(wire)
            await session.expect_reset(note)
            lines = bed.tap.since(mark)
            assert any(note.describe() in line for line in lines), lines
            assert not bed.tap.tracebacks(mark)
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


def test_ibgp_peer_with_our_own_identifier_is_refused(bed: Bed) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[IBGP])
        try:
            await session.connect()
            await session.peer.send(open_bytes(LOCAL_AS, M_ID))
            await session.expect_reset(Notification(2, 3))  # RFC 6286 2.2
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


async def _fsm_error(bed: Bed, steps: Callable[[Session], Awaitable[None]], subcode: int) -> None:
    session = Session(bed, KINDS[IBGP])
    try:
        await session.connect()
        await steps(session)
        await session.expect_reset(Notification(5, subcode))
        bed.check_daemons()
    finally:
        await session.close()


def test_fsm_error_update_in_open_sent(bed: Bed) -> None:
    async def steps(session: Session) -> None:
        await session.peer.send(upd())

    bed.loop.run(_fsm_error(bed, steps, 1))


def test_fsm_error_keepalive_in_open_sent(bed: Bed) -> None:
    async def steps(session: Session) -> None:
        await session.peer.send(KEEPALIVE_MESSAGE)

    bed.loop.run(_fsm_error(bed, steps, 1))


def test_fsm_error_update_in_open_confirm(bed: Bed) -> None:
    async def steps(session: Session) -> None:
        await session.peer.send(KINDS[IBGP].open())
        await session.peer.next_message((MessageType.KEEPALIVE,))
        await wait_for("OpenConfirm", lambda: session.myna.state == State.OPEN_CONFIRM)
        await session.peer.send(upd())

    bed.loop.run(_fsm_error(bed, steps, 2))


def test_fsm_error_open_in_established(bed: Bed) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[IBGP])
        try:
            await session.establish()
            await session.peer.send(KINDS[IBGP].open())
            await session.expect_reset(Notification(5, 3))
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


def test_hold_timer_expires_on_a_silent_peer(bed: Bed) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[IBGP])
        try:
            await session.establish(KINDS[IBGP].open(hold_time=3), known=False)
            # Silence: M sends KEEPALIVEs every second; after 3 s of nothing it gives up.
            note = await session.peer.notification(timeout=6)
            assert (note.code, note.subcode) == (4, 0)
            await session.peer.closed()
            await wait_for("M's session down", lambda: session.myna.state != State.ESTABLISHED)
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


def test_next_hop_our_own_address_is_ignored_not_reset(bed: Bed) -> None:
    """RFC 4271 6.3: a NEXT_HOP that is our own address: the route is ignored, no NOTIFICATION."""

    async def case() -> None:
        session = Session(bed, KINDS[IBGP])
        try:
            await session.establish()
            own = prefix_from_text("198.18.3.0/24")
            attrs = session.attrs4()._replace(next_hop=bytes(int(x) for x in M_ID.split(".")))
            await session.peer.send(announce(V4, attrs, [own], session.kind.neg))
            await session.sentinel()
            assert not session.present(V4, own)
            assert session.all_announced_present()
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


# A NOTIFICATION carries at most 4096 - 21 octets of data. RFC 7313 5 makes the data of 7/1 the
# whole ROUTE-REFRESH, and RFC 4271 6.3 makes the data of 3/2 the whole attribute: a long enough
# message cannot be echoed whole. Myna sends the NOTIFICATION with the data cut to fit.
BIG_REFRESH = route_refresh(0, body=b"\x00\x01\x00\x01" + bytes(4096 - 23))
BIG_UNKNOWN_WK = attr(WK | 0x10, 99, bytes(5000))


def test_route_refresh_of_4096_octets_gets_7_1_with_data_cut_to_fit(bed: Bed) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[IBGP])
        try:
            await session.establish()
            mark = bed.tap.mark()
            await session.peer.send(BIG_REFRESH)
            await session.expect_reset(Notification(7, 1, BIG_REFRESH[: 4096 - 21]))
            assert not bed.tap.tracebacks(mark)
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())


def test_unrecognized_well_known_attribute_of_5000_octets_gets_3_2_cut_to_fit(bed: Bed) -> None:
    async def case() -> None:
        session = Session(bed, KINDS[EXT_MESSAGE])
        try:
            await session.establish()
            mark = bed.tap.mark()
            await session.peer.send(upd(extra=BIG_UNKNOWN_WK))
            await session.expect_reset(Notification(3, 2, BIG_UNKNOWN_WK[: 4096 - 21]))
            assert not bed.tap.tracebacks(mark)
            bed.check_daemons()
        finally:
            await session.close()

    bed.loop.run(case())
