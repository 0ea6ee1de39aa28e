"""What confd should render for a Calico scenario, worked out from its Calico resources.

Role: the expectations of ``test_bird_config_corpus.py``. Each corpus scenario's
``input.yaml`` (Nodes, BGPConfiguration, BGPPeers, IPPools, BGPFilters) goes through a small
re-statement of Calico's rules to give the peers, AS numbers, passwords, route-reflector
roles, TTL security, source addresses, restart times, pools, blocks and communities the
rendered ``bird.cfg``/``bird6.cfg`` must hold. The rules are Calico's, read from its source
(projectcalico/calico ``confd/pkg/backends/calico/client.go`` ``updatePeersV1`` /
``nodeAsBGPPeers`` and ``bgp_processor.go`` ``processMeshPeers`` / ``buildPeerFromData`` /
``processIPPool``; ``template_funcs.go`` ``HashToIPv4`` / ``TruncateAndHashName``) and its
documentation (calico-bird.md), never from Myna's reading of the rendered files.

Data flow: ``Scenario`` (resources + what the Calico test did around them: node name,
secrets, workload endpoints, environment) -> ``expected(scenario, ipv6) -> ExpectedConfig``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_AS = 64512  # libcalico-go's default asNumber
NORMAL_ROUTE_PRIORITY = 1024
BIRD_INT_MAX = 2147483647
# confd's test harness gives kube-master these block affinities (tests/*_test.go,
# standardBlockAffinities); a pending one is neither blackholed nor advertised
STANDARD_BLOCKS = (
    ("10.0.0.0/30", ""),
    ("10.1.0.0/24", ""),
    ("10.2.0.1/32", ""),
    ("192.168.221.192/26", ""),
    ("192.168.221.64/26", "confirmed"),
    ("192.168.221.0/26", "pending"),
)


@dataclass(frozen=True)
class Workload:
    """A local BGP peer workload (confd's endpoint status: ``bgpPeerName`` and nets)."""

    peer_name: str
    addresses: tuple[str, ...]


@dataclass
class Scenario:
    """One rendering: the resources and what the Calico test set around them."""

    resources: list[dict[str, Any]]
    node: str = "kube-master"
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    workloads: tuple[Workload, ...] = ()
    router_id_hash: bool = False  # CALICO_ROUTER_ID=hash
    router_id: str | None = None  # CALICO_ROUTER_ID=<address>
    block_affinities: bool | None = True  # None: not recorded, blocks not checked


@dataclass(frozen=True)
class ExpectedPeer:
    """One ``protocol bgp`` confd renders, in Myna's terms."""

    name: str
    address: str
    port: int
    asn: int
    local_as: int | None
    passive: bool
    source_address: str | None
    password: str | None
    ttl_security: int  # hops, 0 when off
    multihop: int
    restart_time: int
    rr_client: bool
    cluster_id: str | None
    next_hop: str  # auto | keep | self
    allow_local_as: int
    import_calls: tuple[str, ...]  # the BGPFilter functions its import filter calls, in order
    export_calls: tuple[str, ...]
    internal: bool  # calico_export_to_bgp_peers(internal)


@dataclass
class ExpectedConfig:
    """What a rendered file must give."""

    router_id: str
    local_as: int
    listen_address: str
    listen_port: int
    peers: list[ExpectedPeer]
    pools_exported: set[str]
    pools_export_disabled: set[str]
    kernel_pool_actions: dict[str, str]
    service_cidrs: set[str]
    blocks: set[str] | None  # None: unknown
    blackholes: set[str] | None
    static_via: set[tuple[str, str]]
    communities: dict[str, set[str]]
    bgp_filters: set[str]
    debug: bool


class CalicoYamlLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it (go-yaml): YAML 1.1 booleans, but ``5663:12`` a string.

    PyYAML follows YAML 1.1 to the letter and reads ``5663:12`` as a base-60 number; the
    Go library Calico uses has no base-60 numbers.
    """


CalicoYamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CalicoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
CalicoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> list[dict[str, Any]]:
    """The documents of a multi-document Calico YAML text."""
    return [d for d in yaml.load_all(text, Loader=CalicoYamlLoader) if d]


def load_resources(path: Path) -> list[dict[str, Any]]:
    """The resources of one ``input.yaml``."""
    return load_yaml(path.read_text())


def merge(base: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``calicoctl apply`` of ``changes`` over ``base`` (same kind and name: replaced)."""
    merged = {(r["kind"], r["metadata"]["name"]): r for r in base}
    for resource in changes:
        merged[(resource["kind"], resource["metadata"]["name"])] = resource
    return list(merged.values())


def _label(value: object) -> str:
    # the YAML goes to Kubernetes through JSON: a YAML 1.1 boolean (yes) is "true"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Calico's label selectors, the forms the corpus uses."""
    selector = selector.strip()
    if selector == "all()":
        return True
    match = re.fullmatch(r"has\(([\w./-]+)\)", selector)
    if match:
        return match.group(1) in labels
    match = re.fullmatch(r"!has\(([\w./-]+)\)", selector)
    if match:
        return match.group(1) not in labels
    match = re.fullmatch(r"([\w./-]+)\s*(==|!=)\s*'([^']*)'", selector)
    if match:
        equal = labels.get(match.group(1)) == match.group(3)
        return equal if match.group(2) == "==" else not equal
    raise ValueError(f"selector form not modelled: {selector!r}")


def _seconds(duration: str) -> int:
    total = 0.0
    for amount, unit in re.findall(r"([\d.]+)(h|m|s|ms)", duration):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return round(total)


def hash_to_ipv4(name: str) -> str:
    """template.HashToIPv4: the first 4 bytes of SHA-256, kept out of 224/3."""
    first, second, third, fourth = hashlib.sha256(name.encode()).digest()[:4]
    if first > 223:
        first -= 32
    return f"{first}.{second}.{third}.{fourth}"


def truncate_filter_name(name: str) -> str:
    """template.TruncateAndHashName(name, 64 - len("bgp__importFilterV4"))."""
    max_length = 64 - len("bgp__importFilterV4")
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest().upper()[:16]
    return f"{name[: max_length - 17]}_{digest}"


@dataclass
class _Node:
    name: str
    labels: dict[str, str]
    ipv4: str
    ipv6: str
    asn: int | None
    cluster_id: str


@dataclass
class _V1Peer:
    """confd's v1 peering record (``bgpPeer``)."""

    ip: str
    asn: int
    port: int = 0
    cluster_id: str = ""
    password: str | None = None
    source: str = ""
    keep_next_hop: bool = False
    restart_time: str = ""
    calico_node: bool = False
    allow_local_as: int = 0
    ttl_security: int = 0
    filters: tuple[str, ...] = ()
    next_hop_mode: str = ""
    local_as: int = 0
    local_peer: bool = False
    reachable_by: str = ""


class _Datastore:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for resource in scenario.resources:
            by_kind.setdefault(resource["kind"], []).append(resource)
        configs = {
            r["metadata"]["name"]: r.get("spec") or {} for r in by_kind.get("BGPConfiguration", [])
        }
        self.global_config: dict[str, Any] = configs.get("default", {})
        self.node_configs = configs
        self.global_as = int(self.global_config.get("asNumber", DEFAULT_AS))
        self.global_port = int(self.global_config.get("listenPort", 0))
        self.nodes: dict[str, _Node] = {}
        for resource in by_kind.get("Node", []):
            bgp = (resource.get("spec") or {}).get("bgp") or {}
            labels = {k: _label(v) for k, v in (resource["metadata"].get("labels") or {}).items()}
            self.nodes[resource["metadata"]["name"]] = _Node(
                resource["metadata"]["name"],
                labels,
                str(bgp.get("ipv4Address", "")).split("/")[0],
                str(bgp.get("ipv6Address", "")).split("/")[0],
                int(bgp["asNumber"]) if "asNumber" in bgp else None,
                str(bgp.get("routeReflectorClusterID", "")),
            )
        self.peers = sorted(by_kind.get("BGPPeer", []), key=lambda r: r["metadata"]["name"])
        self.filters = {
            r["metadata"]["name"]: r.get("spec") or {} for r in by_kind.get("BGPFilter", [])
        }
        self.pools = [r.get("spec") or {} for r in by_kind.get("IPPool", [])]

    def node_port(self, name: str) -> int:
        spec = self.node_configs.get(f"node.{name}", {})
        if "listenPort" in spec:
            return int(spec["listenPort"])
        return self.global_port

    def node_as(self, name: str) -> int:
        asn = self.nodes[name].asn
        return self.global_as if asn is None else asn

    def nodes_matching(self, selector: str) -> list[str]:
        return sorted(
            n for n, node in self.nodes.items() if _selector_matches(selector, node.labels)
        )

    def node_ips(self) -> set[str]:
        return {ip for node in self.nodes.values() for ip in (node.ipv4, node.ipv6) if ip}

    def nodes_with_ip_and_as(self, ip: str, asn: int, port: int) -> list[str]:
        found = []
        for name, node in sorted(self.nodes.items()):
            if ip not in (node.ipv4, node.ipv6) or self.node_as(name) != asn:
                continue
            if port and self.node_port(name) and self.node_port(name) != port:
                continue
            found.append(name)
        return found

    def node_as_peers(self, name: str, v4: bool, v6: bool) -> list[_V1Peer]:
        node = self.nodes[name]
        peers = []
        for wanted, ip in ((v4, node.ipv4), (v6, node.ipv6)):
            if wanted and ip:
                peers.append(_V1Peer(ip, self.node_as(name), self.node_port(name), node.cluster_id))
        return peers

    def secret(self, reference: dict[str, Any] | None) -> str | None:
        if not reference or "secretKeyRef" not in reference:
            return None
        ref = reference["secretKeyRef"]
        return self.scenario.secrets.get((ref["name"], ref["key"]))


def _with_resource_fields(peers: list[_V1Peer], spec: dict[str, Any], store: _Datastore) -> None:
    """setPeerConfigFieldsFromV3Resource and the newer per-BGPPeer fields."""
    for peer in peers:
        peer.password = store.secret(spec.get("password"))
        if not peer.local_peer:
            peer.source = spec.get("sourceAddress") or "UseNodeIP"
        if "maxRestartTime" in spec:
            peer.restart_time = str(_seconds(str(spec["maxRestartTime"])))
        peer.ttl_security = int(spec.get("ttlSecurity", 0))
        peer.filters = tuple(spec.get("filters") or ())
        peer.next_hop_mode = str(spec.get("nextHopMode", ""))
        peer.local_as = int(spec.get("localASNumber", 0))
        peer.reachable_by = str(spec.get("reachableBy", ""))


def _split_peer_ip(text: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[(.+)\]:(\d+)", text) or re.fullmatch(r"([\d.]+):(\d+)", text)
    if match:
        return match.group(1), int(match.group(2))
    return text, 0


def _v1_peerings(store: _Datastore) -> dict[tuple[str, str, int], _V1Peer]:
    """updatePeersV1: (node or "" for global, peer IP, port) -> peering."""
    peerings: dict[tuple[str, str, int], _V1Peer] = {}

    def emit(node: str, peer: _V1Peer) -> None:
        key = (node, peer.ip, peer.port)
        if key in peerings or (node and ("", peer.ip, peer.port) in peerings):
            return
        peerings[key] = peer

    for global_pass in (True, False):
        for resource in store.peers:
            spec = resource.get("spec") or {}
            if "localWorkloadSelector" in spec:
                continue
            if global_pass != (not spec.get("nodeSelector") and not spec.get("node")):
                continue
            local_nodes = (
                store.nodes_matching(spec["nodeSelector"])
                if spec.get("nodeSelector")
                else ([spec["node"]] if spec.get("node") else [])
            )
            peers: list[_V1Peer] = []
            if spec.get("peerSelector"):
                for name in store.nodes_matching(spec["peerSelector"]):
                    peers.extend(store.node_as_peers(name, True, True))
            else:
                host, port = _split_peer_ip(str(spec.get("peerIP", "")))
                if not host:
                    continue
                asn = int(spec.get("asNumber", 0))
                if port == 0:
                    names = store.nodes_with_ip_and_as(host, asn or store.global_as, 0)
                    if names:
                        port = store.node_port(names[0])
                peers.append(
                    _V1Peer(
                        host,
                        asn,
                        port,
                        keep_next_hop=bool(spec.get("keepOriginalNextHop", False)),
                        calico_node=host in store.node_ips(),
                        allow_local_as=int(spec.get("numAllowedLocalASNumbers", 0)),
                    )
                )
            _with_resource_fields(peers, spec, store)
            for peer in peers:
                if global_pass:
                    emit("", peer)
                else:
                    for node in local_nodes:
                        emit(node, peer)
    for resource in store.peers:
        spec = resource.get("spec") or {}
        if "localWorkloadSelector" in spec or spec.get("reversePeering") == "Manual":
            continue
        if spec.get("peerSelector"):
            local_nodes = store.nodes_matching(spec["peerSelector"])
            v4 = v6 = True
        else:
            host, port = _split_peer_ip(str(spec.get("peerIP", "")))
            local_nodes = store.nodes_with_ip_and_as(
                host, int(spec.get("asNumber", 0)) or store.global_as, port
            )
            v6 = ":" in host
            v4 = not v6
        if not local_nodes:
            continue
        if spec.get("nodeSelector"):
            peer_nodes = store.nodes_matching(spec["nodeSelector"])
        elif spec.get("node"):
            peer_nodes = [spec["node"]]
        else:
            peer_nodes = store.nodes_matching("all()")
        peers = [p for name in peer_nodes for p in store.node_as_peers(name, v4, v6)]
        _with_resource_fields(peers, spec, store)
        for peer in peers:
            for node in local_nodes:
                emit(node, peer)
    return peerings


def _local_workload_peerings(store: _Datastore) -> dict[tuple[str, str, int], _V1Peer]:
    """Local BGP peers: the workloads on this node that name a BGPPeer."""
    peerings: dict[tuple[str, str, int], _V1Peer] = {}
    for resource in store.peers:
        spec = resource.get("spec") or {}
        if "localWorkloadSelector" not in spec:
            continue
        node = spec.get("node", "")
        for workload in store.scenario.workloads:
            if workload.peer_name != resource["metadata"]["name"]:
                continue
            for address in workload.addresses:
                peer = _V1Peer(address, int(spec.get("asNumber", 0)), local_peer=True)
                _with_resource_fields([peer], spec, store)
                peerings[(node, address, 0)] = peer
    return peerings


def _filter_calls(
    store: _Datastore, names: tuple[str, ...], direction: str, ipv6: bool, same_as: bool
) -> tuple[str, ...]:
    suffix = "V6" if ipv6 else "V4"
    calls = []
    for name in names:
        rules = store.filters.get(name, {}).get(f"{direction}{suffix}") or []
        if not rules:
            continue
        function = f"bgp_{truncate_filter_name(name)}_{direction}Filter{suffix}"
        if any(rule.get("peerType") for rule in rules):
            function += f"({'true' if same_as else 'false'})"
        calls.append(function)
    return tuple(calls)


def _render_peer(
    store: _Datastore,
    v1: _V1Peer,
    kind: str,
    node_ip: str,
    node_as: int,
    cluster_id: str,
    ipv6: bool,
) -> ExpectedPeer | None:
    if v1.ip == node_ip:
        return None
    name = f"{kind}_{v1.ip.replace(':' if ipv6 else '.', '_')}"
    if v1.port:
        name += f"_port_{v1.port}"
    effective_as = v1.local_as or node_as
    same_as = v1.asn == effective_as
    next_hop = {"Self": "self", "Keep": "keep"}.get(v1.next_hop_mode, "auto")
    if v1.keep_next_hop and not same_as:
        next_hop = "keep"
    rr_client = bool(same_as and cluster_id and v1.cluster_id != cluster_id)
    passive = v1.local_peer
    if kind in ("Global", "Local_Workload") and not passive:
        passive = v1.calico_node and v1.ip > node_ip
    hops = v1.ttl_security
    return ExpectedPeer(
        name=name,
        address=v1.ip,
        port=v1.port or 179,
        asn=v1.asn,
        local_as=v1.local_as or None,
        passive=passive,
        source_address=node_ip if v1.source == "UseNodeIP" else None,
        password=v1.password,
        ttl_security=hops,
        multihop=hops or 64,
        restart_time=int(v1.restart_time) if v1.restart_time else 120,
        rr_client=rr_client,
        cluster_id=cluster_id if rr_client else None,
        next_hop=next_hop,
        allow_local_as=v1.allow_local_as,
        import_calls=_filter_calls(store, v1.filters, "import", ipv6, same_as),
        export_calls=_filter_calls(store, v1.filters, "export", ipv6, same_as),
        internal=same_as,
    )


def _mesh_peers(store: _Datastore, node: _Node, node_ip: str, ipv6: bool) -> list[ExpectedPeer]:
    config = store.global_config
    if node.cluster_id or not config.get("nodeToNodeMeshEnabled", True):
        return []
    restart = (
        _seconds(str(config["nodeMeshMaxRestartTime"]))
        if "nodeMeshMaxRestartTime" in config
        else 120
    )
    password = store.secret(config.get("nodeMeshPassword"))
    node_as = store.node_as(node.name)
    peers = []
    for other in store.nodes.values():
        peer_ip = other.ipv6 if ipv6 else other.ipv4
        if not peer_ip or peer_ip == node_ip or other.cluster_id:
            continue
        port = store.node_port(other.name)
        asn = store.node_as(other.name)
        peers.append(
            ExpectedPeer(
                name=f"Mesh_{peer_ip.replace(':' if ipv6 else '.', '_')}",
                address=peer_ip,
                port=port or 179,
                asn=asn,
                local_as=None,
                passive=peer_ip > node_ip,
                source_address=node_ip,
                password=password,
                ttl_security=0,
                multihop=64,
                restart_time=restart,
                rr_client=False,
                cluster_id=None,
                next_hop="auto",
                allow_local_as=0,
                import_calls=(),
                export_calls=(),
                internal=asn == node_as,
            )
        )
    return peers


def _family(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).version


def _pools(
    store: _Datastore, ipv6: bool, has_local_subnet: bool
) -> tuple[set[str], set[str], dict[str, str]]:
    """processIPPool: exported, export-disabled, and the kernel filter's action per pool."""
    mode = store.global_config.get("programClusterRoutes", "EnabledNoEncapOnly")
    program_ipip, program_no_encap = {
        "Disabled": (False, False),
        "Enabled": (True, True),
        "EnabledIPIPOnly": (True, False),
    }.get(mode, (False, True))
    exported: set[str] = set()
    disabled: set[str] = set()
    kernel: dict[str, str] = {}
    for pool in store.pools:
        cidr = str(pool["cidr"])
        if _family(cidr) != (6 if ipv6 else 4):
            continue
        canonical = str(ipaddress.ip_network(cidr, strict=False))
        vxlan = pool.get("vxlanMode") in ("Always", "CrossSubnet")
        ipip_mode = pool.get("ipipMode", "Never")
        ipip = ipip_mode in ("Always", "CrossSubnet")
        programmed = not vxlan and (program_ipip if ipip else program_no_encap)
        if pool.get("disableBGPExport"):
            disabled.add(canonical)
        else:
            exported.add(canonical)
        if ipv6:
            if not programmed:
                kernel[canonical] = "reject"
        elif has_local_subnet:
            if not programmed:
                kernel[canonical] = "reject"
            elif ipip_mode == "Always":
                kernel[canonical] = "ipip"
            elif ipip_mode == "CrossSubnet":
                kernel[canonical] = "ipip-cross-subnet"
            else:
                kernel[canonical] = "accept"
    return exported, disabled, kernel


def _communities(store: _Datastore, node: str, ipv6: bool) -> dict[str, set[str]]:
    node_spec = store.node_configs.get(f"node.{node}", {})
    config = node_spec if "prefixAdvertisements" in node_spec else store.global_config
    named = {c["name"]: str(c["value"]) for c in config.get("communities", []) or []}
    named.update(
        {c["name"]: str(c["value"]) for c in store.global_config.get("communities", []) or []}
    )
    found: dict[str, set[str]] = {}
    for advertisement in config.get("prefixAdvertisements", []) or []:
        cidr = str(advertisement.get("cidr", ""))
        if not cidr or _family(cidr) != (6 if ipv6 else 4):
            continue
        values = {named.get(str(c), str(c)) for c in advertisement.get("communities", [])}
        if values:
            found[str(ipaddress.ip_network(cidr, strict=False))] = values
    return found


def expected(scenario: Scenario, ipv6: bool) -> ExpectedConfig:
    """What confd renders into bird.cfg (bird6.cfg with ``ipv6``) for ``scenario``."""
    store = _Datastore(scenario)
    node = store.nodes[scenario.node]
    node_ip = node.ipv6 if ipv6 else node.ipv4
    node_as = store.node_as(node.name)
    peerings = _v1_peerings(store)
    peers = _mesh_peers(store, node, node_ip, ipv6)
    for (owner, ip, _port), v1 in sorted(peerings.items()):
        if (":" in ip) != ipv6 or owner not in ("", node.name):
            continue
        kind = "Global" if owner == "" else "Node"
        rendered = _render_peer(store, v1, kind, node_ip, node_as, node.cluster_id, ipv6)
        if rendered is not None:
            peers.append(rendered)
    for (owner, ip, _port), v1 in sorted(_local_workload_peerings(store).items()):
        if (":" in ip) != ipv6 or owner not in ("", node.name):
            continue
        rendered = _render_peer(
            store, v1, "Local_Workload", node_ip, node_as, node.cluster_id, ipv6
        )
        if rendered is not None:
            peers.append(rendered)
    peers.sort(key=lambda p: p.name)
    exported, disabled, kernel = _pools(store, ipv6, bool(node.ipv4))
    config = store.global_config
    services = {
        str(ipaddress.ip_network(entry["cidr"], strict=False))
        for key in ("serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs")
        for entry in config.get(key, []) or []
        if entry and entry.get("cidr") and _family(entry["cidr"]) == (6 if ipv6 else 4)
    }
    blocks: set[str] | None = None
    if scenario.block_affinities is not None:
        blocks = set()
        if scenario.block_affinities and not ipv6 and node.name == "kube-master":
            blocks = {cidr for cidr, state in STANDARD_BLOCKS if state != "pending"}
    # bird_aggr: a static route to each rendered peer that says how it is reached
    static_via = {
        (f"{v1.ip}/{128 if ipv6 else 32}", v1.reachable_by)
        for (owner, ip, _port), v1 in peerings.items()
        if v1.reachable_by and owner in ("", node.name) and (":" in ip) == ipv6 and ip != node_ip
    }
    node_spec = store.node_configs.get(f"node.{node.name}", {})
    log_level = str(node_spec.get("logSeverityScreen", config.get("logSeverityScreen", "Info")))
    listen_address = "::" if ipv6 else "0.0.0.0"
    if config.get("bindMode") == "NodeIP" and node_ip:
        listen_address = node_ip
    bgp_filters = {
        name
        for name, spec in store.filters.items()
        if any(spec.get(f"{d}{'V6' if ipv6 else 'V4'}") for d in ("import", "export"))
    }
    return ExpectedConfig(
        router_id=(
            hash_to_ipv4(node.name)
            if scenario.router_id_hash
            else (scenario.router_id or node.ipv4)
        ),
        local_as=node_as,
        listen_address=listen_address,
        listen_port=store.node_port(node.name) or 179,
        peers=peers,
        pools_exported=exported,
        pools_export_disabled=disabled,
        kernel_pool_actions=kernel,
        service_cidrs=services,
        blocks=blocks,
        # bird_aggr blackholes every block but a /32
        blackholes=None if blocks is None else {b for b in blocks if not b.endswith("/32")},
        static_via=static_via,
        communities=_communities(store, node.name, ipv6),
        bgp_filters={truncate_filter_name(name) for name in bgp_filters},
        debug=log_level.lower() == "debug",
    )
