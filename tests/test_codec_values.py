"""Prefix ints, OPEN parameters and negotiation, NOTIFICATION text, AS4 merging, the CLI."""

from __future__ import annotations

import pytest

from bgpd.cli import main
from speaker.capabilities import (
    AddPathCapability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    MultiprotocolCapability,
)
from speaker.codec_errors import MessageError
from speaker.control_messages import Notification, encode_notification
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated, negotiate
from speaker.nlri import NlriError, decode_prefixes, encoded_prefixes, prefix_from_text, prefix_text
from speaker.open_message import Open, encode_open, open_for
from speaker.path_attributes import PathAttributes
from speaker.update_message import encode_announcements
from speaker.wire_codes import AS_TRANS, Family, community_text, error_name

V4, V6 = Family.IPV4_UNICAST, Family.IPV6_UNICAST


@pytest.mark.parametrize(
    "text",
    [
        "198.18.0.0/15",
        "198.18.3.64/26",
        "198.19.255.255/32",
        "0.0.0.0/0",
        "2001:db8::/32",
        "2001:db8:1::40/122",
        "2001:db8::1/128",
    ],
)
def test_prefix_text_roundtrip(text: str) -> None:
    family = V6 if ":" in text else V4
    prefix = prefix_from_text(text)
    assert prefix_text(prefix, family) == text
    bits = family.address_bits
    wire = b"".join(encoded_prefixes([prefix], bits))
    assert decode_prefixes(wire, 0, len(wire), bits) == [prefix]


def test_host_bits_on_the_wire_are_ignored() -> None:
    # RFC 4271 4.3: trailing bits of the last octet are irrelevant.
    assert decode_prefixes(bytes((26, 198, 18, 0, 0x7F)), 0, 5, 32) == [
        prefix_from_text("198.18.0.64/26")
    ]


@pytest.mark.parametrize(
    "wire", [bytes((33, 1, 2, 3, 4, 5)), bytes((24, 198, 18)), bytes((26, 198, 18, 0, 64, 26))]
)
def test_bad_nlri(wire: bytes) -> None:
    with pytest.raises(NlriError):
        decode_prefixes(wire, 0, len(wire), 32)


def test_negotiation_intersects_capabilities() -> None:
    ours = open_for(
        4200000001,
        90,
        0xC6120001,
        (
            MultiprotocolCapability(1, 1),
            MultiprotocolCapability(2, 1),
            FourOctetAsCapability(4200000001),
            AddPathCapability(((1, 1, 3), (2, 1, 1))),
            ExtendedMessageCapability(),
            ExtendedNextHopCapability(((1, 1, 2),)),
        ),
    )
    assert ours.asn == AS_TRANS and ours.real_asn == 4200000001
    theirs = Open(
        64512,
        90,
        0xC6120002,
        (
            MultiprotocolCapability(1, 1),
            FourOctetAsCapability(64512),
            AddPathCapability(((1, 1, 2),)),
        ),
    )
    neg = negotiate(ours, theirs, 4200000001, 64512)
    assert neg == Negotiated(
        asn4=True,
        ibgp=False,
        peer_as=64512,
        families=frozenset({V4}),
        add_path_receive=frozenset({V4}),
        add_path_send=frozenset(),
        extended_message=False,
        ipv4_nlri_ipv6_next_hop=False,
    )


def test_no_multiprotocol_capability_means_ipv4_only() -> None:
    neg = negotiate(Open(1, 90, 1), Open(1, 90, 2), 1, 1)
    assert neg.families == frozenset({V4}) and not neg.asn4 and neg.ibgp


def test_unsupported_optional_parameter() -> None:
    wire = bytearray(encode_open(Open(64512, 90, 1)))
    wire[28] = 3
    wire += b"\x01\x01\x00"  # type 1 (deprecated authentication)
    wire[16:18] = len(wire).to_bytes(2, "big")
    with pytest.raises(MessageError) as err:
        decode_wire(bytes(wire), Negotiated())
    assert (err.value.code, err.value.subcode) == (2, 4)


def test_shutdown_communication() -> None:
    message = Notification.shutdown("maintenance: moving to rack 7 ✓")
    got = decode_wire(encode_notification(message), Negotiated())
    assert got.shutdown_text == "maintenance: moving to rack 7 ✓"  # type: ignore[union-attr]
    assert 'Administrative Shutdown (6/2): "maintenance' in got.describe()  # type: ignore[union-attr]
    long = Notification.shutdown("é" * 200)
    assert len(long.data) <= 256 and long.shutdown_text == "é" * 127


def test_invalid_shutdown_text_is_not_interpreted() -> None:
    assert Notification(6, 2, b"\x02\xff\xfe").shutdown_text is None
    assert Notification(6, 2, b"\x09ab").shutdown_text is None  # length overruns the data
    assert Notification(3, 2, b"\x01a").shutdown_text is None  # not a Cease 2/4
    assert "data=0201" in Notification(3, 1, b"\x02\x01").describe()


def test_as4_path_merge_rfc6793() -> None:
    # A 2-octet session: AS_PATH [65001 23456 23456 65002], AS4_PATH [4200000001 4200000002 65002].
    attrs = PathAttributes(
        as_path=((2, (65001, 4200000001, 4200000002, 65002)),),
        next_hop=bytes((198, 18, 0, 1)),
        aggregator=(4200000009, 0xC6120009),
    )
    neg = Negotiated(asn4=False)
    wire = encode_announcements(V4, attrs, [prefix_from_text("198.18.1.0/26")], neg)[0]
    assert AS_TRANS.to_bytes(2, "big") in wire
    assert decode_wire(wire, neg).reach[0].attributes == attrs  # type: ignore[union-attr]


def test_names_for_logs() -> None:
    assert error_name(6, 2) == "Cease/Administrative Shutdown (6/2)"
    assert error_name(3, 11) == "Update Message/Malformed As Path (3/11)"
    assert community_text(0xFFFFFF01) == "no_export"
    assert community_text((64512 << 16) | 80) == "64512:80"


def test_cli_decode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "ff" * 16 + "001304"]) == 0
    assert "Keepalive()" in capsys.readouterr().out
    assert main(["decode", "ff" * 16 + "001306"]) == 1
    assert "Bad Message Type (1/3)" in capsys.readouterr().out
