"""Batched route writes over one netlink socket, with per-change outcomes matched asynchronously.

``RouteWriter.submit(changes)`` returns at once with a future; the writer encodes the changes
(``route_messages``) into sends of up to 64 KiB, each message with its own sequence number,
writes them from the event loop a few sends per turn, and reads the replies from
``loop.add_reader``. Nothing waits for an ack: replies are matched to changes by sequence
number as they arrive, and the future resolves to a ``BatchResult`` (one errno per change,
0 for success) when every change has its answer.

rtnetlink handles a send synchronously, in order, and answers every failing message with an
NLMSG_ERROR whatever its flags, so two ack modes give exact per-change outcomes:

* ``AckMode.LAST`` (the default): NLM_F_ACK only on the last message of each send. Its ack
  (or error) closes the send; every message of it with no error reply succeeded. One reply
  per send instead of one per route: about half the cost per route (bench/kernel_bench.py).
* ``AckMode.EVERY``: NLM_F_ACK on every message, one positive ack per change.

Lost replies: replies queue in the socket's receive buffer; the writer keeps at most
``max_in_flight`` unanswered messages (one reply each, ~1 KiB of buffer each) and drains the
socket after every send, so it should never overflow. If it does, the kernel drops replies and
``recv`` fails with ENOBUFS; since the kernel has finished every send by the time ``send``
returns, every send still open once the socket is drained has lost replies, and its unanswered
changes get ENOBUFS: their outcome is unknown and the owner must re-read the kernel.

What to do about an error is ``advise(op, errno)``'s answer: EEXIST on NEW can succeed as a
REPLACE, ESRCH on DEL means the route is already gone, ENETUNREACH / EHOSTUNREACH / ENODEV can
succeed once links or addresses change, ENOBUFS needs a resync, and the rest cannot succeed as
they are. The writer counts every outcome (``counters``) and logs one summary per batch.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from collections import Counter, deque
from collections.abc import Sequence
from enum import Enum
from types import TracebackType
from typing import NamedTuple, Self

from kernel_sync.netlink_codes import MessageFlag, MessageType, SocketLevel, SocketOption
from kernel_sync.netlink_messages import Ack, NetlinkDecodeError, NetlinkEncodeError, NetlinkError
from kernel_sync.netlink_socket import RECV_BUFFER, open_netlink_socket
from kernel_sync.route_messages import (
    RouteChange,
    RouteOp,
    encode_route,
    parse_messages,
    route_text,
)

log = logging.getLogger(__name__)

PENDING = -1  # an errno slot whose reply has not come yet
REPLY_BUDGET = 1024  # receive-buffer bytes one queued reply may take (skb truesize ~770)
_SEQ_MASK = 0xFFFFFFFF
_ACK = int(MessageFlag.ACK)
_ERROR = int(MessageType.ERROR)
_REPLY = struct.Struct("=IHHIIi")  # nlmsghdr + nlmsgerr.error
_FLAGS = struct.Struct("=H")


class AckMode(Enum):
    """Which messages of a send carry NLM_F_ACK (see the module docstring)."""

    LAST = "last"
    EVERY = "every"


class Advice(Enum):
    """What the owner of a failed change can do about it."""

    DONE = "done"  # succeeded, or the kernel already is as asked (DEL of an absent route)
    REPLACE = "replace"  # NEW met an existing route: a REPLACE can succeed
    RETRY_LATER = "retry later"  # a device, address or memory it needs may come
    RESYNC = "resync"  # the reply was lost: re-read the kernel before deciding
    FAIL = "fail"  # the same message cannot succeed (EINVAL, EPERM, ...)


_LATER = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENODEV,
    errno.ENETDOWN,
    errno.ENOMEM,
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
}


def advise(op: RouteOp, error: int) -> Advice:
    """The advice for ``error`` (a positive errno, 0 for success) on a change of kind ``op``."""
    if error == 0 or (op == RouteOp.DEL and error == errno.ESRCH):
        return Advice.DONE
    if error == errno.EEXIST:
        # NEW met a route of that key: REPLACE can overwrite it. APPEND met the very same
        # route already there: nothing to do.
        if op == RouteOp.NEW:
            return Advice.REPLACE
        if op == RouteOp.APPEND:
            return Advice.DONE
    if error in _LATER:
        return Advice.RETRY_LATER
    if error == errno.ENOBUFS:
        return Advice.RESYNC
    return Advice.FAIL


def errno_name(error: int) -> str:
    """``EEXIST`` for 17, the number itself for an unknown one."""
    return errno.errorcode.get(error, str(error))


class Failure(NamedTuple):
    """One change the kernel refused (or whose reply was lost)."""

    position: int  # in the submitted sequence
    change: RouteChange
    error: int
    message: str
    advice: Advice


class BatchResult(NamedTuple):
    """The outcome of one ``submit``: ``errors[i]`` is change i's errno, 0 when it succeeded.

    ``messages`` holds the kernel's extended-ack texts by change index.
    """

    changes: Sequence[RouteChange]
    errors: list[int]
    messages: dict[int, str]

    @property
    def ok(self) -> bool:
        """Every change succeeded."""
        return not any(self.errors)

    def failures(self) -> list[Failure]:
        """Every failed change with its errno, text and advice, in submission order."""
        return [
            Failure(i, self.changes[i], e, self.messages.get(i, ""), advise(self.changes[i].op, e))
            for i, e in enumerate(self.errors)
            if e
        ]

    def resubmittable(self) -> list[RouteChange]:
        """The failed NEW changes that a REPLACE of the same route can make succeed."""
        return [
            RouteChange(RouteOp.REPLACE, failure.change.route)
            for failure in self.failures()
            if failure.advice is Advice.REPLACE
        ]


class _Batch:
    __slots__ = ("changes", "cursor", "errors", "first_seq", "future", "messages", "unanswered")

    def __init__(
        self, changes: Sequence[RouteChange], first_seq: int, future: asyncio.Future[BatchResult]
    ) -> None:
        self.changes = changes
        self.first_seq = first_seq
        self.future = future
        self.errors = [PENDING] * len(changes)
        self.messages: dict[int, str] = {}
        self.unanswered = len(changes)
        self.cursor = 0  # the first change not encoded yet


class _Send:
    """One sendto: changes ``start..end`` of a batch; ``last`` is the index the close waits for."""

    __slots__ = ("batch", "end", "last", "messages", "start")

    def __init__(self, batch: _Batch, start: int, end: int, last: int, messages: int) -> None:
        self.batch = batch
        self.start = start
        self.end = end
        self.last = last
        self.messages = messages


class RouteWriter:
    """Route changes written in batches on one socket; see the module docstring.

    Create it inside the event loop (or ``async with RouteWriter() as writer``); ``netns`` or
    ``sock`` choose the socket (the caller's namespace by default).
    """

    def __init__(
        self,
        *,
        netns: str | None = None,
        sock: socket.socket | None = None,
        ack_mode: AckMode = AckMode.LAST,
        send_limit: int = 65536,
        sends_per_turn: int = 4,
        max_in_flight: int | None = None,
    ) -> None:
        self.sock = sock or open_netlink_socket(netns=netns)
        self.ack_mode = ack_mode
        self.send_limit = send_limit
        self.sends_per_turn = sends_per_turn
        rcvbuf = self.sock.getsockopt(SocketLevel.SOL_SOCKET, SocketOption.RCVBUF)
        self.max_in_flight = max_in_flight or max(64, rcvbuf // REPLY_BUDGET)
        self.counters: Counter[str] = Counter()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._drain)
        self._next_seq = 1
        self._active: set[_Batch] = set()  # batches whose future is not resolved yet
        self._waiting: deque[_Batch] = deque()  # batches with changes not yet sent
        self._open: deque[_Send] = deque()  # sends whose closing reply has not come
        self._in_flight = 0
        self._overrun = False
        self._pump_scheduled = False
        self._closed = False
        self._buffer = bytearray(RECV_BUFFER)

    @property
    def pending(self) -> int:
        """Changes submitted and not answered yet."""
        return sum(batch.unanswered for batch in self._active)

    def submit(self, changes: Sequence[RouteChange]) -> asyncio.Future[BatchResult]:
        """Queue ``changes`` for writing; the future resolves to their ``BatchResult``."""
        if self._closed:
            raise NetlinkError("the route writer is closed")
        future: asyncio.Future[BatchResult] = self._loop.create_future()
        batch = _Batch(changes, self._next_seq, future)
        self._next_seq = (self._next_seq + len(changes)) & _SEQ_MASK
        if not changes:
            future.set_result(BatchResult(changes, [], {}))
            return future
        self._active.add(batch)
        self._waiting.append(batch)
        self._schedule_pump()
        return future

    async def apply(self, changes: Sequence[RouteChange]) -> BatchResult:
        """Submit ``changes`` and wait for their result."""
        return await self.submit(changes)

    def close(self) -> None:
        """Stop, close the socket, and fail the futures still pending; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for batch in self._active:
            if not batch.future.done():
                batch.future.set_exception(NetlinkError("the route writer was closed"))
        self._active.clear()
        self._waiting.clear()
        self._open.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled and not self._closed:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        for _ in range(self.sends_per_turn):
            if self._closed or not self._waiting or self._in_flight >= self.max_in_flight:
                return  # no work, or the window is full: the reader calls us again
            self._send_next(self._waiting[0])
            self._drain()
        if self._waiting:
            self._schedule_pump()

    def _send_next(self, batch: _Batch) -> None:
        """Encode and send the next changes of ``batch`` that fit one send."""
        start = index = batch.cursor
        flags = _ACK if self.ack_mode is AckMode.EVERY else 0
        room = min(self.max_in_flight - self._in_flight, 65536)
        parts: list[bytes] = []
        size = last_offset = 0
        last = -1
        changes = batch.changes
        while index < len(changes) and len(parts) < room:
            op, route = changes[index]
            try:
                wire = encode_route(op, route, batch.first_seq + index, flags)
            except NetlinkEncodeError as error:
                self._answer(batch, index, errno.EINVAL, str(error))
                index += 1
                continue
            if size + len(wire) > self.send_limit and parts:
                break
            parts.append(wire)
            last, last_offset = index, size
            size += len(wire)
            index += 1
        batch.cursor = index
        if index >= len(changes):
            self._waiting.popleft()
        if not parts:
            self._finish(batch)
            return
        data = bytearray().join(parts)
        if not flags:  # AckMode.LAST: the last message asks for the ack that closes the send
            (message_flags,) = _FLAGS.unpack_from(data, last_offset + 6)
            _FLAGS.pack_into(data, last_offset + 6, message_flags | _ACK)
        try:
            self.sock.send(data)
        except OSError as error:  # ENOBUFS/ENOMEM for the skb, EMSGSIZE: nothing was applied
            code = error.errno or errno.EIO
            log.warning("netlink send of %d route changes failed: %s", len(parts), error)
            for i in range(start, index):
                if batch.errors[i] == PENDING:
                    self._answer(batch, i, code, f"send failed: {os.strerror(code)}")
            self._finish(batch)
            return
        self.counters["sends"] += 1
        self.counters["sent"] += len(parts)
        self._open.append(_Send(batch, start, index, last, len(parts)))
        self._in_flight += len(parts)

    # -- replies

    def _drain(self) -> None:
        """Read every queued reply; called by the loop's reader and after each send."""
        if self._closed:
            return
        sock, buffer = self.sock, self._buffer
        while True:
            try:
                size = sock.recv_into(buffer)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self._overrun = True
                self.counters["overruns"] += 1
                continue
            length, kind, _, seq, _, code = _REPLY.unpack_from(buffer)
            if size == length and kind == _ERROR and code == 0:
                self._reply(seq, 0, "")  # the common case: one plain ack per datagram
                continue
            try:
                messages = parse_messages(bytes(buffer[:size]))
            except NetlinkDecodeError as error:
                log.error("undecodable netlink reply (%s): treating as lost replies", error)
                self._overrun = True
                continue
            for _, body in messages:
                if type(body) is Ack:
                    self._reply(body.seq, body.error, body.message)
        if self._overrun:
            self._overrun = False
            self._lose_open_sends()
        if self._waiting and self._in_flight < self.max_in_flight:
            self._schedule_pump()

    def _reply(self, seq: int, error: int, message: str) -> None:
        for send in self._open:
            batch = send.batch
            index = (seq - batch.first_seq) & _SEQ_MASK
            if send.start <= index < send.end:
                break
        else:
            self.counters["unmatched_replies"] += 1
            return
        if batch.errors[index] == PENDING:
            self._answer(batch, index, error, message)
        if index == send.last:
            self._close_send(send, 0, "")

    def _close_send(self, send: _Send, error: int, message: str) -> None:
        """Every change of ``send`` without a reply gets ``error`` (0: it succeeded)."""
        self._open.remove(send)
        self._in_flight -= send.messages
        batch = send.batch
        errors = batch.errors
        for i in range(send.start, send.end):
            if errors[i] == PENDING:
                self._answer(batch, i, error, message)
        self._finish(batch)

    def _lose_open_sends(self) -> None:
        lost = sum(send.batch.errors[send.start : send.end].count(PENDING) for send in self._open)
        log.error(
            "netlink replies lost (receive buffer overflow): %d route changes have an unknown "
            "outcome and need a resync",
            lost,
        )
        self.counters["lost"] += lost
        for send in list(self._open):
            self._close_send(send, errno.ENOBUFS, "reply lost: receive buffer overflow")

    def _answer(self, batch: _Batch, index: int, error: int, message: str) -> None:
        batch.errors[index] = error
        batch.unanswered -= 1
        if error:
            batch.messages[index] = message
            self.counters["failed"] += 1
            self.counters[errno_name(error)] += 1
        else:
            self.counters["succeeded"] += 1

    def _finish(self, batch: _Batch) -> None:
        if batch.unanswered or batch.future.done():
            return
        self._active.discard(batch)
        result = BatchResult(batch.changes, batch.errors, batch.messages)
        batch.future.set_result(result)
        if batch.messages:
            self._log_failures(result)

    @staticmethod
    def _log_failures(result: BatchResult) -> None:
        failures = result.failures()
        by_error = Counter(errno_name(failure.error) for failure in failures)
        first = failures[0]
        # A DEL of a route already gone is the state asked for: worth a note, not a warning.
        level = (
            logging.INFO
            if all(failure.advice is Advice.DONE for failure in failures)
            else logging.WARNING
        )
        log.log(
            level,
            "route writes: %d of %d failed (%s); first: %s %s: %s",
            len(failures),
            len(result.changes),
            ", ".join(f"{name} x{count}" for name, count in by_error.most_common()),
            first.change.op.name,
            route_text(first.change.route),
            first.message or os.strerror(first.error),
        )
        for failure in failures:
            log.debug(
                "route write failed: %s %s: %s (%s), advice: %s",
                failure.change.op.name,
                route_text(failure.change.route),
                errno_name(failure.error),
                failure.message,
                failure.advice.value,
            )
