"""The UDP sockets of BFD: where packets are received (per family and hop mode) and sent from.

Data flow: the engine opens one receiving socket per (address family, hop mode) in use, bound
to UDP 3784 (single hop, RFC 5881 4) or 4784 (multihop, RFC 5883 5) on every address, asking
the kernel for each datagram's TTL / hop limit and its destination address and interface
(``IP_RECVTTL``/``IP_PKTINFO``, ``IPV6_RECVHOPLIMIT``/``IPV6_RECVPKTINFO``); ``receive``
returns them with the payload. Each session sends from a socket of its own, bound to a source
port in 49152-65535 unused by any other session (RFC 5881 4), with TTL / hop limit 255 (RFC
5881 5; for multihop too, which lets a peer check a minimum), and for a single-hop session
with an interface, bound to that device.
"""

from __future__ import annotations

import errno
import random
import socket
import struct
from dataclasses import dataclass

from bfd.demux import canonical
from bfd.wire_codes import SINGLE_HOP_TTL, SOURCE_PORT_MAX, SOURCE_PORT_MIN, HopMode

# Linux values missing from Python's socket module.
IP_PKTINFO = 8
IP_RECVTTL = 12
_ANCILLARY = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(32)
_RECEIVE_BUFFER = 1 << 20  # a burst of 200 sessions' packets after a stall fits
_MAX_DATAGRAM = 512
_TTL_MESSAGES = {(socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)}


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received UDP payload and where it came from and arrived."""

    payload: bytes
    source: str
    destination: str
    ifindex: int
    ttl: int | None  # None: the kernel did not say (then the TTL rules cannot pass)


def open_receiver(family: socket.AddressFamily, mode: HopMode) -> socket.socket:
    """A non-blocking socket receiving ``mode``'s port on every address of ``family``."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind(("::", mode.port))
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.bind(("0.0.0.0", mode.port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket) -> Datagram | None:
    """The next datagram waiting on ``sock``, or None when there is none."""
    try:
        payload, ancillary, _, address = sock.recvmsg(_MAX_DATAGRAM, _ANCILLARY)
    except (BlockingIOError, InterruptedError):
        return None
    ttl: int | None = None
    destination = ""
    ifindex = 0
    for level, kind, data in ancillary:
        if (level, kind) in _TTL_MESSAGES and len(data) >= 4:
            (ttl,) = struct.unpack("=i", data[:4])
        elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            ifindex, _, header_destination = struct.unpack("=i4s4s", data[:12])
            destination = socket.inet_ntop(socket.AF_INET, header_destination)
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 20:
            header_destination, ifindex = struct.unpack("=16sI", data[:20])
            destination = socket.inet_ntop(socket.AF_INET6, header_destination)
    return Datagram(payload, canonical(address[0]), canonical(destination or "::"), ifindex, ttl)


def open_sender(
    family: socket.AddressFamily,
    local: str | None,
    interface: str | None,
    ports_in_use: set[int],
    rng: random.Random,
) -> tuple[socket.socket, int]:
    """A socket bound to a source port no other session uses; the socket and its port.

    OSError when no port is free or the address or device cannot be bound: the configuration's
    or the host's fault, which the caller reports for the session.
    """
    span = SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1
    start = rng.randrange(span)
    for step in range(span):
        port = SOURCE_PORT_MIN + (start + step) % span
        if port in ports_in_use:
            continue
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, SINGLE_HOP_TTL)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, SINGLE_HOP_TTL)
            if interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((local or any_address, port))
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                continue  # another program has it: try the next
            raise
        return sock, port
    raise OSError(errno.EADDRINUSE, "no free UDP source port in 49152-65535")
