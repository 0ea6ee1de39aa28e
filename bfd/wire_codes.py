"""The numbers of RFC 5880, 5881 and 5883 as enums, and why Myna drops a packet.

Data flow: ``packet`` decodes fields into these enums and encodes them back; ``session_fsm``
keys its transition table on ``State``; every drop anywhere (codec, demultiplexer, TTL check,
session) is counted under one ``DropReason``, so an operator sees one vocabulary.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

BFD_VERSION = 1
SINGLE_HOP_PORT = 3784  # RFC 5881 4
MULTIHOP_PORT = 4784  # RFC 5883 5
SOURCE_PORT_MIN = 49152  # RFC 5881 4: the source port range, for both kinds
SOURCE_PORT_MAX = 65535
SINGLE_HOP_TTL = 255  # RFC 5881 5: sent with, and required on receipt
MANDATORY_LENGTH = 24  # RFC 5880 4.1: the packet without an authentication section
MINIMUM_AUTH_LENGTH = 26  # 6.8.6: with the A bit set
SLOW_TX_INTERVAL_US = 1_000_000  # 6.8.3: Desired Min TX while the session is not Up
MAX_INTERVAL_US = 0xFFFFFFFF


class State(IntEnum):
    """RFC 5880 4.1 ``Sta``: the session state the sender is in."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        """The RFC's spelling: ``AdminDown``, ``Down``, ``Init``, ``Up``."""
        return "AdminDown" if self is State.ADMIN_DOWN else self.name.title()


class Diagnostic(IntEnum):
    """RFC 5880 4.1 ``Diag``: why the sender's session last changed state (5 bits)."""

    NO_DIAGNOSTIC = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8

    @classmethod
    def of(cls, value: int) -> Diagnostic | int:
        """The named diagnostic, or the bare number for the reserved values 9-31."""
        try:
            return cls(value)
        except ValueError:
            return value


class AuthType(IntEnum):
    """RFC 5880 4.1 ``Auth Type`` (0 is reserved: no authentication is no section at all)."""

    SIMPLE_PASSWORD = 1
    KEYED_MD5 = 2
    METICULOUS_KEYED_MD5 = 3
    KEYED_SHA1 = 4
    METICULOUS_KEYED_SHA1 = 5

    @property
    def meticulous(self) -> bool:
        """The sequence number must rise with every packet (6.7.3, 6.7.4)."""
        return self in (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1)

    @property
    def auth_length(self) -> int | None:
        """The one correct Auth Len of the type (None: simple password, 4-19 by its length)."""
        return _AUTH_LENGTHS.get(self)


_AUTH_LENGTHS = {
    AuthType.KEYED_MD5: 24,
    AuthType.METICULOUS_KEYED_MD5: 24,
    AuthType.KEYED_SHA1: 28,
    AuthType.METICULOUS_KEYED_SHA1: 28,
}


class Flag(IntEnum):
    """The flag bits of the packet's second octet (RFC 5880 4.1), as masks."""

    POLL = 0x20
    FINAL = 0x10
    CONTROL_PLANE_INDEPENDENT = 0x08
    AUTH_PRESENT = 0x04
    DEMAND = 0x02
    MULTIPOINT = 0x01


class DropReason(StrEnum):
    """Why a received datagram was discarded: the key of the drop counters.

    The first group are RFC 5880 6.8.6's rules in its order; then the demultiplexing rules of
    6.8.6 with RFC 5881 3 and 5883 4; then 6.7's authentication checks; then the TTL rules
    (RFC 5881 5, RFC 5883 5). None of them changes any session's state.
    """

    TRUNCATED = "shorter than the mandatory section"
    BAD_VERSION = "version is not 1"
    LENGTH_TOO_SHORT = "Length below 24, or 26 with the A bit"
    LENGTH_BEYOND_PAYLOAD = "Length beyond the UDP payload"
    DETECT_MULT_ZERO = "Detect Mult is zero"
    MULTIPOINT = "Multipoint bit set"
    MY_DISCRIMINATOR_ZERO = "My Discriminator is zero"
    AUTH_SECTION_MALFORMED = "authentication section does not fit the Length"
    UNKNOWN_DISCRIMINATOR = "Your Discriminator names no session"
    ZERO_DISCRIMINATOR_NOT_DOWN = "Your Discriminator zero outside Down and AdminDown"
    NO_SESSION_FOR_ADDRESS = "Your Discriminator zero and no session for the addresses"
    # The name is from when the peer's address counted too (it no longer does: RFC 5880 6.3);
    # kept so that the metrics' reason label stays the same.
    WRONG_PEER = "the session of Your Discriminator runs the other hop mode"
    AUTH_NOT_CONFIGURED = "A bit set but no authentication configured"
    AUTH_MISSING = "A bit clear but authentication configured"
    AUTH_TYPE_MISMATCH = "Auth Type is not the configured one"
    AUTH_KEY_UNKNOWN = "Auth Key ID names no configured key"
    AUTH_LENGTH_WRONG = "Auth Len wrong for the type or the key"
    AUTH_SEQUENCE_OUT_OF_WINDOW = "sequence number outside the window"
    AUTH_DIGEST_MISMATCH = "password, digest or hash does not match"
    TTL_NOT_255 = "single-hop TTL or hop limit is not 255"
    TTL_BELOW_MINIMUM = "multihop TTL below the configured minimum"

    @property
    def auth_failure(self) -> bool:
        """Counted as an authentication failure too."""
        return self.name.startswith("AUTH_")


class HopMode(StrEnum):
    """RFC 5881 single hop (UDP 3784, TTL 255 both ways) or RFC 5883 multihop (UDP 4784)."""

    SINGLE_HOP = "single-hop"
    MULTIHOP = "multihop"

    @property
    def port(self) -> int:
        """The UDP destination port of the mode."""
        return SINGLE_HOP_PORT if self is HopMode.SINGLE_HOP else MULTIHOP_PORT
