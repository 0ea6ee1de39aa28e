"""The BIRD protocols Myna runs, and ``show protocols [all]`` about them.

Data flow: in BIRD mode ``BirdFront`` holds the file as last applied (``bgpd.bird_run`` swaps
it after each reload); ``protocol_list`` gives its protocols in file order, as BIRD lists them
(device, direct, static, kernel, bfd and each bgp: name, BIRD's protocol type name, description,
preference, filter names). From a YAML config there is one BGP protocol per peer, named as
confd names them (``Mesh_198_18_0_2``...). ``ProtocolView`` reads the daemon's state for each:
the session of a BGP protocol (state, since when, last error, capabilities, timers), the RIB's
route counts per protocol (``RouteCounts``: one walk of the Loc-RIB, kept while the RIB has
published nothing new), what each protocol exports (a BGP peer's update group count, the
kernel's installed routes).

Formats (BIRD 1.6.8, ``nest/proto.c`` ``proto_cmd_show``, ``proto_show_basic_info``,
``proto_show_stats``; ``proto/bgp/bgp.c`` ``bgp_get_status``, ``bgp_show_proto_info``):
``%-8s %-8s %-8s %-5s  %-10s  %s`` rows under ``name     proto    table    state  since
info``; the BGP info is the state padded to 14 then the last error (``Socket: ...``,
``Received: ...``, ``BGP Error: ...``); states ``up``, ``start``, ``wait`` (up, its exports held
by graceful-restart recovery), ``down``. What BIRD counts that Myna does not (the route change
statistics by verdict) prints as ``---``: Myna counts the prefixes each peer announced and
withdrew, nothing per filter verdict.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bgpd.bird_config import config_model as m
from bgpd.bird_config.filter_ast import FilterKind, FilterProgram
from bgpd.bird_control.bird_errors import bird_error
from bgpd.bird_control.replies import Line, proto_time
from bgpd.control_api import bird_name
from rib.route import Origin, Source
from speaker.capabilities import (
    AddPathCapability,
    EnhancedRouteRefreshCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    RouteRefreshCapability,
)
from speaker.session_events import State, Timer
from speaker.wire_codes import Family

if TYPE_CHECKING:
    from bgpd.bird_config.cli import BirdRunOptions
    from bgpd.config import DaemonConfig
    from bgpd.daemon_state import DaemonState
    from speaker.transport import PeerSession

HEADINGS = "name     proto    table    state  since       info"
# BIRD 1.6's default preferences (nest/protocol.h DEF_PREF_*)
DEFAULT_PREFERENCE = {
    "BGP": 100, "Static": 200, "Direct": 240, "Device": 240, "Kernel": 10, "BFD": 0
}  # fmt: skip
_TYPE_NAMES = {
    m.ProtocolType.BGP: "BGP",
    m.ProtocolType.STATIC: "Static",
    m.ProtocolType.DIRECT: "Direct",
    m.ProtocolType.DEVICE: "Device",
    m.ProtocolType.KERNEL: "Kernel",
    m.ProtocolType.BFD: "BFD",
}
_UNKNOWN = "       ---"  # a statistic Myna does not keep, in BIRD's %10u column


@dataclass(frozen=True, slots=True)
class BirdProtocol:
    """One protocol as ``show protocols`` names it."""

    name: str
    kind: str  # BIRD's protocol type name: BGP, Kernel, Device, Direct, Static, BFD
    preference: int
    input_filter: str = "ACCEPT"
    output_filter: str = "REJECT"
    description: str | None = None
    address: str | None = None  # a BGP protocol's neighbor
    # a BIRD file's BGP protocol: any multihop setting, ``multihop 1`` too (None: from YAML)
    multihop: bool | None = None


def filter_name(program: FilterProgram) -> str:
    """BIRD's ``filter_name``: ACCEPT, REJECT, the filter's name or ``(unnamed)``."""
    if program.kind is FilterKind.ALL:
        return "ACCEPT"
    if program.kind is FilterKind.NONE:
        return "REJECT"
    name = program.name
    return "(unnamed)" if name.startswith("(") else name


def _from_bird(protocol: m.ProtocolConfig, ipv6: bool) -> BirdProtocol:
    kind = _TYPE_NAMES[protocol.type]
    address = None
    if isinstance(protocol, m.BgpProtocol) and protocol.neighbor is not None:
        neighbor = protocol.neighbor
        address = str(ipaddress.IPv6Address(neighbor) if ipv6 else ipaddress.IPv4Address(neighbor))
    return BirdProtocol(
        name=protocol.name,
        kind=kind,
        preference=protocol.preference or DEFAULT_PREFERENCE[kind],
        input_filter=filter_name(protocol.import_filter),
        output_filter=filter_name(protocol.export_filter),
        description=protocol.description,
        address=address,
        multihop=protocol.effective_multihop() > 0 if isinstance(protocol, m.BgpProtocol) else None,
    )


@dataclass
class BirdFront:
    """What the BIRD front-end knows beyond the ``DaemonConfig``: the file as applied."""

    config: m.BirdConfig
    options: BirdRunOptions
    pending: m.BirdConfig | None = None  # read by the reload under way
    protocols: list[BirdProtocol] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.protocols = [_from_bird(p, self.config.ipv6) for p in self.config.protocols]

    def applied(self) -> None:
        """The reload that read ``pending`` was applied."""
        if self.pending is not None:
            self.config, self.pending = self.pending, None
            self.__post_init__()


def protocol_list(front: BirdFront | None, config: DaemonConfig, ipv6: bool) -> list[BirdProtocol]:
    """The protocols to show: the BIRD file's, else one BGP protocol per peer of the family."""
    if front is not None:
        return front.protocols
    out = []
    for peer in config.peers:
        if peer.ipv6 != ipv6:
            continue
        shaped = bool(config.ip_pools or peer.filters)
        out.append(
            BirdProtocol(
                name=peer.name or bird_name(peer.kind, peer.address),
                kind="BGP",
                preference=peer.preference or 100,
                input_filter="(unnamed)" if shaped else "ACCEPT",
                output_filter="(unnamed)" if shaped else "ACCEPT",
                address=peer.address,
            )
        )
    return out


def source_protocol(source: Source, daemon: DaemonState, protocols: list[BirdProtocol]) -> str:
    """The name of the protocol a route came from (BIRD's ``[NAME TIME]``)."""
    if source.protocol:
        return source.protocol
    if source.origin == Origin.BGP:
        peer = daemon.peer_configs.get(source.name)
        if peer is not None:
            return peer.name or bird_name(peer.kind, peer.address)
        return source.name
    if source.origin == Origin.KERNEL:
        return daemon.config.kernel.name
    return next((p.name for p in protocols if p.kind == "Static"), "static1")


@dataclass
class RouteCounts:
    """Per protocol name: candidates (imported) and best routes (preferred)."""

    imported: dict[str, int] = field(default_factory=dict)
    preferred: dict[str, int] = field(default_factory=dict)


class ProtocolView:
    """``show protocols`` answers for one address family (see the module docstring)."""

    def __init__(self, daemon: DaemonState, ipv6: bool, started: float) -> None:
        self.daemon = daemon
        self.ipv6 = ipv6
        self.started = started  # wall clock: the non-BGP protocols are up since then
        self.front: BirdFront | None = None
        self._counts: tuple[object, RouteCounts] | None = None

    def protocols(self) -> list[BirdProtocol]:
        """The protocols of this socket's family."""
        return protocol_list(self.front, self.daemon.config, self.ipv6)

    def counts(self) -> RouteCounts:
        """Route counts per protocol, walked again only when the RIB changed."""
        view = self.daemon.rib.view
        key = (view.version, view.prefix_count(), view.deferring, id(self.front))
        if self._counts is not None and self._counts[0] == key:
            return self._counts[1]
        protocols = self.protocols()
        counts = RouteCounts()
        names: dict[Source, str] = {}
        for family in view.families():
            if (family.afi == 2) != self.ipv6:
                continue
            for _, best, _, candidates in view.entries(family):
                for route in candidates:
                    source = route.source
                    name = names.get(source)
                    if name is None:
                        name = names[source] = source_protocol(source, self.daemon, protocols)
                    counts.imported[name] = counts.imported.get(name, 0) + 1
                    if route is best:
                        counts.preferred[name] = counts.preferred.get(name, 0) + 1
        self._counts = (key, counts)
        return counts

    # -- rows --------------------------------------------------------------------------------

    def select(self, name: str | None, pattern: str | None) -> list[BirdProtocol]:
        """The protocols a ``show protocols`` argument names (all without one)."""
        protocols = self.protocols()
        if name is not None:
            return [p for p in protocols if p.name == name]
        if pattern is not None:
            return [p for p in protocols if fnmatch.fnmatchcase(p.name, pattern)]
        return protocols

    def _session(self, protocol: BirdProtocol) -> PeerSession | None:
        if protocol.address is None:
            return None
        return next((s for s in self.daemon.sessions if s.name == protocol.address), None)

    def _state(self, protocol: BirdProtocol) -> tuple[str, float, str]:
        """(state column, since, info column)."""
        started = self.started
        deferring = self.daemon.rib.view.deferring
        if protocol.kind == "Kernel":
            holding = deferring and self.daemon.config.kernel.program
            return ("wait" if holding else "up"), started, ""
        if protocol.kind != "BGP":
            return "up", started, ""
        session = self._session(protocol)
        if session is None:
            return "down", started, ""
        state = session.state
        error = bird_error(session.fsm.error)
        if session.fsm.stopped:  # bgp_get_status for PS_DOWN: the error alone
            return "down", session.state_since, error
        if state == State.ESTABLISHED:
            peer = self.daemon.rib.view.peer(session.name)
            holding = deferring and peer is not None and peer.graceful_restart
            return ("wait" if holding else "up"), session.state_since, f"{'Established':<14}"
        label = state.label
        config = self.daemon.peer_configs.get(session.name)
        passive = config is not None and self.daemon.config.is_passive(config)
        if state in (State.IDLE, State.ACTIVE) and passive:
            label = "Passive"
        return "start", session.state_since, f"{label:<14}{error}"

    def row(self, protocol: BirdProtocol) -> str:
        """One ``show protocols`` row."""
        state, since, info = self._state(protocol)
        return (
            f"{protocol.name:<8} {protocol.kind:<8} {'master':<8} {state:<5}  "
            f"{proto_time(since):<10}  {info}"
        )

    def show(self, protocols: list[BirdProtocol], verbose: bool) -> list[Line]:
        """``show protocols [all]`` of ``protocols`` (BIRD's 8003 when there are none)."""
        if not protocols:
            return [(8003, "No protocols match")]
        lines: list[Line] = [(2002, HEADINGS)]
        for protocol in protocols:
            lines.append((1002, self.row(protocol)))
            if verbose:
                lines.extend((1006, text) for text in self.details(protocol))
                lines.append((1006, ""))
        lines.append((0, ""))
        return lines

    # -- details -----------------------------------------------------------------------------

    def details(self, protocol: BirdProtocol) -> list[str]:
        """The lines under the row in ``show protocols all``."""
        out = []
        if protocol.description:
            out.append(f"  Description:    {protocol.description}")
        out += [
            f"  Preference:     {protocol.preference}",
            f"  Input filter:   {protocol.input_filter}",
            f"  Output filter:  {protocol.output_filter}",
        ]
        view = self.daemon.rib.view
        session = self._session(protocol)
        if view.deferring:
            out.append(f"  GR recovery:   {self._gr_recovery(protocol, session)}")
        state, _, _ = self._state(protocol)
        if state != "down":
            counts = self.counts()
            out.append(
                f"  Routes:         {counts.imported.get(protocol.name, 0)} imported, "
                f"{self._exported(protocol, session)} exported, "
                f"{counts.preferred.get(protocol.name, 0)} preferred"
            )
            out += self._stats(session)
        if protocol.kind == "BGP":
            out += self._bgp(protocol, session)
        return out

    def _gr_recovery(self, protocol: BirdProtocol, session: PeerSession | None) -> str:
        """`` pending``: recovery waits for this protocol; `` waiting``: it waits for recovery."""
        view = self.daemon.rib.view
        pending = waiting = False
        if protocol.kind == "Kernel":
            waiting = self.daemon.config.kernel.program
        elif session is not None:
            pending = session.name in view.deferral_waiting()
            peer = view.peer(session.name)
            waiting = peer is not None and peer.up and peer.graceful_restart
        return f"{' pending' if pending else ''}{' waiting' if waiting else ''}"

    def _exported(self, protocol: BirdProtocol, session: PeerSession | None) -> int:
        if session is not None:
            return self.daemon.rib.view.advertised(session.name)
        if protocol.kind == "Kernel" and self.daemon.fib is not None:
            family = Family.IPV6_UNICAST if self.ipv6 else Family.IPV4_UNICAST
            return sum(len(shard) for shard in self.daemon.fib.installed.shards(family))
        return 0

    @staticmethod
    def _stats(session: PeerSession | None) -> list[str]:
        received = withdrawn = _UNKNOWN
        if session is not None:
            counters = session.counters
            received = f"{sum(counters.prefixes_received.values()):10d}"
            withdrawn = f"{sum(counters.prefixes_withdrawn.values()):10d}"
        unknown = _UNKNOWN
        return [
            "  Route change stats:     received   rejected   filtered    ignored   accepted",
            f"    Import updates:     {received} {unknown} {unknown} {unknown} {unknown}",
            f"    Import withdraws:   {withdrawn} {unknown}        --- {unknown} {unknown}",
            f"    Export updates:     {unknown} {unknown} {unknown}        --- {unknown}",
            f"    Export withdraws:   {unknown}        ---        ---        --- {unknown}",
        ]

    def _bgp(self, protocol: BirdProtocol, session: PeerSession | None) -> list[str]:
        config = None if session is None else self.daemon.peer_configs.get(session.name)
        if session is None or config is None:
            return []
        state, _, info = self._state(protocol)
        out = [
            f"  BGP state:          {info.split()[0] if info and state != 'down' else 'Down'}",
            f"    Neighbor address: {protocol.address}",
            f"    Neighbor AS:      {config.asn}",
        ]
        peer = self.daemon.rib.view.peer(session.name)
        if peer is not None and not peer.up and peer.stale:
            out.append("    Neighbor graceful restart active")
        conn = session.fsm.established
        if conn is not None and conn.received_open is not None:
            received = conn.received_open
            caps = received.capabilities
            out.append(f"    Neighbor ID:      {ipaddress.IPv4Address(received.bgp_id)}")
            out.append(f"    Neighbor caps:   {_caps(caps)}")
            negotiated = conn.negotiated
            session_flags = ["internal" if negotiated.ibgp else "external"]
            # BIRD prints it for a nonzero ``multihop`` (p->cf->multihop): ``multihop 1``
            # with TTL security too, which the daemon's config keeps as TTL 1, as ``direct``
            multihop = protocol.multihop
            if multihop if multihop is not None else config.multihop > 1:
                session_flags.append("multihop")
            if config.route_reflector_client:
                session_flags.append("route-reflector")
            if negotiated.asn4:
                session_flags.append("AS4")
            if negotiated.add_path_receive:
                session_flags.append("add-path-rx")
            if negotiated.add_path_send:
                session_flags.append("add-path-tx")
            if negotiated.extended_message:
                session_flags.append("ext-messages")
            out.append(f"    Session:          {' '.join(session_flags)}")
            out.append(f"    Source address:   {session.local_address() or '::'}")
            if config.max_prefixes is not None:
                out.append(
                    f"    Route limit:      {sum(peer.received.values()) if peer else 0}/"
                    f"{config.max_prefixes.limit}"
                )
            out.append(
                f"    Hold timer:       {self._remains(session, Timer.HOLD, conn.id)}/"
                f"{conn.hold_time}"
            )
            out.append(
                f"    Keepalive timer:  {self._remains(session, Timer.KEEPALIVE, conn.id)}/"
                f"{int(conn.keepalive_time)}"
            )
        error = bird_error(session.fsm.error)
        if error:
            out.append(f"    Last error:       {error}")
        return out

    @staticmethod
    def _remains(session: PeerSession, timer: Timer, conn_id: int) -> int:
        """Whole seconds left on a session timer (BIRD's ``tm_remains``)."""
        deadline = session.fsm.timer_deadline(timer, conn_id)
        if deadline is None:
            return 0
        return max(0, int(deadline - asyncio.get_running_loop().time()))


def _caps(caps: tuple[object, ...]) -> str:
    """BIRD's ``Neighbor caps:`` words for what the peer's OPEN offered."""
    words = []
    if any(isinstance(c, RouteRefreshCapability) for c in caps):
        words.append("refresh")
    if any(isinstance(c, EnhancedRouteRefreshCapability) for c in caps):
        words.append("enhanced-refresh")
    restart = next((c for c in caps if isinstance(c, GracefulRestartCapability)), None)
    if restart is not None:
        words.append("restart-able" if restart.families else "restart-aware")
    llgr = next((c for c in caps if isinstance(c, LongLivedGracefulRestartCapability)), None)
    if llgr is not None:
        words.append("llgr-able" if llgr.families else "llgr-aware")
    if any(isinstance(c, FourOctetAsCapability) for c in caps):
        words.append("AS4")
    add_path = next((c for c in caps if isinstance(c, AddPathCapability)), None)
    if add_path is not None:
        # The peer's send/receive bits, as BIRD names them (its ADD_PATH_RX: the peer receives)
        directions = {direction for _, _, direction in add_path.families}
        if any(d & 1 for d in directions):
            words.append("add-path-rx")
        if any(d & 2 for d in directions):
            words.append("add-path-tx")
    # BIRD 1.6.8 lists no ext-messages here even for a peer that offers it (ExaBGP does, in
    # test_bird_differential); the Session line keeps it when it was negotiated.
    return "".join(f" {word}" for word in words)
