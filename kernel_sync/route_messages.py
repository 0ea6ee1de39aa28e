"""Kernel routes as frozen values, and their rtnetlink wire form both ways (sans-I/O).

A ``KernelRoute`` is what one RTM_NEWROUTE says: family, prefix (an int in Myna's form,
``(network << 8) | length``, as in ``speaker.nlri``), table, protocol, type, scope, metric,
one next hop (gateway and/or device) or several (``multipath``, RTA_MULTIPATH, ECMP), and the
RTNH_F_* flags (``ONLINK``). Attributes it does not model (RTA_PREF, RTA_CACHEINFO, metrics,
encapsulations...) are skipped. Values are named tuples, so a dump of 100,000 routes is
100,000 C-built tuples and comparing two dumps is a set operation.

Data flow, out: the writer hands ``(RouteOp, KernelRoute)`` changes to ``encode_route_batches``,
which packs each into nlmsghdr + rtmsg + rtattrs with precompiled structs and cuts the stream
into sends of at most 64 KiB, each message with its own sequence number. In:
``parse_messages`` walks a received buffer and yields ``(Header, body)`` pairs, the body a
``KernelRoute``, ``Link``, ``Address``, ``Ack``, ``Done`` or ``Other``; the caller looks at the
header for NLM_F_MULTI / NLM_F_DUMP_INTR and the sequence number. Whatever bytes it is fed,
``parse_messages`` raises nothing but ``NetlinkDecodeError``; the encoders raise nothing but
``NetlinkEncodeError``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from typing import NamedTuple

from kernel_sync.netlink_codes import (
    NLMSG_HDRLEN,
    RTMSG_LEN,
    RTNH_LEN,
    MessageFlag,
    MessageType,
    NewFlag,
    RouteAttr,
    RouteProtocol,
    RouteScope,
    RouteTable,
    RouteType,
)
from kernel_sync.netlink_messages import (
    NLMSGHDR,
    RTATTR,
    RTMSG,
    U32,
    Ack,
    Address,
    Done,
    Header,
    Link,
    NetlinkDecodeError,
    NetlinkEncodeError,
    Other,
    decode_ack,
    decode_address,
    decode_done,
    decode_link,
)
from speaker.wire_codes import Family

AF_INET = int(socket.AF_INET)
AF_INET6 = int(socket.AF_INET6)


class NextHop(NamedTuple):
    """One path of a multipath route: gateway (network order, may be empty), device, flags.

    ``weight`` is 1..256 (rtnh_hops + 1); ``flags`` are RTNH_F_* (``ONLINK``, and from the
    kernel ``LINKDOWN``, ``DEAD``...).
    """

    gateway: bytes = b""
    oif: int = 0
    flags: int = 0
    weight: int = 1


class KernelRoute(NamedTuple):
    """One kernel route. Fields hold plain ints; compare them with the ``netlink_codes`` enums.

    ``prefix`` is ``(network << 8) | length``; ``gateway`` is 4 or 16 octets or empty; ``oif``
    is an ifindex, 0 for none; ``priority`` is the metric (0 for none; the kernel turns an
    IPv6 route's 0 into 1024); ``flags`` are rtm_flags (RTNH_F_* of a single-path route and
    RTM_F_*). A route with ``multipath`` has no top-level gateway or device.
    """

    family: int
    prefix: int
    table: int = RouteTable.MAIN
    protocol: int = RouteProtocol.BIRD
    type: int = RouteType.UNICAST
    scope: int = RouteScope.UNIVERSE
    priority: int = 0
    gateway: bytes = b""
    oif: int = 0
    flags: int = 0
    multipath: tuple[NextHop, ...] = ()


def family_of(route: KernelRoute) -> Family:
    """The RIB's address family of a kernel route."""
    return Family.IPV4_UNICAST if route.family == socket.AF_INET else Family.IPV6_UNICAST


class RouteOp(IntEnum):
    """What a change asks of the kernel, and so its message type and NLM_F_* modifiers."""

    NEW = 1  # RTM_NEWROUTE, CREATE | EXCL: EEXIST when the route exists
    REPLACE = 2  # RTM_NEWROUTE, CREATE | REPLACE: create or overwrite
    DEL = 3  # RTM_DELROUTE: ESRCH when no route matches
    APPEND = 4  # RTM_NEWROUTE, CREATE | APPEND: one more route beside an existing one


class RouteChange(NamedTuple):
    """One write: an operation and the route it applies to."""

    op: RouteOp
    route: KernelRoute


Body = KernelRoute | Link | Address | Ack | Done | Other
Message = tuple[Header, Body]

_OPERATIONS: dict[int, tuple[int, int]] = {
    RouteOp.NEW: (MessageType.NEWROUTE, MessageFlag.REQUEST | NewFlag.CREATE | NewFlag.EXCL),
    RouteOp.REPLACE: (
        MessageType.NEWROUTE,
        MessageFlag.REQUEST | NewFlag.CREATE | NewFlag.REPLACE,
    ),
    RouteOp.DEL: (MessageType.DELROUTE, MessageFlag.REQUEST),
    RouteOp.APPEND: (MessageType.NEWROUTE, MessageFlag.REQUEST | NewFlag.CREATE | NewFlag.APPEND),
}
_OPERATIONS = {op: (int(kind), int(flags)) for op, (kind, flags) in _OPERATIONS.items()}

# nlmsghdr + rtmsg in one struct: one pack call per route for the fixed 28 bytes.
_HEAD = struct.Struct("=IHHIIBBBBBBBBI")
_HEAD_LEN = NLMSG_HDRLEN + RTMSG_LEN
_ATTR_U32 = struct.Struct("=HHI")
_RTNH = struct.Struct("=HBBi")
_U32BE = struct.Struct(">I")
_U64BE2 = struct.Struct(">QQ")
_ADDRESS_LEN: dict[int, int] = {AF_INET: 4, AF_INET6: 16}
# Attribute headers of fixed-size address attributes, packed once.
_DST_HEAD = {size: RTATTR.pack(4 + size, RouteAttr.DST) for size in (4, 16)}
_GATEWAY_HEAD = {size: RTATTR.pack(4 + size, RouteAttr.GATEWAY) for size in (4, 16)}
# RFC 8950: an IPv4 route through an IPv6 gateway goes in RTA_VIA (struct rtvia: the gateway's
# address family, then its address), which Linux takes since 5.2.
_VIA_V6 = RTATTR.pack(4 + 2 + 16, RouteAttr.VIA) + struct.pack("=H", AF_INET6)
_VIA_PAD = b"\x00\x00"  # rtattr lengths are padded to 4 octets
_TABLE, _PRIORITY, _OIF = int(RouteAttr.TABLE), int(RouteAttr.PRIORITY), int(RouteAttr.OIF)
_DEL = int(RouteOp.DEL)
_NOWHERE = int(RouteScope.NOWHERE)
_ACK = int(MessageFlag.ACK)


def _net_masks(bits: int) -> list[int]:
    return [((1 << length) - 1) << (bits - length) for length in range(bits + 1)]


# NETWORK_MASKS[address octets][length] keeps a network's first ``length`` bits.
NETWORK_MASKS = {4: _net_masks(32), 16: _net_masks(128)}


def _gateway(gateway: bytes, size: int) -> bytes:
    """RTA_GATEWAY for a gateway of the route's family, RTA_VIA for an IPv6 one of an IPv4 route."""
    if len(gateway) == size:
        return _GATEWAY_HEAD[size] + gateway
    if size == 4 and len(gateway) == 16:
        return _VIA_V6 + gateway + _VIA_PAD
    raise NetlinkEncodeError(f"gateway of {len(gateway)} octets, want {size}")


def _encode_multipath(hops: Sequence[NextHop], size: int) -> bytes:
    parts = []
    for gateway, oif, flags, weight in hops:
        if not 1 <= weight <= 256:
            raise NetlinkEncodeError(f"next-hop weight {weight} outside 1..256")
        nested = _gateway(gateway, size) if gateway else b""
        parts.append(_RTNH.pack(RTNH_LEN + len(nested), flags, weight - 1, oif) + nested)
    body = b"".join(parts)
    return RTATTR.pack(4 + len(body), RouteAttr.MULTIPATH) + body


def encode_route(
    op: RouteOp, route: KernelRoute, seq: int, flags: int = _ACK, pid: int = 0
) -> bytes:
    """One RTM_NEWROUTE / RTM_DELROUTE message for ``route``.

    ``flags`` are added to the operation's own (NLM_F_REQUEST and its NEW modifiers); the
    default asks for an ack. A DEL goes out with scope RT_SCOPE_NOWHERE, as ``ip route del``
    sends it, so it matches the route whatever its scope; its type, protocol, metric, gateway
    and device must match unless they are 0 (type UNSPEC, protocol UNSPEC, none): a DEL of
    ``KernelRoute(family, prefix, type=RouteType.UNSPEC)`` removes the protocol-12 route of
    that prefix in the main table, whatever its type and next hops. Tables above 255 go in
    RTA_TABLE (rtm_table 0).
    """
    try:
        kind, op_flags = _OPERATIONS[op]
    except KeyError:
        raise NetlinkEncodeError(f"unknown route operation {op!r}") from None
    family, prefix, table, protocol, rtype, scope, priority, gateway, oif, rflags, hops = route
    size = _ADDRESS_LEN.get(family)
    if size is None:
        raise NetlinkEncodeError(f"route family {family} is neither AF_INET nor AF_INET6")
    length = prefix & 0xFF
    network = prefix >> 8
    if length > size * 8 or network >> (size * 8) or network & ~NETWORK_MASKS[size][length]:
        raise NetlinkEncodeError(f"prefix {prefix:#x} is not a family {family} prefix")
    parts = []
    if length:
        parts.append(_DST_HEAD[size] + network.to_bytes(size, "big"))
    rtm_table = table
    try:
        if table > 255:
            parts.append(_ATTR_U32.pack(8, _TABLE, table))
            rtm_table = 0
        if priority:
            parts.append(_ATTR_U32.pack(8, _PRIORITY, priority))
        if gateway:
            parts.append(_gateway(gateway, size))
        if oif:
            parts.append(_ATTR_U32.pack(8, _OIF, oif))
        if hops:
            parts.append(_encode_multipath(hops, size))
        body = b"".join(parts)
        return (
            _HEAD.pack(
                _HEAD_LEN + len(body),
                kind,
                op_flags | flags,
                seq & 0xFFFFFFFF,
                pid,
                family,
                length,
                0,
                0,
                rtm_table,
                protocol,
                _NOWHERE if op == _DEL else scope,
                rtype,
                rflags,
            )
            + body
        )
    except (struct.error, TypeError, OverflowError) as error:
        raise NetlinkEncodeError(f"route {route!r} does not fit rtmsg: {error}") from None


def encode_routes(changes: Iterable[RouteChange], first_seq: int, flags: int = _ACK) -> bytes:
    """All ``changes`` as one buffer, the i-th with sequence number ``first_seq + i``."""
    return b"".join(
        encode_route(op, route, first_seq + i, flags) for i, (op, route) in enumerate(changes)
    )


def encode_route_batches(
    changes: Sequence[RouteChange], first_seq: int, limit: int = 65536, flags: int = _ACK
) -> list[tuple[bytes, int]]:
    """``changes`` cut into sends of at most ``limit`` bytes: (buffer, messages in it) each.

    Sequence numbers run on from ``first_seq`` across the batches (modulo 2**32). A single
    message longer than ``limit`` still gets a batch of its own.
    """
    batches: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    size = 0
    seq = first_seq
    for op, route in changes:
        wire = encode_route(op, route, seq, flags)
        seq += 1
        if size + len(wire) > limit and parts:
            batches.append((b"".join(parts), len(parts)))
            parts, size = [], 0
        parts.append(wire)
        size += len(wire)
    if parts:
        batches.append((b"".join(parts), len(parts)))
    return batches


def _decode_multipath(data: bytes, start: int, end: int, size: int) -> tuple[NextHop, ...]:
    hops = []
    while end - start >= RTNH_LEN:
        length, flags, extra, oif = _RTNH.unpack_from(data, start)
        if length < RTNH_LEN or start + length > end:
            raise NetlinkDecodeError(f"rtnexthop of length {length} at {start} overruns {end}")
        gateway = b""
        pos, stop = start + RTNH_LEN, start + length
        while stop - pos >= 4:
            alen, kind = RTATTR.unpack_from(data, pos)
            if alen < 4 or pos + alen > stop:
                raise NetlinkDecodeError(f"next-hop attribute of length {alen} overruns")
            if kind & 0x3FFF == RouteAttr.GATEWAY:
                if alen - 4 != size:
                    raise NetlinkDecodeError(f"next-hop gateway of {alen - 4} octets")
                gateway = data[pos + 4 : pos + alen]
            elif kind & 0x3FFF == RouteAttr.VIA:
                gateway = _via(data, pos, alen)
            pos += (alen + 3) & ~3
        hops.append(NextHop(gateway, oif, flags, extra + 1))
        start += (length + 3) & ~3
    return tuple(hops)


def _via(data: bytes, pos: int, alen: int) -> bytes:
    """The address of an RTA_VIA at ``pos`` (after its 2-octet address family)."""
    if alen - 6 not in (4, 16):
        raise NetlinkDecodeError(f"RTA_VIA of {alen - 4} octets")
    return data[pos + 6 : pos + alen]


def decode_route(data: bytes, start: int, end: int, flags: int = 0) -> KernelRoute | Other:
    """The rtmsg payload ``data[start:end]`` as a route.

    ``Other`` for routes of other families and for source-specific (rtm_src_len > 0) routes,
    which kernel sync does not model.
    """
    del flags
    if end - start < RTMSG_LEN:
        raise NetlinkDecodeError(f"rtmsg payload of {end - start} bytes, needs 12")
    family, length, src_len, _, table, protocol, scope, rtype, rflags = RTMSG.unpack_from(
        data, start
    )
    size = 4 if family == AF_INET else 16 if family == AF_INET6 else 0
    if not size or src_len:
        return Other(data[start:end])
    if length > size * 8:
        raise NetlinkDecodeError(f"destination length {length} in family {family}")
    network = priority = oif = 0
    gateway = b""
    hops: tuple[NextHop, ...] = ()
    pos = start + RTMSG_LEN
    unpack = RTATTR.unpack_from
    while end - pos >= 4:
        alen, kind = unpack(data, pos)
        vend = pos + alen
        if alen < 4 or vend > end:
            raise NetlinkDecodeError(f"route attribute of length {alen} at {pos} overruns {end}")
        kind &= 0x3FFF
        if kind == 1:  # RTA_DST
            if alen - 4 != size:
                raise NetlinkDecodeError(f"RTA_DST of {alen - 4} octets in family {family}")
            if size == 4:
                (network,) = _U32BE.unpack_from(data, pos + 4)
            else:
                high, low = _U64BE2.unpack_from(data, pos + 4)
                network = (high << 64) | low
        elif kind == 5:  # RTA_GATEWAY
            if alen - 4 != size:
                raise NetlinkDecodeError(f"RTA_GATEWAY of {alen - 4} octets in family {family}")
            gateway = data[pos + 4 : vend]
        elif kind == 18:  # RTA_VIA (RFC 8950: an IPv6 gateway of an IPv4 route)
            gateway = _via(data, pos, alen)
        elif kind in (4, 6, 15):  # RTA_OIF, RTA_PRIORITY, RTA_TABLE
            if alen != 8:
                raise NetlinkDecodeError(f"route attribute {kind} of {alen - 4} octets")
            (value,) = U32.unpack_from(data, pos + 4)
            if kind == 4:
                oif = value
            elif kind == 6:
                priority = value
            else:
                table = value
        elif kind == 9:  # RTA_MULTIPATH
            hops = _decode_multipath(data, pos + 4, vend, size)
        pos += (alen + 3) & ~3
    prefix = ((network & NETWORK_MASKS[size][length]) << 8) | length
    return KernelRoute(
        family, prefix, table, protocol, rtype, scope, priority, gateway, oif, rflags, hops
    )


Decoder = Callable[[bytes, int, int, int], Body]
_DECODERS: dict[int, Decoder] = {
    MessageType.NEWROUTE: decode_route,
    MessageType.DELROUTE: decode_route,
    MessageType.ERROR: decode_ack,
    MessageType.DONE: decode_done,
    MessageType.NEWLINK: decode_link,
    MessageType.DELLINK: decode_link,
    MessageType.NEWADDR: decode_address,
    MessageType.DELADDR: decode_address,
}
_DECODERS = {int(kind): decoder for kind, decoder in _DECODERS.items()}


def parse_messages(data: bytes) -> list[Message]:
    """Every netlink message in ``data`` (one datagram) as ``(Header, body)``.

    Raises ``NetlinkDecodeError`` when a header is truncated or a length runs past the end.
    """
    messages: list[Message] = []
    total = len(data)
    offset = 0
    unpack = NLMSGHDR.unpack_from
    decoders = _DECODERS
    try:
        while offset < total:
            if total - offset < NLMSG_HDRLEN:
                raise NetlinkDecodeError(f"{total - offset} bytes left, too short for a header")
            length, kind, flags, seq, pid = unpack(data, offset)
            end = offset + length
            if length < NLMSG_HDRLEN or end > total:
                raise NetlinkDecodeError(f"message of length {length} at {offset} in {total}")
            decoder = decoders.get(kind)
            body = (
                decoder(data, offset + NLMSG_HDRLEN, end, flags)
                if decoder is not None
                else Other(data[offset + NLMSG_HDRLEN : end])
            )
            messages.append((Header(length, kind, flags, seq, pid), body))
            offset = (end + 3) & ~3
    except (struct.error, IndexError, ValueError) as error:
        if isinstance(error, NetlinkDecodeError):
            raise
        raise NetlinkDecodeError(f"malformed message at {offset}: {error}") from None
    return messages


def _address_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else f"0x{raw.hex()}"


def route_text(route: KernelRoute) -> str:
    """``route`` roughly as ``ip route`` prints it, for logs and test failures; never raises."""
    size = _ADDRESS_LEN.get(route.family, 16)
    network = (route.prefix >> 8) & ((1 << (size * 8)) - 1)
    words = [f"{_address_text(network.to_bytes(size, 'big'))}/{route.prefix & 0xFF}"]
    if route.type != RouteType.UNICAST:
        name = RouteType(route.type).name.lower() if 0 <= route.type < 12 else str(route.type)
        words.insert(0, name)
    if route.gateway:
        words.append(f"via {_address_text(route.gateway)}")
    if route.oif:
        words.append(f"dev #{route.oif}")
    words += [f"table {route.table}", f"proto {route.protocol}", f"metric {route.priority}"]
    for hop in route.multipath:
        gateway = f" via {_address_text(hop.gateway)}" if hop.gateway else ""
        words.append(f"nexthop{gateway} dev #{hop.oif} weight {hop.weight}")
    if route.flags:
        words.append(f"flags {route.flags:#x}")
    return " ".join(words)
