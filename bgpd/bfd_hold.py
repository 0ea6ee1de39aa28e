"""How long a BFD failure may hold a BGP session down when the peer sends no BFD at all.

RFC 5882 4.1 blocks an adjacency while BFD cannot come up, when "both systems are willing to
establish a BFD session": a BGP session whose BFD session fell from Up is held in Idle until
BFD is Up again (``speaker.session_fsm``'s BFD_DOWN and BFD_UP, fed by ``bgpd.bfd_peers``).
The same section goes on: "If it is believed that the neighboring system does not support BFD,
the establishment of a control protocol adjacency SHOULD NOT be blocked." A peer stops
supporting BFD without saying so (no AdminDown) when its operator removes it: BIRD drops the
session of a ``bfd on`` it no longer has without a packet, so the failure looks like a path
failure, and the hold would last until the peer's operator put BFD back.

``HoldLimit`` decides when that belief is reached: the session has been held for ``limit``
seconds and for the last ``limit`` seconds the peer has not been heard at all (no packet
accepted by its BFD session, packets that fail authentication proving nothing; the engine
reports each change of that with a ``BfdRemoteChange``). Its deadline is then
``max(held since, silent since) + limit``. A peer that is heard, even one whose session
cannot come up (a path that loses one direction, a Down it keeps sending), shows it runs BFD
and keeps the hold. After a release the next fall of the BFD session from Up holds the BGP
session again.

Why a silence of 60 s by default (``bfd.hold_limit``): a path that is really down carries no
BGP either, so a release during an outage costs nothing (the BGP session cannot connect
before the path is back, and then BFD comes Up within a second or two); what the hold guards
against is a path on which TCP works and BFD does not, which after a minute without a single
BFD packet is more likely a peer without BFD than a path fault, and the warning logged says
which it is taken for. A BFD that is merely restarting at the peer (BIRD's or bfdd's restart
takes seconds) is heard again well before. And 60 s is twice the default error wait's
maximum (30 s): a peer without BFD waits about as long as a session that keeps failing
waits between two attempts, rather than for ever.
``hold_limit: null`` keeps the hold until BFD is Up again, RFC 5882 4.1 read strictly.

Sans-I/O: times are passed in (monotonic seconds); the wiring arms a timer at ``deadline``.
"""

from __future__ import annotations

DEFAULT_LIMIT = 60.0  # s; see the module docstring


class HoldLimit:
    """One BGP session's hold after a BFD failure, and when silence ends it (module docstring)."""

    __slots__ = ("_held_since", "_silent_since", "limit")

    def __init__(self, limit: float | None = DEFAULT_LIMIT) -> None:
        self.limit = limit  # None: no limit
        self._held_since: float | None = None
        self._silent_since: float | None = 0.0  # not heard yet, since the beginning of time

    @property
    def held(self) -> bool:
        """A BFD failure holds the BGP session now."""
        return self._held_since is not None

    @property
    def heard(self) -> bool:
        """The peer's BFD was heard within its last Detection Time (as last reported)."""
        return self._silent_since is None

    def hold(self, at: float) -> None:
        """The BFD session failed at ``at``: the BGP session is held (from the first failure)."""
        if self._held_since is None:
            self._held_since = at

    def release(self) -> None:
        """The hold ended (BFD Up, AdminDown, no BFD session any more, or the limit)."""
        self._held_since = None

    def remote(self, heard: bool, at: float) -> None:
        """The engine's report: the peer is heard (again), or silent since ``at``."""
        if heard:
            self._silent_since = None
        elif self._silent_since is None:
            self._silent_since = at

    @property
    def deadline(self) -> float | None:
        """When the hold ends if nothing else happens (None: it does not end by itself)."""
        if self.limit is None or self._held_since is None or self._silent_since is None:
            return None
        return max(self._held_since, self._silent_since) + self.limit

    def expired(self, now: float) -> bool:
        """Whether the hold has lasted its limit in silence at ``now``."""
        deadline = self.deadline
        return deadline is not None and now >= deadline
