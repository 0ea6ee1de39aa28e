"""Kernel sync without a kernel: the FIB programmer's retries and drift repair, next-hop
resolution and the learn filter, driven with a fake route writer and fake dumps.

Data flow: each test builds Loc-RIB ``Change``s by hand, hands them to a ``FibProgrammer``
whose writer records every batch and answers with the errno the test chose, and feeds it the
netlink notifications and dumps a real kernel would give. The real kernel is exercised by
``test_interop_kernel*.py`` in namespaces; here every branch is reached on purpose.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Sequence

import pytest
from originate_recorder import OriginateRecorder
from uvloop_runner import on_uvloop

from kernel_sync.fib_programmer import FibProgrammer, FibSettings
from kernel_sync.kernel_learner import KernelLearner, LearnFilter
from kernel_sync.netlink_codes import LinkFlag, MessageType, NextHopFlag, RouteType
from kernel_sync.netlink_messages import Header, Link
from kernel_sync.next_hop_resolver import ON_LINK, NextHopResolver
from kernel_sync.route_messages import KernelRoute, NextHop, RouteChange, RouteOp
from kernel_sync.route_writer import BatchResult
from rib.loc_rib import Change, Run
from rib.route import Origin, Route, Source
from speaker.nlri import prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST
PEER = Source("198.18.0.2", Origin.BGP, router_id=2)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def route_via(next_hop: str) -> Route:
    return Route(PEER, ATTRIBUTES.intern(PathAttributes(next_hop=ip(next_hop))))


def change(prefix: str, *next_hops: str) -> Change:
    routes = tuple(route_via(n) for n in next_hops)
    return Change(V4, prefix_from_text(prefix), None, (), routes[0] if routes else None, routes)


def header(kind: MessageType) -> Header:
    return Header(0, int(kind), 0, 0, 0)


def kernel_route(prefix: str, gateway: str = "", **fields: int) -> KernelRoute:
    values = {"protocol": 12, "priority": 32, **fields}
    return KernelRoute(
        socket.AF_INET, prefix_from_text(prefix), gateway=ip(gateway) if gateway else b"", **values
    )


class FakeWriter:
    """Records batches; answers each change with the errno ``refuse`` gives its prefix."""

    def __init__(self) -> None:
        self.batches: list[list[RouteChange]] = []
        self.refuse: dict[int, int] = {}

    def submit(self, changes: Sequence[RouteChange]) -> asyncio.Future[BatchResult]:
        self.batches.append(list(changes))
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        errors = [self.refuse.get(c.route.prefix, 0) for c in changes]
        future.set_result(BatchResult(list(changes), errors, {}))
        return future

    def written(self) -> list[tuple[RouteOp, str]]:
        out = []
        for batch in self.batches:
            for c in batch:
                net = ipaddress.ip_network((c.route.prefix >> 8, c.route.prefix & 0xFF))
                out.append((c.op, str(net)))
        return out


class FakeKernel:
    """The routes of our protocol a dump returns."""

    def __init__(self) -> None:
        self.routes: list[KernelRoute] = []

    async def dump(self) -> list[KernelRoute]:
        return list(self.routes)


def programmer(
    settings: FibSettings | None = None, **kwargs: object
) -> tuple[FibProgrammer, FakeWriter, FakeKernel]:
    writer, kernel = FakeWriter(), FakeKernel()
    fib = FibProgrammer(writer, settings or FibSettings(), dump=kernel.dump, **kwargs)  # type: ignore[arg-type]
    return fib, writer, kernel


async def turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


@on_uvloop
async def test_a_route_deleted_by_someone_else_is_put_back_at_once() -> None:
    fib, writer, _ = programmer()
    fib.publish([change("198.19.1.0/26", "198.18.0.2")])
    await turn()
    installed = fib.installed[(V4, prefix_from_text("198.19.1.0/26"))]
    writer.batches.clear()
    fib.on_kernel(header(MessageType.DELROUTE), installed)
    await turn()
    assert writer.written() == [(RouteOp.REPLACE, "198.19.1.0/26")]
    assert fib.counters["repairs"] == 1
    # Our own delete (after a withdrawal) is not "drift": nothing is put back.
    fib.publish([Change(V4, installed.prefix, None, (), None, ())])
    await turn()
    writer.batches.clear()
    fib.on_kernel(header(MessageType.DELROUTE), installed)
    await turn()
    assert writer.batches == []
    # Routes of other protocols are none of our business.
    fib.on_kernel(header(MessageType.DELROUTE), kernel_route("198.19.2.0/26", protocol=80))
    await turn()
    assert writer.batches == []


@on_uvloop
async def test_resync_repairs_missing_and_changed_routes_and_deletes_stray_ones() -> None:
    fib, writer, kernel = programmer()
    fib.remove_leftovers()  # the start is over: strays of our protocol may be deleted
    fib.publish(
        [
            change("198.19.1.0/26", "198.18.0.2"),
            change("198.19.2.0/26", "198.18.0.3"),
            change("198.19.3.0/26", "198.18.0.4"),
        ]
    )
    await turn()
    writer.batches.clear()
    good = fib.installed[(V4, prefix_from_text("198.19.1.0/26"))]
    kernel.routes = [
        good._replace(oif=3),  # the kernel fills in the device: still the same route
        kernel_route("198.19.2.0/26", "198.18.0.99"),  # changed by someone
        # 198.19.3.0/26 missing
        kernel_route("198.19.4.0/26", "198.18.0.5"),  # ours by protocol, not selected: stray
    ]
    await fib.resync()
    await turn()
    assert sorted(writer.written()) == [
        (RouteOp.REPLACE, "198.19.2.0/26"),
        (RouteOp.REPLACE, "198.19.3.0/26"),
        (RouteOp.DEL, "198.19.4.0/26"),
    ]
    assert fib.counters["repairs"] == 3


@on_uvloop
async def test_adopted_routes_are_not_touched_by_resync_before_leftovers_go() -> None:
    fib, writer, kernel = programmer()
    old = kernel_route("198.19.7.0/26", "198.18.0.9")
    fib.adopt([old])
    kernel.routes = [old, kernel_route("198.19.8.0/26", "198.18.0.9")]
    await fib.resync()
    await turn()
    assert writer.batches == []  # neither the adopted route nor an unknown one of ours


@on_uvloop
async def test_refused_writes_are_retried_when_they_may_succeed_and_dropped_when_not() -> None:
    fib, writer, _ = programmer()
    unreachable = prefix_from_text("198.19.1.0/26")
    invalid = prefix_from_text("198.19.2.0/26")
    writer.refuse = {unreachable: errno.ENETUNREACH, invalid: errno.EINVAL}
    requests: list[str] = []
    fib.request_resync = requests.append
    fib.publish([change("198.19.1.0/26", "198.18.0.2"), change("198.19.2.0/26", "198.18.0.2")])
    await turn()
    assert fib.counters["errors"] == 2
    assert (V4, invalid) not in fib.installed  # refused for good: not retried
    assert (V4, unreachable) in fib.installed  # may pass: the next resync writes it again
    assert fib._retry_timer is not None
    assert fib._retry_delay == 2.0  # the next failure waits twice as long
    fib._retry_timer.cancel()
    fib._retry_refused()  # what the back-off timer does
    assert requests == ["retrying refused kernel writes"]
    writer.refuse = {}
    writer.batches.clear()
    await fib.resync()  # the kernel does not have it
    await turn()
    assert writer.written() == [(RouteOp.REPLACE, "198.19.1.0/26")]
    assert fib._retry_delay == 1.0  # success: back to the first delay
    fib.close()


@on_uvloop
async def test_a_route_through_a_missing_tunnel_waits_for_the_device() -> None:
    devices: dict[str, int] = {}

    def ifindex(name: str) -> int:
        if name not in devices:
            raise OSError(name)
        return devices[name]

    fib, writer, _ = programmer(policy=lambda _p, _f, _r: (True, "tunl0", None), ifindex=ifindex)
    fib.publish([change("198.19.1.0/26", "198.18.0.2")])
    await turn()
    assert writer.batches == []
    assert list(fib.waiting) == [(V4, prefix_from_text("198.19.1.0/26"))]
    devices["tunl0"] = 7
    fib.retry()  # a device appeared: the events hub re-reads, and the programmer retries
    await turn()
    (only,) = writer.batches[0]
    assert only.route.oif == 7 and only.route.flags & NextHopFlag.ONLINK
    assert only.route.gateway == ip("198.18.0.2")
    assert not fib.waiting


def resolver_with(*routes: KernelRoute) -> NextHopResolver:
    resolver = NextHopResolver(table=254, own_protocol=12)
    for route in routes:
        resolver.on_kernel(header(MessageType.NEWROUTE), route)
    return resolver


def test_next_hops_resolve_by_longest_match_over_routes_that_are_not_ours() -> None:
    resolver = resolver_with(
        kernel_route("198.18.0.0/24", protocol=2, oif=2, scope=253),  # connected
        kernel_route("0.0.0.0/0", "198.18.0.1", protocol=3, oif=2),  # default
        kernel_route("198.18.64.0/18", "198.18.0.254", protocol=4, oif=2),  # static
        kernel_route("198.18.100.0/24", protocol=4, type=RouteType.BLACKHOLE),
        kernel_route("198.18.128.0/17", "198.18.0.7", protocol=12),  # ours: never used
    )
    assert resolver.resolve(ip("198.18.0.9")) is ON_LINK
    assert resolver.resolve(ip("198.18.70.1")) == (NextHop(ip("198.18.0.254"), 2),)
    assert resolver.resolve(ip("198.18.100.1")) is None  # blackholed: no way there
    assert resolver.resolve(ip("198.18.200.1")) == (NextHop(ip("198.18.0.1"), 2),)  # default
    # The memo goes when the table changes, and the programmer is told.
    told: list[bool] = []
    resolver.on_change = lambda: told.append(True)
    resolver.on_kernel(
        header(MessageType.DELROUTE), kernel_route("0.0.0.0/0", "198.18.0.1", protocol=3, oif=2)
    )
    assert told == [True]
    assert resolver.resolve(ip("198.18.200.1")) is None


def test_a_prefix_with_two_kernel_routes_resolves_through_the_lower_metric_while_either_stays() -> (
    None
):
    """The kernel keys routes by prefix, table and metric, and forwards by the lowest metric:
    two default routes (a multi-homed node) are two routes, and deleting one leaves the other
    (the RIB's eligibility and step e follow the resolver: RFC 4271 9.1.2.1). The interior
    cost of a next hop via a gateway is BIRD's IGP_METRIC_UNKNOWN (rt_get_igp_metric: no IGP
    metric, not a device route), whatever the kernel metric; an on-link one costs 0."""
    low = kernel_route("0.0.0.0/0", "198.18.0.1", protocol=3, oif=2)._replace(priority=100)
    high = kernel_route("0.0.0.0/0", "198.18.1.1", protocol=3, oif=3)._replace(priority=200)
    link = kernel_route("198.18.0.0/24", protocol=2, oif=2, scope=253)
    resolver = resolver_with(low, high, link)
    assert resolver.cost(ip("198.18.200.1")) == 0x80000000
    assert resolver.cost(ip("198.18.0.9")) == 0
    assert resolver.resolve(ip("198.18.200.1")) == (NextHop(ip("198.18.0.1"), 2),)
    told: list[bool] = []
    resolver.on_change = lambda: told.append(True)
    resolver.on_kernel(header(MessageType.DELROUTE), high)
    assert resolver.resolve(ip("198.18.200.1")) == (NextHop(ip("198.18.0.1"), 2),)
    assert told == []  # the route used did not change
    resolver.on_kernel(header(MessageType.NEWROUTE), high)
    resolver.on_kernel(header(MessageType.DELROUTE), low)
    assert resolver.cost(ip("198.18.200.1")) == 0x80000000 and told == [True]
    assert resolver.resolve(ip("198.18.200.1")) == (NextHop(ip("198.18.1.1"), 3),)


@on_uvloop
async def test_recursive_routes_follow_the_kernel_and_unresolvable_ones_wait() -> None:
    resolver = resolver_with(kernel_route("198.18.0.0/24", protocol=2, oif=2, scope=253))
    fib, writer, _ = programmer(resolver=resolver)
    fib.publish([change("198.19.1.0/26", "198.18.0.2"), change("198.19.2.0/26", "198.18.77.1")])
    await turn()
    assert writer.written() == [(RouteOp.NEW, "198.19.1.0/26")]  # on-link: as it is, a first write
    assert list(fib.waiting) == [(V4, prefix_from_text("198.19.2.0/26"))]
    writer.batches.clear()
    resolver.on_kernel(
        header(MessageType.NEWROUTE),
        kernel_route("198.18.64.0/18", "198.18.0.254", protocol=4, oif=2),
    )
    await turn()
    (written,) = writer.batches[0]
    assert written.route.gateway == ip("198.18.0.254") and written.route.oif == 2
    assert not fib.waiting and list(fib.resolved) == [(V4, prefix_from_text("198.19.2.0/26"))]
    # The covering route moves to another gateway: the route follows it.
    writer.batches.clear()
    resolver.on_kernel(
        header(MessageType.NEWROUTE),
        kernel_route("198.18.64.0/18", "198.18.0.253", protocol=4, oif=2),
    )
    await turn()
    (written,) = writer.batches[0]
    assert written.route.gateway == ip("198.18.0.253")


@pytest.mark.parametrize(
    ("route", "learned"),
    [
        (kernel_route("198.19.1.0/26", protocol=80, type=RouteType.BLACKHOLE), True),
        (kernel_route("198.19.1.0/26", protocol=80, type=RouteType.BLACKHOLE, table=100), False),
        (kernel_route("198.19.1.0/26", protocol=12, type=RouteType.BLACKHOLE), False),  # ours
        (kernel_route("198.20.0.0/24", "198.18.0.1", protocol=4, oif=2), True),  # static, eth0
        (kernel_route("198.20.0.0/24", "198.18.0.1", protocol=4, oif=3), False),  # down device
        (kernel_route("198.20.0.0/24", "198.18.0.1", protocol=4, oif=4), False),  # not eth*
        (kernel_route("198.21.0.0/24", "198.18.0.1", protocol=4, oif=2), False),  # outside
        (kernel_route("198.20.0.0/24", "198.18.0.1", protocol=3, oif=2), False),  # boot
    ],
)
def test_the_learn_filter(route: KernelRoute, learned: bool) -> None:
    links = {
        2: Link(2, "eth0", int(LinkFlag.UP | LinkFlag.LOWER_UP)),
        3: Link(3, "eth1", int(LinkFlag.UP)),
        4: Link(4, "cali1", int(LinkFlag.UP | LinkFlag.LOWER_UP)),
    }
    learn = LearnFilter(
        protocols=frozenset({80, 4}),
        types=frozenset({RouteType.BLACKHOLE, RouteType.UNICAST}),
        interfaces=("eth*",),
        prefixes=("198.19.0.0/16", "198.20.0.0/16"),
    )
    got = OriginateRecorder()
    learner = KernelLearner(
        got.originate,
        learn,
        link_name=lambda i: links[i].name,
        link_up=lambda i: links[i].is_up and links[i].has_carrier,
    )
    learner.on_kernel(header(MessageType.NEWROUTE), route)
    assert (route.prefix in got.now) is learned
    if learned:  # and a DELROUTE withdraws it, even when its device has gone down meanwhile
        links[2] = Link(2, "eth0", 0)
        learner.on_kernel(header(MessageType.DELROUTE), route)
        assert not got.now


@on_uvloop
async def test_a_run_programs_what_its_changes_one_by_one_would() -> None:
    # The kernel policy reads the prefix (an IPIP pool covers half the run) and the tunnel
    # device is missing at first: the run's routes are built per policy answer, not per prefix.
    pool = ipaddress.ip_network("198.19.0.0/23")
    devices: dict[str, int] = {}

    def ifindex(name: str) -> int:
        if name not in devices:
            raise OSError(errno.ENODEV, "no such device")
        return devices[name]

    def ipip(prefix: int, _family: Family, _route: Route) -> tuple[bool, str | None, None]:
        inside = ipaddress.ip_address(prefix >> 8) in pool
        return True, "tunl0" if inside else None, None

    prefixes = [prefix_from_text(f"198.19.{n}.{64 * k}/26") for n in range(4) for k in range(4)]
    route = route_via("198.18.0.2")
    one_by_one, _, _ = programmer(policy=ipip, ifindex=ifindex)
    in_a_run, _, _ = programmer(policy=ipip, ifindex=ifindex)

    def same() -> None:
        assert in_a_run.installed == one_by_one.installed
        assert in_a_run._queue == one_by_one._queue
        assert set(in_a_run.waiting) == set(one_by_one.waiting)
        assert in_a_run.waiting == one_by_one.waiting

    one_by_one.publish([Change(V4, p, None, (), route, (route,)) for p in prefixes])
    in_a_run.publish([Run(V4, PEER, 0, route, prefixes)])
    same()
    assert len(in_a_run.installed) == 8 and len(in_a_run.waiting) == 8  # tunl0 is missing
    devices["tunl0"] = 7
    for fib in (one_by_one, in_a_run):
        fib.retry()
    same()
    assert len(in_a_run.installed) == 16 and not in_a_run.waiting
    tunnelled = in_a_run.installed[(V4, prefixes[0])]
    assert (tunnelled.oif, tunnelled.flags) == (7, int(NextHopFlag.ONLINK))
    assert tunnelled.prefix == prefixes[0] and tunnelled.gateway == ip("198.18.0.2")
    one_by_one.publish([Change(V4, p, None, (), None, ()) for p in prefixes[:5]])
    in_a_run.publish([Run(V4, PEER, 0, None, prefixes[:5])])
    same()
    assert len(in_a_run.installed) == 11


@on_uvloop
async def test_a_route_of_another_protocol_holding_our_key_is_never_replaced() -> None:
    """BIRD 1.6 adds its routes with NLM_F_CREATE|NLM_F_EXCL: where Felix's blackhole (proto 80)
    has the key (table, prefix, metric), the kernel answers EEXIST ("File exists") and keeps
    Felix's route; BIRD tries again at each scan. Myna's first write of a key is such an
    exclusive create too; refused, it is never turned into a REPLACE."""
    fib, writer, kernel = programmer()
    prefix = prefix_from_text("198.19.1.0/26")
    writer.refuse[prefix] = errno.EEXIST
    fib.publish([change("198.19.1.0/26", "198.18.0.2")])
    await turn()
    assert writer.written() == [(RouteOp.NEW, "198.19.1.0/26")]
    assert (V4, prefix) in fib.blocked and (V4, prefix) not in fib.installed
    writer.batches.clear()
    await fib.resync()  # the scan: tried again, exclusively, and refused again
    await turn()
    assert writer.written() == [(RouteOp.NEW, "198.19.1.0/26")]
    assert (V4, prefix) in fib.blocked
    assert fib.counters["blocked"] == 1 and fib.counters["errors"] == 0
    del writer.refuse[prefix]  # Felix's route went away
    writer.batches.clear()
    await fib.resync()
    await turn()
    assert writer.written() == [(RouteOp.NEW, "198.19.1.0/26")]
    assert (V4, prefix) in fib.installed and not fib.blocked
    kernel.routes = [fib.installed[(V4, prefix)]]
    writer.batches.clear()
    fib.publish([change("198.19.1.0/26", "198.18.0.3")])  # ours now: replaced in place
    await turn()
    assert writer.written() == [(RouteOp.REPLACE, "198.19.1.0/26")]


def metric_by_next_hop(_prefix: int, _family: Family, route: Route) -> tuple[bool, None, int]:
    """Calico's kernel filter reads krt_metric from the route (here: its next hop)."""
    return True, None, {ip("198.18.0.2"): 647, ip("198.18.0.3"): 47}[route.attrs.next_hop]


@on_uvloop
async def test_a_new_metric_replaces_the_route_at_the_old_one() -> None:
    # BIRD 1.6 in test_bird_differential (a new best path with another LOCAL_PREF, so another
    # krt_metric): the kernel holds the prefix once, at the new metric. The metric is part of
    # the kernel's key, so a REPLACE alone would leave the old route beside the new one.
    # BIRD 1.6's kernel protocol has no metric of its own: krt_metric decides.
    fib, writer, kernel = programmer(FibSettings(metric=0), policy=metric_by_next_hop)
    fib.publish([change("198.19.1.0/26", "198.18.0.2")])
    await turn()
    old = fib.installed[(V4, prefix_from_text("198.19.1.0/26"))]
    assert old.priority == 647
    writer.batches.clear()
    fib.publish([change("198.19.1.0/26", "198.18.0.3")])
    await turn()
    ((new, stale),) = writer.batches
    assert (new.op, new.route.priority, new.route.gateway) == (RouteOp.NEW, 47, ip("198.18.0.3"))
    assert (stale.op, stale.route) == (RouteOp.DEL, old)
    # Its echo is not drift: nothing is put back.
    writer.batches.clear()
    fib.on_kernel(header(MessageType.DELROUTE), old)
    await turn()
    assert writer.batches == []
    # The same through a Run (many prefixes, one path).
    prefixes = (prefix_from_text("198.19.2.0/26"), prefix_from_text("198.19.2.64/26"))
    first, second = route_via("198.18.0.2"), route_via("198.18.0.3")
    fib.publish([Run(V4, PEER, 0, first, prefixes)])
    await turn()
    writer.batches.clear()
    fib.publish([Run(V4, PEER, 0, second, prefixes, first)])
    await turn()
    ops = sorted((c.op, c.route.prefix, c.route.priority) for b in writer.batches for c in b)
    assert ops == sorted(
        [(RouteOp.NEW, p, 47) for p in prefixes] + [(RouteOp.DEL, p, 647) for p in prefixes]
    )
    # A resync finds ours at an old metric beside the wanted one (an older Myna left it).
    writer.batches.clear()
    kernel.routes = [
        *(route for _, route in fib.installed.items()),
        old._replace(prefix=prefixes[0]),
    ]
    await fib.resync()
    await turn()
    assert [(c.op, c.route.priority) for b in writer.batches for c in b] == [(RouteOp.DEL, 647)]


@on_uvloop
async def test_an_adopted_ipv6_route_at_metric_1024_is_the_one_wanted_at_metric_0() -> None:
    # BIRD 1.6's kernel metric is none (0), which the kernel shows an IPv6 route at as 1024:
    # an adopted route is the same kernel route, replaced in place, never deleted
    # (test_interop_bird_socket, Myna taking over BIRD 1.6's routes).
    v6 = Family.IPV6_UNICAST
    writer, kernel = FakeWriter(), FakeKernel()
    fib = FibProgrammer(writer, FibSettings(metric=0), dump=kernel.dump)  # type: ignore[arg-type]
    prefix = prefix_from_text("2001:db8:1::/64")
    left = KernelRoute(
        socket.AF_INET6, prefix, protocol=12, priority=1024, gateway=ip("2001:db8::3")
    )
    fib.adopt([left])
    attrs = ATTRIBUTES.intern(PathAttributes(next_hop=ip("2001:db8::2")))
    route = Route(PEER, attrs)
    fib.publish([Change(v6, prefix, None, (), route, (route,))])
    await turn()
    assert [(c.op, c.route.priority) for b in writer.batches for c in b] == [(RouteOp.REPLACE, 0)]


def test_the_kernel_protocols_metric_wins_over_krt_metric() -> None:
    """BIRD 1.6 ``nl_send_route`` (sysdep/linux/netlink.c): ``metric N`` of the kernel protocol,
    when set, is the route's metric whatever the export filter's ``krt_metric``; without it
    (BIRD 1.6's default) ``krt_metric`` is, and without either the route has none (0)."""
    for metric, expected in ((5, 5), (0, 647)):
        fib, _, _ = programmer(FibSettings(metric=metric), policy=metric_by_next_hop)
        route = fib.desired(change("198.19.1.0/26", "198.18.0.2"))
        assert route is not None and route.priority == expected
    fib, _, _ = programmer(FibSettings(metric=0))
    route = fib.desired(change("198.19.1.0/26", "198.18.0.2"))
    assert route is not None and route.priority == 0


class KernelModel(FakeWriter):
    """A writer that applies each batch, in order, to a model of the kernel's main table: a
    route's key is (prefix, metric); NEW refuses an existing key (EEXIST), REPLACE creates or
    overwrites, DEL matches the key, the protocol and the gateway when one is given (ESRCH
    otherwise), as ``fib_table_delete`` does for IPv4."""

    def __init__(self) -> None:
        super().__init__()
        self.table: dict[tuple[int, int], KernelRoute] = {}

    def submit(self, changes: Sequence[RouteChange]) -> asyncio.Future[BatchResult]:
        self.batches.append(list(changes))
        errors = []
        for c in changes:
            key = (c.route.prefix, c.route.priority)
            have = self.table.get(key)
            error = 0
            if c.op is RouteOp.NEW:
                if have is not None:
                    error = errno.EEXIST
                else:
                    self.table[key] = c.route
            elif c.op is RouteOp.REPLACE:
                self.table[key] = c.route
            elif (
                have is None
                or have.protocol != c.route.protocol
                or (c.route.gateway and have.gateway != c.route.gateway)
            ):
                error = errno.ESRCH
            else:
                del self.table[key]
            errors.append(error)
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        future.set_result(BatchResult(list(changes), errors, {}))
        return future

    def held(self) -> list[tuple[int, bytes]]:
        """(metric, gateway) of every route the model holds."""
        return sorted((r.priority, r.gateway) for r in self.table.values())


def metric_of_three(_prefix: int, _family: Family, route: Route) -> tuple[bool, None, int]:
    """Two next hops at one krt_metric, a third at another."""
    metrics = {ip("198.18.0.2"): 647, ip("198.18.0.4"): 647, ip("198.18.0.3"): 47}
    return True, None, metrics[route.attrs.next_hop]


@on_uvloop
@pytest.mark.parametrize(
    ("then", "held"),
    [
        # the best path changes twice before the first change is written: the second change
        # must delete the route the kernel holds (via .2), not the one only queued (via .4)
        ((".4", ".3"), [(47, ".3")]),
        # away to another metric and back to the kernel's one before the write: the kernel's
        # route is replaced in place, not refused (EEXIST) and then deleted
        ((".3", ".4"), [(647, ".4")]),
        ((".3", ".2"), [(647, ".2")]),
        ((".4", ".2"), [(647, ".2")]),
        ((".3", None), []),
        ((".4", None), []),
    ],
)
@pytest.mark.parametrize("as_run", [False, True])
async def test_changes_queued_together_leave_the_kernel_holding_the_last(
    then: tuple[str, str | None], held: list[tuple[int, str]], as_run: bool
) -> None:
    # test_bird_differential's keepnexthop case, under load: a prefix's best path came from
    # the eBGP peer (via the gateway), then from an iBGP peer at the same metric, then from
    # another at a new metric, the last two before the kernel write of the first: the kernel
    # kept the eBGP route at the old metric beside the new one.
    writer = KernelModel()
    fib = FibProgrammer(writer, FibSettings(metric=0), policy=metric_of_three)  # type: ignore[arg-type]
    text = "198.19.1.0/26"
    prefix = prefix_from_text(text)

    def publish(hop: str | None, before: str | None) -> None:
        if as_run:
            route = route_via("198.18.0" + hop) if hop else None
            old = route_via("198.18.0" + before) if before else None
            fib.publish([Run(V4, PEER, 0, route, (prefix,), old)])
        else:
            fib.publish([change(text, "198.18.0" + hop) if hop else change(text)])

    publish(".2", None)
    await turn()
    assert writer.held() == [(647, ip("198.18.0.2"))]
    first, second = then
    publish(first, ".2")
    publish(second, first)  # before the write of the first
    await turn()
    assert writer.held() == [(metric, ip("198.18.0" + hop)) for metric, hop in held]
    assert not fib.blocked and fib.counters["errors"] == 0
    want = fib.installed.get((V4, prefix))
    assert ([(want.priority, want.gateway)] if want else []) == writer.held()
