"""BIRD's control socket: Myna's answers against BIRD 1.6's, on one host, one after the other.

Data flow: host a runs the same BIRD file first with BIRD 1.6.8 (``bird -R -s SOCK -d -c
FILE``, as calico-node runs it) and then with Myna (``myna bird`` with the same arguments).
The file is a Calico node's: its blocks as static blackholes, the direct protocol on every
interface but ``cali*``, the kernel protocol learning (Felix's proto-80 route of a workload
is in a's kernel) and programming through ``calico_kernel_programming``, mesh and global
peers behind ``gateway recursive`` with Calico's export filters. Its peers stay up
throughout: b, an iBGP BIRD 1.6 mesh peer announcing two blocks, and c, an eBGP BIRD 1.6 peer
announcing a route with a MED and two communities and one with 62 communities, extended and
large ones; a third protocol (``Node_198_18_0_9``) waits for a passive peer that never
comes. Once each program has its
sessions up, its routes, and graceful-restart recovery over (``graceful restart wait 5``),
the test records BIRD's replies to the commands Calico and operators send, then Myna's, and
compares them line by line after replacing what differs by nature: clock times, the version
string, the hold/keepalive timers' seconds left, the route change statistics (which Myna does
not keep: it prints ``---``), memory sizes. Networks are compared as a set of blocks (BIRD
lists them in hash order). The expected values are BIRD's, never Myna's.

It then reads both with BIRD's own clients (1.6's ``birdc``, BIRD 2's ``birdcl``) and with
Calico's parsers (``calico_bird_clients``: calicoctl node status, the readiness and liveness
probes, the CalicoNodeStatus populators) and checks that each reads the same from Myna as
from BIRD 1.6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from calico_bird_clients import (
    bird_live,
    bird_ready,
    gr_in_progress,
    peer_details,
    scan_peers,
    scan_routes,
    status_fields,
)
from testbed.bird import BIRD2, BIRD16_SBIN, Bird16Peer, _BirdProcess
from testbed.bird_file_daemon import BirdFileDaemon
from testbed.peers import Neighbor
from testbed.topology import Topology, wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

BIRDCL2 = BIRD2.with_name("birdcl")
BIRDC16 = BIRD16_SBIN / "birdc"

CONFIG = """\
router id 198.18.0.1;
graceful restart wait 5;
protocol device { scan time 2; }
protocol bfd { }
protocol direct { interface -"cali*", -"kube-ipvs*", "*"; }
protocol static {
  route 198.19.1.0/26 blackhole;
  route 198.19.1.64/26 blackhole;
}
function calico_aggr() {
  if ( net = 198.19.1.0/26 ) then { accept; }
  if ( net ~ 198.19.1.0/26 ) then { reject; }
}
function calico_export_to_bgp_peers(bool internal_peer) {
  calico_aggr();
  if ( net ~ 198.19.0.0/16 ) then { accept; }
}
filter calico_kernel_programming {
  if ( net ~ 198.19.0.0/16 ) then { accept; }
  accept;
}
protocol kernel {
  learn; persist; scan time 2; import all;
  export filter calico_kernel_programming;
  graceful restart; merge paths on;
}
template bgp bgp_template {
  description "Connection to BGP peer";
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
  hold time 9;
  connect delay time 1;
  connect retry time 1;
  error wait time 1,2;
}
protocol bgp Mesh_198_18_0_2 from bgp_template {
  neighbor 198.18.0.2 as 64512;
  source address 198.18.0.1;
  import all;
  export filter { calico_export_to_bgp_peers(true); reject; };
}
protocol bgp Global_198_18_0_3 from bgp_template {
  neighbor 198.18.0.3 as 64513;
  source address 198.18.0.1;
  import filter { if net ~ 198.19.0.0/16 then accept; reject; };
  export filter { calico_export_to_bgp_peers(false); reject; };
}
protocol bgp Node_198_18_0_9 from bgp_template {
  neighbor 198.18.0.9 as 64512;
  passive on;
  import all;
}
"""
FELIX_ROUTE = "198.19.1.5/32"  # a workload's route inside a's block, proto 80 as Felix writes
PROTOCOLS = {
    "198.18.0.2": "Mesh_198_18_0_2",
    "198.18.0.3": "Global_198_18_0_3",
    "198.18.0.9": "Node_198_18_0_9",
}
B_BLOCKS = ["198.19.2.0/26", "198.19.3.0/24"]
C_ROUTE = "198.19.4.0/24"
MANY_COMMUNITIES = "198.19.5.0/24"
COMMANDS = [
    "show status",
    "show protocols",
    "show protocols all",
    "show protocols all Mesh_198_18_0_2",
    "show protocols all Global_198_18_0_3",
    "show protocols all Node_198_18_0_9",
    "show protocols Mesh_198_18_0_2",
    'show protocols "Mesh*"',
    'show protocols "Nothing*"',
    "show protocols all nosuch",
    "show route",
    "show route all",
    "show route primary",
    "show route for 198.19.2.5",
    "show route for 198.19.4.0/24 all",
    "show route 198.19.5.0/24 all",
    "show route 198.19.3.0/24",
    "show route 198.19.9.0/24",
    "show route for 198.20.0.1",
    "show route 198.19.2.1/26",
    "show route protocol Mesh_198_18_0_2",
    "show route protocol Global_198_18_0_3 all",
    "show route protocol nosuch",
    "show route protocol static1 all",
    "show route protocol kernel1 all",
    "show route protocol direct1",
    "show protocols all kernel1",
    "show protocols all static1",
    "show protocols all direct1",
    "show route count",
    "show route stats",
    "show route protocol Mesh_198_18_0_2 count",
    "show route table master",
    "show interfaces",
    "show interfaces summary",
    "show static",
    "show memory",
    "show bfd sessions",
    "show protocols all bfd1",
    "show nothing",
    "hello",
    "configure check",
]


class CommunityPeer(Bird16Peer):
    """BIRD 1.6 exporting its routes with a MED and two communities (eBGP); the route
    ``MANY_COMMUNITIES`` also gets 60 more, extended and large ones (BIRD wraps the line)."""

    def _render(self, process: _BirdProcess) -> str:
        many = "".join(f" bgp_community.add((64513, {1000 + n}));" for n in range(60))
        export = (
            "export filter { if source != RTS_STATIC then reject; bgp_med = 7;"
            " bgp_community.add((64513, 10)); bgp_community.add((64513, 20));"
            f" if net = {MANY_COMMUNITIES} then {{{many}"
            " bgp_ext_community.add((rt, 64513, 7)); bgp_ext_community.add((ro, 64513, 8));"
            " bgp_large_community.add((64513, 1, 2)); bgp_large_community.add((64513, 3, 4));"
            " } accept; };"
        )
        return super()._render(process).replace("export where source = RTS_STATIC;", export)


_TIME = re.compile(r"\b\d\d:\d\d:\d\d\b")
_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b")
_VERSION = re.compile(r"BIRD (1\.6\.8|v0\.3\.3\+birdv1\.6\.8\+myna)")
_TIMER = re.compile(r"^(\s*(?:Hold|Keepalive) timer:\s+)\d+/")
_STATS = re.compile(r"^(\s*(?:Import|Export) (?:updates|withdraws):).*$")
_SIZE = re.compile(r"^(\s*[A-Za-z ]+:)\s+\d+\s+[ kMG]B$")


def normalise(line: str) -> str:
    """What may differ between two correct answers, replaced (see the module docstring)."""
    line = _VERSION.sub("BIRD <version>", line)
    line = _TIME.sub("<time>", _DATE.sub("<date>", line))
    line = _TIMER.sub(r"\1<n>/", line)
    line = _STATS.sub(r"\1 <counts>", line)
    return _SIZE.sub(r"\1 <size>", line)


def blocks(lines: list[str]) -> tuple[str, list[tuple[str, ...]], str]:
    """``show route`` output: (greeting, sorted blocks, final line).

    A block is a network's lines (its first route line without the code or space that
    frames it, which depends on what came before, then the lines that follow); sorted,
    since BIRD walks its networks in hash order and Myna in address order.
    """
    greeting, *body, final = lines
    out: list[list[str]] = []
    for line in body:
        text = line[5:] if line[:4].isdigit() else line[1:]
        words = text.split()
        if text[:1].strip() and words and "/" in words[0]:
            out.append([text])
        elif out:
            out[-1].append(line)
        else:
            out.append([line])
    return greeting, sorted(tuple(block) for block in out), final


@dataclass
class Recorded:
    """What one program answered."""

    early_status: list[str]
    replies: dict[str, list[str]] = field(default_factory=dict)
    birdc: dict[str, str] = field(default_factory=dict)
    birdcl: dict[str, str] = field(default_factory=dict)


def run_and_record(daemon: BirdFileDaemon) -> Recorded:
    daemon.start()
    early = wait_for(
        lambda: daemon._checked(lambda: daemon.converse("show status")),
        20,
        f"{daemon}'s socket",
        until=bool,
    )
    for address in ("198.18.0.2", "198.18.0.3"):
        daemon.wait_established(address)
    daemon.wait_prefixes("198.18.0.2", B_BLOCKS, exact=True)
    daemon.wait_prefixes("198.18.0.3", [C_ROUTE, MANY_COMMUNITIES], exact=True)
    wait_for(
        lambda: daemon.text("show status"),
        30,
        f"{daemon}'s graceful-restart recovery to end",
        until=lambda text: "0024" not in text,
    )
    wait_for(
        lambda: daemon.text("show protocols all kernel1"),
        30,
        f"{daemon}'s kernel protocol to have written the four BGP routes and two blocks",
        until=lambda text: "6 exported" in text,
    )
    recorded = Recorded(early)
    for command in COMMANDS:
        recorded.replies[command] = daemon.converse(command)
    for command in ("show protocols", "show status", "show route all"):
        recorded.birdc[command] = daemon.client(BIRDC16, *command.split())
        recorded.birdcl[command] = daemon.client(BIRDCL2, *command.split())
    daemon.stop()
    return recorded


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recorded]:
    from testbed.requirements import require_interop  # noqa: PLC0415 - a plugin's module

    require_interop()
    with Topology(tmp_path_factory.mktemp("bird-socket")) as topology:
        a, b, c = (topology.add_host(name) for name in ("a", "b", "c"))
        a.ip("route", "add", "blackhole", FELIX_ROUTE, "proto", "80")
        Bird16Peer(b, b.ipv4, 64512, [Neighbor(a.ipv4, 64512)], B_BLOCKS).start()
        CommunityPeer(
            c, c.ipv4, 64513, [Neighbor(a.ipv4, 64512)], [C_ROUTE, MANY_COMMUNITIES]
        ).start()
        out = {}
        for program in ("bird16", "myna"):
            out[program] = run_and_record(BirdFileDaemon(a, CONFIG, PROTOCOLS, program=program))
        return out


@pytest.mark.parametrize("command", COMMANDS)
def test_myna_answers_as_bird_16_does(recorded: dict[str, Recorded], command: str) -> None:
    bird = [normalise(line) for line in recorded["bird16"].replies[command]]
    myna = [normalise(line) for line in recorded["myna"].replies[command]]
    if command == "show memory":
        # BIRD splits its memory by pool; Myna has one figure, the process's: the shape only.
        assert myna[:2] == bird[:2] and myna[-2:] == bird[-2:], "\n".join(myna)
        return
    if command.startswith("show route") and "count" not in command:
        assert blocks(myna) == blocks(bird), "\n".join(myna)
        return
    assert myna == bird, "\n".join(myna)


def test_graceful_restart_recovery_reads_as_bird_16s(recorded: dict[str, Recorded]) -> None:
    """Right after the start (-R), both say 0024 with BIRD's two lines; the readiness probe
    reads graceful restart in progress from both, and none after."""
    for program in ("bird16", "myna"):
        lines = recorded[program].early_status
        assert gr_in_progress(lines), lines
        shape = [
            re.sub(r"\b\d+\b", "N", line) for line in lines if line.startswith(("0024", "   "))
        ]
        assert shape == [
            "N-Graceful restart recovery in progress",
            "   Waiting for N protocols to recover",
            "   Wait timer is N/N",
        ], lines
        assert not gr_in_progress(recorded[program].replies["show status"])


def test_bird_clients_print_the_same_for_both(recorded: dict[str, Recorded]) -> None:
    for client in ("birdc", "birdcl"):
        for command, bird_text in getattr(recorded["bird16"], client).items():
            myna_text = getattr(recorded["myna"], client)[command]
            bird = [normalise(line) for line in bird_text.splitlines()]
            myna = [normalise(line) for line in myna_text.splitlines()]
            if command == "show route all":
                bird, myna = sorted(bird), sorted(myna)
            assert myna == bird, f"{client} {command}:\n{myna_text}"


def test_calicos_parsers_read_the_same_from_both(recorded: dict[str, Recorded]) -> None:
    bird, myna = recorded["bird16"], recorded["myna"]
    # calicoctl node status and the readiness probe's GetPeers (expected: BIRD's reading)
    peers = scan_peers(bird.replies["show protocols"])
    assert [(p.peer_ip, p.peer_type, p.state, p.bgp_state) for p in peers] == [
        ("198.18.0.2", "node-to-node mesh", "up", "Established"),
        ("198.18.0.3", "global", "up", "Established"),
        ("198.18.0.9", "node specific", "start", "Passive"),
    ]
    mine = scan_peers(myna.replies["show protocols"])
    assert [(p.peer_ip, p.peer_type, p.state, p.bgp_state, p.info) for p in mine] == [
        (p.peer_ip, p.peer_type, p.state, p.bgp_state, p.info) for p in peers
    ]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", p.since) for p in mine)
    # -bird-ready: within the threshold every peer must be up; afterwards one suffices
    for program in (bird, myna):
        found = scan_peers(program.replies["show protocols"])
        gr = gr_in_progress(program.replies["show status"])
        assert bird_ready(found, gr, within_threshold=True) == (
            "BGP not established with 198.18.0.9"
        )
        assert bird_ready(found, gr, within_threshold=False) is None
    # -bird-live: birdcl show status starts with BIRD
    assert bird_live(bird.birdcl["show status"]) and bird_live(myna.birdcl["show status"])
    # CalicoNodeStatus: status, peers' details, routes
    expected_status = status_fields(bird.replies["show status"])
    status = status_fields(myna.replies["show status"])
    assert status["ready"] and expected_status["ready"]
    assert status["router_id"] == expected_status["router_id"] == "198.18.0.1"
    # Calico's BIRD says "BIRD v0.3.3+birdv1.6.8" (stock 1.6.8 says "BIRD 1.6.8", no "v"):
    # the populator keeps the version only from a line starting "BIRD v".
    assert str(status["version"]).startswith("v0.3.3+birdv1.6.8")
    for name in PROTOCOLS.values():
        command = f"show protocols all {name}"
        assert peer_details(myna.replies[command]) == peer_details(bird.replies[command])
    assert peer_details(myna.replies["show protocols all Mesh_198_18_0_2"]) == (
        "Established",
        "198.18.0.2",
    )
    routes = scan_routes(bird.replies["show route"])
    assert sorted(scan_routes(myna.replies["show route"]), key=repr) == sorted(routes, key=repr)
    assert {(r.destination, r.gateway, r.interface, r.source_type, r.peer_ip) for r in routes} == {
        ("198.19.2.0/26", "198.18.0.2", "eth0", "NodeMesh", "198.18.0.2"),
        ("198.19.3.0/24", "198.18.0.2", "eth0", "NodeMesh", "198.18.0.2"),
        ("198.19.4.0/24", "198.18.0.3", "eth0", "BGPPeer", "198.18.0.3"),
        ("198.19.5.0/24", "198.18.0.3", "eth0", "BGPPeer", "198.18.0.3"),
        ("198.19.1.0/26", "N/A", "blackhole", "Static", ""),
        ("198.19.1.64/26", "N/A", "blackhole", "Static", ""),
        ("198.18.0.0/24", "N/A", "eth0", "Direct", ""),
        ("198.19.1.5/32", "N/A", "blackhole", "Kernel", ""),
    }


CONFIG6 = """\
router id 198.18.0.1;
graceful restart wait 5;
protocol device { scan time 2; }
protocol direct { interface "cali*"; }
protocol kernel {
  learn; persist; scan time 2; import all; export all;
  graceful restart; merge paths on;
}
template bgp bgp_template {
  description "Connection to BGP peer";
  local as 64512;
  gateway direct;
  direct;
  add paths on;
  graceful restart;
  hold time 9;
  connect delay time 1;
  connect retry time 1;
  error wait time 1,2;
}
protocol bgp Mesh_2001_db8__2 from bgp_template {
  neighbor 2001:db8::2 as 64512;
  source address 2001:db8::1;
  import all;
  export all;
}
"""
COMMANDS6 = [
    "show status",
    "show protocols",
    "show protocols all",
    "show route",
    "show route all",  # BGP.next_hop: the global address and the link-local one
    "show route for 2001:db8:1::5",
    "show route count",
    "show interfaces",  # the link-local address too, "Unselected, scope link"
    "show interfaces summary",
    "show route 198.19.0.0/16",  # an IPv4 prefix: bird6's grammar has none
]


def test_bird6_answers_as_bird6_does(topology: Topology) -> None:
    """calico-node runs bird6 beside bird for the IPv6 peers: the same comparison, IPv6."""
    a, b = topology.add_host("a"), topology.add_host("b")
    blocks6 = ["2001:db8:1::/64", "2001:db8:2::/64"]
    Bird16Peer(b, b.ipv4, 64512, [Neighbor(a.ipv6, 64512)], blocks6).start()
    replies: dict[str, dict[str, list[str]]] = {}
    for program in ("bird16", "myna"):
        daemon = BirdFileDaemon(
            a, CONFIG6, {b.ipv6: "Mesh_2001_db8__2"}, program=program, ipv6=True
        ).start()
        wait_for(lambda d=daemon: d._checked(lambda: d.converse("show status")), 20, "socket")
        daemon.wait_established(b.ipv6)
        daemon.wait_prefixes(b.ipv6, blocks6, exact=True)
        wait_for(lambda d=daemon: "0024" not in d.text("show status"), 30, "recovery to end")
        replies[program] = {command: daemon.converse(command) for command in COMMANDS6}
        daemon.stop()
    for command in COMMANDS6:
        bird = [normalise(line) for line in replies["bird16"][command]]
        myna = [normalise(line) for line in replies["myna"][command]]
        if command.startswith("show route") and "count" not in command and len(bird) > 2:
            assert blocks(myna) == blocks(bird), "\n".join(myna)
        else:
            assert myna == bird, "\n".join(myna)
