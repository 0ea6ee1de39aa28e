"""The rtnetlink codec without a kernel: round trips, pyroute2 as an independent oracle, fuzzing.

pyroute2's own message classes (``rtmsg``, ``ifinfmsg``, ``ifaddrmsg`` and ``MarshalRtnl``)
decode what Myna encodes and encode what Myna decodes, so a misread field shows up as a
disagreement between two implementations rather than as a self-consistent mistake.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from kernel_sync.netlink_codes import (
    AckFlag,
    AddressFamily,
    ExtAckAttr,
    GetFlag,
    MessageFlag,
    MessageType,
    NewFlag,
    NextHopFlag,
    RouteProtocol,
    RouteScope,
    RouteTable,
    RouteType,
)
from kernel_sync.netlink_messages import (
    Ack,
    Address,
    Done,
    Header,
    Link,
    NetlinkDecodeError,
    NetlinkEncodeError,
    Other,
    encode_dump_request,
)
from kernel_sync.route_dump import parse_route_dump
from kernel_sync.route_messages import (
    KernelRoute,
    NextHop,
    RouteChange,
    RouteOp,
    encode_route,
    encode_route_batches,
    encode_routes,
    parse_messages,
    route_text,
)

V4, V6 = socket.AF_INET, socket.AF_INET6


def prefix(text: str) -> int:
    network = ipaddress.ip_network(text)
    return (int(network.network_address) << 8) | network.prefixlen


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


ROUTE_KINDS = {
    "unicast via gateway": KernelRoute(V4, prefix("198.19.1.0/24"), gateway=addr("198.18.0.2")),
    "blackhole": KernelRoute(V4, prefix("198.19.2.0/26"), type=RouteType.BLACKHOLE),
    "unreachable": KernelRoute(V4, prefix("198.19.2.64/26"), type=RouteType.UNREACHABLE),
    "prohibit": KernelRoute(V4, prefix("198.19.2.128/26"), type=RouteType.PROHIBIT),
    "onlink via device": KernelRoute(
        V4,
        prefix("198.19.3.0/26"),
        gateway=addr("198.19.200.1"),
        oif=7,
        flags=NextHopFlag.ONLINK,
    ),
    "device route": KernelRoute(V4, prefix("198.19.3.64/32"), oif=4, scope=RouteScope.LINK),
    "ecmp": KernelRoute(
        V4,
        prefix("198.19.4.0/24"),
        multipath=(
            NextHop(addr("198.18.0.2"), 3),
            NextHop(addr("198.18.0.3"), 3, NextHopFlag.ONLINK, weight=5),
        ),
    ),
    "table > 255 with metric": KernelRoute(
        V4, prefix("198.19.5.0/24"), table=100_000, priority=77, gateway=addr("198.18.0.9")
    ),
    "default route": KernelRoute(V4, prefix("0.0.0.0/0"), gateway=addr("198.18.0.1")),
    "local table": KernelRoute(
        V4,
        prefix("198.18.0.1/32"),
        table=RouteTable.LOCAL,
        protocol=RouteProtocol.KERNEL,
        type=RouteType.LOCAL,
        scope=RouteScope.HOST,
        oif=2,
    ),
    "ipv6 via gateway": KernelRoute(
        V6, prefix("2001:db8:1::/64"), gateway=addr("2001:db8::2"), oif=3, priority=1024
    ),
    "ipv6 blackhole": KernelRoute(V6, prefix("2001:db8:2::/122"), type=RouteType.BLACKHOLE),
    "ipv6 ecmp in table 1000": KernelRoute(
        V6,
        prefix("2001:db8:3::/48"),
        table=1000,
        multipath=(NextHop(addr("2001:db8::2"), 3), NextHop(addr("2001:db8::3"), 4, weight=2)),
    ),
}


@pytest.mark.parametrize("op", list(RouteOp))
@pytest.mark.parametrize("name", list(ROUTE_KINDS))
def test_every_route_kind_round_trips(name: str, op: RouteOp) -> None:
    route = ROUTE_KINDS[name]
    wire = encode_route(op, route, seq=42)
    [(header, body)] = parse_messages(wire)
    expected_type = MessageType.DELROUTE if op is RouteOp.DEL else MessageType.NEWROUTE
    assert header == Header(len(wire), expected_type, header.flags, 42, 0)
    assert header.flags & (MessageFlag.REQUEST | MessageFlag.ACK) == 0x5
    modifiers = {
        RouteOp.NEW: NewFlag.CREATE | NewFlag.EXCL,
        RouteOp.REPLACE: NewFlag.CREATE | NewFlag.REPLACE,
        RouteOp.APPEND: NewFlag.CREATE | NewFlag.APPEND,
        RouteOp.DEL: 0,
    }
    assert header.flags & 0xF00 == modifiers[op]
    # A DEL goes out with scope NOWHERE (matches any scope), as iproute2 sends it.
    assert body == (route._replace(scope=RouteScope.NOWHERE) if op is RouteOp.DEL else route)


def _text(family: int, raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if family in (V4, V6) else raw.hex()


def _pyroute2_view(message: Any) -> dict[str, Any]:
    """The fields of a pyroute2-decoded rtmsg, in KernelRoute's terms."""
    attrs = dict(message["attrs"])
    family = message["family"]
    dst = attrs.get("RTA_DST")
    hops = []
    for hop in attrs.get("RTA_MULTIPATH", []):
        hop_attrs = dict(hop["attrs"])
        hops.append((hop_attrs.get("RTA_GATEWAY"), hop["oif"], hop["flags"], hop["hops"] + 1))
    return {
        "family": family,
        "dst": f"{dst}/{message['dst_len']}" if dst else f"/{message['dst_len']}",
        "table": attrs.get("RTA_TABLE", message["table"]),
        "protocol": message["proto"],
        "type": message["type"],
        "scope": message["scope"],
        "priority": attrs.get("RTA_PRIORITY", 0),
        "gateway": attrs.get("RTA_GATEWAY"),
        "oif": attrs.get("RTA_OIF", 0),
        "flags": message["flags"],
        "multipath": hops,
    }


def _myna_view(route: KernelRoute) -> dict[str, Any]:
    size = 4 if route.family == V4 else 16
    length = route.prefix & 0xFF
    network = ipaddress.ip_address((route.prefix >> 8).to_bytes(size, "big"))
    return {
        "family": route.family,
        "dst": f"{network}/{length}" if length else f"/{length}",
        "table": route.table,
        "protocol": route.protocol,
        "type": route.type,
        "scope": route.scope,
        "priority": route.priority,
        "gateway": _text(route.family, route.gateway) if route.gateway else None,
        "oif": route.oif,
        "flags": route.flags,
        "multipath": [
            (_text(route.family, h.gateway) if h.gateway else None, h.oif, h.flags, h.weight)
            for h in route.multipath
        ],
    }


@pytest.mark.parametrize("name", list(ROUTE_KINDS))
def test_pyroute2_reads_what_myna_writes(name: str) -> None:
    route = ROUTE_KINDS[name]
    wire = encode_route(RouteOp.REPLACE, route, seq=7)
    [message] = list(MarshalRtnl().parse(wire))
    assert message["header"]["sequence_number"] == 7
    assert message["header"]["type"] == MessageType.NEWROUTE
    assert message["header"]["length"] == len(wire)
    if route.table > 255:
        assert message["table"] == 0  # the id is in RTA_TABLE only
    assert _pyroute2_view(message) == _myna_view(route)


def _pyroute2_encode(route: KernelRoute, seq: int) -> bytes:
    family = route.family
    view = _myna_view(route)
    message = rtmsg()
    message["family"] = family
    message["dst_len"] = route.prefix & 0xFF
    message["table"] = route.table if route.table < 256 else RouteTable.COMPAT
    message["proto"] = route.protocol
    message["scope"] = route.scope
    message["type"] = route.type
    message["flags"] = route.flags
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", route.table)]
    if route.prefix & 0xFF:
        attrs.append(("RTA_DST", view["dst"].split("/")[0]))
    if route.priority:
        attrs.append(("RTA_PRIORITY", route.priority))
    if route.gateway:
        attrs.append(("RTA_GATEWAY", view["gateway"]))
    if route.oif:
        attrs.append(("RTA_OIF", route.oif))
    attrs.append(("RTA_PREF", 0))  # one the codec does not model: must be skipped
    if route.multipath:
        hops = []
        for gateway, oif, flags, weight in view["multipath"]:
            hop_attrs = [("RTA_GATEWAY", gateway)] if gateway else []
            hops.append({"attrs": hop_attrs, "oif": oif, "flags": flags, "hops": weight - 1})
        attrs.append(("RTA_MULTIPATH", hops))
    message["attrs"] = attrs
    message["header"]["type"] = MessageType.NEWROUTE
    message["header"]["flags"] = MessageFlag.MULTI
    message["header"]["sequence_number"] = seq
    message.encode()
    return bytes(message.data)


@pytest.mark.parametrize("name", list(ROUTE_KINDS))
def test_myna_reads_what_pyroute2_writes(name: str) -> None:
    route = ROUTE_KINDS[name]
    wire = _pyroute2_encode(route, seq=9)
    [(header, body)] = parse_messages(wire)
    assert header.seq == 9
    assert body == route
    assert parse_route_dump(wire).routes == [route]


def test_pyroute2_reads_dump_requests() -> None:
    wire = encode_dump_request(MessageType.GETROUTE, 5, V4, table=1000, protocol=12)
    [message] = list(MarshalRtnl().parse(wire))
    assert message["header"]["flags"] == MessageFlag.REQUEST | GetFlag.DUMP
    assert message["family"] == V4
    assert message["proto"] == 12
    assert message.get_attr("RTA_TABLE") == 1000
    links = list(MarshalRtnl().parse(encode_dump_request(MessageType.GETLINK, 6)))
    assert links[0]["header"]["type"] == MessageType.GETLINK
    addresses = list(MarshalRtnl().parse(encode_dump_request(MessageType.GETADDR, 7, V6)))
    assert addresses[0]["family"] == V6
    with pytest.raises(NetlinkEncodeError):
        encode_dump_request(MessageType.NEWROUTE, 1)


def test_links_and_addresses_from_pyroute2() -> None:
    link = ifinfmsg()
    link["index"] = 5
    link["flags"] = 0x10043  # UP, BROADCAST, RUNNING, LOWER_UP
    link["attrs"] = [("IFLA_IFNAME", "cali1234"), ("IFLA_MTU", 1440), ("IFLA_TXQLEN", 1000)]
    link["header"]["type"] = MessageType.DELLINK
    link.encode()
    [(header, body)] = parse_messages(bytes(link.data))
    assert header.type == MessageType.DELLINK
    assert body == Link(5, "cali1234", 0x10043, 1440)
    assert isinstance(body, Link)
    assert body.is_up
    assert body.has_carrier
    for family, local, length in ((V4, "198.18.0.1", 24), (V6, "2001:db8::1", 64)):
        address = ifaddrmsg()
        address["family"] = family
        address["prefixlen"] = length
        address["index"] = 5
        address["scope"] = 0
        address["attrs"] = [("IFA_ADDRESS", local), ("IFA_FLAGS", 0x80), ("IFA_LABEL", "eth0")]
        if family == V4:
            address["attrs"].append(("IFA_LOCAL", local))
        address["header"]["type"] = MessageType.NEWADDR
        address.encode()
        [(_, body)] = parse_messages(bytes(address.data))
        label = "eth0"
        assert body == Address(family, 5, addr(local), length, 0x80, 0, label)


def _header(length: int, kind: int, flags: int, seq: int) -> bytes:
    return struct.pack("=IHHII", length, kind, flags, seq, 1234)


def _error(error: int, seq: int, flags: int = 0, echoed: bytes = b"", tlvs: bytes = b"") -> bytes:
    request = echoed or _header(40, MessageType.NEWROUTE, 0x605, seq)
    payload = struct.pack("=i", -error) + request + tlvs
    return _header(16 + len(payload), MessageType.ERROR, flags, seq) + payload


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def test_acks_errors_and_extended_acks() -> None:
    text = b"Nexthop has invalid gateway\0"
    request = encode_route(RouteOp.NEW, ROUTE_KINDS["unicast via gateway"], 12)
    data = b"".join(
        [
            _error(0, 10, AckFlag.CAPPED),
            _error(errno.EEXIST, 11),
            _error(errno.ENETUNREACH, 12, AckFlag.ACK_TLVS, request, _tlv(ExtAckAttr.MSG, text)),
            _error(
                errno.ENETUNREACH,
                13,
                AckFlag.ACK_TLVS | AckFlag.CAPPED,
                tlvs=_tlv(ExtAckAttr.MSG, text) + _tlv(ExtAckAttr.OFFS, struct.pack("=I", 40)),
            ),
        ]
    )
    bodies = [body for _, body in parse_messages(data)]
    assert bodies == [
        Ack(0, 10, MessageType.NEWROUTE),
        Ack(errno.EEXIST, 11, MessageType.NEWROUTE),
        Ack(errno.ENETUNREACH, 12, MessageType.NEWROUTE, "Nexthop has invalid gateway"),
        Ack(errno.ENETUNREACH, 13, MessageType.NEWROUTE, "Nexthop has invalid gateway", 40),
    ]
    # pyroute2 agrees on the errno of each
    assert [abs(m["error"]) for m in MarshalRtnl().parse(data)] == [0, 17, 101, 101]


def test_done_multipart_and_dump_interrupted() -> None:
    routes = [ROUTE_KINDS["blackhole"], ROUTE_KINDS["ipv6 via gateway"]]
    multi = MessageFlag.MULTI
    data = (
        encode_route(RouteOp.NEW, routes[0], 3, flags=multi)
        + encode_route(RouteOp.NEW, routes[1], 3, flags=multi | MessageFlag.DUMP_INTR)
        + _header(20, MessageType.DONE, multi | MessageFlag.DUMP_INTR, 3)
        + struct.pack("=i", 0)
    )
    parsed = parse_messages(data)
    assert [h.flags & MessageFlag.DUMP_INTR for h, _ in parsed] == [0, 0x10, 0x10]
    assert parsed[2][1] == Done(0)
    part = parse_route_dump(data)
    # The NEW flags (CREATE|EXCL) are in the messages, as in any replayed request.
    assert part.routes == routes
    assert part.done == Done(0)
    assert part.interrupted
    failed = _header(20, MessageType.DONE, multi, 3) + struct.pack("=i", -errno.EINTR)
    assert parse_route_dump(failed).done == Done(errno.EINTR)
    error = parse_route_dump(_error(errno.ENOENT, 3))
    assert error.errors == [Ack(errno.ENOENT, 3, MessageType.NEWROUTE)]
    assert not error.interrupted
    assert parse_messages(_header(16, MessageType.DONE, multi, 3)) == [
        (Header(16, MessageType.DONE, multi, 3, 1234), Done())
    ]


def test_other_messages_and_families() -> None:
    neighbour = _header(20, 28, 0, 1) + bytes(4)
    mpls_route = encode_route(RouteOp.NEW, ROUTE_KINDS["blackhole"], 1)
    mpls_route = mpls_route[:16] + bytes([AddressFamily.MPLS]) + mpls_route[17:]
    address = _header(24, MessageType.NEWADDR, 0, 1) + bytes([7, 0, 0, 0]) + bytes(4)
    bodies = [b for _, b in parse_messages(neighbour + mpls_route + address)]
    assert bodies == [Other(bytes(4)), Other(mpls_route[16:]), Other(bytes([7]) + bytes(7))]


def test_encoding_rejects_what_rtmsg_cannot_hold() -> None:
    bad = [
        KernelRoute(7, prefix("198.19.0.0/24")),
        KernelRoute(V4, prefix("198.19.0.0/24") + (1 << 8)),  # host bits set
        KernelRoute(V4, (1 << 40) | 24),
        KernelRoute(V6, prefix("2001:db8::/64"), gateway=addr("198.18.0.1")),
        KernelRoute(V4, prefix("198.19.0.0/24"), protocol=256),
        KernelRoute(V4, prefix("198.19.0.0/24"), multipath=(NextHop(addr("198.18.0.1"), 1, 0, 0),)),
        KernelRoute(V6, prefix("2001:db8::/64"), multipath=(NextHop(addr("198.18.0.1")),)),
        KernelRoute(V4, prefix("198.19.0.0/24"), table=1 << 32),
    ]
    for route in bad:
        with pytest.raises(NetlinkEncodeError):
            encode_route(RouteOp.NEW, route, 1)
    with pytest.raises(NetlinkEncodeError):
        encode_route(99, ROUTE_KINDS["blackhole"], 1)  # type: ignore[arg-type]


def test_an_ipv4_route_through_an_ipv6_gateway_goes_in_rta_via() -> None:
    # RFC 8950 routes: rtnetlink(7) and linux/rtnetlink.h: RTA_VIA (18) holds struct rtvia,
    # the gateway's address family (u16) then its address; IPv4 routes take it since Linux 5.2.
    gateway = addr("2001:db8::2")
    route = KernelRoute(V4, prefix("198.19.0.0/24"), gateway=gateway, priority=32)
    wire = encode_route(RouteOp.REPLACE, route, 1)
    via = struct.pack("=HHH", 4 + 2 + 16, 18, socket.AF_INET6) + gateway + b"\x00\x00"
    assert via in wire
    assert struct.pack("=HH", 8, 5) not in wire  # no RTA_GATEWAY of 4 (cut) octets
    assert parse_messages(wire)[0][1] == route
    hops = (NextHop(gateway, 1), NextHop(addr("2001:db8::3"), 1))
    multipath = KernelRoute(V4, prefix("198.19.0.0/24"), multipath=hops)
    assert parse_messages(encode_route(RouteOp.REPLACE, multipath, 1))[0][1] == multipath


def test_batches_respect_the_send_limit_and_number_in_sequence() -> None:
    routes = [
        KernelRoute(V4, ((0xC6130000 + i) << 8) | 32, type=RouteType.BLACKHOLE) for i in range(5000)
    ]
    changes = [RouteChange(RouteOp.NEW, r) for r in routes]
    batches = encode_route_batches(changes, first_seq=0xFFFFFFF0, limit=4096)
    assert sum(count for _, count in batches) == 5000
    assert all(len(data) <= 4096 for data, _ in batches)
    parsed = [m for data, _ in batches for m in parse_messages(data)]
    assert [h.seq for h, _ in parsed] == [(0xFFFFFFF0 + i) & 0xFFFFFFFF for i in range(5000)]
    assert [b for _, b in parsed] == routes
    assert b"".join(data for data, _ in batches) == encode_routes(changes, 0xFFFFFFF0)
    assert route_text(ROUTE_KINDS["ecmp"]).startswith("198.19.4.0/24 table 254 proto 12")


# -- property tests


def _routes(family: int) -> st.SearchStrategy[KernelRoute]:
    size = 4 if family == V4 else 16
    bits = size * 8

    @st.composite
    def build(draw: st.DrawFn) -> KernelRoute:
        length = draw(st.integers(0, bits))
        network = draw(st.integers(0, (1 << bits) - 1)) >> (bits - length) << (bits - length)
        gateway = st.one_of(st.just(b""), st.binary(min_size=size, max_size=size))
        hop = st.builds(
            NextHop, gateway, st.integers(0, 2**31 - 1), st.integers(0, 255), st.integers(1, 256)
        )
        return KernelRoute(
            family,
            (network << 8) | length,
            table=draw(st.integers(0, 2**32 - 1)),
            protocol=draw(st.integers(0, 255)),
            type=draw(st.integers(0, 255)),
            scope=draw(st.integers(0, 255)),
            priority=draw(st.integers(0, 2**32 - 1)),
            gateway=draw(gateway),
            oif=draw(st.integers(0, 2**32 - 1)),
            flags=draw(st.integers(0, 2**32 - 1)),
            multipath=tuple(draw(st.lists(hop, max_size=4))),
        )

    return build()


ANY_ROUTE = st.one_of(_routes(V4), _routes(V6))


def _nth(route: KernelRoute, n: int) -> KernelRoute:
    """``route`` moved to the n-th next network of its length (wrapping around)."""
    bits = 32 if route.family == V4 else 128
    length = route.prefix & 0xFF
    network = ((route.prefix >> 8) + (n << (bits - length))) % (1 << bits) if length else 0
    return route._replace(prefix=(network << 8) | length)


@settings(max_examples=400, deadline=None)
@given(ANY_ROUTE, st.sampled_from([RouteOp.NEW, RouteOp.REPLACE]), st.integers(0, 2**32 - 1))
def test_any_route_round_trips(route: KernelRoute, op: RouteOp, seq: int) -> None:
    [(header, body)] = parse_messages(encode_route(op, route, seq))
    assert header.seq == seq
    assert body == route


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(list(ROUTE_KINDS.values())), max_size=6),
    st.lists(ANY_ROUTE, max_size=3),
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.data(),
)
def test_fast_dump_reader_agrees_with_the_plain_decoder(
    kinds: list[KernelRoute], extra: list[KernelRoute], runs: list[int], data: st.DataObject
) -> None:
    # Runs of equal shapes (what the fast path reads in C) broken by other shapes.
    pool = kinds + extra or [ROUTE_KINDS["blackhole"]]
    routes: list[KernelRoute] = []
    for run in runs:
        base = data.draw(st.sampled_from(pool))
        routes += [_nth(base, i) for i in range(run)]
    interrupted_at = data.draw(st.integers(-1, len(routes) - 1))
    wire = b"".join(
        encode_route(
            RouteOp.NEW, r, 77, flags=0x2 | (MessageFlag.DUMP_INTR if i == interrupted_at else 0)
        )
        for i, r in enumerate(routes)
    )
    part = parse_route_dump(wire)
    plain = [body for _, body in parse_messages(wire)]
    assert part.routes == plain == routes
    assert part.interrupted == (interrupted_at >= 0)
    assert part.done is None


SAMPLE = b"".join(encode_route(RouteOp.NEW, r, 5, flags=2) for r in ROUTE_KINDS.values()) + (
    _error(errno.EEXIST, 5, AckFlag.ACK_TLVS | AckFlag.CAPPED, tlvs=_tlv(1, b"x\0"))
    + _header(20, MessageType.DONE, 2, 5)
    + struct.pack("=i", 0)
)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_the_codec_error(data: bytes) -> None:
    for parse in (parse_messages, parse_route_dump):
        with contextlib.suppress(NetlinkDecodeError):
            parse(data)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(SAMPLE)),
)
def test_mutated_messages_raise_only_the_codec_error(
    flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(SAMPLE)
    for position, value in flips:
        data[position] = value
    for parse in (parse_messages, parse_route_dump):
        with contextlib.suppress(NetlinkDecodeError):
            parse(bytes(data[:cut]))
