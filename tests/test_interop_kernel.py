"""Myna writes the routes it learns into the kernel of its network namespace.

Data flow: two BIRD 2 peers in AS 64512 announce /26 blocks to Myna, whose config turns kernel
programming on; the test reads the namespace's routing table with ``ip -j route`` (polling
with deadlines) and checks protocol 12 ("bird"), metric 32, the next hop, an ECMP route with
both peers as next hops when both announce the same block, removal on withdrawal, and that a
route Felix owns (protocol 80) is left alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from testbed import Bird2Peer, Host, Neighbor, Topology
from testbed.myna_peer import MynaPeer
from testbed.topology import wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512


class KernelMyna(MynaPeer):
    """Myna with kernel programming on."""

    def config(self) -> dict[str, Any]:
        """The bed's config plus ``kernel: {program: true}``."""
        return {**super().config(), "kernel": {"program": True}}


def routes(host: Host, *selector: str) -> dict[str, dict[str, Any]]:
    """The host's IPv4 routes matching ``selector``, by destination."""
    output = host.run("ip", "-4", "-j", "route", "show", *selector).stdout
    return {r["dst"]: r for r in json.loads(output or "[]")}


def gateways(route: dict[str, Any]) -> list[str]:
    """The next hops of a route, single or multipath."""
    if "nexthops" in route:
        return sorted(hop["gateway"] for hop in route["nexthops"])
    return [route["gateway"]]


def test_routes_go_into_the_kernel_and_leave_it(topology: Topology) -> None:
    m, b1, b2 = (topology.add_host(n) for n in ("myna", "birda", "birdb"))
    m.run("ip", "route", "add", "blackhole", "198.19.9.0/26", "proto", "80")  # Felix's
    myna = KernelMyna(m, m.ipv4, AS, [Neighbor(b1.ipv4, AS), Neighbor(b2.ipv4, AS)]).start()
    first = Bird2Peer(
        b1, b1.ipv4, AS, [Neighbor(m.ipv4, AS)], ["198.19.2.0/26", "198.19.5.0/26"]
    ).start()
    Bird2Peer(b2, b2.ipv4, AS, [Neighbor(m.ipv4, AS)], ["198.19.5.0/26", "198.19.9.0/26"]).start()
    myna.wait_established(b1.ipv4)
    myna.wait_established(b2.ipv4)
    ours = wait_for(
        lambda: routes(m, "proto", "bird"),
        timeout=30,
        what="Myna's routes in the kernel (proto 12)",
        until=lambda got: (
            "198.19.2.0/26" in got and len(gateways(got.get("198.19.5.0/26", {"gateway": ""}))) == 2
        ),
    )
    assert gateways(ours["198.19.2.0/26"]) == [b1.ipv4]
    assert ours["198.19.2.0/26"]["metric"] == 32
    assert gateways(ours["198.19.5.0/26"]) == sorted([b1.ipv4, b2.ipv4])  # ECMP
    # Felix's blackhole is untouched: still there, still protocol 80.
    felix = routes(m, "proto", "80")
    assert felix["198.19.9.0/26"]["type"] == "blackhole"
    # A withdrawal takes the route out; the ECMP route loses the withdrawing peer's path.
    first.withdraw("198.19.2.0/26", "198.19.5.0/26")
    wait_for(
        lambda: routes(m, "proto", "bird"),
        timeout=30,
        what="the withdrawn routes gone from the kernel",
        until=lambda got: (
            "198.19.2.0/26" not in got
            and gateways(got.get("198.19.5.0/26", {"gateway": ""})) == [b2.ipv4]
        ),
    )
    assert routes(m, "proto", "80")["198.19.9.0/26"]["type"] == "blackhole"


class LearningMyna(MynaPeer):
    """Myna announcing Felix's block blackholes from its kernel."""

    def config(self) -> dict[str, Any]:
        """The bed's config plus ``kernel: {learn: true}``."""
        return {**super().config(), "kernel": {"learn": True}}


def test_blocks_are_learned_from_the_kernel(topology: Topology) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    # One block before Myna starts (found by the first dump), one after (a notification).
    m.run("ip", "route", "add", "blackhole", "198.19.1.0/26", "proto", "80")
    m.run("ip", "route", "add", "blackhole", "198.19.3.0/26", "proto", "static")  # not Felix's
    myna = LearningMyna(m, m.ipv4, AS, [Neighbor(b.ipv4, AS)]).start()
    bird = Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    myna.wait_established(b.ipv4)
    bird.wait_prefixes(m.ipv4, ["198.19.1.0/26"], exact=True)
    m.run("ip", "route", "add", "blackhole", "198.19.2.0/26", "proto", "80")
    bird.wait_prefixes(m.ipv4, ["198.19.1.0/26", "198.19.2.0/26"], exact=True)
    m.run("ip", "route", "del", "blackhole", "198.19.1.0/26", "proto", "80")
    bird.wait_prefixes(m.ipv4, ["198.19.2.0/26"], exact=True)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_restart_without_flaps(topology: Topology, how: str) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    myna = KernelMyna(m, m.ipv4, AS, [Neighbor(b.ipv4, AS)]).start()
    Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)], ["198.19.2.0/26"]).start()
    wait_for(
        lambda: routes(m, "proto", "bird"),
        timeout=30,
        what="the block in the kernel",
        until=lambda got: "198.19.2.0/26" in got,
    )
    monitor = m.workdir / "monitor.log"
    m.popen("ip", "-ts", "monitor", "route", log=monitor)
    if how == "SIGTERM":
        myna.stop()
    else:
        myna.kill()
    assert "198.19.2.0/26" in routes(m, "proto", "bird")  # persist: left in the kernel
    # A route of ours that no peer will announce again: removed after the restart.
    m.run("ip", "route", "add", "198.19.77.0/26", "via", b.ipv4, "proto", "bird", "metric", "32")
    myna.start()
    myna.wait_established(b.ipv4)
    wait_for(
        lambda: routes(m, "proto", "bird"),
        timeout=60,
        what="the leftover route removed after the restart",
        until=lambda got: "198.19.77.0/26" not in got and "198.19.2.0/26" in got,
    )
    # The unchanged block was adopted: never deleted nor written again.
    assert "198.19.2.0/26" not in monitor.read_text(), monitor.read_text()
    assert "198.19.77.0/26" in monitor.read_text()  # the monitor did see the leftover go
