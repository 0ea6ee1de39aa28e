"""A reload's new filters applied to running peers (``PoliciesChanged``, ``Refeed``), core only.

BIRD 1.6 applies a changed filter without restarting the session (``nest/proto.c``
``proto_reconfigure``): a new export filter re-feeds the protocol (``proto_request_feeding``:
every route through the new filter, announced if accepted, withdrawn if not), a new import
filter asks the peer for a ROUTE-REFRESH (``bgp_reload_routes``, RFC 2918) and re-imports what
it sends. The model below states what the receiving peer must then hold: exactly what the new
export filter makes of the routes the new import filters let in, whatever the batching, with
the receiver's connection blocked or not, and with no session ended.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from rib_core_harness import V4, CoreBed, reflecting
from rib_harness import FakeSession, capabilities, export_settings

from rib.adj_rib_out import ExportPolicy, ExportSettings, accept_all
from rib.loc_rib import Published, Run
from rib.rib_events import (
    ImportPolicy,
    Originate,
    PoliciesChanged,
    PolicyChange,
    Refeed,
    Started,
    accept_import,
)
from rib.route import Origin, Route
from speaker.control_messages import decode_route_refresh
from speaker.framing import MessageReader
from speaker.messages import decode_message
from speaker.nlri import prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.update_message import Update
from speaker.wire_codes import Family, MessageType

CLUSTER = "198.19.255.1"
SOURCES = {"a": range(6), "b": range(6, 12)}  # each source announces its own blocks


def block(n: int) -> int:
    return prefix_from_text(f"198.19.{n}.0/26")


def number(prefix: int) -> int:
    return (prefix >> 16) & 0xFF  # the third octet (prefixes are value << 8 | length)


def reject_odd(_family: Family, prefix: int, route: Route) -> PathAttributes | None:
    return None if number(prefix) % 2 else route.attrs


def med_77(_family: Family, _prefix: int, route: Route) -> PathAttributes | None:
    return ATTRIBUTES.intern(route.attrs._replace(med=77))


def reject_thirds(_family: Family, prefix: int, route: Route) -> PathAttributes | None:
    return None if number(prefix) % 3 == 0 else route.attrs


EXPORTS: dict[str, ExportPolicy] = {"all": accept_all, "odd out": reject_odd, "med 77": med_77}
IMPORTS: dict[str, ImportPolicy] = {"all": accept_import, "thirds out": reject_thirds}


def refreshes_asked(session: FakeSession, seen: int) -> tuple[int, int]:
    """(ROUTE-REFRESH messages in what ``session`` was sent from write ``seen`` on, writes)."""
    reader = MessageReader(4096)
    count = 0
    for data in session.sent[seen:]:
        for kind, body in reader.feed(data):
            if kind == MessageType.ROUTE_REFRESH:
                assert decode_route_refresh(body).afi == 1
                count += 1
    return count, len(session.sent)


class RefilterMachine(RuleBasedStateMachine):
    """Route reflector; clients a and b announce, client x receives; filters change under them.

    The model after every step that ran the core: x holds, for every block announced by a
    source whose import filter lets it in, what x's export filter makes of it (nothing when it
    rejects it, MED 77 under ``med 77``, else the announced MED), and no session has ended.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bed = CoreBed(cluster_id=CLUSTER)
        self.announced: dict[str, dict[int, int]] = {s: {} for s in SOURCES}  # block -> MED
        self.export = "all"
        self.imports = dict.fromkeys(SOURCES, "all")
        self.seen = dict.fromkeys(SOURCES, 0)
        self.pending = False

    def _export_settings(self, name: str) -> object:
        return replace(reflecting(CLUSTER)(self.bed["x"]), policy=EXPORTS[name])

    @initialize()
    def start(self) -> None:
        for name, address in (("a", "198.18.0.2"), ("b", "198.18.0.3"), ("x", "198.18.0.4")):
            self.bed.add(name, address, rr_client=True, export=reflecting(CLUSTER))
            self.bed.up(name)
        self.bed.run()

    @rule(source=st.sampled_from(sorted(SOURCES)), pick=st.integers(0, 5), med=st.integers(0, 3))
    def announce(self, source: str, pick: int, med: int) -> None:
        n = SOURCES[source][pick]
        self.bed.announce(source, [block(n)], med=med)
        self.announced[source][n] = med
        self.pending = True

    @rule(source=st.sampled_from(sorted(SOURCES)), pick=st.integers(0, 5))
    def withdraw(self, source: str, pick: int) -> None:
        n = SOURCES[source][pick]
        self.bed.withdraw(source, [block(n)])
        self.announced[source].pop(n, None)
        self.pending = True

    @rule(name=st.sampled_from(sorted(EXPORTS)))
    def change_export(self, name: str) -> None:
        x = self.bed["x"]
        change = PolicyChange(x, None, True, False, self._export_settings(name))  # type: ignore[arg-type]
        self.bed.handle(PoliciesChanged((change,)))
        self.export = name
        self.pending = True

    @rule(source=st.sampled_from(sorted(SOURCES)), name=st.sampled_from(sorted(IMPORTS)))
    def change_import(self, source: str, name: str) -> None:
        session = self.bed[source]
        policy = IMPORTS[name]
        change = PolicyChange(session, policy, policy is accept_import, True, None)
        self.bed.handle(PoliciesChanged((change,)))
        self.imports[source] = name
        self.pending = True

    @rule(writable=st.booleans())
    def x_takes_data(self, writable: bool) -> None:
        self.bed.core.set_writable(self.bed["x"], writable)
        self.pending = True

    @rule()
    def run(self) -> None:
        self.bed.core.set_writable(self.bed["x"], True)
        self.bed.run()
        # A source asked for its routes again sends them all, as a BGP speaker answers a
        # ROUTE-REFRESH (RFC 2918 4: the Adj-RIB-Out again).
        for source in SOURCES:
            asked, self.seen[source] = refreshes_asked(self.bed[source], self.seen[source])
            if asked:
                for n, med in self.announced[source].items():
                    self.bed.announce(source, [block(n)], med=med)
        self.bed.run()
        self.pending = False

    @precondition(lambda self: not self.pending)
    @invariant()
    def x_holds_what_the_filters_make(self) -> None:
        expected: dict[int, int | None] = {}
        for source, held in self.announced.items():
            keep = IMPORTS[self.imports[source]]
            for n, med in held.items():
                if keep is reject_thirds and n % 3 == 0:
                    continue
                if self.export == "odd out" and n % 2:
                    continue
                expected[block(n)] = 77 if self.export == "med 77" else med
        table = self.bed["x"].table()
        assert {p: a.med for p, a in table.items()} == expected
        assert all(not self.bed[name].ceased for name in ("a", "b", "x"))


TestRefilter = RefilterMachine.TestCase
TestRefilter.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


class Recorder:
    """A channel that keeps what it is published."""

    def __init__(self) -> None:
        self.batches: list[list[Published]] = []

    def publish(self, changes: object) -> None:
        self.batches.append(list(changes))  # type: ignore[call-overload]


def test_refeed_gives_a_channel_the_whole_table_again() -> None:
    """The FIB's kernel filter changed: it is handed every selected route again."""
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.up("a")
    bed.announce("a", [block(1), block(2)])
    bed.handle(Originate(V4, (block(3),), ATTRIBUTES.intern(PathAttributes()), Origin.STATIC))
    bed.run()
    channel = Recorder()
    bed.core.channels.append(channel)  # subscribed, as the FIB is, without the first table
    bed.handle(Refeed(channel))
    bed.run()
    prefixes: set[int] = set()
    for batch in channel.batches:
        for change in batch:
            prefixes.update(change.prefixes if isinstance(change, Run) else (change.prefix,))
    assert prefixes == {block(1), block(2), block(3)}


# -- cases the model does not reach (from a review as a BIRD implementer) --------------------------

P = prefix_from_text("198.19.1.0/26")
Q = prefix_from_text("198.19.2.0/26")


def paths_held(session: FakeSession) -> dict[tuple[int, int], PathAttributes]:
    """(prefix, path id) -> attributes, as an ADD-PATH receiver applies what it was sent."""
    reader = MessageReader(session.negotiated.max_message_len)
    held: dict[tuple[int, int], PathAttributes] = {}
    for data in session.sent:
        for kind, body in reader.feed(data):
            message = decode_message(kind, body, session.negotiated)
            if not isinstance(message, Update):
                continue
            for gone in message.unreach:
                ids = gone.path_ids or (0,) * len(gone.prefixes)
                for prefix, pid in zip(gone.prefixes, ids, strict=True):
                    held.pop((prefix, pid), None)
            for reach in message.reach:
                ids = reach.path_ids or (0,) * len(reach.prefixes)
                for prefix, pid in zip(reach.prefixes, ids, strict=True):
                    held[(prefix, pid)] = reach.attributes
    return held


def not_from(address: str) -> ExportPolicy:
    packed = bytes(int(o) for o in address.split("."))

    def policy(_family: Family, _prefix: int, route: Route) -> PathAttributes | None:
        return None if route.attrs.next_hop == packed else route.attrs

    return policy


def all_paths(session: object) -> ExportSettings:
    return replace(export_settings(session, None), add_path_all=True)  # type: ignore[arg-type]


def test_add_path_refeed_withdraws_path_ids_the_new_view_lacks() -> None:
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.add("b", "198.18.0.3")
    bed.add("x", "198.18.0.4", export=all_paths)
    bed.up("a", asn=64513)
    bed.up("b", asn=64514)
    bed.up("x", asn=64515, ours=capabilities(add_path=2), theirs=capabilities(add_path=1))
    bed.announce("a", [P, Q], as_path=((2, (64513,)),))
    bed.announce("b", [P], as_path=((2, (64514,)),))
    bed.run()
    x = bed["x"]
    assert len(paths_held(x)) == 3  # P twice, Q once
    new = replace(all_paths(x), policy=not_from("198.18.0.2"))
    bed.handle(PoliciesChanged((PolicyChange(x, None, False, False, new),)))
    bed.run()
    held = paths_held(x)
    assert len(held) == 1 and next(iter(held))[0] == P  # b's path of P only


def deferring_bed() -> CoreBed:
    """We restarted (selection deferral, 60 s): GR peers a (announcing P and Q) and x, up."""
    bed = CoreBed(selection_deferral=60.0)
    bed.add("a", "198.18.0.2")
    bed.add("x", "198.18.0.4")
    gr = capabilities(gr=True)
    bed.handle(Started())
    bed.up("a", asn=64513, ours=gr, theirs=gr)
    bed.up("x", asn=64515, ours=gr, theirs=gr)
    bed.announce("a", [P, Q], as_path=((2, (64513,)),))
    bed.run()
    assert bed.core.loc.deferring
    return bed


def test_refeed_during_selection_deferral_then_table() -> None:
    bed = deferring_bed()
    x = bed["x"]
    new = replace(export_settings(x, None), policy=lambda f, p, r: None if p == P else r.attrs)
    bed.handle(PoliciesChanged((PolicyChange(x, None, False, False, new),)))
    bed.run()
    bed.advance(61)
    assert set(x.table()) == {Q}
    assert x.end_of_ribs() == [V4]


def _order(session: FakeSession) -> list[str]:
    """'U' for an UPDATE with NLRI, 'E' for an End-of-RIB, in the order sent."""
    out = []
    for update in session.updates_received():
        if update.end_of_rib is not None:
            out.append("E")
        elif update.reach:
            out.append("U")
    return out


def test_end_of_rib_after_the_table_for_a_member_blocked_at_deferral_end() -> None:
    """RFC 4724 4.1/4.2: End-of-RIB follows the initial update. Pre-existing, not 4f2b5a1:
    a member not taking data when selection deferral ends gets its End-of-RIB (kept as an
    empty ``TableSend``) before the keys it missed, since ``_on_drained`` finishes the table
    cursor first. A GR helper then sweeps its stale copies of our routes, which come back
    only afterwards."""
    bed = deferring_bed()
    bed.core.set_writable(bed["x"], False)
    bed.advance(61)  # deferral over: the table goes to x's missed set, End-of-RIB waits
    bed.core.set_writable(bed["x"], True)
    bed.run()
    assert set(bed["x"].table()) == {P, Q}
    assert _order(bed["x"])[-1] == "E", _order(bed["x"])


def test_a_route_via_a_member_is_not_sent_to_that_member() -> None:
    """BIRD 1.6 ``bgp_get_bucket``: a route whose NEXT_HOP is the peer's own address is not
    sent to it ("Invalid NEXT_HOP attribute"); here what the member held for the prefix before
    is withdrawn, and the others of the group get the route as usual."""
    bed = CoreBed(cluster_id=CLUSTER)
    for name, address in (("a", "198.18.0.2"), ("x", "198.18.0.4"), ("y", "198.18.0.5")):
        bed.add(name, address, rr_client=True, export=reflecting(CLUSTER))
        bed.up(name)
    bed.announce("a", [block(1)], next_hop="198.18.0.2")
    bed.run()
    assert set(bed["x"].table()) == {block(1)} == set(bed["y"].table())
    bed.announce("a", [block(1)], next_hop="198.18.0.4")  # now via x (reflected: kept)
    bed.run()
    assert bed["x"].table() == {}
    assert bed["y"].table()[block(1)].next_hop == bytes([198, 18, 0, 4])
    bed.up("x")  # a new session: its table leaves the route out too
    bed.run()
    assert bed["x"].table() == {}
    bed.announce("a", [block(1)], next_hop="198.18.0.2")
    bed.run()
    assert bed["x"].table()[block(1)].next_hop == bytes([198, 18, 0, 2])
