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


@dataclass(frozen=True, slots=True)
class GrTerms:
    """Graceful restart as one session's OPENs agreed it.

    ``negotiated``: both sides sent the GR capability. ``families``: the peer listed them in its
    GR capability (their routes are kept stale when the session drops, RFC 4724 4.2);
    ``forwarding``: those with the F bit set (stale routes kept from an earlier session survive
    this one's start only for these). ``llgr_time``: RFC 9494's long-lived stale time when both
    sides sent LLGR (0: none).
    """

    negotiated: bool = False
    restart_time: int = 0
    restarting: bool = False  # the peer's OPEN carried the Restart State flag
    families: frozenset[Family] = frozenset()
    forwarding: frozenset[Family] = frozenset()
    llgr_time: int = 0


def _families(entries: Iterable[tuple[int, ...]]) -> tuple[set[Family], set[Family]]:
    listed, forwarding = set(), set()
    for afi, safi, flags, *_ in entries:
        family = Family.lookup(afi, safi)
        if family is not None:
            listed.add(family)
            if flags & _FORWARDING:
                forwarding.add(family)
    return listed, forwarding


def gr_terms(sent: Open, received: Open) -> GrTerms:
    """What ``sent`` and ``received`` say of graceful restart (see ``GrTerms``)."""
    theirs = next(
        (c for c in received.capabilities if isinstance(c, GracefulRestartCapability)), None
    )
    ours = any(isinstance(c, GracefulRestartCapability) for c in sent.capabilities)
    if theirs is None:
        return GrTerms()
    listed, forwarding = _families(theirs.families)
    return GrTerms(
        negotiated=ours,
        restart_time=theirs.restart_time,
        restarting=bool(theirs.restart_flags & GracefulRestartFlag.RESTART_STATE),
        families=frozenset(listed),
        forwarding=frozenset(forwarding),
        llgr_time=llgr_stale_time(sent, received),
    )


def llgr_stale_time(sent: Open, received: Open) -> int:
    """The long-lived stale time (RFC 9494) when both OPENs carry LLGR; 0 otherwise."""
    ours = [c for c in sent.capabilities if isinstance(c, LongLivedGracefulRestartCapability)]
    theirs = [c for c in received.capabilities if isinstance(c, LongLivedGracefulRestartCapability)]
    if not ours or not theirs:
        return 0
    times = [stale for _, _, _, stale in theirs[0].families]
    return min(times) if times else 0


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
    """RFC 4724 4.2: the peer restarts; its routes of ``families`` are kept, marked stale."""

    def stale(route: Route) -> Route | bool:
        if route.stale >= Stale.STALE:
            return False
        return routes.intern(route.source, route.attrs, route.path_id, Stale.STALE)

    yield from _restate(loc, source, families, stale, out)


def flush(
    loc: LocRib,
    source: Source,
    families: Iterable[Family],
    out: list[Published],
    *,
    stale_only: bool = False,
) -> Iterator[None]:
    """Remove ``source``'s routes of ``families`` (only the stale ones, with ``stale_only``)."""

    def gone(route: Route) -> Route | bool | None:
        return False if stale_only and not route.stale else None

    yield from _restate(loc, source, families, gone, out)


def to_long_lived(
    loc: LocRib,
    routes: RouteTable,
    source: Source,
    families: Iterable[Family],
    out: list[Published],
) -> Iterator[None]:
    """RFC 9494 4.2: stale routes become long-lived stale, tagged LLGR_STALE.

    Routes tagged NO_LLGR are removed instead (4.2, "MUST NOT be retained").
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
        return routes.intern(route.source, attrs, route.path_id, Stale.LLGR_STALE)

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


def any_stale(loc: LocRib, source: Source, family: Family) -> bool:
    """Whether ``source`` still holds a stale route of ``family`` (a whole-table walk)."""
    for shard in range(SHARDS):
        if any(route.stale for _, route in loc.source_routes(family, source, shard)):
            return True
    return False
