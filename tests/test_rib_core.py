"""The sans-I/O RIB core driven without an event loop: time by hand, writes decoded at each peer.

Expected values come from the RFC text cited in each test, or from BIRD's documented behaviour,
and for the update groups from a model of what each member must hold (``GroupMachine``).
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from rib_core_harness import V4, CoreBed, deliver, ip, reflecting
from rib_harness import LOCAL_AS, FakeSession, end_of_rib

from rib.adj_rib_in import split_key
from rib.adj_rib_out import Send
from rib.loc_rib import Run
from rib.rib_core import STALE_PATH_TIME
from rib.rib_events import DeferralDone, NextHopsChanged, Originate, RefreshIn, Started, UpdatesIn
from rib.route import Origin, Stale
from speaker.capabilities import (
    Capability,
    EnhancedRouteRefreshCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.control_messages import RouteRefresh, decode_route_refresh
from speaker.framing import MessageReader
from speaker.nlri import prefix_from_text
from speaker.path_attributes import PathAttributes
from speaker.wire_codes import MessageType, WellKnownCommunity

CLUSTER = "198.19.255.1"


def block(n: int) -> int:
    return prefix_from_text(f"198.19.{n}.0/26")


# -- the update group: what each member holds, whatever the batching -------------------------------

CLIENTS = ("2", "3", "4", "5")
PREFIXES = tuple(block(n) for n in range(4))


class GroupMachine(RuleBasedStateMachine):
    """A route reflector whose clients are all one update group and also the routes' sources.

    The model, after every step: each client holds, for each prefix, the best route among the
    clients' announcements (RFC 4271 9.1: highest LOCAL_PREF, then lowest BGP identifier),
    reflected (RFC 4456 8: ORIGINATOR_ID its source's router id, CLUSTER_LIST our cluster id,
    next hop and LOCAL_PREF kept), except when that best route is its own: then nothing (BIRD
    never sends a route back to the peer it came from). The reflector's own static route (best
    over any BGP route, as BIRD's static preference 200 over BGP's 100) goes to everyone.
    Steps are queued and the core runs only when a step says so, so batches of every mix
    occur.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bed = CoreBed(cluster_id=CLUSTER)
        self.announced: dict[str, dict[int, int]] = {c: {} for c in CLIENTS}  # prefix -> pref
        self.up = set(CLIENTS)
        self.static: set[int] = set()
        self.pending = False

    @initialize()
    def start(self) -> None:
        for name in CLIENTS:
            self.bed.add(name, f"198.18.0.{name}", rr_client=True, export=reflecting(CLUSTER))
            self.bed.up(name)
        self.bed.run()

    @rule(
        client=st.sampled_from(CLIENTS),
        prefixes=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3, unique=True),
        pref=st.sampled_from((100, 200)),
        run=st.booleans(),
    )
    def announce(self, client: str, prefixes: list[int], pref: int, run: bool) -> None:
        if client not in self.up:
            return
        self.bed.announce(client, prefixes, local_pref=pref)
        for prefix in prefixes:
            self.announced[client][prefix] = pref
        self._maybe_run(run)

    @rule(
        client=st.sampled_from(CLIENTS),
        prefixes=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3, unique=True),
        run=st.booleans(),
    )
    def withdraw(self, client: str, prefixes: list[int], run: bool) -> None:
        if client not in self.up:
            return
        self.bed.withdraw(client, prefixes)
        for prefix in prefixes:
            self.announced[client].pop(prefix, None)
        self._maybe_run(run)

    @rule(client=st.sampled_from(CLIENTS), run=st.booleans())
    def session_down(self, client: str, run: bool) -> None:
        if client not in self.up:
            return
        self.bed.down(client)
        self.up.discard(client)
        self.announced[client].clear()
        self._maybe_run(run)

    @rule(client=st.sampled_from(CLIENTS), run=st.booleans())
    def session_up(self, client: str, run: bool) -> None:
        if client in self.up:
            return
        self.bed.up(client)
        self.up.add(client)
        self._maybe_run(run)

    @rule(prefix=st.sampled_from(PREFIXES), on=st.booleans(), run=st.booleans())
    def originate(self, prefix: int, on: bool, run: bool) -> None:
        self.bed.handle(Originate(V4, (prefix,), PathAttributes() if on else None, Origin.STATIC))
        (self.static.add if on else self.static.discard)(prefix)
        self._maybe_run(run)

    @precondition(lambda self: self.pending)
    @rule()
    def run_now(self) -> None:
        self._maybe_run(True)

    def _maybe_run(self, run: bool) -> None:
        self.pending = True
        if run:
            self.bed.run()
            self.pending = False

    def expected(self, member: str) -> dict[int, tuple[int, int | None, bytes, int | None]]:
        """prefix -> (ORIGINATOR_ID or 0, LOCAL_PREF, next hop, cluster list head or None)."""
        out: dict[int, tuple[int, int | None, bytes, int | None]] = {}
        for prefix in PREFIXES:
            if prefix in self.static:
                # Our own route: next hop self, LOCAL_PREF the default, nothing of RFC 4456.
                out[prefix] = (0, 100, ipaddress.IPv4Address("198.18.0.1").packed, None)
                continue
            offers = [
                (-routes[prefix], ip(f"198.18.0.{client}"), client)
                for client, routes in self.announced.items()
                if prefix in routes
            ]
            if not offers:
                continue
            pref, router_id, client = min(offers)
            if client == member:
                continue
            next_hop = ipaddress.IPv4Address(f"198.18.0.{client}").packed
            out[prefix] = (router_id, -pref, next_hop, ip(CLUSTER))
        return out

    @invariant()
    def every_member_holds_what_the_model_says(self) -> None:
        if self.pending:
            return
        for member in self.up:
            held = {
                prefix: (
                    attrs.originator_id or 0,
                    attrs.local_pref,
                    attrs.next_hop,
                    attrs.cluster_list[0] if attrs.cluster_list else None,
                )
                for prefix, attrs in self.bed[member].table().items()
            }
            assert held == self.expected(member), member


GroupMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
test_every_member_holds_what_the_rfc_says_whatever_the_batching = GroupMachine.TestCase


# -- graceful restart: time passed in --------------------------------------------------------------


def gr(forwarding: bool = True, llgr: int = 0, restart: int = 120) -> tuple[Capability, ...]:
    caps: list[Capability] = [
        MultiprotocolCapability(1, 1),
        FourOctetAsCapability(LOCAL_AS),
        GracefulRestartCapability(0, restart, ((1, 1, 0x80 if forwarding else 0),)),
    ]
    if llgr:
        caps.append(LongLivedGracefulRestartCapability(((1, 1, 0x80, llgr),)))
    return tuple(caps)


def gr_bed(caps: tuple[Capability, ...]) -> CoreBed:
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.add("c", "198.18.0.4")
    bed.up("a", asn=64999, ours=caps, theirs=caps)
    bed.up("c")
    bed.announce("a", [block(1)], as_path=((2, (64999,)),))
    bed.run()
    assert set(bed["c"].table()) == {block(1)}
    return bed


def test_stale_routes_are_bounded_after_the_peer_returns_without_end_of_rib() -> None:
    """RFC 4724 4.2: the stale routes wait for the peer's End-of-RIB, but not for ever ("an
    implementation MAY support a (configurable) timer that imposes that upper bound"); FRR's
    stalepath-time, 360 s, is the bound."""
    bed = gr_bed(gr())
    bed.down("a", graceful=True)
    bed.run()
    assert bed.core.loc.lookup(V4, block(1))[0].stale == Stale.STALE  # type: ignore[union-attr]
    bed.up("a", asn=64999, ours=gr(), theirs=gr())
    bed.run()
    bed.advance(STALE_PATH_TIME - 1)
    assert bed.core.loc.lookup(V4, block(1))[0] is not None
    assert set(bed["c"].table()) == {block(1)}  # kept, no flap
    bed.advance(2)
    assert bed.core.loc.lookup(V4, block(1)) == (None, ())
    assert bed["c"].table() == {}


def test_the_restart_time_bounds_stale_routes_of_a_peer_that_does_not_return() -> None:
    """RFC 4724 4.2: "If the session does not get re-established within the "Restart Time" ...
    the Receiving Speaker MUST delete all the stale routes"."""
    bed = gr_bed(gr(restart=30))
    bed.down("a", graceful=True)
    bed.run()
    bed.advance(29)
    assert set(bed["c"].table()) == {block(1)}
    bed.advance(2)
    assert bed["c"].table() == {}


def test_llgr_follows_the_restart_time_then_ends() -> None:
    """RFC 9494 4.2: when the restart time is over the routes become long-lived stale, tagged
    LLGR_STALE, for the long-lived stale time; then they go."""
    bed = gr_bed(gr(restart=30, llgr=300))
    bed.down("a", graceful=True)
    bed.run()
    bed.advance(31)
    best, _ = bed.core.loc.lookup(V4, block(1))
    assert best is not None and best.stale == Stale.LLGR_STALE
    assert int(WellKnownCommunity.LLGR_STALE) in best.attrs.communities
    assert bed["c"].table() == {}  # c did not advertise LLGR: not sent to it (RFC 9494 4.5)
    bed.advance(301)
    assert bed.core.loc.lookup(V4, block(1)) == (None, ())


def test_consecutive_restarts_delete_only_the_routes_still_stale() -> None:
    """RFC 4724 4.2: "To deal with possible consecutive restarts, a route (from the peer)
    previously marked as stale MUST be deleted": the routes the peer announced again since it
    came back stay (stale again); the ones it did not are deleted."""
    bed = gr_bed(gr())
    bed.announce("a", [block(2)], as_path=((2, (64999,)),))
    bed.run()
    bed.down("a", graceful=True)
    bed.run()
    bed.up("a", asn=64999, ours=gr(), theirs=gr())
    bed.run()
    bed.announce("a", [block(1)], as_path=((2, (64999,)),))  # block 2 not (yet) again
    bed.down("a", graceful=True)
    bed.run()
    assert bed.core.loc.lookup(V4, block(1))[0] is not None
    assert bed.core.loc.lookup(V4, block(2)) == (None, ())
    assert set(bed["c"].table()) == {block(1)}


def test_consecutive_restarts_keep_long_lived_stale_routes_for_their_time() -> None:
    """RFC 9494 4.2: "in the case of consecutive restarts, the previously marked stale routes
    MUST NOT be deleted before the timer for the Long-Lived Stale Time expires", and that timer
    is not restarted until the peer has synchronized a new session."""
    caps = gr(restart=30, llgr=3600)
    bed = gr_bed(caps)
    bed.down("a", graceful=True)
    bed.run()
    bed.advance(31)  # restart time over: long-lived stale, for 3,600 s from now
    bed.up("a", asn=64999, ours=caps, theirs=caps)
    bed.run()
    bed.down("a", graceful=True)  # again, before any End-of-RIB
    bed.run()
    best, _ = bed.core.loc.lookup(V4, block(1))
    assert best is not None and best.stale == Stale.LLGR_STALE
    bed.advance(3598)
    assert bed.core.loc.lookup(V4, block(1))[0] is not None
    bed.advance(3)  # 3,600 s after the first long-lived period began
    assert bed.core.loc.lookup(V4, block(1)) == (None, ())


def test_long_lived_stale_routes_go_when_the_peer_returns_without_llgr() -> None:
    """RFC 9494 4.2: once re-established, if "the LLGR and accompanying GR Capability are not
    received", or the family's F bit is clear in the LLGR Capability, its long-lived stale
    routes are removed at once."""
    caps = gr(restart=30, llgr=3600)
    bed = gr_bed(caps)
    bed.down("a", graceful=True)
    bed.run()
    bed.advance(31)
    assert bed.core.loc.lookup(V4, block(1))[0].stale == Stale.LLGR_STALE  # type: ignore[union-attr]
    bed.up("a", asn=64999, ours=caps, theirs=gr(restart=30))  # GR, but no LLGR
    bed.run()
    assert bed.core.loc.lookup(V4, block(1)) == (None, ())


def test_a_restart_timer_due_behind_the_queued_session_up_does_nothing() -> None:
    """The peer is back (its session up was queued before the deadline passed): the restart
    time is no longer running (RFC 4724 4.2), so its routes are neither removed nor made
    long-lived stale."""
    caps = gr(restart=30, llgr=3600)
    bed = gr_bed(caps)
    bed.down("a", graceful=True)
    bed.run()
    bed.now += 29.9
    bed.up("a", asn=64999, ours=caps, theirs=caps)  # queued
    bed.now += 0.2
    bed.core.handle_timer(bed.now)  # the restart deadline passed: queued behind the session up
    bed.run()
    best, _ = bed.core.loc.lookup(V4, block(1))
    assert best is not None and best.stale == Stale.STALE  # waiting for End-of-RIB
    assert set(bed["c"].table()) == {block(1)}


def test_deferral_ends_for_the_daemon_only_after_the_table_is_published() -> None:
    """The daemon deletes the kernel routes nobody selected again when selection deferral ends
    (``DeferralDone``): by then every channel must have the whole table, or routes would be
    deleted and written again (the flap deferral exists to prevent)."""
    published: list[object] = []

    class Fib:
        def publish(self, changes: list[object]) -> None:
            published.extend(changes)

    bed = CoreBed(selection_deferral=120)
    bed.core.add_channel(Fib())
    bed.add("a", "198.18.0.2")
    bed.handle(Started())
    bed.run()
    bed.up("a", ours=gr(), theirs=gr())
    bed.run()
    bed.announce("a", [block(n) for n in range(20)])
    bed.handle(UpdatesIn(bed["a"], (end_of_rib(),)))
    routes_when_done = None
    while bed.core.has_work:
        for action in bed.core.work(bed.now, lambda: True):  # a slice ends at every chance
            if isinstance(action, DeferralDone):
                routes_when_done = sum(
                    len(c.prefixes) if isinstance(c, Run) else 1
                    for c in published  # type: ignore[attr-defined]
                )
    assert routes_when_done == 20


# -- next-hop resolvability (RFC 4271 9.1.2.1) and interior cost (step e) --------------------------


def test_an_unresolvable_best_loses_to_a_resolvable_route_and_resolution_changes_redecide() -> None:
    """RFC 4271 9.1.2.1: a route whose NEXT_HOP is not resolvable is excluded; when resolution
    changes, the prefix is decided, exported and programmed again."""
    reachable = {ipaddress.IPv4Address("198.18.0.3").packed: 0}
    bed = CoreBed(resolve=reachable.get)
    bed.add("a", "198.18.0.2")
    bed.add("b", "198.18.0.3")
    bed.add("c", "198.18.0.4")
    for name, asn in (("a", 64999), ("b", 64998), ("c", LOCAL_AS)):
        bed.up(name, asn=asn)
    # a's route would win on AS path length, but its next hop does not resolve.
    bed.announce("a", [block(7)], as_path=((2, (64999,)),))
    bed.announce("b", [block(7)], as_path=((2, (64998, 1)),))
    bed.run()
    best, _ = bed.core.loc.lookup(V4, block(7))
    assert best is not None and best.source.name == "198.18.0.3"
    assert bed["c"].table()[block(7)].next_hop == ipaddress.IPv4Address("198.18.0.3").packed
    reachable[ipaddress.IPv4Address("198.18.0.2").packed] = 0  # a device route appeared
    bed.handle(NextHopsChanged())
    bed.run()
    assert bed["c"].table()[block(7)].next_hop == ipaddress.IPv4Address("198.18.0.2").packed
    del reachable[ipaddress.IPv4Address("198.18.0.3").packed]
    del reachable[ipaddress.IPv4Address("198.18.0.2").packed]
    bed.handle(NextHopsChanged())
    bed.run()
    assert bed.core.loc.lookup(V4, block(7)) == (None, ())
    assert bed["c"].table() == {}


def test_step_e_prefers_the_lower_interior_cost_from_the_resolver() -> None:
    """RFC 4271 9.1.2.2 e): "Remove from consideration any routes with less-preferred interior
    cost" (BIRD: the IGP metric of the route the next hop resolves through)."""
    costs = {
        ipaddress.IPv4Address("198.18.0.2").packed: 20,
        ipaddress.IPv4Address("198.18.0.3").packed: 10,
    }
    bed = CoreBed(resolve=costs.get)
    bed.add("a", "198.18.0.2")
    bed.add("b", "198.18.0.3")
    for name in ("a", "b"):
        bed.up(name)
    bed.announce("a", [block(7)], local_pref=100)
    bed.announce("b", [block(7)], local_pref=100)
    bed.run()
    best, ecmp = bed.core.loc.lookup(V4, block(7))
    assert best is not None and best.source.name == "198.18.0.3" and len(ecmp) == 1


# -- slow members: bounded output, the latest state when they drain --------------------------------


def test_a_member_that_stops_reading_gets_only_the_latest_state_when_it_drains() -> None:
    """BIRD's buckets, FRR's update groups: while a peer cannot take data nothing more is written
    to it; what it missed is remembered per prefix and sent as it is now once it drains."""
    bed = CoreBed()
    bed.add("e", "198.18.0.9")
    bed.add("slow", "198.18.0.4")
    bed.add("fast", "198.18.0.5")
    bed.up("e", asn=64999)
    bed.up("slow")
    bed.up("fast")
    bed.run()
    slow, fast = bed["slow"], bed["fast"]
    slow.sent.clear()  # its End-of-RIB
    bed.core.set_writable(slow, False)
    for med in range(1, 6):
        bed.announce("e", [block(1), block(2)], as_path=((2, (64999,)),), med=med)
        bed.run()
    bed.announce("e", [block(3)], as_path=((2, (64999,)),))
    bed.run()
    bed.withdraw("e", [block(3)])
    bed.run()
    assert slow.sent == []
    assert {p: a.med for p, a in fast.table().items()} == {block(1): 5, block(2): 5}
    missed = bed.core.peers[slow].missed
    assert {p for keys in missed.values() for p in keys} == {block(1), block(2), block(3)}
    bed.core.set_writable(slow, True)
    bed.run()
    assert {p: a.med for p, a in slow.table().items()} == {block(1): 5, block(2): 5}
    meds = [r.attributes.med for u in slow.updates_received() for r in u.reach]
    assert meds == [5]  # one UPDATE with the latest word, none of the older ones
    assert not bed.core.peers[slow].missed


def test_a_table_cut_short_by_a_full_connection_goes_on_when_it_drains() -> None:
    """RFC 4724 4: "The End-of-RIB marker MUST be sent by a BGP speaker to its peer once it
    completes the initial routing update": a member whose connection fills in the middle of its
    table gets the rest, then End-of-RIB, when it drains (BIRD pauses its feed the same way)."""
    bed = CoreBed()
    bed.add("e", "198.18.0.9")
    bed.up("e", asn=64999)
    # 4,000 /26s over many /18s, so over many shards: the table goes out in many steps.
    first = int(ipaddress.IPv4Address("198.18.0.0"))
    prefixes = [
        prefix_from_text(f"{ipaddress.IPv4Address(first + 64 * n)}/26") for n in range(4000)
    ]
    bed.announce("e", prefixes, as_path=((2, (64999,)),))
    bed.run()
    bed.add("m", "198.18.0.4")
    bed.up("m")
    calls = [0]

    def two_chunks() -> bool:
        calls[0] += 1
        return calls[0] > 2

    for action in bed.core.work(bed.now, two_chunks):
        if isinstance(action, Send):
            deliver(action)
    cut = len(bed["m"].table())
    assert 0 < cut < len(prefixes)
    bed.core.set_writable(bed["m"], False)  # the connection filled up
    bed.run()
    assert len(bed["m"].table()) == cut and bed["m"].end_of_ribs() == []
    bed.core.set_writable(bed["m"], True)
    bed.run()
    assert len(bed["m"].table()) == len(prefixes)
    assert bed["m"].end_of_ribs() == [V4]


# -- route refresh ---------------------------------------------------------------------------------


def refresh_caps() -> tuple[Capability, ...]:
    return (
        MultiprotocolCapability(1, 1),
        FourOctetAsCapability(LOCAL_AS),
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
    )


def messages(session: FakeSession) -> list[tuple[int, bytes]]:
    reader = MessageReader(4096)
    return [(kind, body) for data in session.sent for kind, body in reader.feed(data)]


def test_a_refresh_request_is_answered_between_borr_and_eorr_when_enhanced() -> None:
    """RFC 7313 4: "the BGP speaker MUST send a BoRR message before it starts sending the
    routes ... and an EoRR message after it has sent the routes"."""
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.up("a", ours=refresh_caps(), theirs=refresh_caps())
    bed.handle(Originate(V4, (block(1),), PathAttributes(), Origin.STATIC))
    bed.run()
    bed["a"].sent.clear()
    bed.handle(RefreshIn(bed["a"], RouteRefresh(1, 1)))
    bed.run()
    kinds = [kind for kind, _ in messages(bed["a"])]
    assert kinds == [MessageType.ROUTE_REFRESH, MessageType.UPDATE, MessageType.ROUTE_REFRESH]
    first, last = messages(bed["a"])[0][1], messages(bed["a"])[-1][1]
    assert decode_route_refresh(first).subtype == 1 and decode_route_refresh(last).subtype == 2
    assert set(bed["a"].table()) == {block(1)}


def test_a_plain_refresh_is_answered_with_the_routes_and_no_end_of_rib() -> None:
    """RFC 2918 asks for the Adj-RIB-Out again; End-of-RIB marks the end of the initial update
    only (RFC 4724 2), and neither BIRD nor FRR sends one after a plain refresh."""
    caps = (
        MultiprotocolCapability(1, 1),
        FourOctetAsCapability(LOCAL_AS),
        RouteRefreshCapability(),
    )
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.up("a", ours=caps, theirs=caps)
    bed.handle(Originate(V4, (block(1),), PathAttributes(), Origin.STATIC))
    bed.run()
    bed["a"].sent.clear()
    bed.handle(RefreshIn(bed["a"], RouteRefresh(1, 1)))
    bed.run()
    assert set(bed["a"].table()) == {block(1)} and bed["a"].end_of_ribs() == []


def test_after_an_enhanced_refresh_the_routes_not_announced_again_go_and_the_others_stay() -> None:
    """RFC 7313 4: between the peer's BoRR and EoRR its routes are refreshed; at EoRR those not
    refreshed are removed. The refreshed ones never flap at our other peers."""
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.add("c", "198.18.0.4")
    bed.up("a", asn=64999, ours=refresh_caps(), theirs=refresh_caps())
    bed.up("c")
    bed.announce("a", [block(1), block(2)], as_path=((2, (64999,)),))
    bed.run()
    bed["c"].sent.clear()
    bed.handle(RefreshIn(bed["a"], RouteRefresh(1, 1, 1)))  # BoRR
    bed.announce("a", [block(1)], as_path=((2, (64999,)),))
    bed.handle(RefreshIn(bed["a"], RouteRefresh(1, 1, 2)))  # EoRR
    bed.run()
    assert bed["c"].table() == {}  # nothing announced again: block 1 did not change
    withdrawn = [p for u in bed["c"].updates_received() for g in u.unreach for p in g.prefixes]
    assert withdrawn == [block(2)]
    assert bed.core.loc.lookup(V4, block(1))[0] is not None
    assert bed.core.loc.lookup(V4, block(2)) == (None, ())


def test_the_core_needs_no_event_loop() -> None:
    """The core is plain function calls: no loop is running here."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    bed = CoreBed()
    bed.add("a", "198.18.0.2")
    bed.add("b", "198.18.0.3")
    bed.up("a", asn=64999)
    bed.up("b")
    bed.announce("a", [block(9)], as_path=((2, (64999,)),))
    bed.run()
    assert split_key(next(iter(bed["b"].table()))) == (block(9), 0)
