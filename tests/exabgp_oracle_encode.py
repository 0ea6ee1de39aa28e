"""The ExaBGP oracle's encoders: neutral plain-Python values in, wire bytes ExaBGP built out.

Data flow: a test hands ``exa_encode_*`` the neutral form that ``exabgp_oracle`` documents (and
``exa_decode`` returns) plus, for UPDATEs, an ``OracleSession``; ExaBGP's own message, capability,
attribute and NLRI objects are built from it and ExaBGP packs them into whole BGP messages (19-
octet header included). ``exabgp_attributes`` and ``nlris_for`` are the neutral -> ExaBGP object
step on its own; ``bench/exabgp_codec.py`` uses them to time ExaBGP's encoder. Sessions and the
family and IP helpers come from ``exabgp_oracle_session``. Tests normally reach these names
through ``exabgp_oracle``, which re-exports them; what ExaBGP cannot encode, or encodes its own
way, is listed in that module's docstring. Nothing here imports Myna.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from exabgp.bgp.message import KeepAlive, Notify, Open, Update
from exabgp.bgp.message.action import Action
from exabgp.bgp.message.open import ASN, HoldTime, RouterID, Version
from exabgp.bgp.message.open.capability import Capabilities, Capability
from exabgp.bgp.message.open.capability.addpath import AddPath
from exabgp.bgp.message.open.capability.asn4 import ASN4
from exabgp.bgp.message.open.capability.extended import ExtendedMessage
from exabgp.bgp.message.open.capability.graceful import Graceful
from exabgp.bgp.message.open.capability.hostname import HostName
from exabgp.bgp.message.open.capability.mp import MultiProtocol
from exabgp.bgp.message.open.capability.nexthop import NextHop as NextHopCapability
from exabgp.bgp.message.open.capability.refresh import EnhancedRouteRefresh
from exabgp.bgp.message.open.capability.refresh import RouteRefresh as RouteRefreshCapability
from exabgp.bgp.message.refresh import RouteRefresh
from exabgp.bgp.message.update.attribute import (
    CONFED_SEQUENCE,
    CONFED_SET,
    MED,
    SEQUENCE,
    SET,
    Aggregator,
    ASPath,
    AtomicAggregate,
    Attributes,
    ClusterID,
    ClusterList,
    Communities,
    ExtendedCommunities,
    GenericAttribute,
    LargeCommunities,
    LocalPreference,
    NextHop,
    Origin,
    OriginatorID,
)
from exabgp.bgp.message.update.attribute.community import (
    Community,
    ExtendedCommunity,
    LargeCommunity,
)
from exabgp.bgp.message.update.eor import EOR
from exabgp.bgp.message.update.nlri.cidr import CIDR
from exabgp.bgp.message.update.nlri.inet import INET
from exabgp.bgp.message.update.nlri.qualifier import PathInfo
from exabgp.protocol.family import AFI, SAFI
from exabgp.protocol.ip import IP, IPv4
from exabgp_oracle_session import Neutral, OracleSession, _ip_text, exabgp_family, negotiated_for

_SEGMENTS: dict[int, type[list[Any]]] = {
    SET.ID: SET,
    SEQUENCE.ID: SEQUENCE,
    CONFED_SEQUENCE.ID: CONFED_SEQUENCE,
    CONFED_SET.ID: CONFED_SET,
}

_OTC = 35  # RFC 9234, unknown to ExaBGP 5


def exa_encode_keepalive() -> bytes:
    """A KEEPALIVE as ExaBGP writes it."""
    return bytes(KeepAlive().message())


def exa_encode_notification(code: int, subcode: int, data: bytes) -> bytes:
    """A NOTIFICATION as ExaBGP writes it (``Notify`` with raw bytes is sent as given)."""
    return bytes(Notify(code, subcode, bytes(data)).message())


def exa_encode_route_refresh(afi: int, safi: int, subtype: int) -> bytes:
    """A ROUTE-REFRESH (RFC 2918, subtype per RFC 7313) as ExaBGP writes it."""
    return bytes(RouteRefresh(afi, safi, subtype).message())


class _RawCapability(Capability):
    """A capability value passed through as given: ExaBGP's UnknownCapability packs nothing."""

    def __init__(self, code: int) -> None:
        self.ID = code
        self.values: list[bytes] = []

    def extract(self) -> list[bytes]:
        return list(self.values)

    def __str__(self) -> str:
        return f"Raw capability {self.ID}"


_MERGEABLE = frozenset({1, 5, 64, 69})


def _add_capability(caps: Capabilities, cap: Neutral) -> None:
    code = int(cap["code"])
    if code == 71 and "data" not in cap:
        raise ValueError("ExaBGP 5 cannot encode Long-Lived Graceful Restart (71); pass data")
    existing = caps.get(code)
    if existing is not None and code not in _MERGEABLE and "data" not in cap:
        raise ValueError(f"ExaBGP holds one capability {code} per OPEN")
    if "data" in cap:
        raw = existing if isinstance(existing, _RawCapability) else _RawCapability(code)
        raw.values.append(bytes(cap["data"]))
        caps[code] = raw
    elif code == 1:
        mp = existing if existing is not None else MultiProtocol()
        mp.append((AFI.create(cap["afi"]), SAFI.create(cap["safi"])))
        caps[code] = mp
    elif code == 2:
        caps[code] = RouteRefreshCapability()
    elif code == 70:
        caps[code] = EnhancedRouteRefresh()
    elif code == 6:
        caps[code] = ExtendedMessage()
    elif code == 65:
        caps[code] = ASN4(cap["asn"])
    elif code == 64:
        if existing is not None:
            raise ValueError("ExaBGP holds one graceful restart capability per OPEN")
        caps[code] = Graceful().set(
            int(cap["restart_flags"]),
            int(cap["restart_time"]),
            [(AFI.create(a), SAFI.create(s), int(f)) for a, s, f in cap["families"]],
        )
    elif code == 69:
        addpath = existing if existing is not None else AddPath()
        for afi, safi, send_receive in cap["families"]:
            addpath.add_path(AFI.create(afi), SAFI.create(safi), int(send_receive))
        caps[code] = addpath
    elif code == 5:
        nexthop = existing if existing is not None else NextHopCapability()
        for afi, safi, nhafi in cap["entries"]:
            nexthop.add_nexthop(AFI.create(afi), SAFI.create(safi), AFI.create(nhafi))
        caps[code] = nexthop
    elif code == 73:
        caps[code] = HostName(cap["hostname"], cap["domain"])
    else:
        raise ValueError(f"capability {code} needs a data field")


def exa_encode_open(neutral: Neutral) -> bytes:
    """An OPEN built by ExaBGP from the neutral form (see the module docstring for limits)."""
    caps = Capabilities()
    previous: int | None = None
    for cap in neutral["capabilities"]:
        code = int(cap["code"])
        if code in caps and code != previous:
            raise ValueError(f"capability {code} reappears out of order: ExaBGP keys them by code")
        _add_capability(caps, cap)
        previous = code
    asn = int(neutral["asn"])
    if asn > ASN.MAX:
        raise ValueError("the OPEN's My AS field is two octets (use AS_TRANS and capability 65)")
    message = Open(
        Version(int(neutral.get("version", 4))),
        ASN(asn),
        HoldTime(int(neutral["hold_time"])),
        RouterID(str(neutral["router_id"])),
        caps,
    )
    return bytes(message.message())


def _next_hop_ip(text: str) -> Any:
    """An ExaBGP IP for a next hop; ``"global,linklocal"`` packs to the 32 octets."""
    if "," in text:
        first, second = (ipaddress.ip_address(part.strip()) for part in text.split(","))
        return IP.create(str(first), first.packed + second.packed)
    return IP.create(_ip_text(text))


def _inet(family: str, prefix: str, path_id: int | None, action: int) -> INET:
    afi, safi = exabgp_family(family)
    interface = ipaddress.ip_interface(prefix)
    nlri = INET(afi, safi, action)
    nlri.cidr = CIDR(interface.ip.packed, interface.network.prefixlen)
    if path_id is not None:
        nlri.path_info = PathInfo(packed=struct.pack("!L", path_id))
    return nlri


def exabgp_attributes(neutral_attrs: Neutral) -> Attributes:
    """ExaBGP attribute objects for a neutral ``attributes`` dict (NEXT_HOP not included)."""
    attributes = Attributes()
    for key, value in neutral_attrs.items():
        if key == "origin":
            attributes.add(Origin(int(value)))
        elif key == "as_path":
            attributes.add(
                ASPath([_SEGMENTS[int(kind)]([ASN(asn) for asn in asns]) for kind, asns in value])
            )
        elif key == "med":
            attributes.add(MED(int(value)))
        elif key == "local_pref":
            attributes.add(LocalPreference(int(value)))
        elif key == "atomic_aggregate":
            if value:
                attributes.add(AtomicAggregate())
        elif key == "aggregator":
            asn, speaker = value
            attributes.add(Aggregator(ASN(asn), IPv4(_ip_text(speaker))))
        elif key == "communities":
            attributes.add(Communities([Community(struct.pack("!L", c)) for c in value]))
        elif key == "originator_id":
            attributes.add(OriginatorID(_ip_text(value)))
        elif key == "cluster_list":
            attributes.add(ClusterList([ClusterID(_ip_text(c)) for c in value]))
        elif key == "extended_communities":
            attributes.add(
                ExtendedCommunities([ExtendedCommunity(c.to_bytes(8, "big")) for c in value])
            )
        elif key == "large_communities":
            attributes.add(
                LargeCommunities([LargeCommunity(struct.pack("!LLL", *c)) for c in value])
            )
        elif key == "otc":
            attributes.add(GenericAttribute(_OTC, 0xC0, struct.pack("!L", int(value))))
        elif key == "unknown":
            for flags, code, data in value:
                attributes.add(GenericAttribute(int(code), int(flags), bytes(data)))
        else:
            raise ValueError(f"unknown neutral attribute {key!r}")
    return attributes


def nlris_for(neutral: Neutral, attributes: Attributes) -> list[INET]:
    """ExaBGP NLRI objects for a neutral UPDATE; adds NEXT_HOP to ``attributes`` when native."""
    nlris = [
        _inet(family, prefix, path_id, Action.WITHDRAW)
        for family, prefix, path_id in neutral.get("withdrawn", [])
    ]
    next_hops: dict[str, str] = neutral.get("next_hop", {})
    hops = {family: _next_hop_ip(text) for family, text in next_hops.items()}
    for family, prefix, path_id in neutral.get("announced", []):
        if family not in hops:
            raise ValueError(f"announcement in {family} without a next hop")
        nlri = _inet(family, prefix, path_id, Action.ANNOUNCE)
        nlri.nexthop = hops[family]
        nlris.append(nlri)
    ipv4 = hops.get("ipv4-unicast")
    if ipv4 is not None and ipv4.ipv4():
        attributes.add(NextHop(_ip_text(ipv4)))
    return nlris


def exa_encode_update(neutral: Neutral, session: OracleSession) -> list[bytes]:
    """Whole UPDATE messages built by ExaBGP from the neutral form, split to the message size."""
    negotiated = negotiated_for(session)
    eor = neutral.get("eor")
    if eor is not None:
        afi, safi = exabgp_family(eor)
        return [bytes(EOR(afi, safi).message())]
    attributes = exabgp_attributes(neutral.get("attributes", {}))
    nlris = nlris_for(neutral, attributes)
    return [bytes(wire) for wire in Update(nlris, attributes).messages(negotiated)]
