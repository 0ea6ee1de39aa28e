"""decode(encode(m)) == m for generated messages, plus the encoder's packing and caching rules."""

from __future__ import annotations

import pytest
from codec_strategies import V4, V6, notifications, opens, path_attributes, route_refreshes, updates
from hypothesis import given, settings
from hypothesis import strategies as st

from speaker.capabilities import UnknownCapability
from speaker.codec_errors import EncodeError
from speaker.control_messages import (
    Keepalive,
    Notification,
    encode_keepalive,
    encode_notification,
    encode_route_refresh,
)
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated
from speaker.nlri import prefix_from_text
from speaker.open_message import Open, encode_open
from speaker.path_attributes import ASN4, ATTRIBUTES, INTERNAL, WITH_NEXT_HOP, PathAttributes
from speaker.update_message import (
    Update,
    encode_announcements,
    encode_end_of_rib,
    encode_update,
    encode_withdrawals,
)

NEG = Negotiated()
ADD_PATH = frozenset({V4, V6})
NEG_ADD_PATH = Negotiated(add_path_receive=ADD_PATH, add_path_send=ADD_PATH)
NEG_AS2 = Negotiated(asn4=False)
ROUNDTRIP = settings(max_examples=300, deadline=None)


def roundtrip(update: Update, neg: Negotiated) -> None:
    try:
        wire = encode_update(update, neg)
    except EncodeError:
        # Generated values occasionally exceed 4096 octets; the property is about the rest.
        return
    assert len(wire) <= neg.max_message_len
    assert decode_wire(wire, neg) == update


@ROUNDTRIP
@given(updates())
def test_update_roundtrip(update: Update) -> None:
    roundtrip(update, NEG)


@ROUNDTRIP
@given(updates(add_path=ADD_PATH))
def test_update_roundtrip_with_add_path(update: Update) -> None:
    roundtrip(update, NEG_ADD_PATH)


@ROUNDTRIP
@given(updates(asn4=False))
def test_update_roundtrip_on_a_two_octet_session(update: Update) -> None:
    # Large ASNs travel as AS_TRANS plus AS4_PATH / AS4_AGGREGATOR and are merged back.
    roundtrip(update, NEG_AS2)


@ROUNDTRIP
@given(opens)
def test_open_roundtrip(message: object) -> None:
    assert decode_wire(encode_open(message), NEG) == message  # type: ignore[arg-type]


def test_open_with_long_parameters_uses_rfc9072_form() -> None:
    message = Open(
        64512, 90, 0xC6120001, tuple(UnknownCapability(200 + i, bytes(40)) for i in range(8))
    )
    wire = encode_open(message)
    assert wire[28] == 255 and wire[29] == 255  # non-extended length 255, type 255
    assert decode_wire(wire, NEG) == message


@ROUNDTRIP
@given(notifications)
def test_notification_roundtrip(message: Notification) -> None:
    assert decode_wire(encode_notification(message), NEG) == message


@ROUNDTRIP
@given(route_refreshes)
def test_route_refresh_roundtrip(message: object) -> None:
    assert decode_wire(encode_route_refresh(message), NEG) == message  # type: ignore[arg-type]


def test_keepalive() -> None:
    assert encode_keepalive() == b"\xff" * 16 + b"\x00\x13\x04"
    assert decode_wire(encode_keepalive(), NEG) == Keepalive()


@pytest.mark.parametrize("family", [V4, V6])
def test_end_of_rib(family: object) -> None:
    assert decode_wire(encode_end_of_rib(family), NEG).end_of_rib is family  # type: ignore[arg-type, union-attr]


def blocks(count: int) -> list[int]:
    base = 0xC6120000
    return [((base + i * 64) << 8) | 26 for i in range(count)]


ATTRS = PathAttributes(as_path=((2, (64512,)),), next_hop=bytes((198, 18, 0, 1)), local_pref=100)
ATTRS6 = ATTRS._replace(next_hop=bytes.fromhex("20010db8" + "00" * 11 + "01"))


@pytest.mark.parametrize(
    ("family", "attrs", "prefixes"),
    [
        (V4, ATTRS, blocks(5000)),
        (V6, ATTRS6, [((0x20010DB8 << 96 | i << 6) << 8) | 122 for i in range(3000)]),
        (
            V4,
            ATTRS,
            [prefix_from_text(p) for p in ("198.18.0.0/15", "198.18.7.0/24", "198.19.0.1/32")]
            * 700,
        ),
    ],
    ids=["ipv4-blocks", "ipv6-blocks", "mixed-lengths"],
)
def test_announcements_fill_each_message_and_lose_nothing(
    family: object, attrs: PathAttributes, prefixes: list[int]
) -> None:
    messages = encode_announcements(family, attrs, prefixes, NEG)  # type: ignore[arg-type]
    assert all(len(m) <= 4096 for m in messages)
    # Every message but the last is full: adding one more prefix would not have fitted.
    assert all(len(m) > 4096 - 18 for m in messages[:-1])
    decoded = [decode_wire(m, NEG) for m in messages]
    assert [p for u in decoded for r in u.reach for p in r.prefixes] == prefixes  # type: ignore[union-attr]
    assert all(u.reach[0].attributes is decoded[0].reach[0].attributes for u in decoded)  # type: ignore[union-attr]


def test_extended_messages_carry_more_per_update() -> None:
    neg = Negotiated(extended_message=True)
    messages = encode_announcements(V4, ATTRS, blocks(20000), neg)
    assert max(len(m) for m in messages) > 60000
    assert sum(len(decode_wire(m, neg).reach[0].prefixes) for m in messages) == 20000  # type: ignore[union-attr]


def test_withdrawals_roundtrip_both_families() -> None:
    for family, prefixes in ((V4, blocks(3000)), (V6, [((0x20010DB8 << 96) << 8) | 32] * 5)):
        messages = encode_withdrawals(family, prefixes, NEG)
        got = [p for m in messages for u in decode_wire(m, NEG).unreach for p in u.prefixes]  # type: ignore[union-attr]
        assert got == prefixes


def test_attribute_set_encoded_once_and_shared() -> None:
    attrs = ATTRS._replace(med=4242)
    first = encode_announcements(V4, attrs, blocks(3000), NEG)
    block = ATTRIBUTES.wire(attrs, ASN4 | WITH_NEXT_HOP | INTERNAL)
    assert (
        ATTRIBUTES.wire(attrs, ASN4 | WITH_NEXT_HOP | INTERNAL) is block
    )  # cached, not re-encoded
    assert all(block in m for m in first)
    # Equal sets decoded from different UPDATEs are one object.
    a = decode_wire(first[0], NEG).reach[0].attributes  # type: ignore[union-attr]
    b = decode_wire(first[1], NEG).reach[0].attributes  # type: ignore[union-attr]
    assert a is b


def test_sweep_forgets_sets_nobody_holds() -> None:
    ATTRIBUTES.sweep()
    before = len(ATTRIBUTES)
    held = ATTRIBUTES.intern(ATTRS._replace(med=1))
    ATTRIBUTES.intern(ATTRS._replace(med=2))
    assert len(ATTRIBUTES) == before + 2
    assert ATTRIBUTES.sweep() >= 1
    assert ATTRIBUTES.intern(ATTRS._replace(med=1)) is held
    assert len(ATTRIBUTES) == before + 1


def test_too_large_attribute_set_is_our_error() -> None:
    huge = ATTRS._replace(communities=tuple(range(1100)))
    with pytest.raises(EncodeError):
        encode_announcements(V4, huge, blocks(1), NEG)


@settings(max_examples=100, deadline=None)
@given(path_attributes(st.just(bytes((198, 18, 0, 9)))))
def test_attribute_sets_survive_reencoding(attrs: PathAttributes) -> None:
    messages = encode_announcements(V4, attrs, blocks(2), NEG)
    assert decode_wire(messages[0], NEG).reach[0].attributes == attrs  # type: ignore[union-attr]
