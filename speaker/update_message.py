"""The UPDATE message (RFC 4271 section 4.3, RFC 4760, RFC 7911, RFC 8950, RFC 4724 End-of-RIB).

An ``Update`` says which prefixes now carry which attribute set (``Reach``), which are gone
(``Unreach``), whether it is an End-of-RIB, and what RFC 7606 malformations were found. A
treat-as-withdraw UPDATE comes out with its announced prefixes moved to ``unreach``.

Data flow in: ``messages.decode_message`` -> ``decode_update(body, negotiated)``, which cuts the
body, lets ``attribute_decoding`` read the attributes and ``nlri`` the prefixes, interns the
attribute set, and returns the ``Update`` the RIB applies. An UPDATE of one IPv4 prefix with the
usual attributes takes a shortcut that gives the very same ``Update`` (see decode_update).

Data flow out: the Adj-RIB-Out calls ``encode_announcements`` / ``encode_withdrawals`` with one
attribute set and many prefixes; they fill each message up to the negotiated maximum and reuse
the attribute block cached on the interned set, so N prefixes sharing a set cost one attribute
encode. ``encode_update`` writes one whole ``Update`` as one message (tests, tools).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from speaker.attribute_decoding import (
    AS_PATH_I,
    COMMON_KEY_LEN,
    COMMON_SHAPES_AS2,
    COMMON_SHAPES_AS4,
    NEXT_HOP_I,
    common_unpacker,
    decode_attributes,
)
from speaker.codec_errors import EncodeError, MessageError, UpdateAction, UpdateProblem
from speaker.framing import frame
from speaker.negotiated import Negotiated
from speaker.nlri import (
    NlriError,
    decode_prefixes,
    decode_prefixes_add_path,
    encoded_prefixes,
    encoded_prefixes_add_path,
    v4_entries_run,
)
from speaker.path_attributes import (
    ASN4,
    ATTRIBUTES,
    INTERNAL,
    WITH_NEXT_HOP,
    PathAttributes,
)
from speaker.wire_codes import (
    ADDRESS_BITS,
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE_LEN,
    AsPathSegmentType,
    AttrFlag,
    AttrType,
    ErrorCode,
    Family,
    MessageType,
    UpdateSubcode,
)

_U16 = struct.Struct(">H")
_LEN_TYPE = struct.Struct(">HB")
# Marker, length, type, withdrawn routes length, attribute length; then, in _SINGLE_HOST[n], an
# n-octet attribute block and a prefix of 4 address octets (28 octets besides the block).
_SINGLE_HEAD = struct.Struct(">16sHBHH")
_SINGLE_HOST = tuple(struct.Struct(f">16sHBHH{n}sBI").pack for n in range(256))
_UPDATE = int(MessageType.UPDATE)
_SEQUENCE = int(AsPathSegmentType.AS_SEQUENCE)
# decode_update builds common sets field by field in this order, the rest at these defaults.
assert PathAttributes._fields[:5] == ("origin", "as_path", "next_hop", "med", "local_pref")
assert PathAttributes()[5:] == (False, None, (), None, (), (), (), None, ())
_new = tuple.__new__
_V4_MASKS = [(((1 << plen) - 1) << (32 - plen)) << 8 for plen in range(33)]
_MP_HEAD = struct.Struct(">HBB")
_V4 = Family.IPV4_UNICAST
_V6 = Family.IPV6_UNICAST
_MP_FLAGS = int(AttrFlag.OPTIONAL)
_NEEDED_MP = (1 << AttrType.ORIGIN) | (1 << AttrType.AS_PATH)
_NEEDED_CLASSIC = _NEEDED_MP | (1 << AttrType.NEXT_HOP)


class Reach(NamedTuple):
    """Prefixes of one family announced with one attribute set (next hop included)."""

    family: Family
    attributes: PathAttributes
    prefixes: tuple[int, ...]
    path_ids: tuple[int, ...] | None = None


class Unreach(NamedTuple):
    """Prefixes of one family withdrawn; ``path_ids`` index-aligned under ADD-PATH."""

    family: Family
    prefixes: tuple[int, ...]
    path_ids: tuple[int, ...] | None = None


class Update(NamedTuple):
    """One decoded UPDATE."""

    reach: tuple[Reach, ...] = ()
    unreach: tuple[Unreach, ...] = ()
    end_of_rib: Family | None = None
    problems: tuple[UpdateProblem, ...] = ()

    @property
    def treat_as_withdraw(self) -> bool:
        """RFC 7606: the announced prefixes were turned into withdrawals."""
        return any(p.action == UpdateAction.TREAT_AS_WITHDRAW for p in self.problems)

    @property
    def prefix_count(self) -> int:
        """Prefixes announced plus withdrawn."""
        return sum(len(r.prefixes) for r in self.reach) + sum(len(u.prefixes) for u in self.unreach)


_EOR = {f: Update(end_of_rib=f) for f in Family}


def _reset(subcode: int, reason: str, data: bytes = b"") -> MessageError:
    return MessageError(ErrorCode.UPDATE_MESSAGE, subcode, data, reason)


def _prefixes(
    data: bytes, start: int, end: int, family: Family, add_path: bool
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    bits = ADDRESS_BITS[family]
    if add_path:
        ids, prefixes = decode_prefixes_add_path(data, start, end, bits)
        return tuple(prefixes), tuple(ids)
    return tuple(decode_prefixes(data, start, end, bits)), None


def _next_hop_ok(family: Family, length: int, neg: Negotiated) -> bool:
    if family is _V6:
        return length in (16, 32)
    return length == 4 or (neg.ipv4_nlri_ipv6_next_hop and length in (16, 32))


def _mp_reach(
    data: bytes, where: tuple[int, int, int], neg: Negotiated, problems: list[UpdateProblem]
) -> tuple[Family, bytes, tuple[int, ...], tuple[int, ...] | None] | None:
    pos, start, end = where
    afi, safi, nh_len = _MP_HEAD.unpack_from(data, start)
    family = Family.lookup(afi, safi)
    if family is None or family not in neg.families:
        problems.append(
            UpdateProblem(
                UpdateAction.ATTRIBUTE_DISCARD,
                AttrType.MP_REACH_NLRI,
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"AFI {afi} SAFI {safi} was not negotiated",
            )
        )
        return None
    nlri_start = start + 4 + nh_len + 1  # next hop, then one reserved octet
    if nlri_start > end or not _next_hop_ok(family, nh_len, neg):
        raise _reset(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
            f"MP_REACH_NLRI next hop length {nh_len} is not valid for {family.name}",
            data[pos:end],
        )
    try:
        prefixes, ids = _prefixes(data, nlri_start, end, family, family in neg.add_path_receive)
    except NlriError as exc:
        raise _reset(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_REACH_NLRI: {exc}", data[pos:end]
        ) from None
    return family, data[start + 4 : start + 4 + nh_len], prefixes, ids


def _mp_unreach(
    data: bytes, where: tuple[int, int, int], neg: Negotiated, problems: list[UpdateProblem]
) -> Unreach | None:
    pos, start, end = where
    afi, safi = struct.unpack_from(">HB", data, start)
    family = Family.lookup(afi, safi)
    if family is None or family not in neg.families:
        problems.append(
            UpdateProblem(
                UpdateAction.ATTRIBUTE_DISCARD,
                AttrType.MP_UNREACH_NLRI,
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"AFI {afi} SAFI {safi} was not negotiated",
            )
        )
        return None
    try:
        prefixes, ids = _prefixes(data, start + 3, end, family, family in neg.add_path_receive)
    except NlriError as exc:
        raise _reset(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_UNREACH_NLRI: {exc}", data[pos:end]
        ) from None
    return Unreach(family, prefixes, ids)


def decode_update(body: bytes, neg: Negotiated) -> Update:
    """Decode an UPDATE body (header removed).

    Raises ``MessageError`` when the session must be reset; every other malformation is in the
    returned ``Update.problems``.
    """
    # The UPDATE of route churn (no withdrawn routes, an attribute field of a common shape, one
    # IPv4 prefix; see attribute_decoding.COMMON_SHAPES_AS4) is read here with two C unpacks,
    # a few comparisons and no attribute walk. Whenever the general decoder could find anything
    # to report (a header that differs, a NEXT_HOP that is not unicast, an eBGP path not
    # starting with the peer's AS, a prefix length that disagrees with its octets) it decodes
    # the message instead.
    try:
        entry = (COMMON_SHAPES_AS4 if neg.asn4 else COMMON_SHAPES_AS2).get(body[:COMMON_KEY_LEN])
    except (TypeError, ValueError):  # an unhashable bytes-like body: the general decoder's call
        entry = None
    if entry is None:
        return _decode_update(body, neg)
    aend, origin, by_last = entry
    nbytes = len(body) - aend - 1
    if not 0 <= nbytes <= 4 or _V4 in neg.add_path_receive:
        return _decode_update(body, neg)
    shape = by_last.get(body[aend - 6])
    if shape is None:
        return _decode_update(body, neg)
    heads, tail_at, want, unpackers, count, med_i, lp_i, _ = shape
    t = (unpackers[nbytes] or common_unpacker(shape, nbytes))(body, 4)
    plen = t[-2]
    next_hop = t[count]
    if not (
        heads(body, tail_at) == want
        and nbytes == (plen + 7) >> 3
        and 0 < next_hop[0] < 224
        and (neg.ibgp or not neg.peer_as or (count and t[0] == neg.peer_as))
    ):
        return _decode_update(body, neg)
    raw = t[-1] if nbytes == 4 else int.from_bytes(t[-1], "big") << (32 - 8 * nbytes)
    attrs = _new(
        PathAttributes,
        (
            origin,
            ((_SEQUENCE, t[:count]),) if count else (),
            next_hop,
            t[med_i] if med_i else None,
            # RFC 7606 7.5: LOCAL_PREF from an external peer is ignored.
            t[lp_i] if lp_i and neg.ibgp else None,
            # The other fields at their defaults, spelled out: a literal tuple is built faster
            # than one spliced from a constant.
            False,
            None,
            (),
            None,
            (),
            (),
            (),
            None,
            (),
        ),
    )
    prefix = ((raw << 8) & _V4_MASKS[plen]) | plen
    reach = _new(Reach, (_V4, ATTRIBUTES.intern(attrs), (prefix,), None))
    return _new(Update, ((reach,), (), None, ()))


def _decode_update(body: bytes, neg: Negotiated) -> Update:
    size = len(body)
    if size < 4:
        raise _reset(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, "UPDATE shorter than 4 octets")
    wlen = (body[0] << 8) | body[1]
    astart = 4 + wlen
    if astart > size:
        raise _reset(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, "withdrawn routes length overruns the UPDATE"
        )
    aend = astart + ((body[astart - 2] << 8) | body[astart - 1])
    if aend > size:
        raise _reset(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, "path attribute length overruns the UPDATE"
        )
    if size == 4:
        return _EOR[_V4]
    add_path = _V4 in neg.add_path_receive
    unreach: list[Unreach] = []
    try:
        if wlen:
            prefixes, ids = _prefixes(body, 2, 2 + wlen, _V4, add_path)
            unreach.append(Unreach(_V4, prefixes, ids))
        if add_path:
            classic, classic_ids = _prefixes(body, aend, size, _V4, True)
        elif aend < size and size - aend == 1 + ((body[aend] + 7) >> 3) and body[aend] <= 32:
            # One prefix (the common shape of a churn UPDATE): decoded here, saving two calls.
            plen = body[aend]
            raw = int.from_bytes(body[aend + 1 : size], "big") << (40 - 8 * (size - aend - 1))
            classic, classic_ids = (((raw & _V4_MASKS[plen]) | plen),), None
        else:
            classic, classic_ids = tuple(decode_prefixes(body, aend, size, 32)), None
    except NlriError as exc:
        raise _reset(UpdateSubcode.INVALID_NETWORK_FIELD, str(exc)) from None
    if astart == aend:
        if classic:
            missing = UpdateProblem(
                UpdateAction.TREAT_AS_WITHDRAW,
                AttrType.ORIGIN,
                UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
                "NLRI without path attributes",
                bytes((AttrType.ORIGIN,)),
            )
            unreach.append(Unreach(_V4, classic, classic_ids))
            return Update((), tuple(unreach), None, (missing,))
        return Update((), tuple(unreach))

    values, present, mp_where, mp_unreach_where, problems = decode_attributes(
        body, astart, aend, neg
    )
    mp = _mp_reach(body, mp_where, neg, problems) if mp_where else None
    if mp_unreach_where:
        gone = _mp_unreach(body, mp_unreach_where, neg, problems)
        if gone is not None:
            if not gone.prefixes and not (unreach or classic or mp):
                return (
                    _EOR[gone.family]
                    if not problems
                    else Update(end_of_rib=gone.family, problems=tuple(problems))
                )
            unreach.append(gone)

    reachable = bool(classic) or (mp is not None and bool(mp[2]))
    if reachable and (present & _NEEDED_CLASSIC != _NEEDED_CLASSIC or not neg.ibgp):
        _check_mandatory(present, bool(classic), values, neg, problems)
    if classic:
        next_hop: bytes = values[NEXT_HOP_I]  # type: ignore[assignment]
        if next_hop and (next_hop[0] == 0 or next_hop[0] >= 224):
            # RFC 4271 6.3: a NEXT_HOP that is not a unicast host address (0/8, multicast,
            # class E, broadcast) is syntactically incorrect; RFC 7606 3e: treat-as-withdraw.
            problems.append(
                UpdateProblem(
                    UpdateAction.TREAT_AS_WITHDRAW,
                    AttrType.NEXT_HOP,
                    UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE,
                    f"NEXT_HOP {'.'.join(map(str, next_hop))} is not a unicast host address",
                    bytes((0x40, AttrType.NEXT_HOP, 4)) + next_hop,
                )
            )
    if problems and any(p.action == UpdateAction.TREAT_AS_WITHDRAW for p in problems):
        if not reachable and present & ~(1 << AttrType.MP_UNREACH_NLRI):
            # RFC 7606 5.2: attributes but no reachable NLRI leave nothing to withdraw, so any
            # error stronger than attribute-discard resets the session.
            first = next(p for p in problems if p.action == UpdateAction.TREAT_AS_WITHDRAW)
            raise _reset(
                first.subcode, f"{first.reason} in an UPDATE without reachable NLRI", first.data
            )
        if classic:
            unreach.append(Unreach(_V4, classic, classic_ids))
        if mp is not None and mp[2]:
            unreach.append(Unreach(mp[0], mp[2], mp[3]))
        return Update((), tuple(unreach), None, tuple(problems))

    # tuple.__new__ straight away: the named tuples' generated __new__ is a Python call, and
    # this runs once per UPDATE.
    intern = ATTRIBUTES.intern
    reach: tuple[Reach, ...] = ()
    if classic:
        reach = (_new(Reach, (_V4, intern(_new(PathAttributes, values)), classic, classic_ids)),)
    if mp is not None and mp[2]:
        values[NEXT_HOP_I] = mp[1]
        reach += (_new(Reach, (mp[0], intern(_new(PathAttributes, values)), mp[2], mp[3])),)
    return _new(
        Update,
        (reach, tuple(unreach) if unreach else (), None, tuple(problems) if problems else ()),
    )


def _check_mandatory(
    present: int,
    classic: bool,
    values: list[object],
    neg: Negotiated,
    problems: list[UpdateProblem],
) -> None:
    """RFC 7606 3d missing well-known attributes, and the eBGP first-AS rule (RFC 4271 6.3)."""
    want = _NEEDED_CLASSIC if classic else _NEEDED_MP
    if present & want == want and (neg.ibgp or not neg.peer_as):
        return
    required = (
        (AttrType.ORIGIN, AttrType.AS_PATH, AttrType.NEXT_HOP)
        if classic
        else (AttrType.ORIGIN, AttrType.AS_PATH)
    )
    problems.extend(
        UpdateProblem(
            UpdateAction.TREAT_AS_WITHDRAW,
            code,
            UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
            f"missing well-known attribute {AttrType(code).name}",
            bytes((code,)),
        )
        for code in required
        if not present & (1 << code)
    )
    if not neg.ibgp and neg.peer_as and present & (1 << AttrType.AS_PATH):
        path = values[AS_PATH_I]
        first = path[0] if path else None  # type: ignore[index]
        if first is None or first[0] != AsPathSegmentType.AS_SEQUENCE or first[1][0] != neg.peer_as:
            problems.append(
                UpdateProblem(
                    UpdateAction.TREAT_AS_WITHDRAW,
                    AttrType.AS_PATH,
                    UpdateSubcode.MALFORMED_AS_PATH,
                    f"AS_PATH from an external peer does not start with its AS {neg.peer_as}",
                )
            )


# ---------------------------------------------------------------------------------------------
# Encoding


def _tlv_head(code: int, length: int) -> bytes:
    if length > 255:
        return struct.pack(">BBH", _MP_FLAGS | AttrFlag.EXTENDED_LENGTH, code, length)
    return struct.pack(">BBB", _MP_FLAGS, code, length)


def _entries(
    family: Family, prefixes: Sequence[int], path_ids: Sequence[int] | None, add_path: bool
) -> list[bytes]:
    bits = ADDRESS_BITS[family]
    if add_path:
        ids = path_ids if path_ids is not None else [0] * len(prefixes)
        return encoded_prefixes_add_path(prefixes, ids, bits)
    return encoded_prefixes(prefixes, bits)


def _pack(entries: list[bytes], room: int) -> list[bytes]:
    """Cut the entries into as few fields of at most ``room`` octets as possible, in order."""
    if not entries:
        return []
    size = len(entries[0])
    if size > room:
        raise EncodeError(f"{room} octets left for NLRI cannot hold one {size}-octet prefix")
    if all(len(e) == size for e in entries):
        per = room // size
        return [b"".join(entries[i : i + per]) for i in range(0, len(entries), per)]
    out: list[bytes] = []
    batch: list[bytes] = []
    used = 0
    for entry in entries:
        if used + len(entry) > room:
            out.append(b"".join(batch))
            batch, used = [], 0
        batch.append(entry)
        used += len(entry)
    out.append(b"".join(batch))
    return out


def _fields(
    family: Family,
    prefixes: Sequence[int],
    path_ids: Sequence[int] | None,
    add_path: bool,
    room: int,
) -> list[bytes]:
    """The prefixes' entries cut into as few fields of at most ``room`` octets as possible."""
    if family is _V4 and not add_path:
        run = v4_entries_run(prefixes)
        if run is not None:
            blob, size = run
            if size > room:
                raise EncodeError(
                    f"{room} octets left for NLRI cannot hold one {size}-octet prefix"
                )
            per = room // size * size
            return [blob[i : i + per] for i in range(0, len(blob), per)]
    return _pack(_entries(family, prefixes, path_ids, add_path), room)


def _context(neg: Negotiated, with_next_hop: bool) -> int:
    return (
        (ASN4 if neg.asn4 else 0)
        | (WITH_NEXT_HOP if with_next_hop else 0)
        | (INTERNAL if neg.ibgp else 0)
    )


def _classic(family: Family, attrs: PathAttributes) -> bool:
    return family is _V4 and len(attrs.next_hop) == 4


def encode_announcements(
    family: Family,
    attrs: PathAttributes,
    prefixes: Sequence[int],
    neg: Negotiated,
    path_ids: Sequence[int] | None = None,
) -> list[bytes]:
    """Whole UPDATE messages announcing ``prefixes`` with ``attrs``, each filled up to the max."""
    if len(prefixes) == 1 and family is _V4 and _V4 not in neg.add_path_send:
        # One IPv4 prefix (the UPDATE of route churn): no chunking, and for a block of less than
        # 256 octets and a prefix of 4 address octets one pack writes the whole message.
        prefix = prefixes[0]
        # A plain int holding a 32-bit network and a length of at most 32; anything else is left
        # to encoded_prefix, errors included.
        if (
            prefix.__class__ is int
            and 0 <= prefix < 1 << 40
            and (plen := prefix & 0xFF) <= 32
            and len(attrs.next_hop) == 4
        ):
            ctx = (ASN4 if neg.asn4 else 0) | WITH_NEXT_HOP | (INTERNAL if neg.ibgp else 0)
            block = ATTRIBUTES.wire(attrs, ctx)
            size = len(block)
            if plen > 24 and size < 256:
                pack = _SINGLE_HOST[size]
                return [pack(MARKER, size + 28, _UPDATE, 0, size, block, plen, prefix >> 8)]
            nbytes = (plen + 7) >> 3
            entry = ((plen << (8 * nbytes)) | (prefix >> (40 - 8 * nbytes))).to_bytes(
                nbytes + 1, "big"
            )
            size += HEADER_LEN + 5 + nbytes
            if size <= MAX_MESSAGE_LEN or size <= neg.max_message_len:
                return [_SINGLE_HEAD.pack(MARKER, size, _UPDATE, 0, len(block)) + block + entry]
    if not prefixes:
        return []
    add_path = family in neg.add_path_send
    limit = neg.max_message_len - HEADER_LEN - 4
    if family is _V4 and len(attrs.next_hop) == 4:
        block = ATTRIBUTES.wire(attrs, _context(neg, True))
        head = _U16.pack(len(block))
        fixed = HEADER_LEN + 4 + len(block)
        chunks = _fields(family, prefixes, path_ids, add_path, limit - len(block))
        return [
            b"".join(
                (
                    MARKER,
                    _LEN_TYPE.pack(fixed + len(chunk), MessageType.UPDATE),
                    b"\x00\x00",
                    head,
                    block,
                    chunk,
                )
            )
            for chunk in chunks
        ]
    block = ATTRIBUTES.wire(attrs, _context(neg, False))
    nh = attrs.next_hop
    mp_head = _MP_HEAD.pack(family.afi, family.safi, len(nh)) + nh + b"\x00"
    out = []
    for chunk in _fields(
        family, prefixes, path_ids, add_path, limit - len(block) - 4 - len(mp_head)
    ):
        value = mp_head + chunk
        attributes = _tlv_head(AttrType.MP_REACH_NLRI, len(value)) + value + block
        out.append(frame(MessageType.UPDATE, b"\x00\x00" + _U16.pack(len(attributes)) + attributes))
    return out


def encode_withdrawals(
    family: Family, prefixes: Sequence[int], neg: Negotiated, path_ids: Sequence[int] | None = None
) -> list[bytes]:
    """Whole UPDATE messages withdrawing ``prefixes``."""
    add_path = family in neg.add_path_send
    limit = neg.max_message_len - HEADER_LEN - 4
    if family is _V4:
        return [
            frame(MessageType.UPDATE, _U16.pack(len(c)) + c + b"\x00\x00")
            for c in _fields(family, prefixes, path_ids, add_path, limit)
        ]
    mp_head = struct.pack(">HB", family.afi, family.safi)
    out = []
    for chunk in _fields(family, prefixes, path_ids, add_path, limit - 4 - len(mp_head)):
        value = mp_head + chunk
        attributes = _tlv_head(AttrType.MP_UNREACH_NLRI, len(value)) + value
        out.append(frame(MessageType.UPDATE, b"\x00\x00" + _U16.pack(len(attributes)) + attributes))
    return out


def encode_end_of_rib(family: Family) -> bytes:
    """RFC 4724 End-of-RIB marker for ``family``."""
    if family is _V4:
        return frame(MessageType.UPDATE, b"\x00\x00\x00\x00")
    value = struct.pack(">HB", family.afi, family.safi)
    attributes = _tlv_head(AttrType.MP_UNREACH_NLRI, len(value)) + value
    return frame(MessageType.UPDATE, b"\x00\x00" + _U16.pack(len(attributes)) + attributes)


def encode_update(update: Update, neg: Negotiated) -> bytes:
    """Encode a whole ``Update`` as exactly one message; ``EncodeError`` if it cannot be one.

    IPv4 withdrawals go in the withdrawn routes field, IPv4 announcements with an IPv4 next hop in
    the NLRI field, everything else in MP_REACH_NLRI / MP_UNREACH_NLRI (at most one of each).
    """
    if update.end_of_rib is not None:
        return encode_end_of_rib(update.end_of_rib)
    withdrawn = b""
    nlri = b""
    mp_attrs: list[bytes] = []
    block = b""
    for gone in update.unreach:
        entries = b"".join(
            _entries(gone.family, gone.prefixes, gone.path_ids, gone.family in neg.add_path_send)
        )
        if gone.family is _V4:
            withdrawn += entries
        else:
            value = struct.pack(">HB", gone.family.afi, gone.family.safi) + entries
            mp_attrs.append(_tlv_head(AttrType.MP_UNREACH_NLRI, len(value)) + value)
    classic = [r for r in update.reach if _classic(r.family, r.attributes)]
    for r in update.reach:
        entries = b"".join(
            _entries(r.family, r.prefixes, r.path_ids, r.family in neg.add_path_send)
        )
        if classic and r is classic[0]:
            nlri = entries
            block = ATTRIBUTES.wire(r.attributes, _context(neg, True))
            continue
        nh = r.attributes.next_hop
        value = _MP_HEAD.pack(r.family.afi, r.family.safi, len(nh)) + nh + b"\x00" + entries
        mp_attrs.insert(0, _tlv_head(AttrType.MP_REACH_NLRI, len(value)) + value)
        if not classic:
            block = ATTRIBUTES.wire(r.attributes, _context(neg, False))
    if len(classic) > 1 or len(mp_attrs) > 2:
        raise EncodeError("an UPDATE holds one NLRI field, one MP_REACH and one MP_UNREACH")
    attributes = b"".join(mp_attrs) + block
    body = _U16.pack(len(withdrawn)) + withdrawn + _U16.pack(len(attributes)) + attributes + nlri
    if HEADER_LEN + len(body) > neg.max_message_len:
        raise EncodeError(
            f"UPDATE of {HEADER_LEN + len(body)} octets exceeds {neg.max_message_len}"
        )
    return frame(MessageType.UPDATE, body)
