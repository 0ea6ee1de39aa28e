"""Myna against BIRD 2, BIRD 1.6, FRR, GoBGP and ExaBGP 5 in network namespaces.

Data flow: the module-scoped ``bed`` builds one topology: a Myna host, and for every peer kind
two hosts, one that Myna connects to (the peer is passive) and one that connects to Myna (Myna
is passive), each peering with Myna over IPv4 and IPv6 in AS 64512 as a Calico mesh does. All
daemons start at once; each parametrized test then waits, with a deadline, for its session to
be Established at both ends and for the blocks to cross both ways. Separate topologies show a
SIGKILLed peer noticed by Myna's hold timer and the session returning with the peer, and TCP-MD5
with BIRD 2 and FRR: the same key comes up, a wrong key never does.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from testbed import PEER_KINDS, Host, Neighbor, PeerDaemon, State, Topology, wait_for
from testbed.myna_peer import MynaPeer
from testbed.requirements import require_interop

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

AS = 64512
KINDS = ("bird2", "bird16", "frr", "gobgp", "exabgp")
MYNA_V4, MYNA_V6 = "198.19.200.0/26", "2001:db8:200::/122"


def blocks(n: int) -> tuple[str, str]:
    """The IPv4 /26 and IPv6 /122 blocks host number ``n`` originates."""
    return f"198.19.{n}.0/26", f"2001:db8:{n}::/122"


@dataclass
class Bed:
    """Myna and its peers: peers[(kind, myna_passive)] = (host, daemon)."""

    myna_host: Host
    myna: MynaPeer
    peers: dict[tuple[str, bool], tuple[Host, PeerDaemon]]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    require_interop()
    with Topology(tmp_path_factory.mktemp("interop")) as topo:
        myna_host = topo.add_host("myna")
        hosts = {
            (kind, passive): topo.add_host(f"{kind}{'p' if passive else 'a'}")
            for kind in KINDS
            for passive in (False, True)
        }
        neighbors = [
            Neighbor(address, AS, passive=passive)
            for (_, passive), host in hosts.items()
            for address in (host.ipv4, host.ipv6)
        ]
        myna = MynaPeer(myna_host, myna_host.ipv4, AS, neighbors, [MYNA_V4, MYNA_V6])
        peers: dict[tuple[str, bool], tuple[Host, PeerDaemon]] = {}
        for (kind, myna_passive), host in hosts.items():
            number = int(host.ipv4.rsplit(".", 1)[1])
            daemon = PEER_KINDS[kind](
                host,
                host.ipv4,
                AS,
                # The peer is passive where Myna is active, and the other way round.
                [
                    Neighbor(myna_host.ipv4, AS, passive=not myna_passive),
                    Neighbor(myna_host.ipv6, AS, passive=not myna_passive),
                ],
                blocks(number),
            )
            peers[(kind, myna_passive)] = (host, daemon)
        myna.start()
        for _, daemon in peers.values():
            daemon.start()
        yield Bed(myna_host, myna, peers)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("myna_passive", [False, True], ids=["myna-active", "myna-passive"])
@pytest.mark.parametrize("kind", KINDS)
def test_session_up_and_blocks_cross(bed: Bed, kind: str, myna_passive: bool, family: str) -> None:
    host, peer = bed.peers[(kind, myna_passive)]
    ipv6 = family == "ipv6"
    peer_address = host.ipv6 if ipv6 else host.ipv4
    myna_address = bed.myna_host.ipv6 if ipv6 else bed.myna_host.ipv4
    bed.myna.wait_established(peer_address, timeout=60)
    peer.wait_established(myna_address, timeout=30)
    number = int(host.ipv4.rsplit(".", 1)[1])
    theirs = blocks(number)[ipv6]
    bed.myna.wait_prefixes(peer_address, [theirs], timeout=30, exact=True)
    try:
        peer.received_prefixes(myna_address)
    except NotImplementedError:
        return  # this daemon cannot list what it received (see its module)
    peer.wait_prefixes(myna_address, [MYNA_V6 if ipv6 else MYNA_V4], timeout=30)


def test_dead_peer_is_noticed_and_the_session_returns(topology: Topology) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    myna = MynaPeer(m, m.ipv4, AS, [Neighbor(b.ipv4, AS)], [MYNA_V4]).start()
    bird = PEER_KINDS["bird2"](b, b.ipv4, AS, [Neighbor(m.ipv4, AS)], [blocks(2)[0]]).start()
    myna.wait_established(b.ipv4)
    myna.wait_prefixes(b.ipv4, [blocks(2)[0]])
    # A hung peer (frozen: no FIN, no KEEPALIVE) is noticed by the hold timer (9 s here).
    for process in bird.processes:
        os.kill(process.pid, signal.SIGSTOP)
    myna.wait_not_established(b.ipv4, timeout=20)
    assert "hold timer expired" in myna._peer(b.ipv4)["last_error"]
    # SIGKILLed while frozen, then started again: the session and its routes come back.
    bird.kill()
    bird.start()
    myna.wait_established(b.ipv4, timeout=30)
    myna.wait_prefixes(b.ipv4, [blocks(2)[0]], timeout=30)
    # SIGKILL of a running peer: its kernel closes the connection, noticed at once.
    bird.kill()
    myna.wait_not_established(b.ipv4, timeout=5)
    assert "connection lost" in myna._peer(b.ipv4)["last_error"]
    bird.start()
    myna.wait_established(b.ipv4, timeout=30)


@pytest.mark.parametrize("kind", ["bird2", "frr"])
def test_md5_same_key_up_wrong_key_never(topology: Topology, kind: str) -> None:
    m = topology.add_host("myna")
    good, bad = topology.add_host("good"), topology.add_host("bad")
    myna = MynaPeer(
        m,
        m.ipv4,
        AS,
        [Neighbor(good.ipv4, AS, password="calico-md5"), Neighbor(bad.ipv4, AS, password="mine")],
    ).start()
    peers = [
        PEER_KINDS[kind](host, host.ipv4, AS, [Neighbor(m.ipv4, AS, password=key)]).start()
        for host, key in ((good, "calico-md5"), (bad, "theirs"))
    ]
    myna.wait_established(good.ipv4)
    peers[0].wait_established(m.ipv4)
    # Give the wrong key time to fail for real: several of Myna's connect attempts.
    log = myna.workdir / "myna.log"
    wait_for(
        lambda: log.read_text().count(f"[{bad.ipv4}] connecting"),
        timeout=30,
        what="three connection attempts to the peer with the wrong key",
        until=lambda count: count >= 3,
    )
    assert myna.session_state(bad.ipv4) != State.ESTABLISHED
    assert peers[1].session_state(m.ipv4) != State.ESTABLISHED
