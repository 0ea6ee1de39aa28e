"""Kernel -> RIB: the networks of the node's interfaces, as BIRD's direct protocol gives them.

Data flow: one of ``KernelEvents``' watchers. Every address or link change already makes the
events hub re-read the kernel (``resync``), so this watcher reads the interface addresses
there and nowhere else, and announces the difference through ``Rib.originate``: one route per
network of an address on an interface that is up (with a carrier) and whose name the
patterns admit, withdrawn when the address, the interface or its carrier goes.

BIRD's rules (``nest/rt-dev.c``): the first pattern that matches the name decides, ``-`` in
front excludes (``-"cali*", "*"``), no match excludes; secondary addresses (a second one in
a network already given) and addresses of link or host scope (IPv6 link-local, loopback) give
no route. The route's facts are BIRD's: source ``RTS_DEVICE``, destination ``RTD_DEVICE``,
the interface as ``ifname``; its attribute set is empty (the export view fills it in).
"""

from __future__ import annotations

import fnmatch
import logging
import socket
from collections.abc import Callable

from kernel_sync.kernel_learner import Originate
from kernel_sync.netlink_codes import RouteScope
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import dump_addresses
from kernel_sync.route_messages import KernelRoute
from rib.route import Destination, KernelFacts, LocalKind, Origin
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.kernel")
_SECONDARY = 0x01  # IFA_F_SECONDARY
_FACTS = KernelFacts(kind=LocalKind.DEVICE, dest=Destination.DEVICE)
Connected = tuple[Family, int, str]  # family, prefix, interface


def admits(patterns: tuple[str, ...], name: str) -> bool:
    """BIRD's interface patterns: the first that matches decides; ``-`` excludes."""
    for pattern in patterns:
        exclude = pattern.startswith("-")
        if fnmatch.fnmatchcase(name, pattern[1:] if exclude else pattern):
            return not exclude
    return False


def network_of(address: Address) -> tuple[Family, int] | None:
    """The network an interface address is in, as (family, Myna's prefix int)."""
    bits = 32 if address.family == socket.AF_INET else 128
    if len(address.address) * 8 != bits:
        return None
    value = int.from_bytes(address.address, "big")
    length = address.prefix_len
    network = value >> (bits - length) << (bits - length) if length else 0
    family = Family.IPV4_UNICAST if bits == 32 else Family.IPV6_UNICAST
    return family, network << 8 | length


class ConnectedRoutes:
    """The direct protocol's routes, kept equal to the interfaces' addresses."""

    def __init__(
        self,
        originate: Originate,
        patterns: tuple[str, ...],
        *,
        link_name: Callable[[int], str | None],
        link_up: Callable[[int], bool],
        families: frozenset[Family] = frozenset(Family),
        protocol: str = "direct1",
        preference: int | None = None,
    ) -> None:
        self.originate = originate
        self.patterns = patterns
        self.link_name = link_name
        self.link_up = link_up
        self.families = families
        self.protocol = protocol
        self.preference = preference
        self.announced: set[Connected] = set()
        self._attrs = ATTRIBUTES.intern(PathAttributes())

    def connected(self, addresses: list[Address]) -> set[Connected]:
        """The routes these addresses give, under BIRD's rules."""
        out: set[Connected] = set()
        for address in addresses:
            if address.flags & _SECONDARY or address.scope >= RouteScope.LINK:
                continue
            name = self.link_name(address.ifindex)
            if name is None or not self.link_up(address.ifindex) or not admits(self.patterns, name):
                continue
            network = network_of(address)
            if network is not None and network[0] in self.families:
                out.add((network[0], network[1], name))
        return out

    async def resync(self) -> None:
        """Read the addresses and announce what changed."""
        self.apply(self.connected(await dump_addresses()))

    def apply(self, now: set[Connected]) -> None:
        """Make the announced routes ``now``: new ones first, then the gone ones withdrawn."""
        for attrs, routes in ((self._attrs, now - self.announced), (None, self.announced - now)):
            by_source: dict[tuple[Family, str], list[int]] = {}
            for family, prefix, interface in routes:
                by_source.setdefault((family, interface), []).append(prefix)
            for (family, interface), prefixes in by_source.items():
                self.originate(
                    family,
                    sorted(prefixes),
                    attrs,
                    Origin.STATIC,
                    protocol=self.protocol,
                    interface=interface,
                    preference=self.preference,
                    kernel=_FACTS,
                )
        if now != self.announced:
            LOG.info("connected networks: %d", len(now))
        self.announced = now

    def on_kernel(self, header: Header, value: KernelRoute | Link | Address) -> None:
        """Nothing: an address or link change makes the hub call ``resync``."""
