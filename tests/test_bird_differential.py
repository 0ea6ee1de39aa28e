"""Differential test: stock BIRD 1.6 and Myna run the same Calico-rendered BIRD file.

What runs: for each case below, a file of Calico's confd corpus (``bird.cfg`` or
``bird6.cfg`` with its includes, ``/work/shared/calico-confd-corpus``) with every address moved
into 198.18.0.0/15 and 2001:db8::/32 (``bird_differential_plan``: by translation, so lengths
and containment stay), run twice at once, each in namespaces of its own
(``bird_differential_harness``): by BIRD 1.6.8 (``bird -c FILE -s SOCKET -d``, ``bird6`` for
IPv6; the test bed's unpacked .deb) and by Myna (``myna bird -c FILE -s SOCKET -d``). Both
nodes get the same link, the same kernel routes before they start (Felix's blackholes for
the node's blocks and workload routes in them, protocol 80 and boot, with the metrics that
decide Calico's ``krt_metric < 1024`` rule; routes via ``tunl0`` onlink, ``vxlan.calico``, a
gateway, unreachable ones, inside and outside the pools the file names), and the same
neighbours: ExaBGP plays every ``protocol bgp`` of the file (its address, AS, port, passive
side, TCP-MD5 password, TTL 255 for TTL security), sends the same routes (iBGP and eBGP
attribute sets: AS paths, MED, LOCAL_PREF, communities, large communities, ORIGINATOR_ID,
CLUSTER_LIST; next hops on the link, behind the gateway and unreachable; prefixes every peer
sends alike, for ECMP, or differently, for the decision process; loops by AS path,
ORIGINATOR_ID and CLUSTER_LIST) and records, parsed, everything the node announces to it.

Once both have settled, everything Myna did must be what BIRD did: per neighbour every route
announced (prefix and every attribute, ADD-PATH included: each path of a prefix, without the
path identifiers, which are each daemon's own numbering) and whether End-of-RIB came; the
node's kernel table (every route but the kernel's own: prefix, type, next hop, device,
metric, protocol, flags such as onlink, nexthops of multipath routes); and ``show
protocols all`` as BIRD 1.6's ``birdc`` reads it from each daemon's socket (name, protocol
type, table, state, info; description, preference, filters, route counts, BGP state,
neighbour address, AS and id, capabilities, session, source address; not the times, timers
and update counters). Expected values are BIRD's, always. Then a round of changes reaches
both (``peer_changes``, ``kernel_changes``: a new best path with another kernel metric, a
multipath route losing a path, withdrawals, a workload route and a gateway route leaving the
kernel, a new Felix block) and the comparison runs again once both settled anew. A case takes
about 10 s (both daemons at once, two phases); the module about 2.5 minutes on 2 cores.

``test_harness_is_deterministic`` runs BIRD on both sides of the same scenario: the
comparison must find nothing, so every difference the other tests report is Myna's.

Cases (``CASES``): the node-to-node mesh (IPIP off and always, with communities and a
non-default port, IPv6, IPv6 with TCP-MD5), explicit peering (route reflector with clients and
an eBGP peer with next hop keep behind a gateway, per-peer local AS with ``allow local as``,
IPv6 global peers), next hop mode, passwords, TTL security, BGPFilters (AS path and priority,
communities and operations, IPv6 prefix and interface rules). Left out: the file that sets
``krt_tunnel`` (``cluster_routes/enabled/bird.cfg``: only Calico's fork of BIRD has it, stock
BIRD 1.6 refuses the file), files that name one neighbour twice on two ports
(``explicit_peering/global``: ExaBGP cannot play both), and IPv4 files whose named prefixes
exceed what 198.18.0.0/15 holds by translation (most BGPFilter files: four to twelve /16s
besides the blocks).

What BIRD does with a route whose next hop resolves nowhere (an unreachable kernel route,
counted as preferred) is left out of the comparison where Myna does nothing, on purpose
(``without_unresolvable``); nothing else is. What these cases found Myna doing otherwise is
fixed: a kernel route left at an old metric, LOCAL_PREF 100 on eBGP routes, show protocols'
caps and Session line, the interior cost of a next hop behind a gateway (BIRD's
IGP_METRIC_UNKNOWN), a route sent to the neighbour that is its next hop (BIRD's
``bgp_get_bucket`` refuses it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from bird_differential_harness import (
    BIRD,
    MYNA_DAEMON,
    Daemon,
    Observation,
    Settled,
    Side,
    adj_rib_in,
    differences,
    kernel_table,
    protocol_rows,
    settle,
    summary,
)
from bird_differential_plan import (
    V4_SPACE,
    V6_SPACE,
    Network,
    PeerRoute,
    Scenario,
    TranslationMap,
    kernel_changes,
    kernel_routes,
    literal_networks,
    load_scenario,
    overlaps,
    peer_changes,
    peer_routes,
    subnet_of,
)
from testbed.requirements import require_interop
from testbed.topology import Topology

REPORT_LINES = 60


@dataclass(frozen=True)
class Case:
    """One corpus file and what it covers."""

    relative: str
    covers: str


CASES = (
    Case("mesh/ipip-off/bird.cfg", "mesh, passive sessions, blocks, ECMP, add paths"),
    Case("mesh/ipip-always/bird.cfg", "mesh, IPIP pool routes left to Felix"),
    Case("mesh/communities/bird.cfg", "mesh on port 177, communities added on export"),
    Case("mesh/ipip-off/bird6.cfg", "IPv6 mesh, one active and one passive session"),
    Case("mesh/password/step3/bird6.cfg", "IPv6 mesh with TCP-MD5"),
    Case("explicit_peering/keepnexthop/bird.cfg", "route reflector, eBGP next hop keep"),
    Case("explicit_peering/local-as/bird.cfg", "per-peer local AS, allow local as"),
    Case("explicit_peering/global-ipv6/bird6.cfg", "IPv6 global peers"),
    Case("next_hop_mode/global_peers/bird.cfg", "next hop keep and self, remote peers"),
    Case("password/step4/bird.cfg", "TCP-MD5 passwords, a peer without, a remote next hop"),
    Case("ttl_security/explicit_node/bird.cfg", "TTL security (GTSM), eBGP"),
    Case("bgpfilter/as_path_and_priority/bird.cfg", "BGPFilter: AS path, priority"),
    Case("bgpfilter/communities_and_operations/bird.cfg", "BGPFilter: communities, operations"),
    Case("bgpfilter/single_filter/global_peer/bird6.cfg", "BGPFilter: IPv6 prefix, interface"),
)  # fmt: skip
DETERMINISM_CASE = "explicit_peering/keepnexthop/bird.cfg"


def _params() -> list[object]:
    return [pytest.param(case.relative, id=case.relative) for case in CASES]


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Topology]:
    require_interop()
    with Topology(tmp_path) as topology:
        yield topology


@dataclass
class Run:
    """Both daemons on one scenario: what each showed per phase, and how long it all took."""

    scenario: Scenario
    routes: dict[str, list[PeerRoute]]
    phases: list[tuple[str, dict[str, Settled]]]
    seconds: float


def run_both(topology: Topology, relative: str, first: Daemon, second: Daemon) -> Run:
    """Both daemons on the scenario at once, settled at the start and after the changes."""
    started = time.monotonic()
    scenario = load_scenario(relative)
    routes = peer_routes(scenario)
    sides = [
        Side(topology, "first", scenario, first, routes),
        Side(topology, "second", scenario, second, routes),
    ]
    for side in sides:
        side.build()
    for side in sides:
        side.start()
    phases = [("at the start", settle(sides))]
    commands = peer_changes(scenario, routes)
    kernel = [line for _, line in kernel_changes(scenario)]
    for side in sides:
        side.apply_changes(commands, kernel)
    phases.append(("after the changes", settle(sides)))
    return Run(scenario, routes, phases, time.monotonic() - started)


def _bird_worked(run: Run) -> None:
    """BIRD's side settled in every phase: otherwise the bed, not Myna, is broken."""
    for phase, settled in run.phases:
        bird = settled["first"]
        assert bird.problem is None and bird.observation is not None, (
            f"BIRD 1.6 did not settle {phase} on {run.scenario.relative}: {bird.problem}"
        )
        states = {name: dict(row).get("state") for name, row in bird.observation.protocols.items()}
        assert set(states.values()) == {"up"}, f"BIRD's protocols {phase}: {states}"


_PREFERRED = re.compile(r"(\d+) preferred")


def without_unresolvable(
    bird: Observation, myna: Observation, scenario: Scenario, routes: Mapping[str, list[PeerRoute]]
) -> Observation:
    """BIRD's observation without what it does with a route whose next hop resolves nowhere,
    where Myna has nothing: left out on purpose.

    BIRD 1.6 keeps such a route (last in its decision, best when alone: 'preferred' in ``show
    protocols``) and writes it to the kernel as ``unreachable PREFIX proto bird``, which drops
    the traffic that a covering or default route would carry (Calico users' reports:
    projectcalico/calico#1761, #2178, projectcalico/bird#31). Myna follows RFC 4271 9.1.2.1:
    such a route is not eligible, so it is neither written nor counted (README, The RIB). Only
    a prefix one of the neighbours sent with ``scenario.unresolvable`` as its next hop, that
    BIRD holds as unreachable in the kernel and Myna not at all, is left out, with one
    'preferred' off its neighbour's protocol.
    """
    sent: dict[str, str] = {}  # prefix -> protocol of the neighbour that sent it unresolvable
    by_address = {peer.address: peer.protocol for peer in scenario.peers}
    for address, found in routes.items():
        for route in found:
            if route.next_hop == scenario.unresolvable:
                network = ipaddress.ip_network(route.prefix)
                key = (
                    str(network.network_address)
                    if network.prefixlen == scenario.bits
                    else str(network)
                )
                sent[key] = by_address[address]
    kernel = dict(bird.kernel)
    preferred_off: Counter[str] = Counter()
    for key, found in bird.kernel.items():
        unreachable = all(dict(r).get("type") == "unreachable" for r in found)
        if key in sent and unreachable and key not in myna.kernel:
            del kernel[key]
            preferred_off[sent[key]] += 1
    protocols = dict(bird.protocols)
    for name, off in preferred_off.items():
        row = dict(protocols[name])
        count = _PREFERRED.search(row.get("Routes", ""))
        if count is not None:
            row["Routes"] = _PREFERRED.sub(f"{int(count.group(1)) - off} preferred", row["Routes"])
            protocols[name] = tuple(sorted(row.items()))
    return dataclasses.replace(bird, kernel=kernel, protocols=protocols)


def _findings(run: Run, *, myna: bool = False) -> list[str]:
    """Every way the second side departs from the first, phase by phase (``myna``: with
    ``without_unresolvable``)."""
    lines: list[str] = []
    for phase, settled in run.phases:
        bird, other = settled["first"], settled["second"]
        assert bird.observation is not None
        expected = bird.observation
        if myna and other.observation is not None:
            expected = without_unresolvable(expected, other.observation, run.scenario, run.routes)
        found = differences(expected, other.observation) if other.observation else []
        if other.problem is None and not found:
            continue
        lines.append(f"{phase}:")
        if other.problem is not None:
            lines.append(f"  {other.problem}")
        lines.append(f"  bird: {summary(bird.observation)}")
        if other.observation is not None:
            lines.append(f"  myna: {summary(other.observation)}")
        lines += [f"  {difference}" for difference in found[:REPORT_LINES]]
        if len(found) > REPORT_LINES:
            lines.append(f"  ... and {len(found) - REPORT_LINES} more")
    return lines


# --- the live comparisons -------------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("relative", _params())
def test_myna_does_what_bird_does(bed: Topology, relative: str) -> None:
    run = run_both(bed, relative, BIRD, MYNA_DAEMON)
    _bird_worked(run)
    findings = _findings(run, myna=True)
    assert not findings, f"{relative}: Myna differs from BIRD 1.6\n" + "\n".join(findings)
    assert run.seconds < 60, f"{relative} took {run.seconds:.1f} s"


@pytest.mark.interop
def test_harness_is_deterministic(bed: Topology) -> None:
    """BIRD against BIRD: nothing differs, and there was something to compare."""
    run = run_both(bed, DETERMINISM_CASE, BIRD, BIRD)
    _bird_worked(run)
    findings = _findings(run)
    assert not findings, f"{DETERMINISM_CASE}: BIRD differs from BIRD\n" + "\n".join(findings)
    start, changed = (settled["first"].observation for _, settled in run.phases)
    assert start is not None and changed is not None
    assert start.sessions_up and all(start.end_of_rib.values()), start.end_of_rib
    assert all(len(routes) > 3 for routes in start.announced.values()), summary(start)
    assert any("nexthops" in dict(route) for routes in start.kernel.values() for route in routes), (
        "no multipath route in the kernel: the prefix every peer sends alike did not work"
    )
    assert differences(start, changed), "the changes changed nothing"
    assert run.seconds < 60, f"{DETERMINISM_CASE} took {run.seconds:.1f} s"


# --- the pieces, without namespaces ---------------------------------------------------------------


def test_translation_keeps_lengths_and_containment() -> None:
    networks = [
        ipaddress.ip_network(text)
        for text in (
            "192.168.0.0/16",
            "192.168.221.64/26",
            "10.192.0.2/32",
            "10.0.0.0/30",
            "10.0.0.1/32",
            "10.1.0.0/24",
        )
    ]
    mapping = TranslationMap(networks, ipv6=False)
    images = {n: mapping.network(n) for n in networks}
    for network, image in images.items():
        assert image.prefixlen == network.prefixlen
        assert subnet_of(image, V4_SPACE)
        assert not overlaps(image, ipaddress.ip_network("198.18.0.0/24"))
    for a in networks:
        for b in networks:
            assert subnet_of(a, b) == subnet_of(images[a], images[b])
            assert overlaps(a, b) == overlaps(images[a], images[b])
    assert mapping.rewrite("if ( net ~ 192.168.221.64/26 ) then") == (
        f"if ( net ~ {images[networks[1]]} ) then"
    )
    with pytest.raises(ValueError, match="does not fit"):
        TranslationMap([ipaddress.ip_network("10.0.0.0/8")], ipv6=False)


@pytest.mark.parametrize("relative", [case.relative for case in CASES])
def test_cases_map_into_the_test_ranges(relative: str) -> None:
    scenario = load_scenario(relative)
    text = "\n".join(scenario.files.values())
    for network in literal_networks(text, False):
        assert subnet_of(network, V4_SPACE), network
    for network in literal_networks(text, True):
        assert subnet_of(network, V6_SPACE), network
    space = V6_SPACE if scenario.ipv6 else V4_SPACE
    assert scenario.peers, "a case without BGP sessions compares little"
    for peer in scenario.peers:
        assert ipaddress.ip_address(peer.address) in space
    routes = peer_routes(scenario)
    assert all(routes.values())
    lines = [line for _, line in kernel_routes(scenario) + kernel_changes(scenario)]
    lines += [c for commands in peer_changes(scenario, routes).values() for c in commands]
    lines += [r.statement() for found in routes.values() for r in found]
    for line in lines:
        for word in line.replace(";", " ").split():
            named = _as_network(word)
            if named is not None:
                assert subnet_of(named, space) or subnet_of(named, V4_SPACE), line


def _as_network(word: str) -> Network | None:
    try:
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        return None


def test_adj_rib_in_replays_exabgp_messages() -> None:
    def event(kind: str, body: dict[str, object]) -> dict[str, object]:
        return {"type": kind, "neighbor": {"address": {"local": "198.18.2.3"}, **body}}

    announce = {
        "update": {
            "attribute": {
                "origin": "igp",
                "as-path": {"0": {"element": "as-sequence", "value": [65000, 1]}},
                "community": [[65000, 100]],
            },
            "announce": {
                "ipv4 unicast": {
                    "198.18.2.2": [
                        {"nlri": "198.19.0.0/26", "path-information": "0.0.0.1"},
                        {"nlri": "198.19.0.0/26", "path-information": "0.0.0.2"},
                        {"nlri": "198.19.0.64/26", "path-information": "0.0.0.1"},
                    ]
                }
            },
        }
    }
    withdraw = {
        "update": {
            "withdraw": {
                "ipv4 unicast": [{"nlri": "198.19.0.64/26", "path-information": "0.0.0.1"}]
            }
        }
    }
    events = [
        event("state", {"state": "up"}),
        event("update", {"message": announce}),
        event("update", {"message": withdraw}),
        event("update", {"message": {"eor": {"afi": "ipv4", "safi": "unicast"}}}),
    ]
    routes, end_of_rib, up = adj_rib_in(events, "198.18.2.3")
    assert up and end_of_rib
    assert list(routes) == ["198.19.0.0/26"]
    assert len(routes["198.19.0.0/26"]) == 2
    assert dict(routes["198.19.0.0/26"][0]) == {
        "as-path": "65000 1",
        "community": "65000:100",
        "next-hop": "198.18.2.2",
        "origin": "igp",
    }
    assert adj_rib_in(events, "198.18.2.4") == ({}, False, False)
    routes, end_of_rib, up = adj_rib_in([*events, event("state", {"state": "down"})], "198.18.2.3")
    assert (routes, end_of_rib, up) == ({}, False, False)


def test_show_protocols_and_kernel_parsing() -> None:
    output = "\n".join(
        [
            "BIRD 1.6.8 ready.",
            "name     proto    table    state  since       info",
            "static1  Static   master   up     06:35:13    ",
            "  Preference:     200",
            "  Routes:         4 imported, 0 exported, 4 preferred",
            "    Import updates:              4          0          0          0          4",
            "Mesh_1_2 BGP      master   start  06:35:15    Active       Socket: Connection refused",
            "  BGP state:          Active",
            "    Neighbor address: 198.18.2.3",
            "    Hold timer:       23/30",
        ]
    )
    rows = protocol_rows(output)
    assert dict(rows["static1"]) == {
        "proto": "Static",
        "table": "master",
        "state": "up",
        "info": "",
        "Preference": "200",
        "Routes": "4 imported, 4 preferred",
    }
    assert dict(rows["Mesh_1_2"]) == {
        "proto": "BGP",
        "table": "master",
        "state": "start",
        "info": "Active       Socket: Connection refused",
        "BGP state": "Active",
        "Neighbor address": "198.18.2.3",
    }
    table = kernel_table(
        [
            {"type": "blackhole", "dst": "198.19.0.0/26", "protocol": "80", "flags": []},
            {
                "dst": "198.19.0.0/26",
                "protocol": "bird",
                "metric": 32,
                "gateway": "198.18.2.3",
                "flags": ["onlink"],
                "dev": "tunl0",
            },
            {"dst": "198.18.2.0/28", "protocol": "kernel", "dev": "eth0"},
            {"dst": "198.18.2.2", "table": "local", "type": "local"},
        ]
    )
    assert list(table) == ["198.19.0.0/26"]
    assert len(table["198.19.0.0/26"]) == 2
