"""The codec's shortcuts agree with its general paths, byte for byte and outcome for outcome.

Data flow: ``decode_update`` tries a table-driven shortcut for the common one-prefix UPDATE
before ``_decode_update``, the general decoder; ``encode_attributes`` tries ``_common_block``
before the general encoders. Hypothesis builds the shapes the shortcuts aim at (one IPv4
prefix, ORIGIN, one AS_SEQUENCE, NEXT_HOP, MED/LOCAL_PREF present or not, 2- and 4-octet AS,
iBGP and eBGP) and mutates single octets of them, and each shortcut's answer is compared with
the general path's: the same ``Update`` (problems included), or the same NOTIFICATION.
"""

from __future__ import annotations

import pytest
from codec_strategies import u32, v4_next_hop, v4_prefix
from hypothesis import given, settings
from hypothesis import strategies as st

from speaker import path_attributes
from speaker.codec_errors import EncodeError, MessageError
from speaker.framing import MessageReader
from speaker.negotiated import Negotiated
from speaker.path_attributes import (
    ASN4,
    INTERNAL,
    WITH_NEXT_HOP,
    PathAttributes,
    encode_attributes,
)
from speaker.update_message import _decode_update, decode_update, encode_announcements
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST


def common_sets(asn4: bool) -> st.SearchStrategy[PathAttributes]:
    """The attribute sets the shortcuts are built for, and their near neighbours."""
    asn = st.integers(1, 0xFFFFFFFF if asn4 else 0xFFFF)
    segment = st.tuples(st.sampled_from([1, 2, 3, 4]), st.lists(asn, min_size=1, max_size=70))
    return st.builds(
        PathAttributes,
        origin=st.integers(0, 3),
        as_path=st.lists(segment.map(lambda s: (s[0], tuple(s[1]))), max_size=2).map(tuple),
        next_hop=v4_next_hop,
        med=st.none() | u32,
        local_pref=st.none() | u32,
    )


def outcome(decode: object, body: bytes, neg: Negotiated) -> object:
    try:
        return decode(body, neg)  # type: ignore[operator]
    except MessageError as exc:
        return ("reset", exc.code, exc.subcode, exc.data)


@settings(max_examples=400, deadline=None)
@given(
    asn4=st.booleans(),
    ibgp=st.booleans(),
    data=st.data(),
    flip=st.none() | st.tuples(st.integers(0, 200), st.integers(0, 255)),
)
def test_decode_shortcut_agrees_with_the_general_decoder(
    asn4: bool, ibgp: bool, data: st.DataObject, flip: tuple[int, int] | None
) -> None:
    attrs = data.draw(common_sets(asn4))
    prefix = data.draw(v4_prefix())
    sender = Negotiated(asn4=asn4, ibgp=ibgp)
    try:
        (wire,) = encode_announcements(V4, attrs, [prefix], sender)
    except EncodeError:  # a set the encoder refuses has nothing to decode
        return
    ((_, body),) = MessageReader().feed(wire)
    if flip is not None and flip[0] < len(body):
        body = body[: flip[0]] + bytes((flip[1],)) + body[flip[0] + 1 :]
    peer_as = data.draw(st.sampled_from([0, 64512]))
    neg = Negotiated(asn4=asn4, ibgp=ibgp, peer_as=peer_as)
    assert outcome(decode_update, body, neg) == outcome(_decode_update, body, neg)


@settings(max_examples=400, deadline=None)
@given(asn4=st.booleans(), data=st.data())
def test_common_block_agrees_with_the_general_encoder(asn4: bool, data: st.DataObject) -> None:
    attrs = data.draw(common_sets(asn4))
    for flags in (0, INTERNAL, WITH_NEXT_HOP, INTERNAL | WITH_NEXT_HOP):
        ctx = flags | (ASN4 if asn4 else 0)
        try:
            fast: object = encode_attributes(attrs, ctx)
        except Exception as exc:
            fast = type(exc)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(path_attributes, "_common_block", lambda _a, _c: None)
            try:
                general: object = encode_attributes(attrs, ctx)
            except Exception as exc:
                general = type(exc)
        assert fast == general, (attrs, ctx)
