"""BIRD's reconfiguration rule, run by Myna from a BIRD file with BIRD 1.6 peers in namespaces.

Data flow: host a runs ``myna bird -R -s SOCK -d -c bird.cfg`` (a Calico-like file: the
kernel protocol programming and learning, two mesh protocols with Calico's inline filters
calling a function from an included file); b and c are BIRD 1.6 mesh peers, each announcing
a block. Felix's blackhole for a's own block (proto 80) is in a's kernel: Myna learns it and
announces it to b and c, so each peer has something Myna would send again if it re-fed it.
``ip monitor route`` watches a's routing table meanwhile.

The test reloads as confd does (rewrite the file, SIGHUP) and asks over the socket as an
operator does (``configure``), and checks BIRD 1.6's rule (``nest/proto.c``
``protos_commit``/``proto_reconfigure``): an unchanged protocol keeps running -- its session
stays Established since the same moment (BIRD's view from the peer's side: its protocol's
``since``), the peer receives no UPDATE again (its ``Import updates: received`` counter does
not move) and the kernel route through it is not rewritten; a protocol whose options changed
restarts; a file that does not read changes nothing, the socket says ``8002
FILE:LINE:COL message`` (the message BIRD 1.6's own parser gives for that file); a change
Myna cannot apply running (the kernel protocol's options) is refused by name, nothing
changed. A changed filter keeps its protocol running, as BIRD 1.6 keeps it: a block claimed
(``calico_aggr()`` rewritten) re-feeds the peers' exports, a new kernel export filter re-feeds
the kernel, and no session restarts.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from testbed.bgp_bfd import RouteWatch
from testbed.bird import BIRD16_SBIN, Bird16Peer, protocol_name
from testbed.bird_file_daemon import BirdFileDaemon
from testbed.peers import Neighbor, State
from testbed.topology import Host, Topology, wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

A_BLOCK, B_BLOCK, C_BLOCK = "198.19.1.0/26", "198.19.2.0/26", "198.19.3.0/26"
A2_BLOCK, A2_HOST = "198.19.1.64/26", "198.19.1.70/32"  # a block a claims later, a host in it
AGGR = """\
function calico_aggr() {
  if ( net = 198.19.1.0/26 ) then { accept; }
  if ( net ~ 198.19.1.0/26 ) then { reject; }
}
"""
AGGR_CLAIMED = """\
function calico_aggr() {
  if ( net = 198.19.1.0/26 ) then { accept; }
  if ( net ~ 198.19.1.0/26 ) then { reject; }
  if ( net = 198.19.1.64/26 ) then { accept; }
  if ( net ~ 198.19.1.64/26 ) then { reject; }
}
"""
CONFIG = """\
include "bird_aggr.cfg";
router id 198.18.0.1;
graceful restart wait 5;
protocol device { scan time 2; }
filter calico_kernel_programming {
  if ( net ~ 198.19.0.0/16 ) then { accept; }
  accept;
}
protocol kernel {
  learn; persist; scan time 2; import all;
  export filter calico_kernel_programming;
  graceful restart; merge paths on;
}
function calico_export_to_bgp_peers() {
  calico_aggr();
  if ( net ~ 198.19.0.0/16 ) then { accept; }
}
template bgp bgp_template {
  description "Connection to BGP peer";
  local as 64512;
  direct;
  gateway direct;
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
  export filter { calico_export_to_bgp_peers(); reject; };
}
protocol bgp Mesh_198_18_0_3 from bgp_template {
  neighbor 198.18.0.3 as 64512;
  source address 198.18.0.1;
  import all;
  export filter { calico_export_to_bgp_peers(); reject; };
}
"""
PROTOCOLS = {"198.18.0.2": "Mesh_198_18_0_2", "198.18.0.3": "Mesh_198_18_0_3"}
T = TypeVar("T")
_RECEIVED = re.compile(r"^\s*Import updates:\s+(\d+)", re.MULTILINE)


def peer_view(peer: Bird16Peer, a_address: str) -> tuple[int, int]:
    """(UPDATEs received from a, a's session ends it saw) as BIRD 1.6 tells them.

    BIRD's own ``since`` is no witness: it prints a time rebuilt from its monotonic clock,
    which moves by a second from one command to the next. A session that ended shows in its
    log (a NOTIFICATION received or an error), and a restarted protocol starts its counters
    again, so a re-sent table shows as more UPDATEs only without a restart: both are read.
    """
    name = protocol_name(peer.neighbor(a_address))
    output = peer.birdc("show", "protocols", "all", name)
    match = _RECEIVED.search(output)
    assert match is not None, output
    log = peer.log_tail(10_000)
    ends = sum(
        1
        for line in log.splitlines()
        if f"{name}: " in line and ("Received: " in line or "Error: " in line)
    )
    return int(match.group(1)), ends


def myna_since(myna: BirdFileDaemon) -> list[str]:
    """Myna's protocol rows (its sessions' since times: a wall clock, stable)."""
    return [line for line in myna.converse("show protocols") if "BGP" in line]


def settled(probe: Callable[[], T], quiet: float = 2.0, timeout: float = 30.0) -> T:
    """``probe()`` once it has given the same answer for ``quiet`` seconds (the peers' own
    graceful-restart bookkeeping after a's start moves their protocols' times a little)."""
    last: list[tuple[float, T]] = []

    def steady() -> bool:
        value = probe()
        if not last or last[0][1] != value:
            last[:] = [(time.monotonic(), value)]
        return time.monotonic() - last[0][0] >= quiet

    wait_for(steady, timeout, "the peers' view of a to settle", interval=0.25)
    return last[0][1]


def kernel_holds(host: Host, prefix: str) -> bool:
    """Whether ``host``'s kernel has Myna's route (proto bird) for ``prefix``."""
    return f"{prefix} via" in host.ip("route", "show", "proto", "bird")


def test_reload_keeps_unchanged_protocols_and_restarts_changed_ones(topology: Topology) -> None:
    a, b, c = (topology.add_host(name) for name in ("a", "b", "c"))
    a.ip("route", "add", "blackhole", A_BLOCK, "proto", "80")  # Felix's block route
    peers = {
        host.ipv4: Bird16Peer(host, host.ipv4, 64512, [Neighbor(a.ipv4, 64512)], [block])
        for host, block in ((b, B_BLOCK), (c, C_BLOCK))
    }
    for peer in peers.values():
        peer.start()
    myna = BirdFileDaemon(a, CONFIG, PROTOCOLS, program="myna")
    (myna.workdir / "bird_aggr.cfg").parent.mkdir(parents=True, exist_ok=True)
    (myna.workdir / "bird_aggr.cfg").write_text(AGGR)
    myna.start()
    for address, peer in peers.items():
        myna.wait_established(address)
        peer.wait_prefixes(a.ipv4, [A_BLOCK])
    for prefix in (B_BLOCK, C_BLOCK):
        wait_for(lambda p=prefix: kernel_holds(a, p), 30, f"{prefix} in a's kernel")
    # Every peer has had its UPDATEs; from now on a changes nothing unless told to.
    wait_for(lambda: "0024" not in myna.text("show status"), 30, "recovery to end")
    watch = RouteWatch(a, topology.workdir / "route-watch.log")
    before = settled(lambda: {address: peer_view(peer, a.ipv4) for address, peer in peers.items()})
    rows = myna_since(myna)

    # 1. The same file again (confd rewrites it unchanged, then sv hup bird).
    myna.reload(CONFIG)
    reply = myna.converse("configure")
    assert reply[1:] == [
        f"0002-Reading configuration from {myna.config_path}",
        "0003 Reconfigured",
    ]
    settle = time.monotonic() + 3  # a re-feed or a reset would show within a keepalive
    wait_for(lambda: time.monotonic() > settle, 5, "3 s of a running unchanged daemon")
    after = {address: peer_view(peer, a.ipv4) for address, peer in peers.items()}
    assert after == before  # no session restarted, no UPDATE sent again
    assert myna_since(myna) == rows
    assert watch.events(B_BLOCK) == [] and watch.events(C_BLOCK) == []

    # 2. Only c's protocol changes (its hold time; the session then negotiates the lower of
    # the two, b's 9, so only the restart shows): c restarts, b does not notice.
    changed = CONFIG.replace(
        "  neighbor 198.18.0.3 as 64512;\n", "  neighbor 198.18.0.3 as 64512;\n  hold time 12;\n"
    )
    myna.reload(changed)
    # Myna resets it with Cease 6/6, which BIRD 1.6 logs as it received it.
    wait_for(
        lambda: "Received: Other configuration change" in peers[c.ipv4].log_tail(10_000),
        30,
        "c to be told of the configuration change",
    )
    peers[c.ipv4].wait_established(a.ipv4)
    myna.wait_prefixes(c.ipv4, [C_BLOCK])
    wait_for(lambda: kernel_holds(a, C_BLOCK), 30, "c's block back in a's kernel")
    assert peer_view(peers[b.ipv4], a.ipv4) == before[b.ipv4]
    assert watch.events(B_BLOCK) == []
    assert [kind for _, kind in watch.events(C_BLOCK)][-1:] == ["add"]  # BIRD flushes it too

    # 3. A file that does not read: nothing changes; configure says where, as BIRD does.
    broken = changed.replace("hold time 12;", "hold time twelve;")
    myna.reload(broken)
    bird_p = subprocess.run(
        [str(BIRD16_SBIN / "bird"), "-p", "-c", str(myna.config_path)],
        cwd=myna.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bird_p.returncode == 1
    message = bird_p.stderr.strip().removeprefix("bird: ")
    check = myna.converse("configure check")
    assert check[1:] == [
        f"0002-Reading configuration from {myna.config_path}",
        f"8002 {message}",
    ], (check, message)
    assert myna.converse("configure")[-1] == check[-1]
    assert myna.session_state(b.ipv4) == State.ESTABLISHED
    assert peer_view(peers[b.ipv4], a.ipv4) == before[b.ipv4]
    assert "bird.cfg" in myna.log_tail() and "not valid, nothing changed" in myna.log_tail()

    # 4. The node claims a block, as confd renders it: Felix's blackhole for it, and
    # calico_aggr() rewritten, which both peers' export filters call. BIRD 1.6 keeps both
    # protocols and re-feeds them through the new filter (proto_reconfigure ->
    # proto_request_feeding): the host route inside the new block, which went out under the
    # old filter (the pool rule), is withdrawn; the block goes out; no session restarts.
    for prefix in (A2_BLOCK, A2_HOST):
        a.ip("route", "add", "blackhole", prefix, "proto", "80")
    for peer in peers.values():
        wait_for(
            lambda p=peer: p.received_prefixes(a.ipv4) == {A_BLOCK, A2_BLOCK, A2_HOST},
            30,
            "the new block and host route at the peers under the old filter",
        )
    ends = {address: peer_view(peer, a.ipv4)[1] for address, peer in peers.items()}
    rows = myna_since(myna)
    (myna.workdir / "bird_aggr.cfg").write_text(AGGR_CLAIMED)
    myna.reload(changed)
    for peer in peers.values():
        wait_for(
            lambda p=peer: p.received_prefixes(a.ipv4) == {A_BLOCK, A2_BLOCK},
            30,
            "the host route withdrawn by the re-fed export",
        )
    assert {address: peer_view(peer, a.ipv4)[1] for address, peer in peers.items()} == ends
    assert myna_since(myna) == rows
    assert "2 re-filtered (sessions kept)" in myna.log_tail()

    # 5. The kernel protocol's export filter changes (Calico rewrites calico_kernel_programming
    # when a pool or its encapsulation changes): BIRD 1.6 keeps the protocol (krt_reconfigure
    # compares its options only) and re-feeds it: c's block leaves a's kernel, b's is not
    # touched, no session restarts.
    refiltered = changed.replace(
        "filter calico_kernel_programming {\n",
        "filter calico_kernel_programming {\n  if ( net ~ 198.19.3.0/26 ) then { reject; }\n",
    )
    assert refiltered != changed
    myna.reload(refiltered)
    wait_for(lambda: not kernel_holds(a, C_BLOCK), 30, "c's block out of a's kernel")
    assert myna.converse("configure")[1:] == [
        f"0002-Reading configuration from {myna.config_path}",
        "0003 Reconfigured",
    ]
    assert kernel_holds(a, B_BLOCK) and watch.events(B_BLOCK) == []
    assert {address: peer_view(peer, a.ipv4)[1] for address, peer in peers.items()} == ends
    assert myna_since(myna) == rows

    # 6. A kernel protocol option change: Myna's FIB and learner take those at start, so the
    # reload is refused by name (BIRD would restart its kernel protocol); nothing changes.
    view_b = settled(lambda: peer_view(peers[b.ipv4], a.ipv4))
    # (A scan time under 30 s is Myna's 30 s safety-net re-read, so the change goes above it.)
    myna.reload(refiltered.replace("scan time 2; import all;", "scan time 60; import all;"))
    assert myna.converse("configure")[1:] == [
        f"0002-Reading configuration from {myna.config_path}",
        "8002 reload refused: changing kernel needs a restart",
    ]
    assert peer_view(peers[b.ipv4], a.ipv4) == view_b
    assert watch.events(B_BLOCK) == []
    watch.stop()
