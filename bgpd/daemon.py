"""The first ``myna run``: sessions up on a uvloop event loop, routes received counted.

Data flow: ``run(config)`` builds one ``PeerSession`` per configured peer and one ``Listener``
for them all, starts them, and waits for SIGTERM/SIGINT, on which every session is ceased with
a shutdown text. Until the RIB exists, ``ReceivedRoutes`` is the sessions' sink: it keeps the
prefixes each peer announced (a proto-Adj-RIB-In, for logs, status and tests), announces the
configured ``announce`` prefixes with next hop self, and writes a JSON status file on every
state change when one is configured (the control socket replaces it in the daemon issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal

import uvloop

from bgpd.config import DaemonConfig, Peer
from speaker.capabilities import (
    Capability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.listener import Listener
from speaker.nlri import prefix_family, prefix_from_text, prefix_text
from speaker.path_attributes import PathAttributes
from speaker.session_events import (
    RouteRefreshReceived,
    SessionDown,
    SessionSettings,
    SessionUp,
    StateChange,
)
from speaker.transport import PeerSession, TransportSettings
from speaker.update_message import Update, encode_announcements, encode_end_of_rib
from speaker.wire_codes import Family, GracefulRestartFamilyFlag

LOG = logging.getLogger("myna.daemon")
_STATUS_DELAY = 0.05  # seconds
FORWARDING_PRESERVED = int(GracefulRestartFamilyFlag.FORWARDING_STATE)


def _router_id_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def capabilities_for(peer: Peer, local_as: int) -> tuple[Capability, ...]:
    """What we offer a peer: its address family, route refresh, 4-octet AS, GR."""
    family = Family.IPV6_UNICAST if peer.ipv6 else Family.IPV4_UNICAST
    caps: list[Capability] = [
        MultiprotocolCapability(family.afi, family.safi),
        RouteRefreshCapability(),
        FourOctetAsCapability(local_as),
    ]
    if peer.graceful_restart:
        # Forwarding state is preserved across our restarts (the kernel keeps the routes);
        # the Restart State flag arrives with the RIB issue's restart handling.
        caps.append(
            GracefulRestartCapability(
                0, peer.restart_time, ((family.afi, family.safi, FORWARDING_PRESERVED),)
            )
        )
    return tuple(caps)


def session_settings(config: DaemonConfig, peer: Peer) -> SessionSettings:
    """The FSM's settings for one peer from the config."""
    timers = peer.timers or config.timers
    return SessionSettings(
        local_as=config.local_as,
        router_id=_router_id_int(config.router_id),
        peer_as=peer.asn,
        capabilities=capabilities_for(peer, config.local_as),
        passive=config.is_passive(peer),
        hold_time=timers.hold_time,
        keepalive_time=timers.keepalive_time,
        connect_delay=timers.connect_delay,
        connect_retry=timers.connect_retry,
        error_wait_min=timers.error_wait[0],
        error_wait_max=timers.error_wait[1],
        send_hold_time=timers.send_hold_time,
    )


def transport_settings(peer: Peer) -> TransportSettings:
    """How to reach one peer from the config."""
    return TransportSettings(
        address=peer.address,
        port=peer.port,
        source_address=peer.source_address,
        password=peer.secret(),
        ttl_security=peer.ttl_security,
        ttl=peer.multihop,
    )


class ReceivedRoutes:
    """The sessions' sink until the RIB exists (see the module docstring)."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.sessions: list[PeerSession] = []
        self.received: dict[str, dict[Family, set[int]]] = {}
        self.announce: dict[Family, list[int]] = {}
        self._status_pending: asyncio.TimerHandle | None = None
        for text in config.announce:
            self.announce.setdefault(prefix_family(text), []).append(prefix_from_text(text))

    # -- SessionSink ---------------------------------------------------------------------------

    def session_up(self, session: PeerSession, up: SessionUp) -> None:
        """Log it, and send our prefixes and an End-of-RIB for each family."""
        families = sorted(up.negotiated.families)
        session.log.info(
            "session up: AS %d, hold %d s, families %s",
            up.received_open.real_asn,
            session.fsm.established.hold_time if session.fsm.established else 0,
            ", ".join(f.name.lower() for f in families),
        )
        self.received[session.name] = {}
        local = session.local_address()
        out: list[bytes] = []
        for family in families:
            prefixes = self.announce.get(family, [])
            if prefixes and local is not None:
                attrs = PathAttributes(
                    as_path=() if up.negotiated.ibgp else ((2, (self.config.local_as,)),),
                    next_hop=ipaddress.ip_address(local).packed,
                    local_pref=100 if up.negotiated.ibgp else None,
                )
                out += encode_announcements(family, attrs, prefixes, up.negotiated)
            out.append(encode_end_of_rib(family))
        session.send(b"".join(out))
        self.write_status()

    def session_down(self, session: PeerSession, down: SessionDown) -> None:
        """Forget what the peer announced (graceful restart keeps it once the RIB exists)."""
        routes = sum(len(p) for p in self.received.pop(session.name, {}).values())
        session.log.warning(
            "session down (%s): %d routes dropped%s",
            down.reason,
            routes,
            ", graceful restart possible" if down.graceful else "",
        )
        self.write_status()

    def updates(self, session: PeerSession, updates: tuple[Update, ...]) -> bool:
        """Apply announcements and withdrawals; log RFC 7606 outcomes."""
        table = self.received.setdefault(session.name, {})
        for update in updates:
            for gone in update.unreach:
                table.setdefault(gone.family, set()).difference_update(gone.prefixes)
            for reach in update.reach:
                table.setdefault(reach.family, set()).update(reach.prefixes)
            for problem in update.problems:
                session.log.warning("malformed UPDATE from the peer: %s", problem.describe())
            if update.end_of_rib is not None:
                session.log.info(
                    "End-of-RIB %s: %d routes",
                    update.end_of_rib.name.lower(),
                    len(table.get(update.end_of_rib, ())),
                )
        self.status_changed()
        return True

    def route_refresh(self, session: PeerSession, refresh: RouteRefreshReceived) -> None:
        """Nothing to resend beyond ``announce`` yet; log it."""
        session.log.info("route refresh requested: %s", refresh.refresh)

    def state_changed(self, session: PeerSession, change: StateChange) -> None:
        """Keep the status file current."""
        self.write_status()

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """What the status file holds."""
        return {
            "router_id": self.config.router_id,
            "pid": os.getpid(),
            "peers": {
                s.name: {
                    "state": s.state.label,
                    "last_error": s.fsm.last_error,
                    "connect_attempts": s.fsm.connect_attempts,
                    "routes": {
                        f.name.lower(): sorted(prefix_text(p, f) for p in prefixes)
                        for f, prefixes in self.received.get(s.name, {}).items()
                    },
                }
                for s in self.sessions
            },
        }

    def status_changed(self) -> None:
        """Write the status file soon: one write for a burst of UPDATEs, not one per chunk."""
        if self.config.status_file is None or self._status_pending is not None:
            return
        loop = asyncio.get_running_loop()
        self._status_pending = loop.call_later(_STATUS_DELAY, self.write_status)

    def write_status(self) -> None:
        """Write the status file atomically (readers never see half a file)."""
        if self._status_pending is not None:
            self._status_pending.cancel()
            self._status_pending = None
        path = self.config.status_file
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.status(), indent=1))
        tmp.replace(path)


class Daemon:
    """The running daemon: the listener, one session per peer, and their sink."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.sink = ReceivedRoutes(config)
        self.listener = Listener(config.listen.addresses, config.listen.port)

    def session(self, address: str) -> PeerSession:
        """The session of the peer at ``address``."""
        return next(s for s in self.sink.sessions if s.name == address)

    async def start(self) -> None:
        """Listen, then start every session."""
        for peer in self.config.peers:
            session = PeerSession(
                peer.address,
                session_settings(self.config, peer),
                transport_settings(peer),
                self.sink,
            )
            self.sink.sessions.append(session)
            self.listener.add(session)
        await self.listener.start()
        LOG.info(
            "Myna listening on port %d (%s), router id %s, AS %d, %d peers",
            self.listener.bound_port,
            ", ".join(self.config.listen.addresses),
            self.config.router_id,
            self.config.local_as,
            len(self.sink.sessions),
        )
        for session in self.sink.sessions:
            session.start()
        self.sink.write_status()

    async def close(self) -> None:
        """Cease every session with a shutdown text and stop listening."""
        for session in self.sink.sessions:
            session.close()
        await asyncio.sleep(0)  # let the Cease NOTIFICATIONs reach the sockets
        await self.listener.close()
        self.sink.write_status()
        LOG.info("Myna stopped")


async def serve(config: DaemonConfig, stop: asyncio.Event) -> None:
    """Run the daemon until ``stop`` is set."""
    daemon = Daemon(config)
    await daemon.start()
    try:
        await stop.wait()
    finally:
        await daemon.close()


def run(config: DaemonConfig) -> int:
    """The ``myna run`` entry: uvloop, signals, serve."""
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())
    return 0
