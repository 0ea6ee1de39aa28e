"""What goes into the RIB core and what comes out of it: typed, frozen events and actions.

Data flow: the asyncio shell (``rib.rib_task.Rib``) turns what sessions, the kernel sync and the
daemon tell it into these events and hands them to ``rib.rib_core.RibCore`` with the current
time; the core's ``work`` returns actions, which the shell carries out (writes to sessions,
ending a session, reading again). Peers are named by an opaque handle (the shell passes the
session object; the core never calls it), so a test can drive the core with any object.
Update groups append ``rib.adj_rib_out.Send`` actions to the same list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from rib.adj_rib_out import ExportSettings
from rib.channels import Channel
from rib.policy import PrefixLimit
from rib.route import KernelFacts, Origin, Preferred, Route
from speaker.control_messages import Notification, RouteRefresh
from speaker.path_attributes import PathAttributes
from speaker.session_events import SessionDown, SessionUp
from speaker.update_message import Update
from speaker.wire_codes import Family

# (family, prefix, route) -> attributes to keep (maybe rewritten, interned) or None to drop; a
# ``Preferred`` gives the route its own preference too (a BIRD import filter's ``preference``)
ImportPolicy = Callable[[Family, int, Route], PathAttributes | Preferred | None]

_LOG = logging.getLogger("myna.rib")


def accept_import(_family: Family, _prefix: int, route: Route) -> PathAttributes | None:
    """The import policy of a peer configured without one."""
    return route.attrs


@dataclass(frozen=True, slots=True, eq=False)
class PeerSettings:
    """What the RIB knows of a configured peer before any session.

    ``import_per_route``: the import policy's answer does not depend on the prefix (no filters,
    no own blocks), so it is asked once per UPDATE's attribute set, not per prefix.
    """

    name: str  # the peer's address as text (the session's name)
    address: int  # the same as an int: the decision's tie-breaker g)
    packed_address: bytes = b""  # the same, 4 or 16 octets: no route goes to it via itself
    import_policy: ImportPolicy = accept_import
    import_per_route: bool = True
    rr_client: bool = False  # RFC 4456: the peer is a route-reflector client of ours
    limit: PrefixLimit | None = None
    protocol: str = ""  # BIRD's protocol name of the peer (what filters read as ``proto``)
    preference: int | None = None  # BIRD's protocol preference (None: BGP's default, 100)
    log: logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.LoggerAdapter(_LOG, {})
    )


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerAdded:
    """A peer is configured (applied at once: it only registers the peer)."""

    peer: object
    settings: PeerSettings


@dataclass(frozen=True, slots=True)
class PeerRemoved:
    """A peer is removed or replaced by a reload: its routes go at once."""

    peer: object


@dataclass(frozen=True, slots=True)
class PeerUp:
    """The peer's session is Established; ``export`` is what its update group sends by."""

    peer: object
    up: SessionUp
    export: ExportSettings


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The peer's session ended."""

    peer: object
    down: SessionDown


@dataclass(frozen=True, slots=True)
class UpdatesIn:
    """UPDATEs of one read from the peer; ``received_at`` is the shell's clock then."""

    peer: object
    updates: tuple[Update, ...]
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RefreshIn:
    """A ROUTE-REFRESH from the peer: a request (RFC 2918), or BoRR / EoRR (RFC 7313)."""

    peer: object
    refresh: RouteRefresh


@dataclass(frozen=True, slots=True)
class Originate:
    """Routes of this node: announce (``attrs``) or withdraw (None) ``prefixes``.

    The rest says what made them, for the decision (``preference``) and BIRD's filters
    (``protocol``: the BIRD protocol's name, ``interface``, ``kernel``: BIRD's view of a route
    not from BGP). Routes with the same five come from one ``Source``; a withdrawal names the
    same five as its announcement.
    """

    family: Family
    prefixes: tuple[int, ...]
    attrs: PathAttributes | None
    origin: Origin
    protocol: str = ""
    interface: str | None = None
    preference: int | None = None
    kernel: KernelFacts | None = None

    @property
    def source_key(self) -> tuple[object, ...]:
        """Which of the node's own sources the routes belong to."""
        return (self.origin, self.protocol, self.interface, self.preference, self.kernel)


@dataclass(frozen=True, slots=True)
class NextHopsChanged:
    """The routes next hops resolve through changed (the kernel's table)."""


@dataclass(frozen=True, slots=True)
class PeerStateChanged:
    """A session's state changed; ``coming_up``: OpenSent, OpenConfirm or Established."""

    peer: object
    coming_up: bool


@dataclass(frozen=True, slots=True)
class Started:
    """The RIB starts (selection deferral counts from here)."""


@dataclass(frozen=True, slots=True)
class PoliciesChanged:
    """A reload changed peers' filters, not their sessions (BIRD 1.6's ``configure``).

    Per peer: the new import policy (None: unchanged), whether to ask the peer for its routes
    again (a ROUTE-REFRESH, RFC 2918: what it sent is re-imported through the new policy), and
    the new export settings of its running session (None: unchanged), by which the peer is
    re-fed: moved to the update group of its new export, it gets every key either view holds
    as the new view has it (BIRD's re-feed: spurious withdrawals, none missing).
    """

    peers: tuple[PolicyChange, ...]


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One peer's part of ``PoliciesChanged``."""

    peer: object
    import_policy: ImportPolicy | None
    import_per_route: bool
    refresh: bool
    export: ExportSettings | None


@dataclass(frozen=True, slots=True)
class Refeed:
    """Give ``channel`` (the FIB programmer, whose policy changed) the whole table again."""

    channel: Channel


RibEvent = (
    PeerAdded
    | PeerRemoved
    | PeerUp
    | PeerDown
    | UpdatesIn
    | RefreshIn
    | Originate
    | NextHopsChanged
    | PeerStateChanged
    | Started
    | PoliciesChanged
    | Refeed
)


# -- actions (besides rib.adj_rib_out.Send) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cease:
    """End the peer's session with ``notification``; start again after ``restart_after`` s."""

    peer: object
    notification: Notification
    reason: str
    restart_after: float | None


@dataclass(frozen=True, slots=True)
class DeferralDone:
    """Selection deferral is over (RFC 4724): the whole table has been published."""

    reason: str


@dataclass(frozen=True, slots=True)
class UpdatesDone:
    """The UPDATEs received at ``received_at`` are in the Loc-RIB and published."""

    received_at: float
    prefixes: int
