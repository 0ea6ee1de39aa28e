"""One Calico mesh node facing many simulated mesh peers: convergence, kernel routes, idle cost.

Run by ``bench.suite`` (scenarios ``mesh`` and ``install``); by hand (root):

    .venv/bin/python -m bench.mesh_scale [--case mesh|install-100k] [--peers 500] \\
        [--only none,myna,myna-birdcfg,bird,frr,gobgp] [--idle 10] [--repeat 1] [--json] [--no-pin]

Data flow, per row: a fresh ``tests/testbed`` ``Topology`` with two namespaces on one bridge,
``node`` (198.18.0.1, plus 198.18.2.1/23 so that the peers' next hops are on-link) and
``peers`` (one address per simulated peer from 198.18.2.10 up in 198.18.2.0/23, added in one
``ip -batch``). The daemon under test runs in ``node`` with one passive iBGP neighbor per peer
(no route reflection: a mesh node), hold time 90 s, and programs what it learns:

  Myna     ``myna run`` with ``kernel: {program: true}``
  Myna (bird.cfg)  ``myna-birdcfg``: the same daemon from the ``bird.cfg`` confd renders for a
           mesh node with these peers (``bench.birdcfg_myna``: ``Mesh_<ip>`` peers, Calico's
           filters, pools without encapsulation, whose routes BIRD programs through
           ``calico_kernel_programming``, two blocks of its own as static blackholes)
  BIRD 2   Calico's kernel protocol (``learn; scan time 2; merge paths on``, export of BGP
           routes, as in ``bench.block_latency``), one ``protocol bgp`` per peer
  FRR      bgpd with zebra, which installs the routes (proto bgp)
  GoBGP    gobgpd as the test bed runs it: no zebra integration, so it programs nothing;
           its convergence is its RIB holding every route (``gobgp global rib summary``)
  none     ``bench.bgp_clients relay --no-forward``: a sink that says when it has every
           UPDATE, the peers' own floor (no kernel programming)

``bench.bgp_clients clients`` runs every peer in one uvloop process in ``peers``, confined with
this process to the last CPU, the daemon's processes to the others (``bench.cpu_pinning`` says
why; ``--no-pin`` lets them share; each row's ``pinning`` says which) (case
``mesh``: peer i announces the four /26 blocks of 198.18.4.0/24 + i; case ``install-100k``:
one peer announcing 100,000 /32s from 198.18.64.0). Once every session is Established and
``--settle`` (1 s) has passed, the clients print t0 (CLOCK_MONOTONIC, shared by every
namespace) and write their UPDATEs. A daemon that programs the kernel is timed by
``bench.kernel_route_monitor``, subscribed to the node's route notifications before the
peers start: the time is from t0 to the notification that completed the announced set (it
used to be the first of this process's 50 ms polls to find them all, a Python dump that takes
about 0.15 s for 100,000 routes: up to 0.2 s of harness in each time). The sink relay is
timed by its own End-of-RIB count, GoBGP by its RIB, polled every 50 ms. The kernel is
dumped once at the end (``kernel_routes_installed``). The clients keep their sessions up
(``--linger``) while the daemon's CPU time (``/proc/PID/stat``, utime + stime, every process
of the daemon) is read over ``--idle`` seconds; the RSS (VmRSS, summed) is read at the end,
with the protocol and metric of the announced routes in the kernel (``kernel_route_kinds``:
Calico's filter writes ``2147483647 - LOCAL_PREF``). With ``--repeat N`` the rows take turns
run by run and each prints its median run, with every run's time (``runs_seconds``).

Cleanup: every process is started through the topology and stopped by PID when its ``with``
block ends, however it ends; then the namespaces are deleted. Every address used is inside
198.18.0.0/15 (the /32s of ``install-100k`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import Bird2Peer, Neighbor, PeerDaemon, Topology
from testbed.bird import ERROR_WAIT_MAX, ERROR_WAIT_MIN, protocol_name
from testbed.frr import FrrPeer
from testbed.topology import run as run_command

from bench import birdcfg_myna
from bench.bgp_clients import AS, CASES, client_address, cpu_seconds, proc_status
from bench.cpu_pinning import CpuSplit
from bench.kernel_route_monitor import monitor_figures
from bench.reflector_fanout import ReflectorFrr, ReflectorGoBgp, ReflectorMyna
from kernel_sync.netlink_socket import dump_routes

REPO = Path(__file__).resolve().parents[1]
DAEMONS_ORDER = ("myna", "myna-birdcfg", "bird", "frr", "gobgp")
FIRST_PEER = "198.18.2.10"
NODE_EXTRA = "198.18.2.1/23"
HOLD_TIME, KEEPALIVE_TIME = 90, 30
POLL = 0.05
# Daemons that program the kernel: timed by a route monitor (``bench.kernel_route_monitor``).
MONITORED = frozenset({"myna", "myna-birdcfg", "bird", "frr"})
TIMED_BY = {"none": "the relay's End-of-RIBs", "gobgp": "its RIB, polled"}
MIB = 1 << 20
PROGRAMS = {
    "none": "nothing (sink relay)",
    "myna": "kernel (proto bird)",
    "myna-birdcfg": "kernel (proto bird), through calico_kernel_programming",
    "bird": "kernel (Calico's kernel protocol)",
    "frr": "kernel via zebra (proto bgp)",
    "gobgp": "nothing (no zebra integration); RIB counted",
}


class MeshMyna(ReflectorMyna):
    """Myna as a mesh node: passive iBGP peers, no reflection, kernel programming on."""

    def config(self) -> dict[str, Any]:
        """The reflector config without cluster id and client flags, with ``kernel``."""
        config = super().config()
        del config["cluster_id"]
        for peer in config["peers"]:
            del peer["route_reflector_client"]
        config["kernel"] = {"program": True}
        return config


class MeshBird(Bird2Peer):
    """BIRD 2 as a Calico mesh node: Calico's kernel protocol, one protocol per peer."""

    def _render(self, process: object) -> str:
        lines = [
            "log stderr { remote, warning, error, auth, bug, fatal };",
            f"router id {self.router_id};",
            "protocol device { scan time 2; }",
            "protocol kernel { ipv4 { import all; export where source = RTS_BGP; };"
            " learn; scan time 2; merge paths on; }",
            "template bgp mesh {",
            f"  local as {self.local_as};",
            "  direct;",
            "  passive on;",
            f"  hold time {self.hold_time};",
            f"  keepalive time {self.keepalive_time};",
            f"  error wait time {ERROR_WAIT_MIN}, {ERROR_WAIT_MAX};",
            "  ipv4 { import all; export none; };",
            "}",
        ]
        lines += [
            f"protocol bgp {protocol_name(n)} from mesh "
            f"{{ neighbor {n.address} as {n.remote_as}; }}"
            for n in self.neighbors
        ]
        return "\n".join(lines) + "\n"


class MeshFrr(ReflectorFrr):
    """FRR as a mesh node: a peer group of plain iBGP peers; bgpd with zebra installs."""

    def render(self) -> str:
        """The reflector's bgpd config without the reflection lines."""
        return "".join(
            line + "\n"
            for line in super().render().splitlines()
            if "route-reflector-client" not in line and "cluster-id" not in line
        )

    def _launch(self) -> None:
        FrrPeer._launch(self)  # the test bed's launch: bgpd without -n, routes to zebra


class MeshGoBgp(ReflectorGoBgp):
    """GoBGP as a mesh node: passive iBGP peers, no reflection, no zebra."""

    def render(self) -> str:
        """The reflector's config without the reflection lines."""
        return "".join(
            line + "\n" for line in super().render().splitlines() if "route-reflector" not in line
        )


DAEMONS: dict[str, type[PeerDaemon]] = {
    "myna": MeshMyna,
    "myna-birdcfg": birdcfg_myna.CalicoMeshNode,
    "bird": MeshBird,
    "frr": MeshFrr,
    "gobgp": MeshGoBgp,
}


def announced(case_name: str, peers: int) -> set[int]:
    """Every prefix the peers announce (``network << 8 | length``)."""
    case = CASES[case_name]
    return {p for i in range(peers) for p in case.announce(i)}


def kernel_count(netns: str, wanted: set[int]) -> int:
    """How many of ``wanted`` the namespace's kernel holds (any table, any protocol)."""
    routes = asyncio.run(dump_routes(socket.AF_INET, netns=netns))
    return len({r.prefix for r in routes} & wanted)


def kernel_metrics(netns: str, wanted: set[int]) -> dict[str, int]:
    """How many of the kernel's routes for ``wanted`` have each (protocol, metric)."""
    routes = asyncio.run(dump_routes(socket.AF_INET, netns=netns))
    found = Counter(f"proto {r.protocol} metric {r.priority}" for r in routes if r.prefix in wanted)
    return dict(found.most_common(3))


def gobgp_count(daemon: PeerDaemon) -> int:
    """Destinations in gobgpd's global IPv4 RIB."""
    text = daemon.gobgp("global", "rib", "summary", "-a", "ipv4")  # type: ignore[attr-defined]
    for word in text.replace(",", " ").split():
        if word.isdigit():
            return int(word)
    return 0


def _read_line(log: Path, prefix: str) -> str | None:
    if not log.exists():
        return None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(prefix):
            return line
    return None


def _tail(path: Path, lines: int = 10) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_monitor(node: Any, wanted: set[int], log: Path) -> Any:
    """``bench.kernel_route_monitor`` on ``node``'s kernel, subscribed before this returns."""
    wanted_file = node.workdir / "wanted.txt"
    wanted_file.write_text("".join(f"{prefix}\n" for prefix in sorted(wanted)))
    monitor = node.popen(
        sys.executable, "-m", "bench.kernel_route_monitor",
        "--netns", node.netns, "--wanted", str(wanted_file),
        log=log, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while _read_line(log, "ready") is None:
        if monitor.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the route monitor did not start:\n{_tail(log)}")
        time.sleep(0.05)
    return monitor


def run_row(
    case_name: str, daemon_name: str, peers: int, idle: float, timeout: float, pin: bool = True
) -> dict[str, Any]:
    """Build the namespaces, start the daemon and the peers, measure, tear down."""
    wanted = announced(case_name, peers)
    with CpuSplit(pin) as cpus, Topology() as topology:
        node, peers_host = topology.add_host("node"), topology.add_host("peers")
        node.ip("addr", "add", NODE_EXTRA, "dev", "eth0")
        addresses = [client_address(FIRST_PEER, i) for i in range(peers)]
        batch = "".join(f"addr add {a}/23 dev eth0\n" for a in addresses)
        run_command("ip", "-n", peers_host.netns, "-batch", "-", stdin=batch)
        daemon: PeerDaemon | None = None
        relay_log = node.workdir / "relay.log"
        if daemon_name == "none":
            # Each peer's End-of-RIB follows its announcements on the same stream: the sink
            # has every route once it has every peer's End-of-RIB.
            with cpus.daemon_spawns():
                relay = node.popen(
                    sys.executable, "-m", "bench.bgp_clients", "relay", "--local", node.ipv4,
                    "--no-forward", "--expect-eor", str(peers),
                    log=relay_log, cwd=REPO,
                )  # fmt: skip
            processes = [relay]
        else:
            neighbors = [Neighbor(a, AS, passive=True) for a in addresses]
            daemon = DAEMONS[daemon_name](
                node, node.ipv4, AS, neighbors, hold_time=HOLD_TIME, keepalive_time=KEEPALIVE_TIME
            )
            if isinstance(daemon, birdcfg_myna.CalicoBirdMyna):
                daemon.prepare(case_name, peers)
            with cpus.daemon_spawns():
                daemon.start()
            processes = list(daemon.processes)
        log = peers_host.workdir / "clients.log"
        cpus.move_to_peers()  # the peers stand for other hosts; this process polls beside them
        monitor_log = node.workdir / "monitor.log"
        monitored = daemon_name in MONITORED
        processes_watched = list(processes)
        if monitored:
            processes_watched.append(start_monitor(node, wanted, monitor_log))
        worker = peers_host.popen(
            sys.executable, "-m", "bench.bgp_clients", "clients",
            "--case", case_name, "--count", str(peers), "--server", node.ipv4,
            "--first", FIRST_PEER, "--settle", "1", "--timeout", "5",
            "--linger", str(idle + timeout + 30),
            log=log, cwd=REPO,
        )  # fmt: skip
        t0: float | None = None
        deadline = time.monotonic() + 150
        while t0 is None:
            line = _read_line(log, "t0 ")
            if line:
                t0 = float(line.split()[1])
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the peers never announced:\n{_tail(log)}")
            dead = [p for p in processes if p.poll() is not None]
            if dead:
                tail = daemon.log_tail(10) if daemon else _tail(relay_log)
                raise RuntimeError(f"the daemon exited:\n{tail}")
            time.sleep(0.05)
        established = _read_line(log, "established")
        converged: float | None = None
        held = 0
        outcome = "complete"
        seen: dict[str, float] = {}
        while True:
            now = time.monotonic()
            if monitored:
                line = _read_line(monitor_log, "complete ")
                if line:
                    seen = monitor_figures(line)
                    converged = seen["last"] - t0
                    held = len(wanted)
                    break
                if _read_line(monitor_log, "overflow") is not None:
                    outcome = "the route monitor overflowed (see bench.kernel_route_monitor)"
                    break
            elif daemon_name == "none":
                line = _read_line(relay_log, "received ")
                if line:
                    converged = float(line.split()[2]) - t0
                    held = len(wanted)
                    break
            elif daemon_name == "gobgp":
                assert daemon is not None
                held = gobgp_count(daemon)
            if daemon_name == "gobgp" and held >= len(wanted):
                converged = now - t0
                break
            if now - t0 > timeout:
                if monitored:
                    held = kernel_count(node.netns, wanted)
                outcome = f"timeout after {timeout:g} s ({held:,} of {len(wanted):,})"
                break
            if any(p.poll() is not None for p in processes):
                outcome = "the daemon exited"
                break
            if monitored and processes_watched[-1].poll() is not None:
                if _read_line(monitor_log, "complete ") is not None:
                    continue  # it finished since the top of the loop
                outcome = f"the route monitor exited:\n{_tail(monitor_log)}"
                break
            time.sleep(POLL)
        time.sleep(0.5)
        pids = [p.pid for p in processes]
        cpu0 = sum(cpu_seconds(pid) for pid in pids)
        started = time.monotonic()
        time.sleep(idle)
        cpu1 = sum(cpu_seconds(pid) for pid in pids)
        span = time.monotonic() - started
        rss = sum(proc_status(pid).get("VmRSS", 0) for pid in pids)
        peak = sum(proc_status(pid).get("VmHWM", 0) for pid in pids)
        installed = kernel_count(node.netns, wanted)
        metrics = kernel_metrics(node.netns, wanted) if daemon_name != "none" else {}
        return {
            "case": case_name,
            "daemon": daemon_name,
            "peers": peers,
            "routes_announced": len(wanted),
            "outcome": outcome,
            "converge_seconds": converged,
            "established_line": established,
            "kernel_routes_installed": installed,
            "timed_by": TIMED_BY.get(daemon_name, "route monitor"),
            "monitor_first_seconds": seen["first"] - t0 if seen else None,
            "monitor_datagrams": int(seen["read"]) if seen else None,
            "monitor_backlog_octets": int(seen["backlog"]) if seen else None,
            "kernel_route_kinds": metrics,
            "held_at_end": held,
            "programs": PROGRAMS[daemon_name],
            "idle_cpu_percent": 100.0 * (cpu1 - cpu0) / span,
            "idle_seconds": span,
            "rss_mib": rss / MIB,
            "peak_rss_mib": peak / MIB,
            "pinning": cpus.describe(pids),
        }


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds the topology's with block: everything is stopped


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: rows as JSON, one per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["mesh", "install-100k"], default="mesh")
    parser.add_argument("--peers", type=int, default=500)
    parser.add_argument("--only", default="none," + ",".join(DAEMONS_ORDER))
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median shown")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the daemon and the peers share CPUs (see bench.cpu_pinning)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    names = [n for n in args.only.split(",") if n]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    # The rows take turns, run by run: a change in the machine's load falls on all alike
    # (YAML and bird.cfg swap places every other run: ``birdcfg_myna.turn_order``).
    for run_index in range(args.repeat):
        for name in birdcfg_myna.turn_order(names, run_index):
            try:
                row = run_row(args.case, name, args.peers, args.idle, args.timeout, args.pin)
            except Exception as error:  # report the other rows whatever this one did
                row = {
                    "case": args.case,
                    "daemon": name,
                    "peers": args.peers,
                    "error": f"{type(error).__name__}: {error}",
                }
            runs[name].append(row)
    for name in names:
        row = median_run(runs[name])
        print(json.dumps(row) if args.json else row, flush=True)
    return 0


def median_run(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median convergence time (failed ones count as slowest), every time."""
    ordered = sorted(rows, key=lambda r: r.get("converge_seconds") or float("inf"))
    row = dict(ordered[(len(ordered) - 1) // 2])
    if len(rows) > 1:
        row["runs_seconds"] = [r.get("converge_seconds") for r in rows]
    backlogs = [r["monitor_backlog_octets"] for r in rows if r.get("monitor_backlog_octets")]
    if backlogs:
        row["most_monitor_backlog_octets"] = max(backlogs)
    return row


if __name__ == "__main__":
    raise SystemExit(main())
