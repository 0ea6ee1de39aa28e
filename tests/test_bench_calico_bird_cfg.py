"""The benchmarks' Calico ``bird.cfg`` renderer against Calico's own renderings.

``bench.calico_bird_cfg`` must write what confd writes: for three corpus scenarios (a route
reflector with RR clients and an eBGP peer with ``next hop keep``; mesh nodes with a pool
without encapsulation and with an IPIP pool whose routes Felix programs) its three files
equal Calico's token for token (comments and layout aside). The files it writes for the
benchmarks load into a ``DaemonConfig`` with the roles they mean.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench import calico_bird_cfg as cfg

CORPUS = Path("/work/shared/calico-confd-corpus")
BLOCKS = ("10.0.0.0/30", "10.1.0.0/24", "10.2.0.1/32", "192.168.221.192/26", "192.168.221.64/26")

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="the confd corpus is not here")


def tokens(text: str) -> list[str]:
    """BIRD tokens, comments dropped (good enough for comparing renderings)."""
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(r'"[^"]*"|\d+\.\d+\.\d+\.\d+(?:/\d+)?|[A-Za-z_][\w.]*|\d+|&&|\|\||\S', text)


def _same_as_corpus(node: cfg.CalicoNode, scenario: str) -> None:
    for name, text in cfg.render(node).items():
        assert tokens(text) == tokens((CORPUS / scenario / name).read_text()), name


@needs_corpus
def test_route_reflector_as_calico_renders_it() -> None:
    peers = cfg.reflector_peers("10.192.0.2", ["10.192.0.4", "10.192.0.3"], 64532, "10.0.0.1")
    external = cfg.BgpPeer("Node_172_19_4_87", "172.19.4.87", 64533, next_hop_keep=True)
    node = cfg.CalicoNode(
        "10.192.0.2", "10.192.0.0/16", 64532, (*peers, external),
        (cfg.Pool("192.168.0.0/16", "ipip"),), BLOCKS,
    )  # fmt: skip
    _same_as_corpus(node, "explicit_peering/keepnexthop")


@needs_corpus
@pytest.mark.parametrize(
    ("scenario", "encapsulation"), [("ipip-off", "none"), ("ipip-always", "ipip")]
)
def test_mesh_node_as_calico_renders_it(scenario: str, encapsulation: str) -> None:
    peers = cfg.mesh_peers("10.192.0.2", ["10.192.0.3", "10.192.0.4", "10.192.0.2"], 64512)
    node = cfg.CalicoNode(
        "10.192.0.2", "10.192.0.0/16", 64512, peers, (cfg.Pool("192.168.0.0/16", encapsulation),),
        BLOCKS,
    )  # fmt: skip
    _same_as_corpus(node, f"mesh/{scenario}")


def test_covering_pools_leave_the_session_subnet_out() -> None:
    pools = cfg.covering_pools("198.18.1.0", "198.19.255.255", "none", ["198.18.0.0/24"])
    assert pools[0] == cfg.Pool("198.18.1.0/24", "none")
    assert pools[-1] == cfg.Pool("198.19.0.0/16", "none")
    with pytest.raises(ValueError, match="would hold"):
        cfg.covering_pools("198.18.0.0", "198.18.3.255", "none", ["198.18.0.0/24"])


def test_rendered_files_load_as_the_roles_they_mean(tmp_path: Path) -> None:
    from bgpd.bird_config.cli import load  # noqa: PLC0415

    peers = cfg.reflector_peers("198.18.0.1", ["198.18.0.10", "198.18.0.11"], 64512, "198.18.0.1")
    node = cfg.CalicoNode(
        "198.18.0.1", "198.18.0.0/24", 64512, peers,
        cfg.covering_pools("198.18.1.0", "198.18.255.255", "ipip", ["198.18.0.0/24"]),
        ("198.19.0.0/26",),
    )  # fmt: skip
    path = cfg.write(node, tmp_path)
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        _bird, daemon = load(str(path), False)
    finally:
        os.chdir(here)
    assert daemon.cluster_id == "198.18.0.1"
    assert [(p.address, p.route_reflector_client) for p in daemon.peers] == [
        ("198.18.0.10", True),
        ("198.18.0.11", True),
    ]
    assert all(p.export_filter is not None and p.import_filter is not None for p in daemon.peers)
    assert daemon.kernel.export_filter is not None
    assert [s.prefix for s in daemon.static_routes] == ["198.19.0.0/26"]
