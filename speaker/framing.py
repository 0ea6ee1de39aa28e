"""Message framing: the 19-octet header (RFC 4271 section 4.1) and a TCP stream reassembler.

Data flow: the transport feeds whatever chunks TCP delivers into ``MessageReader.feed``; it
yields (type, body) pairs for whole messages after checking marker, length and type, and raises
``MessageError`` with the exact Message Header Error otherwise. ``messages.decode_message`` then
decodes each body. ``frame`` is the inverse used by every encoder.
"""

from __future__ import annotations

import struct

from speaker.codec_errors import MessageError
from speaker.wire_codes import (
    HEADER_LEN,
    MARKER,
    MAX_EXTENDED_MESSAGE_LEN,
    MAX_MESSAGE_LEN,
    ErrorCode,
    HeaderSubcode,
    MessageType,
)

_LEN_TYPE = struct.Struct(">HB")
_HEADER = struct.Struct(">16sHB")

# RFC 4271 section 6.1 minimum lengths (KEEPALIVE is exact). A short ROUTE-REFRESH passes the
# header check: RFC 7313 wants it answered with 7/1 carrying the message, not with 1/2.
_MIN_LEN = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 19,
}
# RFC 8654: OPEN and KEEPALIVE stay within 4096 octets even with extended messages.
_ALWAYS_SMALL = (MessageType.OPEN, MessageType.KEEPALIVE)
# (minimum, maximum) per type; maximum 0 means the session's negotiated maximum.
_BOUNDS = {
    int(t): (
        low,
        HEADER_LEN if t == MessageType.KEEPALIVE else MAX_MESSAGE_LEN if t in _ALWAYS_SMALL else 0,
    )
    for t, low in _MIN_LEN.items()
}


_UPDATE = int(MessageType.UPDATE)
_UPDATE_MIN = _MIN_LEN[MessageType.UPDATE]


def frame(message_type: MessageType, body: bytes) -> bytes:
    """Prefix a body with marker, length and type."""
    return MARKER + _LEN_TYPE.pack(HEADER_LEN + len(body), message_type) + body


def check_header(header: bytes, max_len: int) -> tuple[int, int]:
    """Validate one 19-octet header; returns (total length, type)."""
    if header[:16] != MARKER:
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
            b"",
            "marker is not all ones",
        )
    length, mtype = _LEN_TYPE.unpack_from(header, 16)
    minimum = _MIN_LEN.get(mtype)
    if minimum is None:
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_TYPE,
            bytes((mtype,)),
            f"unknown message type {mtype}",
        )
    limit = MAX_MESSAGE_LEN if mtype in _ALWAYS_SMALL else max_len
    if (
        length < minimum
        or length > limit
        or (mtype == MessageType.KEEPALIVE and length != HEADER_LEN)
    ):
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            header[16:18],
            f"length {length} is not valid for message type {mtype}",
        )
    return length, mtype


class MessageReader:
    """Reassembles BGP messages from arbitrary TCP chunks.

    ``max_message_len`` starts at 4096 and is raised to 65535 by the session once extended
    messages are negotiated (RFC 8654).
    """

    __slots__ = ("_buf", "max_message_len")

    def __init__(self, max_message_len: int = MAX_MESSAGE_LEN) -> None:
        self._buf = bytearray()
        self.max_message_len = max_message_len

    def enable_extended_messages(self) -> None:
        """Accept UPDATEs up to 65535 octets from now on."""
        self.max_message_len = MAX_EXTENDED_MESSAGE_LEN

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return every message now complete as (type, body)."""
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
        out: list[tuple[int, bytes]] = []
        pos = 0
        end = len(data)
        max_len = self.max_message_len
        unpack = _HEADER.unpack_from
        append = out.append
        while end - pos >= HEADER_LEN:
            marker, length, mtype = unpack(data, pos)
            if mtype == _UPDATE:  # nearly every message: checked without the table
                ok = _UPDATE_MIN <= length <= max_len
            else:
                bounds = _BOUNDS.get(mtype)
                ok = bounds is not None and bounds[0] <= length <= (bounds[1] or max_len)
            if marker != MARKER or not ok:
                check_header(data[pos : pos + HEADER_LEN], max_len)  # raises the exact error
            if end - pos < length:
                break
            append((mtype, data[pos + HEADER_LEN : pos + length]))
            pos += length
        self._buf = bytearray(data[pos:]) if pos < end else bytearray()
        return out
