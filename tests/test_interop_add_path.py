"""ADD-PATH and ECMP with BIRD 2 (Calico runs BIRD with ``add paths on`` and ``merge paths on``).

Data flow: two BIRD 2 "origin" hosts in their own ASes announce the same /26 to a BIRD 2 hub
(iBGP with Myna, ``add paths on``) and to Myna directly. The hub sends Myna both paths under
ADD-PATH; Myna, holding two equal eBGP paths itself, makes them an ECMP set and sends both
paths back to the hub under ADD-PATH, which then holds two routes from Myna with the two next
hops.
"""

from __future__ import annotations

import re

import pytest
from testbed import Bird2Peer, Neighbor, Topology
from testbed.bird import protocol_name
from testbed.myna_peer import MynaPeer
from testbed.topology import wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512
BLOCK = "198.19.50.0/26"


class AddPathHub(Bird2Peer):
    """BIRD 2 that passes every BGP route on, with ADD-PATH both ways, next hops kept."""

    def _render(self, process: object) -> str:
        lines = ["log stderr all;", f"router id {self.router_id};", "protocol device {}"]
        for neighbor in self.neighbors:
            lines.append(f"protocol bgp {protocol_name(neighbor)} {{")
            lines.extend(f"  {line}" for line in self._session_options(neighbor))
            lines.append("  ipv4 { import all; export all; add paths on; next hop keep; };")
            lines.append("}")
        return "\n".join(lines) + "\n"


def test_add_path_both_ways_and_ecmp(topology: Topology) -> None:
    m, hub, x1, x2 = (topology.add_host(n) for n in ("myna", "hub", "xa", "xb"))
    myna = MynaPeer(
        m,
        m.ipv4,
        AS,
        [Neighbor(hub.ipv4, AS), Neighbor(x1.ipv4, 65001), Neighbor(x2.ipv4, 65002)],
    ).start()
    bird = AddPathHub(
        hub,
        hub.ipv4,
        AS,
        [Neighbor(m.ipv4, AS), Neighbor(x1.ipv4, 65001), Neighbor(x2.ipv4, 65002)],
    ).start()
    for host, asn in ((x1, 65001), (x2, 65002)):
        Bird2Peer(
            host, host.ipv4, asn, [Neighbor(hub.ipv4, AS), Neighbor(m.ipv4, AS)], [BLOCK]
        ).start()
    for address in (hub.ipv4, x1.ipv4, x2.ipv4):
        myna.wait_established(address)
    # The hub's two paths reach Myna as two ADD-PATH routes of one prefix.
    wait_for(
        lambda: myna._peer(hub.ipv4)["route_count"],
        timeout=30,
        what="two paths for the block from the hub (ADD-PATH receive)",
        until=lambda count: count == 2,
    )
    # Myna's own two eBGP paths are equal up to the tie-breakers: one ECMP set.
    ecmp = wait_for(
        lambda: myna._status()["ecmp"].get(BLOCK),
        timeout=30,
        what="an ECMP set of two for the block in Myna's Loc-RIB",
        until=lambda hops: hops is not None and len(hops) == 2,
    )
    assert sorted(ecmp) == sorted([x1.ipv4, x2.ipv4])

    # ... and both paths go to the hub under ADD-PATH, next hops kept (iBGP).
    def hops_from_myna() -> list[str]:
        output = bird.birdc("show", "route", "protocol", protocol_name(bird.neighbor(m.ipv4)))
        return sorted(re.findall(r"via (\S+) on", output))

    hops = wait_for(
        hops_from_myna,
        timeout=30,
        what="two routes from Myna in the hub (ADD-PATH send)",
        until=lambda hops: len(hops) == 2,
    )
    assert hops == sorted([x1.ipv4, x2.ipv4])
