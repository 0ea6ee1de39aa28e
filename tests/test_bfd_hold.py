"""The hold limit (``bgpd.bfd_hold``) against a model of its rule, over random event sequences.

The rule, from RFC 5882 4.1 ("If it is believed that the neighboring system does not support
BFD, the establishment of a control protocol adjacency SHOULD NOT be blocked"): a BGP session
held down by a BFD failure goes free at time T when it has been held since T - limit or
earlier and the peer's BFD has been silent (no packet accepted: the engine's reports) all
through [T - limit, T]. The model below checks that literally against the whole history of
reports, at many times between the events; ``HoldLimit`` keeps two timestamps instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.bfd_hold import DEFAULT_LIMIT, HoldLimit

EVENTS = st.lists(
    st.tuples(
        st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0]),  # time since the previous event
        st.sampled_from(["hold", "release", "heard", "silent"]),
    ),
    max_size=30,
)


@dataclass
class Model:
    """Everything that happened, and the rule read straight off it."""

    limit: float
    reports: list[tuple[float, bool]] = field(default_factory=list)  # (at, heard)
    holds: list[tuple[float, bool]] = field(default_factory=list)  # (at, held)

    def heard_at(self, t: float) -> bool:
        """What the last report at or before ``t`` said (nothing heard before any report)."""
        return next((heard for at, heard in reversed(self.reports) if at <= t), False)

    def held_throughout(self, start: float, end: float) -> bool:
        held = next((h for at, h in reversed(self.holds) if at <= start), False)
        return held and all(h for at, h in self.holds if start < at <= end)

    def free(self, t: float) -> bool:
        start = t - self.limit
        silent = not self.heard_at(start) and not any(
            heard for at, heard in self.reports if start < at <= t
        )
        return silent and self.held_throughout(start, t)


@settings(max_examples=300, deadline=None)
@given(events=EVENTS, limit=st.sampled_from([1.0, 3.0, 7.5]))
def test_the_hold_ends_exactly_when_the_rule_says(
    events: list[tuple[float, str]], limit: float
) -> None:
    hold, model = HoldLimit(limit), Model(limit)
    now = 0.0
    for step, event in events:
        # Between the previous event and this one: the guard and the model agree at every
        # quarter second, and the guard's deadline is the first of those where it is free.
        t = now
        while t < now + step:
            assert hold.expired(t) == model.free(t), (t, events)
            t += 0.125
        deadline = hold.deadline
        if deadline is not None:
            assert model.free(deadline) and not model.free(deadline - 0.125)
        now += step
        if event == "hold":
            if not hold.held:
                model.holds.append((now, True))
            hold.hold(now)
        elif event == "release":
            if hold.held:
                model.holds.append((now, False))
            hold.release()
        else:
            heard = event == "heard"
            hold.remote(heard, now)
            model.reports.append((now, heard))


def test_a_peer_heard_keeps_the_hold_and_no_limit_keeps_it_for_ever() -> None:
    hold = HoldLimit()
    assert hold.limit == DEFAULT_LIMIT == 60.0
    hold.remote(True, 0.0)
    hold.hold(1.0)  # the peer said Down: it runs BFD, and the path does not come up
    assert hold.deadline is None and not hold.expired(1e9)
    hold.remote(False, 5.0)  # silent since (a Detection Time after its last packet)
    assert hold.deadline == 65.0 and hold.expired(65.0) and not hold.expired(64.9)
    hold.limit = None  # bfd: {hold_limit: null}
    assert hold.deadline is None and not hold.expired(1e9)
