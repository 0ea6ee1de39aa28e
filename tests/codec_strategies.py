"""Hypothesis strategies that generate Myna codec values in their canonical form.

Canonical means the form decoding gives back: IPv4 withdrawals before IPv6 ones, a classic
IPv4 announcement before the MP_REACH one, unknown attributes with the Partial bit set, and so
on, so that ``decode(encode(m)) == m`` can be asserted exactly. Used by the round-trip and
fuzzing tests. Addresses stay inside 198.18.0.0/15 and 2001:db8::/32.
"""

from __future__ import annotations

from hypothesis import strategies as st

from speaker.capabilities import (
    AddPathCapability,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    HostnameCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
    UnknownCapability,
)
from speaker.control_messages import Notification, RouteRefresh
from speaker.open_message import Open
from speaker.path_attributes import PathAttributes
from speaker.update_message import Reach, Unreach, Update
from speaker.wire_codes import Family

V4, V6 = Family.IPV4_UNICAST, Family.IPV6_UNICAST
V4_BASE = 0xC6120000  # 198.18.0.0/15
V6_BASE = 0x20010DB8 << 96  # 2001:db8::/32

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
asn = st.integers(1, 0xFFFFFFFF)
asn2 = st.integers(1, 0xFFFF)


def v4_prefix() -> st.SearchStrategy[int]:
    """A prefix int inside 198.18.0.0/15 (length 15..32), host bits clear."""

    def build(host: int, plen: int) -> int:
        network = (V4_BASE | host) & (((1 << plen) - 1) << (32 - plen))
        return (network << 8) | plen

    return st.builds(build, st.integers(0, (1 << 17) - 1), st.integers(15, 32))


def v6_prefix() -> st.SearchStrategy[int]:
    """A prefix int inside 2001:db8::/32 (length 32..128), host bits clear."""

    def build(host: int, plen: int) -> int:
        network = (V6_BASE | host) & (((1 << plen) - 1) << (128 - plen))
        return (network << 8) | plen

    return st.builds(build, st.integers(0, (1 << 96) - 1), st.integers(32, 128))


v4_next_hop = st.integers(1, (1 << 17) - 2).map(lambda h: (V4_BASE | h).to_bytes(4, "big"))
v6_global = st.integers(1, (1 << 96) - 1).map(lambda h: (V6_BASE | h).to_bytes(16, "big"))
v6_link_local = st.integers(1, (1 << 64) - 1).map(
    lambda h: ((0xFE80 << 112) | h).to_bytes(16, "big")
)
v6_next_hop = st.one_of(v6_global, st.tuples(v6_global, v6_link_local).map(lambda p: p[0] + p[1]))


def as_path(four_octet_only: bool) -> st.SearchStrategy[tuple[tuple[int, tuple[int, ...]], ...]]:
    """AS paths; confederation segments only where they survive the trip (4-octet sessions)."""
    types = st.sampled_from([1, 2, 3, 4] if four_octet_only else [1, 2])
    segment = st.tuples(types, st.lists(asn, min_size=1, max_size=8).map(tuple))
    return st.lists(segment, max_size=4).map(tuple)


unknown_attributes = st.lists(
    st.tuples(st.just(0xE0), st.integers(40, 255), st.binary(max_size=12)),
    max_size=3,
    unique_by=lambda u: u[1],
).map(lambda items: tuple(sorted(items, key=lambda u: u[1])))


def path_attributes(
    next_hop: st.SearchStrategy[bytes], asn4: bool = True
) -> st.SearchStrategy[PathAttributes]:
    """Attribute sets with every attribute Myna understands, each present or absent."""
    return st.builds(
        PathAttributes,
        origin=st.integers(0, 2),
        as_path=as_path(asn4),
        next_hop=next_hop,
        med=st.none() | u32,
        local_pref=st.none() | u32,
        atomic_aggregate=st.booleans(),
        aggregator=st.none() | st.tuples(asn, u32),
        communities=st.lists(u32, max_size=6).map(tuple),
        originator_id=st.none() | u32,
        cluster_list=st.lists(u32, max_size=4).map(tuple),
        extended_communities=st.lists(st.integers(0, (1 << 64) - 1), max_size=4).map(tuple),
        # RFC 8092: duplicates are removed on receipt, so canonical sets have none.
        large_communities=st.lists(st.tuples(u32, u32, u32), max_size=3, unique=True).map(tuple),
        otc=st.none() | u32,
        unknown=unknown_attributes,
    )


@st.composite
def updates(
    draw: st.DrawFn, add_path: frozenset[Family] = frozenset(), asn4: bool = True
) -> Update:
    """A canonical UPDATE that fits in 4096 octets (withdrawals and/or announcements)."""

    def ids(prefixes: tuple[int, ...], family: Family) -> tuple[int, ...] | None:
        if family not in add_path:
            return None
        return tuple(draw(st.lists(u32, min_size=len(prefixes), max_size=len(prefixes))))

    unreach = []
    for family, prefix in ((V4, v4_prefix()), (V6, v6_prefix())):
        if draw(st.booleans()):
            prefixes = tuple(draw(st.lists(prefix, min_size=1, max_size=20)))
            unreach.append(Unreach(family, prefixes, ids(prefixes, family)))
    reach = []
    if draw(st.booleans()):
        attrs = draw(path_attributes(v4_next_hop, asn4))
        if draw(st.booleans()):
            prefixes = tuple(draw(st.lists(v4_prefix(), min_size=1, max_size=20)))
            reach.append(Reach(V4, attrs, prefixes, ids(prefixes, V4)))
        if draw(st.booleans()):
            prefixes = tuple(draw(st.lists(v6_prefix(), min_size=1, max_size=20)))
            mp_attrs = attrs._replace(next_hop=draw(v6_next_hop))
            reach.append(Reach(V6, mp_attrs, prefixes, ids(prefixes, V6)))
    if not reach and not unreach:
        return Update(end_of_rib=draw(st.sampled_from([V4, V6])))
    return Update(tuple(reach), tuple(unreach))


capabilities: st.SearchStrategy[Capability] = st.one_of(
    st.builds(MultiprotocolCapability, u16, u8),
    st.just(RouteRefreshCapability()),
    st.just(EnhancedRouteRefreshCapability()),
    st.just(ExtendedMessageCapability()),
    st.builds(FourOctetAsCapability, asn),
    st.builds(
        GracefulRestartCapability,
        st.integers(0, 15),
        st.integers(0, 4095),
        st.lists(st.tuples(u16, u8, u8), max_size=3).map(tuple),
    ),
    st.builds(
        LongLivedGracefulRestartCapability,
        st.lists(st.tuples(u16, u8, u8, st.integers(0, 0xFFFFFF)), max_size=3).map(tuple),
    ),
    st.builds(
        AddPathCapability, st.lists(st.tuples(u16, u8, st.integers(1, 3)), max_size=3).map(tuple)
    ),
    st.builds(ExtendedNextHopCapability, st.lists(st.tuples(u16, u16, u16), max_size=3).map(tuple)),
    st.builds(
        HostnameCapability,
        st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=30),
        st.text(st.characters(min_codepoint=97, max_codepoint=122), max_size=30),
    ),
    st.builds(UnknownCapability, st.integers(128, 255), st.binary(max_size=20)),
)

opens = st.builds(
    Open,
    asn=u16,
    hold_time=u16,
    bgp_id=u32,
    capabilities=st.lists(capabilities, max_size=40).map(tuple),
)

notifications = st.builds(Notification, st.integers(1, 8), u8, st.binary(max_size=200))
route_refreshes = st.builds(RouteRefresh, u16, u8, u8)
