"""What one session agreed on, as the single immutable value the codec takes.

Data flow: the session FSM builds it with ``negotiate(sent_open, received_open)`` once both OPENs
are known; from then on every decode and encode call for that session gets it, so that 4-octet
AS numbers, ADD-PATH per family and direction, extended messages and extended next hops are
decided in one place. Tests and benchmarks build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from speaker.capabilities import (
    AddPathCapability,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    MultiprotocolCapability,
)
from speaker.open_message import Open
from speaker.wire_codes import (
    MAX_EXTENDED_MESSAGE_LEN,
    MAX_MESSAGE_LEN,
    AddPathDirection,
    Afi,
    Family,
)

_ALL_FAMILIES = frozenset(Family)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The session facts that change how bytes are read and written.

    ``ibgp`` and ``peer_as`` are not negotiated but decide RFC 7606 outcomes (LOCAL_PREF from an
    eBGP peer is discarded; an eBGP AS_PATH must start with the peer's AS), so they travel here.
    ``peer_as`` 0 skips the first-AS check.
    """

    asn4: bool = True
    ibgp: bool = True
    peer_as: int = 0
    families: frozenset[Family] = _ALL_FAMILIES
    add_path_receive: frozenset[Family] = frozenset()
    add_path_send: frozenset[Family] = frozenset()
    extended_message: bool = False
    ipv4_nlri_ipv6_next_hop: bool = False
    enhanced_route_refresh: bool = False  # RFC 7313: refreshes come between BoRR and EoRR

    @property
    def max_message_len(self) -> int:
        """Largest UPDATE either side may send (RFC 8654)."""
        return MAX_EXTENDED_MESSAGE_LEN if self.extended_message else MAX_MESSAGE_LEN


def _families(caps: tuple[Capability, ...]) -> set[Family]:
    out = set()
    for cap in caps:
        if isinstance(cap, MultiprotocolCapability):
            family = Family.lookup(cap.afi, cap.safi)
            if family is not None:
                out.add(family)
    return out


def _add_path(caps: tuple[Capability, ...], want: AddPathDirection) -> set[Family]:
    out = set()
    for cap in caps:
        if isinstance(cap, AddPathCapability):
            for afi, safi, direction in cap.families:
                family = Family.lookup(afi, safi)
                if family is not None and direction & want:
                    out.add(family)
    return out


def _ext_next_hop(caps: tuple[Capability, ...]) -> bool:
    for cap in caps:
        if isinstance(cap, ExtendedNextHopCapability):
            for afi, safi, nh_afi in cap.entries:
                if Family.lookup(afi, safi) == Family.IPV4_UNICAST and nh_afi == Afi.IPV6:
                    return True
    return False


def negotiate(sent: Open, received: Open, local_as: int, peer_as: int) -> Negotiated:
    """Intersect our OPEN with the peer's (RFC 5492: a capability counts when both sent it).

    RFC 4760: a speaker that sends no multiprotocol capability at all speaks IPv4 unicast only.
    """
    ours, theirs = sent.capabilities, received.capabilities
    our_families = _families(ours) or {Family.IPV4_UNICAST}
    their_families = _families(theirs) or {Family.IPV4_UNICAST}
    families = our_families & their_families
    asn4 = any(isinstance(c, FourOctetAsCapability) for c in ours) and any(
        isinstance(c, FourOctetAsCapability) for c in theirs
    )
    return Negotiated(
        asn4=asn4,
        ibgp=local_as == peer_as,
        peer_as=peer_as,
        families=frozenset(families),
        # We receive path ids where we said "receive" and the peer said "send".
        add_path_receive=frozenset(
            _add_path(ours, AddPathDirection.RECEIVE)
            & _add_path(theirs, AddPathDirection.SEND)
            & families
        ),
        add_path_send=frozenset(
            _add_path(ours, AddPathDirection.SEND)
            & _add_path(theirs, AddPathDirection.RECEIVE)
            & families
        ),
        extended_message=any(isinstance(c, ExtendedMessageCapability) for c in ours)
        and any(isinstance(c, ExtendedMessageCapability) for c in theirs),
        ipv4_nlri_ipv6_next_hop=_ext_next_hop(ours) and _ext_next_hop(theirs),
        enhanced_route_refresh=any(isinstance(c, EnhancedRouteRefreshCapability) for c in ours)
        and any(isinstance(c, EnhancedRouteRefreshCapability) for c in theirs),
    )
