"""Myna's KEEPALIVE, NOTIFICATION, ROUTE-REFRESH and OPEN codec cross-checked against ExaBGP 5.

Data flow: direction 1 has ExaBGP (``exabgp_oracle``) build a message from a neutral value,
decodes it with ``speaker.messages.decode_wire`` and compares Myna's value, turned back into the
neutral form by ``neutral_form``, with what ExaBGP was asked to send. Direction 2 encodes Myna
values with ``speaker``'s encoders, decodes the bytes with ExaBGP and compares ExaBGP's neutral
value with the neutral form of what Myna was asked to send. ``test_session_settings_agree``
checks ``neutral_form.myna_negotiated`` against ExaBGP's own negotiation and against Myna's
``negotiate`` fed with ExaBGP's OPENs. The allowances for ExaBGP's quirks live in
``neutral_form`` and are described there; ExaBGP is a test oracle only.
"""

from __future__ import annotations

import pytest
from exabgp_oracle import (
    exa_decode,
    exa_encode_keepalive,
    exa_encode_notification,
    exa_encode_open,
    exa_encode_route_refresh,
    exabgp_family,
    negotiated_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from neutral_form import (
    FAMILY_NAME,
    IBGP,
    MYNA_AS,
    SESSIONS,
    exabgp_open_view,
    exabgp_sends_open,
    ip4_int,
    myna_negotiated,
    neutral_message,
    neutral_open,
)

from speaker.capabilities import (
    AddPathCapability,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    HostnameCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
    UnknownCapability,
)
from speaker.control_messages import (
    Notification,
    RouteRefresh,
    encode_keepalive,
    encode_notification,
    encode_route_refresh,
)
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated, negotiate
from speaker.open_message import Open, encode_open, open_for
from speaker.wire_codes import AS_TRANS, Family

pytestmark = pytest.mark.oracle

# ----------------------------------------------------------------------------- KEEPALIVE


def test_keepalive_both_directions() -> None:
    assert neutral_message(decode_wire(exa_encode_keepalive(), Negotiated())) == {
        "type": "keepalive"
    }
    assert exa_decode(encode_keepalive(), IBGP) == {"type": "keepalive"}
    assert encode_keepalive() == exa_encode_keepalive()


# ----------------------------------------------------------------------------- NOTIFICATION

NOTIFICATIONS = [
    Notification(1, 1, b""),
    Notification(1, 2, b"\x10\x01"),
    Notification(1, 3, b"\x09"),
    Notification(2, 2, b"\xfd\xe9"),
    Notification(2, 7, b"\x02\x00"),
    Notification(3, 1, b""),
    Notification(3, 11, b"\x40\x02\x02\x02\x00"),
    Notification(4, 0, b""),
    Notification(5, 3, b"\x02"),
    Notification(6, 1, b"\x00\x01\x01\x00\x00\x03\xe8"),
    Notification(6, 2, b""),
    Notification(6, 4, b""),
    Notification(6, 9, b"\x00\x01\xff"),
    Notification(7, 1, bytes(range(23))),
    Notification.shutdown("maintenance window 42"),
    Notification.shutdown("reset by operator", 4),
    Notification.shutdown("Wartungsfenster \u2013 \u00fcbrigens \u2603"),
    Notification.shutdown("x" * 300),  # cut to 255 octets (RFC 9003 section 2)
    Notification.shutdown("\u00e9" * 200, 4),  # cut without splitting a character
]


@pytest.mark.parametrize("notification", NOTIFICATIONS, ids=lambda n: f"{n.code}-{n.subcode}")
def test_notification_exabgp_to_myna(notification: Notification) -> None:
    wire = exa_encode_notification(notification.code, notification.subcode, notification.data)
    decoded = decode_wire(wire, Negotiated())
    assert neutral_message(decoded) == neutral_message(notification)
    assert isinstance(decoded, Notification)
    assert decoded.shutdown_text == notification.shutdown_text


@pytest.mark.parametrize("notification", NOTIFICATIONS, ids=lambda n: f"{n.code}-{n.subcode}")
def test_notification_myna_to_exabgp(notification: Notification) -> None:
    # For 6/2 and 6/4 the oracle reports the raw data octets (ExaBGP rewrites them).
    assert exa_decode(encode_notification(notification), IBGP) == neutral_message(notification)


@pytest.mark.parametrize(
    ("text", "subcode"),
    [("maintenance", 2), ("", 2), ("reset \u2603", 4), ("y" * 255, 2), ("z" * 256, 4)],
)
def test_shutdown_communication_layout(text: str, subcode: int) -> None:
    """RFC 9003: one length octet, then at most 255 octets of UTF-8; ExaBGP reads it raw."""
    notification = Notification.shutdown(text, subcode)
    raw = text.encode()[:255]
    assert notification.data == bytes((len(raw),)) + raw
    decoded = exa_decode(encode_notification(notification), IBGP)
    assert (decoded["code"], decoded["subcode"], decoded["data"]) == (6, subcode, notification.data)
    back = decode_wire(exa_encode_notification(6, subcode, notification.data), Negotiated())
    assert isinstance(back, Notification)
    assert back.shutdown_text == raw.decode()


# ----------------------------------------------------------------------------- ROUTE-REFRESH

ROUTE_REFRESHES = [RouteRefresh(a, 1, s) for a in (1, 2) for s in (0, 1, 2)]


@pytest.mark.parametrize("refresh", ROUTE_REFRESHES, ids=lambda r: f"afi{r.afi}-subtype{r.subtype}")
def test_route_refresh_both_directions(refresh: RouteRefresh) -> None:
    exa_wire = exa_encode_route_refresh(refresh.afi, refresh.safi, refresh.subtype)
    assert neutral_message(decode_wire(exa_wire, Negotiated())) == neutral_message(refresh)
    assert exa_decode(encode_route_refresh(refresh), IBGP) == neutral_message(refresh)
    assert encode_route_refresh(refresh) == exa_wire


# ----------------------------------------------------------------------------- OPEN

BGP_ID = ip4_int("198.18.0.9")
FULL_GR = GracefulRestartCapability(0x8 | 0x4, 120, ((1, 1, 0x80), (2, 1, 0)))

OPEN_CASES: dict[str, tuple[Capability, ...]] = {
    "none": (),
    "mp-v4": (MultiprotocolCapability(1, 1),),
    "mp-v4-v6": (MultiprotocolCapability(1, 1), MultiprotocolCapability(2, 1)),
    "route-refresh": (RouteRefreshCapability(),),
    "enhanced-route-refresh": (RouteRefreshCapability(), EnhancedRouteRefreshCapability()),
    "asn4-small": (FourOctetAsCapability(MYNA_AS),),
    "asn4-big": (FourOctetAsCapability(4200000000),),
    "gr-r-n-f": (FULL_GR,),
    "gr-r-only": (GracefulRestartCapability(0x8, 300, ((1, 1, 0x80), (2, 1, 0x80))),),
    "gr-n-only": (GracefulRestartCapability(0x4, 4095, ((2, 1, 0),)),),
    "gr-helper": (GracefulRestartCapability(0, 0, ()),),
    "gr-other-family-bits": (GracefulRestartCapability(0, 90, ((1, 1, 0xFF), (2, 1, 0x7F))),),
    "add-path": (AddPathCapability(((1, 1, 1), (2, 1, 3))),),
    "add-path-send": (AddPathCapability(((1, 1, 2),)),),
    "add-path-zero": (AddPathCapability(((1, 1, 3), (2, 1, 0))),),
    "ext-nexthop": (ExtendedNextHopCapability(((1, 1, 2),)),),
    "ext-nexthop-two": (ExtendedNextHopCapability(((1, 1, 2), (1, 2, 2))),),
    "ext-message": (ExtendedMessageCapability(),),
    "hostname": (HostnameCapability("router-1", "example.net"),),
    "hostname-no-domain": (HostnameCapability("r", ""),),
    "hostname-64": (HostnameCapability("h" * 64, "d" * 64),),
    "unknown": (UnknownCapability(200, b"\x01\x02\x03"),),
    "unknown-empty": (UnknownCapability(230, b""),),
    "calico-like": (
        MultiprotocolCapability(1, 1),
        MultiprotocolCapability(2, 1),
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
        FULL_GR,
        FourOctetAsCapability(4200000000),
        AddPathCapability(((1, 1, 3), (2, 1, 1))),
        ExtendedNextHopCapability(((1, 1, 2),)),
        ExtendedMessageCapability(),
        HostnameCapability("node-7", "cluster.example"),
        UnknownCapability(200, b"\xaa"),
    ),
    # RFC 9072: more than 255 octets of parameters take the extended length form.
    "extended-parameters": (
        MultiprotocolCapability(1, 1),
        UnknownCapability(200, b"\x00" * 100),
        UnknownCapability(201, b"\x01" * 100),
        UnknownCapability(202, b"\x02" * 100),
    ),
}


def open_with(capabilities: tuple[Capability, ...], asn: int = MYNA_AS) -> Open:
    four = [c.asn for c in capabilities if isinstance(c, FourOctetAsCapability)]
    return open_for(four[0] if four else asn, 90, BGP_ID, capabilities)


@pytest.mark.parametrize("name", OPEN_CASES)
def test_open_exabgp_to_myna(name: str) -> None:
    neutral = neutral_open(open_with(OPEN_CASES[name]))
    decoded = decode_wire(exa_encode_open(neutral), Negotiated())
    assert isinstance(decoded, Open)
    assert neutral_open(decoded) == exabgp_sends_open(neutral)
    if any(isinstance(c, FourOctetAsCapability) and c.asn > 0xFFFF for c in decoded.capabilities):
        assert decoded.asn == AS_TRANS
        assert decoded.real_asn == 4200000000


@pytest.mark.parametrize("name", OPEN_CASES)
def test_open_myna_to_exabgp(name: str) -> None:
    message = open_with(OPEN_CASES[name])
    wire = encode_open(message)
    if name == "extended-parameters":
        assert wire[28:30] == b"\xff\xff"  # RFC 9072 marker: length 255, type 255
    assert exa_decode(wire, IBGP) == exabgp_open_view(neutral_open(message))


def test_open_capability_order_and_llgr_myna_to_exabgp() -> None:
    """LLGR is unknown to ExaBGP 5: only Myna's encoding of it can be read back, as raw data."""
    message = open_with(
        (
            MultiprotocolCapability(1, 1),
            RouteRefreshCapability(),
            MultiprotocolCapability(2, 1),
            FULL_GR,
            LongLivedGracefulRestartCapability(((1, 1, 0x80, 300), (2, 1, 0, 0xFFFFFF))),
            UnknownCapability(200, b"abc"),
            FourOctetAsCapability(MYNA_AS),
        )
    )
    decoded = exa_decode(encode_open(message), IBGP)
    assert decoded == exabgp_open_view(neutral_open(message))
    llgr = [c for c in decoded["capabilities"] if c["code"] == 71]
    assert llgr == [{"code": 71, "data": bytes.fromhex("0001018000012c00020100ffffff")}]


HOSTNAME_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=64)


@st.composite
def capability_lists(draw: st.DrawFn) -> tuple[Capability, ...]:
    """Capabilities in the order ExaBGP can build (each code once, MP entries together)."""
    caps: list[Capability] = [
        MultiprotocolCapability(afi, 1)
        for afi in draw(st.lists(st.sampled_from([1, 2]), unique=True))
    ]
    family_flags = st.lists(
        st.tuples(st.sampled_from([(1, 1), (2, 1)]), st.integers(0, 255)),
        unique_by=lambda f: f[0],
    ).map(lambda fs: tuple((a, s, f) for (a, s), f in fs))
    options: list[st.SearchStrategy[Capability]] = [
        st.just(RouteRefreshCapability()),
        st.just(EnhancedRouteRefreshCapability()),
        st.just(ExtendedMessageCapability()),
        st.integers(1, 2**32 - 1).map(FourOctetAsCapability),
        st.builds(
            GracefulRestartCapability,
            st.sampled_from([0, 4, 8, 12]),
            st.integers(0, 4095),
            family_flags,
        ),
        st.lists(
            st.tuples(st.sampled_from([(1, 1), (2, 1)]), st.integers(1, 3)),
            unique_by=lambda f: f[0],
        ).map(lambda fs: AddPathCapability(tuple((a, s, d) for (a, s), d in fs))),
        st.just(ExtendedNextHopCapability(((1, 1, 2),))),
        st.builds(HostnameCapability, HOSTNAME_TEXT, HOSTNAME_TEXT | st.just("")),
        st.builds(
            UnknownCapability,
            st.sampled_from([9, 10, 72, 74, 76, 200, 230, 254]),
            st.binary(max_size=20),
        ),
    ]
    chosen = draw(st.lists(st.sampled_from(range(len(options))), unique=True))
    caps += [draw(options[i]) for i in chosen]
    return tuple(caps)


@settings(max_examples=150, deadline=None, database=None)
@given(capabilities=capability_lists(), hold_time=st.sampled_from([0, 3, 90, 65535]))
def test_open_property_both_directions(
    capabilities: tuple[Capability, ...], hold_time: int
) -> None:
    message = Open(open_with(capabilities).asn, hold_time, BGP_ID, capabilities)
    neutral = neutral_open(message)
    decoded = decode_wire(exa_encode_open(neutral), Negotiated())
    assert isinstance(decoded, Open)
    assert neutral_open(decoded) == exabgp_sends_open(neutral)
    assert exa_decode(encode_open(message), IBGP) == exabgp_open_view(neutral)


# ----------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("name", SESSIONS)
def test_session_settings_agree(name: str) -> None:
    """Myna's Negotiated twin equals ExaBGP's negotiation and Myna's own from ExaBGP's OPENs."""
    session = SESSIONS[name]
    neg = myna_negotiated(session)
    exa = negotiated_for(session)
    assert exa.asn4 == neg.asn4
    assert int(exa.msg_size) == neg.max_message_len
    assert int(exa.local_as) == neg.peer_as
    assert (int(exa.local_as) == int(exa.peer_as)) == neg.ibgp
    assert {(int(a), int(s)) for a, s in exa.families} == {(f.afi, f.safi) for f in neg.families}
    for family in Family:
        afi, safi = exabgp_family(FAMILY_NAME[family])
        assert bool(exa.addpath.send(afi, safi)) == (family in neg.add_path_send)
        assert bool(exa.addpath.receive(afi, safi)) == (family in neg.add_path_receive)
    assert ((1, 1, 2) in {(int(a), int(s), int(n)) for a, s, n in exa.nexthop}) == (
        neg.ipv4_nlri_ipv6_next_hop
    )
    # ExaBGP's own two OPENs, decoded and negotiated by Myna from Myna's seat.
    exabgp_open = decode_wire(bytes(exa.sent_open.message()), Negotiated())
    myna_open = decode_wire(bytes(exa.received_open.message()), Negotiated())
    assert isinstance(exabgp_open, Open)
    assert isinstance(myna_open, Open)
    assert negotiate(myna_open, exabgp_open, session.peer_as, session.local_as) == neg
