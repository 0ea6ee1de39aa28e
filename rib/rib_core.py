"""The RIB as a sans-I/O core: events and the current time in, actions out.

Role: everything the RIB decides, with no event loop, socket, clock or timer of its own (the
shape of ``speaker.session_fsm`` and aioquic's connection). The asyncio shell
(``rib.rib_task.Rib``) feeds it ``rib.rib_events`` events, calls ``work(now, should_yield)``
for a slice of work and carries out the actions that come back, arms one timer for
``next_deadline()`` and calls ``handle_timer(now)`` when it fires. Tests drive it directly.

Data flow: events queue in order. Each is handled by a generator that applies its routes to
the Loc-RIB (``rib.loc_rib``, the one table of record) in chunks and yields between them; the
changes gathered so far are published to the channels (``rib.channels``: update groups, the FIB
programmer) whenever ``should_yield`` says the slice is over, and at the end of ``work``. So
big inputs are cut into slices, publication is once per slice (200 peers' UPDATEs that arrive
together cost each group one encoding), and an event never starts before the one before it is
done. UPDATEs pass the RFC 4456 loop check (``reflector.loop_check``, once per attribute set)
and the peer's import policy; a session up joins the peer to its update group
(``rib.adj_rib_out``) and sends it the table; graceful restart, long-lived graceful restart
and enhanced route refresh (``rib.graceful_restart``) keep, mark and sweep a peer's routes
with timers that are deadlines here.

Selection deferral (RFC 4724, we restarted): the Loc-RIB collects routes without publishing
until End-of-RIB came from every graceful-restart peer that is up, or the deferral timer ran
out, but never waits for a peer that is down (calico#7144); then the whole table is published.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator

from reflector.loop_check import LoopCheck, LoopLog
from rib.adj_rib_in import rib_key
from rib.adj_rib_out import ExportSettings, PathIds, UpdateGroup
from rib.channels import Channel
from rib.decision import DecisionOptions
from rib.loc_rib import LocRib, Published
from rib.next_hops import NextHops, Resolve
from rib.peer_lifecycle import STALE_PATH_TIME, PeerLifecycle
from rib.peer_rib import PeerRib, RibTimer
from rib.policy import LimitDecision
from rib.rib_events import (
    Cease,
    NextHopsChanged,
    Originate,
    PeerAdded,
    PeerDown,
    PeerRemoved,
    PeerStateChanged,
    PeerUp,
    RefreshIn,
    RibEvent,
    Started,
    UpdatesDone,
    UpdatesIn,
)
from rib.route import Preferred, Route, RouteTable, Source, Stale
from rib.shards import SHARDS
from speaker.control_messages import Notification
from speaker.negotiated import Negotiated
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.rib")
RUN_CHUNK = 1024  # prefixes of one run applied between two chances to yield
# A queued timer or internal work item: (what, family for per-family timers, peer)
_Due = tuple[RibTimer, Family | None, PeerRib | None]


class Runs:
    """Work for the Loc-RIB: runs of prefixes that share family, source, path id and route.

    A peer's UPDATE is one run (its NLRI, one route); ``add`` extends the last run when it can,
    so prefix-by-prefix producers (ADD-PATH, per-prefix policies) make runs too.
    """

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: list[tuple[Family, Source, int, Route | None, list[int] | tuple[int, ...]]]
        self.runs = []

    def add(
        self, family: Family, prefix: int, source: Source, path_id: int, route: Route | None
    ) -> None:
        """One prefix."""
        runs = self.runs
        if runs:
            last = runs[-1]
            prefixes = last[4]
            if (
                last[3] is route
                and last[1] is source
                and last[2] == path_id
                and last[0] is family
                and prefixes.__class__ is list
            ):
                prefixes.append(prefix)
                return
        runs.append((family, source, path_id, route, [prefix]))

    def extend(
        self,
        family: Family,
        source: Source,
        path_id: int,
        route: Route | None,
        prefixes: list[int] | tuple[int, ...],
    ) -> None:
        """Many prefixes (a tuple is kept as it is; a list may be extended by ``add``)."""
        if prefixes:
            self.runs.append((family, source, path_id, route, prefixes))

    def __len__(self) -> int:
        return sum(len(run[4]) for run in self.runs)


def _imported(
    intern: Callable[..., Route], source: Source, kept: PathAttributes | Preferred, path_id: int
) -> Route:
    """The route an import policy's answer makes (``Preferred``: with its own preference)."""
    if kept.__class__ is Preferred:
        return intern(source, ATTRIBUTES.intern(kept[0]), path_id, Stale.FRESH, kept[1])
    return intern(source, kept, path_id)


class RibCore(PeerLifecycle):
    """The RIB's state and decisions (see the module docstring)."""

    def __init__(
        self,
        local_as: int,
        router_id: int,
        options: DecisionOptions | None = None,
        *,
        cluster_id: int | None = None,
        selection_deferral: float = 0.0,
        peer_wait: float = 0.0,
        resolve: Resolve | None = None,
        stale_path_time: float = STALE_PATH_TIME,
    ) -> None:
        self.local_as = local_as
        self.router_id = router_id
        # RFC 4456 8: our router id as ORIGINATOR_ID, our cluster id (reflectors only) in
        # CLUSTER_LIST: such routes are ignored.
        self.loops = LoopLog(LoopCheck(router_id, cluster_id))
        self.loc = LocRib(options, NextHops(resolve))
        self.routes = RouteTable()
        self.path_ids = PathIds()
        self.peers: dict[object, PeerRib] = {}
        self.groups: dict[tuple[Negotiated, ExportSettings], UpdateGroup] = {}
        self.channels: list[Channel] = []  # update groups and the other subscribers
        # the node's own sources, by what made their routes (``Originate.source_key``)
        self.local_sources: dict[tuple[object, ...], Source] = {}
        self.stale_path_time = stale_path_time
        self.selection_deferral = selection_deferral
        self.peer_wait = min(peer_wait, selection_deferral)
        self.loc.deferring = selection_deferral > 0
        self.deferral_deadline: float | None = None
        self.peer_wait_until = 0.0
        self.prefixes_processed = 0
        self.version = 0  # publications so far: views cached on it stay valid while it holds
        self.now = 0.0
        self._serials = 0
        self._queue: deque[RibEvent | _Due] = deque()
        self._current: Iterator[None] | None = None
        self._changes: list[Published] = []  # applied to the Loc-RIB, not yet published
        self._out: list[object] = []  # actions for the shell

    # -- inputs --------------------------------------------------------------------------------

    def handle(self, event: RibEvent, now: float) -> None:
        """Take one event (registering a peer is immediate; everything else queues in order)."""
        self.now = now
        if isinstance(event, PeerAdded):
            self.peers[event.peer] = PeerRib(event.peer, event.settings)
            return
        if isinstance(event, PeerRemoved):
            peer = self.peers.pop(event.peer, None)
            if peer is not None:
                peer.removed = True  # later events of this session are dropped
                self._queue.append((RibTimer.REMOVED, None, peer))
            return
        if isinstance(event, PeerStateChanged):
            peer = self.peers.get(event.peer)
            if peer is not None:
                peer.coming_up = event.coming_up
        self._queue.append(event)

    def set_writable(self, peer: object, writable: bool) -> None:
        """The peer's connection stopped (or started again) taking data; applies at once."""
        state = self.peers.get(peer)
        if state is None or state.writable == writable:
            return
        state.writable = writable
        if writable and (state.missed or state.table is not None):
            self._queue.append((RibTimer.DRAINED, None, state))

    def handle_timer(self, now: float) -> None:
        """Queue the work of every deadline that has passed."""
        self.now = now
        if self.deferral_deadline is not None and now >= self.deferral_deadline:
            self.deferral_deadline = None
            self._queue.append((RibTimer.DEFERRAL, None, None))
        if self.peer_wait_until and now >= self.peer_wait_until:
            self.peer_wait_until = 0.0
            self._queue.append((RibTimer.DEFERRAL_CHECK, None, None))
        for peer in list(self.peers.values()):
            for (timer, family), deadline in list(peer.timers.items()):
                if now >= deadline:
                    del peer.timers[(timer, family)]
                    self._queue.append((timer, family, peer))

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` has something to do next (None: nothing is armed)."""
        deadlines = [d for p in self.peers.values() for d in p.timers.values()]
        if self.deferral_deadline is not None:
            deadlines.append(self.deferral_deadline)
        if self.peer_wait_until:
            deadlines.append(self.peer_wait_until)
        return min(deadlines) if deadlines else None

    @property
    def has_work(self) -> bool:
        """Whether ``work`` has something to do."""
        return self._current is not None or bool(self._queue) or bool(self._changes)

    def work(self, now: float, should_yield: Callable[[], bool]) -> list[object]:
        """Work until done or until ``should_yield()``; the actions for the shell.

        ``should_yield`` is asked between chunks of a few hundred prefixes and between events;
        the shell makes it a time budget, tests pass ``lambda: False``.
        """
        self.now = now
        while True:
            if self._current is None:
                if not self._queue:
                    break
                self._current = self._dispatch(self._queue.popleft())
            for _ in self._current:
                if should_yield():
                    self._publish()
                    return self._take()
            self._current = None
            if should_yield():
                break
        self._publish()
        return self._take()

    def _take(self) -> list[object]:
        # Cleared in place: the update groups append to this very list.
        out = self._out[:]
        self._out.clear()
        return out

    def add_channel(self, channel: Channel) -> None:
        """Subscribe a channel (the FIB programmer) to the Loc-RIB's publications.

        It gets what is selected now as changes from nothing, unless selection is deferred
        (then it gets the whole table when the deferral ends).
        """
        self.channels.append(channel)
        if not self.loc.deferring:
            for family in list(self.loc.tables):
                for shard in range(SHARDS):
                    changes = self.loc.table_changes(family, shard)
                    if changes:
                        channel.publish(changes)

    def remove_channel(self, channel: Channel) -> None:
        """Unsubscribe a channel (the daemon stopping: the kernel keeps its routes)."""
        if channel in self.channels:
            self.channels.remove(channel)

    def sweep(self) -> int:
        """Free what nothing uses any more (the shell runs it in idle spells); entries dropped.

        The intern tables keep what no table refers to any more (a withdrawn route's Route, the
        attribute sets of changed routes) until swept: routes first, which frees their sets for
        the attribute sweep; the groups' rewrite caches would keep every set they ever
        rewrote. It walks only those tables, so it may run while the RIB is busy.
        """
        dropped = self.routes.sweep()
        for group in self.groups.values():
            group.forget_rewrites()
        dropped += ATTRIBUTES.sweep()
        dropped += self.loc.next_hops.forget_unused({r.attrs.next_hop for r in self.routes})
        return dropped

    def compact(self) -> int:
        """Rebuild the Loc-RIB's shards left oversized by a mass withdrawal (idle spells)."""
        return self.loc.compact()

    # -- publication ---------------------------------------------------------------------------

    def _publish(self) -> None:
        if not self._changes:
            return
        # Copied and cleared in place: generators still running append to this very list.
        changes = self._changes[:]
        self._changes.clear()
        self.version += 1
        for channel in self.channels:
            channel.publish(changes)

    def _apply(self, work: Runs) -> Iterator[None]:
        """Apply ``work`` to the Loc-RIB in chunks, yielding between them."""
        apply_run = self.loc.apply_run
        out = self._changes  # the same list for good: ``_publish`` empties it in place
        for family, source, path_id, route, prefixes in work.runs:
            count = len(prefixes)
            for start in range(0, count, RUN_CHUNK):
                chunk = prefixes if count <= RUN_CHUNK else prefixes[start : start + RUN_CHUNK]
                apply_run(family, source, path_id, route, chunk, out=out)
                yield
            self.prefixes_processed += count

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, item: RibEvent | _Due) -> Iterator[None]:
        if isinstance(item, tuple):
            return self._on_timer(*item)
        peer = self.peers.get(getattr(item, "peer", None))
        if isinstance(item, UpdatesIn):
            return self._on_updates(peer, item) if peer is not None else iter(())
        if isinstance(item, PeerUp):
            return self._on_up(peer, item) if peer is not None else iter(())
        if isinstance(item, PeerDown):
            return self._on_down(peer, item.down) if peer is not None else iter(())
        if isinstance(item, RefreshIn):
            return self._on_refresh(peer, item.refresh) if peer is not None else iter(())
        if isinstance(item, Originate):
            return self._on_originate(item)
        if isinstance(item, NextHopsChanged):
            return self._on_next_hops()
        if isinstance(item, Started):
            return self._on_started()
        if isinstance(item, PeerStateChanged):
            self._check_deferral()
        return iter(())

    def _on_timer(
        self, timer: RibTimer, family: Family | None, peer: PeerRib | None
    ) -> Iterator[None]:
        if timer is RibTimer.DEFERRAL:
            return self._end_deferral("selection deferral timer expired")
        if timer is RibTimer.DEFERRAL_END:
            return self._end_deferral("End-of-RIB from every peer that is up")
        if timer is RibTimer.DEFERRAL_CHECK:
            self._check_deferral()
            return iter(())
        assert peer is not None
        if timer is RibTimer.REMOVED:
            return self._on_remove(peer)
        if peer.removed:
            return iter(())
        if timer is RibTimer.RESTART:
            return self._on_restart_timeout(peer)
        if timer is RibTimer.LLGR:
            assert family is not None
            return self._on_llgr_timeout(peer, family)
        if timer is RibTimer.STALE_PATH:
            return self._on_stale_path_timeout(peer)
        if timer is RibTimer.REFRESH:
            return self._end_refresh(peer, list(peer.refreshing))
        if timer is RibTimer.DRAINED:
            return self._on_drained(peer)
        return iter(())

    # -- peers and sessions (the rest is rib.peer_lifecycle) -----------------------------------

    def _new_source(self, **fields: object) -> Source:
        self._serials += 1
        return Source(serial=self._serials, **fields)  # type: ignore[arg-type]

    # -- UPDATEs -------------------------------------------------------------------------------

    def _on_updates(self, peer: PeerRib, event: UpdatesIn) -> Iterator[None]:
        source = peer.source
        if source is None or not peer.up or peer.removed:
            return
        settings = peer.settings
        policy = settings.import_policy
        per_route = settings.import_per_route
        intern = self.routes.intern
        note = self.loc.next_hops.note
        loops = self.loops
        log = settings.log
        work = Runs()
        count = 0
        families: set[Family] = set()
        for update in event.updates:
            for problem in update.problems:
                log.warning("malformed UPDATE from the peer: %s", problem.describe())
            for gone in update.unreach:
                family = gone.family
                count += len(gone.prefixes)
                if gone.path_ids is None:
                    work.extend(family, source, 0, None, gone.prefixes)
                    continue
                for prefix, path_id in zip(gone.prefixes, gone.path_ids, strict=True):
                    work.add(family, prefix, source, path_id, None)
            for reach in update.reach:
                family = reach.family
                families.add(family)
                count += len(reach.prefixes)
                refreshed = peer.refreshing.get(family)
                ids = reach.path_ids or (0,) * len(reach.prefixes)
                if refreshed is not None:
                    refreshed.update(map(rib_key, reach.prefixes, ids))
                looped = loops.check(reach.attributes)
                if looped is not None:
                    # Ignored: gone from this peer, if it was there before (RFC 4456 8).
                    loops.ignored(settings.name, log, looped, len(reach.prefixes))
                    for prefix, path_id in zip(reach.prefixes, ids, strict=True):
                        work.add(family, prefix, source, path_id, None)
                    continue
                note(reach.attributes.next_hop)
                plain = intern(source, reach.attributes)
                if per_route and not reach.path_ids and reach.prefixes:
                    # One answer for the whole set: the policy does not read the prefix.
                    kept = policy(family, reach.prefixes[0], plain)
                    if kept is None:
                        work.extend(family, source, 0, None, reach.prefixes)
                        continue
                    if kept is plain.attrs:
                        route = plain
                    else:
                        route = _imported(intern, source, kept, 0)
                        note(route.attrs.next_hop)  # the policy may have set another next hop
                    work.extend(family, source, 0, route, reach.prefixes)
                    continue
                for prefix, path_id in zip(reach.prefixes, ids, strict=True):
                    route = plain if not path_id else intern(source, reach.attributes, path_id)
                    kept = policy(family, prefix, route)
                    if kept is None:
                        work.add(family, prefix, source, path_id, None)
                        continue
                    if kept is not route.attrs:
                        route = _imported(intern, source, kept, path_id)
                        note(route.attrs.next_hop)
                    work.add(family, prefix, source, path_id, route)
            if update.end_of_rib is not None:
                yield from self._apply(work)
                work = Runs()
                yield from self._end_of_rib(peer, update.end_of_rib)
        yield from self._apply(work)
        self._out.append(UpdatesDone(event.received_at, count))
        if settings.limit is not None:
            self._check_limit(peer, source, families)

    def _check_limit(self, peer: PeerRib, source: Source, families: set[Family]) -> None:
        limit = peer.settings.limit
        assert limit is not None
        for family in families:
            count = self.loc.count(source, family)
            outcome = limit.check(count, family)
            if outcome.decision == LimitDecision.WARN:
                peer.log.warning(
                    "%d %s prefixes exceed the limit of %d", count, family.name, limit.limit
                )
            elif outcome.decision == LimitDecision.CEASE:
                reason = f"{count} {family.name} prefixes exceed the limit of {limit.limit}"
                peer.log.error("%s: ending the session", reason)
                note = Notification(outcome.code, outcome.subcode, outcome.data)
                self._out.append(Cease(peer.handle, note, reason, outcome.restart_after))
                return

    # -- the node's own routes, next hops --------------------------------------------------------

    def _on_originate(self, event: Originate) -> Iterator[None]:
        key = event.source_key
        source = self.local_sources.get(key)
        if source is None:
            source = self.local_sources[key] = self._new_source(
                name=event.origin.name.lower(),
                origin=event.origin,
                router_id=self.router_id,
                protocol=event.protocol,
                interface=event.interface,
                preference=event.preference,
                kernel=event.kernel,
            )
        attrs = event.attrs
        route = None
        if attrs is not None:
            route = self.routes.intern(source, ATTRIBUTES.intern(attrs))
        work = Runs()
        work.extend(event.family, source, 0, route, list(event.prefixes))
        yield from self._apply(work)

    def _on_next_hops(self) -> Iterator[None]:
        # What changed before is published first: the groups rank ADD-PATH candidates when
        # they take a change, and must do it with the resolution the change was made under.
        self._publish()
        changed = self.loc.next_hops.refresh()
        if not changed:
            return
        LOG.info("next-hop resolution changed for %d next hops: deciding again", len(changed))
        for family in list(self.loc.tables):
            for shard in range(SHARDS):
                self.loc.reselect(family, shard, changed, self._changes)
                yield

    # -- selection deferral (we are the restarting side) ------------------------------------------

    def _on_started(self) -> Iterator[None]:
        if self.loc.deferring:
            self.deferral_deadline = self.now + self.selection_deferral
            if not self.peers:
                return self._end_deferral("no peers to wait for")
            if self.peer_wait > 0:
                self.peer_wait_until = self.now + self.peer_wait
        return iter(())

    def _check_deferral(self) -> None:
        if not self.loc.deferring:
            return
        # A peer that restarts too (R flag) defers its own End-of-RIB until it has ours: waiting
        # for it would stall both sides until the deferral timer (calico#7144 after a rollout).
        # A peer whose OPENs are being exchanged is alive and about to send its routes: wait for
        # it too, or the first peer's End-of-RIB would end the deferral a millisecond before the
        # others are up (their routes would then flap at every peer that kept them as stale).
        early = self.now < self.peer_wait_until
        waiting = [
            p
            for p in self.peers.values()
            if (p.up and p.gr.negotiated and not p.gr.restarting and not p.eor >= p.families)
            or (not p.up and (early or p.coming_up))
        ]
        if not waiting and any(p.up for p in self.peers.values()):
            self._queue.append((RibTimer.DEFERRAL_END, None, None))

    def _end_deferral(self, reason: str) -> Iterator[None]:
        if not self.loc.deferring:
            return
        LOG.info("best-path selection starts: %s", reason)
        self.deferral_deadline = None
        self.peer_wait_until = 0.0
        self.loc.deferring = False
        # Every channel (the groups with their members, the FIB) gets the whole table, once per
        # group, as changes from nothing; then each member its End-of-RIB, and only then the
        # daemon hears of it (it deletes the kernel routes nobody selected again).
        for family in list(self.loc.tables):
            for shard in range(SHARDS):
                self._changes.extend(self.loc.table_changes(family, shard))
                yield
        self._publish()
        self._deferral_done(reason)
