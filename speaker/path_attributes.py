"""Path attribute sets: the interned, immutable value every route points at, and its encoding.

A ``PathAttributes`` is a named tuple (cheap to build, hash and compare in C) holding every
attribute Myna understands plus unknown transitive ones kept raw. The next hop is part of the
set: for IPv4 it is the NEXT_HOP attribute, for MP_REACH families the MP next hop (16 or 32
octets for IPv6), so one set is what a route carries, whatever family it came in.

Data flow: ``attribute_decoding`` builds sets from received UPDATEs and interns them in
``ATTRIBUTES`` (an ``AttributeTable``), so equal sets are one shared object; the RIB keeps only
references. On the way out ``update_message`` asks ``ATTRIBUTES.wire(...)`` for the encoded
attribute block, which is built once per set and per encoding context and then reused for every
UPDATE and every peer (the table-driven ``_ENCODERS`` list does the building, in type order;
the usual sets are written by one precompiled ``struct`` pack each, see ``_COMMON_PACKERS``).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import NamedTuple

from speaker.codec_errors import EncodeError
from speaker.wire_codes import AS_TRANS, AsPathSegmentType, AttrFlag, AttrType, Origin

AsPathSegment = tuple[int, tuple[int, ...]]
AsPath = tuple[AsPathSegment, ...]

# Plain ints: IntFlag arithmetic runs in Python, and these are used per encoded attribute.
_WELL_KNOWN = int(AttrFlag.TRANSITIVE)
_OPTIONAL = int(AttrFlag.OPTIONAL)
_OPTIONAL_TRANSITIVE = int(AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)
_EXT_LEN = int(AttrFlag.EXTENDED_LENGTH)


class PathAttributes(NamedTuple):
    """One attribute set. Absent optional attributes are None or empty.

    ``aggregator`` is (AS, IPv4 address as int); ``originator_id`` and ``cluster_list`` hold
    IPv4-formatted ids as ints; ``extended_communities`` holds each 8-octet value as an int;
    ``unknown`` holds (flags, type, value) of unrecognised optional transitive attributes, the
    Partial bit already set as RFC 4271 requires when passing them on.
    """

    origin: int = Origin.IGP
    as_path: AsPath = ()
    next_hop: bytes = b""
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, int] | None = None
    communities: tuple[int, ...] = ()
    originator_id: int | None = None
    cluster_list: tuple[int, ...] = ()
    extended_communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    otc: int | None = None
    unknown: tuple[tuple[int, int, bytes], ...] = ()


def as_path_length(path: AsPath) -> int:
    """RFC 4271 9.1.2.2 a) / RFC 6793: an AS_SET counts 1, confederation segments count 0."""
    total = 0
    for seg_type, asns in path:
        if seg_type == AsPathSegmentType.AS_SEQUENCE:
            total += len(asns)
        elif seg_type == AsPathSegmentType.AS_SET:
            total += 1
    return total


def _tlv(flags: int, code: int, value: bytes) -> bytes:
    size = len(value)
    if size > 255:
        return bytes((flags | _EXT_LEN, code, size >> 8, size & 0xFF)) + value
    return bytes((flags & ~_EXT_LEN, code, size)) + value


def _segments_wire(path: AsPath, four_octet: bool) -> bytes:
    parts = []
    for seg_type, path_asns in path:
        asns = path_asns
        if not four_octet and any(a > 0xFFFF for a in asns):
            asns = tuple(a if a <= 0xFFFF else AS_TRANS for a in asns)
        # A segment holds at most 255 ASes; longer ones are split into several.
        for i in range(0, max(len(asns), 1), 255):
            chunk = asns[i : i + 255]
            parts.append(_segment_packer(len(chunk), four_octet)(seg_type, len(chunk), *chunk))
    return b"".join(parts)


_SEGMENT_PACKERS: dict[tuple[int, bool], Callable[..., bytes]] = {}


def _segment_packer(count: int, four_octet: bool) -> Callable[..., bytes]:
    pack = _SEGMENT_PACKERS.get((count, four_octet))
    if pack is None:
        fmt = f">BB{count}{'I' if four_octet else 'H'}"
        pack = _SEGMENT_PACKERS[count, four_octet] = struct.Struct(fmt).pack
    return pack


# Every encoder takes the set and whether the peer speaks 4-octet AS numbers.
Encoder = Callable[[PathAttributes, bool], bytes]


_ORIGIN_WIRE = tuple(bytes((_WELL_KNOWN, AttrType.ORIGIN, 1, v)) for v in range(256))
_NEXT_HOP_HEAD = bytes((_WELL_KNOWN, AttrType.NEXT_HOP, 4))
_PACK_U32 = struct.Struct(">I").pack


def _enc_origin(a: PathAttributes, _: bool) -> bytes:
    return _ORIGIN_WIRE[a.origin]


_EMPTY_AS_PATH = bytes((_WELL_KNOWN, AttrType.AS_PATH, 0))


def _enc_as_path(a: PathAttributes, asn4: bool) -> bytes:
    path = a.as_path
    if not path:
        return _EMPTY_AS_PATH
    if asn4 and len(path) == 1 and len(path[0][1]) <= 63:
        # One segment that fits a one-octet length: the shape of nearly every path.
        seg_type, asns = path[0]
        count = len(asns)
        pack = _SEGMENT_PACKERS.get((count, True)) or _segment_packer(count, True)
        return bytes((_WELL_KNOWN, AttrType.AS_PATH, 2 + 4 * count)) + pack(seg_type, count, *asns)
    return _tlv(_WELL_KNOWN, AttrType.AS_PATH, _segments_wire(path, asn4))


def _enc_next_hop(a: PathAttributes, _: bool) -> bytes:
    return _NEXT_HOP_HEAD + a.next_hop if len(a.next_hop) == 4 else b""


def _enc_u32(field: int, flags: int, code: AttrType) -> Encoder:
    head = bytes((flags, code, 4))

    def encode(a: PathAttributes, _: bool) -> bytes:
        return head + _PACK_U32(a[field])

    return encode


def _enc_atomic(a: PathAttributes, _: bool) -> bytes:
    return _tlv(_WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, b"") if a.atomic_aggregate else b""


def _enc_aggregator(a: PathAttributes, asn4: bool) -> bytes:
    if a.aggregator is None:
        return b""
    asn, address = a.aggregator
    if asn4:
        return _tlv(_OPTIONAL_TRANSITIVE, AttrType.AGGREGATOR, struct.pack(">II", asn, address))
    return _tlv(
        _OPTIONAL_TRANSITIVE,
        AttrType.AGGREGATOR,
        struct.pack(">HI", asn if asn <= 0xFFFF else AS_TRANS, address),
    )


def _enc_u32_list(field: int, flags: int, code: AttrType) -> Encoder:
    def encode(a: PathAttributes, _: bool) -> bytes:
        values: tuple[int, ...] = a[field]  # type: ignore[assignment]
        return _tlv(flags, code, struct.pack(f">{len(values)}I", *values)) if values else b""

    return encode


def _enc_ext_communities(a: PathAttributes, _: bool) -> bytes:
    values = a.extended_communities
    if not values:
        return b""
    return _tlv(
        _OPTIONAL_TRANSITIVE,
        AttrType.EXTENDED_COMMUNITIES,
        struct.pack(f">{len(values)}Q", *values),
    )


def _enc_as4_path(a: PathAttributes, asn4: bool) -> bytes:
    # RFC 6793 4.2.2: only towards an OLD speaker, only when some AS does not fit in 2 octets,
    # and without confederation segments.
    if asn4 or all(asn <= 0xFFFF for _, asns in a.as_path for asn in asns):
        return b""
    path = tuple(
        s for s in a.as_path if s[0] in (AsPathSegmentType.AS_SEQUENCE, AsPathSegmentType.AS_SET)
    )
    return _tlv(_OPTIONAL_TRANSITIVE, AttrType.AS4_PATH, _segments_wire(path, True))


def _enc_as4_aggregator(a: PathAttributes, asn4: bool) -> bytes:
    if asn4 or a.aggregator is None or a.aggregator[0] <= 0xFFFF:
        return b""
    return _tlv(_OPTIONAL_TRANSITIVE, AttrType.AS4_AGGREGATOR, struct.pack(">II", *a.aggregator))


def _enc_large(a: PathAttributes, _: bool) -> bytes:
    # RFC 8092 section 3: duplicate values MUST NOT be transmitted.
    values = tuple(dict.fromkeys(a.large_communities))
    if not values:
        return b""
    flat = [v for triple in values for v in triple]
    return _tlv(
        _OPTIONAL_TRANSITIVE, AttrType.LARGE_COMMUNITY, struct.pack(f">{len(flat)}I", *flat)
    )


def _enc_unknown(a: PathAttributes, _: bool) -> bytes:
    return b"".join(
        _tlv(flags, code, value) for flags, code, value in sorted(a.unknown, key=lambda u: u[1])
    )


_F = PathAttributes._fields
_ALWAYS = -1
_MISSING = object()

# In ascending type order, as RFC 4271 section 5 asks; unknown attributes go last. Each entry
# names the field that must be set for the encoder to have anything to write, so absent
# attributes cost one test instead of a call.
_ENCODERS: tuple[tuple[int, Encoder], ...] = (
    (_ALWAYS, _enc_origin),
    (_ALWAYS, _enc_as_path),
    (_F.index("next_hop"), _enc_next_hop),
    (_F.index("med"), _enc_u32(_F.index("med"), _OPTIONAL, AttrType.MULTI_EXIT_DISC)),
    (_F.index("local_pref"), _enc_u32(_F.index("local_pref"), _WELL_KNOWN, AttrType.LOCAL_PREF)),
    (_F.index("atomic_aggregate"), _enc_atomic),
    (_F.index("aggregator"), _enc_aggregator),
    (
        _F.index("communities"),
        _enc_u32_list(_F.index("communities"), _OPTIONAL_TRANSITIVE, AttrType.COMMUNITIES),
    ),
    (
        _F.index("originator_id"),
        _enc_u32(_F.index("originator_id"), _OPTIONAL, AttrType.ORIGINATOR_ID),
    ),
    (
        _F.index("cluster_list"),
        _enc_u32_list(_F.index("cluster_list"), _OPTIONAL, AttrType.CLUSTER_LIST),
    ),
    (_F.index("extended_communities"), _enc_ext_communities),
    (_F.index("as_path"), _enc_as4_path),
    (_F.index("aggregator"), _enc_as4_aggregator),
    (_F.index("large_communities"), _enc_large),
    (_F.index("otc"), _enc_u32(_F.index("otc"), _OPTIONAL_TRANSITIVE, AttrType.OTC)),
    (_F.index("unknown"), _enc_unknown),
)


# An encoding context is three bits: the peer speaks 4-octet AS numbers, the next hop goes in a
# NEXT_HOP attribute (classic IPv4 NLRI), the peer is internal.
ASN4 = 1
WITH_NEXT_HOP = 2
INTERNAL = 4
_IBGP_ONLY = {_F.index("local_pref"), _F.index("originator_id"), _F.index("cluster_list")}


def encoding_context(asn4: bool, with_next_hop: bool, ibgp: bool) -> int:
    """The context bits for an encode."""
    return ASN4 * asn4 | WITH_NEXT_HOP * with_next_hop | INTERNAL * ibgp


def _wanted(field: int, enc: Encoder, ctx: int) -> bool:
    if ctx & ASN4 and enc in (_enc_as4_path, _enc_as4_aggregator):
        return False  # RFC 6793 4.1: AS4_* only towards a 2-octet speaker
    if not ctx & WITH_NEXT_HOP and enc is _enc_next_hop:
        return False  # RFC 4760: the next hop travels in MP_REACH_NLRI
    # RFC 4271 5.1.5 and RFC 4456: LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST stay inside the AS.
    return bool(ctx & INTERNAL) or field not in _IBGP_ONLY


# The encoders each context needs, chosen once here instead of tested per attribute set. The
# default of an absent field is a singleton (None, False, (), b""): an identity test skips it.
_DEFAULTS = PathAttributes()
_BY_CONTEXT = tuple(
    tuple(
        (field, _DEFAULTS[field] if field >= 0 else _MISSING, enc)
        for field, enc in _ENCODERS
        if _wanted(field, enc, ctx)
    )
    for ctx in range(8)
)
_FIRST_RARE = _F.index("atomic_aggregate")
assert _FIRST_RARE == 5  # _common_block unpacks the fields before it by a literal slice
_RARE_ABSENT = _DEFAULTS[_FIRST_RARE:]
_COMMON = tuple(tuple(e for e in encoders if e[0] < _FIRST_RARE) for encoders in _BY_CONTEXT)


# The common sets (nothing from ATOMIC_AGGREGATE on, at most one AS_PATH segment of at most
# 63 ASes, 4-octet peer) are written by one struct.pack each: ORIGIN, AS_PATH, then NEXT_HOP, MED
# and LOCAL_PREF, each header and value, where an absent attribute is packed as "0s0s" (its
# header and b"" take no room). _COMMON_PACKERS[count][absent] serves a segment of ``count``
# ASes (64 for an empty AS_PATH), ``absent`` being 1 for MED, 2 for LOCAL_PREF, 4 for NEXT_HOP.
_H_ORIGIN = bytes((_WELL_KNOWN, AttrType.ORIGIN, 1))
_H_NEXT_HOP = bytes((_WELL_KNOWN, AttrType.NEXT_HOP, 4))
_H_MED = bytes((_OPTIONAL, AttrType.MULTI_EXIT_DISC, 4))
_H_LOCAL_PREF = bytes((_WELL_KNOWN, AttrType.LOCAL_PREF, 4))
_H_AS_PATH = tuple(bytes((_WELL_KNOWN, AttrType.AS_PATH, 2 + 4 * n)) for n in range(64))
_NO_PATH = 64


def _common_packer(count: int, absent: int) -> Callable[..., bytes]:
    path = "3s" if count == _NO_PATH else f"3sBB{count}I"
    nh = "0s0s" if absent & 4 else "3s4s"
    med = "0s0s" if absent & 1 else "3sI"
    local_pref = "0s0s" if absent & 2 else "3sI"
    return struct.Struct(f">3sB{path}{nh}{med}{local_pref}").pack


_COMMON_PACKERS = tuple(
    tuple(_common_packer(count, absent) for absent in range(8)) for count in range(65)
)


def _common_block(attrs: PathAttributes, ctx: int) -> bytes | None:
    """The block of a common set (see _COMMON_PACKERS), or None for any other set.

    None too when packing fails: the general encoder then says why.
    """
    origin, path, next_hop, med, local_pref = attrs[:5]  # the fields before _FIRST_RARE
    absent = 0
    nh_value: object = next_hop
    med_value: object = med
    lp_value: object = local_pref
    if med is None:
        absent, med_value = 1, b""
    if local_pref is None or not ctx & INTERNAL:
        absent, lp_value = absent | 2, b""
    try:
        if not ctx & WITH_NEXT_HOP or len(next_hop) != 4:
            absent, nh_value = absent | 4, b""
        if not path:
            return _COMMON_PACKERS[_NO_PATH][absent](
                _H_ORIGIN, origin, _EMPTY_AS_PATH, _H_NEXT_HOP, nh_value, _H_MED, med_value,
                _H_LOCAL_PREF, lp_value,
            )  # fmt: skip
        if len(path) == 1:
            seg_type, asns = path[0]
            count = len(asns)
            if count < _NO_PATH:
                return _COMMON_PACKERS[count][absent](
                    _H_ORIGIN, origin, _H_AS_PATH[count], seg_type, count, *asns, _H_NEXT_HOP,
                    nh_value, _H_MED, med_value, _H_LOCAL_PREF, lp_value,
                )  # fmt: skip
    except (struct.error, OverflowError, TypeError, ValueError):
        pass
    return None


def encode_attributes(attrs: PathAttributes, ctx: int) -> bytes:
    """The attribute block for ``attrs`` in context ``ctx`` (see ``encoding_context``).

    MP_REACH/MP_UNREACH are not part of it: ``update_message`` adds them per UPDATE.
    """
    if ctx & ASN4 and attrs[_FIRST_RARE:] == _RARE_ABSENT:
        block = _common_block(attrs, ctx)
        if block is not None:
            return block
    asn4 = bool(ctx & ASN4)
    # Most sets carry none of the attributes from ATOMIC_AGGREGATE on: one C-level comparison
    # then limits the walk to the five common encoders.
    if attrs[_FIRST_RARE:] == _RARE_ABSENT and (asn4 or not attrs.as_path):
        encoders = _COMMON[ctx]
    else:
        encoders = _BY_CONTEXT[ctx]
    parts = []
    try:
        for field, absent, encode in encoders:
            if field >= 0 and attrs[field] is absent:
                continue
            parts.append(encode(attrs, asn4))
    except (struct.error, OverflowError, TypeError, ValueError) as exc:
        raise EncodeError(f"attribute set cannot be encoded: {exc}") from exc
    return b"".join(parts)


class AttributeTable:
    """Interns attribute sets and caches their encoded blocks.

    ``intern`` returns the one shared object equal to its argument. ``wire`` returns the encoded
    block for a set in one of eight contexts (see ``encoding_context``), built at most once.
    ``sweep`` drops sets no route refers to any more; the RIB's owner calls it now and then, so
    the table never outgrows the routes.
    """

    __slots__ = ("_sets",)

    # An entry is [canonical set, then the encoded block for each of the 8 contexts, built on
    # demand]. intern and wire spell a new one out: a helper call would cost more than the list.

    def __init__(self) -> None:
        self._sets: dict[PathAttributes, list[object]] = {}

    def __len__(self) -> int:
        return len(self._sets)

    def intern(self, attrs: PathAttributes) -> PathAttributes:
        """The shared object equal to ``attrs``."""
        # setdefault hashes the set once whether it is new or not.
        return self._sets.setdefault(  # type: ignore[return-value]
            attrs, [attrs, None, None, None, None, None, None, None, None]
        )[0]

    def wire(self, attrs: PathAttributes, ctx: int) -> bytes:
        """The encoded attribute block, from cache when this set was encoded before."""
        entry = self._sets.setdefault(
            attrs, [attrs, None, None, None, None, None, None, None, None]
        )
        cached = entry[1 + ctx]
        if cached is None:
            cached = entry[1 + ctx] = encode_attributes(attrs, ctx)
        return cached  # type: ignore[return-value]

    def sweep(self) -> int:
        """Forget sets referenced only by this table; returns how many were dropped."""
        dropped = 0
        for entry in list(self._sets.values()):
            # Referenced by the dict key, the entry list and getrefcount's own argument: 3.
            if sys.getrefcount(entry[0]) <= 3:
                del self._sets[entry[0]]  # type: ignore[arg-type]
                dropped += 1
        return dropped


ATTRIBUTES = AttributeTable()
