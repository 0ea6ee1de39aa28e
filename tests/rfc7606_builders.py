"""Hand-made BGP messages and expected outcomes for the RFC error-handling table.

Data flow: ``rfc7606_cases`` builds every row of ``CASES`` from these pieces: the sessions
(``Negotiated`` values), wire builders that assemble raw bytes by hand (``msg``, ``attr``,
``upd`` and friends: a valid baseline UPDATE, OPEN or ROUTE-REFRESH with one thing changed,
nothing taken from the codec under test), and the outcome records (``reset``, ``withdraw``,
``kept``, ``decoded``) that ``test_error_handling_table.py`` checks ``decode_wire``'s result
against. The fuzz test there seeds itself from the same builders. Addresses come from
198.18.0.0/15 and 2001:db8::/32 only; AS numbers from the documentation ranges (RFC 5398).
The ``assert`` statements here are rewritten by pytest like a test module's
(``tests/conftest.py``).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass

from speaker.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.codec_errors import UpdateAction
from speaker.negotiated import Negotiated
from speaker.nlri import prefix_from_text
from speaker.path_attributes import PathAttributes
from speaker.wire_codes import AS_TRANS, AttrType, Family, MessageType

# ---------------------------------------------------------------------------------------------
# Sessions

PEER_AS = 64496  # RFC 5398 documentation AS numbers
OTHER_AS = 64497
AS4_ONLY = 65536  # RFC 5398 4-octet documentation range; not mappable to 2 octets
IBGP = Negotiated(asn4=True, ibgp=True, peer_as=0)
EBGP = Negotiated(asn4=True, ibgp=False, peer_as=PEER_AS)
IBGP_2OCTET = Negotiated(asn4=False, ibgp=True, peer_as=0)  # the peer is an RFC 6793 OLD speaker
EXT_NEXT_HOP = Negotiated(ipv4_nlri_ipv6_next_hop=True)
EXT_MESSAGE = Negotiated(extended_message=True)

V4 = Family.IPV4_UNICAST
V6 = Family.IPV6_UNICAST

# ---------------------------------------------------------------------------------------------
# Wire builders: raw bytes only, nothing from the codec under test.

MARKER = b"\xff" * 16
WK = 0x40  # well-known: Transitive set, Optional clear
OPT = 0x80  # optional non-transitive
OPT_T = 0xC0  # optional transitive
EXT = 0x10  # Extended Length
PARTIAL = 0x20


def msg(mtype: int, body: bytes, *, length: int | None = None, marker: bytes = MARKER) -> bytes:
    """A whole message; ``length`` overrides the header's Length field."""
    total = 19 + len(body) if length is None else length
    return marker + struct.pack(">HB", total, mtype) + body


def attr(flags: int, code: int, value: bytes, *, length: int | None = None) -> bytes:
    """One path attribute TLV; the Extended Length flag picks a 2-octet length field."""
    size = len(value) if length is None else length
    if flags & EXT:
        return struct.pack(">BBH", flags, code, size) + value
    return struct.pack(">BBB", flags, code, size) + value


def prefix_wire(text: str) -> bytes:
    net = ipaddress.ip_network(text)
    nbytes = (net.prefixlen + 7) // 8
    return bytes((net.prefixlen,)) + net.network_address.packed[:nbytes]


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def ip_int(text: str) -> int:
    return int(ipaddress.ip_address(text))


def segment(seg_type: int, asns: tuple[int, ...], width: int = 4) -> bytes:
    fmt = ">" + ("I" if width == 4 else "H") * len(asns)
    return bytes((seg_type, len(asns))) + struct.pack(fmt, *asns)


def update_body(
    attrs: bytes,
    nlri: bytes = b"",
    withdrawn: bytes = b"",
    *,
    wlen: int | None = None,
    alen: int | None = None,
) -> bytes:
    wl = len(withdrawn) if wlen is None else wlen
    al = len(attrs) if alen is None else alen
    return struct.pack(">H", wl) + withdrawn + struct.pack(">H", al) + attrs + nlri


def mp_reach(
    afi: int,
    safi: int,
    next_hop: bytes,
    nlri: bytes,
    *,
    flags: int = OPT,
    reserved: int = 0,
    nh_len: int | None = None,
) -> bytes:
    size = len(next_hop) if nh_len is None else nh_len
    value = struct.pack(">HBB", afi, safi, size) + next_hop + bytes((reserved,)) + nlri
    return attr(flags, AttrType.MP_REACH_NLRI, value)


def mp_unreach(afi: int, safi: int, withdrawn: bytes, *, flags: int = OPT) -> bytes:
    return attr(flags, AttrType.MP_UNREACH_NLRI, struct.pack(">HB", afi, safi) + withdrawn)


# The baseline UPDATE: ORIGIN IGP, AS_PATH (PEER_AS), NEXT_HOP 198.18.0.1, LOCAL_PREF 100,
# NLRI 198.18.1.0/26. Every row changes one thing in it.
NH = ip("198.18.0.1")
NH6 = ip("2001:db8::1")
P1_TEXT = "198.18.1.0/26"
P1 = prefix_from_text(P1_TEXT)
NLRI1 = prefix_wire(P1_TEXT)
P2 = prefix_from_text("198.18.2.0/24")  # a withdrawn route
W2 = prefix_wire("198.18.2.0/24")
P6 = prefix_from_text("2001:db8:1::/48")
NLRI6 = prefix_wire("2001:db8:1::/48")

ORIGIN_IGP = attr(WK, AttrType.ORIGIN, b"\x00")
AS_PATH = attr(WK, AttrType.AS_PATH, segment(2, (PEER_AS,)))
AS_PATH_2OCTET = attr(WK, AttrType.AS_PATH, segment(2, (PEER_AS, AS_TRANS), width=2))
NEXT_HOP = attr(WK, AttrType.NEXT_HOP, NH)
LOCAL_PREF = attr(WK, AttrType.LOCAL_PREF, struct.pack(">I", 100))
MP_REACH_V6 = mp_reach(2, 1, NH6, NLRI6)

_BASE = {"origin": ORIGIN_IGP, "as_path": AS_PATH, "next_hop": NEXT_HOP, "local_pref": LOCAL_PREF}


def attrs(*, first: bytes = b"", extra: bytes = b"", **replace: bytes | None) -> bytes:
    """The baseline attribute field; a keyword replaces that attribute (None drops it)."""
    unknown = set(replace) - set(_BASE)
    assert not unknown, unknown
    body = b"".join(replace.get(k, v) or b"" for k, v in _BASE.items())
    return first + body + extra


def upd(
    *,
    nlri: bytes = NLRI1,
    withdrawn: bytes = b"",
    wlen: int | None = None,
    alen: int | None = None,
    first: bytes = b"",
    extra: bytes = b"",
    **replace: bytes | None,
) -> bytes:
    """The baseline UPDATE with one change."""
    field = attrs(first=first, extra=extra, **replace)
    return msg(MessageType.UPDATE, update_body(field, nlri, withdrawn, wlen=wlen, alen=alen))


def upd6(*, reach: bytes = MP_REACH_V6, extra: bytes = b"", **replace: bytes | None) -> bytes:
    """The baseline as an IPv6 route: MP_REACH_NLRI first, no NEXT_HOP, no IPv4 NLRI."""
    replace.setdefault("next_hop", None)
    return upd(nlri=b"", first=reach, extra=extra, **replace)


def upd2(*, extra: bytes = b"", **replace: bytes | None) -> bytes:
    """The baseline on a 2-octet session (RFC 6793 OLD peer): AS_PATH PEER_AS AS_TRANS."""
    replace.setdefault("as_path", AS_PATH_2OCTET)
    return upd(extra=extra, **replace)


def big_update(count: int) -> bytes:
    """The baseline announcing ``count`` /32 host routes, to exceed 4096 octets."""
    nlri = b"".join(prefix_wire(f"198.18.{4 + i // 256}.{i % 256}/32") for i in range(count))
    return upd(nlri=nlri)


BIG_COUNT = 810  # 50 + 810 * 5 = 4100 octets
BIG_PREFIXES = tuple(
    prefix_from_text(f"198.18.{4 + i // 256}.{i % 256}/32") for i in range(BIG_COUNT)
)

# OPEN: version 4, My AS, hold time 90, BGP Identifier 198.18.0.1, capabilities MP IPv4 unicast
# and 4-octet AS, each in its own Capabilities optional parameter.
CAP_MP = bytes((1, 4)) + struct.pack(">HBB", 1, 0, 1)
CAP_AS4 = bytes((65, 4)) + struct.pack(">I", PEER_AS)
OPEN_CAPS = (MultiprotocolCapability(1, 1), FourOctetAsCapability(PEER_AS))


def param(ptype: int, value: bytes) -> bytes:
    return bytes((ptype, len(value))) + value


def xparam(ptype: int, value: bytes) -> bytes:
    """An RFC 9072 extended-form optional parameter (2-octet length)."""
    return bytes((ptype,)) + struct.pack(">H", len(value)) + value


OPEN_PARAMS = param(2, CAP_MP) + param(2, CAP_AS4)
OPEN_XPARAMS = xparam(2, CAP_MP) + xparam(2, CAP_AS4)


def open_msg(params: bytes = OPEN_PARAMS, *, opt_len: int | None = None) -> bytes:
    head = struct.pack(">BHHI", 4, PEER_AS, 90, ip_int("198.18.0.1"))
    size = len(params) if opt_len is None else opt_len
    return msg(MessageType.OPEN, head + bytes((size,)) + params)


def open_ext(params: bytes = OPEN_XPARAMS, *, non_ext_len: int = 255) -> bytes:
    """RFC 9072: Non-Ext OP Len, Non-Ext OP Type 255, Extended Opt. Parm. Length, params."""
    head = struct.pack(">BHHI", 4, PEER_AS, 90, ip_int("198.18.0.1"))
    return msg(
        MessageType.OPEN, head + bytes((non_ext_len, 255)) + struct.pack(">H", len(params)) + params
    )


# An OPEN over 4096 octets (RFC 9072 form, 17 padding capabilities of 252 octets).
BIG_OPEN = open_ext(xparam(2, (bytes((0xF0, 250)) + b"\x00" * 250) * 17))


def route_refresh(subtype: int, extra: bytes = b"", *, body: bytes | None = None) -> bytes:
    """ROUTE-REFRESH for IPv4 unicast: AFI, Message Subtype (RFC 7313), SAFI."""
    return msg(
        MessageType.ROUTE_REFRESH,
        struct.pack(">HBB", 1, subtype, 1) + extra if body is None else body,
    )


# ---------------------------------------------------------------------------------------------
# Outcomes

TAW = UpdateAction.TREAT_AS_WITHDRAW
AD = UpdateAction.ATTRIBUTE_DISCARD
# (action, attribute type, subcode); subcode None where no RFC names one (not asserted).
Problem = tuple[UpdateAction, int, int | None]


def taw(code: int, subcode: int | None) -> Problem:
    return (TAW, code, subcode)


def ad(code: int, subcode: int | None) -> Problem:
    return (AD, code, subcode)


Check = Callable[[object], bool]
Fields = tuple[tuple[str, object], ...]


def check_fields(attributes: PathAttributes, fields: Fields, absent: tuple[str, ...]) -> None:
    """The decoded attributes hold ``fields`` (values or predicates); ``absent`` ones are gone."""
    for name in absent:
        default = PathAttributes._field_defaults[name]
        assert getattr(attributes, name) == default, f"{name} should be absent"
    for name, want in fields:
        value = getattr(attributes, name)
        if callable(want):
            assert want(value), f"{name}={value!r} fails {want.__name__}"
        else:
            assert value == want, f"{name}: {value!r} != {want!r}"


@dataclass(frozen=True)
class Reset:
    code: int
    subcode: int
    data: bytes


@dataclass(frozen=True)
class Withdraw:
    problems: tuple[Problem, ...]
    unreach: tuple[tuple[Family, tuple[int, ...]], ...]
    tolerate: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Kept:
    problems: tuple[Problem, ...]
    reach: tuple[tuple[Family, tuple[int, ...]], ...]
    unreach: tuple[tuple[Family, tuple[int, ...]], ...]
    absent: tuple[str, ...]
    fields: Fields
    end_of_rib: Family | None
    tolerate: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Decoded:
    kind: type
    fields: Fields


Outcome = Reset | Withdraw | Kept | Decoded
ANNOUNCED = ((V4, (P1,)),)


def reset(code: int, subcode: int, data: bytes = b"") -> Reset:
    return Reset(code, subcode, data)


def withdraw(
    *problems: Problem,
    unreach: tuple[tuple[Family, tuple[int, ...]], ...] = ANNOUNCED,
    tolerate: tuple[Problem, ...] = (),
) -> Withdraw:
    return Withdraw(problems, unreach, tolerate)


def kept(
    *problems: Problem,
    reach: tuple[tuple[Family, tuple[int, ...]], ...] = ANNOUNCED,
    unreach: tuple[tuple[Family, tuple[int, ...]], ...] = (),
    absent: tuple[str, ...] = (),
    end_of_rib: Family | None = None,
    tolerate: tuple[Problem, ...] = (),
    **fields: object,
) -> Kept:
    return Kept(problems, reach, unreach, absent, tuple(fields.items()), end_of_rib, tolerate)


def decoded(kind: type, **fields: object) -> Decoded:
    return Decoded(kind, tuple(fields.items()))


def unknown_has(code: int, value: bytes) -> Check:
    """The attribute is carried on among the unknown ones, with its value untouched."""

    def check(unknown: object) -> bool:
        return any(c == code and v == value for _, c, v in unknown)  # type: ignore[attr-defined]

    check.__name__ = f"unknown_has({code}, {value.hex()})"
    return check


# ---------------------------------------------------------------------------------------------
# Attribute values used by several rows

AGGREGATOR_ID = ip("198.18.0.9")
ORIGIN_BAD = attr(WK, AttrType.ORIGIN, b"\x03")
ATOMIC_BAD = attr(WK, AttrType.ATOMIC_AGGREGATE, b"\x00")  # length 1
AGGREGATOR_SHORT = attr(OPT_T, AttrType.AGGREGATOR, struct.pack(">H", OTHER_AS) + AGGREGATOR_ID)
AGGREGATOR4 = attr(OPT_T, AttrType.AGGREGATOR, struct.pack(">I", OTHER_AS) + AGGREGATOR_ID)
UNKNOWN_WK = attr(WK, 99, b"\x01\x02")
NEXT_HOP_LONG = attr(WK, AttrType.NEXT_HOP, NH + b"\x00")
EXT_COMMUNITY_UNKNOWN_TYPE = bytes.fromhex("8fff0000fbf00001")  # type 0x8f, sub-type 0xff
IPV6_EXT_COMMUNITY_UNKNOWN_TYPE = bytes.fromhex("8fff") + NH6 + b"\x00\x01"
# RFC 6793: the 2-octet AGGREGATOR says AS_TRANS, the real AS is in AS4_AGGREGATOR.
AGGREGATOR_TRANS = attr(OPT_T, AttrType.AGGREGATOR, struct.pack(">H", AS_TRANS) + AGGREGATOR_ID)
AS4_PATH = attr(OPT_T, AttrType.AS4_PATH, segment(2, (AS4_ONLY,)))
PATH_2OCTET = ((2, (PEER_AS, AS_TRANS)),)
PATH_MERGED = ((2, (PEER_AS, AS4_ONLY)),)
