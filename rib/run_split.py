"""Splitting a Loc-RIB ``Run`` into the groups of prefixes a policy cannot tell apart.

Role: a ``Run`` (``rib.loc_rib``) is one route that became the only candidate of many
prefixes. A policy whose verdict does not depend on the prefix (``accept_all``, a BIRD filter
that never reads ``net``), or depends on it only through a few constant tests (Calico's
``net ~ POOL`` and ``net = BLOCK``: ``bgpd.bird_config.prefix_classes``), gives every prefix
of such a group the same answer for the run's route. A policy says so by carrying a
``split_run`` attribute; ``adj_rib_out`` and ``fib_programmer`` then ask it once per group
instead of once per prefix. A policy without one is asked for every prefix, as before.

Data flow: the Loc-RIB builds each run's prefixes as a ``RunPrefixes`` list and keeps on it
their lowest and highest value (``span``; merged runs join theirs); where a run has none, the
first splitter to look at it finds them (``run_bounds``, two passes at C speed) and keeps them,
so the update groups and the kernel, which split the same run one after the other with their
own filters' splitters, pay for them once at most.

A filter's run-time error is then logged once per group rather than once per prefix; the
filters log such errors at most once a second anyway (``bgpd.bird_config.runtime``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

RunSplitter = Callable[[Sequence[int]], Sequence[Sequence[int]]]
T = TypeVar("T")


class RunPrefixes(list[int]):
    """A run's prefixes, with their lowest and highest value (``span``) once someone found them.

    A run the Loc-RIB merged from several (``rib.loc_rib.append_run``) also keeps where each
    part ends and its bounds (``pieces``: (end index, lowest, highest), in order).
    """

    __slots__ = ("pieces", "span")
    span: tuple[int, int]
    pieces: list[tuple[int, int, int]]


def run_bounds(prefixes: Sequence[int]) -> tuple[int, int]:
    """(lowest, highest) of a run's prefixes, kept on the run.

    A published run is never changed, so what is kept stays true. (The splitters stay right
    with bounds that are wider than the run, only slower.)
    """
    span: tuple[int, int] | None = getattr(prefixes, "span", None)
    if span is None:
        span = (min(prefixes), max(prefixes))
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
