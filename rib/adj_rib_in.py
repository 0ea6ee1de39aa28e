"""One peer's Adj-RIB-In: the routes it announced that import policy accepted, per family.

Data flow: the RIB task applies each decoded UPDATE of the peer here (after import policy) and
hands what changed to the Loc-RIB. Keys are prefix ints, or, for ADD-PATH families,
``path_id << 136 | prefix`` (136 bits hold an IPv6 prefix int), so one sharded table per
family (``rib/shards.py``) holds either kind. Values are interned ``Route`` objects shared by
every prefix with the same source, attributes, path id and staleness, so a dict entry is all a
route costs here. Graceful
restart marks everything stale at once and sweeps what the peer did not announce again.
"""

from __future__ import annotations

from collections.abc import Iterator

from rib.route import ROUTES, Route, Stale
from rib.shards import new_shards, shard_items, shard_len
from speaker.wire_codes import Family

PATH_ID_SHIFT = 136


def rib_key(prefix: int, path_id: int) -> int:
    """The dict key of a (prefix, path id) pair."""
    return (path_id << PATH_ID_SHIFT) | prefix if path_id else prefix


def split_key(key: int) -> tuple[int, int]:
    """(prefix, path id) of a dict key."""
    return key & ((1 << PATH_ID_SHIFT) - 1), key >> PATH_ID_SHIFT


class AdjRibIn:
    """Per-family sharded tables of key -> Route (see the module docstring)."""

    __slots__ = ("maybe_stale", "tables")

    def __init__(self) -> None:
        self.tables: dict[Family, list[dict[int, Route]]] = {}
        # False when no route can be stale: End-of-RIB and session ends then skip the scan
        # of the whole table (100,000 routes, some 20 ms, on every peer's End-of-RIB).
        self.maybe_stale = False

    def shards(self, family: Family) -> list[dict[int, Route]]:
        """The family's shards, created on first use (indexed as ``rib.shards`` says)."""
        shards = self.tables.get(family)
        if shards is None:
            shards = self.tables[family] = new_shards()
        return shards

    def __len__(self) -> int:
        return sum(shard_len(t) for t in self.tables.values())

    def count(self, family: Family) -> int:
        """Routes held for one family."""
        shards = self.tables.get(family)
        return 0 if shards is None else shard_len(shards)

    def items(self, family: Family) -> Iterator[tuple[int, Route]]:
        """(key, route) pairs of one family."""
        shards = self.tables.get(family)
        return iter(()) if shards is None else shard_items(shards)

    def mark_stale(self, stale: Stale = Stale.STALE) -> int:
        """Every route becomes ``stale`` (RFC 4724: the peer is restarting); returns how many.

        The routes are re-interned with the new staleness: the table's Route objects are
        shared, so one re-intern per distinct route, not per prefix.
        """
        count = 0
        self.maybe_stale = True
        # id -> (old, new): holding the old route keeps its id from being reused meanwhile.
        renamed: dict[int, tuple[Route, Route]] = {}
        for shards in self.tables.values():
            for table in shards:
                for key, route in table.items():
                    if route.stale < stale:
                        pair = renamed.get(id(route))
                        if pair is None:
                            new = ROUTES.intern(route.source, route.attrs, route.path_id, stale)
                            pair = renamed[id(route)] = (route, new)
                        table[key] = pair[1]
                        count += 1
        return count

    def stale_keys(self, family: Family) -> list[int]:
        """Keys of the family's routes still marked stale."""
        if not self.maybe_stale:
            return []
        return [k for k, r in self.items(family) if r.stale]

    def any_stale(self) -> bool:
        """Whether some route of any family is still marked stale."""
        if self.maybe_stale and not any(self.stale_keys(f) for f in list(self.tables)):
            self.maybe_stale = False
        return self.maybe_stale
