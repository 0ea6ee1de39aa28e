"""Graceful restart's table work (RFC 4724, RFC 9494) and enhanced route refresh's (RFC 7313).

Role: what the two OPENs of a session say about graceful restart (``GrTerms``), and the walks
over one source's routes in the Loc-RIB that the procedures need: mark them stale when the
session drops, sweep the ones still stale at End-of-RIB or when a timer runs out, turn them
long-lived stale (tagged LLGR_STALE) when the restart time is over, and, after an enhanced
route refresh, drop the ones the peer did not announce again.

Data flow: ``rib.rib_core`` decides when (session down, session up, End-of-RIB, BoRR/EoRR,
timers) and runs these generators as part of its sliced work; each walks one shard per step,
appends what changed to the core's publication list and yields, so a peer with 1,000,000
routes going stale never holds the event loop for long. They read and write only the Loc-RIB
and the core's intern table of routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from rib.adj_rib_in import rib_key
from rib.loc_rib import LocRib, Published
from rib.route import Route, RouteTable, Source, Stale
from rib.shards import SHARDS
from speaker.capabilities import GracefulRestartCapability, LongLivedGracefulRestartCapability
from speaker.open_message import Open
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import (
    Family,
    GracefulRestartFamilyFlag,
    GracefulRestartFlag,
    WellKnownCommunity,
)

_FORWARDING = int(GracefulRestartFamilyFlag.FORWARDING_STATE)
STALE = frozenset({Stale.STALE, Stale.LLGR_STALE})  # every route kept for a restarting peer
GR_STALE = frozenset({Stale.STALE})  # kept by graceful restart (RFC 4724)
LLGR_STALE = frozenset({Stale.LLGR_STALE})  # kept by long-lived graceful restart (RFC 9494)


@dataclass(frozen=True, slots=True)
class GrTerms:
    """Graceful restart as one session's OPENs agreed it.

    ``negotiated``: both sides sent the GR capability. ``families``: the peer listed them in its
    GR capability (their routes are kept stale when the session drops, RFC 4724 4.2);
    ``forwarding``: those with the F bit set (stale routes kept from an earlier session survive
    this one's start only for these). ``llgr``: RFC 9494, when both sides sent LLGR beside GR
    (4.1, 4.5: LLGR without GR is ignored), per family the peer listed: (family, F bit,
    long-lived stale time).
    """

    negotiated: bool = False
    restart_time: int = 0
    restarting: bool = False  # the peer's OPEN carried the Restart State flag
    families: frozenset[Family] = frozenset()
    forwarding: frozenset[Family] = frozenset()
    llgr: tuple[tuple[Family, bool, int], ...] = ()

    def llgr_time(self, family: Family) -> int | None:
        """The long-lived stale time of ``family``, or None when LLGR does not cover it."""
        return next((time for f, _, time in self.llgr if f is family), None)

    def llgr_forwarding(self, family: Family) -> bool:
        """LLGR covers ``family`` with the F bit set (RFC 9494 4.2, on re-establishment)."""
        return any(f is family and forwarding for f, forwarding, _ in self.llgr)


def _families(entries: Iterable[tuple[int, ...]]) -> tuple[set[Family], set[Family]]:
    listed, forwarding = set(), set()
    for afi, safi, flags, *_ in entries:
        family = Family.lookup(afi, safi)
        if family is not None:
            listed.add(family)
            if flags & _FORWARDING:
                forwarding.add(family)
    return listed, forwarding


def _first(open_: Open, kind: type) -> object | None:
    return next((c for c in open_.capabilities if isinstance(c, kind)), None)


def gr_terms(sent: Open, received: Open) -> GrTerms:
    """What ``sent`` and ``received`` say of graceful restart (see ``GrTerms``)."""
    theirs = _first(received, GracefulRestartCapability)
    ours = _first(sent, GracefulRestartCapability) is not None
    if not isinstance(theirs, GracefulRestartCapability):
        return GrTerms()
    listed, forwarding = _families(theirs.families)
    llgr: list[tuple[Family, bool, int]] = []
    their_llgr = _first(received, LongLivedGracefulRestartCapability)
    our_llgr = _first(sent, LongLivedGracefulRestartCapability)
    if ours and isinstance(their_llgr, LongLivedGracefulRestartCapability) and our_llgr:
        for afi, safi, flags, stale_time in their_llgr.families:
            family = Family.lookup(afi, safi)
            if family is not None:
                llgr.append((family, bool(flags & _FORWARDING), stale_time))
    return GrTerms(
        negotiated=ours,
        restart_time=theirs.restart_time,
        restarting=bool(theirs.restart_flags & GracefulRestartFlag.RESTART_STATE),
        families=frozenset(listed),
        forwarding=frozenset(forwarding),
        llgr=tuple(llgr),
    )


def peer_speaks_llgr(received: Open) -> bool:
    """Whether LLGR_STALE routes may go to the peer (RFC 9494 4.3, 4.5).

    The peer must have sent the LLGR capability, and GR beside it (4.1: LLGR alone is ignored).
    """
    return _first(received, LongLivedGracefulRestartCapability) is not None and (
        _first(received, GracefulRestartCapability) is not None
    )


def _restate(
    loc: LocRib,
    source: Source,
    families: Iterable[Family],
    change: Callable[[Route], Route | bool | None],
    out: list[Published],
) -> Iterator[None]:
    """Give each of ``source``'s routes what ``change`` says, one shard per step.

    ``change`` answers a route (the replacement), None (gone) or False (left alone).
    """
    for family in families:
        for shard in range(SHARDS):
            routes = loc.source_routes(family, source, shard)
            if not routes:
                continue
            replacement: dict[int, Route | None] = {}
            kept: list[tuple[int, Route]] = []
            for prefix, route in routes:
                key = id(route)
                if key not in replacement:
                    new = change(route)
                    if new is False:
                        replacement[key] = route
                        continue
                    replacement[key] = new  # type: ignore[assignment]
                if replacement[key] is not route:
                    kept.append((prefix, route))
            if kept:
                loc.replace_routes(family, kept, replacement, out)
            yield


def mark_stale(
    loc: LocRib,
    routes: RouteTable,
    source: Source,
    families: Iterable[Family],
    out: list[Published],
) -> Iterator[None]:
    """RFC 4724 4.2: the peer restarts; its fresh routes of ``families`` are kept, marked stale.

    Long-lived stale routes stay what they are (RFC 9494 4.2: consecutive restarts must not
    shorten their time).
    """

    def stale(route: Route) -> Route | bool:
        if route.stale != Stale.FRESH:
            return False
        return routes.intern(
            route.source, route.attrs, route.path_id, Stale.STALE, route.preference
        )

    yield from _restate(loc, source, families, stale, out)


def flush(
    loc: LocRib,
    source: Source,
    families: Iterable[Family],
    out: list[Published],
    *,
    only: frozenset[Stale] | None = None,
) -> Iterator[None]:
    """Remove ``source``'s routes of ``families`` (``only``: those of these stalenesses)."""

    def gone(route: Route) -> Route | bool | None:
        return False if only is not None and route.stale not in only else None

    yield from _restate(loc, source, families, gone, out)


def to_long_lived(
    loc: LocRib,
    routes: RouteTable,
    source: Source,
    families: Iterable[Family],
    out: list[Published],
) -> Iterator[None]:
    """RFC 9494 4.2: the routes of ``families`` become long-lived stale, tagged LLGR_STALE.

    Routes tagged NO_LLGR are removed instead (4.2, "MUST NOT be retained"); routes that are
    long-lived stale already keep what they are.
    """
    tagged: dict[int, PathAttributes] = {}
    no_llgr = int(WellKnownCommunity.NO_LLGR)
    llgr_stale = int(WellKnownCommunity.LLGR_STALE)

    def long_lived(route: Route) -> Route | bool | None:
        if route.stale == Stale.LLGR_STALE:
            return False
        if no_llgr in route.attrs.communities:
            return None
        attrs = tagged.get(id(route.attrs))
        if attrs is None:
            communities = route.attrs.communities
            if llgr_stale not in communities:
                communities = (*communities, llgr_stale)
            attrs = tagged[id(route.attrs)] = ATTRIBUTES.intern(
                route.attrs._replace(communities=communities)
            )
        return routes.intern(route.source, attrs, route.path_id, Stale.LLGR_STALE, route.preference)

    yield from _restate(loc, source, families, long_lived, out)


def keep_refreshed(
    loc: LocRib, source: Source, family: Family, refreshed: set[int], out: list[Published]
) -> Iterator[None]:
    """RFC 7313 4: at EoRR, the routes the peer did not announce again since BoRR go.

    ``refreshed`` holds the keys (``rib_key(prefix, path_id)``) announced since BoRR.
    """
    for shard in range(SHARDS):
        routes = loc.source_routes(family, source, shard)
        gone = [(p, r) for p, r in routes if rib_key(p, r.path_id) not in refreshed]
        if gone:
            loc.replace_routes(family, gone, dict.fromkeys((id(r) for _, r in gone), None), out)
        yield
