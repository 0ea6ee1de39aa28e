"""The Loc-RIB, the RIB's one table of record.

It holds every candidate route per prefix, its best route and ECMP set, and how many candidates
each source holds.

Data flow: the RIB core (``rib.rib_core``) applies each route that a peer announced and import
policy accepted, each withdrawal, and the node's own routes here (``apply``, and ``apply_run``
for a whole UPDATE's prefixes at once); the decision process (``rib/decision.py``) picks the
best and the multipath set; every change of selection is appended to the caller's list as a
``Change`` (one prefix) or a ``Run`` (many prefixes that share source, route and previous
route), which the core publishes to its channels (update groups, the FIB programmer).

There is no separate Adj-RIB-In: what a peer announced is its candidates here (BIRD 2 keeps one
table too; its pre-policy ``import table`` is off by default). Withdrawing, marking stale or
sweeping a peer's routes walks this table shard by shard (``withdraw_source``,
``restate_source``), as BIRD walks its table to flush a protocol. ``counts`` keeps the number of
candidates per source and family, so prefix limits and ``show`` never walk.

Memory is the point of the layout: a prefix with a single candidate (the common case: one node
announces each Calico block) maps straight to its interned ``Route``, so the entry costs one
dict slot and the prefix int, which the decoder made and every other table shares; only
prefixes with several candidates hold an ``Entry``.

Next-hop resolvability (RFC 4271 9.1.2.1) and interior cost (step e) come from
``rib.next_hops.NextHops``: a candidate whose next hop does not resolve is kept but not
eligible, so a bare slot's selection is the route when its next hop resolves, else nothing.
The published ``Change``s and ``Run``s describe selections, never unresolvable routes.

While the daemon restarts (RFC 4724 selection deferral) changes are not published;
``table_changes`` then publishes the whole table, shard by shard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from rib.decision import DecisionOptions, IgpCost, rank, select
from rib.next_hops import NextHops
from rib.route import Route, Source
from rib.run_split import RunPrefixes
from rib.shards import SHARD_OF, SHARDS, SPREAD, compact_shard, new_shards, shard_items, shard_len
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
    """The selection of one prefix changed, or a candidate behind its best did.

    ``*_all`` are every candidate before and after (resolvable or not), for ADD-PATH groups that
    advertise all paths; the best routes and ECMP sets are None / () when there is none.
    """

    family: Family
    prefix: int
    old_best: Route | None
    old_ecmp: tuple[Route, ...]
    new_best: Route | None
    new_ecmp: tuple[Route, ...]
    old_all: Sequence[Route] = NO_ROUTES
    new_all: Sequence[Route] = NO_ROUTES
    # Next-hop resolution changed (``LocRib.reselect``): every candidate as it ranked before,
    # best first, since ranking ``old_all`` now would use the new resolution.
    old_rank: Sequence[Route] | None = None


class Run(NamedTuple):
    """Many prefixes whose only candidate's selection went from ``old`` to ``route``.

    The batch form of ``Change`` for a peer's big table: every prefix of the run has (had) no
    candidate but the one from (``source``, ``path_id``), so its best and ECMP set are that
    route alone, or nothing (None: withdrawn, or its next hop does not resolve). Subscribers
    take a run whole: an update group exports ``route`` once, the FIB programmer builds the
    kernel route once per answer of its policy.

    Prefixes here, as everywhere in the RIB, are ``address << 8 | length`` with no host bits:
    the BGP and netlink decoders mask them, the config and BIRD's ``route`` refuse them. The
    policies' run splitters rely on it (``bgpd.bird_config.prefix_classes``).
    """

    family: Family
    source: Source
    path_id: int
    route: Route | None
    prefixes: Sequence[int]
    old: Route | None = None


Published = Change | Run
"""What the Loc-RIB publishes: single changes and runs, in the order they happened."""


def append_run(out: list[Published], run: Run) -> None:
    """``run`` appended to ``out``, or merged into the run before it when it continues that one.

    A peer's table comes as one run per UPDATE, and a slice's work is published in one batch:
    consecutive runs of one (family, source, path id, route, old route) are one run to every
    subscriber, which then exports, splits and builds its kernel route once for all of them,
    not once per UPDATE. Nothing between them touched a prefix of either (it would have
    appended its own change in between), so the merged run says what the two said, in order.
    ``out`` is the core's unpublished batch: the run merged into has reached no subscriber.
    The merged run keeps each part's bounds (``RunPrefixes.pieces``), so that a splitter can
    take whole the parts that lie between two of its edges and sort only those that do not.
    """
    if out:
        last = out[-1]
        if (
            isinstance(last, Run)
            and last.route is run.route
            and last.old is run.old
            and last.source is run.source
            and last.path_id == run.path_id
            and last.family is run.family
        ):
            merged = last.prefixes
            if isinstance(merged, RunPrefixes):
                _join(merged, run.prefixes)
                return
    out.append(run)


def _join(merged: RunPrefixes, added: Sequence[int]) -> None:
    """``added`` appended to ``merged``, bounds and parts kept true."""
    span: tuple[int, int] | None = getattr(merged, "span", None)
    added_span: tuple[int, int] | None = getattr(added, "span", None)
    if span is None or added_span is None:
        merged.extend(added)
        if span is not None:  # found again when a splitter asks
            del merged.span
        if hasattr(merged, "pieces"):
            del merged.pieces
        return
    base = len(merged)
    pieces: list[tuple[int, int, int]] | None = getattr(merged, "pieces", None)
    if pieces is None:
        pieces = merged.pieces = [(base, *span)]
    more: list[tuple[int, int, int]] | None = getattr(added, "pieces", None)
    merged.extend(added)
    if more is None:
        pieces.append((len(merged), *added_span))
    else:
        pieces.extend([(base + end, low, high) for end, low, high in more])
    merged.span = (min(span[0], added_span[0]), max(span[1], added_span[1]))


class LocRib:
    """Per-family tables of prefix -> Route | Entry (see the module docstring)."""

    def __init__(self, options: DecisionOptions | None = None, next_hops: NextHops | None = None):
        self.options = options or DecisionOptions()
        self.next_hops = next_hops or NextHops()
        self.tables: dict[Family, list[dict[int, Route | Entry]]] = {}
        self.counts: dict[Source, dict[Family, int]] = {}
        self.deferring = False

    # -- reading -------------------------------------------------------------------------------

    def shards(self, family: Family) -> list[dict[int, Route | Entry]]:
        """The family's shards, created on first use (indexed as ``rib.shards`` says)."""
        shards = self.tables.get(family)
        if shards is None:
            shards = self.tables[family] = new_shards()
        return shards

    def _slot(self, family: Family, prefix: int) -> Route | Entry | None:
        shards = self.tables.get(family)
        return None if shards is None else shards[SHARD_OF[(prefix >> 22) % SPREAD]].get(prefix)

    def __len__(self) -> int:
        return sum(shard_len(t) for t in self.tables.values())

    def prefix_count(self, family: Family) -> int:
        """Prefixes with at least one candidate, of one family."""
        shards = self.tables.get(family)
        return 0 if shards is None else shard_len(shards)

    def count(self, source: Source, family: Family | None = None) -> int:
        """Candidates ``source`` holds (of one family, or of all)."""
        by_family = self.counts.get(source)
        if not by_family:
            return 0
        return sum(by_family.values()) if family is None else by_family.get(family, 0)

    def selection(self, slot: Route | Entry | None) -> tuple[Route | None, tuple[Route, ...]]:
        """(best, ECMP set) held by a table slot."""
        if slot is None:
            return None, NO_ROUTES
        if slot.__class__ is Entry:
            return slot.best, slot.ecmp
        route: Route = slot  # type: ignore[assignment]
        if self.next_hops.unreachable and not self.next_hops.resolves(route):
            return None, NO_ROUTES
        return route, (route,)

    def lookup(self, family: Family, prefix: int) -> tuple[Route | None, tuple[Route, ...]]:
        """(best, ECMP set) of one prefix."""
        return self.selection(self._slot(family, prefix))

    def candidates(self, family: Family, prefix: int) -> list[Route]:
        """Every candidate of one prefix (resolvable or not)."""
        slot = self._slot(family, prefix)
        if slot is None:
            return []
        return list(slot.candidates) if isinstance(slot, Entry) else [slot]

    def best_routes(self, family: Family) -> Iterator[tuple[int, Route, tuple[Route, ...]]]:
        """(prefix, best, ECMP set) of every prefix that has a best route."""
        for prefix, slot in shard_items(self.tables.get(family, [])):
            best, ecmp = self.selection(slot)
            if best is not None:
                yield prefix, best, ecmp

    def _igp_cost(self) -> IgpCost | None:
        """The decision's resolvability hook, or None when every next hop resolves at cost 0."""
        next_hops = self.next_hops
        return next_hops.igp_cost if next_hops.unreachable or next_hops.costs else None

    def _count(self, source: Source, family: Family, delta: int) -> None:
        by_family = self.counts.get(source)
        if by_family is None:
            by_family = self.counts[source] = {}
        total = by_family.get(family, 0) + delta
        if total:
            by_family[family] = total
        else:
            by_family.pop(family, None)
            if not by_family:
                del self.counts[source]

    # -- changing ------------------------------------------------------------------------------

    def apply(
        self,
        family: Family,
        prefix: int,
        source: Source,
        path_id: int,
        route: Route | None,
        *,
        out: list[Published],
    ) -> None:
        """Replace the candidate from (``source``, ``path_id``) with ``route`` (None: remove it).

        The change of selection, if any (none while deferring), is appended to ``out``.
        """
        table = self.shards(family)[SHARD_OF[(prefix >> 22) % SPREAD]]
        slot = table.get(prefix)
        if slot is None:
            if route is None:
                return  # withdrawing something we never had
            table[prefix] = route
            self._count(source, family, 1)
            new_best, new_ecmp = self.selection(route)
            if new_best is not None and not self.deferring:
                out.append(Change(family, prefix, None, NO_ROUTES, route, new_ecmp, (), (route,)))
            return
        old_all: Sequence[Route]
        if slot.__class__ is not Entry:
            bare: Route = slot  # type: ignore[assignment]
            old_best, old_ecmp = self.selection(bare)
            old_all = (bare,)
            if bare.source is source and bare.path_id == path_id:
                if route is bare:
                    return
                if route is None:
                    del table[prefix]
                    self._count(source, family, -1)
                    new_best, new_ecmp, new_all = None, NO_ROUTES, NO_ROUTES
                else:
                    table[prefix] = route
                    new_best, new_ecmp = self.selection(route)
                    new_all = (route,)
                if self.deferring or (old_best is None and new_best is None):
                    return
                out.append(
                    Change(family, prefix, old_best, old_ecmp, new_best, new_ecmp, old_all, new_all)
                )
                return
            if route is None:
                return  # withdrawing something we never had
            candidates = [bare, route]
            self._count(source, family, 1)
        else:
            entry: Entry = slot
            old_best, old_ecmp, old_all = entry.best, entry.ecmp, entry.candidates
            candidates = []
            replaced = False
            for candidate in old_all:
                if candidate.source is source and candidate.path_id == path_id:
                    if candidate is route:
                        return  # the same route again
                    replaced = True
                else:
                    candidates.append(candidate)
            if route is None:
                if not replaced:
                    return  # withdrawing something we never had
                self._count(source, family, -1)
            else:
                candidates.append(route)
                if not replaced:
                    self._count(source, family, 1)
        if not candidates:
            del table[prefix]
            new_best, new_ecmp = None, NO_ROUTES
        elif len(candidates) == 1:
            table[prefix] = candidates[0]
            new_best, new_ecmp = self.selection(candidates[0])
        else:
            new_best, new_ecmp = select(candidates, self.options, igp_cost=self._igp_cost())
            table[prefix] = Entry(candidates, new_best, new_ecmp)
        if self.deferring:
            return
        # Published even when the selection stayed: a candidate behind the best changed, which
        # ADD-PATH "all paths" groups advertise (the others find nothing to do).
        out.append(
            Change(family, prefix, old_best, old_ecmp, new_best, new_ecmp, old_all, candidates)
        )

    def apply_run(
        self,
        family: Family,
        source: Source,
        path_id: int,
        route: Route | None,
        prefixes: Sequence[int],
        *,
        out: list[Published],
    ) -> None:
        """``apply`` for many prefixes at once, what changed appended to ``out``.

        Prefixes that have no other candidate (the common case: one node announces each block,
        one peer sends the big table) are stored in one tight loop and published as ``Run``s,
        one per previous route; the others go through ``apply``.
        """
        shards = self.shards(family)
        next_hops = self.next_hops
        selected = route
        if route is not None and next_hops.unreachable and not next_hops.resolves(route):
            selected = None  # a candidate, but not eligible: nothing to publish for it
        # Every run made here keeps its bounds (``RunPrefixes.span``): the policies' splitters
        # need no pass of their own, and runs merged in ``append_run`` join theirs.
        if route is not None and prefixes:
            lowest, highest = min(prefixes), max(prefixes)
            low = lowest >> 22
            if low == highest >> 22:
                shard = SHARD_OF[low % SPREAD]
                if shards[shard].keys().isdisjoint(prefixes):
                    # The common case (a peer's table, a node's blocks) in C: one shard, and no
                    # prefix has a candidate yet.
                    new: dict[int, Route | Entry] = dict.fromkeys(prefixes, route)
                    shards[shard].update(new)
                    self._count(source, family, len(new))
                    if selected is not None and not self.deferring:
                        run = RunPrefixes(new)
                        run.span = (lowest, highest)
                        append_run(out, Run(family, source, path_id, route, run))
                    return
        entry = Entry
        unreachable = next_hops.unreachable
        deferring = self.deferring
        added = 0
        run = RunPrefixes()  # split by policies (rib.run_split)
        run_old: Route | None = None
        old: Route | None
        # A run's neighbours share a shard (rib.shards): look it up when the /18 changes.
        high = -1
        table: dict[int, Route | Entry] = {}
        for prefix in prefixes:
            if prefix >> 22 != high:
                high = prefix >> 22
                table = shards[SHARD_OF[high % SPREAD]]
            slot = table.get(prefix)
            if slot is None:
                if route is None:
                    continue
                table[prefix] = route
                added += 1
                old = None
            elif slot.__class__ is not entry and slot.source is source and slot.path_id == path_id:  # type: ignore[union-attr]
                if slot is route:
                    continue
                if route is None:
                    del table[prefix]
                    added -= 1
                else:
                    table[prefix] = route
                bare: Route = slot  # type: ignore[assignment]
                # An old route whose next hop did not resolve was not selected.
                old = None if unreachable and bare.attrs.next_hop in unreachable else bare
            else:
                self.apply(family, prefix, source, path_id, route, out=out)
                continue
            if deferring or (old is None and selected is None):
                continue
            if old is not run_old and run:
                run.span = (min(run), max(run))
                append_run(out, Run(family, source, path_id, selected, run, run_old))
                run = RunPrefixes()
            run_old = old
            run.append(prefix)
        if run:
            run.span = (min(run), max(run))
            append_run(out, Run(family, source, path_id, selected, run, run_old))
        if added:
            self._count(source, family, added)

    # -- walking one source's routes (session ends, graceful restart) --------------------------

    def source_routes(self, family: Family, source: Source, shard: int) -> list[tuple[int, Route]]:
        """(prefix, route) of every candidate ``source`` holds in one shard of a family."""
        shards = self.tables.get(family)
        if shards is None or self.count(source, family) == 0:
            return []
        out: list[tuple[int, Route]] = []
        entry = Entry
        for prefix, slot in shards[shard].items():
            if isinstance(slot, entry):
                out.extend((prefix, c) for c in slot.candidates if c.source is source)
            elif slot.source is source:
                out.append((prefix, slot))
        return out

    def replace_routes(
        self,
        family: Family,
        routes: list[tuple[int, Route]],
        replacement: dict[int, Route | None],
        out: list[Published],
    ) -> None:
        """Each (prefix, route) becomes ``replacement[id(route)]`` (None: withdrawn).

        ``routes`` come from ``source_routes`` (one source, one shard); consecutive prefixes that
        share old and new route are applied and published as one run.
        """
        batch: list[int] = []
        batch_route: Route | None = None
        batch_new: Route | None = None
        for prefix, route in routes:
            new = replacement[id(route)]
            if batch and (route is not batch_route or new is not batch_new):
                assert batch_route is not None
                self.apply_run(
                    family, batch_route.source, batch_route.path_id, batch_new, batch, out=out
                )
                batch = []
            batch_route, batch_new = route, new
            batch.append(prefix)
        if batch:
            assert batch_route is not None
            self.apply_run(
                family, batch_route.source, batch_route.path_id, batch_new, batch, out=out
            )

    # -- next hops changed, deferral over ------------------------------------------------------

    def reselect(
        self,
        family: Family,
        shard: int,
        changed: dict[bytes, tuple[bool, int]],
        out: list[Published],
    ) -> None:
        """Decide again the prefixes of one shard that have a candidate via a ``changed`` next hop.

        ``changed`` maps each next hop whose resolution changed to (resolved before, cost before);
        ``next_hops`` already holds the new state.
        """
        shards = self.tables.get(family)
        if shards is None or not changed:
            return
        igp_cost = self._igp_cost()
        now_cost = self.next_hops.igp_cost

        def old_cost(route: Route) -> int | None:
            before = changed.get(route.attrs.next_hop)
            if before is None:
                return now_cost(route)
            return before[1] if before[0] else None

        table = shards[shard]
        for prefix, slot in list(table.items()):
            if isinstance(slot, Entry):
                entry = slot
                if not any(c.attrs.next_hop in changed for c in entry.candidates):
                    continue
                best, ecmp = select(entry.candidates, self.options, igp_cost=igp_cost)
                old_best, old_ecmp = entry.best, entry.ecmp
                entry.best, entry.ecmp = best, ecmp
                if not self.deferring:
                    # Published even when the selection stayed: a path behind the best may
                    # have become eligible or not (ADD-PATH "all paths" groups send those).
                    old_rank = rank(entry.candidates, self.options, igp_cost=old_cost)
                    out.append(
                        Change(family, prefix, old_best, old_ecmp, best, ecmp,
                               entry.candidates, entry.candidates, old_rank)
                    )  # fmt: skip
                continue
            route = slot
            before = changed.get(route.attrs.next_hop)
            if before is None:
                continue
            was = before[0]
            now = self.next_hops.resolves(route)
            if was == now or self.deferring:
                continue
            old = (route,) if was else NO_ROUTES
            new = (route,) if now else NO_ROUTES
            out.append(
                Change(family, prefix, old[0] if old else None, old,
                       new[0] if new else None, new, (route,), (route,), old)
            )  # fmt: skip

    def table_changes(self, family: Family, shard: int) -> list[Published]:
        """Every selection of one shard as changes from nothing (deferral over, a new channel).

        Bare slots become runs, one per route in table order (a peer's table was stored in
        runs, so neighbours share their route); prefixes with several candidates, changes.
        """
        shards = self.tables.get(family)
        if shards is None:
            return []
        out: list[Published] = []
        run = RunPrefixes()
        run_route: Route | None = None
        unreachable = self.next_hops.unreachable
        for prefix, slot in shards[shard].items():
            if isinstance(slot, Entry):
                entry = slot
                if entry.best is not None:
                    out.append(
                        Change(family, prefix, None, NO_ROUTES, entry.best, entry.ecmp,
                               NO_ROUTES, entry.candidates)
                    )  # fmt: skip
                continue
            route = slot
            if unreachable and route.attrs.next_hop in unreachable:
                continue
            if route is not run_route and run:
                assert run_route is not None
                out.append(Run(family, run_route.source, run_route.path_id, run_route, run))
                run = RunPrefixes()
            run_route = route
            run.append(prefix)
        if run:
            assert run_route is not None
            out.append(Run(family, run_route.source, run_route.path_id, run_route, run))
        return out

    # -- memory --------------------------------------------------------------------------------

    def compact(self) -> int:
        """Rebuild shards left much larger than their content (dicts never shrink on delete).

        Returns the number of shards rebuilt; after mass withdrawal the memory goes back.
        """
        rebuilt = 0
        for shards in self.tables.values():
            for index in range(SHARDS):
                rebuilt += compact_shard(shards, index)
        return rebuilt
