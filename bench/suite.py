"""The side-by-side benchmark suite: every scenario, Myna beside BIRD 2, FRR, GoBGP and ExaBGP.

Run it (root):

    .venv/bin/python -m bench.suite [--quick] [--only SCENARIOS] [--out bench/results] [--name N] \\
        [--no-pin]

Scenarios (``--only`` takes a comma-separated subset of these names):

  propagation  one sender -> the daemon -> one receiver, 100,000 and 1,000,000 IPv4 /32s
               (``bench.reflector_fanout`` with cases ``prop-100k`` / ``prop-1m`` of
               ``bench.bgp_clients``): sender and receiver are iBGP route-reflector clients of
               the daemon, the one set-up all four daemons forward the same way; from the
               sender's first UPDATE to the receiver holding every prefix
  fanout       ``bench.reflector_fanout``'s cases ``calico`` and ``big``
  mesh         ``bench.mesh_scale``: one mesh node, 500 simulated iBGP mesh peers with 4 /26
               blocks each; time from the first UPDATE (sessions up) to every route in the
               node's kernel, kernel routes installed, idle CPU over 10 s and RSS
  kernel       ``bench.kernel_bench`` (Myna's netlink code against pyroute2, 100,000 routes)
               and ``bench.mesh_scale --case install-100k`` (each daemon's own time from one
               peer's first UPDATE to 100,000 /32s in its kernel; ``repeat`` runs per row)
  memory       ``bench.rib_memory``: bytes per route at 1,000,000 prefixes, Myna and BIRD 2
  codec        ``bench.codec_bench``: UPDATE decode / encode against ExaBGP 5's codec
  latency      ``bench.block_latency``: a block from host A's kernel to host B's kernel

Myna runs twice in the scenarios that start its daemon: ``myna`` from its YAML and
``myna-birdcfg`` from the ``bird.cfg`` calico-node's confd renders for the same role, with
Calico's filters (``bench.birdcfg_myna``): the reflector of propagation and fanout, the mesh
node of mesh and of the kernel scenario's ``install-100k``. The report gives each pair's
ratio; issue 14 wants the propagation, fanout and kernel ones at most 1.15 (targets).

In propagation, fanout, mesh and ``install-100k`` the process simulating the peers gets the
last CPU and the daemon under test the others (``bench.cpu_pinning`` says why, and what that
costs the multi-threaded FRR and GoBGP on 2 CPUs); ``--no-pin`` passes on to those harnesses
and lets them share. The report says which (``cpu_split``), and so does each row.

Data flow: each scenario runs its benchmark module in a child process with ``--json`` (so a
crash or a hang of one scenario leaves the others' figures) and turns its output into rows
``{scenario, case, impl, metric, value, unit, notes, extra}``; the ``none`` rows (a byte relay
or a sink instead of the daemon, or no daemon at all) show what the harness alone needs. Then
``bench.results_file.save`` writes ``<date>-suite[-quick].md`` (a table per scenario, the
Myna/BIRD ratios, the bird.cfg/YAML ratios, the targets met or not; ``bench.suite_report``)
and ``.json`` (every row, the raw outputs, the ratios) with the machine, and
``<date>-suite[-quick].png`` (matplotlib, Agg backend: one bar chart per scenario).
``--quick`` uses smaller sizes and single runs, listed in the output (``QUICK``), to finish
within 10 minutes on 2 cores.

Cleanup: the children build their namespaces in ``tests/testbed`` ``Topology`` blocks and stop
every process by PID when those end; on Ctrl-C or SIGTERM this process sends SIGTERM to the
running child (by its PID), waits for it to unwind, and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from bench.kernel_route_monitor import BEHIND_OCTETS
from bench.reflector_fanout import versions
from bench.results_file import machine, save
from bench.suite_report import LABELS, birdcfg_ratios, plot, ratios, table, targets

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("propagation", "fanout", "mesh", "kernel", "memory", "codec", "latency")
IMPLS = ("none", "myna", "myna-birdcfg", "bird", "frr", "gobgp")
FULL: dict[str, Any] = {
    # prop-100k takes ~45 ms and moves by +-10 ms from run to run, the others by +-15-25 %
    # (so does a pure-Python loop pinned to one of this machine's vCPUs: 26-46 ms for the same
    # work): a 15 % comparison (bird.cfg against YAML, issue 14) needs the median of many runs
    "propagation": {"cases": ["prop-100k", "prop-1m"], "repeat": 15, "repeat_1m": 7},
    "fanout": {"repeat": 15},
    "mesh": {"peers": 500, "idle": 10.0},
    "kernel": {"count": 100_000, "sample": 5_000, "repeat": 5},
    "memory": {"count": 1_000_000},
    "codec": {"scale": 1.0, "repeat": 5},
    "latency": {"count": 100},
}
QUICK: dict[str, Any] = {
    "propagation": {"cases": ["prop-100k"], "repeat": 1, "repeat_1m": 1},
    "fanout": {"repeat": 1},
    "mesh": {"peers": 500, "idle": 10.0},
    "kernel": {"count": 100_000, "sample": 2_000, "repeat": 1},
    "memory": {"count": 100_000},
    "codec": {"scale": 0.2, "repeat": 5},
    "latency": {"count": 20},
}
TIMEOUT = 3600.0  # seconds for one child benchmark
CPU_SPLIT = (
    "in propagation, fanout, mesh and install-100k the simulated peers and the harness run on"
    " the last CPU, the daemon under test on the others (each row's notes say what was done)"
)

_running: list[subprocess.Popen[str]] = []  # the child benchmark now running
# Flags for the harnesses that run a daemon beside its simulated peers (``--no-pin``).
_peer_harness_flags: list[str] = []
_fanout_flags: list[str] = []  # --reflectors: which daemons the fan-out and mesh harnesses run


# -- running the benchmark modules ----------------------------------------------------------------


def child(module: str, *args: str, timeout: float = TIMEOUT) -> str:
    """``python -m bench.<module> ARGS`` with its stderr passed through; its stdout."""
    command = [sys.executable, "-m", f"bench.{module}", *args]
    say(f"$ {' '.join(command[1:])}")
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    _running.append(process)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_child()
        raise RuntimeError(f"bench.{module} did not finish in {timeout:g} s") from None
    except BaseException:
        # Ctrl-C or SIGTERM: stopped here, while the child is still known (``finally``
        # forgets it, so ``main``'s own ``_stop_child`` would find none).
        _stop_child()
        raise
    finally:
        code = process.returncode
        _running.clear()
    if code != 0:
        raise RuntimeError(f"bench.{module} exited with {code}")
    return out


def _stop_child() -> None:
    """SIGTERM the running child by PID; SIGKILL it if it does not unwind in 60 s."""
    if not _running or _running[0].poll() is not None:
        return
    process = _running[0]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def say(line: str) -> None:
    """Progress on stderr."""
    print(line, file=sys.stderr, flush=True)


def row(
    scenario: str,
    case: str,
    impl: str,
    metric: str,
    value: float | None,
    unit: str,
    notes: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One figure of the suite."""
    return {
        "scenario": scenario,
        "case": case,
        "impl": impl,
        "label": LABELS.get(impl, impl),
        "metric": metric,
        "value": value,
        "unit": unit,
        "notes": notes,
        "extra": extra,
    }


# -- the scenarios --------------------------------------------------------------------------------


def fanout_rows(
    scenario: str, cases: list[str], repeat: int, timeout: float
) -> list[dict[str, Any]]:
    """Rows of ``bench.reflector_fanout`` for ``cases``."""
    out: list[dict[str, Any]] = []
    for case in cases:
        report = json.loads(
            child(
                "reflector_fanout",
                "--case",
                case,
                "--repeat",
                str(repeat),
                "--json",
                "--timeout",
                str(timeout),
                *_peer_harness_flags,
                *_fanout_flags,
            )
        )
        for impl, r in report["cases"][case]["rows"].items():
            prefixes = r.get("raw", {}).get("prefixes_announced")
            # in run order, for the paired ratios; a failed run leaves no place for it
            runs = r.get("runs", ()) if len(r.get("runs", ())) == repeat else None
            extra: dict[str, Any] = {
                "peak_rss_mib": r["peak_rss_mib"],
                "cpu_seconds": r["cpu_seconds"],
                "cpu_seconds_median": r.get("cpu_seconds_median"),
                "runs_seconds": None if runs is None else [x["seconds"] for x in runs],
                "pinning": r.get("raw", {}).get("pinning"),
                # the daemon's CPU per run (a row's time against its CPU)
                "runs_cpu_seconds": None if runs is None else [x["cpu_seconds"] for x in runs],
                "longest_digest_lag_seconds": max(
                    (x["raw"].get("longest_digest_lag_seconds") or 0.0 for x in r.get("runs", ())),
                    default=None,
                ),
            }
            if prefixes and r["seconds"]:
                extra["routes_per_second"] = prefixes / r["seconds"]
            out.append(
                row(
                    scenario,
                    case,
                    impl,
                    "time to full table",
                    r["seconds"],
                    "s",
                    r["notes"],
                    **extra,
                )
            )
    return out


def propagation(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 1."""
    out = []
    for case in sizes["cases"]:
        repeat = sizes["repeat_1m"] if case == "prop-1m" else sizes["repeat"]
        out += fanout_rows("propagation", [case], repeat, 1200.0 if case == "prop-1m" else 300.0)
    return out


def fanout(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 2."""
    return fanout_rows("fanout", ["calico", "big"], sizes["repeat"], 300.0)


def mesh_rows(
    scenario: str, case: str, peers: int, idle: float, timeout: float, repeat: int = 1
) -> list[dict[str, Any]]:
    """Rows of ``bench.mesh_scale`` (``repeat`` runs each, the median one shown)."""
    out = []
    text = child(
        "mesh_scale",
        "--case",
        case,
        "--peers",
        str(peers),
        "--idle",
        str(idle),
        "--timeout",
        str(timeout),
        "--repeat",
        str(repeat),
        "--json",
        *_peer_harness_flags,
        *_fanout_flags,
        timeout=TIMEOUT * repeat,
    )
    for line in text.splitlines():
        r = json.loads(line)
        impl = r["daemon"]
        if "error" in r:
            out.append(
                row(
                    scenario,
                    case,
                    impl,
                    "time to converge",
                    None,
                    "s",
                    f"failed: {r['error'].splitlines()[0]}",
                )
            )
            continue
        notes = [f"programs: {r['programs']}"]
        if r.get("runs_seconds"):
            times = ", ".join("-" if t is None else f"{t:.3f}" for t in r["runs_seconds"])
            notes.insert(0, f"median of {len(r['runs_seconds'])} runs ({times} s)")
        if r.get("kernel_route_kinds"):
            kinds = ", ".join(f"{k}: {n:,}" for k, n in r["kernel_route_kinds"].items())
            notes.append(f"kernel routes {kinds}")
        if r["outcome"] != "complete":
            notes.append(f"did not converge: {r['outcome']}")
        behind = r.get("most_monitor_backlog_octets", r.get("monitor_backlog_octets"))
        if behind is not None:
            notes.append(
                f"timed by the route monitor, at most {behind / 1024:.0f} KiB behind near the end"
                + (
                    f" (over {BEHIND_OCTETS >> 10} KiB: times may hold its lag)"
                    if behind > BEHIND_OCTETS
                    else ""
                )
            )
        if r["established_line"]:
            notes.append(r["established_line"])
        notes.append(r["pinning"])
        out.append(
            row(
                scenario,
                case,
                impl,
                "time to converge",
                r["converge_seconds"],
                "s",
                "; ".join(notes),
                kernel_routes=r["kernel_routes_installed"],
                routes=r["routes_announced"],
                idle_cpu_percent=r["idle_cpu_percent"],
                rss_mib=r["rss_mib"],
                peak_rss_mib=r["peak_rss_mib"],
                pinning=r["pinning"],
                runs_seconds=r.get("runs_seconds"),
            )
        )
    return out


def mesh(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 3."""
    return mesh_rows("mesh", "mesh", sizes["peers"], sizes["idle"], 120.0)


def kernel(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 4: Myna's netlink against pyroute2, then each daemon's install over BGP."""
    data = json.loads(
        child(
            "kernel_bench",
            "--count",
            str(sizes["count"]),
            "--sample",
            str(sizes["sample"]),
            "--repeat",
            str(sizes["repeat"]),
            "--json",
        )
    )
    out = []
    for case, r in data.items():
        out.append(
            row(
                "kernel",
                case,
                "myna",
                "rate",
                r["myna"],
                "routes/s",
                "Myna's kernel_sync, ack on the last message of each send",
                ack_every=r["myna_ack_every"],
            )
        )
        out.append(
            row(
                "kernel",
                case,
                "pyroute2",
                "rate",
                r["pyroute2"],
                "routes/s",
                f"IPRoute.route(), {sizes['sample']:,}-route sample",
            )
        )
    try:
        out += mesh_rows("kernel", "install-100k", 1, 2.0, 300.0, sizes["repeat"])
    except RuntimeError as error:
        out.append(
            row("kernel", "install-100k", "myna", "time to converge", None, "s", f"failed: {error}")
        )
    return out


def memory(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 5."""
    data = json.loads(child("rib_memory", "--count", str(sizes["count"]), "--json"))
    out = []
    for key, r in data["rows"].items():
        impl = "bird" if key.startswith("bird") else "myna"
        out.append(
            row(
                "memory",
                key.split("-", 1)[1],
                impl,
                "bytes per route",
                r["alloc_bytes_per_route"],
                "B",
                f"{r['label']}; {r['alloc_source']}; RSS delta {r['rss_bytes_per_route']:.0f} B",
                rss_bytes_per_route=r["rss_bytes_per_route"],
                load_seconds=r["load_seconds"],
                routes=r["routes"],
            )
        )
    if data.get("bird_error"):
        out.append(
            row(
                "memory",
                "shared",
                "bird",
                "bytes per route",
                None,
                "B",
                f"failed: {data['bird_error']}",
            )
        )
    out.append(
        row(
            "memory",
            "-",
            "none",
            "bytes per route",
            None,
            "B",
            "no relay row: one process holds the table, no client in the path",
        )
    )
    return out


def codec(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 6."""
    data = json.loads(
        child(
            "codec_bench",
            "--scale",
            str(sizes["scale"]),
            "--repeat",
            str(sizes["repeat"]),
            "--json",
        )
    )
    out = []
    for case, r in data.items():
        short = case.split(":")[0] + " " + case.rsplit("[", 1)[1].rstrip("]")
        out.append(
            row(
                "codec",
                short,
                "myna",
                "rate",
                r["myna"],
                "prefixes/s",
                case,
                ratio_to_exabgp=r["ratio"],
            )
        )
        out.append(row("codec", short, "exabgp", "rate", r["exabgp"], "prefixes/s", case))
    return out


def latency(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 7."""
    data = json.loads(child("block_latency", "--count", str(sizes["count"]), "--json"))
    out = []
    for label, r in data.items():
        impl = "bird" if label.startswith("BIRD") else "myna"
        out.append(
            row(
                "latency",
                "block A -> B",
                impl,
                "median",
                r["median_ms"],
                "ms",
                f"{label}; p99 {r['p99_ms']:.1f} ms over {r['rounds']:.0f} rounds",
                p99_ms=r["p99_ms"],
            )
        )
    out.extend(
        row(
            "latency",
            "block A -> B",
            impl,
            "median",
            None,
            "ms",
            "not run: block_latency drives Myna and BIRD 2 only (learning Felix's "
            "blackholes from the kernel is what it times)",
        )
        for impl in ("frr", "gobgp")
    )
    out.append(
        row(
            "latency",
            "block A -> B",
            "none",
            "median",
            None,
            "ms",
            "no relay row: both ends are the benchmark's own netlink sockets",
        )
    )
    return out


RUNNERS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "propagation": propagation,
    "fanout": fanout,
    "mesh": mesh,
    "kernel": kernel,
    "memory": memory,
    "codec": codec,
    "latency": latency,
}


# -- main -----------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, single runs")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--name", help="results file name after the date (default: suite[-quick])")
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs per prop-100k and fan-out row (prop-1m: half, install-100k: two fifths;"
        " at least 5): the pairs a bird.cfg/YAML interval needs",
    )
    parser.add_argument(
        "--reflectors",
        help="propagation, fanout, mesh, install-100k: the daemons to run, comma-separated"
        " (default: all)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="propagation, fanout, mesh, kernel: daemon and peers share CPUs (bench.cpu_pinning)",
    )
    args = parser.parse_args(argv)
    if not args.pin:
        _peer_harness_flags.append("--no-pin")
    if args.reflectors:
        _fanout_flags.extend(["--only", args.reflectors])
    chosen = [s for s in args.only.split(",") if s]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    sizes = QUICK if args.quick else FULL
    if args.repeat:
        sizes = {name: dict(values) for name, values in sizes.items()}
        sizes["propagation"].update(repeat=args.repeat, repeat_1m=max(5, args.repeat // 2))
        sizes["fanout"]["repeat"] = args.repeat
        sizes["kernel"]["repeat"] = max(5, args.repeat * 2 // 5)
    signal.signal(signal.SIGTERM, _terminate)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    try:
        for scenario in chosen:
            say(f"== {scenario} {sizes[scenario]}")
            begun = time.monotonic()
            try:
                rows += RUNNERS[scenario](sizes[scenario])
            except Exception as error:  # the other scenarios' figures still count
                errors[scenario] = f"{type(error).__name__}: {error}"
                say(f"{scenario} failed: {error}")
            durations[scenario] = time.monotonic() - begun
            say(f"   {scenario}: {durations[scenario]:.0f} s")
    except (KeyboardInterrupt, SystemExit):
        _stop_child()
        raise
    import datetime  # noqa: PLC0415

    report: dict[str, Any] = {
        "quick": args.quick,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "sizes": {s: sizes[s] for s in chosen},
        "scenarios": chosen,
        "seconds": time.monotonic() - started,
        "scenario_seconds": durations,
        "cpu_split": CPU_SPLIT if args.pin else "not pinned (--no-pin)",
        "errors": errors,
        "rows": rows,
    }
    report["ratios"] = ratios(rows)
    report["birdcfg_ratios"] = birdcfg_ratios(rows)
    report["targets"] = targets(rows, args.quick)
    mode = "quick" if args.quick else "full"
    header = (
        f"Mode: {mode}; sizes: "
        + "; ".join(f"{s} {json.dumps(sizes[s])}" for s in chosen)
        + f". Wall time {report['seconds']:.0f} s ("
        + ", ".join(f"{s} {d:.0f} s" for s in chosen if (d := durations.get(s)) is not None)
        + f"). CPUs: {report['cpu_split']}.\n\n"
    )
    text = header + table(report)
    print(text)
    name = args.name or ("suite-quick" if args.quick else "suite")
    command = ".venv/bin/python -m bench.suite " + " ".join(sys.argv[1:] if argv is None else argv)
    info = machine(**versions(), load_average_at_start=load)
    if args.reflectors:
        info["reflectors"] = args.reflectors
    try:
        from exabgp.version import version as exabgp_version  # type: ignore[import-untyped]  # noqa: PLC0415

        info["exabgp"] = str(exabgp_version)
    except ImportError:
        info["exabgp"] = "not installed"
    path = save(name, f"Benchmark suite ({mode})", command.strip(), text, report, args.out, info)
    png = path.with_suffix(".png")
    plot(report, png)
    say(f"saved {path}, {path.with_suffix('.json')}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
