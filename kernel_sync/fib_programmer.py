"""Loc-RIB -> FIB: the best routes (with their ECMP sets) written into the kernel, kept there.

Data flow: the programmer is one of the RIB core's channels (``rib.channels.Channel``): it is
handed each batch of Loc-RIB ``Change``s and ``Run``s (``publish``; the kernel route of a batch's
runs is built once per route and answer of the kernel policy and shared by their prefixes:
``_build`` may read the prefix only through that answer). For every change it works out the
kernel route the new selection calls for (``_build``: Calico's kernel policy, then one next hop
per ECMP path: through ``tunl0`` with the onlink flag for IPIP pools, as BIRD's ``krt_tunnel``
does, or through the gateways the ``NextHopResolver`` finds for a next hop that is not a
neighbour, as BIRD's ``gateway recursive``; an IPv6 next hop of an IPv4 route, RFC 8950, goes
in RTA_VIA), records it in ``installed`` (what the kernel should hold: a
``kernel_sync.kernel_table.KernelTable``, one dict slot per route) and queues a REPLACE or a
DEL (a NEW and a DEL of the old route when the metric, part of the kernel's key, changes).
The queue goes to the kernel in one batch per turn of the event
loop through ``RouteWriter``, whose acknowledgements arrive asynchronously. A selection that
changes again before its write went is written against what the kernel holds, not against
the queued write it replaces (``_write``). Routes learned
from the kernel are never written back (they are there, owned by Felix or the operator), nor is
anything of another protocol touched; the node's static routes (BIRD's static protocol: a
blackhole, or via a gateway) are written like BGP routes when the kernel policy accepts them
(``programmable``). The route's metric is ``FibSettings.metric`` (the kernel protocol's
``metric``), else the one the policy's answer carries (BIRD's ``krt_metric``), else none.

Keeping the kernel right:

* a route that cannot be built yet (its tunnel device is missing, its next hop unresolvable)
  or that the kernel refused for a reason that may pass (ENETUNREACH, ENODEV, ENETDOWN,
  ENOMEM...) waits in ``waiting`` and is tried again when the kernel changes (a device or
  address comes, a covering route appears) and on a back-off timer; a route refused for good
  (EINVAL...) is logged and left out until its selection changes;
* drift is repaired: a DELROUTE notification for one of our routes that we did not delete
  puts it back at once, and ``resync`` (at every re-read of the kernel, including the periodic
  one) compares the kernel's routes of our protocol with ``installed`` and rewrites the ones
  that are missing or different and deletes ours that should not be there; nothing of another
  protocol is ever touched.

Routes stay in the kernel when Myna stops (BIRD's ``persist``); at the next start ``adopt``
takes them over, so an unchanged route is never deleted and re-added, and ``remove_leftovers``
deletes the ones no peer announced again (the daemon spares those through a peer that is not
back yet until it is, or until its restart time is over).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from kernel_sync.kernel_table import KernelTable
from kernel_sync.netlink_codes import (
    MessageType,
    NextHopFlag,
    RouteProtocol,
    RouteTable,
    RouteType,
)
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import dump_routes
from kernel_sync.next_hop_resolver import ON_LINK, NextHopResolver
from kernel_sync.route_messages import KernelRoute, NextHop, RouteChange, RouteOp, family_of
from kernel_sync.route_writer import Advice, BatchResult, RouteWriter
from rib.loc_rib import Change, Published, Run
from rib.route import Destination, LocalKind, Origin, Route
from rib.run_split import splitter_of, whole_run, with_splitter
from rib.shards import SHARD_OF, SPREAD
from speaker.nlri import prefix_text
from speaker.session_counters import LatencyHistogram
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.kernel")
_new = tuple.__new__  # a NamedTuple from a tuple, without the keyword-handling constructor

# (prefix, family, route) -> (program it?, tunnel device or None, metric or None: the default)
KernelAnswer = tuple[bool, str | None, int | None]
KernelPolicy = Callable[[int, Family, Route], KernelAnswer]
Key = tuple[Family, int]
RETRY_FIRST = 1.0  # seconds; doubled after each failed round, up to RETRY_MAX
RETRY_MAX = 30.0
LOGGED_REPAIRS = 20  # per resync, one line each; the rest are counted


def _gateway(next_hop: bytes) -> bytes:
    """The gateway address of a BGP next hop: IPv4, or the global IPv6 of a (global, link-local)."""
    return next_hop if len(next_hop) <= 4 else next_hop[:16]


_PLAIN: KernelAnswer = (True, None, None)
_REFUSED: KernelAnswer = (False, None, None)
# (id(route), family, answer) -> (shape or None, waits, recursive): one batch's kernel routes
# (``FibProgrammer.publish``); the batch's changes keep each route alive while it is used, so
# an id stays that route's
_Built = dict[tuple[int, Family, KernelAnswer], tuple[KernelRoute | None, bool, bool]]
_TYPE_OF_DEST = {
    Destination.BLACKHOLE: RouteType.BLACKHOLE,
    Destination.UNREACHABLE: RouteType.UNREACHABLE,
    Destination.PROHIBIT: RouteType.PROHIBIT,
}


def _other_metric(want: KernelRoute, have: KernelRoute) -> bool:
    """Whether the kernel's route sits at another metric than the one wanted.

    The kernel turns an IPv6 route's metric 0 into 1024.
    """
    if want.family == socket.AF_INET6 and want.priority == 0:
        return have.priority not in (0, 1024)
    return have.priority != want.priority


def program_all(_prefix: int, _family: Family, _route: Route) -> KernelAnswer:
    """The kernel policy without Calico pools: every BGP route, plain."""
    return _PLAIN


with_splitter(program_all, whole_run)  # the same answer for every prefix of a run


def programmable(route: Route, device_routes: bool) -> bool:
    """Whether a best route is one the kernel gets from us (BIRD's ``krt_capable``).

    A BGP route; a route of this node's own that is not the kernel's (a static route: a
    blackhole, unreachable or prohibit, or via a gateway or a device; a connected network
    only with ``device_routes``, BIRD's "device routes"). Routes learned from the kernel
    are already there, and the node's configured announcements (no ``Source.kernel``) are for
    peers only.
    """
    source = route.source
    if source.origin == Origin.BGP:
        return True
    facts = source.kernel
    if facts is None or facts.kind == LocalKind.KERNEL:
        return False
    if facts.dest == Destination.DEVICE:
        return device_routes or facts.kind == LocalKind.STATIC_DEVICE
    return facts.dest != Destination.MULTIPATH


@dataclass(frozen=True, slots=True)
class FibSettings:
    """Where and how routes are written (BIRD writes protocol 12, metric 32, table main)."""

    table: int = RouteTable.MAIN
    protocol: int = RouteProtocol.BIRD
    metric: int = 32
    device_routes: bool = False  # also routes straight out of an interface (BIRD's option)
    # The address families this programmer owns: BIRD's bird and bird6 (two Myna processes
    # on one node) each write and repair only their own family's routes of the protocol.
    families: frozenset[int] = frozenset({socket.AF_INET, socket.AF_INET6})


class FibProgrammer:
    """The kernel's copy of the Loc-RIB's BGP routes (see the module docstring)."""

    def __init__(
        self,
        writer: RouteWriter,
        settings: FibSettings | None = None,
        policy: KernelPolicy = program_all,
        *,
        ifindex: Callable[[str], int] = socket.if_nametoindex,
        resolver: NextHopResolver | None = None,
        dump: Callable[[], Awaitable[list[KernelRoute]]] | None = None,
    ) -> None:
        self.writer = writer
        self.settings = settings or FibSettings()
        self.policy = policy
        self.ifindex = ifindex
        self.resolver = resolver
        if resolver is not None:
            resolver.on_change = self.retry
        self._dump = dump or self._dump_ours
        self.installed = KernelTable()
        self.adopted: set[Key] = set()  # from an earlier run, not yet reselected
        self.leftovers_removed = False
        # Selections to look at again when the kernel changes: their route could not be built
        # or was refused for a reason that may pass, or it went through a resolved next hop.
        # Each keeps its ECMP set (one tuple shared by a whole run's prefixes).
        self.waiting: dict[Key, tuple[Route, ...]] = {}
        self.resolved: dict[Key, tuple[Route, ...]] = {}
        # Routes refused because another protocol's route holds their kernel key (EEXIST on a
        # first write): not ours to replace; written when that route goes.
        self.blocked: dict[Key, KernelRoute] = {}
        self._blocked_seen: set[Key] = set()  # logged once until the selection changes
        self.counters = {"errors": 0, "repairs": 0, "retries": 0, "writes": 0, "blocked": 0}
        self.write_latency = LatencyHistogram()  # seconds from a batch submitted to its last ack
        # KernelEvents sets this to its re-read of every watcher; alone, we re-read ourselves.
        self.request_resync: Callable[[str], None] = self._resync_alone
        self._resync_task: asyncio.Task[None] | None = None
        self._queue: dict[Key, RouteChange] = {}
        # For each key the RIB's selections queued a write for since the last flush: the route
        # of ours the kernel holds until that write goes (None: none). A second selection before
        # the flush is written against it, not against the first one, never written.
        self._kernel: dict[Key, KernelRoute | None] = {}
        # DELs of our routes at a metric no longer wanted, written after the queue: one per key
        # for the selections' writes, and what a resync found left at old metrics
        self._stale: dict[Key, RouteChange] = {}
        self._strays: list[RouteChange] = []
        self._deleting: set[Key] = set()  # our DELs whose notification has not come back yet
        self._flush_scheduled = False
        self._pending: set[asyncio.Future[BatchResult]] = set()
        self._retry_delay = RETRY_FIRST
        self._retry_timer: asyncio.TimerHandle | None = None

    async def _dump_ours(self) -> list[KernelRoute]:
        settings = self.settings
        routes = await dump_routes(table=settings.table, protocol=settings.protocol)
        return [route for route in routes if route.family in settings.families]

    @property
    def errors(self) -> int:
        """Writes the kernel refused."""
        return self.counters["errors"]

    # --- what the kernel should hold -------------------------------------------------------

    def _hops(self, route: Route, tunnel: str | None) -> list[NextHop] | None:
        """The next hops for one path; None when they cannot be known now.

        The gateway is the next hop's address: 4 octets, or 16 (an IPv6 one, of an IPv6 route or,
        RFC 8950, of an IPv4 route; the link-local that may follow is not used).
        """
        gateway = _gateway(route.attrs.next_hop)
        if not gateway:
            return []  # no next hop of this family: the path adds nothing
        if tunnel:
            try:
                return [NextHop(gateway, self.ifindex(tunnel), int(NextHopFlag.ONLINK))]
            except OSError:
                return None  # no tunnel device (yet)
        via = ON_LINK if self.resolver is None else self.resolver.resolve(gateway)
        if via is None:
            return None
        return [NextHop(gateway)] if via is ON_LINK else list(via)

    def _build(self, change: Change) -> tuple[KernelRoute | None, bool, bool]:
        """(the kernel route for the new selection, must wait for the kernel, used recursion)."""
        best = change.new_best
        if best is None or not programmable(best, self.settings.device_routes):
            return None, False, False
        family = change.family
        if best.source.origin != Origin.BGP:
            answer = self.policy(change.prefix, family, best)
            return self._local(family, change.prefix, best, answer), False, False
        hops: list[NextHop] = []
        waits = recursive = False
        metric = None
        for route in change.new_ecmp:
            accept, tunnel, route_metric = self.policy(change.prefix, family, route)
            if not accept:
                if route is best:
                    return None, False, False
                continue
            if route is best:
                metric = route_metric
            got = self._hops(route, tunnel)
            if got is None:
                waits = True
                continue
            if not tunnel and got and got[0].gateway != _gateway(route.attrs.next_hop):
                recursive = True  # through another gateway: look again when the kernel changes
            hops.extend(hop for hop in got if hop not in hops)
        if not hops:
            return None, waits, recursive
        base = self._base(family, change.prefix, metric)
        if len(hops) == 1:
            hop = hops[0]
            return (
                base._replace(gateway=hop.gateway, oif=hop.oif, flags=hop.flags),
                waits,
                recursive,
            )
        return base._replace(multipath=tuple(hops)), waits, recursive

    def _base(self, family: Family, prefix: int, metric: int | None) -> KernelRoute:
        settings = self.settings
        return KernelRoute(
            socket.AF_INET if family == Family.IPV4_UNICAST else socket.AF_INET6,
            prefix,
            table=settings.table,
            protocol=settings.protocol,
            # BIRD (netlink.c nl_send_route): the protocol's own metric, when set, wins over
            # the filter's krt_metric; BIRD 1.6's default is none, BIRD 2's (YAML's) 32.
            priority=settings.metric or (0 if metric is None else metric),
        )

    def _local(
        self, family: Family, prefix: int, route: Route, answer: KernelAnswer
    ) -> KernelRoute | None:
        """The kernel route of one of the node's own routes (a static route, mostly)."""
        accept, _tunnel, metric = answer
        facts = route.source.kernel
        if not accept or facts is None:
            return None
        base = self._base(family, prefix, metric)
        kind = _TYPE_OF_DEST.get(facts.dest)
        if kind is not None:
            return base._replace(type=kind)
        if facts.dest == Destination.ROUTER and facts.gateway:
            octets = 4 if family == Family.IPV4_UNICAST else 16
            gateway = facts.gateway.to_bytes(octets, "big")
            oif = 0
            if route.source.interface:
                try:
                    oif = self.ifindex(route.source.interface)
                except OSError:
                    oif = 0
            return base._replace(gateway=gateway, oif=oif)
        if facts.dest == Destination.DEVICE and route.source.interface:
            try:
                return base._replace(oif=self.ifindex(route.source.interface))
            except OSError:
                return None
        return None

    def desired(self, change: Change) -> KernelRoute | None:
        """The kernel route for the change's new selection, or None for no route (now)."""
        return self._build(change)[0]

    # --- adoption across restarts ------------------------------------------------------------

    def adopt(self, routes: list[KernelRoute]) -> None:
        """Take over our routes left in the kernel by an earlier run (BIRD's ``persist``).

        They count as installed, so a route the RIB selects again unchanged is not rewritten
        (no delete, no re-add: nothing flaps); ``remove_leftovers`` later deletes the ones the
        RIB did not select again.
        """
        settings = self.settings
        for route in routes:
            if (
                route.protocol == settings.protocol
                and route.table == settings.table
                and route.family in settings.families
            ):
                self.installed[(family_of(route), route.prefix)] = route
                self.adopted.add((family_of(route), route.prefix))
        LOG.info("adopted %d routes left in the kernel by an earlier run", len(self.adopted))

    def remove_leftovers(self, keep: Callable[[KernelRoute], bool] | None = None) -> None:
        """Delete adopted routes that the RIB has not selected again (after End-of-RIB).

        ``keep`` spares the adopted routes it is true for (through a peer that is not back
        yet, which may announce them again): they stay adopted, for a later call.
        """
        first = not self.leftovers_removed
        removed = kept = 0
        for key in list(self.adopted):
            route = self.installed.get(key)
            if route is not None and keep is not None and keep(route):
                kept += 1
                continue
            self.adopted.discard(key)
            if route is not None:
                del self.installed[key]
                self._queue[key] = RouteChange(RouteOp.DEL, route)
                self._kernel[key] = route
                removed += 1
        if first or removed:
            LOG.info("removing %d routes no peer announced again", removed)
        if first and kept:
            LOG.info("keeping %d routes through peers that are not back yet", kept)
        self.leftovers_removed = True
        self._schedule()

    @staticmethod
    def gateways(route: KernelRoute) -> set[bytes]:
        """The route's gateways (one, or one per path of a multipath route)."""
        if route.multipath:
            return {hop.gateway for hop in route.multipath if hop.gateway}
        return {route.gateway} if route.gateway else set()

    @staticmethod
    def _same(want: KernelRoute, have: KernelRoute | None) -> bool:
        """Whether the kernel's route already is what we want (it fills in devices itself)."""
        if have is None:
            return False
        if want == have:
            return True
        if (want.type, want.priority, want.protocol, want.table) != (
            have.type,
            have.priority,
            have.protocol,
            have.table,
        ):
            return False
        if want.multipath or have.multipath:
            return sorted(
                (h.gateway, h.flags & NextHopFlag.ONLINK) for h in want.multipath
            ) == sorted((h.gateway, h.flags & NextHopFlag.ONLINK) for h in have.multipath)
        return (
            want.gateway == have.gateway
            and (not want.oif or want.oif == have.oif)
            and want.flags & NextHopFlag.ONLINK == have.flags & NextHopFlag.ONLINK
        )

    # --- the RIB's channel ---------------------------------------------------------------------

    def publish(self, changes: Sequence[Published]) -> None:
        """A batch of the Loc-RIB's changes: queue what the kernel must change."""
        # Kernel routes built for a batch's runs, by route and answer: a peer's table comes as
        # many runs of one route, and the route the kernel gets depends on nothing else.
        built: _Built = {}
        for change in changes:
            if isinstance(change, Run):
                self._apply_run(change, built)
            else:
                self._apply(change)
        self._schedule()

    def _apply(self, change: Change) -> None:
        want, waits, recursive = self._build(change)
        self._record(change.family, change.prefix, want, waits, recursive, ecmp=change.new_ecmp)

    def _apply_run(self, run: Run, built: _Built) -> None:
        """A Loc-RIB ``Run``: one path for many prefixes.

        Its kernel route is built once per answer of the kernel policy (which reads the
        prefix: IPIP pools) for the whole batch (``built``, kept by ``publish``: the batch's
        runs of one route share it) and its shape shared by every prefix. ``_build`` may read
        the prefix only through that answer: a per-prefix field (BIRD's ``krt_prefsrc``)
        would have to be part of the answer.
        A policy carrying a run splitter (``rib.run_split``: a compiled BIRD filter) is asked
        once per group of prefixes it cannot tell apart, not once per prefix.
        The common case (nothing adopted, waiting or resolved recursively) is one tight loop
        over the record's shards, comparing shared shapes by identity.
        """
        family, route = run.family, run.route
        ecmp: tuple[Route, ...] = () if route is None else (route,)
        policy = (
            self.policy
            if route is not None and programmable(route, self.settings.device_routes)
            else None
        )
        shape_of = self.installed.shape
        record = self._record
        slow = bool(self.adopted or self.waiting or self.resolved or self.blocked)
        shards = self.installed.shards(family)
        queue = self._queue
        kernel_of = self._kernel
        stale = self._stale
        high = -1
        shard: dict[int, KernelRoute] = {}
        prefixes = run.prefixes
        plan: Iterable[tuple[Sequence[int], KernelAnswer]]
        if policy is None:
            plan = ((prefixes, _REFUSED),)
        else:
            assert route is not None
            split = splitter_of(policy)
            if split is not None:  # one answer per group of prefixes the policy cannot tell apart
                plan = ((group, policy(group[0], family, route)) for group in split(prefixes))
            else:
                plan = (((prefix,), policy(prefix, family, route)) for prefix in prefixes)
        for group, answer in plan:
            built_key = (id(route), family, answer)
            hit = built.get(built_key)
            if hit is None:
                change = Change(family, group[0], None, (), route, ecmp)
                want, waits, recursive = self._build(change)
                hit = built[built_key] = (
                    None if want is None else shape_of(want),
                    waits,
                    recursive,
                )
            shape, waits, recursive = hit
            if shape is None and not (slow or waits or recursive) and not any(shards):
                continue  # refused, and nothing of ours in the kernel to delete
            for prefix in group:
                if slow or waits or recursive:
                    record(family, prefix, shape, waits, recursive, ecmp=ecmp, shaped=True)
                    continue
                if prefix >> 22 != high:  # neighbours share a shard (rib.shards)
                    high = prefix >> 22
                    shard = shards[SHARD_OF[high % SPREAD]]
                have = shard.get(prefix)
                if have is shape:
                    continue  # shapes are shared: the same object is the same route
                key = (family, prefix)
                # what the kernel holds (a shape here): ``have``, unless a write is queued
                kernel = kernel_of.setdefault(key, have)
                if shape is None:
                    assert have is not None
                    del shard[prefix]
                else:
                    shard[prefix] = shape
                if kernel is not have:  # written over a queued write: see _write
                    self._write_over(
                        key,
                        kernel,
                        None
                        if shape is None
                        else _new(KernelRoute, (shape[0], prefix, *shape[2:])),
                    )
                elif shape is None:
                    gone = _new(KernelRoute, (have[0], prefix, *have[2:]))  # type: ignore[index]
                    queue[key] = _new(RouteChange, (RouteOp.DEL, gone))
                else:
                    want = _new(KernelRoute, (shape[0], prefix, *shape[2:]))
                    # a first write must not replace a route of another protocol (module docstring)
                    op = RouteOp.NEW if have is None else RouteOp.REPLACE
                    if have is not None and _other_metric(shape, have):  # see _write_over
                        op = RouteOp.NEW
                        old = _new(KernelRoute, (have[0], prefix, *have[2:]))
                        stale[key] = _new(RouteChange, (RouteOp.DEL, old))
                    queue[key] = _new(RouteChange, (op, want))

    def _record(
        self,
        family: Family,
        prefix: int,
        want: KernelRoute | None,
        waits: bool,
        recursive: bool,
        *,
        ecmp: tuple[Route, ...],
        shaped: bool = False,
    ) -> None:
        """Queue the write that makes the kernel hold ``want`` for the prefix.

        ``ecmp`` (kept when ``waits`` or ``recursive``) is what the route is built from again
        when the kernel changes. ``shaped``: ``want`` is a shared shape (prefix 0) already.
        """
        key = (family, prefix)
        if self.waiting:
            self.waiting.pop(key, None)
        if self.resolved:
            self.resolved.pop(key, None)
        if self.blocked:
            self.blocked.pop(key, None)
        if self._blocked_seen:
            self._blocked_seen.discard(key)
        if waits:
            self.waiting[key] = ecmp
        if recursive:
            self.resolved[key] = ecmp
        installed = self.installed
        have = installed.get(key)
        full = want
        if shaped and want is not None:
            full = _new(KernelRoute, (want[0], prefix, *want[2:]))
        if self.adopted and full is not None and key in self.adopted and self._same(full, have):
            self.adopted.discard(key)  # selected again, unchanged: left as it is
            return
        if self.adopted:
            self.adopted.discard(key)
        if full == have:
            return
        if full is None:
            if have is not None:
                installed.pop(key)
                self._write(family, prefix, have, None)
        else:
            if shaped:
                installed.set_shape(family, prefix, want)  # type: ignore[arg-type]
            else:
                installed[key] = full
            self._write(family, prefix, have, full)

    def _write(
        self, family: Family, prefix: int, have: KernelRoute | None, want: KernelRoute | None
    ) -> None:
        """Queue what turns the kernel's route of ours for the prefix into ``want``.

        ``have`` is what ``installed`` held. When a write for the prefix is still queued, the
        kernel does not hold ``have`` but what it held before that write (``_kernel``): the
        new write replaces the queued one and is made against that, so that a DEL names the
        route the kernel has and a write at the kernel's metric replaces it in place.
        """
        key = (family, prefix)
        self._write_over(key, self._kernel.setdefault(key, have), want)

    def _write_over(self, key: Key, kernel: KernelRoute | None, want: KernelRoute | None) -> None:
        """``_write`` once the kernel's route is known (a Run's shape: prefix 0)."""
        if kernel is not None and kernel.prefix != key[1]:
            kernel = _new(KernelRoute, (kernel[0], key[1], *kernel[2:]))
        if self._stale:
            self._stale.pop(key, None)  # made against ``kernel`` too: made again if still due
        if want is None:
            if kernel is None:
                self._queue.pop(key, None)
                del self._kernel[key]
            else:
                self._queue[key] = _new(RouteChange, (RouteOp.DEL, kernel))
        elif kernel is None:
            # a first write must not replace a route of another protocol (module docstring)
            self._queue[key] = _new(RouteChange, (RouteOp.NEW, want))
        elif want == kernel:
            self._queue.pop(key, None)  # back to what the kernel holds: nothing to write
            del self._kernel[key]
        elif _other_metric(want, kernel):
            # The metric is part of the kernel's key: a REPLACE would add a second route
            # beside the old one. BIRD 1.6 deletes the old route and adds the new one
            # (krt_replace_rte); we add the new one, then delete the old.
            self._queue[key] = _new(RouteChange, (RouteOp.NEW, want))
            self._stale[key] = _new(RouteChange, (RouteOp.DEL, kernel))
        else:
            self._queue[key] = _new(RouteChange, (RouteOp.REPLACE, want))

    def retry(self) -> None:
        """Build the waiting and recursively resolved routes again (the kernel changed)."""
        again = list(self.waiting.items()) + list(self.resolved.items())
        if again:
            self.counters["retries"] += 1
            for (family, prefix), ecmp in again:
                best = ecmp[0] if ecmp else None
                self._apply(Change(family, prefix, None, (), best, ecmp))
            self._schedule()

    # --- kernel watcher: drift ---------------------------------------------------------------

    def on_kernel(self, header: Header, value: KernelRoute | Link | Address) -> None:
        """Put back at once a route of ours that someone else deleted."""
        if (
            header.type != MessageType.DELROUTE
            or not isinstance(value, KernelRoute)
            or value.protocol != self.settings.protocol
            or value.table != self.settings.table
        ):
            return
        key = (family_of(value), value.prefix)
        if key in self._deleting:
            self._deleting.discard(key)  # the echo of our own DEL (maybe re-added since)
            return
        want = self.installed.get(key)
        if want is None or key in self._queue or not self._same(want, value):
            return  # not ours any more, already being rewritten, or an older version of it
        self.counters["repairs"] += 1
        LOG.warning(
            "our route to %s was deleted by someone else: putting it back",
            prefix_text(value.prefix, key[0]),
        )
        self._queue[key] = RouteChange(RouteOp.REPLACE, want)
        self._kernel[key] = None
        self._schedule()

    async def resync(self) -> None:
        """Make the kernel's routes of our protocol equal to ``installed`` (drift repair)."""
        await self.settle()
        have: dict[Key, KernelRoute] = {}
        for route in await self._dump():
            key = (family_of(route), route.prefix)
            want = self.installed.get(key)
            if want is not None and key not in self._queue and _other_metric(want, route):
                self._strays.append(RouteChange(RouteOp.DEL, route))  # ours at an old metric
            else:
                have[key] = route
        self._deleting.clear()  # the dump is the truth now; a late echo at worst rewrites one
        repaired = 0
        for key, want in self.installed.items():
            if key in self._queue or key in self.adopted:
                continue
            if not self._same(want, have.get(key)):
                repaired += 1
                if repaired <= LOGGED_REPAIRS:
                    LOG.warning(
                        "kernel route to %s is %s: writing it again",
                        prefix_text(key[1], key[0]),
                        "different" if key in have else "missing",
                    )
                self._queue[key] = RouteChange(RouteOp.REPLACE, want)
                self._kernel[key] = have.get(key)
        for key, route in list(self.blocked.items()):
            if key not in self._queue and key not in have:
                # BIRD tries again at every scan; refused again, it is blocked again
                del self.blocked[key]
                self.installed[key] = route
                self._queue[key] = RouteChange(RouteOp.NEW, route)
                self._kernel[key] = None
        if self.leftovers_removed:
            for key, route in have.items():
                if key not in self.installed and key not in self._queue:
                    repaired += 1
                    self._queue[key] = RouteChange(RouteOp.DEL, route)
                    self._kernel[key] = route
        if repaired:
            self.counters["repairs"] += repaired
            LOG.warning("repaired %d kernel routes that had drifted", repaired)
        self.retry()
        self._schedule()

    async def settle(self) -> None:
        """Wait until everything queued so far has been written and answered."""
        while self._queue or self._stale or self._strays or self._pending:
            if self._queue or self._stale or self._strays:
                self._flush()
            await asyncio.gather(*self._pending, return_exceptions=True)

    # --- writing -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if (self._queue or self._stale or self._strays) and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue and not self._stale and not self._strays:
            return
        changes = list(self._queue.values())
        self._queue.clear()
        self._kernel.clear()
        # their echoes differ from ``installed``: no repair follows
        changes += self._stale.values()
        changes += self._strays
        self._stale = {}
        self._strays = []
        for change in changes:
            if change.op is RouteOp.DEL:
                self._deleting.add((family_of(change.route), change.route.prefix))
        self.counters["writes"] += len(changes)
        future = self.writer.submit(changes)
        self._pending.add(future)
        future.add_done_callback(functools.partial(self._done, started=time.perf_counter()))

    def _done(self, future: asyncio.Future[BatchResult], started: float | None = None) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return  # the writer was closed with the daemon
        if future.exception() is not None:
            LOG.error("kernel route writes failed: %s", future.exception())
            return
        if started is not None:
            self.write_latency.observe(time.perf_counter() - started)
        later = False
        for failure in future.result().failures():
            if failure.change.op is RouteOp.DEL:
                route = failure.change.route
                self._deleting.discard((family_of(route), route.prefix))  # no echo will come
            if failure.advice is Advice.DONE:
                continue
            route = failure.change.route
            key = (family_of(route), route.prefix)
            if failure.advice is Advice.REPLACE and self.installed.get(key) == route:
                if key not in self._blocked_seen:
                    self._blocked_seen.add(key)
                    self.counters["blocked"] += 1
                    LOG.info(
                        "kernel route to %s not written: a route of another protocol holds "
                        "its place (table, metric); it stays, and ours goes in when it leaves",
                        prefix_text(route.prefix, key[0]),
                    )
            else:
                self.counters["errors"] += 1
                LOG.warning(
                    "kernel refused %s of %s: %s (%s)",
                    failure.change.op.name,
                    prefix_text(route.prefix, key[0]),
                    failure.message or failure.error,
                    failure.advice.value,
                )
            if self.installed.get(key) != route:
                continue  # superseded since: the newer write decides
            if failure.advice is Advice.REPLACE:
                # Another protocol's route (Felix's blackhole, the operator's) has the key:
                # BIRD's kernel protocol gets "File exists" and leaves it; so do we.
                del self.installed[key]
                self.blocked[key] = route
                continue
            if failure.advice is Advice.RETRY_LATER:
                later = True
            elif failure.advice is Advice.RESYNC:
                self.request_resync("a netlink reply was lost")
            else:
                del self.installed[key]  # refused for good: left out until the selection changes
        if later:
            self._schedule_retry()
        elif future.result().ok:
            self._retry_delay = RETRY_FIRST

    def _schedule_retry(self) -> None:
        if self._retry_timer is not None:
            return
        delay = self._retry_delay
        self._retry_delay = min(delay * 2, RETRY_MAX)
        self._retry_timer = asyncio.get_running_loop().call_later(delay, self._retry_refused)

    def _retry_refused(self) -> None:
        self._retry_timer = None
        self.request_resync("retrying refused kernel writes")

    def _resync_alone(self, why: str) -> None:
        LOG.info("reading our kernel routes again: %s", why)
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.get_running_loop().create_task(self.resync())

    def compact(self) -> int:
        """Give back what a mass withdrawal left oversized (the RIB's idle sweep)."""
        return self.installed.compact()

    def close(self) -> None:
        """Stop the retry timer (the routes stay in the kernel)."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
