"""Every number that appears on the BGP wire, as an enum named after its RFC.

Data flow: nothing flows through here; the codec modules (``framing``, ``capabilities``,
``open_message``, ``path_attributes``, ``update_message``, ``control_messages``), the session
FSM and the logs import these names so that a code is never a bare literal.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE_LEN = 4096
MAX_EXTENDED_MESSAGE_LEN = 65535  # RFC 8654
BGP_VERSION = 4
AS_TRANS = 23456  # RFC 6793


class MessageType(IntEnum):
    """RFC 4271 section 4.1, RFC 2918."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class Afi(IntEnum):
    """IANA Address Family Numbers used by BGP."""

    IPV4 = 1
    IPV6 = 2


class Safi(IntEnum):
    """IANA SAFI values Myna speaks."""

    UNICAST = 1


class Family(IntEnum):
    """The AFI/SAFI pairs whose NLRI Myna decodes, valued ``afi << 8 | safi``.

    An IntEnum so that set membership and dict lookups hash in C on the decode path.
    """

    IPV4_UNICAST = (Afi.IPV4 << 8) | Safi.UNICAST
    IPV6_UNICAST = (Afi.IPV6 << 8) | Safi.UNICAST

    @property
    def afi(self) -> Afi:
        """The address family identifier."""
        return Afi(self.value >> 8)

    @property
    def safi(self) -> Safi:
        """The subsequent address family identifier."""
        return Safi(self.value & 0xFF)

    @property
    def address_bits(self) -> int:
        """Width of an address of this family."""
        return ADDRESS_BITS[self]

    @classmethod
    def lookup(cls, afi: int, safi: int) -> Family | None:
        """The family for an (AFI, SAFI) pair, or None when Myna does not speak it."""
        return _FAMILY_BY_PAIR.get((afi, safi))


_FAMILY_BY_PAIR: dict[tuple[int, int], Family] = {(f.value >> 8, f.value & 0xFF): f for f in Family}
ADDRESS_BITS: dict[int, int] = {Family.IPV4_UNICAST: 32, Family.IPV6_UNICAST: 128}


class OptionalParameterType(IntEnum):
    """RFC 5492 and RFC 9072."""

    CAPABILITIES = 2
    EXTENDED_LENGTH = 255  # RFC 9072 marker in the non-extended type octet


class CapabilityCode(IntEnum):
    """IANA Capability Codes that Myna understands."""

    MULTIPROTOCOL = 1  # RFC 4760
    ROUTE_REFRESH = 2  # RFC 2918
    EXTENDED_NEXT_HOP = 5  # RFC 8950
    EXTENDED_MESSAGE = 6  # RFC 8654
    GRACEFUL_RESTART = 64  # RFC 4724
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    LONG_LIVED_GRACEFUL_RESTART = 71  # RFC 9494
    HOSTNAME = 73  # draft-walton-bgp-hostname-capability


class GracefulRestartFlag(IntFlag):
    """Restart Flags (high nibble of the GR capability), RFC 4724 and RFC 8538."""

    RESTART_STATE = 0x8  # R: the sender has restarted
    NOTIFICATION = 0x4  # N: GR also covers NOTIFICATIONs (RFC 8538)


class GracefulRestartFamilyFlag(IntFlag):
    """Per-family flags of the GR and LLGR capabilities."""

    FORWARDING_STATE = 0x80  # F: forwarding state was preserved


class AddPathDirection(IntEnum):
    """Send/Receive field of the ADD-PATH capability, RFC 7911."""

    RECEIVE = 1
    SEND = 2
    BOTH = 3


class RouteRefreshSubtype(IntEnum):
    """The reserved octet of ROUTE-REFRESH as RFC 7313 reuses it."""

    NORMAL = 0
    BEGIN = 1  # BoRR
    END = 2  # EoRR


class AttrFlag(IntFlag):
    """Path attribute flag bits, RFC 4271 section 4.3."""

    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class AttrType(IntEnum):
    """Path attribute type codes Myna decodes."""

    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8  # RFC 1997
    ORIGINATOR_ID = 9  # RFC 4456
    CLUSTER_LIST = 10  # RFC 4456
    MP_REACH_NLRI = 14  # RFC 4760
    MP_UNREACH_NLRI = 15  # RFC 4760
    EXTENDED_COMMUNITIES = 16  # RFC 4360
    AS4_PATH = 17  # RFC 6793
    AS4_AGGREGATOR = 18  # RFC 6793
    IPV6_EXTENDED_COMMUNITIES = 25  # RFC 5701
    LARGE_COMMUNITY = 32  # RFC 8092
    OTC = 35  # RFC 9234


class Origin(IntEnum):
    """ORIGIN values, RFC 4271 section 5.1.1."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class AsPathSegmentType(IntEnum):
    """AS_PATH segment types, RFC 4271 and RFC 5065."""

    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class WellKnownCommunity(IntEnum):
    """IANA well-known communities."""

    GRACEFUL_SHUTDOWN = 0xFFFF0000  # RFC 8326
    ACCEPT_OWN = 0xFFFF0001  # RFC 7611
    LLGR_STALE = 0xFFFF0006  # RFC 9494
    NO_LLGR = 0xFFFF0007  # RFC 9494
    BLACKHOLE = 0xFFFF029A  # RFC 7999
    NO_EXPORT = 0xFFFFFF01  # RFC 1997
    NO_ADVERTISE = 0xFFFFFF02  # RFC 1997
    NO_EXPORT_SUBCONFED = 0xFFFFFF03  # RFC 1997
    NOPEER = 0xFFFFFF04  # RFC 3765


def community_text(value: int) -> str:
    """A community as operators write it: its well-known name, else ``high:low``."""
    try:
        return WellKnownCommunity(value).name.lower()
    except ValueError:
        return f"{value >> 16}:{value & 0xFFFF}"


class ErrorCode(IntEnum):
    """NOTIFICATION error codes, RFC 4271 section 4.5 and later RFCs."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5  # RFC 6608
    CEASE = 6  # RFC 4486
    ROUTE_REFRESH = 7  # RFC 7313
    SEND_HOLD_TIMER_EXPIRED = 8  # RFC 9687


class HeaderSubcode(IntEnum):
    """Message Header Error subcodes."""

    UNSPECIFIC = 0
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    """OPEN Message Error subcodes."""

    UNSPECIFIC = 0
    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7  # RFC 5492
    ROLE_MISMATCH = 11  # RFC 9234


class UpdateSubcode(IntEnum):
    """UPDATE Message Error subcodes."""

    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):
    """Finite State Machine Error subcodes, RFC 6608."""

    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    """Cease subcodes, RFC 4486, RFC 8538, RFC 9384."""

    UNSPECIFIC = 0
    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class RouteRefreshSubcode(IntEnum):
    """ROUTE-REFRESH Message Error subcodes, RFC 7313."""

    RESERVED = 0
    INVALID_MESSAGE_LENGTH = 1


SUBCODES: dict[int, type[IntEnum]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
    ErrorCode.ROUTE_REFRESH: RouteRefreshSubcode,
}


def error_name(code: int, subcode: int) -> str:
    """``code/subcode`` spelled out for logs, e.g. ``Cease/Administrative Shutdown (6/2)``."""
    try:
        code_name = ErrorCode(code).name
    except ValueError:
        return f"unknown error ({code}/{subcode})"
    table = SUBCODES.get(code)
    sub_name = ""
    if table is not None:
        try:
            sub_name = table(subcode).name
        except ValueError:
            sub_name = "unknown subcode"
    words = code_name.replace("_", " ").title()
    if sub_name:
        words += "/" + sub_name.replace("_", " ").title()
    return f"{words} ({code}/{subcode})"
