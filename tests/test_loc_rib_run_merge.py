"""Consecutive runs of one route are published as one run (``rib.loc_rib.append_run``).

A peer's table arrives as one run per UPDATE, and the subscribers pay per run (an export, a
split, a kernel route built), so the Loc-RIB joins a run to the one before it in the batch when
both say "these prefixes went from ``old`` to ``route``". The model-based test below drives a
Loc-RIB with random batches of announcements and withdrawals from two peers, over prefixes that
straddle shard boundaries (so both the one-shard fast path and the prefix-by-prefix path make
runs), and checks after every batch:

* the batch, read prefix by prefix, is the same sequence of selection changes as the batch
  published without merging (the same Loc-RIB code with ``append_run`` replaced by a plain
  append, run beside it on the same input);
* merging is complete: no two neighbouring runs in the batch share (family, source, path id,
  route, old route);
* every run's ``span`` is its lowest and highest prefix, and a merged run's ``pieces`` are
  its parts in order with their own (the policies' splitters rely on both);
* the table holds what RFC 4271's selection says for this set-up: of the routes whose next
  hop resolves (9.1.2.1; one attribute set's does not), a peer's route where only it has
  one, else the route of the peer with the lower router id (9.1.2.2 f).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from rib_harness import V4, attrs

import rib.loc_rib as loc_rib_module
from rib.loc_rib import Change, Entry, LocRib, Published, Run, append_run
from rib.next_hops import NextHops
from rib.route import Route, RouteTable, Source
from rib.run_split import RunPrefixes, run_bounds
from speaker.wire_codes import Family

PEER_A = Source("198.18.0.2", address=1, router_id=1, asn=64512)  # lower router id: preferred
PEER_B = Source("198.18.0.3", address=2, router_id=2, asn=64512)
ROUTES = RouteTable()
V6 = Family.IPV6_UNICAST
# they differ only where the decision process does not look, so the router id decides; the
# last one's next hop does not resolve (RFC 4271 9.1.2.1: not eligible, nothing selected)
ATTRS = [
    attrs("198.18.0.2"),
    attrs("198.18.0.2", communities=(4259840001,)),
    attrs("198.18.0.3"),
    attrs("198.18.9.9"),
]
UNREACHABLE = ATTRS[3].next_hop


def resolve(next_hop: bytes) -> int | None:
    return None if next_hop == UNREACHABLE else 0


# /32s either side of the /18 boundary at 198.18.64.0 (a shard edge: rib.shards) and further
POOL = [
    int(ipaddress.IPv4Address(text)) << 8 | 32
    for base in ("198.18.63.250", "198.18.64.0", "198.19.7.0")
    for text in (str(ipaddress.IPv4Address(base) + i) for i in range(6))
]

# (peer, attribute set or None for a withdrawal, prefixes in UPDATE order)
Step = tuple[int, int | None, list[int]]
steps = st.tuples(
    st.integers(0, 1),
    st.one_of(st.none(), st.integers(0, len(ATTRS) - 1)),
    st.lists(st.sampled_from(POOL), min_size=1, max_size=12),
)


def route_of(peer: int, attrs_index: int | None) -> Route | None:
    if attrs_index is None:
        return None
    return ROUTES.intern((PEER_A, PEER_B)[peer], ATTRS[attrs_index])


def per_prefix(batch: Sequence[Published]) -> list[tuple[object, ...]]:
    """A batch as one selection change per prefix, in order."""
    flat: list[tuple[object, ...]] = []
    for item in batch:
        if isinstance(item, Run):
            flat.extend((prefix, item.old, item.route) for prefix in item.prefixes)
        else:
            assert isinstance(item, Change)
            flat.append((item.prefix, item.old_best, item.new_best, tuple(item.new_all)))
    return flat


def unmerged(out: list[Published], run: Run) -> None:
    out.append(run)


def expected_best(held: dict[int, dict[int, Route]], prefix: int) -> Route | None:
    eligible = [
        route
        for peer, route in sorted(held.get(prefix, {}).items())  # peer a first: lower router id
        if route.attrs.next_hop != UNREACHABLE
    ]
    return eligible[0] if eligible else None


def new_loc_rib() -> LocRib:
    rib = LocRib(next_hops=NextHops(resolve))
    for each in ATTRS:
        rib.next_hops.note(each.next_hop)  # as the core does when a route first carries it
    return rib


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(steps, min_size=1, max_size=6), min_size=1, max_size=6))
def test_merged_runs_publish_what_the_runs_did(batches: list[list[Step]]) -> None:
    merged, plain = new_loc_rib(), new_loc_rib()
    held: dict[int, dict[int, Route]] = {}  # the model: prefix -> peer -> its route
    for batch in batches:
        out: list[Published] = []
        out_plain: list[Published] = []
        for peer, attrs_index, prefixes in batch:
            route = route_of(peer, attrs_index)
            source = (PEER_A, PEER_B)[peer]
            merged.apply_run(V4, source, 0, route, prefixes, out=out)
            loc_rib_module.append_run = unmerged
            try:
                plain.apply_run(V4, source, 0, route, prefixes, out=out_plain)
            finally:
                loc_rib_module.append_run = append_run
            for prefix in prefixes:
                if route is None:
                    held.get(prefix, {}).pop(peer, None)
                else:
                    held.setdefault(prefix, {})[peer] = route
        assert per_prefix(out) == per_prefix(out_plain)
        for before, after in pairwise(out):
            if isinstance(before, Run) and isinstance(after, Run):
                assert (before.family, before.source, before.path_id) != (
                    after.family, after.source, after.path_id
                ) or (before.route, before.old) != (after.route, after.old)  # fmt: skip
        for item in out:
            if isinstance(item, Run):
                assert run_bounds(item.prefixes) == (min(item.prefixes), max(item.prefixes))
                pieces = getattr(item.prefixes, "pieces", None)
                if pieces is not None:  # a merged run: each part's own bounds, parts in order
                    start = 0
                    for end, low, high in pieces:
                        part = item.prefixes[start:end]
                        assert part
                        assert (low, high) == (min(part), max(part))
                        start = end
                    assert start == len(item.prefixes)
        shards = merged.shards(V4)
        for prefix in POOL:
            slot = next((s[prefix] for s in shards if prefix in s), None)
            if isinstance(slot, Entry):
                best = slot.best
            else:  # a bare slot is selected when its next hop resolves
                best = slot if slot is not None and merged.next_hops.resolves(slot) else None
            assert best is expected_best(held, prefix), ipaddress.IPv4Address(prefix >> 8)


def test_append_run_joins_only_the_same_run_and_keeps_bounds_true() -> None:
    route = route_of(0, 0)
    assert route is not None
    kept = RunPrefixes(POOL[:1])
    kept.span = (POOL[0], POOL[0])
    out: list[Published] = [Run(V4, PEER_A, 0, route, kept)]
    second = RunPrefixes(POOL[1:2])
    second.span = (POOL[1], POOL[1])
    append_run(out, Run(V4, PEER_A, 0, route, second))
    assert kept.pieces == [(1, POOL[0], POOL[0]), (2, POOL[1], POOL[1])]
    append_run(out, Run(V4, PEER_A, 0, route, RunPrefixes(POOL[2:4])))  # no bounds of its own
    assert len(out) == 1
    assert list(out[0].prefixes) == POOL[:4]
    assert not hasattr(out[0].prefixes, "span")  # found again when a splitter asks
    assert not hasattr(out[0].prefixes, "pieces")
    assert run_bounds(out[0].prefixes) == (min(POOL[:4]), max(POOL[:4]))
    # another family, path id, old route or route: a run of its own
    six = RunPrefixes([int(ipaddress.IPv6Address("2001:db8::")) << 8 | 64])
    for other in (
        Run(V6, PEER_A, 0, route, six),
        Run(V4, PEER_A, 7, route, RunPrefixes(POOL[4:5])),
        Run(V4, PEER_A, 0, route, RunPrefixes(POOL[5:6]), route_of(0, 1)),
        Run(V4, PEER_A, 0, None, RunPrefixes(POOL[6:7]), route),
    ):
        append_run(out, other)
        assert out[-1] is other
    assert len(out) == 5


def test_a_peer_table_in_many_updates_is_one_run_per_batch() -> None:
    """The case the merge is for: UPDATEs of one route, each its own run, published as one."""
    rib = new_loc_rib()
    route = route_of(0, 0)
    out: list[Published] = []
    updates = [POOL[0:4], POOL[4:8], POOL[8:12], POOL[12:18]]  # the second straddles 198.18.64.0
    for prefixes in updates:
        rib.apply_run(V4, PEER_A, 0, route, prefixes, out=out)
    assert len(out) == 1
    assert isinstance(out[0], Run)
    assert list(out[0].prefixes) == POOL
    assert (
        out[0].prefixes.pieces
        == [  # type: ignore[attr-defined]
            (end, min(POOL[start:end]), max(POOL[start:end]))
            for start, end in ((0, 4), (4, 8), (8, 12), (12, 18))
        ]
    )
    assert out[0].route is route and out[0].old is None
    # a different old route breaks the run: a withdrawal of some, then all announced again
    out = []
    rib.apply_run(V4, PEER_A, 0, None, POOL[:2], out=out)
    rib.apply_run(V4, PEER_A, 0, route_of(0, 1), POOL, out=out)
    assert [(type(item).__name__, len(item.prefixes)) for item in out if isinstance(item, Run)] == [
        ("Run", 2),
        ("Run", 2),
        ("Run", len(POOL) - 2),
    ]
