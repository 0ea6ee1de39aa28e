"""The route attributes a BIRD filter names, and which of them Myna's filters can read.

Role: the parser looks a keyword up here to know whether it is a route attribute and how
BIRD stores it; the compiler maps each to Myna's route data (see ``filter_compiler`` for the
table of BIRD attribute -> Myna field).

BIRD 1.6 stores ``bgp_origin`` as an int: reading it gives an int, so
``bgp_origin = ORIGIN_IGP`` compares an int with an enum and is false in BIRD 1.6.8 (its
``f_type`` is "currently unused"); Myna follows.
"""

from __future__ import annotations

from bgpd.bird_config.filter_ast import DynamicAttr, StaticAttr, StorageType

STATIC_ATTRIBUTES: dict[str, StaticAttr] = {
    "from": StaticAttr.FROM,
    "gw": StaticAttr.GW,
    "net": StaticAttr.NET,
    "proto": StaticAttr.PROTO,
    "source": StaticAttr.SOURCE,
    "scope": StaticAttr.SCOPE,
    "cast": StaticAttr.CAST,
    "dest": StaticAttr.DEST,
    "ifname": StaticAttr.IFNAME,
    "ifindex": StaticAttr.IFINDEX,
}

_S = StorageType
DYNAMIC_ATTRIBUTES: dict[str, DynamicAttr] = {
    attr.name: attr
    for attr in (
        DynamicAttr("bgp_origin", _S.INT),
        DynamicAttr("bgp_path", _S.AS_PATH),
        DynamicAttr("bgp_next_hop", _S.IP_ADDRESS),
        DynamicAttr("bgp_med", _S.INT),
        DynamicAttr("bgp_local_pref", _S.INT),
        DynamicAttr("bgp_atomic_aggr", _S.OPAQUE),
        DynamicAttr("bgp_aggregator", _S.OPAQUE),
        DynamicAttr("bgp_community", _S.INT_SET),
        DynamicAttr("bgp_originator_id", _S.ROUTER_ID),
        DynamicAttr("bgp_cluster_list", _S.INT_SET),
        DynamicAttr("bgp_ext_community", _S.EC_SET),
        DynamicAttr("bgp_large_community", _S.LC_SET),
        DynamicAttr("krt_source", _S.INT, temporary=True),
        DynamicAttr("krt_metric", _S.INT, temporary=True),
        DynamicAttr("krt_prefsrc", _S.IP_ADDRESS),
        DynamicAttr("krt_realm", _S.INT),
        DynamicAttr("krt_tunnel", _S.STRING),  # Calico's fork
    )
}

# Attributes BIRD 1.6 knows that Myna's routes cannot carry: naming one is an error.
UNSUPPORTED_ATTRIBUTES = frozenset(
    {
        "igp_metric",
        "krt_scope",
        "krt_mtu",
        "krt_window",
        "krt_rtt",
        "krt_rttvar",
        "krt_sstresh",
        "krt_cwnd",
        "krt_advmss",
        "krt_reordering",
        "krt_hoplimit",
        "krt_initcwnd",
        "krt_rto_min",
        "krt_initrwnd",
        "krt_quickack",
        "krt_lock_mtu",
        "krt_lock_window",
        "krt_lock_rtt",
        "krt_lock_rttvar",
        "krt_lock_sstresh",
        "krt_lock_cwnd",
        "krt_lock_advmss",
        "krt_lock_reordering",
        "krt_lock_hoplimit",
        "krt_lock_rto_min",
        "krt_feature_ecn",
        "krt_feature_allfrag",
        "ospf_metric1",
        "ospf_metric2",
        "ospf_tag",
        "ospf_router_id",
        "rip_metric",
        "rip_tag",
        "babel_metric",
        "ra_preference",
        "ra_lifetime",
    }
)
