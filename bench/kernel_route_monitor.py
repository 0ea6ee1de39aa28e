"""When the last of a set of routes reached a namespace's kernel: a stamp, not a poll.

Role: ``bench.mesh_scale``'s ``install-100k`` row used to dump the node's routes every 50 ms
until all 100,000 were there; a dump of them takes about 0.15 s in Python, so its time was the
daemon's plus up to 0.2 s of the harness's, which hid a 15 % difference between two daemons.
This process instead listens to the namespace's IPv4 route notifications (RTMGRP_IPV4_ROUTE)
and stamps each datagram with CLOCK_MONOTONIC (shared by every namespace, as the clients' t0
is) as it reads it. Once every wanted prefix has been added (and not deleted since), it prints
``complete LAST first FIRST read DATAGRAMS backlog OCTETS`` and exits: LAST is when the kernel
told of the last one, FIRST of the first.

    .venv/bin/python -m bench.kernel_route_monitor --netns NS --wanted FILE

``FILE`` holds the wanted prefixes as ``network << 8 | length`` ints, one per line. It prints
``ready`` once subscribed (start the daemon's work after that), and ``overflow`` (exit 1) if
the kernel dropped notifications (ENOBUFS): the 256 MiB receive buffer holds far more than a
row's routes (100,000 take about 20 MiB), so that would mean something else flooded it.

What keeps the stamp near the kernel's work: the loop does no more than read a datagram,
stamp it and look at a few fixed places in it. The kernel writes ``RTA_TABLE`` first and
``RTA_DST`` second in every IPv4 route it announces (``fib_dump_info``), so the destination is
at a fixed offset; a message laid out otherwise is walked attribute by attribute. Only
unicast routes of the main table count (a blackhole for a wanted prefix is not the daemon's
route installed). It drains a
backlog at about 200,000 messages a second here (100,000 queued while it was stopped: 0.45 to
0.52 s), about Myna's own netlink write rate (``bench.kernel_bench``: 180,000 routes/s), so
it can fall behind while a daemon writes at full speed, and it runs at nice 19 on the peers'
CPU (at nice 0 it took CPU from the peer still writing its UPDATEs, and install-100k's
time went from about 1.1 s to 1.5 s); the ``complete`` line says by how much
it was behind near the end (``backlog``: octets still queued to it, sampled every 128 reads;
a notification of one /32 takes about 200 octets of it, so the last stamp is late by at most
backlog / 200 + 128 reads, about 5 µs each: 64 KiB is under 2.5 ms).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import NamedTuple

from kernel_sync.netlink_codes import (
    NLMSG_HDRLEN,
    MessageType,
    MulticastGroupMask,
    RouteAttr,
    RouteTable,
    RouteType,
)
from kernel_sync.netlink_socket import open_netlink_socket

RCVBUF = 256 << 20
BEHIND_OCTETS = 64 << 10  # a backlog past which a row's time may hold the monitor's own lag
_SO_MEMINFO = 55  # not in Python's socket module
_RTMSG_LEN = 12  # struct rtmsg
_ATTRS = NLMSG_HDRLEN + _RTMSG_LEN
_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")
_NEW, _DEL = int(MessageType.NEWROUTE), int(MessageType.DELROUTE)
_TABLE, _DST = int(RouteAttr.TABLE), int(RouteAttr.DST)
_RTM_TABLE, _RTM_TYPE = 4, 7  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type
_MAIN, _UNICAST = int(RouteTable.MAIN), int(RouteType.UNICAST)
# RTA_TABLE (4 + 4 octets), then RTA_DST's header: where an IPv4 destination's address sits
_FIXED_DST = _ATTRS + 8 + 4


def destination(message: bytes | memoryview, offset: int, length: int) -> int | None:
    """The IPv4 route message's ``network << 8 | length``, None when it has no destination."""
    dst_len = message[offset + NLMSG_HDRLEN + 1]
    end = offset + length
    at = offset + _ATTRS
    while at + 4 <= end:
        size, kind = _ATTR.unpack_from(message, at)
        if size < 4:
            return None
        if kind == _DST and size >= 8:
            return int.from_bytes(message[at + 4 : at + 8], "big") << 8 | dst_len
        at += (size + 3) & ~3
    return None


def prefixes_in(datagram: bytes) -> list[tuple[bool, int]]:
    """(added, prefix) for every IPv4 unicast route message of the main table in one datagram.

    A blackhole or another table's route for a wanted prefix does not make it installed.
    """
    found: list[tuple[bool, int]] = []
    offset = 0
    while offset + NLMSG_HDRLEN <= len(datagram):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(datagram, offset)
        if length < NLMSG_HDRLEN:
            break
        rtmsg = offset + NLMSG_HDRLEN
        if (
            kind in (_NEW, _DEL)
            and length >= _ATTRS
            and datagram[rtmsg] == socket.AF_INET
            and datagram[rtmsg + _RTM_TABLE] == _MAIN
            and datagram[rtmsg + _RTM_TYPE] == _UNICAST
        ):
            prefix = destination(datagram, offset, length)
            if prefix is not None:
                found.append((kind == _NEW, prefix))
        offset += (length + 3) & ~3
    return found


class Watched(NamedTuple):
    """What ``watch`` saw: the first and last wanted route's stamps, and how far behind it was."""

    first: float
    last: float
    read: int  # datagrams read
    backlog: int  # octets queued to the socket when last sampled, at most 128 reads before the end


def _queued_octets(sock: socket.socket) -> int:
    """SK_MEMINFO_RMEM_ALLOC: what the kernel has queued to the socket and we have not read."""
    return int(struct.unpack_from("=I", sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 36))[0])


def watch(sock: socket.socket, wanted: set[int]) -> Watched:
    """Read until every wanted prefix is in (added, and not deleted since)."""
    missing = set(wanted)
    buffer = bytearray(65536)
    view = memoryview(buffer)
    monotonic = time.monotonic
    recv_into = sock.recv_into
    from_bytes = int.from_bytes
    new_route = struct.pack("=H", _NEW)  # nlmsg_type, in host order
    table_attr, dst_attr = _ATTR.pack(8, _TABLE), _ATTR.pack(8, _DST)
    at_dst = _FIXED_DST
    read = 0
    backlog = 0
    first: float | None = None
    while True:
        size = recv_into(buffer)
        stamp = monotonic()
        read += 1
        if not read & 127:
            backlog = _queued_octets(sock)
        # the common case: one message in the kernel's layout (RTA_TABLE, then RTA_DST)
        if (
            buffer[4:6] == new_route
            and buffer[NLMSG_HDRLEN] == socket.AF_INET
            and buffer[NLMSG_HDRLEN + _RTM_TABLE] == _MAIN
            and buffer[NLMSG_HDRLEN + _RTM_TYPE] == _UNICAST
            and from_bytes(view[0:4], sys.byteorder) == size
            and view[_ATTRS : _ATTRS + 4] == table_attr
            and view[_ATTRS + 8 : _ATTRS + 12] == dst_attr
        ):
            prefix = from_bytes(view[at_dst : at_dst + 4], "big") << 8 | buffer[NLMSG_HDRLEN + 1]
            if prefix in missing:
                missing.discard(prefix)
                if first is None:
                    first = stamp
                if not missing:
                    return Watched(first, stamp, read, backlog)
            continue
        for added, prefix in prefixes_in(bytes(view[:size])):
            if prefix not in wanted:
                continue
            if added:
                missing.discard(prefix)
                if first is None:
                    first = stamp
            else:
                missing.add(prefix)
        if not missing:
            assert first is not None
            return Watched(first, stamp, read, backlog)


def monitor_figures(line: str) -> dict[str, float]:
    """The ``complete LAST first FIRST read N backlog OCTETS`` line ``main`` prints, as a dict."""
    words = line.split()
    figures = {"last": float(words[1])}
    figures.update((words[i], float(words[i + 1])) for i in range(2, len(words) - 1, 2))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netns", required=True, help="the namespace whose kernel to watch")
    parser.add_argument("--wanted", type=Path, required=True, help="prefix ints, one per line")
    args = parser.parse_args(argv)
    wanted = {int(line) for line in args.wanted.read_text().split()}
    os.nice(19)  # the peers share its CPU: their UPDATEs must not wait behind it
    sock = open_netlink_socket(
        groups=int(MulticastGroupMask.IPV4_ROUTE), rcvbuf=RCVBUF, netns=args.netns
    )
    sock.setblocking(True)
    print("ready", flush=True)
    try:
        seen = watch(sock, wanted)
    except OSError as error:
        if error.errno == errno.ENOBUFS:
            print("overflow: the kernel dropped route notifications", flush=True)
            return 1
        raise
    print(
        f"complete {seen.last:.6f} first {seen.first:.6f} read {seen.read} backlog {seen.backlog}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
