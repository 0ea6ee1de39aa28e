"""Fast reading of route dumps: runs of same-shaped RTM_NEWROUTE messages unpacked by struct in C.

A dump datagram holds hundreds of route messages, and in a table that Myna or Felix filled most
of them have the same shape: the same length and the same attributes in the same order (say
RTA_TABLE, RTA_DST, RTA_PRIORITY, RTA_GATEWAY, RTA_OIF), only the values differ. Walking every
attribute in Python costs about half a microsecond each; so, after decoding one message the
ordinary way (``route_messages.decode_route``), ``parse_route_dump`` compiles that message's
shape into one ``struct.Struct`` spanning the whole message (a ``Layout``, cached by shape) and
reads the following messages with ``Struct.iter_unpack``. Each row is checked against the
shape (length, type, flags, sequence number, family, prefix lengths, every attribute header);
the first row that differs, and every multipath route, goes back to the ordinary decoder, which
may learn a new shape. The result is the same list of routes ``parse_messages`` would give, in
the same order (a property test holds the two to that).

Data flow: ``netlink_socket.dump_routes`` receives a datagram, calls ``parse_route_dump`` and
gets a ``DumpPart``: the routes, the end marker if this datagram ends the dump, whether any
message carried NLM_F_DUMP_INTR, and the error acks. It raises nothing but
``NetlinkDecodeError``.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any, NamedTuple

from kernel_sync.netlink_codes import NLMSG_HDRLEN, RTMSG_LEN, MessageFlag, MessageType, RouteAttr
from kernel_sync.netlink_messages import (
    NLMSGHDR,
    Ack,
    Done,
    NetlinkDecodeError,
    attributes,
)
from kernel_sync.route_messages import (
    NETWORK_MASKS,
    KernelRoute,
    Message,
    decode_route,
    parse_messages,
)


class DumpPart(NamedTuple):
    """What one datagram of a route dump held."""

    routes: list[KernelRoute]
    done: Done | None  # the NLMSG_DONE, if this datagram ends the dump
    interrupted: bool  # some message carried NLM_F_DUMP_INTR: the dump must be redone
    errors: list[Ack]  # NLMSG_ERROR replies with a non-zero error (the dump failed)


class Layout(NamedTuple):
    """One message shape compiled for ``iter_unpack``; see the module docstring."""

    unpacker: struct.Struct  # the whole message, padding included
    fixed: itemgetter[tuple[int, ...]]  # fields every row of a run must repeat
    pick: itemgetter[tuple[Any, ...]]  # dst, table, protocol, type, scope, metric, gw, oif, flags


_NEWROUTE = int(MessageType.NEWROUTE)
_DONE = int(MessageType.DONE)
_ERROR = int(MessageType.ERROR)
_DUMP_INTR = int(MessageFlag.DUMP_INTR)
_U32_ATTRS = {int(RouteAttr.TABLE), int(RouteAttr.PRIORITY), int(RouteAttr.OIF)}
_ADDRESS_ATTRS = {int(RouteAttr.DST), int(RouteAttr.GATEWAY)}
_MULTIPATH = int(RouteAttr.MULTIPATH)
# Field numbers in an unpacked row: nlmsghdr (0-4), then rtmsg (5-13).
_LEN, _TYPE, _FLAGS, _SEQ = 0, 1, 2, 3
_FAMILY, _DST_LEN, _SRC_LEN, _RTM_TABLE, _PROTOCOL, _SCOPE, _RTYPE, _RTM_FLAGS = (
    5, 6, 7, 9, 10, 11, 12, 13,
)  # fmt: skip
_MAX_LAYOUTS = 256
_layouts: dict[tuple[int, ...], Layout | None] = {}


def _compile(data: bytes, start: int, end: int) -> Layout | None:
    """The layout of the route message ``data[start:end]``; None when it has RTA_MULTIPATH."""
    found = attributes(data, start + NLMSG_HDRLEN + RTMSG_LEN, end)
    family = data[start + NLMSG_HDRLEN]
    key = (end - start, family, *(kind for kind, _, _ in found), *(e - s for _, s, e in found))
    if key in _layouts:
        return _layouts[key]
    size = 4 if family == 2 else 16
    fmt = ["=IHHIIBBBBBBBBI"]
    fields = 14
    fixed = [_LEN, _TYPE, _FLAGS, _SEQ, _FAMILY, _DST_LEN, _SRC_LEN]
    position: dict[int, int] = {}
    built = NLMSG_HDRLEN + RTMSG_LEN
    layout: Layout | None = None
    for kind, vstart, vend in found:
        width = vend - vstart
        fixed += [fields, fields + 1]
        fields += 2
        if kind in _ADDRESS_ATTRS and width == size:
            fmt.append(f"HH{size}s")
        elif kind in _U32_ATTRS and width == 4:
            fmt.append("HHI")
        else:
            fmt.append(f"HH{width}x")
            fields -= 1
        position[kind] = fields
        fields += 1
        fmt.append("x" * (-width % 4))
        built += 4 + width + (-width % 4)
    stride = (end - start + 3) & ~3
    if built == stride and all(kind != _MULTIPATH for kind, _, _ in found):
        empty = fields  # the trailing zero-width "0s": b"" for an absent address
        zero = _SRC_LEN  # 0 in every row of a run: the value of an absent u32
        layout = Layout(
            struct.Struct("".join(fmt) + "0s"),
            itemgetter(*fixed),
            itemgetter(
                position.get(RouteAttr.DST, empty),
                position.get(RouteAttr.TABLE, _RTM_TABLE),
                _PROTOCOL,
                _RTYPE,
                _SCOPE,
                position.get(RouteAttr.PRIORITY, zero),
                position.get(RouteAttr.GATEWAY, empty),
                position.get(RouteAttr.OIF, zero),
                _RTM_FLAGS,
            ),
        )
    if len(_layouts) >= _MAX_LAYOUTS:
        _layouts.clear()
    _layouts[key] = layout
    return layout


def _run(data: bytes, start: int, end: int, layout: Layout, routes: list[KernelRoute]) -> int:
    """Read the rows after the message ``data[start:end]`` while they have its shape.

    Returns the offset after the last row read.
    """
    unpacker, fixed, pick = layout
    stride = unpacker.size
    offset = start + stride
    count = (len(data) - offset) // stride
    if count <= 0:
        return offset
    first = unpacker.unpack_from(data[start:end].ljust(stride, b"\0"))
    expected = fixed(first)
    family, dst_len = first[_FAMILY], first[_DST_LEN]
    mask = NETWORK_MASKS[4 if family == 2 else 16][dst_len]
    new, from_bytes = tuple.__new__, int.from_bytes
    append = routes.append
    for row in unpacker.iter_unpack(memoryview(data)[offset : offset + count * stride]):
        if fixed(row) != expected:
            break
        dst, table, protocol, rtype, scope, metric, gateway, oif, flags = pick(row)
        prefix = ((from_bytes(dst, "big") & mask) << 8) | dst_len
        append(
            new(
                KernelRoute,
                (family, prefix, table, protocol, rtype, scope, metric, gateway, oif, flags, ()),
            )
        )
        offset += stride
    return offset


def parse_route_dump(data: bytes) -> DumpPart:
    """The routes and the end marker in one datagram of an RTM_GETROUTE dump (see module doc).

    Messages other than routes, NLMSG_DONE and NLMSG_ERROR are skipped.
    """
    routes: list[KernelRoute] = []
    done: Done | None = None
    interrupted = False
    errors: list[Ack] = []
    total = len(data)
    offset = 0
    try:
        while offset < total:
            if total - offset < NLMSG_HDRLEN:
                raise NetlinkDecodeError(f"{total - offset} bytes left, too short for a header")
            length, kind, flags = NLMSGHDR.unpack_from(data, offset)[:3]
            end = offset + length
            if length < NLMSG_HDRLEN or end > total:
                raise NetlinkDecodeError(f"message of length {length} at {offset} in {total}")
            interrupted = interrupted or bool(flags & _DUMP_INTR)
            if kind == _NEWROUTE:
                route = decode_route(data, offset + NLMSG_HDRLEN, end, flags)
                if type(route) is KernelRoute:
                    routes.append(route)
                    layout = _compile(data, offset, end)
                    if layout is not None:
                        offset = _run(data, offset, end, layout, routes)
                        continue
            elif kind in (_DONE, _ERROR):
                messages: list[Message] = parse_messages(data[offset:end])
                body = messages[0][1]
                if type(body) is Done:
                    done = body
                elif type(body) is Ack and body.error:
                    errors.append(body)
            offset = (end + 3) & ~3
    except (struct.error, IndexError, ValueError) as error:
        if isinstance(error, NetlinkDecodeError):
            raise
        raise NetlinkDecodeError(f"malformed dump message at {offset}: {error}") from None
    return DumpPart(routes, done, interrupted, errors)
