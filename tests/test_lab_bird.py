"""``myna lab --bird-cfg``: Calico's rendering of bird.cfg/bird6.cfg, and the lab run from it.

Data flow:

* The renderer (``bgpd.lab_bird_render``) against Calico itself: each corpus scenario's
  ``input.yaml`` (``calico-confd-corpus``, Calico's own template tests) goes through
  ``cluster_from_resources`` into a ``CalicoCluster``, the renderer writes kube-master's files,
  and both ``bird.cfg`` and ``bird6.cfg`` (includes followed) must give the same token stream
  as Calico's rendering: same protocols, options, filters, functions, in the same order; only
  comments and layout may differ. Blocks are confd's test harness affinities
  (``STANDARD_BLOCKS``).
* The lab's own files (both phases, a host and a reflector) parse with stock BIRD 1.6 (``bird
  -p``) and with Myna's reader, and Myna reads the roles the lab means into them.
* End to end (root): ``python -m bgpd.cli lab --bird-cfg`` as a child process, its output
  read for both phases and both families, then the machine checked for what it might have left
  (``test_lab.leftovers``). With ``--stock-bird`` the same files run under BIRD 1.6 itself,
  which proves the lab (renderer, namespaces, convergence check) independently of Myna's
  daemon; the Myna run is the issue's goal.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from bird16_oracle import bird_parse, myna_parse
from calico_confd_model import STANDARD_BLOCKS, _label, _seconds, load_resources
from test_lab import LAB_TIMEOUT, REPO, lab_command, leftovers, phase_text, stop
from testbed.bird import BIRD16_SBIN

from bgpd.bird_config.cli import load
from bgpd.bird_config.lexer import Lexer, TokenKind
from bgpd.lab import Node, host_blocks
from bgpd.lab_bird import address6, host_blocks6, lab_cluster
from bgpd.lab_bird_render import (
    BGPPeerSpec,
    Block,
    CalicoCluster,
    CalicoNode,
    IPPool,
    render_node,
    selector_matches,
    write_node,
)

CORPUS = REPO.parent / "shared" / "calico-confd-corpus"
# Scenarios whose resources the renderer covers (BGPFilters, communities, service and static
# routes, reachableBy and local workloads it does not render).
SCENARIOS = (
    "mesh/ipip-off",
    "mesh/ipip-always",
    "mesh/restart-time",
    "mesh/bgp-export",
    "mesh/hash",
    "next_hop_mode/route_reflectors",
    "next_hop_mode/global_peers",
    "explicit_peering/route_reflector_v6_by_ip",
    "explicit_peering/global",
    "explicit_peering/global-ipv6",
    "explicit_peering/keepnexthop",
    "explicit_peering/local-as",
    "explicit_peering/local-as-ipv6",
    "explicit_peering/local-as-global",
    "explicit_peering/selectors",
    "explicit_peering/specific_node",
    "ttl_security/explicit_node",
    "ttl_security/peer_selector",
    "reverse_peering/manual",
)
ROUTER_ID_HASH = {"mesh/hash"}  # rendered with CALICO_ROUTER_ID=hash


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("myna lab needs root (network namespaces)")


def _corpus() -> Path:
    if not (CORPUS / "README.md").is_file():
        pytest.fail(f"the Calico corpus is missing: {CORPUS} (CI puts it beside the clone)")
    return CORPUS


def cluster_from_resources(resources: list[dict[str, Any]], hashed: bool) -> CalicoCluster:
    """The renderer's model of a scenario's Calico resources, kube-master's blocks added."""
    config: dict[str, Any] = {}
    ports: dict[str, int] = {}
    nodes, pools, peers = [], [], []
    for resource in resources:
        kind, name = resource["kind"], resource["metadata"]["name"]
        spec = resource.get("spec") or {}
        if kind == "BGPConfiguration" and name == "default":
            config = spec
        elif kind == "BGPConfiguration" and "listenPort" in spec:
            ports[name.removeprefix("node.")] = int(spec["listenPort"])
        elif kind == "Node":
            bgp = spec.get("bgp") or {}
            labels = resource["metadata"].get("labels") or {}
            nodes.append(
                CalicoNode(
                    name,
                    bgp.get("ipv4Address"),
                    bgp.get("ipv6Address"),
                    int(bgp["asNumber"]) if "asNumber" in bgp else None,
                    bgp.get("routeReflectorClusterID"),
                    {k: _label(v) for k, v in labels.items()},
                    router_id="hash" if hashed and name == "kube-master" else None,
                )
            )
        elif kind == "IPPool":
            pools.append(
                IPPool(
                    str(ipaddress.ip_network(spec["cidr"], strict=False)),
                    spec.get("ipipMode", "Never"),
                    spec.get("vxlanMode", "Never"),
                    bool(spec.get("disableBGPExport", False)),
                )
            )
        elif kind == "BGPPeer":
            restart = spec.get("maxRestartTime")
            peers.append(
                BGPPeerSpec(
                    name,
                    peer_ip=spec.get("peerIP"),
                    as_number=spec.get("asNumber"),
                    node=spec.get("node"),
                    node_selector=spec.get("nodeSelector"),
                    peer_selector=spec.get("peerSelector"),
                    source_address=spec.get("sourceAddress", "UseNodeIP"),
                    next_hop_mode=spec.get("nextHopMode"),
                    keep_original_next_hop=bool(spec.get("keepOriginalNextHop", False)),
                    ttl_security=int(spec.get("ttlSecurity", 0)),
                    max_restart_time=_seconds(str(restart)) if restart else None,
                    local_as_number=spec.get("localASNumber"),
                    num_allowed_local_as=int(spec.get("numAllowedLocalASNumbers", 0)),
                    reverse_peering=spec.get("reversePeering", "Auto"),
                )
            )
    restart = config.get("nodeMeshMaxRestartTime")
    return CalicoCluster(
        nodes=tuple(CalicoNode(**{**n.__dict__, "listen_port": ports.get(n.name)}) for n in nodes),
        pools=tuple(pools),
        peers=tuple(peers),
        blocks={"kube-master": tuple(Block(c, s or None) for c, s in STANDARD_BLOCKS)},
        as_number=int(config.get("asNumber", 64512)),
        node_to_node_mesh=bool(config.get("nodeToNodeMeshEnabled", True)),
        mesh_max_restart_time=_seconds(str(restart)) if restart else None,
        listen_port=config.get("listenPort"),
        bind_mode_node_ip=config.get("bindMode") == "NodeIP",
        log_severity=str(config.get("logSeverityScreen", "Info")),
        program_cluster_routes=str(config.get("programClusterRoutes", "EnabledNoEncapOnly")),
    )


def tokens(path: Path, ipv6: bool) -> list[tuple[str, str]]:
    """The file's tokens, includes followed: (kind, text) each; comments and layout gone."""
    lexer = Lexer(str(path), ipv6=ipv6)
    out = []
    while (token := lexer.next()).kind is not TokenKind.END:
        out.append((token.kind.name, token.text))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_renderer_matches_calicos_rendering(scenario: str, tmp_path: Path) -> None:
    folder = _corpus() / scenario
    cluster = cluster_from_resources(
        load_resources(folder / "input.yaml"), scenario in ROUTER_ID_HASH
    )
    write_node(cluster, "kube-master", tmp_path)
    for name, ipv6 in (("bird.cfg", False), ("bird6.cfg", True)):
        theirs, ours = tokens(folder / name, ipv6), tokens(tmp_path / name, ipv6)
        if theirs != ours:
            pairs = enumerate(zip(theirs, ours, strict=False))
            at = next((i for i, (a, b) in pairs if a != b), min(len(theirs), len(ours)))
            shown = f"Calico {theirs[at : at + 8]}, ours {ours[at : at + 8]}"
            pytest.fail(f"{name}: token {at}: {shown}")


def test_selectors() -> None:
    labels = {"route-reflector": "true", "zone": "a"}
    assert selector_matches("all()", {})
    assert selector_matches("has(route-reflector)", labels)
    assert selector_matches("!has(rack)", labels)
    assert selector_matches("route-reflector == 'true' && zone != 'b'", labels)
    assert not selector_matches('zone == "b"', labels)
    with pytest.raises(ValueError, match="not supported"):
        selector_matches("zone in {'a'}", labels)


def _lab_nodes() -> tuple[list[Node], list[Node], dict[str, tuple[str, ...]]]:
    hosts = [Node(f"h{n}", n, f"x-h{n}", host_blocks(n, 2)) for n in range(1, 4)]
    reflectors = [Node("rr1", 201, "x-rr1"), Node("rr2", 202, "x-rr2")]
    return hosts, reflectors, {h.name: host_blocks6(h.number, 2) for h in hosts}


def test_lab_files_parse_with_bird16_and_myna(tmp_path: Path) -> None:
    """Both phases' files: stock BIRD 1.6 and Myna read them, with the lab's roles."""
    hosts, reflectors, blocks6 = _lab_nodes()
    assert blocks6["h1"] == ("2001:db8:1::1:0/122", "2001:db8:1::1:40/122")
    assert address6(reflectors[0]) == "2001:db8::c9"
    for phase, rrs in (("mesh", []), ("reflectors", reflectors)):
        cluster = lab_cluster(hosts, rrs, blocks6)
        for node in (hosts[0], *rrs[:1]):
            directory = tmp_path / phase / node.name
            write_node(cluster, node.name, directory)
            for six in (False, True):
                path = directory / ("bird6.cfg" if six else "bird.cfg")
                assert bird_parse(path, six) == (0, ""), path.read_text()
                assert myna_parse(path, six) == (0, ""), path.read_text()
                _, daemon = load(str(path), six)
                peers = {p.name: p for p in daemon.peers}
                family = "6" if six else ""
                if phase == "mesh":
                    expected = {f"Mesh_{address(h, six)}" for h in hosts if h != node}
                    assert set(peers) == expected
                    assert peers[f"Mesh_{address(hosts[1], six)}"].passive is True
                elif node in hosts:
                    assert set(peers) == {f"Node_{address(r, six)}" for r in reflectors}
                    assert not any(p.route_reflector_client for p in peers.values())
                else:
                    clients = {f"Node_{address(h, six)}" for h in hosts}
                    assert set(peers) == clients | {f"Node_{address(reflectors[1], six)}"}
                    assert {n for n, p in peers.items() if p.route_reflector_client} == clients
                    cluster_id = daemon.reflector_cluster_id()
                    assert cluster_id == int(ipaddress.IPv4Address("198.18.0.200"))
                assert daemon.kernel.program and daemon.kernel.learn, family
                statics = {r.prefix for r in daemon.static_routes}
                own = blocks6.get(node.name, ()) if six else node.blocks
                assert statics == {str(ipaddress.ip_network(b)) for b in own}


def address(node: Node, six: bool) -> str:
    """A node's address as confd puts it into a protocol name."""
    return address6(node).replace(":", "_") if six else node.address.replace(".", "_")


def test_render_node_gives_the_six_files() -> None:
    hosts, reflectors, blocks6 = _lab_nodes()
    files = render_node(lab_cluster(hosts, reflectors, blocks6), "rr1")
    assert sorted(files) == sorted(
        f"bird{six}{part}.cfg" for six in ("", "6") for part in ("", "_aggr", "_ipam")
    )
    assert "protocol static" not in files["bird_aggr.cfg"]  # a reflector has no block
    assert "rr cluster id 198.18.0.200;" in files["bird6.cfg"]
    assert "router id 198.18.0.201;" in files["bird6.cfg"]


# -- end to end -------------------------------------------------------------------------------


PHASE_TIMEOUT = 90  # s per phase: stock BIRD 1.6's reflector phase takes 14-26 s unloaded


def _run_lab(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        lab_command("--bird-cfg", "--timeout", str(PHASE_TIMEOUT), *args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=2 * PHASE_TIMEOUT + LAB_TIMEOUT)
    finally:
        stop(process)
    return process, output


def _check_converged(output: str) -> None:
    """Both phases converged, every host holding every other host's blocks in both families."""
    hosts = [Node(f"h{n}", n, "", host_blocks(n, 2)) for n in range(1, 5)]
    for title in ("phase 1, node-to-node mesh", "phase 2, two route reflectors"):
        text = phase_text(output, title)
        assert re.search(rf"{title}: converged in \d+\.\d\d s from starting the daemons", text)
        routes = text[text.index("kernel routes of each host") :]
        per_host = re.split(r"\n  (?=h\d )", routes)[1:]
        assert len(per_host) == 4, routes
        for host, table in zip(hosts, per_host, strict=True):
            for other in hosts:
                if other == host:
                    continue
                for block in other.blocks:
                    assert f"{block} via {other.address} dev eth0 proto bird" in table, table
                for block in host_blocks6(other.number, 2):
                    assert re.search(
                        rf"{re.escape(block)} via ({address6(other)}|fe80::[0-9a-f:]+) dev eth0"
                        " proto bird",
                        table,
                    ), table
        sessions = text[text.index("sessions (") : text.index("kernel routes")]
        assert "no answer" not in sessions, sessions
        for line in re.findall(r"(bird6?) +(\d+) BGP protocols: (.*)", sessions):
            assert line[2] == f"{line[1]} Established", sessions
    assert "tearing down (12 daemons, 7 namespaces)... done" in output


@pytest.mark.interop
def test_lab_bird_cfg_runs_under_stock_bird16(root: None) -> None:
    """The lab itself, proven with BIRD 1.6 running the same rendered files."""
    process, output = _run_lab("--stock-bird", str(BIRD16_SBIN))
    assert process.returncode == 0, output
    assert "bird.cfg mode (BIRD 1.6 from" in output
    _check_converged(output)
    assert leftovers(process.pid) == ([], [])


@pytest.mark.interop
def test_lab_bird_cfg_converges_with_myna(root: None) -> None:
    """Issue 14's goal: every node runs Myna as bird and bird6 from Calico's files."""
    process, output = _run_lab()
    try:
        assert process.returncode == 0, output
        assert "bird.cfg mode (Myna as bird/bird6)" in output
        _check_converged(output)
    finally:
        assert leftovers(process.pid) == ([], [])


@pytest.mark.interop
@pytest.mark.parametrize("runner", ["myna", "bird16"])
def test_lab_bird_cfg_interrupted_tears_down(root: None, tmp_path: Path, runner: str) -> None:
    log = tmp_path / "lab.out"
    stock = ("--stock-bird", str(BIRD16_SBIN)) if runner == "bird16" else ()
    with log.open("w") as out:
        process = subprocess.Popen(
            lab_command("--bird-cfg", *stock),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + LAB_TIMEOUT
        while "starting them in 4 nodes... done" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        namespaces, processes = leftovers(process.pid)
        assert len(namespaces) == 7
        assert len(processes) >= 8  # bird and bird6 on each of the four hosts
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        stop(process)
    output = log.read_text()
    assert process.returncode == 130, output
    assert re.search(r"tearing down \(8 daemons, 7 namespaces\)\.\.\. done", output), output
    assert leftovers(process.pid) == ([], [])
