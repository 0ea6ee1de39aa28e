"""The benchmarks' ``myna-birdcfg`` rows: Myna run from the bird.cfg confd renders for the role.

Role: ``bench.reflector_fanout`` (the suite's propagation and fanout scenarios) and
``bench.mesh_scale`` (its kernel scenario's ``install-100k``) time Myna twice in the same run:
``myna``, from its own YAML, and ``myna-birdcfg``, from Calico's ``bird.cfg`` with Calico's
filters, so that the suite can say how much BIRD's semantics cost (issue 14 asks for at most
15 %). This module holds the ``myna-birdcfg`` daemons of both harnesses and what they render.

Data flow: the harness builds the daemon as it builds every other (host, router id, AS, one
passive neighbor per client), then ``prepare(case)`` chooses the Calico inputs for the case
(``layout``), and ``start`` renders the node's ``bird.cfg``, ``bird_aggr.cfg`` and
``bird_ipam.cfg`` with ``bench.calico_bird_cfg`` into ``workdir/calico`` and starts
``python -m bench.bird_launch -R -d -s rundir/bird.ctl -c workdir/calico/bird.cfg`` in the
namespace with that directory as its working directory (calico-node's ``bird -R -s ... -d -c
...``). Its log is ``workdir/myna.log``.

The roles, as confd renders them:

* ``CalicoReflector`` (propagation, fanout): a node with ``routeReflectorClusterID`` equal to
  its address; each client is a Calico node it peers with, ``Node_<ip>`` with ``rr client;
  rr cluster id`` (confd's rendering for the nodes a BGPPeer pairs a reflector with: active
  on both sides, as Calico leaves them). Its pools are IPIP pools (Calico's default pool mode)
  under the default ``programClusterRoutes``, so ``calico_kernel_programming`` rejects their
  routes ("handled by Felix") and the reflector, like the YAML row, writes nothing into its
  kernel; every reflected route still runs through the peer's export filter and
  ``calico_export_to_bgp_peers`` (the pool's accept).
* ``CalicoMeshNode`` (kernel): a node of the node-to-node mesh whose one peer is
  ``Mesh_<ip>``, passive towards the higher address; its pools have no encapsulation, which
  BIRD programs by default, so every route goes through ``calico_kernel_programming``
  (``krt_metric = 2147483647 - bgp_local_pref``) into the kernel.

Both nodes hold two /26 blocks of their own (static blackholes and ``calico_aggr``), right
after the case's last prefix so that ``calico_aggr``'s "nothing beneath our own block" rule
touches none of the benchmark's routes; a reflector's clients receive them too (``own``:
``bench.bgp_clients --own`` counts them into the full table). The pools hold the case's
prefixes and the blocks and never the session subnets (``layout``).
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import PeerDaemon
from testbed.peers import PeerError, State

from bench import calico_bird_cfg as calico
from bench.bgp_clients import CASES

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
KIND = "myna-birdcfg"
LABEL = "Myna (bird.cfg)"
BLOCK_LENGTH = 26
OWN_BLOCKS = 2


def layout(
    case_name: str, clients: int, encapsulation: str, leave_out: list[str]
) -> tuple[tuple[calico.Pool, ...], tuple[str, ...]]:
    """(pools, the node's own blocks) for a case's prefixes, clear of ``leave_out``.

    The blocks are the two /26s after the case's highest address. The pool is the smallest
    network holding every prefix and the blocks (one pool, as Calico's default /16); where
    that network would hold a session subnet, the fewest CIDRs from the lowest prefix to that
    network's end.
    """
    case = CASES[case_name]
    low, high = 1 << 32, 0
    for i in range(clients):
        prefixes = case.announce(i)
        if prefixes:
            low = min(low, min(prefixes) >> 8)
            last = max((p >> 8) + (1 << (32 - (p & 0xFF))) - 1 for p in prefixes)
            high = max(high, last)
    size = 1 << (32 - BLOCK_LENGTH)
    first_block = (high // size + 1) * size
    blocks = tuple(
        f"{ipaddress.IPv4Address(first_block + k * size)}/{BLOCK_LENGTH}" for k in range(OWN_BLOCKS)
    )
    last = first_block + OWN_BLOCKS * size - 1
    span = (low ^ last).bit_length()
    supernet = ipaddress.IPv4Network(((low >> span) << span, 32 - span))
    if not any(supernet.overlaps(ipaddress.IPv4Network(n)) for n in leave_out):
        return (calico.Pool(str(supernet), encapsulation),), blocks
    end = str(supernet.broadcast_address)
    pools = calico.covering_pools(str(ipaddress.IPv4Address(low)), end, encapsulation, leave_out)
    return pools, blocks


class CalicoBirdMyna(PeerDaemon):
    """Myna from a Calico ``bird.cfg`` (see the module docstring); ``prepare`` before start."""

    kind = KIND
    encapsulation = "none"
    subnet = "198.18.0.0/24"  # the node's ipv4Address network
    leave_out: tuple[str, ...] = ("198.18.0.0/24",)

    pools: tuple[calico.Pool, ...] = ()
    blocks: tuple[str, ...] = ()

    def prepare(self, case_name: str, clients: int) -> CalicoBirdMyna:
        """Choose the pools and blocks for ``case_name`` with ``clients`` clients."""
        self.pools, self.blocks = layout(
            case_name, clients, self.encapsulation, list(self.leave_out)
        )
        return self

    def peers(self) -> tuple[calico.BgpPeer, ...]:
        """The node's ``protocol bgp`` list."""
        raise NotImplementedError

    def node(self) -> calico.CalicoNode:
        """What confd renders the node's files from."""
        if not self.pools:
            raise RuntimeError(f"{self}: prepare() was not called")
        return calico.CalicoNode(
            self.router_id, self.subnet, self.local_as, self.peers(), self.pools, self.blocks
        )

    @property
    def config_dir(self) -> Path:
        """Where the rendered files are (the daemon's working directory)."""
        return self.workdir / "calico"

    def _launch(self) -> None:
        path = calico.write(self.node(), self.config_dir)
        command = [str(PYTHON), "-m", "bench.bird_launch", "-R", "-d"]
        command += ["-s", str(self.rundir / "bird.ctl"), "-c", str(path)]
        log = self.workdir / "myna.log"
        env = {"PYTHONPATH": str(REPO)}
        self.processes.append(self.host.popen(*command, log=log, cwd=self.config_dir, env=env))

    def session_state(self, neighbor_address: str) -> State:
        """Not read by the benchmarks (they watch their own sessions)."""
        raise PeerError(f"{self}: session states are not read in the benchmarks")


class CalicoReflector(CalicoBirdMyna):
    """A Calico route reflector: every neighbor a ``Node_`` peering and an RR client."""

    encapsulation = "ipip"

    def peers(self) -> tuple[calico.BgpPeer, ...]:
        """``Node_<ip>`` with ``rr client; rr cluster id <router id>`` for each client."""
        addresses = [n.address for n in self.neighbors]
        return calico.reflector_peers(self.router_id, addresses, self.local_as, self.router_id)


class CalicoMeshNode(CalicoBirdMyna):
    """A Calico node-to-node mesh node programming its kernel."""

    encapsulation = "none"
    leave_out = ("198.18.0.0/24", "198.18.2.0/23")  # bench.mesh_scale's node and peer links

    def peers(self) -> tuple[calico.BgpPeer, ...]:
        """``Mesh_<ip>`` for each neighbor, passive towards a higher address."""
        return calico.mesh_peers(self.router_id, [n.address for n in self.neighbors], self.local_as)


def turn_order(rows: list[str], run_index: int) -> list[str]:
    """The rows in the order of run ``run_index``: YAML and bird.cfg swap places every other run.

    The harnesses take the rows in turn, run by run; with a fixed order whatever the row before
    leaves behind (its teardown, the machine's state) would always fall on the same mode.
    """
    if run_index % 2 == 0 or KIND not in rows or "myna" not in rows:
        return list(rows)
    i, j = rows.index("myna"), rows.index(KIND)
    swapped = list(rows)
    swapped[i], swapped[j] = rows[j], rows[i]
    return swapped


def is_birdcfg(daemon: PeerDaemon | None) -> bool:
    """Whether ``daemon`` is one of this module's."""
    return isinstance(daemon, CalicoBirdMyna)


def own_prefixes(daemon: PeerDaemon | None) -> tuple[str, ...]:
    """The blocks the node announces itself (none for the other daemons)."""
    return daemon.blocks if isinstance(daemon, CalicoBirdMyna) else ()


__all__ = [
    "LABEL",
    "CalicoMeshNode",
    "CalicoReflector",
    "is_birdcfg",
    "layout",
    "own_prefixes",
    "turn_order",
]
