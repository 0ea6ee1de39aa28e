"""The RIB core's handling of a peer's sessions: up, down, graceful restart, tables, refresh.

Role: the part of ``rib.rib_core.RibCore`` (a mixin it inherits) that follows one peer through
its sessions. A session up gives the peer a ``Source`` (a new one when its identity changed),
reads graceful restart from the OPENs (``rib.graceful_restart.GrTerms``), settles the routes
kept stale from the session before (RFC 4724 4.2, RFC 9494 4.2), joins the peer to its update
group and sends it the table, then End-of-RIB. A session down keeps the routes stale (GR), long-
lived stale (LLGR) or removes them; the timers (restart time, long-lived stale time, the bound
on stale routes after the peer is back) are deadlines of the core. Tables (a new member, a
route refresh) go shard by shard through a cursor (``TableSend``) that waits while the peer's
connection does not take data and goes on when it drains, so a table is never cut short; what
a member missed meanwhile is resynced after it.

Data flow: every handler is a generator run by the core's sliced ``work``; routes change only
through the Loc-RIB, and what changed is published by the core like any other change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from rib.adj_rib_out import ExportSettings, PathIds, Send, UpdateGroup
from rib.graceful_restart import (
    GR_STALE,
    LLGR_STALE,
    STALE,
    flush,
    gr_terms,
    keep_refreshed,
    mark_stale,
    to_long_lived,
)
from rib.loc_rib import LocRib, Published
from rib.peer_rib import PeerRib, RibTimer, TableSend
from rib.rib_events import DeferralDone, PeerUp, PolicyChange
from rib.route import RouteTable, Source, Stale
from rib.shards import SHARDS
from speaker.control_messages import RouteRefresh, encode_route_refresh
from speaker.negotiated import Negotiated
from speaker.session_events import SessionDown
from speaker.wire_codes import Family, RouteRefreshSubtype

if TYPE_CHECKING:
    from rib.channels import Channel

LOG = logging.getLogger("myna.rib")
RUN_CHUNK = 1024  # keys of a resync encoded between two chances to yield
STALE_PATH_TIME = 360.0  # s a returned peer's stale routes may wait for End-of-RIB (FRR's)
REFRESH_TIME = 360.0  # s an enhanced route refresh may take before its stale routes go


class PeerLifecycle:
    """Sessions, graceful restart, tables and refreshes (see the module docstring)."""

    # What the core provides (rib.rib_core.RibCore sets all of these).
    loc: LocRib
    routes: RouteTable
    path_ids: PathIds
    peers: dict[object, PeerRib]
    groups: dict[tuple[Negotiated, ExportSettings], UpdateGroup]
    channels: list[Channel]
    now: float
    stale_path_time: float
    _changes: list[Published]
    _out: list[object]

    def _publish(self) -> None:
        raise NotImplementedError

    def _check_deferral(self) -> None:
        raise NotImplementedError

    def _new_source(self, **fields: object) -> Source:
        raise NotImplementedError

    # -- session up, down, removal ---------------------------------------------------------------

    def _on_remove(self, peer: PeerRib) -> Iterator[None]:
        peer.up = False
        peer.timers.clear()
        self._leave_group(peer)
        if peer.source is not None:
            yield from flush(self.loc, peer.source, list(self.loc.tables), self._changes)
        self._check_deferral()

    def _on_up(self, peer: PeerRib, event: PeerUp) -> Iterator[None]:
        if peer.removed:
            return
        up = event.up
        received = up.received_open
        old = peer.source
        settings = peer.settings
        if (
            old is None
            or old.router_id != received.bgp_id
            or old.asn != received.real_asn
            or old.ibgp != up.negotiated.ibgp
            or old.rr_client != settings.rr_client
            or old.protocol != settings.protocol
            or old.preference != settings.preference
        ):
            if old is not None:
                yield from flush(self.loc, old, list(self.loc.tables), self._changes)
                peer.stale.clear()
                peer.timers.clear()
            peer.source = self._new_source(
                name=settings.name,
                address=settings.address,
                router_id=received.bgp_id,
                asn=received.real_asn,
                ibgp=up.negotiated.ibgp,
                rr_client=settings.rr_client,
                protocol=settings.protocol,
                preference=settings.preference,
            )
        terms = gr_terms(up.sent_open, received)
        peer.gr = terms
        peer.timers.pop((RibTimer.RESTART, None), None)
        if peer.stale:
            yield from self._settle_stale(peer)
        peer.up = True
        peer.eor = set()
        peer.refreshing.clear()
        peer.timers.pop((RibTimer.REFRESH, None), None)
        peer.families = up.negotiated.families
        peer.enhanced_refresh = up.negotiated.enhanced_route_refresh
        peer.conn = up.conn
        peer.writable = True
        peer.missed.clear()
        peer.table = None
        if settings.limit is not None:
            settings.limit.reset()
        # What changed before this point is published before the peer joins, so that the new
        # group counts the table as it is and the new member's table and later words agree.
        self._publish()
        self._join_group(peer, up.negotiated, event.export)
        if not self.loc.deferring:
            peer.table = TableSend(sorted(peer.families), end_of_rib=True)
            yield from self._continue_table(peer)
        self._check_deferral()

    def _settle_stale(self, peer: PeerRib) -> Iterator[None]:
        """RFC 4724 4.2 and RFC 9494 4.2 on re-establishment: which stale routes survive.

        Stale routes of a family survive only if the new OPEN keeps forwarding state for it (the
        F bit of GR for GR-stale routes, of LLGR for long-lived stale ones); the others go at
        once. What stays is bounded: GR-stale routes by the stale-path time, long-lived ones by
        their running timer.
        """
        gr = peer.gr
        assert peer.source is not None
        for family in sorted(peer.stale):
            gone: set[Stale] = set()
            if not (gr.negotiated and family in gr.forwarding):
                gone |= GR_STALE
            if not gr.llgr_forwarding(family):
                gone |= LLGR_STALE
            if gone:
                peer.log.info(
                    "graceful restart: the peer came back without forwarding state for %s: "
                    "its stale routes are removed",
                    family.name,
                )
                yield from flush(
                    self.loc, peer.source, (family,), self._changes, only=frozenset(gone)
                )
            if gone == STALE:
                peer.stale.discard(family)
                peer.timers.pop((RibTimer.LLGR, family), None)
        if peer.stale:
            peer.timers[(RibTimer.STALE_PATH, None)] = self.now + self.stale_path_time

    def _on_down(self, peer: PeerRib, down: SessionDown) -> Iterator[None]:
        if not peer.up:
            return
        peer.up = False
        self._leave_group(peer)
        peer.table = None
        peer.missed.clear()
        peer.timers.pop((RibTimer.STALE_PATH, None), None)
        peer.timers.pop((RibTimer.REFRESH, None), None)
        peer.refreshing.clear()
        source = peer.source
        if source is None:
            return
        gr = peer.gr
        families = [f for f in self.loc.tables if self.loc.count(source, f)]
        if down.graceful and gr.negotiated and gr.restart_time:
            # RFC 4724 4.2: routes of the families the peer's GR capability listed are kept,
            # stale, for its restart time; "a route (from the peer) previously marked as stale
            # MUST be deleted" (consecutive restarts), but long-lived stale ones stay until
            # their own time (RFC 9494 4.2). Families not listed go now, or LLGR keeps them.
            kept = [f for f in families if f in gr.families]
            for family in families:
                if family not in gr.families:
                    if gr.llgr_time(family) is not None:
                        yield from self._to_long_lived(peer, [family])
                    else:
                        yield from flush(self.loc, source, (family,), self._changes)
            yield from flush(self.loc, source, kept, self._changes, only=GR_STALE)
            yield from mark_stale(self.loc, self.routes, source, kept, self._changes)
            peer.stale.update(kept)
            count = sum(self.loc.count(source, f) for f in kept)
            peer.log.info(
                "graceful restart: %d routes kept as stale for up to %d s",
                count,
                gr.restart_time,
            )
            peer.timers[(RibTimer.RESTART, None)] = self.now + gr.restart_time
        elif down.graceful and gr.llgr:
            # RFC 9494: LLGR without GR's restart time (or with 0 s): long-lived at once.
            covered = [f for f in families if gr.llgr_time(f) is not None]
            others = [f for f in families if f not in covered]
            if others:
                yield from flush(self.loc, source, others, self._changes)
            yield from self._to_long_lived(peer, covered)
        else:
            # Not graceful: everything goes at once.
            yield from flush(self.loc, source, families, self._changes)
            peer.stale.clear()
            peer.timers.clear()
        self._check_deferral()

    def _join_group(self, peer: PeerRib, negotiated: Negotiated, export: ExportSettings) -> None:
        key = (negotiated, export)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = UpdateGroup(
                negotiated, export, self.loc, self.path_ids, out=self._out
            )
            self.channels.append(group)
        group.members.append(peer)
        peer.group = group

    def _leave_group(self, peer: PeerRib) -> None:
        group = peer.group
        peer.group = None
        if group is None:
            return
        if peer in group.members:
            group.members.remove(peer)
        if not group.members:
            for key, value in list(self.groups.items()):
                if value is group:
                    del self.groups[key]
            self.channels.remove(group)

    # -- graceful restart timers, End-of-RIB -----------------------------------------------------

    def _on_restart_timeout(self, peer: PeerRib) -> Iterator[None]:
        if peer.up:
            return  # the peer came back while this waited in the queue
        for family in peer.stale_families():
            if peer.gr.llgr_time(family) is not None:
                yield from self._to_long_lived(peer, [family])
                continue
            peer.log.warning(
                "graceful restart: the peer did not return in time, stale %s routes removed",
                family.name,
            )
            yield from self._flush_stale(peer, [family], GR_STALE)

    def _on_llgr_timeout(self, peer: PeerRib, family: Family) -> Iterator[None]:
        peer.log.warning("long-lived stale time over: stale %s routes removed", family.name)
        yield from self._flush_stale(peer, [family], STALE)

    def _on_stale_path_timeout(self, peer: PeerRib) -> Iterator[None]:
        peer.log.warning(
            "graceful restart: no End-of-RIB %.0f s after the peer came back, stale routes removed",
            self.stale_path_time,
        )
        # Long-lived stale routes stay until their own time (RFC 9494 4.2).
        yield from self._flush_stale(peer, peer.stale_families(), GR_STALE)

    def _to_long_lived(self, peer: PeerRib, families: Sequence[Family]) -> Iterator[None]:
        """RFC 9494 4.2: the routes stay, tagged LLGR_STALE, for the long-lived stale time.

        A timer already running for a family keeps its deadline: it "MUST NOT be updated"
        until the peer has synchronized a new session.
        """
        if peer.source is None or not families:
            return
        yield from to_long_lived(self.loc, self.routes, peer.source, families, self._changes)
        peer.stale.update(families)
        for family in families:
            stale_time = peer.gr.llgr_time(family) or 0
            peer.timers.setdefault((RibTimer.LLGR, family), self.now + stale_time)
            peer.log.warning(
                "long-lived graceful restart: %d %s routes kept as LLGR_STALE for up to %d s",
                self.loc.count(peer.source, family),
                family.name,
                stale_time,
            )

    def _flush_stale(
        self, peer: PeerRib, families: Sequence[Family], which: frozenset[Stale]
    ) -> Iterator[None]:
        if peer.source is not None and families:
            yield from flush(self.loc, peer.source, families, self._changes, only=which)
        if which == STALE:
            peer.stale.difference_update(families)
            for family in families:
                peer.timers.pop((RibTimer.LLGR, family), None)
        if not peer.stale:
            peer.timers.pop((RibTimer.STALE_PATH, None), None)

    def _end_of_rib(self, peer: PeerRib, family: Family) -> Iterator[None]:
        peer.eor.add(family)
        source = peer.source
        if family in peer.stale and source is not None:
            before = self.loc.count(source, family)
            yield from self._flush_stale(peer, [family], STALE)
            if before != self.loc.count(source, family):
                peer.log.info(
                    "End-of-RIB %s: %d stale routes not refreshed, removed",
                    family.name,
                    before - self.loc.count(source, family),
                )
        self._check_deferral()

    # -- tables: a new member, a route refresh, a member that drained --------------------------

    def _send(self, peer: PeerRib, data: bytes) -> None:
        self._out.append(Send(peer.handle, data, peer.conn))

    def _continue_table(self, peer: PeerRib, *, hold_end: bool = False) -> Iterator[None]:
        """Send the table as far as the member takes it; the cursor keeps the rest.

        ``hold_end``: stop before the End-of-RIB (the keys the member missed go first).
        """
        table = peer.table
        group = peer.group
        while table is not None and group is not None and peer.writable:
            if table.index >= len(table.families):
                if hold_end:
                    return
                if table.end_of_rib:
                    self._send(peer, group.end_of_rib())
                peer.table = None
                return
            family = table.families[table.index]
            if table.enhanced and not table.began:
                self._send(peer, encode_route_refresh(_refresh(family, RouteRefreshSubtype.BEGIN)))
                table.began = True
            if table.shard < SHARDS:
                data = group.table_for(peer, family, table.shard)
                table.shard += 1
                if data:
                    self._send(peer, data)
                    yield
                continue
            if table.enhanced:
                self._send(peer, encode_route_refresh(_refresh(family, RouteRefreshSubtype.END)))
            table.index += 1
            table.shard = 0
            table.began = False

    def _end_of_rib_to(self, peer: PeerRib) -> None:
        """End-of-RIB to a member now, or once it has drained (RFC 4724 4: it MUST be sent)."""
        if peer.table is not None:
            peer.table.end_of_rib = True
        elif peer.writable and peer.group is not None:
            self._send(peer, peer.group.end_of_rib())
        else:
            peer.table = TableSend([], end_of_rib=True)

    def _on_drained(self, peer: PeerRib) -> Iterator[None]:
        """A member that fell behind takes data again.

        The rest of its table first, then what it missed meanwhile, each key as it is now,
        then the End-of-RIB that ends the table (RFC 4724 4.1: after the initial update).
        """
        if peer.table is not None:
            yield from self._continue_table(peer, hold_end=True)
        group = peer.group
        if group is None or not peer.up:
            peer.missed.clear()
            return
        while peer.missed and peer.writable and _table_sent(peer):
            family, keys = peer.missed.popitem()
            ordered = sorted(keys)
            for start in range(0, len(ordered), RUN_CHUNK):
                data = group.keys_for(peer, family, ordered[start : start + RUN_CHUNK])
                if data:
                    self._send(peer, data)
                yield
                if not peer.writable:  # behind again: what is left waits for the next drain
                    peer.missed.setdefault(family, set()).update(ordered[start + RUN_CHUNK :])
                    return
        if peer.table is not None and not peer.missed:
            yield from self._continue_table(peer)  # its End-of-RIB, last

    # -- a reload's new filters ----------------------------------------------------------------

    def _on_policies(self, changes: Sequence[PolicyChange]) -> Iterator[None]:
        """New filters for running peers, as BIRD 1.6 applies them without a restart.

        A new import policy applies to what the peer sends from now on, and a ROUTE-REFRESH
        asks it for everything again (re-imported: a route the new policy rejects replaces the
        one held, as a withdrawal). A new export re-feeds the peer (``_refeed``).
        """
        views: dict[tuple[UpdateGroup, Family], dict[int, Source]] = {}
        self._publish()  # every member holds the view of its group as it is now
        for change in changes:
            peer = self.peers.get(change.peer)
            if peer is None or peer.removed:
                continue
            if change.import_policy is not None:
                peer.settings = replace(
                    peer.settings,
                    import_policy=change.import_policy,
                    import_per_route=change.import_per_route,
                )
                if change.refresh and peer.up:
                    for family in sorted(peer.families):
                        self._send(
                            peer, encode_route_refresh(_refresh(family, RouteRefreshSubtype.NORMAL))
                        )
            if change.export is not None and peer.up and peer.group is not None:
                yield from self._refeed(peer, change.export, views)

    def _refeed(
        self,
        peer: PeerRib,
        export: ExportSettings,
        views: dict[tuple[UpdateGroup, Family], dict[int, Source]],
    ) -> Iterator[None]:
        """Move the peer to the group of ``export`` and send it every key either view holds.

        BIRD 1.6's re-feed (``proto_request_feeding``): what the new view holds is announced,
        what it does not is withdrawn, spurious withdrawals included, none missing. The keys go
        through the member's resync (``missed``), so they wait while it does not take data.
        ``views`` keeps each group's keys (with their owners) per family for the other peers of
        the same reload; the peer's own routes are left out, as its view leaves them out.
        """
        old = peer.group
        assert old is not None
        self._leave_group(peer)
        self._join_group(peer, old.negotiated, export)
        new = peer.group
        assert new is not None
        if self.loc.deferring:
            return  # its table goes out when selection is over, from the new group
        own = peer.source
        for family in sorted(peer.families):
            for group in (old, new):
                view = views.get((group, family))
                if view is None:
                    view = views[(group, family)] = {}
                    for shard in range(SHARDS):
                        view.update(group.view_owners(family, shard))
                        yield
                missed = peer.missed.setdefault(family, set())
                missed.update(key for key, owner in view.items() if owner is not own)
            if not peer.missed[family]:
                del peer.missed[family]
        if peer.writable:
            yield from self._on_drained(peer)

    # -- route refresh -------------------------------------------------------------------------

    def _on_refresh(self, peer: PeerRib, refresh: RouteRefresh) -> Iterator[None]:
        family = Family.lookup(refresh.afi, refresh.safi)
        if family is None or family not in peer.families:
            return
        if refresh.subtype == RouteRefreshSubtype.NORMAL:
            # RFC 2918: the Adj-RIB-Out again (no End-of-RIB: BIRD and FRR send none); RFC 7313:
            # between BoRR and EoRR when negotiated.
            if peer.group is None or self.loc.deferring:
                return
            if peer.table is not None:
                if family not in peer.table.families[peer.table.index :]:
                    peer.table.families.append(family)
                return
            peer.table = TableSend([family], enhanced=peer.enhanced_refresh)
            yield from self._continue_table(peer)
        elif refresh.subtype == RouteRefreshSubtype.BEGIN and peer.enhanced_refresh:
            # RFC 7313 4: what the peer does not announce again before EoRR goes then.
            peer.refreshing[family] = set()
            peer.timers[(RibTimer.REFRESH, None)] = self.now + REFRESH_TIME
        elif refresh.subtype == RouteRefreshSubtype.END and family in peer.refreshing:
            yield from self._end_refresh(peer, [family])

    def _end_refresh(self, peer: PeerRib, families: Sequence[Family]) -> Iterator[None]:
        for family in families:
            refreshed = peer.refreshing.pop(family, None)
            if refreshed is not None and peer.source is not None:
                yield from keep_refreshed(self.loc, peer.source, family, refreshed, self._changes)
        if not peer.refreshing:
            peer.timers.pop((RibTimer.REFRESH, None), None)

    def _deferral_done(self, reason: str) -> None:
        """Every member its End-of-RIB (after the whole table went out), then the daemon."""
        for group in self.groups.values():
            for member in group.members:
                self._end_of_rib_to(member)  # type: ignore[arg-type]
        self._out.append(DeferralDone(reason))


def _table_sent(peer: PeerRib) -> bool:
    """No table send, or one with only its End-of-RIB left."""
    table = peer.table
    return table is None or table.index >= len(table.families)


def _refresh(family: Family, subtype: RouteRefreshSubtype) -> RouteRefresh:
    return RouteRefresh(family.afi, family.safi, subtype)
