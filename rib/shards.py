"""Route tables cut into shards so that no single dict resize stalls the event loop.

Why: CPython grows a dict by copying it whole; at 700,000 entries one insert took 29 ms here,
and the Adj-RIB-In, the Loc-RIB and an update group's table grow in step, so one slice of RIB
work stalled for about 90 ms. Cut into ``SHARDS`` dicts, each resize copies a 61st of the
table. The shards are deliberately unequal (their shares of the keys grow smoothly by a factor
of two from the first to the last): equal shards fed evenly all reach their resize point within
a few dozen inserts and stalled one slice for 29 ms of CPU; unequal ones reach it one after
another across the whole doubling.

A key's shard is chosen by its bits from 22 up: for an IPv4 prefix int (address << 8 | length)
that is its /18 of address space. Consecutive prefixes, the way a peer sends a big table, fill
one shard at a time and arrive in key order, which the CPU's caches follow: 1,000,000 /32s went
into three tables in half the time of shards chosen by the low bits (``key % SPREAD``), which
sent each next prefix to another dict. ``SHARD_OF`` scatters neighbouring /18s over the shards,
so a table of many /18s still spreads over all of them.

Data flow: ``adj_rib_in``, ``loc_rib`` and ``adj_rib_out`` keep one shard list per family and
index it as ``shards[SHARD_OF[(key >> 22) % SPREAD]]`` in their hot loops (no call per lookup).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

V = TypeVar("V")
SHARDS = 61
_COMPACT_FACTOR = 4  # a shard whose dict is this many times its content's size is rebuilt
SPREAD = 1021  # a prime: (key >> 22) % SPREAD is even for any regular run of /18s
SCATTER = 439  # neighbouring residues land this far apart in the unequal shares (coprime)


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
    # Residue r takes the share of residue r * SCATTER: neighbouring /18s go to distant shards,
    # and each shard keeps its number of residues (its share).
    return bytes(out[(residue * SCATTER) % SPREAD] for residue in range(SPREAD))


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


def pop_present(shards: list[dict[int, V]], keys: Sequence[int]) -> list[int]:
    """Remove ``keys`` from a sharded table; returns those that were there, in order."""
    return [k for k in keys if shards[SHARD_OF[(k >> 22) % SPREAD]].pop(k, None) is not None]


def _malloc_trim() -> object:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """Ask glibc to return freed heap to the system (``malloc_trim``); a no-op elsewhere.

    Why: a big dict's table is freed when a shard is rebuilt or emptied, but glibc keeps freed
    chunks for reuse, so RSS would stay at its peak after a mass withdrawal.
    """
    if _TRIM is not None:
        _TRIM(0)  # type: ignore[operator]


def compact_shard(shards: list[dict[int, V]], index: int) -> int:
    """Rebuild ``shards[index]`` when its dict is far larger than its content; 1 if rebuilt."""
    shard = shards[index]
    size = sys.getsizeof(shard)
    # An empty dict is 64 bytes; a full one about 40 bytes per entry at worst (rib.shards).
    if size > 1024 and size > _COMPACT_FACTOR * (64 + 48 * len(shard)):
        shards[index] = dict(shard)
        return 1
    return 0
