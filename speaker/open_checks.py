"""Judging a peer's OPEN (RFC 4271 section 6.2, RFC 6793, RFC 6286, RFC 5492).

Data flow: the session FSM hands in the OPEN it received, the OPEN it sent and the peer's
settings; back comes either the session's ``Negotiated`` value and hold time, or the
NOTIFICATION that refuses the OPEN, with a reason for the log saying whose fault it is.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from speaker.capabilities import Capability, MultiprotocolCapability, encode_capability
from speaker.control_messages import Notification
from speaker.negotiated import Negotiated, negotiate
from speaker.open_message import Open
from speaker.wire_codes import AS_TRANS, BGP_VERSION, ErrorCode, OpenSubcode


class OpenAccepted(NamedTuple):
    """The OPEN is acceptable: what the session runs with."""

    negotiated: Negotiated
    hold_time: int  # negotiated: the smaller of both, 0 for none


class OpenRefused(NamedTuple):
    """The OPEN must be answered with this NOTIFICATION."""

    notification: Notification
    reason: str


def _refuse(subcode: OpenSubcode, reason: str, data: bytes = b"") -> OpenRefused:
    return OpenRefused(Notification(ErrorCode.OPEN_MESSAGE, subcode, data), reason)


def check_open(
    received: Open, sent: Open, local_as: int, router_id: int, peer_as: int | None
) -> OpenAccepted | OpenRefused:
    """Accept or refuse ``received``; ``peer_as`` None takes the AS the peer announces."""
    if received.version != BGP_VERSION:
        # RFC 4271 6.2: the data is the largest version we support, as two octets.
        return _refuse(
            OpenSubcode.UNSUPPORTED_VERSION,
            f"the peer speaks BGP version {received.version}, we speak 4",
            struct.pack(">H", BGP_VERSION),
        )
    four = received.four_octet_asn
    if four is not None and four > 0xFFFF and received.asn != AS_TRANS:
        # RFC 6793 4.1: a large AS must go as AS_TRANS in the 2-octet field.
        return _refuse(
            OpenSubcode.BAD_PEER_AS,
            f"the peer's 2-octet AS {received.asn} disagrees with its 4-octet AS {four}",
        )
    if peer_as is not None and received.real_asn != peer_as:
        return _refuse(
            OpenSubcode.BAD_PEER_AS,
            f"the peer says AS {received.real_asn}, the config expects AS {peer_as}"
            " (fix one of the two)",
        )
    if received.bgp_id == 0:
        return _refuse(OpenSubcode.BAD_BGP_IDENTIFIER, "the peer's BGP identifier is 0")
    real_peer_as = received.real_asn
    if real_peer_as == local_as and received.bgp_id == router_id:
        # RFC 6286 2.2: inside one AS the identifiers must differ.
        return _refuse(
            OpenSubcode.BAD_BGP_IDENTIFIER,
            "the internal peer uses our own router id (give each node its own)",
        )
    if received.hold_time in (1, 2):
        return _refuse(
            OpenSubcode.UNACCEPTABLE_HOLD_TIME,
            f"the peer's hold time {received.hold_time} s is below RFC 4271's minimum of 3 s",
        )
    negotiated = negotiate(sent, received, local_as, real_peer_as)
    if not negotiated.families:
        ours = tuple(c for c in sent.capabilities if isinstance(c, MultiprotocolCapability))
        return _refuse(
            OpenSubcode.UNSUPPORTED_CAPABILITY,
            "no address family in common with the peer (check the families both sides enable)",
            b"".join(encode_capability(c) for c in ours),
        )
    return OpenAccepted(negotiated, min(received.hold_time, sent.hold_time))


def without_refused(
    capabilities: tuple[Capability, ...], refusal: Notification
) -> tuple[Capability, ...]:
    """Our capabilities minus those the peer refused (RFC 5492 section 5).

    A 2/7 lists the capabilities the peer will not take: they are left out of the next OPEN.
    A 2/4 (optional parameters unsupported) comes from a speaker without capabilities at all:
    the next OPEN carries none.
    """
    if refusal.code != ErrorCode.OPEN_MESSAGE:
        return capabilities
    if refusal.subcode == OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER:
        return ()
    if refusal.subcode != OpenSubcode.UNSUPPORTED_CAPABILITY:
        return capabilities
    refused: set[int] = set()
    data, pos = refusal.data, 0
    while pos + 2 <= len(data):
        refused.add(data[pos])
        pos += 2 + data[pos + 1]
    return tuple(c for c in capabilities if int(c.code) not in refused)
