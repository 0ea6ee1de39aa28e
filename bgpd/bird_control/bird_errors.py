"""A session's last error as BIRD 1.6 words it on its control socket.

Data flow: ``PeerFsm.error`` (``speaker.session_connection.SessionError``: a class, Myna's text
and the NOTIFICATION) becomes the text after a BGP protocol's state in ``show protocols`` and
its ``Last error:`` line in ``show protocols all`` (``protocols.ProtocolView``).

BIRD 1.6.8 (``proto/bgp/bgp.c`` ``bgp_err_classes``, ``bgp_last_errmsg``; ``packets.c``
``bgp_msg_table``, ``bgp_error_dsc``): a class word, then for a socket error ``strerror()`` or
"Connection closed" (the peer closed it), for a NOTIFICATION either way the description of its
code and subcode ("Unknown error C.S" for codes its table lacks), and a fixed text for the rest.
An operator stop (BIRD's ``BE_MAN_DOWN``) shows nothing; an Established session shows nothing
(the FSM clears the error then, as ``bgp_conn_enter_established_state`` does).
"""

from __future__ import annotations

import errno
import os
import re

from speaker.session_connection import ErrorKind, SessionError

# packets.c bgp_msg_table, BIRD 1.6.8 (each text is in its binary); 8/0 is RFC 9687's, which
# BIRD 1.6 predates: BIRD 1.6 would print "Unknown error 8.0".
_DESCRIPTIONS: dict[tuple[int, int], str] = {
    (1, 0): "Invalid message header",
    (1, 1): "Connection not synchronized",
    (1, 2): "Bad message length",
    (1, 3): "Bad message type",
    (2, 0): "Invalid OPEN message",
    (2, 1): "Unsupported version number",
    (2, 2): "Bad peer AS",
    (2, 3): "Bad BGP identifier",
    (2, 4): "Unsupported optional parameter",
    (2, 5): "Authentication failure",
    (2, 6): "Unacceptable hold time",
    (2, 7): "Required capability missing",
    (2, 8): "No supported AFI/SAFI",
    (3, 0): "Invalid UPDATE message",
    (3, 1): "Malformed attribute list",
    (3, 2): "Unrecognized well-known attribute",
    (3, 3): "Missing mandatory attribute",
    (3, 4): "Invalid attribute flags",
    (3, 5): "Invalid attribute length",
    (3, 6): "Invalid ORIGIN attribute",
    (3, 7): "AS routing loop",
    (3, 8): "Invalid NEXT_HOP attribute",
    (3, 9): "Optional attribute error",
    (3, 10): "Invalid network field",
    (3, 11): "Malformed AS_PATH",
    (4, 0): "Hold timer expired",
    (5, 0): "Finite state machine error",
    (5, 1): "Unexpected message in OpenSent state",
    (5, 2): "Unexpected message in OpenConfirm state",
    (5, 3): "Unexpected message in Established state",
    (6, 0): "Cease",
    (6, 1): "Maximum number of prefixes reached",
    (6, 2): "Administrative shutdown",
    (6, 3): "Peer de-configured",
    (6, 4): "Administrative reset",
    (6, 5): "Connection rejected",
    (6, 6): "Other configuration change",
    (6, 7): "Connection collision resolution",
    (6, 8): "Out of Resources",
    (7, 0): "Invalid ROUTE-REFRESH message",
    (7, 1): "Invalid ROUTE-REFRESH message length",
    (8, 0): "Send hold timer expired",
}

_FIXED = {
    ErrorKind.BFD: "Error: BFD session down",
    ErrorKind.GRACEFUL: "Error: Graceful restart",
    ErrorKind.LIMIT: "Automatic shutdown: Route limit exceeded",
    ErrorKind.STOPPED: "",
    ErrorKind.OTHER: "",  # the hold timer under LLGR: BIRD's bgp_hold_timeout stores none
}


def error_description(code: int, subcode: int) -> str:
    """BIRD's ``bgp_error_dsc``."""
    return _DESCRIPTIONS.get((code, subcode), f"Unknown error {code}.{subcode}")


def bird_error(error: SessionError | None) -> str:
    """BIRD's class word and message for the session's last error ("" for none)."""
    if error is None:
        return ""
    fixed = _FIXED.get(error.kind)
    if fixed is not None:
        return fixed
    note = error.notification
    if note is not None and error.kind in (ErrorKind.SENT, ErrorKind.RECEIVED):
        word = "Received: " if error.kind == ErrorKind.RECEIVED else "BGP Error: "
        return word + error_description(note.code, note.subcode)
    if error.kind == ErrorKind.SOCKET:
        return "Socket: " + _socket_message(error.text)
    return f"BGP Error: {error.text}"  # a SENT or RECEIVED error always has its NOTIFICATION


def _socket_message(text: str) -> str:
    """``strerror()`` of the errno, or "Connection closed" when the peer closed the connection."""
    number = re.search(r"\[Errno (\d+)\]", text)
    if number is not None:
        return os.strerror(int(number.group(1)))
    if text.endswith("TimeoutError"):  # the transport's connect backstop: the kernel's words
        return os.strerror(errno.ETIMEDOUT)
    if text.endswith("closed by the peer"):
        return "Connection closed"
    detail = text.split(": ", 1)[-1]
    return detail[:1].upper() + detail[1:]
