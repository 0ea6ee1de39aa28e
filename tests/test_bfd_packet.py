"""The BFD codec: every reception rule of RFC 5880 6.8.6 that needs no session, and fuzzing.

Packets are built octet by octet from RFC 5880 4.1's layout here, not with ``bfd.packet``'s
encoder, so the codec is checked against the RFC rather than against itself.
"""

from __future__ import annotations

import random
import struct

import pytest
from bfd_harness import fast
from hypothesis import given, settings
from hypothesis import strategies as st

from bfd.auth import AuthSettings
from bfd.packet import ControlPacket, MalformedPacketError, decode, encode
from bfd.session_fsm import BfdSession
from bfd.wire_codes import AuthType, DropReason, State


def raw(
    *,
    version: int = 1,
    diag: int = 0,
    state: int = 1,
    flags: int = 0,
    mult: int = 3,
    length: int | None = None,
    my: int = 7,
    your: int = 0,
    tx: int = 1_000_000,
    rx: int = 1_000_000,
    echo: int = 0,
    tail: bytes = b"",
) -> bytes:
    """A Control packet per RFC 5880 4.1, field by field."""
    body_length = 24 + len(tail) if length is None else length
    head = struct.pack(
        "!BBBBIIIII",
        (version << 5) | diag,
        (state << 6) | flags,
        mult,
        body_length,
        my,
        your,
        tx,
        rx,
        echo,
    )
    return head + tail


def test_a_plain_packet_decodes_to_its_fields() -> None:
    packet = decode(raw(diag=3, state=3, flags=0x20 | 0x08, my=1, your=2, tx=3, rx=4, echo=5))
    assert packet == ControlPacket(
        State.UP, 1, 2, 3, 4, 3, diagnostic=3, poll=True, control_plane_independent=True,
        required_min_echo_rx_us=5,
    )  # fmt: skip
    assert encode(packet) == raw(diag=3, state=3, flags=0x28, my=1, your=2, tx=3, rx=4, echo=5)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DropReason.TRUNCATED),
        (raw(version=0), DropReason.BAD_VERSION),  # "If the version number is not correct (1)"
        (raw(version=2), DropReason.BAD_VERSION),
        (raw()[:3], DropReason.TRUNCATED),
        (raw(length=23), DropReason.LENGTH_TOO_SHORT),  # "less than ... 24 if the A bit is clear"
        # "or 26 if the A bit is set"
        (raw(flags=0x04, length=25, tail=b"\x01"), DropReason.LENGTH_TOO_SHORT),
        (raw(length=30), DropReason.LENGTH_BEYOND_PAYLOAD),  # "greater than the payload"
        (raw()[:20], DropReason.LENGTH_BEYOND_PAYLOAD),
        (raw(mult=0), DropReason.DETECT_MULT_ZERO),  # "If the Detect Mult field is zero"
        (raw(flags=0x01), DropReason.MULTIPOINT),  # "If the Multipoint (M) bit is nonzero"
        (raw(my=0), DropReason.MY_DISCRIMINATOR_ZERO),  # "If the My Discriminator field is zero"
        # An authentication section whose Auth Len runs past the Length.
        (raw(flags=0x04, tail=bytes([1, 9, 1, 0x61])), DropReason.AUTH_SECTION_MALFORMED),
        (raw(flags=0x04, tail=bytes([1, 2, 1, 0x61])), DropReason.AUTH_SECTION_MALFORMED),
    ],
)
def test_each_6_8_6_rule_drops_with_its_reason(data: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacketError) as caught:
        decode(data)
    assert caught.value.reason is reason


def test_rules_apply_in_the_rfc_order() -> None:
    # Version is checked before Detect Mult, Detect Mult before the M bit, M before My Disc.
    with pytest.raises(MalformedPacketError) as caught:
        decode(raw(version=3, mult=0))
    assert caught.value.reason is DropReason.BAD_VERSION
    with pytest.raises(MalformedPacketError) as caught:
        decode(raw(mult=0, flags=0x01, my=0))
    assert caught.value.reason is DropReason.DETECT_MULT_ZERO
    with pytest.raises(MalformedPacketError) as caught:
        decode(raw(flags=0x01, my=0))
    assert caught.value.reason is DropReason.MULTIPOINT


def test_octets_beyond_the_length_are_not_part_of_the_packet() -> None:
    packet = decode(raw() + b"trailing")
    assert packet.wire == raw()


def test_reserved_diagnostics_are_kept_not_dropped() -> None:
    assert decode(raw(diag=31)).diagnostic == 31


@given(st.binary(max_size=80))
@settings(max_examples=2000, deadline=None)
def test_any_octets_decode_or_raise_malformed_only(data: bytes) -> None:
    try:
        packet = decode(data)
    except MalformedPacketError as error:
        assert isinstance(error.reason, DropReason)
        return
    assert packet.version == 1 and packet.detect_mult and packet.my_discriminator


def _up_session(auth: AuthSettings | None) -> BfdSession:
    session = BfdSession(fast(auth=auth), 1, random.Random(2))
    session.start(0.0)
    session.state = State.UP  # as if the handshake had run: what matters is what follows
    session.remote_discriminator = 99
    return session


@given(st.binary(min_size=24, max_size=80))
@settings(max_examples=1000, deadline=None)
def test_fuzzed_packets_never_raise_and_never_move_an_authenticated_session(data: bytes) -> None:
    session = _up_session(AuthSettings.single(AuthType.METICULOUS_KEYED_SHA1, "secret"))
    try:
        packet = decode(data)
    except MalformedPacketError:
        return
    session.receive(packet, 0.05)
    # Without the key nothing can be authentic: dropped, counted, and the state stays.
    assert session.state == State.UP
    assert sum(session.counters.dropped.values()) == 1


@given(st.integers(0, 52 * 8 - 1), st.integers(0, 1000))
@settings(max_examples=500, deadline=None)
def test_a_flipped_bit_in_a_signed_packet_is_dropped(bit: int, seed: int) -> None:
    settings_ = AuthSettings.single(AuthType.KEYED_SHA1, "secret")
    sender = BfdSession(fast(auth=settings_), 99, random.Random(seed))
    (sent,) = sender.start(0.0)
    data = bytearray(sent.data)  # type: ignore[union-attr]
    data[bit // 8] ^= 1 << (bit % 8)
    receiver = _up_session(settings_)
    try:
        packet = decode(bytes(data))
    except MalformedPacketError:
        return
    receiver.receive(packet, 0.05)
    assert receiver.state == State.UP
    assert receiver.counters.packets_in == 0
