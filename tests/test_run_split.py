"""Runs split into the prefix classes of a memoised filter (``rib.run_split``).

``PrefixClasses.splitter`` must cut a run into groups whose prefixes all pass the same tests
(so the filter's one answer per group is its answer for each prefix) and lose nothing.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.bird_config.prefix_classes import PrefixClasses
from rib.run_split import RunPrefixes, run_bounds
from speaker.wire_codes import Family


def _contains(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.IPv4Network(cidr)
    mask = int(net.netmask) << 8
    return mask, int(net.network_address) << 8, net.prefixlen


def _prefix(address: int, length: int) -> int:
    net = ipaddress.IPv4Network((address, length), strict=False)
    return (int(net.network_address) << 8) | length


CLASSES = PrefixClasses(
    [_contains(c) for c in ("198.18.1.0/24", "198.18.2.0/23", "198.18.0.0/16", "198.19.0.0/16")],
    [_prefix(int(ipaddress.IPv4Address("198.19.7.64")), 26)],
    [],
)
SPLIT = CLASSES.splitter(Family.IPV4_UNICAST)
BASE = int(ipaddress.IPv4Address("198.17.255.0"))


def assert_classes(groups: Sequence[Sequence[int]], prefixes: list[int]) -> None:
    """Every prefix in exactly one group, each group non-empty and of one class."""
    assert Counter(p for g in groups for p in g) == Counter(prefixes)
    for group in groups:
        assert group
        assert len({CLASSES.classify(p) for p in group}) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 1 << 18), min_size=1, max_size=300),
    # 15 and 23: a pool's own first address, shorter than the pool (198.18.0.0/15 is no
    # subnet of 198.18.0.0/16, 198.18.2.0/23 is one of 198.18.2.0/23)
    st.sampled_from([(32,), (26,), (24, 32), (16, 26, 32), (15, 24, 32), (8, 23, 26)]),
    st.booleans(),
)
def test_groups_are_classes_and_lose_nothing(
    offsets: list[int], lengths: tuple[int, ...], ordered: bool
) -> None:
    prefixes = [_prefix(BASE + o, lengths[o % len(lengths)]) for o in offsets]
    if ordered:
        prefixes.sort()
    assert_classes(SPLIT(prefixes), prefixes)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 1 << 18), min_size=2, max_size=300),
    st.sampled_from([(32,), (26,), (16, 26, 32)]),
    st.integers(0, 1 << 28),
    st.integers(0, 1 << 28),
)
def test_bounds_wider_than_the_run_split_it_the_same(
    offsets: list[int], lengths: tuple[int, ...], below: int, above: int
) -> None:
    # Kept bounds wider than the run (the Loc-RIB keeps exact ones; nothing forbids others)
    # reach over edges none of its prefixes lies beyond: those cut nothing, no group is empty.
    prefixes = [_prefix(BASE + o, lengths[o % len(lengths)]) for o in offsets]
    run = RunPrefixes(prefixes)
    run.span = (max(0, min(prefixes) - below), max(prefixes) + above)
    groups = SPLIT(run)
    assert_classes(groups, prefixes)
    assert sorted(map(sorted, groups)) == sorted(map(sorted, SPLIT(list(prefixes))))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 1 << 18), min_size=2, max_size=300),
    # /24 and /23 put prefixes on the pools' own edges (198.18.1.0/24, 198.18.2.0/23)
    st.sampled_from([(32,), (26,), (16, 26, 32), (24, 32), (8, 23, 26)]),
    st.lists(st.integers(1, 299), max_size=8),
)
def test_a_merged_run_is_cut_part_by_part_into_the_same_classes(
    offsets: list[int], lengths: tuple[int, ...], ends: list[int]
) -> None:
    # The Loc-RIB merges a slice's UPDATEs of one route into one run and keeps each part's
    # bounds: parts between two edges join their class's group unsorted, the rest are cut.
    prefixes = [_prefix(BASE + o, lengths[o % len(lengths)]) for o in offsets]
    bounds = sorted({e for e in ends if e < len(prefixes)} | {len(prefixes)})
    run = RunPrefixes(prefixes)
    run.span = (min(prefixes), max(prefixes))
    run.pieces = []
    start = 0
    for end in bounds:
        part = prefixes[start:end]
        run.pieces.append((end, min(part), max(part)))
        start = end
    groups = SPLIT(run)
    assert_classes(groups, prefixes)
    assert len(groups) == len(SPLIT(list(prefixes)))  # one group per interval either way
    merged: dict[int, list[int]] = {}
    for group in groups:
        merged.setdefault(CLASSES.classify(group[0]), []).extend(group)
    plain: dict[int, list[int]] = {}
    for group in SPLIT(list(prefixes)):
        plain.setdefault(CLASSES.classify(group[0]), []).extend(group)
    assert {k: sorted(v) for k, v in plain.items()} == {k: sorted(v) for k, v in merged.items()}


def test_a_merged_runs_parts_meet_at_an_equality_edge() -> None:
    # 198.19.7.64/26 is an equality test inside the 198.19.0.0/16 pool. Four UPDATEs' parts
    # of 40 prefixes, as the Loc-RIB merges them: below the block, the block and /32s past it
    # (straddling its edges), more of the pool past it, and 198.18.1.0/24's.
    def hosts(first: str, count: int) -> list[int]:
        start = int(ipaddress.IPv4Address(first))
        return [_prefix(start + i, 32) for i in range(count)]

    block = _prefix(int(ipaddress.IPv4Address("198.19.7.64")), 26)
    parts = [
        hosts("198.19.7.0", 40),
        [block, *hosts("198.19.7.65", 39)],
        hosts("198.19.8.0", 40),
        hosts("198.18.1.0", 40),
    ]
    run = RunPrefixes(p for part in parts for p in part)
    run.span = (min(run), max(run))
    run.pieces = []
    end = 0
    for part in parts:
        end += len(part)
        run.pieces.append((end, min(part), max(part)))
    groups = sorted(map(sorted, SPLIT(run)))
    assert groups == sorted(
        [sorted(parts[0]), [block], sorted(parts[1][1:] + parts[2]), sorted(parts[3])]
    )
    assert all(len({CLASSES.classify(p) for p in g}) == 1 for g in groups)


def _network(cidr: str) -> tuple[int, int, int]:
    """A containment test of either family: (mask, value, length) as the code generator's."""
    net = ipaddress.ip_network(cidr)
    return int(net.netmask) << 8, int(net.network_address) << 8, net.prefixlen


def _any_prefix(address: int, length: int, bits: int) -> int:
    network = address & ~((1 << (bits - length)) - 1) & ((1 << bits) - 1)
    return (network << 8) | length


EDGE_CASES = {
    # the whole space, a host route, nested and overlapping pools, an equality inside them
    32: (
        PrefixClasses(
            [_network(c) for c in ("0.0.0.0/0", "198.18.4.7/32", "198.18.0.0/16", "198.18.4.0/22")],
            [_any_prefix(int(ipaddress.IPv4Address("198.18.4.64")), 26, 32)],
            [],
        ),
        int(ipaddress.IPv4Address("198.18.0.0")),
    ),
    128: (
        PrefixClasses(
            [_network(c) for c in ("::/0", "2001:db8::5/128", "2001:db8::/32", "2001:db8::/122")],
            [_any_prefix(int(ipaddress.IPv6Address("2001:db8::40")), 122, 128)],
            [],
        ),
        int(ipaddress.IPv6Address("2001:db8::")),
    ),
}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([32, 128]),
    st.lists(st.tuples(st.integers(0, 1 << 12), st.integers(0, 128)), min_size=1, max_size=200),
)
def test_groups_are_classes_at_the_edges_of_both_families(
    bits: int, draws: list[tuple[int, int]]
) -> None:
    classes, base = EDGE_CASES[bits]
    family = Family.IPV4_UNICAST if bits == 32 else Family.IPV6_UNICAST
    # offsets on both sides of the base, every length from 0 to the family's width
    prefixes = list(
        dict.fromkeys(_any_prefix(base + o - 64, n % (bits + 1), bits) for o, n in draws)
    )
    groups = classes.splitter(family)(prefixes)
    assert Counter(p for g in groups for p in g) == Counter(prefixes)
    for group in groups:
        assert len({classes.classify(p) for p in group}) == 1, [hex(p) for p in group]


def test_a_run_inside_one_pool_is_one_group() -> None:
    start = int(ipaddress.IPv4Address("198.18.64.0"))
    prefixes = [((start + n) << 8) | 32 for n in range(5000)]
    assert SPLIT(prefixes) == (prefixes,)


def test_a_run_keeps_its_bounds_for_the_next_splitter() -> None:
    # The update groups and the kernel split the same run: the second reads what the first
    # found, and a list that is not a run's gets the same answer, unkept.
    start = int(ipaddress.IPv4Address("198.18.64.0"))
    prefixes = [((start + n) << 8) | 32 for n in range(100)]
    run = RunPrefixes(prefixes)
    assert run_bounds(run) == run_bounds(prefixes) == (prefixes[0], prefixes[-1])
    assert run.span == run_bounds(prefixes)
    assert not hasattr(RunPrefixes(prefixes), "span")  # found on demand only


def test_prefixes_of_several_lengths_at_a_pools_first_address_are_told_apart() -> None:
    # 198.18.0.0/15 starts where 198.18.0.0/16 does but is no subnet of it (BIRD's
    # "net ~ 198.18.0.0/16" is false for it); /16 and longer at that address are subnets.
    first = int(ipaddress.IPv4Address("198.18.0.0"))
    shorter, pool, block = _prefix(first, 15), _prefix(first, 16), _prefix(first, 26)
    groups = SPLIT([block, shorter, pool])
    assert sorted(sorted(g) for g in groups) == [[shorter], sorted([pool, block])]
    assert CLASSES.classify(shorter) != CLASSES.classify(pool) == CLASSES.classify(block)
