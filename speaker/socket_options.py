"""Linux socket options a BGP session needs: TCP-MD5 (RFC 2385), GTSM (RFC 5082), TTL, NODELAY.

``send_progress`` reads back what the kernel knows of a connection's sending (for RFC 9687).

Data flow: the transport creates sockets and calls these before ``connect`` (outgoing) or on
the listener and on each accepted socket (incoming). Python's ``socket`` module has no
constants or structures for TCP_MD5SIG and IP_MINTTL, so they are spelled out here from
``linux/tcp.h`` and ``linux/in.h`` (no maintained library wraps them).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
import termios

TCP_MD5SIG = 14  # linux/tcp.h
TCP_MD5SIG_MAXKEYLEN = 80
IP_MINTTL = 21  # linux/in.h
IPV6_MINHOPCOUNT = 73  # linux/in6.h
_SOCKADDR_STORAGE = 128
GTSM_TTL = 255


def _sockaddr(address: str) -> bytes:
    """A ``struct sockaddr_storage`` holding ``address`` (port 0), as the kernel lays it out."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + b"\x00\x00" + ip.packed
    else:
        raw = struct.pack("=H", socket.AF_INET6) + b"\x00\x00" + b"\x00" * 4 + ip.packed
    return raw.ljust(_SOCKADDR_STORAGE, b"\x00")


def md5_key_struct(peer: str, key: str) -> bytes:
    """``struct tcp_md5sig`` for ``peer`` with ``key``; an empty key removes it."""
    raw = key.encode()
    if len(raw) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError(
            f"TCP-MD5 password for {peer} is {len(raw)} octets; Linux takes at most 80 (config)"
        )
    # flags, prefixlen, keylen, ifindex, key
    return _sockaddr(peer) + struct.pack("=BBHI", 0, 0, len(raw), 0) + raw.ljust(80, b"\x00")


def set_md5_key(sock: socket.socket, peer: str, key: str) -> None:
    """Sign (and require signatures on) TCP segments to and from ``peer`` on ``sock``.

    On a listener this applies to connections it accepts from ``peer``; a v4 peer on an IPv6
    socket is keyed by its v4-mapped address.
    """
    if sock.family == socket.AF_INET6 and ipaddress.ip_address(peer).version == 4:
        peer = f"::ffff:{peer}"
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5_key_struct(peer, key))


def set_ttl(sock: socket.socket, ttl: int) -> None:
    """The TTL (hop limit) of the packets we send."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)


def set_gtsm(sock: socket.socket, hops: int) -> None:
    """RFC 5082: send with TTL 255 and drop what arrives with a TTL below 256 - ``hops``."""
    set_ttl(sock, GTSM_TTL)
    minimum = 256 - hops
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, minimum)
        # A v4-mapped peer on a v6 socket is filtered by the IPv4 option.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, minimum)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, minimum)


def tune(sock: socket.socket) -> None:
    """Small BGP messages go out at once; the listener's port can be rebound at restart."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_TCPI_BYTES_ACKED = 120  # offset of tcpi_bytes_acked in struct tcp_info (linux/tcp.h, 4.1+)


def send_progress(sock: socket.socket | None) -> tuple[int, int] | None:
    """(octets the peer has acknowledged so far, octets waiting in the kernel), or None.

    The transport compares two readings to see whether a peer still reads (RFC 9687): the
    first from TCP_INFO's ``tcpi_bytes_acked``, the second from SIOCOUTQ (written, not yet
    acknowledged). None when the socket cannot tell (closed, or a kernel before 4.1).
    """
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        waiting = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\x00\x00\x00\x00")
    except (OSError, ValueError):
        return None
    if len(info) < _TCPI_BYTES_ACKED + 8:
        return None
    acked: int = struct.unpack_from("=Q", info, _TCPI_BYTES_ACKED)[0]
    return acked, struct.unpack("=i", waiting)[0]
