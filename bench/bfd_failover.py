"""BFD failover: time from a cut path to the node's kernel route gone, Myna against BIRD 2.

Run it (root):

    .venv/bin/python -m bench.bfd_failover [--runs 20] [--json] [--save bench/results]
        [--rows myna-bird,myna-myna,bird-myna,bird-bird]

Data flow, per row ``NODE-PEER``: a fresh ``tests/testbed`` ``Topology`` with host ``a`` (the
node under test: 198.18.0.1) and host ``b`` (its peer: 198.18.0.2) on one bridge, one iBGP
session between them advised by multihop BFD (RFC 5883, what Calico's ``multihop;`` sessions
get from BIRD) at 100 ms x 3 on both ends (Detection Time 300 ms), the peer announcing
198.19.1.0/26, the node programming it into its kernel:

  Myna    ``myna run`` with ``peers[].bfd`` and ``kernel: {program: true}``
  BIRD 2  ``protocol bfd``, ``bfd on`` in ``protocol bgp`` (as operators put it into Calico's
          templates) and Calico's kernel protocol exporting BGP routes (proto bird)

(``tests/testbed/bgp_bfd.py`` renders both). ``ip -ts monitor route`` runs in ``a`` for the
whole row. Each run waits until the session is Established, the route is in ``a``'s kernel and
both ends report BFD Up at the negotiated 300 ms (a cut during the Poll sequence of coming Up
would be measured against the slow pre-Up intervals), then puts an nftables rule dropping
everything on ``b``'s eth0 (links up) and takes the wall-clock time the ``nft`` command
returned: the rule is in place. The figure is from that time to the monitor's timestamp of the
route's deletion in ``a``'s kernel. Then the rule goes, and the run ends when the route is back
in ``a``'s kernel. Every process is started through the topology and stopped by PID when the
row's ``with`` block ends, however it ends.

The node's BFD declares the peer dead after its Detection Time without a packet; the peer's last
packet came up to one interval (75-100 ms, jittered) before the cut, so the floor is about
200-300 ms; what the node adds beyond that is its own reaction: BGP down, routes withdrawn,
kernel route deleted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import Neighbor, PeerDaemon, Topology, wait_for
from testbed.bgp_bfd import BfdSpec, Bird2BfdPeer, MynaBfdPeer, RouteWatch, cut_path, heal_path

from bench.results_file import machine, save

BLOCK = "198.19.1.0/26"
SPEC = BfdSpec(interval_ms=100, multiplier=3, multihop=True)
ROWS = ("myna-bird", "myna-myna", "bird-myna", "bird-bird")
TIMEOUT = 60.0


def make(kind: str, host: Any, neighbor: Neighbor, prefixes: list[str], node: bool) -> PeerDaemon:
    """Myna or BIRD 2 in ``host``; the node under test programs its kernel."""
    if kind == "myna":
        return MynaBfdPeer(host, host.ipv4, 64512, [neighbor], prefixes, bfd=SPEC)
    return Bird2BfdPeer(host, host.ipv4, 64512, [neighbor], prefixes, bfd=SPEC, kernel=node)


def bfd_ready(daemon: PeerDaemon, neighbor: str) -> bool:
    """BFD Up with the peer at the negotiated 300 ms Detection Time."""
    if isinstance(daemon, MynaBfdPeer):
        row = daemon.bfd_row(neighbor)
        return bool(row["state"] == "Up" and row.get("detection_time_ms") == 300)
    assert isinstance(daemon, Bird2BfdPeer)
    for line in daemon.bfd_sessions().splitlines():
        words = line.split()
        if words[:1] == [neighbor]:
            return words[2] == "Up" and words[-1] == "0.300"
    return False


def route_event(watch: RouteWatch, kind: str, after: float, timeout: float) -> float:
    """The first time BLOCK was added to / deleted from the watched kernel after ``after``."""
    events = wait_for(
        lambda: [t for t, k in watch.events(BLOCK) if k == kind and t > after],
        timeout, f"{BLOCK} {kind} after {after}",
    )  # fmt: skip
    return float(events[0])


def run_row(node_kind: str, peer_kind: str, runs: int) -> dict[str, Any]:
    """``runs`` cuts with ``node_kind`` in a and ``peer_kind`` in b; the figures."""
    with Topology() as topology:
        a, b = topology.add_host("a"), topology.add_host("b")
        watch = RouteWatch(a, a.workdir / "monitor.log")
        peer = make(peer_kind, b, Neighbor(a.ipv4, 64512), [BLOCK], node=False).start()
        node = make(node_kind, a, Neighbor(b.ipv4, 64512), [], node=True).start()
        times: list[float] = []
        last = 0.0
        for _ in range(runs):
            node.wait_established(b.ipv4, TIMEOUT)
            route_event(watch, "add", last, TIMEOUT)
            wait_for(lambda: bfd_ready(node, b.ipv4) and bfd_ready(peer, a.ipv4), TIMEOUT,
                     "BFD Up at 100 ms x 3 on both ends")  # fmt: skip
            cut_path(b)
            cut_at = time.time()
            times.append(route_event(watch, "del", cut_at, 10) - cut_at)
            heal_path(b)
            last = time.time()
        watch.stop()
    return {
        "node": node_kind,
        "peer": peer_kind,
        "runs": runs,
        "times_ms": [round(t * 1000, 1) for t in times],
        "median_ms": round(statistics.median(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        f"BFD failover: multihop BFD at {SPEC.interval_ms} ms x {SPEC.multiplier} (Detection "
        f"Time {SPEC.detection * 1000:.0f} ms), iBGP, one route; time from an nftables drop on "
        "the peer's eth0 being in place to the route's deletion in the node's kernel",
        "",
        "| node under test | peer | runs | median, ms | min, ms | max, ms | over 400 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"myna": "Myna", "bird": "BIRD 2"}
    for row in rows:
        over = sum(1 for t in row["times_ms"] if t > SPEC.detection * 1000 + 100)
        out.append(
            f"| {names[row['node']]} | {names[row['peer']]} | {row['runs']} | {row['median_ms']} "
            f"| {row['min_ms']} | {row['max_ms']} | {over} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    rows = []
    for name in args.rows.split(","):
        if name not in ROWS:
            parser.error(f"unknown row {name} (rows: {', '.join(ROWS)})")
        node_kind, peer_kind = name.split("-")
        rows.append(run_row(node_kind, peer_kind, args.runs))
        print(f"{name}: median {rows[-1]['median_ms']} ms, max {rows[-1]['max_ms']} ms",
              file=sys.stderr, flush=True)  # fmt: skip
    text = table(rows)
    print(json.dumps(rows) if args.json else text)
    if args.save:
        path = save(
            "bfd-failover",
            "BFD failover: Myna and BIRD 2 as the node under test",
            " ".join(["python -m bench.bfd_failover", *sys.argv[1:]]),
            text,
            {"rows": rows},
            args.save,
            machine(bird="2.0.12"),
        )
        print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
