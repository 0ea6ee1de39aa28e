"""Block-route latency: a blackhole added in host A's kernel, until it is in host B's kernel.

Run it (root):  .venv/bin/python -m bench.block_latency [--count 50] [--json] [--save bench/results]

Data flow: two network namespaces on one bridge (the test bed's ``Topology``), the daemon under
test on both, one iBGP session between them. Host A's daemon learns Felix-style blackholes
(protocol 80) from its kernel, host B's programs what it learns into its kernel. The benchmark
writes the blackhole into A's kernel with its own netlink socket in A's namespace and waits on a
netlink monitor socket in B's namespace for B's route: both in this one process, so the time
between the write and the notification needs no clock synchronisation. Each round adds a new
/26 and waits for it at B; the median and 99th percentile are reported. Daemons: Myna (config
``kernel: {learn: true, program: true}``) and BIRD 2 configured as Calico configures it (kernel
protocol with ``learn``, ``scan time 2``, export of BGP routes, ``merge paths``), in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import Bird2Peer, Host, Neighbor, Topology
from testbed.bird import protocol_name
from testbed.myna_peer import MynaPeer

from bench.results_file import machine, save
from kernel_sync.netlink_codes import MessageType, RouteProtocol, RouteType
from kernel_sync.netlink_messages import Header
from kernel_sync.netlink_socket import Monitor
from kernel_sync.route_messages import KernelRoute, RouteChange, RouteOp
from kernel_sync.route_writer import RouteWriter

AS = 64512


class LatencyMyna(MynaPeer):
    """Myna learning blocks from its kernel and programming what it receives."""

    def config(self) -> dict[str, Any]:
        """The bed's config with kernel learning and programming on."""
        return {**super().config(), "kernel": {"learn": True, "program": True}, "log_level": "info"}


class CalicoBird(Bird2Peer):
    """BIRD 2 with Calico's kernel protocol: learn alien routes, export BGP routes."""

    def _render(self, process: object) -> str:
        lines = [
            "log stderr all;",
            f"router id {self.router_id};",
            "protocol device { scan time 2; }",
            "protocol kernel { ipv4 { import all; export where source = RTS_BGP; };"
            " learn; persist; scan time 2; graceful restart; merge paths on; }",
        ]
        for neighbor in self.neighbors:
            lines.append(f"protocol bgp {protocol_name(neighbor)} {{")
            lines.extend(f"  {line}" for line in self._session_options(neighbor))
            lines.append(
                "  ipv4 { import all; export where source = RTS_INHERIT; next hop self; };"
            )
            lines.append("}")
        return "\n".join(lines) + "\n"


def block(n: int) -> int:
    """198.19.(n // 4).(64 * (n % 4))/26 as a prefix int."""
    address = (198 << 24) | (19 << 16) | ((n // 4) << 8) | ((n % 4) * 64)
    return (address << 8) | 26


async def measure(a: Host, b: Host, count: int) -> list[float]:
    """Seconds from each blackhole written at A to its route seen at B."""
    seen: dict[int, float] = {}
    arrived = asyncio.Event()

    def on_message(header: Header, value: object) -> None:
        # Protocol 12 ("bird"): the route the daemon programmed at B, not A's blackhole.
        if (
            header.type == MessageType.NEWROUTE
            and isinstance(value, KernelRoute)
            and value.protocol == RouteProtocol.BIRD
        ):
            seen.setdefault(value.prefix, time.perf_counter())
            arrived.set()

    monitor = Monitor(on_message, lambda: None, netns=b.netns)
    monitor.start()
    writer = RouteWriter(netns=a.netns)
    latencies = []
    try:
        for n in range(count):
            prefix = block(n)
            route = KernelRoute(socket.AF_INET, prefix, protocol=80, type=RouteType.BLACKHOLE)
            started = time.perf_counter()
            result = await writer.apply([RouteChange(RouteOp.NEW, route)])
            if not result.ok:
                raise RuntimeError(f"writing the blackhole failed: {result.failures()}")
            deadline = started + 30
            while prefix not in seen:
                arrived.clear()
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError(f"block {n} never reached B")
                try:
                    await asyncio.wait_for(arrived.wait(), remaining)
                except TimeoutError:
                    continue
            latencies.append(seen[prefix] - started)
            await asyncio.sleep(0.05)  # rounds apart, as blocks are
    finally:
        writer.close()
        monitor.close()
    return latencies


def run_one(daemon: str, count: int) -> dict[str, float]:
    """Build the two hosts, run ``daemon`` on both, measure, tear everything down."""
    with Topology() as topo:
        a, b = topo.add_host("hosta"), topo.add_host("hostb")
        kind = LatencyMyna if daemon == "myna" else CalicoBird
        peers = [
            kind(a, a.ipv4, AS, [Neighbor(b.ipv4, AS)]).start(),
            kind(b, b.ipv4, AS, [Neighbor(a.ipv4, AS, passive=True)]).start(),
        ]
        peers[0].wait_established(b.ipv4, timeout=60)
        peers[1].wait_established(a.ipv4, timeout=60)
        latencies = asyncio.run(measure(a, b, count))
    ms = sorted(x * 1000 for x in latencies)
    return {
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "rounds": len(ms),
    }


def table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| daemon | median ms | p99 ms | min ms | max ms | rounds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['min_ms']:.1f} "
            f"| {r['max_ms']:.1f} | {r['rounds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="blocks per daemon")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save", type=Path, help="also write dated results into this directory")
    args = parser.parse_args(argv)
    rows = {
        "Myna": run_one("myna", args.count),
        "BIRD 2 (Calico settings)": run_one("bird", args.count),
    }
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    if args.save:
        command = ".venv/bin/python -m bench.block_latency " + " ".join(argv or sys.argv[1:])
        path = save(
            "block-latency",
            "Block-route latency between two hosts",
            command.strip(),
            table(rows),
            {"rows": rows},
            args.save,
            machine(),
        )
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
