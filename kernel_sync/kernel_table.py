"""What the kernel should hold of our routes, at one dict slot per route.

Role: the FIB programmer's record (BIRD's ``sync_map``): for each (family, prefix) the kernel
route it wrote. Most of a route is shared: every block a Calico node announces goes through the
same gateway with the same metric, protocol and table, so the record keeps one interned
"shape" (the ``KernelRoute`` with prefix 0) per distinct way and maps prefixes to shapes, in
per-family sharded dicts (``rib.shards``). A programmed route then costs one dict slot; the
prefix int is the one the Loc-RIB already holds (the RIB hands the same objects over). Reads
give back whole ``KernelRoute`` values, built on the way out.

Data flow: ``kernel_sync.fib_programmer`` sets and deletes entries as it queues writes; the
status output, resync and the metrics read it.
"""

from __future__ import annotations

from collections.abc import Iterator

from kernel_sync.route_messages import KernelRoute
from rib.shards import SHARD_OF, SHARDS, SPREAD, compact_shard, new_shards, shard_items
from speaker.wire_codes import Family

Key = tuple[Family, int]
_new = tuple.__new__  # a NamedTuple from a tuple, without the keyword-handling constructor


class KernelTable:
    """(family, prefix) -> KernelRoute, stored as shared shapes (see the module docstring)."""

    __slots__ = ("_shapes", "_tables")

    def __init__(self) -> None:
        self._tables: dict[Family, list[dict[int, KernelRoute]]] = {}
        self._shapes: dict[KernelRoute, KernelRoute] = {}

    def shards(self, family: Family) -> list[dict[int, KernelRoute]]:
        """The family's shards of prefix -> shape (indexed as ``rib.shards`` says)."""
        tables = self._tables.get(family)
        if tables is None:
            tables = self._tables[family] = new_shards()
        return tables

    def _shard(self, family: Family, prefix: int) -> dict[int, KernelRoute]:
        return self.shards(family)[SHARD_OF[(prefix >> 22) % SPREAD]]

    def shape(self, route: KernelRoute) -> KernelRoute:
        """The shared prefix-less form of ``route``."""
        shape = _new(KernelRoute, (route[0], 0, *route[2:]))
        return self._shapes.setdefault(shape, shape)

    def get(self, key: Key) -> KernelRoute | None:
        """The route recorded for ``key``, or None."""
        family, prefix = key
        tables = self._tables.get(family)
        if tables is None:
            return None
        shape = tables[SHARD_OF[(prefix >> 22) % SPREAD]].get(prefix)
        return None if shape is None else _new(KernelRoute, (shape[0], prefix, *shape[2:]))

    def __getitem__(self, key: Key) -> KernelRoute:
        route = self.get(key)
        if route is None:
            raise KeyError(key)
        return route

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        family, prefix = key
        tables = self._tables.get(family)
        return tables is not None and prefix in tables[SHARD_OF[(prefix >> 22) % SPREAD]]

    def __setitem__(self, key: Key, route: KernelRoute) -> None:
        family, prefix = key
        self._shard(family, prefix)[prefix] = self.shape(route)

    def set_shape(self, family: Family, prefix: int, shape: KernelRoute) -> None:
        """Record an already shared shape (the hot path: one shape for a whole run)."""
        self._shard(family, prefix)[prefix] = shape

    def pop(self, key: Key, default: KernelRoute | None = None) -> KernelRoute | None:
        """Forget ``key``; the route it had, or ``default``."""
        family, prefix = key
        tables = self._tables.get(family)
        if tables is None:
            return default
        shape = tables[SHARD_OF[(prefix >> 22) % SPREAD]].pop(prefix, None)
        return default if shape is None else _new(KernelRoute, (shape[0], prefix, *shape[2:]))

    def __delitem__(self, key: Key) -> None:
        if self.pop(key) is None:
            raise KeyError(key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KernelTable):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return sum(len(shard) for tables in self._tables.values() for shard in tables)

    def items(self) -> Iterator[tuple[Key, KernelRoute]]:
        """Every (key, route), shard by shard (a snapshot per shard)."""
        for family, tables in list(self._tables.items()):
            for prefix, shape in shard_items(tables):
                yield (family, prefix), _new(KernelRoute, (shape[0], prefix, *shape[2:]))

    def __iter__(self) -> Iterator[Key]:
        for family, tables in list(self._tables.items()):
            for prefix, _ in shard_items(tables):
                yield family, prefix

    def compact(self) -> int:
        """Rebuild oversized shards and forget shapes no route uses; entries dropped."""
        used: set[KernelRoute] = set()
        for tables in self._tables.values():
            for index in range(SHARDS):
                compact_shard(tables, index)
                used.update(tables[index].values())
        gone = [shape for shape in self._shapes if shape not in used]
        for shape in gone:
            del self._shapes[shape]
        return len(gone)
