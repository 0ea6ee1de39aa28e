"""BGP next hops resolved through the kernel's own routes (BIRD's ``gateway recursive``).

A route's BGP next hop is usually a neighbour on a shared subnet; the kernel accepts it as a
gateway as it is. A multihop peer's next hop is not: the kernel refuses it (ENETUNREACH), and
the route must instead go via the gateway(s) of the kernel route that covers the next hop, as
BIRD and GoBGP resolve it.

Data flow: the resolver mirrors the main table's routes that are not ours (``KernelEvents``
feeds it: a dump at start and at every resync, then notifications). ``resolve(next_hop)``
answers with a longest-prefix match in that mirror: a covering route without a gateway (a
connected subnet, "scope link") means the next hop is on-link and used as it is; a route with
gateways gives those gateways and devices; nothing, or a blackhole / unreachable route, means
unresolvable for now. Answers are memoised per next hop (a Calico cluster has one next hop per
node) and the memo is dropped whenever the mirror changes, after which ``on_change`` tells the
FIB programmer to look again at the routes that needed resolving.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from kernel_sync.netlink_codes import MessageType, RouteType
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import dump_routes
from kernel_sync.route_messages import KernelRoute, NextHop

LOG = logging.getLogger("myna.kernel")

ON_LINK: tuple[NextHop, ...] = ()  # resolve(): the next hop is a neighbour, use it as it is
IGP_METRIC_UNKNOWN = 0x80000000  # BIRD's (nest/route.h): the cost of a next hop via a gateway


def _network(address: int, length: int, bits: int) -> int:
    return address >> (bits - length) << (bits - length) if length else 0


class NextHopResolver:
    """Longest-prefix match over the kernel's routes that are not ours (see the docstring)."""

    def __init__(self, table: int, own_protocol: int) -> None:
        self.table = table
        self.own_protocol = own_protocol
        self.on_change: Callable[[], None] = lambda: None
        # family -> {(network, length): {metric: route}}: a prefix can have several routes
        # (two default routes of different metrics); the kernel uses the lowest metric, and so
        # does resolution, and deleting one leaves the others.
        self._routes: dict[int, dict[tuple[int, int], dict[int, KernelRoute]]] = {
            socket.AF_INET: {},
            socket.AF_INET6: {},
        }
        self._lengths: dict[int, list[int]] = {socket.AF_INET: [], socket.AF_INET6: []}
        self._memo: dict[bytes, tuple[NextHop, ...] | None] = {}
        self._costs: dict[bytes, int | None] = {}

    def _relevant(self, route: KernelRoute) -> bool:
        return (
            route.table == self.table
            and route.protocol != self.own_protocol
            and route.family in self._routes
        )

    def _key(self, route: KernelRoute) -> tuple[int, int]:
        return route.prefix >> 8, route.prefix & 0xFF

    def _reindex(self) -> None:
        for family, routes in self._routes.items():
            self._lengths[family] = sorted({length for _, length in routes}, reverse=True)
        self._memo.clear()
        self._costs.clear()

    async def resync(self) -> None:
        """Mirror the table again (at start, after overruns and link or address changes)."""
        for routes in self._routes.values():
            routes.clear()
        for route in await dump_routes(table=self.table):
            if self._relevant(route):
                self._routes[route.family].setdefault(self._key(route), {})[route.priority] = route
        self._reindex()
        self.on_change()

    def on_kernel(self, header: Header, value: KernelRoute | Link | Address) -> None:
        """Keep the mirror current from a route notification."""
        if not isinstance(value, KernelRoute) or not self._relevant(value):
            return
        routes = self._routes[value.family]
        key = self._key(value)
        by_metric = routes.get(key)
        before = None if by_metric is None else by_metric[min(by_metric)]
        if header.type == MessageType.NEWROUTE:
            if by_metric is None:
                by_metric = routes[key] = {}
            if by_metric.get(value.priority) == value:
                return
            by_metric[value.priority] = value
        else:
            if by_metric is None or by_metric.pop(value.priority, None) is None:
                return
            if not by_metric:
                del routes[key]
        after = routes[key][min(routes[key])] if key in routes else None
        if after == before:
            return  # a route behind the prefix's best changed: resolution is the same
        self._reindex()
        self.on_change()

    def resolve(self, next_hop: bytes) -> tuple[NextHop, ...] | None:
        """``ON_LINK``, the gateways to use instead, or None when the kernel has no way there."""
        if next_hop in self._memo:
            return self._memo[next_hop]
        answer = self._lookup(next_hop)
        self._memo[next_hop] = answer
        return answer

    def cost(self, next_hop: bytes) -> int | None:
        """Whether a BGP next hop resolves, and at what interior cost (the RIB asks).

        RFC 4271 9.1.2.1 and step e). None: not at all; 0: on-link (a connected subnet, as BIRD
        counts a device route); else ``IGP_METRIC_UNKNOWN``, as BIRD's ``rt_get_igp_metric``
        has it for a route via a gateway (kernel or static: no IGP told it a cost; the kernel
        metric only chose which of the prefix's routes is used). So a next hop behind a gateway
        loses step e to an on-link one and is not merged with it, as in BIRD.

        ``next_hop`` is as the route carries it: 4 octets, 16, or 32 (global and link-local:
        the global one is looked up).
        """
        if next_hop in self._costs:
            return self._costs[next_hop]
        address = next_hop[:16] if len(next_hop) > 16 else next_hop
        route = self._covering(address)
        cost = None
        if route is not None and route.type == RouteType.UNICAST:
            cost = 0 if self.resolve(address) is ON_LINK else IGP_METRIC_UNKNOWN
        self._costs[next_hop] = cost
        return cost

    def _covering(self, next_hop: bytes) -> KernelRoute | None:
        family = socket.AF_INET if len(next_hop) == 4 else socket.AF_INET6
        bits = len(next_hop) * 8
        address = int.from_bytes(next_hop, "big")
        routes = self._routes[family]
        for length in self._lengths[family]:
            by_metric = routes.get((_network(address, length, bits), length))
            if by_metric:
                return by_metric[min(by_metric)]
        return None

    def _lookup(self, next_hop: bytes) -> tuple[NextHop, ...] | None:
        route = self._covering(next_hop)
        if route is None or route.type != RouteType.UNICAST:
            return None  # nothing, or a blackhole, unreachable, prohibit: no way there
        if route.multipath:
            hops = tuple(h for h in route.multipath if h.gateway)
            if len(hops) < len(route.multipath):
                return ON_LINK  # a path straight onto the device: on-link
            return tuple(NextHop(h.gateway, h.oif) for h in hops)
        if not route.gateway:
            return ON_LINK  # a connected subnet or a device route
        return (NextHop(route.gateway, route.oif),)
