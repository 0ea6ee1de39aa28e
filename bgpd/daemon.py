"""``myna run``: the daemon's parts wired together on a uvloop event loop.

Data flow: ``Daemon`` builds one ``PeerSession`` per configured peer, one ``Listener`` for them
all, and the ``Rib`` task that every session feeds (the sessions' sink); the configured
``announce`` prefixes enter the RIB as this node's own routes. ``BfdPeers`` (``bfd_peers``)
runs a BFD session for each peer that enables BFD and feeds its verdicts to the session.
``run`` waits for SIGTERM or SIGINT, on which every session is ceased with a shutdown text.
``StatusFile`` writes a JSON status (sessions, routes per peer) after changes when the config
names a file; the control socket of the daemon issue supersedes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import signal
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from bgpd.bfd_peers import BfdPeers
from bgpd.config import DaemonConfig, Peer
from bgpd.control_api import ControlApi
from bgpd.control_socket import ControlSocket
from bgpd.local_routes import StaticRoutes, kernel_import
from bgpd.logs import configure_logging
from bgpd.peer_policies import Policies, kernel_policy
from bgpd.reload_plan import POLICY_INPUTS, ReloadPlan, plan_reload
from bgpd.systemd_notify import SystemdNotifier
from kernel_sync.connected_routes import ConnectedRoutes
from kernel_sync.fib_programmer import FibProgrammer, FibSettings
from kernel_sync.kernel_events import KernelEvents
from kernel_sync.kernel_learner import KernelLearner, LearnFilter
from kernel_sync.netlink_socket import dump_routes
from kernel_sync.next_hop_resolver import NextHopResolver
from kernel_sync.route_writer import RouteWriter
from rib.policy import LimitAction, PrefixLimit
from rib.rib_task import PolicyUpdate, Rib
from rib.route import Origin
from speaker.capabilities import (
    AddPathCapability,
    Capability,
    EnhancedRouteRefreshCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.control_messages import Notification
from speaker.listener import Listener
from speaker.nlri import prefix_family, prefix_from_text, prefix_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import SessionSettings, State
from speaker.transport import PeerSession, TransportSettings
from speaker.wire_codes import (
    AddPathDirection,
    CeaseSubcode,
    Family,
    GracefulRestartFamilyFlag,
    GracefulRestartFlag,
)

if TYPE_CHECKING:
    from bgpd.bird_socket import BirdSocket
    from bgpd.metrics import MetricsServer

LOG = logging.getLogger("myna.daemon")
_STATUS_DELAY = 0.05  # seconds
STATUS_ROUTE_LIMIT = 10_000  # the status file lists a peer's routes up to this many
FORWARDING_PRESERVED = int(GracefulRestartFamilyFlag.FORWARDING_STATE)
_FAMILIES = {"ipv4": Family.IPV4_UNICAST, "ipv6": Family.IPV6_UNICAST}
_ADDRESS_FAMILY = {
    Family.IPV4_UNICAST: int(socket.AF_INET),
    Family.IPV6_UNICAST: int(socket.AF_INET6),
}


def _router_id_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def capabilities_for(peer: Peer, local_as: int, restarting: bool) -> tuple[Capability, ...]:
    """What we offer a peer.

    Its address family, route refresh (RFC 2918 and RFC 7313), 4-octet AS, ADD-PATH, GR and LLGR
    (RFC 9494 4.1: LLGR only beside GR).
    """
    family = Family.IPV6_UNICAST if peer.ipv6 else Family.IPV4_UNICAST
    caps: list[Capability] = [
        MultiprotocolCapability(family.afi, family.safi),
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
        FourOctetAsCapability(local_as),
    ]
    if peer.long_lived_stale_time and peer.graceful_restart:
        caps.append(
            LongLivedGracefulRestartCapability(
                ((family.afi, family.safi, FORWARDING_PRESERVED, peer.long_lived_stale_time),)
            )
        )
    if peer.add_paths != "off":
        direction = {"rx": AddPathDirection.RECEIVE, "tx": AddPathDirection.SEND}.get(
            peer.add_paths, AddPathDirection.BOTH
        )
        caps.append(AddPathCapability(((family.afi, family.safi, int(direction)),)))
    if peer.graceful_restart:
        # Forwarding state is preserved across our restarts: the kernel keeps the routes. Like
        # Calico's "bird -R", every start counts as a restart until selection deferral ends.
        flags = GracefulRestartFlag.RESTART_STATE if restarting else 0
        caps.append(
            GracefulRestartCapability(
                int(flags), peer.restart_time, ((family.afi, family.safi, FORWARDING_PRESERVED),)
            )
        )
    return tuple(caps)


def session_settings(config: DaemonConfig, peer: Peer) -> SessionSettings:
    """The FSM's settings for one peer from the config."""
    timers = peer.timers or config.timers
    return SessionSettings(
        local_as=config.local_as_for(peer),
        router_id=_router_id_int(config.router_id),
        peer_as=peer.asn,
        capabilities=capabilities_for(
            peer, config.local_as_for(peer), config.selection_deferral > 0
        ),
        passive=config.is_passive(peer),
        hold_time=timers.hold_time,
        keepalive_time=timers.keepalive_time,
        connect_delay=timers.connect_delay,
        connect_retry=timers.connect_retry,
        error_wait_min=timers.error_wait[0],
        error_wait_max=timers.error_wait[1],
        send_hold_time=timers.send_hold_time,
        bfd_graceful=peer.bfd is not None and peer.bfd.graceful,
    )


def transport_settings(peer: Peer, output_buffer: int = 4 << 20) -> TransportSettings:
    """How to reach one peer from the config.

    ``output_buffer``: octets written to the peer and not yet taken before the RIB holds the
    rest (it keeps the latest state per prefix instead, and sends it when the peer drains).
    """
    return TransportSettings(
        address=peer.address,
        port=peer.port,
        source_address=peer.source_address,
        password=peer.secret(),
        ttl_security=peer.ttl_security,
        ttl=peer.multihop,
        write_high_water=output_buffer,
        write_low_water=output_buffer // 4,
    )


class StatusFile:
    """The JSON status file: sessions and the routes each peer gave us (for tests and ops)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._pending: asyncio.TimerHandle | None = None
        self._writer: ThreadPoolExecutor | None = None

    def status(self) -> dict[str, object]:
        """What the status file holds."""
        view = self.daemon.rib.view
        peers: dict[str, object] = {}
        for session in self.daemon.sessions:
            peer = view.peer(session.name)
            routes = self.daemon.api.received(session.name)
            peers[session.name] = {
                "state": session.state.label,
                "last_error": session.fsm.last_error,
                "connect_attempts": session.fsm.connect_attempts,
                "route_count": 0 if peer is None else sum(peer.received.values()),
                "routes": routes,
            }
        ecmp: dict[str, list[str]] = {}
        if view.prefix_count() <= STATUS_ROUTE_LIMIT:
            for family in view.families():
                for prefix, _, paths in view.best_routes(family):
                    if len(paths) > 1:
                        ecmp[prefix_text(prefix, family)] = sorted(
                            str(ipaddress.ip_address(r.attrs.next_hop[:16])) for r in paths
                        )
        return {
            "router_id": self.daemon.config.router_id,
            "pid": os.getpid(),
            "loc_rib": view.prefix_count(),
            "ecmp": ecmp,
            "selection_deferred": view.deferring,
            "peers": peers,
            "kernel": self.kernel(),
        }

    def kernel(self) -> dict[str, object]:
        """Kernel sync's counters: what was learned, installed, repaired, re-read."""
        daemon = self.daemon
        out: dict[str, object] = {}
        if daemon.kernel_events is not None:
            out["resyncs"] = daemon.kernel_events.resyncs
            out["overruns"] = daemon.kernel_events.overruns
        if daemon.learner is not None:
            out["learned"] = len(daemon.learner.learned)
        if daemon.fib is not None:
            out["installed"] = len(daemon.fib.installed)
            out["waiting"] = sorted(prefix_text(p, f) for f, p in daemon.fib.waiting)[:100]
            out.update(daemon.fib.counters)
        return out

    def changed(self) -> None:
        """Write the file soon: one write for a burst of changes."""
        if self.daemon.config.status_file is None or self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        self._pending = loop.call_later(_STATUS_DELAY, self._write_in_thread)

    def _write_in_thread(self) -> None:
        """The status is taken here, on the loop; a worker thread writes the file.

        A write and rename took 30 ms and more now and then on the test machines' disks; on the
        event loop that held up everything else: a Felix block waited that long to be learned
        (block latency p99 25-650 ms over 100 rounds). One worker keeps the writes in order.
        """
        self._pending = None
        path = self.daemon.config.status_file
        if path is None:
            return
        text = json.dumps(self.status(), indent=1)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="myna-status")
        self._writer.submit(_write_atomically, path, text).add_done_callback(_log_failure)

    def write(self) -> None:
        """Write the status file now, after any write under way (at start and at stop)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        path = self.daemon.config.status_file
        if path is not None:
            _write_atomically(path, json.dumps(self.status(), indent=1))


def _write_atomically(path: Path, text: str) -> None:
    """Readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _log_failure(future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        LOG.warning("cannot write the status file: %s (check the path and its directory)", error)


class Daemon:
    """The running daemon: the listener, one session per peer, the RIB they feed."""

    def __init__(self, config: DaemonConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.rib = Rib(
            config.local_as,
            _router_id_int(config.router_id),
            selection_deferral=config.selection_deferral,
            peer_wait=config.selection_deferral_peer_wait,
            manage_gc=True,
            cluster_id=config.reflector_cluster_id(),
        )
        self.listener = Listener(config.listen.addresses, config.listen.port)
        self.sessions: list[PeerSession] = []
        self.peer_configs: dict[str, Peer] = {}  # by session name (the peer's address)
        self.policies = Policies(config)
        self.writer: RouteWriter | None = None
        self.learner: KernelLearner | None = None
        self.fib: FibProgrammer | None = None
        self.kernel_events: KernelEvents | None = None
        self.status = StatusFile(self)
        self.api = ControlApi(self, config_path)
        self.control: ControlSocket | None = None
        self.bird_sockets: list[BirdSocket] = []
        self.metrics: MetricsServer | None = None  # /metrics, /healthz, /readyz
        self.static_routes = StaticRoutes(self.rib.originate)  # BIRD's static protocol
        self.bfd = BfdPeers()  # the BFD engine and sessions, when some peer enables BFD
        self._jitter = random.Random()  # every session's timer jitter (RFC 4271 10)
        self.systemd = SystemdNotifier()
        self.rib.status_hook = self._rib_worked
        self.rib.deferral_done_hook = self._restart_over
        self._started = 0.0  # loop time of start()
        self._leftover_timer: asyncio.TimerHandle | None = None

    def session(self, address: str) -> PeerSession:
        """The session of the peer at ``address``."""
        return next(s for s in self.sessions if s.name == address)

    def _restart_over(self) -> None:
        """OPENs from now on say we are no longer restarting (no R flag)."""
        for session in self.sessions:
            peer = self.peer_configs[session.name]
            session.fsm.capabilities = capabilities_for(peer, self.config.local_as_for(peer), False)
        if self.fib is not None:
            # After the RIB has published its selection (it does so right after this hook).
            asyncio.get_running_loop().call_soon(self._remove_leftovers)

    def _rib_worked(self) -> None:
        """The RIB has worked through its inbox: status may differ, peers may be back."""
        self.status.changed()
        if self.fib is not None and self.fib.leftovers_removed and self.fib.adopted:
            self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Delete the kernel routes an earlier run left that no peer selected again.

        Selection deferral ends once every peer that is up has sent End-of-RIB; a peer that is
        not back yet (still reconnecting, or restarting too and deferring its own End-of-RIB)
        may announce its routes again a moment later. Deleting them now and writing them again
        then would flap them, so the routes through such a peer (their gateway is its address,
        as in Calico's mesh) stay until it is up with its End-of-RIB sent, or until its restart
        time, counted from our start, is over while it is still down: a dead peer's routes go
        then, as they go at the peers that kept them as stale. Called at the end of selection
        deferral, then after each RIB batch while such routes are left.
        """
        fib = self.fib
        if fib is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting: set[bytes] = set()
        deadlines = []
        for peer in self.rib.view.peers():
            name = peer.name
            config = self.peer_configs.get(name)
            if config is None or not config.graceful_restart:
                continue
            if peer.up and (not peer.graceful_restart or peer.end_of_rib >= peer.families):
                continue  # back, with everything it had to say
            deadline = self._started + config.restart_time
            if not peer.up and now >= deadline:
                continue  # its restart time is over: gone
            waiting.add(ipaddress.ip_address(name).packed)
            if not peer.up:
                deadlines.append(deadline)
        fib.remove_leftovers(keep=lambda route: bool(fib.gateways(route) & waiting))
        if self._leftover_timer is not None:
            self._leftover_timer.cancel()
            self._leftover_timer = None
        if fib.adopted and deadlines:
            self._leftover_timer = loop.call_at(min(deadlines), self._remove_leftovers)

    def _add_peer(self, peer: Peer) -> PeerSession:
        """A session for ``peer``, known to the RIB and the listener (not started)."""
        session = PeerSession(
            peer.address,
            session_settings(self.config, peer),
            transport_settings(peer, self.config.output_buffer),
            self.rib,
            self._jitter,
        )
        self.sessions.append(session)
        limit = None
        if peer.max_prefixes is not None:
            limit = PrefixLimit(
                peer.max_prefixes.limit,
                LimitAction(peer.max_prefixes.action),
                peer.max_prefixes.restart_after,
            )
        self.rib.add_peer(
            session,
            self.policies.export_factory(peer),
            self.policies.import_policy(peer),
            limit=limit,
            rr_client=peer.route_reflector_client,
            import_per_route=self.policies.import_per_route(peer),
            protocol=peer.name or "",
            preference=peer.preference,
        )
        self.listener.add(session)
        self.peer_configs[peer.address] = peer
        self.bfd.attach(peer, session)
        return session

    def _remove_peer(self, session: PeerSession, subcode: CeaseSubcode, text: str) -> None:
        """End ``session`` with a Cease and forget it: the RIB drops its routes at once.

        Its BFD session goes with it only when the peer is removed: a reset peer's new session
        takes the BFD session over (``_add_peer``), which never saw the reset.
        """
        if subcode == CeaseSubcode.PEER_DECONFIGURED:
            self.bfd.detach(session.name)
        session.cease(Notification.shutdown(text, subcode), text, None)
        session.close()
        self.listener.remove(session)
        self.rib.remove_peer(session)
        self.sessions.remove(session)
        self.peer_configs.pop(session.name, None)

    def reload(self, config: DaemonConfig) -> ReloadPlan:
        """Apply a new, validated config: only peers whose settings changed are reset."""
        in_use = {s.name: s.transport_settings.password for s in self.sessions}
        plan = plan_reload(self.config, config, in_use)
        if plan.refused:
            LOG.error("%s", plan.summary())
            return plan
        old = self.config
        self.config = config
        if (plan.reset or plan.filters_only or plan.kernel_refeed) and (
            any(getattr(old, n) != getattr(config, n) for n in POLICY_INPUTS)
            or any(p.import_filter or p.export_filter for p in config.peers)
            or config.kernel.export_filter is not None
        ):
            # BIRD filters are shared by their text within one config (``filter_identity``):
            # a new config may give the same text another meaning (a function changed).
            self.policies = Policies(config, reuse=self.policies)
        else:
            # The same compiled policies: reset peers rejoin the kept peers' update groups.
            self.policies.retarget(config)
        self._refilter(plan, config)
        changed = set(plan.reset) | set(plan.removed)
        for session in [s for s in self.sessions if s.name in changed]:
            if session.name in plan.removed:
                self._remove_peer(session, CeaseSubcode.PEER_DECONFIGURED, "peer removed")
            else:
                self._remove_peer(
                    session, CeaseSubcode.OTHER_CONFIGURATION_CHANGE, "peer configuration changed"
                )
        restarting = self.rib.view.deferring
        for peer in config.peers:
            if peer.address in plan.added or peer.address in plan.reset:
                session = self._add_peer(peer)
                if not restarting:
                    session.fsm.capabilities = capabilities_for(
                        peer, config.local_as_for(peer), False
                    )
                session.start()
        for address in plan.kept + plan.filters_only:
            peer = next(p for p in config.peers if p.address == address)
            self.peer_configs[address] = peer
            self.bfd.attach(peer, self.session(address))  # in place, BGP untouched (5882 3.3)
        if plan.kernel_refeed and self.fib is not None:
            # BIRD re-feeds its kernel protocol: every selected route through the new filter.
            self.fib.policy = kernel_policy(config, self.policies.inputs)
            self.rib.refeed(self.fib)
        if config.static_routes != old.static_routes:
            self.static_routes.apply(config.static_routes)
        if plan.announce_changed:
            self._announce(old.announce, None)
            self._announce(config.announce, ATTRIBUTES.intern(PathAttributes()))
        if plan.log_changed:
            configure_logging(config)
        LOG.info("%s", plan.summary())
        self.status.changed()
        return plan

    def _refilter(self, plan: ReloadPlan, config: DaemonConfig) -> None:
        """New filters for the plan's ``filters_only`` peers, their sessions kept.

        A peer whose import changed is asked for a ROUTE-REFRESH; one whose running session
        cannot take that is reset instead (moved to ``plan.reset``), as BIRD 1.6 does.
        """
        updates = []
        for address in list(plan.filters_only):
            session = self.session(address)
            imports = address in plan.import_changed
            established = session.state == State.ESTABLISHED
            if imports and established and not self.rib.takes_route_refresh(session):
                plan.filters_only.remove(address)
                plan.reset.append(address)
                continue
            peer = next(p for p in config.peers if p.address == address)
            updates.append(
                PolicyUpdate(
                    session,
                    export=(
                        self.policies.export_factory(peer)
                        if address in plan.export_changed
                        else None
                    ),
                    import_policy=self.policies.import_policy(peer) if imports else None,
                    import_per_route=self.policies.import_per_route(peer),
                    refresh=imports,
                )
            )
        if updates:
            self.rib.change_policies(updates)

    def reload_from_file(self) -> None:
        """SIGHUP: read the config file again and apply it (an invalid one changes nothing)."""
        answer = self.api.handle({"command": "reload"})
        if not answer["ok"]:
            LOG.error("%s", answer["error"])

    def _announce(self, prefixes: tuple[str, ...], attrs: PathAttributes | None) -> None:
        """Originate (``attrs``: next hop self, set per update group) or withdraw (None)."""
        by_family: dict[Family, list[int]] = {}
        for text in prefixes:
            by_family.setdefault(prefix_family(text), []).append(prefix_from_text(text))
        for family, values in by_family.items():
            self.rib.originate(family, values, attrs, Origin.STATIC)

    async def start(self) -> None:
        """Listen, start the RIB and every session, originate the configured prefixes."""
        for peer in self.config.peers:
            self._add_peer(peer)
        await self.listener.start()
        LOG.info(
            "Myna listening on port %d (%s), router id %s, AS %d, %d peers",
            self.listener.bound_port,
            ", ".join(self.config.listen.addresses),
            self.config.router_id,
            self.config.local_as,
            len(self.sessions),
        )
        self._started = asyncio.get_running_loop().time()
        await self.bfd.start()
        self.rib.start()
        self.static_routes.apply(self.config.static_routes)
        if self.config.kernel.program or self.config.kernel.learn or self.config.direct:
            await self._start_kernel()
        if self.config.control.socket is not None:
            control = ControlSocket(self.api, self.config.control.socket, self.config.control.group)
            await control.start()
            self.control = control
        for path, ipv6 in ((self.config.control.bird_socket, False),
                           (self.config.control.bird6_socket, True)):  # fmt: skip
            if path is not None:
                # BIRD's protocol is loaded only where calicoctl and the probes will speak it
                from bgpd.bird_socket import BirdSocket  # noqa: PLC0415

                bird = BirdSocket(self.api, path, ipv6)
                await bird.start()
                self.bird_sockets.append(bird)
        if self.config.metrics.enabled:
            # prometheus-client costs ~4.5 MiB of RSS: loaded only when metrics are on
            from bgpd.metrics import MetricsServer  # noqa: PLC0415

            metrics = MetricsServer(self, self.config.metrics.address, self.config.metrics.port)
            await metrics.start()
            self.metrics = metrics
        self._announce(self.config.announce, ATTRIBUTES.intern(PathAttributes()))
        for session in self.sessions:
            session.start()
        self.status.write()
        self.systemd.ready(
            f"listening on port {self.listener.bound_port}, {len(self.sessions)} peers"
        )
        self.systemd.start_watchdog()

    async def _start_kernel(self) -> None:
        """Kernel sync: one notification monitor feeding the learner, resolver and programmer."""
        kernel = self.config.kernel
        events = self.kernel_events = KernelEvents(
            kernel.monitor_buffer, kernel.reconcile_interval, own_protocol=kernel.protocol
        )
        events.after_resync = self.status.changed
        if kernel.program:
            policy = kernel_policy(self.config, self.policies.inputs)
            resolver = None
            if kernel.recursive_next_hops:
                # BIRD's "gateway recursive": next hops resolve through the kernel's routes, in
                # the RIB (eligibility and interior cost) and in the FIB (the gateways to use).
                resolver = NextHopResolver(kernel.table, kernel.protocol)
                events.watchers.append(resolver)  # before the programmer: it reads the resolver
            self.writer = RouteWriter()
            fib = FibProgrammer(
                self.writer,
                FibSettings(
                    kernel.table,
                    kernel.protocol,
                    kernel.metric,
                    kernel.device_routes,
                    frozenset(_ADDRESS_FAMILY[_FAMILIES[name]] for name in self.config.families),
                ),
                policy,
                ifindex=events.ifindex,
                resolver=resolver,
            )
            fib.request_resync = events.schedule_resync
            if resolver is not None:
                self.rib.set_resolver(resolver.cost)

                def kernel_routes_changed(retry: Callable[[], None] = fib.retry) -> None:
                    retry()
                    self.rib.next_hops_changed()

                resolver.on_change = kernel_routes_changed
            fib.adopt(await dump_routes(table=kernel.table, protocol=kernel.protocol))
            # A reload while the dump ran found no FIB to re-feed: take its policy now.
            fib.policy = kernel_policy(self.config, self.policies.inputs)
            self.fib = fib
            events.watchers.append(fib)
            self.rib.add_channel(fib)
            self.rib.compact_hooks.append(fib.compact)
            if not self.rib.view.deferring:
                # No selection deferral to wait for: give the peers a minute to announce again.
                asyncio.get_running_loop().call_later(60, fib.remove_leftovers)
        families = frozenset(_FAMILIES[name] for name in self.config.families)
        if kernel.learn:
            learn = kernel.learn_filter
            self.learner = KernelLearner(
                self.rib.originate,
                LearnFilter(
                    protocols=frozenset(learn.protocols),
                    types=learn.type_numbers(),
                    table=kernel.table,
                    interfaces=learn.interfaces,
                    prefixes=learn.prefixes,
                    own_protocol=kernel.protocol,
                    families=frozenset(_ADDRESS_FAMILY[f] for f in families),
                ),
                link_name=events.link_name,
                link_up=events.link_up,
                describe=None
                if kernel.import_filter is None
                else kernel_import(kernel.import_filter),
                protocol=kernel.name,
                preference=kernel.preference,
            )
            events.watchers.append(self.learner)
        direct = self.config.direct
        if direct is not None:
            events.watchers.append(
                ConnectedRoutes(
                    self.rib.originate,
                    direct.interfaces,
                    link_name=events.link_name,
                    link_up=events.link_up,
                    families=families,
                    protocol=direct.protocol,
                    preference=direct.preference,
                )
            )
        await events.start()

    async def close(self) -> None:
        """Cease every session, stop listening and the RIB.

        With kernel programming on, our routes stay in the kernel: the stop is a restart as far
        as forwarding goes, so graceful-restart sessions close without a NOTIFICATION.
        """
        self.systemd.stopping()
        if self.fib is not None:
            # Persist (BIRD's "persist"): the sessions ending must not empty the kernel.
            self.rib.remove_channel(self.fib)
        # BFD first: its AdminDown tells each peer this is no path failure (RFC 5882 3.2), so
        # a peer running "bfd on" does not drop what graceful restart would keep. The engine
        # goes on telling it for a Detection Time (up to 3 s) while the rest stops.
        self.bfd.stop()
        # Graceful-restart peers keep our routes, stale, instead of dropping them (a Cease).
        graceful = self.fib is not None
        for session in self.sessions:
            session.close(graceful=graceful)
        await asyncio.sleep(0)  # let the Cease NOTIFICATIONs reach the sockets
        await self.listener.close()
        if self.control is not None:
            await self.control.close()
        for bird in self.bird_sockets:
            await bird.close()
        if self.metrics is not None:
            await self.metrics.close()
        await self.rib.close()
        if self._leftover_timer is not None:
            self._leftover_timer.cancel()
        if self.kernel_events is not None:
            self.kernel_events.close()
        if self.fib is not None:
            self.fib.close()
        if self.writer is not None:
            self.writer.close()  # our routes stay in the kernel (BIRD's "persist")
        await self.bfd.close()  # the engine's last AdminDown packets
        self.status.write()
        LOG.info("Myna stopped")


async def serve(
    config: DaemonConfig,
    stop: asyncio.Event,
    config_path: Path | None = None,
    setup: Callable[[Daemon], None] | None = None,
) -> None:
    """Run the daemon until ``stop`` is set; SIGHUP reloads ``config_path``.

    ``setup`` sees the daemon before it starts (the BIRD front-end sets its file loader).
    """
    daemon = Daemon(config, config_path)
    if setup is not None:
        setup(daemon)
    await daemon.start()
    loop = asyncio.get_running_loop()
    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, daemon.reload_from_file)
    try:
        await stop.wait()
    finally:
        if config_path is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        await daemon.close()


def run(
    config: DaemonConfig,
    config_path: Path | None = None,
    setup: Callable[[Daemon], None] | None = None,
) -> int:
    """The ``myna run`` entry (and ``bird``'s): uvloop, signals, serve."""
    configure_logging(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, config_path, setup)

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())
    return 0
