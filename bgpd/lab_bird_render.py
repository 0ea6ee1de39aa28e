"""BIRD configuration files rendered the way calico-node's confd renders them, for ``myna lab``.

Role: the ``--bird-cfg`` mode of the lab (``bgpd.lab_bird``) runs every node from the
``bird.cfg`` / ``bird6.cfg`` (with their ``bird_aggr`` / ``bird_ipam`` includes) that confd
would write for it. This module is that renderer, written from Calico's templates and their Go
helpers (projectcalico/calico ``node/filesystem/etc/calico/confd/templates/bird*.cfg.template``,
``confd/pkg/backends/calico/bgp_processor.go`` and ``client.go``, master of 2026-08): the same
protocols, options, filters and functions, statement for statement; only the comments are
Myna's own. ``tests/test_lab_bird.py`` compares its output token by token with Calico's own
renderings in ``calico-confd-corpus``.

Data flow: ``CalicoCluster`` (the Calico resources that matter: Nodes with their addresses,
AS numbers, route-reflector cluster ids and labels; the default BGPConfiguration; BGPPeers;
IPPools; each node's block affinities) -> ``peerings`` (confd's ``updatePeersV1``: BGPPeers
expanded through their selectors into global and per-node peerings, reverse peerings added)
-> per node and family the list of ``protocol bgp`` (``processMeshPeers`` and
``buildPeerFromData``: names, passive rule, route-reflector clients, filters) -> the six
files' text (``render_node``), written by ``write_node``.

What it covers: the node-to-node mesh (password, restart time), BGPPeers by peer IP or peer
selector with node or node selector (AS, local AS, port, source address, TTL security, next
hop mode, password, restart and keepalive times, allowed local AS, reverse peering), route
reflectors (``rr client`` / ``rr cluster id``), listen port and bind mode, log severity,
ignored interfaces, IP pools (IPIP, VXLAN, no encapsulation, BGP export disabled) under
``programClusterRoutes``, block affinities (confirmed or implicitly so; other states are left
out as confd leaves them). Not covered (never rendered): BGPFilters, communities, service
and static routes, ``reachableBy``, local workload peers, WireGuard.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BIRD_INT_MAX = 2147483647  # confd's template.BirdIntMaxValue
NORMAL_ROUTE_PRIORITY = 1024  # BGPConfiguration ipv4/ipv6NormalRoutePriority default
OVERRIDE_PREFERENCE = 200  # confd's birdOverridePreference
DEFAULT_AS = 64512
FILES = (
    "bird.cfg",
    "bird_aggr.cfg",
    "bird_ipam.cfg",
    "bird6.cfg",
    "bird6_aggr.cfg",
    "bird6_ipam.cfg",
)
_PROGRAM_CLUSTER_ROUTES = {  # BGPConfiguration.programClusterRoutes -> (IPIP pools, no-encap)
    "Disabled": (False, False),
    "Enabled": (True, True),
    "EnabledIPIPOnly": (True, False),
    "EnabledNoEncapOnly": (False, True),
}


@dataclass(frozen=True)
class CalicoNode:
    """A Calico Node: ``spec.bgp`` and the labels BGPPeer selectors read."""

    name: str
    ipv4: str | None = None  # ipv4Address, with its prefix length: "198.18.0.1/24"
    ipv6: str | None = None  # ipv6Address
    as_number: int | None = None
    rr_cluster_id: str | None = None  # routeReflectorClusterID
    labels: Mapping[str, str] = field(default_factory=dict)
    listen_port: int | None = None  # the node's own BGPConfiguration (node.<name>)
    router_id: str | None = None  # calico-node's CALICO_ROUTER_ID: an address or "hash"

    def address(self, ipv6: bool) -> str:
        """The node's ``ip_addr_v4`` / ``ip_addr_v6``: the address alone, "" for none."""
        text = self.ipv6 if ipv6 else self.ipv4
        return str(ipaddress.ip_interface(text).ip) if text else ""


@dataclass(frozen=True)
class IPPool:
    """An IPPool: its CIDR and encapsulation."""

    cidr: str
    ipip_mode: str = "Never"  # Always, CrossSubnet, Never
    vxlan_mode: str = "Never"
    disable_bgp_export: bool = False


@dataclass(frozen=True)
class BGPPeerSpec:
    """A BGPPeer resource (``password`` is the secret's value, times are in seconds)."""

    name: str
    peer_ip: str | None = None  # "IP", "IPv4:port" or "[IPv6]:port"
    as_number: int | None = None
    node: str | None = None
    node_selector: str | None = None
    peer_selector: str | None = None
    source_address: str = "UseNodeIP"  # or "None"
    next_hop_mode: str | None = None  # Auto, Self, Keep
    keep_original_next_hop: bool = False
    ttl_security: int = 0
    password: str | None = None
    max_restart_time: int | None = None
    keepalive_time: int | None = None
    local_as_number: int | None = None
    num_allowed_local_as: int = 0
    reverse_peering: str = "Auto"  # or Manual


@dataclass(frozen=True)
class Block:
    """A block affinity; ``state`` None is confd's "implicitly confirmed"."""

    cidr: str
    state: str | None = None


@dataclass(frozen=True)
class CalicoCluster:
    """The resources confd renders from (the default BGPConfiguration's fields flattened)."""

    nodes: tuple[CalicoNode, ...]
    pools: tuple[IPPool, ...] = ()
    peers: tuple[BGPPeerSpec, ...] = ()
    blocks: Mapping[str, tuple[Block, ...]] = field(default_factory=dict)  # node -> affinities
    as_number: int = DEFAULT_AS
    node_to_node_mesh: bool = True
    mesh_password: str | None = None
    mesh_max_restart_time: int | None = None
    listen_port: int | None = None
    bind_mode_node_ip: bool = False
    log_severity: str = "Info"
    ignored_interfaces: tuple[str, ...] = ()
    program_cluster_routes: str = "EnabledNoEncapOnly"

    def node(self, name: str) -> CalicoNode:
        """The node called ``name`` (KeyError when there is none)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def node_as(self, node: CalicoNode) -> int:
        """The node's AS number, else the cluster's."""
        return self.as_number if node.as_number is None else node.as_number

    def node_port(self, node: CalicoNode) -> int:
        """The port the node listens on (0: BIRD's default, 179)."""
        return node.listen_port or self.listen_port or 0


# -- selectors and peerings (confd's client.go) ---------------------------------------------


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` match a Calico label selector.

    The forms BGPPeers use: ``all()``, ``[!]has(k)``, ``k == 'v'``, ``k != 'v'`` and
    conjunctions of them with ``&&``.
    """
    parts = [p.strip() for p in selector.split("&&")]
    return all(_term_matches(part, labels) for part in parts)


def _term_matches(term: str, labels: Mapping[str, str]) -> bool:
    if term == "all()":
        return True
    match = re.fullmatch(r"(!?)has\(([\w./-]+)\)", term)
    if match:
        return (match.group(2) in labels) != bool(match.group(1))
    match = re.fullmatch(r"([\w./-]+)\s*(==|!=)\s*(?:'([^']*)'|\"([^\"]*)\")", term)
    if match:
        value = match.group(3) if match.group(3) is not None else match.group(4)
        return (labels.get(match.group(1)) == value) == (match.group(2) == "==")
    raise ValueError(f"selector not supported by the lab's renderer: {term!r}")


@dataclass
class Peering:
    """confd's v1 peering record (``backends.BGPPeer``) for one peer address."""

    ip: str
    as_number: int
    port: int = 0
    rr_cluster_id: str = ""
    password: str | None = None
    source_address: str = ""
    keep_next_hop: bool = False
    next_hop_mode: str = ""
    restart_time: int | None = None
    keepalive_time: int | None = None
    calico_node: bool = False
    num_allowed_local_as: int = 0
    ttl_security: int = 0
    local_as: int = 0


def _split_peer_ip(text: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[(.+)\]:(\d+)", text) or re.fullmatch(r"([\d.]+):(\d+)", text)
    if match:
        return match.group(1), int(match.group(2))
    return text, 0


def _nodes_matching(cluster: CalicoCluster, selector: str) -> list[CalicoNode]:
    return sorted(
        (n for n in cluster.nodes if selector_matches(selector, n.labels)), key=lambda n: n.name
    )


def _node_peerings(
    cluster: CalicoCluster, node: CalicoNode, v4: bool, v6: bool, spec: BGPPeerSpec
) -> list[Peering]:
    """nodeAsBGPPeers: a Calico node as the peer of a BGPPeer, in the families asked for."""
    found = []
    for wanted, ip in ((v4, node.address(False)), (v6, node.address(True))):
        if wanted and ip:
            found.append(
                Peering(
                    ip,
                    cluster.node_as(node),
                    cluster.node_port(node),
                    node.rr_cluster_id or "",
                    ttl_security=spec.ttl_security,
                    next_hop_mode=spec.next_hop_mode or "",
                    keep_next_hop=spec.next_hop_mode is None and spec.keep_original_next_hop,
                )
            )
    return found


def _with_resource_fields(peerings: Iterable[Peering], spec: BGPPeerSpec) -> None:
    """setPeerConfigFieldsFromV3Resource (and the per-BGPPeer fields set beside it)."""
    for peering in peerings:
        peering.password = spec.password
        peering.source_address = spec.source_address or "UseNodeIP"
        peering.restart_time = spec.max_restart_time
        peering.keepalive_time = spec.keepalive_time
        peering.local_as = spec.local_as_number or 0


def peerings(cluster: CalicoCluster) -> dict[tuple[str, str, int], Peering]:
    """updatePeersV1: (node name, "" for a global peering; peer IP; port) -> peering."""
    out: dict[tuple[str, str, int], Peering] = {}
    node_ips = {n.address(six) for n in cluster.nodes for six in (False, True)} - {""}

    def emit(owner: str, peering: Peering) -> None:
        key = (owner, peering.ip, peering.port)
        if key not in out and not (owner and ("", peering.ip, peering.port) in out):
            out[key] = peering

    specs = sorted(cluster.peers, key=lambda p: p.name)
    for global_pass in (True, False):
        for spec in specs:
            if global_pass != (not spec.node_selector and not spec.node):
                continue
            owners = _owners(cluster, spec)
            found: list[Peering] = []
            if spec.peer_selector:
                for other in _nodes_matching(cluster, spec.peer_selector):
                    found.extend(_node_peerings(cluster, other, True, True, spec))
            elif spec.peer_ip:
                host, port = _split_peer_ip(spec.peer_ip)
                asn = spec.as_number or 0
                if port == 0:
                    same = _nodes_with_ip_and_as(cluster, host, asn, 0)
                    if same:
                        port = cluster.node_port(same[0])
                keep = spec.next_hop_mode is None and spec.keep_original_next_hop
                found.append(
                    Peering(
                        host,
                        asn,
                        port,
                        keep_next_hop=keep,
                        next_hop_mode=spec.next_hop_mode or "",
                        calico_node=host in node_ips,
                        num_allowed_local_as=spec.num_allowed_local_as,
                        ttl_security=spec.ttl_security,
                    )
                )
            _with_resource_fields(found, spec)
            for peering in found:
                for owner in [""] if global_pass else owners:
                    emit(owner, peering)
    for spec in specs:  # reverse peerings, unless a BGPPeer asks for none
        if spec.reverse_peering == "Manual":
            continue
        if spec.peer_selector:
            locals_ = _nodes_matching(cluster, spec.peer_selector)
            v4 = v6 = True
        elif spec.peer_ip:
            host, port = _split_peer_ip(spec.peer_ip)
            locals_ = _nodes_with_ip_and_as(cluster, host, spec.as_number or 0, port)
            v6 = ":" in host
            v4 = not v6
        else:
            continue
        others = _owners(cluster, spec) if spec.node_selector or spec.node else None
        if others is None:
            others_nodes = _nodes_matching(cluster, "all()")
        else:
            others_nodes = [cluster.node(name) for name in others if _has_node(cluster, name)]
        found = [p for o in others_nodes for p in _node_peerings(cluster, o, v4, v6, spec)]
        _with_resource_fields(found, spec)
        for peering in found:
            for local in locals_:
                emit(local.name, peering)
    return out


def _has_node(cluster: CalicoCluster, name: str) -> bool:
    return any(n.name == name for n in cluster.nodes)


def _owners(cluster: CalicoCluster, spec: BGPPeerSpec) -> list[str]:
    if spec.node_selector:
        return [n.name for n in _nodes_matching(cluster, spec.node_selector)]
    return [spec.node] if spec.node else []


def _nodes_with_ip_and_as(cluster: CalicoCluster, ip: str, asn: int, port: int) -> list[CalicoNode]:
    found = []
    for node in sorted(cluster.nodes, key=lambda n: n.name):
        if ip not in (node.address(False), node.address(True)):
            continue
        if cluster.node_as(node) != (asn or cluster.as_number):
            continue
        if port and node.listen_port is not None and node.listen_port != port:
            continue
        if port and cluster.listen_port and cluster.listen_port != port:  # confd does so
            continue
        found.append(node)
    return found


# -- one node's BGP protocols (bgp_processor.go) ---------------------------------------------


@dataclass(frozen=True)
class BirdPeer:
    """One ``protocol bgp`` as the template writes it (confd's ``BirdBGPPeer``)."""

    name: str
    ip: str
    as_number: int
    port: int = 0
    local_as: int = 0
    source_address: str = ""
    ttl_security: str = "off"  # "off" or the hop count
    import_filter: tuple[str, ...] = ()
    export_filter: tuple[str, ...] = ()
    passive: bool = False
    restart_time: int | None = None
    keepalive_time: int | None = None
    rr_cluster_id: str = ""  # set: "rr client; rr cluster id ..."
    password: str | None = None
    next_hop_keep: bool = False
    next_hop_self: bool = False
    allow_local_as: int = 0


def import_filter_lines() -> tuple[str, ...]:
    """The import filter (buildImportFilter) without BGPFilters: prefer high priority, accept."""
    return (
        f"if (defined(bgp_local_pref)&&(bgp_local_pref > {BIRD_INT_MAX - NORMAL_ROUTE_PRIORITY}))"
        " then",
        f"  preference = {OVERRIDE_PREFERENCE};",
        "accept;",
    )


def export_filter_lines(internal: bool) -> tuple[str, ...]:
    """The export filter (buildExportFilter) without BGPFilters.

    krt_metric and the local preference derived from each other, then Calico's export.
    """
    return (
        "if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {",
        f"  krt_metric = {BIRD_INT_MAX} - bgp_local_pref;",
        "} else {",
        f"  if (!defined(krt_metric)) then {{ krt_metric = {NORMAL_ROUTE_PRIORITY}; }}",
        f"  bgp_local_pref = {BIRD_INT_MAX} - krt_metric;",
        "}",
        f"calico_export_to_bgp_peers({'true' if internal else 'false'});",
        "reject;",
    )


def _peer_name(kind: str, ip: str, port: int, ipv6: bool) -> str:
    name = f"{kind}_{ip.replace(':' if ipv6 else '.', '_')}"
    return f"{name}_port_{port}" if port > 0 else name


def _mesh_peers(cluster: CalicoCluster, node: CalicoNode, ipv6: bool) -> list[BirdPeer]:
    """processMeshPeers: every other node without a cluster id, the higher address passive."""
    own_ip = node.address(ipv6)
    if node.rr_cluster_id or not cluster.node_to_node_mesh:
        return []
    node_as = cluster.node_as(node)
    found = []
    for other in cluster.nodes:
        ip = other.address(ipv6)
        if not ip or ip == own_ip or other.rr_cluster_id:
            continue
        asn = node_as if other.as_number is None else other.as_number
        found.append(
            BirdPeer(
                name=_peer_name("Mesh", ip, 0, ipv6),
                ip=ip,
                as_number=asn,
                port=cluster.node_port(other),
                source_address=own_ip,
                import_filter=import_filter_lines(),
                export_filter=export_filter_lines(asn == node_as),
                passive=ip > own_ip,  # confd compares the texts
                restart_time=cluster.mesh_max_restart_time,
                password=cluster.mesh_password,
            )
        )
    return found


def _rendered_peer(
    cluster: CalicoCluster, node: CalicoNode, peering: Peering, kind: str, ipv6: bool
) -> BirdPeer | None:
    """One peering of this node as buildPeerFromData gives it (None: the node itself)."""
    own_ip = node.address(ipv6)
    if peering.ip == own_ip:
        return None
    node_as = peering.local_as or cluster.node_as(node)
    internal = peering.as_number == node_as
    cluster_id = node.rr_cluster_id or ""
    rr_client = internal and bool(cluster_id) and peering.rr_cluster_id != cluster_id
    passive = kind == "Global" and peering.calico_node and peering.ip > own_ip
    return BirdPeer(
        name=_peer_name(kind, peering.ip, peering.port, ipv6),
        ip=peering.ip,
        as_number=peering.as_number,
        port=peering.port,
        local_as=peering.local_as,
        source_address=own_ip if peering.source_address == "UseNodeIP" else "",
        ttl_security=str(peering.ttl_security) if peering.ttl_security > 0 else "off",
        import_filter=import_filter_lines(),
        export_filter=export_filter_lines(internal),
        passive=passive,
        restart_time=peering.restart_time,
        keepalive_time=peering.keepalive_time,
        rr_cluster_id=cluster_id if rr_client else "",
        password=peering.password,
        next_hop_keep=peering.next_hop_mode == "Keep" or (peering.keep_next_hop and not internal),
        next_hop_self=peering.next_hop_mode == "Self",
        allow_local_as=peering.num_allowed_local_as,
    )


def bgp_peers(cluster: CalicoCluster, node_name: str, ipv6: bool) -> list[BirdPeer]:
    """The node's ``protocol bgp`` list for one family, sorted by name as confd sorts it."""
    node = cluster.node(node_name)
    found = _mesh_peers(cluster, node, ipv6)
    for (owner, ip, _port), peering in peerings(cluster).items():
        if (":" in ip) != ipv6 or owner not in ("", node.name):
            continue
        peer = _rendered_peer(cluster, node, peering, "Global" if owner == "" else "Node", ipv6)
        if peer is not None:
            found.append(peer)
    return sorted(found, key=lambda p: p.name)


# -- the files (the templates) ---------------------------------------------------------------


def _router_id(node: CalicoNode) -> str:
    """The router id: CALICO_ROUTER_ID, else the node's IPv4 address.

    bird6's too (router ids are 4 octets); "hash": the first 4 octets of the name's SHA-256,
    kept below 224 (template.HashToIPv4).
    """
    if node.router_id == "hash":
        first, second, third, fourth = hashlib.sha256(node.name.encode()).digest()[:4]
        return f"{first - 32 if first > 223 else first}.{second}.{third}.{fourth}"
    return node.router_id or node.address(False)


def _bird_cfg(cluster: CalicoCluster, node: CalicoNode, ipv6: bool) -> str:
    six = "6" if ipv6 else ""
    own_ip = node.address(ipv6)
    debug = cluster.log_severity.lower()
    direct = ", ".join(
        [*(f'-"{i}"' for i in cluster.ignored_interfaces), '-"cali*"', '-"kube-ipvs*"', '"*"']
    )
    out = ["function apply_communities ()", "{", "}", ""]
    out += ["template kernel kernel_template {", "  learn;  # alien routes: Felix's blocks"]
    out += ["  persist;", "  scan time 2;", "  import all;", "}", ""]
    out += ["template direct direct_template {"]
    if debug != "none":
        out.append(f"  debug {'all' if debug == 'debug' else '{ states }'};")
    out += [f"  interface {direct};", "}", ""]
    out += [
        "# Rendered by Myna's lab as calico-node's confd renders it",
        f'include "bird{six}_aggr.cfg";',
        f'include "bird{six}_ipam.cfg";',
        "",
        f"router id {_router_id(node)};",
    ]
    listen_address = own_ip if cluster.bind_mode_node_ip else ""
    port = cluster.node_port(node)
    if listen_address or port:
        out.append(
            "listen bgp"
            + (f" address {listen_address}" if listen_address else "")
            + (f" port {port}" if port else "")
            + ";"
        )
    out += ["", "protocol kernel from kernel_template {"]
    out += ["  export filter calico_kernel_programming;", "  graceful restart;"]
    out += ["  merge paths on;  # ECMP routes into the kernel", "}", ""]
    out += ["protocol device {"]
    if debug != "none":
        out.append(f"  debug {'all' if debug == 'debug' else '{ states }'};")
    out += ["  scan time 2;", "}", "", "protocol direct from direct_template {", "}", ""]
    if not own_ip:
        out.append(f"# IPv{6 if ipv6 else 4} disabled on this node.")
        return "\n".join(out) + "\n"
    out += ["template bgp bgp_template {"]
    if debug == "debug":
        out.append("  debug all;")
    elif debug != "none":
        out.append("  debug { states, routes, filters, events };")
    out += [
        '  description "Connection to BGP peer";',
        f"  local as {cluster.node_as(node)};",
        "  gateway recursive;",
        "  add paths on;",
        "  graceful restart;",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "}",
        "",
        f"# BGP filters: none (no v{6 if ipv6 else 4} BGPFilter)",
    ]
    peers = bgp_peers(cluster, node.name, ipv6)
    if not peers:
        out.append("# No BGP peers configured for this node")
    for peer in peers:
        out += _protocol_bgp(peer)
    return "\n".join(out) + "\n"


def _protocol_bgp(peer: BirdPeer) -> list[str]:
    out = [f"protocol bgp {peer.name} from bgp_template {{"]
    if peer.local_as:
        out.append(f"  local as {peer.local_as};")
    port = f" port {peer.port}" if peer.port else ""
    out.append(f"  neighbor {peer.ip}{port} as {peer.as_number};")
    if peer.source_address:
        out.append(f"  source address {peer.source_address};")
    if peer.ttl_security == "off":
        out += ["  ttl security off;", "  multihop;"]
    else:
        out += ["  ttl security on;", f"  multihop {peer.ttl_security};"]
    out += ["  import filter {", *(f"    {line}" for line in peer.import_filter), "  };"]
    out += ["  export filter {", *(f"    {line}" for line in peer.export_filter), "  };"]
    if peer.passive:
        out.append("  passive on;")
    if peer.restart_time is not None:
        out.append(f"  graceful restart time {peer.restart_time};")
    if peer.keepalive_time is not None:
        out.append(f"  keepalive time {peer.keepalive_time};")
    if peer.rr_cluster_id:
        out += ["  rr client;", f"  rr cluster id {peer.rr_cluster_id};"]
    if peer.password is not None:
        out.append(f'  password "{peer.password}";')
    if peer.next_hop_keep:
        out.append("  next hop keep;")
    if peer.next_hop_self:
        out.append("  next hop self;")
    if peer.allow_local_as:
        out.append(f"  allow local as {peer.allow_local_as};")
    out.append("}")
    return out


def _node_blocks(cluster: CalicoCluster, node: CalicoNode, ipv6: bool) -> list[Block]:
    """The node's affinities of one family, as confd lists them (by key text).

    Pending ones are left out.
    """
    version = 6 if ipv6 else 4
    blocks = [
        b
        for b in cluster.blocks.get(node.name, ())
        if ipaddress.ip_network(b.cidr, strict=False).version == version
        and b.state in (None, "confirmed")
    ]
    return sorted(blocks, key=lambda b: b.cidr.replace("/", "-"))


def _bird_aggr_cfg(cluster: CalicoCluster, node: CalicoNode, ipv6: bool) -> str:
    blocks = _node_blocks(cluster, node, ipv6)
    host = "/128" if ipv6 else "/32"
    out = ["# Rendered by Myna's lab as calico-node's confd renders it", ""]
    out.append("template static static_template {")
    if blocks:
        out.append("   # this host's blocks")
        out += [f"   route {b.cidr} blackhole;" for b in blocks if not b.cidr.endswith(host)]
    else:
        out.append("   # no block and no static route on this host")
    out += ["}", ""]
    if blocks:
        out += ["protocol static from static_template {", "}", ""]
    out += ["# a block is exported, what lies inside it is not", "function calico_aggr ()", "{"]
    for block in blocks:
        out += [
            f"      # block {block.cidr}: {block.state or 'confirmed (implicitly)'}",
            f"      if ( net = {block.cidr} ) then {{ accept; }}",
            f"      if ( net ~ {block.cidr} && krt_metric < {NORMAL_ROUTE_PRIORITY} )"
            " then { accept; }",
            f"      if ( net ~ {block.cidr} ) then {{ reject; }}",
        ]
    out.append("}")
    return "\n".join(out) + "\n"


def _pool_statement(
    pool: IPPool, cluster: CalicoCluster, *, kernel: bool, action: str, subnet: str, ipv6: bool
) -> str:
    """processIPPool: one filter statement for the pool, "" when ``action`` filters it out."""
    program_ipip, program_no_encap = _PROGRAM_CLUSTER_ROUTES.get(
        cluster.program_cluster_routes, (False, True)
    )
    vxlan = pool.vxlan_mode in ("Always", "CrossSubnet")
    ipip = pool.ipip_mode in ("Always", "CrossSubnet")
    extra, comment = "", ""
    if pool.disable_bgp_export and not kernel:
        verdict, comment = "reject", "BGP export is disabled."
    elif vxlan:
        verdict = "reject" if kernel else "accept"
        comment = "VXLAN routes are handled by Felix." if kernel else ""
    elif (program_ipip if ipip else program_no_encap) or not kernel:
        verdict = "accept"
        if kernel and not ipv6 and pool.ipip_mode == "Always":
            extra = 'krt_tunnel="tunl0";'
        elif kernel and not ipv6 and pool.ipip_mode == "CrossSubnet":
            extra = (
                f"if (defined(bgp_next_hop)&&(bgp_next_hop ~ {subnet})) then "
                'krt_tunnel=""; else krt_tunnel="tunl0";'
            )
    else:
        verdict, comment = "reject", "Cluster routes are handled by Felix."
    if action and action != verdict:
        return ""
    body = f"{extra} {verdict};" if extra else f"{verdict};"
    statement = f"  if (net ~ {pool.cidr}) then {{ {body} }}"
    return f"{statement} # {comment}" if comment else statement


def _bird_ipam_cfg(cluster: CalicoCluster, node: CalicoNode, ipv6: bool) -> str:
    program_ipip = _PROGRAM_CLUSTER_ROUTES.get(cluster.program_cluster_routes, (False, True))[0]
    version = 6 if ipv6 else 4
    pools = [p for p in cluster.pools if ipaddress.ip_network(p.cidr).version == version]
    subnet = str(ipaddress.ip_interface(node.ipv4).network) if node.ipv4 else ""

    def statements(kernel: bool, action: str) -> list[str]:
        found = (
            _pool_statement(p, cluster, kernel=kernel, action=action, subnet=subnet, ipv6=ipv6)
            for p in pools
        )
        return sorted(s for s in found if s)

    tunnels = ["*.cali", "*.calico", *(() if program_ipip else ("tunl0",))]
    out = ["# Rendered by Myna's lab as calico-node's confd renders it", ""]
    out += ["function reject_local_routes () {", "  if (defined(ifname)) then {"]
    out += ['     if (ifname ~ "bpf*.cali") then {', "        reject;", "     }", "  }", "}", ""]
    out += ["function calico_export_to_bgp_peers(bool internal_peer) {"]
    out += statements(False, "reject")
    out += ["  if (internal_peer) then {", "    if (defined(ifname)) then {"]
    out.append("      if (" + " || ".join(f'(ifname ~ "{t}")' for t in tunnels) + ") then {")
    out += ["        reject;", "      }", "    }", "  }"]
    out += ["  reject_local_routes();", "  apply_communities();", "  calico_aggr();"]
    out += statements(False, "accept")
    out += ["}", "", "filter calico_kernel_programming {"]
    out += [
        "  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {",
        f"      krt_metric = {NORMAL_ROUTE_PRIORITY};",
        "      if (defined(bgp_local_pref)) then {",
        f"          krt_metric = {BIRD_INT_MAX} - bgp_local_pref;",
        "      }",
        f"      if (krt_metric < {NORMAL_ROUTE_PRIORITY}) then {{",
        f"          preference = {OVERRIDE_PREFERENCE};",
        "      }",
        "  }",
    ]
    if ipv6 or subnet:  # confd needs the node's IPv4 subnet for the IPv4 statements
        out += statements(True, "reject" if ipv6 else "")
    out += ["  accept;", "}"]
    return "\n".join(out) + "\n"


def render_node(cluster: CalicoCluster, node_name: str) -> dict[str, str]:
    """The six files confd writes for ``node_name``: file name -> text."""
    node = cluster.node(node_name)
    files = {}
    for ipv6 in (False, True):
        six = "6" if ipv6 else ""
        files[f"bird{six}.cfg"] = _bird_cfg(cluster, node, ipv6)
        files[f"bird{six}_aggr.cfg"] = _bird_aggr_cfg(cluster, node, ipv6)
        files[f"bird{six}_ipam.cfg"] = _bird_ipam_cfg(cluster, node, ipv6)
    return files


def write_node(cluster: CalicoCluster, node_name: str, directory: Path) -> None:
    """Write ``render_node``'s files into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render_node(cluster, node_name).items():
        (directory / name).write_text(text)
