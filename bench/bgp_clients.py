"""Many lightweight BGP clients in one asyncio process, and a byte relay, for ``reflector_fanout``.

Run by ``bench/reflector_fanout.py`` inside its network namespaces, never by hand (but it can be):

    .venv/bin/python -m bench.bgp_clients clients --case calico --server 198.18.0.1 \\
        --first 198.18.0.10 [--watch-pids 123,456] [--settle 1] [--timeout 600] [--stall 30]
    .venv/bin/python -m bench.bgp_clients relay --local 198.18.0.1 --clients 200

The cases (``CASES``): ``calico``, 200 clients, client i announcing the four /26 blocks of
198.19.i.0/24 with its own address as next hop; ``big``, 10 clients, client 0 announcing
100,000 /32s counting up from 198.18.64.0 (clear of the session addresses in 198.18.0.0/24),
the others nothing. Client i's address is ``--first`` + i; every route is what a Calico node
sends over iBGP: ORIGIN IGP, empty AS_PATH, NEXT_HOP, LOCAL_PREF 100.

``clients``: one uvloop process, one asyncio Protocol per client. Each client connects from
its own address to ``--server`` port 179 (retrying until the session is up, so the daemon may
still be starting), sends an OPEN (IPv4 unicast, 4-octet AS; no ADD-PATH, no graceful restart),
answers the server's OPEN with a KEEPALIVE and encodes its announcements for the negotiated
session at once; the server's KEEPALIVE makes it Established. Once every client is Established
the process waits ``--settle`` seconds (nobody announces meanwhile, so the server has long read
every client's KEEPALIVE and is idle), reads the watched PIDs' VmRSS, and then, at t0, writes
every client's UPDATEs and End-of-RIB in one loop pass. Each client decodes what it receives
with ``speaker.update_message.decode_update`` and keeps the set of prefixes it holds
(announcements add, withdrawals remove; routes carrying its own next hop, i.e. its own routes
echoed back, are counted and ignored). A client holds the full table when its set has as many
prefixes as all the other clients announced; its time is when the bytes that filled it
arrived. The run ends when every client holds the full table, when nothing arrived for
``--stall`` seconds, or after ``--timeout`` seconds; half a second later the watched PIDs'
VmHWM (peak RSS) and CPU time are read, every session gets a Cease, and one JSON object goes
to stdout. Decoding is shared: a reflector writes the same bytes to every member of an update
group, so decoded UPDATEs are cached by their body (per negotiated session shape) and each
distinct UPDATE is decoded once per process.

Arrival and digestion are apart once the clock runs (``Fleet.recording``): the clients are
slower than the daemon they time (200 calico clients take 40,000 UPDATEs, about 90 ms of
their CPU against the reflector's 50 ms, and decoding 100,000 /32s took 15 ms of a 50 ms
prop-100k row), so a time taken when a message had been decoded was the clients' time.
``data_received`` only stamps the bytes with the clock and queues them; ``Fleet.digest``
frames and decodes the queues in slices of ``DIGEST_SLICE`` seconds, yielding to the event
loop between slices, so bytes are stamped within about a slice of reaching the socket however
far behind the decoding is, and the sockets are always read (the daemon never waits on a full
window because the clients are busy). A client's time is the stamp of the bytes that held
the UPDATE that filled its table.

``--own`` lists prefixes the server originates itself (a Calico reflector's own blocks, the
``myna-birdcfg`` rows): every client counts them into its full table, and their next hop (the
server's) is not checked as a reflected route's would be; the result says how many the client
that got fewest of them received.

``relay``: the run without a reflector. It listens on ``--local`` port 179, answers each
client's OPEN, and copies every UPDATE a client sends, byte for byte and undecoded, to every
other client (one write per client per loop pass): the senders' messages go straight to the
receivers, so the time it gives is the floor of the path without a reflector (the senders,
the relay's copying, the network; not the receivers' decoding, which the clock leaves out).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from speaker.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.control_messages import KEEPALIVE_MESSAGE, Notification, encode_notification
from speaker.framing import MessageReader, frame
from speaker.negotiated import Negotiated, negotiate
from speaker.nlri import prefix_from_text
from speaker.open_message import Open, decode_open, encode_open, open_for
from speaker.path_attributes import PathAttributes
from speaker.update_message import (
    Update,
    decode_update,
    encode_announcements,
    encode_end_of_rib,
)
from speaker.wire_codes import Family, MessageType

V4 = Family.IPV4_UNICAST
AS = 64512
HOLD_TIME = 90
LOCAL_PREF = 100
OPEN_ = int(MessageType.OPEN)
UPDATE = int(MessageType.UPDATE)
KEEPALIVE = int(MessageType.KEEPALIVE)
NOTIFICATION = int(MessageType.NOTIFICATION)
CONNECT_RETRY = 0.3  # seconds between connection attempts while the server starts
ESTABLISH_TIMEOUT = 90.0
CACHE_LIMIT = 100_000  # decoded UPDATEs kept per session shape
DIGEST_SLICE = 0.0005  # seconds of decoding between two looks at the sockets
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
END_OF_RIB = encode_end_of_rib(V4)


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Who announces what: ``announce(i)`` is client i's prefixes (``network << 8 | length``)."""

    name: str
    clients: int
    describe: str
    announce: Callable[[int], list[int]]
    receives: bool = True  # False: the server is a mesh node, which reflects nothing back


def _calico_blocks(i: int) -> list[int]:
    base = int(ipaddress.IPv4Address("198.19.0.0")) + (i << 8)
    return [((base + 64 * k) << 8) | 26 for k in range(4)]


BIG_START = int(ipaddress.IPv4Address("198.18.64.0"))
BIG_COUNT = 100_000


def _big_table(i: int) -> list[int]:
    if i != 0:
        return []
    return [((BIG_START + n) << 8) | 32 for n in range(BIG_COUNT)]


# bench.suite's cases. Propagation: client 0 sends, client 1 receives; the /32s count up from
# 198.18.1.0 (clear of the session addresses in 198.18.0.0/24): 100,000 fit in 198.18.0.0/15,
# 1,000,000 run on to 198.33.67.63 and exist only in the BGP tables of the benchmark's own
# namespaces. Mesh: client i (a simulated mesh node) announces the four /26 blocks of
# 198.18.4.0/24 + i (500 nodes end in 198.19.247.255), and receives nothing (an iBGP mesh
# node re-advertises no iBGP route). Install: one client announcing ``big``'s 100,000 /32s
# (from 198.18.64.0, clear of the mesh peers' 198.18.2.0/23).
PROP_START = int(ipaddress.IPv4Address("198.18.1.0"))
MESH_START = int(ipaddress.IPv4Address("198.18.4.0"))


def _propagation(count: int) -> Callable[[int], list[int]]:
    def announce(i: int) -> list[int]:
        return [((PROP_START + n) << 8) | 32 for n in range(count)] if i == 0 else []

    return announce


def _mesh_blocks(i: int) -> list[int]:
    base = MESH_START + (i << 8)
    return [((base + 64 * k) << 8) | 26 for k in range(4)]


CASES: dict[str, Case] = {
    "calico": Case(
        "calico", 200, "200 clients, each 4 /26 blocks with its own next hop", _calico_blocks
    ),
    "big": Case("big", 10, "10 clients, one of them announcing 100,000 /32s", _big_table),
    "prop-100k": Case(
        "prop-100k", 2, "client 0 sends 100,000 /32s, client 1 receives", _propagation(100_000)
    ),
    "prop-1m": Case(
        "prop-1m", 2, "client 0 sends 1,000,000 /32s, client 1 receives", _propagation(1_000_000)
    ),
    "mesh": Case(
        "mesh", 500, "mesh peers, each 4 /26 blocks, nothing received", _mesh_blocks, False
    ),
    "install-100k": Case("install-100k", 1, "one peer sending 100,000 /32s", _big_table, False),
}
FANOUT_CASES = ("calico", "big")


def client_address(first: str, i: int) -> str:
    """Client i's address: ``first`` + i."""
    return str(ipaddress.IPv4Address(first) + i)


# -- process figures --------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s threads so far, to the nanosecond (0 if it is gone).

    The scheduler's own count (``/proc/PID/task/TID/schedstat``), not ``/proc/PID/stat``'s
    10 ms ticks: a prop-100k row's daemon works for 40-60 ms, which ticks cannot compare to
    15 %. Threads that have ended are not counted (none of the daemons here ends one while
    it works); without schedstat, the ticks.
    """
    if not Path(f"/proc/{pid}/schedstat").exists():  # gone, or a kernel without schedstat
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    total = 0
    with contextlib.suppress(FileNotFoundError):  # it ended meanwhile: what was read counts
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # thread ended
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total / 1e9


def say(line: str) -> None:
    """One line to stdout, flushed (the harness reads the log)."""
    print(line, flush=True)


def _our_open(address: str) -> Open:
    return open_for(
        AS,
        HOLD_TIME,
        int(ipaddress.IPv4Address(address)),
        (MultiprotocolCapability(1, 1), FourOctetAsCapability(AS)),
    )


# -- the clients -------------------------------------------------------------------------------


class Fleet:
    """What the clients share: the decode cache, the progress counters, the done signal."""

    def __init__(self, count: int) -> None:
        self.caches: dict[Negotiated, dict[bytes, Update]] = {}
        self.received = 0  # prefixes processed, all clients (stall detection)
        self.last_progress = time.perf_counter()
        self.pending = count
        self.all_done = asyncio.Event()
        self.decoded = 0
        self.cache_hits = 0
        self.recording = False  # from t0: bytes are stamped and queued, decoded by ``digest``
        self.ready: collections.deque[Client] = collections.deque()  # clients with queued bytes
        self.queued = asyncio.Event()
        self.digest_lag = 0.0  # the longest wait of bytes between arrival and decoding
        self.failure: str | None = None  # why the digest task died, if it did

    def queue(self, client: Client) -> None:
        """``client`` has bytes to digest."""
        self.ready.append(client)
        self.queued.set()

    def digest(self, until: float) -> bool:
        """Decode queued bytes, one message at a time, until ``until``; True if some are left."""
        ready = self.ready
        clock = time.perf_counter
        while ready:
            client = ready[0]
            if not client.digest_one():
                ready.popleft()
            if clock() >= until:
                break
        return bool(ready)

    def digest_ended(self, task: asyncio.Future[None]) -> None:
        """The digest task ended: if it failed, the run has (it would wait for the timeout)."""
        if not task.cancelled() and task.exception() is not None:
            self.failure = f"decoding failed: {task.exception()!r}"
            self.all_done.set()

    async def digest_forever(self) -> None:
        """Digest in slices, the sockets read between them (module docstring)."""
        while True:
            await self.queued.wait()
            self.queued.clear()
            while self.digest(time.perf_counter() + DIGEST_SLICE):
                await asyncio.sleep(0)

    def cache_for(self, neg: Negotiated) -> dict[bytes, Update]:
        """The decode cache for sessions negotiated like ``neg``."""
        return self.caches.setdefault(neg, {})


class Client(asyncio.Protocol):
    """One client session (see the module docstring)."""

    def __init__(self, fleet: Fleet, index: int, address: str, prefixes: list[int], want: int):
        self.fleet = fleet
        self.index = index
        self.address = address
        self.hop = ipaddress.IPv4Address(address).packed
        self.prefixes = prefixes
        self.want = want  # prefixes the full table holds for this client
        self.sent_open = _our_open(address)
        self.framing = MessageReader()
        self.transport: asyncio.Transport | None = None
        self.neg: Negotiated | None = None
        self.cache: dict[bytes, Update] = {}
        self.outgoing = b""
        self.established = asyncio.Event()
        self.lost = asyncio.Event()
        self.held: set[int] = set()
        self.done_at: float | None = None
        self.echoed = 0  # own routes sent back
        self.wrong_hop = 0  # reach entries whose next hop is not their originator's
        self.messages = 0
        self.bytes = 0
        self.problem: str | None = None
        self.expected_hop: Callable[[int], bytes] = lambda _p: b""
        self.own: frozenset[int] = frozenset()  # the server's own prefixes (``--own``)
        self.own_received = 0
        self.inbox: collections.deque[tuple[float, bytes]] = collections.deque()  # (stamp, bytes)
        self.unread: collections.deque[tuple[int, bytes]] = collections.deque()  # framed
        self.stamp = 0.0  # when the bytes now being digested arrived
        self.keepalive: asyncio.TimerHandle | None = None
        self.closing = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.transport.write(encode_open(self.sent_open))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.problem is None and self.established.is_set() and not self.closing:
            self.problem = f"session closed ({exc or 'by the server'})"
        if self.keepalive is not None:
            self.keepalive.cancel()
        self.lost.set()

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        fleet = self.fleet
        if fleet.recording:
            now = time.perf_counter()
            if len(data) > len(KEEPALIVE_MESSAGE):  # a bare KEEPALIVE is no progress (--stall)
                fleet.last_progress = now
            if not self.inbox and not self.unread:
                fleet.queue(self)
            self.inbox.append((now, data))
            return
        self.stamp = time.perf_counter()
        for kind, body in self._frame(data):
            self._message(kind, body)

    # ours
    def digest_one(self) -> bool:
        """Handle one queued message (framing the next queued bytes if need be).

        False when nothing is left queued.
        """
        if not self.unread:
            if not self.inbox:
                return False
            self.stamp, data = self.inbox.popleft()
            self.fleet.digest_lag = max(self.fleet.digest_lag, time.perf_counter() - self.stamp)
            self.unread.extend(self._frame(data))
            if not self.unread:
                return bool(self.inbox)
        kind, body = self.unread.popleft()
        self._message(kind, body)
        return bool(self.unread or self.inbox)

    def _frame(self, data: bytes) -> list[tuple[int, bytes]]:
        try:
            return self.framing.feed(data)
        except Exception as error:
            self.problem = f"framing: {error}"
            assert self.transport is not None
            self.transport.close()
            return []

    def _message(self, kind: int, body: bytes) -> None:
        if kind == UPDATE:
            self._update(body)
        elif kind == KEEPALIVE:
            if self.neg is not None:
                self.established.set()
        elif kind == OPEN_:
            self._open(body)
        elif kind == NOTIFICATION:
            self.problem = f"NOTIFICATION {body[:2].hex()} {body[2:].hex()}"

    def _open(self, body: bytes) -> None:
        received = decode_open(body)
        self.neg = negotiate(self.sent_open, received, AS, AS)
        self.cache = self.fleet.cache_for(self.neg)
        attrs = PathAttributes(next_hop=self.hop, local_pref=LOCAL_PREF)
        messages = encode_announcements(V4, attrs, self.prefixes, self.neg) if self.prefixes else []
        self.outgoing = b"".join([*messages, encode_end_of_rib(V4)])
        assert self.transport is not None
        self.transport.write(KEEPALIVE_MESSAGE)
        hold = min(HOLD_TIME, received.hold_time)
        self._schedule_keepalive(hold / 3 if hold else 30.0)

    def _schedule_keepalive(self, every: float) -> None:
        def send() -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(KEEPALIVE_MESSAGE)
                self._schedule_keepalive(every)

        self.keepalive = asyncio.get_running_loop().call_later(every, send)

    def _update(self, body: bytes) -> None:
        self.messages += 1
        fleet = self.fleet
        update = self.cache.get(body)
        if update is None:
            assert self.neg is not None
            update = decode_update(body, self.neg)
            fleet.decoded += 1
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[body] = update
        else:
            fleet.cache_hits += 1
        held = self.held
        before = len(held)
        count = 0
        for reach in update.reach:
            if reach.family != V4 or not reach.prefixes:
                continue
            hop = reach.attributes.next_hop
            if hop == self.hop:
                self.echoed += len(reach.prefixes)
                continue
            if self.own and reach.prefixes[0] in self.own:  # the server's: its own next hop
                self.own_received += len(reach.prefixes)
                held.update(reach.prefixes)
                count += len(reach.prefixes)
                continue
            if hop != self.expected_hop(reach.prefixes[0]):
                self.wrong_hop += 1
            held.update(reach.prefixes)
            count += len(reach.prefixes)
        for unreach in update.unreach:
            if unreach.family == V4:
                held.difference_update(unreach.prefixes)
                count += len(unreach.prefixes)
        if count:
            fleet.received += count
        if self.done_at is None and len(held) >= self.want and len(held) != before:
            self.done_at = self.stamp
            fleet.pending -= 1
            if fleet.pending == 0:
                fleet.all_done.set()

    def announce(self) -> None:
        """Write every UPDATE and the End-of-RIB (t0 has been taken)."""
        assert self.transport is not None
        self.transport.write(self.outgoing)

    def close(self) -> None:
        """Cease and close."""
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_notification(Notification.shutdown("benchmark over")))
            self.transport.close()


async def establish(client: Client, server: str, deadline: float) -> None:
    """Connect ``client`` until its session is Established (or ``deadline`` passes)."""
    loop = asyncio.get_running_loop()
    last = "never tried"
    while time.monotonic() < deadline:
        client.framing = MessageReader()
        client.neg = None
        client.lost.clear()
        try:
            await loop.create_connection(
                lambda: client, server, 179, local_addr=(client.address, 0)
            )
        except OSError as error:
            last = str(error)
            await asyncio.sleep(CONNECT_RETRY)
            continue
        up = asyncio.ensure_future(client.established.wait())
        lost = asyncio.ensure_future(client.lost.wait())
        await asyncio.wait(
            {up, lost}, timeout=max(0.0, deadline - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )  # fmt: skip
        up.cancel()
        lost.cancel()
        if client.established.is_set() and not client.lost.is_set():
            return
        last = client.problem or "closed before Established"
        client.problem = None
        client.established.clear()
        if client.transport is not None:
            client.transport.close()
        await asyncio.sleep(CONNECT_RETRY)
    raise TimeoutError(f"client {client.address}: no session with {server} ({last})")


def _hop_function(case: Case, first: str) -> Callable[[int], bytes]:
    """The next hop a prefix of ``case`` must carry: its originating client's address."""
    hops = [ipaddress.IPv4Address(client_address(first, i)).packed for i in range(case.clients)]
    if case.name == "calico":
        return lambda p: hops[(p >> 16) & 0xFF]  # 198.19.i.x/26 belongs to client i
    return lambda _p: hops[0]


async def run_clients(args: argparse.Namespace) -> dict[str, Any]:
    """The ``clients`` command: establish, settle, announce, count (module docstring)."""
    case = CASES[args.case]
    count = args.count or case.clients
    tables = [case.announce(i) for i in range(count)]
    total = sum(len(t) for t in tables)
    fleet = Fleet(count)
    hop = _hop_function(case, args.first)
    own = frozenset(prefix_from_text(p) for p in args.own.split(",") if p)
    clients = []
    for i in range(count):
        want = total - len(tables[i]) + len(own) if case.receives else 0
        client = Client(fleet, i, client_address(args.first, i), tables[i], want)
        client.expected_hop = hop
        client.own = own
        clients.append(client)
    pids = [int(p) for p in args.watch_pids.split(",") if p]
    started = time.perf_counter()
    deadline = time.monotonic() + ESTABLISH_TIMEOUT
    await asyncio.gather(*(establish(c, args.server, deadline) for c in clients))
    established = time.perf_counter()
    say(f"established {count} sessions in {established - started:.2f} s")
    await asyncio.sleep(args.settle)
    dropped = [c.address for c in clients if c.lost.is_set()]
    if dropped:
        raise RuntimeError(f"sessions dropped before t0: {dropped[:5]}")
    at_t0 = {pid: proc_status(pid) for pid in pids}
    cpu_t0 = {pid: cpu_seconds(pid) for pid in pids}
    own_cpu_t0 = time.process_time()
    for client in clients:
        if client.want == 0:
            client.done_at = time.perf_counter()
            fleet.pending -= 1
    digesting = asyncio.ensure_future(fleet.digest_forever())
    digesting.add_done_callback(fleet.digest_ended)
    fleet.recording = True
    t0 = time.perf_counter()
    say(f"t0 {time.monotonic():.6f}")  # for a harness watching another process (bench.suite)
    for client in clients:
        client.announce()
    fleet.last_progress = t0
    outcome = "complete"
    if fleet.pending <= 0:
        fleet.all_done.set()
    while not fleet.all_done.is_set():
        try:
            await asyncio.wait_for(fleet.all_done.wait(), 0.2)
        except TimeoutError:
            now = time.perf_counter()
            if now - t0 > args.timeout:
                outcome = f"timeout after {args.timeout:g} s"
                break
            if now - fleet.last_progress > args.stall:
                outcome = f"stalled: nothing received for {args.stall:g} s"
                break
    own_cpu = time.process_time() - own_cpu_t0
    digesting.cancel()
    if fleet.failure is not None:
        outcome = fleet.failure
    # Clients whose table was full before t0 (a reflector's own blocks, with nothing else to
    # receive) have no time of their own.
    timed = [(c, c.done_at - t0) for c in clients if c.done_at is not None and c.done_at >= t0]
    times = sorted(seconds for c, seconds in timed if c.want)
    await asyncio.sleep(0.5)  # let the server's memory settle before reading its peak
    peak = {pid: proc_status(pid) for pid in pids}
    cpu = {pid: cpu_seconds(pid) - cpu_t0[pid] for pid in pids}
    if args.linger:  # sessions kept up (keepalives go on) while the harness measures
        say(json.dumps({"lingering": args.linger}))
        await asyncio.sleep(args.linger)
    for client in clients:
        client.close()
    await asyncio.sleep(0.1)
    holding = sorted(len(c.held) for c in clients)
    return {
        "case": case.name,
        "clients": count,
        "prefixes_announced": total,
        "outcome": outcome,
        "establish_seconds": established - started,
        "settle_seconds": args.settle,
        "full_table_seconds": max((seconds for _c, seconds in timed), default=0.0)
        if outcome == "complete"
        else None,
        "first_client_seconds": times[0] if times else None,
        "median_client_seconds": times[len(times) // 2] if times else None,
        "clients_complete": sum(1 for c in clients if c.done_at is not None),
        "fewest_prefixes_held": holding[0],
        "most_prefixes_held": holding[-1],
        "echoed_own_prefixes": sum(c.echoed for c in clients),
        "server_prefixes": len(own),
        "server_prefixes_received_fewest": min(c.own_received for c in clients),
        "wrong_next_hop_updates": sum(c.wrong_hop for c in clients),
        "updates_received": sum(c.messages for c in clients),
        "bytes_received": sum(c.bytes for c in clients),
        "distinct_updates_decoded": fleet.decoded,
        "decode_cache_hits": fleet.cache_hits,
        "longest_digest_lag_seconds": fleet.digest_lag,
        "clients_cpu_seconds": own_cpu,
        "problems": sorted({c.problem for c in clients if c.problem})[:5],
        "watched": {
            str(pid): {
                "rss_at_t0": at_t0[pid].get("VmRSS", 0),
                "peak_rss": peak[pid].get("VmHWM", 0),
                "cpu_seconds": cpu[pid],
            }
            for pid in pids
        },
    }


# -- the relay (no reflector) -----------------------------------------------------------------


class Relay:
    """Every client's UPDATEs copied undecoded to every other client (module docstring)."""

    def __init__(self, local: str, expect_eor: int = 0, forward: bool = True) -> None:
        self.local = local
        self.up: list[RelaySession] = []
        self.flush_scheduled = False
        self.expect_eor = expect_eor
        self.end_of_ribs = 0
        self.forwarding = forward

    def forward(self, source: RelaySession, frames: list[bytes]) -> None:
        """Queue ``frames`` for every Established session but ``source``."""
        if self.expect_eor:
            self.end_of_ribs += frames.count(END_OF_RIB)
            if self.end_of_ribs >= self.expect_eor:  # every client's table is in
                say(f"received {self.end_of_ribs} {time.monotonic():.6f}")  # mesh_scale reads it
                self.expect_eor = 0
        if not self.forwarding:
            return
        for session in self.up:
            if session is not source:
                session.pending.extend(frames)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """One write per session of everything queued for it."""
        self.flush_scheduled = False
        for session in self.up:
            if session.pending and session.transport is not None:
                session.transport.write(b"".join(session.pending))
                session.pending.clear()


class RelaySession(asyncio.Protocol):
    """One accepted client session of the relay."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.framing = MessageReader()
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.opened = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.transport.write(encode_open(_our_open(self.relay.local)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.relay.up:
            self.relay.up.remove(self)

    def data_received(self, data: bytes) -> None:
        frames = []
        for kind, body in self.framing.feed(data):
            if kind == UPDATE:
                frames.append(frame(MessageType.UPDATE, body))
            elif kind == OPEN_ and not self.opened:
                self.opened = True
                assert self.transport is not None
                self.transport.write(KEEPALIVE_MESSAGE)
            elif kind == KEEPALIVE and self.opened and self not in self.relay.up:
                self.relay.up.append(self)
            elif kind == NOTIFICATION and self.transport is not None:
                self.transport.close()
        if frames:
            self.relay.forward(self, frames)


async def run_relay(args: argparse.Namespace) -> None:
    """The ``relay`` command: serve until killed, keepalives included."""
    relay = Relay(args.local, args.expect_eor, not args.no_forward)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RelaySession(relay), args.local, 179)
    say("listening")
    async with server:
        while True:
            await asyncio.sleep(HOLD_TIME / 3)
            for session in list(relay.up):
                if session.transport is not None:
                    session.transport.write(KEEPALIVE_MESSAGE)


def _run(coroutine: Any) -> Any:
    try:
        import uvloop  # noqa: PLC0415 - uvloop when installed, asyncio's loop otherwise
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    clients = commands.add_parser("clients", help="run every client of a case")
    clients.add_argument("--case", choices=sorted(CASES), required=True)
    clients.add_argument("--count", type=int, help="clients (default: the case's)")
    clients.add_argument("--server", required=True, help="the reflector's (or relay's) address")
    clients.add_argument("--first", required=True, help="client 0's address")
    clients.add_argument("--watch-pids", default="", help="comma-separated server PIDs")
    clients.add_argument("--settle", type=float, default=1.0)
    clients.add_argument("--timeout", type=float, default=600.0)
    clients.add_argument("--stall", type=float, default=30.0)
    clients.add_argument("--linger", type=float, default=0.0, help="keep sessions up after")
    clients.add_argument(
        "--own", default="", help="prefixes the server originates itself (in the full table)"
    )
    relay = commands.add_parser("relay", help="copy UPDATEs between clients (no reflector)")
    relay.add_argument("--local", required=True)
    relay.add_argument("--expect-eor", type=int, default=0, help="say when that many EoRs came")
    relay.add_argument("--no-forward", action="store_true", help="a sink: forward nothing")
    args = parser.parse_args(argv)
    if args.command == "relay":
        _run(run_relay(args))
        return 0
    try:
        result = _run(run_clients(args))
    except Exception as error:  # the harness reads the reason from the last line
        say(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    say(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
