"""Kernel sync against the real kernel, inside a network namespace of the test bed.

Each test gets a fresh host namespace (``topology`` fixture: ``eth0`` with 198.18.0.1/24 and
2001:db8::1/64 on the test bed's bridge). Myna's sockets are opened inside it with
``netns=host.netns`` (a short-lived thread joins the namespace, creates the socket and hands
it back), so the test's own event loop drives them; ``ip -n`` from outside is the independent
witness. Waits are deadlines on events, never fixed sleeps. Addresses: 198.18.0.0/15 and
2001:db8::/32 only.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import socket

import pytest
from testbed import Host, Topology

from kernel_sync.netlink_codes import (
    MessageType,
    NextHopFlag,
    RouteProtocol,
    RouteScope,
    RouteTable,
    RouteType,
)
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import (
    Monitor,
    drop_own_new_routes,
    dump_addresses,
    dump_links,
    dump_routes,
    open_netlink_socket,
)
from kernel_sync.route_messages import KernelRoute, NextHop, RouteChange, RouteOp
from kernel_sync.route_writer import AckMode, Advice, RouteWriter

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

V4, V6 = socket.AF_INET, socket.AF_INET6
BIRD = RouteProtocol.BIRD
DEADLINE = 10.0


def prefix(text: str) -> int:
    network = ipaddress.ip_network(text)
    return (int(network.network_address) << 8) | network.prefixlen


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def v4_host(n: int) -> int:
    return ((int(ipaddress.IPv4Address("198.19.0.0")) + n) << 8) | 32


def v6_host(n: int) -> int:
    return ((int(ipaddress.IPv6Address("2001:db8:100::")) + n) << 8) | 128


def ifindex(host: Host, name: str) -> int:
    return int(json.loads(host.ip("-j", "link", "show", name))[0]["ifindex"])


def thousand_routes(eth0: int) -> list[KernelRoute]:
    """1000 routes of every kind Myna writes, protocol 12, table main."""
    gw2, gw3 = addr("198.18.0.2"), addr("198.18.0.3")
    gw6a, gw6b = addr("2001:db8::2"), addr("2001:db8::3")
    routes = [KernelRoute(V4, v4_host(i), type=RouteType.BLACKHOLE) for i in range(400)]
    routes += [KernelRoute(V4, v4_host(i), gateway=gw2, oif=eth0) for i in range(400, 600)]
    routes += [
        # krt_tunnel's shape: a next hop no address covers, forced onto the device
        KernelRoute(
            V4, v4_host(i), gateway=addr("198.19.255.1"), oif=eth0, flags=NextHopFlag.ONLINK
        )
        for i in range(600, 700)
    ]
    ecmp = (NextHop(gw2, eth0), NextHop(gw3, eth0, weight=2))
    routes += [KernelRoute(V4, v4_host(i), multipath=ecmp) for i in range(700, 800)]
    routes += [
        KernelRoute(V6, v6_host(i), gateway=gw6a, oif=eth0, priority=1024) for i in range(100)
    ]
    routes += [
        KernelRoute(V6, v6_host(i), type=RouteType.BLACKHOLE, priority=1024)
        for i in range(100, 150)
    ]
    ecmp6 = (NextHop(gw6a, eth0), NextHop(gw6b, eth0))
    routes += [KernelRoute(V6, v6_host(i), priority=1024, multipath=ecmp6) for i in range(150, 200)]
    assert len(routes) == 1000
    return routes


def as_dumped(route: KernelRoute) -> KernelRoute:
    """``route`` as the kernel reports it: an IPv6 blackhole points at ``lo`` (ifindex 1)."""
    if route.family == V6 and route.type == RouteType.BLACKHOLE:
        return route._replace(oif=1)
    return route


async def ours(host: Host, table: int = RouteTable.MAIN) -> list[KernelRoute]:
    routes = await dump_routes(V4, table=table, protocol=BIRD, netns=host.netns)
    return routes + await dump_routes(V6, table=table, protocol=BIRD, netns=host.netns)


def ip_route_count(host: Host, *args: str) -> int:
    count = 0
    for family in ("-4", "-6"):
        count += len(json.loads(host.ip(family, "-j", "route", "show", *args)))
    return count


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", list(AckMode))
async def test_install_dump_and_delete_a_thousand_routes(topology: Topology, mode: AckMode) -> None:
    host = topology.add_host("a")
    routes = thousand_routes(ifindex(host, "eth0"))
    async with RouteWriter(netns=host.netns, ack_mode=mode) as writer:
        result = await writer.apply([RouteChange(RouteOp.NEW, r) for r in routes])
        assert result.ok, result.failures()[:3]
        assert writer.counters["succeeded"] == 1000
        dumped = await ours(host)
        assert sorted(dumped) == sorted(map(as_dumped, routes))
        assert ip_route_count(host, "proto", "12") == 1000  # iproute2 agrees
        # Withdrawals: a DEL needs only what identifies the route (prefix, table, metric);
        # type UNSPEC matches any type, protocol 12 only our routes.
        deletes = [
            RouteChange(RouteOp.DEL, KernelRoute(r.family, r.prefix, type=0, priority=r.priority))
            for r in routes
        ]
        result = await writer.apply(deletes)
        assert result.ok, result.failures()[:3]
        assert await ours(host) == []
        assert ip_route_count(host, "proto", "12") == 0


@pytest.mark.asyncio
async def test_tables_above_255(topology: Topology) -> None:
    host = topology.add_host("a")
    eth0 = ifindex(host, "eth0")
    routes = [
        KernelRoute(V4, v4_host(i), table=100_000, gateway=addr("198.18.0.2"), oif=eth0)
        for i in range(10)
    ] + [KernelRoute(V6, v6_host(i), table=100_000, priority=1024, oif=eth0) for i in range(10)]
    async with RouteWriter(netns=host.netns) as writer:
        assert (await writer.apply([RouteChange(RouteOp.REPLACE, r) for r in routes])).ok
        assert sorted(await ours(host, table=100_000)) == sorted(routes)
        assert await ours(host) == []  # nothing landed in main
        assert ip_route_count(host, "table", "100000") == 20
        assert await dump_routes(V4, table=4242, netns=host.netns) == []  # no such table


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", list(AckMode))
async def test_per_route_errors_are_reported_per_change_and_retried(
    topology: Topology, mode: AckMode
) -> None:
    host = topology.add_host("a")
    eth0 = ifindex(host, "eth0")
    present = KernelRoute(V4, v4_host(1), gateway=addr("198.18.0.2"), oif=eth0)
    far_gateway = addr("198.19.254.1")  # on no link yet: ENETUNREACH
    unreachable = KernelRoute(V4, v4_host(2), gateway=far_gateway)
    unreachable6 = KernelRoute(V6, v6_host(2), gateway=addr("2001:db8:254::1"), priority=1024)
    async with RouteWriter(netns=host.netns, ack_mode=mode) as writer:
        assert (await writer.apply([RouteChange(RouteOp.NEW, present)])).ok
        changes = [
            RouteChange(RouteOp.NEW, KernelRoute(V4, v4_host(10), type=RouteType.BLACKHOLE)),
            RouteChange(RouteOp.NEW, present._replace(gateway=addr("198.18.0.3"))),  # EEXIST
            RouteChange(RouteOp.DEL, KernelRoute(V4, v4_host(3))),  # ESRCH
            RouteChange(RouteOp.NEW, unreachable),  # ENETUNREACH
            RouteChange(RouteOp.NEW, unreachable6),
            RouteChange(RouteOp.NEW, KernelRoute(V4, v4_host(11), type=RouteType.BLACKHOLE)),
        ]
        result = await writer.apply(changes)
        assert result.errors[:4] == [0, errno.EEXIST, errno.ESRCH, errno.ENETUNREACH]
        assert result.errors[4] in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        assert result.errors[5] == 0
        assert "gateway" in result.messages[3]  # the kernel's extended ack
        advice = [f.advice for f in result.failures()]
        assert advice == [Advice.REPLACE, Advice.DONE, Advice.RETRY_LATER, Advice.RETRY_LATER]
        assert writer.counters["EEXIST"] == writer.counters["ESRCH"] == 1
        # Retried when they can succeed: the EEXIST as a REPLACE at once, the unreachable
        # ones once an address puts their gateways on a link.
        assert (await writer.apply(result.resubmittable())).ok
        host.ip("addr", "add", "198.19.254.2/24", "dev", "eth0")
        host.ip("-6", "addr", "add", "2001:db8:254::2/64", "dev", "eth0", "nodad")
        later = [f.change for f in result.failures() if f.advice is Advice.RETRY_LATER]
        retried = await writer.apply(later)
        assert retried.ok, retried.failures()
        dumped = {(r.prefix, r.gateway) for r in await ours(host)}
        assert (v4_host(1), addr("198.18.0.3")) in dumped
        assert (v4_host(2), far_gateway) in dumped
        assert (v6_host(2), addr("2001:db8:254::1")) in dumped


@pytest.mark.asyncio
async def test_monitor_sees_changes_made_from_outside(topology: Topology) -> None:
    host = topology.add_host("a")
    seen: list[tuple[int, KernelRoute | Link | Address]] = []
    arrived = asyncio.Event()
    wanted: set[tuple[int, object]] = set()

    def on_message(header: Header, value: KernelRoute | Link | Address) -> None:
        seen.append((header.type, value))
        key = value.prefix if isinstance(value, KernelRoute) else value
        if (header.type, key) in wanted or (header.type, getattr(value, "name", "")) in wanted:
            arrived.set()

    async def expect(kind: int, key: object, *command: str) -> None:
        arrived.clear()
        wanted.clear()
        wanted.add((kind, key))
        host.ip(*command)
        await asyncio.wait_for(arrived.wait(), DEADLINE)

    async with Monitor(on_message, lambda: None, netns=host.netns) as monitor:
        route = prefix("198.19.77.0/24")
        await expect(
            MessageType.NEWROUTE, route, "route", "add", "198.19.77.0/24", "via", "198.18.0.2",
            "proto", "12",
        )  # fmt: skip
        [added] = [v for _, v in seen if isinstance(v, KernelRoute) and v.prefix == route]
        assert added.protocol == BIRD
        assert added.gateway == addr("198.18.0.2")
        await expect(
            MessageType.NEWROUTE, prefix("2001:db8:77::/64"),
            "-6", "route", "add", "2001:db8:77::/64", "via", "2001:db8::2",
        )  # fmt: skip
        await expect(MessageType.DELROUTE, route, "route", "del", "198.19.77.0/24")
        await expect(MessageType.NEWLINK, "veth9", "link", "add", "veth9", "type", "veth")
        address = Address(V4, ifindex(host, "eth0"), addr("198.19.78.1"), 24, 0x80, 0, "eth0")
        await expect(MessageType.NEWADDR, address, "addr", "add", "198.19.78.1/24", "dev", "eth0")
        assert monitor.counters["overruns"] == 0


@pytest.mark.asyncio
async def test_monitor_overrun_is_reported_and_reading_goes_on(topology: Topology) -> None:
    host = topology.add_host("a")
    overrun = asyncio.Event()
    late_route = asyncio.Event()
    late = prefix("198.19.99.0/24")

    def on_message(header: Header, value: KernelRoute | Link | Address) -> None:
        if isinstance(value, KernelRoute) and value.prefix == late:
            late_route.set()

    # The smallest receive buffer the kernel allows holds a handful of notifications.
    monitor = Monitor(on_message, overrun.set, rcvbuf=1, netns=host.netns)
    async with monitor, RouteWriter(netns=host.netns) as writer:
        routes = [KernelRoute(V4, v4_host(i), type=RouteType.BLACKHOLE) for i in range(1000)]
        assert (await writer.apply([RouteChange(RouteOp.NEW, r) for r in routes])).ok
        await asyncio.wait_for(overrun.wait(), DEADLINE)
        assert monitor.counters["overruns"] >= 1
        host.ip("route", "add", "198.19.99.0/24", "via", "198.18.0.2")
        await asyncio.wait_for(late_route.wait(), DEADLINE)


@pytest.mark.asyncio
async def test_lost_acks_are_reported_and_a_dump_shows_the_truth(topology: Topology) -> None:
    host = topology.add_host("a")
    # A tiny reply buffer and an unlimited window: the kernel must drop acks.
    sock = open_netlink_socket(rcvbuf=1, netns=host.netns)
    routes = [KernelRoute(V4, v4_host(i), type=RouteType.BLACKHOLE) for i in range(1000)]
    async with RouteWriter(sock=sock, ack_mode=AckMode.EVERY, max_in_flight=100_000) as writer:
        result = await asyncio.wait_for(
            writer.apply([RouteChange(RouteOp.NEW, r) for r in routes]), DEADLINE
        )
    assert set(result.errors) == {0, errno.ENOBUFS}
    assert {f.advice for f in result.failures()} == {Advice.RESYNC}
    assert writer.counters["lost"] == result.errors.count(errno.ENOBUFS)
    # The kernel applied every change; only the replies were lost: a resync finds them all.
    assert sorted(await ours(host)) == sorted(routes)


@pytest.mark.asyncio
async def test_links_and_addresses(topology: Topology) -> None:
    host = topology.add_host("a")
    links = {link.name: link for link in await dump_links(netns=host.netns)}
    assert set(links) == {"lo", "eth0"}
    assert links["eth0"].is_up
    assert links["eth0"].has_carrier
    assert links["eth0"].ifindex == ifindex(host, "eth0")
    addresses = await dump_addresses(netns=host.netns)
    found = {(a.family, a.address, a.prefix_len, a.ifindex) for a in addresses}
    eth0 = links["eth0"].ifindex
    assert (V4, addr("198.18.0.1"), 24, eth0) in found
    assert (V6, addr("2001:db8::1"), 64, eth0) in found
    only_v6 = await dump_addresses(V6, netns=host.netns)
    assert {a.family for a in only_v6} == {V6}
    local = await dump_routes(V4, table=RouteTable.LOCAL, netns=host.netns)
    assert KernelRoute(
        V4,
        prefix("198.18.0.1/32"),
        table=RouteTable.LOCAL,
        protocol=RouteProtocol.KERNEL,
        type=RouteType.LOCAL,
        scope=RouteScope.HOST,
        oif=eth0,
    ) in {r._replace(flags=0) for r in local}


@pytest.mark.asyncio
async def test_our_own_new_routes_are_filtered_out_of_the_monitor(topology: Topology) -> None:
    """The BPF filter keeps RTM_NEWROUTE of our protocol out; everything else comes through."""
    host = topology.add_host("a")
    seen: list[tuple[int, int, int]] = []  # (type, prefix, protocol)
    last = asyncio.Event()
    marker = prefix("198.19.90.0/24")

    def on_message(header: Header, value: KernelRoute | Link | Address) -> None:
        if isinstance(value, KernelRoute):
            seen.append((header.type, value.prefix, value.protocol))
            if value.prefix == marker:
                last.set()

    async with Monitor(on_message, lambda: None, netns=host.netns) as monitor:
        drop_own_new_routes(monitor.sock, BIRD)
        ours, felix = prefix("198.19.88.0/24"), prefix("198.19.89.0/24")
        host.ip("route", "add", "198.19.88.0/24", "via", "198.18.0.2", "proto", "12")
        host.ip("route", "add", "blackhole", "198.19.89.0/24", "proto", "80")
        host.ip("route", "del", "198.19.88.0/24", "proto", "12")
        host.ip("route", "add", "blackhole", "198.19.90.0/24", "proto", "80")  # the last one
        await asyncio.wait_for(last.wait(), DEADLINE)
    assert (MessageType.NEWROUTE, ours, BIRD) not in seen  # filtered
    assert (MessageType.NEWROUTE, felix, 80) in seen
    assert (MessageType.DELROUTE, ours, BIRD) in seen  # drift repair still sees deletions
