"""The node's own routes from the config: static routes, and the kernel protocol's import filter.

Role: what BIRD's static protocol and the kernel protocol's ``import`` filter do, on top of
``Rib.originate``. Static routes (``DaemonConfig.static_routes``: Calico's block blackholes in
``bird_ipam.cfg``, routes to node-specific peers ``via`` a gateway) enter the RIB with BIRD's
facts (``rib.route.KernelFacts``: source ``RTS_STATIC``, destination, gateway), their
protocol's name and preference, grouped so that routes made alike share one ``Source``. On a
reload only the routes that differ are withdrawn or announced.

``kernel_import`` turns the kernel protocol's BIRD import filter into the learner's
``describe`` hook: the filter sees each learned kernel route as BIRD would (its facts, device,
protocol, preference) and may refuse it or edit it (a community, the preference).

Data flow: ``Daemon.start`` calls ``StaticRoutes.apply`` with the config's routes and hands
``kernel_import``'s hook to the ``KernelLearner``; ``Daemon.reload`` calls ``apply`` again.
"""

from __future__ import annotations

import ipaddress

from bgpd.bird_config.filter_ast import FilterKind
from bgpd.config import BirdFilterModel, StaticRouteModel
from kernel_sync.kernel_learner import Announcement, Describe, Key, Originate
from kernel_sync.route_messages import KernelRoute
from rib.policy import Action
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, Source
from speaker.nlri import prefix_family, prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

_DEST = {
    "blackhole": Destination.BLACKHOLE,
    "unreachable": Destination.UNREACHABLE,
    "prohibit": Destination.PROHIBIT,
    "via": Destination.ROUTER,
    "device": Destination.DEVICE,
}

# (family, facts, interface, protocol, preference): one Source in the RIB
StaticSource = tuple[Family, KernelFacts, str | None, str, int]


def static_source(route: StaticRouteModel) -> StaticSource:
    """Which source a static route's announcement belongs to."""
    gateway = None if route.gateway is None else int(ipaddress.ip_address(route.gateway))
    kind = LocalKind.STATIC_DEVICE if route.kind == "device" else LocalKind.STATIC
    facts = KernelFacts(kind=kind, dest=_DEST[route.kind], gateway=gateway)
    return prefix_family(route.prefix), facts, route.device, route.protocol, route.preference


class StaticRoutes:
    """The static protocol's routes in the RIB (see the module docstring)."""

    def __init__(self, originate: Originate) -> None:
        self.originate = originate
        self._now: dict[tuple[StaticSource, int], None] = {}
        self._attrs = ATTRIBUTES.intern(PathAttributes())

    def apply(self, routes: tuple[StaticRouteModel, ...]) -> None:
        """Make the RIB hold ``routes``: new ones first, then the gone ones withdrawn."""
        now = {(static_source(r), prefix_from_text(r.prefix)): None for r in routes}
        added = [key for key in now if key not in self._now]
        gone = [key for key in self._now if key not in now]
        self._say(added, self._attrs)
        self._say(gone, None)
        self._now = now

    def _say(self, keys: list[tuple[StaticSource, int]], attrs: PathAttributes | None) -> None:
        grouped: dict[StaticSource, list[int]] = {}
        for source, prefix in keys:
            grouped.setdefault(source, []).append(prefix)
        for (family, facts, interface, protocol, preference), prefixes in grouped.items():
            self.originate(
                family,
                prefixes,
                attrs,
                Origin.STATIC,
                protocol=protocol,
                interface=interface,
                preference=preference,
                kernel=facts,
            )


def kernel_import(bird: BirdFilterModel) -> Describe | None:
    """The kernel protocol's import filter as the learner's ``describe`` (None for ``all``)."""
    if bird.program.kind is FilterKind.ALL:
        return None
    check = bird.compile(export=False)
    accept = Action.ACCEPT

    def describe(key: Key, route: KernelRoute, plain: Announcement) -> Announcement | None:
        family, prefix = key
        source = Source(
            name="kernel",
            origin=Origin.KERNEL,
            interface=plain.interface,
            protocol=plain.protocol,
            preference=plain.preference,
            kernel=plain.kernel,
        )
        verdict = check(prefix, family, Route(source, plain.attrs))
        if verdict[0] != accept:
            return None
        described = plain
        if verdict.attrs is not None:
            described = described._replace(attrs=ATTRIBUTES.intern(verdict.attrs))
        if verdict.preference is not None:
            described = described._replace(preference=verdict.preference)
        return described

    return describe
