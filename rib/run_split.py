"""Splitting a Loc-RIB ``Run`` into the groups of prefixes a policy cannot tell apart.

Role: a ``Run`` (``rib.loc_rib``) is one route that became the only candidate of many
prefixes. A policy whose verdict does not depend on the prefix (``accept_all``, a BIRD filter
that never reads ``net``), or depends on it only through a few constant tests (Calico's
``net ~ POOL`` and ``net = BLOCK``: ``bgpd.bird_config.prefix_classes``), gives every prefix
of such a group the same answer for the run's route. A policy says so by carrying a
``split_run`` attribute; ``adj_rib_out`` and ``fib_programmer`` then ask it once per group
instead of once per prefix. A policy without one is asked for every prefix, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

RunSplitter = Callable[[Sequence[int]], Sequence[Sequence[int]]]
T = TypeVar("T")


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
