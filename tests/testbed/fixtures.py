"""pytest fixtures of the test bed.

Data flow: a test module names this module in ``pytest_plugins`` (``pytest_plugins =
("testbed.fixtures",)``) and marks itself ``interop``; its tests then ask for ``topology``, a
``Topology`` entered for the test with its work dir under pytest's ``tmp_path`` (configs and
logs stay there for post-mortems) and torn down after it, whatever the outcome. The fixture
first calls ``testbed.requirements.require_interop``, which skips or fails the test when the bed
cannot run here. Import nothing from this module directly: pytest must import it first itself,
as a plugin, or it warns that it cannot rewrite its asserts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .requirements import require_interop
from .topology import Topology


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    """A fresh topology for one test, torn down after it; add hosts with ``add_host``."""
    require_interop()
    with Topology(tmp_path) as topo:
        yield topo
