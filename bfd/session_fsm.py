"""One BFD session of RFC 5880, asynchronous mode, sans-I/O; every transition in one table.

The table is ``_TRANSITIONS``, at the bottom of this file: (state, event) -> (new state,
diagnostic). Everything else here is bookkeeping around it: the timers (periodic
transmission, detection time, forgetting the peer), the negotiated intervals, Poll/Final
sequences and authentication.

Data flow: the engine gives the session each packet that ``packet.decode`` accepted and
``demux`` assigned to it (``receive``), the TTL verdict having been applied before; the
session applies the rest of 6.8.6 (A bit against the configuration, 6.7 authentication,
updating the remote variables, Poll/Final, the state machine) and answers with actions
(``session_events``): ``Transmit`` octets, ``StateChanged``, and ``RemoteChanged`` when the
peer's state or whether it is heard at all changes. Timers are deadlines kept here; the
engine asks ``next_deadline()`` and calls ``timers_expired(now)``. Time is always
passed in (seconds, any monotonic origin) and randomness (the jitter of 6.8.7) comes from the
``random.Random`` given, so tests run minutes of protocol in microseconds, reproducibly.

Intervals, as the RFC splits them (6.8.1, 6.8.3):

- ``advertised_tx_us`` / ``advertised_rx_us`` are bfd.DesiredMinTxInterval and
  bfd.RequiredMinRxInterval, what our packets carry. While not Up the former is at least the
  idle interval (1 s or more, 6.8.3).
- ``_tx_basis_us`` is the Desired Min TX our own sending rate is computed from, and
  ``_rx_basis_us`` the Required Min RX our Detection Time is computed from. They follow the
  advertised values at once, except while Up when the advertised Desired Min TX rises (we
  keep sending fast until the peer has confirmed, by a Final, that it knows to expect us
  slower) or the advertised Required Min RX falls (we keep the longer Detection Time until
  the peer has confirmed it sends faster).

What goes out, and when (6.8.7): periodic packets at the negotiated interval less 0-25 %
jitter; a Final at once for every Poll; and, between periodic packets, one at once whenever
the state (and with it the diagnostic) would differ from the previous packet's, as BIRD and
FRR send a Down at once. Changed intervals wait for the periodic packets, which carry the
Poll (6.5: "additional packets MUST NOT be sent"). A packet sent at once carries P while a
Poll Sequence runs, as BIRD's and FRR's do, and leaves the periodic schedule as it was.

Poll Sequences (6.5, 6.8.3): a Final does not say which Poll it answers, so the values a
sequence carries (``_poll_values``) are the only ones its Final confirms, a Final before any
Poll of the sequence went out confirms nothing, and values changed while it runs start
another sequence once it has ended. When more than one Poll went out in
the sequence that ended, a Final for one of the others may still be on its way: the next
sequence then waits for a packet with F clear (6.8.3's third choice), so that a late Final
cannot end it.

AdminDown (6.8.16): packets carrying it go on for a Detection Time, the longer of the peer's
before the change and the one its packets now announce (Detect Mult x the interval in force,
at least the 1 s of a session that is not Up), until one has gone at or after its end; then
transmission ceases. The first goes at once (6.8.7), so the peer hears it within its
Detection Time unless it is lost, and the rest tell it even then.

Demand mode is never asked for (we never set D). A peer that sets D while both sides are Up
is obeyed as 6.8.7 requires: we stop periodic transmission (answering its Polls still), and
go on expecting its packets, which it must keep sending since we did not set D.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from bfd import auth
from bfd.packet import ControlPacket, encode
from bfd.session_events import (
    Action,
    Event,
    RemoteChanged,
    SessionCounters,
    SessionSettings,
    SessionStatus,
    StateChanged,
    Transmit,
)
from bfd.wire_codes import Diagnostic, DropReason, State

_US = 1e-6


class SessionError(RuntimeError):
    """Myna's own mistake: an event the transition table has no entry for (never the peer's)."""


class BfdSession:
    """RFC 5880's state machine and timers for one session (see the module docstring)."""

    def __init__(
        self,
        settings: SessionSettings,
        local_discriminator: int,
        rng: random.Random,
        *,
        admin_down: bool = False,
    ) -> None:
        if not 1 <= local_discriminator <= 0xFFFFFFFF:
            raise ValueError(f"local discriminator {local_discriminator} must be nonzero 32-bit")
        self.settings = settings
        self.local_discriminator = local_discriminator
        self.rng = rng
        self.state = State.ADMIN_DOWN if admin_down else State.DOWN
        self.local_diag: Diagnostic | int = Diagnostic.NO_DIAGNOSTIC
        self.last_down_diag: Diagnostic | int | None = None
        self.remote_discriminator = 0
        self.remote_state = State.DOWN
        self.remote_diag = 0
        self.remote_demand = False
        self.remote_min_rx_us = 1  # 6.8.1: initialised to 1
        self.remote_desired_tx_us = 0
        self.remote_detect_mult = 0
        self.advertised_tx_us = max(settings.desired_min_tx_us, settings.idle_tx_us)
        self.advertised_rx_us = settings.required_min_rx_us
        self._tx_basis_us = self.advertised_tx_us
        self._rx_basis_us = self.advertised_rx_us
        self.poll_active = False
        self._poll_values = (0, 0)  # the advertised (tx, rx) the running Poll carries
        self._polls_sent = 0  # packets with P in the running sequence
        self._poll_pending = False  # values changed since the sequence began: another is due
        self._awaiting_clear = False  # the next sequence waits for a packet with F clear
        self.auth_state = auth.AuthState() if settings.auth is not None else None
        self.counters = SessionCounters()
        self._started = False
        self._last_tx: float | None = None
        self._next_tx: float | None = None
        self._tx_rule: tuple[bool, int] = (False, 0)  # (periodic allowed, interval) scheduled for
        self._detect_at: float | None = None
        self._forget_at: float | None = None
        self._last_rx: float | None = None
        self._admin_tx_until: float | None = None
        self._last_sent: ControlPacket | None = None  # the last packet sent, P and F clear
        self._reported: tuple[State, bool] = (self.remote_state, False)  # (state, heard)
        self._out: list[Action] = []

    # -- what the engine reads -------------------------------------------------------------------

    @property
    def tx_interval_us(self) -> int:
        """6.8.7: the larger of our Desired Min TX (as in force) and the peer's Required Min RX."""
        return max(self._tx_basis_us, self.remote_min_rx_us)

    @property
    def rx_interval_us(self) -> int:
        """6.8.4: the peer's agreed interval (our Required Min RX or its Desired Min TX)."""
        return max(self._rx_basis_us, self.remote_desired_tx_us)

    @property
    def detection_time_us(self) -> int:
        """6.8.4: the peer's Detect Mult times its agreed interval (0 until it is heard)."""
        return self.remote_detect_mult * self.rx_interval_us

    @property
    def heard(self) -> bool:
        """A packet was accepted within the last Detection Time (6.8.4's timer runs)."""
        return self._detect_at is not None

    @property
    def remote_demand_active(self) -> bool:
        """6.8.6: Demand mode is active on the peer (it set D and both sides are Up)."""
        return self.remote_demand and self.state == State.UP and self.remote_state == State.UP

    def next_deadline(self) -> float | None:
        """When the engine must call ``timers_expired`` next (None: nothing is due ever)."""
        due = [t for t in (self._next_tx, self._detect_at, self._forget_at) if t is not None]
        return min(due) if due else None

    def status(self) -> SessionStatus:
        """A snapshot for operators and metrics."""
        counters = self.counters
        return SessionStatus(
            state=self.state,
            local_discriminator=self.local_discriminator,
            remote_discriminator=self.remote_discriminator,
            remote_state=self.remote_state,
            remote_heard=self.heard,
            local_diagnostic=int(self.local_diag),
            remote_diagnostic=self.remote_diag,
            last_down_diagnostic=None if self.last_down_diag is None else int(self.last_down_diag),
            tx_interval_us=self.tx_interval_us,
            rx_interval_us=self.rx_interval_us,
            detection_time_us=self.detection_time_us,
            remote_detect_mult=self.remote_detect_mult,
            remote_demand=self.remote_demand,
            poll_active=self.poll_active,
            packets_in=counters.packets_in,
            packets_out=counters.packets_out,
            state_changes=counters.state_changes,
            auth_failures=counters.auth_failures,
            longest_silence_us=counters.longest_silence_us,
            dropped={reason.name: n for reason, n in counters.dropped.items()},
        )

    @property
    def finished(self) -> bool:
        """AdminDown with nothing left to send: a session being removed may go now."""
        return self.state == State.ADMIN_DOWN and self._next_tx is None

    # -- inputs ------------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin: the first packet goes out at once (unless passive or AdminDown)."""
        self._started = True
        self._refresh_tx(now, force=True)
        return self.timers_expired(now)

    def receive(self, packet: ControlPacket, now: float) -> list[Action]:
        """A decoded packet demultiplexed to this session: the rest of RFC 5880 6.8.6."""
        settings = self.settings
        if packet.auth is not None and settings.auth is None:
            return self._drop(DropReason.AUTH_NOT_CONFIGURED)
        if packet.auth is None and settings.auth is not None:
            return self._drop(DropReason.AUTH_MISSING)
        if settings.auth is not None and self.auth_state is not None:
            verdict = auth.check(packet, settings.auth, self.auth_state)
            if verdict is not None:
                return self._drop(verdict)
        previous_remote_state = self.remote_state
        self.remote_discriminator = packet.my_discriminator
        self.remote_state = packet.state
        self.remote_diag = packet.diagnostic
        self.remote_demand = packet.demand
        self.remote_min_rx_us = packet.required_min_rx_us
        self.remote_desired_tx_us = packet.desired_min_tx_us
        self.remote_detect_mult = packet.detect_mult
        # Required Min Echo RX: we never send Echo packets, so there is nothing to cease.
        if not packet.final:
            self._awaiting_clear = False  # 6.8.3's third choice: a packet with F clear
            if self._poll_pending and not self.poll_active:
                self._request_poll()
        elif self.poll_active and self._polls_sent:
            self._poll_terminated()
        if self.state == State.ADMIN_DOWN:
            self._refresh_tx(now)
            return self._flush(now)  # 6.8.6: discarded, and not "received" for 6.8.4
        self.counters.packets_in += 1
        # Counted only between two Up packets: a handshake's 1 s packets are no silence.
        both_up = self.state == State.UP and previous_remote_state == State.UP == packet.state
        if both_up and self._last_rx is not None:
            silence_us = int((now - self._last_rx) * 1e6)
            self.counters.longest_silence_us = max(self.counters.longest_silence_us, silence_us)
        self._fire(Event.received(packet.state), now)
        self._refresh_tx(now)
        if packet.poll:
            self._transmit(now, final=True)
        self._heard(now)
        return self._flush(now)

    def timers_expired(self, now: float) -> list[Action]:
        """Fire whatever is due at ``now``: forgetting, detection, periodic transmission."""
        if self._forget_at is not None and self._forget_at <= now:
            # 6.8.1: bfd.AuthSeqKnown falls to 0 after twice the Detection Time of silence.
            self._forget_at = None
            if self.auth_state is not None:
                self.auth_state.forget()
        if self._detect_at is not None and self._detect_at <= now:
            self._detect_at = None
            # 6.8.1: bfd.RemoteDiscr is zeroed after a Detection Time without a valid packet;
            # 6.8.18: bfd.RemoteMinRxInterval SHOULD go back to its initial 1, so that a peer
            # that asked for no packets (Required Min RX 0) and went away is spoken to again.
            self.remote_discriminator = 0
            self.remote_min_rx_us = 1
            self._fire(Event.DETECTION_TIME_EXPIRED, now)
            self._refresh_tx(now)
        if self._next_tx is not None and self._next_tx <= now:
            self._next_tx = None
            self._transmit(now)
            if self._admin_tx_until is not None and now >= self._admin_tx_until:
                self._admin_tx_until = None  # 6.8.16: told for a Detection Time; now cease
                self._refresh_tx(now)
            else:
                self._schedule_next(now)
        return self._flush(now)

    def admin_down(self, now: float) -> list[Action]:
        """6.8.16, disabling: AdminDown with diagnostic 7; the peer is told, then we fall silent.

        "BFD Control packets SHOULD be transmitted for at least a Detection Time after
        transitioning to AdminDown state": the first goes at once, the rest at the interval in
        force (the module docstring says for how long), so that the peer learns this is no
        failure (RFC 5882 3.2). Out of Up that interval is at least 1 s (6.8.3), so a peer at
        100 ms x 3 gets only the first within its Detection Time; a later one still helps a
        peer that, like Myna, releases a held session on AdminDown. ``finished`` says when
        they are over.
        """
        self._fire(Event.ADMIN_DOWN, now)
        return self._flush(now)

    def admin_up(self, now: float) -> list[Action]:
        """6.8.16, enabling: back to Down, transmitting again."""
        self._fire(Event.ADMIN_UP, now)
        return self._flush(now)

    def change_parameters(self, now: float, settings: SessionSettings) -> list[Action]:
        """New intervals, multiplier or authentication, applied as 6.8.3 says (a Poll if needed)."""
        self.settings = settings
        if settings.auth is None:
            self.auth_state = None
        elif self.auth_state is None:
            self.auth_state = auth.AuthState()
        self._advertise(now)
        return self._flush(now)

    # -- the machinery -----------------------------------------------------------------------------

    def _fire(self, event: Event, now: float) -> None:
        try:
            new, diagnostic = _TRANSITIONS[(self.state, event)]
        except KeyError:  # pragma: no cover - the table is complete (tested)
            raise SessionError(f"no transition for {event.name} in {self.state.label}") from None
        if new == self.state:
            return
        old = self.state
        self.state = new
        if diagnostic is not None:
            self.local_diag = diagnostic
        if old == State.UP:
            self.last_down_diag = self.local_diag
        self.counters.state_changes += 1
        self._out.append(StateChanged(old, new, self.local_diag, now))
        _ENTERED[new](self, now)
        self._advertise(now)

    def _entered_admin_down(self, now: float) -> None:
        self.poll_active = self._poll_pending = self._awaiting_clear = False
        if not self._started:
            return
        # The peer's Detection Time for us as it stood (our rate in force), and the one our
        # AdminDown packets announce (at least the 1 s of a session that is not Up, 6.8.3).
        settings = self.settings
        before = max(self._tx_basis_us, self.remote_min_rx_us)
        after = max(settings.desired_min_tx_us, settings.idle_tx_us, self.remote_min_rx_us)
        self._admin_tx_until = now + settings.detect_mult * max(before, after) * _US

    def _entered_down(self, now: float) -> None:
        self._admin_tx_until = None
        if self._next_tx is None and self._started:
            self._tx_rule = (False, 0)  # coming back from AdminDown: schedule afresh

    def _entered_other(self, now: float) -> None:
        pass

    def _advertise(self, now: float) -> None:
        """Recompute the advertised intervals from the settings and the state (6.8.3)."""
        settings = self.settings
        up = self.state == State.UP
        tx = settings.desired_min_tx_us
        if not up:
            tx = max(tx, settings.idle_tx_us)
        rx = settings.required_min_rx_us
        changed = (tx, rx) != (self.advertised_tx_us, self.advertised_rx_us)
        self.advertised_tx_us, self.advertised_rx_us = tx, rx
        # Slower sending and faster receiving wait for the peer's Final while Up; the rest is
        # safe at once.
        if not up or tx < self._tx_basis_us:
            self._tx_basis_us = tx
        if not up or rx > self._rx_basis_us:
            self._rx_basis_us = rx
        if changed and self.state != State.ADMIN_DOWN:
            self._request_poll()
        self._rearm_detection()
        self._refresh_tx(now)

    def _request_poll(self) -> None:
        """6.8.3: the advertised values changed; a Poll Sequence must carry them to the peer."""
        if self.poll_active or self._awaiting_clear or self.state == State.ADMIN_DOWN:
            self._poll_pending = True  # after the running one (and a packet with F clear)
            return
        self._poll_pending = False
        self.poll_active = True
        self._polls_sent = 0
        self._poll_values = (self.advertised_tx_us, self.advertised_rx_us)

    def _poll_terminated(self) -> None:
        self.poll_active = False
        # More than one Poll out: a Final for another may come yet, and would end the next
        # sequence as if it answered that one (6.8.3's third choice keeps them apart).
        self._awaiting_clear = self._polls_sent > 1
        polled_tx, polled_rx = self._poll_values
        # The Final says the peer has seen the values the Poll carried, so a slower rate of
        # ours up to the polled one, and a faster rate of its down to the polled one, are safe
        # now. (The basis never passes the advertised value: those moves are made at once.)
        self._tx_basis_us = min(self.advertised_tx_us, max(self._tx_basis_us, polled_tx))
        self._rx_basis_us = max(self.advertised_rx_us, min(self._rx_basis_us, polled_rx))
        self._rearm_detection()
        if (self.advertised_tx_us, self.advertised_rx_us) != self._poll_values:
            self._request_poll()  # they changed again while the Poll ran
        else:
            self._poll_pending = False

    def _rearm_detection(self) -> None:
        if self._last_rx is not None and self._detect_at is not None:
            self._detect_at = self._last_rx + self.detection_time_us * _US
            self._forget_at = self._last_rx + 2 * self.detection_time_us * _US

    def _heard(self, now: float) -> None:
        """6.8.6's last rule: the packet counts as received for the Detection Time."""
        self._last_rx = now
        self._detect_at = now + self.detection_time_us * _US
        self._forget_at = now + 2 * self.detection_time_us * _US

    def _may_speak(self) -> bool:
        """6.8.7 and 6.8.16: whether anything but a Final may be sent now."""
        if not self._started:
            return False
        if self.settings.passive and self.remote_discriminator == 0:
            return False  # 6.8.7: a passive side never speaks first
        return self.state != State.ADMIN_DOWN or self._admin_tx_until is not None

    def _periodic_allowed(self) -> bool:
        """6.8.7's reasons not to transmit periodically."""
        if not self._may_speak() or self.remote_min_rx_us == 0:
            return False
        return not (self.remote_demand_active and not self.poll_active)

    def _refresh_tx(self, now: float, force: bool = False) -> None:
        """Re-plan the next periodic packet when the rule or the interval changed (6.8.7)."""
        rule = (self._periodic_allowed(), self.tx_interval_us)
        if rule == self._tx_rule and not force:
            return
        self._tx_rule = rule
        allowed, interval_us = rule
        if not allowed:
            self._next_tx = None
        elif self._last_tx is None:
            self._next_tx = now
        else:
            self._next_tx = max(now, self._last_tx + self._jittered(interval_us))

    def _schedule_next(self, now: float) -> None:
        allowed, interval_us = self._tx_rule
        self._next_tx = now + self._jittered(interval_us) if allowed else None

    def _jittered(self, interval_us: int) -> float:
        """6.8.7: 75-100 % of the interval, or 75-90 % with a Detect Mult of 1; in seconds."""
        top = 0.9 if self.settings.detect_mult == 1 else 1.0
        return interval_us * self.rng.uniform(0.75, top) * _US

    def _contents(self) -> ControlPacket:
        """The packet we would send now, P and F clear."""
        return ControlPacket(
            state=self.state,
            my_discriminator=self.local_discriminator,
            your_discriminator=self.remote_discriminator,
            desired_min_tx_us=self.advertised_tx_us,
            required_min_rx_us=self.advertised_rx_us,
            detect_mult=self.settings.detect_mult,
            diagnostic=int(self.local_diag),
        )

    def _transmit(self, now: float, final: bool = False, periodic: bool = True) -> None:
        """Send the current packet: periodic, a Final, or one between periodic packets."""
        if self.settings.passive and self.remote_discriminator == 0:
            return  # 6.8.7: a passive side never speaks first
        contents = self._contents()
        changed = contents != self._last_sent
        poll = self.poll_active and not final  # 6.5: never P and F together
        packet = dataclasses.replace(contents, poll=poll, final=final)
        if self.settings.auth is not None and self.auth_state is not None:
            data = auth.sign(packet, self.settings.auth, self.auth_state, now, changed=changed)
        else:
            data = encode(packet)
        self._polls_sent += poll
        self._last_sent = contents
        if periodic and not final:
            self._last_tx = now
        self.counters.packets_out += 1
        self._out.append(Transmit(data, final))

    def _tell_changes(self, now: float) -> None:
        """6.8.7: a packet at once when the state (or with it the diagnostic) changed.

        "A BFD Control packet SHOULD be transmitted during the interval between periodic
        Control packet transmissions when the contents of that packet would differ from that
        in the previously transmitted packet (other than the Poll and Final bits)". Changed
        intervals are left to the periodic packets and their Poll (6.5: "additional packets
        MUST NOT be sent"), and so is a changed Your Discriminator alone: it changes with
        the state when the peer is first heard, and otherwise only when the peer fell silent
        (zeroed, 6.8.1) or is heard by a session in AdminDown, which nobody needs told at once.
        """
        last = self._last_sent
        if not self._may_speak() or (
            last is not None and (last.state, last.diagnostic) == (self.state, self.local_diag)
        ):
            return
        if self._next_tx is not None and self._next_tx <= now:
            self._next_tx = None  # a periodic packet is due anyway: it is the one
            self._transmit(now)
            self._schedule_next(now)
        else:
            self._transmit(now, periodic=False)

    def _drop(self, reason: DropReason) -> list[Action]:
        self.counters.drop(reason)
        return []

    def _flush(self, now: float) -> list[Action]:
        """The actions of one input: its packets, then what changed for the daemon."""
        self._tell_changes(now)
        remote = (self.remote_state, self.heard)
        if remote != self._reported:
            self._reported = remote
            self._out.append(RemoteChanged(self.remote_state, self.heard, self.remote_diag, now))
        out, self._out = self._out, []
        return out


_ENTERED: dict[State, Callable[[BfdSession, float], None]] = {
    State.ADMIN_DOWN: BfdSession._entered_admin_down,
    State.DOWN: BfdSession._entered_down,
    State.INIT: BfdSession._entered_other,
    State.UP: BfdSession._entered_other,
}

_S, _E, _D = State, Event, Diagnostic

# Every transition: (state, event) -> (next state, bfd.LocalDiag to set, None: unchanged).
# Received states follow 6.8.6's state machine; the detection timer 6.8.4; the operator
# 6.8.16. A packet received in AdminDown never gets here (6.8.6 discards it first). Coming Up
# clears the diagnostic, as FRR does: it explains the last change, and Up needs no excuse.
_TRANSITIONS: dict[tuple[State, Event], tuple[State, Diagnostic | None]] = {
    # AdminDown: only the operator leaves it.
    (_S.ADMIN_DOWN, _E.DETECTION_TIME_EXPIRED): (_S.ADMIN_DOWN, None),
    (_S.ADMIN_DOWN, _E.ADMIN_DOWN): (_S.ADMIN_DOWN, None),
    (_S.ADMIN_DOWN, _E.ADMIN_UP): (_S.DOWN, None),
    # Down: the peer's Down starts the three-way handshake, its Init completes it.
    (_S.DOWN, _E.RECEIVED_ADMIN_DOWN): (_S.DOWN, None),
    (_S.DOWN, _E.RECEIVED_DOWN): (_S.INIT, None),
    (_S.DOWN, _E.RECEIVED_INIT): (_S.UP, _D.NO_DIAGNOSTIC),
    (_S.DOWN, _E.RECEIVED_UP): (_S.DOWN, None),
    (_S.DOWN, _E.DETECTION_TIME_EXPIRED): (_S.DOWN, None),
    (_S.DOWN, _E.ADMIN_DOWN): (_S.ADMIN_DOWN, _D.ADMINISTRATIVELY_DOWN),
    (_S.DOWN, _E.ADMIN_UP): (_S.DOWN, None),
    # Init: the peer has heard us; its Init or Up means it is talking to us.
    (_S.INIT, _E.RECEIVED_ADMIN_DOWN): (_S.DOWN, _D.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (_S.INIT, _E.RECEIVED_DOWN): (_S.INIT, None),
    (_S.INIT, _E.RECEIVED_INIT): (_S.UP, _D.NO_DIAGNOSTIC),
    (_S.INIT, _E.RECEIVED_UP): (_S.UP, _D.NO_DIAGNOSTIC),
    (_S.INIT, _E.DETECTION_TIME_EXPIRED): (_S.DOWN, _D.CONTROL_DETECTION_TIME_EXPIRED),
    (_S.INIT, _E.ADMIN_DOWN): (_S.ADMIN_DOWN, _D.ADMINISTRATIVELY_DOWN),
    (_S.INIT, _E.ADMIN_UP): (_S.INIT, None),
    # Up: the peer's Down or AdminDown, or its silence, ends it.
    (_S.UP, _E.RECEIVED_ADMIN_DOWN): (_S.DOWN, _D.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (_S.UP, _E.RECEIVED_DOWN): (_S.DOWN, _D.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (_S.UP, _E.RECEIVED_INIT): (_S.UP, None),
    (_S.UP, _E.RECEIVED_UP): (_S.UP, None),
    (_S.UP, _E.DETECTION_TIME_EXPIRED): (_S.DOWN, _D.CONTROL_DETECTION_TIME_EXPIRED),
    (_S.UP, _E.ADMIN_DOWN): (_S.ADMIN_DOWN, _D.ADMINISTRATIVELY_DOWN),
    (_S.UP, _E.ADMIN_UP): (_S.UP, None),
}
