"""The live filter comparison's own machinery: the address map and BIRD's output parser.

``test_interop_bird_filters.py`` is only as good as these: the map must keep every relation
a Calico filter can observe between the addresses it moves (containment, equality) and land
in the test ranges, and the parser must read ``show route all`` as BIRD 1.6 prints it.
"""

from __future__ import annotations

import ipaddress

from bird_filter_bench import V4_TARGET, V6_TARGET, AddressMap, literals, parse_routes
from hypothesis import assume, given, settings
from hypothesis import strategies as st


@st.composite
def _items(draw: st.DrawFn, bits: int) -> list[tuple[int, int]]:
    # prefixes clustered under a few roots, so that containment happens often
    roots = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=4))
    found = []
    for _ in range(draw(st.integers(1, 15))):
        root = draw(st.sampled_from(roots))
        length = draw(st.integers(4, bits))
        address = root & (((1 << length) - 1) << (bits - length))
        address |= draw(st.integers(0, 3)) << (bits - length) if length >= 2 else 0
        address &= ((1 << length) - 1) << (bits - length)
        found.append((address, length))
    return found


def _contains(outer: tuple[int, int], inner: tuple[int, int], bits: int) -> bool:
    shift = bits - outer[1]
    return outer[1] <= inner[1] and outer[0] >> shift == inner[0] >> shift


@settings(max_examples=100, deadline=None)
@given(data=st.data(), ipv6=st.booleans())
def test_the_map_keeps_containment_and_equality(data: st.DataObject, ipv6: bool) -> None:
    bits = 128 if ipv6 else 32
    items = data.draw(_items(bits))
    try:
        mapping = AddressMap(items, ipv6)
    except ValueError as error:
        # a nesting deeper than the test range holds: refused loudly, never mapped wrong
        assert "too many nested prefixes" in str(error)
        assume(False)
        return
    target = V6_TARGET if ipv6 else V4_TARGET
    for item in items:
        image = mapping.images[item]
        address = ipaddress.IPv6Address(image[0]) if ipv6 else ipaddress.IPv4Address(image[0])
        network = ipaddress.ip_network(f"{address}/{image[1]}")
        assert network.subnet_of(target)  # type: ignore[arg-type]
        assert (image[1] == bits) == (item[1] == bits)  # a host stays a host
    for a in items:
        for b in items:
            assert _contains(a, b, bits) == _contains(mapping.images[a], mapping.images[b], bits)
            assert (a == b) == (mapping.images[a] == mapping.images[b])


def test_rewrite_moves_every_literal() -> None:
    text = (
        "router id 10.192.0.2;\nif ( net ~ 192.168.0.0/16 ) then { accept; }\n"
        "route 10.0.0.0/30 blackhole;"
    )
    v4, _ = literals(text)
    mapping = AddressMap(v4, ipv6=False)
    rewritten = mapping.rewrite(text)
    assert "192.168" not in rewritten and "10.192" not in rewritten and "10.0.0.0" not in rewritten
    assert rewritten.count("198.19.") == 3
    text6 = "if ( net ~ fd00:96::/112 ) then { accept; }\nneighbor ffee::10 as 65515;"
    _, v6 = literals(text6)
    rewritten6 = AddressMap(v6, ipv6=True).rewrite(text6)
    assert "fd00" not in rewritten6 and "ffee" not in rewritten6
    assert rewritten6.count("2001:db8:") == 2


def test_parse_routes_reads_bird_16_output() -> None:
    output = """BIRD 1.6.8 ready.
198.19.10.0/24     via 198.18.0.2 on eth0 [feed 05:27:35] * (100) [AS65002e]
\tType: BGP unicast univ
\tBGP.origin: EGP
\tBGP.as_path: 65001 65002
\tBGP.next_hop: 198.18.0.2
\tBGP.local_pref: 300
\tBGP.community: (65001,7) (65535,65281)
                   blackhole [kernel1 05:27:35] (10)
\tType: inherit unicast univ
\tKernel.source: 80
\tKernel.metric: 0
198.19.24.0/22     prohibited [test_static 05:32:47] ! (200)
\tType: static unicast univ
198.19.11.0/24     via 198.18.0.9 on eth0 [feed 05:27:35 from 198.18.0.2] (200) [?]
\tType: BGP unicast link
"""
    routes = parse_routes(output)
    assert [(r.prefix, r.proto, r.dest, r.best, r.preference) for r in routes] == [
        ("198.19.10.0/24", "feed", "via", True, 100),
        ("198.19.10.0/24", "kernel1", "blackhole", False, 10),
        ("198.19.24.0/22", "test_static", "prohibit", True, 200),
        ("198.19.11.0/24", "feed", "via", False, 200),
    ]
    assert routes[0].attributes["BGP.community"] == "(65001,7) (65535,65281)"
    assert routes[1].attributes == {"Kernel.source": "80", "Kernel.metric": "0"}
    assert (routes[3].from_address, routes[3].gateway, routes[3].scope) == (
        "198.18.0.2",
        "198.18.0.9",
        1,
    )
