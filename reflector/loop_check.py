"""RFC 4456 section 8 loop checks on receipt, and their rate-limited log.

Role: a route that carries our router id as ORIGINATOR_ID went out from us (or was reflected
for us) and came back; a route that carries our cluster id in its CLUSTER_LIST passed through
our cluster already (another reflector of the same cluster reflected it). Both are ignored:
treated as a withdrawal of that prefix from that peer, so a path the peer announced before is
removed too.

Data flow: the RIB core (``rib.rib_core``) holds one ``LoopCheck`` built from the router id and
the cluster id the node uses (none on a node that is not a reflector, where only ORIGINATOR_ID
is checked). For each received attribute set (once per set, not per prefix) it calls the
check; on a loop it drops the set's prefixes from the peer's Adj-RIB-In and reports the count to
``LoopLog``, which writes one line per peer at most every ``LOG_INTERVAL`` seconds with the
number of routes ignored meanwhile. A Myna reflector never sends a client its own routes back,
but other reflectors may (RFC 4456 allows it), so these lines are logged at INFO.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from speaker.path_attributes import PathAttributes
from speaker.wire_codes import AttrType

LOG_INTERVAL = 60.0  # seconds between two lines for one peer


class LoopReason(enum.Enum):
    """Why a received route is a reflection loop (the attribute that says so)."""

    ORIGINATOR_ID = AttrType.ORIGINATOR_ID
    CLUSTER_LIST = AttrType.CLUSTER_LIST


@dataclass(frozen=True, slots=True)
class LoopCheck:
    """Our router id and cluster id (None: not a reflector), checked against one set."""

    router_id: int
    cluster_id: int | None = None

    def __call__(self, attrs: PathAttributes) -> LoopReason | None:
        """The reason ``attrs`` loops, or None."""
        if attrs.originator_id == self.router_id:
            return LoopReason.ORIGINATOR_ID
        if self.cluster_id is not None and self.cluster_id in attrs.cluster_list:
            return LoopReason.CLUSTER_LIST
        return None

    def explain(self, reason: LoopReason) -> str:
        """What the reason means, with our id in it."""
        if reason is LoopReason.ORIGINATOR_ID:
            return f"ORIGINATOR_ID is our router id {ipaddress.IPv4Address(self.router_id)}"
        assert self.cluster_id is not None
        return f"CLUSTER_LIST holds our cluster id {ipaddress.IPv4Address(self.cluster_id)}"


class LoopLog:
    """One log line per peer per ``interval`` at most, counting the routes ignored meanwhile."""

    def __init__(
        self,
        check: LoopCheck,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.interval = interval
        self.clock = clock
        # peer name -> (when its last line was written, routes ignored since, last reason)
        self._pending: dict[str, tuple[float, int, LoopReason]] = {}
        self.ignored_total = 0

    def ignored(
        self,
        peer: str,
        log: logging.LoggerAdapter[logging.Logger],
        reason: LoopReason,
        count: int,
    ) -> None:
        """``count`` routes from ``peer`` were ignored for ``reason``; log if it is time."""
        self.ignored_total += count
        now = self.clock()
        last = self._pending.get(peer)
        if last is not None and now - last[0] < self.interval:
            self._pending[peer] = (last[0], last[1] + count, reason)
            return
        total = count + (last[1] if last is not None else 0)
        self._pending[peer] = (now, 0, reason)
        log.info(
            "ignored %d routes as reflection loops (RFC 4456): %s; "
            "at most one such line every %g s",
            total,
            self.check.explain(reason),
            self.interval,
        )
