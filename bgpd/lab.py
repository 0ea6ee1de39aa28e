"""``myna lab``: a small Calico-like cluster in network namespaces, and Myna converging in it.

Data flow: ``run_lab(args)`` checks that it runs as root, removes what a killed earlier lab
left, and has ``Lab`` build the cluster with iproute2 (one ``ip -batch`` per namespace): a
switch namespace holding bridge br0, and one namespace per node whose eth0 is a port of that
bridge (hosts 198.18.0.1, .2, ..., reflectors 198.18.0.201 and .202). Each host gets Felix's
blackhole routes (proto 80) for its /26 blocks of the pool 198.19.0.0/16. Two phases follow,
each with fresh daemons whose configs, logs and status files go to the lab's temp dir:

1. the hosts in a node-to-node iBGP mesh (AS 64512, Calico's passive "auto" rule);
2. the same hosts as clients of two route reflectors sharing one cluster id.

In each phase Myna runs in every node's namespace (``python -m bgpd.cli run -c FILE``). On a
host it learns the blackholes from the kernel (``kernel.learn``) and writes the other hosts'
blocks into it (``kernel.program``, proto bird); the reflectors leave their kernels alone.
The lab polls every host's main table (``kernel_sync.netlink_socket.dump_routes`` in the
namespace) and every daemon's status file until each host holds every other host's blocks via
their owner, nothing else of proto bird, and every session is Established, or the deadline
passes. It then prints the sessions, each host's routes as ``ip -4 route`` shows them, and the
time from starting the daemons to that moment. Between the phases the daemons are stopped and
their routes flushed, so the reflectors start from the blackholes alone.

Teardown (daemons by PID, then anything else inside the namespaces or running with one of the
lab's configs, then the namespaces and the temp dir) runs on every way out: the end, an error,
Ctrl-C, SIGTERM, SIGHUP. A lab killed outright leaves namespaces named ``mynalab-<pid>-``; the
next lab removes those whose process is gone. Only addresses of 198.18.0.0/15 are used, and
every packet stays on the lab's bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

import bgpd
from kernel_sync.netlink_socket import dump_routes
from speaker.nlri import prefix_text
from speaker.wire_codes import Family

PREFIX = "mynalab-"
AS_NUMBER = 64512
SUBNET = ipaddress.IPv4Network("198.18.0.0/24")  # every node's eth0
POOL = ipaddress.IPv4Network("198.19.0.0/16")  # the IP pool the blocks come from
BLOCK_LENGTH = 26
BLOCKS_PER_SLOT = 4  # a host's blocks start on a /24 of its own: host N's are 198.19.N.x
REFLECTOR_NUMBERS = (201, 202)
CLUSTER_ID = "198.18.0.200"  # Calico's routeReflectorClusterID for both reflectors
PROTO_FELIX = 80
PROTO_BIRD = 12
MAIN_TABLE = 254
MAX_HOSTS = 100
MAX_PRINTED_ROUTES = 400  # above this many routes in all, only counts are printed
STOP_GRACE = 5.0  # seconds a daemon gets between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05
# Short timers so the lab converges in seconds: the active side connects 0.2 s after start and
# retries every 0.5 s while the other side is still starting.
TIMERS = {"hold_time": 9, "connect_delay": 0.2, "connect_retry": 0.5, "error_wait": [0.5, 2]}
SELECTION_DEFERRAL = 5.0  # as Calico's "bird -R", each start is a restart; ends at End-of-RIB
PACKAGE_ROOT = Path(bgpd.__file__).resolve().parent.parent


class LabError(Exception):
    """Building or running the lab failed (a command, a daemon); the text says what."""


class Interrupted(BaseException):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) asked the lab to stop; teardown follows."""


@dataclass(frozen=True)
class Node:
    """One namespace with Myna in it: a Calico host or a route reflector."""

    name: str  # h1, h2, ... rr1, rr2: also its veth port's name on the bridge
    number: int  # its address is 198.18.0.<number>
    netns: str
    blocks: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """The node's address on the lab's subnet (router id and BGP source)."""
        return str(SUBNET.network_address + self.number)


@dataclass
class PhaseResult:
    """What one phase ended with; ``seconds`` is None when it did not converge.

    ``up_seconds``: when every daemon had written its first status file, i.e. had started
    (Python, its imports, the listener, the kernel adopted); the rest is BGP and the kernel.
    """

    name: str
    title: str
    seconds: float | None
    problems: list[str]
    up_seconds: float | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)


def host_blocks(number: int, count: int) -> tuple[str, ...]:
    """The /26 blocks of host ``number``: from 198.19.<number>.0 on (more /24s if needed)."""
    slots = -(-count // BLOCKS_PER_SLOT)
    base = int(POOL.network_address) + number * slots * 256
    size = 1 << (32 - BLOCK_LENGTH)
    return tuple(str(ipaddress.IPv4Network((base + k * size, BLOCK_LENGTH))) for k in range(count))


def _base_config(node: Node, workdir: Path) -> dict[str, Any]:
    return {
        "router_id": node.address,
        "local_as": AS_NUMBER,
        "listen": {"addresses": [node.address], "port": 179},
        "timers": dict(TIMERS),
        "selection_deferral": SELECTION_DEFERRAL,
        # All hosts share one subnet, so CrossSubnet routes go straight to the next hop.
        "ip_pools": [{"cidr": str(POOL), "ipip_mode": "CrossSubnet"}],
        "status_file": str(workdir / f"{node.name}.json"),
        "control": {"socket": str(workdir / f"{node.name}.ctl")},
        "log_level": "info",
    }


def host_config(node: Node, peers: Sequence[Node], workdir: Path) -> dict[str, Any]:
    """A Calico host's config: its blocks, kernel learning and programming, iBGP ``peers``."""
    config = _base_config(node, workdir)
    config["blocks"] = list(node.blocks)
    config["ipv4_address"] = f"{node.address}/{SUBNET.prefixlen}"
    config["kernel"] = {"program": True, "learn": True}
    # Calico's rule on both ends of every session: the higher address (as text) waits.
    config["peers"] = [{"address": p.address, "as": AS_NUMBER, "passive": "auto"} for p in peers]
    return config


def reflector_config(
    node: Node, clients: Sequence[Node], others: Sequence[Node], workdir: Path
) -> dict[str, Any]:
    """A dedicated reflector's config: the cluster id, its clients, the other reflectors."""
    config = _base_config(node, workdir)
    config["cluster_id"] = CLUSTER_ID
    config["kernel"] = {"program": False}
    config["peers"] = [
        {"address": c.address, "as": AS_NUMBER, "passive": "auto", "route_reflector_client": True}
        for c in clients
    ] + [{"address": o.address, "as": AS_NUMBER, "passive": "auto"} for o in others]
    return config


def _names(nodes: Sequence[Node]) -> str:
    """``rr1, rr2, h1, h2``; with more than four hosts ``rr1, rr2, h1 ... h20``."""
    hosts = [n.name for n in nodes if n.name.startswith("h")]
    others = [n.name for n in nodes if not n.name.startswith("h")]
    if len(hosts) > 4:
        hosts = [f"{hosts[0]} ... {hosts[-1]}"]
    return ", ".join([*others, *hosts])


def ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    """Run iproute2's ``ip`` (inside ``netns`` when given); its output, or LabError."""
    cmd = ["ip", *(("-n", netns) if netns else ()), *args]
    try:
        result = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(cmd)}: {exc}") from None
    if result.returncode != 0:
        where = f" (batch: {stdin.strip().splitlines()[0]} ...)" if stdin else ""
        raise LabError(f"{' '.join(cmd)}{where} failed: {result.stderr.strip()}")
    return result.stdout


def write(out: TextIO, text: str, end: str = "\n") -> None:
    """Print ``text`` to ``out`` at once; once the reader is gone, print nothing more.

    A closed pipe (``myna lab | head``) must not stop the lab before its teardown.
    """
    try:
        print(text, end=end, file=out, flush=True)
    except OSError:
        with contextlib.suppress(OSError, ValueError):  # nothing may flush into it again
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())


def _batch(lines: Sequence[str], netns: str | None = None) -> None:
    ip("-batch", "-", netns=netns, stdin="\n".join(lines) + "\n")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def _kill_pids(pids: set[int], grace: float) -> None:
    """SIGTERM ``pids``, then SIGKILL what is still alive after ``grace`` seconds."""
    pids.discard(os.getpid())
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if _alive(pid)}
            time.sleep(0.05)
        if not pids:
            return


def _namespace_pids(netns: str) -> set[int]:
    try:
        return {int(word) for word in ip("netns", "pids", netns).split()}
    except LabError:
        return set()


def _pids_running_with(text: str) -> set[int]:
    """PIDs of the processes whose command line mentions ``text`` (a lab's temp dir)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
    return found


def lab_namespaces() -> list[str]:
    """Every namespace named like a lab's, this process's too."""
    try:
        listing = ip("netns", "list")
    except LabError:
        return []
    names = (line.split(" ", 1)[0] for line in listing.splitlines())
    return [name for name in names if name.startswith(PREFIX)]


def _dead_lab(name: str) -> int | None:
    """The pid in a lab's name (``mynalab-<pid>-...``) when that process is gone, else None."""
    match = re.match(rf"{PREFIX}(\d+)-", name)
    if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
        return None
    return int(match.group(1))


def remove_stale(out: TextIO) -> None:
    """Remove what labs killed without their teardown left (their process is gone)."""
    tmp = Path(tempfile.gettempdir())
    namespaces: dict[int, list[str]] = {}
    for name in lab_namespaces():
        pid = _dead_lab(name)
        if pid is not None:
            namespaces.setdefault(pid, []).append(name)
    rundirs: dict[int, list[Path]] = {}
    for rundir in tmp.glob(f"{PREFIX}*-*"):
        pid = _dead_lab(rundir.name)
        if pid is not None:
            rundirs.setdefault(pid, []).append(rundir)
    for pid in sorted(namespaces.keys() | rundirs.keys()):
        names = namespaces.get(pid, [])
        write(out, f"removing what lab {pid} left behind ({len(names)} namespaces)")
        for netns in names:
            _kill_pids(_namespace_pids(netns), grace=1.0)
        for rundir in rundirs.get(pid, []):
            _kill_pids(_pids_running_with(str(rundir)), grace=1.0)
            shutil.rmtree(rundir, ignore_errors=True)
        for netns in sorted(names, key=lambda n: n.endswith("-sw")):  # the switch last
            with contextlib.suppress(LabError):
                ip("netns", "delete", netns)


async def _kernel_routes(hosts: Sequence[Node]) -> dict[str, dict[str, frozenset[str]]]:
    """Each host's proto-bird routes of the main table: prefix -> next-hop gateways."""
    dumps = await asyncio.gather(
        *(dump_routes(socket.AF_INET, MAIN_TABLE, PROTO_BIRD, netns=h.netns) for h in hosts)
    )
    out: dict[str, dict[str, frozenset[str]]] = {}
    for host, routes in zip(hosts, dumps, strict=True):
        table: dict[str, frozenset[str]] = {}
        for route in routes:
            gateways = [route.gateway] if route.gateway else [n.gateway for n in route.multipath]
            table[prefix_text(route.prefix, Family.IPV4_UNICAST)] = frozenset(
                str(ipaddress.IPv4Address(g)) for g in gateways if g
            )
        out[host.name] = table
    return out


class Lab:
    """The namespaces, the daemons of the running phase, and their teardown."""

    def __init__(self, hosts: int, blocks: int, timeout: float, out: TextIO) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}-"
        self.timeout = timeout
        self.out = out
        self.hosts = [
            Node(f"h{n}", n, f"{self.prefix}h{n}", host_blocks(n, blocks))
            for n in range(1, hosts + 1)
        ]
        self.reflectors = [
            Node(f"rr{i}", number, f"{self.prefix}rr{i}")
            for i, number in enumerate(REFLECTOR_NUMBERS, 1)
        ]
        self.switch = f"{self.prefix}sw"
        self.by_address = {n.address: n for n in (*self.hosts, *self.reflectors)}
        self.namespaces: list[str] = []
        self.tmpdir: Path | None = None
        self.daemons: list[tuple[Node, subprocess.Popen[bytes]]] = []
        self.results: list[PhaseResult] = []  # one per phase run so far

    # -- progress -----------------------------------------------------------------------------

    def headline(self) -> str:
        """The first line of the run."""
        return (
            f"Myna lab: {len(self.hosts)} Calico hosts with {len(self.hosts[0].blocks)}"
            f" /{BLOCK_LENGTH} blocks each from pool {POOL} (IPIP CrossSubnet),"
            f" namespaces {self.prefix}*"
        )

    def facts(self) -> dict[str, Any]:
        """What the JSON result says about the cluster."""
        return {"pool": str(POOL)}

    def say(self, text: str = "", end: str = "\n") -> None:
        """One line of progress or report (or its start, with ``end=""``)."""
        write(self.out, text, end)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        """``text... done (0.3 s)`` around a step (``failed`` when it raises)."""
        self.say(f"{text}... ", end="")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.say("failed")
            raise
        self.say(f"done ({time.monotonic() - start:.1f} s)")

    # -- the namespaces -----------------------------------------------------------------------

    def build(self) -> None:
        """The temp dir, the switch with its bridge, one namespace per node on it."""
        self.tmpdir = Path(tempfile.mkdtemp(prefix=self.prefix))
        nodes = [*self.hosts, *self.reflectors]
        names = [self.switch, *(n.netns for n in nodes)]
        with self.step(f"creating {len(names)} namespaces on one bridge ({SUBNET})"):
            self.namespaces = names  # before: teardown deletes what a failed batch made
            _batch([f"netns add {name}" for name in names])
            switch = ["link add br0 type bridge", "link set br0 up"]
            for n in nodes:
                switch.append(f"link add {n.name} type veth peer name eth0 netns {n.netns}")
                switch.append(f"link set {n.name} master br0 up")
            _batch(switch, self.switch)
            for n in nodes:
                address = f"{n.address}/{SUBNET.prefixlen}"
                _batch(
                    ["link set lo up", f"addr add {address} dev eth0", "link set eth0 up"], n.netns
                )
        count = len(self.hosts[0].blocks)
        with self.step(f"adding Felix's blackhole routes (proto 80), {count} blocks per host"):
            for h in self.hosts:
                _batch([f"route add blackhole {b} proto {PROTO_FELIX}" for b in h.blocks], h.netns)

    def teardown(self) -> None:
        """Stop every daemon, kill whatever is left, delete the namespaces and the temp dir."""
        with self.step(
            f"tearing down ({len(self.daemons)} daemons, {len(self.namespaces)} namespaces)"
        ):
            self.stop_daemons()
            leftovers: set[int] = set()
            for netns in self.namespaces:
                leftovers |= _namespace_pids(netns)
            if self.tmpdir is not None:
                leftovers |= _pids_running_with(str(self.tmpdir))
            _kill_pids(leftovers, grace=STOP_GRACE)
            for netns in reversed(self.namespaces):  # the hosts, then the switch
                with contextlib.suppress(LabError):
                    ip("netns", "delete", netns)
            self.namespaces = []
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- the daemons --------------------------------------------------------------------------

    def start(self, configs: dict[Node, dict[str, Any]], workdir: Path) -> None:
        """Write each node's config and start ``myna run`` in its namespace."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p
        )
        for node, config in configs.items():
            path = workdir / f"{node.name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            cmd = ["ip", "netns", "exec", node.netns, sys.executable, "-m", "bgpd.cli"]
            with (workdir / f"{node.name}.log").open("ab") as log:
                process = subprocess.Popen(
                    [*cmd, "run", "-c", str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # Not in our process group: a Ctrl-C reaches the lab, which stops them.
                    start_new_session=True,
                )
            self.daemons.append((node, process))

    def stop_daemons(self) -> None:
        """SIGTERM every daemon, SIGKILL those still running after the grace period."""
        live = [p for _, p in self.daemons if p.poll() is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while live and time.monotonic() < deadline:
            live = [p for p in live if p.poll() is None]
            time.sleep(0.05)
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for _, process in self.daemons:
            process.wait()
        self.daemons = []

    def status(self, node: Node, workdir: Path) -> dict[str, Any] | None:
        """The node's daemon status file, None before it is written."""
        try:
            data: dict[str, Any] = json.loads((workdir / f"{node.name}.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    # -- convergence --------------------------------------------------------------------------

    def problems(self, nodes: Sequence[Node], workdir: Path) -> list[str]:
        """What keeps the cluster from being converged; empty when it is."""
        found = []
        for node, process in self.daemons:
            if process.poll() is not None:
                found.append(f"{node.name}: Myna exited with status {process.returncode}")
        routes = asyncio.run(_kernel_routes(self.hosts))
        for host in self.hosts:
            want = {b: frozenset({o.address}) for o in self.hosts if o != host for b in o.blocks}
            got = routes[host.name]
            missing = sorted(want.keys() - got.keys())
            extra = sorted(got.keys() - want.keys())
            wrong = sorted(p for p in want.keys() & got.keys() if got[p] != want[p])
            for what, prefixes in (("missing", missing), ("unexpected", extra), ("wrong", wrong)):
                if prefixes:
                    shown = ", ".join(prefixes[:3]) + (" ..." if len(prefixes) > 3 else "")
                    found.append(f"{host.name}: {len(prefixes)} {what} proto bird routes ({shown})")
        for node in nodes:
            status = self.status(node, workdir)
            if status is None:
                found.append(f"{node.name}: no status file yet")
                continue
            down = {
                a: p.get("state")
                for a, p in status.get("peers", {}).items()
                if p.get("state") != "Established"
            }
            if down:
                shown = ", ".join(f"{self._label(a)} {s}" for a, s in sorted(down.items())[:3])
                found.append(f"{node.name}: {len(down)} sessions not Established ({shown})")
        return found

    def converge(self, nodes: Sequence[Node], workdir: Path, started: float) -> PhaseResult:
        """Poll until converged or the deadline; the elapsed time since ``started``."""
        return self.wait_converged(
            started,
            lambda: (
                self.problems(nodes, workdir),
                all((workdir / f"{n.name}.json").exists() for n in nodes),
            ),
        )

    def wait_converged(
        self, started: float, check: Callable[[], tuple[list[str], bool]]
    ) -> PhaseResult:
        """Poll ``check`` until nothing is left, a daemon exits, or the deadline.

        ``check`` gives the problems left and whether every daemon answers; the result holds
        the elapsed time since ``started``.
        """
        self.say(f"waiting for convergence (deadline {self.timeout:g} s)... ", end="")
        deadline = started + self.timeout
        up: float | None = None
        while True:
            exited = any(process.poll() is not None for _, process in self.daemons)
            problems, answered = check()  # after: names every exited daemon
            now = time.monotonic()
            if up is None and answered:
                up = now - started
            if not problems:
                self.say(f"converged in {now - started:.2f} s")
                return PhaseResult("", "", now - started, [], up)
            if exited or now >= deadline:
                self.say("NOT converged" + (": a daemon exited" if exited else ""))
                return PhaseResult("", "", None, problems, up)
            time.sleep(POLL_INTERVAL)

    # -- a phase ------------------------------------------------------------------------------

    def phase(
        self, name: str, title: str, configs: dict[Node, dict[str, Any]], sessions: int
    ) -> PhaseResult:
        """Start the daemons of ``configs``, wait for convergence, report; daemons stay up."""
        assert self.tmpdir is not None
        workdir = self.tmpdir / name
        workdir.mkdir()
        nodes = list(configs)
        self.say()
        self.say(
            f"== {title}: {len(nodes)} Myna daemons, {sessions} iBGP sessions (AS {AS_NUMBER})"
        )
        with self.step(f"starting Myna in {_names(nodes)}"):
            started = time.monotonic()
            self.start(configs, workdir)
        result = self.converge(nodes, workdir, started)
        result.name, result.title = name, title
        result.nodes = self.snapshot(nodes, workdir)
        self.report(result, workdir)
        return result

    def snapshot(self, nodes: Sequence[Node], workdir: Path) -> dict[str, dict[str, Any]]:
        """Each node's sessions (status file) and, for hosts, its IPv4 main table."""
        out: dict[str, dict[str, Any]] = {}
        for node in nodes:
            status = self.status(node, workdir) or {}
            entry: dict[str, Any] = {
                "address": node.address,
                "netns": node.netns,
                "peers": {
                    a: {"state": p.get("state", "?"), "routes_received": p.get("route_count", "?")}
                    for a, p in status.get("peers", {}).items()
                },
            }
            if node in self.hosts:
                entry["blocks"] = list(node.blocks)
                entry["routes"] = json.loads(ip("-j", "-4", "route", netns=node.netns) or "[]")
            out[node.name] = entry
        return out

    def _label(self, address: str) -> str:
        node = self.by_address.get(address)
        return f"{node.name} {address}" if node else address

    ROUTE_FAMILIES: tuple[str, ...] = ("-4",)  # what `ip` lists of each host's routes

    def report(self, result: PhaseResult, workdir: Path) -> None:
        """The sessions, the hosts' routes and the convergence time (or what was missing)."""
        self.report_sessions(result)
        self.report_routes(result)
        if result.seconds is not None:
            up = result.up_seconds
            self.say(
                f"{result.title}: converged in {result.seconds:.2f} s from starting the daemons"
                + ("" if up is None else f" (all {len(result.nodes)} running after {up:.2f} s)")
            )
            return
        self.say(f"{result.title}: NOT converged within {self.timeout:g} s:")
        for problem in result.problems[:20]:
            self.say(f"  {problem}")
        self.log_tails(result, workdir)

    def report_sessions(self, result: PhaseResult) -> None:
        """Each daemon's sessions, from its status file."""
        self.say("sessions (from each daemon's status file):")
        for name, entry in result.nodes.items():
            peers = entry["peers"]
            if not peers:
                self.say(f"  {name:<4} {entry['address']:<13} (no status file yet)")
                continue
            if len(peers) > 8:
                states: dict[str, int] = {}
                for p in peers.values():
                    states[p["state"]] = states.get(p["state"], 0) + 1
                counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                self.say(f"  {name:<4} {entry['address']:<13} {len(peers)} peers: {counts}")
                continue
            first = True
            for address, p in sorted(peers.items(), key=lambda i: ipaddress.IPv4Address(i[0])):
                head = f"{name:<4} {entry['address']:<13}" if first else " " * 18
                self.say(
                    f"  {head} -> {self._label(address):<18} {p['state']:<12}"
                    f" {p['routes_received']} routes received"
                )
                first = False

    def report_routes(self, result: PhaseResult) -> None:
        """Each host's kernel routes (counts per protocol only when there are many)."""
        hosts = [(n, e) for n, e in result.nodes.items() if "routes" in e]
        tables = [{"-4": "routes", "-6": "routes6"}[f] for f in self.ROUTE_FAMILIES]
        total = sum(len(e[t]) for _, e in hosts for t in tables)
        listed = "; ".join(f"ip {f} route" for f in self.ROUTE_FAMILIES)
        self.say(f"kernel routes of each host ({listed} in its namespace):")
        for name, entry in hosts:
            if total > MAX_PRINTED_ROUTES:
                protos: dict[str, int] = {}
                for table in tables:
                    for r in entry[table]:
                        key = str(r.get("protocol", "?"))
                        protos[key] = protos.get(key, 0) + 1
                counts = ", ".join(f"{n} proto {p}" for p, n in sorted(protos.items()))
                self.say(f"  {name:<4} {counts}")
                continue
            lines = [
                line
                for family in self.ROUTE_FAMILIES
                for line in ip(family, "route", netns=entry["netns"]).splitlines()
            ]
            for i, line in enumerate(lines):
                self.say(f"  {name if i == 0 else '':<4} {line.rstrip()}")
        if total > MAX_PRINTED_ROUTES:
            self.say(f"  ({total} routes in all: counts only; --json lists them)")

    def log_tails(self, result: PhaseResult, workdir: Path) -> None:
        """The last lines of the logs of the daemons that failed (at most four)."""
        shown = 0
        for node, process in self.daemons:
            if shown == 4:  # the rest is alike, most likely
                break
            if process.poll() is None and not any(
                p.startswith(f"{node.name}:") for p in result.problems
            ):
                continue
            try:
                lines = (workdir / f"{node.name}.log").read_text(errors="replace").splitlines()
            except OSError:
                continue
            if lines:
                shown += 1
                self.say(f"  last lines of {node.name}'s log:")
                for line in lines[-8:]:
                    self.say(f"    {line}")

    def flush_bird_routes(self) -> None:
        """Delete the routes Myna wrote (they persist after it stops, as BIRD's do)."""
        for host in self.hosts:
            ip("route", "flush", "proto", "bird", netns=host.netns)

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> None:
        """Both phases on a built lab, results in ``results``; phase 2's daemons stay up."""
        assert self.tmpdir is not None
        mesh = {
            h: host_config(h, [o for o in self.hosts if o != h], self.tmpdir / "mesh")
            for h in self.hosts
        }
        n = len(self.hosts)
        self.results.append(
            self.phase("mesh", "phase 1, node-to-node mesh", mesh, n * (n - 1) // 2)
        )
        with self.step("stopping the mesh daemons and flushing their routes (proto bird)"):
            self.stop_daemons()
            self.flush_bird_routes()
        workdir = self.tmpdir / "reflectors"
        reflected: dict[Node, dict[str, Any]] = {
            r: reflector_config(r, self.hosts, [o for o in self.reflectors if o != r], workdir)
            for r in self.reflectors
        }
        reflected.update({h: host_config(h, self.reflectors, workdir) for h in self.hosts})
        sessions = n * len(self.reflectors) + 1
        self.results.append(
            self.phase("reflectors", "phase 2, two route reflectors", reflected, sessions)
        )


# -- the command ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``myna lab``'s options."""
    parser.add_argument(
        "--hosts", type=int, default=4, help=f"Calico hosts, 2 to {MAX_HOSTS} (default 4)"
    )
    parser.add_argument("--blocks", type=int, default=2, help="/26 blocks per host (default 2)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds each phase may take (default 30)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the lab running until Ctrl-C")
    parser.add_argument(
        "--json", action="store_true", help="progress on stderr, one JSON result on stdout"
    )
    parser.add_argument(
        "--bird-cfg",
        action="store_true",
        help="dual stack, every node running bird and bird6 (Myna) from Calico-rendered files",
    )
    parser.add_argument(
        "--stock-bird",
        metavar="DIR",
        help="with --bird-cfg: run the BIRD 1.6 binaries DIR/bird and DIR/bird6 instead",
    )


def _check_arguments(args: argparse.Namespace) -> str | None:
    if not 2 <= args.hosts <= MAX_HOSTS:
        return f"--hosts must be 2 to {MAX_HOSTS}"
    slots = -(-args.blocks // BLOCKS_PER_SLOT) if args.blocks > 0 else 0
    if args.blocks < 1 or (args.hosts + 1) * slots * 256 > POOL.num_addresses:
        return f"--blocks must be at least 1, and {args.hosts} hosts' blocks must fit in {POOL}"
    if args.timeout <= 0:
        return "--timeout must be positive"
    return None


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _summary(lab: Lab, results: Sequence[PhaseResult]) -> None:
    lab.say()
    lab.say("== summary")
    for r in results:
        outcome = "NOT converged" if r.seconds is None else f"converged in {r.seconds:.2f} s"
        lab.say(f"  {r.title:<32} {outcome}")


def _keep(lab: Lab) -> None:
    lab.say()
    first = lab.hosts[0]
    lab.say(f"the lab stays up; e.g. ip -n {first.netns} route, or ip netns exec {first.netns} sh")
    lab.say(f"configs, logs and status files: {lab.tmpdir}/reflectors; Ctrl-C tears it down")
    while True:
        time.sleep(3600)


def run_lab(
    args: argparse.Namespace,
    make: Callable[[argparse.Namespace, TextIO], Lab] | None = None,
    check: Callable[[argparse.Namespace], str | None] | None = None,
) -> int:
    """``myna lab``: build, run both phases, report, tear down; 0 when both converged.

    ``make`` builds another kind of lab (``bgpd.lab_bird``), ``check`` checks its options.
    """
    out = sys.stderr if args.json else sys.stdout
    problem = _check_arguments(args) or (check(args) if check else None)
    if problem is not None:
        print(f"myna lab: {problem}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "myna lab needs root: it creates network namespaces, veths and kernel routes "
            "(try: sudo .venv/bin/myna lab)",
            file=sys.stderr,
        )
        return 2
    if shutil.which("ip") is None:
        print("myna lab needs iproute2's ip command (apt-get install iproute2)", file=sys.stderr)
        return 2
    lab = make(args, out) if make else Lab(args.hosts, args.blocks, args.timeout, out)
    interrupted: str | None = None
    error: str | None = None
    previous = {s: signal.signal(s, _raise_interrupted) for s in _SIGNALS}
    try:
        try:
            remove_stale(out)
            lab.say(lab.headline())
            lab.build()
            lab.run()
            _summary(lab, lab.results)
            if args.keep:
                _keep(lab)
        except Interrupted as exc:
            interrupted = str(exc)
        except LabError as exc:
            error = str(exc)
    finally:
        for s in _SIGNALS:  # from here on, a second Ctrl-C must not stop the teardown
            signal.signal(s, signal.SIG_IGN)
        if interrupted is not None:
            lab.say(f"\ninterrupted ({interrupted})")
        if error is not None:
            lab.say(f"\nmyna lab: {error}")
        lab.teardown()
        for s, old in previous.items():
            signal.signal(s, old)
    results = lab.results
    converged = len(results) == 2 and all(r.seconds is not None for r in results)
    if args.json:
        result = {
            "converged": converged,
            "interrupted": interrupted,
            "error": error,
            "hosts": args.hosts,
            "blocks_per_host": args.blocks,
            **lab.facts(),
            "phases": [
                {
                    "name": r.name,
                    "title": r.title,
                    "converged": r.seconds is not None,
                    "seconds": r.seconds,
                    "daemons_up_seconds": r.up_seconds,
                    "problems": r.problems,
                    "nodes": r.nodes,
                }
                for r in results
            ],
        }
        write(sys.stdout, json.dumps(result, indent=1))
    if interrupted is not None and not (args.keep and converged):
        return 130
    return 0 if converged else 1
