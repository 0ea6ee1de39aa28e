"""The daemon's BFD wiring: one ``BfdService`` per daemon, one BFD session per BFD-enabled peer.

Data flow: ``Daemon`` calls ``attach(peer, session)`` for every peer it runs (at start, when a
peer is added or reset, and for every kept peer on reload) and ``detach`` when one is removed.
``attach`` makes the engine's session match the config (``bgpd.bfd_config``): created when BFD
is enabled, changed in place when only its timers, passivity or authentication changed (RFC
5880 6.8.3, as BIRD reconfigures sessions), replaced when its path changed, removed (AdminDown
to the peer) when disabled. The engine is started on first need (a daemon with no BFD peer
runs none) and again if it dies. Each session's state changes, and the changes of what it
knows of its peer, come back on a ``_Listener`` and become the BGP session's events
(``PeerSession.bfd_down`` / ``bfd_up``, the FSM's BFD_DOWN and BFD_UP rows):

- Up -> Down for a reason that is not AdminDown (``BfdStateChange.failure``, RFC 5882 3.2 and
  4.2): ``bfd_down``; the FSM ends the session and holds it down.
- Up, or AdminDown on either side (4.1: "If the session state on either the local or remote
  system (if known) is AdminDown ... the establishment of a control protocol adjacency MUST
  be allowed"; the peer's AdminDown arrives as a ``BfdRemoteChange`` when our session stays
  Down), or no session at all any more (removed, refused by the engine, engine gone):
  ``bfd_up``, which releases a hold.
- A hold that has lasted ``bfd.hold_limit`` with nothing heard from the peer's BFD in that
  time (``bgpd.bfd_hold``: 4.1's "does not support BFD"): ``bfd_up``, with a warning.

A single-hop session whose ``bfd.interfaces`` name per-interface settings (BIRD's
``interface`` blocks) takes those of the interface whose connected network holds the peer
(``connected_interface``), waiting while there is none. The interface only chooses settings:
the session is not bound to it. Myna's config has no link-local peers (which would need one),
TTL 255 keeps its packets to the link (RFC 5881 5), and once the peer echoes our
discriminator nothing else demultiplexes them (RFC 5881 6), so binding it would buy nothing
but a tie-break for Your Discriminator 0 between two links to one address.

The local address is ``bfd.local`` (BIRD's ``neighbor ... local``) or the peer's
``source_address`` when configured, else the one its BGP session uses: the Established
connection's, or before that the kernel's choice for the peer (a UDP ``connect``, which sends
nothing), which is what an unbound TCP connect gets too; a session that comes up on another
address gets a new BFD session. ``refresh`` reads every session's status from the engine, for
``myna show bfd``, the BIRD socket and the metrics, which read ``rows`` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bfd import ipc
from bfd.wire_codes import Diagnostic, HopMode, State
from bgpd.bfd_config import BfdSecretError, microseconds
from bgpd.bfd_hold import HoldLimit
from kernel_sync.netlink_codes import NETLINK_ROUTE, AddressFamily, MessageType
from kernel_sync.netlink_messages import Ack, Address, Done, NetlinkError, encode_dump_request
from kernel_sync.route_messages import parse_messages
from speaker.session_events import State as BgpState
from speaker.session_events import StateChange
from speaker.transport import canonical

if TYPE_CHECKING:
    # bfd.service (the engine, its packets and sockets) is imported when a peer first asks
    # for BFD: a daemon without BFD does not pay its memory (bench fan-out: ~0.9 MiB).
    from bfd.service import BfdRemoteChange, BfdService, BfdStateChange
    from bgpd.bfd_config import BfdModel
    from bgpd.config import Peer
    from speaker.transport import PeerSession

LOG = logging.getLogger("myna.bfd")
RETRY_AFTER = 5.0  # s: a session the engine refused (an address not there yet), no route yet
ENGINE_RESTART_AFTER = 5.0  # s: after the engine died, before starting another
STATUS_TIMEOUT = 2.0  # s: a status request the engine does not answer in time is skipped


def route_source(address: str) -> str | None:
    """The source address the kernel would use towards ``address`` (None: no route)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, HopMode.MULTIHOP.port))  # a route lookup; nothing is sent
            return canonical(probe.getsockname()[0])
        except OSError:
            return None


def connected_interface(address: str) -> str | None:
    """The interface whose connected network holds ``address`` (None: none does).

    BIRD's neighbor lookup for a single-hop session (``neigh_find2``): the interface with an
    address whose prefix covers the peer, the longest such prefix when several do. One
    RTM_GETADDR dump over a blocking netlink socket (a few interfaces: microseconds); a dump
    that fails counts as no interface (the caller tries again later).
    """
    peer = ipaddress.ip_address(address)
    family = AddressFamily.INET6 if peer.version == 6 else AddressFamily.INET
    try:
        addresses = _interface_addresses(family)
    except (OSError, NetlinkError) as error:
        LOG.warning("cannot read the interface addresses: %s", error)
        return None
    best: Address | None = None
    for found in addresses:
        network = ipaddress.ip_network((found.address, found.prefix_len), strict=False)
        if peer in network and (best is None or found.prefix_len > best.prefix_len):
            best = found
    if best is None:
        return None
    try:
        return socket.if_indextoname(best.ifindex)
    except OSError:  # gone since the dump
        return None


def _interface_addresses(family: int) -> list[Address]:
    found: list[Address] = []
    kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC
    with socket.socket(socket.AF_NETLINK, kind, NETLINK_ROUTE) as sock:
        sock.settimeout(1.0)
        sock.bind((0, 0))
        sock.send(encode_dump_request(MessageType.GETADDR, 1, family))
        while True:
            for _, body in parse_messages(sock.recv(1 << 16)):
                if isinstance(body, Address):
                    found.append(body)
                elif isinstance(body, Done):
                    return found
                elif isinstance(body, Ack) and body.error:
                    raise OSError(-body.error, "RTM_GETADDR dump refused")


def diagnostic_text(value: int | None) -> str:
    """RFC 5880 4.1's name for a diagnostic: ``control detection time expired``."""
    if value is None:
        return ""
    named = Diagnostic.of(value)
    return named.name.lower().replace("_", " ") if isinstance(named, Diagnostic) else str(value)


@dataclass
class BfdPeer:
    """One peer's BFD session as the daemon sees it."""

    name: str
    peer: Peer
    session: PeerSession
    since: float  # wall clock of the last state change (or of the session's creation)
    generation: int = 0  # bumped when the session is replaced: its key changes
    config: ipc.PeerConfig | None = None  # what the engine runs now (None: nothing)
    settings: BfdModel | None = None  # its settings (those of its interface: for_interface)
    state: State | None = None
    last_change: BfdStateChange | None = None
    failed: bool = False  # fell from Up, not administratively, and not Up since: BGP held
    error: str = ""  # why the engine runs no session for it
    retry: asyncio.TimerHandle | None = field(default=None, repr=False)
    remote: BfdRemoteChange | None = None  # what the session last told of its peer
    hold: HoldLimit = field(default_factory=HoldLimit)  # when silence ends a hold
    hold_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The engine's name for the current session."""
        return self.name if self.generation == 0 else f"{self.name}#{self.generation}"


class _Listener:
    """The ``BfdListener`` of one engine session: the wiring and which session it was."""

    __slots__ = ("key", "name", "owner")

    def __init__(self, owner: BfdPeers, name: str, key: str) -> None:
        self.owner = owner
        self.name = name
        self.key = key

    def bfd_state_changed(self, change: BfdStateChange) -> None:
        self.owner.changed(self.name, self.key, change)

    def bfd_remote_changed(self, change: BfdRemoteChange) -> None:
        self.owner.remote_changed(self.name, self.key, change)

    def bfd_session_failed(self, key: str, reason: str) -> None:
        self.owner.failed(self.name, key, reason)


class BfdPeers:
    """Every BFD-enabled peer's session, and the engine they run in (module docstring)."""

    def __init__(self) -> None:
        self.service: BfdService | None = None
        self.peers: dict[str, BfdPeer] = {}
        self.rows: list[dict[str, Any]] = []  # the last status, one row per peer
        self.engine_dropped: dict[str, int] = {}  # drops before a packet reached a session
        self.engine_packets_in = 0
        self._starting: asyncio.Task[None] | None = None
        self._restart: asyncio.TimerHandle | None = None
        self._closed = False

    # -- what the daemon calls ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine if some peer enables BFD, and make their sessions."""
        if self.peers:
            self._ensure_service()
            if self._starting is not None:
                await self._starting

    def attach(self, peer: Peer, session: PeerSession) -> None:
        """Make ``peer``'s BFD session match its config, advising ``session``."""
        name = session.name
        entry = self.peers.get(name)
        if peer.bfd is None or not peer.bfd.enabled:
            if entry is not None:
                self._remove(entry, "BFD disabled")
            return
        if session.fsm.settings.bfd_graceful != peer.bfd.graceful:
            session.fsm.settings = dataclasses.replace(
                session.fsm.settings, bfd_graceful=peer.bfd.graceful
            )
        if entry is None:
            entry = BfdPeer(name, peer, session, since=time.time())
            self.peers[name] = entry
        elif entry.session is not session:
            entry.session = session  # the BGP session was reset; BFD carries on
            if entry.failed:
                session.bfd_down()  # the path is still down: the new session starts held
        entry.peer = peer
        entry.hold.limit = None if peer.bfd.hold_limit is None else peer.bfd.hold_limit / 1000
        if self._observe not in session.observers:
            session.observers.append(self._observe)
        self._sync(entry)
        self._arm_hold(entry)

    def detach(self, name: str) -> None:
        """The peer is gone: its BFD session too (AdminDown to the peer first)."""
        entry = self.peers.get(name)
        if entry is not None:
            self._remove(entry, "peer removed")

    async def refresh(self) -> None:
        """Read every session's status from the engine into ``rows``."""
        service = self.service
        sessions: dict[str, dict[str, Any]] = {}
        if service is not None and service.running:
            from bfd.service import BfdError  # noqa: PLC0415 - loaded with the engine

            try:
                status = await asyncio.wait_for(service.status(), STATUS_TIMEOUT)
            except (BfdError, TimeoutError) as error:
                LOG.warning("BFD status not read: %s (the engine is busy or gone)", error)
                return
            sessions = status.sessions
            self.engine_dropped = dict(status.dropped)
            self.engine_packets_in = status.packets_in
        self.rows = [self._row(entry, sessions) for _, entry in sorted(self.peers.items())]

    def stop(self) -> None:
        """Stop the engine: every session tells its peer AdminDown (RFC 5882 3.2) at once.

        The engine goes on telling them for a while (``bfd.engine.STOP_LINGER``); ``close``
        waits for it, so the daemon stops its BGP sessions meanwhile.
        """
        self._closed = True
        for entry in self.peers.values():
            self._cancel_retry(entry)
            self._cancel_hold(entry)
        if self._restart is not None:
            self._restart.cancel()
        if self.service is not None:
            self.service.stop()

    async def close(self) -> None:
        """``stop``, and wait until the engine has exited."""
        self.stop()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self.service is not None:
            await self.service.close()

    # -- the engine's side -------------------------------------------------------------------------

    def changed(self, name: str, key: str, change: BfdStateChange) -> None:
        """A session's state change, from the engine."""
        entry = self.peers.get(name)
        if entry is None or entry.key != key:
            return  # the last words of a session since replaced or removed
        entry.state = change.new
        entry.since = time.time() - (time.monotonic() - change.at)
        entry.last_change = change
        why = diagnostic_text(int(change.diagnostic))
        log = entry.session.log
        if change.failure:
            entry.failed = True
            entry.hold.hold(change.at)
            log.warning("BFD session down (%s): the path failed, ending the BGP session", why)
            entry.session.bfd_down()
            self._arm_hold(entry)
            return
        log.info("BFD %s -> %s%s", change.old.label, change.new.label, f" ({why})" if why else "")
        if change.new == State.UP:
            release = "BFD session Up"
        elif State.ADMIN_DOWN in (change.new, change.remote_state):
            release = "BFD administratively down"  # RFC 5882 4.1: the adjacency is allowed
        else:
            return
        self._release(entry, release, always=True)

    def remote_changed(self, name: str, key: str, change: BfdRemoteChange) -> None:
        """What a session knows of its peer changed, from the engine (whatever our state)."""
        entry = self.peers.get(name)
        if entry is None or entry.key != key:
            return
        entry.remote = change
        entry.hold.remote(change.heard, change.at)
        if entry.failed and change.heard and change.state == State.ADMIN_DOWN:
            # RFC 5882 4.1: "If the session state on either the local or remote system (if
            # known) is AdminDown, BFD has been administratively disabled, and the
            # establishment of a control protocol adjacency MUST be allowed." Our session
            # stays Down on it (RFC 5880 6.8.6), so no state change says so.
            entry.session.log.info("BFD administratively down at the peer: BGP no longer held")
            self._release(entry, "BFD administratively down at the peer")
        self._arm_hold(entry)

    def hold_due(self, name: str, now: float) -> None:
        """The hold limit of ``name``'s BGP session may have run out at ``now`` (monotonic)."""
        entry = self.peers.get(name)
        if entry is None:
            return
        entry.hold_timer = None
        if not (entry.failed and entry.hold.expired(now)):
            self._arm_hold(entry)
            return
        limit = entry.hold.limit
        mode = entry.config.mode if entry.config is not None else None
        port = mode.port if mode is not None else "3784/4784"
        entry.session.log.warning(
            "BFD: no packet from the peer for %g s while the BGP session was held after a BFD "
            "failure; taking the peer to run no BFD any more (its side: BFD removed from its "
            "configuration without AdminDown; else UDP %s is blocked on the path) and letting "
            "BGP up without it (RFC 5882 4.1); a BFD session that comes Up again advises it",
            limit,
            port,
        )
        self._release(entry, f"no BFD from the peer for {limit:g} s (it runs no BFD)")

    def failed(self, name: str, key: str, reason: str) -> None:
        """The engine runs no session for ``key`` (it refused it, or it exited)."""
        entry = self.peers.get(name)
        if entry is None or entry.key != key:
            return
        entry.config = None
        entry.state = None
        entry.remote = None
        self._error(entry, reason)
        # BFD tells nothing now: nothing may hold the session down (RFC 5882 4.1).
        self._release(entry, f"no BFD session ({reason})")
        if self.service is not None and not self.service.running:
            self._schedule_engine_restart()
        elif reason.startswith("OSError"):
            self._retry(entry)  # e.g. the local address is not configured yet

    # -- making sessions match the config ---------------------------------------------------------

    def _sync(self, entry: BfdPeer) -> None:
        self._cancel_retry(entry)
        service = self.service
        if self._closed:
            return
        if service is None or not service.running:
            self._ensure_service()  # which syncs every peer once the engine serves
            return
        try:
            desired = self._engine_config(entry)
        except (BfdSecretError, ValueError) as error:
            self._error(entry, f"{error} (the config's fault)")
            self._drop_engine_session(entry)
            return
        if isinstance(desired, str):
            self._error(entry, desired)
            self._retry(entry)
            return
        current = entry.config
        if current is None:
            self._add(entry, desired)
        elif dataclasses.replace(desired, key=current.key) == current:
            return
        elif current.same_path(desired):
            config = dataclasses.replace(desired, key=current.key)
            service.reconfigure_session(config)
            entry.config = config
            entry.session.log.info("BFD session reconfigured in place")
        else:
            entry.session.log.info(
                "BFD session replaced: its path changed (local %s, %s)", desired.local, desired.mode
            )
            service.remove_session(current.key)
            entry.generation += 1
            self._add(entry, dataclasses.replace(desired, key=entry.key))

    def _engine_config(self, entry: BfdPeer) -> ipc.PeerConfig | str:
        """The session the config asks for, or why there is none yet (then: retry)."""
        bfd = entry.peer.bfd
        assert bfd is not None
        entry.settings = None
        multihop = entry.peer.bfd_multihop()
        if bfd.interfaces and not multihop:
            interface = connected_interface(entry.name)
            if interface is None:
                return "the peer is on no connected network: its interface chooses the settings"
            bfd = bfd.for_interface(interface)
        entry.settings = bfd
        auth = bfd.auth_settings(bfd.secret(f"peer {entry.name}"))
        local = (
            bfd.local
            or entry.peer.source_address
            or entry.session.local_address()
            or route_source(entry.name)
        )
        if local is None and multihop:
            # RFC 5883 4: a multihop session is the address pair
            return "no route to the peer: waiting to learn the local address"
        return ipc.PeerConfig(
            key=entry.key,
            peer=entry.name,
            local=local,
            mode=HopMode.MULTIHOP if multihop else HopMode.SINGLE_HOP,
            desired_min_tx_us=microseconds(bfd.min_tx),
            required_min_rx_us=microseconds(bfd.min_rx),
            detect_mult=bfd.multiplier,
            passive=bfd.passive and multihop,  # RFC 5881 3 (the config has seen to it too)
            auth=auth,
            idle_tx_us=microseconds(bfd.idle_tx),
        )

    def _add(self, entry: BfdPeer, config: ipc.PeerConfig) -> None:
        assert self.service is not None
        self.service.add_session(config, _Listener(self, entry.name, config.key))
        entry.config = config
        entry.state = State.DOWN
        entry.since = time.time()
        entry.error = ""
        # A new session has heard nothing of the peer, and reports only changes from there: a
        # hold the old one's "heard" kept unbounded is bounded again (bgpd.bfd_hold).
        entry.hold.remote(False, time.monotonic())  # the engine's clock too
        self._arm_hold(entry)
        entry.session.log.info(
            "BFD session %s from %s, %s ms x %d",
            config.mode,
            config.local or "any address",
            config.desired_min_tx_us / 1000,
            config.detect_mult,
        )

    def _drop_engine_session(self, entry: BfdPeer) -> None:
        if entry.config is not None and self.service is not None and self.service.running:
            self.service.remove_session(entry.config.key)
        entry.config = None
        entry.state = None
        entry.remote = None
        self._release(entry, "no BFD session")

    def _remove(self, entry: BfdPeer, why: str) -> None:
        self._cancel_retry(entry)
        if entry.config is not None and self.service is not None and self.service.running:
            # AdminDown for a Detection Time: the peer takes no action on it (RFC 5882 3.2).
            self.service.remove_session(entry.config.key)
        entry.config = None
        self._release(entry, why)
        with contextlib.suppress(ValueError):
            entry.session.observers.remove(self._observe)
        del self.peers[entry.name]
        entry.session.log.info("BFD session removed: %s", why)

    def _observe(self, session: PeerSession, change: StateChange) -> None:
        """A BGP session came up: its BFD session moves if it runs from another address."""
        entry = self.peers.get(session.name)
        if change.new != BgpState.ESTABLISHED or entry is None or entry.session is not session:
            return
        local = session.local_address()
        config = entry.config
        if (
            entry.peer.source_address is None
            and config is not None
            and local not in (None, config.local)
        ):
            self._sync(entry)

    # -- the engine itself -------------------------------------------------------------------------

    def _ensure_service(self) -> None:
        if self._closed or (self._starting is not None and not self._starting.done()):
            return
        self._starting = asyncio.get_running_loop().create_task(self._start_service())

    async def _start_service(self) -> None:
        if self.service is not None:
            await self.service.close()  # an engine that died: release its socket
        from bfd.service import BfdError, BfdService  # noqa: PLC0415 - the first BFD peer's

        service = BfdService()
        try:
            await service.start()
        except (BfdError, OSError) as error:
            LOG.error(
                "cannot start the BFD engine: %s (again in %g s)", error, ENGINE_RESTART_AFTER
            )
            self._schedule_engine_restart()
            return
        self.service = service
        LOG.info("BFD engine running (pid %s)", service.engine_pid)
        for entry in list(self.peers.values()):
            entry.config = None
            self._sync(entry)

    def _schedule_engine_restart(self) -> None:
        if self._closed or self._restart is not None:
            return

        def restart() -> None:
            self._restart = None
            self._ensure_service()

        self._restart = asyncio.get_running_loop().call_later(ENGINE_RESTART_AFTER, restart)

    # -- holds -------------------------------------------------------------------------------------

    def _release(self, entry: BfdPeer, why: str, always: bool = False) -> None:
        """BFD no longer holds ``entry``'s BGP session: tell it if it was held (or ``always``)."""
        entry.hold.release()
        self._cancel_hold(entry)
        if entry.failed or always:
            entry.failed = False
            entry.session.bfd_up(why)

    def _arm_hold(self, entry: BfdPeer) -> None:
        """A timer at the hold limit's deadline (``bgpd.bfd_hold``), if there is one now."""
        self._cancel_hold(entry)
        deadline = entry.hold.deadline
        if deadline is None or not entry.failed or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven by hand, with no loop (a test): it calls hold_due itself
        delay = max(0.0, deadline - time.monotonic())  # the engine's clock too
        entry.hold_timer = loop.call_later(
            delay, lambda: self.hold_due(entry.name, time.monotonic())
        )

    @staticmethod
    def _cancel_hold(entry: BfdPeer) -> None:
        if entry.hold_timer is not None:
            entry.hold_timer.cancel()
            entry.hold_timer = None

    # -- bookkeeping -------------------------------------------------------------------------------

    def _retry(self, entry: BfdPeer) -> None:
        self._cancel_retry(entry)
        if not self._closed:
            entry.retry = asyncio.get_running_loop().call_later(RETRY_AFTER, self._sync, entry)

    @staticmethod
    def _cancel_retry(entry: BfdPeer) -> None:
        if entry.retry is not None:
            entry.retry.cancel()
            entry.retry = None

    @staticmethod
    def _error(entry: BfdPeer, error: str) -> None:
        if error != entry.error:  # once per distinct problem, not at every retry
            entry.session.log.error("no BFD session: %s", error)
        entry.error = error

    def _row(self, entry: BfdPeer, sessions: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """One peer's line for ``myna show bfd``, the BIRD socket and the metrics."""
        bfd = entry.settings or entry.peer.bfd
        assert bfd is not None
        config = entry.config
        status = sessions.get(config.key) if config is not None else None
        row: dict[str, Any] = {
            "peer": entry.name,
            "mode": config.mode.value if config is not None else None,
            "local": config.local if config is not None else None,
            "interface": config.interface if config is not None else None,
            "auth": bfd.auth,
            "graceful": bfd.graceful,
            "bgp_held": entry.session.fsm.bfd_held,
            "since": entry.since,
            "error": entry.error,
        }
        if status is None:
            row["state"] = "none" if config is None else (entry.state or State.DOWN).label
            return row
        last = status["last_down_diagnostic"]
        row.update(
            state=State(status["state"]).label,
            remote_state=State(status["remote_state"]).label,
            remote_heard=status["remote_heard"],
            local_discriminator=status["local_discriminator"],
            remote_discriminator=status["remote_discriminator"],
            tx_interval_ms=status["tx_interval_us"] / 1000,
            rx_interval_ms=status["rx_interval_us"] / 1000,
            detection_time_ms=status["detection_time_us"] / 1000,
            last_diagnostic=diagnostic_text(last),
            local_diagnostic=diagnostic_text(status["local_diagnostic"]),
            remote_diagnostic=diagnostic_text(status["remote_diagnostic"]),
            packets_in=status["packets_in"],
            packets_out=status["packets_out"],
            state_changes=status["state_changes"],
            auth_failures=status["auth_failures"],
            longest_silence_ms=status["longest_silence_us"] / 1000,
            dropped=status["dropped"],
        )
        return row
