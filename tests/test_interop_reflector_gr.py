"""Myna route reflectors (a pair of one cluster, or one alone) SIGKILLed and restarted: the
clients' kernels see no flap.

Data flow: three Calico-like hosts run Myna as reflector clients with kernel sync on (each
learns its Felix-style blackhole block from its kernel and programs the others' blocks with
protocol 12); two Myna reflectors with one cluster id and kernel programming off serve them.
``ip monitor route`` records every route change in each client's namespace. One reflector is
SIGKILLed: its clients notice at once (the kernel closes its sockets) and keep its routes as
stale (graceful restart); with a pair they also hold the same route through the other
reflector. It comes back and sends the routes again. Through all of it no client's kernel
deletes or rewrites a block route. Every wait has a deadline; the topology stops every
process by PID and deletes the namespaces whatever the outcome.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from testbed import Host, Neighbor, Topology, wait_for
from testbed.myna_peer import MynaPeer

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512
CLUSTER = "198.19.255.1"


class Reflector(MynaPeer):
    """Myna as a reflector without kernel programming."""

    def config(self) -> dict[str, Any]:
        """The bed's config plus the cluster id."""
        return {**super().config(), "cluster_id": CLUSTER}


class Client(MynaPeer):
    """A Calico host: blocks learned from its kernel, the others' blocks programmed."""

    def config(self) -> dict[str, Any]:
        """The bed's config plus kernel sync."""
        return {**super().config(), "kernel": {"program": True, "learn": True}}


def block(host: Host) -> str:
    return f"198.19.{host.number}.0/26"


def bird_routes(host: Host) -> dict[str, str]:
    """The host's protocol-12 routes: prefix -> gateway."""
    output = host.run("ip", "-4", "-j", "route", "show", "proto", "bird").stdout
    return {r["dst"]: r.get("gateway", "") for r in json.loads(output or "[]")}


@pytest.mark.parametrize("count", [2, 1], ids=["pair", "alone"])
def test_a_reflector_killed_and_back_flaps_no_client_route(topology: Topology, count: int) -> None:
    """With a pair, the other reflector carries the routes; alone, graceful restart keeps them
    (stale) in the clients' RIBs and kernels until the reflector is back."""
    rr_hosts = [topology.add_host("rra"), topology.add_host("rrb")][:count]
    hosts = [topology.add_host(name) for name in ("ha", "hb", "hc")]
    reflectors = []
    for i, rr in enumerate(rr_hosts):
        neighbors = [Neighbor(h.ipv4, AS, rr_client=True) for h in hosts]
        if count == 2:
            neighbors.append(Neighbor(rr_hosts[1 - i].ipv4, AS, passive=i == 1))
        reflectors.append(Reflector(rr, rr.ipv4, AS, neighbors).start())
    for host in hosts:
        host.run("ip", "route", "add", "blackhole", block(host), "proto", "80")
    clients = [
        Client(host, host.ipv4, AS, [Neighbor(rr.ipv4, AS, passive=True) for rr in rr_hosts])
        .start()
        for host in hosts
    ]  # fmt: skip

    def converged(host: Host) -> bool:
        want = {block(h): h.ipv4 for h in hosts if h is not host}
        return bird_routes(host) == want

    for host in hosts:
        wait_for(lambda h=host: converged(h), 60, f"{host.name}'s kernel holding every block")
    for client in clients:
        for rr in rr_hosts:
            client.wait_established(rr.ipv4, timeout=60)
    monitors = {}
    for host in hosts:
        monitors[host.name] = host.workdir / "monitor.log"
        host.popen("ip", "-ts", "monitor", "route", log=monitors[host.name])

    reflectors[0].kill()
    for client in clients:
        client.wait_not_established(rr_hosts[0].ipv4, timeout=30)
    for host in hosts:
        assert converged(host), bird_routes(host)
    reflectors[0].start()
    for client in clients:
        client.wait_established(rr_hosts[0].ipv4, timeout=60)
    # The restarted reflector's routes are back at every client (its End-of-RIB swept nothing).
    for client, host in zip(clients, hosts, strict=True):
        others = [block(h) for h in hosts if h is not host]
        client.wait_prefixes(rr_hosts[0].ipv4, others, exact=True, timeout=60)
    # A change after all that still gets through; the monitors show it, so they were running.
    hosts[0].run("ip", "route", "add", "blackhole", "198.19.99.0/26", "proto", "80")
    wait_for(lambda: "198.19.99.0/26" in bird_routes(hosts[1]), 30, "a new block through the pair")
    wait_for(lambda: "198.19.99.0/26" in monitors["hb"].read_text(), 10, "hb's monitor seeing it")
    for host in hosts:
        seen = monitors[host.name].read_text()
        for other in hosts:
            assert block(other) not in seen, (
                f"{host.name}'s kernel saw {block(other)} change:\n{seen}"
            )
