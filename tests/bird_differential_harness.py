"""Namespaces and processes of the BIRD 1.6 / Myna differential test, and what they observe.

Role: ``test_bird_differential.py`` runs one mapped corpus file (``bird_differential_plan``)
twice at once, under stock BIRD 1.6 and under Myna, and compares the two. Each run is a
``Side``: two network namespaces of the test bed's ``Topology`` (their bridge port removed)
joined by a veth pair, ``eth0`` on both ends, with fixed MAC addresses so that the IPv6
link-local addresses are the same on both sides:

* ``<side>_node`` holds the node's address on ``eth0`` (its link subnet), veth devices named
  as Calico's (``cali1a2b3c4d``, ``tunl0``, ``vxlan.calico``), the scenario's kernel routes
  (``plan.kernel_routes``, written with ``ip -batch`` before the daemon starts), and runs the
  daemon from the mapped files with BIRD's command line: ``bird -c FILE -s SOCKET -d`` (the
  test bed's BIRD 1.6, ``bird6`` for IPv6) or ``myna bird -c FILE -s SOCKET -d``, in the
  files' folder so that includes resolve as confd's do;
* ``<side>_peers`` holds every neighbour's address (on ``eth0`` when it shares the node's
  subnet, else on ``lo`` behind the gateway address on ``eth0``) and ExaBGP playing every
  neighbour: one process for the neighbours that connect to the node, one per neighbour the
  node connects to (ExaBGP tells listening neighbours apart by remote address and port only,
  and the remote address is always the node's). Each ``neighbor`` block has the protocol's
  ASes, port, passive side and TCP-MD5 password; with TTL security the namespace sends at
  TTL 255 (``ip_default_ttl``), SYN-ACKs included, as BIRD's listening socket does. ExaBGP
  sends the ``plan.peer_routes`` and hands every message it receives, parsed, to a helper
  that appends it to ``events<N>.jsonl`` and passes the lines written to the FIFO
  ``commands<N>`` back to ExaBGP as API commands (``Side.apply_changes``, the second phase).

``Side.observe`` reads what the daemon did: per protocol the routes ExaBGP holds from it
(prefix -> the multiset of attribute sets: ADD-PATH identifiers dropped, since they are each
daemon's own numbering) and whether End-of-RIB came, the node's kernel table (``ip -j -d
route show table all`` without the kernel's own routes: Felix's routes stay in, so a daemon
that removed or changed one is seen too), and ``show protocols all`` through BIRD 1.6's own
``birdc`` on the daemon's socket (``protocol_rows``: no times, timers nor counters).
``settle`` polls both sides until each has every ExaBGP session up and its observation has not
changed for ``STABLE_SECONDS`` (longer than BIRD's 2 s kernel scan), with a deadline;
``differences`` then lists where the second side's observation departs from the first's.

Everything is torn down by the topology (processes by PID, then the namespaces), whatever the
test's outcome; configs, logs and ExaBGP's event files stay in the pytest work dir.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bird_differential_plan import (
    NODE_INTERFACES,
    PeerRoute,
    PeerSpec,
    Scenario,
    kernel_routes,
)
from testbed.bird import BIRD16_SBIN
from testbed.exabgp_peer import ENVIRONMENT, EXABGP
from testbed.topology import Host, Topology

STABLE_SECONDS = 3.0
SETTLE_TIMEOUT = 30.0
POLL_INTERVAL = 0.5
MYNA = Path(sys.executable).with_name("myna")
NODE_MAC, PEERS_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02"

# Runs under ExaBGP as its API process: every JSON message ExaBGP writes to it into a file,
# every line written to the FIFO to ExaBGP as a command (opened read-write, the FIFO always
# has a writer, so it never reaches end of file between commands).
_OBSERVER = """\
import os
import sys
import threading


def forward(fifo_path):
    with os.fdopen(os.open(fifo_path, os.O_RDWR), "r") as fifo:
        for line in fifo:
            sys.stdout.write(line)
            sys.stdout.flush()


threading.Thread(target=forward, args=(sys.argv[2],), daemon=True).start()
with open(sys.argv[1], "a") as events:
    for line in sys.stdin:
        events.write(line)
        events.flush()
"""


# --- the daemons --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Daemon:
    """How to start one daemon under test from a BIRD file, with BIRD's command line."""

    name: str  # "bird" or "myna"

    def command(self, scenario: Scenario, socket: Path) -> list[str]:
        """The command line, run in the config files' folder."""
        if self.name == "bird":
            binary = BIRD16_SBIN / ("bird6" if scenario.ipv6 else "bird")
            return [str(binary), "-c", scenario.main, "-s", str(socket), "-d"]
        program = "bird6" if scenario.ipv6 else "bird"
        return [str(MYNA), program, "-c", scenario.main, "-s", str(socket), "-d"]


BIRD = Daemon("bird")
MYNA_DAEMON = Daemon("myna")


def birdc(socket: Path, *command: str) -> str:
    """BIRD 1.6's ``birdc`` against ``socket`` (either daemon's): its output."""
    result = subprocess.run(
        [str(BIRD16_SBIN / "birdc"), "-s", str(socket), *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout + result.stderr


# --- observations -------------------------------------------------------------------------------

Attributes = tuple[tuple[str, str], ...]  # sorted (name, value) pairs of one route


@dataclass(frozen=True)
class Observation:
    """What one daemon did, in comparable form."""

    # protocol -> prefix -> sorted attribute sets (one per path the neighbour holds)
    announced: Mapping[str, Mapping[str, tuple[Attributes, ...]]]
    end_of_rib: Mapping[str, bool]
    kernel: Mapping[str, tuple[Attributes, ...]]  # destination -> its routes' fields
    protocols: Mapping[str, Attributes]  # protocol name -> its row
    sessions_up: bool = False


def _text(value: object) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={_text(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def _attribute_text(name: str, value: object) -> str:
    """One attribute of ExaBGP's JSON in BGP's usual words: AS paths as "65000 {1 2}",
    communities as "65000:100"."""
    if name == "as-path" and isinstance(value, dict):
        parts = []
        for key in sorted(value, key=lambda k: int(k) if str(k).isdigit() else 0):
            segment = value[key]
            numbers = " ".join(str(n) for n in segment.get("value", []))
            kind = segment.get("element", "")
            parts.append(numbers if kind == "as-sequence" else f"{kind}({numbers})")
        return " ".join(parts)
    if name in ("community", "large-community", "extended-community") and isinstance(value, list):
        return " ".join(
            ":".join(str(x) for x in item) if isinstance(item, list) else str(item)
            for item in value
        )
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return _text(value)


def _route_attributes(attribute: Mapping[str, Any], next_hop: str) -> Attributes:
    """One route's attributes as ExaBGP parsed them, plus its next hop."""
    pairs = [("next-hop", next_hop)]
    pairs += [(name, _attribute_text(name, value)) for name, value in attribute.items()]
    return tuple(sorted(pairs))


def _nlri_prefix(item: object) -> str | None:
    nlri = item.get("nlri") if isinstance(item, dict) else item
    if isinstance(nlri, str) and "/" in nlri:
        return ipaddress.ip_network(nlri).with_prefixlen
    return None


def _path_id(item: object) -> str:
    if isinstance(item, dict):
        return str(item.get("path-information", ""))
    return ""


def adj_rib_in(
    events: Sequence[Mapping[str, Any]], local: str
) -> tuple[dict[str, tuple[Attributes, ...]], bool, bool]:
    """(prefix -> attribute sets, End-of-RIB seen, session up) of the neighbour whose own
    address is ``local``, replayed from ExaBGP's messages since its last session change."""
    paths: dict[tuple[str, str], Attributes] = {}
    end_of_rib = False
    up = False
    for event in events:
        neighbor = event.get("neighbor")
        if not isinstance(neighbor, dict):
            continue
        address = neighbor.get("address", {}).get("local")
        if not isinstance(address, str) or ipaddress.ip_address(address).compressed != local:
            continue
        if event.get("type") == "state":
            paths.clear()
            end_of_rib = False
            up = neighbor.get("state") == "up"
            continue
        if event.get("type") != "update":
            continue
        message = neighbor.get("message", {})
        if "eor" in message:
            end_of_rib = True
            continue
        update = message.get("update", {})
        for nlris in update.get("withdraw", {}).values():
            for item in nlris:
                prefix = _nlri_prefix(item)
                if prefix is not None:
                    paths.pop((prefix, _path_id(item)), None)
        attribute = update.get("attribute", {})
        for by_next_hop in update.get("announce", {}).values():
            for next_hop, nlris in by_next_hop.items():
                for item in nlris:
                    prefix = _nlri_prefix(item)
                    if prefix is not None:
                        paths[(prefix, _path_id(item))] = _route_attributes(attribute, next_hop)
    grouped: dict[str, list[Attributes]] = {}
    for (prefix, _), attributes in paths.items():
        grouped.setdefault(prefix, []).append(attributes)
    return {p: tuple(sorted(a)) for p, a in sorted(grouped.items())}, end_of_rib, up


def read_events(path: Path) -> list[dict[str, Any]]:
    """ExaBGP's JSON messages in ``path`` (a line still being written is skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def kernel_table(routes: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Attributes, ...]]:
    """``ip -j -d route show table all`` routes, the kernel's own (its local table, protocol
    kernel) left out: destination (with its table when not main) -> the routes' fields."""
    table: dict[str, list[Attributes]] = {}
    for route in routes:
        if route.get("table") == "local" or route.get("protocol") == "kernel":
            continue
        fields = {k: _text(v) for k, v in route.items() if k not in ("expires", "cache")}
        key = str(route.get("dst", "?"))
        if route.get("table", "main") != "main":
            key += f" table {route.get('table')}"
        table.setdefault(key, []).append(tuple(sorted(fields.items())))
    return {key: tuple(sorted(found)) for key, found in sorted(table.items())}


# What ``show protocols all`` says of a protocol that is compared: not the timers, nor the
# update counters (how many updates a route took depends on timing), nor the exported count.
DETAIL_FIELDS = (
    "Description",
    "Preference",
    "Input filter",
    "Output filter",
    "Routes",
    "BGP state",
    "Neighbor address",
    "Neighbor AS",
    "Neighbor ID",
    "Neighbor caps",
    "Session",
    "Source address",
    "Last error",  # none once Established (BIRD clears it then), else as the row's info
)
_ROW = re.compile(
    r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>\S+)\s+"
    r"(?P<since>\S+(?: \d\d:\d\d:\d\d)?)(?:\s+(?P<info>.*?))?\s*$"
)


def protocol_rows(output: str) -> dict[str, Attributes]:
    """``show protocols [all]`` -> name -> (proto, table, state, info and, from ``all``, the
    ``DETAIL_FIELDS`` lines); the "since" column, a time, is left out."""
    rows: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in output.splitlines():
        if not line.strip() or line.startswith(("BIRD ", "name ")) or line[:4].isdigit():
            continue
        if not line[:1].isspace():
            match = _ROW.match(line)
            if match is None:
                rows[line] = {"unparsed": line}
                current = None
                continue
            current = rows.setdefault(match.group("name"), {})
            current.update(
                proto=match.group("proto"),
                table=match.group("table"),
                state=match.group("state"),
                info=match.group("info") or "",
            )
            continue
        name, colon, value = line.strip().partition(":")
        if current is not None and colon and name in DETAIL_FIELDS:
            current[name] = " ".join(value.split())
            if name == "Routes":
                # BIRD 1.6's "exported" count is a counter that drifts with the order updates
                # came in (the BIRD-against-BIRD run sees 15 and 17 for the same routes): out
                current[name] = re.sub(r",? *\d+ exported,?", ",", current[name]).strip(", ")
    return {name: tuple(sorted(fields.items())) for name, fields in rows.items()}


# --- one side -----------------------------------------------------------------------------------


@dataclass
class Side:
    """One daemon's run of the scenario (see the module docstring)."""

    topology: Topology
    label: str
    scenario: Scenario
    daemon: Daemon
    routes: Mapping[str, list[PeerRoute]]
    node: Host = field(init=False)
    peers: Host = field(init=False)
    daemon_process: subprocess.Popen[bytes] | None = None
    exabgp_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        """Configs, logs and ExaBGP's events."""
        return self.topology.workdir / self.label

    @property
    def socket(self) -> Path:
        """The daemon's control socket (BIRD's ``-s``)."""
        return self.topology.rundir / f"{self.label}.ctl"

    # -- building ---------------------------------------------------------------------------

    def build(self) -> None:
        """The two namespaces, their link, addresses, devices and kernel routes."""
        scenario = self.scenario
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node = self.topology.add_host(f"{self.label}_node")
        self.peers = self.topology.add_host(f"{self.label}_peers")
        for host in (self.node, self.peers):
            host.ip("link", "del", "eth0")  # the bridge's: these two talk over their own link
            host.ip("link", "set", "lo", "up")
        self.node.ip(
            "link",
            "add",
            "eth0",
            "address",
            NODE_MAC,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            PEERS_MAC,
            "netns",
            self.peers.netns,
        )
        family = "-6" if scenario.ipv6 else "-4"
        length = scenario.link.prefixlen
        nodad = ["nodad"] if scenario.ipv6 else []
        self.node.ip(family, "addr", "add", f"{scenario.node}/{length}", "dev", "eth0", *nodad)
        self.peers.ip(family, "addr", "add", f"{scenario.gateway}/{length}", "dev", "eth0", *nodad)
        for peer in scenario.peers:
            if peer.on_link:
                self.peers.ip(
                    family, "addr", "add", f"{peer.address}/{length}", "dev", "eth0", *nodad
                )
            else:
                self.peers.ip(
                    family, "addr", "add", f"{peer.address}/{scenario.bits}", "dev", "lo", *nodad
                )
        if scenario.listen_address is not None and scenario.listen_address != scenario.node:
            self.node.ip(
                family,
                "addr",
                "add",
                f"{scenario.listen_address}/{scenario.bits}",
                "dev",
                "lo",
                *nodad,
            )
        for index, name in enumerate(NODE_INTERFACES):
            self.node.ip(
                "link",
                "add",
                name,
                "address",
                f"02:00:00:00:02:{index:02x}",
                "type",
                "veth",
                "peer",
                "name",
                f"peer{index}",
                "address",
                f"02:00:00:00:03:{index:02x}",
            )
            self.node.ip("link", "set", name, "up")
            self.node.ip("link", "set", f"peer{index}", "up")
        if any(peer.ttl_security for peer in scenario.peers):
            # GTSM: every packet of the peers at TTL 255, the SYN-ACK of a listening peer too
            # (BIRD's listening socket has TTL 255; ExaBGP's outgoing-ttl misses the SYN-ACK)
            for setting in (
                "net.ipv4.ip_default_ttl=255",
                "net.ipv6.conf.all.hop_limit=255",
                "net.ipv6.conf.eth0.hop_limit=255",
            ):
                self.peers.run("sysctl", "-qw", setting)
        for host in (self.node, self.peers):
            host.ip("link", "set", "eth0", "up")
        batch = "".join(f"route add {line}\n" for _, line in kernel_routes(scenario))
        self.node.run("ip", family, "-batch", "-", stdin=batch)

    def write_configs(self) -> Path:
        """The mapped files into the node's config folder; the folder."""
        folder = self.workdir / "config"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.scenario.files.items():
            (folder / name).write_text(text)
        return folder

    def exabgp_groups(self) -> list[list[PeerSpec]]:
        """The neighbours each ExaBGP process plays: those that connect to the node all in one,
        each one the node connects to in its own (ExaBGP tells listening neighbours apart by
        the remote address and port only, and here every remote address is the node's)."""
        connecting = [p for p in self.scenario.peers if p.node_passive]
        listening = [[p] for p in self.scenario.peers if not p.node_passive]
        return ([connecting] if connecting else []) + listening

    def exabgp_config(
        self, peers: Sequence[PeerSpec], observer: Path, events: Path, fifo: Path
    ) -> str:
        """One ExaBGP process's configuration: a ``neighbor`` block per protocol it plays."""
        scenario = self.scenario
        family = "ipv6" if scenario.ipv6 else "ipv4"
        lines = [
            "process observer {",
            f"    run {sys.executable} {observer} {events} {fifo};",
            "    encoder json;",
            "}",
        ]
        for peer in peers:
            lines += _neighbor_block(scenario, peer, family, self.routes[peer.address])
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """ExaBGP, then the daemon (each registered with the topology for teardown)."""
        observer = self.workdir / "observer.py"
        observer.write_text(_OBSERVER)
        for index, peers in enumerate(self.exabgp_groups()):
            events = self.workdir / f"events{index}.jsonl"
            events.write_text("")
            fifo = self.workdir / f"commands{index}"
            os.mkfifo(fifo)
            config = self.workdir / f"exabgp{index}.conf"
            config.write_text(self.exabgp_config(peers, observer, events, fifo))
            self.exabgp_processes.append(
                self.peers.popen(
                    str(EXABGP),
                    str(config),
                    log=self.workdir / f"exabgp{index}.log",
                    env=ENVIRONMENT,
                )
            )
        folder = self.write_configs()
        self.daemon_process = self.node.popen(
            *self.daemon.command(self.scenario, self.socket),
            log=self.workdir / f"{self.daemon.name}.log",
            cwd=folder,
        )

    def apply_changes(self, commands: Mapping[str, list[str]], kernel: list[str]) -> None:
        """The second phase: ExaBGP API commands per neighbour, then ``ip -batch`` lines."""
        for index, peers in enumerate(self.exabgp_groups()):
            lines = "".join(
                f"neighbor {self.scenario.node} local-ip {peer.address} {command}\n"
                for peer in peers
                for command in commands.get(peer.address, [])
            )
            if lines:
                fd = os.open(self.workdir / f"commands{index}", os.O_WRONLY | os.O_NONBLOCK)
                try:
                    os.write(fd, lines.encode())
                finally:
                    os.close(fd)
        if kernel:
            family = "-6" if self.scenario.ipv6 else "-4"
            self.node.run("ip", family, "-batch", "-", stdin="".join(f"{k}\n" for k in kernel))

    # -- observing --------------------------------------------------------------------------

    def failure(self) -> str | None:
        """Why this side cannot go on (a process that exited), or None."""
        processes = [("daemon", self.daemon_process)]
        processes += [("exabgp", process) for process in self.exabgp_processes]
        for name, process in processes:
            if process is not None and process.poll() is not None:
                return f"{self.label}: the {name} exited with status {process.returncode}"
        return None

    def observe(self) -> Observation:
        """What the daemon did until now (see the module docstring)."""
        events = [
            e for path in sorted(self.workdir.glob("events*.jsonl")) for e in read_events(path)
        ]
        announced: dict[str, dict[str, tuple[Attributes, ...]]] = {}
        end_of_rib: dict[str, bool] = {}
        up = True
        for peer in self.scenario.peers:
            routes, eor, session_up = adj_rib_in(events, peer.address)
            announced[peer.protocol] = routes
            end_of_rib[peer.protocol] = eor
            up = up and session_up
        family = "-6" if self.scenario.ipv6 else "-4"
        output = self.node.run(
            "ip", "-j", "-d", family, "route", "show", "table", "all", check=False
        ).stdout
        try:
            routes_json = json.loads(output or "[]")
        except json.JSONDecodeError:
            routes_json = [{"dst": "?", "unparsed": output}]
        protocols = protocol_rows(birdc(self.socket, "show", "protocols", "all"))
        return Observation(
            announced=announced,
            end_of_rib=end_of_rib,
            kernel=kernel_table(routes_json),
            protocols=protocols,
            sessions_up=up,
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the daemon's and ExaBGP's logs, for failure messages."""
        parts = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log}\n" + "\n".join(text))
        return "\n".join(parts)


def _neighbor_block(
    scenario: Scenario, peer: PeerSpec, family: str, routes: Sequence[PeerRoute]
) -> list[str]:
    lines = [
        f"neighbor {scenario.node} {{",
        f"    router-id {peer.router_id};",
        f"    local-address {peer.address};",
        f"    local-as {peer.peer_as};",
        f"    peer-as {peer.node_as};",
        "    hold-time 30;",
    ]
    if peer.node_passive:
        lines.append(f"    connect {scenario.listen_port};")
    else:
        lines += ["    passive true;", f"    listen {peer.port};"]
    if peer.password is not None:
        lines.append(f"    md5-password {json.dumps(peer.password)};")
    if peer.ttl_security:
        lines.append("    outgoing-ttl 255;")
    lines += [
        f"    family {{ {family} unicast; }}",
        "    capability { graceful-restart 120; add-path receive; route-refresh; }",
    ]
    if routes:
        lines.append("    static {")
        lines += [f"        {route.statement()}" for route in routes]
        lines.append("    }")
    lines += [
        "    api {",
        "        processes [ observer ];",
        "        neighbor-changes;",
        "        receive { parsed; update; }",
        "    }",
        "}",
    ]
    return lines


# --- waiting and comparing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """How one side ended a wait: its last observation (None if it could not be observed) and,
    if it did not settle, why (a process exited, or sessions down or changes at the deadline)."""

    observation: Observation | None
    problem: str | None = None


def settle(
    sides: Sequence[Side],
    timeout: float = SETTLE_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Settled]:
    """Each side once its sessions are up and its observation has not changed for
    ``STABLE_SECONDS``, polled together until every side settled or the deadline passed."""
    deadline = clock() + timeout
    last: dict[str, Observation] = {}
    since: dict[str, float] = {}
    done: dict[str, Settled] = {}
    while len(done) < len(sides):
        for side in sides:
            if side.label in done:
                continue
            failure = side.failure()
            if failure is not None:
                done[side.label] = Settled(last.get(side.label), f"{failure}\n{side.log_tail()}")
                continue
            observation = side.observe()
            now = clock()
            if observation != last.get(side.label) or not observation.sessions_up:
                last[side.label] = observation
                since[side.label] = now
            elif now - since[side.label] >= STABLE_SECONDS:
                done[side.label] = Settled(observation)
                continue
            if now >= deadline:
                state = "sessions up" if observation.sessions_up else "not every session up"
                done[side.label] = Settled(
                    observation,
                    f"{side.label} ({side.daemon.name}) not settled after {timeout:g} s, "
                    f"{state}\n{side.log_tail()}",
                )
        if len(done) < len(sides):
            time.sleep(POLL_INTERVAL)
    return done


@dataclass(frozen=True)
class Difference:
    """Where Myna's observation departs from BIRD's."""

    what: str  # "announced to Mesh_10_192_0_3", "kernel", "show protocols"
    key: str  # prefix or protocol
    bird: object
    myna: object

    def __str__(self) -> str:
        return (
            f"{self.what} {self.key}:\n    bird: {_show(self.bird)}\n    myna: {_show(self.myna)}"
        )


def _show(value: object) -> str:
    """A compared value in one line: attribute sets as ``name=value`` words."""
    if isinstance(value, dict):
        return " ".join(f"{k}={v!r}" for k, v in value.items())
    if isinstance(value, tuple) and all(
        isinstance(item, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in item)
        for item in value
    ):
        return " | ".join(" ".join(f"{k}={v}" for k, v in item) for item in value) or "()"
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return " ".join(f"{k}={v}" for k, v in value)
    return str(value)


def _explain(bird: object, myna: object) -> tuple[object, object]:
    """For two single attribute sets, only the fields that differ."""
    if (
        isinstance(bird, tuple)
        and isinstance(myna, tuple)
        and all(isinstance(x, tuple) and len(x) == 2 for x in (*bird, *myna))
    ):
        b, m = dict(bird), dict(myna)
        keys = sorted(k for k in set(b) | set(m) if b.get(k) != m.get(k))
        return ({k: b.get(k, "<absent>") for k in keys}, {k: m.get(k, "<absent>") for k in keys})
    if isinstance(bird, tuple) and isinstance(myna, tuple) and len(bird) == len(myna) == 1:
        return _explain(bird[0], myna[0])
    return bird, myna


def _compare(what: str, bird: Mapping[str, object], myna: Mapping[str, object]) -> list[Difference]:
    found = []
    for key in sorted(set(bird) | set(myna)):
        b, m = bird.get(key, "<absent>"), myna.get(key, "<absent>")
        if b != m:
            shown_b, shown_m = _explain(b, m)
            found.append(Difference(what, key, shown_b, shown_m))
    return found


def differences(bird: Observation, myna: Observation) -> list[Difference]:
    """Every difference, announcements first, then the kernel, then ``show protocols``."""
    found: list[Difference] = []
    for protocol in sorted(set(bird.announced) | set(myna.announced)):
        found += _compare(
            f"announced to {protocol}",
            bird.announced.get(protocol, {}),
            myna.announced.get(protocol, {}),
        )
    found += _compare("End-of-RIB", bird.end_of_rib, myna.end_of_rib)
    found += _compare("kernel", bird.kernel, myna.kernel)
    found += _compare("show protocols", bird.protocols, myna.protocols)
    return found


def summary(observation: Observation) -> str:
    """Counts, for the test's report: routes per peer, kernel routes, protocols."""
    per_peer = Counter({p: len(r) for p, r in observation.announced.items()})
    return (
        f"announced {dict(per_peer)}, kernel {len(observation.kernel)} routes, "
        f"{len(observation.protocols)} protocols"
    )
