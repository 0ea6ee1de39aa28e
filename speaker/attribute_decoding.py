"""Decoding the path attributes of an UPDATE, with RFC 7606 revised error handling.

One table, ``_SPECS``, gives each attribute type its required flags, its decoder and what a
malformation costs (BIRD's ``bgp_attr_table`` in Python): treat-as-withdraw, attribute-discard,
or a session reset for MP_REACH/MP_UNREACH. Decoders raise the private ``_MalformedError`` with the
RFC 4271 subcode; the loop turns it into an ``UpdateProblem`` or a ``MessageError``.

Data flow: ``update_message.decode_update`` passes the attribute field of an UPDATE body and the
session's ``Negotiated``; ``decode_attributes`` returns a ``DecodedAttributes`` with the field
values of a ``PathAttributes`` (not yet interned, the next hop still to be chosen), the raw
MP_REACH/MP_UNREACH payload positions, and the problems found. For the commonest UPDATE of all
(one IPv4 prefix, the usual attributes in their usual encoding) ``decode_update`` skips the walk
and reads the whole body with the layouts in ``COMMON_SHAPES_AS4`` / ``COMMON_SHAPES_AS2``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from speaker.codec_errors import MessageError, UpdateAction, UpdateProblem
from speaker.negotiated import Negotiated
from speaker.path_attributes import AsPath, PathAttributes, as_path_length
from speaker.wire_codes import (
    AS_TRANS,
    AsPathSegmentType,
    AttrFlag,
    AttrType,
    ErrorCode,
    UpdateSubcode,
)

_TAW = UpdateAction.TREAT_AS_WITHDRAW
_DISCARD = UpdateAction.ATTRIBUTE_DISCARD
_RESET = None  # the attribute's malformation resets the session

# Plain ints: IntFlag arithmetic runs in Python and this loop runs once per attribute.
_EXT_LEN = int(AttrFlag.EXTENDED_LENGTH)
_PARTIAL = int(AttrFlag.PARTIAL)
_TRANSITIVE = int(AttrFlag.TRANSITIVE)
_MP_REACH_CODE = int(AttrType.MP_REACH_NLRI)
_MP_UNREACH_CODE = int(AttrType.MP_UNREACH_NLRI)
_WELL_KNOWN = int(AttrFlag.TRANSITIVE)
_OPTIONAL = int(AttrFlag.OPTIONAL)
_OPTIONAL_TRANSITIVE = int(AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

_F = PathAttributes._fields
ORIGIN_I = _F.index("origin")
AS_PATH_I = _F.index("as_path")
NEXT_HOP_I = _F.index("next_hop")
_DEFAULTS: tuple[object, ...] = PathAttributes()

# Positions in ``DecodedAttributes.extra`` for values that are not fields of the set.
_AS4_PATH = 0
_AS4_AGGREGATOR = 1
_MP_REACH = 2
_MP_UNREACH = 3


class _MalformedError(Exception):
    def __init__(self, subcode: int, reason: str) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason


class _IgnoredError(Exception):
    """The attribute is dropped without it being an error (e.g. LOCAL_PREF from eBGP)."""


Decoder = Callable[[bytes, int, int, Negotiated], object]


class _Spec(NamedTuple):
    flags: int  # expected Optional and Transitive bits
    field: int  # index into PathAttributes, or -1 - position in ``extra``
    decode: Decoder
    action: UpdateAction | None  # None: session reset
    length_subcode: int  # subcode of a malformation of this attribute


# What the attribute field held: PathAttributes field values in order (next hop not yet chosen),
# a bit (1 << type code) per attribute kept, where MP_REACH_NLRI and MP_UNREACH_NLRI sit as
# (attribute start, value start, value end), and the problems found. A plain tuple: this is
# built once per UPDATE.
DecodedAttributes = tuple[
    list[object], int, tuple[int, int, int] | None, tuple[int, int, int] | None, list[UpdateProblem]
]


# Decoders test lengths inline and call these only to build the error: one call less per
# attribute on the path every UPDATE takes.
def _bad_length(what: str, length: int, want: int) -> _MalformedError:
    return _MalformedError(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, f"{what} length {length}, expected {want}"
    )


def _bad_multiple(what: str, length: int, unit: int) -> _MalformedError:
    return _MalformedError(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        f"{what} length {length} is not a non-zero multiple of {unit}",
    )


def _origin(data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end - start != 1:
        raise _bad_length("ORIGIN", end - start, 1)
    value = data[start]
    if value > 2:
        raise _MalformedError(
            UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, f"undefined ORIGIN value {value}"
        )
    return value


_SEQUENCE = int(AsPathSegmentType.AS_SEQUENCE)
_UNPACKERS: dict[tuple[int, bool], Callable[[bytes, int], tuple[int, ...]]] = {}


def _unpacker(count: int, four_octet: bool) -> Callable[[bytes, int], tuple[int, ...]]:
    unpack = _UNPACKERS.get((count, four_octet))
    if unpack is None:
        unpack = _UNPACKERS[count, four_octet] = struct.Struct(
            f">{count}{'I' if four_octet else 'H'}"
        ).unpack_from
    return unpack


def parse_as_path(data: bytes, start: int, end: int, four_octet: bool) -> AsPath:
    """AS_PATH or AS4_PATH segments; raises ``_MalformedError`` (3/11) on any inconsistency."""
    width = 4 if four_octet else 2
    # The usual path is one AS_SEQUENCE filling the attribute: one check, one C unpack.
    if end - start >= 2 + width and data[start] == _SEQUENCE:
        count = data[start + 1]
        if count and 2 + count * width == end - start:
            return ((_SEQUENCE, _unpacker(count, four_octet)(data, start + 2)),)
    fmt = "I" if four_octet else "H"
    segments = []
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise _MalformedError(
                UpdateSubcode.MALFORMED_AS_PATH, "segment header overruns AS_PATH"
            )
        seg_type, count = data[pos], data[pos + 1]
        if not 1 <= seg_type <= 4:
            raise _MalformedError(
                UpdateSubcode.MALFORMED_AS_PATH, f"unknown segment type {seg_type}"
            )
        if count == 0:
            raise _MalformedError(UpdateSubcode.MALFORMED_AS_PATH, "segment of length 0")
        nxt = pos + 2 + count * width
        if nxt > end:
            raise _MalformedError(UpdateSubcode.MALFORMED_AS_PATH, "segment overruns AS_PATH")
        segments.append((seg_type, struct.unpack_from(f">{count}{fmt}", data, pos + 2)))
        pos = nxt
    return tuple(segments)


def _as_path(data: bytes, start: int, end: int, neg: Negotiated) -> object:
    # parse_as_path's one-segment fast path, repeated here to save a call on every UPDATE.
    if neg.asn4 and end - start >= 6 and data[start] == _SEQUENCE:
        count = data[start + 1]
        if count and 2 + 4 * count == end - start:
            unpack = _UNPACKERS.get((count, True)) or _unpacker(count, True)
            return ((_SEQUENCE, unpack(data, start + 2)),)
    return parse_as_path(data, start, end, neg.asn4)


def _local_pref(data: bytes, start: int, end: int, neg: Negotiated) -> object:
    if not neg.ibgp:
        raise _IgnoredError  # RFC 7606 7.5: LOCAL_PREF from an external peer is discarded
    if end - start != 4:
        raise _bad_length("LOCAL_PREF", end - start, 4)
    return _U32.unpack_from(data, start)[0]


def _next_hop(data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end - start != 4:
        raise _bad_length("NEXT_HOP", end - start, 4)
    return data[start:end]


def _u32(what: str) -> Decoder:
    def decode(data: bytes, start: int, end: int, _: Negotiated) -> object:
        if end - start != 4:
            raise _bad_length(what, end - start, 4)
        return _U32.unpack_from(data, start)[0]

    return decode


def _ibgp_only(decoder: Decoder) -> Decoder:
    # RFC 7606 7.5, 7.9, 7.10: from an external peer the attribute is simply discarded.
    def decode(data: bytes, start: int, end: int, neg: Negotiated) -> object:
        if not neg.ibgp:
            raise _IgnoredError
        return decoder(data, start, end, neg)

    return decode


def _atomic(_data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end - start != 0:
        raise _bad_length("ATOMIC_AGGREGATE", end - start, 0)
    return True


def _aggregator(data: bytes, start: int, end: int, neg: Negotiated) -> object:
    if neg.asn4:
        if end - start != 8:
            raise _bad_length("AGGREGATOR", end - start, 8)
        return struct.unpack_from(">II", data, start)
    if end - start != 6:
        raise _bad_length("AGGREGATOR", end - start, 6)
    return struct.unpack_from(">HI", data, start)


def _u32_list(what: str) -> Decoder:
    def decode(data: bytes, start: int, end: int, _: Negotiated) -> object:
        if end == start or (end - start) % 4:
            raise _bad_multiple(what, end - start, 4)
        return struct.unpack_from(f">{(end - start) // 4}I", data, start)

    return decode


def _ext_communities(data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end == start or (end - start) % 8:
        raise _bad_multiple("EXTENDED_COMMUNITIES", end - start, 8)
    return struct.unpack_from(f">{(end - start) // 8}Q", data, start)


def _large(data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end == start or (end - start) % 12:
        raise _bad_multiple("LARGE_COMMUNITY", end - start, 12)
    flat = struct.unpack_from(f">{(end - start) // 4}I", data, start)
    # RFC 8092 section 3: redundant values are removed silently, first occurrence kept.
    return tuple(dict.fromkeys(zip(flat[0::3], flat[1::3], flat[2::3], strict=True)))


def _as4_path(data: bytes, start: int, end: int, neg: Negotiated) -> object:
    if neg.asn4:
        # RFC 6793 4.1: a NEW speaker discards AS4_PATH from a NEW speaker (and logs it).
        raise _MalformedError(UpdateSubcode.UNSPECIFIC, "AS4_PATH between 4-octet speakers")
    # Confederation segments are dropped (and reported) when the paths are merged.
    return parse_as_path(data, start, end, True)


def _as4_aggregator(data: bytes, start: int, end: int, neg: Negotiated) -> object:
    if neg.asn4:
        raise _MalformedError(UpdateSubcode.UNSPECIFIC, "AS4_AGGREGATOR between 4-octet speakers")
    if end - start != 8:
        raise _bad_length("AS4_AGGREGATOR", end - start, 8)
    return struct.unpack_from(">II", data, start)


def _mp(min_len: int, what: str) -> Decoder:
    def decode(_data: bytes, start: int, end: int, _: Negotiated) -> object:
        if end - start < min_len:
            raise _MalformedError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"{what} length {end - start} is below {min_len}",
            )
        return (start, end)

    return decode


def _ipv6_ext_communities(data: bytes, start: int, end: int, _: Negotiated) -> object:
    if end == start or (end - start) % 20:
        raise _bad_multiple("IPV6_EXTENDED_COMMUNITIES", end - start, 20)
    # Not interpreted: carried on as received, so it is stored with the unknown attributes.
    return (_OPTIONAL_TRANSITIVE, AttrType.IPV6_EXTENDED_COMMUNITIES, data[start:end])


_UNKNOWN_I = _F.index("unknown")

_SPECS: dict[int, _Spec] = {
    AttrType.ORIGIN: _Spec(
        _WELL_KNOWN, ORIGIN_I, _origin, _TAW, UpdateSubcode.ATTRIBUTE_LENGTH_ERROR
    ),
    AttrType.AS_PATH: _Spec(
        _WELL_KNOWN, AS_PATH_I, _as_path, _TAW, UpdateSubcode.MALFORMED_AS_PATH
    ),
    AttrType.NEXT_HOP: _Spec(
        _WELL_KNOWN, NEXT_HOP_I, _next_hop, _TAW, UpdateSubcode.ATTRIBUTE_LENGTH_ERROR
    ),
    AttrType.MULTI_EXIT_DISC: _Spec(_OPTIONAL, _F.index("med"), _u32("MULTI_EXIT_DISC"), _TAW, 5),
    AttrType.LOCAL_PREF: _Spec(_WELL_KNOWN, _F.index("local_pref"), _local_pref, _TAW, 5),
    AttrType.ATOMIC_AGGREGATE: _Spec(
        _WELL_KNOWN, _F.index("atomic_aggregate"), _atomic, _DISCARD, 5
    ),
    AttrType.AGGREGATOR: _Spec(
        _OPTIONAL_TRANSITIVE, _F.index("aggregator"), _aggregator, _DISCARD, 5
    ),
    AttrType.COMMUNITIES: _Spec(
        _OPTIONAL_TRANSITIVE, _F.index("communities"), _u32_list("COMMUNITIES"), _TAW, 5
    ),
    AttrType.ORIGINATOR_ID: _Spec(
        _OPTIONAL, _F.index("originator_id"), _ibgp_only(_u32("ORIGINATOR_ID")), _TAW, 5
    ),
    AttrType.CLUSTER_LIST: _Spec(
        _OPTIONAL, _F.index("cluster_list"), _ibgp_only(_u32_list("CLUSTER_LIST")), _TAW, 5
    ),
    AttrType.MP_REACH_NLRI: _Spec(_OPTIONAL, -1 - _MP_REACH, _mp(5, "MP_REACH_NLRI"), _RESET, 9),
    AttrType.MP_UNREACH_NLRI: _Spec(
        _OPTIONAL, -1 - _MP_UNREACH, _mp(3, "MP_UNREACH_NLRI"), _RESET, 9
    ),
    AttrType.EXTENDED_COMMUNITIES: _Spec(
        _OPTIONAL_TRANSITIVE, _F.index("extended_communities"), _ext_communities, _TAW, 5
    ),
    AttrType.AS4_PATH: _Spec(_OPTIONAL_TRANSITIVE, -1 - _AS4_PATH, _as4_path, _DISCARD, 11),
    AttrType.AS4_AGGREGATOR: _Spec(
        _OPTIONAL_TRANSITIVE, -1 - _AS4_AGGREGATOR, _as4_aggregator, _DISCARD, 5
    ),
    AttrType.IPV6_EXTENDED_COMMUNITIES: _Spec(
        _OPTIONAL_TRANSITIVE, _UNKNOWN_I, _ipv6_ext_communities, _TAW, 5
    ),
    AttrType.LARGE_COMMUNITY: _Spec(
        _OPTIONAL_TRANSITIVE, _F.index("large_communities"), _large, _TAW, 5
    ),
    AttrType.OTC: _Spec(_OPTIONAL_TRANSITIVE, _F.index("otc"), _u32("OTC"), _TAW, 5),
}


# Fixed-size attributes in their canonical encoding (exact flags, one-octet length) are read
# without a decoder call: header bytes -> (field, unpacker, value length, presence bit). Any
# other encoding of them takes the general path, which also reports the errors.
def _fast(
    code: AttrType, flags: int, fmt: str, field: str
) -> tuple[bytes, tuple[int, Callable[[bytes, int], tuple[object, ...]], int, int]]:
    unpacker = struct.Struct(fmt)
    return bytes((flags, code, unpacker.size)), (
        _F.index(field),
        unpacker.unpack_from,
        unpacker.size,
        1 << code,
    )


_FAST_EBGP = dict(
    [
        # ORIGIN's value is range-checked once after the walk (see decode_attributes).
        _fast(AttrType.ORIGIN, _WELL_KNOWN, ">B", "origin"),
        _fast(AttrType.NEXT_HOP, _WELL_KNOWN, ">4s", "next_hop"),
        _fast(AttrType.MULTI_EXIT_DISC, _OPTIONAL, ">I", "med"),
    ]
)
# LOCAL_PREF only counts from internal peers (RFC 7606 7.5).
_FAST_IBGP = {**_FAST_EBGP, **dict([_fast(AttrType.LOCAL_PREF, _WELL_KNOWN, ">I", "local_pref")])}


# The attribute field of nearly every UPDATE: ORIGIN, one AS_SEQUENCE (or an empty AS_PATH),
# NEXT_HOP, then MED and/or LOCAL_PREF or neither, in type order, each with its canonical flags
# and one-octet length. ``update_message.decode_update`` reads an UPDATE of such a field, no
# withdrawn routes and one IPv4 prefix with two C unpacks instead of the attribute walk.
#
# The first 13 octets of the body are the key: they hold the withdrawn and attribute lengths,
# ORIGIN (header and value), the AS_PATH header and the segment header, so one dict lookup
# both finds the shape and checks all that. A key gives (attribute field end, ORIGIN, shapes
# by the type code of the last attribute), which sets MED-only and LOCAL_PREF-only apart.
# The headers of NEXT_HOP, MED and LOCAL_PREF, the tail of the field, are then read as small
# ints, which are shared objects, so comparing them with the shape's is one identity check each.
#
# A shape is (tail header unpacker, where the tail starts, its header octets, value unpackers,
# ASN count, MED index, LOCAL_PREF index, value layout). ``value unpackers[n]`` reads the
# ``count`` ASNs, NEXT_HOP (so at index ``count``), MED and LOCAL_PREF as present, then the
# prefix of n address octets that ends the UPDATE: its length and address (an int for n = 4,
# bytes otherwise); ``common_unpacker`` builds it on first use, as most are never needed. MED
# and LOCAL_PREF indices are 0 when absent.
Unpacker = Callable[[bytes, int], tuple[Any, ...]]
CommonShape = tuple[
    Callable[[bytes, int], tuple[int, ...]],
    int,
    tuple[int, ...],
    list[Unpacker | None],
    int,
    int,
    int,
    str,
]
COMMON_KEY_LEN = 13
_H_ORIGIN = (_WELL_KNOWN, AttrType.ORIGIN, 1)
_H_NEXT_HOP = bytes((_WELL_KNOWN, AttrType.NEXT_HOP, 4))
# (MED present, LOCAL_PREF present) -> the tail's headers, their unpacker and their octets as
# plain ints (the very objects unpack returns).
_TAILS = {
    (med, local_pref): (
        heads,
        struct.Struct(">" + "BBB4x" * len(heads)).unpack_from,
        tuple(int(octet) for head in heads for octet in head),
    )
    for med in (False, True)
    for local_pref in (False, True)
    for heads in [
        [(_WELL_KNOWN, AttrType.NEXT_HOP, 4)]
        + [(_OPTIONAL, AttrType.MULTI_EXIT_DISC, 4)] * med
        + [(_WELL_KNOWN, AttrType.LOCAL_PREF, 4)] * local_pref
    ]
}


def common_unpacker(shape: CommonShape, nbytes: int) -> Unpacker:
    """``shape``'s value unpacker for a prefix of ``nbytes`` address octets, built once."""
    prefix = "BI" if nbytes == 4 else f"B{nbytes}s"
    unpack = shape[3][nbytes] = struct.Struct(shape[7] + prefix).unpack_from
    return unpack


def _common_shapes(four_octet: bool) -> dict[bytes, tuple[int, int, dict[int, CommonShape]]]:
    width, code = (4, "I") if four_octet else (2, "H")
    shapes: dict[bytes, tuple[int, int, dict[int, CommonShape]]] = {}
    # Up to 63 ASes (0: an empty AS_PATH), which a one-octet length always holds; the rare
    # longer path is walked.
    for count in range(64):
        path_len = 2 + width * count if count else 0
        path_head = bytes((_WELL_KNOWN, AttrType.AS_PATH, path_len))
        if count:
            path_head += bytes((_SEQUENCE, count))
        tail_at = 8 + len(path_head) + width * count  # UPDATE lengths, ORIGIN, AS_PATH
        by_length: dict[int, dict[int, CommonShape]] = {}
        for (med, local_pref), (heads, unpack_heads, want) in _TAILS.items():
            values = f">4x{len(path_head)}x{count}{code}3x4s" + "3xI" * (med + local_pref)
            length = tail_at - 4 + 7 * len(heads)
            by_length.setdefault(length, {})[heads[-1][1]] = (
                unpack_heads,
                tail_at,
                want,
                [None] * 5,
                count,
                count + 1 if med else 0,
                count + 1 + med if local_pref else 0,
                values,
            )
        for length, by_last in by_length.items():
            for origin in range(3):  # any other value is an error the walk reports
                # No withdrawn routes, the attribute length, ORIGIN, the AS_PATH header; after
                # an empty AS_PATH the key reaches into the NEXT_HOP header.
                key = bytes((0, 0, length >> 8, length & 0xFF, *_H_ORIGIN, origin))
                key = (key + path_head + _H_NEXT_HOP)[:COMMON_KEY_LEN]
                shapes[key] = (4 + length, origin, by_last)
    return shapes


COMMON_SHAPES_AS4 = _common_shapes(True)
COMMON_SHAPES_AS2 = _common_shapes(False)


def _reset(subcode: int, data: bytes, reason: str) -> MessageError:
    return MessageError(ErrorCode.UPDATE_MESSAGE, subcode, data, reason)


def decode_attributes(data: bytes, start: int, end: int, neg: Negotiated) -> DecodedAttributes:
    """Walk the attribute field ``data[start:end]``.

    Raises ``MessageError`` for the cases that reset the session (RFC 7606 3f, 3j/7.11, and an
    unrecognised well-known attribute). Everything else is reported in ``problems``.
    """
    values = list(_DEFAULTS)
    extra: list[object] | None = None
    present = 0
    problems: list[UpdateProblem] = []
    unknown: list[tuple[int, int, bytes]] | None = None
    specs = _SPECS
    fast = _FAST_IBGP if neg.ibgp else _FAST_EBGP
    pos = start
    while pos < end:
        hit = fast.get(data[pos : pos + 3])
        if hit is not None:
            field, unpack, size, bit = hit
            if pos + 3 + size <= end and not present & bit:
                values[field] = unpack(data, pos + 3)[0]
                present |= bit
                pos += 3 + size
                continue
        flags = data[pos]
        head = 4 if flags & _EXT_LEN else 3
        if end - pos < head:
            # RFC 7606 section 4: too few octets left for an attribute header.
            problems.append(
                UpdateProblem(
                    _TAW,
                    0,
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    "attribute header overruns the attribute field",
                )
            )
            break
        code = data[pos + 1]
        length = _U16.unpack_from(data, pos + 2)[0] if head == 4 else data[pos + 2]
        vstart = pos + head
        vend = vstart + length
        if vend > end:
            problems.append(
                UpdateProblem(
                    _TAW,
                    code,
                    UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                    "attribute overruns the attribute field",
                    data[pos:end],
                )
            )
            break
        bit = 1 << code
        if present & bit:
            if code in (_MP_REACH_CODE, _MP_UNREACH_CODE):
                raise _reset(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", f"attribute {code} appears twice"
                )
            # RFC 7606 3g: keep the first copy of any other attribute.
            problems.append(
                UpdateProblem(
                    _DISCARD,
                    code,
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    "repeated attribute dropped",
                )
            )
            pos = vend
            continue
        present |= bit
        spec = specs.get(code)
        if spec is None:
            if not flags & _OPTIONAL:
                raise _reset(
                    UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    data[pos:vend],
                    f"unrecognized well-known attribute {code}",
                )
            if flags & _TRANSITIVE:
                if unknown is None:
                    unknown = []
                unknown.append(((flags & 0xE0) | _PARTIAL, code, data[vstart:vend]))
            pos = vend
            continue
        want_flags, field, decode, action, malformed_subcode = spec
        try:
            if flags & 0xC0 != want_flags:
                raise _MalformedError(
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                    f"flags {flags:#04x} conflict with the attribute type",
                )
            value = decode(data, vstart, vend, neg)
        except _IgnoredError:
            pos = vend
            continue
        except _MalformedError as err:
            if action is None:
                # MP_REACH/MP_UNREACH: RFC 4760 section 7 names Optional Attribute Error for a
                # malformed value; a flags conflict keeps its own subcode.
                subcode = err.subcode
                if subcode != UpdateSubcode.ATTRIBUTE_FLAGS_ERROR:
                    subcode = malformed_subcode
                raise _reset(subcode, data[pos:vend], err.reason) from None
            # The presence bit stays set: a later copy is a repeat and dropped (RFC 7606 3g).
            problems.append(UpdateProblem(action, code, err.subcode, err.reason, data[pos:vend]))
            pos = vend
            continue
        if field == _UNKNOWN_I:
            if unknown is None:
                unknown = []
            unknown.append(value)  # type: ignore[arg-type]
        elif field >= 0:
            values[field] = value
        else:
            if extra is None:
                extra = [None, None, None, None]
            # MP_REACH/MP_UNREACH keep where the attribute starts, for the NOTIFICATION data.
            extra[-1 - field] = (pos, vstart, vend) if action is None else value
        pos = vend
    if values[ORIGIN_I] > 2:  # type: ignore[operator]
        # Only the fast path stores an undefined ORIGIN; its decoder would have refused it.
        problems.append(
            UpdateProblem(
                _TAW,
                AttrType.ORIGIN,
                UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE,
                f"undefined ORIGIN value {values[ORIGIN_I]}",
                bytes((_WELL_KNOWN, AttrType.ORIGIN, 1, values[ORIGIN_I])),  # type: ignore[arg-type]
            )
        )
    if unknown is not None:
        values[_UNKNOWN_I] = tuple(unknown)
    if extra is None:
        return values, present, None, None, problems
    if not neg.asn4:
        _merge_as4(values, extra, problems)
    return (
        values,
        present,
        extra[_MP_REACH],  # type: ignore[return-value]
        extra[_MP_UNREACH],
        problems,
    )


def _leading(path: AsPath, count: int) -> AsPath:
    """The first ``count`` ASes of ``path`` in RFC 6793 counting.

    Confederation segments that lead the path or sit next to a taken segment are taken too
    (RFC 6793 4.2.3).
    """
    out = []
    for seg_type, asns in path:
        if seg_type in _CONFED:
            out.append((seg_type, asns))
            continue
        if count <= 0:
            break
        if seg_type == AsPathSegmentType.AS_SEQUENCE:
            take = asns[:count]
            out.append((seg_type, take))
            count -= len(take)
        else:
            out.append((seg_type, asns))
            count -= 1
    return tuple(out)


_CONFED = (AsPathSegmentType.AS_CONFED_SEQUENCE, AsPathSegmentType.AS_CONFED_SET)


def _merge_as4(values: list[object], extra: list[object], problems: list[UpdateProblem]) -> None:
    """RFC 6793 4.2.3: rebuild the real path on a session with a 2-octet (OLD) speaker."""
    as4_path = extra[_AS4_PATH]
    as4_aggregator = extra[_AS4_AGGREGATOR]
    aggregator_i = _F.index("aggregator")
    aggregator = values[aggregator_i]
    if as4_aggregator is not None:
        if aggregator is not None and aggregator[0] != AS_TRANS:  # type: ignore[index]
            # The AGGREGATOR was set by an OLD speaker after the AS4 attributes: ignore both.
            return
        values[aggregator_i] = as4_aggregator
    if as4_path is None:
        return
    as_path: AsPath = values[AS_PATH_I]  # type: ignore[assignment]
    as4: AsPath = tuple(s for s in as4_path if s[0] not in _CONFED)  # type: ignore[attr-defined]
    if len(as4) != len(as4_path):  # type: ignore[arg-type]
        # RFC 6793 section 6: drop the confederation segments, keep the rest, log it.
        problems.append(
            UpdateProblem(
                _DISCARD,
                AttrType.AS4_PATH,
                UpdateSubcode.MALFORMED_AS_PATH,
                "confederation segments in AS4_PATH dropped",
            )
        )
    missing = as_path_length(as_path) - as_path_length(as4)
    if missing < 0:
        problems.append(
            UpdateProblem(
                _DISCARD,
                AttrType.AS4_PATH,
                UpdateSubcode.MALFORMED_AS_PATH,
                "AS4_PATH longer than AS_PATH, ignored",
            )
        )
        return
    values[AS_PATH_I] = _join(_leading(as_path, missing), as4)


def _join(head: AsPath, tail: AsPath) -> AsPath:
    if head and tail and head[-1][0] == tail[0][0] == AsPathSegmentType.AS_SEQUENCE:
        merged = (AsPathSegmentType.AS_SEQUENCE, head[-1][1] + tail[0][1])
        return (*head[:-1], merged, *tail[1:])
    return head + tail
