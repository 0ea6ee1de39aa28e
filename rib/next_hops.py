"""Which BGP next hops resolve, and at what interior cost (RFC 4271 9.1.2.1 and step e).

Role: Calico's BIRD config says ``gateway recursive``: a route's next hop is looked up in the
routes the node already has (device routes, Felix's and static routes), a route whose next hop
does not resolve is not eligible, and the interior cost of the covering route is step e)'s
cost. ``NextHops`` memoises the answer per next hop (a Calico cluster has one next hop per
node) for the Loc-RIB, which reads it on every decision.

Data flow: the core is given a ``resolve`` function (the daemon passes the kernel mirror's, in
``kernel_sync.next_hop_resolver``; none means every next hop resolves at cost 0). Each next hop
is resolved when a route first carries it (``note``). When the kernel's routes change, the
daemon tells the core (``NextHopsChanged``), which calls ``refresh``: every known next hop is
resolved again, and the ones whose answer changed are handed to ``LocRib.reselect``, which
decides again the prefixes that have a candidate through them, so they are re-exported and
re-programmed like any other change.
"""

from __future__ import annotations

from collections.abc import Callable

from rib.route import Route

# next hop octets (4, 16, or 32 with a link-local) -> interior cost, or None: does not resolve
Resolve = Callable[[bytes], int | None]


class NextHops:
    """The resolution state of every next hop seen (see the module docstring)."""

    __slots__ = ("costs", "known", "resolve", "unreachable")

    def __init__(self, resolve: Resolve | None = None) -> None:
        self.resolve = resolve
        self.known: dict[bytes, int | None] = {}
        self.unreachable: set[bytes] = set()  # next hops that do not resolve now
        self.costs: dict[bytes, int] = {}  # next hops that resolve at a cost other than 0

    def note(self, next_hop: bytes) -> None:
        """A route carries ``next_hop``: resolve it if it is new."""
        if self.resolve is None or not next_hop or next_hop in self.known:
            return
        self._record(next_hop, self.resolve(next_hop))

    def _record(self, next_hop: bytes, cost: int | None) -> None:
        self.known[next_hop] = cost
        if cost is None:
            self.unreachable.add(next_hop)
            self.costs.pop(next_hop, None)
            return
        self.unreachable.discard(next_hop)
        if cost:
            self.costs[next_hop] = cost
        else:
            self.costs.pop(next_hop, None)

    def resolves(self, route: Route) -> bool:
        """Whether the route's next hop resolves (routes without one always do)."""
        return route.attrs.next_hop not in self.unreachable

    def igp_cost(self, route: Route) -> int | None:
        """The decision's hook: the interior cost to the route's next hop, None if unresolvable.

        Without a resolver the source's fixed cost stands (tests and configs that set it).
        """
        next_hop = route.attrs.next_hop
        if next_hop in self.unreachable:
            return None
        return self.costs.get(next_hop, route.source.igp_cost)

    def refresh(self) -> dict[bytes, tuple[bool, int]]:
        """Resolve every known next hop again; those whose answer changed, as they were.

        The result maps each changed next hop to (resolved before, cost before).
        """
        if self.resolve is None:
            return {}
        changed: dict[bytes, tuple[bool, int]] = {}
        for next_hop, before in list(self.known.items()):
            now = self.resolve(next_hop)
            if now != before:
                changed[next_hop] = (before is not None, before or 0)
                self._record(next_hop, now)
        return changed

    def forget_unused(self, used: set[bytes]) -> int:
        """Drop next hops no route carries any more (the idle sweep); returns how many."""
        gone = [next_hop for next_hop in self.known if next_hop not in used]
        for next_hop in gone:
            del self.known[next_hop]
            self.unreachable.discard(next_hop)
            self.costs.pop(next_hop, None)
        return len(gone)
