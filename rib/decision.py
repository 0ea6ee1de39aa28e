"""The decision process: which of a prefix's routes is best, and which are equal-cost with it.

Role: one pure function over one prefix's candidate routes, written to read like RFC 4271
section 9.1 (as OpenBGPD's ``rde_decide.c`` does). No state, no I/O, no clock: the caller gives
the routes, this module says which wins.

Data flow: whenever a prefix's set of routes changes (an Adj-RIB-In announce or withdraw, a
session going down or stale, a graceful-restart timer), the Loc-RIB calls ``select`` with every
route it holds for that prefix and publishes the best route and its ECMP set to its subscribers
(the kernel FIB, the Adj-RIBs-Out). With ADD-PATH towards a peer, the Adj-RIB-Out asks ``rank``
for the routes best-first and advertises the first N.

The steps, in the order they are applied (the letters are RFC 4271 9.1.2.2's own):

    9.1.2.1   Route resolvability: a route whose NEXT_HOP cannot be resolved is not a candidate
              (the ``igp_cost`` hook answers None for it; without a hook every next hop counts
              as resolvable, at its source's fixed ``igp_cost``).
    stale     Long-lived graceful restart (RFC 9494 4.3): an LLGR-stale route, ours or one
              received with the LLGR_STALE community, is "treated as the least preferred".
              A route kept stale by graceful restart is not (RFC 4724 4.2: "The router MUST
              NOT differentiate between stale and other routing information during
              forwarding"; BIRD demotes only LLGR-stale routes too): it keeps its place in
              the decision and in the ECMP set; only when everything else ties, after g),
              does a fresh route win over a stale one.
    step 0    Route preference, BIRD's: the highest wins. A route's own (an import filter's
              ``preference = N``), else its source's (BIRD's protocol ``preference``), else
              Myna's default by origin (``rib.route.DEFAULT_PREFERENCE``: configured 200 >
              kernel-learned 150 > BGP 100, so this node's own routes beat what peers say of
              them; the BIRD front-end sets BIRD's own defaults, kernel 10 below BGP's 100).
    9.1.1     Degree of preference: the highest LOCAL_PREF.
    a)        "Remove from consideration all routes that are not tied for having the smallest
              number of AS numbers present in their AS_PATH attributes." An AS_SET counts 1,
              confederation segments count 0 (RFC 5065 5.3).
    b)        "... not tied for having the lowest Origin number in their Origin attribute."
    c)        "Remove from consideration routes with less-preferred MULTI_EXIT_DISC
              attributes. MULTI_EXIT_DISC is only comparable between routes learned from the
              same neighboring AS": a route goes when another route still under consideration,
              from the same neighbouring AS, has a lower MED.
    d)        "If at least one of the candidate routes was received via EBGP, remove from
              consideration all routes that were received via IBGP."
    e)        "Remove from consideration any routes with less-preferred interior cost." The cost
              is the resolved next hop's (``igp_cost`` hook: BIRD's IGP metric of the route
              that covers the next hop), else the source's fixed ``igp_cost``.
    f)        "... all routes other than the route that was advertised by the BGP speaker with
              the lowest BGP Identifier value", the ORIGINATOR_ID standing in for the BGP
              Identifier when the route carries one (RFC 4456 section 9);
    RFC 4456  then, "inserted between Steps f) and g)", the shorter CLUSTER_LIST;
    g)        "Prefer the route received from the lowest peer address";
    then      the lower ADD-PATH path id (two paths from one peer), then the older ``Source``
              (``Source.serial``), so that no two candidates ever tie.

Why a set and not a comparator: MED is compared only within a neighbouring AS, so "better
than" is not transitive (A beats B on MED, B beats C on IGP cost, C beats A on IGP cost). A
pairwise comparison folded over the routes in arrival order then picks a winner that depends
on the order. The RFC's wording is a sequence of "remove from consideration" filters over the
whole candidate set; applied that way (what other daemons call "deterministic MED") the result
depends only on the set. ``select`` does exactly that, so it is independent of input order.

Multipath (ECMP), like BIRD's ``merge paths on``: the routes left after step e) are equal to
the best one in every respect but the tie-breakers, so they are its ECMP set: same staleness,
same source kind, same LOCAL_PREF, AS_PATH length and ORIGIN, no lower MED from their own
neighbouring AS, same eBGP/iBGP kind and same IGP cost. As in BIRD they may come from different
neighbouring ASes with different MEDs. The set is ordered best first, then by the tie-breakers,
and cut at ``max_paths``. Routes with identical next hops are kept (each is a distinct path and
may be advertised separately with ADD-PATH); collapsing next hops is the FIB programmer's job.

Defaults for absent attributes (both as in BIRD):
  * LOCAL_PREF absent: ``default_local_pref`` (100), whatever the source. RFC 4271 requires
    LOCAL_PREF on iBGP updates, and eBGP or local routes get their degree of preference from
    import policy; a route reaching the decision without one is treated as the default.
  * MED absent: 0, "the lowest possible MULTI_EXIT_DISC value" (RFC 4271 9.1.2.2 c), or, with
    ``med_missing_as_worst``, worse than every MED a peer can send (2**32).

Preconditions (the RIB guarantees them): at most one candidate per (``Source``, path id), and
``Source.serial`` unique per source, so the final tie-breaker is a total order. Broken, two
candidates can tie completely; ``select`` then returns the first given, so only determinism is
lost.

Speed: ``select`` is called for every prefix change. One candidate returns at once. Otherwise
each candidate's comparison values are computed once per call into a flat tuple (``_facts``).
When all candidates share one neighbouring AS (always so in an iBGP-only Calico cluster), or
with ``always_compare_med``, every step is a "keep the routes tied for the lowest X" filter,
and such filters applied in sequence are exactly a lexicographic order: one sort of the tuples
gives the best route, its ECMP set (the leading run equal through e)) and ``rank``'s order.
Only with several neighbouring ASes does step c) take a pass over the set of its own. The
tuples are not cached per interned ``Route``: keyed by ``id`` such a cache would either keep
swept routes alive (defeating ``ROUTES.sweep``) or hand a reused id another route's values.
If the RIB ever needs it, the place to compute them once is ``ROUTES.intern``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from rib.route import DEFAULT_PREFERENCE, Origin, Route, Stale
from speaker.path_attributes import AsPath, PathAttributes, as_path_length
from speaker.wire_codes import AsPathSegmentType, WellKnownCommunity


@dataclass(frozen=True, slots=True)
class DecisionOptions:
    """Knobs of the decision process (the defaults are RFC 4271's and BIRD's)."""

    default_local_pref: int = 100  # LOCAL_PREF assumed for a route that carries none
    always_compare_med: bool = False  # compare MED across neighbouring ASes too
    med_missing_as_worst: bool = False  # a route without MED is worse than any with one
    multipath: bool = True  # return the routes equal through step e) as an ECMP set
    max_paths: int = 16  # the ECMP set's size limit, the best route included

    def __post_init__(self) -> None:
        if self.max_paths < 1:
            msg = f"max_paths must be at least 1, not {self.max_paths}"
            raise ValueError(msg)


DEFAULT = DecisionOptions()

# Route -> the interior cost to its next hop (step e), or None when the next hop does not
# resolve (9.1.2.1: not a candidate at all).
IgpCost = Callable[[Route], int | None]
_LLGR_STALE = int(WellKnownCommunity.LLGR_STALE)
_LLGR = Stale.LLGR_STALE

# The neighbouring AS of a route whose AS_PATH names none (empty, as on routes originated inside
# this AS, or starting with an AS_SET): this AS itself, as in BIRD, so such routes compare MEDs
# with each other. Not a real ASN, so it never collides with a peer's and the decision does not
# need to know the local AS.
THIS_AS = -1

# Greater than any MED a peer can send, so "missing as worst" loses even to MED 0xFFFFFFFF.
_MED_WORST = 1 << 32

# Step 0's defaults, indexed by rib.route.Origin (BGP=0, KERNEL=1, STATIC=2).
_DEFAULT_PREFERENCE = tuple(DEFAULT_PREFERENCE[Origin(value)] for value in range(3))

_BGP = Origin.BGP
_AS_SET = AsPathSegmentType.AS_SET
_AS_SEQUENCE = AsPathSegmentType.AS_SEQUENCE

# What one candidate is compared on, computed once per call (see ``_facts``):
#   [0] LLGR-stale, step 0, 9.1.1, a), b)  - compared as one tuple, lower wins
#   [1] MED                                 - step c), lower wins within a neighbouring AS
#   [2] d), e)                              - lower wins
#   [3] f), RFC 4456, g), path id, stale, serial - the tie-breakers, lower wins
#   [4] neighbouring AS                     - step c) groups by it
#   [5] the route itself
_Preference = tuple[int, int, int, int, int]
_Cost = tuple[int, int]
_TieBreak = tuple[int, int, int, int, int, int]
_Facts = tuple[_Preference, int, _Cost, _TieBreak, int, Route]

# C-level accessors for min() and sort(): a lambda or generator costs a Python frame per route.
_PREFERENCE: Callable[[_Facts], _Preference] = itemgetter(0)
_MED: Callable[[_Facts], int] = itemgetter(1)
_COST: Callable[[_Facts], _Cost] = itemgetter(2)
_TIE_BREAK: Callable[[_Facts], _TieBreak] = itemgetter(3)
_NEIGHBOUR: Callable[[_Facts], int] = itemgetter(4)
# Everything but the neighbouring AS, in step order: the whole decision as one sort key, valid
# only while every candidate is in one MED group (then step c) is a plain "lowest MED" filter).
_TOTAL_ORDER: Callable[[_Facts], tuple[_Preference, int, _Cost, _TieBreak]] = itemgetter(0, 1, 2, 3)
# Staleness through e): what the ECMP set must share with the best route.
_THROUGH_E: Callable[[_Facts], tuple[_Preference, int, _Cost]] = itemgetter(0, 1, 2)


def select(
    candidates: Sequence[Route],
    options: DecisionOptions = DEFAULT,
    *,
    igp_cost: IgpCost | None = None,
) -> tuple[Route | None, tuple[Route, ...]]:
    """The best route and the ECMP set (best first); ``(None, ())`` without candidates.

    The result depends only on the set of candidates, never on their order. Without
    ``options.multipath`` the ECMP set is the best route alone.
    """
    if igp_cost is None and len(candidates) == 1:
        route = candidates[0]
        return route, (route,)
    facts = _all_facts(candidates, options, igp_cost)
    if len(facts) < 2:
        return (facts[0][5], (facts[0][5],)) if facts else (None, ())
    if options.always_compare_med or _one_med_group(facts):
        # Every step is then "keep the routes tied for the lowest X", in step order, so one sort
        # on all of them ranks the candidates; the ECMP set is the run equal through e).
        facts.sort(key=_TOTAL_ORDER)
        best = facts[0]
        if not options.multipath:
            return best[5], (best[5],)
        through_e = _THROUGH_E(best)
        equal = [best[5]]
        for other in facts[1:]:
            if _THROUGH_E(other) != through_e:
                break
            equal.append(other[5])
    else:
        survivors = _through_step_e(facts)
        survivors.sort(key=_TIE_BREAK)
        if not options.multipath:
            return survivors[0][5], (survivors[0][5],)
        equal = [f[5] for f in survivors]
    return equal[0], tuple(equal[: options.max_paths])


def rank(
    candidates: Sequence[Route],
    options: DecisionOptions = DEFAULT,
    *,
    igp_cost: IgpCost | None = None,
) -> list[Route]:
    """Every candidate, best first: for ADD-PATH's "advertise the best N paths".

    The first is ``select``'s best, and each next one is the route ``select`` would pick if all
    the routes ranked before it were withdrawn. Unresolvable routes are left out.
    """
    remaining = _all_facts(candidates, options, igp_cost)
    if len(remaining) < 2:
        return [facts[5] for facts in remaining]
    if options.always_compare_med or _one_med_group(remaining):
        # One MED group: the order is lexicographic on everything, so one sort gives it.
        remaining.sort(key=_TOTAL_ORDER)
        return [facts[5] for facts in remaining]
    # Several MED groups: withdrawing a route can bring back a route it hid at step c), so the
    # ranking is built by selecting again from what is left each time.
    ranked: list[Route] = []
    while remaining:
        survivors = _through_step_e(remaining)
        winner = min(survivors, key=_TIE_BREAK)
        ranked.append(winner[5])
        remaining = [facts for facts in remaining if facts is not winner]
    return ranked


def neighbour_as(as_path: AsPath) -> int:
    """The neighbouring AS for step c): the first AS of the path, ``THIS_AS`` when none.

    Confederation segments are skipped (the neighbour is outside our confederation, RFC 5065);
    a path that starts with an AS_SET names no single neighbour and, as in BIRD, counts as
    ``THIS_AS``.
    """
    for seg_type, asns in as_path:
        if seg_type == _AS_SEQUENCE:
            return asns[0] if asns else THIS_AS
        if seg_type == _AS_SET:
            return THIS_AS
    return THIS_AS


def _all_facts(
    routes: Sequence[Route], options: DecisionOptions, igp_cost: IgpCost | None
) -> list[_Facts]:
    default_local_pref = options.default_local_pref
    missing_med = _MED_WORST if options.med_missing_as_worst else 0
    if igp_cost is None:
        return [
            _facts(route, default_local_pref, missing_med, route.source.igp_cost)
            for route in routes
        ]
    out = []
    for route in routes:
        # 9.1.2.1 Route resolvability: "If the NEXT_HOP attribute of a BGP route depicts an
        # address that is not resolvable ... the BGP route MUST be excluded from the Phase 2
        # decision function."
        cost = igp_cost(route)
        if cost is not None:
            out.append(_facts(route, default_local_pref, missing_med, cost))
    return out


def _facts(route: Route, default_local_pref: int, missing_med: int, cost_e: int) -> _Facts:
    source = route.source
    attrs: PathAttributes = route.attrs
    local_pref = attrs.local_pref
    med = attrs.med
    originator_id = attrs.originator_id
    as_path = attrs.as_path
    if not as_path:
        # Originated inside this AS: the common case in Calico's iBGP mesh, no walk needed.
        path_length, neighbour = 0, THIS_AS
    else:
        path_length, neighbour = as_path_length(as_path), neighbour_as(as_path)
    stale = route.stale
    preference = (
        # RFC 9494 4.3: LLGR-stale routes are the "least preferred", ours and those that came
        # tagged LLGR_STALE (a peer's peer kept them). GR-stale ones are not demoted (4724 4.2).
        1 if stale == _LLGR or (attrs.communities and _LLGR_STALE in attrs.communities) else 0,
        # Step 0: BIRD's route preference, highest wins (negated). Our own routes (Calico's
        # IPAM blocks, configured announcements) are not displaced by what a peer says about
        # the same prefix: BIRD gets this from static 200 over BGP 100.
        -(
            route.preference
            or (
                _DEFAULT_PREFERENCE[source.origin]
                if source.preference is None
                else source.preference
            )
        ),
        # 9.1.1: the degree of preference is LOCAL_PREF (import policy sets it for eBGP and
        # local routes); highest wins, hence negated.
        -(default_local_pref if local_pref is None else local_pref),
        # a) shortest AS_PATH.
        path_length,
        # b) lowest ORIGIN: IGP < EGP < INCOMPLETE.
        attrs.origin,
    )
    # c) lowest MED, but only against routes from the same neighbouring AS (see _step_c_med).
    med_value = missing_med if med is None else med
    cost = (
        # d) eBGP-learned over iBGP-learned. Spelled out rather than Source.ebgp: a property
        # call costs as much as the rest of this tuple.
        0 if not source.ibgp and source.origin == _BGP else 1,
        # e) lowest interior cost to the next hop.
        cost_e,
    )
    tie_break = (
        # f) lowest BGP Identifier; a reflected route carries its originator's (RFC 4456 9).
        source.router_id if originator_id is None else originator_id,
        # RFC 4456 9: shorter CLUSTER_LIST, i.e. fewer reflections.
        len(attrs.cluster_list),
        # g) lowest peer address.
        source.address,
        # Beyond the RFC, so that no two candidates tie: two ADD-PATH paths from one peer,
        # then two sessions of one peer (the old one's routes still held as stale: the fresh
        # one wins), then the older source.
        route.path_id,
        stale,
        source.serial,
    )
    return preference, med_value, cost, tie_break, neighbour, route


def _through_step_e(facts: list[_Facts]) -> list[_Facts]:
    """The candidates left after step e): the best route and those equal to it but for ties.

    Used when the candidates come from several neighbouring ASes and MEDs are compared only
    within each (with ``always_compare_med`` the callers sort instead).
    """
    # Staleness, step 0, 9.1.1, a), b): each "remove all routes not tied for the best X";
    # applied in sequence they keep exactly the routes whose tuple of the five is the minimum.
    best = min(map(_PREFERENCE, facts))
    survivors = [f for f in facts if f[0] == best]
    if len(survivors) > 1:
        survivors = _step_c_med(survivors)
    if len(survivors) > 1:
        # d) then e): again two "keep the tied best" filters, so one minimum.
        best_cost = min(map(_COST, survivors))
        survivors = [f for f in survivors if f[2] == best_cost]
    return survivors


def _step_c_med(survivors: list[_Facts]) -> list[_Facts]:
    # c) RFC 4271's pseudo-code: remove m if some n still under consideration has
    # neighborAS(n) == neighborAS(m) and MED(n) < MED(m). That keeps, per neighbouring AS, the
    # routes tied for its lowest MED; it reads only the set, so the order cannot matter.
    if _one_med_group(survivors):
        lowest = min(map(_MED, survivors))
        return [f for f in survivors if f[1] == lowest]
    lowest_by_as: dict[int, int] = {}
    for _, med, _, _, neighbour, _ in survivors:
        known = lowest_by_as.get(neighbour)
        if known is None or med < known:
            lowest_by_as[neighbour] = med
    return [f for f in survivors if f[1] == lowest_by_as[f[4]]]


def _one_med_group(facts: list[_Facts]) -> bool:
    """All from one neighbouring AS: MED is then compared between all of them."""
    return len(set(map(_NEIGHBOUR, facts))) == 1
