"""A read BIRD configuration -> Myna's ``DaemonConfig``, the one internal configuration.

Role: the YAML front-end (``bgpd.config``) and this one build the same ``DaemonConfig``;
nothing after it knows which file it came from. Behaviour comes from what BIRD would do with
the file: each ``protocol bgp`` is a ``Peer`` whose import and export policies are its BIRD
filters (``Peer.import_filter``/``export_filter``, compiled by ``BirdFilterModel.compile``),
the kernel protocol's filters decide what is learned and programmed, the static protocol's
routes are ``static_routes`` and the direct protocol's interfaces ``direct``. Calico's
objects (pools, blocks...) are not filled in: what a Calico file reveals of them is only
shown by ``myna check`` (``calico_facts``).

Mapping (BIRD -> Myna):

* ``router id`` -> ``router_id`` (required: Myna does not pick one from interfaces).
* the ``local as`` of the BGP templates (without templates: the one most BGP protocols
  use) -> ``local_as``; a protocol with another one gets ``Peer.local_as`` (Calico's
  ``localASNumber``). A file without BGP protocols and templates says nothing: 64512,
  Calico's default, which no session uses then.
* ``neighbor IP [port P] as N``, ``source address``/``local IP as``, ``passive``,
  ``password``, ``rr client``, ``rr cluster id`` (one for the node: ``cluster_id``),
  ``next hop self|keep``, ``add paths`` (sending every path the export filter accepts, as
  BIRD does), ``allow local as N``, ``graceful restart
  [time]`` (BIRD's default "aware" and "on" both mean graceful restart in Myna),
  ``gateway``, ``preference``, ``import limit`` -> the ``Peer`` fields.
* ``bfd on|graceful`` with ``protocol bfd`` (its ``neighbor`` entry for the peer, else its
  ``multihop`` block for a multihop session, its first ``interface`` block admitting the
  peer's interface for a single-hop one, else BIRD's defaults) -> ``Peer.bfd``, the
  interface blocks kept in ``bfd.interfaces`` when the interface is known only at run time;
  ``bfd on`` without a bfd protocol -> ``bfd.enabled: false``, as BIRD then runs no session
  (``bfd_map``).
* ``multihop [N]``/``direct``/``ttl security``: TTL ``N`` (1 for direct, BIRD's defaults:
  iBGP 64, eBGP direct); with ttl security, GTSM over those hops (``ttl_security = N``).
* ``hold time``, ``keepalive time``, ``connect delay time``, ``connect retry time``,
  ``error wait time A,B`` -> ``Peer.timers``.
* ``listen bgp [address A] [port P]`` -> ``listen`` (bird: 0.0.0.0, bird6: ::).
* ``graceful restart wait N`` -> ``selection_deferral``.
* kernel protocol: ``learn`` -> learning every alien route type and protocol BIRD learns
  (not 0 unspec, 1 redirect, 2 kernel, nor ours), ``scan time`` -> ``reconcile_interval``
  (at least Myna's 30 s: changes arrive as notifications, the re-read is a safety net),
  ``kernel table`` -> ``table``, ``metric``, ``device routes`` -> ``device_routes``,
  filters -> ``kernel.import_filter`` and ``export_filter`` (krt_metric and krt_tunnel in
  the verdict); ``persist``, ``merge paths``
  and ``graceful restart`` must be on, as Myna always behaves so.
* ``log`` with debug or trace, or a protocol with ``debug all`` -> ``log_level: debug``
  (Myna has one log level, not BIRD's per-protocol debug categories: only a request for
  all of them turns it on; Calico writes ``debug all`` for logSeverityScreen Debug and
  ``debug { states ... }`` otherwise).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from pydantic import ValidationError

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.bfd_map import BfdMapper
from bgpd.bird_config.errors import BirdConfigError, Position, not_supported
from bgpd.config import BirdFilterModel, DaemonConfig

_DEFAULT_AS = 64512  # Calico's default asNumber, for a file without BGP
_OWN_PROTOCOL = 12  # RTPROT_BIRD: what Myna writes its routes with
_SAFETY_NET_RESCAN = 30.0  # seconds: KernelModel.reconcile_interval's default
# BIRD learns every route whose protocol is not unspec (0), redirect (1), kernel (2) nor its own
_LEARNED_PROTOCOLS = tuple(p for p in range(3, 256) if p != _OWN_PROTOCOL)


def _ip(address: int | None, ipv6: bool) -> str | None:
    if address is None:
        return None
    return str(ipaddress.IPv6Address(address) if ipv6 else ipaddress.IPv4Address(address))


def _prefix(prefix: int, ipv6: bool) -> str:
    return f"{_ip(prefix >> 8, ipv6)}/{prefix & 0xFF}"


def _where(position: Position) -> str:
    return f"{position.file}:{position.line}"


def filter_model(program: ast.FilterProgram, where: Position) -> BirdFilterModel:
    """``program`` as the config field the daemon compiles."""
    defined = program.filter.position if program.filter is not None else where
    return BirdFilterModel(name=program.name, defined_at=_where(defined), program=program)


def _node_as(config: m.BirdConfig) -> int:
    """The AS the BGP protocols share; the ones with another get ``Peer.local_as``.

    A ``local as`` in a BGP template is the common one (Calico's bgp_template, which a peer
    with localASNumber overrides); without templates, the one most protocols use.
    """
    templates = [t for t in config.templates.values() if isinstance(t, m.BgpProtocol)]
    found = Counter(t.local_as for t in templates if t.local_as)
    if not found:
        found = Counter(
            p.local_as for p in config.protocols if isinstance(p, m.BgpProtocol) and p.local_as
        )
    if not found:
        return _DEFAULT_AS
    return found.most_common(1)[0][0]


def _kind(name: str) -> str:
    for prefix, kind in (("Mesh_", "mesh"), ("Node_", "node"), ("Global_", "global")):
        if name.startswith(prefix):
            return kind
    return "global"


def _peer(protocol: m.BgpProtocol, node_as: int, ipv6: bool, bfd: BfdMapper) -> dict[str, Any]:
    if protocol.disabled:
        raise not_supported(protocol.position, "a disabled protocol")
    hops = protocol.effective_multihop() or 1
    timers: dict[str, Any] = {
        "hold_time": protocol.hold_time,
        "connect_delay": float(protocol.connect_delay),
        "connect_retry": float(protocol.connect_retry),
        "error_wait": (float(protocol.error_wait[0]), float(protocol.error_wait[1])),
    }
    if protocol.keepalive_time:
        timers["keepalive_time"] = protocol.keepalive_time
    if protocol.allow_local_as < 0:
        raise not_supported(protocol.position, "allow local as without a number")
    peer: dict[str, Any] = {
        "address": _ip(protocol.neighbor, ipv6),
        "as": protocol.remote_as,
        "port": protocol.port,
        "passive": protocol.passive,
        "source_address": _ip(protocol.source_address, ipv6),
        "password": protocol.password,
        "ttl_security": hops if protocol.ttl_security else 0,
        "multihop": hops,
        "graceful_restart": protocol.graceful_restart is not m.GracefulRestart.OFF,
        "restart_time": protocol.graceful_restart_time,
        "next_hop_mode": {
            m.NextHopMode.DEFAULT: "auto",
            m.NextHopMode.SELF: "self",
            m.NextHopMode.KEEP: "keep",
        }[protocol.next_hop],
        "add_paths": protocol.add_paths.value,
        # BIRD sends every route of a prefix its export filter accepts (RA_ANY), not only the
        # ECMP set, once ADD-PATH is negotiated for sending
        "add_paths_send": "all",
        "add_paths_limit": 255,
        "kind": _kind(protocol.name),
        "allow_own_as": protocol.allow_local_as,
        "route_reflector_client": protocol.rr_client,
        "timers": timers,
        "name": protocol.name,
        "preference": protocol.preference,
        "gateway": protocol.effective_gateway().value,
        "bfd": bfd.peer(protocol),  # bfd on|graceful, with the bfd protocol's settings
        "import_filter": filter_model(protocol.import_filter, protocol.position),
        "export_filter": filter_model(protocol.export_filter, protocol.position),
    }
    if protocol.local_as != node_as:
        peer["local_as"] = protocol.local_as
    if protocol.import_limit is not None:
        peer["max_prefixes"] = _limit(protocol.import_limit, protocol.position)
    return peer


def _limit(limit: m.Limit, where: Position) -> dict[str, Any]:
    if limit.action is m.LimitAction.WARN:
        return {"limit": limit.limit, "action": "warn"}
    if limit.action is m.LimitAction.RESTART:
        return {"limit": limit.limit, "action": "cease", "restart_after": 60.0}
    if limit.action is m.LimitAction.DISABLE:
        return {"limit": limit.limit, "action": "cease", "restart_after": None}
    raise not_supported(where, "import limit action block")


def _kernel(config: m.BirdConfig) -> dict[str, Any]:
    kernels = [p for p in config.protocols if isinstance(p, m.KernelProtocol)]
    if not kernels:
        return {}
    if len(kernels) > 1:
        raise not_supported(kernels[1].position, "a second kernel protocol")
    kernel = kernels[0]
    if kernel.disabled:
        raise not_supported(kernel.position, "a disabled protocol")
    for on, what in (
        (kernel.persist, "a kernel protocol without persist"),
        (kernel.merge_paths > 0, "a kernel protocol without merge paths"),
        (kernel.graceful_restart, "a kernel protocol without graceful restart"),
    ):
        if not on:
            raise not_supported(kernel.position, what)
    model: dict[str, Any] = {
        "program": kernel.export_filter.kind is not ast.FilterKind.NONE,
        "learn": kernel.learn,
        "metric": kernel.metric,
        "device_routes": kernel.device_routes,
        "name": kernel.name,
        "preference": kernel.preference,
        # BIRD scans to learn; Myna learns from notifications and re-reads only as a safety
        # net, three full dumps each time: every 2 s (Calico's scan time) that costs a core's
        # half at 100,000 routes. A longer scan time than the safety net's is kept.
        "reconcile_interval": max(float(kernel.scan_time), _SAFETY_NET_RESCAN),
        "import_filter": filter_model(kernel.import_filter, kernel.position),
        "export_filter": filter_model(kernel.export_filter, kernel.position),
    }
    if kernel.kernel_table is not None:
        model["table"] = kernel.kernel_table
    if kernel.learn:
        model["learn_filter"] = {
            "protocols": list(_LEARNED_PROTOCOLS),
            "types": ["unicast", "blackhole", "unreachable", "prohibit"],
        }
    return model


def _static_routes(config: m.BirdConfig) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for protocol in config.protocols:
        if not isinstance(protocol, m.StaticProtocol):
            continue
        if protocol.disabled:
            raise not_supported(protocol.position, "a disabled protocol")
        routes.extend(
            {
                "prefix": _prefix(route.prefix, config.ipv6),
                "kind": route.kind.value,
                "gateway": _ip(route.gateway, config.ipv6),
                "device": route.device,
                "protocol": protocol.name,
                "preference": protocol.preference,
            }
            for route in protocol.routes
        )
    return routes


def _direct(config: m.BirdConfig) -> dict[str, Any] | None:
    directs = [p for p in config.protocols if isinstance(p, m.DirectProtocol)]
    if not directs:
        return None
    if len(directs) > 1:
        raise not_supported(directs[1].position, "a second direct protocol")
    direct = directs[0]
    patterns = [
        (pattern.pattern if pattern.include else f"-{pattern.pattern}")
        for group in direct.interfaces
        for pattern in group
    ]
    # BIRD's direct protocol without an interface option takes every interface
    return {
        "interfaces": patterns or ["*"],
        "protocol": direct.name,
        "preference": direct.preference,
    }


def daemon_config_from_bird(config: m.BirdConfig) -> DaemonConfig:
    """The ``DaemonConfig`` of a BIRD configuration; BirdConfigError when Myna cannot."""
    start = Position(config.main_file, 1, 0)
    if config.router_id is None:
        raise not_supported(start, "a configuration without a router id")
    ipv6 = config.ipv6
    node_as = _node_as(config)
    bgp = [p for p in config.protocols if isinstance(p, m.BgpProtocol)]
    cluster_ids = {p.rr_cluster_id for p in bgp if p.rr_cluster_id is not None}
    bfd = BfdMapper(config)
    if len(cluster_ids) > 1:
        raise not_supported(bgp[0].position, "route reflector cluster ids differing per peer")
    data: dict[str, Any] = {
        "router_id": str(ipaddress.IPv4Address(config.router_id)),
        "local_as": node_as,
        "listen": {
            "addresses": [
                _ip(config.listen_address, ipv6)
                if config.listen_address is not None
                else ("::" if ipv6 else "0.0.0.0")
            ],
            "port": config.listen_port if config.listen_port is not None else 179,
        },
        "peers": [_peer(p, node_as, ipv6, bfd) for p in bgp],
        "static_routes": _static_routes(config),
        "families": ["ipv6" if ipv6 else "ipv4"],
    }
    bfd.check_neighbors()
    if cluster_ids:
        data["cluster_id"] = str(ipaddress.IPv4Address(cluster_ids.pop()))
    kernel = _kernel(config)
    if kernel:
        data["kernel"] = kernel
    direct = _direct(config)
    if direct is not None:
        data["direct"] = direct
    if config.graceful_restart_wait is not None:
        data["selection_deferral"] = float(config.graceful_restart_wait)
    if any({"debug", "trace"} & set(log.categories) for log in config.logs) or any(
        p.debug == m.DEBUG_FLAGS for p in config.protocols
    ):
        data["log_level"] = "debug"
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise BirdConfigError(start, f"Myna cannot run this configuration: {problems}") from None
