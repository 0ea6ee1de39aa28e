"""Netlink framing values: headers, acks, dump ends, links, addresses, and the dump requests.

The sans-I/O half of kernel sync that is not about routes. Bytes in, frozen values out: every
value is a ``NamedTuple`` (built, hashed and compared in C). Whatever bytes a decoder here is
fed, it raises nothing but ``NetlinkDecodeError``.

Data flow: ``route_messages.parse_messages`` walks a received buffer message by message and
hands each payload to the decoder its type names: ``decode_ack`` (NLMSG_ERROR, an ack when its
error is 0), ``decode_done`` (NLMSG_DONE), ``decode_link`` (RTM_NEWLINK / RTM_DELLINK) and
``decode_address`` (RTM_NEWADDR / RTM_DELADDR); routes are ``route_messages``' own. The other
way, ``encode_dump_request`` builds the RTM_GET* NLM_F_DUMP requests that ``netlink_socket``
sends. All integers in netlink headers are in host byte order; addresses are in network order.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kernel_sync.netlink_codes import (
    IFADDRMSG_LEN,
    IFINFOMSG_LEN,
    NLMSG_HDRLEN,
    NLMSGERR_LEN,
    AckFlag,
    AddressAttr,
    AddressFamily,
    ExtAckAttr,
    GetFlag,
    LinkAttr,
    LinkFlag,
    MessageFlag,
    MessageType,
    RouteAttr,
)


class NetlinkError(Exception):
    """Base of everything kernel sync's codec raises."""


class NetlinkDecodeError(NetlinkError):
    """Bytes that are not a well-formed netlink message (the kernel's fault, or a test's)."""


class NetlinkEncodeError(NetlinkError, ValueError):
    """A value that cannot be put into a netlink message (the caller's fault)."""


class Header(NamedTuple):
    """struct nlmsghdr: ``length`` covers header and payload; ``flags`` are NLM_F_* bits."""

    length: int
    type: int
    flags: int
    seq: int
    pid: int


class Ack(NamedTuple):
    """An NLMSG_ERROR: ``error`` is the positive errno, 0 for a plain ack.

    ``seq`` and ``type`` are those of the request it answers (from the echoed header);
    ``message`` and ``offset`` are the extended-ack text and attribute offset, when the socket
    asked for them (NETLINK_EXT_ACK) and the kernel said something.
    """

    error: int
    seq: int
    type: int
    message: str = ""
    offset: int = 0


class Done(NamedTuple):
    """An NLMSG_DONE, the end of a dump; ``error`` is the positive errno the dump ended with."""

    error: int = 0
    message: str = ""


class Other(NamedTuple):
    """A message kernel sync does not read (a type, or a family, it has no decoder for)."""

    payload: bytes


class Link(NamedTuple):
    """A network device from RTM_NEWLINK / RTM_DELLINK: ifindex, name, IFF_* flags, MTU."""

    ifindex: int
    name: str
    flags: int
    mtu: int = 0

    @property
    def is_up(self) -> bool:
        """Administratively up (IFF_UP)."""
        return bool(self.flags & LinkFlag.UP)

    @property
    def has_carrier(self) -> bool:
        """Up with a carrier (IFF_LOWER_UP): routes through it can forward."""
        return bool(self.flags & LinkFlag.LOWER_UP)


class Address(NamedTuple):
    """An interface address from RTM_NEWADDR / RTM_DELADDR.

    ``address`` is the local address in network order (4 or 16 octets); ``flags`` are IFA_F_*
    (the 32-bit IFA_FLAGS when present); ``scope`` is RT_SCOPE_*.
    """

    family: int
    ifindex: int
    address: bytes
    prefix_len: int
    flags: int = 0
    scope: int = 0
    label: str = ""


NLMSGHDR = struct.Struct("=IHHII")
RTATTR = struct.Struct("=HH")
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
_DUMP_FLAGS = MessageFlag.REQUEST | GetFlag.DUMP
_ATTR_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_ADDRESS_LEN: dict[int, int] = {AddressFamily.INET: 4, AddressFamily.INET6: 16}


def attributes(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(type, value start, value end) of each rtattr in ``data[start:end]``.

    Raises ``NetlinkDecodeError`` for an attribute shorter than its header or running past
    ``end``; fewer than 4 bytes left over (alignment padding) are ignored.
    """
    found: list[tuple[int, int, int]] = []
    unpack = RTATTR.unpack_from
    while end - start >= 4:
        length, kind = unpack(data, start)
        if length < 4 or start + length > end:
            raise NetlinkDecodeError(f"attribute of length {length} at {start} overruns {end}")
        found.append((kind & _ATTR_TYPE_MASK, start + 4, start + length))
        start += (length + 3) & ~3
    return found


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].split(b"\0", 1)[0].decode("utf-8", "replace")


def _ext_ack(data: bytes, start: int, end: int) -> tuple[str, int]:
    message, offset = "", 0
    for kind, vstart, vend in attributes(data, start, end):
        if kind == ExtAckAttr.MSG:
            message = _text(data, vstart, vend)
        elif kind == ExtAckAttr.OFFS and vend - vstart >= 4:
            (offset,) = U32.unpack_from(data, vstart)
    return message, offset


def decode_ack(data: bytes, start: int, end: int, flags: int) -> Ack:
    """The NLMSG_ERROR payload ``data[start:end]``; ``flags`` are its header's."""
    if end - start < NLMSGERR_LEN:
        raise NetlinkDecodeError(f"NLMSG_ERROR payload of {end - start} bytes, needs 20")
    (error,) = I32.unpack_from(data, start)
    length, kind, _, seq, _ = NLMSGHDR.unpack_from(data, start + 4)
    if not flags & AckFlag.ACK_TLVS:
        return Ack(-error, seq, kind)
    # The echoed request is whole unless capped (NETLINK_CAP_ACK) or the ack is a plain one.
    tlvs = start + NLMSGERR_LEN
    if not flags & AckFlag.CAPPED and error:
        tlvs = start + 4 + ((length + 3) & ~3)
    if tlvs > end:
        raise NetlinkDecodeError(f"echoed request of {length} bytes overruns the NLMSG_ERROR")
    message, offset = _ext_ack(data, tlvs, end)
    return Ack(-error, seq, kind, message, offset)


def decode_done(data: bytes, start: int, end: int, flags: int) -> Done:
    """The NLMSG_DONE payload: an int error (may be absent), then extended-ack attributes."""
    if end - start < 4:
        return Done()
    (error,) = I32.unpack_from(data, start)
    if flags & AckFlag.ACK_TLVS:
        return Done(-error, _ext_ack(data, start + 4, end)[0])
    return Done(-error)


def decode_link(data: bytes, start: int, end: int, flags: int) -> Link:
    """An ifinfomsg and its attributes: the ifindex, IFLA_IFNAME, the flags and IFLA_MTU."""
    del flags
    if end - start < IFINFOMSG_LEN:
        raise NetlinkDecodeError(f"ifinfomsg payload of {end - start} bytes, needs 16")
    _, _, index, link_flags, _ = _IFINFOMSG.unpack_from(data, start)
    name, mtu = "", 0
    for kind, vstart, vend in attributes(data, start + IFINFOMSG_LEN, end):
        if kind == LinkAttr.IFNAME:
            name = _text(data, vstart, vend)
        elif kind == LinkAttr.MTU:
            if vend - vstart != 4:
                raise NetlinkDecodeError(f"IFLA_MTU of {vend - vstart} bytes")
            (mtu,) = U32.unpack_from(data, vstart)
    return Link(index, name, link_flags, mtu)


def decode_address(data: bytes, start: int, end: int, flags: int) -> Address | Other:
    """An ifaddrmsg and its attributes; ``Other`` for families other than IPv4 and IPv6."""
    del flags
    if end - start < IFADDRMSG_LEN:
        raise NetlinkDecodeError(f"ifaddrmsg payload of {end - start} bytes, needs 8")
    family, prefix_len, addr_flags, scope, index = _IFADDRMSG.unpack_from(data, start)
    size = _ADDRESS_LEN.get(family)
    if size is None:
        return Other(data[start:end])
    local, address, label = b"", b"", ""
    for kind, vstart, vend in attributes(data, start + IFADDRMSG_LEN, end):
        if kind in (AddressAttr.LOCAL, AddressAttr.ADDRESS):
            if vend - vstart != size:
                raise NetlinkDecodeError(f"address of {vend - vstart} bytes in family {family}")
            if kind == AddressAttr.LOCAL:
                local = data[vstart:vend]
            else:
                address = data[vstart:vend]
        elif kind == AddressAttr.FLAGS and vend - vstart >= 4:
            (addr_flags,) = U32.unpack_from(data, vstart)
        elif kind == AddressAttr.LABEL:
            label = _text(data, vstart, vend)
    if prefix_len > size * 8:
        raise NetlinkDecodeError(f"address prefix length {prefix_len} in family {family}")
    # IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point
    # links and the same as IFA_LOCAL elsewhere (IPv6 sends only IFA_ADDRESS).
    return Address(family, index, local or address, prefix_len, addr_flags, scope, label)


def encode_dump_request(
    message_type: MessageType,
    seq: int,
    family: int = AddressFamily.UNSPEC,
    *,
    table: int = 0,
    protocol: int = 0,
    pid: int = 0,
) -> bytes:
    """An RTM_GETROUTE, RTM_GETLINK or RTM_GETADDR request with NLM_F_DUMP.

    ``table`` and ``protocol`` (routes only, 0 for any) are filters the kernel applies when the
    socket has NETLINK_GET_STRICT_CHK set; tables above 255 go in RTA_TABLE. The header fields
    the strict checker requires to be zero are zero.
    """
    attrs = b""
    if message_type == MessageType.GETROUTE:
        rtm_table = table if table < 256 else 0
        if table > 255:
            attrs = RTATTR.pack(8, RouteAttr.TABLE) + U32.pack(table)
        body = RTMSG.pack(family, 0, 0, 0, rtm_table, protocol, 0, 0, 0) + attrs
    elif message_type == MessageType.GETLINK:
        body = _IFINFOMSG.pack(family, 0, 0, 0, 0)
    elif message_type == MessageType.GETADDR:
        body = _IFADDRMSG.pack(family, 0, 0, 0, 0)
    else:
        raise NetlinkEncodeError(f"no dump request for message type {message_type}")
    length = NLMSG_HDRLEN + len(body)
    return NLMSGHDR.pack(length, message_type, _DUMP_FLAGS, seq & 0xFFFFFFFF, pid) + body
