"""AS paths in BIRD filters: ``bgp_path`` operations and path masks (``[= 65000 * =]``).

Role: what the compiled filters call for ``bgp_path.prepend(n)``, ``.first``, ``.last``,
``.len``, ``delete``/``filter`` on a path, ``n ~ bgp_path`` and ``bgp_path ~ mask``, each a
port of BIRD 1.6's ``nest/a-path.c`` working on Myna's ``AsPath`` tuples (segment type 1 is
AS_SET, 2 AS_SEQUENCE).

Path masks: ``PathMask`` holds the mask's items; matching is BIRD's ``as_path_match``, an NFA
over path positions where an AS_SET is one position that matches any of its members. Items
that are expressions (``[= * (x+1) =]``) are evaluated by the compiled filter into a concrete
``PathMask`` at run time, as BIRD's ``FI_PATHMASK_CONSTRUCT`` does.

Confederation segments (types 3 and 4) do not exist in BIRD 1.6 (it refuses such paths when
decoding them); here they are skipped by ``.len`` and matched like sequences otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bgpd.bird_config.value_sets import TreeSet
from bgpd.bird_config.values import AS_SEQUENCE, AS_SET

AsPath = tuple[tuple[int, tuple[int, ...]], ...]


class MaskItemKind(IntEnum):
    """BIRD's ``PM_*`` kinds of path-mask items."""

    ASN = 0
    QUESTION = 1  # ``?``: any one AS
    ASTERISK = 2  # ``*``: any run of ASes
    ASN_RANGE = 4  # ``a..b``


@dataclass(frozen=True, slots=True)
class MaskItem:
    """One item of a path mask; ``low``/``high`` are the ASN bounds of ASN and ASN_RANGE."""

    kind: MaskItemKind
    low: int = 0
    high: int = 0


@dataclass(frozen=True, slots=True)
class PathMask:
    """A concrete path mask (every expression item already evaluated)."""

    items: tuple[MaskItem, ...]

    def matches(self, path: AsPath) -> bool:
        """``path ~ mask``."""
        return path_matches(path, self.items)

    def bird_format(self, ipv6: bool) -> str:
        """``pm_format``: ``[= 65000 * ? 1..5 =]``."""
        words = []
        for item in self.items:
            if item.kind is MaskItemKind.ASN:
                words.append(f"{item.low} ")
            elif item.kind is MaskItemKind.QUESTION:
                words.append("? ")
            elif item.kind is MaskItemKind.ASTERISK:
                words.append("* ")
            else:
                words.append(f"{item.low}..{item.high} ")
        return "[= " + "".join(words) + "=]"


def path_prepend(path: AsPath, asn: int) -> AsPath:
    """``as_path_prepend``: into the leading sequence unless it is full (255 ASes)."""
    if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
        return ((AS_SEQUENCE, (asn, *path[0][1])), *path[1:])
    return ((AS_SEQUENCE, (asn,)), *path)


def path_length(path: AsPath) -> int:
    """``as_path_getlen``: a set counts one."""
    total = 0
    for seg_type, asns in path:
        if seg_type == AS_SEQUENCE:
            total += len(asns)
        elif seg_type == AS_SET:
            total += 1
    return total


def path_first(path: AsPath) -> int:
    """``.first``: the first AS of a leading sequence, else 0."""
    if path and path[0][0] == AS_SEQUENCE and path[0][1]:
        return path[0][1][0]
    return 0


def path_last(path: AsPath) -> int:
    """``.last``: the last AS when the path ends with a non-empty sequence, else 0."""
    found = 0
    result = 0
    for seg_type, asns in path:
        if not asns:
            continue
        if seg_type == AS_SET:
            found = 0
        else:
            found = 1
            result = asns[-1]
    return result if found else 0


def path_last_nonaggregated(path: AsPath) -> int:
    """``.last_nonaggregated``: the last AS before the first set."""
    result = 0
    for seg_type, asns in path:
        if seg_type == AS_SET:
            return result
        if asns:
            result = asns[-1]
    return result


def path_contains(path: AsPath, asn: int) -> bool:
    """``asn ~ bgp_path``."""
    return any(asn in asns for _, asns in path)


def path_matches_set(path: AsPath, values: TreeSet) -> bool:
    """``bgp_path ~ [set of ints]``: some AS of the path is in the set."""
    contains = values.contains
    return any(contains(asn) for _, asns in path for asn in asns)


def path_filter(path: AsPath, values: TreeSet | None, key: int, keep_members: bool) -> AsPath:
    """``as_path_filter``: keep the ASes in (or not in) the set, or equal to (or not) ``key``.

    Segments left empty are dropped; the others keep their type.
    """
    out = []
    changed = False
    for seg_type, asns in path:
        if values is not None:
            kept = tuple(a for a in asns if values.contains(a) == keep_members)
        else:
            kept = tuple(a for a in asns if (a == key) == keep_members)
        if len(kept) != len(asns):
            changed = True
        if kept:
            out.append((seg_type, kept))
    return tuple(out) if changed else path


def path_matches(path: AsPath, mask: tuple[MaskItem, ...]) -> bool:
    """BIRD's ``as_path_match`` (see the module docstring)."""
    # positions: (is_set, asn or the set's members)
    positions: list[tuple[bool, tuple[int, ...]]] = []
    for seg_type, asns in path:
        if seg_type == AS_SET:
            positions.append((True, asns))
        else:
            positions.extend((False, (asn,)) for asn in asns)
    plen = len(positions)
    positions.append((False, ()))
    marks = [False] * (plen + 1)
    marks[0] = True
    low = high = 0
    for item in mask:
        marks[plen] = False
        if item.kind is MaskItemKind.ASTERISK:
            for i in range(low, plen + 1):
                marks[i] = True
            high = plen
            continue
        new_high = new_low = -1
        for i in range(high, low - 1, -1):
            if not marks[i]:
                continue
            marks[i] = False
            if item.kind is MaskItemKind.QUESTION or _position_matches(
                positions[i], item.low, item.high
            ):
                # pm_mark: a set may stand for any run of its members, so it stays marked
                is_set = positions[i][0]
                if is_set:
                    marks[i] = True
                j = i + 1
                while j < plen and positions[j][0] and not marks[j]:
                    marks[j] = True
                    j += 1
                marks[j] = True
                new_low = i + (0 if is_set else 1)
                if new_high < 0:
                    new_high = j
        if new_high < 0:
            return False
        high, low = new_high, new_low
    return marks[plen]


def _position_matches(position: tuple[bool, tuple[int, ...]], low: int, high: int) -> bool:
    return any(low <= asn <= high for asn in position[1])
