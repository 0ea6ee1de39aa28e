"""The asyncio shell around rtnetlink sockets: opening them, dumps, and the notification monitor.

Thin on purpose: this module moves bytes between the kernel and the sans-I/O codec
(``route_messages``, ``route_dump``, ``netlink_messages``) and decides nothing else. Sockets
are AF_NETLINK / NETLINK_ROUTE, non-blocking and close-on-exec, with large buffers
(SO_RCVBUFFORCE / SO_SNDBUFFORCE when the process has CAP_NET_ADMIN, the capped SO_RCVBUF /
SO_SNDBUF otherwise), extended acks and capped acks when the kernel has them, and strict dump
checking so that dump filters (table, protocol) are applied in the kernel. They are created in
the namespace of the calling thread, i.e. the daemon's; ``netns=`` (tests, benchmark, lab)
creates them inside a named namespace instead (``namespaces.call_in_namespace``).

Data flow:

* ``dump_routes`` / ``dump_links`` / ``dump_addresses``: send one RTM_GET* NLM_F_DUMP request
  on a fresh socket, read datagrams until NLMSG_DONE (parsing each as it comes, so memory holds
  values, not bytes), and return the values. A dump during which the kernel's table changed
  arrives flagged NLM_F_DUMP_INTR; it is read to its end and then redone, up to
  ``attempts`` times, after which ``DumpInterruptedError`` is raised.
* ``Monitor``: a socket bound to the route, link and address multicast groups, read from
  ``loop.add_reader``; every parsed ``KernelRoute``, ``Link`` or ``Address`` goes to
  ``on_message(header, value)``. When the kernel had to drop notifications because the socket's
  buffer was full, ``recv`` fails with ENOBUFS: the monitor calls ``on_overrun()`` (its owner
  then resyncs with full dumps) and keeps reading. Under uvloop the overflow can also end the
  reading: libuv stops watching a socket for good when poll reports an error (POLLERR, which
  a pending ENOBUFS raises while no read is under way), without calling the reader. So the
  monitor registers its reader again and reads what waits every ``REARM_SECONDS``.

Route writes are ``route_writer.RouteWriter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import socket
import struct
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Self

from kernel_sync.namespaces import call_in_namespace
from kernel_sync.netlink_codes import (
    NETLINK_ROUTE,
    NLMSG_HDRLEN,
    AddressFamily,
    MessageFlag,
    MessageType,
    MulticastGroupMask,
    NetlinkOption,
    SocketLevel,
    SocketOption,
)
from kernel_sync.netlink_messages import (
    Ack,
    Address,
    Done,
    Header,
    Link,
    NetlinkDecodeError,
    NetlinkError,
    encode_dump_request,
)
from kernel_sync.route_dump import parse_route_dump
from kernel_sync.route_messages import KernelRoute, Message, parse_messages

log = logging.getLogger(__name__)

DEFAULT_RCVBUF = 32 << 20  # the kernel doubles it; room for ~60,000 queued acks
DEFAULT_SNDBUF = 4 << 20
RECV_BUFFER = 1 << 16  # the kernel cuts dump datagrams to ~32 KiB for a buffer this size
DUMP_ATTEMPTS = 10
YIELD_EVERY = 32  # dump datagrams (~15,000 routes) read before other tasks get a turn
REARM_SECONDS = 1.0  # the monitor's reader registered again this often (see the docstring)
MONITOR_GROUPS = (
    MulticastGroupMask.LINK
    | MulticastGroupMask.IPV4_IFADDR
    | MulticastGroupMask.IPV6_IFADDR
    | MulticastGroupMask.IPV4_ROUTE
    | MulticastGroupMask.IPV6_ROUTE
)
_DUMP_INTR = int(MessageFlag.DUMP_INTR)


class DumpInterruptedError(NetlinkError):
    """A dump came back flagged NLM_F_DUMP_INTR ``attempts`` times in a row."""


def _set_buffer(sock: socket.socket, force: SocketOption, plain: SocketOption, size: int) -> None:
    try:
        sock.setsockopt(SocketLevel.SOL_SOCKET, force, size)
    except PermissionError:  # no CAP_NET_ADMIN: the sysctl-capped option instead
        sock.setsockopt(SocketLevel.SOL_SOCKET, plain, size)


def _open_here(groups: int, rcvbuf: int, sndbuf: int, ext_ack: bool) -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        NETLINK_ROUTE,
    )
    try:
        _set_buffer(sock, SocketOption.RCVBUFFORCE, SocketOption.RCVBUF, rcvbuf)
        _set_buffer(sock, SocketOption.SNDBUFFORCE, SocketOption.SNDBUF, sndbuf)
        options = [NetlinkOption.CAP_ACK, NetlinkOption.GET_STRICT_CHK]
        if ext_ack:
            options.append(NetlinkOption.EXT_ACK)
        for option in options:
            with contextlib.suppress(OSError):  # older kernels: ENOPROTOOPT, and we cope
                sock.setsockopt(SocketLevel.SOL_NETLINK, option, 1)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


def open_netlink_socket(
    *,
    groups: int = 0,
    rcvbuf: int = DEFAULT_RCVBUF,
    sndbuf: int = DEFAULT_SNDBUF,
    ext_ack: bool = True,
    netns: str | None = None,
) -> socket.socket:
    """A bound, non-blocking NETLINK_ROUTE socket (see the module docstring).

    ``groups`` is an RTMGRP_* mask to subscribe to; ``netns`` a namespace name (under
    /run/netns) or path to create the socket in, None for the caller's own.
    """
    if netns is None:
        return _open_here(groups, rcvbuf, sndbuf, ext_ack)
    return call_in_namespace(netns, lambda: _open_here(groups, rcvbuf, sndbuf, ext_ack))


_SO_ATTACH_FILTER = 26  # not in Python's socket module
_BPF_LDB_ABS = 0x30  # BPF_LD | BPF_B | BPF_ABS
_BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_RET_K = 0x06  # BPF_RET | BPF_K
_NLMSG_TYPE_LOW = 4  # nlmsg_type's low octet (host order; rtnetlink types are < 256)
_RTM_PROTOCOL = NLMSG_HDRLEN + 5  # rtmsg: family, dst_len, src_len, tos, table, protocol


def drop_own_new_routes(sock: socket.socket, protocol: int) -> None:
    """Keep RTM_NEWROUTE notifications of ``protocol`` (ours) out of ``sock`` (classic BPF).

    Each route Myna writes comes back as a notification; at 100,000 routes, parsing those in
    Python costs a core for a second or two, and nothing reads them: the learner never learns
    our protocol, the resolver ignores it, drift repair needs only RTM_DELROUTE. The kernel
    sends one notification per datagram, so the filter sees the message at offset 0.
    """
    program = [
        (_BPF_LDB_ABS, 0, 0, _NLMSG_TYPE_LOW),
        (_BPF_JEQ_K, 0, 2, int(MessageType.NEWROUTE)),  # not NEWROUTE: accept
        (_BPF_LDB_ABS, 0, 0, _RTM_PROTOCOL),
        (_BPF_JEQ_K, 1, 0, protocol),  # ours: drop
        (_BPF_RET_K, 0, 0, 0x40000),  # accept the whole datagram
        (_BPF_RET_K, 0, 0, 0),
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *i) for i in program))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


async def wait_readable(sock: socket.socket) -> None:
    """Return once ``sock`` has something to read (or an error to report)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def receive(sock: socket.socket, buffer: bytearray) -> bytes:
    """The next datagram from ``sock``, waiting for one without blocking the loop."""
    view = memoryview(buffer)
    while True:
        try:
            size = sock.recv_into(buffer)
        except BlockingIOError:
            await wait_readable(sock)
            continue
        return bytes(view[:size])


class _DumpState:
    """What one dump attempt has read so far."""

    def __init__(self) -> None:
        self.interrupted = False
        self.done = False
        self.error: Ack | Done | None = None


Opener = Callable[[], socket.socket]


async def _run_dump(
    request: Callable[[int], bytes],
    consume: Callable[[bytes, _DumpState], None],
    netns: str | None,
    opener: Opener | None,
    attempts: int,
) -> None:
    """Send ``request(seq)`` and feed every datagram to ``consume`` until the dump is done.

    The socket comes from ``opener`` (a fresh one in ``netns`` by default) and is closed
    after. A dump flagged NLM_F_DUMP_INTR is read to its end and redone on the same socket; an
    error reply raises OSError with the kernel's errno and its extended-ack text.
    """
    if opener is None:
        sock = open_netlink_socket(rcvbuf=8 << 20, sndbuf=1 << 20, netns=netns)
    else:
        sock = opener()
    buffer = bytearray(RECV_BUFFER)
    try:
        for attempt in range(1, attempts + 1):
            state = _DumpState()
            sock.send(request(attempt))
            datagrams = 0
            while not state.done:
                data = await receive(sock, buffer)
                consume(data, state)
                datagrams += 1
                if datagrams % YIELD_EVERY == 0:  # the kernel has the next one ready at once:
                    await asyncio.sleep(0)  # let other tasks run during a long dump
                if state.error is not None:
                    code, text = state.error.error, state.error.message
                    raise OSError(code, f"dump failed: {text or os.strerror(code)}")
            if not state.interrupted:
                return
            log.info("netlink dump interrupted by a concurrent change (attempt %d)", attempt)
    finally:
        sock.close()
    raise DumpInterruptedError(f"dump still inconsistent after {attempts} attempts")


async def dump_routes(
    family: int = AddressFamily.UNSPEC,
    table: int | None = None,
    protocol: int | None = None,
    *,
    netns: str | None = None,
    opener: Opener | None = None,
    attempts: int = DUMP_ATTEMPTS,
) -> list[KernelRoute]:
    """Every IPv4/IPv6 route of ``family`` (both for UNSPEC), optionally of one table/protocol.

    Source-specific routes and other families' routes are left out. A table that does not
    exist yields an empty list. ``netns`` or ``opener`` (a function returning a netlink
    socket, which the dump closes) choose the socket; a fresh one in the caller's namespace
    by default. The same holds for ``dump_links`` and ``dump_addresses``.
    """
    routes: list[KernelRoute] = []

    def request(seq: int) -> bytes:
        routes.clear()
        return encode_dump_request(
            MessageType.GETROUTE, seq, family, table=table or 0, protocol=protocol or 0
        )

    def consume(data: bytes, state: _DumpState) -> None:
        part = parse_route_dump(data)
        routes.extend(part.routes)
        state.interrupted = state.interrupted or part.interrupted
        if part.errors:
            state.error = part.errors[0]
        if part.done is not None:
            state.done = True
            if part.done.error:
                state.error = part.done

    try:
        await _run_dump(request, consume, netns, opener, attempts)
    except FileNotFoundError:  # ENOENT: the kernel has no such table (strict checking)
        return []
    # Kernels without strict dump checking ignore the filters: apply them here too.
    if table is not None:
        routes = [route for route in routes if route.table == table]
    if protocol is not None:
        routes = [route for route in routes if route.protocol == protocol]
    return routes


def _consume_values(
    kind: type[Link] | type[Address], found: list[Link] | list[Address]
) -> Callable[[bytes, _DumpState], None]:
    def consume(data: bytes, state: _DumpState) -> None:
        messages: list[Message] = parse_messages(data)
        for header, body in messages:
            if header.flags & _DUMP_INTR:
                state.interrupted = True
            if type(body) is kind:
                found.append(body)  # type: ignore[arg-type]
            elif type(body) is Done:
                state.done = True
                if body.error:
                    state.error = body
            elif type(body) is Ack and body.error:
                state.error = body

    return consume


async def dump_links(
    *, netns: str | None = None, opener: Opener | None = None, attempts: int = DUMP_ATTEMPTS
) -> list[Link]:
    """Every network device."""
    links: list[Link] = []

    def request(seq: int) -> bytes:
        links.clear()
        return encode_dump_request(MessageType.GETLINK, seq)

    await _run_dump(request, _consume_values(Link, links), netns, opener, attempts)
    return links


async def dump_addresses(
    family: int = AddressFamily.UNSPEC,
    *,
    netns: str | None = None,
    opener: Opener | None = None,
    attempts: int = DUMP_ATTEMPTS,
) -> list[Address]:
    """Every IPv4/IPv6 interface address of ``family`` (both for UNSPEC)."""
    addresses: list[Address] = []

    def request(seq: int) -> bytes:
        addresses.clear()
        return encode_dump_request(MessageType.GETADDR, seq, family)

    await _run_dump(request, _consume_values(Address, addresses), netns, opener, attempts)
    return addresses


MessageCallback = Callable[[Header, KernelRoute | Link | Address], None]


class Monitor:
    """Route, link and address notifications delivered to callbacks; overruns reported.

    Call ``start()`` from the event loop (or use ``async with``); ``close()`` stops it.
    ``counters`` holds "datagrams", "notifications", "overruns" and "decode_errors".
    """

    def __init__(
        self,
        on_message: MessageCallback,
        on_overrun: Callable[[], None],
        *,
        groups: int = MONITOR_GROUPS,
        rcvbuf: int = DEFAULT_RCVBUF,
        netns: str | None = None,
        sock: socket.socket | None = None,
        datagrams_per_turn: int = 256,
    ) -> None:
        self.on_message = on_message
        self.on_overrun = on_overrun
        self.sock = sock or open_netlink_socket(
            groups=groups, rcvbuf=rcvbuf, sndbuf=1 << 16, netns=netns
        )
        self.counters: Counter[str] = Counter()
        self._buffer = bytearray(RECV_BUFFER)
        self._per_turn = datagrams_per_turn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rearm: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start reading on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._on_readable)
        self._rearm = self._loop.call_later(REARM_SECONDS, self._keep_reading)

    def _keep_reading(self) -> None:
        """Register the reader again and read what waits (libuv may have dropped it, above)."""
        if self._loop is None or self.sock.fileno() < 0:
            return
        self._loop.remove_reader(self.sock.fileno())
        self._loop.add_reader(self.sock.fileno(), self._on_readable)
        self._on_readable()
        self._rearm = self._loop.call_later(REARM_SECONDS, self._keep_reading)

    def close(self) -> None:
        """Stop reading and close the socket; idempotent."""
        if self._rearm is not None:
            self._rearm.cancel()
            self._rearm = None
        if self._loop is not None and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self._loop = None
        self.sock.close()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _overrun(self, reason: str) -> None:
        self.counters["overruns"] += 1
        log.warning("netlink monitor lost notifications (%s): full resync needed", reason)
        self.on_overrun()

    def _on_readable(self) -> None:
        view = memoryview(self._buffer)
        for _ in range(self._per_turn):
            try:
                size = self.sock.recv_into(self._buffer)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self._overrun("ENOBUFS: the socket's receive buffer overflowed")
                continue
            self.counters["datagrams"] += 1
            try:
                messages = parse_messages(bytes(view[:size]))
            except NetlinkDecodeError as error:
                self.counters["decode_errors"] += 1
                self._overrun(f"undecodable notification: {error}")
                continue
            for header, body in messages:
                if type(body) in (KernelRoute, Link, Address):
                    self.counters["notifications"] += 1
                    try:
                        self.on_message(header, body)  # type: ignore[arg-type]
                    except Exception:
                        log.exception("netlink monitor callback failed on %r", body)
