"""Route-reflector fan-out: Myna, BIRD 2, FRR and GoBGP as the reflector, in one harness and run.

Run it (root):

    .venv/bin/python -m bench.reflector_fanout [--case calico|big|all] \\
        [--only myna,myna-birdcfg,bird,frr,gobgp] [--repeat 3] [--json] [--save bench/results] \\
        [--no-pin]

Cases (``bench.bgp_clients.CASES``): ``calico``, Calico's shape, 200 clients each announcing
the four /26 blocks of 198.19.i.0/24 with its own address as next hop (800 prefixes; every
client must end up holding the 796 of the others); ``big``, 10 clients, one of which announces
100,000 /32s (198.18.64.0 upwards), which the 9 others must all end up holding.

Data flow, per row: a fresh ``tests/testbed`` ``Topology`` with two namespaces on one bridge,
``rr`` (198.18.0.1, the reflector) and ``clients`` (198.18.0.2, plus one /24 address per
client from 198.18.0.10 up, added in one ``ip -batch``). The reflector runs in ``rr`` with one
passive iBGP neighbor per client, each a route-reflector client, cluster id 198.18.0.1, hold
time 90 s, no kernel programming:

  Myna     ``myna run``: top-level ``cluster_id``, per peer ``route_reflector_client: true``
  Myna (bird.cfg)  ``myna-birdcfg``: the same daemon from the ``bird.cfg`` confd renders for
           a Calico route reflector with these clients (``bench.birdcfg_myna``: ``rr client;
           rr cluster id``, Calico's import and export filters, IPIP pools whose routes
           Felix programs, so none is written into the kernel, two blocks of its own,
           which the clients count into the full table)
  BIRD 2   one ``template bgp`` with ``rr client; rr cluster id``, one protocol per client
  FRR      bgpd ``-n`` (no kernel routes; zebra runs as in the test bed), one peer group with
           ``route-reflector-client``, ``advertisement-interval 0`` and ``coalesce-time 0``:
           by default FRR holds a new update group's first announcements for 1 s + 50 ms
           per peer (10 s at most) so that peers coming up together share it, and that
           start-up timer, not reflection, would be timed (8.7 s for the 200 clients)
  GoBGP    one ``[[neighbors]]`` stanza per client with ``route-reflector-client = true``
  none     ``bench.bgp_clients relay``: no reflector; every UPDATE a client sends is copied,
           undecoded, to every other client, so the row is the path's floor without a
           reflector (senders, relay, network; the receivers' decoding is not timed)

Then ``bench.bgp_clients clients`` runs every client in one uvloop process in ``clients``
(see that module). That process, and this one, are confined to the last CPU and the
reflector's processes to the others, so that the clients cannot take the reflector's CPU as
other hosts could not (``bench.cpu_pinning`` says why and what it leaves; ``--no-pin`` lets
them share; the notes say which).

What is timed, precisely: every client connects and its session reaches Established on its side
(our OPEN and KEEPALIVE sent, the reflector's OPEN and KEEPALIVE received); then nothing is sent
for ``--settle`` seconds (1 by default: the reflector has by then processed every client's
KEEPALIVE and sits idle, so its session setup is not timed); t0 is taken right before the clients
write their UPDATEs and End-of-RIB (encoded beforehand), all in one loop pass; a client's time is
when the bytes arrived that filled its table, i.e. made the prefixes it holds (decoded later, own
echoes ignored) number all the others announced (``bench.bgp_clients`` stamps bytes on arrival
and decodes them in slices after, so the clients' own decoding is not timed); the row's time is
the last client's. Peak RSS is the reflector's VmHWM (``/proc/PID/status``) read 0.5
s after the last client completed, so it includes start-up and session setup; FRR's is bgpd plus
zebra (bgpd alone in the notes). The CPU column is the reflector's CPU time (the scheduler's count
per thread, in ns) from t0 to that same reading. A row that does not converge (nothing arrives for
``--stall`` seconds, or ``--timeout``) or whose reflector fails to start is reported with the
reason in the notes, and the run goes on. Each row runs ``--repeat`` times (3), each time in fresh
namespaces with a fresh daemon, the rows taking turns run by run (so that a change in the machine's
load falls on every row alike); the table shows the run with the median time and lists every run's
time in the notes. Notes also count a client's own routes sent back to it (RFC 4456 allows it; the
client ignores them, as ORIGINATOR_ID would make a real one) and reflected routes whose next hop is
not their originator's.

Cleanup: every process is started through the topology (``Host.popen``) and stopped by PID
when its ``with`` block ends, however it ends (SIGTERM and Ctrl-C included), then the
namespaces are deleted. Every address used is inside 198.18.0.0/15.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import Bird2Peer, FrrPeer, GoBgpPeer, Host, Neighbor, PeerDaemon, Topology, wait_for
from testbed.bird import ERROR_WAIT_MAX, ERROR_WAIT_MIN, protocol_name
from testbed.frr import BGPD, FRR_USER, ZEBRA, ZEBRA_TIMEOUT
from testbed.gobgp import IDLE_HOLD_AFTER_RESET
from testbed.myna_peer import MYNA, MynaPeer
from testbed.topology import run as run_command

from bench import birdcfg_myna
from bench.bgp_clients import AS, CASES, FANOUT_CASES, client_address
from bench.cpu_pinning import CpuSplit
from bench.results_file import machine, save

REPO = Path(__file__).resolve().parents[1]
REFLECTORS = ("myna", "myna-birdcfg", "bird", "frr", "gobgp")
LABELS = {
    "none": "none (relay)",
    "myna": "Myna",
    "myna-birdcfg": birdcfg_myna.LABEL,
    "bird": "BIRD 2",
    "frr": "FRR",
    "gobgp": "GoBGP",
}
FIRST_CLIENT = "198.18.0.10"
HOLD_TIME, KEEPALIVE_TIME = 90, 30
MIB = 1 << 20
WORKER_SLACK = 180.0  # seconds beyond --timeout before the clients process is given up on


# -- the reflectors ------------------------------------------------------------------------------


class ReflectorBird(Bird2Peer):
    """BIRD 2 as reflector: one template, one ``protocol bgp`` per client."""

    def _render(self, process: object) -> str:
        lines = [
            "log stderr { remote, warning, error, auth, bug, fatal };",
            f"router id {self.router_id};",
            "protocol device {}",
            "template bgp rr_clients {",
            f"  local {self.host.ipv4} as {self.local_as};",
            "  direct;",
            "  passive on;",
            f"  hold time {self.hold_time};",
            f"  keepalive time {self.keepalive_time};",
            # The test bed's: a session that failed while 200 came up at once (seen under
            # load) would otherwise refuse connections for BIRD's 60-300 s error wait.
            f"  error wait time {ERROR_WAIT_MIN}, {ERROR_WAIT_MAX};",
            "  rr client;",
            f"  rr cluster id {self.router_id};",
            "  ipv4 { import all; export all; };",
            "}",
        ]
        lines += [
            f"protocol bgp {protocol_name(n)} from rr_clients "
            f"{{ neighbor {n.address} as {n.remote_as}; }}"
            for n in self.neighbors
        ]
        return "\n".join(lines) + "\n"


class ReflectorFrr(FrrPeer):
    """FRR as reflector: a peer group of route-reflector clients; bgpd installs no routes."""

    def render(self) -> str:
        """bgpd's config."""
        lines = [
            "frr defaults traditional",
            f"hostname {self.host.name}",
            "!",
            f"router bgp {self.local_as}",
            f" bgp router-id {self.router_id}",
            f" bgp cluster-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp default ipv4-unicast",
            f" timers bgp {self.keepalive_time} {self.hold_time}",
            # FRR delays a new update group's first announcements by 1 s + 50 ms per peer
            # (10 s at most) so that peers coming up together share it: that timer, not
            # reflection, would be timed (see the module docstring).
            " coalesce-time 0",
            " neighbor CLIENTS peer-group",
            f" neighbor CLIENTS remote-as {self.local_as}",
            " neighbor CLIENTS passive",
            " neighbor CLIENTS advertisement-interval 0",
        ]
        lines += [f" neighbor {n.address} peer-group CLIENTS" for n in self.neighbors]
        lines += [
            " address-family ipv4 unicast",
            "  neighbor CLIENTS activate",
            "  neighbor CLIENTS route-reflector-client",
            " exit-address-family",
            "!",
        ]
        return "\n".join(lines) + "\n"

    def _launch(self) -> None:
        # The test bed's launch, with bgpd's -n: no routes to the kernel (no reflector here
        # programs one).
        shutil.chown(self.rundir, FRR_USER, FRR_USER)
        zebra_conf = self.rundir / "zebra.conf"
        zebra_conf.write_text(f"hostname {self.host.name}-zebra\n")
        shutil.chown(zebra_conf, FRR_USER, FRR_USER)
        bgpd_conf = self.workdir / "bgpd.conf"
        bgpd_conf.write_text(self.render())
        zserv = self.rundir / "zserv.api"
        common = ["-z", str(zserv), "--vty_socket", str(self.rundir), "-P", "0", "--log", "stdout"]
        zserv.unlink(missing_ok=True)
        self._spawn(ZEBRA, "-f", zebra_conf, "-i", self.rundir / "zebra.pid", *common,
                    log="zebra.log")  # fmt: skip
        wait_for(lambda: self._checked(zserv.exists), ZEBRA_TIMEOUT, f"{self}'s zebra to listen")
        self._spawn(BGPD, "-S", "-n", "-f", bgpd_conf, "-i", self.rundir / "bgpd.pid", *common,
                    log="bgpd.log")  # fmt: skip


class ReflectorGoBgp(GoBgpPeer):
    """GoBGP as reflector: one passive route-reflector-client stanza per client."""

    def render(self) -> str:
        """gobgpd's TOML config."""
        lines = [
            "[global.config]",
            f"  as = {self.local_as}",
            f'  router-id = "{self.router_id}"',
            f'  local-address-list = ["{self.host.ipv4}"]',
        ]
        for neighbor in self.neighbors:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{neighbor.address}"',
                f"    peer-as = {neighbor.remote_as}",
                "  [neighbors.timers.config]",
                f"    hold-time = {self.hold_time}",
                f"    keepalive-interval = {self.keepalive_time}",
                f"    idle-hold-time-after-reset = {IDLE_HOLD_AFTER_RESET}",
                "  [neighbors.transport.config]",
                f'    local-address = "{self.host.ipv4}"',
                "    passive-mode = true",
                "  [neighbors.route-reflector.config]",
                "    route-reflector-client = true",
                f'    route-reflector-cluster-id = "{self.router_id}"',
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
            ]
        return "\n".join(lines) + "\n"


class ReflectorMyna(MynaPeer):
    """Myna as reflector: ``cluster_id`` and ``route_reflector_client: true`` per peer."""

    def config(self) -> dict[str, Any]:
        """The daemon's config (no status file, no kernel, info logging)."""
        return {
            "router_id": self.router_id,
            "local_as": self.local_as,
            "cluster_id": self.router_id,
            "listen": {"addresses": [self.host.ipv4], "port": 179},
            "timers": {"hold_time": self.hold_time, "keepalive_time": self.keepalive_time},
            "log_level": "info",
            "peers": [
                {
                    "address": n.address,
                    "as": n.remote_as,
                    "passive": True,
                    "route_reflector_client": True,
                }
                for n in self.neighbors
            ],
        }


DAEMONS: dict[str, type[PeerDaemon]] = {
    "myna": ReflectorMyna,
    "myna-birdcfg": birdcfg_myna.CalicoReflector,
    "bird": ReflectorBird,
    "frr": ReflectorFrr,
    "gobgp": ReflectorGoBgp,
}


# -- one row --------------------------------------------------------------------------------------


def add_client_addresses(host: Host, count: int) -> None:
    """Client 0..count-1's addresses on the clients host's eth0, in one ``ip -batch``."""
    lines = "".join(
        f"addr add {client_address(FIRST_CLIENT, i)}/24 dev eth0\n" for i in range(count)
    )
    run_command("ip", "-n", host.netns, "-batch", "-", stdin=lines)


def _program(process: subprocess.Popen[bytes]) -> str:
    """The name of the program a process runs (past ``ip netns exec NS``)."""
    argv = process.args
    assert isinstance(argv, list)
    return Path(str(argv[4])).name


def _log_tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_row(case_name: str, reflector: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build the namespaces, start ``reflector`` and the clients, measure, tear down."""
    case = CASES[case_name]
    with CpuSplit(args.pin) as cpus, Topology() as topology:
        rr, clients_host = topology.add_host("rr"), topology.add_host("clients")
        add_client_addresses(clients_host, case.clients)
        addresses = [client_address(FIRST_CLIENT, i) for i in range(case.clients)]
        daemon: PeerDaemon | None = None
        if reflector == "none":
            with cpus.daemon_spawns():
                relay = rr.popen(
                    sys.executable, "-m", "bench.bgp_clients", "relay", "--local", rr.ipv4,
                    log=rr.workdir / "relay.log", cwd=REPO,
                )  # fmt: skip
            processes = {"relay": relay}
        else:
            neighbors = [Neighbor(a, AS, passive=True) for a in addresses]
            daemon = DAEMONS[reflector](
                rr, rr.ipv4, AS, neighbors, hold_time=HOLD_TIME, keepalive_time=KEEPALIVE_TIME
            )
            if isinstance(daemon, birdcfg_myna.CalicoBirdMyna):
                daemon.prepare(case_name, case.clients)
            with cpus.daemon_spawns():
                daemon.start()
            processes = {_program(p): p for p in daemon.processes}
        log = clients_host.workdir / "clients.log"
        cpus.move_to_peers()  # the clients stand for other hosts
        worker = clients_host.popen(
            sys.executable, "-m", "bench.bgp_clients", "clients",
            "--case", case_name, "--server", rr.ipv4, "--first", FIRST_CLIENT,
            "--watch-pids", ",".join(str(p.pid) for p in processes.values()),
            "--settle", str(args.settle), "--timeout", str(args.timeout),
            "--stall", str(args.stall),
            "--own", ",".join(birdcfg_myna.own_prefixes(daemon)),
            log=log, cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + args.timeout + WORKER_SLACK
        while worker.poll() is None:
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                worker.kill()
                tail = daemon.log_tail(10) if daemon else _log_tail(rr.workdir / "relay.log")
                last = next((x for x in reversed(tail.splitlines()) if x.strip()), "")
                raise RuntimeError(f"{', '.join(dead)} exited ({last.strip()}):\n{tail}")
            if time.monotonic() > deadline:
                worker.kill()
                raise RuntimeError(f"the clients process did not finish:\n{_log_tail(log)}")
            time.sleep(0.2)
        lines = log.read_text().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f"the clients process said:\n{_log_tail(log)}") from None
        if "error" in result:
            tail = daemon.log_tail(10) if daemon else ""
            raise RuntimeError(f"{result['error']}\n{tail}".strip())
        result["pinning"] = cpus.describe(p.pid for p in processes.values())
        crashed = [name for name, p in processes.items() if p.poll() is not None]
        result["processes"] = {name: result["watched"][str(p.pid)] for name, p in processes.items()}
        result["reflector_exited"] = crashed
        return result


def summarise(reflector: str, result: dict[str, Any]) -> dict[str, Any]:
    """The table's view of one row: time, peak RSS, CPU, notes."""
    procs = result["processes"]
    peak = sum(p["peak_rss"] for p in procs.values()) / MIB
    at_t0 = sum(p["rss_at_t0"] for p in procs.values()) / MIB
    cpu = sum(p["cpu_seconds"] for p in procs.values())
    notes = []
    if result["outcome"] != "complete":
        notes.append(
            f"did not converge ({result['outcome']}): {result['clients_complete']}"
            f"/{result['clients']} clients complete, fewest prefixes held "
            f"{result['fewest_prefixes_held']:,}"
        )
    if reflector == "none":
        notes.append("no reflector: the path's floor")
    if reflector == "frr":
        notes.append(f"bgpd + zebra; bgpd alone {procs['bgpd']['peak_rss'] / MIB:.1f} MiB peak")
    notes.append(f"{at_t0:.1f} MiB at t0")
    notes.append(result["pinning"])
    if result["median_client_seconds"] is not None and result["outcome"] == "complete":
        notes.append(f"median client {result['median_client_seconds']:.3f} s")
    notes.append(f"clients CPU {result['clients_cpu_seconds']:.2f} s")
    if result["wrong_next_hop_updates"]:
        notes.append(f"{result['wrong_next_hop_updates']} reach entries with a changed next hop")
    if result["echoed_own_prefixes"]:
        notes.append(f"{result['echoed_own_prefixes']:,} own prefixes echoed back")
    if result.get("server_prefixes"):
        notes.append(
            f"the reflector's own {result['server_prefixes']} blocks: "
            f"{result['server_prefixes_received_fewest']} at the client that got fewest"
        )
    notes += [f"problem: {p}" for p in result["problems"]]
    if result["reflector_exited"]:
        notes.append(f"exited during the run: {', '.join(result['reflector_exited'])}")
    return {
        "label": LABELS[reflector],
        "seconds": result["full_table_seconds"],
        "peak_rss_mib": peak,
        "cpu_seconds": cpu,
        "notes": "; ".join(notes),
        "raw": result,
    }


def failed_row(reflector: str, error: BaseException) -> dict[str, Any]:
    """A row whose reflector never got to the measurement."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return {
        "label": LABELS[reflector],
        "seconds": None,
        "peak_rss_mib": None,
        "cpu_seconds": None,
        "notes": f"failed: {type(error).__name__}: {first}",
        "error": text,
    }


def median_row(
    reflector: str, results: list[dict[str, Any]], errors: list[Exception]
) -> dict[str, Any]:
    """The run with the median time (runs that did not converge count as slowest)."""
    if not results:
        return failed_row(reflector, errors[0])
    ordered = sorted(results, key=lambda r: r["full_table_seconds"] or float("inf"))
    row = summarise(reflector, ordered[(len(ordered) - 1) // 2])
    runs = [summarise(reflector, r) for r in results]
    if len(results) + len(errors) > 1:
        times = ", ".join(_figure(r["full_table_seconds"], 3) for r in results)
        row["notes"] = f"median of {len(results)} runs ({times} s); {row['notes']}"
        row["runs"] = runs
    # The CPU of the median-time run is one run's; the median over the runs is the row's.
    row["cpu_seconds_median"] = statistics.median(run["cpu_seconds"] for run in runs)
    if errors:
        row["notes"] += f"; {len(errors)} run(s) failed: {str(errors[0]).splitlines()[0]}"
    return row


# -- the report -----------------------------------------------------------------------------------


def run(cases: list[str], reflectors: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Every row; one JSON-able object."""
    report: dict[str, Any] = {"cases": {}}
    for case_name in cases:
        order = ["none", *reflectors]
        results: dict[str, list[dict[str, Any]]] = {r: [] for r in order}
        errors: dict[str, list[Exception]] = {r: [] for r in order}
        walls = dict.fromkeys(order, 0.0)
        # The rows take turns, run by run: a change in the machine's load falls on all alike
        # (YAML and bird.cfg swap places every other run: ``birdcfg_myna.turn_order``).
        for run_index in range(args.repeat):
            for reflector in birdcfg_myna.turn_order(order, run_index):
                print(
                    f"{case_name}: {LABELS[reflector]} (run {run_index + 1}/{args.repeat}) ...",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
                started = time.monotonic()
                try:
                    results[reflector].append(run_row(case_name, reflector, args))
                except Exception as error:  # report the other rows whatever this one did
                    errors[reflector].append(error)
                    print(error, file=sys.stderr)
                walls[reflector] += time.monotonic() - started
        rows: dict[str, Any] = {}
        for reflector in order:
            rows[reflector] = median_row(reflector, results[reflector], errors[reflector])
            rows[reflector]["wall_seconds"] = walls[reflector]
        report["cases"][case_name] = {"describe": CASES[case_name].describe, "rows": rows}
    return report


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """The markdown table."""
    lines = [
        "| case | reflector | time to full table (s) | peak RSS (MiB) | CPU (s) | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for case_name, case in report["cases"].items():
        for row in case["rows"].values():
            notes = row["notes"].replace("|", "\\|")
            lines.append(
                f"| {case_name} | {row['label']} | {_figure(row['seconds'], 3)} "
                f"| {_figure(row['peak_rss_mib'], 1)} | {_figure(row['cpu_seconds'], 2)} "
                f"| {notes} |"
            )
    lines.append("")
    lines += [f"- {name}: {case['describe']}" for name, case in report["cases"].items()]
    for name, case in report["cases"].items():
        myna, bird = case["rows"].get("myna"), case["rows"].get("bird")
        if myna and bird and myna["seconds"] is not None and bird["seconds"] is not None:
            verdict = "met" if myna["seconds"] <= bird["seconds"] else "NOT met"
            lines.append(
                f"- {name}: target Myna <= BIRD 2 {verdict} "
                f"({myna['seconds']:.3f} s against {bird['seconds']:.3f} s)"
            )
        birdcfg = case["rows"].get("myna-birdcfg")
        if myna and birdcfg and myna["seconds"] and birdcfg["seconds"] is not None:
            ratio = birdcfg["seconds"] / myna["seconds"]
            lines.append(
                f"- {name}: Myna from bird.cfg / from YAML {ratio:.2f} "
                f"({birdcfg['seconds']:.3f} s against {myna['seconds']:.3f} s; "
                f"{'within' if ratio <= 1.15 else 'NOT within'} 15 %)"
            )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """The compared daemons' versions, for the results file."""
    commands = {
        "bird": ["/usr/sbin/bird", "--version"],
        "frr": [str(BGPD), "--version"],
        "gobgp": ["gobgpd", "--version"],
        "myna": [str(MYNA), "version"],
    }
    out = {}
    for name, command in commands.items():
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            out[name] = "not installed"
            continue
        text = (done.stdout + done.stderr).strip()
        out[name] = text.splitlines()[0] if text else "unknown"
    return out


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds the topology's with block: everything is stopped


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--only", default=",".join(REFLECTORS), help="reflectors, comma-separated")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save", type=Path, help="also write dated results into this directory")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before t0")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per row after t0")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median shown")
    parser.add_argument("--stall", type=float, default=30.0, help="give up after this idle time")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the reflector and the clients share CPUs (see bench.cpu_pinning)",
    )
    args = parser.parse_args(argv)
    reflectors = [r for r in args.only.split(",") if r]
    unknown = sorted(set(reflectors) - set(REFLECTORS))
    if unknown:
        parser.error(f"unknown reflectors {unknown}; choose from {','.join(REFLECTORS)}")
    cases = list(FANOUT_CASES) if args.case == "all" else [args.case]
    signal.signal(signal.SIGTERM, _terminate)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())  # other work on the machine skews times
    report = run(cases, reflectors, args)
    print(json.dumps(report, indent=2) if args.json else table(report))
    if args.save:
        command = ".venv/bin/python -m bench.reflector_fanout " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        path = save(
            "reflector-fanout",
            "Route-reflector fan-out benchmark",
            command.strip(),
            table(report),
            report,
            args.save,
            machine(**versions(), load_average_at_start=load),
        )
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
