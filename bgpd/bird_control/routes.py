"""``show route ...``: the Loc-RIB in BIRD 1.6's words.

Data flow: ``RouteView.show`` walks the socket family's Loc-RIB through the RIB's read API
(``RibView.entries``: every network with all its routes, the best one first here, as BIRD
keeps it first), keeps what the command asks for (a network, exactly or the longest match
holding an address; one protocol; the primary routes) and yields the lines in pieces of
``CHUNK``, written with a drain between them (the network list itself is read and sorted in
one go: a few hundred milliseconds for 100,000 networks).

A route's line (``nest/rt-table.c`` ``rt_show_rte``): ``%-18s %s [%s %s%s]%s%s`` -- the
network (blank for a network's further routes), where the route goes (``via GW on IFACE``,
``dev IFACE``, ``blackhole``, ``unreachable``, ``prohibited``), the protocol's name and the
route's time, `` from PEER`` when the peer is not the gateway (a reflected route), `` *`` on
the best route, then BGP's ``(PREF[s][/IGP]) [ASnnn<origin>]`` (``proto/bgp/attrs.c``
``bgp_get_route_info``: ``s`` for a stale route, ``/0`` with a resolved recursive gateway,
``/-`` unresolved, the last AS of the path and ``i``/``e``/``?``) or ``(PREF)``. ``all`` adds
``Type: <source> unicast univ`` (``rta_show``) and the attributes (``ea_show``): ``BGP.origin``,
``BGP.as_path``, ``BGP.next_hop``, ``BGP.med``, ``BGP.local_pref``, ``BGP.atomic_aggr``,
``BGP.aggregator``, ``BGP.community``, ``BGP.originator_id``, ``BGP.cluster_list``,
``BGP.ext_community``, ``BGP.large_community`` in code order, unknown ones as ``BGP.<hex
code> [t]: <bytes>``; a kernel route's ``Kernel.source`` and ``Kernel.metric``. Long
community lists wrap as ``ea_show_int_set`` wraps them (500-octet lines).

The route's time: Myna keeps no time per route; a BGP route shows the time its session came
up (when a peer's routes arrive), any other the daemon's start. ``filtered`` shows nothing:
Myna keeps no routes its import filters rejected (BIRD's ``import keep filtered``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bgpd.bird_control.commands import ShowRoute
from bgpd.bird_control.interfaces import Interfaces
from bgpd.bird_control.protocols import DEFAULT_PREFERENCE, ProtocolView, source_protocol
from bgpd.bird_control.replies import Line, proto_time
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, Source, Stale
from speaker.path_attributes import PathAttributes
from speaker.session_events import State
from speaker.wire_codes import AsPathSegmentType, Family

if TYPE_CHECKING:
    from bgpd.daemon_state import DaemonState

CHUNK = 256  # lines per piece written
_CLI_MSG_SIZE = 500  # BIRD's nest/cli.h: one attribute line's buffer
_TYPE_NAMES = {
    LocalKind.STATIC: "static",
    LocalKind.KERNEL: "inherit",
    LocalKind.DEVICE: "device",
    LocalKind.STATIC_DEVICE: "static-device",
}
_ORIGINS = ("IGP", "EGP", "Incomplete")
DEFAULT_LOCAL_PREF = 100  # BIRD 1.6's "default bgp_local_pref"
_PREFERENCES = {Origin.BGP: 100, Origin.KERNEL: 10, Origin.STATIC: 200}


def _address(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def _wrap(items: list[str], prefix: str, reserve: int, joiner: str = " ") -> list[str]:
    """One attribute's set, in lines as BIRD's ``*_set_format`` cuts them.

    The first line holds ``prefix`` and the items that fit its buffer less ``reserve`` octets
    (BIRD stops adding once the text passed that mark), the next ones start with a tab.
    """
    lines = []
    index = 0
    first = True
    while True:
        size = (_CLI_MSG_SIZE - len(prefix)) if first else _CLI_MSG_SIZE - 1
        limit = size - reserve
        text = ""
        start = index
        while index < len(items):
            if len(text) > limit:
                break
            text += (joiner if index > start else "") + items[index]
            index += 1
        lines.append((f"\t{prefix}" if first else "\t\t") + text)
        first = False
        if index >= len(items):
            return lines


def _as_path(attrs: PathAttributes) -> str:
    """BIRD's ``as_path_format``."""
    out = ""
    spaced = True
    for kind, asns in attrs.as_path:
        is_set = kind == AsPathSegmentType.AS_SET
        if is_set:
            out += ("" if spaced else " ") + "{"
            spaced = False
        for asn in asns:
            out += ("" if spaced else " ") + str(asn)
            spaced = False
        if is_set:
            out += " }"
            spaced = False
    return out


def _last_as(attrs: PathAttributes) -> int | None:
    """BIRD's ``as_path_get_last``: the last AS of a final AS_SEQUENCE (none after a set)."""
    found = None
    for kind, asns in attrs.as_path:
        if not asns:
            continue
        found = None if kind == AsPathSegmentType.AS_SET else asns[-1]
    return found


def _ext_community(value: int) -> str:
    """BIRD's ``ec_format``."""
    kind_code = value >> 48
    kind = {0x0002: "rt", 0x0003: "ro"}.get(kind_code & 0xF0FF, f"unknown 0x{kind_code:x}")
    high = value >> 56
    if high in (0x00, 0x40):
        return f"({kind}, {(value >> 32) & 0xFFFF}, {value & 0xFFFFFFFF})"
    if high in (0x01, 0x41):
        return f"({kind}, {ipaddress.IPv4Address((value >> 16) & 0xFFFFFFFF)}, {value & 0xFFFF})"
    if high in (0x02, 0x42):
        return f"({kind}, {(value >> 16) & 0xFFFFFFFF}, {value & 0xFFFF})"
    return f"(generic, 0x{(value >> 32) & 0xFFFFFFFF:x}, 0x{value & 0xFFFFFFFF:x})"


def bgp_attribute_lines(attrs: PathAttributes, ebgp: bool = False) -> list[str]:
    """The ``BGP.*`` lines of ``show route all``, in attribute code order.

    ``ebgp``: the route came over an external session, where BIRD 1.6 gives a route without
    LOCAL_PREF its ``default bgp_local_pref``, 100 (``proto/bgp/attrs.c``
    ``bgp_decode_attrs``), so it shows (and its filters read) one.
    """
    out: list[tuple[int, list[str]]] = [
        (1, [f"\tBGP.origin: {_ORIGINS[attrs.origin] if attrs.origin < 3 else attrs.origin}"]),
        (2, [f"\tBGP.as_path: {_as_path(attrs)}"]),
    ]
    hop = attrs.next_hop
    if hop:
        text = _address(hop[:16]) if len(hop) >= 16 else _address(hop[:4])
        if len(hop) == 32 and any(hop[16:]):
            text += f" {_address(hop[16:])}"
        out.append((3, [f"\tBGP.next_hop: {text}"]))
    if attrs.med is not None:
        out.append((4, [f"\tBGP.med: {attrs.med}"]))
    if attrs.local_pref is not None or ebgp:
        local_pref = attrs.local_pref if attrs.local_pref is not None else DEFAULT_LOCAL_PREF
        out.append((5, [f"\tBGP.local_pref: {local_pref}"]))
    if attrs.atomic_aggregate:
        out.append((6, ["\tBGP.atomic_aggr: "]))
    if attrs.aggregator is not None:
        asn, address = attrs.aggregator
        out.append((7, [f"\tBGP.aggregator: {ipaddress.IPv4Address(address)} AS{asn}"]))
    if attrs.communities:
        items = [f"({c >> 16},{c & 0xFFFF})" for c in attrs.communities]
        out.append((8, _wrap(items, "BGP.community: ", 24)))
    if attrs.originator_id is not None:
        out.append((9, [f"\tBGP.originator_id: {ipaddress.IPv4Address(attrs.originator_id)}"]))
    if attrs.cluster_list:
        ids = " ".join(str(ipaddress.IPv4Address(c)) for c in attrs.cluster_list)
        out.append((10, [f"\tBGP.cluster_list: {ids}"]))
    if attrs.extended_communities:
        items = [_ext_community(c) for c in attrs.extended_communities]
        out.append((16, _wrap(items, "BGP.ext_community: ", 64)))
    if attrs.large_communities:
        items = [f"({a}, {b}, {c})" for a, b, c in attrs.large_communities]
        out.append((32, _wrap(items, "BGP.large_community: ", 64)))
    unknown = list(attrs.unknown)
    if attrs.otc is not None:  # RFC 9234's, which BIRD 1.6 does not know
        unknown.append((0xC0, 35, attrs.otc.to_bytes(4, "big")))
    for flags, code, value in unknown:
        transitive = " [t]" if flags & 0x40 else ""
        octets = ":".join(f"{b:02x}" for b in value)
        out.append((code, [f"\tBGP.{code:02x}{transitive}: {octets}"]))
    return [line for _, lines in sorted(out, key=lambda item: item[0]) for line in lines]


class RouteView:
    """``show route`` for one address family (see the module docstring)."""

    def __init__(
        self, daemon: DaemonState, protocols: ProtocolView, interfaces: Interfaces
    ) -> None:
        self.daemon = daemon
        self.protocols = protocols
        self.interfaces = interfaces
        self.family = Family.IPV6_UNICAST if protocols.ipv6 else Family.IPV4_UNICAST

    # -- one route -----------------------------------------------------------------------------

    def _since(self, source: Source) -> float:
        if source.origin == Origin.BGP:
            session = next((s for s in self.daemon.sessions if s.name == source.name), None)
            if session is not None and session.state == State.ESTABLISHED:
                return session.state_since
        return self.protocols.started

    def _gateway(self, hop: bytes) -> tuple[str, str | None]:
        """(gateway text, interface) of a BGP next hop; a link-local second one as fallback."""
        main = _address(hop[:16]) if len(hop) >= 16 else _address(hop[:4])
        device = self.interfaces.device_for(main)
        if device is None and len(hop) == 32 and any(hop[16:]):
            local = _address(hop[16:])
            device = self.interfaces.device_for(local)
            if device is not None:
                return local, device
        return main, device

    def _where(self, route: Route) -> tuple[str, bool]:
        """(``via ...`` text, resolvable) of a route."""
        source = route.source
        facts = source.kernel
        if source.origin == Origin.BGP:
            gateway, device = self._gateway(route.attrs.next_hop)
            if device is None:
                return "unreachable", False
            return f"via {gateway} on {device}", True
        return _local_where(facts, source), True

    def _preference(self, source: Source) -> int:
        if source.preference is not None:
            return source.preference
        if source.origin == Origin.BGP:
            peer = self.daemon.peer_configs.get(source.name)
            if peer is not None and peer.preference is not None:
                return peer.preference
        facts = source.kernel
        if facts is not None and facts.kind is LocalKind.DEVICE:
            return DEFAULT_PREFERENCE["Direct"]
        return _PREFERENCES[source.origin]

    def line(self, network: str, route: Route, best: bool, name: str) -> str:
        """The route's line (the network left blank for a network's further routes)."""
        source = route.source
        where, resolvable = self._where(route)
        if source.origin == Origin.BGP:
            peer_text = ipaddress.ip_address(source.address) if source.address else None
            gateway = where.split()[1] if where.startswith("via") else None
            frm = f" from {peer_text}" if peer_text and str(peer_text) != gateway else ""
            info = f" ({self._preference(source)}{'s' if route.stale != Stale.FRESH else ''}"
            peer = self.daemon.peer_configs.get(source.name)
            if peer is None or peer.gateway != "direct":
                info += "/0" if resolvable else "/-"
            last = _last_as(route.attrs)
            origin = "ie?"[route.attrs.origin] if route.attrs.origin < 3 else ""
            info += f") [{f'AS{last}' if last is not None else ''}{origin}]"
        else:
            frm = ""
            info = f" ({self._preference(source)})"
        when = proto_time(self._since(source))
        return f"{network:<18} {where} [{name} {when}{frm}]{' *' if best else ''}{info}"

    @staticmethod
    def details(route: Route) -> list[Line]:
        """``show route all``'s lines under the route's."""
        source = route.source
        if source.origin == Origin.BGP:
            attrs = bgp_attribute_lines(route.attrs, ebgp=source.ebgp)
            return [(1008, "\tType: BGP unicast univ"), *((1012, a) for a in attrs)]
        facts = source.kernel
        kind = (
            facts.kind
            if facts is not None
            else (LocalKind.KERNEL if source.origin == Origin.KERNEL else LocalKind.STATIC)
        )
        lines: list[Line] = [(1008, f"\tType: {_TYPE_NAMES[kind]} unicast univ")]
        if kind is LocalKind.KERNEL:
            protocol = facts.protocol if facts is not None and facts.protocol is not None else 0
            metric = facts.metric if facts is not None and facts.metric is not None else 0
            lines += [(1012, f"\tKernel.source: {protocol}"), (1012, f"\tKernel.metric: {metric}")]
            if facts is not None and facts.preferred_source is not None:
                address = ipaddress.ip_address(facts.preferred_source)
                lines.append((1012, f"\tKernel.prefsrc: {address}"))
            if facts is not None and facts.realm is not None:
                lines.append((1012, f"\tKernel.realm: {facts.realm}"))
        return lines

    # -- the command ---------------------------------------------------------------------------

    def _networks(self, command: ShowRoute) -> Iterator[tuple[int, list[Route], Route | None]]:
        """(prefix, routes best first, best) of the networks the command visits."""
        view = self.daemon.rib.view
        family = self.family
        if command.network is not None:
            address, length = command.network
            lengths = range(length, -1, -1) if command.longest_match else (length,)
            bits = family.address_bits
            for plen in lengths:
                mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
                prefix = ((address & mask) << 8) | plen
                candidates = view.candidates(family, prefix)
                best, _ = view.lookup(family, prefix)
                if candidates and (best is not None or not command.longest_match):
                    yield prefix, _ordered(candidates, best), best
                    return
            return
        rows = sorted(
            ((prefix, best, candidates) for prefix, best, _, candidates in view.entries(family)),
            key=lambda row: (row[0] >> 8, row[0] & 0xFF),
        )
        for prefix, best, candidates in rows:
            yield prefix, _ordered(candidates, best), best

    def show(self, command: ShowRoute) -> Iterator[list[Line]]:
        """The reply in pieces; the last piece ends with the final line."""
        protocols = self.protocols.protocols()
        names: dict[Source, str] = {}
        shown = considered = networks = 0
        piece: list[Line] = []
        for prefix, routes, best in self._networks(command):
            network = _network_text(prefix, self.family)
            networks += 1
            for route in routes:
                considered += 1
                source = route.source
                name = names.get(source)
                if name is None:
                    name = names[source] = source_protocol(source, self.daemon, protocols)
                if command.filtered or (command.protocol and name != command.protocol):
                    continue
                shown += 1
                if command.stats < 2:
                    piece.append((1007, self.line(network, route, route is best, name)))
                    network = ""
                    if command.verbose:
                        piece.extend(self.details(route))
                if command.primary:
                    break
            if len(piece) >= CHUNK:
                yield piece
                piece = []
        if command.stats:
            piece.append((14, f"{shown} of {considered} routes for {networks} networks"))
        elif command.network is not None and not considered:
            piece.append((8001, "Network not in table"))
        else:
            piece.append((0, ""))
        yield piece


def _ordered(candidates: list[Route], best: Route | None) -> list[Route]:
    if best is None:
        return candidates
    return [best, *(r for r in candidates if r is not best)]


def _network_text(prefix: int, family: Family) -> str:
    address = prefix >> 8
    ip = (
        ipaddress.IPv4Address(address)
        if family.address_bits == 32
        else ipaddress.IPv6Address(address)
    )
    return f"{ip}/{prefix & 0xFF}"


def _local_where(facts: KernelFacts | None, source: Source) -> str:
    """Where a route of this node goes, from BIRD's facts (a blackhole without them)."""
    if facts is None:
        return "blackhole"
    dest = facts.dest
    if dest is Destination.ROUTER and facts.gateway is not None:
        device = source.interface or "?"
        return f"via {ipaddress.ip_address(facts.gateway)} on {device}"
    if dest is Destination.DEVICE:
        return f"dev {source.interface or '?'}"
    return {
        Destination.UNREACHABLE: "unreachable",
        Destination.PROHIBIT: "prohibited",
        Destination.MULTIPATH: "multipath",
    }.get(dest, "blackhole")
