"""What BIRD 1.6 does to a route on its way to a BGP peer, before the export filter runs.

Role: a BGP protocol's export filter in BIRD does not see the route as it sits in the table:
``bgp_import_control`` (``proto/bgp/attrs.c``) first refuses some routes and gives the others
the attributes they will be sent with. The filter then reads and edits those. So that a
compiled export filter reads what BIRD's reads (``defined(bgp_local_pref)`` is true for a
static route there, ``bgp_path.prepend`` works on a kernel route), ``compile_filter`` takes a
``BgpExportContext`` and starts from ``export_view``:

* a route from this same peer, a route with NO_ADVERTISE, or NO_EXPORT / NO_EXPORT_SUBCONFED
  towards an external peer, LLGR_STALE towards a peer not aware of long-lived graceful
  restart, an iBGP-learned route towards an iBGP peer when neither of the two sessions is a
  route-reflector client, a route whose CLUSTER_LIST already has the cluster id of a client
  peer: refused;
* a route not from BGP gets ORIGIN IGP, an empty AS_PATH (external peer: our AS), NEXT_HOP
  our address unless it goes via a gateway the peer can use, LOCAL_PREF 100;
* a BGP route to an external peer gets our AS prepended and a MED of 0 if it had one (BIRD
  1.6 keeps it, zeroed); its NEXT_HOP is kept towards an internal peer (when set), with
  ``next hop keep``, or on the peer's own interface, else ours; a reflected route gets an
  ORIGINATOR_ID (when absent) and our cluster id on its CLUSTER_LIST.

With a context, the verdict's attribute set is the complete set BIRD sends (the daemon must
not rewrite it again for that peer: no second AS prepend or next-hop change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bgpd.bird_config.as_paths import path_prepend
from bgpd.bird_config.runtime import route_facts
from bgpd.bird_config.values import RouteDestCode, RouteSourceCode
from rib.route import Origin, Route
from speaker.path_attributes import ATTRIBUTES, PathAttributes

NO_EXPORT = 0xFFFFFF01
NO_ADVERTISE = 0xFFFFFF02
NO_EXPORT_SUBCONFED = 0xFFFFFF03
LLGR_STALE = 0xFFFF0006
_CACHE_LIMIT = 8192

# (attribute set the filter starts from, whether BIRD treats it as a BGP one: ORIGIN,
# AS_PATH and NEXT_HOP defined) or None: refused before the filter
ExportView = tuple[PathAttributes, bool] | None


@dataclass(frozen=True, slots=True)
class BgpExportContext:
    """The BGP session a route is exported to, as ``bgp_import_control`` sees it.

    ``source_address``: our address on the session (next hop self); ``peer_address`` and
    ``interface``: the peer's address and the interface it is on (None: multihop);
    ``rr_client``: the peer is our client; ``cluster_id``: the session's ``rr cluster id``
    (None: BIRD's default, ``router_id``). BIRD takes the cluster id of the session the
    route came in on when that one is a client's; Myna's ``Source`` does not carry it, so
    all sessions are taken to share one cluster id, as every Calico rendering has it.
    """

    internal: bool
    local_as: int
    source_address: bytes
    peer_address: int = 0
    interface: str | None = None
    next_hop_self: bool = False
    next_hop_keep: bool = False
    rr_client: bool = False
    cluster_id: int | None = None
    router_id: int = 0
    default_local_pref: int = 100
    peer_llgr_aware: bool = False

    @property
    def effective_cluster_id(self) -> int:
        """The cluster id BIRD uses for this session (``rr cluster id`` or the router id)."""
        return self.router_id if self.cluster_id is None else self.cluster_id


def _link_local(next_hop: bytes) -> bool:
    return len(next_hop) >= 16 and next_hop[0] == 0xFE and next_hop[1] & 0xC0 == 0x80


def _bgp_route(context: BgpExportContext, route: Route) -> ExportView:
    source = route.source
    attrs = route.attrs
    cluster_id = context.effective_cluster_id
    if context.rr_client and cluster_id in attrs.cluster_list:
        return None
    communities = attrs.communities
    if NO_ADVERTISE in communities:
        return None
    if not context.internal and (NO_EXPORT in communities or NO_EXPORT_SUBCONFED in communities):
        return None
    if not context.peer_llgr_aware and LLGR_STALE in communities:
        return None
    reflect = False
    if context.internal and source.ibgp:
        if not (context.rr_client or source.rr_client):
            return None
        reflect = True
    changes: dict[str, Any] = {}
    if not context.internal:
        changes["as_path"] = path_prepend(attrs.as_path, context.local_as)
        if attrs.med is not None:
            changes["med"] = 0
    next_hop = attrs.next_hop
    keep = (
        bool(next_hop)
        and not context.next_hop_self
        and (
            context.next_hop_keep
            or (context.internal and any(next_hop))
            or (context.interface is not None and source.interface == context.interface)
        )
    )
    if not keep:
        changes["next_hop"] = context.source_address
    if reflect:
        if attrs.originator_id is None:
            changes["originator_id"] = source.router_id
        changes["cluster_list"] = (cluster_id, *attrs.cluster_list)
    if not changes:
        return attrs, True
    return ATTRIBUTES.intern(attrs._replace(**changes)), True


def _local_route(context: BgpExportContext, route: Route, octets: int) -> ExportView:
    facts = route_facts(route.source)
    gateway = facts.gateway or 0
    gateway_bytes = gateway.to_bytes(octets, "big") if gateway else b""
    use_self = (
        context.next_hop_self
        or facts.dest != RouteDestCode.ROUTER
        or not gateway
        or _link_local(gateway_bytes)
        or (
            not context.internal
            and not context.next_hop_keep
            and (context.interface is None or facts.ifname != context.interface)
        )
    )
    origin = 2 if facts.source in (RouteSourceCode.OSPF_EXT1, RouteSourceCode.OSPF_EXT2) else 0
    view = route.attrs._replace(
        origin=origin,
        as_path=() if context.internal else ((2, (context.local_as,)),),
        next_hop=context.source_address if use_self else gateway_bytes,
        local_pref=context.default_local_pref,
    )
    return ATTRIBUTES.intern(view), True


def export_view(context: BgpExportContext, ipv6: bool) -> Callable[[Route], ExportView]:
    """``bgp_import_control`` for ``context``, memoised per (source, attribute set)."""
    octets = 16 if ipv6 else 4
    cache: dict[tuple[int, int], tuple[Route, ExportView]] = {}

    def view(route: Route) -> ExportView:
        key = (id(route.source), id(route.attrs))
        hit = cache.get(key)
        if hit is not None and hit[0].source is route.source and hit[0].attrs is route.attrs:
            return hit[1]
        if route.source.origin == Origin.BGP:
            if context.peer_address and route.source.address == context.peer_address:
                result: ExportView = None  # never back to the peer it came from
            else:
                result = _bgp_route(context, route)
        else:
            result = _local_route(context, route, octets)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = (route, result)
        return result

    return view
