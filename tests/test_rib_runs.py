"""Runs of prefixes through the RIB (``LocRib.apply_run``, ``UpdateGroup._apply_run``) give the
same tables and the same bytes' worth of routes at the peers as prefix-by-prefix work would.

Data flow: two eBGP peers (a, b) send announcements and withdrawals, several before the RIB
task runs, so that one publication carries changes of one prefix from several UPDATEs; an iBGP
peer c receives. b's import policy reads the prefix (it refuses one), so its routes take the
prefix-by-prefix producer (``Runs.add``) while a's take the whole-UPDATE one (``Runs.extend``
with the Adj-RIB-In stored by the Loc-RIB). A model of RFC 4271 for this set-up says what c
must hold: a's route where a has one (its router id is lower), else b's.
"""

from __future__ import annotations

import ipaddress

import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st
from rib_harness import (
    V4,
    FakeSession,
    announce,
    export_settings,
    settle,
    up_event,
)
from uvloop_runner import on_uvloop

from rib.rib_task import Rib
from rib.route import Route
from rib.shards import SHARDS
from speaker.nlri import prefix_from_text
from speaker.path_attributes import PathAttributes
from speaker.update_message import Unreach, Update
from speaker.wire_codes import Family

PEERS = {"a": ("198.18.0.2", 64999), "b": ("198.18.0.3", 64998)}
PREFIXES = [prefix_from_text(f"198.19.{n}.0/26") for n in range(8)]
REFUSED = PREFIXES[7]  # b's import policy refuses it


def refuse_one(_family: Family, prefix: int, route: Route) -> PathAttributes | None:
    """An import policy that reads the prefix."""
    return None if prefix == REFUSED else route.attrs


class Bed:
    """The RIB with peers a, b (eBGP, announcing) and c (iBGP, receiving)."""

    def __init__(self) -> None:
        self.rib = Rib(64512, int(ipaddress.IPv4Address("198.18.0.1")))
        self.sessions = {name: FakeSession(address) for name, (address, _) in PEERS.items()}
        self.sessions["c"] = FakeSession("198.18.0.4")
        self.rib.add_peer(self.sessions["a"], export_settings)
        self.rib.add_peer(self.sessions["b"], export_settings, refuse_one)
        self.rib.add_peer(self.sessions["c"], export_settings)
        self.rib.start()
        for name, (address, asn) in PEERS.items():
            session = self.sessions[name]
            self.rib.session_up(session, up_event(session, address, asn=asn))
        c = self.sessions["c"]
        self.rib.session_up(c, up_event(c, "198.18.0.4"))

    def send(self, name: str, updates: tuple[Update, ...]) -> None:
        self.rib.updates(self.sessions[name], updates)

    def announce(self, name: str, prefixes: list[int], med: int) -> tuple[Update, ...]:
        address, asn = PEERS[name]
        return announce(self.sessions[name], prefixes, address, as_path=((2, (asn,)),), med=med)


def withdraw(prefixes: list[int]) -> tuple[Update, ...]:
    return (Update(unreach=(Unreach(V4, tuple(prefixes)),)),)


# One step: (peer, announce?, which prefixes, MED, let the RIB run afterwards?, in the same
# read as the step before, when from the same peer?)
Step = tuple[str, bool, list[int], int, bool, bool]
steps = st.lists(
    st.tuples(
        st.sampled_from(sorted(PEERS)),
        st.booleans(),
        st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=8, unique=True),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


async def play(script: list[Step]) -> None:
    bed = Bed()
    await settle(bed.rib)
    held: dict[str, dict[int, int]] = {name: {} for name in PEERS}  # the model: prefix -> MED
    pending: tuple[Update, ...] = ()  # one socket read's UPDATEs, handed over together
    pending_from = ""
    for name, is_announce, prefixes, med, run, join in script:
        if pending and not (join and name == pending_from):
            bed.send(pending_from, pending)
            pending = ()
        pending_from = name
        if is_announce:
            pending += bed.announce(name, prefixes, med)
            for prefix in prefixes:
                if name == "b" and prefix == REFUSED:
                    held[name].pop(prefix, None)
                else:
                    held[name][prefix] = med
        else:
            pending += withdraw(prefixes)
            for prefix in prefixes:
                held[name].pop(prefix, None)
        if run:
            bed.send(name, pending)
            pending = ()
            await settle(bed.rib)
    if pending:
        bed.send(pending_from, pending)
    await settle(bed.rib)
    expected = {}
    for prefix in PREFIXES:
        for name in ("a", "b"):  # a's router id is the lower one: it wins the tie
            if prefix in held[name]:
                expected[prefix] = (PEERS[name][0], held[name][prefix])
                break
    at_c = {
        prefix: (str(ipaddress.IPv4Address(attrs.next_hop)), attrs.med)
        for prefix, attrs in bed.sessions["c"].table().items()
    }
    assert at_c == expected
    for prefix in PREFIXES:
        best, _ = bed.rib.view.lookup(V4, prefix)
        assert (best and (best.source.name, best.attrs.med)) == expected.get(prefix)
    for name in PEERS:
        source = bed.rib.core.peers[bed.sessions[name]].source
        assert source is not None
        kept = {
            prefix: route.attrs.med
            for shard in range(SHARDS)
            for prefix, route in bed.rib.core.loc.source_routes(V4, source, shard)
        }
        assert kept == held[name]
    await bed.rib.close()


@given(steps)
@settings(max_examples=150, deadline=None)
def test_runs_leave_every_table_as_the_model_says(script: list[Step]) -> None:
    uvloop.run(play(script))


@on_uvloop
async def test_a_prefix_announced_and_withdrawn_in_one_batch_is_withdrawn_at_the_peer() -> None:
    # The group once wrote withdrawals before announcements whatever their order.
    await play(
        [("a", True, PREFIXES[:3], 1, False, False), ("a", False, PREFIXES[1:2], 0, True, False)]
    )


@on_uvloop
async def test_a_withdrawal_in_the_same_read_as_its_announcement_wins() -> None:
    # The Loc-RIB stores a whole UPDATE's routes in the Adj-RIB-In as it goes: a withdrawal in
    # the same read must find them there.
    await play(
        [("a", True, PREFIXES[:3], 1, False, False), ("a", False, PREFIXES[1:2], 0, True, True)]
    )


@on_uvloop
async def test_the_last_attribute_set_of_one_batch_wins() -> None:
    # MED 1 is first seen for PREFIXES[0], so its announcements were written first: PREFIXES[1]
    # would have ended at MED 2 although its last word was MED 1.
    await play(
        [
            ("a", True, PREFIXES[:1], 1, False, False),
            ("a", True, PREFIXES[1:2], 2, False, False),
            ("a", True, PREFIXES[1:2], 1, True, False),
        ]
    )
