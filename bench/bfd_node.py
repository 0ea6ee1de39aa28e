"""One BFD speaker for the BFD benchmarks: Myna's runtime with N multihop sessions, and a load.

Run by ``bench.bfd_scale`` and ``bench.bfd_isolation`` inside a namespace, never by hand:

    python -m bench.bfd_node CONFIG.json RESULT.json

CONFIG: ``local`` addresses and ``peer`` addresses (one session per pair, multihop, since that
is what Calico's multihop BGP sessions get from BIRD), ``interval_ms``, ``multiplier``,
``isolation`` (``process`` or ``thread``: where the engine runs), ``window`` seconds to measure
once every session is Up, and ``load`` (``none``, ``slices``, ``gil``, ``gc`` or ``all``),
applied to this process's event loop during the middle third of the window:

  slices  the RIB's way of working through 1,000,000 prefixes: 5 ms of pure Python, then a
          yield to the loop, over and over
  gil     C calls that hold the GIL: ``sorted()`` of 1,000,000 floats (a few hundred ms
          each on this machine), then a yield
  gc      full garbage collections over a heap of 2,000,000 live tuples (as many objects as a
          RIB of 1,000,000 routes), then a yield
  all     the three in turn

Data flow: a ``BfdService`` starts the engine; each state change is kept with its engine
time. When every session is Up (or after ``up_timeout``), the window starts: the engine's and
this process's CPU times are read, and again at the end. RESULT gets the sessions that fell
from Up during the window, the longest silence, CPU seconds, and the load's own pauses
(the longest time one load step held the loop). The longest silence is the worst any
session saw between two Up packets of its peer (``SessionStatus.longest_silence_us``):
read before and after the window, so a load that made it worse shows as a larger after.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from bfd.ipc import PeerConfig
from bfd.service import BfdRemoteChange, BfdService, BfdStateChange, Isolation
from bfd.wire_codes import HopMode, State

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of ``pid`` (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds() -> float:
    """This process's CPU; in thread mode that includes the engine."""
    return cpu_seconds(os.getpid())


class Recorder:
    """Every state change of every session."""

    def __init__(self) -> None:
        self.changes: list[BfdStateChange] = []
        self.failed: list[str] = []

    def bfd_state_changed(self, change: BfdStateChange) -> None:
        self.changes.append(change)

    def bfd_remote_changed(self, change: BfdRemoteChange) -> None:
        pass  # the peers' states are theirs to count

    def bfd_session_failed(self, key: str, reason: str) -> None:
        self.failed.append(f"{key}: {reason}")


async def load(kind: str, until: float, pauses: list[float]) -> None:
    """Keep the event loop busy the way ``kind`` says until ``until`` (monotonic)."""
    kinds = ["slices", "gil", "gc"] if kind == "all" else [kind]
    heap = [(i, str(i)) for i in range(2_000_000)] if "gc" in kinds else []
    floats = [random.random() for _ in range(1_000_000)] if "gil" in kinds else []
    step = 0
    while time.monotonic() < until:
        which = kinds[step % len(kinds)]
        step += 1
        began = time.monotonic()
        if which == "slices":
            end = began + 0.005
            while time.monotonic() < end:
                sum(range(200))
        elif which == "gil":
            sorted(floats)
        else:
            gc.collect()
        pauses.append(time.monotonic() - began)
        await asyncio.sleep(0)
    del heap


async def main(config_path: str, result_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    service = BfdService(Isolation(config["isolation"]))
    await service.start()
    recorder = Recorder()
    keys = []
    for local, peer in zip(config["local"], config["peer"], strict=True):
        key = f"{local}-{peer}"
        keys.append(key)
        service.add_session(
            PeerConfig(
                key=key,
                peer=peer,
                local=local,
                mode=HopMode.MULTIHOP,
                desired_min_tx_us=config["interval_ms"] * 1000,
                required_min_rx_us=config["interval_ms"] * 1000,
                detect_mult=config["multiplier"],
            ),
            recorder,
        )
    started = time.monotonic()
    up_timeout = config.get("up_timeout", 60)
    while time.monotonic() - started < up_timeout:
        status = await service.status()
        if sum(1 for s in status.sessions.values() if s["state"] == State.UP) == len(keys):
            break
        await asyncio.sleep(0.2)
    bring_up = time.monotonic() - started
    before = await service.status()
    engine_pid = service.engine_pid or os.getpid()
    window = config["window"]
    t0 = time.monotonic()
    engine_cpu0, own_cpu0 = cpu_seconds(engine_pid), thread_cpu_seconds()
    pauses: list[float] = []
    if config["load"] != "none":
        await asyncio.sleep(window / 3)
        await load(config["load"], t0 + 2 * window / 3, pauses)
    await asyncio.sleep(max(0.0, t0 + window - time.monotonic()))
    t1 = time.monotonic()
    engine_cpu, own_cpu = cpu_seconds(engine_pid) - engine_cpu0, thread_cpu_seconds() - own_cpu0
    after = await service.status()
    # A peer's AdminDown (the other speaker stopping at the end) is no failure (RFC 5882 3.2).
    falls = [c for c in recorder.changes if t0 <= c.at <= t1 and c.failure]
    worst_silence = max((s["longest_silence_us"] for s in after.sessions.values()), default=0)
    result: dict[str, Any] = {
        "sessions": len(keys),
        "up_at_start": sum(1 for s in before.sessions.values() if s["state"] == State.UP),
        "up_at_end": sum(1 for s in after.sessions.values() if s["state"] == State.UP),
        "bring_up_s": bring_up,
        "window": [t0, t1],
        "falls_from_up": len(falls),
        "fall_diagnostics": sorted({int(c.diagnostic) for c in falls}),
        "fall_times": [c.at for c in falls],
        "longest_silence_ms": worst_silence / 1000,
        "silence_before_ms": max(
            (s["longest_silence_us"] for s in before.sessions.values()), default=0
        )
        / 1000,
        "engine_cpu_s": engine_cpu,
        "own_cpu_s": own_cpu,
        "engine_pid": engine_pid,
        "load_steps": len(pauses),
        "load_longest_step_ms": max(pauses, default=0.0) * 1000,
        "failed": recorder.failed,
        "dropped": after.dropped,
    }
    Path(result_path).write_text(json.dumps(result))
    await service.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
