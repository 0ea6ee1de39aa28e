"""Myna values <-> the ExaBGP oracle's neutral form, and what the ExaBGP cross-check shares.

Data flow: the cross-check tests (``test_exabgp_crosscheck_messages.py`` for KEEPALIVE,
NOTIFICATION, ROUTE-REFRESH and OPEN, ``test_exabgp_crosscheck_updates.py`` for UPDATE) turn
Myna's decoded values (``speaker``'s ``Update``, ``Open``, ``Notification``, ...) into the plain
dicts of ``exabgp_oracle`` with ``neutral_message``, ``neutral_update``, ``neutral_open`` and
``neutral_attributes``, and neutral attribute dicts back into Myna's ``PathAttributes`` with
``myna_attributes``; the oracle then compares them with what ExaBGP built or decoded. The
"ExaBGP's ways" functions rewrite a neutral value into what ExaBGP sends or reports, and
``exabgp_to_myna`` / ``myna_to_exabgp`` run UPDATEs through both codecs. Nothing here is a test.

The comparison is exact except for the ExaBGP behaviours documented in the oracle's module
docstring; each allowance below names the quirk it is for. Where the RFC and ExaBGP differ the
allowance names the RFC, and the assertion on Myna's side keeps the RFC value. Session settings
are the same on both sides: ``myna_negotiated`` maps every ``OracleSession`` field onto
``Negotiated`` (``SESSIONS`` lists the sessions the tests use).

Addresses come from 198.18.0.0/15 and 2001:db8::/32; the second half of a 32-octet IPv6 next
hop is a link-local fe80::/64 address, as RFC 2545 requires there. The ``assert`` statements
here are rewritten by pytest like a test module's (``tests/conftest.py``).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from exabgp_oracle import Neutral, OracleSession, exa_decode, exa_encode_update, merge_updates

from speaker.capabilities import (
    AddPathCapability,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    HostnameCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
    UnknownCapability,
)
from speaker.control_messages import Keepalive, Notification, RouteRefresh
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated
from speaker.nlri import prefix_from_text, prefix_text
from speaker.open_message import Open
from speaker.path_attributes import PathAttributes
from speaker.update_message import Reach, Unreach, Update
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST
V6 = Family.IPV6_UNICAST
FAMILY_NAME = {V4: "ipv4-unicast", V6: "ipv6-unicast"}
FAMILY = {name: family for family, name in FAMILY_NAME.items()}

PARTIAL = 0x20
TRANSITIVE = 0x40
OTC = 35

# ----------------------------------------------------------------------------- sessions

# An OracleSession is ExaBGP's view: local_as is ExaBGP's AS, peer_as is Myna's.
MYNA_AS = 65001
EXA_AS = 65002
IBGP = OracleSession(local_as=MYNA_AS, peer_as=MYNA_AS)
EBGP = OracleSession(local_as=EXA_AS, peer_as=MYNA_AS)
IBGP_2OCTET = OracleSession(local_as=MYNA_AS, peer_as=MYNA_AS, asn4=False)
EBGP_2OCTET = OracleSession(local_as=EXA_AS, peer_as=MYNA_AS, asn4=False)
ADD_PATH = OracleSession(
    local_as=MYNA_AS, peer_as=MYNA_AS, add_path=("ipv4-unicast", "ipv6-unicast")
)
EXT_NEXTHOP = OracleSession(local_as=MYNA_AS, peer_as=MYNA_AS, ext_nexthop_ipv4_over_ipv6=True)
EXT_MESSAGE = OracleSession(local_as=MYNA_AS, peer_as=MYNA_AS, extended_message=True)
EBGP_V4_ONLY = OracleSession(local_as=EXA_AS, peer_as=MYNA_AS, families=("ipv4-unicast",))

SESSIONS = {
    "ibgp": IBGP,
    "ebgp": EBGP,
    "ibgp-2octet": IBGP_2OCTET,
    "ebgp-2octet": EBGP_2OCTET,
    "add-path": ADD_PATH,
    "ext-nexthop": EXT_NEXTHOP,
    "ext-message": EXT_MESSAGE,
    "ebgp-v4-only": EBGP_V4_ONLY,
}


def is_ibgp(session: OracleSession) -> bool:
    return session.local_as == session.peer_as


def myna_negotiated(session: OracleSession) -> Negotiated:
    """Myna's side of ``session``: every OracleSession field has its Negotiated twin."""
    add_path = frozenset(FAMILY[name] for name in session.add_path)
    return Negotiated(
        asn4=session.asn4,
        ibgp=is_ibgp(session),
        peer_as=session.local_as,  # Myna's peer is the ExaBGP side
        families=frozenset(FAMILY[name] for name in session.families),
        add_path_receive=add_path,  # the oracle announces ADD-PATH send and receive
        add_path_send=add_path,
        extended_message=session.extended_message,
        ipv4_nlri_ipv6_next_hop=session.ext_nexthop_ipv4_over_ipv6,
    )


def sender_as(session: OracleSession, *, exabgp_sends: bool) -> int:
    return session.local_as if exabgp_sends else session.peer_as


# ----------------------------------------------------------------------------- addresses


def ip4(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def ip4_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def next_hop_text(raw: bytes) -> str:
    """Myna's next hop octets in the oracle's form (``"global,linklocal"`` for 32 octets)."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if len(raw) == 32:
        return f"{ipaddress.IPv6Address(raw[:16])},{ipaddress.IPv6Address(raw[16:])}"
    raise ValueError(f"a {len(raw)}-octet next hop has no neutral form")


def next_hop_raw(text: str) -> bytes:
    return b"".join(ipaddress.ip_address(part).packed for part in text.split(","))


def prefixes_of(family: Family, *texts: str) -> tuple[int, ...]:
    prefixes = tuple(prefix_from_text(text) for text in texts)
    assert all(prefix_text(p, family) == t for p, t in zip(prefixes, texts, strict=True))
    return prefixes


# ----------------------------------------------------------------------------- converters


def neutral_attributes(attrs: PathAttributes) -> Neutral:
    """Myna's attribute set (next hop excluded) in the oracle's neutral form, exactly."""
    out: Neutral = {
        "origin": attrs.origin,
        "as_path": [(seg_type, list(asns)) for seg_type, asns in attrs.as_path],
    }
    if attrs.med is not None:
        out["med"] = attrs.med
    if attrs.local_pref is not None:
        out["local_pref"] = attrs.local_pref
    if attrs.atomic_aggregate:
        out["atomic_aggregate"] = True
    if attrs.aggregator is not None:
        out["aggregator"] = (attrs.aggregator[0], ip4(attrs.aggregator[1]))
    if attrs.communities:
        out["communities"] = list(attrs.communities)
    if attrs.originator_id is not None:
        out["originator_id"] = ip4(attrs.originator_id)
    if attrs.cluster_list:
        out["cluster_list"] = [ip4(c) for c in attrs.cluster_list]
    if attrs.extended_communities:
        out["extended_communities"] = list(attrs.extended_communities)
    if attrs.large_communities:
        out["large_communities"] = [tuple(c) for c in attrs.large_communities]
    if attrs.otc is not None:
        out["otc"] = attrs.otc
    if attrs.unknown:
        out["unknown"] = [(flags, code, bytes(value)) for flags, code, value in attrs.unknown]
    return out


def myna_attributes(neutral: Neutral, next_hop: str = "") -> PathAttributes:
    """The inverse of ``neutral_attributes``, with the next hop in its oracle text form."""
    aggregator = neutral.get("aggregator")
    originator = neutral.get("originator_id")
    return PathAttributes(
        origin=neutral.get("origin", 0),
        as_path=tuple((t, tuple(asns)) for t, asns in neutral.get("as_path", [])),
        next_hop=next_hop_raw(next_hop) if next_hop else b"",
        med=neutral.get("med"),
        local_pref=neutral.get("local_pref"),
        atomic_aggregate=bool(neutral.get("atomic_aggregate", False)),
        aggregator=None if aggregator is None else (aggregator[0], ip4_int(aggregator[1])),
        communities=tuple(neutral.get("communities", ())),
        originator_id=None if originator is None else ip4_int(originator),
        cluster_list=tuple(ip4_int(c) for c in neutral.get("cluster_list", ())),
        extended_communities=tuple(neutral.get("extended_communities", ())),
        large_communities=tuple(tuple(c) for c in neutral.get("large_communities", ())),
        otc=neutral.get("otc"),
        unknown=tuple((f, c, bytes(v)) for f, c, v in neutral.get("unknown", ())),
    )


def _sort_key(entry: tuple[str, str, int | None]) -> tuple[str, str, int]:
    family, prefix, path_id = entry
    return family, prefix, -1 if path_id is None else path_id


def route_entries(
    family: Family, prefixes: tuple[int, ...], path_ids: tuple[int, ...] | None
) -> list[tuple[str, str, int | None]]:
    ids: tuple[int | None, ...] = path_ids if path_ids is not None else (None,) * len(prefixes)
    return [
        (FAMILY_NAME[family], prefix_text(p, family), i) for p, i in zip(prefixes, ids, strict=True)
    ]


def eor_neutral(family: Family) -> Neutral:
    return {
        "type": "update",
        "withdrawn": [],
        "announced": [],
        "next_hop": {},
        "attributes": {},
        "eor": FAMILY_NAME[family],
    }


def neutral_update(update: Update) -> Neutral:
    """A Myna ``Update`` in the oracle's neutral form, exactly."""
    if update.end_of_rib is not None:
        return eor_neutral(update.end_of_rib)
    withdrawn = []
    for gone in update.unreach:
        withdrawn += route_entries(gone.family, gone.prefixes, gone.path_ids)
    announced = []
    next_hop: dict[str, str] = {}
    attributes: Neutral | None = None
    for reach in update.reach:
        announced += route_entries(reach.family, reach.prefixes, reach.path_ids)
        next_hop[FAMILY_NAME[reach.family]] = next_hop_text(reach.attributes.next_hop)
        attrs = neutral_attributes(reach.attributes)
        assert attributes in (None, attrs), "one UPDATE carries one attribute set"
        attributes = attrs
    return {
        "type": "update",
        "withdrawn": sorted(withdrawn, key=_sort_key),
        "announced": sorted(announced, key=_sort_key),
        "next_hop": next_hop,
        "attributes": attributes or {},
        "eor": None,
    }


def announcement(
    family: Family,
    attrs: PathAttributes,
    prefixes: tuple[int, ...],
    path_ids: tuple[int, ...] | None = None,
) -> Neutral:
    return neutral_update(Update(reach=(Reach(family, attrs, prefixes, path_ids),)))


def withdrawal(
    family: Family, prefixes: tuple[int, ...], path_ids: tuple[int, ...] | None = None
) -> Neutral:
    return neutral_update(Update(unreach=(Unreach(family, prefixes, path_ids),)))


def neutral_capability(cap: Capability) -> Neutral:
    match cap:
        case MultiprotocolCapability(afi, safi):
            return {"code": 1, "afi": afi, "safi": safi}
        case RouteRefreshCapability():
            return {"code": 2}
        case EnhancedRouteRefreshCapability():
            return {"code": 70}
        case ExtendedMessageCapability():
            return {"code": 6}
        case FourOctetAsCapability(asn):
            return {"code": 65, "asn": asn}
        case GracefulRestartCapability(flags, restart_time, families):
            return {
                "code": 64,
                "restart_flags": flags,
                "restart_time": restart_time,
                "families": [tuple(f) for f in families],
            }
        case LongLivedGracefulRestartCapability(families):
            return {"code": 71, "families": [tuple(f) for f in families]}
        case AddPathCapability(families):
            return {"code": 69, "families": [tuple(f) for f in families]}
        case ExtendedNextHopCapability(entries):
            return {"code": 5, "entries": [tuple(e) for e in entries]}
        case HostnameCapability(hostname, domain):
            return {"code": 73, "hostname": hostname, "domain": domain}
        case UnknownCapability(code, data):
            return {"code": code, "data": bytes(data)}
    raise TypeError(f"no neutral form for {cap!r}")


def neutral_open(message: Open) -> Neutral:
    return {
        "type": "open",
        "version": message.version,
        "asn": message.asn,
        "hold_time": message.hold_time,
        "router_id": ip4(message.bgp_id),
        "capabilities": [neutral_capability(cap) for cap in message.capabilities],
    }


def neutral_message(message: object) -> Neutral:
    """Any decoded Myna message in the oracle's neutral form."""
    match message:
        case Keepalive():
            return {"type": "keepalive"}
        case Notification(code, subcode, data):
            return {"type": "notification", "code": code, "subcode": subcode, "data": data}
        case RouteRefresh(afi, safi, subtype):
            return {"type": "route-refresh", "afi": afi, "safi": safi, "subtype": subtype}
        case Open():
            return neutral_open(message)
        case Update():
            return neutral_update(message)
    raise TypeError(f"no neutral form for {message!r}")


# ----------------------------------------------------------------------------- ExaBGP's ways


def unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


def split_segments(path: tuple[tuple[int, tuple[int, ...]], ...]) -> tuple[Any, ...]:
    """A path as it travels: segments hold at most 255 ASes (RFC 4271 4.3)."""
    return tuple(
        (seg_type, asns[i : i + 255]) for seg_type, asns in path for i in range(0, len(asns), 255)
    )


def as_sent(attrs: PathAttributes) -> PathAttributes:
    """``attrs`` as any sender must put them on the wire."""
    return attrs._replace(
        as_path=split_segments(attrs.as_path),
        # RFC 8092 section 3: duplicate large communities MUST NOT be transmitted.
        large_communities=unique(attrs.large_communities),
    )


def received_from_exabgp(attrs: PathAttributes, session: OracleSession) -> PathAttributes:
    """The set Myna must decode from an UPDATE ExaBGP built out of ``attrs``."""
    ibgp = is_ibgp(session)
    return attrs._replace(
        as_path=split_segments(attrs.as_path),
        # ExaBGP adds LOCAL_PREF 100 on iBGP when absent, and never sends LOCAL_PREF on eBGP
        # (RFC 4271 5.1.5).
        local_pref=(100 if attrs.local_pref is None else attrs.local_pref) if ibgp else None,
        # RFC 7606 7.9 and 7.10: from an external peer both are discarded by the receiver.
        originator_id=attrs.originator_id if ibgp else None,
        cluster_list=attrs.cluster_list if ibgp else (),
        # RFC 8092 section 3: a receiver silently removes duplicate large communities.
        large_communities=unique(attrs.large_communities),
        # RFC 4271 5 / 9: unknown non-transitive attributes are quietly ignored, transitive
        # ones are kept with the Partial bit set; ExaBGP packs them in type-code order.
        unknown=tuple(
            sorted(
                (
                    (flags | PARTIAL, code, value)
                    for flags, code, value in attrs.unknown
                    if flags & TRANSITIVE
                ),
                key=lambda u: u[1],
            )
        ),
    )


def coalesced(path: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    """Neighbouring AS_SEQUENCEs (and AS_CONFED_SEQUENCEs) joined into one segment."""
    out: list[tuple[int, list[int]]] = []
    for seg_type, asns in path:
        if out and seg_type in (2, 3) and out[-1][0] == seg_type:
            out[-1] = (seg_type, out[-1][1] + asns)
        else:
            out.append((seg_type, list(asns)))
    return out


def exabgp_view(neutral: Neutral, session: OracleSession) -> Neutral:
    """How ExaBGP's decoder reports an UPDATE whose exact content is ``neutral``."""
    if neutral["type"] != "update":
        return neutral
    attrs = dict(neutral["attributes"])
    # Quirk: an empty AS_PATH decodes as no as_path key.
    if attrs.get("as_path") == []:
        del attrs["as_path"]
    path = attrs.get("as_path", [])
    if not session.asn4 and any(asn > 0xFFFF for _, asns in path for asn in asns):
        # Quirk (not in the oracle's docstring): when ExaBGP merges an AS4_PATH it joins
        # neighbouring sequences (Attributes._coalesce_segments); the path is the same.
        attrs["as_path"] = coalesced(path)
    # Quirk: communities and extended communities come back sorted (duplicates kept).
    for key in ("communities", "extended_communities"):
        if key in attrs:
            attrs[key] = sorted(attrs[key])
    # Quirk: large communities come back sorted; the deduplication is RFC 8092 section 3.
    if "large_communities" in attrs:
        attrs["large_communities"] = sorted(set(attrs["large_communities"]))
    unknown = list(attrs.pop("unknown", []))
    # Quirk: OTC (RFC 9234) is unknown to ExaBGP 5 and reported as a generic attribute.
    if "otc" in attrs:
        unknown.append((0xC0, OTC, struct.pack("!L", attrs.pop("otc"))))
    if unknown:
        # Quirk: ExaBGP ORs the Partial bit into every generic attribute, in type order.
        attrs["unknown"] = sorted(
            ((flags | PARTIAL, code, value) for flags, code, value in unknown),
            key=lambda u: u[1],
        )
    return {**neutral, "attributes": attrs}


def exabgp_reported(theirs: Neutral, session: OracleSession) -> Neutral:
    """ExaBGP's decode of an UPDATE with allowances for where ExaBGP's receive side differs."""
    if theirs["type"] != "update":
        return theirs
    attrs = dict(theirs["attributes"])
    if not theirs["announced"]:
        # Quirk: ExaBGP puts default attributes on an MP_UNREACH withdrawal it sends beside
        # IPv4 NLRI; with nothing announced they mean nothing (Myna drops them).
        attrs = {}
    # ExaBGP shares one attribute set between the messages of one call, so an MP_REACH-only
    # message can carry NEXT_HOP (RFC 4760 section 3: SHOULD NOT be sent, and the receiver
    # SHOULD ignore it, as Myna does). Only next hops of announced families count.
    families = {family for family, _, _ in theirs["announced"]}
    next_hop = {f: hop for f, hop in theirs["next_hop"].items() if f in families}
    if not is_ibgp(session):
        # ExaBGP keeps these from an external peer; RFC 7606 7.5, 7.9 and 7.10 discard them.
        for key in ("local_pref", "originator_id", "cluster_list"):
            attrs.pop(key, None)
    return {**theirs, "attributes": attrs, "next_hop": next_hop}


def exabgp_open_view(neutral: Neutral) -> Neutral:
    """How ExaBGP's decoder reports an OPEN whose exact content is ``neutral``."""
    grouped: dict[int, list[Neutral]] = {}
    for cap in neutral["capabilities"]:
        code = cap["code"]
        reported = cap
        if code == 64:
            # Quirk: ExaBGP keeps only the F bit of each family's flags.
            reported = {**cap, "families": [(a, s, f & 0x80) for a, s, f in cap["families"]]}
        elif code == 71:
            # Quirk: LLGR (RFC 9494) is unknown to ExaBGP 5 and reported as raw data.
            reported = {"code": 71, "data": llgr_data(cap["families"])}
        # Quirk: ExaBGP holds capabilities in a dict keyed by code, merged at the first one.
        grouped.setdefault(code, []).append(reported)
    caps: list[Neutral] = []
    for code, same in grouped.items():
        if code == 1:
            caps.extend(same)
        elif code in (5, 64, 69):  # the entries accumulate
            key = "entries" if code == 5 else "families"
            caps.append({**same[0], key: [e for cap in same for e in cap[key]]})
        else:  # one value per code, the last one wins
            caps.append(same[-1])
    return {**neutral, "capabilities": caps}


def llgr_data(families: list[tuple[int, int, int, int]]) -> bytes:
    """RFC 9494 section 3: AFI (2), SAFI (1), flags (1), long-lived stale time (3) per family."""
    return b"".join(
        struct.pack("!HBB", afi, safi, flags) + stale.to_bytes(3, "big")
        for afi, safi, flags, stale in families
    )


def exabgp_sends_open(neutral: Neutral) -> Neutral:
    """The OPEN ExaBGP puts on the wire for ``neutral`` (what Myna must decode)."""
    caps = []
    for cap in neutral["capabilities"]:
        sent = cap
        if cap["code"] == 64:
            # Quirk: ExaBGP keeps only the F bit of each family's flags, on encode too.
            sent = {**cap, "families": [(a, s, f & 0x80) for a, s, f in cap["families"]]}
        elif cap["code"] == 69:
            # Quirk: ExaBGP's encoder leaves out families whose send/receive value is 0.
            sent = {**cap, "families": [f for f in cap["families"] if f[2]]}
        caps.append(sent)
    return {**neutral, "capabilities": caps}


# ----------------------------------------------------------------------------- wire helpers


def attributes_on_wire(wire: bytes) -> dict[int, tuple[int, bytes]]:
    """Type code -> (flags, value) of every path attribute of one UPDATE."""
    body = wire[19:]
    withdrawn_len = struct.unpack("!H", body[:2])[0]
    offset = 2 + withdrawn_len
    attrs_len = struct.unpack("!H", body[offset : offset + 2])[0]
    attrs = body[offset + 2 : offset + 2 + attrs_len]
    out: dict[int, tuple[int, bytes]] = {}
    while attrs:
        flags, code = attrs[0], attrs[1]
        if flags & 0x10:
            length, head = struct.unpack("!H", attrs[2:4])[0], 4
        else:
            length, head = attrs[2], 3
        out[code] = (flags, attrs[head : head + length])
        attrs = attrs[head + length :]
    return out


def exabgp_to_myna(neutral: Neutral, session: OracleSession) -> Neutral:
    """Direction 1: ExaBGP encodes, Myna decodes; returns Myna's merged neutral value.

    Every message is also decoded by ExaBGP, and both decodes must agree message by message.
    """
    neg = myna_negotiated(session)
    wires = exa_encode_update(neutral, session)
    assert wires, "ExaBGP encoded nothing"
    decoded = []
    for wire in wires:
        message = decode_wire(wire, neg)
        assert isinstance(message, Update)
        assert message.problems == (), message.problems
        mine = neutral_update(message)
        assert exabgp_reported(exa_decode(wire, session), session) == exabgp_view(mine, session)
        decoded.append(mine)
    return merge_updates(decoded)


def myna_to_exabgp(wires: list[bytes], session: OracleSession) -> Neutral:
    """Direction 2: Myna's messages decoded by ExaBGP, merged into one neutral value."""
    assert wires, "Myna encoded nothing"
    limit = myna_negotiated(session).max_message_len
    for wire in wires:
        assert len(wire) <= limit
    return merge_updates([exa_decode(wire, session) for wire in wires])


def update_of(*parts: Neutral) -> Neutral:
    return merge_updates(list(parts))
