"""BGP capabilities (RFC 5492) as frozen values, with a table of per-code decoders.

Data flow: ``open_message`` cuts the Capabilities optional parameters into (code, value) pairs
and calls ``decode_capability`` for each; unknown codes come back as ``UnknownCapability`` with
their bytes kept raw. On the way out ``encode_capability`` turns each value back into its TLV.
``negotiated.negotiate`` reads the values of both OPENs to build the session's ``Negotiated``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from speaker.codec_errors import MessageError
from speaker.wire_codes import CapabilityCode, ErrorCode, OpenSubcode


@dataclass(frozen=True, slots=True)
class MultiprotocolCapability:
    """RFC 4760: the sender speaks this AFI/SAFI."""

    afi: int
    safi: int
    code = CapabilityCode.MULTIPROTOCOL


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability:
    """RFC 2918."""

    code = CapabilityCode.ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefreshCapability:
    """RFC 7313."""

    code = CapabilityCode.ENHANCED_ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class ExtendedMessageCapability:
    """RFC 8654."""

    code = CapabilityCode.EXTENDED_MESSAGE


@dataclass(frozen=True, slots=True)
class FourOctetAsCapability:
    """RFC 6793: the sender's real AS number."""

    asn: int
    code = CapabilityCode.FOUR_OCTET_AS


@dataclass(frozen=True, slots=True)
class GracefulRestartCapability:
    """RFC 4724 graceful restart.

    Restart flags (``GracefulRestartFlag``), restart time in seconds, and for each family
    (afi, safi, flags) where flags carries ``GracefulRestartFamilyFlag.FORWARDING_STATE``.
    """

    restart_flags: int = 0
    restart_time: int = 120
    families: tuple[tuple[int, int, int], ...] = ()
    code = CapabilityCode.GRACEFUL_RESTART


@dataclass(frozen=True, slots=True)
class LongLivedGracefulRestartCapability:
    """RFC 9494: per family (afi, safi, flags, long-lived stale time in seconds)."""

    families: tuple[tuple[int, int, int, int], ...] = ()
    code = CapabilityCode.LONG_LIVED_GRACEFUL_RESTART


@dataclass(frozen=True, slots=True)
class AddPathCapability:
    """RFC 7911: per family (afi, safi, ``AddPathDirection``)."""

    families: tuple[tuple[int, int, int], ...] = ()
    code = CapabilityCode.ADD_PATH


@dataclass(frozen=True, slots=True)
class ExtendedNextHopCapability:
    """RFC 8950: (NLRI AFI, NLRI SAFI, next-hop AFI) triples."""

    entries: tuple[tuple[int, int, int], ...] = ()
    code = CapabilityCode.EXTENDED_NEXT_HOP


@dataclass(frozen=True, slots=True)
class HostnameCapability:
    """draft-walton-bgp-hostname-capability (FQDN, code 73), as FRR and BIRD send it."""

    hostname: str
    domain: str = ""
    code = CapabilityCode.HOSTNAME


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    """A capability Myna does not interpret, kept byte for byte."""

    code: int
    data: bytes


Capability = (
    MultiprotocolCapability
    | RouteRefreshCapability
    | EnhancedRouteRefreshCapability
    | ExtendedMessageCapability
    | FourOctetAsCapability
    | GracefulRestartCapability
    | LongLivedGracefulRestartCapability
    | AddPathCapability
    | ExtendedNextHopCapability
    | HostnameCapability
    | UnknownCapability
)


def _bad(code: int, value: bytes, why: str) -> MessageError:
    # RFC 5492 gives no subcode for a malformed capability; like FRR and BIRD we answer with
    # OPEN Message Error / unspecific and put the offending capability in the data.
    return MessageError(
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.UNSPECIFIC,
        bytes((code, len(value))) + value,
        f"malformed capability {code}: {why}",
    )


def _need_len(code: int, value: bytes, length: int) -> None:
    if len(value) != length:
        raise _bad(code, value, f"length {len(value)}, expected {length}")


def _records(code: int, value: bytes, size: int) -> list[bytes]:
    if len(value) % size:
        raise _bad(code, value, f"length {len(value)} is not a multiple of {size}")
    return [value[i : i + size] for i in range(0, len(value), size)]


def _decode_multiprotocol(value: bytes) -> Capability:
    _need_len(CapabilityCode.MULTIPROTOCOL, value, 4)
    afi, _reserved, safi = struct.unpack(">HBB", value)
    return MultiprotocolCapability(afi, safi)


def _no_value(
    code: CapabilityCode, make: Callable[[], Capability]
) -> Callable[[bytes], Capability]:
    def decode(value: bytes) -> Capability:
        _need_len(code, value, 0)
        return make()

    return decode


def _decode_four_octet_as(value: bytes) -> Capability:
    _need_len(CapabilityCode.FOUR_OCTET_AS, value, 4)
    return FourOctetAsCapability(struct.unpack(">I", value)[0])


def _decode_graceful_restart(value: bytes) -> Capability:
    if len(value) < 2:
        raise _bad(CapabilityCode.GRACEFUL_RESTART, value, "shorter than 2 octets")
    head = struct.unpack(">H", value[:2])[0]
    families = tuple(
        struct.unpack(">HBB", rec)
        for rec in _records(CapabilityCode.GRACEFUL_RESTART, value[2:], 4)
    )
    return GracefulRestartCapability(head >> 12, head & 0x0FFF, families)


def _decode_llgr(value: bytes) -> Capability:
    families = []
    for rec in _records(CapabilityCode.LONG_LIVED_GRACEFUL_RESTART, value, 7):
        afi, safi, flags = struct.unpack(">HBB", rec[:4])
        families.append((afi, safi, flags, int.from_bytes(rec[4:7], "big")))
    return LongLivedGracefulRestartCapability(tuple(families))


def _decode_add_path(value: bytes) -> Capability:
    return AddPathCapability(
        tuple(struct.unpack(">HBB", rec) for rec in _records(CapabilityCode.ADD_PATH, value, 4))
    )


def _decode_extended_next_hop(value: bytes) -> Capability:
    return ExtendedNextHopCapability(
        tuple(
            struct.unpack(">HHH", rec)
            for rec in _records(CapabilityCode.EXTENDED_NEXT_HOP, value, 6)
        )
    )


def _decode_hostname(value: bytes) -> Capability:
    code = CapabilityCode.HOSTNAME
    if not value:
        raise _bad(code, value, "empty")
    host_len = value[0]
    if 1 + host_len > len(value):
        raise _bad(code, value, "hostname overruns the capability")
    host = value[1 : 1 + host_len]
    rest = value[1 + host_len :]
    domain = b""
    if rest:
        dom_len = rest[0]
        if 1 + dom_len != len(rest):
            raise _bad(code, value, "domain name length does not match the capability")
        domain = rest[1:]
    return HostnameCapability(
        host.decode("utf-8", errors="replace"), domain.decode("utf-8", errors="replace")
    )


_DECODERS: dict[int, Callable[[bytes], Capability]] = {
    CapabilityCode.MULTIPROTOCOL: _decode_multiprotocol,
    CapabilityCode.ROUTE_REFRESH: _no_value(CapabilityCode.ROUTE_REFRESH, RouteRefreshCapability),
    CapabilityCode.ENHANCED_ROUTE_REFRESH: _no_value(
        CapabilityCode.ENHANCED_ROUTE_REFRESH, EnhancedRouteRefreshCapability
    ),
    CapabilityCode.EXTENDED_MESSAGE: _no_value(
        CapabilityCode.EXTENDED_MESSAGE, ExtendedMessageCapability
    ),
    CapabilityCode.FOUR_OCTET_AS: _decode_four_octet_as,
    CapabilityCode.GRACEFUL_RESTART: _decode_graceful_restart,
    CapabilityCode.LONG_LIVED_GRACEFUL_RESTART: _decode_llgr,
    CapabilityCode.ADD_PATH: _decode_add_path,
    CapabilityCode.EXTENDED_NEXT_HOP: _decode_extended_next_hop,
    CapabilityCode.HOSTNAME: _decode_hostname,
}


def decode_capability(code: int, value: bytes) -> Capability:
    """One capability value; unknown codes are kept raw (RFC 5492 section 3)."""
    decoder = _DECODERS.get(code)
    if decoder is None:
        return UnknownCapability(code, value)
    return decoder(value)


def _capability_value(cap: Capability) -> bytes:
    match cap:
        case MultiprotocolCapability(afi, safi):
            return struct.pack(">HBB", afi, 0, safi)
        case FourOctetAsCapability(asn):
            return struct.pack(">I", asn)
        case GracefulRestartCapability(flags, time, families):
            head = struct.pack(">H", ((flags & 0xF) << 12) | (time & 0x0FFF))
            return head + b"".join(struct.pack(">HBB", *f) for f in families)
        case LongLivedGracefulRestartCapability(families):
            return b"".join(
                struct.pack(">HBB", afi, safi, flags) + stale.to_bytes(3, "big")
                for afi, safi, flags, stale in families
            )
        case AddPathCapability(families):
            return b"".join(struct.pack(">HBB", *f) for f in families)
        case ExtendedNextHopCapability(entries):
            return b"".join(struct.pack(">HHH", *e) for e in entries)
        case HostnameCapability(hostname, domain):
            host, dom = hostname.encode(), domain.encode()
            return bytes((len(host),)) + host + bytes((len(dom),)) + dom
        case UnknownCapability(_, data):
            return data
        case _:
            return b""


def encode_capability(cap: Capability) -> bytes:
    """The capability's TLV (code, length, value)."""
    value = _capability_value(cap)
    return bytes((int(cap.code), len(value))) + value
