"""``bench.bfd_scale``'s daemon rows: a real Myna daemon with 200 BFD peers and a real load.

Run by ``bench.bfd_scale`` (``--only myna-rib,myna-kernel``), never alone.

Data flow, per row: the ``node`` / ``peers`` namespaces of ``bfd_scale.build`` plus ``feeder``
(198.18.0.3). ``myna run`` in ``node`` has one passive iBGP peer per simulated peer with
``bfd: {min_tx: 100, min_rx: 100, multiplier: 3, multihop: true}`` and ``source_address``
198.18.0.1 (the simulated peers, ``bench.bfd_node`` in ``peers``, speak BFD only: their BGP
sessions never come up, which changes nothing for BFD), and one BGP peer without BFD, the
feeder (``bench.bgp_feeder`` in ``feeder``). Once every BFD session is Up in the daemon and
the feeder's session is Established, the window starts; during its middle third the feeder
loads the daemon again and again, each cycle being ``send`` (every route), waiting until the
daemon holds them all, ``withdraw``, waiting until they are gone:

  rib      1,000,000 /32s (``bgp_feeder``'s benchmark table), kernel programming off: the
           RIB's work alone (decode, Loc-RIB, decision, update groups), on the daemon's loop
  kernel   100,000 /32s from 198.18.64.0 with ``kernel: {program: true}``: 100,000 routes
           written into the node's kernel and deleted again, each cycle

The daemon's BFD sessions are read over its control socket (``myna show bfd``): a fall from Up
during the window is a session whose state-change count grew; the longest silence is the
worst any session saw. The CPU figures are ``/proc/PID/stat`` of the engine process (found by
its command line in the namespace) and of the daemon's own process, over the window.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from testbed import Host, Topology, wait_for

from bench.bfd_node import cpu_seconds
from bgpd.control_socket import request

REPO = Path(__file__).resolve().parents[1]
MYNA = REPO / ".venv" / "bin" / "myna"
FEEDER = "198.18.0.3"
LOADS = {
    "rib": {"count": 1_000_000, "first": None, "program": False},
    "kernel": {"count": 100_000, "first": "198.18.64.0", "program": True},
}


def daemon_config(addresses: list[str], node: str, interval_ms: int, multiplier: int,
                  control: Path, program: bool) -> dict[str, Any]:  # fmt: skip
    """The node's config: the BFD peers, the feeder, kernel programming as the load needs."""
    bfd = {"min_tx": interval_ms, "min_rx": interval_ms, "multiplier": multiplier,
           "multihop": True}  # fmt: skip
    peers = [
        {"address": a, "as": 64512, "passive": True, "source_address": node, "bfd": bfd}
        for a in addresses
    ]
    peers.append({"address": FEEDER, "as": 64512, "passive": True, "source_address": node})
    return {
        "router_id": node,
        "local_as": 64512,
        "listen": {"addresses": ["0.0.0.0"], "port": 179},
        "timers": {"hold_time": 90, "error_wait": [1, 2]},
        "control": {"socket": str(control)},
        "kernel": {"program": program},
        "selection_deferral": 0,
        "log_level": "warning",
        "peers": peers,
    }


def bfd_rows(control: Path) -> list[dict[str, Any]]:
    answer = request(control, "bfd", timeout=30)
    rows: list[dict[str, Any]] = answer["data"]
    return rows


def status(control: Path) -> dict[str, Any]:
    data: dict[str, Any] = request(control, "status", timeout=30)["data"]
    return data


def engine_pid(host: Host) -> int:
    for pid in host.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"bfd.engine" in cmdline:
            return pid
    raise AssertionError("no BFD engine process in the node's namespace")


class Feeder:
    """``bench.bgp_feeder`` in its namespace, driven over its stdin."""

    def __init__(self, host: Host, node: str, count: int, first: str | None, log: Path) -> None:
        args = [sys.executable, "-m", "bench.bgp_feeder", "--peer", node, "--local", host.ipv4,
                "--count", str(count)]  # fmt: skip
        if first:
            args += ["--first", first]
        self.log = log
        self.count = count
        self.process = host.popen(*args, log=log, cwd=REPO, stdin=subprocess.PIPE)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def command(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        self.process.stdin.flush()


def load_cycle(feeder: Feeder, control: Path, kernel: bool, deadline: float) -> dict[str, float]:
    """One send-then-withdraw; the seconds each half took to be in the daemon (and kernel)."""

    def held() -> int:
        data = status(control)
        return int(data["kernel"].get("installed", 0)) if kernel else int(data["loc_rib"])

    started = time.monotonic()
    feeder.command("send")
    wait_for(held, max(deadline - started, 60), "the daemon holding the feeder's routes",
             until=lambda n: n >= feeder.count, interval=0.5)  # fmt: skip
    loaded = time.monotonic()
    feeder.command("withdraw")
    wait_for(held, max(deadline - loaded, 60), "the feeder's routes gone from the daemon",
             until=lambda n: n == 0, interval=0.5)  # fmt: skip
    return {"in_s": loaded - started, "out_s": time.monotonic() - loaded}


def run_daemon_row(count: int, window: float, load: str) -> dict[str, Any]:
    """One daemon row (see the module docstring)."""
    # bench.bfd_scale imports this module: its helpers are imported when a row runs.
    from bench.bfd_scale import (  # noqa: PLC0415
        INTERVAL_MS,
        MULTIPLIER,
        NODE,
        build,
        start_node,
        wait_result,
    )

    spec = LOADS[load]
    node_address = NODE
    with Topology() as topology:
        node, peers, addresses = build(topology, count)
        feeder_host = topology.add_host("feeder")
        control = topology.rundir / "myna.ctl"
        workdir = node.workdir / "myna"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "myna.yaml"
        settings = daemon_config(
            addresses, node_address, INTERVAL_MS, MULTIPLIER, control, bool(spec["program"])
        )
        config.write_text(yaml.safe_dump(settings))
        daemon = node.popen(str(MYNA), "run", "-c", str(config), log=workdir / "myna.log")
        # The peers measure over a window that covers the node's, set-up included.
        sim_result, _ = start_node(peers, "sim", addresses, [node_address] * count, window + 60)
        # The control socket answers once the daemon listens for BGP: the feeder may connect.
        wait_for(lambda: status(control), 60, "the daemon's control socket", interval=0.5)
        first = spec["first"]
        feeder = Feeder(feeder_host, node_address, int(str(spec["count"])),
                        None if first is None else str(first),
                        feeder_host.workdir / "feeder.log")  # fmt: skip
        started = time.monotonic()
        wait_for(lambda: bfd_rows(control), 120, "every BFD session Up in the daemon",
                 until=lambda rows: sum(r["state"] == "Up" for r in rows) == count,
                 interval=1.0)  # fmt: skip
        bring_up = time.monotonic() - started
        wait_for(feeder.lines, 120, "the feeder Established",
                 until=lambda lines: "established" in lines, interval=0.5)  # fmt: skip
        engine = engine_pid(node)
        before = {r["peer"]: r["state_changes"] for r in bfd_rows(control)}
        cpu0 = (cpu_seconds(engine), cpu_seconds(daemon.pid))
        t0 = time.monotonic()
        cycles = []
        # A measurement's own schedule (the window's thirds), not a wait for a state.
        time.sleep(window / 3)
        load_end = t0 + 2 * window / 3
        while time.monotonic() < load_end:
            cycles.append(load_cycle(feeder, control, bool(spec["program"]), load_end + 120))
        rest = t0 + window - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        t1 = time.monotonic()
        cpu = (cpu_seconds(engine) - cpu0[0], cpu_seconds(daemon.pid) - cpu0[1])
        rows = bfd_rows(control)
        feeder.command("stop")
        theirs = wait_result(sim_result, window + 180)
    falls = sum(1 for r in rows if r["state_changes"] != before.get(r["peer"]))
    theirs["falls_from_up"] = sum(1 for at in theirs["fall_times"] if t0 <= at <= t1)
    return {
        "speaker": {
            "sessions": count,
            "bring_up_s": bring_up,
            "up_at_end": sum(r["state"] == "Up" for r in rows),
            "falls_from_up": falls,
            "longest_silence_ms": max(r.get("longest_silence_ms", 0.0) for r in rows),
            "engine_cpu_s": cpu[0],
            "own_cpu_s": cpu[1],
            "window": [t0, t1],
            "load": load,
            "load_prefixes": spec["count"],
            "load_cycles": cycles,
        },
        "peers": theirs,
    }


def describe(row: dict[str, Any]) -> str:
    """The load column's text: cycles done and how long the daemon took for each half."""
    speaker = row["speaker"]
    cycles = speaker["load_cycles"]
    if not cycles:
        return "no cycle finished"
    ins = ", ".join(f"{c['in_s']:.1f}" for c in cycles)
    outs = ", ".join(f"{c['out_s']:.1f}" for c in cycles)
    where = "kernel" if speaker["load"] == "kernel" else "RIB"
    return (f"{len(cycles)} x {speaker['load_prefixes']:,} /32s into the {where} "
            f"(in: {ins} s; out: {outs} s)")  # fmt: skip
