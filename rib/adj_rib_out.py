"""Adj-RIB-Out by update group: one export decision and one encoding per group, N writes.

Data flow: peers whose sessions negotiated the same things and share export settings form an
``UpdateGroup`` (the key is the session's ``Negotiated`` plus ``ExportSettings``). A group is a
channel of the RIB core (``rib.channels``): it takes each batch of the Loc-RIB's ``Change``s and
``Run``s, runs the export rules once per change (iBGP split horizon or RFC 4456 reflection,
LLGR_STALE towards peers without LLGR, the export policy, next hop, AS_PATH and LOCAL_PREF
rewriting, ORIGINATOR_ID and CLUSTER_LIST when reflecting), encodes the words once (UPDATE
runs per attribute set, packed full) and writes them to every member.

What a member holds is derived, never stored: it is the export of the Loc-RIB's best route
for each prefix, except where that route came from the member itself, where it holds nothing
(BIRD's ``bgp_preexport``: a route is never sent back to the peer it came from). A group keeps
no per-prefix table: a change's words come from the export of its old and new selection (the
Loc-RIB publishes both), and a new member, a route refresh or a member that fell behind gets
its view computed from the Loc-RIB. So what a member holds never depends on how the changes
were batched.

Words are kept in the order they happened (consecutive words with the same attribute set and
origin share one UPDATE run), so a prefix changed twice in one batch ends with its last word.
A word is owned by the source of its route: the member that is that source skips it; and a few
words are for one member only (the one whose own route became, or stopped being, the best
while the group's view stayed). Most members therefore get the same bytes object.

A member whose connection stops taking data (its write buffer above the transport's high-water
mark: ``writable`` false) gets nothing more for the moment; the keys it missed are remembered
(the latest state per prefix is what it will get, BIRD's buckets), and when it drains the core
asks the group for a resync of just those keys. The Send Hold Timer (RFC 9687) still ends a
peer that never reads.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from rib.adj_rib_in import rib_key, split_key
from rib.decision import DecisionOptions, rank
from rib.loc_rib import Change, Entry, LocRib, Published, Run
from rib.route import Origin, Route, Source, Stale
from rib.run_split import splitter_of, whole_run
from rib.shards import SHARDS
from speaker.negotiated import Negotiated
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.update_message import encode_announcements, encode_end_of_rib, encode_withdrawals
from speaker.wire_codes import Family, WellKnownCommunity

if TYPE_CHECKING:
    from reflector.rules import Reflection

_LLGR_STALE = int(WellKnownCommunity.LLGR_STALE)


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
    # The policy gives the complete set to send and decides the session rules itself (a BIRD
    # export filter through BIRD's BGP export view, ``bgpd.bird_config.bgp_export``): no
    # iBGP, reflection or LLGR rule here and no rewrite after it. Never back to the source.
    final: bool = False


class Member(Protocol):
    """A peer as its group sees it (the core's per-peer state has all of this)."""

    @property
    def handle(self) -> object:
        """The session, as the core's ``Send`` actions name it."""

    @property
    def source(self) -> Source | None:
        """The source the peer's own routes carry (None before its session came up)."""

    @property
    def writable(self) -> bool:
        """Whether the peer's connection takes more data now."""

    @property
    def missed(self) -> dict[Family, set[int]]:
        """Keys whose words the peer did not get while it could not take data."""

    @property
    def conn(self) -> int:
        """The connection of the peer's current session."""

    @property
    def remote(self) -> bytes:
        """The peer's address, packed: a route whose next hop it is does not go to it."""


class Send(NamedTuple):
    """Write ``data`` to the session ``peer`` (a core action).

    ``conn``: the connection the words were made for (its ``Negotiated``); the shell drops them
    if the session is no longer on it (a new session gets its own table).
    """

    peer: object
    data: bytes
    conn: int = 0


class PathIds:
    """Stable ADD-PATH identifiers we send: one per (source, received path id), shared.

    One per RIB core: a path keeps its identifier in every group for as long as the RIB lives.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[int, int], int] = {}

    def of(self, route: Route) -> int:
        """The identifier of ``route``'s path."""
        key = (route.source.serial, route.path_id)
        path_id = self._ids.get(key)
        if path_id is None:
            path_id = self._ids[key] = len(self._ids) + 1
        return path_id


# One word run: [family, attributes (None: withdrawal), owner, only, keys]. ``owner``: the source
# of the routes (its member skips the run); ``only``: the one member's source the run is for.
_Word = list[Any]
_FAMILY, _ATTRS, _OWNER, _ONLY, _KEYS = range(5)


class UpdateGroup:
    """Members sharing one export and encoding (see the module docstring)."""

    def __init__(
        self,
        negotiated: Negotiated,
        settings: ExportSettings,
        loc: LocRib,
        path_ids: PathIds,
        *,
        out: list[object],
        options: DecisionOptions | None = None,
    ) -> None:
        self.negotiated = negotiated
        self.settings = settings
        self.loc = loc
        self.path_ids = path_ids
        self.out = out  # the core's action list: Send actions go here
        self.options = options or loc.options
        self.members: list[Member] = []
        # (id(attrs), id(source), family) -> (attrs, source, rewritten): holding the key objects
        # keeps their ids from being reused by other objects.
        self._rewrites: dict[tuple[int, int, int], tuple[object, object, PathAttributes]] = {}
        self.encodings = 0  # word batches encoded (one per publication, whatever the members)
        # Routes (paths, with ADD-PATH) the group's view holds, and how many of them each source
        # owns (their member does not hold them): counted as words are made, never walked.
        self.advertised = 0
        self.owned: dict[Source, int] = {}
        if not loc.deferring:
            self._count_table()

    # -- the export rules --------------------------------------------------------------------

    def export(self, family: Family, prefix: int, route: Route) -> PathAttributes | None:
        """What the group announces for ``route``, or None when it is not exported."""
        source = route.source
        settings = self.settings
        if settings.final:
            return settings.policy(family, prefix, route)
        # RFC 4271 9.2: iBGP-learned routes are not passed to iBGP peers, unless reflected
        # (RFC 4456 6: client routes to everyone, non-client routes to clients).
        if (
            self.negotiated.ibgp
            and source.origin == Origin.BGP
            and source.ibgp
            and (settings.reflect is None or not settings.reflect.allows(source))
        ):
            return None
        # RFC 9494 4.3/4.5: not to a peer that does not know LLGR_STALE, whether we made the
        # route long-lived stale or it came to us tagged so.
        if not settings.llgr and (
            route.stale == Stale.LLGR_STALE
            or (route.attrs.communities and _LLGR_STALE in route.attrs.communities)
        ):
            return None
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
            # RFC 4271 5.1.5: LOCAL_PREF on every iBGP UPDATE; the one the decision assumed.
            changes["local_pref"] = self.options.default_local_pref
        if ibgp and not local and source.ibgp and settings.reflect is not None:
            # RFC 4456 8 (``export`` let only reflectable routes through); next hop kept.
            changes["originator_id"], changes["cluster_list"] = settings.reflect.reflect(
                attrs, source
            )
        if not changes:
            return attrs
        return ATTRIBUTES.intern(attrs._replace(**changes))  # type: ignore[arg-type]

    def _paths(
        self, family: Family, prefix: int, routes: Sequence[Route]
    ) -> dict[int, tuple[PathAttributes, Source]]:
        """ADD-PATH: our path id -> (attributes, owner) for each path we export, up to the limit.

        The limit counts exported paths: a path the export rules refuse (an iBGP path to a
        non-client, a policy reject) leaves its place to the next one.
        """
        out: dict[int, tuple[PathAttributes, Source]] = {}
        limit = self.settings.add_path_limit
        for route in routes:
            attrs = self.export(family, prefix, route)
            if attrs is not None:
                out[self.path_ids.of(route)] = (attrs, route.source)
                if len(out) >= limit:
                    break
        return out

    def _ranked(self, all_routes: Sequence[Route], ecmp: Sequence[Route]) -> Sequence[Route]:
        if self.settings.add_path_all:
            return rank(all_routes, self.options, igp_cost=self.loc.next_hops.igp_cost)
        return ecmp

    def _own(self, source: Source | None, delta: int) -> None:
        if source is not None and delta:
            total = self.owned.get(source, 0) + delta
            if total:
                self.owned[source] = total
            else:
                self.owned.pop(source, None)

    def _count_table(self) -> None:
        """Count the view of a group created after the table was published (one walk)."""
        for family in self.negotiated.families & set(self.loc.tables):
            for shard in range(SHARDS):
                for word in self.view_words(None, family, None, shard, counting=True):
                    self.advertised += len(word[_KEYS])
                    self._own(word[_OWNER], len(word[_KEYS]))

    def advertised_to(self, member: Member) -> int:
        """Routes (paths) the member holds from us now."""
        source = member.source
        return self.advertised - (0 if source is None else self.owned.get(source, 0))

    def forget_rewrites(self) -> int:
        """Empty the rewrite cache (the idle sweep, so unused attribute sets can be freed)."""
        dropped = len(self._rewrites)
        self._rewrites.clear()
        return dropped

    # -- the channel: a batch of Loc-RIB changes ------------------------------------------------

    def publish(self, changes: Sequence[Published]) -> None:
        """Work out the words for ``changes`` and write them to the members."""
        if not self.members:
            return
        words: list[_Word] = []
        families = self.negotiated.families
        add_path = self.negotiated.add_path_send
        members = {m.source for m in self.members if m.source is not None}
        for change in changes:
            family = change.family
            if family not in families:
                continue
            if family in add_path:
                self._paths_change(change, words)
            elif isinstance(change, Run):
                self._run(change, words)
            else:
                self._change(change, words, members)
        if words:
            self._write(words)

    def _word(
        self,
        words: list[_Word],
        family: Family,
        attrs: PathAttributes | None,
        keys: Sequence[int],
        *,
        owner: Source | None = None,
        only: Source | None = None,
    ) -> None:
        if words:
            last = words[-1]
            if (
                last[_ATTRS] is attrs
                and last[_OWNER] is owner
                and last[_ONLY] is only
                and last[_FAMILY] is family
            ):
                last[_KEYS].extend(keys)
                return
        words.append([family, attrs, owner, only, list(keys)])

    def _run(self, run: Run, words: list[_Word]) -> None:
        """A Loc-RIB ``Run``: the only candidate of many prefixes, old and new."""
        family, old, new, prefixes = run.family, run.old, run.route, run.prefixes
        policy = self.settings.policy
        split = whole_run if policy is accept_all else splitter_of(policy)
        if split is not None:
            # The export reads the prefix through a few tests at most: decided once for each
            # group of prefixes it cannot tell apart (the whole run, mostly).
            for group in split(prefixes):
                first = group[0]
                old_attrs = None if old is None else self.export(family, first, old)
                new_attrs = None if new is None else self.export(family, first, new)
                if old_attrs is new_attrs:
                    continue
                delta = (new_attrs is not None) - (old_attrs is not None)
                if delta:
                    self.advertised += delta * len(group)
                    self._own(run.source, delta * len(group))
                if new_attrs is None:
                    self._word(words, family, None, group)
                else:
                    self._word(words, family, new_attrs, group, owner=run.source)
            return
        export = self.export
        for prefix in prefixes:
            old_attrs = None if old is None else export(family, prefix, old)
            new_attrs = None if new is None else export(family, prefix, new)
            if old_attrs is new_attrs:
                continue
            delta = (new_attrs is not None) - (old_attrs is not None)
            if delta:
                self.advertised += delta
                self._own(run.source, delta)
            if new_attrs is None:
                self._word(words, family, None, (prefix,))
            else:
                self._word(words, family, new_attrs, (prefix,), owner=run.source)

    def _change(self, change: Change, words: list[_Word], members: set[Source]) -> None:
        """One prefix's best route changed: the group's word, and the two members it concerns.

        The member whose route stopped being the best held nothing (its own route) and now holds
        the new one; the member whose route became the best held the old one and now holds
        nothing. Where the group's word does not tell them that, they get a word of their own.
        """
        family, prefix = change.family, change.prefix
        old, new = change.old_best, change.new_best
        old_attrs = None if old is None else self.export(family, prefix, old)
        new_attrs = None if new is None else self.export(family, prefix, new)
        old_owner = None if old is None else old.source
        new_owner = None if new is None else new.source
        key = (prefix,)
        if old_attrs is not None:
            self.advertised -= 1
            self._own(old_owner, -1)
        if new_attrs is not None:
            self.advertised += 1
            self._own(new_owner, 1)
        if old_attrs is not new_attrs:
            if new_attrs is None:
                self._word(words, family, None, key)
                return
            self._word(words, family, new_attrs, key, owner=new_owner)
            if old_attrs is not None and new_owner is not old_owner and new_owner in members:
                self._word(words, family, None, key, only=new_owner)
            return
        if new_owner is old_owner or new_attrs is None:
            return
        if old_owner in members:
            self._word(words, family, new_attrs, key, only=old_owner)
        if new_owner in members:
            self._word(words, family, None, key, only=new_owner)

    def _paths_change(self, change: Published, words: list[_Word]) -> None:
        """ADD-PATH (RFC 7911): each exported path under its own stable path id.

        A member never gets its own paths (their words are owned by it), and never held them,
        so withdrawals may go to everyone.
        """
        family = change.family
        if isinstance(change, Run):
            run = change
            for prefix in run.prefixes:
                self._path_words(
                    family,
                    prefix,
                    () if run.old is None else (run.old,),
                    () if run.route is None else (run.route,),
                    words,
                )
            return
        old = self._ranked(change.old_all, change.old_ecmp)
        if change.old_rank is not None and self.settings.add_path_all:
            old = change.old_rank  # ranked with the resolution it had
        self._path_words(
            family, change.prefix, old, self._ranked(change.new_all, change.new_ecmp), words
        )

    def _path_words(
        self,
        family: Family,
        prefix: int,
        old_routes: Sequence[Route],
        new_routes: Sequence[Route],
        words: list[_Word],
    ) -> None:
        old = self._paths(family, prefix, old_routes) if old_routes else {}
        new = self._paths(family, prefix, new_routes) if new_routes else {}
        for _, owner in old.values():
            self.advertised -= 1
            self._own(owner, -1)
        for _, owner in new.values():
            self.advertised += 1
            self._own(owner, 1)
        for path_id in old.keys() - new.keys():
            self._word(words, family, None, (rib_key(prefix, path_id),))
        for path_id, (attrs, owner) in new.items():
            before = old.get(path_id)
            if before is None or before[0] is not attrs:
                self._word(words, family, attrs, (rib_key(prefix, path_id),), owner=owner)

    # -- encoding and writing ----------------------------------------------------------------

    def _encode_words(self, words: list[_Word], *, count: bool = True) -> list[bytes]:
        neg = self.negotiated
        out = []
        for family, attrs, _owner, _only, keys in words:
            if family in neg.add_path_send:
                pairs = [split_key(k) for k in keys]
                prefixes, ids = [p for p, _ in pairs], [i for _, i in pairs]
                if attrs is None:
                    out.append(b"".join(encode_withdrawals(family, prefixes, neg, ids)))
                else:
                    out.append(b"".join(encode_announcements(family, attrs, prefixes, neg, ids)))
            elif attrs is None:
                out.append(b"".join(encode_withdrawals(family, keys, neg)))
            else:
                out.append(b"".join(encode_announcements(family, attrs, keys, neg)))
        if count:
            self.encodings += 1
        return out

    def _write(self, words: list[_Word]) -> None:
        encoded = self._encode_words(words)
        special: set[Source] = set()
        hops: set[bytes] = set()
        for word in words:
            if word[_OWNER] is not None:
                special.add(word[_OWNER])
            if word[_ONLY] is not None:
                special.add(word[_ONLY])
            if word[_ATTRS] is not None:
                hops.add(word[_ATTRS].next_hop[:16])  # a global and link-local pair: global
        common: bytes | None = None
        for member in self.members:
            source = member.source
            remote = member.remote
            itself = bool(remote) and remote in hops
            if not itself and (source is None or source not in special):
                if common is None:
                    common = b"".join(
                        d for w, d in zip(words, encoded, strict=True) if w[_ONLY] is None
                    )
                data = common
                mine = words
            else:
                chosen = [
                    self._to_itself(word, data, remote) if itself else (word, data)
                    for word, data in zip(words, encoded, strict=True)
                    if (word[_ONLY] is None and word[_OWNER] is not source) or word[_ONLY] is source
                ]
                data = b"".join(d for _, d in chosen)
                mine = [w for w, _ in chosen]
            if not data:
                continue
            if member.writable:
                self.out.append(Send(member.handle, data, member.conn))
            else:
                for word in mine:
                    if word[_ONLY] is None or word[_ONLY] is source:
                        member.missed.setdefault(word[_FAMILY], set()).update(word[_KEYS])

    def _to_itself(self, word: _Word, data: bytes, remote: bytes) -> tuple[_Word, bytes]:
        """A word for the member whose address is the route's next hop: a withdrawal instead.

        BIRD never sends a peer a route via itself (``bgp_get_bucket``: "Invalid NEXT_HOP
        attribute"); what the peer held for those keys before goes.
        """
        attrs = word[_ATTRS]
        if attrs is None or attrs.next_hop[:16] != remote:
            return word, data
        gone: _Word = [word[_FAMILY], None, None, word[_ONLY], word[_KEYS]]
        return gone, b"".join(self._encode_words([gone], count=False))

    # -- whole views: a new member, a route refresh, a member that drained ----------------------

    def view_words(
        self,
        member: Member | None,
        family: Family,
        keys: Sequence[int] | None,
        shard: int = 0,
        *,
        counting: bool = False,
    ) -> list[_Word]:
        """The member's view of one shard (``keys`` None) or of given keys, as words.

        ``member`` None: the group's view. Keys not held (no best route, not exported, or the
        member's own) come as withdrawals when asked for by ``keys`` (the member may hold an
        older word), and not at all in a shard walk. ``counting``: words keep their owner.
        """
        own = None if member is None else member.source
        remote = b"" if member is None else member.remote
        words: list[_Word] = []
        add_path = family in self.negotiated.add_path_send
        loc = self.loc
        if keys is None:
            shards = loc.tables.get(family)
            if shards is None:
                return words
            for prefix, slot in list(shards[shard].items()):
                for key, attrs, owner in self._held(family, prefix, slot, add_path):
                    if (own is None or owner is not own) and (
                        not remote or attrs.next_hop[:16] != remote
                    ):
                        self._word(words, family, attrs, (key,), owner=owner if counting else None)
            return words
        for key in keys:
            prefix, _ = split_key(key)
            here = self._held(family, prefix, loc._slot(family, prefix), add_path)
            held = {
                k: attrs
                for k, attrs, owner in here
                if (own is None or owner is not own)
                and (not remote or attrs.next_hop[:16] != remote)
            }
            self._word(words, family, held.get(key), (key,))
        return words

    def view_owners(self, family: Family, shard: int) -> dict[int, Source]:
        """The keys the group's view holds in one shard, each with the source of its route."""
        return {
            key: word[_OWNER]
            for word in self.view_words(None, family, None, shard, counting=True)
            for key in word[_KEYS]
        }

    def _held(
        self, family: Family, prefix: int, slot: Route | Entry | None, add_path: bool
    ) -> list[tuple[int, PathAttributes, Source]]:
        """(key, attributes, owner) of what the group's view holds for one prefix."""
        if slot is None:
            return []
        if add_path:
            if isinstance(slot, Entry):
                routes = self._ranked(slot.candidates, slot.ecmp)
            else:
                routes = self.loc.selection(slot)[1]
            return [
                (rib_key(prefix, path_id), attrs, owner)
                for path_id, (attrs, owner) in self._paths(family, prefix, routes).items()
            ]
        best, _ = self.loc.selection(slot)
        if best is None:
            return []
        attrs = self.export(family, prefix, best)
        return [] if attrs is None else [(prefix, attrs, best.source)]

    def table_for(self, member: Member, family: Family, shard: int) -> bytes:
        """One shard of the member's whole view, encoded (a new member, a route refresh)."""
        words = self.view_words(member, family, None, shard)
        return b"".join(self._encode_words(words)) if words else b""

    def keys_for(self, member: Member, family: Family, keys: Sequence[int]) -> bytes:
        """The member's current view of ``keys``, encoded (a member that drained)."""
        words = self.view_words(member, family, keys)
        return b"".join(self._encode_words(words)) if words else b""

    def end_of_rib(self) -> bytes:
        """An End-of-RIB per negotiated family (RFC 4724), after a whole table."""
        return b"".join(encode_end_of_rib(f) for f in sorted(self.negotiated.families))
