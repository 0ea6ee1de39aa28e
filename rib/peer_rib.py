"""The RIB core's state for one configured peer, and the timers it can have armed.

Data flow: ``rib.rib_core.RibCore`` makes one ``PeerRib`` per ``PeerAdded`` and updates it as
the peer's session comes up and goes down; update groups hold them as their members
(``rib.adj_rib_out.Member``); the read API (``rib.rib_view``) reports from them. The peer's
routes are not here: they are its candidates in the Loc-RIB, under ``source``.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rib.graceful_restart import GrTerms
from rib.rib_events import PeerSettings
from rib.route import Source
from speaker.wire_codes import Family

if TYPE_CHECKING:
    from rib.adj_rib_out import UpdateGroup


class RibTimer(enum.Enum):
    """What a deadline of the core is for (and the core's internal work items)."""

    RESTART = "graceful restart: the peer's restart time"  # RFC 4724
    LLGR = "long-lived stale time"  # RFC 9494
    STALE_PATH = "stale routes wait for End-of-RIB"  # after the peer is back
    REFRESH = "enhanced route refresh: EoRR"  # RFC 7313
    DEFERRAL = "selection deferral"  # our restart
    DEFERRAL_CHECK = "deferral: peers not up yet"
    DEFERRAL_END = "deferral: every peer is done"
    DRAINED = "a member that fell behind takes data again"
    REMOVED = "a peer was removed"


@dataclass(slots=True)
class TableSend:
    """Where a table send to one member stands (``families`` shard by shard, then markers)."""

    families: list[Family]
    end_of_rib: bool = False
    enhanced: bool = False  # RFC 7313: each family between BoRR and EoRR
    index: int = 0
    shard: int = 0
    began: bool = False  # BoRR of the current family sent


@dataclass(eq=False)
class PeerRib:
    """What the RIB knows of one peer (see the module docstring)."""

    handle: object  # the session, as events and actions name it
    settings: PeerSettings
    source: Source | None = None  # the current session's routes carry it
    group: UpdateGroup | None = None
    up: bool = False
    removed: bool = False
    coming_up: bool = False  # OpenSent / OpenConfirm / Established (the shell tells)
    gr: GrTerms = field(default_factory=GrTerms)
    eor: set[Family] = field(default_factory=set)
    families: frozenset[Family] = frozenset()
    enhanced_refresh: bool = False  # RFC 7313 negotiated
    stale: set[Family] = field(default_factory=set)  # families that may hold stale routes
    # (timer, family or None) -> deadline; the long-lived stale time runs per family
    timers: dict[tuple[RibTimer, Family | None], float] = field(default_factory=dict)
    # RFC 7313: keys announced since the peer's BoRR, per family being refreshed
    refreshing: dict[Family, set[int]] = field(default_factory=dict)
    writable: bool = True  # its connection takes data now
    missed: dict[Family, set[int]] = field(default_factory=dict)  # keys it missed meanwhile
    conn: int = 0  # the Established connection our words are for (the shell checks it)
    table: TableSend | None = None  # a table send not finished yet (it waits for a drain)

    @property
    def name(self) -> str:
        """The peer's name (its address)."""
        return self.settings.name

    @property
    def remote(self) -> bytes:
        """The peer's address, packed (4 or 16 octets; empty when not known)."""
        return self.settings.packed_address

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """The peer's logger."""
        return self.settings.log

    def stale_families(self) -> list[Family]:
        """The families that may still hold stale routes, in a stable order."""
        return sorted(self.stale)
