"""The reassembler: whole messages from any TCP chunking, and RFC 4271 6.1 header errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speaker.codec_errors import MessageError
from speaker.control_messages import Notification, encode_keepalive, encode_notification
from speaker.framing import MessageReader, frame
from speaker.wire_codes import MessageType

MESSAGES = [
    encode_keepalive(),
    encode_notification(Notification(6, 2, b"\x03bye")),
    frame(MessageType.UPDATE, b"\x00\x00\x00\x00"),
    frame(MessageType.UPDATE, b"\x00\x00\x00\x00" + bytes(3000)),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(MESSAGES), min_size=1, max_size=12), st.data())
def test_any_chunking_yields_the_same_messages(messages: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    reader = MessageReader()
    got = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got.extend(reader.feed(stream[start:cut]))
        start = cut
    assert [frame(MessageType(t), body) for t, body in got] == messages
    assert reader.buffered == 0


def header(length: int, mtype: int, marker: bytes = b"\xff" * 16) -> bytes:
    return marker + length.to_bytes(2, "big") + bytes((mtype,))


@pytest.mark.parametrize(
    ("wire", "subcode", "data"),
    [
        (header(19, 4, b"\xff" * 15 + b"\xfe"), 1, b""),
        (header(18, 4), 2, b"\x00\x12"),
        (header(20, 4) + b"\x00", 2, b"\x00\x14"),  # KEEPALIVE must be exactly 19
        (header(28, 1) + bytes(9), 2, b"\x00\x1c"),  # OPEN below 29
        (header(22, 2) + bytes(3), 2, b"\x00\x16"),  # UPDATE below 23
        (header(20, 3) + bytes(1), 2, b"\x00\x14"),  # NOTIFICATION below 21
        (header(4097, 2), 2, b"\x10\x01"),  # above 4096 without extended messages
        (header(19, 6), 3, b"\x06"),
        (header(19, 0), 3, b"\x00"),
    ],
    ids=[
        "marker",
        "short",
        "keepalive-long",
        "open-short",
        "update-short",
        "notification-short",
        "too-long",
        "type-6",
        "type-0",
    ],
)
def test_header_errors(wire: bytes, subcode: int, data: bytes) -> None:
    with pytest.raises(MessageError) as err:
        MessageReader().feed(wire)
    assert (err.value.code, err.value.subcode, err.value.data) == (1, subcode, data)


def test_extended_messages_raise_the_limit_but_not_for_open_or_keepalive() -> None:
    reader = MessageReader()
    reader.enable_extended_messages()
    big_update = frame(MessageType.UPDATE, b"\x00\x00\x00\x00" + bytes(60000))
    assert reader.feed(big_update)[0][0] == MessageType.UPDATE
    with pytest.raises(MessageError) as err:
        MessageReader(65535).feed(header(5000, 1) + bytes(4981))
    assert (err.value.code, err.value.subcode) == (1, 2)


def test_partial_message_waits_for_the_rest() -> None:
    reader = MessageReader()
    wire = MESSAGES[3]
    assert reader.feed(wire[:100]) == []
    assert reader.buffered == 100
    assert len(reader.feed(wire[100:])) == 1
