"""Prefixes as plain ints, and their NLRI wire form (RFC 4271 section 4.3, RFC 7911).

A prefix is one int: ``(network << 8) | length``, where ``network`` is the full-width address
(32 bits for IPv4, 128 for IPv6) with the host bits cleared. That keeps the hot path free of
``ipaddress`` objects, makes a prefix a cheap dict key for the RIB, and sorts by network first.

Data flow: ``update_message`` hands the withdrawn-routes and NLRI fields (and MP_REACH /
MP_UNREACH payloads) to ``decode_prefixes`` / ``decode_prefixes_add_path`` and gets lists of
ints back; on the way out it asks ``encoded_prefix`` for each prefix's wire bytes. Text
conversion (``prefix_from_text``, ``prefix_text``) is for config, CLI and tests only.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array
from collections.abc import Callable, Sequence

from speaker.wire_codes import Family


class NlriError(ValueError):
    """An NLRI field that cannot be parsed; the caller decides the NOTIFICATION subcode."""


def _masks(bits: int) -> list[int]:
    # mask[plen] keeps the network bits of a prefix int (network << 8 | length) and clears the
    # length octet, so ``(raw << shift) & mask[plen] | plen`` is the whole conversion.
    return [(((1 << plen) - 1) << (bits - plen)) << 8 for plen in range(bits + 1)]


_MASKS = {32: _masks(32), 128: _masks(128)}

_BH = struct.Struct(">BH")
_I = struct.Struct(">I")
_BI = struct.Struct(">BI")
_BQ = struct.Struct(">BQ")
_BQQ = struct.Struct(">BQQ")
_LITTLE = sys.byteorder == "little"
# _KEEP[r]: translate table clearing the host bits of a last octet that holds r network bits.
_KEEP = [bytes(b & (0xFF00 >> r) & 0xFF for b in range(256)) for r in range(8)]
_V4_LIMIT = 1 << 40  # an IPv4 prefix int: 32 network bits and the length octet


def _v4_run(view: bytes, plen: int, count: int) -> list[int]:
    """IPv4 entries of one length, decoded in C (``view`` holds exactly ``count`` entries).

    Each entry's octets are moved into an 8-octet big-endian record, 0 0 0 network length,
    which read as one integer is the prefix int; host bits are cleared by a translate table.
    """
    nbytes = (plen + 7) >> 3
    size = nbytes + 1
    records = bytearray(8 * count)
    records[7::8] = view[0::size]
    for j in range(nbytes):
        records[3 + j :: 8] = view[1 + j :: size]
    if plen & 7:
        last = 2 + nbytes
        records[last::8] = records[last::8].translate(_KEEP[plen & 7])
    ints = array("Q")
    ints.frombytes(records)
    if _LITTLE:
        ints.byteswap()
    return ints.tolist()


def v4_entries_run(prefixes: Sequence[int]) -> tuple[bytes, int] | None:
    """IPv4 prefixes that all have one length as their joined NLRI entries and the entry size.

    None when the lengths differ (or a value is no IPv4 prefix int): the caller encodes them
    one by one. The reverse of ``_v4_run``: one C conversion to big-endian records, then the
    entries' octets are picked out of them with strided slices.
    """
    count = len(prefixes)
    if count < 8:
        return None
    try:
        ints = array("Q", prefixes)
    except (OverflowError, TypeError):
        return None
    if max(ints) >= _V4_LIMIT:
        return None
    plen = prefixes[0] & 0xFF
    if plen > 32:
        return None
    if _LITTLE:
        ints.byteswap()
    records = ints.tobytes()
    lengths = records[7::8]
    if lengths != bytes((plen,)) * count:
        return None
    nbytes = (plen + 7) >> 3
    size = nbytes + 1
    out = bytearray(size * count)
    out[0::size] = lengths
    for j in range(nbytes):
        out[1 + j :: size] = records[3 + j :: 8]
    return bytes(out), size


def _same_length_run(data: bytes, start: int, end: int, plen: int, bits: int) -> list[int]:
    """Decode ``end - start`` bytes of entries that all carry prefix length ``plen``.

    The per-size struct formats let C code split the run; Python only shifts and masks.
    """
    nbytes = (plen + 7) >> 3
    shift = bits - 8 * nbytes + 8
    mask = _MASKS[bits][plen]
    view = data[start:end]
    if bits == 32 and nbytes:
        return _v4_run(view, plen, len(view) // (nbytes + 1))
    if nbytes == 0:
        return [plen] * (len(view))
    if nbytes == 1:
        return [((b << shift) & mask) | plen for b in view[1::2]]
    if nbytes == 2:
        return [((v << shift) & mask) | plen for _, v in _BH.iter_unpack(view)]
    if nbytes == 3:
        return [(((v & 0xFFFFFF) << shift) & mask) | plen for (v,) in _I.iter_unpack(view)]
    if nbytes == 4:
        return [((v << shift) & mask) | plen for _, v in _BI.iter_unpack(view)]
    if nbytes == 8:
        return [((v << shift) & mask) | plen for _, v in _BQ.iter_unpack(view)]
    if nbytes == 16:
        return [((((h << 64) | lo) << shift) & mask) | plen for _, h, lo in _BQQ.iter_unpack(view)]
    size = nbytes + 1
    return [
        ((int.from_bytes(view[i + 1 : i + size], "big") << shift) & mask) | plen
        for i in range(0, len(view), size)
    ]


def decode_prefixes(data: bytes, start: int, end: int, bits: int) -> list[int]:
    """Decode the prefixes in ``data[start:end]`` (no path identifiers).

    Raises ``NlriError`` when a length exceeds ``bits`` or an entry overruns ``end``.
    """
    if start >= end:
        return []
    plen = data[start]
    if plen <= bits:
        size = ((plen + 7) >> 3) + 1
        total = end - start
        if total % size == 0:
            count = total // size
            # Calico's blocks arrive as long runs of one length; check the run in C.
            if count == 1:
                raw = int.from_bytes(data[start + 1 : end], "big")
                return [((raw << (bits - 8 * size + 16)) & _MASKS[bits][plen]) | plen]
            if data[start:end:size] == bytes((plen,)) * count:
                return _same_length_run(data, start, end, plen, bits)
    return _decode_mixed(data, start, end, bits)


def _decode_mixed(data: bytes, start: int, end: int, bits: int) -> list[int]:
    masks = _MASKS[bits]
    out: list[int] = []
    append = out.append
    i = start
    while i < end:
        plen = data[i]
        if plen > bits:
            raise NlriError(f"prefix length {plen} is longer than {bits} bits")
        nbytes = (plen + 7) >> 3
        j = i + 1 + nbytes
        if j > end:
            raise NlriError("prefix overruns the NLRI field")
        raw = int.from_bytes(data[i + 1 : j], "big")
        append(((raw << (bits - 8 * nbytes + 8)) & masks[plen]) | plen)
        i = j
    return out


def decode_prefixes_add_path(
    data: bytes, start: int, end: int, bits: int
) -> tuple[list[int], list[int]]:
    """Decode ADD-PATH NLRI (RFC 7911): returns (path identifiers, prefixes), index-aligned."""
    masks = _MASKS[bits]
    ids: list[int] = []
    out: list[int] = []
    i = start
    while i < end:
        if i + 5 > end:
            raise NlriError("path identifier and length overrun the NLRI field")
        path_id = _I.unpack_from(data, i)[0]
        plen = data[i + 4]
        if plen > bits:
            raise NlriError(f"prefix length {plen} is longer than {bits} bits")
        nbytes = (plen + 7) >> 3
        j = i + 5 + nbytes
        if j > end:
            raise NlriError("prefix overruns the NLRI field")
        raw = int.from_bytes(data[i + 5 : j], "big")
        ids.append(path_id)
        out.append(((raw << (bits - 8 * nbytes + 8)) & masks[plen]) | plen)
        i = j
    return ids, out


def _encoder(bits: int) -> Callable[[int], bytes]:
    def encode(prefix: int) -> bytes:
        plen = prefix & 0xFF
        nbytes = (plen + 7) >> 3
        network = prefix >> (8 + bits - 8 * nbytes)
        return bytes((plen,)) + network.to_bytes(nbytes, "big")

    return encode


_ENCODE = {32: _encoder(32), 128: _encoder(128)}


def encoded_prefix(prefix: int, bits: int) -> bytes:
    """One prefix's wire bytes."""
    plen = prefix & 0xFF
    nbytes = (plen + 7) >> 3
    network = prefix >> (8 + bits - 8 * nbytes)
    return ((plen << (8 * nbytes)) | network).to_bytes(nbytes + 1, "big")


def encoded_prefixes(prefixes: Sequence[int], bits: int) -> list[bytes]:
    """Each prefix's wire bytes (length octet plus the significant octets)."""
    if not prefixes:
        return []
    plen = prefixes[0] & 0xFF
    if len(prefixes) == 1 or all((p & 0xFF) == plen for p in prefixes):
        nbytes = (plen + 7) >> 3
        shift = 8 + bits - 8 * nbytes
        head = plen << (8 * nbytes)
        size = nbytes + 1
        # One int per entry, length octet on top: a single to_bytes per prefix.
        return [(head | (p >> shift)).to_bytes(size, "big") for p in prefixes]
    encode = _ENCODE[bits]
    return [encode(p) for p in prefixes]


def encoded_prefixes_add_path(
    prefixes: Sequence[int], path_ids: Sequence[int], bits: int
) -> list[bytes]:
    """Each (path identifier, prefix) pair's wire bytes, RFC 7911."""
    return [
        _I.pack(path_id) + entry
        for path_id, entry in zip(path_ids, encoded_prefixes(prefixes, bits), strict=True)
    ]


def prefix_from_text(text: str) -> int:
    """``"198.18.0.0/26"`` -> prefix int. Host bits must be clear, as in a config file."""
    net = ipaddress.ip_network(text, strict=True)
    return (int(net.network_address) << 8) | net.prefixlen


def prefix_text(prefix: int, family: Family) -> str:
    """Prefix int -> ``"198.18.0.0/26"``."""
    plen = prefix & 0xFF
    if family.address_bits == 32:
        return f"{ipaddress.IPv4Address(prefix >> 8)}/{plen}"
    return f"{ipaddress.IPv6Address(prefix >> 8)}/{plen}"


def prefix_family(text: str) -> Family:
    """The family of a prefix written as text."""
    return Family.IPV4_UNICAST if ":" not in text else Family.IPV6_UNICAST
