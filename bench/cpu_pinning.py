"""Keep the benchmarks' simulated peers off the CPUs of the daemon under test.

Role: ``bench.reflector_fanout`` and ``bench.mesh_scale`` run the daemon under test and one
process that simulates all its peers (``bench.bgp_clients``) on the same machine. In a real
cluster the peers are other hosts: they never take the daemon's CPU. Here they did, and not
evenly. Seen with ``perf sched timehist`` in ``prop-100k`` (2 vCPUs): the scheduler at times
put the clients process, woken by the reflector's socket write, on the reflector's vCPU
although the other vCPU was idle; it waited there about 3 ms and then preempted the
reflector, whose ``send`` calls took up to 4 ms with an involuntary context switch in them.
It struck Myna from ``bird.cfg`` far more often than Myna from YAML (whose sends were almost
never preempted), in some runs and not in others: against the YAML row, medians of 2 to 15
runs read 1.09 to 1.52. Both rows sent the receiver the same bytes (508 KB, 133-138 UPDATEs)
in 7 to 11 writes each. The bird.cfg daemon's RIB slices were a few per cent longer (its kernel
channel and Calico's export filter, traced per slice), so the clients sat idle a little longer
between writes; that this is what tips the scheduler is a guess, not shown. Pinned, the clients
cannot preempt the daemon. The ratio then read 0.93 to 1.06 in three 9-run medians of
``reflector_fanout`` alone, and 1.14 and 1.19 in two suite runs, whose times fell in two
clusters (about 0.04 and 0.06 s) in both modes: pinning removes this preemption, not the noise.

What pinning does not remove: over veth, the kernel's receive work for what the daemon sends
(the clients' TCP input, their ACKs) still runs in softirq on the daemon's CPU, as the
receiving host's would not. And the daemon gets every CPU but one: on a 2-CPU machine one,
which costs the single-threaded daemons (Myna, BIRD) nothing and the multi-threaded ones (FRR's
bgpd with zebra, GoBGP's threads) the parallelism a real 2-CPU node would give them.

Data flow: a row opens ``CpuSplit(enabled)`` (which reads the CPUs this process may use),
starts the daemon inside ``daemon_spawns()`` so that its processes and every thread they ever
start inherit the daemon's CPUs (a mask set after start-up could miss a thread created
meanwhile, and Go sizes GOMAXPROCS at start), then calls ``move_to_peers()`` before starting
the peers' process: from then on the harness itself (its polling, the ``gobgp`` command line
it runs) shares the peers' CPU. ``describe(daemon_pids)`` at the end of the row says what was
done, having checked every thread of the daemon's processes. Leaving the ``with`` block gives
this process its CPUs back. With fewer than two CPUs, or with ``--no-pin``, nothing is pinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from types import TracebackType


def _cpus(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


class CpuSplit:
    """The CPUs of one benchmark row's daemon and of its peers (see the module docstring)."""

    def __init__(self, enabled: bool = True) -> None:
        self._original = os.sched_getaffinity(0)
        allowed = sorted(self._original)
        self.daemon: set[int] | None = None
        self.peers: set[int] | None = None
        if not enabled:
            self.why_not = "--no-pin"
        elif len(allowed) < 2:
            self.why_not = "one CPU"
        else:
            self.why_not = ""
            self.daemon, self.peers = set(allowed[:-1]), {allowed[-1]}

    def __enter__(self) -> CpuSplit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        os.sched_setaffinity(0, self._original)

    @contextlib.contextmanager
    def daemon_spawns(self) -> Iterator[None]:
        """Processes started inside run on the daemon's CPUs (they inherit this thread's)."""
        if self.daemon is not None:
            os.sched_setaffinity(0, self.daemon)
        try:
            yield
        finally:
            os.sched_setaffinity(0, self._original)

    def move_to_peers(self) -> None:
        """This process, and what it starts, on the peers' CPU until the ``with`` block ends."""
        if self.peers is not None:
            os.sched_setaffinity(0, self.peers)

    def describe(self, daemon_pids: Iterable[int]) -> str:
        """What was done, for the report, after checking every thread of the daemon."""
        if self.daemon is None or self.peers is None:
            return f"not pinned ({self.why_not})"
        threads = 0
        elsewhere = 0
        for pid in daemon_pids:
            with contextlib.suppress(FileNotFoundError):  # exited: the harness says so
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(ProcessLookupError):  # the thread just ended
                        mask = os.sched_getaffinity(int(tid))
                        threads += 1
                        elsewhere += mask != self.daemon
        text = (
            f"daemon on CPU {_cpus(self.daemon)} ({threads} thread{'s' * (threads != 1)}), "
            f"peers on CPU {_cpus(self.peers)}"
        )
        return text + (f"; {elsewhere} daemon threads NOT pinned" if elsewhere else "")


__all__ = ["CpuSplit"]
