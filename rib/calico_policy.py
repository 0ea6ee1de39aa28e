"""Calico's built-in BGP policy, as confd's BIRD templates write it, composed with BGPFilters.

Role: turn the Calico datastore's view of this node (IP pools, the node's confirmed IPAM blocks,
prefix advertisements, advertised service ranges) into the per-peer import and export checks the
RIB runs, and into the kernel-programming check (BIRD's ``calico_kernel_programming``).

Data flow: the config layer fills a frozen ``CalicoPolicyInputs`` and one
``policy.PeerContext`` per session, parses the peer's ``BGPFilter`` objects with
``filter_from_crd``, and calls ``compile_export`` / ``compile_import`` (per peer) and
``compile_kernel_programming`` (once) whenever any of it changes. The RIB then calls the returned
closures per prefix; they always answer ACCEPT or REJECT (see ``rib.policy.Verdict``).

Order, as the confd templates render the peer protocols (calico-bird.md section 1, "Global and
node-specific peers"):

* export: ``<bgpfilter funcs>(); calico_export_to_bgp_peers(peerAS == nodeAS); reject;``
* import: ``<bgpfilter funcs>(); accept;`` (mesh peers: ``import all``, no filters)

so the user's filters run first and their Accept or Reject is final (a BIRD ``accept`` inside a
function ends the whole filter): an exporting Accept skips the pool check and the prefix
advertisement communities, exactly as BIRD does. Only when no user rule matches do the defaults
below decide.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from rib.policy import (
    ACCEPTED,
    Action,
    AddCommunity,
    AttrsEdit,
    Direction,
    Filter,
    LargeCommunity,
    MatchOperator,
    Operation,
    PeerContext,
    PeerType,
    PolicyCheck,
    PrefixLength,
    PrefixSet,
    PrependAsPath,
    Rule,
    RuleSource,
    SetPriority,
    Verdict,
    VerdictFor,
    accepting,
    cidr_for,
    compile_filters,
    glob_matcher,
    network_mask,
    next_hop_is_own,
    own_as_count,
    parse_cidr,
    parse_community,
)
from rib.route import Route
from speaker.path_attributes import PathAttributes
from speaker.wire_codes import Family

_V4 = Family.IPV4_UNICAST
_V6 = Family.IPV6_UNICAST


class EncapMode(Enum):
    """An IP pool's ``ipipMode`` / ``vxlanMode``."""

    NEVER = "Never"
    ALWAYS = "Always"
    CROSS_SUBNET = "CrossSubnet"


@dataclass(frozen=True, slots=True)
class IpPool:
    """One IP pool.

    ``disable_bgp_export`` is what confd's ``reject_disabled_pools`` reads
    (``IPPool.spec.disableBGPExport``); a pool merely disabled for allocation is still exported.
    """

    cidr: str
    disable_bgp_export: bool = False
    ipip_mode: EncapMode = EncapMode.NEVER
    vxlan_mode: EncapMode = EncapMode.NEVER


@dataclass(frozen=True, slots=True)
class PrefixAdvertisement:
    """``BGPConfiguration.prefixAdvertisements[]``: communities by name or ``aa:nn[:mm]``."""

    cidr: str
    communities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CalicoPolicyInputs:
    """Everything Calico's default policy depends on, for both families.

    ``own_blocks`` holds the node's *confirmed* block affinities only (pending ones are never
    advertised, PR #1712). ``prefix_advertisements`` is the node-specific list when the node has
    one, else the global one (confd picks one, never merges). ``service_cidrs`` are the ranges
    confd puts under ``/staticroutes`` (advertised serviceClusterIPs / serviceExternalIPs /
    serviceLoadBalancerIPs) and ``/allowlist`` (a route reflector's LB/external ranges): routes
    inside them are exported, and never programmed into the kernel (``/rejectcidrs``).
    """

    pools: tuple[IpPool, ...] = ()
    own_blocks: tuple[str, ...] = ()
    prefix_advertisements: tuple[PrefixAdvertisement, ...] = ()
    communities: tuple[tuple[str, str], ...] = ()  # BGPConfiguration.communities: (name, value)
    service_cidrs: tuple[str, ...] = ()
    # Routes through these devices are Felix's: not exported to iBGP peers (reject_tunnel_routes)
    tunnel_interfaces: tuple[str, ...] = ("*.cali", "*.calico")
    # ... and these are never exported at all (master's reject_local_routes).
    local_only_interfaces: tuple[str, ...] = ("bpf*.cali",)
    # master: more-specifics of an own block with krt_metric below this are exported (VM live
    # migration); ipv4/ipv6NormalRoutePriority. None restores v3.28 behaviour.
    normal_route_priority: int | None = 1024
    node_networks: tuple[str, ...] = ()  # the node's subnet(s), for IPIP CrossSubnet
    ipip_device: str = "tunl0"
    felix_programs_ipip: bool = False  # programClusterRoutes: Felix owns IPIP routes (v3.33+)


# --- export -----------------------------------------------------------------------------------

_REJECT_DISABLED = Verdict(Action.REJECT, reason="calico: pool has BGP export disabled")
_REJECT_DEVICE = Verdict(Action.REJECT, reason="calico: tunnel/local device route")
_REJECT_INSIDE_BLOCK = Verdict(Action.REJECT, reason="calico: more specific than own block")
_REJECT_NOT_CALICO = Verdict(Action.REJECT, reason="calico: not in a pool, block or service")
_REJECT_OWN_BLOCK = Verdict(Action.REJECT, reason="calico: inside own block")
_REJECT_LOOP = Verdict(Action.REJECT, reason="AS path loop")
_REJECT_OWN_NEXT_HOP = Verdict(Action.REJECT, reason="next hop is our own address")

_OWN_BLOCK, _ELEVATED, _SERVICE, _POOL = range(4)
_ACCEPT_REASONS = (
    "calico: own block",
    "calico: elevated-priority route in own block",
    "calico: advertised service range",
    "calico: IP pool",
)
_PLAIN_ACCEPTS = tuple(Verdict(Action.ACCEPT, reason=r) for r in _ACCEPT_REASONS)


def resolve_communities(tokens: Sequence[str], named: Mapping[str, str]) -> AttrsEdit:
    """A prefix advertisement's communities as an edit.

    Each token is a name from ``BGPConfiguration.communities`` or a literal ``aa:nn[:mm]``.
    """
    std: list[int] = []
    large: list[LargeCommunity] = []
    for token in tokens:
        value = parse_community(named.get(token, token))
        if isinstance(value, int):
            std.append(value)
        else:
            large.append(value)
    return AttrsEdit(tuple(std), tuple(large))


def _any_glob(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    if not patterns:
        return None
    if len(patterns) == 1:
        return glob_matcher(patterns[0])
    matchers = tuple(glob_matcher(p) for p in patterns)
    seen: dict[str, bool] = {}

    def matches(name: str) -> bool:
        hit = seen.get(name)
        if hit is None:
            hit = seen[name] = any(m(name) for m in matchers)
        return hit

    return matches


def _family_prefixes(cidrs: Sequence[str], family: Family) -> list[int]:
    out = []
    for text in cidrs:
        got, prefix = parse_cidr(text)
        if got == family:
            out.append(prefix)
    return out


# What a prefix is to the export defaults: bits of the members that cover it.
_IN_DISABLED, _IN_BLOCK, _IN_SERVICE, _IN_POOL = 1, 2, 4, 8
# A classified prefix: (verdict to return, or None to call verdict_for on the attributes;
# verdict_for; for a more-specific of an own block, what an elevated priority gets instead).
_Entry = tuple[Verdict | None, VerdictFor | None, VerdictFor | None]
_MEMO_LIMIT = 1 << 17


class _ExportClassifier:
    """The prefix-only part of ``calico_export_to_bgp_peers`` for one family.

    Pools, disabled pools, own blocks and service ranges go into one table keyed by masked
    prefix, one dict per distinct length, so a prefix is classified in one pass. The outcome
    depends on the prefix alone, so it is memoised per prefix (bounded; the entries themselves
    are shared per outcome).
    """

    def __init__(self, inputs: CalicoPolicyInputs, family: Family) -> None:
        bits = family.address_bits
        members: dict[int, int] = {}

        def add(prefix: int, bit: int) -> None:
            members[prefix] = members.get(prefix, 0) | bit

        for pool in inputs.pools:
            got, cidr = parse_cidr(pool.cidr)
            if got == family:
                add(cidr, _IN_DISABLED if pool.disable_bgp_export else _IN_POOL)
        for block in _family_prefixes(inputs.own_blocks, family):
            add(block, _IN_BLOCK)
        for service in _family_prefixes(inputs.service_cidrs, family):
            add(service, _IN_SERVICE)
        by_length: dict[int, dict[int, int]] = {}
        for prefix, bits_set in members.items():
            by_length.setdefault(prefix & 0xFF, {})[prefix] = bits_set
        self.table = tuple(
            (length, network_mask(length, bits), by_length[length]) for length in sorted(by_length)
        )
        named = dict(inputs.communities)
        adverts = []
        for adv in inputs.prefix_advertisements:
            got, cidr = parse_cidr(adv.cidr)
            if got == family:
                mask = network_mask(cidr & 0xFF, bits)
                edit = resolve_communities(adv.communities, named)
                adverts.append((mask, cidr & mask, cidr & 0xFF, edit))
        self.adverts = tuple(adverts)
        self.memo: dict[int, _Entry] = {}
        self._entries: dict[tuple[int, tuple[int, ...], bool], _Entry] = {}

    def classify(self, prefix: int) -> _Entry:
        """The memoised outcome for ``prefix``."""
        plen = prefix & 0xFF
        found = 0
        exact_block = False
        for length, mask, members in self.table:
            if length > plen:
                break
            key = (prefix & mask) | length
            bits_set = members.get(key)
            if bits_set is not None:
                found |= bits_set
                if bits_set & _IN_BLOCK and key == prefix:
                    exact_block = True
        # calico_export_to_bgp_peers: reject_disabled_pools, [reject_tunnel_routes: per route,
        # in the caller], apply_communities, calico_aggr, static routes, pools, reject.
        if found & _IN_DISABLED:
            entry: _Entry = (_REJECT_DISABLED, None, None)
        elif found & _IN_BLOCK:
            if exact_block:
                entry = self._accept(_OWN_BLOCK, prefix, inside_block=False)
            else:
                entry = self._accept(_ELEVATED, prefix, inside_block=True)
        elif found & _IN_SERVICE:
            entry = self._accept(_SERVICE, prefix, inside_block=False)
        elif found & _IN_POOL:
            entry = self._accept(_POOL, prefix, inside_block=False)
        else:
            entry = (_REJECT_NOT_CALICO, None, None)
        memo = self.memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[prefix] = entry
        return entry

    def _accept(self, kind: int, prefix: int, inside_block: bool) -> _Entry:
        # apply_communities(): every advertisement containing the prefix adds its communities.
        plen = prefix & 0xFF
        hits = tuple(
            i
            for i, (mask, value, length, _) in enumerate(self.adverts)
            if plen >= length and prefix & mask == value
        )
        key = (kind, hits, inside_block)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        reason = _ACCEPT_REASONS[kind]
        if hits:
            edit = AttrsEdit(
                tuple(c for i in hits for c in self.adverts[i][3].communities),
                tuple(c for i in hits for c in self.adverts[i][3].large_communities),
            )
            verdict_for = accepting(edit, None, reason)
        else:
            plain = _PLAIN_ACCEPTS[kind]

            def verdict_for(_attrs: PathAttributes) -> Verdict:
                return plain

        if inside_block:
            entry = (_REJECT_INSIDE_BLOCK, None, verdict_for)
        elif hits:
            entry = (None, verdict_for, None)
        else:
            entry = (_PLAIN_ACCEPTS[kind], None, None)
        self._entries[key] = entry
        return entry


@functools.lru_cache(maxsize=4)
def _export_defaults(inputs: CalicoPolicyInputs, internal: bool) -> PolicyCheck:
    """``calico_export_to_bgp_peers(internal)`` for both families.

    See calico-bird.md section 1, "Export function", and ``calico_aggr`` under "Own blocks versus
    other nodes' blocks". Cached on the inputs: every peer of the same kind shares one closure
    and so one per-prefix memo.
    """
    c4 = _ExportClassifier(inputs, _V4)
    c6 = _ExportClassifier(inputs, _V6)
    memo4, memo6 = c4.memo, c6.memo
    tunnels = inputs.tunnel_interfaces
    if inputs.felix_programs_ipip:
        tunnels += (inputs.ipip_device,)  # master: Felix's IPIP routes are tunnel routes too
    device_rejected = _any_glob((tunnels if internal else ()) + inputs.local_only_interfaces)
    normal = inputs.normal_route_priority

    def check(prefix: int, family: Family, route: Route, priority: int | None = None) -> Verdict:
        if family == _V4:
            entry = memo4.get(prefix) or c4.classify(prefix)
        else:
            entry = memo6.get(prefix) or c6.classify(prefix)
        verdict, verdict_for, elevated = entry
        if verdict is _REJECT_DISABLED:
            return verdict
        if device_rejected is not None:
            iface = route.source.interface
            if iface is not None and device_rejected(iface):
                return _REJECT_DEVICE
        # master's calico_aggr: `net ~ block && krt_metric < normal` is exported (live migration)
        if (
            elevated is not None
            and priority is not None
            and normal is not None
            and priority < normal
        ):
            return elevated(route.attrs)
        if verdict is not None:
            return verdict
        assert verdict_for is not None
        return verdict_for(route.attrs)

    return check


def compile_export(
    inputs: CalicoPolicyInputs, peer: PeerContext, filters: Sequence[Filter] = ()
) -> PolicyCheck:
    """The export check for one peer: its BGPFilters, then Calico's export function.

    Mesh peers pass no filters (their template is ``calico_export_to_bgp_peers(true); reject``).
    """
    defaults = _export_defaults(inputs, peer.ibgp)
    if not any(f.export_v4 or f.export_v6 for f in filters):
        return defaults
    user = compile_filters(filters, Direction.EXPORT, peer)

    def check(prefix: int, family: Family, route: Route, priority: int | None = None) -> Verdict:
        verdict = user(prefix, family, route, priority)
        if verdict[0]:
            return verdict
        return defaults(prefix, family, route, priority)

    return check


# --- import -----------------------------------------------------------------------------------


def import_reads_prefix(inputs: CalicoPolicyInputs, filters: Sequence[Filter]) -> bool:
    """Whether ``compile_import``'s check depends on the prefix (own blocks, import filters).

    When not, the RIB asks it once per attribute set instead of once per prefix.
    """
    return bool(inputs.own_blocks) or any(f.import_v4 or f.import_v6 for f in filters)


def compile_import(
    inputs: CalicoPolicyInputs,
    peer: PeerContext,
    filters: Sequence[Filter] = (),
    *,
    allow_own_as: int = 0,
    own_addresses: frozenset[bytes] = frozenset(),
) -> PolicyCheck:
    """The import check for one peer.

    In order: AS-path loop (``peer.local_as`` more than ``allow_own_as`` times, Calico's
    ``numAllowedLocalASNumbers``), a next hop that is one of ``own_addresses`` (packed 4 or 16
    octets), the peer's BGPFilters (first match is final), then Myna's default: reject anything
    equal to or inside one of the node's own blocks, accept the rest. BIRD imports these: for
    the exact block its static blackhole (preference 200) beats BGP's 100, but a more-specific
    would win by longest match and steer the node's own workload traffic away; Myna refuses
    them. A user import Accept, being final, still lets one in (e.g. a migrated VM's /32 with a
    set priority).
    """
    asn = peer.local_as
    blocks4 = PrefixSet(_family_prefixes(inputs.own_blocks, _V4), _V4)
    blocks6 = PrefixSet(_family_prefixes(inputs.own_blocks, _V6), _V6)
    has_filters = any(f.import_v4 or f.import_v6 for f in filters)
    user = compile_filters(filters, Direction.IMPORT, peer)

    def check(prefix: int, family: Family, route: Route, priority: int | None = None) -> Verdict:
        attrs = route.attrs
        path = attrs.as_path
        if path and own_as_count(path, asn) > allow_own_as:
            return _REJECT_LOOP
        if own_addresses and next_hop_is_own(attrs.next_hop, own_addresses):
            return _REJECT_OWN_NEXT_HOP
        if has_filters:
            verdict = user(prefix, family, route, priority)
            if verdict[0]:
                return verdict
        if (blocks4 if family == _V4 else blocks6).covering(prefix) is not None:
            return _REJECT_OWN_BLOCK
        return ACCEPTED

    return check


# --- kernel programming -----------------------------------------------------------------------


class KernelVerdict(NamedTuple):
    """Whether a best route goes into the kernel, and through which tunnel device.

    ``tunnel`` is BIRD's ``krt_tunnel``; None for a plain route via its next hop.
    """

    accept: bool
    tunnel: str | None = None
    reason: str = ""


KernelCheck = Callable[[int, Family, Route], KernelVerdict]
_KERNEL_PLAIN = KernelVerdict(True, None, "kernel: plain route")


def compile_kernel_programming(inputs: CalicoPolicyInputs) -> KernelCheck:
    """``calico_kernel_programming`` (calico-bird.md section 1, "Filter ...").

    Service ranges are not programmed; in a pool, VXLAN (and IPIP when Felix owns it) is
    Felix's; IPIP Always goes via the tunnel; CrossSubnet goes via the tunnel unless the BGP next
    hop is on the node's own subnet. IPv6 only rejects VXLAN pools.
    """
    rejects = {f: PrefixSet(_family_prefixes(inputs.service_cidrs, f), f) for f in (_V4, _V6)}
    subnets = []
    for text in inputs.node_networks:
        got, net = parse_cidr(text)
        if got == _V4:
            mask = network_mask(net & 0xFF, 32)
            subnets.append((mask >> 8, (net & mask) >> 8))
    tunnel = inputs.ipip_device
    felix_vxlan = KernelVerdict(False, None, "kernel: VXLAN pool, Felix programs it")
    felix_ipip = KernelVerdict(False, None, "kernel: IPIP pool, Felix programs it")
    via_tunnel = KernelVerdict(True, tunnel, "kernel: IPIP")
    service = KernelVerdict(False, None, "kernel: advertised service range")
    # (family, mask, value, length, what): what is a verdict or "cross" for CrossSubnet.
    pool_table: list[tuple[Family, int, int, int, KernelVerdict | None]] = []
    for pool in inputs.pools:
        family, cidr = parse_cidr(pool.cidr)
        mask = network_mask(cidr & 0xFF, family.address_bits)
        what: KernelVerdict | None
        if pool.vxlan_mode is not EncapMode.NEVER:
            what = felix_vxlan
        elif family == _V6 or pool.ipip_mode is EncapMode.NEVER:
            what = _KERNEL_PLAIN
        elif inputs.felix_programs_ipip:
            what = felix_ipip
        elif pool.ipip_mode is EncapMode.ALWAYS:
            what = via_tunnel
        else:
            what = None  # CrossSubnet: decided by the next hop
        pool_table.append((family, mask, cidr & mask, cidr & 0xFF, what))
    table = tuple(pool_table)

    # BIRD's `bgp_next_hop ~ network`; few distinct next hops (one per node), so memoised.
    next_hops: dict[bytes, bool] = {}

    def on_subnet(next_hop: bytes) -> bool:
        hit = next_hops.get(next_hop)
        if hit is None:
            address = int.from_bytes(next_hop, "big")
            hit = len(next_hop) == 4 and any(address & m == v for m, v in subnets)
            if len(next_hops) >= 4096:
                next_hops.clear()
            next_hops[next_hop] = hit
        return hit

    def check(prefix: int, family: Family, route: Route) -> KernelVerdict:
        if rejects[family].covering(prefix) is not None:
            return service
        plen = prefix & 0xFF
        for pool_family, mask, value, length, what in table:
            if pool_family == family and plen >= length and prefix & mask == value:
                if what is not None:
                    return what
                return _KERNEL_PLAIN if on_subnet(route.attrs.next_hop) else via_tunnel
        return _KERNEL_PLAIN

    return check


# --- BGPFilter CRD parsing --------------------------------------------------------------------

_RULE_KEYS = frozenset(
    {
        "action",
        "matchOperator",
        "cidr",
        "prefixLength",
        "source",
        "interface",
        "peerType",
        "communities",
        "asPathPrefix",
        "priority",
        "operations",
    }
)
_LISTS = (
    ("exportV4", _V4, "export_v4"),
    ("importV4", _V4, "import_v4"),
    ("exportV6", _V6, "export_v6"),
    ("importV6", _V6, "import_v6"),
)


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping")
    return value


def _opt_int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer")
    return value


def _operation(data: Mapping[str, object]) -> Operation:
    if len(data) != 1:
        raise ValueError("an operation sets exactly one of addCommunity/prependASPath/setPriority")
    ((key, raw),) = data.items()
    body = _mapping(raw, key)
    if key == "addCommunity":
        value = body.get("value")
        if not isinstance(value, str):
            raise ValueError("addCommunity.value must be a string")
        parse_community(value)
        return AddCommunity(value)
    if key == "prependASPath":
        asns = body.get("prefix")
        if not isinstance(asns, list) or not asns:
            raise ValueError("prependASPath.prefix must be a non-empty list")
        return PrependAsPath(tuple(int(str(a)) for a in asns))
    if key == "setPriority":
        value_int = _opt_int(body.get("value"), "setPriority.value")
        if value_int is None:
            raise ValueError("setPriority.value is required")
        return SetPriority(value_int)
    raise ValueError(f"unknown operation {key!r}")


def rule_from_crd(data: Mapping[str, object], family: Family) -> Rule:
    """One rule of a ``BGPFilter`` spec list, as the Kubernetes API returns it."""
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise ValueError(f"unknown BGPFilter rule fields: {sorted(unknown)}")
    action = {"Accept": Action.ACCEPT, "Reject": Action.REJECT}.get(str(data.get("action")))
    if action is None:
        raise ValueError(f"rule action must be Accept or Reject, not {data.get('action')!r}")
    cidr = data.get("cidr") or None
    if cidr is not None:
        cidr_for(str(cidr), family)  # the family check, at config time
    operator = MatchOperator(data["matchOperator"]) if data.get("matchOperator") else None
    prefix_length = None
    if data.get("prefixLength") is not None:
        pl = _mapping(data["prefixLength"], "prefixLength")
        prefix_length = PrefixLength(_opt_int(pl.get("min"), "min"), _opt_int(pl.get("max"), "max"))
    communities: tuple[str, ...] = ()
    if data.get("communities") is not None:
        values = _mapping(data["communities"], "communities").get("values")
        if not isinstance(values, list) or not values:
            raise ValueError("communities.values must be a non-empty list")
        communities = tuple(str(v) for v in values)
    as_path_raw = data.get("asPathPrefix") or []
    if not isinstance(as_path_raw, list):
        raise ValueError("asPathPrefix must be a list")
    operations_raw = data.get("operations") or []
    if not isinstance(operations_raw, list):
        raise ValueError("operations must be a list")
    return Rule(
        action=action,
        match_operator=operator,
        cidr=None if cidr is None else str(cidr),
        prefix_length=prefix_length,
        source=RuleSource(data["source"]) if data.get("source") else None,
        interface=str(data["interface"]) if data.get("interface") else None,
        peer_type=PeerType(data["peerType"]) if data.get("peerType") else None,
        communities=communities,
        as_path_prefix=tuple(int(str(a)) for a in as_path_raw),
        priority=_opt_int(data.get("priority"), "priority"),
        operations=tuple(_operation(_mapping(op, "operation")) for op in operations_raw),
    )


def filter_from_crd(name: str, spec: Mapping[str, object]) -> Filter:
    """A ``Filter`` from a ``BGPFilter``'s ``spec`` (``exportV4``, ``importV4``, ...)."""
    lists: dict[str, tuple[Rule, ...]] = {}
    for key, family, attr in _LISTS:
        raw = spec.get(key) or []
        if not isinstance(raw, list):
            raise ValueError(f"{key} must be a list")
        lists[attr] = tuple(rule_from_crd(_mapping(r, key), family) for r in raw)
    return Filter(name, **lists)
