"""BIRD 1.6 as a test oracle: ``bird -p`` and ``myna bird -p`` on the same file.

Data flow: a test writes a configuration into a directory and calls ``both(path)``; it runs
the BIRD 1.6.8 binary the test bed unpacks (``tests/testbed/bird.py``: ``BIRD16_SBIN``) and
Myna's ``bird_main`` in-process, each as ``-p -c FILE`` from the file's directory (so
includes resolve as confd's do), and returns both outcomes as (exit status, stderr text).
``bird -p`` only parses: no socket, no kernel access, no root needed. What ``print`` and
``eval`` write while parsing is part of stderr, which makes BIRD an oracle for the filter
language's values too.

A missing binary fails the test (``./dev test`` unpacks it): a skip would hide it.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed.bird import BIRD16_SBIN

from bgpd.bird_config.cli import bird_main

Outcome = tuple[int, str]


def bird_binary(ipv6: bool) -> Path:
    """The BIRD 1.6 daemon binary for the family, failing the test when it is missing."""
    binary = BIRD16_SBIN / ("bird6" if ipv6 else "bird")
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"BIRD 1.6 is missing ({binary}); ./dev test unpacks it into .cache/bird16",
            pytrace=False,
        )
    return binary


@contextlib.contextmanager
def _cwd(directory: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def bird_parse(path: Path, ipv6: bool = False) -> Outcome:
    """``bird -p -c NAME`` run in the file's directory."""
    result = subprocess.run(
        [str(bird_binary(ipv6)), "-p", "-c", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr


def myna_parse(path: Path, ipv6: bool = False) -> Outcome:
    """``myna bird -p -c NAME`` (in-process) run in the file's directory."""
    stderr = io.StringIO()
    with _cwd(path.parent), contextlib.redirect_stderr(stderr):
        status = bird_main(["-p", "-c", path.name], ipv6=ipv6)
    return status, stderr.getvalue()


def both(path: Path, ipv6: bool = False) -> tuple[Outcome, Outcome]:
    """(BIRD's outcome, Myna's outcome) for one file."""
    return bird_parse(path, ipv6), myna_parse(path, ipv6)
