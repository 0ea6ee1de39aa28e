"""The pieces of the live filter comparison that need no namespace: addresses, routes, output.

Role: ``test_interop_bird_filters.py`` runs Calico's rendered configs in BIRD 1.6 and
compares what BIRD's filters do to a table of routes with what Myna's compiled filters do to
the same routes. This module holds what that needs besides the network:

* ``AddressMap``: Calico's addresses moved into the test ranges (198.18.0.0/15 minus the test
  bed's 198.18.0.0/24, 2001:db8::/32 minus 2001:db8::/64) one to one. The corpus uses whole
  /16 pools, more than a /15 holds, so the map keeps what the filters can observe rather
  than lengths: containment and equality between every prefix and address it maps (a prefix
  inside another stays inside its image, disjoint ones stay disjoint, a host stays a host).
  ``net.len`` and length ranges in prefix sets would see lengths; the test checks a filter
  uses neither before it runs it.
* ``bench_routes``: the routes to put in BIRD's table around each prefix a filter names (the
  prefix, a half of it, an address in it, its sibling, its supernet), each from a kernel, BGP
  and static source of a kind that rotates over the kinds Calico's filters tell apart.
* ``parse_routes``: ``birdc show route all`` output -> ``ShownRoute`` records.
* ``myna_route``: a shown route -> Myna's ``Route`` (``Source`` with its ``KernelFacts``, the
  interned attributes), so Myna's filters see what BIRD's see.
* ``display``: what BIRD would print for a route after Myna's verdict, in BIRD's words.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rib.policy import Verdict
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, RouteTable, Source
from speaker.path_attributes import ATTRIBUTES, PathAttributes

ROUTES = RouteTable()  # this module's own intern table (each RIB core has its own)
V4_TARGET = ipaddress.IPv4Network("198.19.0.0/16")
V6_TARGET = ipaddress.IPv6Network("2001:db8:8000::/33")

_V4_LITERAL = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\w.])")
_V6_LITERAL = re.compile(
    r"(?<![\w:.])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(/\d{1,3})?(?![\w:])"
)

Item = tuple[int, int]  # (network address, prefix length); a host is (address, bits)


def literals(text: str) -> tuple[set[Item], set[Item]]:
    """The IPv4 and IPv6 addresses and prefixes written in ``text``."""
    v4: set[Item] = set()
    v6: set[Item] = set()
    for match in _V4_LITERAL.finditer(text):
        with_length = match.group(1) + (match.group(2) or "/32")
        network = ipaddress.IPv4Network(with_length, strict=False)
        v4.add((int(network.network_address), network.prefixlen))
    for match in _V6_LITERAL.finditer(text):
        try:
            network6 = ipaddress.IPv6Network(
                match.group(1) + (match.group(2) or "/128"), strict=False
            )
        except ValueError:
            continue
        v6.add((int(network6.network_address), network6.prefixlen))
    return v4, v6


@dataclass
class _Node:
    item: Item
    children: list[_Node] = field(default_factory=list)


class AddressMap:
    """One-to-one map of items of one family that keeps containment (module docstring)."""

    def __init__(self, items: Iterable[Item], ipv6: bool) -> None:
        self.ipv6 = ipv6
        self.bits = 128 if ipv6 else 32
        target = V6_TARGET if ipv6 else V4_TARGET
        self.images: dict[Item, Item] = {}
        roots: list[_Node] = []
        nodes: list[_Node] = []
        for item in sorted(set(items), key=lambda i: (i[1], i[0])):
            node = _Node(item)
            parent = None
            for candidate in reversed(nodes):
                if self._contains(candidate.item, item):
                    parent = candidate
                    break
            (parent.children if parent else roots).append(node)
            nodes.append(node)
        self._place(roots, int(target.network_address), target.prefixlen)

    def _contains(self, outer: Item, inner: Item) -> bool:
        shift = self.bits - outer[1]
        return outer[1] <= inner[1] and outer[0] >> shift == inner[0] >> shift

    def _place(self, nodes: list[_Node], address: int, length: int) -> None:
        # slot 0 of every prefix stays for the prefix's own addresses: a child never fills it
        slot_bits = max(1, math.ceil(math.log2(len(nodes) + 1)))
        child_length = length + slot_bits
        if child_length > self.bits:
            raise ValueError(
                f"too many nested prefixes to map into the test range ({child_length})"
            )
        for index, node in enumerate(nodes, start=1):
            slot = address | index << (self.bits - child_length)
            if node.item[1] == self.bits:
                if node.children:
                    raise ValueError(f"a host holds other items: {node.item}")
                self.images[node.item] = (slot, self.bits)
            else:
                self.images[node.item] = (slot, child_length)
                self._place(node.children, slot, child_length)

    def item_text(self, item: Item, with_length: bool | None = None) -> str:
        """The image of ``item`` as text (an address alone for a host unless asked)."""
        address, length = self.images[item]
        ip = ipaddress.ip_address(address) if not self.ipv6 else ipaddress.IPv6Address(address)
        if with_length is None:
            with_length = item[1] != self.bits
        return f"{ip.compressed}/{length}" if with_length else ip.compressed

    def rewrite(self, text: str) -> str:
        """``text`` with each address or prefix literal of this family replaced by its image."""
        pattern = _V6_LITERAL if self.ipv6 else _V4_LITERAL

        def replace(match: re.Match[str]) -> str:
            try:
                network = ipaddress.ip_network(
                    match.group(1) + (match.group(2) or f"/{self.bits}"), strict=False
                )
            except ValueError:
                return match.group(0)
            item = (int(network.network_address), network.prefixlen)
            return self.item_text(item, with_length=match.group(2) is not None)

        return pattern.sub(replace, text)


# --- the routes ---------------------------------------------------------------------------------


class Kind:
    """Route kinds: (source, how), named as the test's comments and its failures show them."""

    KERNEL_KINDS = (
        "kernel-blackhole-80",
        "kernel-dev-cali",
        "kernel-via-80",
        "kernel-dev-bpf",
        "kernel-dev-vxlan",
        "kernel-dev-tunl0",
        "kernel-unreachable-4",
        "kernel-dev-eth1",
        "kernel-dev-someiface",
    )
    BGP_KINDS = (
        "ibgp-plain",
        "ibgp-high-pref",
        "ibgp-communities",
        "ebgp-path",
        "ebgp-no-export",
        "ebgp-short",
    )
    STATIC_KINDS = (
        "static-blackhole",
        "static-via",
        "static-dev",
        "static-unreachable",
        "static-prohibit",
    )


# Interfaces the kernel routes go out of: the names Calico's filters test (a workload, BPF,
# VXLAN and IPIP tunnels, a NIC, a name matching "some*iface")
INTERFACES = ("cali1a2b3c4d", "bpf0.cali", "vxlan.calico", "tunl0", "eth1", "someiface")

# ExaBGP announce attributes of each BGP kind (after "next-hop ...")
BGP_ATTRIBUTES = {
    "ibgp-plain": "origin igp local-preference 100",
    "ibgp-high-pref": (
        "origin igp local-preference 2147483000 as-path [ 65000 65001 ] med 10 "
        "community [ 65000:100 ]"
    ),
    "ibgp-communities": (
        "origin egp local-preference 50 as-path [ 65000 ] community [ 65000:42 65001:1 ] "
        "large-community [ 64512:1:2 ] originator-id 198.18.0.77 cluster-list [ 198.18.0.78 ]"
    ),
    "ebgp-path": "origin igp as-path [ 65000 64999 ] med 5",
    "ebgp-no-export": (
        "origin igp as-path [ 65000 65001 65002 ] community [ no-export 65000:100 ] "
        "large-community [ 65000:5:6 ]"
    ),
    "ebgp-short": "origin incomplete as-path [ 65000 ]",
}


def neighbourhood(item: Item, bits: int) -> list[Item]:
    """The routes a filter's prefix is tested on: itself, inside, an address, sibling, supernet."""
    address, length = item
    found = [item]
    if length < bits:
        found.append((address, length + 1))
        found.append((address | 1, bits) if length < bits - 1 else (address, bits))
    if length > 0:
        found.append((address ^ 1 << (bits - length), length))
        found.append((address & ~((1 << (bits - length + 1)) - 1), length - 1))
    return found


@dataclass(frozen=True)
class BenchRoute:
    """One route the test puts in BIRD's table (original addresses)."""

    item: Item
    kind: str


# A prefix no filter names, so that every kind of route is there even for a file whose
# filters name no prefix of its family (its neighbourhood is added to every table)
SEED_V4: Item = (int(ipaddress.IPv4Address("100.64.0.0")), 24)
SEED_V6: Item = (int(ipaddress.IPv6Address("fd99::")), 64)


def bench_routes(prefixes: Iterable[Item], bits: int) -> list[BenchRoute]:
    """Three routes per prefix near the filters' prefixes: one kernel, one BGP, one static."""
    seeded = {*prefixes, SEED_V6 if bits == 128 else SEED_V4}
    items = sorted({n for p in seeded if p[1] < bits for n in neighbourhood(p, bits)})
    routes = []
    for index, item in enumerate(items):
        routes.append(BenchRoute(item, Kind.KERNEL_KINDS[index % len(Kind.KERNEL_KINDS)]))
        routes.append(BenchRoute(item, Kind.BGP_KINDS[index % len(Kind.BGP_KINDS)]))
        routes.append(BenchRoute(item, Kind.STATIC_KINDS[index % len(Kind.STATIC_KINDS)]))
    return routes


# --- BIRD's output ------------------------------------------------------------------------------

_ROUTE_LINE = re.compile(
    r"^(?P<prefix>\S+)?\s+(?P<dest>via (?P<gw>\S+) on (?P<via_if>\S+)|dev (?P<dev>\S+)"
    r"|blackhole|unreachable|prohibited|multipath)"
    r"\s+\[(?P<proto>\S+) [^\]]*?(?: from (?P<from>\S+))?\]\s*(?P<best>[*!])?\s*"
    r"\((?P<pref>\d+)(?:/[^)]*)?\)"
)
_SCOPES = {"host": 0, "link": 1, "site": 2, "org": 3, "univ": 4, "undef": 5}


@dataclass
class ShownRoute:
    """One route as ``show route all`` prints it."""

    prefix: str
    proto: str
    dest: str  # via | dev | blackhole | unreachable | prohibit | multipath
    gateway: str | None
    interface: str | None
    from_address: str | None
    best: bool
    preference: int
    source_type: str = ""  # the "Type:" line's first word: BGP, static, inherit, device...
    scope: int = 4
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """How the test pairs a route across outputs."""
        return self.prefix, self.proto


def parse_routes(output: str) -> list[ShownRoute]:
    """The routes of one ``birdc show route all ...`` output."""
    routes: list[ShownRoute] = []
    prefix = ""
    for line in output.splitlines()[1:]:
        if line.startswith("\t"):
            name, _, value = line.strip().partition(":")
            if name == "Type":
                words = value.split()
                routes[-1].source_type = words[0]
                routes[-1].scope = _SCOPES.get(words[-1], 4)
            elif name:
                routes[-1].attributes[name] = value.strip()
            continue
        match = _ROUTE_LINE.match(line)
        if match is None:
            if line.strip():
                # not a passing state: the parser lacks a form BIRD prints
                raise AssertionError(f"unexpected line in BIRD's output: {line!r}")
            continue
        prefix = match.group("prefix") or prefix
        dest = match.group("dest").split()[0].replace("prohibited", "prohibit")
        routes.append(
            ShownRoute(
                prefix=prefix,
                proto=match.group("proto"),
                dest=dest,
                gateway=match.group("gw"),
                interface=match.group("via_if") or match.group("dev"),
                from_address=match.group("from"),
                best=match.group("best") is not None,
                preference=int(match.group("pref")),
            )
        )
    return routes


# --- Myna's routes from BIRD's -------------------------------------------------------------------

_ORIGINS = {"IGP": 0, "EGP": 1, "Incomplete": 2}
_DESTINATIONS = {
    "via": Destination.ROUTER,
    "dev": Destination.DEVICE,
    "blackhole": Destination.BLACKHOLE,
    "unreachable": Destination.UNREACHABLE,
    "prohibit": Destination.PROHIBIT,
    "multipath": Destination.MULTIPATH,
}
_KINDS = {
    "static": LocalKind.STATIC,
    "static-device": LocalKind.STATIC_DEVICE,
    "inherit": LocalKind.KERNEL,
    "device": LocalKind.DEVICE,
}


@dataclass(frozen=True)
class BgpSession:
    """What Myna's ``Source`` of a BGP session holds: the BIRD protocol's peer."""

    address: str
    asn: int
    router_id: str
    internal: bool
    rr_client: bool = False


def _ip_int(text: str) -> int:
    return int(ipaddress.ip_address(text))


def _path(text: str) -> tuple[tuple[int, tuple[int, ...]], ...]:
    segments: list[tuple[int, tuple[int, ...]]] = []
    for sequence, as_set in re.findall(r"([\d ]+)|\{([\d ]*)\}", text):
        if sequence.strip():
            segments.append((2, tuple(int(n) for n in sequence.split())))
        elif as_set is not None and as_set.strip():
            segments.append((1, tuple(int(n) for n in as_set.split())))
    return tuple(segments)


def shown_attrs(route: ShownRoute, ipv6: bool) -> PathAttributes:
    """The BGP attributes BIRD shows for ``route``, as Myna's interned set."""
    a = route.attributes
    next_hop = b""
    if "BGP.next_hop" in a:
        octets = 16 if ipv6 else 4
        next_hop = b"".join(_ip_int(t).to_bytes(octets, "big") for t in a["BGP.next_hop"].split())
    return ATTRIBUTES.intern(
        PathAttributes(
            origin=_ORIGINS.get(a.get("BGP.origin", "IGP"), 0),  # type: ignore[arg-type]
            as_path=_path(a.get("BGP.as_path", "")),
            next_hop=next_hop,
            med=int(a["BGP.med"]) if "BGP.med" in a else None,
            local_pref=int(a["BGP.local_pref"]) if "BGP.local_pref" in a else None,
            communities=tuple(
                int(x) << 16 | int(y)
                for x, y in re.findall(r"\((\d+),(\d+)\)", a.get("BGP.community", ""))
            ),
            originator_id=_ip_int(a["BGP.originator_id"]) if "BGP.originator_id" in a else None,
            cluster_list=tuple(_ip_int(t) for t in a.get("BGP.cluster_list", "").split()),
            large_communities=tuple(
                (int(x), int(y), int(z))
                for x, y, z in re.findall(
                    r"\((\d+), (\d+), (\d+)\)", a.get("BGP.large_community", "")
                )
            ),
        )
    )


def myna_route(route: ShownRoute, sessions: dict[str, BgpSession], ipv6: bool) -> Route:
    """Myna's ``Route`` for a route BIRD shows (see the module docstring)."""
    attrs = shown_attrs(route, ipv6)
    if route.source_type == "BGP":
        session = sessions[route.proto]
        source = Source(
            session.address,
            origin=Origin.BGP,
            address=_ip_int(session.address),
            router_id=_ip_int(session.router_id),
            asn=session.asn,
            ibgp=session.internal,
            rr_client=session.rr_client,
            interface=route.interface,
            protocol=route.proto,
            preference=route.preference,
        )
        return ROUTES.intern(source, attrs)
    kind = _KINDS[route.source_type]
    facts = KernelFacts(
        kind=kind,
        dest=_DESTINATIONS[route.dest],
        gateway=_ip_int(route.gateway) if route.gateway else None,
        metric=int(route.attributes["Kernel.metric"])
        if "Kernel.metric" in route.attributes
        else None,
        protocol=int(route.attributes["Kernel.source"])
        if "Kernel.source" in route.attributes
        else None,
        scope=route.scope,
    )
    source = Source(
        route.proto,
        origin=Origin.KERNEL if kind is LocalKind.KERNEL else Origin.STATIC,
        interface=route.interface,
        protocol=route.proto,
        preference=route.preference,
        kernel=facts,
    )
    return ROUTES.intern(source, attrs)


# --- what BIRD would print ----------------------------------------------------------------------


def _ip_text(value: int, ipv6: bool) -> str:
    return (ipaddress.IPv6Address(value) if ipv6 else ipaddress.IPv4Address(value)).compressed


def _next_hop_text(next_hop: bytes, ipv6: bool) -> str:
    octets = 16 if ipv6 else 4
    return " ".join(
        _ip_text(int.from_bytes(next_hop[i : i + octets], "big"), ipv6)
        for i in range(0, len(next_hop), octets)
    )


def _path_text(path: tuple[tuple[int, tuple[int, ...]], ...]) -> str:
    parts = []
    for kind, asns in path:
        text = " ".join(str(n) for n in asns)
        parts.append(text if kind == 2 else f"{{{text}}}")
    return " ".join(parts)


def display(
    route: Route,
    shown: ShownRoute,
    verdict: Verdict,
    ipv6: bool,
    *,
    bgp_view: bool = False,
) -> tuple[int, dict[str, str]]:
    """(preference, attributes) BIRD prints for ``route`` after ``verdict``.

    ``bgp_view``: the route is seen as a BGP protocol exports it (ORIGIN, AS_PATH and
    NEXT_HOP defined for every route).
    """
    attrs = verdict.attrs_for(route.attrs)
    is_bgp = route.source.origin == Origin.BGP or bgp_view
    lines: dict[str, str] = {}
    if is_bgp:
        lines["BGP.origin"] = ("IGP", "EGP", "Incomplete")[attrs.origin]
        lines["BGP.as_path"] = _path_text(attrs.as_path)
        lines["BGP.next_hop"] = _next_hop_text(attrs.next_hop, ipv6)
    elif attrs.as_path:
        lines["BGP.as_path"] = _path_text(attrs.as_path)
    if attrs.med is not None:
        lines["BGP.med"] = str(attrs.med)
    if attrs.local_pref is not None:
        lines["BGP.local_pref"] = str(attrs.local_pref)
    if attrs.communities:
        lines["BGP.community"] = " ".join(f"({c >> 16},{c & 0xFFFF})" for c in attrs.communities)
    if attrs.originator_id is not None:
        lines["BGP.originator_id"] = _ip_text(attrs.originator_id, False)
    if attrs.cluster_list:
        lines["BGP.cluster_list"] = " ".join(_ip_text(c, False) for c in attrs.cluster_list)
    if attrs.large_communities:
        lines["BGP.large_community"] = " ".join(
            f"({a}, {b}, {c})" for a, b, c in attrs.large_communities
        )
    kernel = route.source.kernel
    # the kernel's own attributes (source, scope, prefsrc...) pass through: Calico's filters
    # write none of them but krt_metric
    lines.update(
        (name, value)
        for name, value in shown.attributes.items()
        if name.startswith("Kernel.") and name != "Kernel.metric"
    )
    if verdict.priority is not None:
        lines["Kernel.metric"] = str(verdict.priority)
    elif kernel is not None and kernel.kind is LocalKind.KERNEL:
        lines["Kernel.metric"] = str(kernel.metric or 0)
    preference = verdict.preference if verdict.preference is not None else shown.preference
    return preference, lines


def bird_display(route: ShownRoute) -> tuple[int, dict[str, str]]:
    """(preference, attributes) of a route BIRD printed, empty lists left out."""
    lines = {
        name: value
        for name, value in route.attributes.items()
        if name.startswith(("BGP.", "Kernel."))
        and not (name in ("BGP.community", "BGP.large_community") and not value)
    }
    return route.preference, lines
