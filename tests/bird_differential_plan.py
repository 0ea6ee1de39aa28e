"""What the BIRD 1.6 / Myna differential test runs and compares, without any namespace.

Role: ``test_bird_differential.py`` runs stock BIRD 1.6 and Myna on the same Calico-rendered
``bird.cfg``/``bird6.cfg`` (``/work/shared/calico-confd-corpus``), each in its own network
namespace with the same neighbours and kernel routes, and compares what they do.
``bird_differential_harness.py`` builds the namespaces and runs the processes; this module
holds everything that needs no network:

* ``TranslationMap`` and ``load_scenario``: the corpus files with every address moved into
  198.18.0.0/15 (IPv6: 2001:db8::/32) by translation. Every outermost prefix the files name
  (and the node's link subnet, made up around the node and the peers it shares a subnet with)
  gets its own aligned block of the same size, so lengths, containment and host offsets all
  stay as they were; a file whose prefixes do not fit is refused (the test picks others).
  ``Scenario`` is what the bed needs from the mapped files: the node's address, its link
  subnet, a gateway and an unused on-link address on it, every BGP neighbour (``PeerSpec``:
  address, port, ASes, passive, password, TTL security, on-link or behind the gateway).
* ``peer_routes`` and ``kernel_routes``: what the neighbours announce (ExaBGP ``route``
  lines: attributes iBGP and eBGP peers send, next hops on-link, behind the gateway and
  unresolvable, prefixes several peers announce alike or differently) and what the node's
  kernel holds before the daemon starts (Felix's blackholes and workload routes, protocol 80
  and 3, routes via ``tunl0`` onlink and ``vxlan.calico``, static and unreachable routes),
  all around the prefixes the files name.
* ``peer_changes`` and ``kernel_changes``: the second phase, once both daemons have settled:
  a peer takes over the best path of a prefix (its kernel metric changes), withdraws one
  path of a multipath route and a route only it sent; a workload route and a route via the
  gateway leave the kernel, Felix adds a block.

Data flow: corpus folder -> ``load_scenario`` (mapped files, ``Scenario``) -> the harness
writes the files, configures ExaBGP from ``Scenario.peers`` and ``peer_routes``, runs
``ip -batch`` with ``kernel_routes`` -> observations of both daemons -> ExaBGP API commands
from ``peer_changes`` and ``ip -batch`` with ``kernel_changes`` -> observations again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bgpd.bird_config import config_model as m
from bgpd.bird_config.config_parser import read_bird_config

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "calico-confd-corpus"

V4_SPACE = ipaddress.IPv4Network("198.18.0.0/15")
V6_SPACE = ipaddress.IPv6Network("2001:db8::/32")
# Never handed out by the map: the test bed's bridge subnet, and the region this module takes
# addresses for what the files do not name (outside prefixes, peers' router ids, a next hop
# nothing reaches).
V4_RESERVED = (ipaddress.IPv4Network("198.18.0.0/24"),)
V6_RESERVED = (ipaddress.IPv6Network("2001:db8::/64"),)
V4_EXTRA = ipaddress.IPv4Network("198.18.240.0/20")
V6_EXTRA = ipaddress.IPv6Network("2001:db8:ffff::/48")

# Literal addresses and prefixes in BIRD's language (as tests/bird_filter_bench.py finds them).
_V4_LITERAL = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\w.])")
_V6_LITERAL = re.compile(
    r"(?<![\w:.])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(/\d{1,3})?(?![\w:])"
)
_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"\s*;', re.MULTILINE)

# Interfaces of the node besides eth0 (veth pairs: this kernel has no dummy devices): a
# workload's, and the IPIP and VXLAN devices Calico's filters name.
WORKLOAD_IF = "cali1a2b3c4d"
TUNNEL_IF = "tunl0"
VXLAN_IF = "vxlan.calico"
NODE_INTERFACES = (WORKLOAD_IF, TUNNEL_IF, VXLAN_IF)


# --- the address map ----------------------------------------------------------------------------


def _network(text: str, ipv6: bool) -> Network | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return network if (network.version == 6) == ipv6 else None


def literal_networks(text: str, ipv6: bool) -> set[Network]:
    """The addresses (as host prefixes) and prefixes of one family written in ``text``."""
    pattern = _V6_LITERAL if ipv6 else _V4_LITERAL
    bits = 128 if ipv6 else 32
    found = set()
    for match in pattern.finditer(text):
        network = _network(match.group(1) + (match.group(2) or f"/{bits}"), ipv6)
        if network is not None:
            found.add(network)
    return found


def subnet_of(inner: Network, outer: Network) -> bool:
    """``inner`` lies in ``outer`` (False across families)."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def overlaps(a: Network, b: Network) -> bool:
    """``a`` and ``b`` share an address."""
    return subnet_of(a, b) or subnet_of(b, a)


def _exclude(blocks: list[Network], hole: Network) -> list[Network]:
    kept: list[Network] = []
    for block in blocks:
        if not overlaps(block, hole):
            kept.append(block)
        elif subnet_of(block, hole):
            continue
        else:
            kept.extend(_split_around(block, hole))
    return kept


def _split_around(block: Network, hole: Network) -> list[Network]:
    """``block`` without ``hole`` (which lies inside it), as prefixes."""
    if isinstance(block, ipaddress.IPv4Network) and isinstance(hole, ipaddress.IPv4Network):
        return list(block.address_exclude(hole))
    if isinstance(block, ipaddress.IPv6Network) and isinstance(hole, ipaddress.IPv6Network):
        return list(block.address_exclude(hole))
    return [block]


class TranslationMap:
    """Every outermost network of ``networks`` moved, by translation, into the test range.

    Anything inside an outermost network (a named prefix, or any address in it) has an image;
    lengths, containment and offsets are kept. ValueError if they do not fit.
    """

    def __init__(self, networks: Iterable[Network], ipv6: bool) -> None:
        self.ipv6 = ipv6
        space: Network = V6_SPACE if ipv6 else V4_SPACE
        reserved = (*V6_RESERVED, V6_EXTRA) if ipv6 else (*V4_RESERVED, V4_EXTRA)
        free: list[Network] = [space]
        for hole in reserved:
            free = _exclude(free, hole)
        tops: list[Network] = []
        for network in sorted(set(networks), key=lambda n: (n.prefixlen, n.network_address)):
            if not any(subnet_of(network, top) for top in tops):
                tops.append(network)
        self.moves: list[tuple[Network, Network]] = []
        for top in tops:
            candidates = [block for block in free if block.prefixlen <= top.prefixlen]
            if not candidates:
                raise ValueError(f"{top} does not fit into the test range by translation")
            block = max(candidates, key=lambda b: (b.prefixlen, -int(b.network_address)))
            image = ipaddress.ip_network(f"{block.network_address}/{top.prefixlen}")
            free = _exclude(free, image)
            self.moves.append((top, image))

    def address(self, address: Address) -> Address:
        """The image of ``address`` (KeyError if no named network holds it)."""
        for top, image in self.moves:
            if address in top:
                offset = int(address) - int(top.network_address)
                return ipaddress.ip_address(int(image.network_address) + offset)
        raise KeyError(f"{address} is in no network the map moves")

    def network(self, network: Network) -> Network:
        """The image of ``network``."""
        base = self.address(network.network_address)
        return ipaddress.ip_network(f"{base}/{network.prefixlen}")

    def rewrite(self, text: str) -> str:
        """``text`` with every literal of this family replaced by its image."""
        pattern = _V6_LITERAL if self.ipv6 else _V4_LITERAL
        bits = 128 if self.ipv6 else 32

        def replace(match: re.Match[str]) -> str:
            network = _network(match.group(1) + (match.group(2) or f"/{bits}"), self.ipv6)
            if network is None:
                return match.group(0)
            if match.group(2) is None:
                return self.address(ipaddress.ip_address(match.group(1))).compressed
            # the address as written (BIRD allows host bits in some places), moved
            moved = self.address(ipaddress.ip_address(match.group(1)))
            return f"{moved.compressed}{match.group(2)}"

        return pattern.sub(replace, text)


# --- a scenario ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    """One ``protocol bgp`` of the file, as the neighbour that plays its peer sees it."""

    protocol: str
    address: str  # the neighbour's address (mapped)
    port: int  # where the node connects to it (the protocol's ``neighbor ... port``)
    peer_as: int  # the neighbour's AS
    node_as: int  # the node's AS on this session
    node_passive: bool
    password: str | None
    ttl_security: bool
    on_link: bool  # on the node's subnet, else behind the gateway
    router_id: str
    rr_client: bool
    cluster_id: str  # the node's cluster id on this session (``rr cluster id``, else router id)

    @property
    def internal(self) -> bool:
        """iBGP."""
        return self.peer_as == self.node_as


@dataclass
class Scenario:
    """One corpus file, mapped, and what the bed needs to run it."""

    relative: str  # e.g. "mesh/ipip-off/bird.cfg"
    ipv6: bool
    files: dict[str, str]  # file name -> mapped text (the main file and its includes)
    router_id: str
    node: str  # the node's address, on eth0
    link: Network  # the node's subnet
    gateway: str  # on the link, held by the peers' namespace: the way to remote peers
    third_party: str  # on the link, held by nobody: a next hop another router would be
    unresolvable: str  # an address no route covers
    listen_address: str | None
    listen_port: int
    peers: list[PeerSpec]
    blocks: list[Network]  # the static protocol's blackholes: the node's blocks
    prefixes: list[Network]  # every other prefix (and non-node host) the files name
    extras: list[Network] = field(default_factory=list)  # prefixes no file names

    @property
    def main(self) -> str:
        """The main file's name."""
        return Path(self.relative).name

    @property
    def bits(self) -> int:
        """Address length of the family."""
        return 128 if self.ipv6 else 32


def corpus_files(main: Path) -> dict[str, str]:
    """The main file and what it includes, by name (a missing include reads as empty)."""
    files = {main.name: main.read_text()}
    for name in _INCLUDE.findall(files[main.name]):
        path = main.parent / name
        files[name] = path.read_text() if path.exists() else ""
    return files


@contextlib.contextmanager
def _cwd(directory: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def read_config(directory: Path, name: str, ipv6: bool) -> m.BirdConfig:
    """A configuration read the way BIRD reads it: includes relative to its folder."""
    with _cwd(directory):
        return read_bird_config(name, ipv6=ipv6)


def _ip(value: int, ipv6: bool) -> Address:
    return ipaddress.IPv6Address(value) if ipv6 else ipaddress.IPv4Address(value)


def _bgp_protocols(config: m.BirdConfig) -> list[m.BgpProtocol]:
    return [p for p in config.protocols if isinstance(p, m.BgpProtocol)]


def _node_address(config: m.BirdConfig, ipv6: bool) -> Address:
    sources = Counter(p.source_address for p in _bgp_protocols(config) if p.source_address)
    if sources:
        return _ip(sources.most_common(1)[0][0], ipv6)
    if config.listen_address is not None:
        return _ip(config.listen_address, ipv6)
    if not ipv6 and config.router_id is not None:
        return _ip(config.router_id, False)
    raise ValueError("the file names no address of the node")


def _link_subnet(node: Address, peers: list[Address], taken: set[Address]) -> Network:
    """The smallest subnet holding the node, its on-link peers and two free addresses."""
    bits = node.max_prefixlen
    near = 24 if bits == 32 else 64
    neighbourhood = ipaddress.ip_network(f"{node}/{near}", strict=False)
    local = [p for p in peers if p in neighbourhood]
    length = min(bits - 4, *(_common_length(node, p) for p in local)) if local else bits - 4
    while True:
        subnet = ipaddress.ip_network(f"{node}/{length}", strict=False)
        last = int(subnet.broadcast_address) - 1
        spare = {_ip(last, bits == 128), _ip(last - 1, bits == 128)}
        if not spare & taken:
            return subnet
        length -= 1


def _common_length(a: Address, b: Address) -> int:
    bits = a.max_prefixlen
    differing = int(a) ^ int(b)
    return bits - differing.bit_length()


def load_scenario(relative: str) -> Scenario:
    """The corpus file ``relative`` (e.g. ``mesh/ipip-off/bird.cfg``), mapped (see above)."""
    main = CORPUS / relative
    ipv6 = main.name.startswith("bird6")
    originals = corpus_files(main)
    original = read_config(main.parent, main.name, ipv6)
    node = _node_address(original, ipv6)
    peer_addresses = [_ip(p.neighbor, ipv6) for p in _bgp_protocols(original) if p.neighbor]
    if len(set(peer_addresses)) != len(peer_addresses):
        raise ValueError(f"{relative}: two protocols share a neighbour address")
    everything = "\n".join(originals.values())
    own = literal_networks(everything, ipv6)
    taken = {n.network_address for n in own if n.prefixlen == n.max_prefixlen}
    link = _link_subnet(node, peer_addresses, taken)
    own_map = TranslationMap([*own, link], ipv6)
    v4_map = own_map if not ipv6 else TranslationMap(literal_networks(everything, False), False)
    mapped = {
        name: v4_map.rewrite(own_map.rewrite(text)) if ipv6 else own_map.rewrite(text)
        for name, text in originals.items()
    }

    # everything else from the mapped files, as the daemons will read them
    config = _read_mapped(main, mapped, ipv6)
    link_image = own_map.network(link)
    last = int(link_image.broadcast_address) - 1
    router_id = str(ipaddress.IPv4Address(config.router_id or 0))
    peer_ids = next(V4_EXTRA.subnets(new_prefix=24))
    blocks = [
        ipaddress.ip_network(_prefix_text(route.prefix, ipv6))
        for protocol in config.protocols
        if isinstance(protocol, m.StaticProtocol)
        for route in protocol.routes
        if route.kind is m.RouteKind.BLACKHOLE
    ]
    peers = []
    mapped_node = own_map.address(node)
    for index, protocol in enumerate(_bgp_protocols(config)):
        assert protocol.neighbor is not None
        address = _ip(protocol.neighbor, ipv6)
        peers.append(
            PeerSpec(
                protocol=protocol.name,
                address=address.compressed,
                port=protocol.port,
                peer_as=protocol.remote_as,
                node_as=protocol.local_as,
                node_passive=protocol.passive,
                password=protocol.password,
                ttl_security=protocol.ttl_security,
                on_link=address in link_image,
                router_id=str(address if not ipv6 else peer_ids[index + 1]),
                rr_client=protocol.rr_client,
                cluster_id=str(ipaddress.IPv4Address(protocol.rr_cluster_id))
                if protocol.rr_cluster_id is not None
                else router_id,
            )
        )
    node_hosts = {mapped_node, *(ipaddress.ip_address(p.address) for p in peers)}
    if config.router_id is not None:
        node_hosts.add(ipaddress.IPv4Address(config.router_id))
    named = literal_networks("\n".join(mapped.values()), ipv6)
    prefixes = sorted(
        (
            n
            for n in named
            if n not in blocks
            and n != link_image
            and not (n.prefixlen == n.max_prefixlen and n.network_address in node_hosts)
        ),
        key=lambda n: (n.version, int(n.network_address), n.prefixlen),
    )
    extras, unresolvable = _extras(ipv6)
    return Scenario(
        relative=relative,
        ipv6=ipv6,
        files=mapped,
        router_id=router_id,
        node=mapped_node.compressed,
        link=link_image,
        gateway=_ip(last, ipv6).compressed,
        third_party=_ip(last - 1, ipv6).compressed,
        unresolvable=unresolvable.compressed,
        listen_address=_ip(config.listen_address, ipv6).compressed
        if config.listen_address is not None
        else None,
        listen_port=config.listen_port or 179,
        peers=peers,
        blocks=blocks,
        prefixes=prefixes,
        extras=extras,
    )


def _extras(ipv6: bool) -> tuple[list[Network], Address]:
    """Prefixes no file names (the first of the extra region's /24 is for router ids), and an
    address nothing routes to."""
    if ipv6:
        pool6 = list(V6_EXTRA.subnets(new_prefix=56))[1]
        return list(pool6.subnets(new_prefix=64)), V6_EXTRA[-2]
    pool4 = list(V4_EXTRA.subnets(new_prefix=24))[1:8]
    return [s for p in pool4 for s in p.subnets(new_prefix=27)], V4_EXTRA[-2]


def _prefix_text(prefix: int, ipv6: bool) -> str:
    return f"{_ip(prefix >> 8, ipv6)}/{prefix & 0xFF}"


def _read_mapped(main: Path, mapped: Mapping[str, str], ipv6: bool) -> m.BirdConfig:
    with tempfile.TemporaryDirectory(prefix="birddiff-") as directory:
        for name, text in mapped.items():
            (Path(directory) / name).write_text(text)
        return read_config(Path(directory), main.name, ipv6)


# --- what the neighbours announce and the kernel holds --------------------------------------------

# ExaBGP attributes of each kind of route, after ``next-hop ...``. ``{peer}``/``{node}`` are the
# session's ASes, ``{node_id}`` the node's router id, ``{cluster}`` its cluster id.
IBGP_KINDS: dict[str, str] = {
    "plain": "origin igp local-preference 100",
    "high-pref": (
        "origin igp local-preference 2147483000 as-path [ 65000 65001 ] med 10 "
        "community [ 65000:100 ]"
    ),
    "communities": (
        "origin egp local-preference 50 as-path [ 65000 ] community [ 65000:42 65001:1 ] "
        "large-community [ 64512:1:2 ] originator-id 198.18.240.201 cluster-list [ 198.18.240.202 ]"
    ),
    "ops": (
        "origin incomplete local-preference 100 as-path [ 65000 64999 ] med 5 "
        "community [ 65000:42 no-export ]"
    ),
}
EBGP_KINDS: dict[str, str] = {
    "plain": "origin igp as-path [ {peer} ]",
    "path": "origin igp as-path [ {peer} 65000 64999 ] med 5",
    "no-export": (
        "origin igp as-path [ {peer} 65000 65001 65002 ] community [ no-export 65000:100 ] "
        "large-community [ 65000:5:6 ]"
    ),
    "short": "origin incomplete as-path [ {peer} ]",
    "communities": "origin egp as-path [ {peer} 65000 ] community [ 65000:42 ] med 7",
}
# Routes a daemon must refuse or treat specially: its own AS in the path, its own router id
# as ORIGINATOR_ID, its cluster id in CLUSTER_LIST.
IBGP_LOOPS = (
    "origin igp local-preference 100 as-path [ 65000 {node} ]",
    "origin igp local-preference 100 originator-id {node_id}",
    "origin igp local-preference 100 originator-id 198.18.240.201 cluster-list [ {cluster} ]",
)
EBGP_LOOPS = ("origin igp as-path [ {peer} {node} ]",)

# Kernel routes around the prefixes the files name: (name, ``ip route add`` words with
# {prefix}, {peer}, {gateway}, {third}), host routes marked by name.
KERNEL_KINDS: tuple[tuple[str, str], ...] = (
    ("felix-blackhole", "blackhole {prefix} proto 80"),
    ("felix-ipip", "{prefix} via {peer} dev tunl0 onlink proto 80"),
    ("felix-vxlan", "{prefix} dev vxlan.calico proto 80"),
    ("static-via-gateway", "{prefix} via {gateway} dev eth0 proto static"),
    ("unreachable", "unreachable {prefix} proto static metric 100"),
    ("workload-host", "{prefix} dev cali1a2b3c4d proto boot metric 1024"),
    ("boot-via-third", "{prefix} via {third} dev eth0 proto boot metric 100"),
)


@dataclass(frozen=True)
class PeerRoute:
    """One route a neighbour sends: ExaBGP's ``route`` statement, and why it is there."""

    prefix: str
    next_hop: str  # "self" or an address
    attributes: str
    why: str

    def statement(self) -> str:
        """``route P next-hop N ATTRS;`` for ExaBGP's ``static`` block."""
        return f"route {self.prefix} next-hop {self.next_hop} {self.attributes};"


def _child(network: Network, index: int, avoid: list[Network]) -> Network | None:
    """A sub-prefix of ``network`` counted from its end, of a block's length, clear of ``avoid``."""
    bits = network.max_prefixlen
    length = min(bits, max(network.prefixlen + 2, 122 if bits == 128 else 26))
    size = 1 << (bits - length)
    count = 1 << (length - network.prefixlen)
    found = -1
    for slot in range(count - 1, -1, -1):
        start = int(network.network_address) + slot * size
        child = ipaddress.ip_network(f"{ipaddress.ip_address(start)}/{length}")
        if any(overlaps(child, a) for a in avoid):
            continue
        found += 1
        if found == index:
            return child
    return None


def _kinds(peer: PeerSpec) -> dict[str, str]:
    return IBGP_KINDS if peer.internal else EBGP_KINDS


def _attrs(template: str, scenario: Scenario, peer: PeerSpec) -> str:
    return template.format(
        peer=peer.peer_as, node=peer.node_as, node_id=scenario.router_id, cluster=peer.cluster_id
    )


def peer_routes(scenario: Scenario) -> dict[str, list[PeerRoute]]:
    """What each neighbour (by address) announces to the node (see the module docstring)."""
    peers = scenario.peers
    routes: dict[str, list[PeerRoute]] = {p.address: [] for p in peers}

    def add(peer: PeerSpec, prefix: Network, kind: str, next_hop: str, why: str) -> None:
        template = _kinds(peer).get(kind, kind)
        attributes = _attrs(template, scenario, peer)
        routes[peer.address].append(PeerRoute(str(prefix), next_hop, attributes, why))

    next_hops = ("self", "self", scenario.third_party, scenario.unresolvable)
    for index, prefix in enumerate(scenario.prefixes):
        peer = peers[index % len(peers)]
        kind = list(_kinds(peer))[index % len(_kinds(peer))]
        add(peer, prefix, kind, next_hops[index % 4], f"named prefix, {kind}")
        inside = _child(prefix, 0, scenario.blocks)
        if inside is not None and prefix.prefixlen < prefix.max_prefixlen:
            for peer in peers:
                add(peer, inside, "plain", "self", "inside a named prefix, from every peer")
    if scenario.blocks:
        add(peers[0], scenario.blocks[0], "plain", "self", "the node's own block")
    extras = iter(scenario.extras)
    contest, ecmp = next(extras), next(extras)
    for index, peer in enumerate(peers):
        kind = list(_kinds(peer))[index % len(_kinds(peer))]
        add(peer, contest, kind, "self", f"every peer, {kind}")
        add(peer, ecmp, "plain", "self", "every peer alike")
    for index, peer in enumerate(peers):
        kinds = list(_kinds(peer))
        for kind in kinds[(index + 1) % len(kinds) :] + kinds[: (index + 1) % len(kinds)]:
            add(peer, next(extras), kind, "self", f"this peer only, {kind}")
        add(peer, next(extras), "plain", scenario.third_party, "next hop on the link, no host")
        add(peer, next(extras), "plain", scenario.unresolvable, "next hop nothing reaches")
        for loop in IBGP_LOOPS if peer.internal else EBGP_LOOPS:
            add(peer, next(extras), loop, "self", "loop check")
    return routes


def kernel_routes(scenario: Scenario) -> list[tuple[str, str]]:
    """(why, ``ip route add`` arguments) for the node's kernel before the daemon starts."""
    peer = scenario.peers[0].address if scenario.peers else scenario.gateway
    values = {"peer": peer, "gateway": scenario.gateway, "third": scenario.third_party}
    bits = scenario.bits
    lines = [("felix's block", f"blackhole {block} proto 80") for block in scenario.blocks]
    roomy = [b for b in scenario.blocks if b.prefixlen <= bits - 3]
    if roomy:
        base = max(roomy, key=lambda b: (b.prefixlen, b.network_address)).network_address
        for offset, extra in (
            (1, "proto boot"),
            (2, "proto boot metric 1024"),
            (3, "proto 80 metric 512"),
        ):
            host = f"{base + offset}/{bits}"
            lines.append(
                (f"workload in the node's block, {extra}", f"{host} dev {WORKLOAD_IF} {extra}")
            )
    counter = 0
    for prefix in scenario.prefixes:
        if prefix.prefixlen == bits:
            continue
        for slot in (1, 2, 3):
            child = _child(prefix, slot, scenario.blocks)
            if child is None:
                continue
            name, template = KERNEL_KINDS[counter % len(KERNEL_KINDS)]
            counter += 1
            if name == "felix-ipip" and scenario.ipv6:  # IPIP is IPv4 only: no encapsulation
                name, template = "felix-direct", "{prefix} via {peer} dev eth0 proto 80"
            target = (
                child
                if not name.endswith("host")
                else ipaddress.ip_network(f"{child.network_address + 1}/{bits}")
            )
            lines.append((f"{name} inside {prefix}", template.format(prefix=target, **values)))
    outside = scenario.extras[-4:]
    for index, (name, template) in enumerate(KERNEL_KINDS[3:7]):
        prefix = outside[index]
        target = (
            prefix
            if not name.endswith("host")
            else ipaddress.ip_network(f"{prefix.network_address + 1}/{bits}")
        )
        lines.append((f"{name}, outside", template.format(prefix=target, **values)))
    lines.extend(
        (
            "the way to a remote peer",
            f"{p.address}/{bits} via {scenario.gateway} dev eth0 proto static",
        )
        for p in scenario.peers
        if not p.on_link
    )
    return lines


# --- the second phase: changes once both daemons have settled --------------------------------


def peer_changes(scenario: Scenario, routes: Mapping[str, list[PeerRoute]]) -> dict[str, list[str]]:
    """ExaBGP API commands per neighbour (after ``neighbor NODE local-ip PEER``), sent once
    both daemons have settled: an iBGP peer (else the first) makes itself the best path of the
    prefix every peer announces differently, with a LOCAL_PREF that gives it a new kernel
    metric; the first peer withdraws the prefix every peer announces alike (the multipath
    route shrinks); the last peer withdraws a route only it sent."""
    changes: dict[str, list[str]] = {p.address: [] for p in scenario.peers}
    if not scenario.peers:
        return changes
    first, last = scenario.peers[0], scenario.peers[-1]
    taker = next((p for p in scenario.peers if p.internal), first)
    contest, ecmp = scenario.extras[0], scenario.extras[1]
    better = (
        "origin igp local-preference 2147483600"
        if taker.internal
        else f"origin igp as-path [ {taker.peer_as} ] med 0"
    )
    changes[taker.address].append(f"announce route {contest} next-hop self {better}")
    changes[first.address].append(f"withdraw route {ecmp}")
    own = next((r for r in routes[last.address] if r.why.startswith("this peer only")), None)
    if own is not None:
        changes[last.address].append(f"withdraw route {own.prefix}")
    return changes


def kernel_changes(scenario: Scenario) -> list[tuple[str, str]]:
    """(why, ``ip -batch`` line) for the node's kernel in the second phase: a workload route
    of elevated priority goes, a route via the gateway goes, Felix adds a block."""
    lines: list[tuple[str, str]] = []
    for why, line in kernel_routes(scenario):
        if why.endswith("proto 80 metric 512") or why == "static-via-gateway, outside":
            lines.append((f"gone: {why}", f"route del {line}"))
    pools = [p for p in scenario.prefixes if p.prefixlen < scenario.bits]
    new_block = _child(pools[0], 5, scenario.blocks) if pools else None
    if new_block is None:
        new_block = scenario.extras[-5]
    lines.append(("felix adds a block", f"route add blackhole {new_block} proto 80"))
    return lines
