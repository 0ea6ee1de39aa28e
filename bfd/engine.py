"""The BFD engine: the I/O loop that owns the UDP sockets, the sessions and their timers.

Data flow: ``Engine.run`` is one ``selectors`` loop over the receiving sockets
(``sockets.open_receiver``, one per address family and hop mode in use), the control socket
to the daemon (``ipc`` messages) and a heap of session deadlines. A datagram is decoded
(``packet.decode``), demultiplexed (``demux``), checked for its TTL, and handed to its
``BfdSession`` with the time; each session's actions are carried out at once: ``Transmit`` on
the session's own socket, ``StateChanged`` to the daemon as ``SessionStateChanged``. Every
drop is counted: before demultiplexing in the engine's counters, after it in the session's.

Where it runs, and why: in a process of its own (``python -m bfd.engine FD``, started by
``service.BfdService``), not in a thread of the daemon and not on its event loop. At
100 ms x 3 a peer declares us dead after 300 ms without a packet, and we send every 75-100
ms, so no stall of the sender may pass ~200 ms. The daemon's event loop runs RIB slices of a
few ms but its process also does things no thread can preempt: C calls that hold the GIL
(a ``list.sort`` of 1,000,000 keys, a netlink dump decoded in C) and full garbage collections
of a heap of millions of route objects, each of which stops every thread of the process.
``bench/bfd_isolation.py`` measured it (10 sessions at 100 ms x 3 against simulated peers,
24 s windows, a load on the daemon's thread in the middle third; bench/results/
2026-12-07-bfd-isolation.md). With the engine in a thread, every load made sessions fall:
RIB-like 5 ms slices of pure Python (10 false Downs: each wake-up of the engine thread waits
for the GIL's 5 ms switch interval, and with 200 wake-ups a second it falls behind), sorts of
1,000,000 floats holding the GIL for 284 ms (10; the peers went 296 ms without a packet), full
collections of a 2,000,000-object heap (58 ms each, 15). With the engine in a process: no
false Down under any load, and the peers never waited more than 104 ms for a packet. The
process costs one socket pair and a Python interpreter (22 MB RSS with 200 sessions). The
same ``Engine`` runs in a thread for that measurement (``Isolation.THREAD``), never in
production.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import heapq
import ipaddress
import itertools
import logging
import os
import random
import selectors
import socket
import sys
import time
from collections.abc import Callable

from bfd import ipc, sockets
from bfd.demux import Binding, Demultiplexer, canonical
from bfd.packet import MalformedPacketError, decode
from bfd.session_events import SessionSettings, StateChanged, Transmit
from bfd.session_fsm import BfdSession
from bfd.wire_codes import SINGLE_HOP_TTL, DropReason, HopMode

LOG = logging.getLogger("myna.bfd.engine")
_BURST = 256  # datagrams read from one socket before the timers get a look in
ENGINE_NICENESS = -10


class _Entry:
    """One session in the engine: the sans-I/O session and its socket, path and deadline."""

    __slots__ = (
        "binding",
        "config",
        "deadline",
        "destination",
        "port",
        "removing",
        "session",
        "sock",
    )

    def __init__(
        self,
        *,
        config: ipc.PeerConfig,
        session: BfdSession,
        binding: Binding,
        sock: socket.socket,
        port: int,
        destination: tuple[str, int] | tuple[str, int, int, int],
    ) -> None:
        self.config = config
        self.session = session
        self.binding = binding
        self.sock = sock
        self.port = port
        self.destination = destination
        self.removing = False
        self.deadline: float | None = None


class Engine:
    """The loop of the module docstring; ``run`` returns when the daemon closes the control."""

    def __init__(
        self,
        control: socket.socket,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self.control = control
        self.control.setblocking(False)
        self.clock = clock
        self.rng = random.Random(seed)
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ, self._control_readable)
        self.entries: dict[str, _Entry] = {}
        self.demux: Demultiplexer[_Entry] = Demultiplexer()
        self.receivers: dict[tuple[socket.AddressFamily, HopMode], socket.socket] = {}
        self.dropped: dict[DropReason, int] = {}
        self.packets_in = 0
        self.send_errors = 0
        self._ports: set[int] = set()
        self._heap: list[tuple[float, int, _Entry]] = []
        self._order = itertools.count()
        self._pending: collections.deque[bytes] = collections.deque()
        self._running = True

    def run(self) -> None:
        """Serve until the control socket closes."""
        self._tell(ipc.Ready(os.getpid()))
        while self._running:
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0][0] - self.clock())
            for key, _ in self.selector.select(timeout):
                key.data(key.fileobj)
            self._fire_timers()
        self._shutdown()

    # -- the daemon's side -----------------------------------------------------------------------

    def _control_readable(self, _sock: object) -> None:
        while True:
            try:
                data = self.control.recv(ipc.MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._running = False  # the daemon is gone: so are we
                return
            try:
                message = ipc.decode(data)
            except (ValueError, TypeError, KeyError) as error:
                LOG.error("unreadable message from the daemon (its bug): %s", error)
                continue
            self._handle(message)

    def _handle(self, message: ipc.Message) -> None:
        now = self.clock()
        match message:
            case ipc.AddSession(config):
                self._add(config, now)
            case ipc.RemoveSession(key):
                entry = self.entries.get(key)
                if entry is not None:
                    entry.removing = True
                    self._apply(entry, entry.session.admin_down(now))
            case ipc.SetAdminDown(key, admin_down):
                entry = self.entries.get(key)
                if entry is not None:
                    session = entry.session
                    actions = session.admin_down(now) if admin_down else session.admin_up(now)
                    self._apply(entry, actions)
            case ipc.StatusRequest(request_id):
                self._tell(self._status(request_id))
            case _:
                LOG.error("the daemon sent an engine-side message: %s", message)

    def _add(self, config: ipc.PeerConfig, now: float) -> None:
        if config.key in self.entries:
            self._tell(ipc.SessionFailed(config.key, "a session with this key exists (caller)"))
            return
        try:
            entry = self._open(config)
        except (OSError, ValueError) as error:
            self._tell(ipc.SessionFailed(config.key, f"{type(error).__name__}: {error}"))
            return
        self.entries[config.key] = entry
        self._apply(entry, entry.session.start(now))

    def _open(self, config: ipc.PeerConfig) -> _Entry:
        peer = canonical(config.peer)
        family = socket.AF_INET6 if ipaddress.ip_address(peer).version == 6 else socket.AF_INET
        ifindex = socket.if_nametoindex(config.interface) if config.interface else 0
        if config.mode is HopMode.MULTIHOP and config.interface:
            raise ValueError("a multihop session is bound to addresses, not an interface")
        local = canonical(config.local) if config.local else None
        binding = Binding(
            config.mode,
            peer,
            local if config.mode is HopMode.MULTIHOP else None,
            ifindex if config.mode is HopMode.SINGLE_HOP else 0,
        )
        settings = SessionSettings(
            config.desired_min_tx_us,
            config.required_min_rx_us,
            config.detect_mult,
            config.auth,
            config.passive,
        )
        self._receiver(family, config.mode)
        discriminator = self.rng.randrange(1, 1 << 32)
        while not self.demux.free(discriminator):
            discriminator = self.rng.randrange(1, 1 << 32)
        session = BfdSession(settings, discriminator, random.Random(self.rng.random()))
        sock, port = sockets.open_sender(family, local, config.interface, self._ports, self.rng)
        scope = ifindex if ipaddress.ip_address(peer).is_link_local else 0
        destination: tuple[str, int] | tuple[str, int, int, int] = (peer, config.mode.port)
        if family == socket.AF_INET6:
            destination = (peer, config.mode.port, 0, scope)
        entry = _Entry(
            config=config,
            session=session,
            binding=binding,
            sock=sock,
            port=port,
            destination=destination,
        )
        try:
            self.demux.add(discriminator, binding, entry)
        except ValueError:
            sock.close()
            raise
        self._ports.add(port)
        return entry

    def _receiver(self, family: socket.AddressFamily, mode: HopMode) -> None:
        if (family, mode) in self.receivers:
            return
        sock = sockets.open_receiver(family, mode)
        self.receivers[(family, mode)] = sock
        self.selector.register(sock, selectors.EVENT_READ, lambda s: self._readable(s, mode))

    def _status(self, request_id: int) -> ipc.StatusReply:
        sessions = {}
        for key, entry in self.entries.items():
            status = dataclasses.asdict(entry.session.status())
            status.update(
                peer=entry.binding.peer,
                mode=entry.binding.mode.value,
                source_port=entry.port,
                removing=entry.removing,
            )
            sessions[key] = status
        dropped = {reason.name: n for reason, n in self.dropped.items()}
        dropped["SEND_ERRORS"] = self.send_errors
        return ipc.StatusReply(request_id, sessions, dropped, self.packets_in)

    def _tell(self, message: ipc.Message) -> None:
        data = ipc.encode(message)
        if not self._pending:
            try:
                self.control.send(data)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._running = False
                return
        # The daemon is not reading (its loop is busy): keep the order, send when it is.
        self._pending.append(data)
        self.selector.modify(
            self.control, selectors.EVENT_READ | selectors.EVENT_WRITE, self._control_ready
        )

    def _control_ready(self, _sock: object) -> None:
        while self._pending:
            try:
                self.control.send(self._pending[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._running = False
                return
            self._pending.popleft()
        if not self._pending:
            self.selector.modify(self.control, selectors.EVENT_READ, self._control_readable)
        self._control_readable(_sock)

    # -- the peers' side -------------------------------------------------------------------------

    def _readable(self, sock: socket.socket, mode: HopMode) -> None:
        for _ in range(_BURST):
            datagram = sockets.receive(sock)
            if datagram is None:
                return
            self.packets_in += 1
            self._datagram(datagram, mode)

    def _datagram(self, datagram: sockets.Datagram, mode: HopMode) -> None:
        try:
            packet = decode(datagram.payload)
        except MalformedPacketError as error:
            self._drop(error.reason)
            return
        found = self.demux.lookup(
            packet, mode, datagram.source, datagram.destination, datagram.ifindex
        )
        if isinstance(found, DropReason):
            self._drop(found)
            return
        entry = found
        ttl = datagram.ttl
        if mode is HopMode.SINGLE_HOP and ttl != SINGLE_HOP_TTL:
            # RFC 5881 5: "MUST be discarded if the received TTL ... is not equal to 255".
            entry.session.counters.drop(DropReason.TTL_NOT_255)
            return
        min_ttl = entry.config.min_ttl
        if mode is HopMode.MULTIHOP and min_ttl is not None and (ttl is None or ttl < min_ttl):
            entry.session.counters.drop(DropReason.TTL_BELOW_MINIMUM)
            return
        self._apply(entry, entry.session.receive(packet, self.clock()))

    def _drop(self, reason: DropReason) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    # -- carrying out actions, timers ------------------------------------------------------------

    def _apply(self, entry: _Entry, actions: list[Transmit | StateChanged]) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                try:
                    entry.sock.sendto(action.data, entry.destination)
                except OSError:
                    # No route, a full buffer, a firewall: the path's trouble, which the
                    # peer's Detection Time is there to notice. Counted, not fatal.
                    self.send_errors += 1
            else:
                session = entry.session
                self._tell(
                    ipc.SessionStateChanged(
                        entry.config.key,
                        int(action.old),
                        int(action.new),
                        int(action.diagnostic),
                        int(session.remote_state),
                        action.at,
                    )
                )
        if entry.removing and entry.session.finished:
            self._forget(entry)
            return
        deadline = entry.session.next_deadline()
        if deadline != entry.deadline:
            entry.deadline = deadline
            if deadline is not None:
                heapq.heappush(self._heap, (deadline, next(self._order), entry))

    def _fire_timers(self) -> None:
        now = self.clock()
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, entry = heapq.heappop(heap)
            if entry.deadline != deadline or self.entries.get(entry.config.key) is not entry:
                continue  # superseded, or the session is gone
            entry.deadline = None
            self._apply(entry, entry.session.timers_expired(now))

    def _forget(self, entry: _Entry) -> None:
        self.entries.pop(entry.config.key, None)
        self.demux.remove(entry.session.local_discriminator)
        self._ports.discard(entry.port)
        entry.sock.close()
        entry.deadline = None

    def _shutdown(self) -> None:
        for entry in list(self.entries.values()):
            # Tell every peer once that this is an administrative stop (RFC 5882 3.2): the
            # first AdminDown packet is due at once.
            now = self.clock()
            session = entry.session
            self._apply(entry, session.admin_down(now) + session.timers_expired(now))
            entry.sock.close()
        for sock in self.receivers.values():
            sock.close()
        self.selector.close()
        with contextlib.suppress(OSError):
            self.control.close()


def main(argv: list[str]) -> int:
    """``python -m bfd.engine FD``: serve the daemon on inherited socket FD."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="bfd-engine %(levelname)s %(message)s"
    )
    control = socket.socket(fileno=int(argv[1]))
    # Ahead of the daemon's own process when the cores are busy (its RIB work can fill one for
    # seconds): a late packet costs a session, a late route costs nothing. bench/bfd_scale.py,
    # 200 sessions with the daemon's load on 2 shared cores: the peers' longest wait for a
    # packet was 259 ms of their 300 ms without this, 126 ms with it. Allowed for root
    # (calico-node runs privileged); elsewhere the engine runs at the daemon's priority.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, ENGINE_NICENESS)
    # The engine's heap is small and long-lived: what exists now never needs scanning again.
    gc.freeze()
    Engine(control).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
