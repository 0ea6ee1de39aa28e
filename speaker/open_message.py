"""The OPEN message (RFC 4271 section 4.2) with RFC 5492 capabilities and RFC 9072 lengths.

Data flow: ``messages.decode_message`` hands the body of an OPEN (header stripped) to
``decode_open``, which checks structure only and returns an ``Open`` value; the session FSM
judges its content (version, AS, hold time, identifier) and ``negotiated.negotiate`` intersects
capabilities. ``encode_open`` builds the wire message from an ``Open`` the FSM composed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from speaker.capabilities import (
    Capability,
    FourOctetAsCapability,
    decode_capability,
    encode_capability,
)
from speaker.codec_errors import EncodeError, MessageError
from speaker.framing import frame
from speaker.wire_codes import (
    AS_TRANS,
    BGP_VERSION,
    ErrorCode,
    MessageType,
    OpenSubcode,
    OptionalParameterType,
)

_HEAD = struct.Struct(">BHHIB")


@dataclass(frozen=True, slots=True)
class Open:
    """An OPEN message.

    ``asn`` is the 2-octet My Autonomous System field as sent (AS_TRANS when the real AS does not
    fit); the real AS is in the 4-octet AS capability. ``bgp_id`` is the identifier as a host
    order int. Capabilities are the only optional parameters in use (RFC 5492); any other type
    is refused on decode with 2/4.
    """

    asn: int
    hold_time: int
    bgp_id: int
    capabilities: tuple[Capability, ...] = ()
    version: int = BGP_VERSION

    @property
    def four_octet_asn(self) -> int | None:
        """The AS from the 4-octet AS capability, if the peer sent one."""
        for cap in self.capabilities:
            if isinstance(cap, FourOctetAsCapability):
                return cap.asn
        return None

    @property
    def real_asn(self) -> int:
        """The sender's AS: the 4-octet capability's when present, else the 2-octet field."""
        four = self.four_octet_asn
        return self.asn if four is None else four


def open_for(asn: int, hold_time: int, bgp_id: int, capabilities: tuple[Capability, ...]) -> Open:
    """An ``Open`` for a local AS of any size: AS_TRANS goes in the 2-octet field if needed."""
    return Open(asn if asn <= 0xFFFF else AS_TRANS, hold_time, bgp_id, capabilities)


def _malformed(reason: str) -> MessageError:
    return MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC, b"", reason)


def _parameters(body: bytes) -> list[tuple[int, bytes]]:
    """Split the optional parameters, in the RFC 9072 extended form when it is used."""
    params_len = body[9]
    pos = 10
    # RFC 9072: a non-zero length followed by type 255 announces the extended form.
    extended = (
        params_len != 0 and len(body) > 10 and body[10] == OptionalParameterType.EXTENDED_LENGTH
    )
    if extended:
        if len(body) < 13:
            raise _malformed("extended optional parameters length is truncated")
        params_len = struct.unpack_from(">H", body, 11)[0]
        pos = 13
    end = pos + params_len
    if end != len(body):
        raise _malformed(
            f"optional parameters length {params_len} does not match the {len(body) - pos} "
            "octets that follow"
        )
    out = []
    head = 3 if extended else 2
    while pos < end:
        if pos + head > end:
            raise _malformed("optional parameter header overruns the parameters")
        ptype = body[pos]
        plen = struct.unpack_from(">H", body, pos + 1)[0] if extended else body[pos + 1]
        pos += head
        if pos + plen > end:
            raise _malformed(f"optional parameter {ptype} overruns the parameters")
        out.append((ptype, body[pos : pos + plen]))
        pos += plen
    return out


def decode_open(body: bytes) -> Open:
    """Decode an OPEN body (the 19-octet header already removed)."""
    if len(body) < 10:
        raise MessageError(
            ErrorCode.MESSAGE_HEADER, 2, struct.pack(">H", len(body) + 19), "OPEN too short"
        )
    version, asn, hold_time, bgp_id, _ = _HEAD.unpack_from(body)
    capabilities: list[Capability] = []
    for ptype, value in _parameters(body):
        if ptype != OptionalParameterType.CAPABILITIES:
            raise MessageError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                b"",
                f"optional parameter type {ptype} is not supported",
            )
        pos = 0
        while pos < len(value):
            if pos + 2 > len(value):
                raise _malformed("capability header overruns its optional parameter")
            code, clen = value[pos], value[pos + 1]
            if pos + 2 + clen > len(value):
                raise _malformed(f"capability {code} overruns its optional parameter")
            capabilities.append(decode_capability(code, value[pos + 2 : pos + 2 + clen]))
            pos += 2 + clen
    return Open(asn, hold_time, bgp_id, tuple(capabilities), version)


def encode_open(message: Open) -> bytes:
    """The whole OPEN message, header included.

    Capabilities go one per optional parameter, as BIRD and FRR send them. When the parameters
    exceed 255 octets the RFC 9072 extended form is used.
    """
    params = [
        (OptionalParameterType.CAPABILITIES, encode_capability(cap)) for cap in message.capabilities
    ]
    short = b"".join(bytes((t, len(v))) + v for t, v in params if len(v) < 256)
    if len(short) <= 255 and all(len(v) < 256 for _, v in params):
        tail = bytes((len(short),)) + short
    else:
        long = b"".join(bytes((t,)) + struct.pack(">H", len(v)) + v for t, v in params)
        if len(long) > 0xFFFF:
            raise EncodeError("optional parameters exceed 65535 octets")
        tail = b"\xff\xff" + struct.pack(">H", len(long)) + long
    head = struct.pack(
        ">BHHI", message.version, message.asn & 0xFFFF, message.hold_time, message.bgp_id
    )
    return frame(MessageType.OPEN, head + tail)
