"""What the control API and the metrics may read of the running daemon, as one protocol.

Role: ``bgpd.daemon.Daemon`` has all of this; ``bgpd.control_api`` and ``bgpd.metrics`` take a
``DaemonState`` instead of the daemon class, so the daemon imports them and they never import
it back (no import cycle), and tests may hand them a smaller stand-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bgpd.config import DaemonConfig, Peer
    from bgpd.reload_plan import ReloadPlan
    from kernel_sync.fib_programmer import FibProgrammer
    from kernel_sync.kernel_events import KernelEvents
    from kernel_sync.kernel_learner import KernelLearner
    from rib.rib_task import Rib
    from speaker.transport import PeerSession


class KernelStatus(Protocol):
    """The status output's kernel part."""

    def kernel(self) -> dict[str, object]:
        """Kernel sync's counters."""


class DaemonState(Protocol):
    """The running daemon, read-only but for ``reload``."""

    config: DaemonConfig
    sessions: list[PeerSession]
    peer_configs: dict[str, Peer]
    rib: Rib
    fib: FibProgrammer | None
    learner: KernelLearner | None
    kernel_events: KernelEvents | None

    @property
    def status(self) -> KernelStatus:
        """The status file's views."""

    def reload(self, config: DaemonConfig) -> ReloadPlan:
        """Apply a new, validated config."""
