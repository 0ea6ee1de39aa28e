"""Loc-RIB -> FIB: the best routes (with their ECMP sets) written into the kernel.

Data flow: the RIB task calls ``on_changes`` with each batch of Loc-RIB ``Change``s (this is
one of its subscribers). For every change the programmer works out the kernel route the new
selection calls for (``desired``: Calico's kernel policy, then one next hop per ECMP path,
through ``tunl0`` with the onlink flag for IPIP pools, as BIRD's ``krt_tunnel`` does), compares
it with what it installed, and queues a REPLACE or a DEL. The queue goes to the kernel in one
batch per turn of the event loop through ``RouteWriter``, whose acknowledgements arrive
asynchronously; failures are logged and counted. Routes of this node's own (kernel-learned or
static) are never written: they are already in the kernel, owned by Felix or the operator.

Routes stay in the kernel when Myna stops (BIRD's ``persist``); at the next start ``adopt``
takes them over, so an unchanged route is never deleted and re-added, and ``remove_leftovers``
deletes the ones no peer announced again. Not done yet: retrying refused writes and a periodic
reconcile against the kernel.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from kernel_sync.netlink_codes import NextHopFlag, RouteProtocol, RouteTable
from kernel_sync.route_messages import KernelRoute, NextHop, RouteChange, RouteOp, family_of
from kernel_sync.route_writer import BatchResult, RouteWriter
from rib.loc_rib import Change
from rib.route import Origin, Route
from speaker.nlri import prefix_text
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.kernel")

# (prefix, family, route) -> (program it?, tunnel device or None)
KernelPolicy = Callable[[int, Family, Route], tuple[bool, str | None]]


def program_all(_prefix: int, _family: Family, _route: Route) -> tuple[bool, str | None]:
    """The kernel policy without Calico pools: every BGP route, plain."""
    return True, None


@dataclass(frozen=True, slots=True)
class FibSettings:
    """Where and how routes are written (BIRD writes protocol 12, metric 32, table main)."""

    table: int = RouteTable.MAIN
    protocol: int = RouteProtocol.BIRD
    metric: int = 32


class FibProgrammer:
    """The kernel's copy of the Loc-RIB's BGP routes (see the module docstring)."""

    def __init__(
        self,
        writer: RouteWriter,
        settings: FibSettings | None = None,
        policy: KernelPolicy = program_all,
        ifindex: Callable[[str], int] = socket.if_nametoindex,
    ) -> None:
        self.writer = writer
        self.settings = settings or FibSettings()
        self.policy = policy
        self.ifindex = ifindex
        self.installed: dict[tuple[Family, int], KernelRoute] = {}
        self.adopted: set[tuple[Family, int]] = set()  # from an earlier run, not yet reselected
        self.errors = 0
        self._queue: dict[tuple[Family, int], RouteChange] = {}
        self._flush_scheduled = False
        self._pending: set[asyncio.Future[BatchResult]] = set()

    def desired(self, change: Change) -> KernelRoute | None:
        """The kernel route for the change's new selection, or None for no route."""
        best = change.new_best
        if best is None or best.source.origin != Origin.BGP:
            return None
        family = change.family
        hops: list[NextHop] = []
        for route in change.new_ecmp:
            accept, tunnel = self.policy(change.prefix, family, route)
            if not accept:
                if route is best:
                    return None
                continue
            gateway = route.attrs.next_hop[: 4 if family == Family.IPV4_UNICAST else 16]
            if not gateway:
                continue
            hop = NextHop(gateway)
            if tunnel:
                try:
                    hop = NextHop(gateway, self.ifindex(tunnel), int(NextHopFlag.ONLINK))
                except OSError:
                    LOG.warning(
                        "no %s device: %s not programmed",
                        tunnel,
                        prefix_text(change.prefix, family),
                    )
                    return None
            if hop not in hops:
                hops.append(hop)
        if not hops:
            return None
        settings = self.settings
        base = KernelRoute(
            socket.AF_INET if family == Family.IPV4_UNICAST else socket.AF_INET6,
            change.prefix,
            table=settings.table,
            protocol=settings.protocol,
            priority=settings.metric,
        )
        if len(hops) == 1:
            return base._replace(gateway=hops[0].gateway, oif=hops[0].oif, flags=hops[0].flags)
        return base._replace(multipath=tuple(hops))

    def adopt(self, routes: list[KernelRoute]) -> None:
        """Take over our routes left in the kernel by an earlier run (BIRD's ``persist``).

        They count as installed, so a route the RIB selects again unchanged is not rewritten
        (no delete, no re-add: nothing flaps); ``remove_leftovers`` later deletes the ones the
        RIB did not select again.
        """
        settings = self.settings
        for route in routes:
            if route.protocol == settings.protocol and route.table == settings.table:
                self.installed[(family_of(route), route.prefix)] = route
                self.adopted.add((family_of(route), route.prefix))
        LOG.info("adopted %d routes left in the kernel by an earlier run", len(self.adopted))

    def remove_leftovers(self) -> None:
        """Delete adopted routes that the RIB has not selected again (after End-of-RIB)."""
        for key in self.adopted:
            route = self.installed.pop(key, None)
            if route is not None:
                self._queue[key] = RouteChange(RouteOp.DEL, route)
        LOG.info("removing %d routes no peer announced again", len(self._queue))
        self.adopted.clear()
        self._schedule()

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

    def on_changes(self, changes: list[Change]) -> None:
        """RIB subscriber: queue what the kernel must change."""
        for change in changes:
            key = (change.family, change.prefix)
            want = self.desired(change)
            have = self.installed.get(key)
            if want is not None and key in self.adopted and self._same(want, have):
                self.adopted.discard(key)  # selected again, unchanged: left as it is
                continue
            self.adopted.discard(key)
            if want == have:
                continue
            if want is None:
                assert have is not None
                del self.installed[key]
                self._queue[key] = RouteChange(RouteOp.DEL, have)
            else:
                self.installed[key] = want
                self._queue[key] = RouteChange(RouteOp.REPLACE, want)
        self._schedule()

    def _schedule(self) -> None:
        if self._queue and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        changes = list(self._queue.values())
        self._queue.clear()
        future = self.writer.submit(changes)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[BatchResult]) -> None:
        self._pending.discard(future)
        if future.cancelled() or future.exception() is not None:
            LOG.error("kernel route writes failed: %s", future.exception())
            return
        for failure in future.result().failures():
            self.errors += 1
            route = failure.change.route
            family = family_of(route)
            LOG.warning(
                "kernel refused %s of %s: %s (%s)",
                failure.change.op.name,
                prefix_text(route.prefix, family),
                failure.message or failure.error,
                failure.advice.name,
            )
