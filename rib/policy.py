"""The route policy engine: Calico ``BGPFilter`` rules compiled into per-peer check functions.

Role: decide, for one prefix and one ``Route``, whether a route may enter the Adj-RIB-In
(import) or leave through the Adj-RIB-Out (export), and with which attribute set. Everything
here is pure: values in, ``Verdict`` out, no I/O, no clock.

Data flow: the config layer builds ``Filter`` values (by hand or with
``rib.calico_policy.filter_from_crd``) and a ``PeerContext`` per session, and calls
``compile_filters`` once per peer and direction when the config changes. The result is a plain
closure ``check(prefix, family, route, priority=None) -> Verdict`` that the RIB calls per prefix;
``rib.calico_policy`` wraps it with Calico's built-in defaults. ``Verdict.attrs`` is None when
the attributes are unchanged, otherwise a set interned in ``ATTRIBUTES``; the edits are cached per
(rule, attribute set), so a million prefixes sharing one set cost one edit.

Also here: AS-path loop detection (``as_path_loops``), the own-next-hop test
(``next_hop_is_own``), ``PrefixSet`` (containment by int masks, one set lookup per distinct
length) and ``PrefixLimit`` (the per-peer maximum-prefix guard, RFC 4486 Cease 6/1).

Speed: a compiled rule is a flat tuple ``(mask, value, lo, hi, negate, pred, verdict, edit)``;
the CIDR test is two int operations and a range compare inlined in the check loop, and the rarer
conditions (source, interface, communities, AS path, priority) are folded into one optional
predicate. Peer type is known when compiling, so rules for the other peer type are dropped then
and cost nothing per prefix.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple, Protocol

from rib.route import Origin, Route
from speaker.path_attributes import ATTRIBUTES, AsPath, PathAttributes
from speaker.wire_codes import AsPathSegmentType, CeaseSubcode, ErrorCode, Family

_V4 = Family.IPV4_UNICAST
_V6 = Family.IPV6_UNICAST
_SEQUENCE = int(AsPathSegmentType.AS_SEQUENCE)
_BGP = Origin.BGP

# Bounds the (attrs -> edited attrs) caches. Keys are id()s checked against the stored set, so a
# reused id can never return a stale edit; the bound only caps how many sets the caches keep
# alive (tuples cannot be weak-referenced).
_EDIT_CACHE_LIMIT = 8192


class Action(IntEnum):
    """What a rule or a whole policy decided. NO_MATCH is falsy, so ``if verdict[0]`` tests it."""

    NO_MATCH = 0
    ACCEPT = 1
    REJECT = 2


class Verdict(NamedTuple):
    """The outcome of a policy check.

    ``attrs`` is None when the route's attribute set is unchanged (the common case, and then the
    verdict is a shared constant); otherwise the edited, interned set. ``priority`` is the
    kernel-route priority a rule set (BIRD's ``krt_metric``; lower wins), None if none did.
    ``reason`` names the deciding rule, for logs and ``show route``. ``tunnel`` is the device a
    BIRD filter chose with Calico's ``krt_tunnel`` ("" for none), ``preference`` a BIRD filter's
    ``preference =``; both None when not set.
    """

    action: Action
    attrs: PathAttributes | None = None
    priority: int | None = None
    reason: str = ""
    tunnel: str | None = None
    preference: int | None = None

    def attrs_for(self, original: PathAttributes) -> PathAttributes:
        """The attribute set the route carries after this verdict."""
        return original if self.attrs is None else self.attrs


NO_MATCH = Verdict(Action.NO_MATCH, reason="no rule matched")
ACCEPTED = Verdict(Action.ACCEPT, reason="accepted")
REJECTED = Verdict(Action.REJECT, reason="rejected")


class PolicyCheck(Protocol):
    """A compiled policy: ``check(prefix, family, route, priority=None) -> Verdict``.

    ``priority`` is the route's current kernel priority (``krt_metric``) when the caller tracks
    one (a kernel route's metric, or what an import rule set), else None.
    """

    def __call__(
        self, prefix: int, family: Family, route: Route, priority: int | None = None, /
    ) -> Verdict:
        """Decide for one route to one prefix."""


class Direction(Enum):
    """Which of a filter's rule lists applies."""

    IMPORT = "import"
    EXPORT = "export"


class MatchOperator(Enum):
    """Calico ``matchOperator``: BIRD's ``=``, ``!=``, ``~``, ``!~`` on the prefix."""

    EQUAL = "Equal"
    NOT_EQUAL = "NotEqual"
    IN = "In"
    NOT_IN = "NotIn"


class PeerType(Enum):
    """Calico ``peerType`` (eBGP/iBGP: peer AS versus node AS) plus Myna's RR-client type."""

    EBGP = "eBGP"
    IBGP = "iBGP"
    RR_CLIENT = "RRClient"


class RuleSource(Enum):
    """Calico ``source``: ``RemotePeers`` means routes learned over BGP (BIRD ``RTS_BGP``)."""

    REMOTE_PEERS = "RemotePeers"


@dataclass(frozen=True, slots=True)
class PrefixLength:
    """Calico ``prefixLength``; unset bounds default to the CIDR's length and the family width."""

    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class AddCommunity:
    """Add a community: ``aa:nn`` (RFC 1997) or ``aa:bb:cc`` (RFC 8092 large)."""

    value: str


@dataclass(frozen=True, slots=True)
class PrependAsPath:
    """Prepend ``asns`` in the order given, or the session's own AS ``own_as_times`` times."""

    asns: tuple[int, ...] = ()
    own_as_times: int = 0


@dataclass(frozen=True, slots=True)
class SetPriority:
    """Set the kernel-route priority (BIRD ``krt_metric``); carried in ``Verdict.priority``."""

    value: int


@dataclass(frozen=True, slots=True)
class SetLocalPref:
    """Set LOCAL_PREF (a Myna extension; Calico's CRD has no such operation)."""

    value: int


Operation = AddCommunity | PrependAsPath | SetPriority | SetLocalPref


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``BGPFilter`` rule: every set field must match; unset fields match anything."""

    action: Action
    match_operator: MatchOperator | None = None
    cidr: str | None = None
    prefix_length: PrefixLength | None = None
    source: RuleSource | None = None
    interface: str | None = None  # BIRD glob: ``*`` and ``?``
    peer_type: PeerType | None = None
    communities: tuple[str, ...] = ()  # the route must carry every one
    as_path_prefix: tuple[int, ...] = ()
    priority: int | None = None  # matches the route's krt_metric
    operations: tuple[Operation, ...] = ()

    def __post_init__(self) -> None:
        if self.action not in (Action.ACCEPT, Action.REJECT):
            raise ValueError("a rule's action is Accept or Reject")
        if (self.cidr is None) != (self.match_operator is None):
            raise ValueError("cidr and matchOperator go together")
        # BIRD compares a prefix with a prefix set only through ~; confd would render
        # `net = [ cidr{a,b} ]`, which fails at run time and rejects every route it reaches.
        if self.prefix_length is not None and self.match_operator not in (
            MatchOperator.IN,
            MatchOperator.NOT_IN,
        ):
            raise ValueError("prefixLength needs matchOperator In or NotIn")
        if self.operations and self.action is not Action.ACCEPT:
            raise ValueError("operations are only valid with action Accept")
        for op in self.operations:
            if isinstance(op, PrependAsPath) and bool(op.asns) == bool(op.own_as_times > 0):
                raise ValueError("prependASPath takes either ASNs or a count of own AS")


@dataclass(frozen=True, slots=True)
class Filter:
    """A ``BGPFilter``: four rule lists, named as in the CRD."""

    name: str
    export_v4: tuple[Rule, ...] = ()
    import_v4: tuple[Rule, ...] = ()
    export_v6: tuple[Rule, ...] = ()
    import_v6: tuple[Rule, ...] = ()

    def rules(self, direction: Direction, family: Family) -> tuple[Rule, ...]:
        """The rule list for one direction and family."""
        if direction is Direction.EXPORT:
            return self.export_v4 if family == _V4 else self.export_v6
        return self.import_v4 if family == _V4 else self.import_v6


@dataclass(frozen=True, slots=True)
class PeerContext:
    """What compiling needs to know about the session a policy serves.

    ``ibgp`` is Calico's ``is_same_as`` (peer AS equals the node AS); ``local_as`` is the AS this
    session speaks as (``localASNumber`` or the node AS), used by own-AS prepends and loop checks.
    """

    ibgp: bool
    rr_client: bool = False
    local_as: int = 0


# --- prefixes ---------------------------------------------------------------------------------


def parse_cidr(text: str) -> tuple[Family, int]:
    """``"198.18.0.0/15"`` -> (family, prefix int). Host bits are cleared, as BIRD does."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    family = _V4 if net.version == 4 else _V6
    return family, (int(net.network_address) << 8) | net.prefixlen


def cidr_for(text: str, family: Family) -> int:
    """The prefix int of ``text``, which must belong to ``family``."""
    got, prefix = parse_cidr(text)
    if got != family:
        raise ValueError(f"{text} is not an {family.name} prefix")
    return prefix


def network_mask(length: int, bits: int) -> int:
    """The mask over a prefix int that keeps a ``length``-bit network and drops the length."""
    return (((1 << length) - 1) << (bits - length)) << 8


class PrefixSet:
    """A set of prefixes of one family, answering "which member covers this prefix?".

    Members are grouped by length: a lookup masks the prefix once per distinct member length
    (usually one or two: pools, or blocks of one block size) and probes a frozenset.
    """

    __slots__ = ("_lengths", "members")

    def __init__(self, prefixes: Iterable[int], family: Family) -> None:
        bits = family.address_bits
        self.members = frozenset(prefixes)
        lengths = sorted({p & 0xFF for p in self.members})
        self._lengths = tuple((length, network_mask(length, bits)) for length in lengths)

    def covering(self, prefix: int) -> int | None:
        """The shortest member that equals or contains ``prefix``, or None."""
        plen = prefix & 0xFF
        members = self.members
        for length, mask in self._lengths:
            if length > plen:
                return None
            key = (prefix & mask) | length
            if key in members:
                return key
        return None

    def __bool__(self) -> bool:
        return bool(self.members)

    def __len__(self) -> int:
        return len(self.members)


# --- attribute edits --------------------------------------------------------------------------

LargeCommunity = tuple[int, int, int]


def parse_community(text: str) -> int | LargeCommunity:
    """``"aa:nn"`` -> standard community int; ``"aa:bb:cc"`` -> large community triple."""
    parts = text.strip().split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"bad community {text!r}") from None
    if len(values) == 2 and all(0 <= v <= 0xFFFF for v in values):
        return (values[0] << 16) | values[1]
    if len(values) == 3 and all(0 <= v <= 0xFFFFFFFF for v in values):
        return (values[0], values[1], values[2])
    raise ValueError(f"bad community {text!r}: want aa:nn (16-bit) or aa:bb:cc (32-bit)")


def prepend_as_path(path: AsPath, asns: tuple[int, ...]) -> AsPath:
    """``asns`` in front of ``path``, merged into its leading AS_SEQUENCE like BIRD's prepend.

    Segments longer than 255 ASes are split by the encoder, so no length check here.
    """
    if path and path[0][0] == _SEQUENCE:
        return ((_SEQUENCE, asns + path[0][1]), *path[1:])
    return ((_SEQUENCE, asns), *path)


@dataclass(frozen=True, slots=True)
class AttrsEdit:
    """The attribute changes of one rule (or of Calico's ``apply_communities``)."""

    communities: tuple[int, ...] = ()
    large_communities: tuple[LargeCommunity, ...] = ()
    prepend: tuple[int, ...] = ()
    local_pref: int | None = None

    @property
    def empty(self) -> bool:
        """True when applying it changes nothing."""
        return (
            not (self.communities or self.large_communities or self.prepend)
            and self.local_pref is None
        )

    def apply(self, attrs: PathAttributes) -> PathAttributes:
        """The interned set with this edit applied (adding a present community is a no-op)."""
        communities = attrs.communities
        extra = tuple(c for c in self.communities if c not in communities)
        large = attrs.large_communities
        extra_large = tuple(c for c in self.large_communities if c not in large)
        local_pref = attrs.local_pref if self.local_pref is None else self.local_pref
        if not (extra or extra_large or self.prepend) and local_pref == attrs.local_pref:
            return attrs
        return ATTRIBUTES.intern(
            attrs._replace(
                communities=communities + extra,
                large_communities=large + extra_large,
                as_path=prepend_as_path(attrs.as_path, self.prepend)
                if self.prepend
                else attrs.as_path,
                local_pref=local_pref,
            )
        )


def edit_from_operations(operations: Sequence[Operation], local_as: int) -> AttrsEdit:
    """The combined edit of a rule's operations (priority is not an attribute edit)."""
    communities: list[int] = []
    large: list[LargeCommunity] = []
    prepend: tuple[int, ...] = ()
    local_pref = None
    for op in operations:
        if isinstance(op, AddCommunity):
            value = parse_community(op.value)
            if isinstance(value, int):
                communities.append(value)
            else:
                large.append(value)
        elif isinstance(op, PrependAsPath):
            asns = op.asns or (local_as,) * op.own_as_times
            prepend = asns + prepend  # a later prepend lands in front of an earlier one
        elif isinstance(op, SetLocalPref):
            local_pref = op.value
    return AttrsEdit(tuple(communities), tuple(large), prepend, local_pref)


VerdictFor = Callable[[PathAttributes], Verdict]


def accepting(edit: AttrsEdit, priority: int | None, reason: str) -> VerdictFor:
    """``attrs -> Verdict(ACCEPT, edited attrs)``, memoised per attribute set.

    The cache is keyed by ``id(attrs)`` and checked by identity, because hashing a set (a
    14-field tuple) costs more than the edit lookup should.
    """
    cache: dict[int, tuple[PathAttributes, Verdict]] = {}

    def verdict_for(attrs: PathAttributes) -> Verdict:
        hit = cache.get(id(attrs))
        if hit is not None and hit[0] is attrs:
            return hit[1]
        edited = edit.apply(attrs)
        verdict = Verdict(Action.ACCEPT, None if edited is attrs else edited, priority, reason)
        if len(cache) >= _EDIT_CACHE_LIMIT:
            cache.clear()
        cache[id(attrs)] = (attrs, verdict)
        return verdict

    return verdict_for


# --- rule compilation -------------------------------------------------------------------------

Predicate = Callable[[Route, "int | None"], bool]
CompiledRule = tuple[int, int, int, int, bool, Predicate | None, Verdict, VerdictFor | None]


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """BIRD's ``ifname ~ "pattern"``: ``*`` any run, ``?`` one character; memoised per name."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    fullmatch = re.compile(regex, re.DOTALL).fullmatch
    seen: dict[str, bool] = {}

    def matches(name: str) -> bool:
        hit = seen.get(name)
        if hit is None:
            hit = seen[name] = fullmatch(name) is not None
        return hit

    return matches


def as_path_starts_with(path: AsPath, want: tuple[int, ...]) -> bool:
    """BIRD ``bgp_path ~ [= a b * =]``: the leading AS_SEQUENCE ASNs begin with ``want``."""
    if path and path[0][0] == _SEQUENCE and len(path[0][1]) >= len(want):
        return path[0][1][: len(want)] == want
    flat: list[int] = []
    for seg_type, asns in path:
        if seg_type != _SEQUENCE:
            break
        flat.extend(asns)
    return tuple(flat[: len(want)]) == want


def _predicate(rule: Rule) -> Predicate | None:
    """The non-prefix conditions of ``rule`` as one function, None if it has none."""
    preds: list[Predicate] = []
    if rule.source is RuleSource.REMOTE_PEERS:
        preds.append(lambda route, _: route.source.origin == _BGP)
    if rule.interface is not None:
        # BIRD's `defined(ifname) && ifname ~ ...`: only routes with a known device (kernel
        # routes) can match; Myna does not resolve BGP next hops to devices here.
        iface_ok = glob_matcher(rule.interface)

        def by_interface(route: Route, _: int | None) -> bool:
            iface = route.source.interface
            return iface is not None and iface_ok(iface)

        preds.append(by_interface)
    if rule.communities:
        parsed = [parse_community(c) for c in rule.communities]
        std = tuple(c for c in parsed if isinstance(c, int))
        large = tuple(c for c in parsed if not isinstance(c, int))

        def by_communities(route: Route, _: int | None) -> bool:
            attrs = route.attrs
            return all(c in attrs.communities for c in std) and all(
                c in attrs.large_communities for c in large
            )

        preds.append(by_communities)
    if rule.as_path_prefix:
        want = tuple(rule.as_path_prefix)
        preds.append(lambda route, _: as_path_starts_with(route.attrs.as_path, want))
    if rule.priority is not None:
        wanted_priority = rule.priority
        preds.append(lambda _, priority: priority == wanted_priority)
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    chain = tuple(preds)

    def all_of(route: Route, priority: int | None) -> bool:
        return all(pred(route, priority) for pred in chain)

    return all_of


def _prefix_test(rule: Rule, family: Family) -> tuple[int, int, int, int, bool]:
    """The rule's prefix test as (mask, value, lo, hi, negate).

    The prefix matches when ``((prefix & mask) == value and lo <= length <= hi) is not negate``.
    """
    bits = family.address_bits
    if rule.cidr is None or rule.match_operator is None:
        return 0, 0, 0, 255, False  # always true
    cidr = cidr_for(rule.cidr, family)
    op = rule.match_operator
    negate = op in (MatchOperator.NOT_EQUAL, MatchOperator.NOT_IN)
    if op in (MatchOperator.EQUAL, MatchOperator.NOT_EQUAL):
        return (1 << (bits + 8)) - 1, cidr, 0, 255, negate
    length = cidr & 0xFF
    lo, hi = length, bits
    if rule.prefix_length is not None:
        # confd clamps the same way: {max(len, min), min(bits, max)}.
        if rule.prefix_length.min is not None:
            lo = max(lo, rule.prefix_length.min)
        if rule.prefix_length.max is not None:
            hi = min(hi, rule.prefix_length.max)
    mask = network_mask(length, bits)
    return mask, cidr & mask, lo, hi, negate


def _peer_type_applies(peer_type: PeerType | None, peer: PeerContext) -> bool:
    if peer_type is None:
        return True
    if peer_type is PeerType.IBGP:
        return peer.ibgp
    if peer_type is PeerType.EBGP:
        return not peer.ibgp
    return peer.rr_client


def compile_rules(
    filters: Sequence[Filter], direction: Direction, family: Family, peer: PeerContext
) -> tuple[CompiledRule, ...]:
    """The rules of ``filters`` for one direction and family, in order, as flat tuples.

    Filters apply in order and a filter without a matching rule falls through to the next, so
    the whole list is one first-match chain.
    """
    compiled: list[CompiledRule] = []
    suffix = "V4" if family == _V4 else "V6"
    for flt in filters:
        for index, rule in enumerate(flt.rules(direction, family)):
            if not _peer_type_applies(rule.peer_type, peer):
                continue
            reason = (
                f"{flt.name} {direction.value}{suffix} rule {index}: {rule.action.name.lower()}"
            )
            priority = None
            for op in rule.operations:
                if isinstance(op, SetPriority):
                    priority = op.value
            verdict = Verdict(rule.action, None, priority, reason)
            edit = edit_from_operations(rule.operations, peer.local_as)
            edit_fn = None if edit.empty else accepting(edit, priority, reason)
            mask, value, lo, hi, negate = _prefix_test(rule, family)
            compiled.append((mask, value, lo, hi, negate, _predicate(rule), verdict, edit_fn))
    return tuple(compiled)


def compile_filters(
    filters: Sequence[Filter], direction: Direction, peer: PeerContext
) -> PolicyCheck:
    """One peer's filters for one direction as ``check(prefix, family, route, priority=None)``.

    Returns ACCEPT or REJECT from the first matching rule (with the rule's edits and priority),
    or NO_MATCH so the caller can fall through to its defaults.
    """
    v4 = compile_rules(filters, direction, _V4, peer)
    v6 = compile_rules(filters, direction, _V6, peer)

    if not v4 and not v6:

        def no_rules(
            prefix: int, family: Family, route: Route, priority: int | None = None
        ) -> Verdict:
            return NO_MATCH

        return no_rules

    def check(prefix: int, family: Family, route: Route, priority: int | None = None) -> Verdict:
        plen = prefix & 0xFF
        for mask, value, lo, hi, negate, pred, verdict, edit_fn in v4 if family == _V4 else v6:
            if ((prefix & mask) == value and lo <= plen <= hi) is negate:
                continue
            if pred is not None and not pred(route, priority):
                continue
            return verdict if edit_fn is None else edit_fn(route.attrs)
        return NO_MATCH

    return check


RibPolicy = Callable[[Family, int, Route], "PathAttributes | None"]


def as_rib_policy(check: PolicyCheck) -> RibPolicy:
    """``check`` in the shape ``rib_task.ImportPolicy`` / ``adj_rib_out.ExportPolicy`` take.

    ``(family, prefix, route) -> attrs or None``: REJECT gives None, ACCEPT the (possibly
    edited) set, and NO_MATCH the route's own set (Calico: no matching rule means Accept). The
    verdict's priority is dropped: a caller that programs kernel metrics calls ``check`` itself.
    """

    def policy(family: Family, prefix: int, route: Route) -> PathAttributes | None:
        verdict = check(prefix, family, route)
        if verdict[0] == Action.REJECT:
            return None
        attrs = verdict[1]
        return route.attrs if attrs is None else attrs

    return policy


# --- protocol-level checks --------------------------------------------------------------------


def own_as_count(path: AsPath, asn: int) -> int:
    """How often ``asn`` appears in ``path``, sets and confederation segments included."""
    if len(path) == 1:
        return path[0][1].count(asn)
    return sum(asns.count(asn) for _, asns in path)


def as_path_loops(path: AsPath, asn: int, allow_own_as: int = 0) -> bool:
    """True when ``asn`` appears more than ``allow_own_as`` times: the route is a loop.

    Calico's ``numAllowedLocalASNumbers`` becomes BIRD's ``allow local as N``.
    """
    return bool(path) and own_as_count(path, asn) > allow_own_as


def next_hop_is_own(next_hop: bytes, own_addresses: frozenset[bytes]) -> bool:
    """True when the next hop (4, 16 or 32 octets: global + link-local) is one of ours."""
    if next_hop in own_addresses:
        return True
    return len(next_hop) == 32 and (
        next_hop[:16] in own_addresses or next_hop[16:] in own_addresses
    )


# --- maximum prefixes -------------------------------------------------------------------------


class LimitAction(Enum):
    """What a peer's prefix limit does when exceeded."""

    WARN = "warn"
    CEASE = "cease"


class LimitDecision(IntEnum):
    """What the RIB must do now."""

    NOTHING = 0
    WARN = 1
    CEASE = 2


class LimitOutcome(NamedTuple):
    """A ``PrefixLimit.check`` result; CEASE carries the NOTIFICATION to send."""

    decision: LimitDecision
    code: int = 0
    subcode: int = 0
    data: bytes = b""
    restart_after: float | None = None  # seconds before reconnecting; None: stay down


_NOTHING = LimitOutcome(LimitDecision.NOTHING)
_WARN = LimitOutcome(LimitDecision.WARN)
_CEASE_DATA = struct.Struct(">HBI")


class PrefixLimit:
    """A per-peer maximum prefix count, checked by the RIB after each change in count.

    Exceeding means ``count > limit``. WARN fires once per excursion (re-armed when the count
    drops back to the limit) so a peer hovering above it does not flood the log. CEASE returns
    Cease/Maximum Number of Prefixes Reached (6/1) with RFC 4486's data: AFI (2 octets),
    SAFI (1 octet), the configured upper bound (4 octets).
    """

    __slots__ = ("_warned", "action", "limit", "restart_after")

    def __init__(
        self,
        limit: int,
        action: LimitAction = LimitAction.CEASE,
        restart_after: float | None = None,
    ) -> None:
        if not 0 <= limit <= 0xFFFFFFFF:
            raise ValueError("a prefix limit fits in 4 octets")
        self.limit = limit
        self.action = action
        self.restart_after = restart_after
        self._warned = False

    def check(self, count: int, family: Family) -> LimitOutcome:
        """What to do now that the peer has ``count`` prefixes of ``family``."""
        if count <= self.limit:
            self._warned = False
            return _NOTHING
        if self.action is LimitAction.WARN:
            if self._warned:
                return _NOTHING
            self._warned = True
            return _WARN
        return LimitOutcome(
            LimitDecision.CEASE,
            ErrorCode.CEASE,
            CeaseSubcode.MAXIMUM_PREFIXES_REACHED,
            self.notification_data(family),
            self.restart_after,
        )

    def notification_data(self, family: Family) -> bytes:
        """RFC 4486 section 4 data: AFI, SAFI, upper bound."""
        return _CEASE_DATA.pack(family.afi, family.safi, self.limit)

    def reset(self) -> None:
        """Forget the warning state (a new session)."""
        self._warned = False
