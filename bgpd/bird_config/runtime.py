"""What compiled BIRD filters call while they run: errors, BIRD's odd operators, verdicts.

Role: ``filter_compiler`` generates one Python function per filter; most of a filter becomes
plain Python expressions, and the rest calls into this module: the comparisons where an
undefined value takes part, string patterns, community-list operations, BIRD's view of a
route's source (``source``, ``proto``, ``gw``... from ``rib.route.Source``), and the
``VerdictMaker`` that turns the filter's outcome into a ``rib.policy.Verdict`` with the
edited attribute set, interned once per distinct (attribute set, edit).

Errors: a BIRD run-time error (``Can't operate with values of incompatible types``...) ends
the filter and the route is rejected, as BIRD does (``F_ERROR`` counts as a reject); here it is
a ``FilterError`` raised by the generated code and caught around it. ``accept``/``reject``
inside a function called from an expression unwind with ``Terminal``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from bgpd.bird_config.values import BirdType, RouteDestCode, RouteSourceCode, ScopeCode
from rib.policy import Action, Verdict
from rib.route import LocalKind, Origin, Source
from speaker.path_attributes import ATTRIBUTES, PathAttributes

LOG = logging.getLogger("myna.bird_filter")
U32 = 0xFFFFFFFF
_CACHE_LIMIT = 8192


class FilterError(Exception):
    """A BIRD run-time error in a filter: the filter stops and the route is rejected."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Terminal(Exception):  # noqa: N818 - it is BIRD's accept/reject, not an error
    """``accept``/``reject``/``error`` inside a function called from an expression."""

    def __init__(self, kind: int, site: int) -> None:
        super().__init__(kind, site)
        self.kind = kind
        self.site = site


def fail(message: str, line: int = 0) -> Any:
    """Raise the run-time error (usable inside an expression)."""
    raise FilterError(message, line)


def no_route(line: int = 0) -> Any:
    """A route attribute read where there is no route (BIRD's parse-time evaluation)."""
    raise FilterError("No route to access", line)


# --- comparisons with undefined values ----------------------------------------------------------
# BIRD's val_compare sorts an undefined (void) value before anything ("Hack for else"), so
# `krt_metric < 1024` is true when krt_metric is undefined, and `void = void` is true.


def less(a: Any, b: Any) -> bool:
    """``a < b`` of two values of one type, either maybe void."""
    if a is None:
        return b is not None
    if b is None:
        return False
    return bool(a < b)


def less_equal(a: Any, b: Any) -> bool:
    """``a <= b`` of two values of one type, either maybe void."""
    if a is None:
        return True
    if b is None:
        return False
    return bool(a <= b)


def less_mixed(a: Any, b: Any, or_equal: bool, line: int) -> bool:
    """``<``/``<=`` of values of two different types: only void compares."""
    if a is None:
        return b is not None or or_equal
    if b is None:
        return False
    raise FilterError("Can't compare values of incompatible types", line)


def need_bool(value: Any, message: str, line: int) -> bool:
    """``value`` if it is a bool (maybe-void bool operands); else the run-time error."""
    if value is True or value is False:
        return value
    raise FilterError(message, line)


# --- string patterns (BIRD's patmatch: '*', '?', backslash escapes) ---------------------------


def patmatch(pattern: str, text: str) -> bool:
    """BIRD's ``patmatch``, quirks included.

    After ``*`` the next character is searched for literally, so ``**`` needs a ``*`` in the
    text.
    """
    p = s = 0
    while p < len(pattern):
        char = pattern[p]
        if char == "?" and s < len(text):
            p += 1
            s += 1
        elif char == "*":
            if p + 1 >= len(pattern):
                return True
            wanted = pattern[p + 1]
            if wanted == "\\" and p + 2 < len(pattern):
                wanted = pattern[p + 2]
            while True:
                while s < len(text) and text[s] != wanted:
                    s += 1
                if s >= len(text):
                    return False
                if patmatch(pattern[p + 1 :], text[s:]):
                    return True
                s += 1
        else:
            if char == "\\" and p + 1 < len(pattern):
                p += 1
            if s >= len(text) or pattern[p] != text[s]:
                return False
            p += 1
            s += 1
    return s >= len(text)


class PatternMemo(dict[str, bool]):
    """``text ~ pattern`` for one constant pattern, as a dict from text (interface names).

    The generated code subscripts it (``memo[ifname]``): a hit costs one dict probe, a miss
    runs ``patmatch`` once and remembers (up to 4096 texts).
    """

    __slots__ = ("pattern",)

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern

    def __missing__(self, text: str) -> bool:
        hit = patmatch(self.pattern, text)
        if len(self) < 4096:
            self[text] = hit
        return hit


# --- BIRD's view of a route's origin ----------------------------------------------------------


class RouteFacts(NamedTuple):
    """What a BIRD filter reads of a route besides its attribute set, per ``Source``."""

    source: int  # RTS_*
    proto: str
    from_address: int
    gateway: int | None  # None: the BGP next hop (read from the attributes)
    ifname: str
    dest: int  # RTD_*
    scope: int
    preference: int
    krt_metric: int | None
    krt_source: int | None
    krt_prefsrc: int | None
    krt_realm: int | None


_KIND_SOURCE = {
    LocalKind.STATIC: RouteSourceCode.STATIC,
    LocalKind.KERNEL: RouteSourceCode.INHERIT,
    LocalKind.DEVICE: RouteSourceCode.DEVICE,
    LocalKind.STATIC_DEVICE: RouteSourceCode.STATIC_DEVICE,
}
# BIRD's default preferences: DEF_PREF_BGP, _INHERITED (kernel), _STATIC, _DIRECT.
_DEFAULT_PREFERENCE = {
    RouteSourceCode.BGP: 100,
    RouteSourceCode.INHERIT: 10,
    RouteSourceCode.STATIC: 200,
    RouteSourceCode.STATIC_DEVICE: 200,
    RouteSourceCode.DEVICE: 240,
}
# keyed by the Source itself (compared and hashed by identity); bounded
_FACTS: dict[Source, RouteFacts] = {}


def route_facts(source: Source) -> RouteFacts:
    """BIRD's ``source``, ``proto``, ``from``, ``gw``... of routes from ``source`` (cached).

    A BGP route: RTS_BGP, ``from`` the peer's address, ``gw`` its next hop, RTD_ROUTER. Any
    other route: from its ``KernelFacts``; without them, a kernel route is RTS_INHERIT and a
    configured one RTS_STATIC, both blackholes (what Myna originates for Calico's blocks).
    """
    hit = _FACTS.get(source)
    if hit is not None:
        return hit
    kernel = source.kernel
    if source.origin == Origin.BGP:
        rts = RouteSourceCode.BGP
        facts_dest, gateway, scope = RouteDestCode.ROUTER, None, ScopeCode.UNIVERSE
        from_address = source.address
    elif kernel is not None:
        rts = _KIND_SOURCE[kernel.kind]
        facts_dest, gateway = RouteDestCode(kernel.dest), kernel.gateway or 0
        scope = ScopeCode(kernel.scope)
        from_address = 0
    else:
        rts = RouteSourceCode.INHERIT if source.origin == Origin.KERNEL else RouteSourceCode.STATIC
        facts_dest, gateway, scope = RouteDestCode.BLACKHOLE, 0, ScopeCode.UNIVERSE
        from_address = 0
    # only the kernel protocol's routes have krt_metric and krt_source (krt_make_tmp_attrs),
    # and always: a route without a metric or protocol reads 0 as in BIRD (RTPROT_UNSPEC)
    from_kernel = rts == RouteSourceCode.INHERIT
    preference = source.preference
    if preference is None:
        preference = _DEFAULT_PREFERENCE[rts]
    facts = RouteFacts(
        source=int(rts),
        proto=source.protocol or source.name,
        from_address=from_address,
        gateway=gateway,
        ifname=source.interface or "",
        dest=int(facts_dest),
        scope=int(scope),
        preference=preference,
        krt_metric=((kernel.metric if kernel else None) or 0) if from_kernel else None,
        krt_source=((kernel.protocol if kernel else None) or 0) if from_kernel else None,
        krt_prefsrc=kernel.preferred_source if kernel is not None else None,
        krt_realm=kernel.realm if kernel is not None else None,
    )
    if len(_FACTS) >= _CACHE_LIMIT:
        _FACTS.clear()
    _FACTS[source] = facts
    return facts


_NEXT_HOPS: dict[bytes, int | None] = {}


def next_hop_address(next_hop: bytes) -> int | None:
    """``bgp_next_hop`` of a next-hop field: the (global) address, None when empty."""
    hit = _NEXT_HOPS.get(next_hop, -1)
    if hit != -1:
        return hit
    value = int.from_bytes(next_hop[:16], "big") if next_hop else None
    if len(_NEXT_HOPS) >= _CACHE_LIMIT:
        _NEXT_HOPS.clear()
    _NEXT_HOPS[next_hop] = value
    return value


# --- verdicts ---------------------------------------------------------------------------------

UNSET = object()  # an attribute unset() by the filter: absent from the result


class VerdictMaker:
    """Verdicts of one compiled filter, shared as far as their content allows.

    ``sites`` are the filter's accept/reject places (their reasons); ``fields`` the
    ``PathAttributes`` fields the filter may write, in the order the generated code passes
    their final values. An accept with unchanged attributes and no kernel settings is one
    constant per site; otherwise the verdict is cached per (site, attribute set, values).
    """

    def __init__(
        self,
        reasons: tuple[str, ...],
        fields: tuple[str, ...],
        ipv6: bool,
    ) -> None:
        self.reasons = reasons
        self.fields = fields
        self.address_octets = 16 if ipv6 else 4
        self.accepts = tuple(Verdict(Action.ACCEPT, reason=r) for r in reasons)
        self.rejects = tuple(Verdict(Action.REJECT, reason=r) for r in reasons)
        # (site, priority, preference, tunnel) -> verdict; the generated code looks here first
        self.plain: dict[tuple[int, Any, Any, Any], Verdict] = {}
        self._edited: dict[tuple[int, int, int], tuple[Any, ...]] = {}
        self._last_error = 0.0

    def accept(  # noqa: PLR0917 - called positionally by generated code
        self,
        site: int,
        attrs: PathAttributes,
        values: tuple[Any, ...] | None,
        priority: int | None,
        preference: int | None,
        tunnel: str | None,
        original: PathAttributes | None = None,
    ) -> Verdict:
        """The verdict of ``accept`` at ``site`` with these final values.

        ``attrs`` is what the filter started from; ``original``, when given, the route's own
        set (a BGP export starts from BIRD's export view of it): the verdict's set is None
        only when the result is the route's own set.
        """
        if original is None:
            if values is None:
                key = (site, priority, preference, tunnel)
                return self.plain.get(key) or self.make_plain(key)
            original = attrs
        # one entry per (site, attribute set): the values reached there from one set rarely
        # vary, and comparing them is cheaper than hashing them
        edited_key = (site, id(attrs), id(original))
        hit = self._edited.get(edited_key)
        if (
            hit is not None
            and hit[0] is attrs
            and hit[1] is original
            and hit[2] == values
            and hit[3] == (priority, preference, tunnel)
        ):
            verdict: Verdict = hit[4]
            return verdict
        edited = attrs if values is None else self._edit(attrs, values)
        verdict = Verdict(
            Action.ACCEPT,
            None if edited is original else edited,
            priority,
            self.reasons[site],
            tunnel,
            preference,
        )
        if len(self._edited) >= _CACHE_LIMIT:
            self._edited.clear()
        self._edited[edited_key] = (
            attrs,
            original,
            values,
            (priority, preference, tunnel),
            verdict,
        )
        return verdict

    def make_plain(self, key: tuple[int, Any, Any, Any]) -> Verdict:
        """The verdict of an accept that leaves the attributes alone (cached)."""
        site, priority, preference, tunnel = key
        verdict = Verdict(Action.ACCEPT, None, priority, self.reasons[site], tunnel, preference)
        if len(self.plain) >= _CACHE_LIMIT:
            self.plain.clear()
        self.plain[key] = verdict
        return verdict

    def _edit(self, attrs: PathAttributes, values: tuple[Any, ...]) -> PathAttributes:
        changes: dict[str, Any] = {}
        for name, value in zip(self.fields, values, strict=True):
            new = self._field_value(name, value)
            if new != getattr(attrs, name):
                changes[name] = new
        if not changes:
            return attrs
        return ATTRIBUTES.intern(attrs._replace(**changes))

    def _field_value(self, name: str, value: Any) -> Any:
        if value is UNSET or value is None:
            return _ABSENT[name]
        if name == "next_hop":
            return int(value).to_bytes(self.address_octets, "big")
        if name == "origin":
            return int(value) & 0xFF  # BIRD stores any int; the wire has one octet
        return value

    def error(self, name: str, error: FilterError) -> Verdict:
        """A run-time error: logged (at most once a second per filter), route rejected."""
        now = time.monotonic()
        if now - self._last_error >= 1.0:
            self._last_error = now
            LOG.error("filters, line %d: %s (filter %s)", error.line, error.message, name)
        return ERROR_VERDICT


_ABSENT = {
    "origin": 0,
    "as_path": (),
    "next_hop": b"",
    "med": None,
    "local_pref": None,
    "atomic_aggregate": False,
    "aggregator": None,
    "communities": (),
    "originator_id": None,
    "cluster_list": (),
    "extended_communities": (),
    "large_communities": (),
}
ERROR_VERDICT = Verdict(Action.REJECT, reason="BIRD filter run-time error")
WRONG_FAMILY = Verdict(Action.REJECT, reason="route of the other address family")
REFUSED_BY_PROTOCOL = Verdict(
    Action.REJECT, reason="BGP refuses it before the filter (BIRD's bgp_import_control)"
)
NO_DECISION = Verdict(Action.REJECT, reason="filter did not return accept nor reject (BIRD: error)")


class CaseTable:
    """BIRD's ``case``: its arms' values in a ``find_tree`` tree, searched as BIRD does.

    A subject of another type than the arms' is "incomparable" to every item, and BIRD's tree
    walk then stops at the root: that arm runs. An undefined subject finds the ``else:`` arm.
    """

    def __init__(
        self,
        items: list[tuple[object, object, int]],
        item_type: BirdType | None,
        has_else: bool,
        ipv6: bool,
    ) -> None:
        entries: list[tuple[int, object, object, int]] = [(0, None, None, -1)] if has_else else []
        entries.extend((1, low, high, arm) for low, high, arm in items)
        entries.sort(key=lambda e: (e[0], e[1]) if e[0] else (0, 0))  # void (else) first
        self.item_type = int(item_type) if item_type is not None else 0
        self.ipv6 = ipv6
        self.nodes = entries
        self.root = self._build(0, len(entries))

    def _build(self, low: int, high: int) -> tuple[Any, ...] | None:
        if low >= high:
            return None
        middle = (low + high) // 2
        return (self.nodes[middle], self._build(low, middle), self._build(middle + 1, high))

    def _compare(self, typed: int, item: object, value: object, value_type: int) -> int:
        item_type = self.item_type if typed else int(BirdType.VOID)
        if item_type != value_type:
            if item_type == int(BirdType.VOID):
                return -1
            if value_type == int(BirdType.VOID):
                return 1
            ip_quad = {item_type, value_type} == {int(BirdType.IP), int(BirdType.QUAD)}
            if not (ip_quad and not self.ipv6):
                return 999
        if item == value:
            return 0
        return -1 if item < value else 1  # type: ignore[operator]

    def _find(self, value: object, value_type: int) -> int | None:
        node = self.root
        while node is not None:
            (typed, low, high, arm_number), left, right = node
            arm = int(arm_number)
            first = self._compare(typed, low, value, value_type)
            if first != 1 and self._compare(typed, high, value, value_type) != -1:
                return arm
            node = right if first == -1 else left
        return None

    def find(self, value: object, static: int) -> int:
        """The arm to run: its index, -1 for ``else:``, -2 for none."""
        value_type = int(BirdType.VOID) if value is None or static == 0 else static
        arm = self._find(value, value_type)
        if arm is None:
            arm = self._find(None, int(BirdType.VOID))
        return -2 if arm is None else arm
