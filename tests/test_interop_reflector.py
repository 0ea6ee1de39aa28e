"""Route reflection (RFC 4456) between Myna and BIRD 2, FRR and GoBGP in network namespaces.

Data flow: each test builds its own topology. (1) Myna reflects between a BIRD 2, an FRR and a
GoBGP client: every client ends up with the other two clients' blocks from Myna, never its own,
and shows the reflected attributes as it decoded them (ORIGINATOR_ID the originating client,
CLUSTER_LIST our cluster id, next hop the originating client's). (2) BIRD 2 reflects between
three Myna clients. (3) Two Myna reflectors with one cluster id serve a BIRD 2, an FRR, a GoBGP
and a Myna client and peer with each other as non-clients; one is SIGKILLed and the clients
keep every route through the other, which goes on reflecting new routes. Every wait has a
deadline (the test bed's ``wait_for``); the topology stops every process by PID and deletes
the namespaces whatever the outcome.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from functools import partial
from typing import Any

import pytest
from testbed import Bird2Peer, FrrPeer, GoBgpPeer, Neighbor, PeerDaemon, State, Topology, wait_for
from testbed.bird import protocol_name
from testbed.myna_peer import MynaPeer

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512
CLUSTER = "198.19.255.1"


def block(n: int) -> str:
    """The /26 that host number ``n`` originates."""
    return f"198.19.{n}.0/26"


class ReflectorMyna(MynaPeer):
    """Myna as a route reflector: the bed's config plus ``cluster_id`` (clients per neighbor)."""

    cluster_id = CLUSTER

    def config(self) -> dict[str, Any]:
        """The bed's config plus the cluster id."""
        return {**super().config(), "cluster_id": self.cluster_id}


class BirdReflector(Bird2Peer):
    """BIRD 2 as a route reflector: ``rr client`` per client neighbor, every route passed on."""

    def _render(self, process: object) -> str:
        lines = ["log stderr all;", f"router id {self.router_id};", "protocol device {}"]
        for neighbor in self.neighbors:
            lines.append(f"protocol bgp {protocol_name(neighbor)} {{")
            lines.extend(f"  {line}" for line in self._session_options(neighbor))
            if neighbor.rr_client:
                lines += ["  rr client;", f"  rr cluster id {CLUSTER};"]
            lines.append("  ipv4 { import all; export all; };")
            lines.append("}")
        return "\n".join(lines) + "\n"


# -- what each client shows of a reflected route ------------------------------------------------


def bird_view(bird: Bird2Peer, prefix: str) -> dict[str, Any]:
    """ORIGINATOR_ID, CLUSTER_LIST and next hop of BIRD's route for ``prefix``."""
    output = bird.birdc("show", "route", "for", prefix, "all")
    originator = re.search(r"BGP\.originator_id:\s*(\S+)", output)
    clusters = re.search(r"BGP\.cluster_list:\s*(.*)", output)
    next_hop = re.search(r"BGP\.next_hop:\s*(\S+)", output)
    return {
        "originator_id": originator.group(1) if originator else None,
        "cluster_list": clusters.group(1).split() if clusters else [],
        "next_hop": next_hop.group(1) if next_hop else None,
    }


def frr_view(frr: FrrPeer, prefix: str) -> dict[str, Any]:
    """The same as FRR shows it (``show bgp ipv4 unicast PREFIX json``, the best path)."""
    data = json.loads(frr.vtysh(f"show bgp ipv4 unicast {prefix} json"))
    path = next(p for p in data["paths"] if p.get("bestpath", {}).get("overall"))
    return {
        "originator_id": path.get("originatorId"),
        "cluster_list": path.get("clusterList", {}).get("list", []),
        "next_hop": path["nexthops"][0]["ip"],
    }


def gobgp_paths(gobgp: GoBgpPeer, prefix: str) -> list[dict[str, Any]]:
    """GoBGP's paths for ``prefix`` in its global RIB."""
    output = gobgp.gobgp("global", "rib", "-a", "ipv4", prefix, "-j")
    data = json.loads(output) if output.strip() else {}
    paths: list[dict[str, Any]] = data.get(prefix, [])
    return paths


def gobgp_learned(gobgp: GoBgpPeer, prefixes: Iterable[str]) -> set[str]:
    """Which of ``prefixes`` GoBGP holds a path for that a neighbor sent (not its own)."""
    return {p for p in prefixes if any("neighbor-ip" in path for path in gobgp_paths(gobgp, p))}


def gobgp_view(gobgp: GoBgpPeer, prefix: str) -> dict[str, Any]:
    """The same as GoBGP shows it: attribute types 9 (ORIGINATOR_ID), 10 and 3 (NEXT_HOP)."""
    (path,) = [p for p in gobgp_paths(gobgp, prefix) if p.get("best", True)][:1]
    attrs = {a["type"]: a for a in path["attrs"]}
    return {
        "originator_id": attrs.get(9, {}).get("value"),
        "cluster_list": attrs.get(10, {}).get("value", []),
        "next_hop": attrs.get(3, {}).get("nexthop"),
    }


def view(peer: PeerDaemon, prefix: str) -> dict[str, Any]:
    """What ``peer`` shows of its route for ``prefix``."""
    if isinstance(peer, Bird2Peer):
        return bird_view(peer, prefix)
    if isinstance(peer, FrrPeer):
        return frr_view(peer, prefix)
    assert isinstance(peer, GoBgpPeer)
    return gobgp_view(peer, prefix)


def number(address: str) -> int:
    return int(ipaddress.IPv4Address(address)) & 0xFF


def wait_routes(
    client: PeerDaemon, reflector: str, expected: Iterable[str], timeout: float = 60
) -> None:
    """Wait until ``client`` holds exactly ``expected`` from ``reflector``."""
    client.wait_prefixes(reflector, expected, timeout=timeout, exact=True)


# -- Myna as the reflector ------------------------------------------------------------------------


def test_myna_reflects_between_bird_frr_and_gobgp_clients(topology: Topology) -> None:
    rr = topology.add_host("rr")
    hosts = {kind: topology.add_host(kind) for kind in ("bird", "frr", "gobgp")}
    myna = ReflectorMyna(
        rr, rr.ipv4, AS, [Neighbor(h.ipv4, AS, rr_client=True) for h in hosts.values()]
    ).start()
    kinds: dict[str, type[PeerDaemon]] = {"bird": Bird2Peer, "frr": FrrPeer, "gobgp": GoBgpPeer}
    clients: dict[str, PeerDaemon] = {
        kind: kinds[kind](
            host,
            host.ipv4,
            AS,
            [Neighbor(rr.ipv4, AS, passive=True)],  # GoBGP is slow to connect: Myna connects
            [block(number(host.ipv4))],
        ).start()
        for kind, host in hosts.items()
    }
    every = {kind: block(number(h.ipv4)) for kind, h in hosts.items()}
    for kind in clients:
        myna.wait_established(hosts[kind].ipv4, timeout=60)
        myna.wait_prefixes(hosts[kind].ipv4, [every[kind]], exact=True)
    gobgp = clients["gobgp"]
    assert isinstance(gobgp, GoBgpPeer)
    for kind, client in clients.items():
        # The other two clients' blocks, not its own: Myna sends it back (one encoding for
        # the whole client group) with its router id as ORIGINATOR_ID, and it ignores it.
        others = {p for k, p in every.items() if k != kind}
        if kind == "gobgp":
            # GoBGP's adj-in lists the paths it rejected too: its RIB tells what it uses.
            wait_for(
                partial(gobgp_learned, gobgp, every.values()),
                timeout=60,
                what="GoBGP to use exactly the other clients' blocks",
                until=others.__eq__,
            )
        else:
            wait_routes(client, rr.ipv4, others)
        for prefix in sorted(others):
            origin = next(h.ipv4 for k, h in hosts.items() if every[k] == prefix)
            seen = wait_for(
                partial(view, client, prefix),
                timeout=30,
                what=f"{kind}'s view of {prefix}",
                until=lambda v: v["originator_id"] is not None,
            )
            assert seen == {"originator_id": origin, "cluster_list": [CLUSTER], "next_hop": origin}
    # A withdrawal at one client reaches the others through the reflector.
    clients["bird"].withdraw(every["bird"])
    wait_routes(clients["frr"], rr.ipv4, [every["gobgp"]])
    wait_for(
        partial(gobgp_learned, gobgp, every.values()),
        timeout=30,
        what="the withdrawn block gone from GoBGP",
        until=lambda got: got == {every["frr"]},
    )


# -- BIRD 2 as the reflector ----------------------------------------------------------------------


def test_bird_reflects_between_myna_clients(topology: Topology) -> None:
    rr = topology.add_host("rr")
    hosts = [topology.add_host(f"myna{i}") for i in range(1, 4)]
    bird = BirdReflector(
        rr, rr.ipv4, AS, [Neighbor(h.ipv4, AS, passive=True, rr_client=True) for h in hosts]
    ).start()
    clients = [
        MynaPeer(h, h.ipv4, AS, [Neighbor(rr.ipv4, AS)], [block(number(h.ipv4))]).start()
        for h in hosts
    ]
    every = [block(number(h.ipv4)) for h in hosts]
    for host, client in zip(hosts, clients, strict=True):
        bird.wait_established(host.ipv4, timeout=60)
        own = block(number(host.ipv4))
        wait_routes(client, rr.ipv4, [p for p in every if p != own])
    # BIRD adds ORIGINATOR_ID and CLUSTER_LIST when it reflects: what it holds from a Myna
    # client carries neither (a client adds nothing of RFC 4456) and the client's next hop.
    received = bird_view(bird, every[0])
    assert received == {"originator_id": None, "cluster_list": [], "next_hop": hosts[0].ipv4}
    # A Myna client that stops (Cease, no graceful restart): its block leaves the others.
    clients[0].stop()
    wait_routes(clients[1], rr.ipv4, [every[2]])
    wait_routes(clients[2], rr.ipv4, [every[1]])


# -- two Myna reflectors, one cluster -------------------------------------------------------------


def test_two_myna_reflectors_one_cluster_survive_a_sigkill(topology: Topology) -> None:
    rr_hosts = [topology.add_host("rra"), topology.add_host("rrb")]
    kinds: dict[str, type[PeerDaemon]] = {
        "bird": Bird2Peer,
        "frr": FrrPeer,
        "gobgp": GoBgpPeer,
        "myna": MynaPeer,
    }
    hosts = {kind: topology.add_host(kind) for kind in kinds}
    reflectors = []
    for i, host in enumerate(rr_hosts):
        other = rr_hosts[1 - i]
        neighbors = [Neighbor(h.ipv4, AS, rr_client=True) for h in hosts.values()]
        # The reflectors peer with each other as non-clients; one of them waits.
        neighbors.append(Neighbor(other.ipv4, AS, passive=i == 1))
        reflectors.append(ReflectorMyna(host, host.ipv4, AS, neighbors).start())
    clients = {
        kind: kinds[kind](
            host,
            host.ipv4,
            AS,
            [Neighbor(h.ipv4, AS, passive=True) for h in rr_hosts],
            [block(number(host.ipv4))],
        ).start()
        for kind, host in hosts.items()
    }
    every = {kind: block(number(h.ipv4)) for kind, h in hosts.items()}

    owned = {kind: {prefix} for kind, prefix in every.items()}

    def wait_full_tables(via: list[str]) -> None:
        for kind, client in clients.items():
            others = [p for k, prefixes in owned.items() if k != kind for p in prefixes]
            for address in via:
                if kind == "gobgp":
                    # GoBGP's adj-in also lists the route it rejected (its own, reflected back).
                    client.wait_prefixes(address, others, timeout=60)
                else:
                    wait_routes(client, address, others)

    for rr in reflectors:
        for host in hosts.values():
            rr.wait_established(host.ipv4, timeout=60)
    reflectors[0].wait_established(rr_hosts[1].ipv4, timeout=60)
    wait_full_tables([h.ipv4 for h in rr_hosts])
    # Each reflector drops what the other reflects to it: our cluster id is in its CLUSTER_LIST.
    for i, rr in enumerate(reflectors):
        assert rr.received_prefixes(rr_hosts[1 - i].ipv4) == frozenset()
        assert (
            "CLUSTER_LIST holds our cluster id 198.19.255.1"
            in (rr.workdir / "myna.log").read_text()
        )
    # The Myna client never holds its own block from a reflector: a batch that is only its
    # routes is not sent back to it, and one mixing sources comes back with its router id as
    # ORIGINATOR_ID, which it ignores (RFC 4456 8).
    for rr in rr_hosts:
        assert every["myna"] not in clients["myna"].received_prefixes(rr.ipv4)
    # BIRD, FRR and GoBGP see one reflection, by our cluster, from the originating client.
    for kind in ("bird", "frr", "gobgp"):
        seen = view(clients[kind], every["myna"])
        assert seen["originator_id"] == hosts["myna"].ipv4
        assert seen["cluster_list"] == [CLUSTER]

    reflectors[0].kill()
    for kind, client in clients.items():
        client.wait_not_established(rr_hosts[0].ipv4, timeout=30)
        assert client.session_state(rr_hosts[1].ipv4) == State.ESTABLISHED, kind
    # Every client keeps every route, through the reflector that is left ...
    wait_full_tables([rr_hosts[1].ipv4])
    # ... which still reflects what changes.
    clients["bird"].announce(block(50))
    owned["bird"].add(block(50))
    wait_full_tables([rr_hosts[1].ipv4])
    # The killed reflector comes back and serves the clients again.
    reflectors[0].start()
    for host in hosts.values():
        reflectors[0].wait_established(host.ipv4, timeout=60)
    wait_full_tables([h.ipv4 for h in rr_hosts])


class TopologyMyna(MynaPeer):
    """Myna whose peers come from Calico's node list (``mesh.nodes``), not from ``peers``."""

    nodes: list[Any]

    def config(self) -> dict[str, Any]:
        """The bed's config with the peers derived from the node list."""
        config = {**super().config(), "mesh": {"enabled": False, "nodes": self.nodes}}
        config.pop("peers")
        config["ipv4_address"] = f"{self.host.ipv4}/24"
        return config


def test_clients_of_two_clusters_reach_each_other(topology: Topology) -> None:
    """Calico's rules from the node list: two reflectors of different clusters treat each
    other as clients; the clients of one cluster get the other's routes through both."""
    rr_a, rr_b = topology.add_host("rra"), topology.add_host("rrb")
    h1, h2, h3 = (topology.add_host(n) for n in ("ha", "hb", "hc"))
    nodes: list[Any] = [
        {"address": rr_a.ipv4, "cluster_id": "198.19.255.1"},
        {"address": rr_b.ipv4, "cluster_id": "198.19.255.2"},
        h1.ipv4,
        h2.ipv4,
        h3.ipv4,
    ]
    daemons = {}
    for host in (rr_a, rr_b, h1, h2, h3):
        others = [Neighbor(n if isinstance(n, str) else n["address"], AS) for n in nodes]
        daemon = TopologyMyna(
            host,
            host.ipv4,
            AS,
            [n for n in others if n.address != host.ipv4],
            [] if host in (rr_a, rr_b) else [block(number(host.ipv4))],
        )
        daemon.nodes = nodes
        daemons[host.name] = daemon.start()
    # Every host peers with both reflectors; the reflectors with everyone.
    for host in (h1, h2, h3):
        for rr in (rr_a, rr_b):
            daemons[host.name].wait_established(rr.ipv4, timeout=60)
    daemons["rra"].wait_established(rr_b.ipv4, timeout=60)
    blocks = {h.name: block(number(h.ipv4)) for h in (h1, h2, h3)}
    for host in (h1, h2, h3):
        others = [b for name, b in blocks.items() if name != host.name]
        for rr in (rr_a, rr_b):
            daemons[host.name].wait_prefixes(rr.ipv4, others, exact=True, timeout=60)
    # Each reflector takes the other reflector's reflections: they are of another cluster.
    assert daemons["rra"].received_prefixes(rr_b.ipv4) == frozenset(blocks.values())
