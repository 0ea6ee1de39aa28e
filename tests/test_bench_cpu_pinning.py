"""The benchmarks' CPU split: the simulated peers on the last CPU, the daemon on the others.

``bench.cpu_pinning.CpuSplit`` is exercised with real processes started here: a "daemon"
started inside ``daemon_spawns()`` must have every thread, the ones it starts later included,
allowed exactly the daemon's CPUs (read back with ``sched_getaffinity``); a "peers" process
started after ``move_to_peers()`` exactly the peers' CPU; this process gets its CPUs back when
the block ends, even when it ends with an error. ``describe`` must count the daemon's threads
and say when one is not pinned. Disabled, or with one CPU, nothing is pinned. The suite must
carry what the harnesses say into its rows and pass ``--no-pin`` on
(``bench.suite`` with its child process replaced).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import bgp_clients, suite
from bench.cpu_pinning import CpuSplit

TWO_CPUS = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to split")

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


class Processes:
    """Children started by a test, killed and reaped (pipes closed) whatever happens."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", THREADED],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.started.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    def stop(self) -> None:
        for p in self.started:
            p.kill()
            p.communicate()


@pytest.fixture
def children() -> Iterator[Processes]:
    processes = Processes()
    try:
        yield processes
    finally:
        processes.stop()


def masks(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(t)) for t in sorted(os.listdir(f"/proc/{pid}/task"))]


@TWO_CPUS
def test_daemon_and_peers_get_their_cpus_and_this_process_gets_its_own_back(
    children: Processes,
) -> None:
    mine = os.sched_getaffinity(0)
    allowed = sorted(mine)
    with CpuSplit() as cpus:
        with cpus.daemon_spawns():
            daemon = children.start()
        assert os.sched_getaffinity(0) == mine
        cpus.move_to_peers()
        peers = children.start()
        assert os.sched_getaffinity(0) == {allowed[-1]}
        # A thread the daemon starts after start-up has the daemon's CPUs too.
        assert daemon.stdin is not None and daemon.stdout is not None
        daemon.stdin.write("\n")
        daemon.stdin.flush()
        assert daemon.stdout.readline().strip() == "started"
        said = cpus.describe([daemon.pid])
    assert masks(daemon.pid) == [set(allowed[:-1])] * 3
    assert masks(peers.pid) == [{allowed[-1]}] * 2
    assert os.sched_getaffinity(0) == mine
    daemon_cpus = ",".join(str(c) for c in allowed[:-1])
    assert said == f"daemon on CPU {daemon_cpus} (3 threads), peers on CPU {allowed[-1]}"


@TWO_CPUS
def test_a_daemon_thread_off_its_cpus_is_reported(children: Processes) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    with CpuSplit() as cpus:
        with cpus.daemon_spawns():
            daemon = children.start()
        os.sched_setaffinity(daemon.pid, {allowed[-1]})  # as a thread missed by a late pin
        said = cpus.describe([daemon.pid])
    assert said.endswith("; 1 daemon threads NOT pinned")


@TWO_CPUS
def test_a_daemon_that_has_exited_is_passed_over(children: Processes) -> None:
    with CpuSplit() as cpus:
        with cpus.daemon_spawns():
            gone, alive = children.start(), children.start()
        gone.kill()
        gone.wait()
        assert "(2 threads)" in cpus.describe([gone.pid, alive.pid])


def test_this_process_gets_its_cpus_back_after_an_error() -> None:
    mine = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), CpuSplit() as cpus:
        cpus.move_to_peers()
        raise RuntimeError("a row that failed")
    assert os.sched_getaffinity(0) == mine


@pytest.mark.parametrize("one_cpu", [False, True])
def test_disabled_or_one_cpu_pins_nothing(children: Processes, one_cpu: bool) -> None:
    mine = os.sched_getaffinity(0)
    try:
        if one_cpu:
            os.sched_setaffinity(0, {min(mine)})
        before = os.sched_getaffinity(0)
        with CpuSplit(enabled=one_cpu) as cpus:  # one CPU: asked to pin, cannot
            with cpus.daemon_spawns():
                daemon = children.start()
            cpus.move_to_peers()
            peers = children.start()
            said = cpus.describe([daemon.pid])
            assert os.sched_getaffinity(0) == before
    finally:
        os.sched_setaffinity(0, mine)
    assert said == ("not pinned (one CPU)" if one_cpu else "not pinned (--no-pin)")
    assert masks(daemon.pid) == [before] * 2 and masks(peers.pid) == [before] * 2


def test_the_suite_carries_the_pinning_into_its_rows_and_passes_no_pin_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, ...]] = []
    pinned = "daemon on CPU 0 (1 thread), peers on CPU 1"
    mesh_row: dict[str, Any] = {
        "daemon": "myna",
        "programs": "kernel",
        "kernel_route_kinds": {},
        "outcome": "complete",
        "established_line": "",
        "converge_seconds": 0.1,
        "kernel_routes_installed": 4,
        "routes_announced": 4,
        "idle_cpu_percent": 0.1,
        "rss_mib": 40.0,
        "peak_rss_mib": 41.0,
        "pinning": pinned,
    }
    fanout_row = {
        "seconds": 0.05,
        "peak_rss_mib": 50.0,
        "cpu_seconds": 0.04,
        "notes": pinned,
        "raw": {"pinning": pinned, "prefixes_announced": 100},
    }

    def child(module: str, *args: str, timeout: float = 0.0) -> str:
        calls.append((module, *args))
        if module == "mesh_scale":
            return json.dumps(mesh_row) + "\n"
        return json.dumps({"cases": {"calico": {"rows": {"myna": fanout_row}}}})

    monkeypatch.setattr(suite, "child", child)
    monkeypatch.setattr(suite, "_peer_harness_flags", [])
    mesh = suite.mesh_rows("mesh", "mesh", 4, 1.0, 10.0)
    fanout = suite.fanout_rows("fanout", ["calico"], 1, 10.0)
    assert mesh[0]["extra"]["pinning"] == pinned and pinned in mesh[0]["notes"]
    assert fanout[0]["extra"]["pinning"] == pinned
    assert all("--no-pin" not in call for call in calls)

    monkeypatch.setattr(suite, "_peer_harness_flags", ["--no-pin"])
    calls.clear()
    suite.mesh_rows("mesh", "mesh", 4, 1.0, 10.0)
    suite.fanout_rows("fanout", ["calico"], 1, 10.0)
    assert [call[0] for call in calls] == ["mesh_scale", "reflector_fanout"]
    assert all("--no-pin" in call for call in calls)


def test_daemon_cpu_is_read_per_thread_to_the_nanosecond() -> None:
    # A child burns CPU in two threads, then waits; its CPU time must agree with the kernel's
    # tick count for the whole process (/proc/PID/stat, 10 ms ticks) and not be a multiple of
    # a tick. Expected values come from the kernel, not from the function under test.
    burn = (
        "import sys, threading, time\n"
        "def spin():\n"
        "    end = time.thread_time() + 0.15\n"
        "    while time.thread_time() < end: pass\n"
        "t = threading.Thread(target=spin); t.start(); spin(); t.join()\n"
        "print('done', flush=True); sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        # the spinning thread has ended by now: its time is in /proc/PID/stat, not in the
        # threads still listed, so the main thread's 0.15 s at least must be seen
        fields = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()
        ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        measured = bgp_clients.cpu_seconds(child.pid)
        assert 0.15 <= measured <= ticks + 0.02
        assert abs(measured * 100 - round(measured * 100)) > 1e-6  # not in whole ticks
    finally:
        child.kill()
        child.communicate()
    assert bgp_clients.cpu_seconds(child.pid) == 0.0  # gone
