"""ExaBGP 5.0's wire codec as an independent oracle, in a neutral plain-Python representation.

Data flow: tests hand this module whole BGP messages (19-octet header included) and get back
plain dicts, lists, tuples, ints, bytes and strings (``exa_decode``); or hand it those same
plain values and get back wire bytes that ExaBGP built (``exa_encode_*``). Nothing here imports
Myna, and Myna never imports this: ExaBGP is a test oracle and benchmark baseline only, never a
runtime dependency. ``bench/exabgp_codec.py`` reuses the session and conversion helpers.

The oracle is three modules; this one is the entry point every user imports, and it
re-exports the other two, so ``from exabgp_oracle import ...`` reaches every public name:

* ``exabgp_oracle_session``: ``OracleSession``, ``negotiated_for`` and the family and IP
  helpers both directions share;
* this module: decoding (``exa_decode``, ``split_message``, ``unpack_message``) and the
  conversion of ExaBGP's decoded objects into the neutral form (``neutral_update``,
  ``neutral_attributes``, ``merge_updates``);
* ``exabgp_oracle_encode``: the ``exa_encode_*`` functions and the neutral form -> ExaBGP
  object builders (``exabgp_attributes``, ``nlris_for``).

``bench/exabgp_codec.py`` loads this file by path, without tests/ on ``sys.path``; the two
sibling modules are then loaded the same way, under the same top-level names (see
``_load_sibling``).

Sessions
    ``OracleSession`` describes what both ends negotiated. ``negotiated_for`` builds ExaBGP's
    ``Negotiated`` from two synthetic OPENs, the way ``exabgp/configuration/check.py`` does, and
    caches it per session value. ``local_as`` is the AS of the speaker whose view the session
    takes: the sender for ``exa_encode_update``, the receiver for ``exa_decode``. The two OPENs
    carry MP (``families``), ADD-PATH send/receive for ``add_path`` families, FOUR_OCTET_AS when
    ``asn4``, EXTENDED_MESSAGE when ``extended_message`` and the RFC 8950 extended next hop
    capability (IPv4 unicast over IPv6) when ``ext_nexthop_ipv4_over_ipv6``.

Decoding follows the path an ExaBGP session takes: the header checks of
``Connection.reader`` (repeated here, since that reader is bound to a socket), then
``Message.unpack(type, body, Direction.IN, negotiated)``. A ``Notify`` raised by ExaBGP, or
any other exception (which the reactor turns into NOTIFICATION 1/0), comes out as
``OracleDecodeError(code, subcode, data)``. ``Negotiated.cached_attributes`` (ExaBGP's
one-entry per-session cache of the last attribute blob) is cleared before every decode so
each call is a pure function of its arguments.

Neutral representation (plain values only; IPs in ``ipaddress`` text form, prefixes as
``"198.18.0.0/24"``, families as ``"ipv4-unicast"``/``"ipv6-unicast"``):

* ``{"type": "keepalive"}``
* ``{"type": "notification", "code": int, "subcode": int, "data": bytes}``
* ``{"type": "route-refresh", "afi": int, "safi": int, "subtype": int}``
* ``{"type": "open", "version": 4, "asn": int (the 2-octet My AS field), "hold_time": int,
  "router_id": str, "capabilities": [...]}``, capabilities in wire order, each one of
  ``{"code": 1, "afi", "safi"}``, ``{"code": 2}``, ``{"code": 70}``, ``{"code": 6}``,
  ``{"code": 65, "asn"}``, ``{"code": 64, "restart_flags" (high nibble, R=8 N=4),
  "restart_time", "families": [(afi, safi, flags)]}``, ``{"code": 69, "families":
  [(afi, safi, send_receive)]}``, ``{"code": 5, "entries": [(afi, safi, nexthop_afi)]}``,
  ``{"code": 73, "hostname", "domain"}``, ``{"code": 71, "families": [(afi, safi, flags,
  stale_time)]}`` (which ExaBGP can neither decode nor encode, see below), or
  ``{"code", "data"}`` for any other.
* ``{"type": "update", "withdrawn": [(family, prefix, path_id | None)], "announced": [...],
  "next_hop": {family: ip or "global,linklocal"}, "attributes": {...}, "eor": family | None}``
  with both prefix lists sorted and attribute keys ``origin as_path med local_pref
  atomic_aggregate aggregator communities originator_id cluster_list extended_communities
  large_communities otc unknown`` (absent ones omitted). ``as_path`` is
  ``[(segment_type, [asn, ...])]``, ``aggregator`` ``(asn, ip)``, ``extended_communities``
  the 8 octets as big-endian ints, ``large_communities`` ``[(global, local1, local2)]``,
  ``unknown`` ``[(flags_byte, type_code, value)]``. ``attributes`` is ``{}`` for a
  withdraw-only UPDATE as ExaBGP builds one; one that carries attributes anyway reports
  them. An End-of-RIB is an UPDATE with empty lists and dicts and ``eor`` set.
  ``merge_updates`` folds several decoded UPDATEs into one.

What ExaBGP 5.0.15 cannot represent, or represents its own way (the neutral value reports
what ExaBGP says, so a cross-check has to allow for these):

* Capability 71 (Long-Lived Graceful Restart) is unknown to ExaBGP: it decodes as
  ``{"code": 71, "data": bytes}`` and ``exa_encode_open`` refuses the ``families`` form
  (pass ``data`` instead). Unknown capabilities are encoded through ``_RawCapability``, a
  small ``Capability`` subclass in ``exabgp_oracle_encode``, because ExaBGP's own
  ``UnknownCapability.extract()`` returns nothing, so ExaBGP alone drops them from an OPEN
  it sends.
* OPEN capabilities are held by ExaBGP in a dict keyed by code: several capabilities with
  one code are merged (MP entries accumulate; for ADD-PATH, extended next hop and graceful
  restart the entries accumulate; for an unknown code the last value wins) and reported
  at the position of the first. ``exa_encode_open`` therefore refuses a capability list
  in which a code reappears after a different one, or in which a single-valued code repeats.
* Graceful restart (64): ExaBGP keeps only the F bit (0x80) of each family's flags octet,
  and ``restart_time`` is masked to 12 bits.
* ADD-PATH (69): ExaBGP's encoder leaves out families whose send/receive value is 0.
* Hostname (73): ExaBGP pre-fills both fields from this machine's hostname, so an empty
  capability, or one without the domain part, reports the local hostname (first label of
  ``socket.getfqdn()`` for the domain). A ``None`` field is reported as ``""``. Names are
  truncated to 64 octets on encode, and an empty ``hostname`` makes ExaBGP omit the whole
  capability.
* Cisco route refresh (128) and any other capability ExaBGP parses into a class of its own
  (multisession, software version, operational) is reported as ``{"code", "data"}`` with
  ``data`` re-packed by ExaBGP's ``extract()`` (so the Cisco RR data is always ``b""``).
* NOTIFICATION 6/2 and 6/4: ExaBGP rewrites the data into an English sentence about the
  Shutdown Communication, so for those two the raw wire octets are reported instead.
* OTC (35, RFC 9234) is unknown to ExaBGP 5: it decodes under ``"unknown"``, and
  ``exa_encode_update`` turns ``"otc"`` into a generic 0xC0 attribute holding the 4 octets.
* ``"unknown"`` lists attributes ExaBGP keeps generically (unknown optional transitive
  ones; unknown non-transitive ones are silently dropped by ExaBGP). ExaBGP ORs the Partial
  bit 0x20 into the flags of every such attribute, so one sent as 0xC0 reads 0xE0; the
  Extended Length bit 0x10 is masked out of ``flags_byte`` (it is framing). Attributes
  ExaBGP parses but the neutral form has no key for (IPv6 extended communities, AIGP,
  PMSI, BGP-LS, Prefix-SID, an unmerged AS4_PATH/AS4_AGGREGATOR pair member) are also
  reported there, with ExaBGP's flags and ExaBGP's own re-encoding of the value.
* Communities and large communities come back sorted (ExaBGP sorts as it adds); duplicate
  large communities are dropped (RFC 8092), duplicate communities are kept.
* An empty AS_PATH (zero-length attribute, the iBGP default) decodes as no ``as_path`` key:
  ExaBGP's ``ASPath.unpack`` returns None for it and the attribute is not kept.
* AS4: ExaBGP merges AS4_PATH into AS_PATH (RFC 6793 4.2.3) whenever both are present,
  on a four-octet session too, where RFC 6793 4.1 says to discard AS4_PATH: AS_PATH
  ``[65010]`` beside AS4_PATH ``[4200000000]`` decodes as ``[(2, [4200000000])]``. The
  merge keeps no leading AS_PATH segment when both paths count the same number of ASes,
  so a leading AS_CONFED_SEQUENCE/SET sent over a two-octet session (AS4_PATH never
  carries those) is lost: ``[(3, [65100]), (2, [4200000000, 65002])]`` comes back as
  ``[(2, [4200000000, 65002])]``. If AGGREGATOR holds AS_TRANS it is replaced by
  AS4_AGGREGATOR, reported as ``"aggregator"``; if it holds anything else both AS4_
  attributes are dropped. A lone AS4_AGGREGATOR is reported as ``"aggregator"``.
* A 32-octet MP_REACH next hop (global + link-local) is decoded by ExaBGP as two NLRI per
  prefix, one per next-hop address. They are folded back into one prefix with next hop
  ``"global,linklocal"``. ExaBGP has no link-local API for encoding: the adapter builds
  the next hop as an IPv6 object whose packed form is the 32 octets.
* Treat-as-withdraw (RFC 7606): as ExaBGP's reactor does, every NLRI of the UPDATE is
  reported as withdrawn, with ``attributes`` and ``next_hop`` empty. Attribute discard: the
  discarded attribute is absent and the rest is reported, although ExaBGP's reactor would
  go further and ignore the whole UPDATE.
* ``exa_encode_update`` behaves as ExaBGP sends: it adds ORIGIN IGP and an AS_PATH (empty on
  iBGP, ``[local_as]`` on eBGP) when absent, adds LOCAL_PREF 100 on iBGP when absent, never
  sends LOCAL_PREF on eBGP, packs attributes in type-code order, sorts the NLRI, never
  shares a message between withdrawals and announcements (RFC 7606 5.1), splits to the
  negotiated message size, and silently leaves out NLRI of a family the session did not
  negotiate. A withdraw-only UPDATE carries no attributes, except that when one call
  holds IPv4 NLRI (native) and MP_UNREACH withdrawals, ExaBGP puts the (default)
  attributes on the MP_UNREACH message as well.
* OPENs are decoded but not validated (ExaBGP's ``Negotiated.validate`` is not run).

Importing this module (through ``exabgp_oracle_session``) calls
``exabgp.logger.log.disable()``, which silences ExaBGP's logger for the whole process.
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from exabgp.bgp.message import KeepAlive, Message, Notification, Notify, Open, Update
from exabgp.bgp.message.action import Action
from exabgp.bgp.message.direction import Direction
from exabgp.bgp.message.open.capability import Capability, Negotiated
from exabgp.bgp.message.refresh import RouteRefresh
from exabgp.bgp.message.update.attribute import Attribute, Attributes
from exabgp.bgp.message.update.eor import EOR
from exabgp.bgp.message.update.nlri.cidr import CIDR
from exabgp.bgp.message.update.nlri.qualifier import PathInfo
from exabgp.protocol.ip import NoNextHop


def _load_sibling(name: str) -> ModuleType:
    """tests/<name>.py under its top-level name, also when tests/ is not on ``sys.path``.

    Under pytest tests/ is on ``sys.path`` and a plain import finds it; ``bench/exabgp_codec.py``
    loads this file by path, and then the sibling is loaded by path too, under the same name,
    so the ``from ... import`` lines below find it in ``sys.modules``.
    """
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}") from None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# The session module first: the encoder imports from it.
_load_sibling("exabgp_oracle_session")
_load_sibling("exabgp_oracle_encode")

from exabgp_oracle_encode import (  # noqa: E402
    exa_encode_keepalive,
    exa_encode_notification,
    exa_encode_open,
    exa_encode_route_refresh,
    exa_encode_update,
    exabgp_attributes,
    nlris_for,
)
from exabgp_oracle_session import (  # noqa: E402
    Neutral,
    OracleSession,
    _ip_text,
    exabgp_family,
    family_name,
    fresh_negotiated,
    negotiated_for,
    reset_attribute_cache,
)

__all__ = [
    "Neutral",
    "OracleDecodeError",
    "OracleSession",
    "exa_decode",
    "exa_encode_keepalive",
    "exa_encode_notification",
    "exa_encode_open",
    "exa_encode_route_refresh",
    "exa_encode_update",
    "exabgp_attributes",
    "exabgp_family",
    "family_name",
    "fresh_negotiated",
    "merge_updates",
    "negotiated_for",
    "neutral_attributes",
    "neutral_update",
    "nlris_for",
    "reset_attribute_cache",
    "split_message",
    "unpack_message",
]

HEADER_LEN = 19
MARKER = b"\xff" * 16
OPEN_MAX_LEN = 4096  # the size a reader allows before the OPENs have negotiated anything

_FLAG_EXTENDED_LENGTH = 0x10
_TREAT_AS_WITHDRAW = Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW
_INTERNAL = frozenset(
    {
        Attribute.CODE.INTERNAL_NAME,
        Attribute.CODE.INTERNAL_WITHDRAW,
        Attribute.CODE.INTERNAL_WATCHDOG,
        Attribute.CODE.INTERNAL_SPLIT,
        Attribute.CODE.INTERNAL_DISCARD,
        Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW,
    }
)


class OracleDecodeError(Exception):
    """ExaBGP refused a message: the NOTIFICATION an ExaBGP session would have sent."""

    def __init__(self, code: int, subcode: int, data: bytes = b"") -> None:
        super().__init__(f"ExaBGP would send NOTIFICATION {code}/{subcode}: {data!r}")
        self.code = code
        self.subcode = subcode
        self.data = data


def _prefix_text(cidr: CIDR) -> str:
    return f"{_ip_text(cidr.top())}/{cidr.mask}"


def _path_id(path_info: PathInfo) -> int | None:
    if path_info is PathInfo.NOPATH or not path_info.path_info:
        return None
    return int.from_bytes(path_info.path_info, "big")


def _sort_key(entry: tuple[str, str, int | None]) -> tuple[str, str, int]:
    family, prefix, path_id = entry
    return family, prefix, -1 if path_id is None else path_id


# ----------------------------------------------------------------------------- decoding


def split_message(wire: bytes, negotiated: Negotiated) -> tuple[int, bytes]:
    """Type and body of one whole message, after the checks ExaBGP's ``Connection.reader`` makes."""
    if len(wire) < HEADER_LEN:
        raise ValueError(f"{len(wire)} octets is not a whole BGP message")
    length = struct.unpack("!H", wire[16:18])[0]
    if length != len(wire) and length >= HEADER_LEN:
        raise ValueError(f"the header says {length} octets, {len(wire)} were given")
    if not wire.startswith(MARKER):
        raise OracleDecodeError(1, 1, b"The packet received does not contain a BGP marker")
    msg_type = wire[18]
    limit = OPEN_MAX_LEN if msg_type == Message.CODE.OPEN else negotiated.msg_size
    if length < HEADER_LEN or length > limit:
        raise OracleDecodeError(1, 2, struct.pack("!H", length))
    validator = Message.Length.get(msg_type, lambda size: size >= HEADER_LEN)
    if not validator(length):
        raise OracleDecodeError(1, 2, struct.pack("!H", length))
    if msg_type not in Message.CODE.MESSAGES:
        raise OracleDecodeError(1, 3, bytes([msg_type]))
    return msg_type, wire[HEADER_LEN:]


def unpack_message(msg_type: int, body: bytes, negotiated: Negotiated) -> Any:
    """ExaBGP's own dispatch, with its exceptions mapped the way its reactor maps them."""
    try:
        return Message.unpack(msg_type, body, Direction.IN, negotiated)
    except Notify as exc:
        data = exc.data if isinstance(exc.data, bytes) else str(exc.data).encode()
        raise OracleDecodeError(exc.code, exc.subcode, data) from exc
    except Exception as exc:  # the reactor answers any other failure with 1/0
        raise OracleDecodeError(1, 0, str(exc).encode()) from exc


def exa_decode(wire: bytes, session: OracleSession) -> Neutral:
    """Decode one whole BGP message with ExaBGP and return it in the neutral representation."""
    negotiated = negotiated_for(session)
    reset_attribute_cache(negotiated)
    msg_type, body = split_message(bytes(wire), negotiated)
    message = unpack_message(msg_type, body, negotiated)
    if isinstance(message, EOR):
        return _eor(message)
    if isinstance(message, Update):
        return neutral_update(message, negotiated)
    if isinstance(message, Open):
        return _neutral_open(message)
    if isinstance(message, Notification):
        data = message.data
        if (message.code, message.subcode) in {(6, 2), (6, 4)} and len(body) > 2:
            data = body[2:]
        return {
            "type": "notification",
            "code": int(message.code),
            "subcode": int(message.subcode),
            "data": bytes(data),
        }
    if isinstance(message, KeepAlive):
        return {"type": "keepalive"}
    if isinstance(message, RouteRefresh):
        return {
            "type": "route-refresh",
            "afi": int(message.afi),
            "safi": int(message.safi),
            "subtype": int(message.reserved),
        }
    raise ValueError(f"ExaBGP decoded {type(message).__name__}, which has no neutral form")


def _eor(message: EOR) -> Neutral:
    nlri = message.nlris[0]
    return {
        "type": "update",
        "withdrawn": [],
        "announced": [],
        "next_hop": {},
        "attributes": {},
        "eor": family_name(nlri.afi, nlri.safi),
    }


def _neutral_capability(code: int, instance: Any) -> list[Neutral]:
    # The class itself: the name in capability/unknown.py is None, as the @Capability.unknown
    # decorator returns nothing.
    if isinstance(instance, Capability.unknown_capability):
        return [{"code": int(code), "data": bytes(instance.data)}]
    if code == Capability.CODE.MULTIPROTOCOL:
        return [{"code": 1, "afi": int(afi), "safi": int(safi)} for afi, safi in instance]
    if code == Capability.CODE.ROUTE_REFRESH:
        return [{"code": 2}]
    if code == Capability.CODE.ENHANCED_ROUTE_REFRESH:
        return [{"code": 70}]
    if code == Capability.CODE.EXTENDED_MESSAGE:
        return [{"code": 6}]
    if code == Capability.CODE.FOUR_BYTES_ASN:
        return [{"code": 65, "asn": int(instance)}]
    if code == Capability.CODE.GRACEFUL_RESTART:
        return [
            {
                "code": 64,
                "restart_flags": int(instance.restart_flag),
                "restart_time": int(instance.restart_time),
                "families": [
                    (int(afi), int(safi), int(flags)) for (afi, safi), flags in instance.items()
                ],
            }
        ]
    if code == Capability.CODE.ADD_PATH:
        return [
            {
                "code": 69,
                "families": [
                    (int(afi), int(safi), int(sr)) for (afi, safi), sr in instance.items()
                ],
            }
        ]
    if code == Capability.CODE.NEXTHOP:
        return [
            {
                "code": 5,
                "entries": [(int(afi), int(safi), int(nhafi)) for afi, safi, nhafi in instance],
            }
        ]
    if code == Capability.CODE.HOSTNAME:
        return [
            {
                "code": 73,
                "hostname": instance.host_name or "",
                "domain": instance.domain_name or "",
            }
        ]
    return [{"code": int(code), "data": bytes(value)} for value in instance.extract()]


def _neutral_open(message: Open) -> Neutral:
    capabilities: list[Neutral] = []
    for code, instance in message.capabilities.items():
        capabilities.extend(_neutral_capability(code, instance))
    return {
        "type": "open",
        "version": int(message.version),
        "asn": int(message.asn),
        "hold_time": int(message.hold_time),
        "router_id": _ip_text(message.router_id),
        "capabilities": capabilities,
    }


def _unwrap(packed: bytes) -> bytes:
    """The value of the first attribute in ``packed`` (ExaBGP's own encoding of one)."""
    if not packed:
        return b""
    if packed[0] & _FLAG_EXTENDED_LENGTH:
        length = struct.unpack("!H", packed[2:4])[0]
        return packed[4 : 4 + length]
    return packed[3 : 3 + packed[2]]


def neutral_attributes(attributes: Attributes, negotiated: Negotiated) -> Neutral:
    """ExaBGP's decoded path attributes (MP_REACH/MP_UNREACH/NEXT_HOP excluded) in neutral form."""
    result: Neutral = {}
    unknown: list[tuple[int, int, bytes]] = []
    code: int
    for code, attribute in sorted(attributes.items()):
        if code in _INTERNAL or code in (
            Attribute.CODE.NEXT_HOP,
            Attribute.CODE.MP_REACH_NLRI,
            Attribute.CODE.MP_UNREACH_NLRI,
        ):
            continue
        if attribute.GENERIC:
            flags = int(attribute.FLAG) & ~_FLAG_EXTENDED_LENGTH
            unknown.append((flags, int(code), bytes(attribute.data)))
        elif code == Attribute.CODE.ORIGIN:
            result["origin"] = int(attribute.origin)
        elif code == Attribute.CODE.AS_PATH:
            result["as_path"] = [
                (int(segment.ID), [int(asn) for asn in segment]) for segment in attribute.aspath
            ]
        elif code == Attribute.CODE.MED:
            result["med"] = int(attribute.med)
        elif code == Attribute.CODE.LOCAL_PREF:
            result["local_pref"] = int(attribute.localpref)
        elif code == Attribute.CODE.ATOMIC_AGGREGATE:
            result["atomic_aggregate"] = True
        elif code == Attribute.CODE.AGGREGATOR or (
            code == Attribute.CODE.AS4_AGGREGATOR and Attribute.CODE.AGGREGATOR not in attributes
        ):
            result["aggregator"] = (int(attribute.asn), _ip_text(attribute.speaker))
        elif code == Attribute.CODE.COMMUNITY:
            result["communities"] = [int.from_bytes(c.community, "big") for c in attribute]
        elif code == Attribute.CODE.ORIGINATOR_ID:
            result["originator_id"] = _ip_text(attribute)
        elif code == Attribute.CODE.CLUSTER_LIST:
            result["cluster_list"] = [_ip_text(cluster) for cluster in attribute.clusters]
        elif code == Attribute.CODE.EXTENDED_COMMUNITY:
            result["extended_communities"] = [int.from_bytes(c.pack(), "big") for c in attribute]
        elif code == Attribute.CODE.LARGE_COMMUNITY:
            result["large_communities"] = [
                struct.unpack("!LLL", c.large_community) for c in attribute
            ]
        else:
            flags = int(attribute.FLAG) & ~_FLAG_EXTENDED_LENGTH
            unknown.append((flags, int(code), _unwrap(attribute.pack(negotiated))))
    if unknown:
        result["unknown"] = unknown
    return result


def _fold_next_hops(
    family: str, entries: list[tuple[Any, str | None]]
) -> tuple[list[tuple[str, str, int | None]], str | None]:
    """One family's announced NLRI and its single next hop, undoing ExaBGP's 32-octet split."""
    hops = list(dict.fromkeys(hop for _, hop in entries if hop is not None))
    routes = [(family, _prefix_text(nlri.cidr), _path_id(nlri.path_info)) for nlri, _ in entries]
    if len(hops) <= 1:
        return routes, hops[0] if hops else None
    pairs = len(entries) // 2
    if len(hops) == 2 and len(entries) % 2 == 0:
        firsts, seconds = entries[0::2], entries[1::2]
        if all(
            routes[2 * i] == routes[2 * i + 1]
            and firsts[i][1] == hops[0]
            and seconds[i][1] == hops[1]
            for i in range(pairs)
        ):
            return routes[0::2], f"{hops[0]},{hops[1]}"
    raise ValueError(f"{family} NLRI with several next hops {hops} have no neutral form")


def neutral_update(message: Update, negotiated: Negotiated) -> Neutral:
    """ExaBGP's decoded UPDATE (not an EOR) in the neutral representation."""
    attributes = message.attributes
    treat_as_withdraw = _TREAT_AS_WITHDRAW in attributes
    withdrawn: list[tuple[str, str, int | None]] = []
    by_family: dict[str, list[tuple[Any, str | None]]] = {}
    for nlri in message.nlris:
        family = family_name(nlri.afi, nlri.safi)
        if treat_as_withdraw or nlri.action == Action.WITHDRAW:
            withdrawn.append((family, _prefix_text(nlri.cidr), _path_id(nlri.path_info)))
            continue
        hop = None if nlri.nexthop is NoNextHop else _ip_text(nlri.nexthop)
        by_family.setdefault(family, []).append((nlri, hop))

    announced: list[tuple[str, str, int | None]] = []
    next_hop: dict[str, str] = {}
    for family, entries in by_family.items():
        routes, hop = _fold_next_hops(family, entries)
        announced.extend(routes)
        if hop is not None:
            next_hop[family] = hop

    if treat_as_withdraw:
        neutral_attrs: Neutral = {}
    else:
        neutral_attrs = neutral_attributes(attributes, negotiated)
        plain = attributes.get(Attribute.CODE.NEXT_HOP)
        if plain is not None and "ipv4-unicast" not in next_hop:
            next_hop["ipv4-unicast"] = _ip_text(plain)
    return {
        "type": "update",
        "withdrawn": sorted(withdrawn, key=_sort_key),
        "announced": sorted(announced, key=_sort_key),
        "next_hop": next_hop,
        "attributes": neutral_attrs,
        "eor": None,
    }


def merge_updates(decoded: list[Neutral]) -> Neutral:
    """Fold several decoded UPDATEs (e.g. one split by message size) into one neutral UPDATE.

    Prefix lists are concatenated and re-sorted; next hops and attributes are merged, and a
    conflict (the same key with different values) raises ValueError.
    """
    merged: Neutral = {
        "type": "update",
        "withdrawn": [],
        "announced": [],
        "next_hop": {},
        "attributes": {},
        "eor": None,
    }
    for update in decoded:
        if update["type"] != "update":
            raise ValueError(f"not an UPDATE: {update['type']}")
        merged["withdrawn"].extend(update["withdrawn"])
        merged["announced"].extend(update["announced"])
        for key in ("next_hop", "attributes"):
            for name, value in update[key].items():
                if merged[key].setdefault(name, value) != value:
                    raise ValueError(f"{key} {name!r} differs between the UPDATEs")
        if update["eor"] is not None:
            if merged["eor"] not in (None, update["eor"]):
                raise ValueError("different End-of-RIB families")
            merged["eor"] = update["eor"]
    merged["withdrawn"].sort(key=_sort_key)
    merged["announced"].sort(key=_sort_key)
    return merged


# ----------------------------------------------------------------------------- encoding
