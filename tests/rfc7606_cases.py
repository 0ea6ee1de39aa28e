"""The RFC error-handling table: every malformed-message rule of the BGP RFCs, one row per case.

Data flow: each row of ``CASES`` is (id, wire bytes, session, expected outcome), built with the
message builders and outcome records of ``rfc7606_builders`` from a valid baseline with exactly
one thing changed, as FRR's ``lib/bgp_rfc7606.py`` does; ``test_error_handling_table.py``
parametrizes ``test_rule`` over it and feeds each message to ``decode_wire``. Rows cover RFC 7606
sections 3 (a to j), 4, 5.1 to 5.3 and 7.1 to 7.16, RFC 4271 sections 6.1, 6.2 (what the codec
checks) and 6.3, RFC 4760, RFC 8950, RFC 8654, RFC 9072, RFC 6793 section 6 and RFC 7313
section 5. Expected outcomes come from the RFC text, not from Myna; where the RFCs leave a
detail open the row says UNCONFIRMED and pins what Myna does.
"""

from __future__ import annotations

import struct

from rfc7606_builders import (
    AGGREGATOR4,
    AGGREGATOR_ID,
    AGGREGATOR_SHORT,
    AGGREGATOR_TRANS,
    AS4_ONLY,
    AS4_PATH,
    ATOMIC_BAD,
    BIG_COUNT,
    BIG_OPEN,
    BIG_PREFIXES,
    CAP_MP,
    EBGP,
    EXT,
    EXT_COMMUNITY_UNKNOWN_TYPE,
    EXT_MESSAGE,
    EXT_NEXT_HOP,
    IBGP,
    IBGP_2OCTET,
    IPV6_EXT_COMMUNITY_UNKNOWN_TYPE,
    MP_REACH_V6,
    NEXT_HOP,
    NEXT_HOP_LONG,
    NH,
    NH6,
    NLRI1,
    NLRI6,
    OPEN_CAPS,
    OPEN_PARAMS,
    OPEN_XPARAMS,
    OPT,
    OPT_T,
    ORIGIN_BAD,
    OTHER_AS,
    P1,
    P2,
    P6,
    PARTIAL,
    PATH_2OCTET,
    PATH_MERGED,
    PEER_AS,
    UNKNOWN_WK,
    V4,
    V6,
    W2,
    WK,
    Outcome,
    ad,
    attr,
    attrs,
    big_update,
    decoded,
    ip,
    ip_int,
    kept,
    mp_reach,
    mp_unreach,
    msg,
    open_ext,
    open_msg,
    param,
    reset,
    route_refresh,
    segment,
    taw,
    unknown_has,
    upd,
    upd2,
    upd6,
    withdraw,
)

from speaker.control_messages import RouteRefresh
from speaker.negotiated import Negotiated
from speaker.open_message import Open
from speaker.wire_codes import (
    AS_TRANS,
    AttrType,
    ErrorCode,
    HeaderSubcode,
    OpenSubcode,
    RouteRefreshSubcode,
    UpdateSubcode,
)

# ---------------------------------------------------------------------------------------------
# The table: (id, wire bytes, session, expected outcome). One row per case.

U = ErrorCode.UPDATE_MESSAGE
H = ErrorCode.MESSAGE_HEADER
OPN = ErrorCode.OPEN_MESSAGE
S = UpdateSubcode

# The table keeps its hand layout: one case per row, read like the RFC lists.
# fmt: off
CASES: list[tuple[str, bytes, Negotiated, Outcome]] = [
    # --- baselines: the unchanged messages decode cleanly ---
    ("baseline-ibgp", upd(), IBGP,
     kept(origin=0, as_path=((2, (PEER_AS,)),), next_hop=NH, local_pref=100)),
    ("baseline-ipv6-mp-reach", upd6(), IBGP, kept(reach=((V6, (P6,)),), next_hop=NH6)),
    ("baseline-2octet-session", upd2(), IBGP_2OCTET, kept(as_path=PATH_2OCTET)),
    ("baseline-open", open_msg(), IBGP, decoded(Open, capabilities=OPEN_CAPS, asn=PEER_AS)),

    # --- RFC 4271 6.1 Message Header errors (also checked through MessageReader.feed) ---
    ("4271-6.1-marker-not-all-ones", msg(4, b"", marker=b"\xff" * 15 + b"\xfe"), IBGP,
     reset(H, HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED)),
    ("4271-6.1-length-below-19", msg(4, b"", length=18), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, b"\x00\x12")),
    ("4271-6.1-update-above-4096", big_update(BIG_COUNT), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack(">H", 4100))),
    ("4271-6.1-open-below-29", msg(1, b"\x04" + b"\x00" * 8), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, b"\x00\x1c")),
    ("4271-6.1-update-below-23", msg(2, b"\x00\x00\x00"), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, b"\x00\x16")),
    ("4271-6.1-keepalive-not-19", msg(4, b"\x00"), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, b"\x00\x14")),
    ("4271-6.1-notification-below-21", msg(3, b"\x06"), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, b"\x00\x14")),
    # RFC 4271 6.1 lists no ROUTE-REFRESH minimum; a short one is a ROUTE-REFRESH length error
    # (RFC 7313 5: 7/1 with the whole message), as for the BoRR row below.
    ("7313-5-route-refresh-body-3-octets", route_refresh(0, body=b"\x00\x01\x00"), IBGP,
     reset(ErrorCode.ROUTE_REFRESH, 1, route_refresh(0, body=b"\x00\x01\x00"))),
    ("4271-6.1-unknown-type-6", msg(6, b""), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_TYPE, b"\x06")),
    ("4271-6.1-unknown-type-0", msg(0, b""), IBGP,
     reset(H, HeaderSubcode.BAD_MESSAGE_TYPE, b"\x00")),
    ("8654-update-above-4096-with-extended-message", big_update(BIG_COUNT), EXT_MESSAGE,
     kept(reach=((V4, BIG_PREFIXES),))),
    ("8654-open-above-4096-even-with-extended-message", BIG_OPEN, EXT_MESSAGE,
     reset(H, HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack(">H", len(BIG_OPEN)))),

    # --- RFC 4271 6.2 OPEN: what the codec checks (structure of the optional parameters) ---
    ("4271-6.2-opt-param-length-exceeds-message", open_msg(opt_len=len(OPEN_PARAMS) + 1), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),
    # UNCONFIRMED: octets after the declared parameters; 2/0 "malformed" pinned (not 1/2).
    ("4271-6.2-opt-param-length-short-of-message", open_msg(opt_len=len(OPEN_PARAMS) - 1), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),
    ("4271-6.2-parameter-overruns-parameters", open_msg(param(2, CAP_MP)[:-1], opt_len=7), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),
    ("5492-capability-overruns-its-parameter", open_msg(bytes((2, 4)) + CAP_MP[:4]), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),
    ("4271-6.2-unsupported-parameter-type-1", open_msg(param(1, b"\x00") + OPEN_PARAMS), IBGP,
     reset(OPN, OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER)),
    ("4271-6.2-no-optional-parameters", open_msg(b""), IBGP, decoded(Open, capabilities=())),
    ("9072-extended-form-accepted", open_ext(), IBGP, decoded(Open, capabilities=OPEN_CAPS)),
    ("9072-extended-form-non-ext-len-not-255", open_ext(non_ext_len=1), IBGP,
     decoded(Open, capabilities=OPEN_CAPS)),
    ("9072-extended-length-zero", open_ext(b""), IBGP, decoded(Open, capabilities=())),
    ("9072-type-255-elsewhere-is-unsupported", open_msg(OPEN_PARAMS + param(255, b"")), IBGP,
     reset(OPN, OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER)),
    ("9072-extended-header-truncated",
     msg(1, struct.pack(">BHHI", 4, PEER_AS, 90, ip_int("198.18.0.1")) + b"\xff\xff\x00"), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),
    ("9072-extended-parameter-overruns", open_ext(OPEN_XPARAMS[:-1]), IBGP,
     reset(OPN, OpenSubcode.UNSPECIFIC)),

    # --- RFC 7313 section 5 ROUTE-REFRESH; data = the complete message, header included ---
    ("7313-5-borr-body-5-octets", route_refresh(1, b"\x00"), IBGP,
     reset(ErrorCode.ROUTE_REFRESH, RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
           route_refresh(1, b"\x00"))),
    ("7313-5-eorr-body-8-octets", route_refresh(2, b"\x00" * 4), IBGP,
     reset(ErrorCode.ROUTE_REFRESH, RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
           route_refresh(2, b"\x00" * 4))),
    # RFC 7313 5 names the length rule for subtypes 1 and 2 without a lower bound: a 3-octet
    # BoRR body is 7/1, not the derived RFC 2918 minimum (judgement call, see report).
    ("7313-5-borr-body-3-octets", route_refresh(1, body=b"\x00\x01\x01"), IBGP,
     reset(ErrorCode.ROUTE_REFRESH, RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
           route_refresh(1, body=b"\x00\x01\x01"))),
    # UNCONFIRMED: RFC 7313 is silent on subtype 0 with a bad length; Myna's 7/1 pinned.
    ("7313-5-normal-body-5-octets", route_refresh(0, b"\x00"), IBGP,
     reset(ErrorCode.ROUTE_REFRESH, RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
           route_refresh(0, b"\x00"))),
    # Unknown subtype: "MUST ignore the received ROUTE-REFRESH message" (the FSM ignores it).
    ("7313-5-unknown-subtype-decoded", route_refresh(3), IBGP,
     decoded(RouteRefresh, afi=1, safi=1, subtype=3)),
    ("7313-5-unknown-subtype-bad-length-ignored", route_refresh(3, b"\x00"), IBGP,
     decoded(RouteRefresh, afi=1, safi=1, subtype=3)),

    # --- RFC 7606 section 3 (amending RFC 4271 6.3) ---
    ("7606-3a-no-notification-for-taw-error", upd(extra=attr(OPT, 4, b"\x00\x01")), IBGP,
     withdraw(taw(AttrType.MULTI_EXIT_DISC, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-3b-withdrawn-length-overruns-message", upd(wlen=200), IBGP,
     reset(U, S.MALFORMED_ATTRIBUTE_LIST)),
    ("7606-3b-attribute-length-overruns-message", upd(alen=len(attrs()) + len(NLRI1) + 1), IBGP,
     reset(U, S.MALFORMED_ATTRIBUTE_LIST)),
    ("7606-3c-origin-flags-optional", upd(origin=attr(OPT_T, 1, b"\x00")), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.ATTRIBUTE_FLAGS_ERROR))),
    ("7606-3c-communities-flags-non-transitive", upd(extra=attr(OPT, 8, b"\xfb\xf0\x00\x01")),
     IBGP, withdraw(taw(AttrType.COMMUNITIES, S.ATTRIBUTE_FLAGS_ERROR))),
    ("7606-3c-originator-id-flags-well-known", upd(extra=attr(WK, 9, NH)), IBGP,
     withdraw(taw(AttrType.ORIGINATOR_ID, S.ATTRIBUTE_FLAGS_ERROR))),
    ("7606-3c/3e-med-flags-transitive", upd(extra=attr(OPT_T, 4, b"\x00\x00\x00\x01")), IBGP,
     withdraw(taw(AttrType.MULTI_EXIT_DISC, S.ATTRIBUTE_FLAGS_ERROR))),
    ("7606-3c/3e-next-hop-flags-optional", upd(next_hop=attr(OPT, 3, NH)), IBGP,
     withdraw(taw(AttrType.NEXT_HOP, S.ATTRIBUTE_FLAGS_ERROR))),
    ("7606-3c/3e-local-pref-flags-optional", upd(local_pref=attr(OPT_T, 5, b"\x00\x00\x00\x64")),
     IBGP, withdraw(taw(AttrType.LOCAL_PREF, S.ATTRIBUTE_FLAGS_ERROR))),
    # 3c says flags errors are treat-as-withdraw "unless the specification for the attribute
    # mandates different handling"; 3f says every reset case of AGGREGATOR/ATOMIC_AGGREGATE is
    # attribute discard. UNCONFIRMED which wins: 3f (attribute discard) pinned, as FRR does.
    ("7606-3c/3f-aggregator-flags-well-known", upd(extra=attr(WK, 7, AGGREGATOR4[3:])), IBGP,
     kept(ad(AttrType.AGGREGATOR, S.ATTRIBUTE_FLAGS_ERROR), absent=("aggregator",))),
    ("7606-3c/3f-atomic-aggregate-flags-optional", upd(extra=attr(OPT_T, 6, b"")), IBGP,
     kept(ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_FLAGS_ERROR), absent=("atomic_aggregate",))),
    # RFC 4271 4.3: the low four flag bits "MUST be ignored when received"; 7606 3c: only the
    # Optional and Transitive bits can conflict.
    ("4271-4.3-low-flag-bits-ignored", upd(origin=attr(WK | 0x0F, 1, b"\x02")), IBGP,
     kept(origin=2)),
    ("4271-4.3-extended-length-on-short-attribute", upd(origin=attr(WK | EXT, 1, b"\x01")), IBGP,
     kept(origin=1)),
    ("7606-3d-missing-origin", upd(origin=None), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.MISSING_WELL_KNOWN_ATTRIBUTE))),
    ("7606-3d-missing-as-path", upd(as_path=None), IBGP,
     withdraw(taw(AttrType.AS_PATH, S.MISSING_WELL_KNOWN_ATTRIBUTE))),
    ("7606-3d-missing-next-hop-with-ipv4-nlri", upd(next_hop=None), IBGP,
     withdraw(taw(AttrType.NEXT_HOP, S.MISSING_WELL_KNOWN_ATTRIBUTE))),
    ("7606-3d-missing-origin-with-mp-reach", upd6(origin=None), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.MISSING_WELL_KNOWN_ATTRIBUTE), unreach=((V6, (P6,)),))),
    # NLRI and no attributes at all: which missing attribute(s) get a record is not specified;
    # ORIGIN is required, AS_PATH and NEXT_HOP records are tolerated.
    ("7606-3d-nlri-without-any-attribute", upd(origin=None, as_path=None, next_hop=None,
                                               local_pref=None), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.MISSING_WELL_KNOWN_ATTRIBUTE),
              tolerate=(taw(AttrType.AS_PATH, S.MISSING_WELL_KNOWN_ATTRIBUTE),
                        taw(AttrType.NEXT_HOP, S.MISSING_WELL_KNOWN_ATTRIBUTE)))),
    ("7606-3d/4760-no-next-hop-needed-with-mp-reach-only", upd6(), IBGP,
     kept(reach=((V6, (P6,)),))),
    # UNCONFIRMED: LOCAL_PREF is not well-known mandatory (RFC 4271 5.1.5), though RFC 4760 3
    # requires it with MP_REACH on iBGP; Myna's acceptance is pinned.
    ("7606-3d-missing-local-pref-on-ibgp", upd(local_pref=None), IBGP,
     kept(absent=("local_pref",))),
    ("4271-5-mandatory-attributes-only-with-nlri",
     upd(nlri=b"", withdrawn=W2, origin=None, as_path=None, next_hop=None, local_pref=None,
         extra=attr(OPT, 4, b"\x00\x00\x00\x01")), IBGP,
     kept(reach=(), unreach=((V4, (P2,)),))),
    ("7606-3f-atomic-aggregate-length-1", upd(extra=ATOMIC_BAD), IBGP,
     kept(ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_LENGTH_ERROR), absent=("atomic_aggregate",))),
    ("7606-3g/7.11-mp-reach-twice", upd6(extra=MP_REACH_V6), IBGP,
     reset(U, S.MALFORMED_ATTRIBUTE_LIST)),
    ("7606-3g/7.12-mp-unreach-twice",
     upd(nlri=b"", first=mp_unreach(2, 1, NLRI6) + mp_unreach(2, 1, NLRI6)), IBGP,
     reset(U, S.MALFORMED_ATTRIBUTE_LIST)),
    # "all the occurrences ... other than the first one SHALL be discarded": no error is
    # required, so a discard record for the repeat is tolerated, not demanded.
    ("7606-3g-med-twice-first-kept",
     upd(extra=attr(OPT, 4, b"\x00\x00\x00\x01") + attr(OPT, 4, b"\x00\x00\x00\x02")), IBGP,
     kept(med=1, tolerate=(ad(AttrType.MULTI_EXIT_DISC, None),))),
    ("7606-3g-unrecognized-attribute-twice-first-kept",
     upd(extra=attr(OPT_T, 200, b"\x01") + attr(OPT_T, 200, b"\x02")), IBGP,
     kept(unknown=((OPT_T | PARTIAL, 200, b"\x01"),), tolerate=(ad(200, None),))),
    # The first AGGREGATOR is malformed (attribute discard), the second is a repeat: the repeat
    # is discarded too, so no AGGREGATOR survives.
    ("7606-3g-repeat-after-malformed-first-discarded",
     upd(extra=AGGREGATOR_SHORT + AGGREGATOR4), IBGP,
     kept(ad(AttrType.AGGREGATOR, S.ATTRIBUTE_LENGTH_ERROR), absent=("aggregator",),
          tolerate=(ad(AttrType.AGGREGATOR, None),))),
    ("7606-3h-withdraw-beats-discard", upd(origin=ORIGIN_BAD, extra=ATOMIC_BAD), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.INVALID_ORIGIN_ATTRIBUTE),
              ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-3h-two-discards-stay-discard", upd(extra=ATOMIC_BAD + AGGREGATOR_SHORT), IBGP,
     kept(ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_LENGTH_ERROR),
          ad(AttrType.AGGREGATOR, S.ATTRIBUTE_LENGTH_ERROR),
          absent=("atomic_aggregate", "aggregator"))),
    ("7606-3h-reset-beats-withdraw", upd(origin=ORIGIN_BAD, extra=UNKNOWN_WK), IBGP,
     reset(U, S.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, UNKNOWN_WK)),
    ("7606-3i-withdrawn-prefix-length-33", upd(withdrawn=b"\x21" + b"\xc6\x12\x02\x00\x00"), IBGP,
     reset(U, S.INVALID_NETWORK_FIELD)),
    ("7606-3i-withdrawn-prefix-overruns-field", upd(withdrawn=b"\x18\xc6\x12"), IBGP,
     reset(U, S.INVALID_NETWORK_FIELD)),
    ("7606-3j-taw-error-but-nlri-unparseable",
     upd(origin=ORIGIN_BAD, nlri=b"\x21\xc6\x12\x01\x00\x00"), IBGP,
     reset(U, S.INVALID_NETWORK_FIELD)),
    ("7606-3j-taw-error-but-mp-reach-unparseable",
     upd6(origin=ORIGIN_BAD, reach=mp_reach(2, 1, NH6, b"\x81" + b"\x20" * 17)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH6, b"\x81" + b"\x20" * 17))),

    # --- RFC 7606 section 4: attribute lengths against the Total Attribute Length. The NLRI is
    # found through the Total Attribute Length, so the announced prefix is withdrawn. Which
    # subcode the record carries is UNCONFIRMED (no NOTIFICATION is sent); Myna's is pinned.
    ("7606-4-last-attribute-overruns-total-length",
     upd(local_pref=attr(WK, 5, b"\x00\x00\x64", length=4)), IBGP,
     withdraw(taw(AttrType.LOCAL_PREF, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-4-fewer-than-3-octets-left", upd(local_pref=b"\x40\x05"), IBGP,
     withdraw(taw(0, S.MALFORMED_ATTRIBUTE_LIST))),
    ("7606-4-fewer-than-4-octets-left-extended-length", upd(local_pref=b"\x50\x05\x00"), IBGP,
     withdraw(taw(0, S.MALFORMED_ATTRIBUTE_LIST))),
    ("7606-4-zero-length-origin", upd(origin=attr(WK, 1, b"")), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-4-zero-length-med", upd(extra=attr(OPT, 4, b"")), IBGP,
     withdraw(taw(AttrType.MULTI_EXIT_DISC, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-4-zero-length-as-path-valid", upd(as_path=attr(WK, 2, b"")), IBGP, kept(as_path=())),
    ("7606-4-zero-length-atomic-aggregate-valid", upd(extra=attr(WK, 6, b"")), IBGP,
     kept(atomic_aggregate=True)),

    # --- RFC 7606 5.1: fields in any position or combination (MP_REACH last, IPv4 NLRI too) ---
    ("7606-5.1-mp-reach-last-plus-ipv4-nlri", upd(extra=MP_REACH_V6), IBGP,
     kept(reach=((V4, (P1,)), (V6, (P6,))))),

    # --- RFC 7606 5.2: attributes but no reachable NLRI ---
    # Reset with the subcode and data RFC 4271 gives the error (3/5: the attribute).
    ("7606-5.2-no-nlri-taw-error-resets", upd(nlri=b"", origin=attr(WK, 1, b"\x00\x00")), IBGP,
     reset(U, S.ATTRIBUTE_LENGTH_ERROR, attr(WK, 1, b"\x00\x00"))),
    ("7606-5.2-withdrawn-only-taw-error-resets",
     upd(nlri=b"", withdrawn=W2, next_hop=NEXT_HOP_LONG), IBGP,
     reset(U, S.ATTRIBUTE_LENGTH_ERROR, NEXT_HOP_LONG)),
    ("7606-5.2-no-nlri-invalid-origin-resets", upd(nlri=b"", origin=ORIGIN_BAD), IBGP,
     reset(U, S.INVALID_ORIGIN_ATTRIBUTE, ORIGIN_BAD)),
    ("7606-5.2-no-nlri-discard-error-stays-discard", upd(nlri=b"", extra=ATOMIC_BAD), IBGP,
     kept(ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_LENGTH_ERROR), reach=())),
    ("7606-5.2-eor-empty-update", msg(2, b"\x00\x00\x00\x00"), IBGP,
     kept(reach=(), end_of_rib=V4)),
    ("7606-5.2-eor-mp-unreach-only", upd(nlri=b"", origin=None, as_path=None, next_hop=None,
                                         local_pref=None, first=mp_unreach(2, 1, b"")), IBGP,
     kept(reach=(), end_of_rib=V6)),
    ("4271-6.3-valid-attributes-without-nlri", upd(nlri=b""), IBGP, kept(reach=())),

    # --- RFC 7606 5.3: syntactic correctness of NLRI fields (session reset; RFC 4760 7 names
    # Optional Attribute Error with the attribute as data for MP_REACH/MP_UNREACH) ---
    ("7606-5.3-nlri-prefix-length-33", upd(nlri=b"\x21\xc6\x12\x01\x00\x00"), IBGP,
     reset(U, S.INVALID_NETWORK_FIELD)),
    ("7606-5.3-nlri-prefix-overruns-field", upd(nlri=b"\x1a\xc6\x12"), IBGP,
     reset(U, S.INVALID_NETWORK_FIELD)),
    ("7606-5.3-mp-reach-ipv6-prefix-length-129",
     upd6(reach=mp_reach(2, 1, NH6, b"\x81" + b"\x20" * 17)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH6, b"\x81" + b"\x20" * 17))),
    ("7606-5.3-mp-reach-ipv4-prefix-length-33",
     upd6(reach=mp_reach(1, 1, NH, b"\x21\xc6\x12\x01\x00\x00")), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(1, 1, NH, b"\x21\xc6\x12\x01\x00\x00"))),
    ("7606-5.3-mp-reach-prefix-overruns-attribute", upd6(reach=mp_reach(2, 1, NH6, NLRI6[:-1])),
     IBGP, reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH6, NLRI6[:-1]))),
    ("7606-5.3-mp-unreach-ipv6-prefix-length-129",
     upd(nlri=b"", first=mp_unreach(2, 1, b"\x81" + b"\x20" * 17)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_unreach(2, 1, b"\x81" + b"\x20" * 17))),
    ("7606-5.3-mp-unreach-prefix-overruns-attribute",
     upd(nlri=b"", first=mp_unreach(2, 1, NLRI6[:-1])), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_unreach(2, 1, NLRI6[:-1]))),
    ("7606-5.3-mp-reach-length-below-5",
     upd6(reach=attr(OPT, 14, struct.pack(">HBB", 2, 1, 0))), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, attr(OPT, 14, struct.pack(">HBB", 2, 1, 0)))),
    ("7606-5.3-mp-unreach-length-below-3", upd(nlri=b"", first=attr(OPT, 15, b"\x00\x02")),
     IBGP, reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, attr(OPT, 15, b"\x00\x02"))),
    # UNCONFIRMED subcode: RFC 4271 6.3 gives 3/4 for flags, RFC 4760 7 gives 3/9 for an
    # "incorrect" MP attribute; Myna's 3/4 (as FRR) pinned. Data: the attribute either way.
    ("7606-5.3-mp-reach-flags-transitive", upd6(reach=mp_reach(2, 1, NH6, NLRI6, flags=OPT_T)),
     IBGP, reset(U, S.ATTRIBUTE_FLAGS_ERROR, mp_reach(2, 1, NH6, NLRI6, flags=OPT_T))),
    ("7606-5.3-mp-unreach-flags-well-known",
     upd(nlri=b"", first=mp_unreach(2, 1, NLRI6, flags=WK)), IBGP,
     reset(U, S.ATTRIBUTE_FLAGS_ERROR, mp_unreach(2, 1, NLRI6, flags=WK))),

    # --- RFC 7606 section 7, one attribute at a time ---
    ("7606-7.1-origin-length-2", upd(origin=attr(WK, 1, b"\x00\x00")), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.1-origin-undefined-value-3", upd(origin=ORIGIN_BAD), IBGP,
     withdraw(taw(AttrType.ORIGIN, S.INVALID_ORIGIN_ATTRIBUTE))),
    ("7606-7.2-as-path-unrecognized-segment-type", upd(as_path=attr(WK, 2, segment(5, (PEER_AS,)))),
     IBGP, withdraw(taw(AttrType.AS_PATH, S.MALFORMED_AS_PATH))),
    ("7606-7.2-as-path-segment-overrun",
     upd(as_path=attr(WK, 2, bytes((2, 2)) + struct.pack(">I", PEER_AS))), IBGP,
     withdraw(taw(AttrType.AS_PATH, S.MALFORMED_AS_PATH))),
    ("7606-7.2-as-path-one-octet-underrun",
     upd(as_path=attr(WK, 2, segment(2, (PEER_AS,)) + b"\x02")), IBGP,
     withdraw(taw(AttrType.AS_PATH, S.MALFORMED_AS_PATH))),
    ("7606-7.2-as-path-segment-length-zero",
     upd(as_path=attr(WK, 2, segment(2, (PEER_AS,)) + b"\x02\x00")), IBGP,
     withdraw(taw(AttrType.AS_PATH, S.MALFORMED_AS_PATH))),
    ("7606-7.2-ebgp-leftmost-as-not-the-peer",
     upd(as_path=attr(WK, 2, segment(2, (OTHER_AS,))), local_pref=None), EBGP,
     withdraw(taw(AttrType.AS_PATH, S.MALFORMED_AS_PATH))),
    ("7606-7.3-next-hop-length-5", upd(next_hop=NEXT_HOP_LONG), IBGP,
     withdraw(taw(AttrType.NEXT_HOP, S.ATTRIBUTE_LENGTH_ERROR))),
    # RFC 4271 6.3 3/8: NEXT_HOP "syntactically incorrect" (not a valid IP host address);
    # 7606 3e turns it into treat-as-withdraw.
    ("4271-6.3/7606-3e-next-hop-not-a-host-address", upd(next_hop=attr(WK, 3, b"\x00" * 4)),
     IBGP, withdraw(taw(AttrType.NEXT_HOP, S.INVALID_NEXT_HOP_ATTRIBUTE))),
    ("7606-7.4-med-length-3", upd(extra=attr(OPT, 4, b"\x00\x00\x01")), IBGP,
     withdraw(taw(AttrType.MULTI_EXIT_DISC, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.5-local-pref-from-ebgp-ignored", upd(), EBGP, kept(absent=("local_pref",))),
    ("7606-7.5-malformed-local-pref-from-ebgp-ignored",
     upd(local_pref=attr(WK, 5, b"\x00\x64")), EBGP, kept(absent=("local_pref",))),
    ("7606-7.5-local-pref-ibgp-length-2", upd(local_pref=attr(WK, 5, b"\x00\x64")), IBGP,
     withdraw(taw(AttrType.LOCAL_PREF, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.6-atomic-aggregate-length-1", upd(extra=attr(WK, 6, b"\x01")), IBGP,
     kept(ad(AttrType.ATOMIC_AGGREGATE, S.ATTRIBUTE_LENGTH_ERROR), absent=("atomic_aggregate",))),
    ("7606-7.7-aggregator-length-6-on-4-octet-session", upd(extra=AGGREGATOR_SHORT), IBGP,
     kept(ad(AttrType.AGGREGATOR, S.ATTRIBUTE_LENGTH_ERROR), absent=("aggregator",))),
    ("7606-7.7-aggregator-length-8-on-2-octet-session", upd2(extra=AGGREGATOR4), IBGP_2OCTET,
     kept(ad(AttrType.AGGREGATOR, S.ATTRIBUTE_LENGTH_ERROR), absent=("aggregator",))),
    ("7606-7.8-communities-length-5", upd(extra=attr(OPT_T, 8, b"\xfb\xf0\x00\x01\x00")), IBGP,
     withdraw(taw(AttrType.COMMUNITIES, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.8-communities-length-0", upd(extra=attr(OPT_T, 8, b"")), IBGP,
     withdraw(taw(AttrType.COMMUNITIES, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.9-originator-id-from-ebgp-ignored", upd(local_pref=None, extra=attr(OPT, 9, NH)),
     EBGP, kept(absent=("originator_id",))),
    ("7606-7.9-originator-id-ibgp-length-3", upd(extra=attr(OPT, 9, NH[:3])), IBGP,
     withdraw(taw(AttrType.ORIGINATOR_ID, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.10-cluster-list-from-ebgp-ignored", upd(local_pref=None, extra=attr(OPT, 10, NH)),
     EBGP, kept(absent=("cluster_list",))),
    ("7606-7.10-cluster-list-ibgp-length-6", upd(extra=attr(OPT, 10, NH + b"\x00\x01")), IBGP,
     withdraw(taw(AttrType.CLUSTER_LIST, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.10-cluster-list-ibgp-length-0", upd(extra=attr(OPT, 10, b"")), IBGP,
     withdraw(taw(AttrType.CLUSTER_LIST, S.ATTRIBUTE_LENGTH_ERROR))),
    # 7.11: an unexpected next hop length is session reset (or AFI/SAFI disable); RFC 4760 7:
    # Optional Attribute Error, data the attribute.
    ("7606-7.11-ipv6-next-hop-length-4", upd6(reach=mp_reach(2, 1, NH, NLRI6)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH, NLRI6))),
    ("7606-7.11-ipv6-next-hop-length-24", upd6(reach=mp_reach(2, 1, NH6 + NH6[:8], NLRI6)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH6 + NH6[:8], NLRI6))),
    ("7606-7.11-next-hop-length-overruns-attribute",
     upd6(reach=mp_reach(2, 1, NH6, NLRI6, nh_len=200)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(2, 1, NH6, NLRI6, nh_len=200))),
    # RFC 2545: 32 = global + link-local. The second address is from 2001:db8::/32 by the
    # addressing rule of these tests; the codec checks the length only.
    ("7606-7.11-ipv6-next-hop-length-32-accepted",
     upd6(reach=mp_reach(2, 1, NH6 + ip("2001:db8::2"), NLRI6)), IBGP,
     kept(reach=((V6, (P6,)),), next_hop=NH6 + ip("2001:db8::2"))),
    ("7606-7.11/8950-ipv6-next-hop-for-ipv4-without-capability",
     upd6(reach=mp_reach(1, 1, NH6, NLRI1)), IBGP,
     reset(U, S.OPTIONAL_ATTRIBUTE_ERROR, mp_reach(1, 1, NH6, NLRI1))),
    ("8950-ipv6-next-hop-for-ipv4-with-capability", upd6(reach=mp_reach(1, 1, NH6, NLRI1)),
     EXT_NEXT_HOP, kept(next_hop=NH6)),
    ("4760-3-mp-reach-reserved-octet-ignored", upd6(reach=mp_reach(2, 1, NH6, NLRI6, reserved=7)),
     IBGP, kept(reach=((V6, (P6,)),), next_hop=NH6)),
    ("4760-3-next-hop-attribute-ignored-with-mp-reach-only", upd6(next_hop=NEXT_HOP), IBGP,
     kept(reach=((V6, (P6,)),), next_hop=NH6)),
    # 7.12 MP_UNREACH_NLRI: see 3g/7.12 and the 5.3 rows; a plain withdrawal decodes.
    ("7606-7.12-mp-unreach-withdraws", upd(nlri=b"", origin=None, as_path=None, next_hop=None,
                                           local_pref=None, first=mp_unreach(2, 1, NLRI6)), IBGP,
     kept(reach=(), unreach=((V6, (P6,)),))),
    # 7.13 Traffic Engineering (24) is not an attribute Myna knows. It is optional
    # non-transitive, so RFC 4271 5 applies: "quietly ignored and not passed along". Its 7.13
    # malformation (treat-as-withdraw) cannot be detected; the route stays.
    ("7606-7.13-traffic-engineering-unknown-to-myna", upd(extra=attr(OPT, 24, b"\x01")), IBGP,
     kept(absent=("unknown",))),
    ("7606-7.14-extended-communities-length-9", upd(extra=attr(OPT_T, 16, b"\x00" * 9)), IBGP,
     withdraw(taw(AttrType.EXTENDED_COMMUNITIES, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.14-extended-communities-length-0", upd(extra=attr(OPT_T, 16, b"")), IBGP,
     withdraw(taw(AttrType.EXTENDED_COMMUNITIES, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.14-unknown-extended-community-type-not-an-error",
     upd(extra=attr(OPT_T, 16, EXT_COMMUNITY_UNKNOWN_TYPE)), IBGP,
     kept(extended_communities=(int.from_bytes(EXT_COMMUNITY_UNKNOWN_TYPE, "big"),))),
    ("7606-7.15-ipv6-extended-communities-length-21", upd(extra=attr(OPT_T, 25, b"\x00" * 21)),
     IBGP, withdraw(taw(AttrType.IPV6_EXTENDED_COMMUNITIES, S.ATTRIBUTE_LENGTH_ERROR))),
    ("7606-7.15-unknown-ipv6-extended-community-type-not-an-error",
     upd(extra=attr(OPT_T, 25, IPV6_EXT_COMMUNITY_UNKNOWN_TYPE)), IBGP,
     kept(unknown=unknown_has(25, IPV6_EXT_COMMUNITY_UNKNOWN_TYPE))),
    # 7.16 ATTR_SET (128) is not an attribute Myna knows. It is optional transitive, so
    # RFC 4271 5 applies: passed along with the Partial bit set. A malformed one (here 2 octets,
    # shorter than its 4-octet Origin AS) cannot be detected: kept, no treat-as-withdraw.
    ("7606-7.16-attr-set-unknown-to-myna", upd(extra=attr(OPT_T, 128, b"\xfb\xf0")), IBGP,
     kept(unknown=((OPT_T | PARTIAL, 128, b"\xfb\xf0"),))),

    # --- RFC 4271 6.3, the rows RFC 7606 leaves as they were ---
    ("4271-6.3-unrecognized-well-known-attribute", upd(extra=UNKNOWN_WK), IBGP,
     reset(U, S.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, UNKNOWN_WK)),
    ("4271-6.3-unrecognized-well-known-attribute-extended-length",
     upd(extra=attr(WK | EXT, 99, b"\x01")), IBGP,
     reset(U, S.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, attr(WK | EXT, 99, b"\x01"))),
    ("4271-5-unrecognized-optional-transitive-kept-partial", upd(extra=attr(OPT_T, 200, b"\x01")),
     IBGP, kept(unknown=((OPT_T | PARTIAL, 200, b"\x01"),))),

    # --- RFC 6793: AS4_PATH / AS4_AGGREGATOR. Section 6: malformed -> discard the attribute and
    # continue, "SHOULD be logged" (an ATTRIBUTE_DISCARD record is Myna's log of an UPDATE). No
    # RFC names a subcode for these records: not asserted. ---
    ("6793-4.2.3-as4-path-merged", upd2(extra=AS4_PATH), IBGP_2OCTET, kept(as_path=PATH_MERGED)),
    ("6793-6-as4-path-odd-length",
     upd2(extra=attr(OPT_T, 17, segment(2, (AS4_ONLY,)) + b"\x00")), IBGP_2OCTET,
     kept(ad(AttrType.AS4_PATH, None), as_path=PATH_2OCTET)),
    ("6793-6-as4-path-shorter-than-6", upd2(extra=attr(OPT_T, 17, b"\x02\x01\x00\x01")),
     IBGP_2OCTET, kept(ad(AttrType.AS4_PATH, None), as_path=PATH_2OCTET)),
    ("6793-6-as4-path-segment-length-zero",
     upd2(extra=attr(OPT_T, 17, b"\x02\x00" + struct.pack(">I", AS4_ONLY))), IBGP_2OCTET,
     kept(ad(AttrType.AS4_PATH, None), as_path=PATH_2OCTET)),
    ("6793-6-as4-path-segment-overruns",
     upd2(extra=attr(OPT_T, 17, b"\x02\x02" + struct.pack(">I", AS4_ONLY))), IBGP_2OCTET,
     kept(ad(AttrType.AS4_PATH, None), as_path=PATH_2OCTET)),
    ("6793-6-as4-path-undefined-segment-type",
     upd2(extra=attr(OPT_T, 17, segment(5, (AS4_ONLY,)))), IBGP_2OCTET,
     kept(ad(AttrType.AS4_PATH, None), as_path=PATH_2OCTET)),
    # Confederation segments in AS4_PATH: drop those segments, keep the rest, log.
    ("6793-6-as4-path-confed-segments-dropped",
     upd2(extra=attr(OPT_T, 17, segment(3, (AS4_ONLY + 1,)) + segment(2, (AS4_ONLY,)))),
     IBGP_2OCTET, kept(ad(AttrType.AS4_PATH, None), as_path=PATH_MERGED)),
    ("6793-6-as4-aggregator-length-not-8",
     upd2(extra=AGGREGATOR_TRANS + attr(OPT_T, 18, struct.pack(">H", OTHER_AS) + AGGREGATOR_ID)),
     IBGP_2OCTET,
     kept(ad(AttrType.AS4_AGGREGATOR, None), aggregator=(AS_TRANS, ip_int("198.18.0.9")))),
    # 4.2.3: an AGGREGATOR that is not AS_TRANS makes both AS4 attributes ignored (not an error).
    ("6793-4.2.3-aggregator-not-as-trans-ignores-as4-attributes",
     upd2(extra=AGGREGATOR_SHORT + AS4_PATH
          + attr(OPT_T, 18, struct.pack(">I", AS4_ONLY) + AGGREGATOR_ID)), IBGP_2OCTET,
     kept(as_path=PATH_2OCTET, aggregator=(OTHER_AS, ip_int("198.18.0.9")),
          tolerate=(ad(AttrType.AS4_PATH, None), ad(AttrType.AS4_AGGREGATOR, None)))),
    # Between NEW speakers the attributes "MUST NOT be carried": discard, continue, log.
    ("6793-4.1/6-as4-path-between-new-speakers-discarded", upd(extra=AS4_PATH), IBGP,
     kept(ad(AttrType.AS4_PATH, None), as_path=((2, (PEER_AS,)),))),
    ("6793-4.1/6-as4-aggregator-between-new-speakers-discarded",
     upd(extra=AGGREGATOR4 + attr(OPT_T, 18, struct.pack(">I", AS4_ONLY) + AGGREGATOR_ID)), IBGP,
     kept(ad(AttrType.AS4_AGGREGATOR, None), aggregator=(OTHER_AS, ip_int("198.18.0.9")))),
]
# fmt: on
