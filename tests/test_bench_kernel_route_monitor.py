"""``bench.kernel_route_monitor``: the install rows' clock.

The route messages are written octet by octet from the rtnetlink layout (``struct nlmsghdr``,
``struct rtmsg``, ``struct rtattr``: linux/netlink.h, linux/rtnetlink.h; RFC 3549 2.3), not by
Myna's encoder. The last test has a real kernel tell a running monitor of routes added with
iproute2 in a namespace of its own.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbed import Topology

from bench import kernel_route_monitor as monitor

REPO = Path(__file__).resolve().parents[1]
RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWLINK = 24, 25, 16
RTA_DST, RTA_OIF, RTA_TABLE, RTA_PRIORITY = 1, 4, 15, 6


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 octets."""
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def route_message(
    kind: int,
    family: int,
    dst: bytes | None,
    dst_len: int,
    attrs_first: bytes = b"",
    *,
    table: int = 254,
    rtype: int = 1,
) -> bytes:
    """nlmsghdr + rtmsg (proto 12; main table, unicast unless told) + the kernel's attributes."""
    rtmsg = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, 12, 0, rtype, 0)
    body = attrs_first + attr(RTA_TABLE, struct.pack("=I", 254))
    if dst is not None:
        body += attr(RTA_DST, dst)
    body += attr(RTA_PRIORITY, struct.pack("=I", 20)) + attr(RTA_OIF, struct.pack("=I", 2))
    header = struct.pack("=IHHII", 16 + len(rtmsg) + len(body), kind, 0, 0, 0)
    return header + rtmsg + body


def v4(text: str, length: int) -> int:
    return int.from_bytes(socket.inet_aton(text), "big") << 8 | length


def test_prefixes_in_reads_new_and_deleted_ipv4_routes_only() -> None:
    added = route_message(RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.1"), 32)
    gone = route_message(RTM_DELROUTE, socket.AF_INET, socket.inet_aton("198.18.4.0"), 26)
    six = route_message(
        RTM_NEWROUTE, socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "2001:db8::"), 64
    )
    default = route_message(RTM_NEWROUTE, socket.AF_INET, None, 0)  # no RTA_DST
    link = struct.pack("=IHHII", 32, RTM_NEWLINK, 0, 0, 0) + b"\0" * 16
    # a blackhole, or a route in another table, is no installed route of the daemon's
    blackhole = route_message(
        RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.2"), 32, rtype=6
    )
    elsewhere = route_message(
        RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.3"), 32, table=100
    )
    # several messages in one datagram, each aligned to 4 octets
    datagram = added + gone + six + default + link + blackhole + elsewhere
    assert monitor.prefixes_in(datagram) == [
        (True, v4("198.18.64.1", 32)),
        (False, v4("198.18.4.0", 26)),
    ]


def test_destination_is_found_wherever_the_attribute_is() -> None:
    # RTA_DST after an attribute the fixed offset does not expect
    message = route_message(
        RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.19.0.64"), 26,
        attrs_first=attr(RTA_PRIORITY, struct.pack("=I", 7)),
    )  # fmt: skip
    assert monitor.destination(message, 0, len(message)) == v4("198.19.0.64", 26)
    assert monitor.prefixes_in(message) == [(True, v4("198.19.0.64", 26))]


def feed(datagrams: list[bytes]) -> socket.socket:
    """A datagram socket with ``datagrams`` already queued to it."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for datagram in datagrams:
        writer.send(datagram)
    writer.close()
    return reader


def test_watch_ends_at_the_message_that_completes_the_set() -> None:
    wanted = {v4(f"198.18.64.{i}", 32) for i in range(3)}
    new = [route_message(RTM_NEWROUTE, socket.AF_INET, socket.inet_aton(f"198.18.64.{i}"), 32)
           for i in range(3)]  # fmt: skip
    other = route_message(RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.9.9"), 32)
    deleted = route_message(RTM_DELROUTE, socket.AF_INET, socket.inet_aton("198.18.64.0"), 32)
    # .0 comes, goes and comes back: the set is complete only at its second NEWROUTE
    sock = feed([new[0], other, new[1], deleted, new[2], new[0], other])
    seen = monitor.watch(sock, wanted)
    assert seen.read == 6
    assert seen.first <= seen.last
    assert sock.recv(65536) == other  # what came after the completing message is left unread


def test_watch_does_not_count_a_route_it_was_told_of_twice() -> None:
    wanted = {v4("198.18.64.0", 32), v4("198.18.64.1", 32)}
    again = route_message(RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.0"), 32)
    last = route_message(RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.1"), 32)
    blackhole = route_message(
        RTM_NEWROUTE, socket.AF_INET, socket.inet_aton("198.18.64.1"), 32, rtype=6
    )
    seen = monitor.watch(feed([again, again, blackhole, again, last]), wanted)
    assert seen.read == 5


def test_monitor_figures_reads_the_complete_line() -> None:
    line = "complete 912.500000 first 911.250000 read 100002 backlog 28288"
    assert monitor.monitor_figures(line) == {
        "last": 912.5, "first": 911.25, "read": 100002.0, "backlog": 28288.0,
    }  # fmt: skip


def _wait_for(log: Path, word: str, process: subprocess.Popen[bytes], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
            if line.startswith(word):
                return line
        if process.poll() is not None and word not in log.read_text(errors="replace"):
            pytest.fail(f"the monitor exited: {log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {word!r} line within {seconds} s: {log.read_text(errors='replace')}")
        time.sleep(0.02)


def test_the_monitor_stamps_routes_a_real_kernel_adds(tmp_path: Path) -> None:
    prefixes = [f"198.18.64.{i}" for i in range(200)]
    wanted = tmp_path / "wanted.txt"
    wanted.write_text("".join(f"{v4(p, 32)}\n" for p in prefixes))
    with Topology() as topology:
        node = topology.add_host("node")
        log = tmp_path / "monitor.log"
        process = node.popen(
            sys.executable, "-m", "bench.kernel_route_monitor",
            "--netns", node.netns, "--wanted", str(wanted),
            log=log, cwd=REPO,
        )  # fmt: skip
        _wait_for(log, "ready", process, 30)
        before = time.monotonic()
        # all but the last, then one not wanted, then the last: only the last completes it
        batch = "".join(f"route add {p}/32 dev eth0 proto 12\n" for p in prefixes[:-1])
        batch += (
            f"route add 198.18.65.1/32 dev eth0 proto 12\nroute add {prefixes[-1]}/32 dev eth0\n"
        )
        subprocess.run(["ip", "-n", node.netns, "-batch", "-"], input=batch.encode(), check=True)
        after = time.monotonic()
        figures = monitor.monitor_figures(_wait_for(log, "complete ", process, 30))
        assert process.wait(timeout=30) == 0
    assert before <= figures["first"] <= figures["last"] <= after + 1.0
    assert figures["read"] == 201
