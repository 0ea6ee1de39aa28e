"""``bird.cfg`` for the benchmarks' Myna rows, rendered the way calico-node's confd renders it.

Role: the benchmarks' ``myna-birdcfg`` rows (``bench.bird_rows``) run the Myna daemon from
the three files confd writes for a Calico node (``bird.cfg`` including ``bird_aggr.cfg`` and
``bird_ipam.cfg``), so that what they time is Myna with Calico's own filters: the
``calico_kernel_programming`` kernel export filter, ``calico_export_to_bgp_peers`` with
``calico_aggr``, and each peer's inline import filter (``preference = 200`` for high local
preference) and export filter (``krt_metric`` <-> ``bgp_local_pref``). The text follows
Calico's templates as rendered at projectcalico/calico 87c15906 (the files in
``/work/shared/calico-confd-corpus``), statement for statement and in the same order;
``tests/test_bench_calico_bird_cfg.py`` compares the output token by token with the corpus
files of a route reflector (``explicit_peering/keepnexthop``) and of mesh nodes
(``mesh/ipip-off``, ``mesh/ipip-always``).

Data flow: a ``CalicoNode`` (the node's address and subnet, AS, its ``protocol bgp`` list as
confd's ``bgp_processor`` hands them over, the IP pools, the node's block affinities and
``programClusterRoutes``) -> ``render`` -> file name -> text; ``write`` puts them into a
directory, from where ``bird.cfg``'s includes resolve. ``reflector_peers`` and
``mesh_peers`` build the peer lists for the two roles the benchmarks need: a route reflector
(``Node_<ip>`` peerings with ``rr client; rr cluster id``, as confd gives a node with a
``routeReflectorClusterID`` for the nodes a BGPPeer pairs it with) and a node of the
node-to-node mesh (``Mesh_<ip>``, passive towards a higher address, compared as text as confd
does). ``covering_pools`` gives pools that hold a benchmark's prefixes and leave the session
subnets out (Calico's pools never hold node addresses; the direct protocol's connected routes
would otherwise be exported as in-pool routes).

What is not rendered (nothing the benchmarks use): BGPFilters, communities, service and static
routes, passwords, ports, local AS, TTL security, IPv6 (``bird6.cfg``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BIRD_INT_MAX = 2147483647  # confd's BirdIntMaxValue
NORMAL_ROUTE_PRIORITY = 1024  # BGPConfiguration ipv4NormalRoutePriority's default
OVERRIDE_PREFERENCE = 200
FILES = ("bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg")
# BGPConfiguration.programClusterRoutes -> (BIRD programs IPIP pools, no-encapsulation pools)
PROGRAM_CLUSTER_ROUTES = {
    "Disabled": (False, False),
    "Enabled": (True, True),
    "EnabledIPIPOnly": (True, False),
    "EnabledNoEncapOnly": (False, True),
}

_DIRECT_COMMENT = """\
  interface -"cali*", -"kube-ipvs*", "*"; # Exclude cali* and kube-ipvs* but
                                          # include everything else.  In
                                          # IPVS-mode, kube-proxy creates a
                                          # kube-ipvs0 interface. We exclude
                                          # kube-ipvs0 because this interface
                                          # gets an address for every in use
                                          # cluster IP. We use static routes
                                          # for when we legitimately want to
                                          # export cluster IPs."""
_KERNEL = """\
# Configure synchronization between routing tables and kernel.
protocol kernel from kernel_template {
  export filter calico_kernel_programming; # Default is export none
  graceful restart;  # Turn on graceful restart to reduce potential flaps in
                     # routes when reloading BIRD configuration.  With a full
                     # automatic mesh, there is no way to prevent BGP from
                     # flapping since multiple nodes update their BGP
                     # configuration at the same time, GR is not guaranteed to
                     # work correctly in this scenario.
  merge paths on;    # Allow export multipath routes (ECMP)
}"""


@dataclass(frozen=True)
class Pool:
    """An IPPool: its CIDR and encapsulation (``ipip`` Always, ``none``, ``vxlan`` Always)."""

    cidr: str
    encapsulation: str = "none"


@dataclass(frozen=True)
class BgpPeer:
    """One ``protocol bgp`` as confd hands it to the template."""

    name: str
    address: str
    as_number: int
    passive: bool = False
    rr_cluster_id: str = ""  # set: this node reflects to the peer (``rr client``)
    next_hop_keep: bool = False


@dataclass(frozen=True)
class CalicoNode:
    """What confd renders one node's IPv4 files from."""

    address: str  # ip_addr_v4
    subnet: str  # the network of the node's ipv4Address (IPIP CrossSubnet's test)
    as_number: int
    peers: tuple[BgpPeer, ...]
    pools: tuple[Pool, ...]
    blocks: tuple[str, ...] = ()  # confirmed block affinities
    program_cluster_routes: str = "EnabledNoEncapOnly"
    log_severity: str = "Info"


def protocol_name(kind: str, address: str) -> str:
    """confd's name of a peering: ``Mesh_198_18_0_2``, ``Node_...``, ``Global_...``."""
    return f"{kind}_{address.replace('.', '_')}"


def reflector_peers(
    node_address: str, clients: Iterable[str], as_number: int, cluster_id: str
) -> tuple[BgpPeer, ...]:
    """A route reflector's peerings with its clients (Calico nodes without a cluster id)."""
    return tuple(
        BgpPeer(protocol_name("Node", a), a, as_number, rr_cluster_id=cluster_id)
        for a in sorted(clients, key=lambda a: protocol_name("Node", a))
        if a != node_address
    )


def mesh_peers(node_address: str, others: Iterable[str], as_number: int) -> tuple[BgpPeer, ...]:
    """A mesh node's peerings: every other node, passive towards a higher address (as text)."""
    return tuple(
        BgpPeer(protocol_name("Mesh", a), a, as_number, passive=a > node_address)
        for a in sorted(others, key=lambda a: protocol_name("Mesh", a))
        if a != node_address
    )


def covering_pools(
    first: str, last: str, encapsulation: str, leave_out: Iterable[str] = ()
) -> tuple[Pool, ...]:
    """The fewest CIDRs holding every address from ``first`` to ``last``, as pools.

    ``leave_out`` networks must not overlap them (the session subnets).
    """
    cidrs = list(
        ipaddress.summarize_address_range(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last))
    )
    for net in map(ipaddress.IPv4Network, leave_out):
        clash = [c for c in cidrs if c.overlaps(net)]
        if clash:
            raise ValueError(f"pool {clash[0]} would hold {net}")
    return tuple(Pool(str(c), encapsulation) for c in cidrs)


# -- the three files ------------------------------------------------------------------------


def _import_filter() -> list[str]:
    return [
        "  import filter {",
        "    if (defined(bgp_local_pref)&&(bgp_local_pref > "
        f"{BIRD_INT_MAX - NORMAL_ROUTE_PRIORITY})) then",
        f"      preference = {OVERRIDE_PREFERENCE};",
        "    accept;",
        "  };",
    ]


def _export_filter(internal: bool) -> list[str]:
    return [
        "  export filter {",
        "    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {",
        f"      krt_metric = {BIRD_INT_MAX} - bgp_local_pref;",
        "    } else {",
        f"      if (!defined(krt_metric)) then {{ krt_metric = {NORMAL_ROUTE_PRIORITY}; }}",
        f"      bgp_local_pref = {BIRD_INT_MAX} - krt_metric;",
        "    }",
        f"    calico_export_to_bgp_peers({'true' if internal else 'false'});",
        "    reject;",
        "  };  # Only want to export routes for workloads.",
    ]


def bird_cfg(node: CalicoNode) -> str:
    """``bird.cfg``: kernel, device and direct protocols, the BGP template and peers."""
    severity = node.log_severity.lower()
    states = "  debug all;" if severity == "debug" else "  debug { states };"
    out = ["function apply_communities ()", "{", "}"]
    out += ["template kernel kernel_template {"]
    out += ["  learn;             # Learn all alien routes from the kernel"]
    out += ["  persist;           # Don't remove routes on bird shutdown"]
    out += ["  scan time 2;       # Scan kernel routing table every 2 seconds"]
    out += ["  import all;", "}", "template direct direct_template {"]
    out += [states] if severity != "none" else []
    out += [_DIRECT_COMMENT, "}", "# Generated by confd"]
    out += ['include "bird_aggr.cfg";', 'include "bird_ipam.cfg";']
    out += [f"router id {node.address};", _KERNEL, "# Watch interface up/down events."]
    out += ["protocol device {", *([states] if severity != "none" else [])]
    out += ["  scan time 2;    # Scan interfaces every 2 seconds", "}"]
    out += ["protocol direct from direct_template {", "}", "# Template for all BGP clients"]
    out += ["template bgp bgp_template {"]
    if severity == "debug":
        out.append("  debug all;")
    elif severity != "none":
        out.append("  debug { states, routes, filters, events };")
    out += [
        '  description "Connection to BGP peer";',
        f"  local as {node.as_number};",
        "  gateway recursive; # This should be the default, but just in case.",
        "  add paths on;",
        "  graceful restart;  # See comment in kernel section about graceful restart.",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "}",
        "# -------------- BGP Filters ------------------",
        "# No v4 BGPFilters configured",
        "# BGP Protocol Configurations",
    ]
    for peer in node.peers:
        out += [f"protocol bgp {peer.name} from bgp_template {{"]
        out += [f"  neighbor {peer.address} as {peer.as_number};"]
        out += [f"  source address {node.address};  # The local address we use for the TCP"
                " connection"]  # fmt: skip
        out += ["  ttl security off;", "  multihop;", *_import_filter()]
        out += _export_filter(peer.as_number == node.as_number)
        if peer.passive:
            out.append("  passive on;")
        if peer.rr_cluster_id:
            out += ["  rr client;", f"  rr cluster id {peer.rr_cluster_id};"]
        if peer.next_hop_keep:
            out.append("  next hop keep;")
        out.append("}")
    return "\n".join(out)


def _block_key(cidr: str) -> str:
    return cidr.replace("/", "-")  # confd lists the affinities by their datastore keys


def bird_aggr_cfg(node: CalicoNode) -> str:
    """``bird_aggr.cfg``: the node's blocks as static blackholes and ``calico_aggr``."""
    blocks = sorted(node.blocks, key=_block_key)
    out = ["# Generated by confd", "template static static_template {"]
    out.append("   # IP blocks for this host.")
    out += [f"   route {b} blackhole;" for b in blocks if not b.endswith("/32")]
    out += ["}", "protocol static from static_template {", "}"]
    out += ["# Aggregation of routes on this host; export the block, nothing beneath it."]
    out += ["function calico_aggr ()", "{"]
    for block in blocks:
        out += [
            f"      # Block {block} is confirmed",
            f"      if ( net = {block} ) then {{ accept; }}",
            f"      if ( net ~ {block} && krt_metric < {NORMAL_ROUTE_PRIORITY} ) then"
            " { accept; }",
            f"      if ( net ~ {block} ) then {{ reject; }}",
        ]
    out.append("}")
    return "\n".join(out)


def _pool_statement(node: CalicoNode, pool: Pool, kernel: bool) -> tuple[str, str]:
    """(verdict, statement) of confd's ``processIPPool`` for the kernel or the BGP filter."""
    program_ipip, program_no_encap = PROGRAM_CLUSTER_ROUTES[node.program_cluster_routes]
    extra, comment = "", ""
    if pool.encapsulation == "vxlan":
        verdict = "reject" if kernel else "accept"
        comment = "VXLAN routes are handled by Felix." if kernel else ""
    elif not kernel or (program_ipip if pool.encapsulation == "ipip" else program_no_encap):
        verdict = "accept"
        if kernel and pool.encapsulation == "ipip":
            extra = 'krt_tunnel="tunl0"; '
    else:
        verdict, comment = "reject", "Cluster routes are handled by Felix."
    statement = f"  if (net ~ {pool.cidr}) then {{ {extra}{verdict}; }}"
    return verdict, f"{statement} # {comment}" if comment else statement


def bird_ipam_cfg(node: CalicoNode) -> str:
    """``bird_ipam.cfg``: ``calico_export_to_bgp_peers`` and ``calico_kernel_programming``."""
    program_ipip = PROGRAM_CLUSTER_ROUTES[node.program_cluster_routes][0]
    tunnels = ["*.cali", "*.calico", *(() if program_ipip else ("tunl0",))]
    export = sorted(s for _v, s in (_pool_statement(node, p, False) for p in node.pools))
    kernel = sorted(s for _v, s in (_pool_statement(node, p, True) for p in node.pools))
    out = ["# Generated by confd", "function reject_local_routes () {"]
    out += ["  # Don't export local routes learned via BPF as they should never leave the node."]
    out += ["  if (defined(ifname)) then {", '     if (ifname ~ "bpf*.cali") then {']
    out += ["        reject;", "     }", "  }", "}"]
    out += ["function calico_export_to_bgp_peers(bool internal_peer) {"]
    out += ["  # filter code terminates when it calls `accept;` or `reject;`,"]
    out += ["  if (internal_peer) then {", "    if (defined(ifname)) then {"]
    out += ["      if (" + " || ".join(f'(ifname ~ "{t}")' for t in tunnels) + ") then {"]
    out += ["        reject;", "      }", "    }", "  }"]
    out += ["  reject_local_routes();", "  apply_communities();", "  calico_aggr();", *export]
    out += ["}", "filter calico_kernel_programming {"]
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
        *kernel,
        "  accept;",
        "}",
    ]
    return "\n".join(out)


def render(node: CalicoNode) -> dict[str, str]:
    """The node's three IPv4 files: name -> text."""
    return {
        "bird.cfg": bird_cfg(node),
        "bird_aggr.cfg": bird_aggr_cfg(node),
        "bird_ipam.cfg": bird_ipam_cfg(node),
    }


def write(node: CalicoNode, directory: Path) -> Path:
    """Write ``render``'s files into ``directory``; the path of ``bird.cfg``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render(node).items():
        (directory / name).write_text(text + "\n")
    return directory / "bird.cfg"
