"""KEEPALIVE, NOTIFICATION (with RFC 9003 shutdown text) and ROUTE-REFRESH (RFC 2918, 7313).

Data flow: ``messages.decode_message`` hands these bodies here and gets frozen values back; the
FSM and the logs read them (``Notification.describe`` names code and subcode and shows the
shutdown text). The encoders build whole messages, header included, for the transport.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from speaker.codec_errors import EncodeError, MessageError
from speaker.framing import frame
from speaker.wire_codes import (
    CeaseSubcode,
    ErrorCode,
    MessageType,
    RouteRefreshSubcode,
    RouteRefreshSubtype,
    error_name,
)

# RFC 9003: the shutdown communication applies to these Cease subcodes.
_SHUTDOWN_SUBCODES = (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET)
MAX_SHUTDOWN_TEXT = 255


@dataclass(frozen=True, slots=True)
class Keepalive:
    """A KEEPALIVE: no body."""


@dataclass(frozen=True, slots=True)
class Notification:
    """A NOTIFICATION: code, subcode and the data octets as sent."""

    code: int
    subcode: int
    data: bytes = b""

    @classmethod
    def shutdown(
        cls, text: str, subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
    ) -> Notification:
        """A Cease with an RFC 9003 shutdown communication, cut to 255 octets of UTF-8."""
        raw = text.encode("utf-8")[:MAX_SHUTDOWN_TEXT]
        # Never cut inside a character: drop a trailing partial sequence.
        raw = raw.decode("utf-8", errors="ignore").encode("utf-8")
        return cls(ErrorCode.CEASE, subcode, bytes((len(raw),)) + raw)

    @property
    def shutdown_text(self) -> str | None:
        """The RFC 9003 text, or None when absent or not valid (never interpreted then)."""
        if self.code != ErrorCode.CEASE or self.subcode not in _SHUTDOWN_SUBCODES:
            return None
        if not self.data or self.data[0] + 1 > len(self.data):
            return None
        try:
            return self.data[1 : 1 + self.data[0]].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def describe(self) -> str:
        """Code and subcode by name, and the shutdown text or data, for one log line."""
        words = error_name(self.code, self.subcode)
        text = self.shutdown_text
        if text is not None:
            return f'{words}: "{text}"'
        if self.data:
            return f"{words} data={self.data.hex()}"
        return words


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """A ROUTE-REFRESH; ``subtype`` is 0 (normal), 1 (BoRR) or 2 (EoRR), or what the peer sent.

    RFC 7313: a receiver ignores a subtype it does not know, so unknown values are kept and not
    an error here.
    """

    afi: int
    safi: int
    subtype: int = RouteRefreshSubtype.NORMAL


KEEPALIVE_MESSAGE = frame(MessageType.KEEPALIVE, b"")


def decode_notification(body: bytes) -> Notification:
    """Decode a NOTIFICATION body (framing guarantees at least 2 octets)."""
    return Notification(body[0], body[1], body[2:])


def decode_route_refresh(body: bytes) -> RouteRefresh:
    """Decode a ROUTE-REFRESH body.

    RFC 7313 section 5: a body other than 4 octets is error 7/1 with the whole message as data,
    except that a message with an unknown subtype is to be ignored, so it decodes (its extra
    octets dropped) and the session ignores it by its subtype.
    """
    subtype = body[2] if len(body) >= 3 else RouteRefreshSubtype.NORMAL
    if len(body) != 4 and (len(body) < 4 or subtype in _KNOWN_SUBTYPES):
        raise MessageError(
            ErrorCode.ROUTE_REFRESH,
            RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
            frame(MessageType.ROUTE_REFRESH, body),
            f"ROUTE-REFRESH body is {len(body)} octets, expected 4",
        )
    afi, subtype, safi = struct.unpack_from(">HBB", body)
    return RouteRefresh(afi, safi, subtype)


_KNOWN_SUBTYPES = frozenset(int(s) for s in RouteRefreshSubtype)


def encode_keepalive() -> bytes:
    """A whole KEEPALIVE message."""
    return KEEPALIVE_MESSAGE


def encode_notification(message: Notification) -> bytes:
    """A whole NOTIFICATION message."""
    if len(message.data) > 4096 - 21:
        raise EncodeError("NOTIFICATION data does not fit in one message")
    return frame(MessageType.NOTIFICATION, bytes((message.code, message.subcode)) + message.data)


def encode_route_refresh(message: RouteRefresh) -> bytes:
    """A whole ROUTE-REFRESH message."""
    return frame(
        MessageType.ROUTE_REFRESH, struct.pack(">HBB", message.afi, message.subtype, message.safi)
    )
