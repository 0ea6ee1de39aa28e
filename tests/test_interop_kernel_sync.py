"""Kernel sync in namespaces: route kinds of Calico's pools, drift repair, recursive next hops,
ENOBUFS resync and devices going down, each against a real kernel.

Data flow: Myna runs in its own namespace with kernel programming and/or learning on, facing
BIRD 2 or ExaBGP (ExaBGP when a route needs a next hop other than the speaker's own). The tests
change the namespace's kernel behind Myna's back with ``ip`` and read the result back with
``ip -j route`` or from the peer, always polling with a deadline.

This machine's kernel has no ipip module (nor dummy devices), so where ``tunl0`` cannot be made
as an IPIP device a veth named ``tunl0`` stands in: what is checked is the route Myna writes
(device tunl0, the BGP next hop as gateway, onlink), not the encapsulation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from testbed import Bird2Peer, ExaBgpPeer, Host, Neighbor, Topology
from testbed.myna_peer import MynaPeer
from testbed.topology import wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512


class KernelMyna(MynaPeer):
    """Myna with extra top-level config (``extra``) merged into the bed's."""

    extra: dict[str, Any]

    def config(self) -> dict[str, Any]:
        """The bed's config plus ``extra``."""
        return {**super().config(), **self.extra}


def myna(host: Host, peers: list[Neighbor], **extra: Any) -> KernelMyna:
    daemon = KernelMyna(host, host.ipv4, AS, peers)
    daemon.extra = extra
    return daemon.start()


def routes(host: Host, *selector: str) -> dict[str, dict[str, Any]]:
    """The host's IPv4 routes matching ``selector``, by destination."""
    output = host.run("ip", "-4", "-j", "route", "show", *selector).stdout
    return {r["dst"]: r for r in json.loads(output or "[]")}


def status(daemon: MynaPeer) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(daemon.status_path.read_text())
    return data


def make_tunl0(host: Host) -> None:
    """tunl0 as IPIP when the kernel can; otherwise a veth of that name (see the docstring)."""
    if host.run("ip", "link", "show", "tunl0", check=False).returncode != 0:
        made = host.run("ip", "link", "add", "tunl0", "type", "ipip", check=False)
        if made.returncode != 0:
            host.run("ip", "link", "add", "tunl0", "type", "veth", "peer", "name", "tunl0p")
            host.run("ip", "link", "set", "tunl0p", "up")
    host.run("ip", "link", "set", "tunl0", "up")


def test_calico_route_kinds(topology: Topology) -> None:
    """IPIP Always via tunl0, CrossSubnet direct or via tunl0, VXLAN and services left out."""
    m, x = topology.add_host("myna"), topology.add_host("exa")
    pools = [
        {"cidr": "198.19.0.0/18", "ipip_mode": "Always"},
        {"cidr": "198.19.64.0/18", "ipip_mode": "CrossSubnet"},
        {"cidr": "198.19.128.0/18", "vxlan_mode": "Always"},
    ]
    daemon = myna(
        m,
        [Neighbor(x.ipv4, AS)],
        kernel={"program": True, "recursive_next_hops": False},
        ip_pools=pools,
        service_cidrs=["198.19.192.0/24"],
        ipv4_address=m.ipv4_interface,
    )
    exa = ExaBgpPeer(x, x.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    daemon.wait_established(x.ipv4)
    off_subnet = "198.18.1.5"  # another node's address, outside this node's 198.18.0.0/24
    for prefix, next_hop in [
        ("198.19.1.0/26", x.ipv4),  # IPIP Always
        ("198.19.65.0/26", x.ipv4),  # CrossSubnet, next hop on our subnet: direct
        ("198.19.66.0/26", off_subnet),  # CrossSubnet, next hop elsewhere: tunnel
        ("198.19.129.0/26", x.ipv4),  # VXLAN: Felix's
        ("198.19.192.0/26", x.ipv4),  # a service range: advertised, never programmed
        ("198.19.200.0/26", x.ipv4),  # in no pool: plain
    ]:
        exa.command(f"neighbor {m.ipv4} announce route {prefix} next-hop {next_hop}")
    wait_for(
        lambda: daemon.received_prefixes(x.ipv4),
        timeout=30,
        what="Myna holding the six routes",
        until=lambda got: len(got) == 6,
    )
    # tunl0 appears only now: the IPIP routes waited for it and go in when it comes.
    assert "198.19.1.0/26" not in routes(m, "proto", "bird")
    make_tunl0(m)
    got = wait_for(
        lambda: routes(m, "proto", "bird"),
        timeout=30,
        what="the IPIP routes written once tunl0 exists",
        until=lambda got: {"198.19.1.0/26", "198.19.66.0/26"} <= got.keys(),
    )
    assert got.keys() == {"198.19.1.0/26", "198.19.65.0/26", "198.19.66.0/26", "198.19.200.0/26"}
    assert got["198.19.1.0/26"]["dev"] == "tunl0"
    assert got["198.19.1.0/26"]["gateway"] == x.ipv4
    assert "onlink" in got["198.19.1.0/26"]["flags"]
    assert (got["198.19.65.0/26"]["dev"], got["198.19.65.0/26"]["gateway"]) == ("eth0", x.ipv4)
    assert got["198.19.66.0/26"]["dev"] == "tunl0"
    assert got["198.19.66.0/26"]["gateway"] == off_subnet
    assert got["198.19.200.0/26"]["dev"] == "eth0"


def test_drift_is_repaired_and_nothing_else_touched(topology: Topology) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    m.run("ip", "route", "add", "198.19.50.0/24", "via", b.ipv4, "proto", "static")
    m.run("ip", "route", "add", "blackhole", "198.19.9.0/26", "proto", "80")  # Felix's
    daemon = myna(m, [Neighbor(b.ipv4, AS)], kernel={"program": True, "reconcile_interval": 1})
    Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)], ["198.19.2.0/26", "198.19.3.0/26"]).start()
    daemon.wait_established(b.ipv4)

    def both_right(got: dict[str, dict[str, Any]]) -> bool:
        return all(
            got.get(p, {}).get("gateway") == b.ipv4 for p in ("198.19.2.0/26", "198.19.3.0/26")
        )

    wait_for(lambda: routes(m, "proto", "bird"), 30, "the blocks in the kernel", until=both_right)
    wait_for(
        lambda: status(daemon)["selection_deferred"],
        30,
        "selection deferral over",
        until=lambda d: not d,
    )
    # Deleted by someone: put back from the DELROUTE notification.
    m.run("ip", "route", "del", "198.19.2.0/26", "proto", "bird")
    wait_for(lambda: routes(m, "proto", "bird"), 10, "the deleted route back", until=both_right)
    # Changed by someone (no notification tells us it was ours): the reconcile repairs it.
    m.run("ip", "route", "replace", "198.19.3.0/26", "via", "198.18.0.200", "proto", "bird",
          "metric", "32")  # fmt: skip
    wait_for(lambda: routes(m, "proto", "bird"), 10, "the changed route repaired", until=both_right)
    # A stray route of our protocol that nothing selected: removed.
    m.run("ip", "route", "add", "198.19.60.0/26", "via", b.ipv4, "proto", "bird", "metric", "32")
    wait_for(
        lambda: routes(m, "proto", "bird"),
        10,
        "the stray route of ours removed",
        until=lambda got: "198.19.60.0/26" not in got,
    )
    assert routes(m, "proto", "static")["198.19.50.0/24"]["gateway"] == b.ipv4
    assert routes(m, "proto", "80")["198.19.9.0/26"]["type"] == "blackhole"
    wait_for(
        lambda: status(daemon)["kernel"],
        10,
        "the status file counting three repairs",
        until=lambda k: k["repairs"] >= 3,
    )


def test_next_hops_resolve_recursively_through_the_kernel(topology: Topology) -> None:
    m, x, gw = topology.add_host("myna"), topology.add_host("exa"), topology.add_host("gw")
    daemon = myna(m, [Neighbor(x.ipv4, AS)], kernel={"program": True})
    exa = ExaBgpPeer(x, x.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    daemon.wait_established(x.ipv4)
    m.run("ip", "route", "add", "198.18.1.0/24", "via", gw.ipv4, "proto", "static")
    exa.command(f"neighbor {m.ipv4} announce route 198.19.5.0/26 next-hop 198.18.1.5")
    exa.command(f"neighbor {m.ipv4} announce route 198.19.6.0/26 next-hop 198.18.2.5")
    got = wait_for(
        lambda: routes(m, "proto", "bird"),
        30,
        "the multihop route via the static route's gateway",
        until=lambda got: "198.19.5.0/26" in got,
    )
    assert got["198.19.5.0/26"]["gateway"] == gw.ipv4
    assert "198.19.6.0/26" not in got  # no kernel route to 198.18.2.5 yet: waits
    # The covering route moves to another gateway; a route to the other next hop appears.
    m.run("ip", "route", "replace", "198.18.1.0/24", "via", x.ipv4, "proto", "static")
    m.run("ip", "route", "add", "198.18.2.0/24", "via", gw.ipv4, "proto", "static")
    got = wait_for(
        lambda: routes(m, "proto", "bird"),
        30,
        "both routes following the kernel",
        until=lambda got: (
            got.get("198.19.5.0/26", {}).get("gateway") == x.ipv4 and "198.19.6.0/26" in got
        ),
    )
    assert got["198.19.6.0/26"]["gateway"] == gw.ipv4


def test_an_overrun_notification_socket_is_resynced(topology: Topology) -> None:
    """ENOBUFS forced with a tiny receive buffer: every block still reaches the peer."""
    m, b = topology.add_host("myna"), topology.add_host("bird")
    daemon = myna(m, [Neighbor(b.ipv4, AS)], kernel={"learn": True, "monitor_buffer": 1024})
    bird = Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    daemon.wait_established(b.ipv4)
    # /28 blocks (Calico's blockSize may be 20-32): 4,000 fit in 198.19.0.0/16.
    blocks = [f"198.19.{n // 16}.{n % 16 * 16}/28" for n in range(4000)]
    batch = "".join(f"route add blackhole {p} proto 80\n" for p in blocks)
    m.run("ip", "-batch", "-", stdin=batch)
    bird.wait_prefixes(m.ipv4, blocks, exact=True, timeout=60)
    gone = "".join(f"route del blackhole {p} proto 80\n" for p in blocks[:3000])
    m.run("ip", "-batch", "-", stdin=gone)
    bird.wait_prefixes(m.ipv4, blocks[3000:], exact=True, timeout=60)
    kernel = wait_for(
        lambda: status(daemon)["kernel"],
        10,
        "the status file counting the overruns",
        until=lambda k: k.get("overruns", 0) >= 1 and k["learned"] == 1000,
    )
    assert kernel["resyncs"] >= 1


def test_a_device_going_down_withdraws_what_was_learned_through_it(topology: Topology) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    m.run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    m.run("ip", "addr", "add", "198.18.50.1/24", "dev", "eth1")
    m.run("ip", "link", "set", "eth1", "up")
    m.run("ip", "link", "set", "eth1p", "up")
    m.run("ip", "route", "add", "198.19.40.0/26", "via", "198.18.50.2", "proto", "static")
    m.run("ip", "route", "add", "blackhole", "198.19.1.0/26", "proto", "80")
    m.run("ip", "route", "add", "198.19.41.0/26", "via", b.ipv4, "proto", "static")  # eth0
    learn = {
        "protocols": [80, "static"],
        "types": ["blackhole", "unicast"],
        "interfaces": ["eth1"],
        "prefixes": ["198.19.0.0/16"],
    }
    daemon = myna(m, [Neighbor(b.ipv4, AS)], kernel={"learn": True, "learn_filter": learn})
    bird = Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    daemon.wait_established(b.ipv4)
    both = ["198.19.1.0/26", "198.19.40.0/26"]
    bird.wait_prefixes(m.ipv4, both, exact=True)  # not 198.19.41.0/26: through eth0
    m.run("ip", "link", "set", "eth1p", "down")  # eth1 loses its carrier; the route stays
    bird.wait_prefixes(m.ipv4, ["198.19.1.0/26"], exact=True)
    assert "198.19.40.0/26" in routes(m)
    m.run("ip", "link", "set", "eth1p", "up")
    bird.wait_prefixes(m.ipv4, both, exact=True)
    m.run("ip", "link", "set", "eth1", "down")  # the kernel flushes the route, silently
    bird.wait_prefixes(m.ipv4, ["198.19.1.0/26"], exact=True)
