"""The codec's error types and the outcome of a malformed UPDATE (RFC 7606).

Data flow: decoders raise ``MessageError`` when the session must be reset; it carries the exact
NOTIFICATION (code, subcode, data) that the FSM sends back. A malformed UPDATE that RFC 7606
lets the session survive is not an exception: the decoded ``Update`` carries ``UpdateProblem``
records saying what was wrong and what was done (treat-as-withdraw or attribute-discard), which
the session logs together with the whole UPDATE. ``EncodeError`` is our own fault: a value that
cannot be put on the wire (for example, attributes larger than the negotiated message size).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from speaker.wire_codes import ErrorCode, error_name


class CodecError(Exception):
    """Base of everything the codec raises; nothing else escapes it, whatever it is fed."""


class MessageError(CodecError):
    """The peer sent a message that requires a NOTIFICATION and a session reset (its fault)."""

    def __init__(self, code: ErrorCode, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.code = code
        self.subcode = subcode
        self.data = data
        self.reason = reason
        super().__init__(
            f"{error_name(code, subcode)}: {reason}" if reason else error_name(code, subcode)
        )


class EncodeError(CodecError):
    """A value Myna asked to encode cannot be represented on the wire (our fault)."""


class UpdateAction(IntEnum):
    """RFC 7606 section 2 approaches that keep the session, weakest first (section 3h)."""

    ATTRIBUTE_DISCARD = 1
    TREAT_AS_WITHDRAW = 2


class UpdateProblem(NamedTuple):
    """One malformation found in an UPDATE and what was done about it.

    ``subcode`` and ``data`` are the UPDATE Message Error RFC 4271 would have sent; they are kept
    so the log line says exactly what was wrong even though no NOTIFICATION goes out, and so
    that RFC 7606 section 5.2 can still send it when the UPDATE has nothing to withdraw.
    """

    action: UpdateAction
    attr_type: int
    subcode: int
    reason: str
    data: bytes = b""  # what the NOTIFICATION would carry: usually the whole attribute

    def describe(self) -> str:
        """One line for the log."""
        verb = "treat-as-withdraw" if self.action == UpdateAction.TREAT_AS_WITHDRAW else "discarded"
        return f"attribute {self.attr_type}: {self.reason} ({verb}, {error_name(3, self.subcode)})"
