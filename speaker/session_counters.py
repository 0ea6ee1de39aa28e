"""Plain counters that the hot paths bump and ``bgpd.metrics`` reads at scrape time.

Data flow: each ``PeerFsm`` owns one ``SessionCounters``. The FSM counts the messages it
reassembles (one list increment per message, by type); the transport (``PeerSession``)
counts the bytes it reads and writes, the messages it writes (``count_sent`` reads the type
of each message in a written buffer, so an UPDATE run that the RIB encoded once and wrote to
every member of its update group is counted per member), the NOTIFICATIONs either way by
code and subcode, the prefixes announced and withdrawn in each batch of decoded UPDATEs, and
the times the session left Established. Nothing here touches prometheus-client: the metrics
collector turns these ints into metric families only when Prometheus scrapes, so counting
costs the session no more than an integer add per message or per UPDATE, never per route.

``LatencyHistogram`` is the same idea for durations: fixed bucket bounds, one ``bisect`` and
two adds per observation, exported as a Prometheus histogram at scrape time (the RIB's UPDATE
processing latency and kernel sync's write latency use it).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterable

from speaker.control_messages import Notification
from speaker.update_message import Update
from speaker.wire_codes import Family, MessageType

_LEN_TYPE = struct.Struct(">HB")
_HEADER = 19
# Index = message type (1..5); slot 0 is unused.
MESSAGE_TYPES = tuple(MessageType)

# Seconds; from 100 microseconds (a small UPDATE on an idle RIB) to 10 s (a full table).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class LatencyHistogram:
    """Counts of observed durations per bucket (``le`` bounds), their number and their sum."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))
        self.buckets = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Record one duration."""
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) per bucket, +Inf last (Prometheus form)."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            total += count
            out.append((bound, total))
        return out


class _LastCounted:
    """The buffer ``message_types`` read last, and what it found (kept alive, so ``is`` is safe)."""

    data = b""
    counts: tuple[int, ...] = ()


def message_types(data: bytes) -> tuple[int, ...]:
    """Messages in ``data`` by type (index = type): one header read per message.

    An update group writes the same bytes object to every member, so the last answer is kept
    and a fan-out to N peers reads the headers once, not N times.
    """
    if data is _LastCounted.data:
        return _LastCounted.counts
    counts = [0] * (max(MESSAGE_TYPES) + 1)
    pos, end = 0, len(data)
    while pos + _HEADER <= end:
        length, kind = _LEN_TYPE.unpack_from(data, pos + 16)
        if kind < len(counts):
            counts[kind] += 1
        pos += max(length, _HEADER)
    _LastCounted.data = data
    _LastCounted.counts = tuple(counts)
    return _LastCounted.counts


class SessionCounters:
    """What one peer's session has seen since the daemon started (see the module docstring)."""

    __slots__ = (
        "flaps",
        "notifications_received",
        "notifications_sent",
        "prefixes_received",
        "prefixes_withdrawn",
        "received",
        "received_bytes",
        "sent",
        "sent_bytes",
    )

    def __init__(self) -> None:
        self.received = [0] * (max(MESSAGE_TYPES) + 1)  # messages by type
        self.sent = [0] * (max(MESSAGE_TYPES) + 1)
        self.received_bytes = 0
        self.sent_bytes = 0
        self.notifications_received: dict[tuple[int, int], int] = {}  # (code, subcode) -> count
        self.notifications_sent: dict[tuple[int, int], int] = {}
        self.prefixes_received: dict[Family, int] = {}  # NLRI announced, before import policy
        self.prefixes_withdrawn: dict[Family, int] = {}
        self.flaps = 0  # times the session left Established

    def count_sent(self, data: bytes) -> None:
        """Messages and bytes written: ``data`` holds whole messages (see ``message_types``)."""
        self.sent_bytes += len(data)
        sent = self.sent
        for kind, count in enumerate(message_types(data)):
            if count:
                sent[kind] += count

    def count_updates(self, updates: tuple[Update, ...]) -> None:
        """Prefixes announced and withdrawn in a batch of decoded UPDATEs (per family)."""
        received = self.prefixes_received
        withdrawn = self.prefixes_withdrawn
        for update in updates:
            for reach in update.reach:
                received[reach.family] = received.get(reach.family, 0) + len(reach.prefixes)
            for gone in update.unreach:
                withdrawn[gone.family] = withdrawn.get(gone.family, 0) + len(gone.prefixes)

    def count_notification_sent(self, notification: Notification) -> None:
        """One more NOTIFICATION of its (code, subcode) written to the peer."""
        key = (notification.code, notification.subcode)
        self.notifications_sent[key] = self.notifications_sent.get(key, 0) + 1

    def count_notification_received(self, notification: Notification) -> None:
        """One more NOTIFICATION of its (code, subcode) from the peer."""
        key = (notification.code, notification.subcode)
        self.notifications_received[key] = self.notifications_received.get(key, 0) + 1
