"""Where the BFD engine must run: a thread of the daemon or a process of its own (measured).

Run it (root):

    .venv/bin/python -m bench.bfd_isolation [--peers 10] [--seconds 30] [--json]
        [--save bench/results]

Data flow: for each isolation (``thread``, ``process``) and each load of ``bench.bfd_node``
(``slices``, ``gil``, ``gc``), ``bench.bfd_scale.run_myna`` builds the two namespaces, runs
the simulated peers in their own process and Myna's BFD runtime with that isolation, the
load on its daemon thread during the middle third of the window. The table shows what the
peers saw: the longest silence between two of Myna's Up packets (the peers' Detection Time is
300 ms: 3 x 100 ms) and how many sessions they declared Down; and the load's longest single
step (how long the daemon's thread held the GIL in one go).

Result on this machine (2 cores shared with other work, 10 sessions, 24 s windows;
bench/results/2026-12-07-bfd-isolation.md): in a thread, 10, 10 and 15 false Downs under
the slices, gil and gc loads; in a process, none, and the peers' longest silence 102-105 ms.
The engine's module docstring gives the decision that follows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.bfd_scale import run_myna
from bench.results_file import machine, save

LOADS = ("slices", "gil", "gc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for isolation in ("thread", "process"):
        for load in LOADS:
            result = run_myna(args.peers, args.seconds, load, isolation)
            speaker, peers = result["speaker"], result["peers"]
            rows.append(
                {
                    "isolation": isolation,
                    "load": load,
                    "load_longest_step_ms": speaker["load_longest_step_ms"],
                    "peers_longest_silence_ms": peers["longest_silence_ms"],
                    "peers_false_downs": peers["falls_from_up"],
                    "speaker_false_downs": speaker["falls_from_up"],
                    "speaker_longest_silence_ms": speaker["longest_silence_ms"],
                }
            )
    lines = [
        f"BFD engine isolation: {args.peers} multihop sessions at 100 ms x 3 (Detection Time "
        f"300 ms), {args.seconds:g} s windows, load in the middle third",
        "",
        "| engine in | load on the daemon's thread | longest load step, ms | longest silence "
        "the peers saw, ms | false Downs at the peers | at Myna |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['isolation']} | {r['load']} | {r['load_longest_step_ms']:.0f} | "
        f"{r['peers_longest_silence_ms']:.0f} | {r['peers_false_downs']} | "
        f"{r['speaker_false_downs']} |"
        for r in rows
    ]
    text = "\n".join(lines)
    print(json.dumps(rows) if args.json else text)
    if args.save:
        path = save(
            "bfd-isolation",
            "BFD engine isolation: thread versus process",
            " ".join(["python -m bench.bfd_isolation", *sys.argv[1:]]),
            text,
            {"rows": rows},
            args.save,
            machine(),
        )
        print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
