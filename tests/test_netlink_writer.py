"""The asyncio shell against a fake kernel: reply matching, lost replies, dump redo, overruns.

``FakeKernel`` stands in for rtnetlink on one end of a Unix datagram socket pair, with the two
properties the writer relies on: a send is processed whole, in order, before ``send`` returns
(its replies are already queued), and a failing message is answered whether or not it asked
for an ack. It can also drop replies and report ENOBUFS, as a full receive buffer does. The
real kernel is exercised in test_netlink_kernel.py.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable

import pytest

from kernel_sync.netlink_codes import MessageFlag, MessageType, NewFlag, RouteType
from kernel_sync.netlink_messages import Address, Header, Link, NetlinkError
from kernel_sync.netlink_socket import (
    DumpInterruptedError,
    Monitor,
    dump_addresses,
    dump_links,
    dump_routes,
)
from kernel_sync.route_messages import (
    KernelRoute,
    RouteChange,
    RouteOp,
    encode_route,
    parse_messages,
)
from kernel_sync.route_writer import AckMode, Advice, RouteWriter, advise

V4 = socket.AF_INET


def host_route(i: int) -> KernelRoute:
    return KernelRoute(V4, ((0xC6130000 + i) << 8) | 32, type=RouteType.BLACKHOLE)


def reply(seq: int, error: int) -> bytes:
    echoed = struct.pack("=IHHII", 36, MessageType.NEWROUTE, 0, seq, 0)
    return struct.pack("=IHHIIi", 36, MessageType.ERROR, 0x100, seq, 0, -error) + echoed


class FakeKernel:
    """A socket-like object: ``send`` applies route requests at once and queues the replies."""

    def __init__(self, reply_room: int | None = None) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.routes: set[KernelRoute] = set()
        self.sends: list[int] = []  # messages per send
        self.reply_room = reply_room  # queued replies beyond this are dropped (ENOBUFS)
        self.queued = 0
        self.overrun = False

    def fileno(self) -> int:
        return self.ours.fileno()

    def getsockopt(self, level: int, option: int) -> int:
        return self.ours.getsockopt(level, option)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()

    def recv_into(self, buffer: bytearray) -> int:
        if self.overrun:
            self.overrun = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        size = self.ours.recv_into(buffer)
        self.queued -= 1
        return size

    def send(self, data: bytes) -> int:
        messages = parse_messages(data)
        self.sends.append(len(messages))
        for header, route in messages:
            assert isinstance(route, KernelRoute)
            error = self._apply(header, route)
            if header.flags & MessageFlag.ACK or error:
                if self.reply_room is not None and self.queued >= self.reply_room:
                    self.overrun = True
                    continue
                self.theirs.send(reply(header.seq, error))
                self.queued += 1
        return len(data)

    def _apply(self, header: Header, route: KernelRoute) -> int:
        if header.type == MessageType.DELROUTE:
            matches = {r for r in self.routes if r.prefix == route.prefix}
            if not matches:
                return errno.ESRCH
            self.routes -= matches
            return 0
        if route.gateway == b"\xc6\x13\xff\xff":
            return errno.ENETUNREACH
        exists = any(r.prefix == route.prefix for r in self.routes)
        if exists and header.flags & NewFlag.EXCL:
            return errno.EEXIST
        self.routes = {r for r in self.routes if r.prefix != route.prefix} | {route}
        return 0


def mixed_changes(count: int) -> tuple[list[RouteChange], list[int]]:
    """Changes of which every 7th is a duplicate NEW, every 11th deletes a missing route."""
    changes: list[RouteChange] = []
    expected: list[int] = []
    for i in range(count):
        if i % 7 == 6 and expected[-1] == 0 and changes[-1].op is RouteOp.NEW:
            changes.append(RouteChange(RouteOp.NEW, host_route(i - 1)))
            expected.append(errno.EEXIST)
        elif i % 11 == 10:
            changes.append(RouteChange(RouteOp.DEL, host_route(100_000 + i)))
            expected.append(errno.ESRCH)
        elif i % 13 == 12:
            unreachable = host_route(i)._replace(type=1, gateway=b"\xc6\x13\xff\xff")
            changes.append(RouteChange(RouteOp.NEW, unreachable))
            expected.append(errno.ENETUNREACH)
        else:
            changes.append(RouteChange(RouteOp.NEW, host_route(i)))
            expected.append(0)
    return changes, expected


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", list(AckMode))
async def test_every_change_gets_its_own_outcome(mode: AckMode) -> None:
    kernel = FakeKernel()
    writer = RouteWriter(sock=kernel, ack_mode=mode, send_limit=8192)  # type: ignore[arg-type]
    try:
        changes, expected = mixed_changes(5000)
        first, second = writer.submit(changes[:2000]), writer.submit(changes[2000:])
        assert writer.pending == 5000
        results = await asyncio.gather(first, second)
        assert results[0].errors + results[1].errors == expected
        assert writer.pending == 0
        assert len(kernel.sends) > 10  # cut at 8 KiB
        counters = writer.counters
        assert counters["sent"] == 5000
        assert counters["succeeded"] == expected.count(0)
        assert counters["EEXIST"] == expected.count(errno.EEXIST)
        assert counters["unmatched_replies"] == 0
        failures = results[0].failures()
        assert {f.advice for f in failures} == {Advice.REPLACE, Advice.DONE, Advice.RETRY_LATER}
        assert all(c.op is RouteOp.REPLACE for c in results[0].resubmittable())
        assert len(results[0].resubmittable()) == expected[:2000].count(errno.EEXIST)
        # Nothing but the answers: one reply per send plus one per failure in LAST mode.
        replies = 5000 if mode is AckMode.EVERY else len(kernel.sends) + sum(map(bool, expected))
        assert counters["succeeded"] + counters["failed"] == 5000
        assert kernel.queued == 0
        assert replies >= len(kernel.sends)
    finally:
        writer.close()
        kernel.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", list(AckMode))
async def test_lost_replies_become_enobufs_and_nothing_hangs(mode: AckMode) -> None:
    kernel = FakeKernel(reply_room=3)
    # The window lets far more replies be outstanding than the fake buffer holds.
    writer = RouteWriter(  # type: ignore[arg-type]
        sock=kernel, ack_mode=mode, send_limit=4096, max_in_flight=100_000, sends_per_turn=1
    )
    try:
        changes = [RouteChange(RouteOp.DEL, host_route(i)) for i in range(300)]  # all ESRCH
        result = await asyncio.wait_for(writer.apply(changes), 10)
        assert set(result.errors) == {errno.ESRCH, errno.ENOBUFS}
        lost = result.errors.count(errno.ENOBUFS)
        assert writer.counters["lost"] == lost > 0
        assert writer.counters["overruns"] >= 1
        assert {f.advice for f in result.failures() if f.error == errno.ENOBUFS} == {Advice.RESYNC}
    finally:
        writer.close()
        kernel.close()


@pytest.mark.asyncio
async def test_unencodable_changes_fail_alone_and_close_fails_pending() -> None:
    kernel = FakeKernel()
    writer = RouteWriter(sock=kernel)  # type: ignore[arg-type]
    bad = host_route(1)._replace(gateway=b"\x01")  # a 1-octet gateway
    result = await writer.apply(
        [RouteChange(RouteOp.NEW, host_route(0)), RouteChange(RouteOp.NEW, bad)]
    )
    assert result.errors == [0, errno.EINVAL]
    assert "gateway of 1 octets" in result.messages[1]
    assert (await writer.apply([])).ok
    pending = writer.submit([RouteChange(RouteOp.NEW, host_route(5))])
    writer.close()
    with pytest.raises(NetlinkError):
        await pending
    with pytest.raises(NetlinkError):
        writer.submit([])
    kernel.close()


def test_advice() -> None:
    assert advise(RouteOp.NEW, 0) is Advice.DONE
    assert advise(RouteOp.DEL, errno.ESRCH) is Advice.DONE
    assert advise(RouteOp.NEW, errno.EEXIST) is Advice.REPLACE
    assert advise(RouteOp.APPEND, errno.EEXIST) is Advice.DONE
    assert advise(RouteOp.REPLACE, errno.ENETUNREACH) is Advice.RETRY_LATER
    assert advise(RouteOp.NEW, errno.ENOBUFS) is Advice.RESYNC
    assert advise(RouteOp.NEW, errno.EINVAL) is Advice.FAIL
    assert advise(RouteOp.NEW, errno.ESRCH) is Advice.FAIL


# -- dumps, fed canned datagrams


def dump_datagrams(routes: list[KernelRoute], seq: int, interrupted: bool) -> list[bytes]:
    flags = MessageFlag.MULTI | (MessageFlag.DUMP_INTR if interrupted else 0)
    messages = [encode_route(RouteOp.NEW, r, seq, flags=flags) for r in routes]
    done = struct.pack("=IHHIIi", 20, MessageType.DONE, flags, seq, 0, 0)
    return [b"".join(messages[:2]), b"".join(messages[2:]) + done]


def canned(datagrams: list[bytes]) -> Callable[[], socket.socket]:
    """An opener whose socket has ``datagrams`` queued; what the dump sends is ignored."""
    peers: list[socket.socket] = []

    def opener() -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        for datagram in datagrams:
            theirs.send(datagram)
        peers.append(theirs)  # kept open (until garbage): the request goes to it
        return ours

    return opener


@pytest.mark.asyncio
async def test_an_interrupted_dump_is_redone() -> None:
    stale = [host_route(i) for i in range(3)]
    fresh = [host_route(i) for i in range(4)]
    datagrams = dump_datagrams(stale, 1, True) + dump_datagrams(fresh, 2, False)
    assert await dump_routes(V4, opener=canned(datagrams)) == fresh
    with pytest.raises(DumpInterruptedError):
        await dump_routes(V4, opener=canned(dump_datagrams(stale, 1, True) * 2), attempts=2)


@pytest.mark.asyncio
async def test_dump_errors() -> None:
    missing_table = reply(1, errno.ENOENT)
    assert await dump_routes(V4, table=1234, opener=canned([missing_table])) == []
    with pytest.raises(PermissionError):
        await dump_routes(V4, opener=canned([reply(1, errno.EPERM)]))
    failed_done = struct.pack("=IHHIIi", 20, MessageType.DONE, 2, 1, 0, -errno.EINTR)
    with pytest.raises(InterruptedError):
        await dump_links(opener=canned([failed_done]))


@pytest.mark.asyncio
async def test_dump_filters_apply_even_if_the_kernel_ignores_them() -> None:
    routes = [host_route(0), host_route(1)._replace(table=7), host_route(2)._replace(protocol=80)]
    datagrams = dump_datagrams(routes, 1, False)
    assert await dump_routes(V4, table=254, protocol=12, opener=canned(datagrams)) == routes[:1]


@pytest.mark.asyncio
async def test_links_and_addresses_dumps_read_their_messages() -> None:
    link = struct.pack("=IHHII", 48, MessageType.NEWLINK, 2, 1, 0) + struct.pack(
        "=BxHiII", 0, 1, 3, 0x1043, 0
    )
    link += struct.pack("=HH", 8, 3) + b"eth0" + struct.pack("=HHI", 8, 4, 1500)
    address = struct.pack("=IHHII", 32, MessageType.NEWADDR, 2, 1, 0) + struct.pack(
        "=BBBBI", V4, 24, 0x80, 0, 3
    )
    address += struct.pack("=HH", 8, 2) + bytes([198, 18, 0, 1])
    done = struct.pack("=IHHIIi", 20, MessageType.DONE, 2, 1, 0, 0)
    assert await dump_links(opener=canned([link + done])) == [Link(3, "eth0", 0x1043, 1500)]
    assert await dump_addresses(opener=canned([address, done])) == [
        Address(V4, 3, bytes([198, 18, 0, 1]), 24, 0x80, 0)
    ]


# -- the monitor


class OverrunOnce:
    """One end of a socket pair whose first recv reports ENOBUFS, as an overflowed socket does."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.pending_error = True

    def fileno(self) -> int:
        return self.ours.fileno()

    def recv_into(self, buffer: bytearray) -> int:
        if self.pending_error:
            self.pending_error = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return self.ours.recv_into(buffer)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.mark.asyncio
async def test_monitor_reports_overruns_and_keeps_reading() -> None:
    fake = OverrunOnce()
    seen: list[KernelRoute | Link | Address] = []
    got_route = asyncio.Event()
    overruns: list[int] = []

    def on_message(header: Header, value: KernelRoute | Link | Address) -> None:
        assert header.type in (MessageType.NEWROUTE, MessageType.DELROUTE)
        seen.append(value)
        got_route.set()

    monitor = Monitor(on_message, lambda: overruns.append(1), sock=fake)  # type: ignore[arg-type]
    async with monitor:
        fake.theirs.send(b"\xff" * 3)  # undecodable: counted as an overrun too
        fake.theirs.send(encode_route(RouteOp.NEW, host_route(9), 0, flags=0))
        await asyncio.wait_for(got_route.wait(), 5)
    assert seen == [host_route(9)]
    assert len(overruns) == 2
    assert monitor.counters["overruns"] == 2
    assert monitor.counters["decode_errors"] == 1
    fake.theirs.close()
