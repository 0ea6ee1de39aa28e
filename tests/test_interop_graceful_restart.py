"""Graceful restart in a Calico mesh of four nodes, two running Myna and two BIRD 2.

Data flow: four hosts in network namespaces on one bridge (198.18.0.1-4) form Calico's
node-to-node iBGP mesh in AS 64512: ``myna1`` and ``myna2`` run Myna with the mesh section and
kernel sync on (``kernel: {program: true, learn: true}``, graceful restart and selection
deferral as by default), ``bird3`` and ``bird4`` run BIRD 2 configured as Calico configures it
(``testbed.calico_bird``: ``bird -R``, graceful restart, a kernel protocol with ``learn``,
``persist``, ``graceful restart`` and ``merge paths on``, the node's blocks as static
blackholes). Every node has a Felix-style blackhole for its block (``ip route add blackhole
198.19.N.0/26 proto 80``); its daemon announces it, and every other node's daemon writes it
into its own kernel (protocol 12, via the node's address). Short restart time (20 s), so that
a dead peer's routes go within the test. Once the mesh has converged, ``ip -ts monitor route``
runs in every namespace until the end (a canary route written and awaited in each log marks
"everything before now is logged").

Scenarios: (a) a Myna node restarted with SIGTERM and (b) with SIGKILL; (c) a BIRD node
stopped with ``birdc graceful restart`` or SIGKILL, then started with ``bird -R``; (d) two
nodes at once, a Myna and a BIRD, or both Myna; (e) a Myna node restarted while a BIRD peer is
dead for good. While nodes are down, Felix adds a block at every node that is up. Each
scenario checks:

* while a node is down, its peers keep its routes as stale: BIRD shows "Neighbor graceful
  restart active" with its restart timer running and still lists them, Myna's control socket
  shows them ``stale``, and every kernel still holds them;
* a restarted Myna programs the routes of the peers that are up without waiting for a peer
  that is down: the time from its start until its kernel holds the blocks added meanwhile
  must be under half the restart and deferral timers (it takes a few seconds);
* no kernel route flaps on any node: the monitors show no line at all for a block that did
  not change, and exactly one addition for each block added. What legitimately changes is
  asserted on its own: the dead peer's block goes from every kernel once its restart time is
  over (not before), and in (d) BIRD's own kernel sync may delete and re-add the block of the
  Myna node that restarted with it (a BIRD behaviour, explained in that test).

Every wait polls a condition with a deadline (``wait_for``); the topology fixture stops every
process by PID and deletes the namespaces whatever the outcome.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from testbed import Host, Neighbor, Topology, wait_for
from testbed.calico_bird import CalicoBird2Peer
from testbed.myna_peer import MynaPeer
from testbed.peers import PeerDaemon, State

from bgpd.control_socket import request

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512
POOL = "198.19.0.0/16"
# nodeMeshMaxRestartTime, short so that the dead peer's routes go within the test; every
# restart here is back within a few seconds, far inside it.
RESTART_TIME = 20
SELECTION_DEFERRAL = 30.0  # Myna's default
# A restarted Myna must hold the up peers' new blocks this fast: well below both timers, so
# that waiting for either (for a peer that is down, say) fails the test.
PROGRAMMED_WITHIN = min(RESTART_TIME, SELECTION_DEFERRAL) / 2
NODES = ("myna1", "myna2", "bird3", "bird4")


def block(host: Host) -> str:
    """The node's first block (Felix's blackhole, there from the start)."""
    return f"198.19.{host.number}.0/26"


def new_block(host: Host) -> str:
    """A block Felix adds to the node while another node is down."""
    return f"198.19.{host.number}.64/26"


def kernel_routes(host: Host) -> dict[str, tuple[str, ...]]:
    """The host's protocol-12 routes (what Myna and BIRD program): prefix -> gateways."""
    output = host.run("ip", "-4", "-j", "route", "show", "proto", "bird").stdout
    routes = {}
    for route in json.loads(output or "[]"):
        if route.get("type") == "blackhole":
            continue  # BIRD's own blocks (its static protocol), not routes to other nodes
        hops = route.get("nexthops") or [route]
        routes[route["dst"]] = tuple(sorted(hop.get("gateway", "") for hop in hops))
    return routes


class MeshMyna(MynaPeer):
    """Myna on a Calico mesh node: mesh section, pool, own block, kernel sync."""

    def __init__(self, host: Host, mesh: list[str], restart_time: int) -> None:
        neighbors = [Neighbor(address, AS) for address in mesh if address != host.ipv4]
        super().__init__(host, host.ipv4, AS, neighbors)
        self.mesh = mesh
        self.restart_time = restart_time

    def config(self) -> dict[str, Any]:
        """The bed's config with the mesh instead of listed peers, as a Calico node has it."""
        config = super().config()
        config["peers"] = []
        config.update(
            ipv4_address=self.host.ipv4_interface,
            mesh={"enabled": True, "nodes": self.mesh, "restart_time": self.restart_time},
            ip_pools=[{"cidr": POOL}],
            blocks=[block(self.host)],
            kernel={"program": True, "learn": True},
            selection_deferral=SELECTION_DEFERRAL,
        )
        return config

    def candidates(self, prefix: str) -> list[dict[str, Any]]:
        """Every path of ``prefix`` in the Loc-RIB (``myna show routes PREFIX``)."""
        answer = request(self.control_path, "routes", prefix=prefix)
        assert answer["ok"], answer
        paths: list[dict[str, Any]] = answer["data"]
        return paths

    def deferring(self) -> bool:
        """Whether selection deferral (graceful-restart recovery) is still on."""
        answer = request(self.control_path, "status")
        return bool(answer["data"]["graceful_restart_recovery"])


@dataclass
class MonitorEvent:
    """One line of ``ip -ts monitor route`` about a prefix."""

    stamp: str
    deleted: bool
    prefix: str
    line: str

    @property
    def time(self) -> float:
        """When it happened (``ip -ts`` prints local time), as ``time.time()`` counts."""
        return datetime.datetime.fromisoformat(self.stamp).timestamp()


_MONITOR_LINE = re.compile(r"^\[(?P<stamp>[^\]]+)\]\s*(?P<deleted>Deleted\s+)?(?P<rest>.*)$")
_PREFIX = re.compile(r"(\d+\.\d+\.\d+\.\d+(?:/\d+)?)")


def monitor_events(path: Path) -> list[MonitorEvent]:
    """The route changes a monitor log holds, in order."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        match = _MONITOR_LINE.match(line)
        if match is None:
            continue
        rest = match.group("rest")
        words = rest.split()
        if words and words[0] in ("blackhole", "unreachable", "prohibit", "local", "broadcast"):
            words = words[1:]
        if not words:
            continue
        prefix = _PREFIX.fullmatch(words[0])
        if prefix is None:
            continue
        text = prefix.group(1)
        events.append(
            MonitorEvent(
                match.group("stamp"),
                match.group("deleted") is not None,
                text if "/" in text else f"{text}/32",
                line,
            )
        )
    return events


@dataclass
class Mesh:
    """The four nodes, their daemons and their route monitors."""

    hosts: dict[str, Host]
    daemons: dict[str, PeerDaemon]
    monitors: dict[str, Path] = field(default_factory=dict)
    blocks: dict[str, list[str]] = field(default_factory=dict)  # node -> its blocks now
    added: list[str] = field(default_factory=list)  # blocks Felix added during the test
    dead: set[str] = field(default_factory=set)  # nodes down for good
    _canaries: int = 0

    # -- set-up ---------------------------------------------------------------------------------

    @classmethod
    def build(cls, topology: Topology, restart_time: int = RESTART_TIME) -> Mesh:
        """Four nodes with their blocks, converged, monitors running."""
        hosts = {name: topology.add_host(name) for name in NODES}
        addresses = [host.ipv4 for host in hosts.values()]
        daemons: dict[str, PeerDaemon] = {}
        for name, host in hosts.items():
            host.run("ip", "route", "add", "blackhole", block(host), "proto", "80")
            if name.startswith("myna"):
                daemons[name] = MeshMyna(host, addresses, restart_time)
            else:
                daemons[name] = CalicoBird2Peer(
                    host, addresses, [block(host)], local_as=AS, pool=POOL,
                    restart_time=restart_time,
                )  # fmt: skip
            daemons[name].start()
        mesh = cls(hosts, daemons)
        mesh.blocks = {name: [block(host)] for name, host in hosts.items()}
        mesh.wait_converged(timeout=60)
        for name, host in hosts.items():
            mesh.monitors[name] = host.workdir / "monitor.log"
            host.popen("ip", "-ts", "monitor", "route", log=mesh.monitors[name])
        mesh.mark_monitors()
        return mesh

    # -- views ----------------------------------------------------------------------------------

    def bird(self, name: str) -> CalicoBird2Peer:
        daemon = self.daemons[name]
        assert isinstance(daemon, CalicoBird2Peer)
        return daemon

    def expected_routes(self, name: str, up: Iterable[str] | None = None) -> dict[str, tuple[str]]:
        """What ``name``'s kernel should hold: every other node's blocks (of ``up`` only)."""
        nodes = set(NODES if up is None else up) - {name}
        return {
            prefix: (self.hosts[other].ipv4,)
            for other in sorted(nodes)
            for prefix in self.blocks[other]
        }

    def all_sessions_established(self, names: Iterable[str]) -> bool:
        """Whether every session between the ``names`` is Established, seen from both ends."""
        names = list(names)
        for name in names:
            for other in names:
                if other == name:
                    continue
                state = self.daemons[name].session_state(self.hosts[other].ipv4)
                if state != State.ESTABLISHED:
                    return False
        return True

    def recovered(self, names: Iterable[str]) -> bool:
        """Whether no graceful restart is in progress among ``names``, on either side."""
        names = list(names)
        for name in names:
            daemon = self.daemons[name]
            others = [self.hosts[o].ipv4 for o in names if o != name]
            if isinstance(daemon, MeshMyna):
                if daemon.deferring():
                    return False
                for other in names:
                    if other == name:
                        continue
                    for prefix in self.blocks[other]:
                        if any("stale" in path for path in daemon.candidates(prefix)):
                            return False
            else:
                bird = self.bird(name)
                if "recovery" in bird.birdc("show", "status").lower():
                    return False
                if any(bird.restart_active(address) for address in others):
                    return False
        return True

    def wait_converged(self, up: Iterable[str] = NODES, timeout: float = 60) -> None:
        """Every session among ``up`` Established, no restart in progress, every kernel right."""
        up = list(up)
        wait_for(
            lambda: self.all_sessions_established(up) and self.recovered(up),
            timeout,
            f"every session among {up} Established and recovered",
        )
        for name in up:
            host = self.hosts[name]
            wait_for(
                lambda host=host, name=name: kernel_routes(host),
                timeout,
                f"{name}'s kernel holding the blocks of {up}",
                until=lambda got, name=name: all(
                    got.get(p) == hops for p, hops in self.expected_routes(name, up).items()
                ),
            )

    # -- monitors -------------------------------------------------------------------------------

    def mark_monitors(self) -> None:
        """A canary route in every namespace, awaited in its monitor's log: what happened in
        the kernel before now is in the logs (and the monitors are running). A monitor that
        was not listening yet when a canary came and went is given another one."""
        for name, host in self.hosts.items():
            path = self.monitors[name]
            written: set[str] = set()

            def probe(host: Host = host, path: Path = path, written: set[str] = written) -> bool:
                if any(e.prefix in written and not e.deleted for e in monitor_events(path)):
                    return True
                self._canaries += 1  # outside 198.19.0.0/16: BIRD learns it, exports nothing
                canary = f"198.18.{128 + self._canaries // 256}.{self._canaries % 256}/32"
                host.run("ip", "route", "add", "blackhole", canary, "proto", "static")
                host.run("ip", "route", "del", "blackhole", canary, "proto", "static")
                written.add(canary)
                return False

            wait_for(probe, 10, f"{name}'s monitor showing a canary route", interval=0.2)

    def route_events(self, name: str, prefixes: Iterable[str]) -> list[MonitorEvent]:
        """What ``name``'s monitor saw of ``prefixes``."""
        wanted = set(prefixes)
        return [e for e in monitor_events(self.monitors[name]) if e.prefix in wanted]

    def assert_no_flap(self, allowed: dict[str, Iterable[str]] | None = None) -> None:
        """No kernel saw a block change but the ones Felix added, which each node saw once
        (call after ``mark_monitors``). ``allowed``: node -> blocks the test checks itself
        there."""
        allowed = allowed or {}
        every = {p for blocks in self.blocks.values() for p in blocks}
        for name in self.hosts:
            spared = set(allowed.get(name, ()))
            seen = self.route_events(name, every - set(self.added) - spared)
            assert not seen, f"{name}'s kernel saw unchanged blocks change:\n" + "\n".join(
                e.line for e in seen
            )
            if name in self.dead:
                continue  # its kernel got nothing new
            for prefix in set(self.added) - spared:
                seen = self.route_events(name, [prefix])
                assert len(seen) == 1 and not seen[0].deleted, (
                    f"{name}'s kernel saw the new block {prefix} other than added once:\n"
                    + "\n".join(e.line for e in seen)
                )

    # -- acts -----------------------------------------------------------------------------------

    def add_block(self, name: str) -> str:
        """Felix adds a block to ``name`` (while someone is down); returns it."""
        host = self.hosts[name]
        prefix = new_block(host)
        host.run("ip", "route", "add", "blackhole", prefix, "proto", "80")
        self.blocks[name].append(prefix)
        self.added.append(prefix)
        return prefix

    def assert_kept_stale(self, down: str, peers: Iterable[str]) -> None:
        """``down`` is down: each of ``peers`` keeps its routes, stale, in its RIB and kernel."""
        address = self.hosts[down].ipv4
        prefixes = self.blocks[down]
        for name in peers:
            daemon = self.daemons[name]
            if isinstance(daemon, MeshMyna):
                for prefix in prefixes:
                    wait_for(
                        lambda daemon=daemon, prefix=prefix: daemon.candidates(prefix),
                        10,
                        f"{name} keeping {prefix} from {down} as stale",
                        until=lambda paths: any(
                            p.get("stale") == "stale" and p["next_hop"] == address for p in paths
                        ),
                    )
            else:
                bird = self.bird(name)
                wait_for(
                    lambda bird=bird: bird.restart_active(address),
                    10,
                    f"{name} (BIRD) in graceful restart of {down}",
                )
                assert set(prefixes) <= bird.received_prefixes(address), (
                    f"{name} dropped {down}'s routes"
                )
                timer = bird.restart_timer(address)  # counting down from the restart time
                assert timer is not None and 0 < timer <= RESTART_TIME, timer
            held = kernel_routes(self.hosts[name])
            for prefix in prefixes:
                assert held.get(prefix) == (address,), f"{name}'s kernel lost {prefix}: {held}"


def stop(daemon: PeerDaemon, how: str) -> None:
    """Stop a daemon the way a restart does: SIGTERM, SIGKILL or ``birdc graceful restart``."""
    if how == "SIGKILL":
        daemon.kill()
    elif how == "SIGTERM":
        daemon.stop()
    else:
        assert how == "graceful" and isinstance(daemon, CalicoBird2Peer)
        daemon.graceful_stop()


def restart(mesh: Mesh, down: dict[str, str]) -> dict[str, float]:
    """Stop the ``down`` nodes (name -> how), check that their peers keep their routes as
    stale, have Felix add a block at every node that is up meanwhile, start them again; each
    restarted node must hold the new blocks soon (a Myna one within ``PROGRAMMED_WITHIN``),
    then everything converges. ``mesh.dead`` nodes are down already and stay down. Returns the
    seconds each restarted node took to hold the new blocks."""
    up = [name for name in NODES if name not in down and name not in mesh.dead]
    for name, how in down.items():
        stop(mesh.daemons[name], how)
    for name in down:
        mesh.assert_kept_stale(name, up)
    added = [mesh.add_block(name) for name in up]
    mesh.wait_converged(up)
    started = time.monotonic()
    for name in down:
        mesh.daemons[name].start()
    took = {}
    for name in down:
        host = mesh.hosts[name]
        want = {p: hops for p, hops in mesh.expected_routes(name).items() if p in added}
        wait_for(
            lambda host=host, want=want: kernel_routes(host),
            60,
            f"restarted {name}'s kernel holding {sorted(want)}",
            until=lambda got, want=want: all(got.get(p) == h for p, h in want.items()),
            interval=0.05,
        )
        took[name] = time.monotonic() - started
        print(
            f"{name}: the blocks added while it was down programmed {took[name]:.2f} s after start"
        )
    for name, seconds in took.items():
        if isinstance(mesh.daemons[name], MeshMyna):
            assert seconds < PROGRAMMED_WITHIN, f"{name} took {seconds:.1f} s"
    mesh.wait_converged([*up, *down])
    mesh.mark_monitors()
    return took


# -- scenarios ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_myna_restart(topology: Topology, how: str) -> None:
    """(a), (b): a Myna node stopped with SIGTERM (a planned restart: its sessions close
    without a NOTIFICATION since its routes stay in the kernel) or SIGKILL, then started."""
    mesh = Mesh.build(topology)
    restart(mesh, {"myna1": how})
    mesh.assert_no_flap()


@pytest.mark.parametrize("how", ["graceful", "SIGKILL"])
def test_bird_restart(topology: Topology, how: str) -> None:
    """(c): a BIRD node stopped as BIRD stops for a restart (``birdc graceful restart``) or
    killed, then started as Calico starts it, ``bird -R``; the Myna nodes keep its routes as
    stale meanwhile. (BIRD's plain SIGTERM is a shutdown: it sends a Cease, which ends
    graceful restart at every peer, BIRD or Myna.)"""
    mesh = Mesh.build(topology)
    restart(mesh, {"bird3": how})
    mesh.assert_no_flap()


def test_a_myna_and_a_bird_restart_at_once(topology: Topology) -> None:
    """(d): myna2 (SIGKILL) and bird3 (graceful) down together and started together. Each
    waits for the End-of-RIB of the nodes that did not restart, not for the other (its
    Restart State flag says it defers its own End-of-RIB until its selection is done).

    myna2 keeps bird3's routes in its kernel until bird3 has sent them again. BIRD does not:
    its kernel sync at the end of its recovery deletes the routes of a peer that restarted
    too and has not sent them yet, and writes them again when they arrive. Whether myna2's
    End-of-RIB or bird3's sync comes first is a race, so bird3's kernel may show myna2's block
    deleted and re-added once: that, and only that, is allowed there."""
    mesh = Mesh.build(topology)
    restart(mesh, {"myna2": "SIGKILL", "bird3": "graceful"})
    resynced = mesh.blocks["myna2"][:1]  # the one it had before; the new one came later
    for prefix in resynced:
        seen = mesh.route_events("bird3", [prefix])
        if seen:
            print("bird3's kernel sync after its recovery:", *[e.line for e in seen], sep="\n")
        assert [e.deleted for e in seen] in ([], [True, False]), [e.line for e in seen]
    mesh.assert_no_flap(allowed={"bird3": resynced})


def test_two_myna_restart_at_once(topology: Topology) -> None:
    """(d): both Myna nodes down together (SIGTERM and SIGKILL) and started together: each
    keeps the other's routes in its kernel until the other has sent them again."""
    mesh = Mesh.build(topology)
    restart(mesh, {"myna1": "SIGTERM", "myna2": "SIGKILL"})
    mesh.assert_no_flap()


def test_myna_restarts_while_a_peer_is_dead(topology: Topology) -> None:
    """(e): bird4 dies for good; myna1 restarts meanwhile. myna1 programs the blocks of the
    peers that are up at once, without waiting for bird4 (selection deferral ends with the
    End-of-RIB of the peers that are up); bird4's block stays in every kernel, stale, for
    bird4's restart time, then goes (at the restarted myna1 too: its kernel routes through
    bird4 wait for bird4 as long as the others keep them)."""
    mesh = Mesh.build(topology)
    killed = time.time()
    mesh.daemons["bird4"].kill()
    mesh.dead.add("bird4")
    mesh.assert_kept_stale("bird4", ["myna1", "myna2", "bird3"])
    restart(mesh, {"myna1": "SIGKILL"})
    gone = mesh.blocks["bird4"]
    for name in ("myna1", "myna2", "bird3"):
        wait_for(
            lambda name=name: kernel_routes(mesh.hosts[name]),
            RESTART_TIME + 15,
            f"{name}'s kernel without bird4's blocks once bird4's restart time is over",
            until=lambda got: not set(gone) & got.keys(),
        )
    mesh.mark_monitors()
    # BIRD starts its restart timer 0-25 % short (its timers are randomised that way).
    earliest = {"myna1": RESTART_TIME, "myna2": RESTART_TIME, "bird3": 0.75 * RESTART_TIME}
    for name, after in earliest.items():
        seen = mesh.route_events(name, gone)
        assert [(e.prefix, e.deleted) for e in seen] == [(p, True) for p in gone], seen
        for event in seen:
            held = event.time - killed
            print(f"{name}: bird4's {event.prefix} removed {held:.1f} s after bird4 died")
            assert after - 0.5 <= held <= RESTART_TIME + 10, event.line
    mesh.assert_no_flap(allowed=dict.fromkeys(NODES, gone))
