"""One listening socket per address family serving every peer, matched by source address.

Data flow: the kernel accepts a connection (TCP-MD5 keys are set on the listener per peer, so
a wrong key never completes the handshake); ``_Incoming.connection_made`` looks the source
address up among the configured peers and hands the connection to that ``PeerSession`` by
swapping in a ``BgpConnection``. A connection from an address that is no peer is refused with
Cease/Connection Rejected (6/5) and logged once per address, not per attempt (BIRD logs every
attempt, Calico issue #12938).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import cast

from speaker import socket_options
from speaker.control_messages import Notification, encode_notification
from speaker.transport import BgpConnection, PeerSession, canonical
from speaker.wire_codes import CeaseSubcode, ErrorCode

LOG = logging.getLogger("myna.listener")
_REJECTED = encode_notification(Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_REJECTED))


class _Incoming(asyncio.Protocol):
    """Lives only until the peer is known, then gives the transport to a BgpConnection."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Match the connection to a peer or refuse it."""
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peername = transport.get_extra_info("peername")
        address = canonical(peername[0]) if peername else "?"
        session = self.listener.sessions.get(address)
        if session is None:
            self.listener.refuse(address, transport)
            return
        protocol = BgpConnection(session, session.new_incoming_id())
        session.adopt_incoming(transport, protocol)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Nothing is read from a refused connection."""


REFUSALS_LOGGED = 1024  # strangers whose refusal is logged (and remembered)


class Listener:
    """The BGP port on the configured addresses, for all peers."""

    def __init__(self, addresses: Iterable[str], port: int) -> None:
        self.addresses = tuple(addresses)
        self.port = port
        self.sessions: dict[str, PeerSession] = {}
        self.refused: set[str] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._sockets: list[socket.socket] = []

    def add(self, session: PeerSession) -> None:
        """Accept connections from this peer (and key them, if it has a password)."""
        address = canonical(session.transport_settings.address)
        self.sessions[address] = session
        if session.transport_settings.password:
            self._key(address, session.transport_settings.password)

    def remove(self, session: PeerSession) -> None:
        """Stop accepting this peer."""
        address = canonical(session.transport_settings.address)
        if self.sessions.pop(address, None) is not None and session.transport_settings.password:
            self._key(address, "")

    def _key(self, address: str, password: str) -> None:
        """Set (or, with an empty password, remove) the peer's TCP-MD5 key on the listeners."""
        version = ipaddress.ip_address(address).version
        for sock in self._sockets:
            if sock.family == socket.AF_INET and version == 6:
                continue
            try:
                socket_options.set_md5_key(sock, address, password)
            except OSError as exc:
                if password:
                    raise OSError(
                        f"cannot set the TCP-MD5 key for {address} on the listener: {exc}"
                    ) from exc

    def refuse(self, address: str, transport: asyncio.Transport) -> None:
        """Cease 6/5 to a stranger, logged the first time only (for the first strangers)."""
        if address not in self.refused and len(self.refused) < REFUSALS_LOGGED:
            # Bounded: a scan of the BGP port from many addresses must not grow memory.
            self.refused.add(address)
            LOG.warning(
                "refused a BGP connection from %s: not a configured peer "
                "(logged once per address; add it to the config if it should peer)",
                address,
            )
            if len(self.refused) == REFUSALS_LOGGED:
                LOG.warning(
                    "refused BGP connections from %d addresses that are no peers; refusals "
                    "from further addresses are not logged",
                    REFUSALS_LOGGED,
                )
        transport.write(_REJECTED)
        transport.close()

    async def start(self) -> None:
        """Bind and listen; an address that cannot be bound is the config's fault."""
        loop = asyncio.get_running_loop()
        for address in self.addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                # The kernel answers SYNs with the listener's TTL, before any peer is known: a
                # GTSM peer (RFC 5082) drops a SYN-ACK below 255, and 255 harms no other peer.
                # Each accepted socket then gets its own peer's TTL.
                socket_options.set_ttl(sock, socket_options.GTSM_TTL)
                sock.bind((address, self.port))
                sock.listen(128)
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                raise OSError(
                    f"cannot listen on [{address}]:{self.port}: {exc.strerror} "
                    "(check the listen address in the config and that no other BGP daemon runs)"
                ) from exc
            self._sockets.append(sock)
            server = await loop.create_server(lambda: _Incoming(self), sock=sock)
            self._servers.append(server)
        for address, session in self.sessions.items():
            if session.transport_settings.password:
                self._key(address, session.transport_settings.password)

    @property
    def bound_port(self) -> int:
        """The port actually bound (differs from ``port`` when that was 0, in tests)."""
        return int(self._sockets[0].getsockname()[1]) if self._sockets else self.port

    async def close(self) -> None:
        """Stop listening."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._sockets.clear()
