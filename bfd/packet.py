"""The BFD Control packet (RFC 5880 4.1): frozen values, bytes in and bytes out.

Data flow: the engine hands each received UDP payload to ``decode``, which applies the
reception rules of 6.8.6 that need no session (version, Length against the A bit and the
payload, Detect Mult, the Multipoint bit, My Discriminator) and raises ``MalformedPacketError``
with the ``DropReason`` of the first rule broken; the caller counts it and carries on. What
passes is a ``ControlPacket``, which ``demux`` and ``session_fsm`` read. ``encode`` turns a
``ControlPacket`` back into bytes; ``auth`` fills in the authentication section.

The authentication section is kept as it came (``AuthSection``: type, length, key id and the
octets after them) because its meaning depends on the session's configuration, and the digest
of keyed MD5 and SHA1 is over the packet as received (``wire``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from bfd.wire_codes import (
    BFD_VERSION,
    MANDATORY_LENGTH,
    MINIMUM_AUTH_LENGTH,
    DropReason,
    Flag,
    State,
)

_MANDATORY = struct.Struct("!BBBBIIIII")
_AUTH_HEADER = 3  # Auth Type, Auth Len, Auth Key ID


class MalformedPacketError(ValueError):
    """The peer sent a datagram that breaks a reception rule; ``reason`` says which.

    Raised by ``decode`` only; always the remote side's fault, never a reason to change state.
    """

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}{': ' + detail if detail else ''}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuthSection:
    """RFC 5880 4.2-4.4: the authentication section as received or to be sent.

    ``body`` is everything after the Auth Key ID: the password (simple password), or the
    reserved octet, sequence number and digest (keyed MD5 / SHA1).
    """

    auth_type: int
    key_id: int
    body: bytes

    @property
    def length(self) -> int:
        """The Auth Len field: the whole section."""
        return _AUTH_HEADER + len(self.body)

    def encode(self) -> bytes:
        """The section's octets."""
        return bytes((self.auth_type, self.length, self.key_id)) + self.body


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """One BFD Control packet; intervals in microseconds, as on the wire.

    ``diagnostic`` stays an int: 9-31 are reserved but not a reason to drop (6.8.6 lists no
    such rule). ``wire`` is the packet as received (its Length octets), for the digest check;
    empty for packets built to be sent.
    """

    state: State
    my_discriminator: int
    your_discriminator: int
    desired_min_tx_us: int
    required_min_rx_us: int
    detect_mult: int
    diagnostic: int = 0
    poll: bool = False
    final: bool = False
    control_plane_independent: bool = False
    demand: bool = False
    multipoint: bool = False
    required_min_echo_rx_us: int = 0
    auth: AuthSection | None = None
    version: int = BFD_VERSION
    wire: bytes = field(default=b"", compare=False, repr=False)

    @property
    def flags(self) -> int:
        """The six flag bits as the second octet carries them (with the state)."""
        bits = 0
        for wanted, flag in (
            (self.poll, Flag.POLL),
            (self.final, Flag.FINAL),
            (self.control_plane_independent, Flag.CONTROL_PLANE_INDEPENDENT),
            (self.auth is not None, Flag.AUTH_PRESENT),
            (self.demand, Flag.DEMAND),
            (self.multipoint, Flag.MULTIPOINT),
        ):
            if wanted:
                bits |= flag
        return bits

    @property
    def length(self) -> int:
        """The Length field."""
        return MANDATORY_LENGTH + (self.auth.length if self.auth is not None else 0)


def encode(packet: ControlPacket) -> bytes:
    """The packet's octets (with its authentication section as it stands)."""
    head = _MANDATORY.pack(
        (packet.version << 5) | (packet.diagnostic & 0x1F),
        (int(packet.state) << 6) | packet.flags,
        packet.detect_mult,
        packet.length,
        packet.my_discriminator,
        packet.your_discriminator,
        packet.desired_min_tx_us,
        packet.required_min_rx_us,
        packet.required_min_echo_rx_us,
    )
    return head if packet.auth is None else head + packet.auth.encode()


def decode(data: bytes) -> ControlPacket:
    """The Control packet in a UDP payload; ``MalformedPacketError`` by 6.8.6's rules, in order."""
    if not data:
        raise MalformedPacketError(DropReason.TRUNCATED, "empty datagram")
    version = data[0] >> 5
    if version != BFD_VERSION:
        raise MalformedPacketError(DropReason.BAD_VERSION, f"version {version}")
    if len(data) < 4:
        raise MalformedPacketError(DropReason.TRUNCATED, f"{len(data)} octets")
    flags = data[1] & 0x3F
    auth_present = bool(flags & Flag.AUTH_PRESENT)
    length = data[3]
    minimum = MINIMUM_AUTH_LENGTH if auth_present else MANDATORY_LENGTH
    if length < minimum:
        raise MalformedPacketError(DropReason.LENGTH_TOO_SHORT, f"Length {length}")
    if length > len(data):
        raise MalformedPacketError(
            DropReason.LENGTH_BEYOND_PAYLOAD, f"Length {length}, payload {len(data)}"
        )
    (first, second, detect_mult, _, my_disc, your_disc, tx, rx, echo_rx) = _MANDATORY.unpack_from(
        data
    )
    if detect_mult == 0:
        raise MalformedPacketError(DropReason.DETECT_MULT_ZERO)
    if flags & Flag.MULTIPOINT:
        raise MalformedPacketError(DropReason.MULTIPOINT)
    if my_disc == 0:
        raise MalformedPacketError(DropReason.MY_DISCRIMINATOR_ZERO)
    auth = None
    if auth_present:
        auth_type, auth_len, key_id = data[24], data[25], data[26] if length > 26 else 0
        if auth_len < _AUTH_HEADER + 1 or MANDATORY_LENGTH + auth_len > length:
            raise MalformedPacketError(
                DropReason.AUTH_SECTION_MALFORMED, f"Auth Len {auth_len} in Length {length}"
            )
        auth = AuthSection(auth_type, key_id, bytes(data[27 : MANDATORY_LENGTH + auth_len]))
    return ControlPacket(
        state=State(second >> 6),
        my_discriminator=my_disc,
        your_discriminator=your_disc,
        desired_min_tx_us=tx,
        required_min_rx_us=rx,
        detect_mult=detect_mult,
        diagnostic=first & 0x1F,
        poll=bool(flags & Flag.POLL),
        final=bool(flags & Flag.FINAL),
        control_plane_independent=bool(flags & Flag.CONTROL_PLANE_INDEPENDENT),
        demand=bool(flags & Flag.DEMAND),
        multipoint=False,
        required_min_echo_rx_us=echo_rx,
        auth=auth,
        version=version,
        wire=bytes(data[:length]),
    )
