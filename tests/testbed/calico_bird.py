"""BIRD 2 configured as Calico configures it on a node of the node-to-node mesh.

Data flow: ``CalicoBird2Peer`` renders one BIRD 2 config from the node's address, its blocks
and the mesh (every other node's address), following confd's templates (see
``/work/shared/reference/calico-bird.md``):

* a kernel protocol that learns Felix's blackholes (``learn``), leaves its routes in the
  kernel when BIRD stops (``persist``), rescans every 2 s, defers its sync until
  graceful-restart recovery ends (``graceful restart``) and writes ECMP routes (``merge paths
  on``), with the ``calico_kernel_programming`` filter of a pool without encapsulation;
* the node's blocks as static blackholes (``bird_aggr.cfg``), so that BIRD has them from its
  start (its first kernel scan comes a second later);
* one ``Mesh_<ip>`` BGP protocol per other node with ``graceful restart``, its ``graceful
  restart time`` (nodeMeshMaxRestartTime), ``add paths on``, passive towards a higher address
  (confd compares the addresses as text), and Calico's export rule (the node's own blocks,
  never their more-specifics, then anything in the pool).

It starts as Calico starts it, ``bird -R`` (graceful-restart recovery at every start). What
differs from Calico, for test speed: the test bed's short connect and error-wait timers and
hold time, and ``direct`` sessions (every node shares one bridge) instead of ``gateway
recursive`` over multihop.

``graceful_stop`` is ``birdc graceful restart`` (BIRD closes its sessions without a
NOTIFICATION, so its peers keep its routes as stale, and leaves its kernel routes), then the
process exits; ``start`` again is the ``bird -R`` restart. ``stop`` (SIGTERM) is BIRD's plain
shutdown: a Cease to every peer, which ends graceful restart for them.
"""

from __future__ import annotations

import re

from .bird import (
    CONNECT_DELAY,
    CONNECT_RETRY,
    ERROR_WAIT_MAX,
    ERROR_WAIT_MIN,
    Bird2Peer,
    _BirdProcess,
)
from .peers import Neighbor, PeerError, State, normalise_prefix, normalise_state
from .topology import Host, wait_for

CALICO_BIRD_RESTART_TIME = 120  # BIRD's default, what Calico uses without nodeMeshMaxRestartTime


def mesh_protocol_name(address: str) -> str:
    """confd's name for the mesh session with ``address``: ``Mesh_198_18_0_2``."""
    return "Mesh_" + re.sub(r"[^0-9a-zA-Z]", "_", address)


class CalicoBird2Peer(Bird2Peer):
    """BIRD 2 on a Calico mesh node (see the module docstring); ``prefixes`` are its blocks."""

    kind = "calico-bird"

    def __init__(
        self,
        host: Host,
        mesh: list[str],
        blocks: list[str],
        *,
        local_as: int = 64512,
        pool: str = "198.19.0.0/16",
        restart_time: int = CALICO_BIRD_RESTART_TIME,
        name: str | None = None,
        debug: bool = False,
    ) -> None:
        neighbors = [Neighbor(address, local_as) for address in mesh if address != host.ipv4]
        super().__init__(host, host.ipv4, local_as, neighbors, blocks, name=name)
        self.pool = normalise_prefix(pool)
        self.restart_time = restart_time
        self.debug = debug  # every BGP event and packet in the log, not only the states

    def _launch(self) -> None:
        process = self._bird_processes()[0]
        process.config(self.workdir).write_text(self._render(process))
        self._spawn(
            process.daemon, "-f", "-R",
            "-c", process.config(self.workdir),
            "-s", process.socket(self.rundir),
            "-P", self.rundir / f"{process.label}.pid",
            log=f"{process.label}.log",
        )  # fmt: skip

    def _render(self, process: _BirdProcess) -> str:
        own = "\n".join(
            f"  if ( net = {block} ) then {{ accept; }}\n  if ( net ~ {block} ) then {{ reject; }}"
            for block in self.prefixes
        )
        lines = [
            "log stderr all;",
            f"router id {self.router_id};",
            "protocol device { scan time 2; }",
            "filter calico_kernel_programming {",
            f"  if ( net ~ {self.pool} ) then {{ accept; }}  # a pool without encapsulation",
            "  accept;",
            "}",
            "protocol kernel {",
            "  ipv4 { import all; export filter calico_kernel_programming; };",
            "  learn; persist; scan time 2; graceful restart; merge paths on;",
            "}",
            # bird_aggr.cfg: the node's blocks as static blackholes, there from the start
            "protocol static static_blocks {",
            "  ipv4;",
            *(f"  route {block} blackhole;" for block in self.prefixes),
            "}",
            "function calico_aggr() {",
            own,
            "}",
            "function calico_export_to_bgp_peers() {",
            "  calico_aggr();",
            f"  if ( net ~ {self.pool} ) then {{ accept; }}",
            "}",
            "template bgp bgp_template {",
            f"  local as {self.local_as};",
            "  debug all;" if self.debug else "  debug { states, events };",
            "  direct;",
            f"  hold time {self.hold_time};",
            f"  keepalive time {self.keepalive_time};",
            "  graceful restart;",
            f"  connect delay time {CONNECT_DELAY};",
            f"  connect retry time {CONNECT_RETRY};",
            f"  error wait time {ERROR_WAIT_MIN}, {ERROR_WAIT_MAX};",
            "}",
        ]
        for neighbor in self.neighbors:
            name = mesh_protocol_name(neighbor.address)
            lines.append(f"protocol bgp {name} from bgp_template {{")
            lines.append(f"  local {self.host.ipv4} as {self.local_as};")
            lines.append(f"  neighbor {neighbor.address} as {neighbor.remote_as};")
            lines.append(
                "  ipv4 { import all; add paths on; next hop self;"
                " export filter { calico_export_to_bgp_peers(); reject; }; };"
            )
            if neighbor.address > self.host.ipv4:  # confd: "Mesh is unidirectional"
                lines.append("  passive on;")
            lines.append(f"  graceful restart time {self.restart_time};")
            lines.append("}")
        return "\n".join(lines) + "\n"

    # -- queries: the protocols are named as confd names them ----------------------------------

    def protocol(self, neighbor_address: str) -> str:
        """The ``Mesh_<ip>`` protocol of ``neighbor_address``."""
        return mesh_protocol_name(self.neighbor(neighbor_address).address)

    def session_state(self, neighbor_address: str) -> State:
        name = self.protocol(neighbor_address)
        output = self.birdc("show", "protocols", "all", name)
        match = re.search(r"^\s*BGP state:\s+(\w+)", output, re.MULTILINE)
        if match is not None:
            return normalise_state(match.group(1))
        if re.search(rf"^{name}\s", output, re.MULTILINE) is None:
            raise PeerError(f"no protocol {name} in birdc output: {output.strip()}")
        return State.IDLE

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        output = self.birdc("show", "route", "protocol", self.protocol(neighbor_address))
        prefixes = set()
        for line in output.splitlines()[1:]:
            first = line.split(maxsplit=1)[0] if line[:1].strip() else ""
            if "/" in first:
                prefixes.add(normalise_prefix(first))
        return frozenset(prefixes)

    def restart_active(self, neighbor_address: str) -> bool:
        """Whether BIRD is the receiving side of a graceful restart of ``neighbor_address``
        (``show protocols all`` says "Neighbor graceful restart active": its routes are kept,
        stale, until it is back and sends End-of-RIB or its restart time is over)."""
        output = self.birdc("show", "protocols", "all", self.protocol(neighbor_address))
        return "Neighbor graceful restart active" in output

    def restart_timer(self, neighbor_address: str) -> float | None:
        """Seconds left before BIRD drops ``neighbor_address``'s stale routes (its restart
        time counting down while the session is down); None when no restart timer runs."""
        output = self.birdc("show", "protocols", "all", self.protocol(neighbor_address))
        match = re.search(r"^\s*Restart timer:\s+([\d.]+)/", output, re.MULTILINE)
        return float(match.group(1)) if match is not None else None

    def graceful_stop(self, timeout: float = 10.0) -> None:
        """``birdc graceful restart``: BIRD leaves without a NOTIFICATION to its peers and with
        its kernel routes in place; returns once the process has exited."""
        self.birdc("graceful", "restart")
        wait_for(
            lambda: all(p.poll() is not None for p in self.processes),
            timeout,
            f"{self} to exit after birdc graceful restart",
        )
        self.stop()  # reaps it (and SIGKILLs it, had it not exited)
