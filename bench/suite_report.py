"""The suite's report: ratios, targets, the markdown tables and the bar charts.

Role: ``bench.suite`` runs the scenarios and collects rows ``{scenario, case, impl, metric,
value, unit, notes, extra}``; this module turns them into what the results files show. Data
flow: rows -> ``ratios`` (Myna over BIRD 2), ``birdcfg_ratios`` (Myna from bird.cfg over Myna
from YAML, issue 14's "no slowdown": at most ``BIRDCFG_BOUND`` in ``BIRDCFG_SCENARIOS``) and
``targets`` (each issue target met or not, with its figures) -> the report dict ->
``table`` (markdown) and ``plot`` (one bar chart per scenario and metric, matplotlib's Agg
backend). ``python -m bench.suite_report FILE.json`` recomputes the ratios and targets of a
saved run and prints its tables (results files keep what the report said when they ran).

bird.cfg against YAML is judged as issue 14 words it: the rows' figures (each the median run)
in the same run, bird.cfg's over YAML's. Beside it, for reading, not judging: the median of the
paired run ratios (run i of the two rows ran one after the other, as the harnesses take the
rows in turn: YAML first in the runs of 2026-12-07, the two swapping places every other run
since, ``birdcfg_myna.turn_order``) and how many pairs are above the bound. It was added after
the runs of 2026-12-07 were seen (their prop-100k times fell in two clusters in both modes,
about 0.04 s and 0.06 s, so which cluster held five of nine runs moved the ratio of medians); a
median of pairs hides a mode that is slow in a minority of runs, and where the two rows' times
do not move together pairing adds noise rather than removing it. Also beside it:
``paired_interval``, the pairs' geometric mean with its 95 % t interval, whose upper end at
most the bound says the bound holds beyond the runs' noise (the rule of plans 3 to 6,
``bench/results/2026-12-07-confirm-plan-*.md``).
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

LABELS = {
    "none": "none (relay)",
    "myna": "Myna",
    "myna-birdcfg": "Myna (bird.cfg)",
    "bird": "BIRD 2",
    "frr": "FRR",
    "gobgp": "GoBGP",
    "exabgp": "ExaBGP 5",
    "pyroute2": "pyroute2",
}

BIRDCFG_SCENARIOS = ("propagation", "fanout", "kernel")  # issue 14's "no slowdown" rows
BIRDCFG_BOUND = 1.15  # bird.cfg mode's time at most 15 % above the YAML mode's


# -- ratios, targets, table, plot -----------------------------------------------------------------


def _find(rows: list[dict[str, Any]], scenario: str, case: str, impl: str) -> dict[str, Any] | None:
    return next(
        (r for r in rows if (r["scenario"], r["case"], r["impl"]) == (scenario, case, impl)),
        None,
    )


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Myna's figure over BIRD 2's, per scenario and case where both have one."""
    out = []
    for r in rows:
        if r["impl"] != "myna" or r["value"] is None:
            continue
        bird = _find(rows, r["scenario"], r["case"], "bird")
        if bird and bird["value"]:
            out.append(
                {
                    "scenario": r["scenario"],
                    "case": r["case"],
                    "metric": r["metric"],
                    "myna_over_bird": r["value"] / bird["value"],
                }
            )
    return out


_RUNS_IN_NOTES = re.compile(r"median of \d+ runs \(([^)]*) s\)")


def run_times(r: dict[str, Any]) -> list[float | None] | None:
    """A row's time in each of its runs, in run order (None: that run failed; None: unknown).

    ``extra.runs_seconds`` where the suite kept it; in results files from before, the list
    the notes give ("median of N runs (a, b, ... s)"), which the harnesses write in run order.
    A row some of whose runs failed without a place in that list cannot be paired.
    """
    kept = r["extra"].get("runs_seconds")
    if kept:
        return list(kept)
    found = _RUNS_IN_NOTES.search(r["notes"])
    if found is None or "failed" in r["notes"]:
        return [r["value"]] if r["value"] is not None else None
    return [None if x.strip() == "-" else float(x) for x in found.group(1).split(",")]


def paired_ratios(yaml: dict[str, Any], birdcfg: dict[str, Any]) -> list[float] | None:
    """bird.cfg's time / YAML's in each run, in run order (None: the runs cannot be paired).

    A run that did not finish counts as the slowest, as in the harnesses' medians: infinite
    when it is bird.cfg's, 0 when it is YAML's (both: left out).
    """
    a, b = run_times(yaml), run_times(birdcfg)
    if not a or not b or len(a) != len(b):
        return None
    pairs = []
    for y, c in zip(a, b, strict=True):
        if c is None:
            if y is not None:
                pairs.append(math.inf)
        elif y is None:
            pairs.append(0.0)
        else:
            pairs.append(c / y)
    return pairs


# Student's t, 0.975 quantile, for 1..30 degrees of freedom (any table); beyond, the value
# for 30, which overstates the interval a little.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def paired_interval(pairs: list[float]) -> tuple[float, float, float] | None:
    """(geometric mean, 95 % interval low, high) of paired run ratios (None: under 2 pairs).

    The t interval of the mean of the pairs' logarithms, taken back by ``exp``: each pair
    shares its machine state (the two rows run one after the other), so the pairs, not the
    rows' medians, are the samples. A run that failed (a ratio of 0 or infinity) makes the
    interval unbounded on its side.
    """
    if len(pairs) < 2:
        return None
    if any(p == math.inf for p in pairs):
        return (math.inf, math.inf, math.inf)
    if any(p <= 0 for p in pairs):
        return (0.0, 0.0, 0.0)
    logs = [math.log(p) for p in pairs]
    mean = statistics.fmean(logs)
    half = (
        _T_975[min(len(logs) - 1, len(_T_975)) - 1] * statistics.stdev(logs) / math.sqrt(len(logs))
    )
    return (math.exp(mean), math.exp(mean - half), math.exp(mean + half))


def birdcfg_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Myna from bird.cfg over Myna from YAML, per scenario and case (times: lower is better)."""
    out = []
    for r in rows:
        if r["impl"] != "myna-birdcfg":
            continue
        yaml = _find(rows, r["scenario"], r["case"], "myna")
        if yaml is None:
            continue
        ratio = None
        if r["value"] is not None and yaml["value"]:
            ratio = r["value"] / yaml["value"]
        # The same rows' daemon CPU (where the harness measures it over the run) and the
        # harness's own time without a daemon: a time close to that floor is the harness's.
        cpu_yaml, cpu_birdcfg = (
            x["extra"].get("cpu_seconds_median", x["extra"].get("cpu_seconds")) for x in (yaml, r)
        )
        cpu_ratio = cpu_birdcfg / cpu_yaml if cpu_birdcfg and cpu_yaml else None
        floor = _find(rows, r["scenario"], r["case"], "none")
        pairs = paired_ratios(yaml, r)
        interval = paired_interval(pairs or [])
        out.append(
            {
                "scenario": r["scenario"],
                "case": r["case"],
                "metric": r["metric"],
                "unit": r["unit"],
                "yaml": yaml["value"],
                "birdcfg": r["value"],
                "birdcfg_over_yaml": ratio,
                "paired_ratio": statistics.median(pairs) if pairs else None,
                "pairs": len(pairs or ()),
                "pairs_above_bound": sum(p > BIRDCFG_BOUND for p in pairs or ()),
                "paired_interval": interval,
                "paired_within_15_percent": None
                if interval is None
                else interval[2] <= BIRDCFG_BOUND,
                "within_15_percent": None if ratio is None else ratio <= BIRDCFG_BOUND,
                "harness_floor": None if floor is None else floor["value"],
                "cpu_yaml": cpu_yaml,
                "cpu_birdcfg": cpu_birdcfg,
                "cpu_birdcfg_over_yaml": cpu_ratio,
            }
        )
    return out


def targets(rows: list[dict[str, Any]], quick: bool) -> list[tuple[str, bool | None, str]]:
    """(target, met or None when not measured, figures)."""
    out: list[tuple[str, bool | None, str]] = []

    def versus(scenario: str, case: str, name: str) -> None:
        myna, bird = _find(rows, scenario, case, "myna"), _find(rows, scenario, case, "bird")
        if not myna or not bird or myna["value"] is None or bird["value"] is None:
            out.append((name, None, "not measured"))
            return
        out.append(
            (
                name,
                myna["value"] <= bird["value"],
                f"Myna {myna['value']:.3f} s, BIRD 2 {bird['value']:.3f} s",
            )
        )

    for case in ("prop-100k", "prop-1m"):
        if any(r["case"] == case for r in rows):
            versus("propagation", case, f"propagation {case}: Myna <= BIRD 2")
    for case in ("calico", "big"):
        if any(r["scenario"] == "fanout" and r["case"] == case for r in rows):
            versus("fanout", case, f"reflector {case}: Myna <= BIRD 2")
    for x in birdcfg_ratios(rows):
        if x["scenario"] not in BIRDCFG_SCENARIOS:
            continue
        name = f"{x['scenario']} {x['case']}: Myna from bird.cfg within 15 % of YAML"
        if x["birdcfg_over_yaml"] is None:
            out.append((name, None, "not measured"))
            continue
        figures = (
            f"bird.cfg {x['birdcfg']:.3f} s, YAML {x['yaml']:.3f} s, "
            f"ratio {x['birdcfg_over_yaml']:.2f}"
        )
        if x.get("paired_ratio") is not None:
            figures += (
                f" (for reading: median of {x['pairs']} paired run ratios"
                f" {x['paired_ratio']:.2f}, {x['pairs_above_bound']} of them above 1.15)"
            )
        out.append((name, x["within_15_percent"], figures))
    m = _find(rows, "mesh", "mesh", "myna")
    if m:
        peers = m["extra"].get("routes", 0) // 4
        t, cpu = m["value"], m["extra"].get("idle_cpu_percent")
        out.append(
            (
                f"mesh of {peers} peers converges within 5 s",
                t is not None and t <= 5,
                "-" if t is None else f"{t:.2f} s",
            )
        )
        out.append(
            (
                "mesh idle CPU < 2% of a core",
                cpu is not None and cpu < 2,
                "-" if cpu is None else f"{cpu:.2f}%",
            )
        )
    for case, floor, name in (
        ("a: install /32 blackholes", 100_000, "kernel installs >= 100k/s (blackholes)"),
        ("b: install /32 via gateway", 100_000, "kernel installs >= 100k/s (via gateway)"),
    ):
        k = _find(rows, "kernel", case, "myna")
        if k and k["value"] is not None:
            out.append((name, k["value"] >= floor, f"{k['value']:,.0f}/s"))
    dump = next(
        (
            r
            for r in rows
            if r["scenario"] == "kernel" and r["case"].startswith("c:") and r["impl"] == "myna"
        ),
        None,
    )
    if dump and dump["value"] is not None:
        out.append(
            ("kernel dump >= 200k routes/s", dump["value"] >= 200_000, f"{dump['value']:,.0f}/s")
        )
    for r in rows:
        if (
            r["scenario"] == "memory"
            and r["impl"] == "myna"
            and r["case"] in ("shared", "distinct")
        ):
            worst = max(r["value"], r["extra"]["rss_bytes_per_route"])
            count = r["extra"]["routes"]
            out.append(
                (
                    f"memory <= 250 B/route at {count:,} prefixes ({r['case']})",
                    worst <= 250,
                    f"{worst:.0f} B/route at worst",
                )
            )
    decode_a = _find(rows, "codec", "a decode", "myna")
    if decode_a and decode_a["value"] is not None:
        out.append(
            (
                "codec decode (a) >= 1,000,000 prefixes/s",
                decode_a["value"] >= 1e6,
                f"{decode_a['value']:,.0f}/s",
            )
        )
    codec_rows = [r for r in rows if r["scenario"] == "codec" and r["impl"] == "myna"]
    if codec_rows:
        worst = min(r["extra"]["ratio_to_exabgp"] for r in codec_rows)
        out.append(("codec >= 10x ExaBGP in every row", worst >= 10, f"lowest {worst:.1f}x"))
    lat = _find(rows, "latency", "block A -> B", "myna")
    if lat and lat["value"] is not None:
        p99 = lat["extra"]["p99_ms"]
        out.append(
            (
                "block latency median <= 10 ms, p99 <= 50 ms",
                lat["value"] <= 10 and p99 <= 50,
                f"median {lat['value']:.1f} ms, p99 {p99:.1f} ms",
            )
        )
    return out


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("routes/s", "prefixes/s", "B"):
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.1f}"
    return f"{value:.3f}"


def _extra(r: dict[str, Any]) -> str:
    e = r["extra"]
    parts = []
    if "routes_per_second" in e:
        parts.append(f"{e['routes_per_second']:,.0f} routes/s")
    if e.get("peak_rss_mib") is not None:
        parts.append(f"peak RSS {e['peak_rss_mib']:.1f} MiB")
    if e.get("cpu_seconds") is not None:
        parts.append(f"CPU {e['cpu_seconds']:.2f} s")
    if "kernel_routes" in e:
        parts.append(f"kernel routes {e['kernel_routes']:,}/{e['routes']:,}")
    if "idle_cpu_percent" in e:
        parts.append(f"idle CPU {e['idle_cpu_percent']:.2f}%, RSS {e['rss_mib']:.1f} MiB")
    if e.get("ack_every"):
        parts.append(f"ack every message {e['ack_every']:,.0f}/s")
    if "ratio_to_exabgp" in e:
        parts.append(f"{e['ratio_to_exabgp']:.1f}x ExaBGP")
    return "; ".join(parts)


def table(report: dict[str, Any]) -> str:
    """The markdown: one table per scenario, the ratios, the targets."""
    rows = report["rows"]
    lines = []
    for scenario in report["scenarios"]:
        mine = [r for r in rows if r["scenario"] == scenario]
        lines += [f"### {scenario}", ""]
        if report["errors"].get(scenario):
            lines += [f"Failed: {report['errors'][scenario]}", ""]
        if not mine:
            continue
        lines += [
            "| case | implementation | figure | other figures | notes |",
            "|---|---|---:|---|---|",
        ]
        for r in mine:
            figure = f"{_fmt(r['value'], r['unit'])} {r['unit']}" if r["value"] is not None else "-"
            notes = r["notes"].replace("|", "\\|")
            lines.append(f"| {r['case']} | {r['label']} | {figure} | {_extra(r)} | {notes} |")
        lines.append("")
    lines += [
        "### Myna / BIRD 2",
        "",
        "| scenario | case | metric | Myna / BIRD 2 |",
        "|---|---|---|---:|",
    ]
    lines += [
        f"| {x['scenario']} | {x['case']} | {x['metric']} | {x['myna_over_bird']:.2f} |"
        for x in report["ratios"]
    ]
    if report.get("birdcfg_ratios"):
        lines += [
            "",
            "### Myna from bird.cfg / Myna from YAML (issue 14: at most 1.15)",
            "",
            "Judged: bird.cfg / YAML, the rows' figures (median runs). Paired, for reading only:"
            " the median over the runs of bird.cfg's time / YAML's in the same run (the rows"
            " take turns; in runs after 2026-12-07 YAML and bird.cfg swap places every other run)"
            " and how many pairs are above 1.15 (a run that did not"
            " finish counts as slowest). The harness floor is the"
            " same row without a daemon (relay or sink); the CPU columns"
            " are the daemon's CPU time from t0 to 0.5 s after the last client completed, the"
            " median over the runs (propagation and fanout; the mesh harness does not measure"
            " it over the run). The paired interval is the geometric mean of the paired"
            " ratios with its 95 % t interval (``paired_interval``); its upper end at most"
            " 1.15 says the bound holds beyond the runs' noise.",
            "",
            "| scenario | case | metric | YAML | bird.cfg | bird.cfg / YAML "
            "| paired (pairs > 1.15) | within 15 % | paired mean [95 % interval] "
            "| harness floor | CPU YAML | CPU bird.cfg | CPU bird.cfg / YAML |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for x in report["birdcfg_ratios"]:
            ratio, cpu_ratio = x["birdcfg_over_yaml"], x.get("cpu_birdcfg_over_yaml")
            paired = (
                "-"
                if x.get("paired_ratio") is None
                else f"{x['paired_ratio']:.2f} ({x['pairs_above_bound']}/{x['pairs']} > 1.15)"
            )
            within = {None: "not measured", True: "yes", False: "NO"}[x["within_15_percent"]]
            yaml, birdcfg, floor = (
                "-" if v is None else f"{_fmt(v, x['unit'])} {x['unit']}"
                for v in (x["yaml"], x["birdcfg"], x.get("harness_floor"))
            )
            cpu_yaml, cpu_birdcfg = (
                "-" if v is None else f"{1000 * v:.1f} ms"
                for v in (x.get("cpu_yaml"), x.get("cpu_birdcfg"))
            )
            interval = x.get("paired_interval")
            band = (
                "-"
                if interval is None
                else f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"
            )
            lines.append(
                f"| {x['scenario']} | {x['case']} | {x['metric']} | {yaml} | {birdcfg} "
                f"| {'-' if ratio is None else f'{ratio:.2f}'} | {paired} | {within} | {band} "
                f"| {floor} "
                f"| {cpu_yaml} | {cpu_birdcfg} "
                f"| {'-' if cpu_ratio is None else f'{cpu_ratio:.2f}'} |"
            )
    lines += ["", "### Targets", "", "| target | met | figures |", "|---|---|---|"]
    for name, met, figures in report["targets"]:
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        lines.append(f"| {name} | {verdict} | {figures} |")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """One bar chart per scenario: the main figure of every case and implementation."""
    import matplotlib  # noqa: PLC0415 - only the suite needs it (the `bench` extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    # One chart per scenario and figure (the kernel scenario has rates and times).
    panels = list(
        dict.fromkeys(
            (r["scenario"], r["metric"]) for r in report["rows"] if r["value"] is not None
        )
    )
    if not panels:
        return
    columns = 2
    rows_n = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows_n, columns, figsize=(14, 4.2 * rows_n), squeeze=False)
    colours = {
        "none": "#999999",
        "myna": "#d62728",
        "myna-birdcfg": "#ff9896",
        "bird": "#1f77b4",
        "frr": "#2ca02c",
        "gobgp": "#9467bd",
        "exabgp": "#ff7f0e",
        "pyroute2": "#8c564b",
    }
    for ax, (scenario, metric) in zip(axes.flat, panels, strict=False):
        mine = [
            r
            for r in report["rows"]
            if (r["scenario"], r["metric"]) == (scenario, metric) and r["value"] is not None
        ]
        cases = list(dict.fromkeys(r["case"] for r in mine))
        impls = list(dict.fromkeys(r["impl"] for r in mine))
        width = 0.8 / max(1, len(impls))
        for k, impl in enumerate(impls):
            xs, ys = [], []
            for i, case in enumerate(cases):
                r = _find(mine, scenario, case, impl)
                if r is not None:
                    xs.append(i + (k - (len(impls) - 1) / 2) * width)
                    ys.append(r["value"])
            ax.bar(xs, ys, width, label=LABELS.get(impl, impl), color=colours.get(impl))
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c[:28] for c in cases], fontsize=8, rotation=12)
        values = [r["value"] for r in mine if r["value"] > 0]
        if values and max(values) / min(values) > 50:
            ax.set_yscale("log")
        unit = mine[0]["unit"]
        better = "lower" if unit in ("s", "ms", "B") else "higher"
        ax.set_title(f"{scenario}: {mine[0]['metric']} ({unit}, {better} is better)", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    mode = "quick" if report["quick"] else "full"
    fig.suptitle(f"Myna benchmark suite ({mode}), {report['date']}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Print a saved run's tables with this module's ratios and targets."""
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.suite_report RESULTS.json", file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text())
    rows = report["rows"]
    report["ratios"] = ratios(rows)
    report["birdcfg_ratios"] = birdcfg_ratios(rows)
    report["targets"] = targets(rows, report.get("quick", False))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
