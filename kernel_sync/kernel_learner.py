"""Kernel -> RIB: the node's own routes learned from netlink notifications, not by polling.

Data flow: ``KernelEvents`` hands this watcher the kernel's starting state (``resync``: one
dump) and then every notification (``on_kernel``). Every route the learn filter selects enters
the RIB as this node's own route (``Origin.KERNEL``, next hop self) through ``Rib.originate``;
a deleted one is withdrawn. By default the filter selects what Felix writes for the node's IPAM
blocks: blackhole routes with protocol 80; configured, it also selects static routes to
advertise by protocol, device and prefix (BIRD's ``learn`` with Calico's filters). A route
through a device that is down or has no carrier is not learned, and one already learned is
withdrawn when its device goes down: the events hub re-reads the table on every device change
(the kernel flushes such IPv4 routes without a notification), and ``resync`` applies the
difference, as it does after an overrun (ENOBUFS). Our own routes (protocol 12 by default)
never match the filter.

A prefix can have several kernel routes (one per table and metric: the kernel's key): the
prefix is this node's while at least one of them matches the filter, so deleting one of two
leaves it announced, and a route replaced (same table and metric) by one the filter does not
select counts as gone, as BIRD's kernel protocol sees the kernel's table as it is now. Of
several, the one with the lowest metric is announced (BIRD's ``krt_learn``), with what BIRD's
filters read of it (``rib.route.KernelFacts``: destination, gateway, metric, protocol; the
device as ``Source.interface``). ``describe`` may refuse a route or change what is announced
(the kernel protocol's import filter); when the announced route's description changes, the new
one is announced before the old is withdrawn, so the prefix never goes away meanwhile.
"""

from __future__ import annotations

import fnmatch
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from kernel_sync.netlink_codes import MessageType, NextHopFlag, RouteProtocol, RouteTable, RouteType
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import dump_routes
from kernel_sync.route_messages import KernelRoute, family_of
from rib.route import Destination, KernelFacts, LocalKind, Origin
from speaker.nlri import prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.kernel")

Key = tuple[Family, int]
Identity = tuple[int, int]  # (table, metric): which of a prefix's kernel routes this is
_DOWN = int(NextHopFlag.DEAD | NextHopFlag.LINKDOWN)
_DEST_OF_TYPE = {
    int(RouteType.BLACKHOLE): Destination.BLACKHOLE,
    int(RouteType.UNREACHABLE): Destination.UNREACHABLE,
    int(RouteType.PROHIBIT): Destination.PROHIBIT,
}


class Announcement(NamedTuple):
    """What the RIB is told of one learned prefix: its attributes and what made the route."""

    attrs: PathAttributes
    kernel: KernelFacts
    interface: str | None = None
    protocol: str = ""
    preference: int | None = None


class Originate(Protocol):
    """``Rib.originate``: announce (``attrs``) or withdraw (None) routes of this node."""

    def __call__(
        self,
        family: Family,
        prefixes: list[int],
        attrs: PathAttributes | None,
        origin: Origin,
        *,
        protocol: str = "",
        interface: str | None = None,
        preference: int | None = None,
        kernel: KernelFacts | None = None,
    ) -> None:
        """Announce or withdraw."""


# (prefix's family and value, the route) -> what to announce, None: refused (import filter)
Describe = Callable[[Key, KernelRoute, Announcement], Announcement | None]


def kernel_facts(route: KernelRoute) -> KernelFacts:
    """BIRD's view of a learned kernel route (``rib.route.KernelFacts``)."""
    dest = _DEST_OF_TYPE.get(route.type)
    gateway = None
    if dest is None:
        if route.multipath:
            dest = Destination.MULTIPATH
        elif route.gateway:
            dest = Destination.ROUTER
            gateway = int.from_bytes(route.gateway[:16], "big")
        else:
            dest = Destination.DEVICE
    return KernelFacts(
        kind=LocalKind.KERNEL,
        dest=dest,
        gateway=gateway,
        metric=route.priority,
        protocol=route.protocol,
    )


def _inside(prefix: int, bits: int, ranges: tuple[int, ...]) -> bool:
    """Whether ``prefix`` lies inside one of ``ranges`` (Myna's prefix form, ``bits`` wide)."""
    network, length = prefix >> 8, prefix & 0xFF
    for outer in ranges:
        outer_length = outer & 0xFF
        drop = bits - outer_length
        if length >= outer_length and network >> drop == outer >> 8 >> drop:
            return True
    return False


@dataclass(frozen=True, slots=True)
class LearnFilter:
    """Which kernel routes are this node's to announce (BIRD's ``learn`` with a filter).

    A route is learned when its protocol and type are listed, it is in ``table``, its device
    (when it has one: a blackhole has none) matches one of ``interfaces`` (globs; empty: any
    device) and is up, and it lies inside one of ``prefixes`` (CIDR texts; empty: anywhere).
    """

    protocols: frozenset[int] = frozenset({80})  # Felix's IPAM-block blackholes
    types: frozenset[int] = frozenset({RouteType.BLACKHOLE})
    table: int = RouteTable.MAIN
    interfaces: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    own_protocol: int = RouteProtocol.BIRD
    families: frozenset[int] = frozenset({socket.AF_INET, socket.AF_INET6})

    def compile(
        self, link_name: Callable[[int], str | None], link_up: Callable[[int], bool]
    ) -> Callable[[KernelRoute], bool]:
        """The filter as one function, given the devices' names and states."""
        ranges = {
            4: tuple(prefix_from_text(p) for p in self.prefixes if ":" not in p),
            6: tuple(prefix_from_text(p) for p in self.prefixes if ":" in p),
        }
        protocols, types, table, globs = self.protocols, self.types, self.table, self.interfaces
        families = self.families

        def selects(route: KernelRoute) -> bool:
            if (
                route.family not in families
                or route.protocol not in protocols
                or route.protocol == self.own_protocol
                or route.type not in types
                or route.table != table
            ):
                return False
            devices = [h.oif for h in route.multipath if not h.flags & _DOWN] or (
                [route.oif] if route.oif and not route.flags & _DOWN else []
            )
            if route.oif or route.multipath:
                devices = [d for d in devices if link_up(d)]
                if not devices:
                    return False  # every way out is down
                if globs and not any(
                    fnmatch.fnmatchcase(link_name(d) or "", g) for d in devices for g in globs
                ):
                    return False
            if self.prefixes:
                if family_of(route) == Family.IPV4_UNICAST:
                    return _inside(route.prefix, 32, ranges[4])
                return _inside(route.prefix, 128, ranges[6])
            return True

        return selects


class KernelLearner:
    """Keeps the RIB's kernel-learned routes equal to the kernel's (see the module docstring)."""

    def __init__(
        self,
        originate: Originate,
        learn: LearnFilter | None = None,
        *,
        link_name: Callable[[int], str | None] = lambda _index: None,
        link_up: Callable[[int], bool] = lambda _index: True,
        describe: Describe | None = None,
        protocol: str = "",
        preference: int | None = None,
    ) -> None:
        self.originate = originate
        self.learn = learn or LearnFilter()
        self.selects = self.learn.compile(link_name, link_up)
        self.link_name = link_name
        self.describe = describe
        self.protocol = protocol  # the kernel protocol's name (BIRD's ``proto``)
        self.preference = preference
        # prefix -> the kernel routes of it that the filter selects (at least one), by identity
        self.learned: dict[Key, dict[Identity, KernelRoute]] = {}
        # prefix -> what the RIB was told of it (absent: nothing, the import filter refused)
        self.announced: dict[Key, Announcement] = {}
        self.resyncs = 0
        self._attrs = ATTRIBUTES.intern(PathAttributes())  # next hop self, per update group
        # While a resync's dump runs: what notifications said of each route meanwhile.
        self._during_dump: dict[tuple[Key, Identity], KernelRoute | None] | None = None

    def _announcement(self, key: Key, routes: dict[Identity, KernelRoute]) -> Announcement | None:
        """What to announce for a prefix: its lowest-metric route, through ``describe``."""
        route = min(routes.values(), key=_metric_then_table)
        interface = self.link_name(route.oif) if route.oif else None
        plain = Announcement(
            self._attrs, kernel_facts(route), interface, self.protocol, self.preference
        )
        return plain if self.describe is None else self.describe(key, route, plain)

    def _tell(self, changes: dict[Key, tuple[Announcement | None, Announcement | None]]) -> None:
        """Tell the RIB of (old, new) per prefix: the new first, then the old withdrawn."""
        news: dict[tuple[Family, Announcement], list[int]] = {}
        olds: dict[tuple[Family, Announcement], list[int]] = {}
        for (family, prefix), (old, new) in changes.items():
            if old == new:
                continue
            if new is not None:
                news.setdefault((family, new), []).append(prefix)
                if old is not None and _same_source(old, new):
                    continue  # the same source: the announcement replaces the route
            if old is not None:
                olds.setdefault((family, old), []).append(prefix)
        for (family, said), prefixes in news.items():
            self._say(family, prefixes, said, said.attrs)
        for (family, said), prefixes in olds.items():
            self._say(family, prefixes, said, None)

    def _say(
        self, family: Family, prefixes: list[int], said: Announcement, attrs: PathAttributes | None
    ) -> None:
        self.originate(
            family,
            prefixes,
            attrs,
            Origin.KERNEL,
            protocol=said.protocol,
            interface=said.interface,
            preference=said.preference,
            kernel=said.kernel,
        )

    def _update(self, keys: list[Key]) -> None:
        """Announce what ``learned`` now says of ``keys``."""
        changes: dict[Key, tuple[Announcement | None, Announcement | None]] = {}
        for key in keys:
            routes = self.learned.get(key)
            new = None if not routes else self._announcement(key, routes)
            old = self.announced.get(key)
            if new is None:
                self.announced.pop(key, None)
            else:
                self.announced[key] = new
            changes[key] = (old, new)
        self._tell(changes)

    async def resync(self) -> None:
        """Dump the table and make the learned set equal to what the filter selects in it."""
        self.resyncs += 1
        self._during_dump = {}
        try:
            routes = await dump_routes(table=self.learn.table)
        finally:
            during, self._during_dump = self._during_dump, None
        now: dict[Key, dict[Identity, KernelRoute]] = {}
        for route in routes:
            if self.selects(route):
                now.setdefault((family_of(route), route.prefix), {})[_identity(route)] = route
        # A notification read while the dump ran may be newer than what the dump saw of that
        # route (it changed after the kernel had dumped it): the last notification wins.
        for (key, identity), present in during.items():
            if present is not None:
                now.setdefault(key, {})[identity] = present
            elif key in now:
                now[key].pop(identity, None)
                if not now[key]:
                    del now[key]
        changed = [key for key in now.keys() | self.learned.keys()
                   if now.get(key) != self.learned.get(key)]  # fmt: skip
        if now.keys() != self.learned.keys():
            LOG.info("kernel routes learned: %d", len(now))
        self.learned = now
        self._update(changed)

    def on_kernel(self, header: Header, value: KernelRoute | Link | Address) -> None:
        """Learn or withdraw one route from a notification."""
        if not isinstance(value, KernelRoute):
            return
        key = (family_of(value), value.prefix)
        identity = _identity(value)
        if header.type == MessageType.NEWROUTE:
            if self.selects(value):
                if self._during_dump is not None:
                    self._during_dump[(key, identity)] = value
                held = self.learned.setdefault(key, {})
                if held.get(identity) != value:
                    held[identity] = value
                    self._update([key])
                return
            # Not selected: if it replaced one we learned (same table and metric), that one
            # is gone.
            if self._during_dump is not None:
                self._during_dump[(key, identity)] = None
            self._forget(key, identity)
        elif header.type == MessageType.DELROUTE:
            # Not selects(): the route may be going because its device went down.
            if self._during_dump is not None:
                self._during_dump[(key, identity)] = None
            self._forget(key, identity)

    def _forget(self, key: Key, identity: Identity) -> None:
        held = self.learned.get(key)
        if held is None or identity not in held:
            return
        del held[identity]
        if not held:
            del self.learned[key]
        self._update([key])


def _same_source(old: Announcement, new: Announcement) -> bool:
    return (old.kernel, old.interface, old.protocol, old.preference) == (
        new.kernel,
        new.interface,
        new.protocol,
        new.preference,
    )


def _metric_then_table(route: KernelRoute) -> tuple[int, int]:
    return route.priority, route.table


def _identity(route: KernelRoute) -> Identity:
    """Which of its prefix's kernel routes ``route`` is: the kernel keys them by table, metric."""
    return route.table, route.priority
