"""Myna's BGP sessions advised by BFD (RFC 5882), against BIRD 2 and FRR 8.4, in namespaces.

Host ``a`` runs Myna (``myna run``: BGP, BFD, kernel programming), host ``b`` the other daemon
with BFD on its BGP session as operators configure it (``tests/testbed/bgp_bfd.py``): BIRD 2's
``protocol bfd`` and ``bfd on``, FRR's ``neighbor X bfd`` with bfdd. Both sides use 100 ms x 3,
so the negotiated Detection Time is 300 ms (RFC 5880 6.8.4). Each test brings the BGP session
up with routes both ways (``b``'s in ``a``'s kernel), then drops everything on ``b``'s eth0
with nftables (links up: only BFD can tell) and watches ``a``'s kernel with ``ip monitor``:
Myna's BGP session must be down and ``b``'s route gone from the kernel within the Detection
Time + 100 ms of the rule being in place; Myna must refuse to bring BGP back while BFD is down
(RFC 5882 4.1), then, with the rule removed, BFD, BGP and the route come back. The times are
printed; ``bench/bfd_failover.py`` measures them properly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from testbed import Host, Neighbor, PeerDaemon, State, Topology, wait_for
from testbed.bgp_bfd import (
    BfdSpec,
    Bird2BfdPeer,
    FrrBfdPeer,
    MynaBfdPeer,
    RouteWatch,
    cut_path,
    heal_path,
)
from testbed.bird import BIRDC2

from bgpd.control_socket import request

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

SLACK = 0.1  # the brief's bound beyond the Detection Time
TIMEOUT = 30.0
BLOCKS = {False: ("198.19.1.0/26", "198.19.2.0/26"), True: ("2001:db8:1::/64", "2001:db8:2::/64")}


class Setup:
    """Myna in ``a`` and ``peer`` in ``b``, sessions up, routes exchanged, BFD Up."""

    def __init__(
        self,
        topology: Topology,
        make_peer: Callable[[Host, Neighbor, str], PeerDaemon],
        spec: BfdSpec,
        ipv6: bool,
        peer_as: int = 64512,
        **myna_options: Any,
    ) -> None:
        self.a, self.b = topology.add_host("a"), topology.add_host("b")
        self.spec = spec
        self.mine = self.b.ipv6 if ipv6 else self.b.ipv4  # Myna's neighbor: b
        self.theirs = self.a.ipv6 if ipv6 else self.a.ipv4  # the peer's neighbor: a
        self.peer_block, self.myna_block = BLOCKS[ipv6]
        self.watch = RouteWatch(self.a, self.a.workdir / "monitor.log")
        self.peer = make_peer(self.b, Neighbor(self.theirs, 64512), self.peer_block).start()
        self.myna = MynaBfdPeer(
            self.a, self.a.ipv4, 64512, [Neighbor(self.mine, peer_as)], [self.myna_block],
            bfd=spec, **myna_options,
        ).start()  # fmt: skip
        self.myna.wait_prefixes(self.mine, [self.peer_block], TIMEOUT)
        self.peer.wait_prefixes(self.theirs, [self.myna_block], TIMEOUT)
        self.wait_route("add", 0.0)
        self.wait_bfd_up()

    def wait_bfd_up(self) -> dict[str, Any]:
        row: dict[str, Any] = wait_for(
            lambda: self.myna.bfd_row(self.mine), TIMEOUT, "Myna's BFD session Up",
            until=lambda r: r["state"] == "Up" and r["detection_time_ms"] > 0,
        )  # fmt: skip
        return row

    def wait_route(self, kind: str, after: float, timeout: float = TIMEOUT) -> float:
        """When ``b``'s block was last added to / deleted from ``a``'s kernel after ``after``."""
        events = wait_for(
            lambda: [t for t, k in self.watch.events(self.peer_block) if k == kind and t > after],
            timeout, f"{self.peer_block} {kind} in a's kernel after {after}",
        )  # fmt: skip
        return float(events[0])

    def myna_peer(self) -> dict[str, Any]:
        peers = self.myna.show("peers")
        return dict(next(p for p in peers if p["address"] == self.mine))

    def cut(self) -> float:
        """Cut the path; the wall-clock time the rule was in place."""
        cut_path(self.b)
        return time.time()

    def fails_over(self) -> float:
        """Cut, check Myna's BGP session and route go within the bound; the time it took."""
        cut_at = self.cut()
        gone_at = self.wait_route("del", cut_at, 5)
        took = gone_at - cut_at
        print(f"\n{type(self.peer).__name__} {self.spec}: route gone from a's kernel "
              f"{took * 1000:.0f} ms after the cut")  # fmt: skip
        assert took <= self.spec.detection + SLACK
        peer = self.myna_peer()
        assert peer["state"] != "Established"
        assert peer["last_error"].startswith("BFD session down"), peer
        row = self.myna.bfd_row(self.mine)
        assert row["state"] == "Down" and row["last_diagnostic"] == "control detection time expired"
        assert row["bgp_held"]
        return took

    def holds_then_recovers(self, cut_at: float) -> None:
        """While BFD is down Myna opens nothing and refuses the peer; healed, all comes back."""
        # The peer's own BFD falls too, and it tries BGP again after its error wait; nothing
        # of that reaches Myna while the path is cut, so Myna's session stays Idle and held.
        wait_for(self.myna_peer, 5, "Myna's session Idle",
                 until=lambda p: p["state"] == "Idle")  # fmt: skip
        heal_path(self.b)
        healed_at = time.time()
        self.wait_bfd_up()
        self.myna.wait_established(self.mine, TIMEOUT)
        back_at = self.wait_route("add", healed_at)
        assert back_at > cut_at
        self.peer.wait_prefixes(self.theirs, [self.myna_block], TIMEOUT)
        assert not self.myna.bfd_row(self.mine)["bgp_held"]


def bird(spec: BfdSpec) -> Callable[[Host, Neighbor, str], PeerDaemon]:
    def make(host: Host, neighbor: Neighbor, block: str) -> PeerDaemon:
        return Bird2BfdPeer(host, host.ipv4, 64512, [neighbor], [block], bfd=spec)

    return make


def frr(spec: BfdSpec) -> Callable[[Host, Neighbor, str], PeerDaemon]:
    def make(host: Host, neighbor: Neighbor, block: str) -> PeerDaemon:
        ebgp = Neighbor(neighbor.address, 64512)
        return FrrBfdPeer(host, host.ipv4, 64513, [ebgp], [block], bfd=spec)

    return make


HOPS = pytest.mark.parametrize("multihop", [False, True], ids=["single-hop", "multihop"])
FAMILIES = pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])


@HOPS
@FAMILIES
def test_bird2(topology: Topology, ipv6: bool, multihop: bool) -> None:
    spec = BfdSpec(multihop=multihop)
    setup = Setup(topology, bird(spec), spec, ipv6)
    row = setup.myna.bfd_row(setup.mine)
    assert row["mode"] == ("multihop" if multihop else "single-hop")
    assert row["tx_interval_ms"] == row["rx_interval_ms"] == 100
    assert row["detection_time_ms"] == 300
    # BIRD's own view of the session: Up, multihop on no interface ("---"), 100 ms / 300 ms.
    line = next(
        line for line in setup.peer.bfd_sessions().splitlines()  # type: ignore[attr-defined]
        if line.split()[:1] == [setup.theirs]
    )  # fmt: skip
    words = line.split()
    assert words[2] == "Up" and words[-2:] == ["0.100", "0.300"]
    assert (words[1] == "---") == multihop
    cut_at = time.time()
    setup.fails_over()
    setup.holds_then_recovers(cut_at)


@pytest.mark.parametrize(
    ("auth", "ipv6", "multihop"),
    [("keyed_sha1", False, True), ("meticulous_md5", True, False)],
    ids=["keyed-sha1-ipv4-multihop", "meticulous-md5-ipv6-single-hop"],
)
def test_bird2_authentication(topology: Topology, auth: str, ipv6: bool, multihop: bool) -> None:
    spec = BfdSpec(multihop=multihop, auth=auth, secret="s3cret-key")
    setup = Setup(topology, bird(spec), spec, ipv6)
    assert setup.myna.bfd_row(setup.mine)["auth"] == auth
    cut_at = time.time()
    setup.fails_over()
    setup.holds_then_recovers(cut_at)
    assert setup.myna.bfd_row(setup.mine)["auth_failures"] == 0


def test_bird2_bfd_graceful_keeps_the_routes_stale(topology: Topology) -> None:
    # BIRD's "bfd graceful" on both ends: the BFD failure ends BGP as a graceful restart
    # (RFC 4724), so the routes stay, stale, in the RIB and the kernel until BGP is back.
    spec = BfdSpec(multihop=True, graceful=True)
    setup = Setup(topology, bird(spec), spec, False)
    cut_at = setup.cut()
    peer = wait_for(setup.myna_peer, 5, "Myna's session down",
                    until=lambda p: p["state"] != "Established")  # fmt: skip
    assert peer["last_error"] == "BFD session down: the path to the peer failed (graceful restart)"
    (route,) = [r for r in setup.myna.show("routes") if r["prefix"] == setup.peer_block]
    assert route["stale"] == "stale"  # RFC 4724 stale (not yet LLGR, RFC 9494)
    assert setup.peer_block in setup.myna.kernel_routes()
    heal_path(setup.b)
    healed_at = time.time()
    # Nothing left the kernel while the path was down.
    assert [k for t, k in setup.watch.events(setup.peer_block) if cut_at < t < healed_at] == []
    setup.wait_bfd_up()
    setup.myna.wait_established(setup.mine, TIMEOUT)
    wait_for(lambda: setup.myna.show("routes"), TIMEOUT, "the route no longer stale",
             until=lambda routes: all("stale" not in r for r in routes))  # fmt: skip
    # Back up, BIRD's new OPEN lacks the F bit (it did not restart): RFC 4724 4.2 has the stale
    # route deleted then, and BIRD announces it again.
    wait_for(setup.myna.kernel_routes, TIMEOUT, "the route in the kernel",
             until=lambda text: setup.peer_block in text)  # fmt: skip


@HOPS
@FAMILIES
def test_frr(topology: Topology, ipv6: bool, multihop: bool) -> None:
    spec = BfdSpec(multihop=multihop)
    setup = Setup(topology, frr(spec), spec, ipv6, peer_as=64513)
    row = setup.myna.bfd_row(setup.mine)
    assert row["mode"] == ("multihop" if multihop else "single-hop")
    assert row["detection_time_ms"] == 300
    peers = setup.peer.bfd_peers()  # type: ignore[attr-defined]
    assert "Status: up" in peers and ("multihop" in peers) == multihop, peers
    cut_at = time.time()
    setup.fails_over()
    setup.holds_then_recovers(cut_at)


def test_a_bird_peer_that_drops_bfd_gets_its_session_back_after_the_hold_limit(
    topology: Topology,
) -> None:
    # RFC 5882 4.1: "If it is believed that the neighboring system does not support BFD, the
    # establishment of a control protocol adjacency SHOULD NOT be blocked." BIRD drops the
    # BFD session of a "bfd on" taken out of its config without telling the peer (no
    # AdminDown): Myna's BFD times out as on a path failure, and BGP goes down and is held.
    # After bfd.hold_limit (3 s here) without one BFD packet from BIRD, BGP comes back, with
    # a warning in Myna's log that says it is the peer's side.
    spec = BfdSpec(multihop=True)
    setup = Setup(topology, bird(spec), spec, False, hold_limit="3 s")
    peer_daemon = setup.peer
    assert isinstance(peer_daemon, Bird2BfdPeer)
    peer_daemon.bfd_on = False
    peer_daemon.reconfigure()
    dropped_at = time.time()
    peer = wait_for(setup.myna_peer, 5, "Myna's BGP session down",
                    until=lambda p: p["state"] != "Established")  # fmt: skip
    assert peer["last_error"].startswith("BFD session down"), peer
    row = setup.myna.bfd_row(setup.mine)
    assert row["state"] == "Down" and row["bgp_held"], row
    assert row["last_diagnostic"] == "control detection time expired"
    wait_for(setup.myna_peer, TIMEOUT, "Myna's BGP session back",
             until=lambda p: p["state"] == "Established")  # fmt: skip
    took = time.time() - dropped_at
    print(f"\nBGP back {took:.1f} s after BIRD dropped BFD (hold limit 3 s)")
    assert took >= 3.0
    row = setup.myna.bfd_row(setup.mine)
    assert row["state"] == "Down" and not row["bgp_held"] and not row["remote_heard"], row
    log = (setup.myna.workdir / "myna.log").read_text()
    assert "taking the peer to run no BFD any more (its side" in log
    assert "administratively down" not in log  # BIRD never said AdminDown
    setup.peer.wait_prefixes(setup.theirs, [setup.myna_block], TIMEOUT)


def test_reload_changes_bfd_in_place_without_touching_bgp(topology: Topology) -> None:
    spec = BfdSpec(multihop=True)
    setup = Setup(topology, bird(spec), spec, False)
    since = setup.myna_peer()["since"]
    before = setup.myna.bfd_row(setup.mine)
    # Slower packets wanted from BIRD: a Poll sequence changes the session in place (RFC
    # 5880 6.8.3), and BIRD then sends every 200 ms (its "Interval" column).
    setup.myna.bfd = BfdSpec(multihop=True, interval_ms=200)
    setup.myna.config_path.write_text(_yaml(setup.myna.config()))
    assert request(setup.myna.control_path, "reload", timeout=30)["ok"]
    wait_for(setup.peer.bfd_sessions, 10, "BIRD sending every 200 ms",  # type: ignore[attr-defined]
             until=lambda text: " 0.200 " in text)  # fmt: skip
    row = setup.myna.bfd_row(setup.mine)
    assert row["state"] == "Up" and row["rx_interval_ms"] == 200
    for same in ("local_discriminator", "state_changes"):  # the same session, never down
        assert row[same] == before[same], same
    assert setup.myna_peer()["since"] == since
    assert setup.peer.session_state(setup.theirs) == State.ESTABLISHED


def test_bird_socket_and_metrics_show_what_bird_shows(topology: Topology) -> None:
    spec = BfdSpec(multihop=False)
    setup = Setup(topology, bird(spec), spec, False, bird_socket=True, metrics=True)
    theirs = setup.peer.bfd_sessions().splitlines()  # type: ignore[attr-defined]
    birdcl = str(BIRDC2.with_name("birdcl"))  # BIRD 2's own client, against Myna's socket
    sock = str(setup.myna.rundir / "bird.ctl")
    ours = setup.a.run(birdcl, "-s", sock, "show", "bfd", "sessions").stdout.splitlines()
    # birdcl prints BIRD's greeting first, then the reply without the codes.
    assert ours[1:3] == ["bfd1:", theirs[2]], (ours, theirs)  # the headings, exactly
    (row,) = [line for line in ours[3:] if line.strip()]
    (their_row,) = [line for line in theirs[3:] if line.strip()]
    # The same columns at the same places: address, interface, state, since, interval, timeout.
    assert row.split()[0] == setup.mine and their_row.split()[0] == setup.theirs
    assert row.split()[2:3] == their_row.split()[2:3] == ["Up"]
    assert row.split()[-2:] == their_row.split()[-2:] == ["0.100", "0.300"]
    assert [len(part) for part in row.split("  ")[:1]] == [len(their_row.split("  ")[0])]
    # Prometheus: the session Up, BIRD's Timeout as the Detection Time, packets both ways.
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(setup.myna.scrape())
        for sample in family.samples
    }
    peer = (("peer", setup.mine),)
    assert samples[("myna_bfd_session_up", peer)] == 1
    assert samples[("myna_bfd_session_detection_time_seconds", peer)] == 0.3
    assert samples[("myna_bfd_session_tx_interval_seconds", peer)] == 0.1
    assert samples[("myna_bfd_session_packets_sent_total", peer)] > 0
    assert samples[("myna_bfd_session_packets_received_total", peer)] > 0
    assert samples[("myna_bfd_session_state_changes_total", peer)] in (1, 2)  # via Init or not
    assert samples[("myna_bfd_session_auth_failures_total", peer)] == 0
    assert samples[("myna_bfd_bgp_held", peer)] == 0


def _yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
