"""BIRD peers: BIRD 2 (``/usr/sbin/bird``) and BIRD 1.6 (extracted from its .deb by ``./dev``).

Data flow: ``_launch`` renders one config per BIRD process into ``workdir`` and starts the
process in the foreground (``-f``, so its PID is the one registered for teardown) with its own
control socket and pid file in ``rundir``: BIRD's default socket, /run/bird/bird.ctl, is one
file shared by every namespace. Each neighbor gets a ``protocol bgp`` named after its address
(``peer_198_18_0_2``); routes to originate are blackhole routes of a ``static`` protocol, and
each session exports exactly those (``source = RTS_STATIC``) with next hop self, and imports
everything.

Queries run ``birdc -s <socket>`` in the namespace: the session state is the ``BGP state:`` line
of ``show protocols all <name>``, the received prefixes the first column of ``show route
protocol <name>``. ``announce``/``withdraw`` rewrite the config and run ``birdc configure``.

BIRD 1.6 has one binary per family: ``bird`` for IPv4 and ``bird6`` for IPv6 (with ``birdc``
and ``birdc6``). ``Bird16Peer`` starts ``bird`` when it has an IPv4 neighbor and ``bird6`` when
it has an IPv6 one, and sends each query to the one that owns the neighbor's family.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from pathlib import Path

from .peers import (
    REPO_ROOT,
    Neighbor,
    PeerDaemon,
    PeerError,
    State,
    is_ipv6,
    normalise_prefix,
    normalise_state,
)

BIRD2 = Path("/usr/sbin/bird")
BIRDC2 = Path("/usr/sbin/birdc")
# ./dev setup extracts the 1.6 .deb here: installing it would remove bird2, its conflict.
BIRD16_ROOT = REPO_ROOT / ".cache" / "bird16" / "root"
BIRD16_SBIN = BIRD16_ROOT / "usr" / "sbin"

# Seconds. BIRD's defaults (5 s before the first connect, 120 s between attempts, 60-300 s
# before restarting after an error) would make every test wait minutes for a restarted peer.
CONNECT_DELAY = 1
CONNECT_RETRY = 1
ERROR_WAIT_MIN, ERROR_WAIT_MAX = 1, 2

_BGP_STATE = re.compile(r"^\s*BGP state:\s+(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class _BirdProcess:
    """One BIRD process: its binaries, its files, and the address families it serves."""

    daemon: Path
    client: Path
    label: str  # file stem: bird, bird6
    ipv6: bool | None  # the one family it serves; None for both (BIRD 2)

    def serves(self, ipv6: bool) -> bool:
        return self.ipv6 is None or self.ipv6 == ipv6

    def socket(self, rundir: Path) -> Path:
        return rundir / f"{self.label}.ctl"

    def config(self, workdir: Path) -> Path:
        return workdir / f"{self.label}.conf"


def protocol_name(neighbor: Neighbor) -> str:
    """The ``protocol bgp`` name BIRD uses for ``neighbor``: its address, made a symbol."""
    return "peer_" + re.sub(r"[^0-9a-zA-Z]", "_", neighbor.address)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _BirdBase(PeerDaemon):
    """What BIRD 2 and 1.6 share: process handling, birdc queries, reconfiguration."""

    @abc.abstractmethod
    def _bird_processes(self) -> list[_BirdProcess]:
        """The BIRD processes this peer runs."""

    @abc.abstractmethod
    def _render(self, process: _BirdProcess) -> str:
        """The config file of ``process``."""

    def _launch(self) -> None:
        for process in self._bird_processes():
            process.config(self.workdir).write_text(self._render(process))
            self._spawn(
                process.daemon, "-f",
                "-c", process.config(self.workdir),
                "-s", process.socket(self.rundir),
                "-P", self.rundir / f"{process.label}.pid",
                log=f"{process.label}.log",
            )  # fmt: skip

    def birdc(self, *command: str, ipv6: bool = False) -> str:
        """``birdc`` output for ``command``, from the process serving IPv6 or IPv4."""
        process = next(p for p in self._bird_processes() if p.serves(ipv6))
        return self._birdc(process, *command)

    def _birdc(self, process: _BirdProcess, *command: str) -> str:
        output = self._run(process.client, "-s", process.socket(self.rundir), *command)
        if "ready." not in output.partition("\n")[0]:
            raise PeerError(f"birdc {' '.join(command)}: {output.strip()}")
        return output

    def session_state(self, neighbor_address: str) -> State:
        neighbor = self.neighbor(neighbor_address)
        name = protocol_name(neighbor)
        output = self.birdc("show", "protocols", "all", name, ipv6=neighbor.ipv6)
        match = _BGP_STATE.search(output)
        if match is not None:
            return normalise_state(match.group(1))
        # No "BGP state" line while the protocol is down (e.g. disabled): not trying at all.
        if re.search(rf"^{name}\s", output, re.MULTILINE) is None:
            raise PeerError(f"no protocol {name} in birdc output: {output.strip()}")
        return State.IDLE

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        neighbor = self.neighbor(neighbor_address)
        name = protocol_name(neighbor)
        output = self.birdc("show", "route", "protocol", name, ipv6=neighbor.ipv6)
        # A route's first line starts with its prefix; its other lines, and further routes
        # for the same prefix, start with white space.
        prefixes = set()
        for line in output.splitlines()[1:]:
            first = line.split(maxsplit=1)[0] if line[:1].strip() else ""
            if "/" in first:
                prefixes.add(normalise_prefix(first))
        return frozenset(prefixes)

    def _apply_prefixes(self) -> None:
        for process in self._bird_processes():
            process.config(self.workdir).write_text(self._render(process))
            output = self._birdc(process, "configure")
            if "Reconfigur" not in output:
                raise PeerError(f"birdc configure: {output.strip()}")

    def _session_options(self, neighbor: Neighbor) -> list[str]:
        """The ``protocol bgp`` lines both BIRD versions read the same way."""
        port = f" port {neighbor.port}" if neighbor.port != 179 else ""
        lines = [
            f"local {self.local_address(neighbor)} as {self.local_as};",
            f"neighbor {neighbor.address}{port} as {neighbor.remote_as};",
            # BIRD makes iBGP multihop by default; every peer here shares the bridge.
            "direct;",
            f"hold time {self.hold_time};",
            f"keepalive time {self.keepalive_time};",
            f"connect delay time {CONNECT_DELAY};",
            f"connect retry time {CONNECT_RETRY};",
            f"error wait time {ERROR_WAIT_MIN}, {ERROR_WAIT_MAX};",
        ]
        if neighbor.passive:
            lines.append("passive on;")
        if neighbor.password is not None:
            lines.append(f"password {_quote(neighbor.password)};")
        return lines


class Bird2Peer(_BirdBase):
    """BIRD 2: one process for both families, one ``protocol bgp`` per neighbor."""

    kind = "bird2"

    def _bird_processes(self) -> list[_BirdProcess]:
        return [_BirdProcess(BIRD2, BIRDC2, label="bird", ipv6=None)]

    def _render(self, process: _BirdProcess) -> str:
        lines = ["log stderr all;", f"router id {self.router_id};", "protocol device {}"]
        for family, ipv6 in (("ipv4", False), ("ipv6", True)):
            routes = "".join(
                f" route {prefix} blackhole;" for prefix in self.prefixes if is_ipv6(prefix) == ipv6
            )
            lines.append(f"protocol static static_{family} {{ {family};{routes} }}")
        for neighbor in self.neighbors:
            family = "ipv6" if neighbor.ipv6 else "ipv4"
            lines.append(f"protocol bgp {protocol_name(neighbor)} {{")
            lines.extend(f"  {line}" for line in self._session_options(neighbor))
            lines.append(
                f"  {family} {{ import all; export where source = RTS_STATIC; next hop self; }};"
            )
            lines.append("}")
        return "\n".join(lines) + "\n"


class Bird16Peer(_BirdBase):
    """BIRD 1.6.8: ``bird`` for the IPv4 neighbors, ``bird6`` for the IPv6 ones."""

    kind = "bird16"

    def _bird_processes(self) -> list[_BirdProcess]:
        processes = []
        if any(not n.ipv6 for n in self.neighbors):
            processes.append(
                _BirdProcess(BIRD16_SBIN / "bird", BIRD16_SBIN / "birdc", label="bird", ipv6=False)
            )
        if any(n.ipv6 for n in self.neighbors):
            processes.append(
                _BirdProcess(
                    BIRD16_SBIN / "bird6", BIRD16_SBIN / "birdc6", label="bird6", ipv6=True
                )
            )
        return processes

    def _render(self, process: _BirdProcess) -> str:
        lines = ["log stderr all;", f"router id {self.router_id};", "protocol device {}"]
        routes = "".join(
            f" route {prefix} blackhole;"
            for prefix in self.prefixes
            if process.serves(is_ipv6(prefix))
        )
        lines.append(f"protocol static static_routes {{{routes} }}")
        for neighbor in self.neighbors:
            if not process.serves(neighbor.ipv6):
                continue
            lines.append(f"protocol bgp {protocol_name(neighbor)} {{")
            lines.extend(f"  {line}" for line in self._session_options(neighbor))
            # 1.6 has no channels: the route options sit in the protocol itself.
            lines.append("  gateway direct; next hop self;")
            lines.append("  import all; export where source = RTS_STATIC;")
            lines.append("}")
        return "\n".join(lines) + "\n"
