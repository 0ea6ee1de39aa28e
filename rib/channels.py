"""The one publication interface of the Loc-RIB (BIRD's channels).

Every subscriber of the Loc-RIB's changes is a ``Channel``: the update groups
(``rib.adj_rib_out.UpdateGroup``, one per set of peers sharing an export) and the FIB programmer
(``kernel_sync.fib_programmer.FibProgrammer``). The RIB core hands each of them every batch of
``Change``s and ``Run``s in the order they happened, once per slice of work; a channel that
subscribes later gets the table as it is first, as changes from nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rib.loc_rib import Published


class Channel(Protocol):
    """A subscriber of the Loc-RIB's publications."""

    def publish(self, changes: Sequence[Published]) -> None:
        """Take one batch of changes, in the order they happened."""
