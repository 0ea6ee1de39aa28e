"""RFC 4456 route reflection as an export step of the update groups.

Role: decide which iBGP-learned routes an iBGP peer may receive from a route reflector, and
what a reflected route carries. RFC 4456 section 6: a route from a client goes to the other
clients and to the non-clients; a route from a non-client goes to the clients only; a route
from an eBGP peer or from this node goes everywhere (that is plain RFC 4271, untouched here).
Section 8: a reflected route gets ORIGINATOR_ID (the peer it came from, unless the route
already carries one) and our cluster id in front of its CLUSTER_LIST; its next hop is left as
it is (the group's next-hop mode still applies, as BIRD's ``next hop self`` does).

Data flow: the daemon builds one ``Reflection`` per iBGP peer from the config (the node's
cluster id, whether the peer is a client, whether clients reflect to clients) and puts it in
the peer's ``ExportSettings``. Settings are the update-group key, so clients and non-clients
never share a group and each group asks ``allows`` once per route and change (BIRD's
``bgp_preexport`` does the same per peer). For a route it passes, the group calls ``reflect``
inside its attribute rewrite, which the group caches per (attribute set, source): a distinct
input is rewritten and interned once, and every member of the group gets the same encoded
bytes (but the member the route came from, which never gets it back, as in BIRD: see
``rib.adj_rib_out``). The client status of the route's origin comes from its source
(``rr_client``), set by the RIB from the peer's config when the session comes up.

This package is a leaf: it knows a route's source only by the ``ReflectedSource`` protocol
(the RIB's ``rib.route.Source`` has it), so ``rib`` imports it and never the other way.
``reflector.loop_check`` is the receiving side.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from speaker.path_attributes import PathAttributes


class ReflectedSource(Protocol):
    """What reflection reads of a route's source (``rib.route.Source``)."""

    @property
    def rr_client(self) -> bool:
        """The route came from a route-reflector client of ours."""

    @property
    def router_id(self) -> int:
        """The BGP identifier of the peer the route came from."""


class PeerRole(enum.Enum):
    """What an iBGP peer is to a route reflector (RFC 4456 section 2)."""

    CLIENT = "client"
    NON_CLIENT = "non-client"


@dataclass(frozen=True, slots=True)
class Reflection:
    """The reflection rules towards one kind of iBGP peer (part of the update-group key).

    ``cluster_id`` is our cluster id (Calico's ``routeReflectorClusterID``, the router id when
    none is configured), ``role`` is what the receiving peers are, ``client_to_client`` off
    keeps routes from clients away from other clients (RFC 4456 section 5, clients fully
    meshed among themselves).
    """

    cluster_id: int
    role: PeerRole
    client_to_client: bool = True

    def allows(self, source: ReflectedSource) -> bool:
        """Whether a route learned over iBGP from ``source`` is reflected to this group."""
        if source.rr_client:
            return self.role is PeerRole.NON_CLIENT or self.client_to_client
        return self.role is PeerRole.CLIENT

    def reflect(
        self, attrs: PathAttributes, source: ReflectedSource
    ) -> tuple[int, tuple[int, ...]]:
        """ORIGINATOR_ID and CLUSTER_LIST of ``attrs`` reflected from ``source``.

        An ORIGINATOR_ID already present is kept: it names the route's first iBGP speaker,
        possibly behind another reflector.
        """
        originator = source.router_id if attrs.originator_id is None else attrs.originator_id
        return originator, (self.cluster_id, *attrs.cluster_list)
