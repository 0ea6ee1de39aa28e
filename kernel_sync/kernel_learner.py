"""Kernel -> RIB: the node's own routes learned from netlink notifications, not by polling.

Data flow: ``start`` opens a ``Monitor`` (route, link and address notifications), then dumps
the routing table once; every route the learn filter selects (by default what Felix writes for
the node's IPAM blocks: blackhole routes with protocol 80) enters the RIB as this node's own
route (``Origin.KERNEL``, next hop self) through ``Rib.originate``; a deleted one is withdrawn.
When the monitor's socket overruns (ENOBUFS) notifications were lost: the table is dumped again
and the difference applied. Our own routes (protocol 12) never match the filter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from kernel_sync.netlink_codes import MessageType, RouteProtocol, RouteTable, RouteType
from kernel_sync.netlink_messages import Header
from kernel_sync.netlink_socket import Monitor, dump_routes
from kernel_sync.route_messages import KernelRoute, family_of
from rib.route import Origin
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.kernel")

Originate = Callable[[Family, list[int], PathAttributes | None, Origin], None]


@dataclass(frozen=True, slots=True)
class LearnFilter:
    """Which kernel routes are this node's to announce (BIRD's ``learn`` with a filter)."""

    protocols: frozenset[int] = frozenset({80})  # Felix's IPAM-block blackholes
    types: frozenset[int] = frozenset({RouteType.BLACKHOLE})
    table: int = RouteTable.MAIN

    def selects(self, route: KernelRoute) -> bool:
        """Whether ``route`` is learned."""
        return (
            route.protocol in self.protocols
            and route.type in self.types
            and route.table == self.table
            and route.protocol != RouteProtocol.BIRD
        )


class KernelLearner:
    """Keeps the RIB's kernel-learned routes equal to the kernel's (see the module docstring)."""

    def __init__(self, originate: Originate, learn: LearnFilter | None = None) -> None:
        self.originate = originate
        self.learn = learn or LearnFilter()
        self.learned: set[tuple[Family, int]] = set()
        self.resyncs = 0
        self._attrs = ATTRIBUTES.intern(PathAttributes())  # next hop self, per update group
        self._monitor: Monitor | None = None
        self._resync: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen for changes first (so none falls between dump and listening), then dump."""
        self._monitor = Monitor(self._on_message, self._on_overrun)
        self._monitor.start()
        await self.resync()

    def close(self) -> None:
        """Stop listening; what was learned stays in the RIB until the daemon stops."""
        if self._monitor is not None:
            self._monitor.close()
        if self._resync is not None:
            self._resync.cancel()

    async def resync(self) -> None:
        """Dump the table and make the learned set equal to what the filter selects in it."""
        routes = await dump_routes(table=self.learn.table)
        now = {(family_of(r), r.prefix) for r in routes if self.learn.selects(r)}
        for family in (Family.IPV4_UNICAST, Family.IPV6_UNICAST):
            gone = [p for f, p in self.learned - now if f == family]
            new = [p for f, p in now - self.learned if f == family]
            if gone:
                self.originate(family, gone, None, Origin.KERNEL)
            if new:
                self.originate(family, new, self._attrs, Origin.KERNEL)
        self.learned = now
        LOG.info("kernel routes learned: %d", len(now))

    def _on_message(self, header: Header, value: object) -> None:
        if not isinstance(value, KernelRoute) or not self.learn.selects(value):
            return
        key = (family_of(value), value.prefix)
        if header.type == MessageType.NEWROUTE and key not in self.learned:
            self.learned.add(key)
            self.originate(key[0], [key[1]], self._attrs, Origin.KERNEL)
        elif header.type == MessageType.DELROUTE and key in self.learned:
            self.learned.discard(key)
            self.originate(key[0], [key[1]], None, Origin.KERNEL)

    def _on_overrun(self) -> None:
        self.resyncs += 1
        LOG.warning("kernel notifications were lost (ENOBUFS): reading the table again")
        if self._resync is None or self._resync.done():
            self._resync = asyncio.get_running_loop().create_task(self.resync())
