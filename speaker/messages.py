"""Decoding any BGP message body into its value, by message type.

Data flow: the transport's ``framing.MessageReader`` yields (type, body); the session calls
``decode_message(type, body, negotiated)`` and gets an ``Open``, ``Update``, ``Notification``,
``Keepalive`` or ``RouteRefresh``. ``decode_wire`` does both steps for one whole message, which
is what tests, the fuzzer and the benchmark use. Only ``CodecError`` subclasses ever escape.
"""

from __future__ import annotations

from collections.abc import Callable

from speaker.codec_errors import CodecError, MessageError
from speaker.control_messages import (
    Keepalive,
    Notification,
    RouteRefresh,
    decode_notification,
    decode_route_refresh,
)
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated
from speaker.open_message import Open, decode_open
from speaker.update_message import Update, decode_update
from speaker.wire_codes import ErrorCode, MessageType

Message = Open | Update | Notification | Keepalive | RouteRefresh

_KEEPALIVE = Keepalive()
_UPDATE = int(MessageType.UPDATE)

_DECODERS: dict[int, Callable[[bytes, Negotiated], Message]] = {
    MessageType.OPEN: lambda body, _neg: decode_open(body),
    MessageType.UPDATE: decode_update,
    MessageType.NOTIFICATION: lambda body, _neg: decode_notification(body),
    MessageType.KEEPALIVE: lambda _body, _neg: _KEEPALIVE,
    MessageType.ROUTE_REFRESH: lambda body, _neg: decode_route_refresh(body),
}


def decode_message(message_type: int, body: bytes, neg: Negotiated) -> Message:
    """Decode one message body; ``message_type`` was checked by the framing."""
    if message_type == _UPDATE:
        # Nearly every message of a session: straight to its decoder, no table lookup.
        decoder: Callable[[bytes, Negotiated], Message] | None = decode_update
    else:
        decoder = _DECODERS.get(message_type)
    if decoder is None:
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            3,
            bytes((message_type & 0xFF,)),
            f"unknown message type {message_type}",
        )
    try:
        return decoder(body, neg)
    except CodecError:
        raise
    except (IndexError, ValueError, KeyError, TypeError, OverflowError) as exc:
        # Every decoder checks lengths before reading; reaching here is a decoder bug, and the
        # session still gets a NOTIFICATION rather than a crash.
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            0,
            b"",
            f"undecodable message type {message_type}: {exc!r} (Myna bug)",
        ) from exc


def decode_wire(wire: bytes, neg: Negotiated) -> Message:
    """Decode exactly one whole message (header included)."""
    reader = MessageReader(neg.max_message_len)
    messages = reader.feed(wire)
    if len(messages) != 1 or reader.buffered:
        raise MessageError(
            ErrorCode.MESSAGE_HEADER,
            2,
            b"",
            f"expected one whole message, got {len(messages)} and {reader.buffered} octets",
        )
    message_type, body = messages[0]
    return decode_message(message_type, body, neg)
