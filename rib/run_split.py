"""Splitting a Loc-RIB ``Run`` into the groups of prefixes a policy cannot tell apart.

Role: a ``Run`` (``rib.loc_rib``) is one route that became the only candidate of many
prefixes. A policy whose verdict does not depend on the prefix (``accept_all``, a BIRD filter
that never reads ``net``), or depends on it only through a few constant tests (Calico's
``net ~ POOL`` and ``net = BLOCK``: ``bgpd.bird_config.prefix_classes``), gives every prefix
of such a group the same answer for the run's route. A policy says so by carrying a
``split_run`` attribute; ``adj_rib_out`` and ``fib_programmer`` then ask it once per group
instead of once per prefix. A policy without one is asked for every prefix, as before.

Data flow: the Loc-RIB builds each run's prefixes as a ``RunPrefixes`` list; the first
splitter to look at a run keeps what it learnt there (``run_span``: lowest, highest, one
length or not, three passes at C speed), so the update groups and the kernel, which split
the same run one after the other with their own filters' splitters, pay for it once.

A filter's run-time error is then logged once per group rather than once per prefix; the
filters log such errors at most once a second anyway (``bgpd.bird_config.runtime``).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

RunSplitter = Callable[[Sequence[int]], Sequence[Sequence[int]]]
T = TypeVar("T")
_LOW_BYTE = (0xFF).__and__  # a prefix int's length byte
_LOW_OFFSET = 0 if sys.byteorder == "little" else 7  # where it is in an array("Q") item


class RunPrefixes(list[int]):
    """A run's prefixes, with what a splitter learnt of them (``span``) kept for the next."""

    __slots__ = ("span",)
    span: tuple[int, int, bool]


def _one_length(prefixes: Sequence[int]) -> bool:
    """Whether every prefix has the same length byte.

    IPv4 prefix ints fit 64 bits: their length bytes are every eighth byte of an array of
    them, compared in C (a third of the cost of a set of them); IPv6 ones take the set.
    """
    try:
        lows = array("Q", prefixes).tobytes()[_LOW_OFFSET::8]
    except OverflowError:
        return len(set(map(_LOW_BYTE, prefixes))) == 1
    return lows.count(lows[0]) == len(lows)


def run_span(prefixes: Sequence[int]) -> tuple[int, int, bool]:
    """(lowest, highest, whether all have one length) of a run's prefixes, kept on the run.

    A published run is never changed, so what is kept stays true.
    """
    span: tuple[int, int, bool] | None = getattr(prefixes, "span", None)
    if span is None:
        span = (min(prefixes), max(prefixes), _one_length(prefixes))
        if prefixes.__class__ is RunPrefixes:
            prefixes.span = span
    return span


def whole_run(prefixes: Sequence[int]) -> Sequence[Sequence[int]]:
    """The splitter of a policy that never reads the prefix: one group."""
    return (prefixes,)


def splitter_of(policy: object) -> RunSplitter | None:
    """The policy's ``split_run``, None when it has none."""
    found: RunSplitter | None = getattr(policy, "split_run", None)
    return found


def with_splitter(policy: T, splitter: RunSplitter | None) -> T:
    """``policy`` carrying ``splitter`` (unchanged when it is None)."""
    if splitter is not None:
        target: Any = policy
        target.split_run = splitter
    return policy
