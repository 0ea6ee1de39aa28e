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
from speaker.nlri import _decode_mixed, decode_prefixes, encoded_prefixes, v4_entries_run
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


# -- IPv4 NLRI runs of one prefix length (speaker/nlri.py: _v4_run, v4_entries_run) -------------


@st.composite
def same_length_entries(draw: st.DrawFn) -> tuple[int, bytes]:
    """A run of wire entries of one prefix length, host bits set at random (count >= 8)."""
    plen = draw(st.integers(1, 32))
    count = draw(st.integers(8, 40))
    size = (plen + 7) >> 3
    raw = draw(st.lists(st.binary(min_size=size, max_size=size), min_size=count, max_size=count))
    return plen, b"".join(bytes((plen,)) + r for r in raw)


@given(same_length_entries())
@settings(max_examples=300)
def test_a_run_of_one_length_decodes_as_the_general_loop(case: tuple[int, bytes]) -> None:
    plen, data = case
    fast = decode_prefixes(data, 0, len(data), 32)
    assert fast == _decode_mixed(data, 0, len(data), 32)
    # Host bits are cleared on the way in, so the encoding is canonical and may differ from
    # the input only there.
    assert all(p & 0xFF == plen and (p >> 8) & ((1 << (32 - plen)) - 1) == 0 for p in fast)


@given(
    st.sampled_from([32, 128]),
    st.lists(st.tuples(st.integers(0, 128), st.binary(min_size=16, max_size=16)), max_size=30),
)
@settings(max_examples=300)
def test_decoded_prefixes_never_carry_host_bits(
    bits: int, entries: list[tuple[int, bytes]]
) -> None:
    # The RIB's run splitters (bgpd.bird_config.prefix_classes) rely on it for every length
    # mix: host bits set on the wire are cleared, whatever the path through the decoder.
    data = b"".join(
        bytes((plen % (bits + 1),)) + raw[: (plen % (bits + 1) + 7) >> 3] for plen, raw in entries
    )
    for prefix in decode_prefixes(data, 0, len(data), bits):
        plen = prefix & 0xFF
        assert (prefix >> 8) & ((1 << (bits - plen)) - 1) == 0, hex(prefix)


@given(st.lists(v4_prefix(), min_size=0, max_size=60), st.booleans())
@settings(max_examples=300)
def test_ipv4_entries_in_c_agree_with_one_by_one(prefixes: list[int], one_length: bool) -> None:
    if one_length and prefixes:
        plen = prefixes[0] & 0xFF
        prefixes = [(p & ~0xFF & _mask(plen)) | plen for p in prefixes]
    run = v4_entries_run(prefixes)
    lengths = {p & 0xFF for p in prefixes}
    if len(prefixes) < 8 or len(lengths) > 1:
        assert run is None
    else:
        assert run is not None
        blob, size = run
        assert blob == b"".join(encoded_prefixes(prefixes, 32))
        assert size == ((prefixes[0] & 0xFF) + 7) // 8 + 1
    # Whatever path encode_announcements takes, the prefixes come back in order.
    attrs = PathAttributes(next_hop=bytes((198, 18, 0, 1)))
    neg = Negotiated()
    back = [
        prefix
        for message in encode_announcements(V4, attrs, prefixes, neg)
        for _, body in MessageReader().feed(message)
        for reach in decode_update(body, neg).reach
        for prefix in reach.prefixes
    ]
    assert back == prefixes


def _mask(plen: int) -> int:
    return (((1 << plen) - 1) << (32 - plen)) << 8 | 0xFF


def test_values_that_are_no_ipv4_prefix_take_the_general_path() -> None:
    assert v4_entries_run([1 << 40] * 8) is None  # 33 bits of network
    assert v4_entries_run([-1] * 8) is None
    assert v4_entries_run([(1 << 8) | 33] * 8) is None  # a length over 32
