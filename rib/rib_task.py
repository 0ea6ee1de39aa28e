"""The one task that owns the RIB: Adj-RIBs-In, Loc-RIB, update groups, graceful restart.

Data flow: peer sessions (``speaker.transport.PeerSession``) use a ``Rib`` as their sink: their
calls only append to the RIB's inbox and wake its task, so a session never waits on the RIB
(OpenBGPD's session engine / decision engine split). The task (``run``) takes the inbox in
order: a session up joins its update group and gets the table; UPDATEs pass the RFC 4456 loop
check (``reflector.loop_check``, once per attribute set) and import policy into the peer's
``AdjRibIn`` and the ``LocRib``; every change of a best route or ECMP set goes, in
batches, to the update groups (which write UPDATEs to their members) and to the subscribers
(kernel sync, control API). Big inputs are cut into slices of at most ``SLICE_SECONDS`` of work
between which the task yields, so KEEPALIVEs and other sessions are never held up; when the
inbox holds more than ``INBOX_HIGH`` prefixes, sessions stop reading until it drains.

Graceful restart (RFC 4724): a GR peer's routes go stale when its session drops and are swept
at its End-of-RIB or when its restart time runs out; a second drop deletes the stale ones at
once. After our own restart, best-path selection waits for End-of-RIB from every GR peer that
is up, or for the selection deferral timer, but never for a peer that is down (calico#7144).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, cast

from reflector.loop_check import LoopCheck, LoopLog
from rib.adj_rib_in import PATH_ID_SHIFT, AdjRibIn, split_key
from rib.adj_rib_out import ExportSettings, UpdateGroup
from rib.decision import DecisionOptions
from rib.gc_schedule import GcSchedule
from rib.loc_rib import LocRib, Published
from rib.policy import LimitDecision, PrefixLimit
from rib.route import ROUTES, Origin, Route, Source, Stale
from rib.shards import SHARD_OF, SPREAD, pop_present, shard_items
from speaker.capabilities import GracefulRestartCapability, LongLivedGracefulRestartCapability
from speaker.control_messages import Notification
from speaker.negotiated import Negotiated
from speaker.open_message import Open
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_counters import LatencyHistogram
from speaker.session_events import RouteRefreshReceived, SessionDown, SessionUp, StateChange
from speaker.update_message import Update
from speaker.wire_codes import Family, GracefulRestartFlag, WellKnownCommunity

LOG = logging.getLogger("myna.rib")
SLICE_SECONDS = 0.003  # Loc-RIB work before its changes are published and the loop yields
RUN_CHUNK = 1024  # prefixes of one run the Loc-RIB takes between two looks at the clock
INBOX_HIGH = 200_000  # prefixes queued before sessions stop reading
INBOX_LOW = 50_000

# (family, prefix, route) -> attributes to keep (maybe rewritten, interned) or None to drop
ImportPolicy = Callable[[Family, int, Route], PathAttributes | None]
Subscriber = Callable[[Sequence[Published]], None]
RunPrefixes = list[int] | tuple[int, ...]
AdjShards = list[dict[int, Route]]


class Runs:
    """Work for the Loc-RIB: runs of prefixes that share family, source, path id and route.

    A peer's UPDATE is one run (its NLRI, one route); the Loc-RIB takes a run in one tight
    loop and publishes it as one ``Run`` (``LocRib.apply_run``). ``add`` extends the last run
    when it can, so prefix-by-prefix producers (ADD-PATH, per-prefix policies, sweeps) make
    runs too.
    """

    __slots__ = ("deferred", "runs")

    def __init__(self) -> None:
        self.runs: list[tuple[Family, Source, int, Route | None, RunPrefixes, AdjShards | None]]
        self.runs = []
        self.deferred = False  # some run's Adj-RIB-In stores wait for the Loc-RIB (extend)

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
        runs.append((family, source, path_id, route, [prefix], None))

    def extend(
        self,
        family: Family,
        source: Source,
        path_id: int,
        route: Route | None,
        prefixes: RunPrefixes,
        *,
        store: AdjShards | None = None,
    ) -> None:
        """Many prefixes (a tuple is kept as it is; a list may be extended by ``add``).

        ``store``: the Adj-RIB-In shards the Loc-RIB records ``route`` in as it goes (path id 0).
        """
        if prefixes:
            self.runs.append((family, source, path_id, route, prefixes, store))
            self.deferred = self.deferred or store is not None

    def __len__(self) -> int:
        return sum(len(run[4]) for run in self.runs)


class _Addressed(Protocol):
    @property
    def address(self) -> str:
        """The peer's address."""


class RibSession(Protocol):
    """What the RIB needs of a peer session (``speaker.transport.PeerSession`` has it)."""

    @property
    def name(self) -> str:
        """The peer's name (its address)."""

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """The peer's logger."""

    @property
    def transport_settings(self) -> _Addressed:
        """Where the peer is."""

    def send(self, data: bytes) -> bool:
        """Write encoded messages on the Established connection."""

    def local_address(self) -> str | None:
        """Our address towards the peer."""

    def resume_reading(self) -> None:
        """Read from the peer again (after back-pressure)."""

    def cease(self, notification: Notification, reason: str, restart_after: float | None) -> None:
        """End the session with this NOTIFICATION (restarting after a delay, or not)."""

    @property
    def coming_up(self) -> bool:
        """OpenSent, OpenConfirm or Established: the peer answers.

        Its SessionUp may still be on its way to the RIB.
        """


def llgr_stale_time(sent: Open, received: Open) -> int:
    """The long-lived stale time (RFC 9494) when both OPENs carry LLGR; 0 otherwise."""
    ours = [c for c in sent.capabilities if isinstance(c, LongLivedGracefulRestartCapability)]
    theirs = [c for c in received.capabilities if isinstance(c, LongLivedGracefulRestartCapability)]
    if not ours or not theirs:
        return 0
    times = [stale for _, _, _, stale in theirs[0].families]
    return min(times) if times else 0


def accept_import(_family: Family, _prefix: int, route: Route) -> PathAttributes | None:
    """The import policy of a peer configured without one."""
    return route.attrs


@dataclass
class PeerRib:
    """The RIB's state for one configured peer."""

    session: RibSession
    export: Callable[[RibSession, SessionUp], ExportSettings]
    import_policy: ImportPolicy = accept_import
    rr_client: bool = False  # RFC 4456: the peer is a route-reflector client of ours
    import_per_route: bool = False  # the import policy ignores the prefix (see add_peer)
    source: Source | None = None
    adj_in: AdjRibIn = field(default_factory=AdjRibIn)
    group: UpdateGroup | None = None
    up: bool = False
    graceful: bool = False  # the current session negotiated GR with the peer
    restart_time: int = 0  # the peer's, from its OPEN
    eor: set[Family] = field(default_factory=set)
    families: frozenset[Family] = frozenset()
    restarting: bool = False  # the peer's OPEN carried the Restart State flag
    limit: PrefixLimit | None = None
    llgr_time: int = 0  # RFC 9494 long-lived stale time both sides agreed on (0: none)
    stale_timer: asyncio.TimerHandle | None = None


Handler = Callable[["Rib", "RibSession | None", object], Coroutine[Any, Any, None]]


class Rib:
    """The RIB and its task (see the module docstring)."""

    def __init__(
        self,
        local_as: int,
        router_id: int,
        options: DecisionOptions | None = None,
        selection_deferral: float = 0.0,
        manage_gc: bool = False,
        *,
        peer_wait: float = 0.0,
        cluster_id: int | None = None,
    ) -> None:
        self.local_as = local_as
        self.router_id = router_id
        # RFC 4456 8: our router id as ORIGINATOR_ID, our cluster id (reflectors only) in
        # CLUSTER_LIST: such routes are ignored.
        self.loops = LoopLog(LoopCheck(router_id, cluster_id))
        self.loc = LocRib(options)
        self.peers: dict[str, PeerRib] = {}
        self.groups: dict[tuple[Negotiated, ExportSettings], UpdateGroup] = {}
        self.subscribers: list[Subscriber] = []
        self.local_sources: dict[Origin, Source] = {}
        self._serials = 0
        self._inbox: deque[tuple[str, RibSession | None, object]] = deque()
        self._queued = 0
        self._paused: set[RibSession] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.selection_deferral = selection_deferral
        # During deferral, also wait this long after the start for peers that are not up yet
        # (one in its error wait after our crash refuses us for a second or two); a peer down
        # for good delays selection by this much, never by the whole deferral.
        self.peer_wait = min(peer_wait, selection_deferral)
        self._waiting_for_peers_until = 0.0
        self.loc.deferring = selection_deferral > 0
        self._deferral_timer: asyncio.TimerHandle | None = None
        self.prefixes_processed = 0
        # Seconds from a batch of UPDATEs decoded (one socket read) to its routes being in the
        # Loc-RIB with the changes handed to update groups and subscribers (inbox wait included).
        self.update_latency = LatencyHistogram()
        self.status_hook: Callable[[], None] | None = None  # called when status may differ
        self.deferral_done_hook: Callable[[], None] | None = None
        # The daemon hands full garbage collections to the RIB's idle spells (gc_schedule).
        self.gc = GcSchedule() if manage_gc else None
        self._changes: list[Published] = []  # applied to the Loc-RIB, not yet published
        self._slice_start = 0.0
        self._slice_cpu = 0.0
        self.longest_slice = 0.0  # seconds of wall time between two yields, at most
        self.longest_slice_cpu = 0.0  # the same in CPU time (what the RIB itself spent)

    # -- set-up --------------------------------------------------------------------------------

    def add_peer(
        self,
        session: RibSession,
        export: Callable[[RibSession, SessionUp], ExportSettings],
        import_policy: ImportPolicy = accept_import,
        limit: PrefixLimit | None = None,
        *,
        rr_client: bool = False,
        import_per_route: bool = False,
    ) -> None:
        """Serve a peer: ``export`` builds its export settings when its session comes up.

        ``import_per_route``: the import policy's answer does not depend on the prefix (no
        filters, no own blocks): it is asked once per UPDATE's attribute set, not per prefix.
        """
        self.peers[session.name] = PeerRib(
            session,
            export,
            import_policy,
            rr_client=rr_client,
            limit=limit,
            import_per_route=import_per_route or import_policy is accept_import,
        )

    def remove_peer(self, session: RibSession) -> None:
        """Stop serving a peer (removed or replaced by a reload); its routes go at once.

        The peer leaves ``peers`` now, so a new session under the same name may be added at
        once; whatever the old session still has in the inbox is dropped.
        """
        peer = self.peers.get(session.name)
        if peer is not None and peer.session is session:
            del self.peers[session.name]
            self._post("remove", None, peer)

    def _retired(self, session: RibSession) -> bool:
        peer = self.peers.get(session.name)
        return peer is None or peer.session is not session

    async def _on_remove(self, _session: RibSession | None, payload: object) -> None:
        peer: PeerRib = payload  # type: ignore[assignment]
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
        peer.up = False
        self._leave_group(peer)
        await self._flush(peer, stale_only=False)
        self._check_deferral()

    def _new_source(self, **fields: object) -> Source:
        self._serials += 1
        return Source(serial=self._serials, **fields)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start the task (and the selection deferral timer, when restarting)."""
        loop = asyncio.get_running_loop()
        if self.gc is not None:
            self.gc.start()
        self._task = loop.create_task(self.run(), name="rib")
        if self.loc.deferring:
            self._deferral_timer = loop.call_later(
                self.selection_deferral, self._post, "deferral-timeout", None, None
            )
            if not self.peers:
                self._post("deferral-done", None, "no peers to wait for")
            elif self.peer_wait > 0:
                self._waiting_for_peers_until = loop.time() + self.peer_wait
                loop.call_later(self.peer_wait, self._post, "deferral-check", None, None)

    async def close(self) -> None:
        """Stop the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for peer in self.peers.values():
            if peer.stale_timer is not None:
                peer.stale_timer.cancel()
        if self._deferral_timer is not None:
            self._deferral_timer.cancel()
        if self.gc is not None:
            self.gc.stop()

    # -- the sink the sessions call (never blocks, never does RIB work) --------------------------

    def _post(self, kind: str, session: RibSession | None, payload: object) -> None:
        self._inbox.append((kind, session, payload))
        self._wake.set()

    def session_up(self, session: RibSession, up: SessionUp) -> None:
        """Queue: the session is Established."""
        self._post("up", session, up)

    def session_down(self, session: RibSession, down: SessionDown) -> None:
        """Queue: the session ended."""
        self._post("down", session, down)

    def updates(self, session: RibSession, updates: tuple[Update, ...]) -> bool:
        """Queue UPDATEs; False asks the session to stop reading until the inbox drains."""
        self._post("updates", session, (time.perf_counter(), updates))
        for update in updates:
            for reach in update.reach:
                self._queued += len(reach.prefixes)
            for gone in update.unreach:
                self._queued += len(gone.prefixes)
        if self._queued > INBOX_HIGH:
            self._paused.add(session)
            return False
        return True

    def route_refresh(self, session: RibSession, refresh: RouteRefreshReceived) -> None:
        """Queue: the peer asked for our routes again."""
        self._post("refresh", session, refresh)

    def state_changed(self, session: RibSession, change: StateChange) -> None:
        """Tell the status output; while deferring, look again at whom selection waits for."""
        if self.status_hook is not None:
            self.status_hook()
        if self.loc.deferring:
            self._post("deferral-check", None, None)

    # -- the node's own routes ---------------------------------------------------------------------

    def originate(
        self, family: Family, prefixes: list[int], attrs: PathAttributes | None, origin: Origin
    ) -> None:
        """Queue: announce (``attrs``) or withdraw (None) routes of this node."""
        self._post("local", None, (family, prefixes, attrs, origin))

    # -- the task --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Take the inbox in order, forever."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._begin_slice()
            while self._inbox:
                kind, session, payload = self._inbox.popleft()
                if session is not None and self._retired(session):
                    continue  # from a session removed by a reload: its routes are gone already
                await self._HANDLERS[kind](self, session, payload)
                del payload, session  # let the UPDATEs go while the task waits
                if self.gc is not None:
                    self.gc.busy()
                if time.perf_counter() - self._slice_start > SLICE_SECONDS:
                    await self._next_slice()  # many small items: yield between them too
            self._publish()
            self._slice_done()
            self._queued = 0
            self._resume_sessions()
            if self.status_hook is not None:
                self.status_hook()

    def _resume_sessions(self) -> None:
        if self._paused and self._queued < INBOX_LOW:
            paused, self._paused = self._paused, set()
            for session in paused:
                session.resume_reading()

    async def _slices(self, work: Runs) -> None:
        """Apply Loc-RIB changes; publish and yield whenever the slice has run its time.

        Changes are published once per slice, not once per inbox item: 200 peers' UPDATEs that
        arrive together cost each update group one encoding and each member one write.
        """
        apply_run = self.loc.apply_run
        for family, source, path_id, route, prefixes, store in work.runs:
            count = len(prefixes)
            for start in range(0, count, RUN_CHUNK):
                chunk = prefixes if count <= RUN_CHUNK else prefixes[start : start + RUN_CHUNK]
                apply_run(family, source, path_id, route, chunk, out=self._changes, store=store)
                if time.perf_counter() - self._slice_start > SLICE_SECONDS:
                    await self._next_slice()
            self.prefixes_processed += count

    async def _stored(self, work: Runs) -> Runs:
        """Apply ``work`` now: it defers Adj-RIB-In stores that what comes next must see."""
        await self._slices(work)
        return Runs()

    def _begin_slice(self) -> None:
        self._slice_start = time.perf_counter()
        self._slice_cpu = time.thread_time()

    async def _next_slice(self) -> None:
        """Publish what this slice changed, let the sessions run, start the next slice."""
        self._publish()
        self._slice_done()
        await asyncio.sleep(0)
        self._begin_slice()

    def _slice_done(self) -> None:
        # Wall time includes whatever else the machine ran meanwhile; CPU time is ours alone.
        self.longest_slice = max(self.longest_slice, time.perf_counter() - self._slice_start)
        self.longest_slice_cpu = max(self.longest_slice_cpu, time.thread_time() - self._slice_cpu)

    def _publish(self) -> None:
        changes = self._changes
        if not changes:
            return
        self._changes = []
        for group in self.groups.values():
            group.publish(group.apply(changes))
        for subscriber in self.subscribers:
            subscriber(changes)

    # -- handlers ------------------------------------------------------------------------------

    async def _on_updates(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        peer = self.peers.get(session.name)
        if peer is None or peer.source is None or not peer.up:
            return
        received_at, updates = cast(tuple[float, tuple[Update, ...]], payload)
        source = peer.source
        policy = peer.import_policy
        per_route = peer.import_per_route
        intern = ROUTES.intern
        loops = self.loops
        work = Runs()
        for update in updates:
            for problem in update.problems:
                session.log.warning("malformed UPDATE from the peer: %s", problem.describe())
            for gone in update.unreach:
                if work.deferred:
                    work = await self._stored(work)
                family = gone.family
                shards = peer.adj_in.shards(family)
                if gone.path_ids is None:
                    work.extend(family, source, 0, None, pop_present(shards, gone.prefixes))
                    continue
                for prefix, path_id in zip(gone.prefixes, gone.path_ids, strict=True):
                    key = (path_id << PATH_ID_SHIFT) | prefix if path_id else prefix
                    if shards[SHARD_OF[(key >> 22) % SPREAD]].pop(key, None) is not None:
                        work.add(family, prefix, source, path_id, None)
            for reach in update.reach:
                family = reach.family
                shards = peer.adj_in.shards(family)
                ids = reach.path_ids or (0,) * len(reach.prefixes)
                looped = loops.check(reach.attributes)
                if looped is not None:
                    if work.deferred:
                        work = await self._stored(work)
                    # Ignored: gone from this peer, if it was there before (RFC 4456 8).
                    loops.ignored(session.name, session.log, looped, len(reach.prefixes))
                    for prefix, path_id in zip(reach.prefixes, ids, strict=True):
                        key = (path_id << PATH_ID_SHIFT) | prefix if path_id else prefix
                        if shards[SHARD_OF[(key >> 22) % SPREAD]].pop(key, None) is not None:
                            work.add(family, prefix, source, path_id, None)
                    continue
                plain = intern(source, reach.attributes)
                if per_route and not reach.path_ids and reach.prefixes:
                    # One answer for the whole set: the policy does not read the prefix.
                    attrs = policy(family, reach.prefixes[0], plain)
                    if attrs is None:
                        if work.deferred:
                            work = await self._stored(work)
                        work.extend(family, source, 0, None, pop_present(shards, reach.prefixes))
                        continue
                    route = plain if attrs is plain.attrs else intern(source, attrs)
                    # The Loc-RIB stores them in the Adj-RIB-In too, in the same loop.
                    work.extend(family, source, 0, route, reach.prefixes, store=shards)
                    continue
                if work.deferred:
                    work = await self._stored(work)
                for prefix, path_id in zip(reach.prefixes, ids, strict=True):
                    route = plain if not path_id else intern(source, reach.attributes, path_id)
                    attrs = policy(family, prefix, route)
                    key = (path_id << PATH_ID_SHIFT) | prefix if path_id else prefix
                    if attrs is None:
                        # Rejected by import policy: gone, if it was there before.
                        if shards[SHARD_OF[(key >> 22) % SPREAD]].pop(key, None) is not None:
                            work.add(family, prefix, source, path_id, None)
                        continue
                    if attrs is not route.attrs:
                        route = intern(source, attrs, path_id)
                    shards[SHARD_OF[(key >> 22) % SPREAD]][key] = route
                    work.add(family, prefix, source, path_id, route)
            if update.end_of_rib is not None:
                await self._slices(work)
                work = Runs()
                self._end_of_rib(peer, update.end_of_rib)
        await self._slices(work)
        self.update_latency.observe(time.perf_counter() - received_at)
        if peer.limit is not None:
            self._check_limit(peer, {u.family for up in updates for u in up.reach})

    def _check_limit(self, peer: PeerRib, families: set[Family]) -> None:
        assert peer.limit is not None
        for family in families:
            count = peer.adj_in.count(family)
            outcome = peer.limit.check(count, family)
            if outcome.decision == LimitDecision.WARN:
                peer.session.log.warning(
                    "%d %s prefixes exceed the limit of %d", count, family.name, peer.limit.limit
                )
            elif outcome.decision == LimitDecision.CEASE:
                reason = f"{count} {family.name} prefixes exceed the limit of {peer.limit.limit}"
                peer.session.log.error("%s: ending the session", reason)
                note = Notification(outcome.code, outcome.subcode, outcome.data)
                peer.session.cease(note, reason, outcome.restart_after)
                return

    def _end_of_rib(self, peer: PeerRib, family: Family) -> None:
        peer.eor.add(family)
        stale = peer.adj_in.stale_keys(family)
        if stale:
            peer.session.log.info(
                "End-of-RIB %s: %d stale routes not refreshed, removed", family.name, len(stale)
            )
            self._post("sweep", peer.session, (family, stale))
        self._check_deferral()

    async def _on_sweep(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        peer = self.peers[session.name]
        family, keys = cast(tuple[Family, list[int]], payload)
        shards = peer.adj_in.shards(family)
        work = Runs()
        for key in keys:
            table = shards[SHARD_OF[(key >> 22) % SPREAD]]
            route = table.get(key)
            if route is not None and route.stale:
                del table[key]
                prefix, path_id = split_key(key)
                work.add(family, prefix, route.source, path_id, None)
        await self._slices(work)

    async def _on_up(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        up: SessionUp = payload  # type: ignore[assignment]
        peer = self.peers.get(session.name)
        if peer is None:
            return
        received = up.received_open
        address = int(ipaddress.ip_address(session.transport_settings.address))
        old = peer.source
        if (
            old is None
            or old.router_id != received.bgp_id
            or old.asn != received.real_asn
            or old.ibgp != up.negotiated.ibgp
            or old.rr_client != peer.rr_client
        ):
            if old is not None:
                await self._flush(peer, stale_only=False)
            peer.source = self._new_source(
                name=session.name,
                address=address,
                router_id=received.bgp_id,
                asn=received.real_asn,
                ibgp=up.negotiated.ibgp,
                rr_client=peer.rr_client,
            )
        gr = next(
            (c for c in received.capabilities if isinstance(c, GracefulRestartCapability)), None
        )
        peer.graceful = gr is not None and any(
            isinstance(c, GracefulRestartCapability) for c in up.sent_open.capabilities
        )
        peer.restart_time = gr.restart_time if gr is not None else 0
        peer.llgr_time = llgr_stale_time(up.sent_open, received)
        peer.restarting = gr is not None and bool(
            gr.restart_flags & GracefulRestartFlag.RESTART_STATE
        )
        peer.up = True
        peer.eor = set()
        peer.families = up.negotiated.families
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
            peer.stale_timer = None
        settings = peer.export(session, up)
        key = (up.negotiated, settings)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = UpdateGroup(up.negotiated, settings)
            group.candidates = self.loc.candidates
            group.options = self.loc.options
            if not self.loc.deferring:
                group.apply(self.loc.whole_table())
        group.members.append(session)
        peer.group = group
        if not self.loc.deferring:
            session.send(group.table_for_new_member())
        self._check_deferral()

    async def _on_down(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        down: SessionDown = payload  # type: ignore[assignment]
        peer = self.peers.get(session.name)
        if peer is None or not peer.up:
            return
        peer.up = False
        self._leave_group(peer)
        already_stale = peer.adj_in.any_stale()
        if (
            down.graceful
            and peer.llgr_time
            and not already_stale
            and not (peer.graceful and peer.restart_time)
        ):
            await self._to_long_lived(peer)  # RFC 9494: LLGR without (or with a 0 s) GR
        elif down.graceful and peer.graceful and peer.restart_time and not already_stale:
            # RFC 4724 4.2: keep the routes, stale, for the peer's restart time.
            count = await self._mark_stale(peer)
            session.log.info(
                "graceful restart: %d routes kept as stale for up to %d s",
                count,
                peer.restart_time,
            )
            loop = asyncio.get_running_loop()
            peer.stale_timer = loop.call_later(
                peer.restart_time, self._post, "restart-timeout", session, None
            )
        else:
            # Not graceful, or a second restart before End-of-RIB: everything goes at once.
            await self._flush(peer, stale_only=False)
        self._check_deferral()

    def _leave_group(self, peer: PeerRib) -> None:
        group = peer.group
        peer.group = None
        if group is None:
            return
        if peer.session in group.members:
            group.members.remove(peer.session)
        if not group.members:
            for key, value in list(self.groups.items()):
                if value is group:
                    del self.groups[key]

    async def _mark_stale(self, peer: PeerRib) -> int:
        count = peer.adj_in.mark_stale(Stale.STALE)
        work = Runs()
        for family in peer.adj_in.tables:
            for key, route in peer.adj_in.items(family):
                prefix, path_id = split_key(key)
                work.add(family, prefix, route.source, path_id, route)
        await self._slices(work)
        return count

    async def _flush(self, peer: PeerRib, stale_only: bool) -> None:
        work = Runs()
        for family, shards in peer.adj_in.tables.items():
            for key, route in shard_items(shards):
                if stale_only and not route.stale:
                    continue
                del shards[SHARD_OF[(key >> 22) % SPREAD]][key]
                prefix, path_id = split_key(key)
                work.add(family, prefix, route.source, path_id, None)
        await self._slices(work)

    async def _on_restart_timeout(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        peer = self.peers[session.name]
        peer.stale_timer = None
        if peer.llgr_time and peer.adj_in.any_stale():
            await self._to_long_lived(peer)
            return
        session.log.warning(
            "graceful restart: the peer did not return in time, stale routes removed"
        )
        await self._flush(peer, stale_only=True)

    async def _to_long_lived(self, peer: PeerRib) -> None:
        """RFC 9494 4.2: stale routes become long-lived stale (tagged LLGR_STALE).

        They stay for the agreed stale time; routes tagged NO_LLGR are removed instead.
        """
        work = Runs()
        retagged: dict[int, tuple[PathAttributes, PathAttributes]] = {}
        peer.adj_in.maybe_stale = True
        for family, shards in peer.adj_in.tables.items():
            for key, route in shard_items(shards):
                prefix, path_id = split_key(key)
                table = shards[SHARD_OF[(key >> 22) % SPREAD]]
                if WellKnownCommunity.NO_LLGR in route.attrs.communities:
                    del table[key]
                    work.add(family, prefix, route.source, path_id, None)
                    continue
                pair = retagged.get(id(route.attrs))
                if pair is None:
                    tagged = ATTRIBUTES.intern(
                        route.attrs._replace(
                            communities=(*route.attrs.communities, WellKnownCommunity.LLGR_STALE)
                        )
                    )
                    pair = retagged[id(route.attrs)] = (route.attrs, tagged)
                new = ROUTES.intern(route.source, pair[1], route.path_id, Stale.LLGR_STALE)
                table[key] = new
                # The candidate is replaced by (source, path id), whatever its attributes.
                work.add(family, prefix, route.source, path_id, new)
        await self._slices(work)
        peer.session.log.warning(
            "long-lived graceful restart: %d routes kept as LLGR_STALE for up to %d s",
            len(work),
            peer.llgr_time,
        )
        loop = asyncio.get_running_loop()
        peer.stale_timer = loop.call_later(
            peer.llgr_time, self._post, "llgr-timeout", peer.session, None
        )

    async def _on_llgr_timeout(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        peer = self.peers[session.name]
        peer.stale_timer = None
        session.log.warning("long-lived stale time over: stale routes removed")
        await self._flush(peer, stale_only=True)

    async def _on_refresh(self, session: RibSession | None, payload: object) -> None:
        assert session is not None
        peer = self.peers.get(session.name)
        if peer is None or peer.group is None or self.loc.deferring:
            return
        session.send(peer.group.table_for_new_member())

    async def _on_local(self, _session: RibSession | None, payload: object) -> None:
        family, prefixes, attrs, origin = cast(
            tuple[Family, list[int], PathAttributes | None, Origin], payload
        )
        source = self.local_sources.get(origin)
        if source is None:
            source = self.local_sources[origin] = self._new_source(
                name=origin.name.lower(), origin=origin, router_id=self.router_id
            )
        route = None if attrs is None else ROUTES.intern(source, attrs)
        work = Runs()
        work.extend(family, source, 0, route, list(prefixes))
        await self._slices(work)

    # -- selection deferral (we are the restarting side) ------------------------------------------

    def _check_deferral(self) -> None:
        if not self.loc.deferring:
            return
        # A peer that restarts too (R flag) defers its own End-of-RIB until it has ours: waiting
        # for it would stall both sides until the deferral timer (calico#7144 after a rollout).
        # A peer whose OPENs are being exchanged, or whose SessionUp is still in the inbox, is
        # alive and about to send its routes: wait for it too, or the first peer's End-of-RIB
        # would end the deferral a millisecond before the others are up (their routes would
        # then flap at every peer that kept them as stale).
        early = asyncio.get_running_loop().time() < self._waiting_for_peers_until
        waiting = [
            p
            for p in self.peers.values()
            if (p.up and p.graceful and not p.restarting and not p.eor >= p.families)
            or (not p.up and (early or p.session.coming_up))
        ]
        if not waiting and any(p.up for p in self.peers.values()):
            self._post("deferral-done", None, "End-of-RIB from every peer that is up")

    async def _on_deferral_check(self, _session: RibSession | None, _payload: object) -> None:
        self._check_deferral()

    async def _on_deferral_end(self, _session: RibSession | None, payload: object) -> None:
        if not self.loc.deferring:
            return
        LOG.info("best-path selection starts: %s", payload or "selection deferral timer expired")
        if self._deferral_timer is not None:
            self._deferral_timer.cancel()
            self._deferral_timer = None
        changes = self.loc.end_deferral()
        if self.deferral_done_hook is not None:
            self.deferral_done_hook()
        for group in self.groups.values():
            group.apply(changes)
            data = group.table_for_new_member()
            for member in group.members:
                member.send(data)
        for subscriber in self.subscribers:
            subscriber(changes)

    _HANDLERS: ClassVar[dict[str, Handler]] = {
        "updates": _on_updates,
        "remove": _on_remove,
        "up": _on_up,
        "down": _on_down,
        "sweep": _on_sweep,
        "refresh": _on_refresh,
        "local": _on_local,
        "restart-timeout": _on_restart_timeout,
        "llgr-timeout": _on_llgr_timeout,
        "deferral-check": _on_deferral_check,
        "deferral-done": _on_deferral_end,
        "deferral-timeout": _on_deferral_end,
    }
