"""Self-test of the interop test bed, without Myna: real daemons peer with each other.

Data flow: the module-scoped ``mesh`` fixture builds one topology with a BIRD 2 hub and one host
per other daemon (FRR, GoBGP, ExaBGP 5, BIRD 1.6, and two more FRRs for TCP MD5), starts them
all at once, so their sessions come up concurrently, and each test then waits, with deadlines,
for its own pair: both ends Established over IPv4 and IPv6, each end holding the other's
prefixes, prefixes announced and withdrawn at run time. Separate tests use topologies of their
own to kill and restart a peer, and to check that the teardown removes namespaces and processes
even when the test body raises.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testbed import (
    Bird2Peer,
    Bird16Peer,
    ExaBgpPeer,
    FrrPeer,
    GoBgpPeer,
    Host,
    Neighbor,
    PeerDaemon,
    State,
    Topology,
)
from testbed.requirements import require_interop
from testbed.topology import namespace_pids, run, wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

HUB_AS = 64512
MD5_KEY = "myna-md5-key"


def v4(n: int) -> str:
    """The IPv4 prefix host n originates (in 198.19.0.0/16, the test bed's other half)."""
    return f"198.19.{n}.0/24"


def v6(n: int) -> str:
    """The IPv6 prefix host n originates."""
    return f"2001:db8:{n}::/48"


@dataclass(frozen=True)
class Spec:
    """One peer of the mesh: its daemon, its AS, its sessions with the hub, its MD5 key."""

    daemon: type[PeerDaemon]
    local_as: int
    # Per session family (4, 6): which end waits to be connected to ("peer", "hub" or
    # neither). Never both, or no one would connect.
    waits: dict[int, str | None]
    password: str | None = None


# Each peer originates v4(n) and v6(n), n its host number (the hub is host 1).
MESH = {
    "frr": Spec(FrrPeer, 64513, {4: None, 6: "peer"}),  # eBGP
    # GoBGP's own first connect waits 5-10 s whatever its connect-retry says (see gobgp.py).
    "gobgp": Spec(GoBgpPeer, HUB_AS, {4: "peer", 6: "hub"}),  # iBGP
    "exabgp": Spec(ExaBgpPeer, 64514, {4: "hub", 6: "peer"}),  # eBGP
    "bird16": Spec(Bird16Peer, HUB_AS, {4: None, 6: None}),  # iBGP: bird and bird6
    "frrmd5": Spec(FrrPeer, 64515, {4: None}, password=MD5_KEY),
    "frrbadkey": Spec(FrrPeer, 64516, {4: None}, password="not-" + MD5_KEY),
}
SESSION_PEERS = ("frr", "gobgp", "exabgp", "bird16")


@dataclass
class Mesh:
    """The BIRD 2 hub and every other peer, by name."""

    hub_host: Host
    hub: Bird2Peer
    peers: dict[str, PeerDaemon]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    require_interop()
    with Topology(tmp_path_factory.mktemp("mesh")) as topo:
        hub_host = topo.add_host("hub")
        hub_neighbors: list[Neighbor] = []
        peers: dict[str, PeerDaemon] = {}
        for name, spec in MESH.items():
            host = topo.add_host(name)
            to_hub: list[Neighbor] = []
            prefixes: list[str] = []
            for family, waiter in spec.waits.items():
                ipv6 = family == 6
                hub_address, peer_address = (
                    (hub_host.ipv6, host.ipv6) if ipv6 else (hub_host.ipv4, host.ipv4)
                )
                to_hub.append(
                    Neighbor(hub_address, HUB_AS, passive=waiter == "peer", password=spec.password)
                )
                hub_neighbors.append(
                    Neighbor(peer_address, spec.local_as, passive=waiter == "hub",
                             password=MD5_KEY if spec.password else None)
                )  # fmt: skip
                prefixes.append(v6(host.number) if ipv6 else v4(host.number))
            peers[name] = spec.daemon(host, host.ipv4, spec.local_as, to_hub, prefixes)
        hub = Bird2Peer(hub_host, hub_host.ipv4, HUB_AS, hub_neighbors, [v4(1), v6(1)])
        hub.start()
        for peer in peers.values():
            peer.start()
        yield Mesh(hub_host, hub, peers)


@pytest.mark.parametrize("name", SESSION_PEERS)
def test_sessions_reach_established_and_exchange_routes(mesh: Mesh, name: str) -> None:
    peer, hub = mesh.peers[name], mesh.hub
    n = peer.host.number
    for family, hub_address, peer_address in (
        (4, mesh.hub_host.ipv4, peer.host.ipv4),
        (6, mesh.hub_host.ipv6, peer.host.ipv6),
    ):
        hub.wait_established(peer_address)
        peer.wait_established(hub_address)
        theirs, ours = (v4(n), v4(1)) if family == 4 else (v6(n), v6(1))
        hub.wait_prefixes(peer_address, [theirs], exact=True)
        peer.wait_prefixes(hub_address, [ours], exact=True)


def test_md5_session_with_the_same_key_is_established(mesh: Mesh) -> None:
    good, bad = mesh.peers["frrmd5"], mesh.peers["frrbadkey"]
    mesh.hub.wait_established(good.host.ipv4)
    good.wait_established(mesh.hub_host.ipv4)
    mesh.hub.wait_prefixes(good.host.ipv4, [v4(good.host.number)])
    good.wait_prefixes(mesh.hub_host.ipv4, [v4(1)])
    # The kernel drops every segment whose MD5 signature does not match, so the mismatched
    # pair, started together with the good one, is still trying once the good one is up.
    assert mesh.hub.session_state(bad.host.ipv4) != State.ESTABLISHED
    assert bad.session_state(mesh.hub_host.ipv4) != State.ESTABLISHED
    assert mesh.hub.neighbor(bad.host.ipv4).password == MD5_KEY


@pytest.mark.parametrize("name", [*SESSION_PEERS, "hub"])
def test_announce_and_withdraw_at_run_time(mesh: Mesh, name: str) -> None:
    speaker: PeerDaemon
    listener: PeerDaemon
    if name == "hub":
        speaker, listener, n = mesh.hub, mesh.peers["frr"], 101
    else:
        speaker, listener, n = mesh.peers[name], mesh.hub, 100 + mesh.peers[name].host.number
    from4, from6 = speaker.host.ipv4, speaker.host.ipv6
    listener.wait_established(from4)
    listener.wait_established(from6)

    speaker.announce(v4(n), v6(n))
    listener.wait_prefixes(from4, [v4(n)])
    listener.wait_prefixes(from6, [v6(n)])

    speaker.withdraw(v4(n), v6(n))
    wait_for(
        lambda: listener.received_prefixes(from4) | listener.received_prefixes(from6),
        30,
        f"{listener} to drop {v4(n)} and {v6(n)}",
        until=lambda seen: not {v4(n), v6(n)} & seen,
    )


def test_killed_peer_is_noticed_and_a_restart_reestablishes(topology: Topology) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    bird = Bird2Peer(a, a.ipv4, 64512, [Neighbor(b.ipv4, 64513)], [v4(1)]).start()
    frr = FrrPeer(b, b.ipv4, 64513, [Neighbor(a.ipv4, 64512)], [v4(2)]).start()
    bird.wait_established(b.ipv4)
    bird.wait_prefixes(b.ipv4, [v4(2)])

    frr.kill()
    assert not frr.running
    # The kernel closes the dead bgpd's socket, so BIRD sees the session drop at once.
    # (It keeps FRR's routes, as stale, meanwhile: both sides negotiated graceful restart.)
    bird.wait_not_established(b.ipv4, timeout=15)

    frr.start()
    bird.wait_established(b.ipv4)
    bird.wait_prefixes(b.ipv4, [v4(2)], exact=True)

    # A SIGKILLed BIRD leaves its control socket behind; the restarted one must replace it.
    bird.kill()
    frr.wait_not_established(a.ipv4, timeout=15)
    bird.start()
    frr.wait_established(a.ipv4)
    frr.wait_prefixes(a.ipv4, [v4(1)], exact=True)

    bird.stop()  # SIGTERM: BIRD closes the session with a Cease NOTIFICATION
    frr.wait_not_established(a.ipv4, timeout=15)


def _namespaces() -> set[str]:
    return {line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_teardown_removes_namespaces_and_processes_when_the_body_raises(tmp_path: Path) -> None:
    require_interop()
    pids: list[int] = []
    topo = Topology(tmp_path)
    with pytest.raises(RuntimeError, match="test body failed"), topo:
        a, b = topo.add_host("a"), topo.add_host("b")
        bird = Bird2Peer(a, a.ipv4, 64512, [Neighbor(b.ipv4, 64512)]).start()
        # A process the topology never registered, as a daemon that forks would leave.
        b.run("sh", "-c", "sleep 600 >/dev/null 2>&1 &")
        stray = wait_for(b.pids, 10, "the stray sleep to show up in b's namespace")
        pids = [*(p.pid for p in bird.processes), *stray]
        assert set(topo.namespaces) <= _namespaces()
        raise RuntimeError("test body failed")
    assert pids
    assert not set(topo.namespaces)
    assert not {topo.switch_netns, a.netns, b.netns} & _namespaces()
    assert [pid for pid in pids if _alive(pid)] == []
    assert all(p.poll() is not None for p in topo.processes)
    assert namespace_pids(a.netns) == []
    assert not topo.rundir.exists()


def test_teardown_sigkills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    require_interop()
    with Topology(tmp_path) as topo:
        a = topo.add_host("a")
        ready = tmp_path / "ready"
        stubborn = a.popen("sh", "-c", f"trap '' TERM; touch {ready}; while :; do sleep 0.1; done")
        wait_for(ready.exists, 5, "the stubborn shell to ignore SIGTERM")
    assert stubborn.returncode == -signal.SIGKILL
    assert a.netns not in _namespaces()


def test_host_runs_commands_in_its_namespace(topology: Topology) -> None:
    a = topology.add_host("a")
    addresses = a.ip("-brief", "address", "show", "dev", "eth0")
    assert "198.18.0.1/24" in addresses
    assert "2001:db8::1/64" in addresses
    assert a.run("cat", "/proc/self/net/dev").stdout.count("eth0") == 1
    with pytest.raises(subprocess.CalledProcessError, match="stderr"):
        a.run("sh", "-c", "echo oops >&2; exit 3")
    assert os.getpid() not in a.pids()
