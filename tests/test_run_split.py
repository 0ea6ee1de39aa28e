"""Runs split into the prefix classes of a memoised filter (``rib.run_split``).

``PrefixClasses.splitter`` must cut a run into groups whose prefixes all pass the same tests
(so the filter's one answer per group is its answer for each prefix) and lose nothing.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.bird_config.prefix_classes import PrefixClasses
from rib.run_split import RunPrefixes, run_span
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


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 1 << 18), min_size=1, max_size=300),
    st.sampled_from([(32,), (26,), (24, 32), (16, 26, 32)]),
    st.booleans(),
)
def test_groups_are_classes_and_lose_nothing(
    offsets: list[int], lengths: tuple[int, ...], ordered: bool
) -> None:
    prefixes = [_prefix(BASE + o, lengths[o % len(lengths)]) for o in offsets]
    if ordered:
        prefixes.sort()
    groups = SPLIT(prefixes)
    assert Counter(p for g in groups for p in g) == Counter(prefixes)
    for group in groups:
        assert group
        assert len({CLASSES.classify(p) for p in group}) == 1


def test_a_run_inside_one_pool_is_one_group() -> None:
    start = int(ipaddress.IPv4Address("198.18.64.0"))
    prefixes = [((start + n) << 8) | 32 for n in range(5000)]
    assert SPLIT(prefixes) == (prefixes,)


def test_a_run_keeps_its_span_for_the_next_splitter() -> None:
    # The update groups and the kernel split the same run: the second reads what the first
    # learnt of it, and a list that is not a run's gets the same answer, unkept.
    start = int(ipaddress.IPv4Address("198.18.64.0"))
    prefixes = [((start + n) << 8) | 32 for n in range(100)]
    run = RunPrefixes(prefixes)
    assert run_span(run) == run_span(prefixes) == (prefixes[0], prefixes[-1], True)
    assert run.span == run_span(prefixes)
    mixed = RunPrefixes([*prefixes, (start << 8) | 24])
    assert run_span(mixed)[2] is False
    assert SPLIT(mixed) and SPLIT(run) == (run,)


@given(st.lists(st.integers(0, (1 << 136) - 1), min_size=1, max_size=50))
def test_one_length_is_every_length_byte_equal(prefixes: list[int]) -> None:
    # IPv4-sized ints go through the array of 64-bit items, larger ones through the set
    for run in (prefixes, [p & ((1 << 40) - 1) for p in prefixes]):
        assert run_span(run)[2] == (len({p & 0xFF for p in run}) == 1)
        same = [(p & ~0xFF) | (run[0] & 0xFF) for p in run]
        assert run_span(same)[2] is True
