"""The Loc-RIB: every candidate route per prefix, the best of them and its ECMP set.

Data flow: the RIB task calls ``apply`` for each route that entered, changed or left an
Adj-RIB-In (or the node's own routes); the decision process (``rib/decision.py``) picks the
best and the multipath set; when the candidates changed, ``apply`` returns a ``Change`` that the
task publishes to the subscribers (Adj-RIB-Out update groups, kernel sync, control API) in
batches. A peer's UPDATE goes through ``apply_run`` whole: its prefixes that have no other
candidate are stored in one loop and published as one ``Run``, which the subscribers also take
whole (1,000,000 /32s from one peer cost a few hundred runs, not a million changes).

Memory is the point of the layout: a prefix with a single candidate (the common case: one
node announces each Calico block) maps straight to its interned ``Route``, so the entry costs
one dict slot; only prefixes with several candidates hold an ``Entry``.

While the daemon restarts (RFC 4724 selection deferral) changes are collected but not
published; ``end_deferral`` then publishes the whole table at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from rib.decision import DecisionOptions, select
from rib.route import Route, Source
from rib.shards import SHARD_OF, SPREAD, new_shards, shard_items, shard_len
from speaker.wire_codes import Family

NO_ROUTES: tuple[Route, ...] = ()


class Entry:
    """A prefix with several candidates."""

    __slots__ = ("best", "candidates", "ecmp")

    def __init__(self, candidates: list[Route], best: Route | None, ecmp: tuple[Route, ...]):
        self.candidates = candidates
        self.best = best
        self.ecmp = ecmp


class Change(NamedTuple):
    """The best route or ECMP set of one prefix changed (None / () when there is none)."""

    family: Family
    prefix: int
    old_best: Route | None
    old_ecmp: tuple[Route, ...]
    new_best: Route | None
    new_ecmp: tuple[Route, ...]


class Run(NamedTuple):
    """Many prefixes whose only candidate became ``route`` (None: they have none left).

    The batch form of ``Change`` for a peer's big table: every prefix of the run had no
    candidate or only the one from (``source``, ``path_id``), so its new best and ECMP set are
    ``route`` alone. The old selection is not kept (it was that source's previous route or
    nothing). Subscribers take a run whole: an update group exports the route once, the FIB
    programmer builds the kernel route once per answer of its policy.
    """

    family: Family
    source: Source
    path_id: int
    route: Route | None
    prefixes: Sequence[int]
    # None of the prefixes had a candidate before (so none had a best route to advertise),
    # and they all lie in one /18, so they share a shard (``rib.shards``).
    fresh: bool = False


Published = Change | Run
"""What the Loc-RIB publishes: single changes and runs, in the order they happened."""


def _selection(slot: Route | Entry | None) -> tuple[Route | None, tuple[Route, ...]]:
    if slot is None:
        return None, NO_ROUTES
    if isinstance(slot, Entry):
        return slot.best, slot.ecmp
    return slot, (slot,)


class LocRib:
    """Per-family tables of prefix -> Route | Entry (see the module docstring)."""

    def __init__(self, options: DecisionOptions | None = None) -> None:
        self.options = options or DecisionOptions()
        self.tables: dict[Family, list[dict[int, Route | Entry]]] = {}
        self.deferring = False

    def _slot(self, family: Family, prefix: int) -> Route | Entry | None:
        shards = self.tables.get(family)
        return None if shards is None else shards[SHARD_OF[(prefix >> 22) % SPREAD]].get(prefix)

    def __len__(self) -> int:
        return sum(shard_len(t) for t in self.tables.values())

    def lookup(self, family: Family, prefix: int) -> tuple[Route | None, tuple[Route, ...]]:
        """(best, ECMP set) of one prefix."""
        return _selection(self._slot(family, prefix))

    def candidates(self, family: Family, prefix: int) -> list[Route]:
        """Every candidate of one prefix."""
        slot = self._slot(family, prefix)
        if slot is None:
            return []
        return list(slot.candidates) if isinstance(slot, Entry) else [slot]

    def best_routes(self, family: Family) -> Iterator[tuple[int, Route, tuple[Route, ...]]]:
        """(prefix, best, ECMP set) of every prefix that has a best route."""
        for prefix, slot in shard_items(self.tables.get(family, [])):
            best, ecmp = _selection(slot)
            if best is not None:
                yield prefix, best, ecmp

    def apply(
        self, family: Family, prefix: int, source: Source, path_id: int, route: Route | None
    ) -> Change | None:
        """Replace the candidate from (``source``, ``path_id``) with ``route`` (None: remove it).

        Returns the change of best route or ECMP set, or None when the selection is the same
        (or while deferring).
        """
        shards = self.tables.get(family)
        if shards is None:
            shards = self.tables[family] = new_shards()
        table = shards[SHARD_OF[(prefix >> 22) % SPREAD]]
        slot = table.get(prefix)
        # The fast paths: a prefix's first candidate, and its only candidate replaced/removed.
        if slot is None:
            if route is None:
                return None
            table[prefix] = route
            return None if self.deferring else Change(family, prefix, None, (), route, (route,))
        new_best: Route | None
        new_ecmp: tuple[Route, ...]
        old_best: Route | None
        old_ecmp: tuple[Route, ...]
        if not isinstance(slot, Entry):
            if slot.source is source and slot.path_id == path_id:
                if route is None:
                    del table[prefix]
                    new_best, new_ecmp = None, NO_ROUTES
                else:
                    if route is slot:
                        return None
                    table[prefix] = route
                    new_best, new_ecmp = route, (route,)
                if self.deferring:
                    return None
                return Change(family, prefix, slot, (slot,), new_best, new_ecmp)
            if route is None:
                return None  # withdrawing something we never had
            candidates = [slot, route]
            old_best, old_ecmp = slot, (slot,)
        else:
            old_best, old_ecmp = slot.best, slot.ecmp
            candidates = [
                c for c in slot.candidates if not (c.source is source and c.path_id == path_id)
            ]
            if route is not None:
                candidates.append(route)
        if not candidates:
            del table[prefix]
            new_best, new_ecmp = None, NO_ROUTES
        elif len(candidates) == 1:
            table[prefix] = candidates[0]
            new_best, new_ecmp = candidates[0], (candidates[0],)
        else:
            new_best, new_ecmp = select(candidates, self.options)
            table[prefix] = Entry(candidates, new_best, new_ecmp)
        if self.deferring:
            return None
        # Published even when the selection stayed: a candidate behind the best changed, which
        # ADD-PATH "all paths" groups advertise (the others find nothing to do).
        return Change(family, prefix, old_best, old_ecmp, new_best, new_ecmp)

    def apply_run(
        self,
        family: Family,
        source: Source,
        path_id: int,
        route: Route | None,
        prefixes: Sequence[int],
        *,
        out: list[Published],
        store: list[dict[int, Route]] | None = None,
    ) -> None:
        """``apply`` for many prefixes at once, what changed appended to ``out``.

        Prefixes that have no other candidate (the common case: one node announces each block,
        one peer sends the big table) are stored in one tight loop and published as one
        ``Run``; the others go through ``apply``. ``store``: the source's Adj-RIB-In shards
        (path id 0, so their keys are the prefixes), given ``route`` in the same loop, which
        shares the shard index (the tables use the same sharding).
        """
        shards = self.tables.get(family)
        if shards is None:
            shards = self.tables[family] = new_shards()
        if route is not None and prefixes:
            low = min(prefixes) >> 22
            if low == max(prefixes) >> 22:
                shard = SHARD_OF[low % SPREAD]
                if shards[shard].keys().isdisjoint(prefixes):
                    # The common case (a peer's table, a node's blocks) in C: one shard, and no
                    # prefix has a candidate yet.
                    new: dict[int, Route] = dict.fromkeys(prefixes, route)
                    shards[shard].update(new)
                    if store is not None:
                        store[shard].update(new)
                    if not self.deferring:
                        out.append(Run(family, source, path_id, route, list(new), fresh=True))
                    return
        simple: list[int] = []
        add = simple.append
        entry = Entry
        # A run's neighbours share a shard (rib.shards): look it up when the /18 changes.
        high = -1
        table: dict[int, Route | Entry] = {}
        kept: dict[int, Route] = {}
        for prefix in prefixes:
            if prefix >> 22 != high:
                high = prefix >> 22
                shard = SHARD_OF[high % SPREAD]
                table = shards[shard]
                if store is not None:
                    kept = store[shard]
            if store is not None:
                kept[prefix] = route  # type: ignore[assignment]
            slot = table.get(prefix)
            if slot is None:
                if route is not None:
                    table[prefix] = route
                    add(prefix)
            elif slot.__class__ is not entry and slot.source is source and slot.path_id == path_id:  # type: ignore[union-attr]
                if slot is not route:
                    if route is None:
                        del table[prefix]
                    else:
                        table[prefix] = route
                    add(prefix)
            else:
                change = self.apply(family, prefix, source, path_id, route)
                if change is not None:
                    out.append(change)
        if simple and not self.deferring:
            out.append(Run(family, source, path_id, route, simple))

    def end_deferral(self) -> list[Change]:
        """Selection deferral is over: every current selection, as changes from nothing."""
        self.deferring = False
        return self.whole_table()

    def whole_table(self) -> list[Change]:
        """Every current selection as a change from nothing (for a new update group)."""
        return [
            Change(family, prefix, None, NO_ROUTES, best, ecmp)
            for family in self.tables
            for prefix, best, ecmp in self.best_routes(family)
        ]
