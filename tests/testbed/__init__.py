"""The interop test bed: network-namespace topologies and real BGP peers to run in them.

Data flow: ``topology`` builds hosts (namespaces on one bridge, 198.18.0.N and 2001:db8::N)
and tears them down with every process started in them; ``peers`` holds the common peer
interface (``PeerDaemon``, ``Neighbor``, ``State``), and one module per daemon renders its
config, launches it in a host and reads its state back: ``bird`` (BIRD 2 and 1.6), ``frr``,
``gobgp``, ``exabgp_peer``. ``fixtures`` has the pytest fixture and skip rules.

    with Topology() as topo:
        a, b = topo.add_host("a"), topo.add_host("b")
        bird = Bird2Peer(a, a.ipv4, 64512, [Neighbor(b.ipv4, 64513)], ["198.19.1.0/24"]).start()
        frr = FrrPeer(b, b.ipv4, 64513, [Neighbor(a.ipv4, 64512)]).start()
        bird.wait_established(b.ipv4)
        frr.wait_prefixes(a.ipv4, ["198.19.1.0/24"])
"""

from .bird import BIRD16_ROOT, Bird2Peer, Bird16Peer
from .exabgp_peer import ExaBgpPeer
from .frr import FrrPeer
from .gobgp import GoBgpPeer
from .peers import Neighbor, PeerDaemon, PeerError, State
from .topology import Host, Topology, wait_for

PEER_KINDS: dict[str, type[PeerDaemon]] = {
    kind.kind: kind for kind in (Bird2Peer, Bird16Peer, FrrPeer, GoBgpPeer, ExaBgpPeer)
}

__all__ = [
    "BIRD16_ROOT",
    "PEER_KINDS",
    "Bird2Peer",
    "Bird16Peer",
    "ExaBgpPeer",
    "FrrPeer",
    "GoBgpPeer",
    "Host",
    "Neighbor",
    "PeerDaemon",
    "PeerError",
    "State",
    "Topology",
    "wait_for",
]
