"""Verdicts memoised per prefix class: what makes a compiled Calico filter cost a few lookups.

Role: Calico's filters read a route's prefix only through tests against constants
(``net ~ 198.18.0.0/16``, ``net = 198.18.4.0/26``, ``net ~ [ ... ]``). Two prefixes that
pass and fail exactly the same tests are alike to such a filter: with the same route source,
attribute set and kernel priority it gives both the same verdict. ``memoised`` wraps a
compiled filter so that it runs once per (prefix class, source, attribute set, priority):

* ``PrefixClasses.classify`` puts a prefix in its class, a bit mask of the tests it passes:
  one dict probe per distinct constant length (``prefix & mask`` -> the tests of that
  length it passes), one for the equalities, one ``matches`` per prefix set; memoised per
  prefix (bounded);
* the verdict cache then maps (class, source, attribute set, priority) to the verdict
  (bounded, compared by identity);
* ``split_run`` (``rib.run_split``) splits a Loc-RIB run's prefixes into classes, so that the
  update groups and the kernel ask the filter once per class of a run, not once per prefix.

Data flow: ``filter_compiler`` generates the filter, then ``analyse(source, namespace)``
reads the generated Python: where ``prefix`` appears only in the three test forms the code
generator writes for constants, it returns the classes; anything else (``net.len``,
``net.ip``, a prefix in a variable, ``print net``...) returns None and the filter runs
unwrapped. A filter that prints is never wrapped (BIRD prints for every route), and
run-time errors and undecided filters are not cached (BIRD logs each one).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, cast

from bgpd.bird_config.prefix_sets import PrefixPatternSet
from rib.policy import PolicyCheck, Verdict
from rib.run_split import RunSplitter, run_bounds, with_splitter
from speaker.wire_codes import Family

_CACHE_LIMIT = 65536
_CONTAINS = re.compile(r"\(\(prefix & (\d+)\) == (\d+) and \(prefix & 255\) >= (\d+)\)")
_EQUALS = re.compile(r"\(prefix (?:==|!=) (\d+)\)")
_IN_SET = re.compile(r"\b(_k\d+)\.matches\(prefix\)")
_WORD = re.compile(r"\bprefix\b")


class PrefixClasses:
    """The constant prefix tests of one filter, and the class of a prefix under them."""

    def __init__(
        self,
        contains: list[tuple[int, int, int]],
        equals: list[int],
        sets: list[PrefixPatternSet],
    ) -> None:
        bit = 1
        by_mask: dict[tuple[int, int], dict[int, int]] = {}
        for mask, value, length in sorted(set(contains)):
            table = by_mask.setdefault((length, mask), {})
            table[value] = table.get(value, 0) | bit
            bit <<= 1
        # (length, mask, value -> bits), shortest first: a prefix shorter than a test's
        # length fails it, so the walk stops there
        self.groups: tuple[tuple[int, int, dict[int, int]], ...] = tuple(
            (length, mask, table) for (length, mask), table in sorted(by_mask.items())
        )
        self.equals: dict[int, int] = {}
        for value in sorted(set(equals)):
            self.equals[value] = bit
            bit <<= 1
        self.sets: list[tuple[PrefixPatternSet, int]] = []
        for prefix_set in sets:
            self.sets.append((prefix_set, bit))
            bit <<= 1
        self.memo: dict[int, int] = {}

    def classify(self, prefix: int) -> int:
        """The bit mask of the tests ``prefix`` passes (memoised)."""
        found = self.memo.get(prefix)
        if found is not None:
            return found
        found = 0
        plen = prefix & 0xFF
        for length, mask, table in self.groups:
            if length > plen:
                break
            found |= table.get(prefix & mask, 0)
        found |= self.equals.get(prefix, 0)
        for prefix_set, bit in self.sets:
            if prefix_set.matches(prefix):
                found |= bit
        memo = self.memo
        if len(memo) >= _CACHE_LIMIT:
            memo.clear()
        memo[prefix] = found
        return found

    def splitter(self, family: Family) -> RunSplitter:
        """Split a run's prefixes by class, mostly without a Python step per prefix.

        Every test is a contiguous range of prefix values: an equality one value; a
        containment ``net ~ S/P`` the values of S/P's addresses with any length byte, of which
        those from ``S/P`` up pass and the few below it (address S, shorter than P) fail. No
        other prefix in the range is shorter than P: a prefix int holds no host bits (the BGP
        and netlink decoders mask them, config and BIRD's ``route`` refuse them: see
        ``rib.loc_rib.Run``), and an address of S/P other than S has a bit set beyond P. So
        the prefixes between two consecutive bounds (``edges``) pass the same tests, whatever
        their lengths, and the bounds between a run's lowest and highest prefix
        (``run_bounds``, found once per run, mostly by the Loc-RIB) cut it, sorted, into
        groups of one class each (``bisect``): one group when no bound lies between them, as
        when a run lies in one pool. A run merged from several UPDATEs' (``pieces``, parts of
        32 prefixes or more on average) is cut part by part: a part between two edges joins
        its interval's group unsorted. Prefix sets are not ranges: with one, each prefix is
        classified.
        """
        width = 40 if family is Family.IPV4_UNICAST else 136
        full = (1 << width) - 1
        bounds: set[int] = set()
        for length, mask, table in self.groups:
            for value in table:
                bounds.update((value, value + length, value + (full & ~mask) + 1))
        for value in self.equals:
            bounds.update((value, value + 1))
        edges = sorted(bounds)
        ranged = not self.sets
        classify = self.classify

        def cut(prefixes: Sequence[int], first: int, last: int) -> list[list[int]]:
            """``prefixes``, sorted, cut at ``edges[first:last]`` (new lists, none empty).

            Each step finds the next edge above the next prefix, so edges with no prefix
            between them cost nothing: O(groups * log edges), however many edges lie within.
            """
            ordered = sorted(prefixes)
            cuts: list[list[int]] = []
            start, count = 0, len(ordered)
            while start < count:
                first = bisect_right(edges, ordered[start], first, last)
                if first >= last:
                    cuts.append(ordered[start:])
                    break
                at = bisect_left(ordered, edges[first], start)
                cuts.append(ordered[start:at])
                start = at
            return cuts

        def split_run(prefixes: Sequence[int]) -> Sequence[Sequence[int]]:
            if len(prefixes) < 2:
                return (prefixes,)
            if ranged:
                low, high = run_bounds(prefixes)
                first = bisect_right(edges, low)
                last = bisect_right(edges, high)
                if first == last:
                    return (prefixes,)
                pieces: list[tuple[int, int, int]] | None = getattr(prefixes, "pieces", None)
                if (
                    pieces is None
                    or pieces[-1][0] != len(prefixes)  # not this run's: never trusted
                    or len(pieces) * 32 > len(prefixes)  # small parts: a Python step each
                ):
                    return cut(prefixes, first, last)
                # A merged run: its parts that lie between two edges go whole into the group
                # of that interval (edges' index), only the others are sorted and cut.
                by_interval: dict[int, list[int]] = {}
                start = 0
                for end, piece_low, piece_high in pieces:
                    first = bisect_right(edges, piece_low)
                    last = bisect_right(edges, piece_high)
                    parts = (
                        [(first, cast("list[int]", prefixes[start:end]))]  # a RunPrefixes' slice
                        if first == last
                        else [
                            (bisect_right(edges, part[0]), part)
                            for part in cut(prefixes[start:end], first, last)
                        ]
                    )
                    for interval, part in parts:
                        group = by_interval.get(interval)
                        if group is None:
                            by_interval[interval] = part
                        else:
                            group.extend(part)
                    start = end
                return list(by_interval.values())
            groups: dict[int, list[int]] = {}
            for prefix in prefixes:
                found = classify(prefix)
                group = groups.get(found)
                if group is None:
                    groups[found] = [prefix]
                else:
                    group.append(prefix)
            return list(groups.values())

        return split_run


def analyse(source: str, namespace: dict[str, Any]) -> PrefixClasses | None:
    """The prefix classes of a generated filter, None when it reads ``net`` otherwise."""
    if "_print(" in source or "_pb" in source:
        return None
    body = source.split("\n", 1)[1]  # past "def _filter(prefix, ...)"
    contains = [(int(m), int(v), int(n)) for m, v, n in _CONTAINS.findall(body)]
    equals = [int(v) for v in _EQUALS.findall(body)]
    sets: list[PrefixPatternSet] = []
    for name in _IN_SET.findall(body):
        value = namespace.get(name)
        if not isinstance(value, PrefixPatternSet):
            return None
        sets.append(value)
    rest = _IN_SET.sub("", _EQUALS.sub("", _CONTAINS.sub("", body)))
    if _WORD.search(rest) is not None:
        return None
    if not (contains or equals or sets):
        return None  # the prefix plays no part: nothing to gain over the filter's own caches
    return PrefixClasses(contains, equals, sets)


def memoised(  # noqa: PLR0917 - one call site
    check: PolicyCheck,
    classes: PrefixClasses,
    family: Family,
    wrong_family: Verdict,
    error: Verdict,
    undecided: Verdict,
) -> PolicyCheck:
    """``check`` run once per (prefix class, source, attribute set, priority).

    ``error`` and ``undecided`` are the verdicts never cached (BIRD logs each).
    """
    # classify() inlined: this runs once per route the RIB decides
    classes_memo = classes.memo
    groups = classes.groups
    equals = classes.equals
    sets = classes.sets
    cache: dict[tuple[int, int, int, int | None], tuple[Any, Any, Verdict]] = {}

    def memo_check(prefix: int, fam: Family, route: Any, priority: int | None = None) -> Verdict:
        if fam is not family:
            return wrong_family
        found = classes_memo.get(prefix)
        if found is None:
            found = equals.get(prefix, 0)
            plen = prefix & 0xFF
            for length, mask, table in groups:
                if length > plen:
                    break
                found |= table.get(prefix & mask, 0)
            for prefix_set, bit in sets:
                if prefix_set.matches(prefix):
                    found |= bit
            if len(classes_memo) >= _CACHE_LIMIT:
                classes_memo.clear()
            classes_memo[prefix] = found
        source = route.source
        attrs = route.attrs
        key = (found, id(source), id(attrs), priority)
        hit = cache.get(key)
        if hit is not None and hit[0] is source and hit[1] is attrs:
            return hit[2]
        verdict = check(prefix, fam, route, priority)
        if verdict is not error and verdict is not undecided:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = (source, attrs, verdict)
        return verdict

    return with_splitter(memo_check, classes.splitter(family))
