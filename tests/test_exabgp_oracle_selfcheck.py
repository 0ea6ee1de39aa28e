"""Self-check of the ExaBGP oracle adapter: exa_decode(exa_encode_*(x)) == x, on its own.

Data flow: neutral values built here go through ``exabgp_oracle``'s encoders to wire bytes
made by ExaBGP, and back through its decoder; nothing touches Myna. ExaBGP is a test oracle
only. Where ExaBGP represents something its own way (see the oracle's docstring) the test
pins that documented behaviour instead of the round trip. Addresses come from 198.18.0.0/15
and 2001:db8::/32 only.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from exabgp.util.dns import host
from exabgp_oracle import (
    OracleDecodeError,
    OracleSession,
    exa_decode,
    exa_encode_keepalive,
    exa_encode_notification,
    exa_encode_open,
    exa_encode_route_refresh,
    exa_encode_update,
    merge_updates,
    negotiated_for,
)

pytestmark = pytest.mark.oracle

IBGP = OracleSession(local_as=65001, peer_as=65001)
EBGP = OracleSession(local_as=65001, peer_as=65002)
EBGP_2OCTET = OracleSession(local_as=65001, peer_as=65002, asn4=False)
ADD_PATH = OracleSession(local_as=65001, peer_as=65001, add_path=("ipv4-unicast", "ipv6-unicast"))
EXT_NEXTHOP = OracleSession(local_as=65001, peer_as=65001, ext_nexthop_ipv4_over_ipv6=True)
EXT_MESSAGE = OracleSession(local_as=65001, peer_as=65001, extended_message=True)

# On iBGP ExaBGP adds LOCAL_PREF 100 and an empty AS_PATH (which decodes as absent) when
# they are missing, so every iBGP announcement here carries its own.
BASE = {"origin": 0, "as_path": [(2, [65010])], "local_pref": 100}


def update(
    announced: list[tuple[str, str, int | None]] | None = None,
    next_hop: dict[str, str] | None = None,
    attributes: dict[str, Any] | None = None,
    withdrawn: list[tuple[str, str, int | None]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "update",
        "withdrawn": sorted(withdrawn or []),
        "announced": sorted(announced or []),
        "next_hop": next_hop or {},
        "attributes": attributes if attributes is not None else {},
        "eor": None,
    }


def v4(prefix: str, path_id: int | None = None) -> tuple[str, str, int | None]:
    return ("ipv4-unicast", prefix, path_id)


def v6(prefix: str, path_id: int | None = None) -> tuple[str, str, int | None]:
    return ("ipv6-unicast", prefix, path_id)


def roundtrip(neutral: dict[str, Any], session: OracleSession) -> dict[str, Any]:
    wires = exa_encode_update(neutral, session)
    assert wires, "ExaBGP encoded nothing"
    for wire in wires:
        assert wire[:16] == b"\xff" * 16
        assert struct.unpack("!H", wire[16:18])[0] == len(wire)
        assert wire[18] == 2
    return merge_updates([exa_decode(wire, session) for wire in wires])


def attribute_codes(wire: bytes) -> list[int]:
    """Type codes of the path attributes of one UPDATE, in wire order."""
    body = wire[19:]
    withdrawn_len = struct.unpack("!H", body[:2])[0]
    offset = 2 + withdrawn_len
    attrs_len = struct.unpack("!H", body[offset : offset + 2])[0]
    attrs = body[offset + 2 : offset + 2 + attrs_len]
    codes = []
    while attrs:
        flags, code = attrs[0], attrs[1]
        if flags & 0x10:
            length, header = struct.unpack("!H", attrs[2:4])[0], 4
        else:
            length, header = attrs[2], 3
        codes.append(code)
        attrs = attrs[header + length :]
    return codes


# ----------------------------------------------------------------------------- simple messages


def test_keepalive() -> None:
    wire = exa_encode_keepalive()
    assert wire == b"\xff" * 16 + b"\x00\x13\x04"
    assert exa_decode(wire, IBGP) == {"type": "keepalive"}


@pytest.mark.parametrize(
    ("code", "subcode", "data"),
    [
        (1, 2, b"\x10\x01"),
        (2, 2, b"\xfd\xe9"),
        (3, 1, b""),
        (4, 0, b""),
        (6, 2, b"\x08shutdown"),  # RFC 9003 Shutdown Communication: raw octets kept
        (6, 4, b""),
        (6, 9, b"\x00\x01\xff"),
    ],
)
def test_notification(code: int, subcode: int, data: bytes) -> None:
    wire = exa_encode_notification(code, subcode, data)
    assert wire[19:] == bytes([code, subcode]) + data
    assert exa_decode(wire, IBGP) == {
        "type": "notification",
        "code": code,
        "subcode": subcode,
        "data": data,
    }


@pytest.mark.parametrize(("afi", "safi", "subtype"), [(1, 1, 0), (2, 1, 0), (1, 1, 1), (2, 1, 2)])
def test_route_refresh(afi: int, safi: int, subtype: int) -> None:
    wire = exa_encode_route_refresh(afi, safi, subtype)
    assert len(wire) == 23
    assert exa_decode(wire, IBGP) == {
        "type": "route-refresh",
        "afi": afi,
        "safi": safi,
        "subtype": subtype,
    }


# ----------------------------------------------------------------------------- OPEN


def open_message(capabilities: list[dict[str, Any]], asn: int = 65001) -> dict[str, Any]:
    return {
        "type": "open",
        "version": 4,
        "asn": asn,
        "hold_time": 90,
        "router_id": "198.18.0.9",
        "capabilities": capabilities,
    }


FULL_CAPABILITIES: list[dict[str, Any]] = [
    {"code": 1, "afi": 1, "safi": 1},
    {"code": 1, "afi": 2, "safi": 1},
    {"code": 2},
    {"code": 70},
    {"code": 65, "asn": 4200000000},
    {
        "code": 64,
        "restart_flags": 8 | 4,
        "restart_time": 120,
        "families": [(1, 1, 0x80), (2, 1, 0)],
    },
    {"code": 69, "families": [(1, 1, 3), (2, 1, 1)]},
    {"code": 5, "entries": [(1, 1, 2)]},
    {"code": 6},
    {"code": 73, "hostname": "router-1", "domain": "example.net"},
    {"code": 71, "data": bytes.fromhex("0001018000012c")},
    {"code": 200, "data": b"\x01\x02\x03"},
]


@pytest.mark.parametrize(
    "capabilities",
    [
        [],
        [{"code": 1, "afi": 1, "safi": 1}],
        FULL_CAPABILITIES,
        [{"code": 65, "asn": 65001}, {"code": 1, "afi": 2, "safi": 1}, {"code": 2}],
        [{"code": 64, "restart_flags": 0, "restart_time": 4095, "families": []}],
        [{"code": 73, "hostname": "r", "domain": ""}],
    ],
    ids=["none", "mp", "full", "order", "gr-helper", "hostname-no-domain"],
)
def test_open(capabilities: list[dict[str, Any]]) -> None:
    neutral = open_message(capabilities, asn=23456)
    assert exa_decode(exa_encode_open(neutral), IBGP) == neutral


def test_open_extended_optional_parameters() -> None:
    """RFC 9072: more than 255 octets of parameters switches ExaBGP to the extended format."""
    capabilities = [{"code": 1, "afi": 1, "safi": 1}]
    # distinct codes: ExaBGP keeps one value per unknown code (the last one wins)
    capabilities += [{"code": 200 + n, "data": bytes([n]) * 100} for n in range(3)]
    neutral = open_message(capabilities)
    wire = exa_encode_open(neutral)
    assert wire[28:30] == b"\xff\xff"  # non-extended length and type octets are both 255
    assert exa_decode(wire, IBGP) == neutral


def test_open_llgr_families_cannot_be_encoded() -> None:
    cap = {"code": 71, "families": [(1, 1, 0x80, 300)]}
    with pytest.raises(ValueError, match="Long-Lived"):
        exa_encode_open(open_message([cap]))


def test_open_capability_code_out_of_order_is_refused() -> None:
    caps = [{"code": 1, "afi": 1, "safi": 1}, {"code": 2}, {"code": 1, "afi": 2, "safi": 1}]
    with pytest.raises(ValueError, match="out of order"):
        exa_encode_open(open_message(caps))


def test_open_graceful_restart_keeps_only_the_forwarding_bit() -> None:
    cap = {"code": 64, "restart_flags": 8, "restart_time": 90, "families": [(1, 1, 0xFF)]}
    decoded = exa_decode(exa_encode_open(open_message([cap])), IBGP)
    assert decoded["capabilities"] == [dict(cap, families=[(1, 1, 0x80)])]


def test_open_empty_hostname_capability_reads_the_local_hostname() -> None:
    """ExaBGP pre-fills HostName from this machine, so an empty capability is not ``""``."""
    decoded = exa_decode(exa_encode_open(open_message([{"code": 73, "data": b""}])), IBGP)
    assert decoded["capabilities"][0]["hostname"] == host()


# ----------------------------------------------------------------------------- UPDATE attributes


@pytest.mark.parametrize(
    "extra",
    [
        {"origin": 1},
        {"origin": 2},
        {"as_path": [(2, [65010, 65020]), (1, [65030, 65040])]},
        {"as_path": [(3, [65100, 65101]), (4, [65102]), (2, [65010])]},
        {"med": 0},
        {"med": 2**32 - 1},
        {"local_pref": 200},
        {"atomic_aggregate": True},
        {"aggregator": (65010, "198.18.0.7")},
        {"aggregator": (4200000000, "198.18.0.7")},
        {"communities": [0x0001_0002, 0xFDE9_0064, 0xFFFF_FF01]},
        {"originator_id": "198.18.0.5"},
        {"cluster_list": ["198.18.0.6", "198.18.0.7"]},
        {
            "extended_communities": [
                0x0002_FDE9_0000_0001,
                0x0102_C612_0001_0064,
                0x4300_0000_0000_0001,
            ]
        },
        {"large_communities": [(65001, 1, 2), (4200000000, 0, 2**32 - 1)]},
        {"unknown": [(0xE0, 99, b"\x01\x02\x03")]},
        {"unknown": [(0xE0, 99, bytes(range(256)) * 2)]},  # extended length
    ],
    ids="-".join,
)
def test_attribute_roundtrip_ipv4(extra: dict[str, Any]) -> None:
    neutral = update(
        [v4("198.18.1.0/24"), v4("198.18.128.0/17"), v4("198.19.0.1/32")],
        {"ipv4-unicast": "198.18.0.1"},
        {**BASE, **extra},
    )
    assert roundtrip(neutral, IBGP) == neutral


def test_long_as_sequence_is_split_into_255_and_the_rest() -> None:
    path = list(range(64512, 64512 + 300))
    neutral = update(
        [v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {**BASE, "as_path": [(2, path)]}
    )
    decoded = roundtrip(neutral, IBGP)
    assert decoded["attributes"]["as_path"] == [(2, path[:255]), (2, path[255:])]


def test_duplicate_unknown_capability_keeps_the_last_value() -> None:
    caps = [{"code": 200, "data": b"\x01"}, {"code": 200, "data": b"\x02"}]
    decoded = exa_decode(exa_encode_open(open_message(caps)), IBGP)
    assert decoded["capabilities"] == [{"code": 200, "data": b"\x02"}]


def test_all_attributes_together() -> None:
    attributes = {
        **BASE,
        "med": 5,
        "atomic_aggregate": True,
        "aggregator": (65010, "198.18.0.7"),
        "communities": [1, 2],
        "originator_id": "198.18.0.5",
        "cluster_list": ["198.18.0.6"],
        "extended_communities": [0x0002_FDE9_0000_0001],
        "large_communities": [(1, 2, 3)],
        "unknown": [(0xC0 | 0x20, 150, b"abc")],
    }
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, attributes)
    assert roundtrip(neutral, IBGP) == neutral


def test_communities_come_back_sorted() -> None:
    neutral = update(
        [v4("198.18.1.0/24")],
        {"ipv4-unicast": "198.18.0.1"},
        {**BASE, "communities": [3, 1, 2], "large_communities": [(2, 0, 0), (1, 0, 0)]},
    )
    decoded = roundtrip(neutral, IBGP)
    assert decoded["attributes"]["communities"] == [1, 2, 3]
    assert decoded["attributes"]["large_communities"] == [(1, 0, 0), (2, 0, 0)]


def test_otc_is_kept_as_an_unknown_attribute() -> None:
    """ExaBGP 5 does not know OTC (RFC 9234): it comes back generic, with Partial set."""
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {**BASE, "otc": 65003})
    decoded = roundtrip(neutral, IBGP)
    assert decoded["attributes"] == {**BASE, "unknown": [(0xE0, 35, struct.pack("!L", 65003))]}


def test_unknown_transitive_attribute_gains_partial_bit() -> None:
    neutral = update(
        [v4("198.18.1.0/24")],
        {"ipv4-unicast": "198.18.0.1"},
        {**BASE, "unknown": [(0xC0, 99, b"x")]},
    )
    assert roundtrip(neutral, IBGP)["attributes"]["unknown"] == [(0xE0, 99, b"x")]


def test_ebgp_defaults_and_local_pref() -> None:
    """ExaBGP adds ORIGIN and AS_PATH [local_as] when missing and never sends LOCAL_PREF on eBGP."""
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {"local_pref": 300})
    decoded = roundtrip(neutral, EBGP)
    assert decoded["attributes"] == {"origin": 0, "as_path": [(2, [65001])]}


def test_empty_as_path_decodes_as_absent() -> None:
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {**BASE, "as_path": []})
    decoded = roundtrip(neutral, IBGP)
    assert "as_path" not in decoded["attributes"]


# ------------------------------------------------------------------------ AS4, 2-octet session


@pytest.mark.parametrize(
    "attributes",
    [
        {"origin": 0, "as_path": [(2, [65002, 4200000000, 65003])]},
        {"origin": 0, "as_path": [(2, [4200000000]), (1, [4200000001, 65004])]},
        {"origin": 0, "as_path": [(2, [65002])], "aggregator": (4200000000, "198.18.0.7")},
        {"origin": 0, "as_path": [(2, [65002, 65003])], "aggregator": (65002, "198.18.0.7")},
    ],
)
def test_two_octet_session_as4(attributes: dict[str, Any]) -> None:
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, attributes)
    wires = exa_encode_update(neutral, EBGP_2OCTET)
    codes = attribute_codes(wires[0])
    needs_as4 = any(asn > 65535 for _, asns in attributes["as_path"] for asn in asns)
    assert (17 in codes) == needs_as4  # AS4_PATH generated only when needed
    assert (18 in codes) == (attributes.get("aggregator", (0,))[0] > 65535)
    assert b"\x5b\xa0" in wires[0] or not needs_as4  # AS_TRANS 23456 in the 2-octet path
    assert merge_updates([exa_decode(w, EBGP_2OCTET) for w in wires]) == neutral


def test_two_octet_session_merge_drops_leading_confed_segment() -> None:
    """Documented ExaBGP behaviour (RFC 6793 4.2.3 reconstruction takes no leading segment)."""
    attributes = {"origin": 0, "as_path": [(3, [65100]), (2, [4200000000, 65002])]}
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, attributes)
    decoded = roundtrip(neutral, EBGP_2OCTET)
    assert decoded["attributes"]["as_path"] == [(2, [4200000000, 65002])]
    assert roundtrip(neutral, EBGP) == neutral  # a four-octet session keeps it


def test_four_octet_session_still_merges_a_stray_as4_path() -> None:
    """Documented ExaBGP behaviour; RFC 6793 4.1 would discard the AS4_PATH here."""
    as4_path = (0xC0, 17, bytes.fromhex("0201fa56ea00"))  # AS_SEQUENCE [4200000000]
    neutral = update(
        [v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {**BASE, "unknown": [as4_path]}
    )
    decoded = roundtrip(neutral, IBGP)
    assert decoded["attributes"] == {**BASE, "as_path": [(2, [4200000000])]}


# ----------------------------------------------------------------- IPv6, next hops, ADD-PATH


@pytest.mark.parametrize(
    "next_hop", ["2001:db8::1", "2001:db8::1,fe80::1", "2001:db8:0:1::ffff,fe80::2:3"]
)
def test_ipv6_announcement(next_hop: str) -> None:
    neutral = update(
        [v6("2001:db8::/122"), v6("2001:db8:1::/48"), v6("2001:db8:ffff::1/128"), v6("::/0")],
        {"ipv6-unicast": next_hop},
        BASE,
    )
    assert roundtrip(neutral, IBGP) == neutral


def test_ipv6_link_local_next_hop_is_32_octets() -> None:
    neutral = update([v6("2001:db8:1::/48")], {"ipv6-unicast": "2001:db8::1,fe80::1"}, BASE)
    wire = exa_encode_update(neutral, IBGP)[0]
    global_ll = ipaddress.ip_address("2001:db8::1").packed + ipaddress.ip_address("fe80::1").packed
    assert b"\x00\x02\x01\x20" + global_ll in wire  # AFI 2, SAFI 1, next hop length 32


def test_withdrawals() -> None:
    v4_only = update(withdrawn=[v4("198.18.1.0/24"), v4("198.19.255.0/24")])
    v6_only = update(withdrawn=[v6("2001:db8::/122"), v6("2001:db8:1::/48")])
    assert roundtrip(v4_only, IBGP) == v4_only
    assert roundtrip(v6_only, IBGP) == v6_only


def test_mixed_withdrawals_carry_default_attributes_on_mp_unreach() -> None:
    """Documented ExaBGP behaviour: IPv4 NLRI in the same call put attributes on MP_UNREACH."""
    neutral = update(withdrawn=[v4("198.18.1.0/24"), v6("2001:db8::/122")])
    wires = exa_encode_update(neutral, EBGP)
    decoded = [exa_decode(w, EBGP) for w in wires]
    assert decoded[0] == update(withdrawn=[v4("198.18.1.0/24")])
    assert decoded[1] == update(
        withdrawn=[v6("2001:db8::/122")], attributes={"origin": 0, "as_path": [(2, [65001])]}
    )


@pytest.mark.parametrize("next_hop", ["2001:db8::1", "2001:db8::1,fe80::1"])
def test_ipv4_over_ipv6_next_hop(next_hop: str) -> None:
    """RFC 8950: ExaBGP 5 carries IPv4 NLRI in MP_REACH with an IPv6 next hop."""
    neutral = update([v4("198.18.1.0/24"), v4("198.19.0.0/16")], {"ipv4-unicast": next_hop}, BASE)
    wire = exa_encode_update(neutral, EXT_NEXTHOP)[0]
    assert 14 in attribute_codes(wire) and 3 not in attribute_codes(wire)
    assert roundtrip(neutral, EXT_NEXTHOP) == neutral


def test_ipv4_over_ipv6_next_hop_needs_the_capability() -> None:
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "2001:db8::1"}, BASE)
    wire = exa_encode_update(neutral, EXT_NEXTHOP)[0]
    with pytest.raises(OracleDecodeError) as error:
        exa_decode(wire, IBGP)
    assert (error.value.code, error.value.subcode) == (3, 9)


def test_add_path() -> None:
    announced = [
        v4("198.18.1.0/24", 0),
        v4("198.18.1.0/24", 1),
        v4("198.18.2.0/24", 2**32 - 1),
    ]
    v4_update = update(announced, {"ipv4-unicast": "198.18.0.1"}, BASE)
    v6_update = update(
        [v6("2001:db8::/122", 7), v6("2001:db8::/122", 8)], {"ipv6-unicast": "2001:db8::1"}, BASE
    )
    withdrawal = update(withdrawn=[v4("198.18.1.0/24", 1), v6("2001:db8::/122", 7)])
    for neutral in (v4_update, v6_update):
        assert roundtrip(neutral, ADD_PATH) == neutral
    decoded = [exa_decode(w, ADD_PATH) for w in exa_encode_update(withdrawal, ADD_PATH)]
    assert merge_updates(decoded)["withdrawn"] == withdrawal["withdrawn"]


# ----------------------------------------------------------------------------- sizes, EOR, errors


def many_prefixes(count: int) -> list[tuple[str, str, int | None]]:
    subnets = ipaddress.ip_network("198.18.0.0/15").subnets(new_prefix=27)
    return [v4(str(next(subnets))) for _ in range(count)]


@pytest.mark.parametrize(("session", "limit"), [(IBGP, 4096), (EXT_MESSAGE, 65535)])
def test_message_size(session: OracleSession, limit: int) -> None:
    neutral = update(many_prefixes(3000), {"ipv4-unicast": "198.18.0.1"}, BASE)
    wires = exa_encode_update(neutral, session)
    assert all(len(w) <= limit for w in wires)
    if limit == 4096:
        assert len(wires) > 1
    else:
        assert len(wires) == 1 and len(wires[0]) > 4096
    assert merge_updates([exa_decode(w, session) for w in wires]) == neutral


def test_extended_message_refused_without_the_capability() -> None:
    neutral = update(many_prefixes(3000), {"ipv4-unicast": "198.18.0.1"}, BASE)
    wire = exa_encode_update(neutral, EXT_MESSAGE)[0]
    with pytest.raises(OracleDecodeError) as error:
        exa_decode(wire, IBGP)
    assert (error.value.code, error.value.subcode) == (1, 2)


@pytest.mark.parametrize("family", ["ipv4-unicast", "ipv6-unicast"])
def test_end_of_rib(family: str) -> None:
    neutral = {
        "type": "update",
        "withdrawn": [],
        "announced": [],
        "next_hop": {},
        "attributes": {},
        "eor": family,
    }
    wires = exa_encode_update(neutral, IBGP)
    assert len(wires) == 1
    assert exa_decode(wires[0], IBGP) == neutral


def test_header_errors() -> None:
    keepalive = exa_encode_keepalive()
    with pytest.raises(OracleDecodeError) as error:
        exa_decode(b"\x00" + keepalive[1:], IBGP)
    assert (error.value.code, error.value.subcode) == (1, 1)
    with pytest.raises(OracleDecodeError) as error:
        exa_decode(keepalive[:16] + b"\x00\x14\x04\x00", IBGP)
    assert (error.value.code, error.value.subcode) == (1, 2)
    with pytest.raises(OracleDecodeError) as error:
        exa_decode(keepalive[:18] + b"\x09", IBGP)
    assert (error.value.code, error.value.subcode) == (1, 3)


def test_treat_as_withdraw() -> None:
    """A MED of 3 octets (RFC 7606 7.4): ExaBGP turns the announcement into a withdrawal."""
    wire = exa_encode_update(
        update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, {**BASE, "med": 1}), IBGP
    )[0]
    good_med = b"\x80\x04\x04\x00\x00\x00\x01"
    assert good_med in wire
    body = wire[19:].replace(good_med, b"\x80\x04\x03\x00\x00\x01")
    attrs_len = struct.unpack("!H", body[2:4])[0] - 1
    body = body[:2] + struct.pack("!H", attrs_len) + body[4:]
    bad = wire[:16] + struct.pack("!H", 19 + len(body)) + b"\x02" + body
    assert exa_decode(bad, IBGP) == update(withdrawn=[v4("198.18.1.0/24")])


def test_decode_is_pure_despite_the_attribute_cache() -> None:
    neutral = update([v4("198.18.1.0/24")], {"ipv4-unicast": "198.18.0.1"}, BASE)
    wire = exa_encode_update(neutral, IBGP)[0]
    assert exa_decode(wire, IBGP) == exa_decode(wire, IBGP) == neutral
    assert negotiated_for(IBGP).cached_wire  # ExaBGP did cache it ...
    other = update([v4("198.18.2.0/24")], {"ipv4-unicast": "198.18.0.1"}, BASE)
    assert exa_decode(exa_encode_update(other, IBGP)[0], IBGP) == other  # ... harmlessly
