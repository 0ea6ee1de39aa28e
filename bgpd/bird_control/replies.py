"""BIRD's reply framing, its time formats and its version line.

Data flow: a command handler returns a list of ``(code, text)`` lines; the last line is the
final one (BIRD's positive code). ``Framer.frame`` turns them into bytes exactly as BIRD's
``cli_printf`` does for one client: a line before the last starts with its four-digit code and
``-``, or with a single space when its code is the code of the line written just before (on
this connection: the memory spans commands, as BIRD's ``last_reply``); the last line starts
with its code and a space.

Times: BIRD prints protocol and route times with ``timeformat protocol``/``route``, by default
``%T`` within 20 hours and ``%F`` after (``conf/conf.c``), and ``show status`` times with
``%F %T``.
"""

from __future__ import annotations

import time

# Calico's BIRD says "BIRD v0.3.3+birdv1.6.8" (its sysdep/config.h); calico-node's status
# populator keeps what follows "BIRD " on a line starting "BIRD v". Myna says what it is after.
BIRD_VERSION = "v0.3.3+birdv1.6.8+myna"
SHORT_TIME_LIMIT = 20 * 3600  # seconds: BIRD's default protocol/route time format switch

Line = tuple[int, str]


def proto_time(stamp: float, now: float | None = None) -> str:
    """A protocol's or route's time: ``06:23:07`` within 20 hours, else ``2026-12-07``."""
    now = time.time() if now is None else now
    local = time.localtime(stamp)
    if now - stamp < SHORT_TIME_LIMIT:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d", local)


def full_time(stamp: float) -> str:
    """``show status`` times: ``2026-12-07 06:23:04``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


class Framer:
    """One client's framing state (see the module docstring)."""

    def __init__(self) -> None:
        self.last = -1

    def frame(self, lines: list[Line]) -> bytes:
        """The reply's bytes; the last line is final."""
        out = []
        for index, (code, text) in enumerate(lines):
            if index == len(lines) - 1:
                out.append(f"{code:04d} {text}")
            elif code == self.last:
                out.append(f" {text}")
            else:
                out.append(f"{code:04d}-{text}")
            self.last = code
        return ("\n".join(out) + "\n").encode()

    def frame_part(self, lines: list[Line]) -> bytes:
        """Lines of a reply that goes on (none of them final): a long table, piece by piece."""
        out = []
        for code, text in lines:
            out.append(f" {text}" if code == self.last else f"{code:04d}-{text}")
            self.last = code
        return ("\n".join(out) + "\n").encode() if out else b""
