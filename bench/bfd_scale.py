"""200 BFD sessions at 100 ms x 3 against one speaker, Myna's runtime and BIRD 2, with a load.

Run it (root):

    .venv/bin/python -m bench.bfd_scale [--peers 200] [--minutes 10] [--load all|none|...]
        [--only myna,bird] [--json] [--save bench/results]

Data flow, per row: a fresh ``tests/testbed`` ``Topology`` with two namespaces on one bridge,
``node`` (198.18.0.1, plus 198.18.2.1/23 so the peers are on-link) and ``peers`` (one
address per simulated peer from 198.18.2.10 up, added in one ``ip -batch``). The peers are
simulated in one process in ``peers``: ``bench.bfd_node`` running Myna's BFD runtime with one
multihop session per peer address (multihop: what BIRD runs for Calico's multihop BGP
sessions). The speaker under test runs in ``node`` with one multihop session per peer:

  Myna    ``bench.bfd_node``: the BFD engine in its own process, and in the daemon's process
          the load of ``--load`` during the middle third of the window (``bfd_node``'s
          docstring: RIB-like 5 ms slices, GIL-holding sorts of 1,000,000 floats, full
          collections of a 2,000,000-object heap)
  BIRD 2  ``protocol bfd`` with ``multihop { min rx interval 100 ms; min tx interval 100 ms;
          multiplier 3; }`` and one ``neighbor ... local 198.18.0.1 multihop on`` per peer

Once every session is Up, the window of ``--minutes`` runs. Measured: falls from Up in the
window on the speaker's side (Myna: its events; BIRD: sessions missing from Up in
``birdc show bfd sessions``, sampled every 2 s) and on the simulated peers' side (a false
Down either way: the path never fails), the longest silence between two Up packets each
side saw (how close the other came to the 300 ms Detection Time), and the speaker's CPU over
the window as a share of one core (Myna: the engine process; the daemon process's own CPU,
load included, is shown apart). Every process is started through the topology, so it is
stopped by PID when its ``with`` block ends, however it ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import Host, Topology, wait_for
from testbed.bird import BIRD2, BIRDC2
from testbed.topology import run as run_command

from bench.bfd_node import cpu_seconds
from bench.results_file import machine, save

NODE = "198.18.0.1"
INTERVAL_MS = 100
MULTIPLIER = 3


def peer_addresses(count: int) -> list[str]:
    """198.18.2.10 and up, inside 198.18.2.0/23."""
    return [f"198.18.{2 + (10 + i) // 256}.{(10 + i) % 256}" for i in range(count)]


def build(topology: Topology, count: int) -> tuple[Host, Host, list[str]]:
    node, peers = topology.add_host("node"), topology.add_host("peers")
    node.ip("addr", "add", "198.18.2.1/23", "dev", "eth0")
    addresses = peer_addresses(count)
    batch = "".join(f"addr add {a}/23 dev eth0\n" for a in addresses)
    run_command("ip", "-n", peers.netns, "-batch", "-", stdin=batch)
    return node, peers, addresses


def start_node(
    host: Host, name: str, local: list[str], peer: list[str], window: float, **extra: object
) -> tuple[Path, Path]:
    """Start ``bench.bfd_node`` in ``host``; its result file (and config)."""
    workdir = host.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "local": local,
        "peer": peer,
        "interval_ms": INTERVAL_MS,
        "multiplier": MULTIPLIER,
        "isolation": "process",
        "window": window,
        "load": "none",
        "up_timeout": 90,
        **extra,
    }
    config_path, result = workdir / "config.json", workdir / "result.json"
    config_path.write_text(json.dumps(config))
    host.popen(
        sys.executable, "-m", "bench.bfd_node", str(config_path), str(result),
        log=workdir / "node.log", cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    return result, config_path


def wait_result(path: Path, timeout: float) -> dict[str, Any]:
    data: dict[str, Any] = wait_for(
        lambda: json.loads(path.read_text()), timeout, f"{path}", interval=0.5
    )
    return data


def run_myna(count: int, window: float, load: str, isolation: str = "process") -> dict[str, Any]:
    """Myna's runtime in ``node`` against ``count`` simulated peers."""
    with Topology() as topology:
        node, peers, addresses = build(topology, count)
        # The peers measure over a longer window that covers the node's.
        sim_result, _ = start_node(peers, "sim", addresses, [NODE] * count, window + 30)
        node_result, _ = start_node(
            node, "myna", [NODE] * count, addresses, window, load=load, isolation=isolation
        )
        mine = wait_result(node_result, window + 150)
        theirs = wait_result(sim_result, 60)
    start, end = mine["window"]
    # The peers' window is longer: only their falls inside the speaker's count.
    theirs["falls_from_up"] = sum(1 for at in theirs["fall_times"] if start <= at <= end)
    return {"speaker": mine, "peers": theirs}


def bird_config(addresses: list[str]) -> str:
    timers = (
        f"min rx interval {INTERVAL_MS} ms; min tx interval {INTERVAL_MS} ms; "
        f"multiplier {MULTIPLIER};"
    )
    lines = ["log stderr all;", f"router id {NODE};", "protocol device {}", "protocol bfd {",
             f"  multihop {{ {timers} }};"]  # fmt: skip
    lines += [f"  neighbor {a} local {NODE} multihop on;" for a in addresses]
    return "\n".join([*lines, "}"]) + "\n"


def bird_up(host: Host, socket_path: Path) -> int:
    output = host.run(str(BIRDC2), "-s", str(socket_path), "show", "bfd", "sessions").stdout
    return sum(1 for line in output.splitlines() if " Up " in f" {line} ")


def run_bird(count: int, window: float) -> dict[str, Any]:
    """BIRD 2 in ``node`` against the same simulated peers."""
    with Topology() as topology:
        node, peers, addresses = build(topology, count)
        workdir = node.workdir / "bird"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "bird.conf"
        config.write_text(bird_config(addresses))
        sock = topology.rundir / "bird.ctl"
        pid_file = topology.rundir / "bird.pid"
        bird = node.popen(str(BIRD2), "-f", "-c", str(config), "-s", str(sock),
                          "-P", str(pid_file), log=workdir / "bird.log")  # fmt: skip
        # The peers outlast the window, so that BIRD is read while they still run.
        sim_result, _ = start_node(peers, "sim", addresses, [NODE] * count, window + 30)
        started = time.monotonic()
        wait_for(lambda: bird_up(node, sock), 90, "BIRD's sessions Up", until=lambda n: n == count)
        bring_up = time.monotonic() - started
        cpu0 = cpu_seconds(bird.pid)
        t0 = time.monotonic()
        fewest_up = count
        while time.monotonic() < t0 + window:
            fewest_up = min(fewest_up, bird_up(node, sock))
            time.sleep(2)  # sampling birdc, a measurement's own rate, not a wait for a state
        cpu = cpu_seconds(bird.pid) - cpu0
        elapsed = time.monotonic() - t0
        up_at_end = bird_up(node, sock)
        theirs = wait_result(sim_result, window + 120)
    theirs["falls_from_up"] = sum(1 for at in theirs["fall_times"] if t0 <= at <= t0 + elapsed)
    return {
        "speaker": {
            "sessions": count,
            "bring_up_s": bring_up,
            "up_at_end": up_at_end,
            "cpu_s": cpu,
            "cpu_window_s": elapsed,
            "fewest_up": fewest_up,
        },
        "peers": theirs,
    }


def table(rows: dict[str, dict[str, Any]], minutes: float, load: str) -> str:
    out = [
        f"BFD scale: {next(iter(rows.values()))['peers']['sessions']} multihop sessions at "
        f"{INTERVAL_MS} ms x {MULTIPLIER}, {minutes:g} min window, load on Myna's loop: {load}",
        "",
        "| speaker | Up at end | false Downs (speaker / peers) | longest silence seen by the "
        "peers, ms | longest silence seen by the speaker, ms | speaker CPU, % of a core |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        speaker, peers = row["speaker"], row["peers"]
        if name == "myna":
            cpu = 100 * speaker["engine_cpu_s"] / (speaker["window"][1] - speaker["window"][0])
            own = 100 * speaker["own_cpu_s"] / (speaker["window"][1] - speaker["window"][0])
            cpu_text = f"{cpu:.1f} (engine; daemon process {own:.1f} with the load)"
            downs = speaker["falls_from_up"]
            silence = f"{speaker['longest_silence_ms']:.0f}"
        else:
            cpu_text = f"{100 * speaker['cpu_s'] / speaker['cpu_window_s']:.1f}"
            # birdc sampled every 2 s: sessions missing from Up in any sample.
            downs = speaker["sessions"] - speaker["fewest_up"]
            silence = "-"
        out.append(
            f"| {name} | {speaker['up_at_end']}/{speaker['sessions']} | {downs} / "
            f"{peers['falls_from_up']} | {peers['longest_silence_ms']:.0f} | {silence} | "
            f"{cpu_text} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", default="all", choices=["none", "slices", "gil", "gc", "all"])
    parser.add_argument("--only", default="myna,bird")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    window = args.minutes * 60
    rows: dict[str, dict[str, Any]] = {}
    for name in args.only.split(","):
        if name == "myna":
            rows[name] = run_myna(args.peers, window, args.load)
        elif name == "bird":
            rows[name] = run_bird(args.peers, window)
        else:
            parser.error(f"unknown speaker {name}")
    text = table(rows, args.minutes, args.load)
    print(json.dumps(rows) if args.json else text)
    if args.save:
        path = save(
            "bfd-scale",
            "BFD scale: Myna's runtime and BIRD 2 against simulated peers",
            " ".join(["python -m bench.bfd_scale", *sys.argv[1:]]),
            text,
            {"rows": rows},
            args.save,
            machine(),
        )
        print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
