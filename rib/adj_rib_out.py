"""Adj-RIB-Out by update group: one export decision and one encoding per group, N writes.

Data flow: peers whose sessions negotiated the same things and share export settings form an
``UpdateGroup`` (the key is the session's ``Negotiated`` plus ``ExportSettings``). The RIB task
hands each group the Loc-RIB's ``Change`` batches; the group runs the export rules once per
change (iBGP split horizon or RFC 4456 reflection, the export policy, next hop, AS_PATH and
LOCAL_PREF rewriting, ORIGINATOR_ID and CLUSTER_LIST when reflecting),
diffs against what it advertised, encodes the difference once (one UPDATE run per attribute
set, packed full) and writes the same bytes to every member. A peer that joins a group that
already advertises gets the group's table encoded for it alone, then End-of-RIB; a route refresh
is answered the same way (RFC 2918, with BoRR/EoRR for RFC 7313 peers).

Routes go to every member, including the peer a route came from, when a batch mixes sources:
a BGP peer drops its own route on receipt (AS_PATH loop for eBGP, ORIGINATOR_ID for reflected
iBGP), and sending it keeps fan-out at one encoding per group (BIRD filters per peer instead
and encodes per peer). A batch that is all about one peer's routes (a big table from one peer)
skips that peer.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rib.adj_rib_in import rib_key, split_key
from rib.decision import DecisionOptions, rank
from rib.loc_rib import Published, Run
from rib.route import Origin, Route, Source, Stale
from rib.shards import SHARD_OF, SPREAD, new_shards, pop_present, shard_items
from speaker.negotiated import Negotiated
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.update_message import encode_announcements, encode_end_of_rib, encode_withdrawals
from speaker.wire_codes import Family

if TYPE_CHECKING:
    from reflector.rules import Reflection


class NextHopMode(enum.Enum):
    """Calico's ``nextHopMode``: Auto is BIRD's default (self towards eBGP, kept for iBGP)."""

    AUTO = "auto"
    SELF = "self"
    KEEP = "keep"


# (family, prefix, route) -> accepted attributes (possibly rewritten, interned) or None
ExportPolicy = Callable[[Family, int, Route], PathAttributes | None]


def accept_all(_family: Family, _prefix: int, route: Route) -> PathAttributes | None:
    """The export policy of a group configured without one."""
    return route.attrs


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """What, besides the negotiated session, decides the bytes a group sends."""

    local_as: int
    next_hop_v4: bytes  # our address towards the group (next hop self), 4 octets or empty
    next_hop_v6: bytes  # 16 octets (or 32 with a link-local) or empty
    next_hop_mode: NextHopMode = NextHopMode.AUTO
    policy: ExportPolicy = accept_all
    # RFC 4456 towards an iBGP peer of a route reflector (None: no iBGP route goes to iBGP)
    reflect: Reflection | None = None
    add_path_limit: int = 16  # ADD-PATH: at most this many paths per prefix
    add_path_all: bool = False  # ADD-PATH: every candidate, best first (else the ECMP set)
    llgr: bool = False  # the peer speaks RFC 9494: LLGR_STALE routes may go to it


class Member(Protocol):
    """A peer session as a group sees it."""

    @property
    def name(self) -> str:
        """The peer's name."""

    def send(self, data: bytes) -> bool:
        """Write encoded messages; False when the session is not up."""


class PathIds:
    """Stable ADD-PATH identifiers we send: one per (source, received path id), shared."""

    def __init__(self) -> None:
        self._ids: dict[tuple[int, int], int] = {}

    def of(self, route: Route) -> int:
        """The identifier of ``route``'s path."""
        key = (route.source.serial, route.path_id)
        path_id = self._ids.get(key)
        if path_id is None:
            path_id = self._ids[key] = len(self._ids) + 1
        return path_id


PATH_IDS = PathIds()
_GROUPS: weakref.WeakSet[UpdateGroup] = weakref.WeakSet()


def _split(keys: list[int]) -> tuple[list[int], list[int]]:
    """ADD-PATH table keys -> (prefixes, path ids), index-aligned for the encoder."""
    pairs = [split_key(k) for k in keys]
    return [p for p, _ in pairs], [i for _, i in pairs]


def forget_rewrites() -> int:
    """Empty every update group's rewrite cache; returns the entries dropped.

    The cache holds each attribute set it rewrote (and its source) for good: run on the RIB's
    idle sweeps, before the intern tables are swept, so sets no route uses any more can go.
    Rewritten sets are interned, so a route still advertised gets the same object back.
    """
    dropped = 0
    for group in list(_GROUPS):
        dropped += len(group._rewrites)
        group._rewrites.clear()
    return dropped


class UpdateGroup:
    """Members sharing one export and encoding (see the module docstring)."""

    def __init__(self, negotiated: Negotiated, settings: ExportSettings) -> None:
        self.negotiated = negotiated
        self.settings = settings
        self.members: list[Member] = []
        # family -> prefix -> attributes advertised (sharded); for ADD-PATH families, in
        # advertised_paths, prefix -> our path id -> attributes
        self.advertised: dict[Family, list[dict[int, PathAttributes]]] = {}
        self.advertised_paths: dict[Family, list[dict[int, dict[int, PathAttributes]]]] = {}
        # (id(attrs), id(source), family) -> (attrs, source, rewritten): holding the key objects
        # keeps their ids from being reused by other objects.
        self._rewrites: dict[tuple[int, int, int], tuple[object, object, PathAttributes]] = {}
        _GROUPS.add(self)  # so that forget_rewrites reaches it
        self.encodings = 0  # UPDATE batches encoded (one per flush, whatever the member count)
        self._skip: str | None = None  # the member the last batch was all about (see apply)
        # Set by the RIB: every candidate of a prefix, for ADD-PATH "all paths" groups.
        self.candidates: Callable[[Family, int], list[Route]] | None = None
        self.options = DecisionOptions()

    # -- the export rules --------------------------------------------------------------------

    def _export(self, family: Family, prefix: int, route: Route) -> PathAttributes | None:
        source = route.source
        settings = self.settings
        # RFC 4271 9.2: iBGP-learned routes are not passed to iBGP peers, unless reflected
        # (RFC 4456 6: client routes to everyone, non-client routes to clients).
        if (
            self.negotiated.ibgp
            and source.origin == Origin.BGP
            and source.ibgp
            and (settings.reflect is None or not settings.reflect.allows(source))
        ):
            return None
        if route.stale == Stale.LLGR_STALE and not settings.llgr:
            return None  # RFC 9494 4.5: not to a peer that does not know LLGR_STALE
        policy = settings.policy
        if policy is accept_all:
            attrs = route.attrs
        else:
            exported = policy(family, prefix, route)
            if exported is None:
                return None
            attrs = exported
        key = (id(attrs), id(source), family)
        hit = self._rewrites.get(key)
        if hit is None:
            hit = self._rewrites[key] = (attrs, source, self._rewrite(family, attrs, route))
        return hit[2]

    def _rewrite(self, family: Family, attrs: PathAttributes, route: Route) -> PathAttributes:
        """Next hop, AS_PATH and LOCAL_PREF as the session type wants them; reflection."""
        settings = self.settings
        ibgp = self.negotiated.ibgp
        source = route.source
        local = source.origin != Origin.BGP
        mode = settings.next_hop_mode
        self_next_hop = (
            mode == NextHopMode.SELF
            or local
            or not attrs.next_hop
            or (mode == NextHopMode.AUTO and not ibgp)
        )
        changes: dict[str, object] = {}
        if self_next_hop:
            ours = settings.next_hop_v4 if family == Family.IPV4_UNICAST else settings.next_hop_v6
            changes["next_hop"] = ours
        if not ibgp:
            # RFC 4271 5.1.2: prepend our AS towards an external peer; MED and LOCAL_PREF
            # from inside the AS stay inside (5.1.4, 5.1.5).
            path = attrs.as_path
            if path and path[0][0] == 2 and len(path[0][1]) < 255:
                changes["as_path"] = ((2, (settings.local_as, *path[0][1])), *path[1:])
            else:
                changes["as_path"] = ((2, (settings.local_as,)), *path)
            if not local:
                changes["med"] = None
            changes["local_pref"] = None
        elif attrs.local_pref is None:
            changes["local_pref"] = 100
        if ibgp and not local and source.ibgp and settings.reflect is not None:
            # RFC 4456 8 (``_export`` let only reflectable routes through); next hop kept.
            changes["originator_id"], changes["cluster_list"] = settings.reflect.reflect(
                attrs, source
            )
        if not changes:
            return attrs
        return ATTRIBUTES.intern(attrs._replace(**changes))  # type: ignore[arg-type]

    def _wanted_paths(
        self, family: Family, prefix: int, routes: Sequence[Route]
    ) -> dict[int, PathAttributes]:
        """ADD-PATH: our path id -> attributes for each path we export, up to the limit.

        The limit counts exported paths: a path the export rules refuse (an iBGP path to a
        non-client, a policy reject) leaves its place to the next one.
        """
        out: dict[int, PathAttributes] = {}
        limit = self.settings.add_path_limit
        for route in routes:
            attrs = self._export(family, prefix, route)
            if attrs is not None:
                out[PATH_IDS.of(route)] = attrs
                if len(out) >= limit:
                    break
        return out

    # -- changes -----------------------------------------------------------------------------

    def apply(self, changes: Iterable[Published]) -> bytes:
        """Update what is advertised for ``changes``; the UPDATEs to send (maybe empty).

        When every change of the batch is about routes of one source, ``publish`` skips the
        member that is that source: the bytes would only tell it its own routes (BIRD never
        sends a route back to its peer either). Any mixed batch goes to every member, so the
        encoding stays one per group.
        """
        announce: dict[Family, dict[PathAttributes, list[int]]] = {}
        withdraw: dict[Family, list[int]] = {}
        origin: Source | bool | None = True  # True: none seen yet; None: several sources
        families = self.negotiated.families
        add_path_send = self.negotiated.add_path_send
        export = self._export
        # A big table from one peer is a long run of changes to one interned route: with an
        # export policy that does not read the prefix, its export is decided once per run.
        route_only = self.settings.policy is accept_all
        last_route: Route | None = None
        last_attrs: PathAttributes | None = None
        current: Family | None = None
        shards: list[dict[int, PathAttributes]] = []
        for change in changes:
            family = change.family
            if isinstance(change, Run):
                if family not in families:
                    continue
                if origin is True:
                    origin = change.source
                elif origin is not change.source:
                    origin = None
                self._apply_run(change, announce, withdraw)
                current = None  # _apply_run may have created the family's table
                continue
            if family is not current:
                if family not in families:
                    continue
                if family not in add_path_send:
                    found = self.advertised.get(family)
                    shards = found if found is not None else new_shards()
                    self.advertised[family] = shards
                current = family
            if origin is not None:
                about = change.new_best or change.old_best
                source = None if about is None else about.source
                if origin is True:
                    origin = source
                elif origin is not source:
                    origin = None
            prefix = change.prefix
            if family in add_path_send:
                routes: Sequence[Route] = change.new_ecmp
                if self.settings.add_path_all and self.candidates is not None:
                    routes = rank(self.candidates(family, prefix), self.options)
                self._apply_paths(family, prefix, routes, announce, withdraw)
                continue
            route = change.new_best
            if route is None:
                attrs = None
            elif route is last_route:
                attrs = last_attrs
            else:
                attrs = export(family, prefix, route)
                if route_only:
                    last_route, last_attrs = route, attrs
            table = shards[SHARD_OF[(prefix >> 22) % SPREAD]]
            if attrs is None:
                if table.pop(prefix, None) is not None:
                    withdraw.setdefault(family, []).append(prefix)
            elif table.get(prefix) is not attrs:
                table[prefix] = attrs
                announce.setdefault(family, {}).setdefault(attrs, []).append(prefix)
        self._skip = origin.name if isinstance(origin, Source) else None
        if len(withdraw) + sum(len(by_attrs) for by_attrs in announce.values()) > 1:
            self._settle(announce, withdraw)
        return self._encode(announce, withdraw)

    def _settle(
        self,
        announce: dict[Family, dict[PathAttributes, list[int]]],
        withdraw: dict[Family, list[int]],
    ) -> None:
        """Keep only each key's last word: what the advertised table now holds.

        A batch may change one prefix twice (announced then withdrawn, or announced with two
        attribute sets); ``_encode`` writes withdrawals first and attribute sets in the order
        they first appeared, so an earlier word could otherwise arrive last.
        """

        def held(family: Family, key: int) -> PathAttributes | None:
            if family in self.negotiated.add_path_send:
                prefix, path_id = split_key(key)
                shards = self.advertised_paths.get(family, [])
                paths = shards[SHARD_OF[(prefix >> 22) % SPREAD]].get(prefix) if shards else None
                return None if paths is None else paths.get(path_id)
            table = self.advertised.get(family, [])
            return table[SHARD_OF[(key >> 22) % SPREAD]].get(key) if table else None

        for family, keys in list(withdraw.items()):
            kept = [k for k in dict.fromkeys(keys) if held(family, k) is None]
            if kept:
                withdraw[family] = kept
            else:
                del withdraw[family]
        for family, by_attrs in list(announce.items()):
            for attrs, keys in list(by_attrs.items()):
                kept = [k for k in dict.fromkeys(keys) if held(family, k) is attrs]
                if kept:
                    by_attrs[attrs] = kept
                else:
                    del by_attrs[attrs]
            if not by_attrs:
                del announce[family]

    def _apply_run(
        self,
        run: Run,
        announce: dict[Family, dict[PathAttributes, list[int]]],
        withdraw: dict[Family, list[int]],
    ) -> None:
        """A Loc-RIB ``Run``: one route (or none) for many prefixes, exported once if it can."""
        family, route, prefixes = run.family, run.route, run.prefixes
        if family in self.negotiated.add_path_send:
            routes: Sequence[Route] = () if route is None else (route,)
            for prefix in prefixes:
                if self.settings.add_path_all and self.candidates is not None:
                    routes = rank(self.candidates(family, prefix), self.options)
                self._apply_paths(family, prefix, routes, announce, withdraw)
            return
        shards = self.advertised.get(family)
        if shards is None:
            shards = self.advertised[family] = new_shards()
        gone: list[int] = []
        if route is None:
            gone = pop_present(shards, prefixes)
        elif self.settings.policy is accept_all:
            attrs = self._export(family, prefixes[0], route)
            if attrs is None:
                gone = pop_present(shards, prefixes)
            elif run.fresh:
                # No prefix of a fresh run had a best route, so none was advertised: no diff.
                shard = shards[SHARD_OF[(prefixes[0] >> 22) % SPREAD]]
                shard.update(dict.fromkeys(prefixes, attrs))
                announce.setdefault(family, {}).setdefault(attrs, []).extend(prefixes)
            else:
                new: list[int] = []
                add = new.append
                high = -1
                table: dict[int, PathAttributes] = {}
                for prefix in prefixes:
                    if prefix >> 22 != high:  # neighbours share a shard (rib.shards)
                        high = prefix >> 22
                        table = shards[SHARD_OF[high % SPREAD]]
                    if table.get(prefix) is not attrs:
                        table[prefix] = attrs
                        add(prefix)
                if new:
                    announce.setdefault(family, {}).setdefault(attrs, []).extend(new)
        else:
            export = self._export
            by_attrs = announce.setdefault(family, {})
            for prefix in prefixes:
                table = shards[SHARD_OF[(prefix >> 22) % SPREAD]]
                exported = export(family, prefix, route)
                if exported is None:
                    if table.pop(prefix, None) is not None:
                        gone.append(prefix)
                elif table.get(prefix) is not exported:
                    table[prefix] = exported
                    by_attrs.setdefault(exported, []).append(prefix)
        if gone:
            withdraw.setdefault(family, []).extend(gone)

    def _apply_paths(
        self,
        family: Family,
        prefix: int,
        routes: Sequence[Route],
        announce: dict[Family, dict[PathAttributes, list[int]]],
        withdraw: dict[Family, list[int]],
    ) -> None:
        """ADD-PATH (RFC 7911): each path of the ECMP set under its own stable path id."""
        shards = self.advertised_paths.get(family)
        if shards is None:
            shards = self.advertised_paths[family] = new_shards()
        table = shards[SHARD_OF[(prefix >> 22) % SPREAD]]
        old = table.get(prefix, {})
        wanted = self._wanted_paths(family, prefix, routes)
        for path_id in old.keys() - wanted.keys():
            withdraw.setdefault(family, []).append(rib_key(prefix, path_id))
        for path_id, attrs in wanted.items():
            if old.get(path_id) is not attrs:
                announce.setdefault(family, {}).setdefault(attrs, []).append(
                    rib_key(prefix, path_id)
                )
        if wanted:
            table[prefix] = wanted
        else:
            table.pop(prefix, None)

    def _encode(
        self,
        announce: dict[Family, dict[PathAttributes, list[int]]],
        withdraw: dict[Family, list[int]],
    ) -> bytes:
        if not announce and not withdraw:
            return b""
        neg = self.negotiated
        out: list[bytes] = []
        for family, keys in withdraw.items():
            if family in neg.add_path_send:
                prefixes, ids = _split(keys)
                out += encode_withdrawals(family, prefixes, neg, ids)
            else:
                out += encode_withdrawals(family, keys, neg)
        for family, by_attrs in announce.items():
            add_path = family in neg.add_path_send
            for attrs, keys in by_attrs.items():
                if add_path:
                    prefixes, ids = _split(keys)
                    out += encode_announcements(family, attrs, prefixes, neg, ids)
                else:
                    out += encode_announcements(family, attrs, keys, neg)
        self.encodings += 1
        return b"".join(out)

    # -- members -------------------------------------------------------------------------------

    def publish(self, data: bytes) -> None:
        """The same bytes to every member (but the source of a one-source batch, see apply)."""
        if data:
            skip = self._skip
            for member in self.members:
                if member.name != skip:
                    member.send(data)

    def table_for_new_member(self) -> bytes:
        """The whole advertised table and an End-of-RIB per family, for one member."""
        announce: dict[Family, dict[PathAttributes, list[int]]] = {}
        for family, shards in self.advertised.items():
            by_attrs = announce.setdefault(family, {})
            for key, attrs in shard_items(shards):
                by_attrs.setdefault(attrs, []).append(key)
        for family, path_shards in self.advertised_paths.items():
            by_attrs = announce.setdefault(family, {})
            for prefix, paths in shard_items(path_shards):
                for path_id, attrs in paths.items():
                    by_attrs.setdefault(attrs, []).append(rib_key(prefix, path_id))
        data = self._encode(announce, {})
        return data + b"".join(encode_end_of_rib(f) for f in sorted(self.negotiated.families))
