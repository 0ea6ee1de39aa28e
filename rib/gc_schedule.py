"""When Python's cyclic garbage collector may run: never a full pass while routes pour in.

Why: a full (generation 2) collection visits every container object, and a RIB of 1,000,000
routes made CPython pause 50-90 ms per full pass while the table was growing (measured in
``tests/test_rib.py``), which holds up KEEPALIVEs and every other session. So the long-lived
objects are moved out of the collector's sight with ``gc.freeze()``: passes then only look at
what was made since. When the RIB has been idle for a while (no inbox work for ``idle_after``
seconds) the freeze is lifted for one full collection, so cycles that died meanwhile (closed
connections, dropped sessions) are still reclaimed, and everything left is frozen again. The
same idle spell runs the RIB's sweep (``RibCore.sweep``: the intern tables of routes and
attribute sets, which otherwise keep every one ever seen, and the update groups' rewrite
caches) and its compaction (tables left oversized by a mass withdrawal). Under churn that never
lets the RIB idle (a peer whose attributes change every second), the sweep alone, which walks
only the intern tables and needs no full collection, still runs every ``min_interval``, so the
intern tables cannot grow for ever either.

Data flow: the RIB shell calls ``busy()`` whenever it worked; the schedule arms one timer.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable


class GcSchedule:
    """Full collections only when the RIB is idle (see the module docstring)."""

    def __init__(
        self,
        sweep: Callable[[], int],
        compact: Callable[[], object] = lambda: None,
        idle_after: float = 2.0,
        min_interval: float = 60.0,
    ) -> None:
        self.sweep = sweep
        self.compact = compact
        self.idle_after = idle_after
        self.min_interval = min_interval
        self.full_collections = 0
        self.swept = 0  # intern-table entries dropped by the sweeps
        self.busy_sweeps = 0  # sweeps run while the RIB was busy
        self.last_pause = 0.0  # seconds the last full collection took
        self._last_full = 0.0
        self._last_sweep = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._work = 0

    def start(self) -> None:
        """Freeze what exists now (the daemon's set-up) and take over full collections."""
        gc.collect()
        gc.freeze()
        # Young-generation passes stay automatic and cheap; they just run less often.
        gc.set_threshold(10_000, 20, 20)
        self._last_full = self._last_sweep = time.monotonic()

    def stop(self) -> None:
        """Give the objects back to the collector."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)

    def busy(self) -> None:
        """The RIB did work: freeze what it built and wait for the next idle spell."""
        self._work += 1
        gc.freeze()
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.idle_after, self._check, self._work)

    def _check(self, work_seen: int) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        if self._work != work_seen:
            if time.monotonic() - self._last_sweep >= self.min_interval:
                self.swept += self.sweep()
                self.busy_sweeps += 1
                self._last_sweep = time.monotonic()
            self._timer = loop.call_later(self.idle_after, self._check, self._work)
            return
        wait = self.min_interval - (time.monotonic() - self._last_full)
        if wait > 0:
            self._timer = loop.call_later(wait, self._check, self._work)
            return
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        self.swept += self.sweep()
        self.compact()
        gc.freeze()
        self.last_pause = time.perf_counter() - started
        self.full_collections += 1
        self._last_full = self._last_sweep = time.monotonic()
