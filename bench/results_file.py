"""Saving a benchmark's results: a dated markdown table and JSON with the machine they ran on.

Data flow: each benchmark builds its rows and its markdown table, then calls ``save`` with a
name (``codec``, ``rib-memory``, ...); the files land in the directory given to ``--save``
(``bench/results/`` keeps the ones worth keeping) as ``<date>-<name>.md`` and ``.json``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def machine(**extra: str) -> dict[str, str]:
    """What the figures were measured on, plus ``extra`` versions (e.g. the compared daemon)."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": _commit(),
        **extra,
    }


def _commit() -> str:
    """The checkout's commit, with ``+changes`` when tracked files differ from it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return head + ("+changes" if changed else "")


def save(
    name: str,
    title: str,
    command: str,
    table: str,
    data: dict[str, Any],
    directory: Path,
    info: dict[str, str],
) -> Path:
    """Write ``<date>-<name>.md`` (title, command, machine, table) and ``.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    text = (
        f"# {title}, {stamp}\n\nCommand: `{command}`\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in info.items())
        + "\n"
        + table
        + "\n"
    )
    (directory / f"{stamp}-{name}.md").write_text(text)
    payload = {"date": stamp, "command": command, "machine": info, **data}
    (directory / f"{stamp}-{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    return directory / f"{stamp}-{name}.md"
