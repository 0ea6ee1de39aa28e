"""Kernel route programming: Myna's netlink writer and dump reader beside pyroute2, in one run.

Run it (as root):  .venv/bin/python -m bench.kernel_bench [--count 100000] [--json]
                   [--sample 5000] [--repeat 3] [--save bench/results]

Rows (routes per second, best of ``--repeat`` runs, the garbage collector paused while timing
unless ``--gc``):
  a  install N /32 blackhole routes, protocol 12, table main
  b  install N /32 routes via a gateway on a veth (what Myna writes for other nodes' blocks)
  c  read a full IPv4 route dump of the namespace while it holds the N routes of row b
  d  withdraw the N routes of row b (DEL by prefix, type, protocol)

Data flow: the benchmark makes a fresh network namespace (``mynabench<pid>``, with ``lo`` and
a veth pair, 198.18.0.1/24 on ``veth0``), runs every measurement on a thread inside it (so
both libraries use ordinary sockets of the current namespace), and deletes it afterwards, even
on failure. Myna's writes go through ``RouteWriter.apply`` in both ack modes (the default
``AckMode.LAST``: one ack per 64 KiB send and an error reply per failing route;
``AckMode.EVERY``: NLM_F_ACK on every route), every change's outcome checked; the time
includes encoding from ``KernelRoute`` values. Its dump is ``dump_routes`` to a list of
``KernelRoute``.

pyroute2 (0.9) does the same work through its documented synchronous API, one call per route,
each waiting for its ack: ``IPRoute.route("add" / "del", dst=..., type=..., gateway=...,
oif=..., proto=12)`` on the first ``--sample`` routes (its rate does not depend on table size;
the sample goes into an empty table, which if anything favours it), and
``IPRoute.route("dump", family=AF_INET)`` over the same full table Myna reads, every message
decoded. Each side's time includes building its messages from its own route input.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.metadata
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pyroute2 import IPRoute

from bench.results_file import machine, save
from kernel_sync.namespaces import call_in_namespace
from kernel_sync.netlink_codes import RouteProtocol, RouteType
from kernel_sync.netlink_socket import dump_routes
from kernel_sync.route_messages import KernelRoute, RouteChange, RouteOp
from kernel_sync.route_writer import AckMode, RouteWriter

V4 = socket.AF_INET
FIRST = int(ipaddress.IPv4Address("198.18.1.0"))  # 198.18.0.0/24 is the veth's subnet
MAX_COUNT = (1 << 17) - 256  # /32s left in 198.18.0.0/15
GATEWAY = "198.18.0.2"
PROTO = int(RouteProtocol.BIRD)
Rows = dict[str, dict[str, float | None]]


def host_prefixes(count: int) -> list[int]:
    """``count`` /32 prefixes (Myna's int form) from 198.18.1.0 up."""
    return [((FIRST + i) << 8) | 32 for i in range(count)]


def ip(netns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True, text=True)


def make_namespace(netns: str) -> None:
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    ip(netns, "link", "set", "lo", "up")
    ip(netns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    ip(netns, "link", "set", "veth0", "up")
    ip(netns, "link", "set", "veth1", "up")
    ip(netns, "addr", "add", "198.18.0.1/24", "dev", "veth0")


PAUSE_GC = True  # --gc clears it: time with the garbage collector running, as in the daemon


def timed(work: Callable[[], int]) -> float:
    """Items per second of one run of ``work`` (which returns its item count), GC paused."""
    gc.collect()
    if PAUSE_GC:
        gc.disable()
    try:
        start = time.perf_counter()
        done = work()
        return done / (time.perf_counter() - start)
    finally:
        gc.enable()


class MynaSide:
    """Myna's writer and dump, driven from one event loop on the namespace thread."""

    def __init__(self, veth0: int) -> None:
        self.veth0 = veth0
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def routes(self, prefixes: list[int], via_gateway: bool) -> list[KernelRoute]:
        if via_gateway:
            gateway = ipaddress.IPv4Address(GATEWAY).packed
            return [KernelRoute(V4, p, gateway=gateway, oif=self.veth0) for p in prefixes]
        return [KernelRoute(V4, p, type=RouteType.BLACKHOLE) for p in prefixes]

    def write(self, changes: list[RouteChange], mode: AckMode) -> int:
        async def run() -> int:
            async with RouteWriter(ack_mode=mode) as writer:
                result = await writer.apply(changes)
            if not result.ok:
                failures = result.failures()
                raise SystemExit(f"Myna: {len(failures)} writes failed, e.g. {failures[0]}")
            return len(changes)

        return self.loop.run_until_complete(run())

    def dump(self) -> int:
        return len(self.loop.run_until_complete(dump_routes(V4)))


class Pyroute2Side:
    """pyroute2's synchronous IPRoute, one call per route."""

    def __init__(self, veth0: int) -> None:
        self.veth0 = veth0
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def write(self, command: str, prefixes: list[int], via_gateway: bool) -> int:
        route = self.ipr.route
        for prefix in prefixes:
            dst = f"{ipaddress.IPv4Address(prefix >> 8)}/32"
            if via_gateway:
                route(command, dst=dst, gateway=GATEWAY, oif=self.veth0, proto=PROTO)
            else:
                route(command, dst=dst, type="blackhole", proto=PROTO)
        return len(prefixes)

    def dump(self) -> int:
        return sum(1 for _ in self.ipr.route("dump", family=V4))


def best(work: Callable[[], int], repeat: int, then: Callable[[], object] = lambda: None) -> float:
    """The best rate of ``repeat`` runs of ``work``, calling ``then`` (untimed) after each."""
    rate = 0.0
    for _ in range(repeat):
        rate = max(rate, timed(work))
        then()
    return rate


def measure_writes(
    myna: MynaSide,
    pyr: Pyroute2Side,
    prefixes: list[int],
    sample: int,
    via_gateway: bool,
    repeat: int,
    expected_dump: int,
) -> dict[str, float]:
    """Install and withdraw rates of both sides for one route shape."""
    routes = myna.routes(prefixes, via_gateway)
    adds = [RouteChange(RouteOp.NEW, r) for r in routes]
    deletes = [RouteChange(RouteOp.DEL, r) for r in routes]
    rates: dict[str, float] = {}
    for mode in AckMode:
        install = withdraw = 0.0
        for _ in range(repeat):
            install = max(install, timed(lambda m=mode: myna.write(adds, m)))
            if myna.dump() != expected_dump:
                raise SystemExit("Myna: the dump does not hold every installed route")
            withdraw = max(withdraw, timed(lambda m=mode: myna.write(deletes, m)))
        rates[f"add_{mode.value}"] = install
        rates[f"del_{mode.value}"] = withdraw
    few = prefixes[:sample]
    add = functools.partial(pyr.write, "add", few, via_gateway)
    delete = functools.partial(pyr.write, "del", few, via_gateway)
    rates["pyroute2_add"] = best(add, repeat, then=delete)
    add()
    rates["pyroute2_del"] = best(delete, repeat, then=add)
    delete()
    return rates


def measure(count: int, sample: int, repeat: int) -> Rows:
    """Every row, run on a thread inside the benchmark's namespace."""
    veth0 = socket.if_nametoindex("veth0")
    myna, pyr = MynaSide(veth0), Pyroute2Side(veth0)
    prefixes = host_prefixes(count)
    rows: Rows = {}
    try:
        baseline = myna.dump()  # the veth's connected and local routes
        blackholes = measure_writes(myna, pyr, prefixes, sample, False, repeat, baseline + count)
        via = measure_writes(myna, pyr, prefixes, sample, True, repeat, baseline + count)
        for name, rates in (
            ("a: install /32 blackholes", blackholes),
            ("b: install /32 via gateway", via),
        ):
            rows[name] = {
                "myna": rates["add_last"],
                "myna_ack_every": rates["add_every"],
                "pyroute2": rates["pyroute2_add"],
            }
        # Row c reads the table that row b's routes fill.
        routes = myna.routes(prefixes, via_gateway=True)
        myna.write([RouteChange(RouteOp.NEW, r) for r in routes], AckMode.LAST)
        rows[f"c: dump a table of {count:,} routes"] = {
            "myna": best(myna.dump, repeat),
            "myna_ack_every": None,
            "pyroute2": best(pyr.dump, repeat),
        }
        myna.write([RouteChange(RouteOp.DEL, r) for r in routes], AckMode.LAST)
        rows["d: withdraw /32 via gateway"] = {
            "myna": via["del_last"],
            "myna_ack_every": via["del_every"],
            "pyroute2": via["pyroute2_del"],
        }
    finally:
        myna.close()
        pyr.close()
    for row in rows.values():
        pyroute2 = row["pyroute2"]
        row["ratio"] = (row["myna"] or 0.0) / pyroute2 if pyroute2 else None
    return rows


def run(count: int, sample: int, repeat: int) -> Rows:
    """Make the namespace, measure inside it, delete it (also on failure)."""
    if not 0 < count <= MAX_COUNT or not 0 < sample <= count:
        raise SystemExit(f"--count must be 1..{MAX_COUNT} and --sample 1..count")
    netns = f"mynabench{os.getpid()}"
    try:
        make_namespace(netns)
        return call_in_namespace(netns, lambda: measure(count, sample, repeat))
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def table(rows: Rows) -> str:
    """A markdown table of the rows."""
    lines = [
        "| row | Myna routes/s (ack last) | Myna routes/s (ack every) | pyroute2 routes/s "
        "| Myna / pyroute2 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        ratio = row["ratio"]
        lines.append(
            f"| {name} | {_rate(row['myna'])} | {_rate(row['myna_ack_every'])} "
            f"| {_rate(row['pyroute2'])} | {'n/a' if ratio is None else f'{ratio:.0f}x'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="routes per Myna run")
    parser.add_argument("--sample", type=int, default=5_000, help="routes per pyroute2 run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save", type=Path, help="also write dated results into this directory")
    parser.add_argument("--gc", action="store_true", help="keep the garbage collector running")
    args = parser.parse_args(argv)
    global PAUSE_GC  # noqa: PLW0603 - one switch for every timed run
    PAUSE_GC = not args.gc
    if os.geteuid() != 0:
        raise SystemExit("kernel_bench needs root: it makes a network namespace")
    rows = run(args.count, args.sample, args.repeat)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    if args.save:
        command = ".venv/bin/python -m bench.kernel_bench " + " ".join(argv or sys.argv[1:])
        info = machine(pyroute2=importlib.metadata.version("pyroute2"))
        path = save(
            "kernel",
            "Kernel route programming benchmark",
            command.strip(),
            table(rows),
            {"rows": rows},
            args.save,
            info,
        )
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
