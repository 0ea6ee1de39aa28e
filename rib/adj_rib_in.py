"""Keys of the routes a peer announced: a prefix, or a prefix and its ADD-PATH path id.

Role: the RIB keeps no separate Adj-RIB-In (the Loc-RIB is the table of record, and a peer's
routes are its candidates there, ``rib.loc_rib``); what remains of one is how a received route is
named where one key must hold both: for ADD-PATH families ``path_id << 136 | prefix`` (136 bits
hold an IPv6 prefix int), else the prefix itself. Update groups name the paths they send the
same way, and enhanced route refresh (``rib.graceful_restart``) remembers refreshed routes so.
"""

from __future__ import annotations

PATH_ID_SHIFT = 136


def rib_key(prefix: int, path_id: int) -> int:
    """The key of a (prefix, path id) pair."""
    return (path_id << PATH_ID_SHIFT) | prefix if path_id else prefix


def split_key(key: int) -> tuple[int, int]:
    """(prefix, path id) of a key."""
    return key & ((1 << PATH_ID_SHIFT) - 1), key >> PATH_ID_SHIFT
