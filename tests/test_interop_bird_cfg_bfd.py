"""A bird.cfg's ``protocol bfd`` run by Myna against BIRD 2, in namespaces.

Myna's side is configured from a bird.cfg (``bgpd.bird_config``): ``protocol bfd`` with two
interface blocks, the first for interfaces host ``a`` does not have (20 ms, no
authentication), the second for ``eth*`` (100 ms x 3, keyed SHA1), and a direct iBGP session
with ``bfd on``. The mapping carries both blocks to run time (the peer's interface is not in
the file); the daemon must pick the second by the interface whose connected network holds the
peer (``eth0``), or BIRD 2, configured as operators configure it (``tests/testbed/bgp_bfd.py``:
the same timers and key on ``eth0``), would drop every packet (authentication mismatch) and
the session would never come Up. The effective block reaches the daemon through the same
``peers[].bfd`` YAML the other BFD interop tests use (running straight from a bird.cfg is the
drop-in's wiring step). Also: ``connected_interface`` inside a namespace.
"""

from __future__ import annotations

from typing import Any

import pytest
from testbed import Neighbor, Topology, wait_for
from testbed.bgp_bfd import BfdSpec, Bird2BfdPeer, MynaBfdPeer

from bgpd.bfd_config import BfdModel
from bgpd.bfd_peers import connected_interface
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.daemon_config import daemon_config_from_bird
from kernel_sync.namespaces import call_in_namespace

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

TIMEOUT = 30.0
SECRET = "s3cret-key"


class MynaFromBirdCfg(MynaBfdPeer):
    """Myna whose peers' ``bfd`` block is what a bird.cfg's ``protocol bfd`` maps to."""

    def __init__(self, *args: Any, bfd_model: BfdModel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bfd_model = bfd_model

    def bfd_block(self) -> dict[str, Any]:
        block: dict[str, Any] = self.bfd_model.model_dump(mode="json", exclude_defaults=True)
        return block


def _bfd_from_bird_cfg(router_id: str, neighbor: str, ipv6: bool) -> BfdModel:
    text = (
        f"router id {router_id};\n"
        "protocol device {}\n"
        "protocol bfd {\n"
        '  interface "dummy*", "vx*" { interval 20 ms; };\n'
        '  interface -"lo", "eth*" { min rx interval 100 ms; min tx interval 100 ms;'
        f' multiplier 3; authentication keyed sha1; password "{SECRET}"; }};\n'
        "}\n"
        f"protocol bgp b {{ local as 64512; neighbor {neighbor} as 64512; direct; bfd on; }}\n"
    )
    name = "bird6.cfg" if ipv6 else "bird.cfg"
    (peer,) = daemon_config_from_bird(read_bird_config(name, ipv6=ipv6, text=text)).peers
    assert peer.bfd is not None and peer.bfd.multihop is False
    assert len(peer.bfd.interfaces) == 2 and peer.bfd.auth == "none"  # chosen at run time
    return peer.bfd


def test_the_connected_interface_inside_a_namespace(topology: Topology) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    for address, expected in ((b.ipv4, "eth0"), (b.ipv6, "eth0"), ("203.0.113.9", None),
                              ("2001:db9::1", None), ("127.0.0.1", "lo")):  # fmt: skip
        found = call_in_namespace(a.netns, lambda address=address: connected_interface(address))
        assert found == expected, address


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_bird2_and_myna_from_a_bird_cfg_agree_on_the_interfaces_block(
    topology: Topology, ipv6: bool
) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, theirs = (b.ipv6, a.ipv6) if ipv6 else (b.ipv4, a.ipv4)
    spec = BfdSpec(auth="keyed_sha1", secret=SECRET)  # single hop, 100 ms x 3, on eth0
    peer = Bird2BfdPeer(
        b, b.ipv4, 64512, [Neighbor(theirs, 64512)], ["198.19.2.0/26"], bfd=spec
    ).start()
    bfd = _bfd_from_bird_cfg(a.ipv4, mine, ipv6)
    myna = MynaFromBirdCfg(
        a, a.ipv4, 64512, [Neighbor(mine, 64512)], ["198.19.1.0/26"], bfd=spec, bfd_model=bfd
    ).start()
    myna.wait_established(mine, TIMEOUT)
    row: dict[str, Any] = wait_for(
        lambda: myna.bfd_row(mine), TIMEOUT, "Myna's BFD session Up",
        until=lambda r: r["state"] == "Up" and r["detection_time_ms"] > 0,
    )  # fmt: skip
    assert (row["mode"], row["auth"]) == ("single-hop", "keyed_sha1")
    assert row["tx_interval_ms"] == row["rx_interval_ms"] == 100
    assert row["detection_time_ms"] == 300
    assert row["auth_failures"] == 0
    line = next(
        line for line in peer.bfd_sessions().splitlines() if line.split()[:1] == [theirs]
    )  # fmt: skip
    words = line.split()
    assert words[1:3] == ["eth0", "Up"] and words[-2:] == ["0.100", "0.300"]
