"""What a route is inside the RIB: where it came from (``Source``) and what it says (``Route``).

Data flow: the RIB core makes one ``Source`` per peer session (and one for the node's own
routes: kernel, static, config) when the session comes up, from the OPEN and the config; every
route from that session points at it. A ``Route`` is (source, interned attribute set, ADD-PATH
path id, staleness); the core's ``RouteTable`` shares one object among all prefixes that carry
the same four, so a peer announcing 1,000,000 prefixes with one attribute set costs one
``Route``. The Loc-RIB maps prefix ints to these objects; the decision process
(``rib/decision.py``) compares them; the update groups read their attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from speaker.path_attributes import PathAttributes


class Stale(IntEnum):
    """Graceful-restart staleness; the decision process prefers smaller values."""

    FRESH = 0
    STALE = 1  # RFC 4724: the peer restarts; kept until End-of-RIB or the restart time
    LLGR_STALE = 2  # RFC 9494: long-lived stale, least preferred of all


class LocalKind(IntEnum):
    """What made a route of this node, in BIRD's terms (its ``source``: ``RTS_*`` codes)."""

    STATIC = 1  # a static route (BIRD's static protocol)
    KERNEL = 2  # learned from the kernel, not ours (BIRD: RTS_INHERIT, e.g. Felix's routes)
    DEVICE = 3  # a connected network of an interface (BIRD's direct protocol)
    STATIC_DEVICE = 4  # a static route through an interface (``via "eth0"``)


class Destination(IntEnum):
    """Where a route sends packets (BIRD's ``dest``: ``RTD_*`` codes)."""

    ROUTER = 0  # via a gateway
    DEVICE = 1  # straight out of an interface
    BLACKHOLE = 2
    UNREACHABLE = 3
    PROHIBIT = 4
    MULTIPATH = 5


@dataclass(frozen=True, slots=True)
class KernelFacts:
    """What a BIRD filter reads of a route that did not come from BGP.

    BIRD attribute -> field: ``source`` -> ``kind``; ``dest`` -> ``dest``; ``gw`` ->
    ``gateway`` (an address int, None: none); ``krt_metric`` -> ``metric`` (the kernel's
    route priority); ``krt_source`` -> ``protocol`` (the kernel's route protocol number, 80
    for Felix's blackholes; None for routes not from the kernel); ``krt_prefsrc`` ->
    ``preferred_source``; ``krt_realm`` -> ``realm``; ``scope`` -> ``scope`` (BIRD's
    ``SCOPE_*`` code, 4 universe). ``ifname`` is ``Source.interface``, ``proto`` is
    ``Source.protocol`` and ``preference`` is ``Source.preference``.
    """

    kind: LocalKind = LocalKind.KERNEL
    dest: Destination = Destination.BLACKHOLE
    gateway: int | None = None
    metric: int | None = None
    protocol: int | None = None
    preferred_source: int | None = None
    realm: int | None = None
    scope: int = 4


class Origin(IntEnum):
    """Where a Source's routes come from (Calico's BGPFilter ``source`` matches on it)."""

    BGP = 0  # a BGP peer
    KERNEL = 1  # learned from the kernel (Felix's blackhole block routes and the like)
    STATIC = 2  # configured in Myna (announce, prefix advertisements)


@dataclass(frozen=True, eq=False, slots=True)
class Source:
    """One origin of routes: a peer session, or this node itself.

    Compared by identity: a peer whose session restarts gets a new ``Source`` (its old routes
    keep pointing at the old one while they are stale). ``router_id`` and ``address`` are what
    the decision process's tie-breakers read (RFC 4271 9.1.2.2 f, g); ``igp_cost`` is the cost
    to reach this source's next hops (step e), 0 for directly connected peers as in Calico.
    """

    name: str  # the peer's address, or "kernel" / "static"
    origin: Origin = Origin.BGP
    address: int = 0  # the peer's address as an int (IPv6 ones too)
    router_id: int = 0
    asn: int = 0
    ibgp: bool = True
    rr_client: bool = False  # RFC 4456: this peer is a route-reflector client of ours
    igp_cost: int = 0
    interface: str | None = None  # kernel routes: the device they point at
    serial: int = field(default=0, compare=False)  # creation order, for stable sorting
    # What BIRD filters read besides the attributes (bgpd.bird_config): the BIRD protocol
    # name (``proto``: Mesh_10_0_0_2, kernel1, static1), the route preference (None: BIRD's
    # default for the kind of route) and, for routes not from BGP, BIRD's view of them.
    protocol: str = ""
    preference: int | None = None
    kernel: KernelFacts | None = None

    @property
    def ebgp(self) -> bool:
        """Learned over an external session."""
        return self.origin == Origin.BGP and not self.ibgp


class Route(NamedTuple):
    """One path to a prefix. Interned: build them with a ``RouteTable``'s ``intern``."""

    source: Source
    attrs: PathAttributes  # interned by speaker.path_attributes.ATTRIBUTES
    path_id: int = 0  # ADD-PATH identifier as received (0 without ADD-PATH)
    stale: Stale = Stale.FRESH
    # BIRD's per-route preference, as an import filter's ``preference = N`` set it; 0: the
    # source's (``effective_preference``).
    preference: int = 0


class Preferred(NamedTuple):
    """What an import policy returns to give a route its own preference besides attributes."""

    attrs: PathAttributes
    preference: int


# Myna's default route preferences when the config names none (YAML mode): the node's own routes
# beat what peers say of the same prefix, configured over kernel-learned. The BIRD front-end
# sets BIRD's defaults explicitly on every source (kernel 10, static 200, direct 240, BGP 100).
DEFAULT_PREFERENCE = {Origin.STATIC: 200, Origin.KERNEL: 150, Origin.BGP: 100}


def effective_preference(route: Route) -> int:
    """The preference the decision's step 0 compares: the route's, its source's, the default."""
    if route.preference:
        return route.preference
    source = route.source
    preference = source.preference
    return DEFAULT_PREFERENCE[source.origin] if preference is None else preference


class RouteTable:
    """An intern table of ``Route`` objects, one per RIB (see the module docstring)."""

    __slots__ = ("_routes",)

    def __init__(self) -> None:
        self._routes: dict[tuple[int, int, int, int, int], Route] = {}

    def intern(
        self,
        source: Source,
        attrs: PathAttributes,
        path_id: int = 0,
        stale: Stale = Stale.FRESH,
        preference: int = 0,
    ) -> Route:
        """The shared ``Route`` for these five (``attrs`` must already be interned)."""
        key = (id(source), id(attrs), path_id, stale, preference)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = Route(source, attrs, path_id, stale, preference)
        return route

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes.values()))

    def sweep(self) -> int:
        """Forget routes no RIB refers to any more; returns how many were dropped."""
        dropped = 0
        for key in list(self._routes):
            route = self._routes[key]
            # Referenced only by the table, this local and getrefcount's own argument.
            if sys.getrefcount(route) <= 3:
                del self._routes[key]
                dropped += 1
        return dropped
