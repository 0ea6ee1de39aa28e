"""BIRD sets of values (``[1, 5..10]``, ``[(65000,*)]``) and community-list operations.

Role: the value of a set constant and what the compiled filters do with sets and with
``bgp_community`` / ``bgp_ext_community`` / ``bgp_large_community`` lists.

Sets: BIRD 1.6 (``filter/tree.c``) sorts the set's items by their lower bound (glibc's qsort,
a stable merge sort), builds a balanced tree by halving, and looks a value up by walking that
tree (``find_tree``). With overlapping ranges that walk can miss an item that contains the
value, and Myna must miss it too, so ``TreeSet`` keeps BIRD's tree and walks it the same way;
a set of single values (the usual case) is answered by one frozenset probe instead, which is
the same answer. Values are compared as BIRD compares values of one type; the compiler
ensures every item of a set has the same type.

Lists: ``clist_add`` and friends are BIRD's ``int_set_add``, ``int_set_del``,
``int_set_union`` and ``clist_filter`` (``nest/a-set.c``): add appends unless present, delete
removes every equal member, filter keeps the members in (or not in) a set.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from bgpd.bird_config.values import BirdType, format_value


@dataclass(frozen=True, slots=True)
class SetItem:
    """One item: the values from ``low`` to ``high`` (equal for a single value)."""

    low: Any
    high: Any


class _TreeNode:
    __slots__ = ("item", "left", "right")

    def __init__(self, item: SetItem) -> None:
        self.item = item
        self.left: _TreeNode | None = None
        self.right: _TreeNode | None = None


def _build(items: Sequence[SetItem], low: int, high: int) -> _TreeNode | None:
    if low >= high:
        return None
    middle = (low + high) // 2
    node = _TreeNode(items[middle])
    node.left = _build(items, low, middle)
    node.right = _build(items, middle + 1, high)
    return node


class TreeSet:
    """A BIRD set: items of one type (``item_type``), looked up as BIRD's ``find_tree``."""

    __slots__ = ("_points", "contains", "item_type", "items", "root")

    def __init__(self, items: Sequence[SetItem], item_type: BirdType) -> None:
        self.item_type = item_type
        self.items = tuple(sorted(items, key=lambda item: item.low))  # stable, as glibc's
        self.root = _build(self.items, 0, len(self.items))
        self._points: frozenset[Hashable] | None = None
        if all(item.low == item.high for item in self.items):
            self._points = frozenset(item.low for item in self.items)
            self.contains: Callable[[Any], bool] = self._points.__contains__
        else:
            self.contains = self._walk

    def _walk(self, value: Any) -> bool:
        node = self.root
        while node is not None:
            item = node.item
            if item.low <= value <= item.high:
                return True
            node = node.right if item.low < value else node.left
        return False

    def same(self, other: TreeSet) -> bool:
        """BIRD's ``same_tree`` (``=`` between two sets)."""
        return self.item_type == other.item_type and [(i.low, i.high) for i in self.items] == [
            (i.low, i.high) for i in other.items
        ]

    def bird_format(self, ipv6: bool) -> str:
        """What ``print`` writes: ``[a, b..c]`` in tree (sorted) order."""
        parts = []
        for item in self.items:
            text = format_value(self.item_type, item.low, ipv6)
            if item.low != item.high:
                text += ".." + format_value(self.item_type, item.high, ipv6)
            parts.append(text)
        return "[" + ", ".join(parts) + "]"


# --- community lists ------------------------------------------------------------------------


def list_add(items: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    """``int_set_add`` / ``ec_set_add`` / ``lc_set_add``: append unless already there."""
    return items if value in items else (*items, value)


def list_delete(items: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    """``int_set_del`` and friends: drop every member equal to ``value``."""
    return tuple(item for item in items if item != value) if value in items else items


def list_union(first: tuple[Any, ...], second: tuple[Any, ...]) -> tuple[Any, ...]:
    """``int_set_union``: ``first`` then the members of ``second`` it lacks."""
    extra = tuple(item for item in second if item not in first)
    return (*first, *extra) if extra else first


def list_filter_set(items: tuple[Any, ...], keep: TreeSet, keep_members: bool) -> tuple[Any, ...]:
    """``clist_filter`` with a set: keep the members in it (filter) or not in it (delete)."""
    contains = keep.contains
    kept = tuple(item for item in items if contains(item) == keep_members)
    return items if len(kept) == len(items) else kept


def list_filter_list(
    items: tuple[Any, ...], other: tuple[Any, ...], keep_members: bool
) -> tuple[Any, ...]:
    """``clist_filter`` with a list: keep the members in ``other`` (filter) or not (delete)."""
    kept = tuple(item for item in items if (item in other) == keep_members)
    return items if len(kept) == len(items) else kept


def list_matches_set(items: tuple[Any, ...], values: TreeSet) -> bool:
    """``clist ~ set``: some member is in the set."""
    contains = values.contains
    return any(contains(item) for item in items)
