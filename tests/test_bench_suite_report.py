"""The suite report's bird.cfg/YAML comparison: per-run times, paired ratios, the verdict.

Rows are built here by hand with known run times; the expected ratios are worked out in the
comments, not taken from the module. A saved results file re-renders through the module's
command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import suite_report


def row(impl: str, value: float | None, notes: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "scenario": "propagation",
        "case": "prop-100k",
        "impl": impl,
        "label": impl,
        "metric": "time to full table",
        "value": value,
        "unit": "s",
        "notes": notes,
        "extra": extra,
    }


def test_run_times_come_from_the_extra_field_or_the_notes_or_the_value() -> None:
    kept = row("myna", 0.05, "median of 3 runs (0.100, 0.200, 0.300 s)", runs_seconds=[1, 2, 3])
    assert suite_report.run_times(kept) == [1, 2, 3]
    noted = row("myna", 0.05, "median of 3 runs (0.040, -, 0.060 s); 46.5 MiB at t0")
    assert suite_report.run_times(noted) == [0.040, None, 0.060]
    # a run that failed outside the list: its place is unknown, so only the value is kept
    failed = row("myna", 0.05, "median of 2 runs (0.040, 0.060 s); 1 run(s) failed: boom")
    assert suite_report.run_times(failed) == [0.05]
    assert suite_report.run_times(row("myna", None)) is None


def test_paired_ratio_is_the_median_of_the_per_run_ratios() -> None:
    # pairs: 0.036/0.040 = 0.9, 0.060/0.045 = 1.333, 0.044/0.044 = 1.0, 0.061/0.062 = 0.984;
    # sorted 0.9, 0.984, 1.0, 1.333 -> median (0.984 + 1.0) / 2 = 0.992
    yaml = row("myna", None, runs_seconds=[0.040, 0.045, 0.044, 0.062])
    birdcfg = row("myna-birdcfg", None, runs_seconds=[0.036, 0.060, 0.044, 0.061])
    ratio, pairs = suite_report.paired_ratio(yaml, birdcfg)
    assert pairs == 4
    assert ratio == pytest.approx((0.061 / 0.062 + 1.0) / 2)
    # a failed run (None) leaves its pair out; unequal lists cannot be paired
    birdcfg["extra"]["runs_seconds"] = [0.036, None, 0.044, 0.061]
    assert suite_report.paired_ratio(yaml, birdcfg)[1] == 3
    birdcfg["extra"]["runs_seconds"] = [0.036, 0.044]
    assert suite_report.paired_ratio(yaml, birdcfg) == (None, 0)


def test_the_verdict_takes_the_paired_ratio_from_three_runs_on() -> None:
    # Two clusters, as on 2026-12-07: each mode's median falls in a different one (0.060
    # against 0.045: 1.33), but every run pair is within 5 %.
    yaml_runs = [0.060, 0.060, 0.045, 0.045, 0.045]
    birdcfg_runs = [0.060, 0.060, 0.046, 0.060, 0.060]  # pairs 1, 1, 1.02, 1.33, 1.33
    rows = [
        row("myna", 0.045, runs_seconds=yaml_runs),
        row("myna-birdcfg", 0.060, runs_seconds=birdcfg_runs),
    ]
    (x,) = suite_report.birdcfg_ratios(rows)
    assert x["birdcfg_over_yaml"] == pytest.approx(0.060 / 0.045)
    assert x["paired_ratio"] == pytest.approx(0.046 / 0.045)
    assert x["within_15_percent"] is True
    # with two runs only, the ratio of the medians decides
    rows = [
        row("myna", 0.045, runs_seconds=[0.045, 0.045]),
        row("myna-birdcfg", 0.060, runs_seconds=[0.046, 0.060]),
    ]
    (x,) = suite_report.birdcfg_ratios(rows)
    assert x["pairs"] == 2 and x["within_15_percent"] is False
    # and a real slowdown in every pair is one
    rows = [
        row("myna", 0.045, runs_seconds=[0.040, 0.045, 0.050]),
        row("myna-birdcfg", 0.054, runs_seconds=[0.048, 0.054, 0.060]),  # 1.2 in each pair
    ]
    (x,) = suite_report.birdcfg_ratios(rows)
    assert x["paired_ratio"] == pytest.approx(1.2) and x["within_15_percent"] is False


def test_a_saved_run_re_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = {
        "quick": False,
        "scenarios": ["propagation"],
        "errors": {},
        "rows": [
            row("myna", 0.048, "median of 3 runs (0.040, 0.048, 0.060 s)"),
            row("myna-birdcfg", 0.057, "median of 3 runs (0.036, 0.057, 0.058 s)"),
        ],
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(saved))
    assert suite_report.main([str(path)]) == 0
    out = capsys.readouterr().out
    # pairs 0.9, 1.1875, 0.9667 -> median 0.9667
    assert (
        "| propagation | prop-100k | time to full table | 0.048 s | 0.057 s | 1.19 | 0.97 (3) |"
        in out
    )
    assert "median of 3 paired run ratios 0.97" in out
