"""Slow members: a reflector with 1,000 clients, some of which stop reading, under steady churn.

Run it (root):

    .venv/bin/python -m bench.slow_members [--clients 1000] [--stalled 10] [--seconds 60]
        [--rate 50] [--prefixes 128] [--output-buffer 262144] [--json] [--save bench/results]

What it shows: output to a peer is bounded (Myna's ``output_buffer``: past it the RIB holds the
peer's output and keeps only the latest state per prefix), so the reflector's memory stays flat
however long a client does not read, and the clients that do read converge as fast as when
nobody stalls. Two rows, in one run and one harness, each in fresh namespaces with a fresh
daemon: ``none stalled`` and ``N stalled``.

Data flow, per row: a ``tests/testbed`` ``Topology`` with ``rr`` (198.18.0.1, Myna as route
reflector: one passive iBGP peer per client, each a client, ``output_buffer`` as given, no
kernel) and ``clients`` (198.18.0.2 and one address per client from 198.18.0.10 up, on
consecutive /24s; ``rr`` reaches them through a /22 on its eth0). ``rr``'s TCP send buffers are
capped (``net.ipv4.tcp_wmem`` in its namespace, 64 KiB) so that a client's unread data piles
up where Myna can see it, in its own write buffer, within seconds rather than after the
kernel's several megabytes. The worker (``--worker``, one uvloop process in ``clients``) runs
every client: client i announces one /26 (198.19.0.0/16, four per /24); the first ``--churners``
clients also own 256 /32s each (198.18.128.0/17). Once every client is Established and holds
every other client's /26, the stalled clients (the last ``--stalled``, each with a 4 KiB
receive buffer) stop reading, and churn starts: ``--rate`` UPDATEs a second, round robin over
the churners, each announcing ``--prefixes`` of its /32s with MED = the UPDATE's sequence
number. A sample of the reading clients (``--sample``) decodes what it receives and notes when
it first holds each prefix at each MED; the others read and discard. An UPDATE's convergence
time is from its write until the last sampled client holds all its prefixes at its MED. The
reflector's RSS is read every second. After ``--seconds`` of churn the stalled clients read
again; the row ends when each of them holds exactly the latest MED of every churned prefix
(the latest state, as the reading clients do), or fails after ``--drain-timeout``.

Reported per row: convergence median and 99th percentile (ms), UPDATEs that never converged,
the reflector's RSS when churn starts, at its peak and at the end, the RSS growth over the
second half of the churn (a leak grows with time; a bound does not), the stalled clients' drain
time, and whether they ended with the latest state. Cleanup: every process is started through
the topology and stopped by PID when its ``with`` block ends, however it ends; every address is
inside 198.18.0.0/15 (the /26 blocks in 198.19.0.0/16).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import Host, Neighbor, Topology
from testbed.topology import run as run_command

from bench.bgp_clients import AS, HOLD_TIME, proc_status, say
from bench.reflector_fanout import FIRST_CLIENT, ReflectorMyna
from bench.results_file import machine, save
from speaker.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.control_messages import KEEPALIVE_MESSAGE
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated, negotiate
from speaker.open_message import Open, decode_open, encode_open
from speaker.path_attributes import PathAttributes
from speaker.update_message import Update, decode_update, encode_announcements, encode_end_of_rib
from speaker.wire_codes import Family, MessageType

REPO = Path(__file__).resolve().parents[1]
V4 = Family.IPV4_UNICAST
UPDATE, OPEN_, KEEPALIVE = (
    int(MessageType.UPDATE),
    int(MessageType.OPEN),
    int(MessageType.KEEPALIVE),
)
BLOCKS = int(ipaddress.IPv4Address("198.19.0.0"))
POOLS = int(ipaddress.IPv4Address("198.18.128.0"))
MIB = 1 << 20


def member_addresses(count: int) -> list[str]:
    """The clients' addresses from 198.18.0.10 up, in 198.18.0.0/22, none ending in .0 or .255
    (the reflector's /24 takes 198.18.0.255 as its broadcast address)."""
    out: list[str] = []
    address = ipaddress.IPv4Address(FIRST_CLIENT)
    while len(out) < count:
        if address.packed[3] not in (0, 255):
            out.append(str(address))
        address += 1
    if ipaddress.IPv4Address(out[-1]) not in ipaddress.IPv4Network("198.18.0.0/22"):
        raise ValueError(f"{count} clients do not fit in 198.18.0.0/22")
    return out


def block_of(i: int) -> int:
    """Client i's /26: four per /24 of 198.19.0.0/16."""
    return ((BLOCKS + 64 * i) << 8) | 26


def pool_of(j: int) -> list[int]:
    """Churner j's 256 /32s in 198.18.128.0/17."""
    return [((POOLS + (j << 8) + n) << 8) | 32 for n in range(256)]


# -- the worker: every client in one process ----------------------------------------------------


class Member(asyncio.Protocol):
    """One client session; ``decodes``: a sampled client that records what it holds and when."""

    def __init__(self, worker: Worker, index: int, address: str, decodes: bool) -> None:
        self.worker = worker
        self.index = index
        self.address = address
        self.decodes = decodes
        self.transport: asyncio.Transport | None = None
        self.framing = MessageReader()
        self.neg: Negotiated | None = None
        self.established = asyncio.Event()
        self.held: dict[int, int] = {}  # prefix -> MED held (sampled and stalled clients)
        self.problem: str | None = None
        self.bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(encode_open(self.worker.open_for(self.address)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.problem is None and not self.worker.closing:
            self.problem = f"session closed ({exc or 'by the server'})"

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.decodes and self.neg is not None and self.established.is_set():
            return  # a plain reader: the bytes are taken, not looked at
        for kind, body in self.framing.feed(data):
            if kind == UPDATE and self.neg is not None:
                self.worker.apply(self, body)
            elif kind == KEEPALIVE and self.neg is not None:
                self.established.set()
            elif kind == OPEN_:
                received = decode_open(body)
                self.neg = negotiate(self.worker.open_for(self.address), received, AS, AS)
                assert self.transport is not None
                self.transport.write(KEEPALIVE_MESSAGE)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class Worker:
    """The clients, the churn and the measurements (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.closing = False
        self.decoded: dict[bytes, Update] = {}
        # churn sequence -> (write time, prefixes, when each sampled client held all of them)
        self.sent: dict[int, tuple[float, tuple[int, ...]]] = {}
        self.done: dict[int, float] = {}
        self.waiting: dict[int, set[int]] = {}  # sequence -> sampled clients not there yet
        self.latest: dict[int, int] = {}  # churned prefix -> the MED it was last sent with
        self.stalled = set(range(args.clients - args.stalled, args.clients))

    def open_for(self, address: str) -> Open:
        caps = (MultiprotocolCapability(1, 1), FourOctetAsCapability(AS))
        return Open(AS, HOLD_TIME, int(ipaddress.IPv4Address(address)), caps)

    def apply(self, member: Member, body: bytes) -> None:
        update = self.decoded.get(body)
        if update is None:
            assert member.neg is not None
            update = decode_update(body, member.neg)
            if len(self.decoded) > 50_000:
                self.decoded.clear()
            self.decoded[body] = update
        held = member.held
        for gone in update.unreach:
            for prefix in gone.prefixes:
                held.pop(prefix, None)
        now = time.perf_counter()
        for reach in update.reach:
            med = reach.attributes.med or 0
            for prefix in reach.prefixes:
                held[prefix] = med
            clients = self.waiting.get(med)
            if clients is not None and member.index in clients:
                sequence_prefixes = self.sent[med][1]
                if all(held.get(p) == med for p in sequence_prefixes):
                    clients.discard(member.index)
                    if not clients:
                        del self.waiting[med]
                        self.done[med] = now


async def _establish(member: Member, server: str, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        member.framing = MessageReader()
        member.neg = None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            if member.index in member.worker.stalled:
                # A small window: unread data piles up at the reflector, not in this socket.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((member.address, 0))
            await loop.sock_connect(sock, (server, 179))
            await loop.create_connection(lambda: member, sock=sock)
            await asyncio.wait_for(member.established.wait(), 10)
            return
        except (OSError, TimeoutError):
            sock.close()
            await asyncio.sleep(0.3)
    raise TimeoutError(f"client {member.address}: no session with {server}")


async def _keepalives(members: list[Member]) -> None:
    """Every client's KEEPALIVE, a third of the hold time apart (the stalled ones' too)."""
    while True:
        await asyncio.sleep(HOLD_TIME / 3)
        for member in members:
            member.send(KEEPALIVE_MESSAGE)


async def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Establish, stall, churn, drain, measure (see the module docstring)."""
    worker = Worker(args)
    count = args.clients
    readers = [i for i in range(count) if i not in worker.stalled]
    step = max(1, len(readers) // args.sample)
    sampled = set(readers[args.churners :: step][: args.sample])
    addresses = member_addresses(count)
    members = [
        Member(worker, i, addresses[i], i in sampled or i in worker.stalled) for i in range(count)
    ]
    pid = args.watch_pid
    deadline = time.monotonic() + 180
    await asyncio.gather(*(_establish(m, args.server, deadline) for m in members))
    say(f"established {count} sessions")
    asyncio.get_running_loop().create_task(_keepalives(members))
    for member in members:  # every client's /26, then End-of-RIB
        assert member.neg is not None
        attrs = PathAttributes(
            next_hop=ipaddress.IPv4Address(member.address).packed, local_pref=100
        )
        wire = b"".join(encode_announcements(V4, attrs, [block_of(member.index)], member.neg))
        member.send(wire + encode_end_of_rib(V4))
    blocks = {block_of(i) for i in range(count)}
    until = time.monotonic() + 120
    watchers = [m for m in members if m.decodes]
    while time.monotonic() < until and not all(
        len(blocks & m.held.keys()) >= count - 1 for m in watchers
    ):
        await asyncio.sleep(0.1)
    if not all(len(blocks & m.held.keys()) >= count - 1 for m in watchers):
        raise RuntimeError("the clients never held every block")
    say("every block held; the stalled clients stop reading")
    for member in members:
        if member.index in worker.stalled and member.transport is not None:
            member.transport.pause_reading()
    rss_start = proc_status(pid)["VmRSS"]
    samples: list[tuple[float, int]] = []
    interval = 1.0 / args.rate
    churners = members[: args.churners]
    pools = [pool_of(j) for j in range(args.churners)]
    offsets = [0] * args.churners
    started = time.perf_counter()
    next_sample = started
    sequence = 0
    loop_deadline = started + args.seconds
    while time.perf_counter() < loop_deadline:
        sequence += 1
        j = sequence % args.churners
        pool, offset = pools[j], offsets[j]
        prefixes = tuple(pool[(offset + n) % 256] for n in range(args.prefixes))
        offsets[j] = (offset + args.prefixes) % 256
        churner = churners[j]
        assert churner.neg is not None
        attrs = PathAttributes(
            next_hop=ipaddress.IPv4Address(churner.address).packed, local_pref=100, med=sequence
        )
        worker.sent[sequence] = (time.perf_counter(), prefixes)
        worker.waiting[sequence] = set(sampled)
        for prefix in prefixes:
            worker.latest[prefix] = sequence
        churner.send(b"".join(encode_announcements(V4, attrs, prefixes, churner.neg)))
        now = time.perf_counter()
        if now >= next_sample:
            samples.append((now - started, proc_status(pid)["VmRSS"]))
            next_sample += 1.0
        await asyncio.sleep(max(0.0, started + sequence * interval - time.perf_counter()))
    churn_end = time.perf_counter()
    await asyncio.sleep(2.0)  # the last UPDATEs' convergence
    rss_end = proc_status(pid)["VmRSS"]
    peak = proc_status(pid)["VmHWM"]
    converge = sorted(
        (worker.done[s] - worker.sent[s][0]) * 1000 for s in worker.sent if s in worker.done
    )
    say("churn over; the stalled clients read again")
    drain_started = time.perf_counter()
    stalled = [m for m in members if m.index in worker.stalled]
    for member in stalled:
        if member.transport is not None:
            member.transport.resume_reading()

    def latest_state(member: Member) -> bool:
        return all(member.held.get(p) == med for p, med in worker.latest.items())

    drained_in = None
    drain_deadline = drain_started + args.drain_timeout
    while time.perf_counter() < drain_deadline:
        if all(latest_state(m) for m in stalled):
            drained_in = time.perf_counter() - drain_started
            break
        await asyncio.sleep(0.05)
    worker.closing = True
    second_half = [rss for t, rss in samples if t >= args.seconds / 2]
    growth = (second_half[-1] - second_half[0]) if len(second_half) > 1 else 0
    return {
        "clients": count,
        "stalled": args.stalled,
        "churn_seconds": churn_end - started,
        "updates_sent": sequence,
        "prefixes_per_update": args.prefixes,
        "converged": len(converge),
        "never_converged": sequence - len(converge),
        "converge_median_ms": statistics.median(converge) if converge else None,
        "converge_p99_ms": converge[int(len(converge) * 0.99) - 1] if converge else None,
        "rss_at_churn_start_mib": rss_start / MIB,
        "rss_peak_mib": peak / MIB,
        "rss_at_end_mib": rss_end / MIB,
        "rss_growth_second_half_mib": growth / MIB,
        "rss_samples_mib": [(round(t, 1), round(r / MIB, 2)) for t, r in samples],
        "stalled_drain_seconds": drained_in,
        "stalled_hold_latest_state": drained_in is not None,
        "problems": sorted({m.problem for m in members if m.problem})[:5],
        "sampled_clients": len(sampled),
    }


# -- the harness ---------------------------------------------------------------------------------


class SlowMembersMyna(ReflectorMyna):
    """The fan-out benchmark's Myna reflector with a per-peer output bound.

    ``binary``: another checkout's ``myna`` (``--baseline``), which may predate the bound
    (``output_buffer`` None: the key is left out of its config).
    """

    output_buffer: int | None = 4 << 20
    binary: Path | None = None

    def config(self) -> dict[str, Any]:
        """The reflector's config and ``output_buffer``."""
        extra = {} if self.output_buffer is None else {"output_buffer": self.output_buffer}
        return {**super().config(), **extra}

    def _launch(self) -> None:
        if self.binary is None:
            super()._launch()
            return
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self._spawn(self.binary, "run", "-c", self.config_path, log="myna.log")


def add_addresses(rr: Host, clients: Host, count: int) -> None:
    """The clients' addresses on consecutive /24s, and rr's way to them (a /22 on eth0)."""
    lines = "".join(f"addr add {address}/22 dev eth0\n" for address in member_addresses(count))
    run_command("ip", "-n", clients.netns, "-batch", "-", stdin=lines)
    run_command("ip", "-n", rr.netns, "route", "add", "198.18.0.0/22", "dev", "eth0")
    # Small TCP send buffers at the reflector: unread data piles up in Myna's own buffer.
    run_command(
        "ip", "netns", "exec", rr.netns, "sysctl", "-qw", "net.ipv4.tcp_wmem=4096 16384 65536"
    )


def run_row(stalled: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row in fresh namespaces (see the module docstring)."""
    with Topology() as topology:
        rr, clients = topology.add_host("rr"), topology.add_host("clients")
        add_addresses(rr, clients, args.clients)
        addresses = member_addresses(args.clients)
        SlowMembersMyna.output_buffer = None if args.baseline else args.output_buffer
        SlowMembersMyna.binary = None if args.baseline is None else args.baseline / ".venv/bin/myna"
        daemon = SlowMembersMyna(
            rr, rr.ipv4, AS, [Neighbor(a, AS, passive=True) for a in addresses],
            hold_time=HOLD_TIME, keepalive_time=HOLD_TIME // 3,
        ).start()  # fmt: skip
        myna = daemon.processes[0]
        log = clients.workdir / "worker.log"
        worker = clients.popen(
            sys.executable, "-m", "bench.slow_members", "--worker",
            "--server", rr.ipv4, "--watch-pid", str(myna.pid),
            "--clients", str(args.clients), "--stalled", str(stalled),
            "--seconds", str(args.seconds), "--rate", str(args.rate),
            "--prefixes", str(args.prefixes), "--churners", str(args.churners),
            "--sample", str(args.sample), "--drain-timeout", str(args.drain_timeout),
            log=log, cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + args.seconds + args.drain_timeout + 300
        while worker.poll() is None:
            if myna.poll() is not None:
                worker.kill()
                raise RuntimeError(f"Myna exited:\n{daemon.log_tail(10)}")
            if time.monotonic() > deadline:
                worker.kill()
                raise RuntimeError("the worker did not finish")
            time.sleep(0.5)
        lines = log.read_text().splitlines()
        result: dict[str, Any] = json.loads(lines[-1])
        if "error" in result:
            raise RuntimeError(f"{result['error']}\n{daemon.log_tail(10)}")
        # The transport logs when a peer's buffer passes output_buffer: the bound was reached.
        text = (daemon.workdir / "myna.log").read_text(errors="replace")
        result["peers_held_at_the_bound"] = len(
            {line.split("]")[0] for line in text.splitlines() if "the peer is not reading" in line}
        )
        return result


def _drained(stalled: int, seconds: float | None) -> str:
    if not stalled:
        return "-"
    return "failed" if seconds is None else f"{seconds:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of both rows."""
    head = (
        "| row | converge median (ms) | p99 (ms) | never converged | RSS at churn start (MiB) "
        "| peak (MiB) | end (MiB) | growth, 2nd half (MiB) | held at the bound "
        "| stalled drained in (s) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    out = []
    for r in rows:
        drained = r["stalled_drain_seconds"]
        out.append(
            f"| {r['stalled']} stalled of {r['clients']} | {r['converge_median_ms']:.1f} "
            f"| {r['converge_p99_ms']:.1f} | {r['never_converged']} "
            f"| {r['rss_at_churn_start_mib']:.1f} | {r['rss_peak_mib']:.1f} "
            f"| {r['rss_at_end_mib']:.1f} | {r['rss_growth_second_half_mib']:+.1f} "
            f"| {r['peers_held_at_the_bound']} | {_drained(r['stalled'], drained)} |"
        )
    return head + "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--stalled", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=50.0, help="churn UPDATEs a second")
    parser.add_argument("--prefixes", type=int, default=128, help="/32s per churn UPDATE")
    parser.add_argument("--churners", type=int, default=16)
    parser.add_argument("--sample", type=int, default=32, help="reading clients that decode")
    parser.add_argument("--output-buffer", type=int, default=256 * 1024)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument(
        "--baseline", type=Path, help="run the myna of this checkout (its .venv) instead"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--watch-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        try:
            import uvloop  # noqa: PLC0415 - the worker runs on uvloop, like the clients of fan-out

            result = uvloop.run(run_worker(args))
        except Exception as error:  # the harness reads the reason from the last line
            say(json.dumps({"error": f"{type(error).__name__}: {error}"}))
            return 1
        say(json.dumps(result))
        return 0
    rows = []
    for stalled in (0, args.stalled) if args.stalled else (0,):
        print(f"row: {stalled} stalled of {args.clients} ...", file=sys.stderr)
        rows.append(run_row(stalled, args))
    text = table(rows)
    if args.json:
        print(json.dumps({"rows": rows}, indent=1))
    else:
        print(text)
    if args.save:
        command = "python -m bench.slow_members " + " ".join(argv or sys.argv[1:])
        path = save(
            "slow-members",
            "Slow members: a reflector with stalled clients under churn",
            command,
            text,
            {"rows": rows},
            args.save,
            machine(),
        )
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
