"""The BFD engine: the I/O loop that owns the UDP sockets, the sessions and their timers.

Data flow: ``Engine.run`` is one ``selectors`` loop over the receiving sockets
(``sockets.open_receiver``, one per address family and hop mode in use), the control socket
to the daemon (``ipc`` messages) and a heap of session deadlines. A datagram is decoded
(``packet.decode``), demultiplexed (``demux``), checked for its TTL, and handed to its
``BfdSession`` with the time; each session's actions are carried out at once: ``Transmit`` on
the session's own socket, ``StateChanged`` and ``RemoteChanged`` to the daemon as
``SessionStateChanged`` and ``RemoteStateChanged``. Every drop is counted: before
demultiplexing in the engine's counters, after it in the session's.

A session the daemon removes (``RemoveSession``: the peer deleted, BFD disabled, a path
replaced) leaves the daemon's view at once but stays here, telling its peer AdminDown for a
Detection Time (RFC 5880 6.8.16, RFC 5882 3.2; ``BfdSession.admin_down``), and goes when that
is over. So does every session when the daemon closes the control socket, for at most
``STOP_LINGER`` seconds, after which the engine exits. A new session on the same path as a
leaving one (one a packet with Your Discriminator zero could not tell from it) ends the
leaving one at once, after its first AdminDown: the two would otherwise confuse the peer's
single session for that path.

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
from bfd.session_events import Action, SessionSettings, StateChanged, Transmit
from bfd.session_fsm import BfdSession
from bfd.wire_codes import SINGLE_HOP_TTL, DropReason, HopMode

LOG = logging.getLogger("myna.bfd.engine")
_BURST = 256  # datagrams read from one socket before the timers get a look in
ENGINE_NICENESS = -10
# s: how long a stopping engine goes on telling its peers AdminDown at most. A Detection Time
# of a session that is not Up is Detect Mult x 1 s or more (5 s with BIRD's defaults); 3 s
# still covers any peer's Detection Time of an Up session at up to 1 s x 3, with two or three
# AdminDown packets, and keeps a stopping daemon quick (service.STOP_TIMEOUT waits longer).
STOP_LINGER = 3.0


class _Entry:
    """One session in the engine: the sans-I/O session and its socket, path and deadline."""

    __slots__ = (
        "binding",
        "config",
        "deadline",
        "destination",
        "gone",
        "leaving",
        "port",
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
        self.leaving = False  # removed by the daemon: telling the peer AdminDown, then gone
        self.gone = False  # forgotten: its socket closed, its timers void
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
        self.entries: dict[str, _Entry] = {}  # the daemon's sessions, by key
        self.leaving: dict[int, _Entry] = {}  # removed ones telling AdminDown, by discriminator
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
        self._control_open = True

    def run(self) -> None:
        """Serve until the control socket closes, then tell every peer AdminDown and exit."""
        self._tell(ipc.Ready(os.getpid()))
        while self._running:
            self._wait(None if not self._heap else self._heap[0][0] - self.clock())
            self._fire_timers()
        self._shutdown()

    def _wait(self, timeout: float | None) -> None:
        """Handle what the sockets have, waiting up to ``timeout`` seconds (None: no limit)."""
        for key, _ in self.selector.select(None if timeout is None else max(0.0, timeout)):
            key.data(key.fileobj)

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
            case ipc.ReconfigureSession(config):
                self._reconfigure(config, now)
            case ipc.RemoveSession(key):
                entry = self.entries.get(key)
                if entry is not None:
                    self._leave(entry, now)
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
            binding = _binding(config)
            for old in self.demux.conflicting(binding):
                if old.leaving:
                    # Removed, and told AdminDown at once (its first packet went then): on
                    # the same path the two sessions would each reset the peer's one
                    # session, so the old one ends here. On another path (a new local
                    # address, the other hop mode) it goes on telling AdminDown.
                    self._forget(old)
            entry = self._open(config, binding)
        except (OSError, ValueError) as error:
            self._tell(ipc.SessionFailed(config.key, f"{type(error).__name__}: {error}"))
            return
        self.entries[config.key] = entry
        self._apply(entry, entry.session.start(now))

    def _reconfigure(self, config: ipc.PeerConfig, now: float) -> None:
        entry = self.entries.get(config.key)
        if entry is None:
            self._tell(ipc.SessionFailed(config.key, "no such session to reconfigure (caller)"))
            return
        if not entry.config.same_path(config):
            self._tell(ipc.SessionFailed(config.key, "a new path needs a new session (caller)"))
            return
        try:
            settings = _settings(config)
        except ValueError as error:
            self._tell(ipc.SessionFailed(config.key, f"ValueError: {error}"))
            return
        entry.config = config
        self._apply(entry, entry.session.change_parameters(now, settings))

    def _open(self, config: ipc.PeerConfig, binding: Binding) -> _Entry:
        peer = binding.peer
        family = socket.AF_INET6 if ipaddress.ip_address(peer).version == 6 else socket.AF_INET
        ifindex = binding.ifindex
        local = canonical(config.local) if config.local else None
        settings = _settings(config)
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
                peer=entry.binding.peer, mode=entry.binding.mode.value, source_port=entry.port
            )
            sessions[key] = status
        dropped = {reason.name: n for reason, n in self.dropped.items()}
        dropped["SEND_ERRORS"] = self.send_errors
        return ipc.StatusReply(request_id, sessions, dropped, self.packets_in)

    def _tell(self, message: ipc.Message) -> None:
        if not self._control_open:
            return  # stopping: the daemon is gone
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

    def _apply(self, entry: _Entry, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                try:
                    entry.sock.sendto(action.data, entry.destination)
                except OSError:
                    # No route, a full buffer, a firewall: the path's trouble, which the
                    # peer's Detection Time is there to notice. Counted, not fatal.
                    self.send_errors += 1
            elif entry.leaving:
                continue  # the daemon has forgotten this session
            elif isinstance(action, StateChanged):
                self._tell(
                    ipc.SessionStateChanged(
                        entry.config.key,
                        int(action.old),
                        int(action.new),
                        int(action.diagnostic),
                        int(entry.session.remote_state),
                        action.at,
                    )
                )
            else:
                self._tell(
                    ipc.RemoteStateChanged(
                        entry.config.key,
                        int(action.state),
                        action.heard,
                        action.diagnostic,
                        action.at,
                    )
                )
        if entry.leaving and entry.session.finished:
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
            if entry.deadline != deadline or entry.gone:
                continue  # superseded, or the session is gone
            entry.deadline = None
            self._apply(entry, entry.session.timers_expired(now))

    def _leave(self, entry: _Entry, now: float) -> None:
        """The daemon is done with ``entry``: it tells its peer AdminDown, then goes."""
        if self.entries.get(entry.config.key) is entry:
            del self.entries[entry.config.key]
        entry.leaving = True
        self.leaving[entry.session.local_discriminator] = entry
        self._apply(entry, entry.session.admin_down(now))

    def _forget(self, entry: _Entry) -> None:
        if self.entries.get(entry.config.key) is entry:
            del self.entries[entry.config.key]
        self.leaving.pop(entry.session.local_discriminator, None)
        self.demux.remove(entry.session.local_discriminator)
        self._ports.discard(entry.port)
        entry.sock.close()
        entry.deadline = None
        entry.gone = True

    def _shutdown(self) -> None:
        """The daemon is gone: every session tells its peer AdminDown (RFC 5882 3.2), then exit.

        For a Detection Time each (``BfdSession.admin_down``), at most ``STOP_LINGER`` s.
        """
        self._control_open = False
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.selector.unregister(self.control)
        now = self.clock()
        for entry in list(self.entries.values()):
            self._leave(entry, now)
        stop = now + STOP_LINGER
        while self.leaving and (now := self.clock()) < stop:
            self._wait(min(stop, self._heap[0][0] if self._heap else stop) - now)
            self._fire_timers()
        for entry in list(self.leaving.values()):
            self._forget(entry)
        for sock in self.receivers.values():
            sock.close()
        self.selector.close()
        with contextlib.suppress(OSError):
            self.control.close()


def _binding(config: ipc.PeerConfig) -> Binding:
    """The path ``config``'s session runs on (ValueError, OSError: the daemon's mistake)."""
    if config.mode is HopMode.MULTIHOP and config.interface:
        raise ValueError("a multihop session is bound to addresses, not an interface")
    ifindex = socket.if_nametoindex(config.interface) if config.interface else 0
    local = canonical(config.local) if config.local else None
    return Binding(
        config.mode,
        canonical(config.peer),
        local if config.mode is HopMode.MULTIHOP else None,
        ifindex if config.mode is HopMode.SINGLE_HOP else 0,
    )


def _settings(config: ipc.PeerConfig) -> SessionSettings:
    """The sans-I/O session's settings (ValueError: the daemon passed a bad configuration)."""
    return SessionSettings(
        config.desired_min_tx_us,
        config.required_min_rx_us,
        config.detect_mult,
        config.auth,
        config.passive,
        config.idle_tx_us,
    )


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
