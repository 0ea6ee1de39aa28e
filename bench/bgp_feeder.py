"""A minimal BGP speaker that feeds one peer a fixed table of IPv4 routes, for benchmarks.

Run it (in a network namespace that reaches the peer; ``bench/rib_memory.py`` does):

    .venv/bin/python -m bench.bgp_feeder --peer 198.18.0.1 --local 198.18.0.2 \\
        [--count N] [--attrs shared|distinct] [--local-as 64512] [--peer-as 64512] [--first A]

Data flow: the feeder connects to the peer's port 179 from ``--local``, sends an OPEN (IPv4
unicast, 4-octet AS) built with Myna's codec, answers the peer's OPEN with a KEEPALIVE and,
once the peer's KEEPALIVE arrives, encodes the whole table with ``encode_announcements`` for
the negotiated session (so encoding is never part of what a benchmark times) and prints
``established``. Commands come on stdin, one per line: ``send`` writes every UPDATE and an
End-of-RIB and prints ``sent <prefixes> <messages> <seconds>``; ``withdraw`` withdraws every
prefix and prints ``withdrawn <prefixes> <messages> <seconds>`` (so a benchmark can load the
peer again and again on one session); ``stop`` (or end of input) sends a Cease NOTIFICATION
and exits. Meanwhile a KEEPALIVE goes out every third of the
negotiated hold time; whatever the peer sends is read and dropped (a NOTIFICATION from it is
printed and ends the feeder with status 1). Lines go to stdout, flushed, one event each.

The table (``benchmark_prefixes`` and ``route_groups``) is shared with the in-process side of
the benchmarks, so both sides load exactly the same routes: every prefix inside 198.18.0.0/15
first, longest first (131,072 /32s, then 65,536 /31s, ... down to the /15 itself: 262,143 in
all, which is every distinct prefix the block has), then, past that, /32s counting up from
198.20.0.0, the next address after the block (``SPILL_START``; the same continuation
``tests/test_rib.py``'s 1,000,000-prefix test uses). Those only ever exist as NLRI inside the
benchmark's own namespaces: no daemon there has a kernel protocol, so nothing is routed.
``--first ADDRESS`` announces /32s counting up from ADDRESS instead (``bench.bfd_scale`` puts
100,000 of them from 198.18.64.0 into a daemon's kernel, clear of the addresses in use).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import time

from speaker.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.control_messages import KEEPALIVE_MESSAGE, Notification, encode_notification
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated, negotiate
from speaker.open_message import decode_open, encode_open, open_for
from speaker.path_attributes import PathAttributes
from speaker.update_message import encode_announcements, encode_end_of_rib, encode_withdrawals
from speaker.wire_codes import Family, MessageType

V4 = Family.IPV4_UNICAST
BLOCK = ipaddress.IPv4Network("198.18.0.0/15")
SPILL_START = int(BLOCK.broadcast_address) + 1  # 198.20.0.0: /32s past the block
DISTINCT_EVERY = 1000  # prefixes per attribute set with --attrs distinct
LOCAL_PREF = 100
HOLD_TIME = 90

RouteGroup = tuple[PathAttributes, list[int]]


def benchmark_prefixes(count: int) -> list[int]:
    """``count`` distinct IPv4 prefix ints (``network << 8 | length``; see the docstring)."""
    base = int(BLOCK.network_address)
    size = BLOCK.num_addresses
    out: list[int] = []
    for length in range(32, BLOCK.prefixlen - 1, -1):
        step = 1 << (32 - length)
        room = count - len(out)
        if room <= 0:
            break
        out.extend(((base + i) << 8) | length for i in range(0, min(size, room * step), step))
    room = count - len(out)
    if room > 0:
        out.extend(((SPILL_START + i) << 8) | 32 for i in range(room))
    return out


def inside_block(count: int) -> int:
    """How many of ``benchmark_prefixes(count)`` lie inside 198.18.0.0/15."""
    return min(count, 2 * BLOCK.num_addresses - 1)


def route_groups(
    count: int, distinct: bool, next_hop: str, first: str | None = None
) -> list[RouteGroup]:
    """The table: one attribute set for all (``distinct`` False) or one per 1,000 prefixes.

    Sets are what an iBGP peer sends: ORIGIN IGP, empty AS_PATH, NEXT_HOP, LOCAL_PREF 100;
    the distinct ones differ in MED (the number of their 1,000-prefix block). ``first``: /32s
    from that address instead of ``benchmark_prefixes``.
    """
    if first is None:
        prefixes = benchmark_prefixes(count)
    else:
        start = int(ipaddress.IPv4Address(first))
        prefixes = [((start + i) << 8) | 32 for i in range(count)]
    hop = ipaddress.IPv4Address(next_hop).packed
    if not distinct:
        return [(PathAttributes(next_hop=hop, local_pref=LOCAL_PREF), prefixes)]
    return [
        (
            PathAttributes(next_hop=hop, local_pref=LOCAL_PREF, med=i // DISTINCT_EVERY),
            prefixes[i : i + DISTINCT_EVERY],
        )
        for i in range(0, count, DISTINCT_EVERY)
    ]


def encode_routes(groups: list[RouteGroup], neg: Negotiated) -> list[bytes]:
    """Whole UPDATE messages for the table, each packed full, then the IPv4 End-of-RIB."""
    out: list[bytes] = []
    for attrs, prefixes in groups:
        out.extend(encode_announcements(V4, attrs, prefixes, neg))
    out.append(encode_end_of_rib(V4))
    return out


def say(line: str) -> None:
    """One event line on stdout, flushed at once (a benchmark reads it through a pipe/log)."""
    print(line, flush=True)


class Feeder:
    """One outgoing session that loads the table on command (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.router_id = int(ipaddress.IPv4Address(args.router_id or args.local))
        self.sent_open = open_for(
            args.local_as,
            HOLD_TIME,
            self.router_id,
            (MultiprotocolCapability(1, 1), FourOctetAsCapability(args.local_as)),
        )
        self.established = asyncio.Event()
        self.failed: str | None = None
        self.messages: list[bytes] = []
        self.withdrawals: list[bytes] = []
        self.keepalive_every = HOLD_TIME / 3

    async def run(self) -> int:
        """Connect, serve the commands on stdin, close; the exit status."""
        args = self.args
        reader, writer = await asyncio.open_connection(
            args.peer, args.port, local_addr=(args.local, 0)
        )
        writer.write(encode_open(self.sent_open))
        receiving = asyncio.create_task(self._receive(reader, writer))
        established = asyncio.create_task(self.established.wait())
        await asyncio.wait({receiving, established}, return_when=asyncio.FIRST_COMPLETED)
        if not self.established.is_set():
            established.cancel()
            say(f"failed {self.failed or 'connection closed before Established'}")
            writer.close()
            return 1
        say("established")
        keepalives = asyncio.create_task(self._keepalives(writer))
        status = 0
        try:
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                command = line.strip()
                if receiving.done():
                    say(f"failed {self.failed or 'the peer closed the connection'}")
                    status = 1
                    break
                if command == "send":
                    started = time.perf_counter()
                    writer.write(b"".join(self.messages))
                    await writer.drain()
                    elapsed = time.perf_counter() - started
                    say(f"sent {args.count} {len(self.messages)} {elapsed:.3f}")
                elif command == "withdraw":
                    started = time.perf_counter()
                    writer.write(b"".join(self.withdrawals))
                    await writer.drain()
                    elapsed = time.perf_counter() - started
                    say(f"withdrawn {args.count} {len(self.withdrawals)} {elapsed:.3f}")
                elif not command or command == "stop":
                    break
                else:
                    say(f"unknown command {command!r}")
        finally:
            keepalives.cancel()
            receiving.cancel()
            if not writer.is_closing():
                writer.write(encode_notification(Notification.shutdown("benchmark over")))
                await writer.drain()
                writer.close()
        return status

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framing = MessageReader()
        opened = False
        while True:
            data = await reader.read(65536)
            if not data:
                self.failed = self.failed or "the peer closed the connection"
                return
            for kind, body in framing.feed(data):
                if kind == MessageType.OPEN:
                    received = decode_open(body)
                    neg = negotiate(self.sent_open, received, self.args.local_as, self.args.peer_as)
                    hold = min(HOLD_TIME, received.hold_time)
                    self.keepalive_every = hold / 3 if hold else 30.0
                    groups = route_groups(
                        self.args.count,
                        self.args.attrs == "distinct",
                        self.args.next_hop,
                        self.args.first,
                    )
                    self.messages = encode_routes(groups, neg)
                    every = [prefix for _, prefixes in groups for prefix in prefixes]
                    self.withdrawals = encode_withdrawals(V4, every, neg)
                    writer.write(KEEPALIVE_MESSAGE)
                    opened = True
                elif kind == MessageType.KEEPALIVE and opened:
                    self.established.set()
                elif kind == MessageType.NOTIFICATION:
                    self.failed = f"NOTIFICATION from the peer: {body.hex()}"
                    return

    async def _keepalives(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.keepalive_every)
            writer.write(KEEPALIVE_MESSAGE)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True, help="the peer's address")
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument("--local", required=True, help="our address (source of the connection)")
    parser.add_argument("--next-hop", help="NEXT_HOP of every route (default: --local)")
    parser.add_argument("--router-id", help="our BGP identifier (default: --local)")
    parser.add_argument("--local-as", type=int, default=64512)
    parser.add_argument("--peer-as", type=int, default=64512)
    parser.add_argument("--count", type=int, default=1_000_000, help="prefixes to announce")
    parser.add_argument("--attrs", choices=("shared", "distinct"), default="shared")
    parser.add_argument("--first", help="announce /32s from this address up instead")
    args = parser.parse_args(argv)
    args.next_hop = args.next_hop or args.local
    return asyncio.run(Feeder(args).run())


if __name__ == "__main__":
    raise SystemExit(main())
