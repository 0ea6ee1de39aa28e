"""The RIB's read API.

What the control socket, the BIRD socket, the status file and the metrics may know of the RIB,
without reaching into its tables.

Data flow: ``RibView`` wraps a ``rib.rib_core.RibCore`` and answers from it on the event loop
between two slices of RIB work (nothing here changes the RIB). Counts come from the Loc-RIB's
per-source counters and shard lengths, never from walking a table; lists of routes walk it and
are bounded by the caller's limit; what a peer is advertised is counted by its update group
as it makes its words (no table of it exists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rib.loc_rib import Entry
from rib.peer_rib import PeerRib
from rib.rib_core import RibCore
from rib.route import Route
from rib.shards import SHARDS, shard_items
from speaker.wire_codes import Family


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One peer as the RIB sees it."""

    name: str
    up: bool
    families: frozenset[Family]
    received: dict[Family, int]  # candidates in the Loc-RIB from the current session's source
    end_of_rib: frozenset[Family]  # families whose End-of-RIB came on this session
    graceful_restart: bool  # GR negotiated on the last session
    stale: frozenset[Family]  # families whose routes are kept stale (GR, LLGR)
    rr_client: bool
    writable: bool  # its connection takes data now (False: it fell behind)


class RibView:
    """Read-only answers about the RIB (see the module docstring)."""

    def __init__(self, core: RibCore) -> None:
        self._core = core

    # -- the Loc-RIB ---------------------------------------------------------------------------

    @property
    def deferring(self) -> bool:
        """Selection deferral (RFC 4724) still runs: nothing is published yet."""
        return self._core.loc.deferring

    def families(self) -> list[Family]:
        """The families the Loc-RIB holds routes of."""
        return sorted(self._core.loc.tables)

    def prefix_count(self, family: Family | None = None) -> int:
        """Prefixes with at least one candidate (of one family, or of all)."""
        loc = self._core.loc
        if family is None:
            return len(loc)
        return loc.prefix_count(family)

    def best_routes(self, family: Family) -> Iterator[tuple[int, Route, tuple[Route, ...]]]:
        """(prefix, best, ECMP set) of every prefix that has a best route."""
        return self._core.loc.best_routes(family)

    def lookup(self, family: Family, prefix: int) -> tuple[Route | None, tuple[Route, ...]]:
        """(best, ECMP set) of one prefix."""
        return self._core.loc.lookup(family, prefix)

    def candidates(self, family: Family, prefix: int) -> list[Route]:
        """Every candidate of one prefix (resolvable or not)."""
        return self._core.loc.candidates(family, prefix)

    def entries(
        self, family: Family
    ) -> Iterator[tuple[int, Route | None, tuple[Route, ...], list[Route]]]:
        """(prefix, best or None, ECMP set, every candidate) of every prefix with candidates.

        BIRD's ``show route`` lists each network with all its routes, the unusable ones too;
        one shard at a time is copied, so the RIB may change between two shards.
        """
        loc = self._core.loc
        for prefix, slot in shard_items(loc.tables.get(family, [])):
            best, ecmp = loc.selection(slot)
            yield prefix, best, ecmp, (list(slot.candidates) if isinstance(slot, Entry) else [slot])

    @property
    def version(self) -> int:
        """Publications so far: a view computed from the RIB holds while this does not move."""
        return self._core.version

    # -- selection deferral --------------------------------------------------------------------

    @property
    def deferral_deadline(self) -> float | None:
        """Event-loop time at which selection deferral ends at the latest (None: not running)."""
        return self._core.deferral_deadline if self._core.loc.deferring else None

    @property
    def selection_deferral(self) -> float:
        """The configured longest selection deferral, in seconds."""
        return self._core.selection_deferral

    def deferral_waiting(self) -> list[str]:
        """The peers selection deferral still waits for.

        Up with graceful restart and no End-of-RIB of every family yet, or not up (BIRD's
        protocols holding a recovery lock).
        """
        if not self._core.loc.deferring:
            return []
        return [
            p.name
            for p in self._core.peers.values()
            if not p.up or (p.gr.negotiated and not p.gr.restarting and not p.eor >= p.families)
        ]

    def multipath_count(self, family: Family) -> int:
        """Prefixes with more than one candidate (each holds an ``Entry``)."""
        shards = self._core.loc.tables.get(family, [])
        return sum(1 for shard in shards for slot in shard.values() if slot.__class__ is Entry)

    # -- peers ---------------------------------------------------------------------------------

    def _peer(self, name: str) -> PeerRib | None:
        return next((p for p in self._core.peers.values() if p.name == name), None)

    def peer(self, name: str) -> PeerStatus | None:
        """One peer's status, by name (its address)."""
        peer = self._peer(name)
        return None if peer is None else self._status(peer)

    def peers(self) -> list[PeerStatus]:
        """Every configured peer's status."""
        return [self._status(p) for p in self._core.peers.values()]

    def _status(self, peer: PeerRib) -> PeerStatus:
        counts = {} if peer.source is None else dict(self._core.loc.counts.get(peer.source, {}))
        return PeerStatus(
            name=peer.name,
            up=peer.up,
            families=peer.families,
            received=counts,
            end_of_rib=frozenset(peer.eor),
            graceful_restart=peer.gr.negotiated,
            stale=frozenset(peer.stale),
            rr_client=peer.settings.rr_client,
            writable=peer.writable,
        )

    def received(self, name: str, family: Family, limit: int | None = None) -> list[int]:
        """The prefixes a peer gave us (import policy accepted them), up to ``limit``."""
        peer = self._peer(name)
        if peer is None or peer.source is None:
            return []
        loc = self._core.loc
        out: list[int] = []
        for shard in range(SHARDS):
            out.extend(prefix for prefix, _ in loc.source_routes(family, peer.source, shard))
            if limit is not None and len(out) >= limit:
                return sorted(set(out))[:limit]
        return sorted(set(out))

    def advertised(self, name: str) -> int:
        """Routes (paths, with ADD-PATH) the peer holds from us now (its group counts them)."""
        peer = self._peer(name)
        if peer is None or peer.group is None:
            return 0
        return peer.group.advertised_to(peer)

    # -- the core ------------------------------------------------------------------------------

    @property
    def update_groups(self) -> int:
        """Update groups (peers sharing one export and encoding)."""
        return len(self._core.groups)

    @property
    def prefixes_processed(self) -> int:
        """Prefixes applied to the Loc-RIB since the start."""
        return self._core.prefixes_processed

    @property
    def route_objects(self) -> int:
        """Interned ``Route`` objects alive in the RIB's intern table."""
        return len(self._core.routes)
