"""Keep the benchmarks' simulated peers off the CPUs of the daemon under test.

Role: ``bench.reflector_fanout`` and ``bench.mesh_scale`` run the daemon under test and one
process that simulates all its peers (``bench.bgp_clients``) on the same machine. In a real
cluster the peers are other hosts: they never take the daemon's CPU. On this machine they
would, and not evenly. Seen with ``perf sched timehist`` in ``prop-100k`` (2 vCPUs): the
scheduler at times put the clients process, woken by the reflector's socket write, on the
reflector's vCPU although the other vCPU was idle; it waited there about 3 ms and then
preempted the reflector, whose ``send`` calls took up to 4 ms with an involuntary context
switch in them. Whether that happens run after run depends on how long
the clients sit idle between two writes, so a daemon a few per cent slower per slice lost
15-50 % of its time to it (Myna from ``bird.cfg`` against Myna from YAML), while in other
runs neither lost anything. With the peers on a CPU of their own it does not happen: the
rows measure the daemon, as a cluster would see it.

Data flow: after the harness has started the daemon's processes and the peers' process,
``pin_apart(daemon_pids, peer_pids)`` gives every thread of the peers' process the last CPU
this process may use and every thread of the daemon's processes the others (threads they
start later inherit it), and returns what it did for the report. With fewer than two CPUs
nothing is pinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []  # it has exited: the harness reports that on its own


def _pin(pid: int, cpus: set[int]) -> None:
    # Twice: a thread started while the first pass ran may have copied the old mask.
    for _ in range(2):
        for tid in _threads(pid):
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                os.sched_setaffinity(tid, cpus)


def pin_apart(daemon_pids: Iterable[int], peer_pids: Iterable[int]) -> str:
    """Pin the peers to the last allowed CPU and the daemon to the rest; what was done."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return "not pinned (one CPU)"
    peers_cpu, daemon_cpus = {allowed[-1]}, set(allowed[:-1])
    for pid in daemon_pids:
        _pin(pid, daemon_cpus)
    for pid in peer_pids:
        _pin(pid, peers_cpu)
    listed = ",".join(str(c) for c in sorted(daemon_cpus))
    return f"daemon on CPU {listed}, peers on CPU {allowed[-1]}"


__all__ = ["pin_apart"]
