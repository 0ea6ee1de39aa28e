"""Whether the interop test bed can run on this machine, and what to do when it cannot.

Data flow: interop fixtures (``testbed.fixtures.topology``, or a test module's own) call
``require_interop`` before building a topology. It skips the test when it cannot run here (not
root: network namespaces, port 179 and TCP MD5 need it) and fails it when a daemon is missing,
since ``./dev`` installs them all: a silent skip would hide a broken set-up in CI. The first
call in a test process also removes namespaces that test processes which died without their
teardown left behind.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .bfd_peers import BFDD, NFT
from .bird import BIRD2, BIRD16_SBIN, BIRDC2
from .exabgp_peer import EXABGP
from .frr import BGPD, VTYSH, ZEBRA
from .gobgp import GOBGP, GOBGPD
from .topology import remove_stale_namespaces

REQUIRED_FILES: tuple[Path, ...] = (
    BIRD2, BIRDC2,
    BIRD16_SBIN / "bird", BIRD16_SBIN / "bird6", BIRD16_SBIN / "birdc", BIRD16_SBIN / "birdc6",
    ZEBRA, BGPD, VTYSH, BFDD,
    NFT,  # BFD interop tests cut paths with nftables (./dev installs it)
    GOBGPD, GOBGP,
    EXABGP,
)  # fmt: skip

_stale_removed = False


def missing_requirements() -> list[str]:
    """What the bed needs that this machine lacks (daemons, ``ip``), as readable names."""
    missing = [str(path) for path in REQUIRED_FILES if not os.access(path, os.X_OK)]
    if shutil.which("ip") is None:
        missing.append("ip (iproute2)")
    return missing


def require_interop() -> None:
    """Skip unless root; fail when a daemon is missing. Call first in interop fixtures."""
    global _stale_removed  # noqa: PLW0603 - one clean-up per test process
    if os.geteuid() != 0:
        pytest.skip("interop tests need root (network namespaces, BGP port 179, TCP MD5)")
    missing = missing_requirements()
    if missing:
        pytest.fail(
            "interop test bed incomplete, run ./dev test (its setup installs them) "
            f"or deselect with -m 'not interop'; missing: {', '.join(missing)}",
            pytrace=False,
        )
    if not _stale_removed:
        _stale_removed = True
        remove_stale_namespaces()
