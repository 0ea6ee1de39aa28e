"""The benchmarks' CPU split: the simulated peers on a CPU of their own, the daemon on the rest.

``bench.cpu_pinning.pin_apart`` is given a "daemon" with a second thread and a "peers"
process, both real processes started here; afterwards every thread of each must be allowed
exactly the CPUs the split says (read back with ``sched_getaffinity``), and a thread the daemon
starts afterwards must inherit its mask. With one CPU allowed, nothing is pinned.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cpu_pinning import pin_apart

# Starts a second thread at once and a third when a line arrives on stdin; says "ready" and
# "started" so the test need not guess when they exist.
THREADED = """
import sys, threading
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
threading.Thread(target=stop.wait, daemon=True).start()
print("started", flush=True)
sys.stdin.readline()
"""


def threads(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


@pytest.fixture
def processes() -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):
            p = subprocess.Popen(
                [sys.executable, "-c", THREADED],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield started[0], started[1]
    finally:
        for p in started:
            p.kill()
            p.wait()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to split")
def test_the_peers_get_the_last_cpu_and_the_daemon_the_others(
    processes: tuple[subprocess.Popen[str], subprocess.Popen[str]],
) -> None:
    daemon, peers = processes
    allowed = sorted(os.sched_getaffinity(0))
    assert len(threads(daemon.pid)) == 2 and len(threads(peers.pid)) == 2

    said = pin_apart([daemon.pid], [peers.pid])

    masks = {
        pid: [os.sched_getaffinity(t) for t in threads(pid)] for pid in (daemon.pid, peers.pid)
    }
    assert masks == {daemon.pid: [set(allowed[:-1])] * 2, peers.pid: [{allowed[-1]}] * 2}
    assert said == (
        f"daemon on CPU {','.join(str(c) for c in allowed[:-1])}, peers on CPU {allowed[-1]}"
    )
    # A thread the daemon starts later has its mask too.
    assert daemon.stdin is not None and daemon.stdout is not None
    daemon.stdin.write("\n")
    daemon.stdin.flush()
    assert daemon.stdout.readline().strip() == "started"
    assert len(threads(daemon.pid)) == 3
    assert all(os.sched_getaffinity(t) == set(allowed[:-1]) for t in threads(daemon.pid))


def test_one_cpu_pins_nothing(
    processes: tuple[subprocess.Popen[str], subprocess.Popen[str]],
) -> None:
    daemon, peers = processes
    before = {pid: os.sched_getaffinity(pid) for pid in (daemon.pid, peers.pid)}
    mine = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mine)})
        said = pin_apart([daemon.pid], [peers.pid])
    finally:
        os.sched_setaffinity(0, mine)
    assert said == "not pinned (one CPU)"
    assert {pid: os.sched_getaffinity(pid) for pid in (daemon.pid, peers.pid)} == before


def test_a_process_that_has_exited_is_passed_over(
    processes: tuple[subprocess.Popen[str], subprocess.Popen[str]],
) -> None:
    daemon, peers = processes
    peers.kill()
    peers.wait()
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs to split")
    pin_apart([daemon.pid], [peers.pid])
    assert not Path(f"/proc/{peers.pid}").exists()
    assert os.sched_getaffinity(daemon.pid) == set(sorted(os.sched_getaffinity(0))[:-1])
