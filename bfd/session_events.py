"""The vocabulary of one BFD session: its settings, the events of its table, its actions, status.

Data flow: the engine builds a ``BfdSession`` (``session_fsm``) from ``SessionSettings``; the
session turns packets and timer expiries into ``Event`` values for its transition table and
answers with actions: ``Transmit`` (octets for the session's socket), ``StateChanged`` and
``RemoteChanged`` (for the daemon, via the engine). ``SessionCounters`` are kept by the
session as it works; ``SessionStatus`` is a frozen snapshot of everything an operator or a
metrics scrape reads.
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from bfd.auth import AuthSettings
from bfd.wire_codes import MAX_INTERVAL_US, SLOW_TX_INTERVAL_US, Diagnostic, DropReason, State


class Event(IntEnum):
    """What can move a session: the state a received packet carries, the timer, the operator."""

    RECEIVED_ADMIN_DOWN = 0  # numbered as the State the packet carries
    RECEIVED_DOWN = 1
    RECEIVED_INIT = 2
    RECEIVED_UP = 3
    DETECTION_TIME_EXPIRED = 10  # 6.8.4
    ADMIN_DOWN = 20  # 6.8.16, disabling the session
    ADMIN_UP = 21  # 6.8.16, enabling it

    @classmethod
    def received(cls, state: State) -> Event:
        """The event of a packet carrying ``state``."""
        return cls(int(state))


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How one session runs: intervals in microseconds, as the packets carry them.

    ``desired_min_tx_us`` is what we would like to send at once Up (while not Up we advertise
    at least 1 s, 6.8.3); ``required_min_rx_us`` the fastest we accept; ``detect_mult`` the
    packets the peer may miss. ``passive`` waits for the peer's first packet before sending
    (6.1; multihop sessions only: RFC 5881 3 has both ends of a single-hop one Active, and the
    daemon never asks otherwise). ``idle_tx_us`` is the Desired Min TX while not Up (BIRD's
    ``idle tx interval``); 6.8.3 says it MUST NOT be below one second. Raises ValueError
    naming a configuration mistake.
    """

    desired_min_tx_us: int = 300_000
    required_min_rx_us: int = 300_000
    detect_mult: int = 3
    auth: AuthSettings | None = None
    passive: bool = False
    idle_tx_us: int = SLOW_TX_INTERVAL_US

    def __post_init__(self) -> None:
        for name in ("desired_min_tx_us", "required_min_rx_us"):
            value = getattr(self, name)
            # Zero Required Min RX would ask the peer for no packets at all: there would be
            # nothing to detect a failure with, so it is not offered.
            if not 1 <= value <= MAX_INTERVAL_US:
                raise ValueError(f"BFD {name} must be 1 to {MAX_INTERVAL_US} us, not {value}")
        if not 1 <= self.detect_mult <= 255:
            raise ValueError(f"BFD detect_mult must be 1 to 255, not {self.detect_mult}")
        if not SLOW_TX_INTERVAL_US <= self.idle_tx_us <= MAX_INTERVAL_US:
            raise ValueError(
                f"BFD idle_tx_us must be 1 s (RFC 5880 6.8.3) to {MAX_INTERVAL_US} us, "
                f"not {self.idle_tx_us}"
            )


class Transmit(NamedTuple):
    """Send these octets to the peer on the session's socket."""

    data: bytes
    final: bool  # an answer to the peer's Poll, sent outside the periodic schedule


class StateChanged(NamedTuple):
    """The session went from ``old`` to ``new`` at ``at`` (the time passed in), for ``diagnostic``.

    ``diagnostic`` is the one the session now sends (bfd.LocalDiag): on a fall to Down it is
    why (1 detection time expired, 3 the neighbor said so, 7 administratively down).
    """

    old: State
    new: State
    diagnostic: Diagnostic | int
    at: float


class RemoteChanged(NamedTuple):
    """What the session knows of the peer changed at ``at``: its state, or whether it is heard.

    ``state`` is bfd.RemoteSessionState (the last accepted packet's); ``heard`` says whether a
    packet was accepted within the last Detection Time (False before the first one, and again
    once the Detection Time runs out). ``diagnostic`` is the peer's. Reported on every change of
    either, whatever our own state: a client held down by a failed session learns this way
    that the peer went AdminDown (RFC 5882 4.1) or fell silent altogether.
    """

    state: State
    heard: bool
    diagnostic: int
    at: float


Action = Transmit | StateChanged | RemoteChanged


@dataclass(slots=True)
class SessionCounters:
    """What one session has seen; read at status time."""

    packets_in: int = 0  # accepted: passed every check and reached the state machine
    packets_out: int = 0
    state_changes: int = 0
    auth_failures: int = 0
    # The longest wait between two accepted packets while both sides were Up: how close the
    # peer (or the path) came to our Detection Time.
    longest_silence_us: int = 0
    dropped: dict[DropReason, int] = field(default_factory=dict)

    def drop(self, reason: DropReason) -> None:
        """One packet discarded for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        if reason.auth_failure:
            self.auth_failures += 1


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A snapshot of one session, intervals in microseconds.

    ``tx_interval_us`` is the negotiated interval we send at (before jitter, 6.8.7);
    ``rx_interval_us`` the one we expect the peer to send at; ``detection_time_us`` their
    product with the peer's Detect Mult (6.8.4), 0 before the peer has been heard.
    ``last_down_diagnostic`` is the diagnostic of the last fall from Up; ``remote_heard``
    whether the peer was heard within the last Detection Time.
    """

    state: State
    local_discriminator: int
    remote_discriminator: int
    remote_state: State
    remote_heard: bool
    local_diagnostic: int
    remote_diagnostic: int
    last_down_diagnostic: int | None
    tx_interval_us: int
    rx_interval_us: int
    detection_time_us: int
    remote_detect_mult: int
    remote_demand: bool
    poll_active: bool
    packets_in: int
    packets_out: int
    state_changes: int
    auth_failures: int
    longest_silence_us: int
    dropped: dict[str, int]
