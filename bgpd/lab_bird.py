"""``myna lab --bird-cfg``: the lab's cluster, dual stack, every node run from Calico's files.

Role: the mode of ``myna lab`` in which Myna takes BIRD's place as calico-node runs it. The
cluster is the lab's (``bgpd.lab``: hosts h1... and reflectors rr1, rr2 in namespaces on one
bridge, Felix's proto-80 blackholes for each host's /26 blocks of 198.19.0.0/16), plus IPv6:
every node also has 2001:db8::<n>/64 on the bridge, and each host Felix's proto-80 blackholes
for its /122 blocks of the pool 2001:db8:1::/48. Both pools are unencapsulated, whose routes
BIRD programs under Calico's default ``programClusterRoutes`` (an IPIP pool's are Felix's).

Data flow, per phase: the phase's Calico resources (``lab_cluster``: Nodes with both
addresses, the default BGPConfiguration, for phase 2 the reflectors' cluster id and label and
the BGPPeer that peers every node with them, the pools, each host's block affinities) ->
``bgpd.lab_bird_render`` writes each node's ``bird.cfg``, ``bird6.cfg`` and their includes
into ``<tmpdir>/<phase>/<node>/`` -> in each node's namespace two processes start as
calico-node's runit starts BIRD: ``myna bird -R -s bird.ctl -d -c bird.cfg`` and ``myna
bird6 ... bird6.cfg`` (or, with ``--stock-bird DIR``, the BIRD 1.6 binaries ``DIR/bird`` and
``DIR/bird6``: the same files run by BIRD itself, for comparison). The lab then polls, until
converged or the deadline: each daemon's BIRD control socket (``show protocols``, as
``calicoctl node status`` reads it: every BGP protocol Established) and every host's main
table in both families (``kernel_sync.netlink_socket.dump_routes``): every other host's v4
and v6 blocks present with proto bird (12) via that host's address on the bridge (for IPv6
its global address or its link-local one), no other proto-bird route but a blackhole for one
of the host's own blocks (the static protocol's, which BIRD writes too). The report gives
the sessions, each host's ``ip -4 route`` and ``ip -6 route`` and the convergence time.

Teardown is the lab's (``Lab.teardown``: daemons by PID, whatever else runs in the
namespaces or with the lab's temp dir in its command line, the namespaces, the temp dir), on
every way out. Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bgpd.lab import (
    AS_NUMBER,
    BLOCK_LENGTH,
    CLUSTER_ID,
    MAIN_TABLE,
    PACKAGE_ROOT,
    POOL,
    PROTO_BIRD,
    PROTO_FELIX,
    SUBNET,
    Lab,
    Node,
    PhaseResult,
    _batch,
    ip,
    run_lab,
)
from bgpd.lab_bird_render import (
    BGPPeerSpec,
    Block,
    CalicoCluster,
    CalicoNode,
    IPPool,
    write_node,
)
from kernel_sync.netlink_socket import dump_routes
from speaker.nlri import prefix_text
from speaker.wire_codes import Family

SUBNET6 = ipaddress.IPv6Network("2001:db8::/64")  # every node's eth0, beside its IPv4 address
POOL6 = ipaddress.IPv6Network("2001:db8:1::/48")  # the IPv6 pool
BLOCK6_LENGTH = 122  # Calico's IPv6 block size
MAX_BLOCKS6 = 1024  # a host's /122 blocks lie in a /112 of their own
RR_LABEL = "route-reflector"
SOCKET_TIMEOUT = 2.0  # seconds a control socket may take to answer
FAMILIES = ((socket.AF_INET, ""), (socket.AF_INET6, "6"))


def host_blocks6(number: int, count: int) -> tuple[str, ...]:
    """The /122 blocks of host ``number``: 2001:db8:1::<number>:0/122 and on."""
    base = int(POOL6.network_address) + (number << 16)
    size = 1 << (128 - BLOCK6_LENGTH)
    return tuple(str(ipaddress.IPv6Network((base + k * size, BLOCK6_LENGTH))) for k in range(count))


def address6(node: Node) -> str:
    """The node's IPv6 address on the bridge."""
    return str(SUBNET6.network_address + node.number)


def lab_cluster(
    hosts: Sequence[Node],
    reflectors: Sequence[Node],
    blocks6: dict[str, tuple[str, ...]],
) -> CalicoCluster:
    """The Calico resources of a phase.

    Without ``reflectors``, a node-to-node mesh of ``hosts``; else no mesh, and every host
    peering with the reflectors as Calico's route-reflector set-up reads: one cluster id and
    a label on the reflectors, one BGPPeer selecting them for all nodes.
    """
    nodes = [
        CalicoNode(
            h.name,
            f"{h.address}/{SUBNET.prefixlen}",
            f"{address6(h)}/{SUBNET6.prefixlen}",
        )
        for h in hosts
    ]
    nodes += [
        CalicoNode(
            r.name,
            f"{r.address}/{SUBNET.prefixlen}",
            f"{address6(r)}/{SUBNET6.prefixlen}",
            rr_cluster_id=CLUSTER_ID,
            labels={RR_LABEL: "true"},
        )
        for r in reflectors
    ]
    peers: tuple[BGPPeerSpec, ...] = ()
    if reflectors:
        peers = (
            BGPPeerSpec(
                "peer-with-route-reflectors",
                node_selector="all()",
                peer_selector=f"{RR_LABEL} == 'true'",
            ),
        )
    return CalicoCluster(
        nodes=tuple(nodes),
        pools=(IPPool(str(POOL)), IPPool(str(POOL6))),
        peers=peers,
        blocks={
            h.name: tuple(Block(b, "confirmed") for b in (*h.blocks, *blocks6[h.name]))
            for h in hosts
        },
        as_number=AS_NUMBER,
        node_to_node_mesh=not reflectors,
    )


def bird_protocols(path: Path) -> list[tuple[str, str, str]] | None:
    """``show protocols`` on a BIRD control socket: (name, proto, info) per row.

    None when the socket does not answer (yet).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(SOCKET_TIMEOUT)
            client.connect(str(path))
            data = b""
            while b"\n" not in data:  # the greeting, 0001 BIRD ... ready.
                chunk = client.recv(4096)
                if not chunk:
                    return None
                data += chunk
            client.sendall(b"show protocols\n")
            data = b""
            while not any(line[:4].isdigit() and line[4:5] == b" " for line in data.split(b"\n")):
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    rows = []
    for line in data.decode(errors="replace").splitlines():
        if not line.startswith(("1002-", " ")):
            continue  # 0001 greeting, 2002 headings, 0000 end
        words = line.removeprefix("1002-").split(None, 5)
        if len(words) >= 4:
            rows.append((words[0], words[1], words[5].strip() if len(words) > 5 else ""))
    return rows


async def _host_routes(
    hosts: Sequence[Node],
) -> dict[tuple[str, int], dict[str, tuple[int, frozenset[str]]]]:
    """(host, family) -> prefix -> (route type, gateways), the proto-bird routes."""
    dumps = await asyncio.gather(
        *(
            dump_routes(family, MAIN_TABLE, PROTO_BIRD, netns=h.netns)
            for h in hosts
            for family, _ in FAMILIES
        )
    )
    keys = [(h.name, family) for h in hosts for family, _ in FAMILIES]
    out: dict[tuple[str, int], dict[str, tuple[int, frozenset[str]]]] = {}
    for key, routes in zip(keys, dumps, strict=True):
        table = {}
        six = key[1] == socket.AF_INET6
        for route in routes:
            gateways = [route.gateway] if route.gateway else [n.gateway for n in route.multipath]
            texts = frozenset(str(ipaddress.ip_address(g)) for g in gateways if g)
            family = Family.IPV6_UNICAST if six else Family.IPV4_UNICAST
            table[prefix_text(route.prefix, family)] = (route.type, texts)
        out[key] = table
    return out


BLACKHOLE = 6  # RTN_BLACKHOLE


class BirdCfgLab(Lab):
    """The lab with every node run from Calico's rendered files, in both families."""

    def __init__(
        self, hosts: int, blocks: int, timeout: float, out: TextIO, stock_bird: Path | None
    ) -> None:
        super().__init__(hosts, blocks, timeout, out)
        self.stock_bird = stock_bird
        self.blocks6 = {h.name: host_blocks6(h.number, blocks) for h in self.hosts}
        self.link_local: dict[str, str] = {}
        self.daemon_files: list[tuple[Node, Path]] = []  # each daemon's node and config
        self.by_address.update({address6(n): n for n in (*self.hosts, *self.reflectors)})

    def headline(self) -> str:
        """The first line of the run."""
        runner = f"BIRD 1.6 from {self.stock_bird}" if self.stock_bird else "Myna as bird/bird6"
        return (
            f"Myna lab, bird.cfg mode ({runner}): {len(self.hosts)} Calico hosts, dual stack,"
            f" {len(self.hosts[0].blocks)} /{BLOCK_LENGTH} blocks of {POOL} and"
            f" /{BLOCK6_LENGTH} blocks of {POOL6} each, namespaces {self.prefix}*"
        )

    def facts(self) -> dict[str, Any]:
        """What the JSON result says about the cluster."""
        return {"pool": str(POOL), "pool6": str(POOL6), "mode": "bird-cfg"}

    # -- the namespaces -----------------------------------------------------------------------

    def build(self) -> None:
        """The lab's IPv4 cluster, then an IPv6 address per node and the IPv6 blackholes."""
        super().build()
        nodes = [*self.hosts, *self.reflectors]
        with self.step(f"adding IPv6 ({SUBNET6} on the bridge, /{BLOCK6_LENGTH} blackholes)"):
            for n in nodes:
                lines = [f"addr add {address6(n)}/{SUBNET6.prefixlen} dev eth0 nodad"]
                if n in self.hosts:
                    lines += [
                        f"route add blackhole {b} proto {PROTO_FELIX}" for b in self.blocks6[n.name]
                    ]
                _batch(lines, n.netns)
            for n in nodes:
                listing = json.loads(ip("-j", "-6", "addr", "show", "dev", "eth0", netns=n.netns))
                for entry in listing:
                    for info in entry.get("addr_info", []):
                        if info.get("scope") == "link":
                            self.link_local[n.name] = info["local"]

    def flush_bird_routes(self) -> None:
        """Delete what the daemons wrote (proto bird, both families, every node)."""
        for node in (*self.hosts, *self.reflectors):
            for family in ("-4", "-6"):
                ip(family, "route", "flush", "proto", "bird", netns=node.netns)

    # -- the daemons --------------------------------------------------------------------------

    def _command(self, six: str) -> list[str]:
        if self.stock_bird is not None:
            return [str(self.stock_bird / f"bird{six}")]
        return [sys.executable, "-m", "bgpd.cli", f"bird{six}"]

    def start_bird(self, cluster: CalicoCluster, nodes: Sequence[Node], workdir: Path) -> None:
        """Render each node's files and start its bird and bird6, as calico-node starts them."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p
        )
        for node in nodes:
            directory = workdir / node.name
            write_node(cluster, node.name, directory)
            for _, six in FAMILIES:
                config = directory / f"bird{six}.cfg"
                control = directory / f"bird{six}.ctl"
                args = ["-R", "-s", str(control), "-d", "-c", str(config)]
                cmd = ["ip", "netns", "exec", node.netns, *self._command(six), *args]
                with (directory / f"bird{six}.log").open("ab") as log:
                    process = subprocess.Popen(
                        cmd,
                        cwd=directory,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,  # a Ctrl-C reaches the lab, which stops them
                    )
                self.daemons.append((node, process))
                self.daemon_files.append((node, config))

    def stop_daemons(self) -> None:
        """The lab's stop, and the daemons' files forgotten with them."""
        super().stop_daemons()
        self.daemon_files = []

    # -- convergence --------------------------------------------------------------------------

    def owner_addresses(self, owner: Node, six: bool) -> frozenset[str]:
        """The next hops a route to ``owner``'s block may have in its family."""
        if not six:
            return frozenset({owner.address})
        link_local = self.link_local.get(owner.name)
        return frozenset({address6(owner), *((link_local,) if link_local else ())})

    def route_problems(self) -> list[str]:
        """Missing, unexpected or wrong proto-bird routes on the hosts, both families."""
        found = []
        routes = asyncio.run(_host_routes(self.hosts))
        for host in self.hosts:
            for family, six in FAMILIES:
                got = routes[(host.name, family)]
                own = set(self.blocks6[host.name] if six else host.blocks)
                want = {
                    b: self.owner_addresses(o, bool(six))
                    for o in self.hosts
                    if o != host
                    for b in (self.blocks6[o.name] if six else o.blocks)
                }
                missing = sorted(want.keys() - got.keys())
                extra = sorted(
                    p for p in got.keys() - want.keys() if not (p in own and got[p][0] == BLACKHOLE)
                )
                wrong = sorted(
                    p for p in want.keys() & got.keys() if not got[p][1] or got[p][1] - want[p]
                )
                problems = (("missing", missing), ("unexpected", extra), ("wrong", wrong))
                for what, prefixes in problems:
                    if prefixes:
                        shown = ", ".join(prefixes[:3]) + (" ..." if len(prefixes) > 3 else "")
                        found.append(
                            f"{host.name}: {len(prefixes)} {what} proto bird IPv{six or 4}"
                            f" routes ({shown})"
                        )
        return found

    def session_problems(self) -> tuple[list[str], bool]:
        """Sessions not Established (every daemon's socket asked); whether all answered."""
        found = []
        answered = True
        for node, config in self.daemon_files:
            rows = bird_protocols(config.with_suffix(".ctl"))
            if rows is None:
                answered = False
                found.append(f"{node.name}: {config.stem} does not answer on its socket yet")
                continue
            down = [(n, i) for n, proto, i in rows if proto == "BGP" and "Established" not in i]
            if down:
                shown = ", ".join(f"{n} {i or '?'}" for n, i in down[:3])
                found.append(f"{node.name}: {config.stem}: {len(down)} not Established ({shown})")
        return found, answered

    def bird_problems(self) -> tuple[list[str], bool]:
        """What keeps the cluster from being converged (empty when it is).

        And whether every daemon answers on its socket.
        """
        found = [
            f"{node.name}: {config.stem} exited with status {process.returncode}"
            for (node, process), (_, config) in zip(self.daemons, self.daemon_files, strict=True)
            if process.poll() is not None
        ]
        sessions, answered = self.session_problems()
        return found + self.route_problems() + sessions, answered

    # -- a phase ------------------------------------------------------------------------------

    def bird_phase(
        self, name: str, title: str, reflectors: Sequence[Node], sessions: int
    ) -> PhaseResult:
        """Render, start both daemons on every node, wait for convergence, report."""
        assert self.tmpdir is not None
        workdir = self.tmpdir / name
        workdir.mkdir()
        nodes = [*reflectors, *self.hosts]
        cluster = lab_cluster(self.hosts, reflectors, self.blocks6)
        self.say()
        self.say(
            f"== {title}: {2 * len(nodes)} daemons (bird and bird6 on each node),"
            f" {sessions} iBGP sessions per family (AS {AS_NUMBER})"
        )
        with self.step(f"rendering bird.cfg/bird6.cfg and starting them in {len(nodes)} nodes"):
            started = time.monotonic()
            self.start_bird(cluster, nodes, workdir)
        result = self.wait_converged(started, self.bird_problems)
        result.name, result.title = name, title
        result.nodes = self.bird_snapshot(nodes)
        self.report(result, workdir)
        return result

    def bird_snapshot(self, nodes: Sequence[Node]) -> dict[str, dict[str, Any]]:
        """Each node's sessions per daemon and, for hosts, both main tables."""
        out: dict[str, dict[str, Any]] = {}
        for node in nodes:
            entry: dict[str, Any] = {
                "address": node.address,
                "address6": address6(node),
                "netns": node.netns,
                "sessions": {},
            }
            for daemon, config in self.daemon_files:
                if daemon == node:
                    rows = bird_protocols(config.with_suffix(".ctl"))
                    entry["sessions"][config.stem] = (
                        None if rows is None else {n: i for n, p, i in rows if p == "BGP"}
                    )
            if node in self.hosts:
                entry["blocks"] = [*node.blocks, *self.blocks6[node.name]]
                for family in ("4", "6"):
                    routes = ip("-j", f"-{family}", "route", netns=node.netns) or "[]"
                    entry["routes" if family == "4" else "routes6"] = json.loads(routes)
            out[node.name] = entry
        return out

    ROUTE_FAMILIES = ("-4", "-6")

    def report_sessions(self, result: PhaseResult) -> None:
        """Each daemon's BGP protocols, from ``show protocols`` on its BIRD socket."""
        self.say("sessions (show protocols on each daemon's BIRD socket):")
        for name, entry in result.nodes.items():
            first = True
            for daemon, rows in entry["sessions"].items():
                head = f"{name:<4} {entry['address']:<13}" if first else " " * 18
                first = False
                if rows is None:
                    self.say(f"  {head} {daemon:<5} (no answer on {daemon}.ctl)")
                    continue
                states: dict[str, int] = {}
                for info in rows.values():
                    states[info or "?"] = states.get(info or "?", 0) + 1
                counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no peers"
                self.say(f"  {head} {daemon:<5} {len(rows)} BGP protocols: {counts}")

    def log_tails(self, result: PhaseResult, workdir: Path) -> None:
        """The last lines of the logs of the daemons that failed (at most four), bird and bird6."""
        shown = 0
        for (node, process), (_, config) in zip(self.daemons, self.daemon_files, strict=True):
            if shown == 4:
                break
            named = any(p.startswith(f"{node.name}:") for p in result.problems)
            if process.poll() is None and not named:
                continue
            with contextlib.suppress(OSError):
                lines = config.with_suffix(".log").read_text(errors="replace").splitlines()
                if lines:
                    shown += 1
                    self.say(f"  last lines of {node.name}'s {config.stem} log:")
                    for line in lines[-8:]:
                        self.say(f"    {line}")

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> None:
        """Both phases on a built lab, results in ``results``; phase 2's daemons stay up."""
        n = len(self.hosts)
        self.results.append(
            self.bird_phase("mesh", "phase 1, node-to-node mesh", (), n * (n - 1) // 2)
        )
        with self.step("stopping the mesh daemons and flushing their routes (proto bird)"):
            self.stop_daemons()
            self.flush_bird_routes()
        sessions = n * len(self.reflectors) + 1
        self.results.append(
            self.bird_phase(
                "reflectors", "phase 2, two route reflectors", self.reflectors, sessions
            )
        )


def check_arguments(args: argparse.Namespace) -> str | None:
    """The bird.cfg mode's own limits (None when ``args`` are fine)."""
    if args.stock_bird is not None and not args.bird_cfg:
        return "--stock-bird needs --bird-cfg"
    if args.bird_cfg and args.blocks > MAX_BLOCKS6:
        return f"--blocks must be at most {MAX_BLOCKS6} with --bird-cfg"
    if args.stock_bird is not None:
        for six in ("", "6"):
            binary = Path(args.stock_bird) / f"bird{six}"
            if not os.access(binary, os.X_OK):
                return f"--stock-bird: {binary} is not an executable"
    return None


def make_lab(args: argparse.Namespace, out: TextIO) -> Lab:
    """The lab ``args`` ask for: the YAML one or the bird.cfg one."""
    if not args.bird_cfg:
        return Lab(args.hosts, args.blocks, args.timeout, out)
    stock = Path(args.stock_bird).resolve() if args.stock_bird else None
    return BirdCfgLab(args.hosts, args.blocks, args.timeout, out, stock)


def run_lab_command(args: argparse.Namespace) -> int:
    """``myna lab`` with either kind of lab (``--bird-cfg``)."""
    return run_lab(args, make_lab, check_arguments)
