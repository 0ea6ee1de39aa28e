"""``plan_reload``: which peers a config change keeps, resets, adds or removes, and which
changes it refuses (they need a restart). Pure: two configs in, a plan out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bgpd.config import DaemonConfig, parse_config
from bgpd.reload_plan import plan_reload


def config(peers: list[dict[str, Any]], **top: Any) -> DaemonConfig:
    data = {"router_id": "198.18.0.1", "local_as": 64512, "peers": peers, **top}
    return parse_config(yaml.safe_dump(data))


B = {"address": "198.18.0.2", "as": 64512}
C = {"address": "198.18.0.3", "as": 64512}
D = {"address": "198.18.0.4", "as": 64512}


def test_peers_are_kept_reset_added_and_removed() -> None:
    new = [B, {**C, "ttl_security": 1}, {**D, "port": 1179}, {"address": "198.18.0.5", "as": 1}]
    plan = plan_reload(config([B, C, D]), config(new))
    assert plan.kept == ["198.18.0.2"]
    assert plan.reset == ["198.18.0.3", "198.18.0.4"]
    assert plan.added == ["198.18.0.5"]
    assert plan.removed == []
    plan = plan_reload(config([B, C]), config([B]))
    assert (plan.kept, plan.removed) == (["198.18.0.2"], ["198.18.0.3"])
    assert plan.summary() == "reload: 1 peers kept, 0 reset, 0 added, 1 removed"


def test_inherited_timers_and_policy_inputs_reset_the_peers_that_read_them() -> None:
    own_timers = {**C, "timers": {"hold_time": 90}}
    plan = plan_reload(config([B, own_timers]), config([B, own_timers], timers={"hold_time": 30}))
    assert (plan.reset, plan.kept) == (["198.18.0.2"], ["198.18.0.3"])
    pools = [{"cidr": "198.19.0.0/16"}]
    plan = plan_reload(config([B, C]), config([B, C], ip_pools=pools))
    # Every export reads the pools: each peer is re-filtered (session kept), the kernel too;
    # the imports read no pool, so no peer is asked for its routes again (BIRD's filter_same
    # of an unchanged import filter: no ROUTE-REFRESH).
    assert plan.reset == [] and plan.filters_only == ["198.18.0.2", "198.18.0.3"]
    assert plan.export_changed == plan.filters_only and plan.import_changed == []
    assert plan.kernel_refeed
    # The imports refuse the node's own blocks: a new block changes them (and the exports).
    plan = plan_reload(config([B, C]), config([B, C], blocks=["198.19.1.0/26"]))
    assert plan.import_changed == plan.export_changed == ["198.18.0.2", "198.18.0.3"]
    plan = plan_reload(config([B], announce=["198.19.1.0/26"]), config([B]))
    assert plan.kept == ["198.18.0.2"] and plan.announce_changed


def test_a_changed_password_file_resets_its_peer(tmp_path: Path) -> None:
    secret = tmp_path / "mesh-password"
    secret.write_text("one\n")
    peers = [B, {**C, "password_file": str(secret)}]
    old = config(peers)
    secret.write_text("two\n")
    in_use = {"198.18.0.2": None, "198.18.0.3": "one"}  # what the sessions were started with
    plan = plan_reload(old, config(peers), in_use)
    assert (plan.kept, plan.reset) == (["198.18.0.2"], ["198.18.0.3"])


def test_what_needs_a_restart_is_refused_by_name() -> None:
    plan = plan_reload(config([B]), config([B], router_id="198.18.0.9", local_as=64513))
    assert plan.refused == ["router_id", "local_as"]
    assert plan.summary() == "reload refused: changing router_id, local_as needs a restart"
    # The first route-reflector client turns the node into a reflector (cluster id in use).
    plan = plan_reload(config([B]), config([{**B, "route_reflector_client": True}]))
    assert plan.refused and plan.refused[0].startswith("cluster_id")
    plan = plan_reload(config([B]), config([B], kernel={"program": True}))
    assert plan.refused == ["kernel"]


def test_a_yaml_peers_filters_changed_alone_keep_its_session() -> None:
    """A peer's BGPFilter list is its filters (Calico's BGPPeer.spec.filters): BIRD 1.6 keeps
    the protocol and re-feeds it (proto_reconfigure), it does not restart the session."""
    filters = {
        "f": {"exportV4": [{"action": "Reject", "cidr": "198.19.0.0/16", "matchOperator": "In"}]}
    }
    before = config([B, C], filters=filters)
    after = config([{**B, "filters": ["f"]}, C], filters=filters)
    plan = plan_reload(before, after)
    assert plan.reset == [] and plan.kept == ["198.18.0.3"]
    assert plan.filters_only == plan.import_changed == plan.export_changed == ["198.18.0.2"]
