"""Every malformed-message rule of the BGP RFCs, one table row per case, with its exact outcome.

One table (``CASES``, in ``rfc7606_cases``; its message builders and outcome records are in
``rfc7606_builders``) drives both sides, as FRR's ``lib/bgp_rfc7606.py`` does: each row builds a
message by hand from a valid baseline with exactly one thing changed, and names the outcome the
RFC requires. ``test_rule`` feeds the bytes to ``decode_wire`` and checks that outcome:

* ``reset(code, subcode, data)``: a ``MessageError`` carrying exactly that NOTIFICATION;
* ``withdraw(...)``: RFC 7606 treat-as-withdraw: no route kept, every announced prefix in
  ``unreach``, and exactly the listed ``UpdateProblem`` records;
* ``kept(...)``: the routes are installed; attributes named in ``absent`` are gone (attribute
  discard when ``problems`` lists ATTRIBUTE_DISCARD records, silently ignored when it is empty);
* ``decoded(...)``: a non-UPDATE message decodes to a value with the listed fields.

Rows cover RFC 7606 sections 3 (a to j), 4, 5.1 to 5.3 and 7.1 to 7.16, RFC 4271 sections 6.1,
6.2 (what the codec checks) and 6.3, RFC 4760, RFC 8950, RFC 8654, RFC 9072, RFC 6793 section 6
and RFC 7313 section 5. Expected outcomes come from the RFC text, not from Myna; where the RFCs
leave a detail open the row says UNCONFIRMED and pins what Myna does. The hypothesis test at the
end checks that mutated messages never raise anything but ``CodecError``. Addresses come from
198.18.0.0/15 and 2001:db8::/32 only; AS numbers from the documentation ranges (RFC 5398).
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc7606_builders import (
    AGGREGATOR4,
    AGGREGATOR_ID,
    AGGREGATOR_TRANS,
    AS4_ONLY,
    AS4_PATH,
    EBGP,
    EXT_MESSAGE,
    EXT_NEXT_HOP,
    IBGP,
    IBGP_2OCTET,
    OPT_T,
    Decoded,
    Kept,
    Outcome,
    Problem,
    Reset,
    Withdraw,
    attr,
    check_fields,
    msg,
    open_ext,
    open_msg,
    route_refresh,
    upd,
    upd2,
    upd6,
)
from rfc7606_cases import CASES

from speaker.codec_errors import CodecError, MessageError, UpdateAction
from speaker.framing import MessageReader
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated
from speaker.update_message import Update
from speaker.wire_codes import ErrorCode, Family, MessageType

# ---------------------------------------------------------------------------------------------
# The asserter


def _families(entries: object) -> dict[Family, set[int]]:
    out: dict[Family, set[int]] = {}
    for entry in entries:  # type: ignore[attr-defined]
        out.setdefault(entry.family, set()).update(entry.prefixes)
    return out


def _expected_families(spec: tuple[tuple[Family, tuple[int, ...]], ...]) -> dict[Family, set[int]]:
    out: dict[Family, set[int]] = {}
    for family, prefixes in spec:
        out.setdefault(family, set()).update(prefixes)
    return out


def _matches(want: Problem, got: tuple[int, int, int]) -> bool:
    return want[0] == got[0] and want[1] == got[1] and (want[2] is None or want[2] == got[2])


def _check_problems(
    update: Update, expected: tuple[Problem, ...], tolerate: tuple[Problem, ...]
) -> None:
    got = [(int(p.action), p.attr_type, p.subcode) for p in update.problems]
    shown = [(UpdateAction(a).name, t, s) for a, t, s in got]
    left = list(got)
    for want in expected:
        hit = next((g for g in left if _matches(want, g)), None)
        assert hit is not None, f"missing problem {want[0].name} {want[1:]}; got {shown}"
        left.remove(hit)
    extra = [g for g in left if not any(_matches(t, g) for t in tolerate)]
    assert not extra, f"unexpected problems {extra}; got {shown}"


def _check(message: object, expected: Outcome) -> None:
    if isinstance(expected, Decoded):
        assert isinstance(message, expected.kind), message
        for name, want in expected.fields:
            assert getattr(message, name) == want, name
        return
    assert isinstance(message, Update), message
    if isinstance(expected, Withdraw):
        assert message.reach == (), f"routes kept: {message.reach}"
        assert message.treat_as_withdraw
        assert _families(message.unreach) == _expected_families(expected.unreach)
        _check_problems(message, expected.problems, expected.tolerate)
        return
    assert isinstance(expected, Kept)
    assert not message.treat_as_withdraw, message.problems
    assert _families(message.reach) == _expected_families(expected.reach)
    assert _families(message.unreach) == _expected_families(expected.unreach)
    assert message.end_of_rib == expected.end_of_rib
    _check_problems(message, expected.problems, expected.tolerate)
    for reach in message.reach:
        check_fields(reach.attributes, expected.fields, expected.absent)


@pytest.mark.parametrize(
    ("wire", "neg", "expected"), [pytest.param(w, n, e, id=i) for i, w, n, e in CASES]
)
def test_rule(wire: bytes, neg: Negotiated, expected: Outcome) -> None:
    if isinstance(expected, Reset):
        with pytest.raises(MessageError) as info:
            decode_wire(wire, neg)
        err = info.value
        assert (int(err.code), err.subcode, err.data.hex()) == (
            expected.code,
            expected.subcode,
            expected.data.hex(),
        ), err.reason
        if expected.code == ErrorCode.MESSAGE_HEADER:
            # The session sees header errors from the stream reassembler, before any decoding.
            with pytest.raises(MessageError) as info:
                MessageReader(neg.max_message_len).feed(wire)
            err = info.value
            assert (int(err.code), err.subcode, err.data) == (
                expected.code,
                expected.subcode,
                expected.data,
            )
        return
    _check(decode_wire(wire, neg), expected)


def test_table_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------------
# Fuzz: whatever the bytes, only CodecError escapes.

SEEDS = (
    upd(),
    upd6(extra=attr(OPT_T, 8, b"\xfb\xf0\x00\x01") + AGGREGATOR4 + attr(OPT_T, 200, b"\x01")),
    upd2(
        extra=AGGREGATOR_TRANS
        + AS4_PATH
        + attr(OPT_T, 18, struct.pack(">I", AS4_ONLY) + AGGREGATOR_ID)
    ),
    open_msg(),
    open_ext(),
    route_refresh(1),
    msg(MessageType.NOTIFICATION, b"\x06\x02\x05hello"),
)
SESSIONS = (
    IBGP,
    EBGP,
    IBGP_2OCTET,
    EXT_NEXT_HOP,
    EXT_MESSAGE,
    Negotiated(add_path_receive=frozenset(Family)),
)

_edit = st.tuples(
    st.sampled_from(("set", "insert", "delete")), st.integers(0, 1 << 16), st.integers(0, 255)
)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(_edit, min_size=1, max_size=6),
    fix_length=st.booleans(),
    neg=st.sampled_from(SESSIONS),
)
def test_fuzz_mutated_messages_raise_only_codec_errors(
    seed: bytes,
    edits: list[tuple[str, int, int]],
    fix_length: bool,
    neg: Negotiated,
) -> None:
    data = bytearray(seed)
    for op, where, value in edits:
        # Half the edits land past the header, where the decoders are; fix_length then keeps
        # the framing valid so that the body decoders see the damage.
        at = where % (len(data) + 1)
        if where & 1 and len(data) > 19:
            at = 19 + (where >> 1) % (len(data) - 18)
        if op == "set" and at < len(data):
            data[at] = value
        elif op == "insert":
            data.insert(at, value)
        elif op == "delete" and at < len(data):
            del data[at]
    if fix_length and len(data) >= 19:
        data[16:18] = struct.pack(">H", len(data) & 0xFFFF)
    with contextlib.suppress(CodecError):
        decode_wire(bytes(data), neg)
