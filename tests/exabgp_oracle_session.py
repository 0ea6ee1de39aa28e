"""The ExaBGP oracle's sessions: what both ends negotiated, and ExaBGP's view of it.

Data flow: a test (or ``bench/exabgp_codec.py``) describes a session in plain values as an
``OracleSession``; ``negotiated_for`` turns it into ExaBGP's ``Negotiated``, which the decoder in
``exabgp_oracle`` and the encoders in ``exabgp_oracle_encode`` hand to ExaBGP. This module also
holds what both directions share: the ``Neutral`` alias, neutral family names <-> ExaBGP's
(AFI, SAFI), and the text form of IP addresses. Nothing here imports Myna. Tests normally reach
these names through ``exabgp_oracle``, which re-exports them; the neutral form and the session
options are described in that module's docstring.

``negotiated_for`` builds ``Negotiated`` from two synthetic OPENs, the way
``exabgp/configuration/check.py`` does, and caches it per session value. ``local_as`` is the AS
of the speaker whose view the session takes: the sender for ``exa_encode_update``, the receiver
for ``exa_decode``.

Importing this module calls ``exabgp.logger.log.disable()``, which silences ExaBGP's logger
for the whole process.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

from exabgp.bgp.message import Open
from exabgp.bgp.message.open import ASN, HoldTime, RouterID, Version
from exabgp.bgp.message.open.capability import Capabilities, Capability, Negotiated
from exabgp.bgp.message.open.capability.addpath import AddPath
from exabgp.bgp.message.open.capability.asn4 import ASN4
from exabgp.bgp.message.open.capability.extended import ExtendedMessage
from exabgp.bgp.message.open.capability.mp import MultiProtocol
from exabgp.bgp.message.open.capability.negotiated import RequirePath
from exabgp.bgp.message.open.capability.nexthop import NextHop as NextHopCapability
from exabgp.bgp.neighbor import Neighbor
from exabgp.logger import log
from exabgp.protocol.family import AFI, SAFI

log.disable()

Neutral = dict[str, Any]

ROUTER_ID_LOCAL = "198.18.0.1"
ROUTER_ID_PEER = "198.18.0.2"
HOLD_TIME = 180

_FAMILIES: dict[str, tuple[int, int]] = {
    "ipv4-unicast": (1, 1),
    "ipv6-unicast": (2, 1),
    "ipv4-multicast": (1, 2),
    "ipv6-multicast": (2, 2),
}
_FAMILY_NAMES = {pair: name for name, pair in _FAMILIES.items()}


@dataclass(frozen=True)
class OracleSession:
    """What both ends negotiated, in plain values; see the module docstring."""

    local_as: int
    peer_as: int
    asn4: bool = True
    add_path: tuple[str, ...] = ()
    extended_message: bool = False
    families: tuple[str, ...] = ("ipv4-unicast", "ipv6-unicast")
    ext_nexthop_ipv4_over_ipv6: bool = False


# ----------------------------------------------------------------------------- families and IPs


def exabgp_family(name: str) -> tuple[AFI, SAFI]:
    """ExaBGP's (AFI, SAFI) for a neutral family name such as ``"ipv6-unicast"``."""
    try:
        afi, safi = _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unsupported family {name!r}") from None
    return AFI.create(afi), SAFI.create(safi)


def family_name(afi: int, safi: int) -> str:
    """``"ipv4-unicast"`` style name of an (AFI, SAFI) pair, ExaBGP's names for the others."""
    known = _FAMILY_NAMES.get((int(afi), int(safi)))
    if known is not None:
        return known
    return f"{AFI.create(int(afi))}-{SAFI.create(int(safi))}"


def _ip_text(value: object) -> str:
    return str(ipaddress.ip_address(str(value)))


# ----------------------------------------------------------------------------- sessions


def _capabilities(session: OracleSession, asn: int) -> Capabilities:
    caps = Capabilities()
    mp = MultiProtocol()
    mp.extend(exabgp_family(name) for name in session.families)
    caps[Capability.CODE.MULTIPROTOCOL] = mp
    if session.asn4:
        caps[Capability.CODE.FOUR_BYTES_ASN] = ASN4(asn)
    elif asn > ASN.MAX:
        raise ValueError(f"AS {asn} needs a four-octet AS session")
    if session.add_path:
        caps[Capability.CODE.ADD_PATH] = AddPath(
            [exabgp_family(name) for name in session.add_path], RequirePath.BOTH
        )
    if session.ext_nexthop_ipv4_over_ipv6:
        caps[Capability.CODE.NEXTHOP] = NextHopCapability([(AFI.ipv4, SAFI.unicast, AFI.ipv6)])
    if session.extended_message:
        caps[Capability.CODE.EXTENDED_MESSAGE] = ExtendedMessage()
    return caps


def fresh_negotiated(session: OracleSession) -> Negotiated:
    """A new ExaBGP ``Negotiated`` for ``session``, from two synthetic OPENs (check.py style)."""
    neighbor = Neighbor()
    neighbor["local-as"] = ASN(session.local_as)
    neighbor["peer-as"] = ASN(session.peer_as)
    neighbor["router-id"] = RouterID(ROUTER_ID_LOCAL)
    neighbor["capability"]["asn4"] = session.asn4
    neighbor["capability"]["extended-message"] = session.extended_message
    neighbor["capability"]["add-path"] = 3 if session.add_path else 0
    sent = Open(
        Version(4),
        ASN(session.local_as),
        HoldTime(HOLD_TIME),
        RouterID(ROUTER_ID_LOCAL),
        _capabilities(session, session.local_as),
    )
    received = Open(
        Version(4),
        ASN(session.peer_as),
        HoldTime(HOLD_TIME),
        RouterID(ROUTER_ID_PEER),
        _capabilities(session, session.peer_as),
    )
    negotiated = Negotiated(neighbor)
    negotiated.sent(sent)
    negotiated.received(received)
    return negotiated


@functools.cache
def negotiated_for(session: OracleSession) -> Negotiated:
    """The cached ExaBGP ``Negotiated`` for ``session`` (one per distinct session value)."""
    return fresh_negotiated(session)


def reset_attribute_cache(negotiated: Negotiated) -> None:
    """Forget the last attribute blob ExaBGP parsed on this session."""
    negotiated.cached_attributes = None
    negotiated.cached_wire = b""
