"""Route tables cut into shards so that no single dict resize stalls the event loop.

Why: CPython grows a dict by copying it whole; at 700,000 entries one insert took 29 ms here,
and the Adj-RIB-In, the Loc-RIB and an update group's table grow in step, so one slice of RIB
work stalled for about 90 ms. Cut into ``SHARDS`` dicts, each resize copies a 61st of the
table. The shards are deliberately unequal (their shares of the keys grow smoothly by a factor
of two from the first to the last): equal shards fed consecutive prefixes all reach their
resize point within a few dozen inserts and stalled one slice for 29 ms of CPU; unequal ones
reach it one after another across the whole doubling.

Data flow: ``adj_rib_in``, ``loc_rib`` and ``adj_rib_out`` keep one shard list per family and
index it as ``shards[SHARD_OF[key % SPREAD]]`` in their hot loops (no call per lookup). The
modulo of a prime spreads /26 blocks and /32 hosts alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

V = TypeVar("V")
SHARDS = 61
SPREAD = 1021  # a prime: key % SPREAD is even for any regular run of prefixes


def _shard_of() -> bytes:
    weights = [2 ** (i / SHARDS) for i in range(SHARDS)]
    total = sum(weights)
    bounds, acc = [], 0.0
    for weight in weights:
        acc += weight / total
        bounds.append(acc * SPREAD)
    out, shard = bytearray(), 0
    for residue in range(SPREAD):
        while residue + 0.5 > bounds[shard] and shard < SHARDS - 1:
            shard += 1
        out.append(shard)
    return bytes(out)


SHARD_OF = _shard_of()  # residue -> shard

Shards = list[dict[int, V]]


def new_shards() -> list[dict[int, V]]:
    """An empty sharded table."""
    return [{} for _ in range(SHARDS)]


def shard_items(shards: list[dict[int, V]]) -> Iterator[tuple[int, V]]:
    """Every (key, value), shard by shard (a snapshot per shard: safe to modify meanwhile)."""
    for shard in shards:
        yield from list(shard.items())


def shard_len(shards: list[dict[int, V]]) -> int:
    """Entries in all shards."""
    return sum(len(shard) for shard in shards)
