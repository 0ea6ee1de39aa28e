"""The thin asyncio shell around the RIB core: wake-ups, slicing, timers and back-pressure.

Data flow: peer sessions (``speaker.transport.PeerSession``) use a ``Rib`` as their sink: their
calls turn into ``rib.rib_events`` events for the sans-I/O ``rib.rib_core.RibCore`` and wake
the shell's task, so a session never waits on the RIB (OpenBGPD's session engine / decision
engine split). The task (``run``) lets the core work in slices of at most ``SLICE_SECONDS``
(between which it yields to the event loop, so KEEPALIVEs and other sessions are never held
up), carries out the actions that come back (writes to sessions, a Cease, the end of selection
deferral) and arms one ``call_at`` for the core's next deadline. When the core holds more than
``INBOX_HIGH`` prefixes of unprocessed UPDATEs, sessions stop reading until it drains. The
daemon, the control socket and the metrics read the RIB through ``view`` (``rib.rib_view``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Protocol

from rib.adj_rib_out import ExportSettings, Send
from rib.channels import Channel
from rib.decision import DecisionOptions
from rib.gc_schedule import GcSchedule
from rib.next_hops import Resolve
from rib.policy import PrefixLimit
from rib.rib_core import RibCore
from rib.rib_events import (
    Cease,
    DeferralDone,
    ImportPolicy,
    NextHopsChanged,
    Originate,
    PeerAdded,
    PeerDown,
    PeerRemoved,
    PeerSettings,
    PeerStateChanged,
    PeerUp,
    RefreshIn,
    RibEvent,
    Started,
    UpdatesDone,
    UpdatesIn,
    accept_import,
)
from rib.rib_view import RibView
from rib.route import KernelFacts, Origin
from rib.shards import give_back_memory
from speaker.control_messages import Notification
from speaker.path_attributes import PathAttributes
from speaker.session_counters import LatencyHistogram
from speaker.session_events import RouteRefreshReceived, SessionDown, SessionUp, StateChange
from speaker.update_message import Update
from speaker.wire_codes import Family

__all__ = ["ImportPolicy", "Rib", "RibSession", "accept_import"]

LOG = logging.getLogger("myna.rib")
SLICE_SECONDS = 0.003  # RIB work before its changes are published and the loop yields
INBOX_HIGH = 200_000  # prefixes queued before sessions stop reading
INBOX_LOW = 50_000


def _slice_over(end: float) -> Callable[[], bool]:
    """The core's ``should_yield``: true once the slice's time is up."""
    perf_counter = time.perf_counter
    return lambda: perf_counter() > end


class _Addressed(Protocol):
    @property
    def address(self) -> str:
        """The peer's address."""


class RibSession(Protocol):
    """What the RIB shell needs of a peer session (``speaker.transport.PeerSession`` has it)."""

    @property
    def name(self) -> str:
        """The peer's name (its address)."""

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """The peer's logger."""

    @property
    def transport_settings(self) -> _Addressed:
        """Where the peer is."""

    def send(self, data: bytes) -> bool:
        """Write encoded messages on the Established connection."""

    def local_address(self) -> str | None:
        """Our address towards the peer."""

    def resume_reading(self) -> None:
        """Read from the peer again (after back-pressure)."""

    def cease(self, notification: Notification, reason: str, restart_after: float | None) -> None:
        """End the session with this NOTIFICATION (restarting after a delay, or not)."""

    @property
    def coming_up(self) -> bool:
        """OpenSent, OpenConfirm or Established: the peer answers."""

    @property
    def established_conn(self) -> int | None:
        """The id of the Established connection, if any."""


ExportFactory = Callable[[RibSession, SessionUp], ExportSettings]


class Rib:
    """The RIB core and the task that runs it (see the module docstring)."""

    def __init__(
        self,
        local_as: int,
        router_id: int,
        options: DecisionOptions | None = None,
        selection_deferral: float = 0.0,
        manage_gc: bool = False,
        *,
        peer_wait: float = 0.0,
        cluster_id: int | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.core = RibCore(
            local_as,
            router_id,
            options,
            cluster_id=cluster_id,
            selection_deferral=selection_deferral,
            peer_wait=peer_wait,
            resolve=resolve,
        )
        self.view = RibView(self.core)
        self._exports: dict[RibSession, ExportFactory] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # uvloop answers a ``call_at`` in the past with a plain ``Handle`` (no ``when()``), and
        # fires timers on a millisecond clock: the deadline armed is kept beside the handle.
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        self._queued = 0
        self._paused: set[RibSession] = set()
        # Seconds from a batch of UPDATEs decoded (one socket read) to its routes being in the
        # Loc-RIB with the changes handed to update groups and subscribers (queue wait included).
        self.update_latency = LatencyHistogram()
        self.status_hook: Callable[[], None] | None = None  # called when status may differ
        self.deferral_done_hook: Callable[[], None] | None = None
        self.compact_hooks: list[Callable[[], int]] = []  # more to give back (the FIB's table)
        # The daemon hands full garbage collections to the RIB's idle spells (gc_schedule).
        self.gc = GcSchedule(self.sweep, self.compact) if manage_gc else None
        self.longest_slice = 0.0  # seconds of wall time between two yields, at most
        self.longest_slice_cpu = 0.0  # the same in CPU time (what the RIB itself spent)

    # -- set-up --------------------------------------------------------------------------------

    def _post(self, event: RibEvent) -> None:
        loop_time = asyncio.get_running_loop().time() if self._task is not None else 0.0
        self.core.handle(event, loop_time)
        self._wake.set()

    def add_peer(
        self,
        session: RibSession,
        export: ExportFactory,
        import_policy: ImportPolicy = accept_import,
        limit: PrefixLimit | None = None,
        *,
        rr_client: bool = False,
        import_per_route: bool = False,
        protocol: str = "",
        preference: int | None = None,
    ) -> None:
        """Serve a peer: ``export`` builds its export settings when its session comes up.

        ``import_per_route``: the import policy's answer does not depend on the prefix (no
        filters, no own blocks): it is asked once per UPDATE's attribute set, not per prefix.
        ``protocol`` and ``preference``: the peer's BIRD protocol name and route preference.
        """
        self._exports[session] = export
        settings = PeerSettings(
            name=session.name,
            address=int(ipaddress.ip_address(session.transport_settings.address)),
            import_policy=import_policy,
            import_per_route=import_per_route or import_policy is accept_import,
            rr_client=rr_client,
            limit=limit,
            log=session.log,
            protocol=protocol,
            preference=preference,
        )
        self.core.handle(PeerAdded(session, settings), 0.0)

    def remove_peer(self, session: RibSession) -> None:
        """Stop serving a peer (removed or replaced by a reload); its routes go at once.

        A new session under the same name may be added at once; whatever the old session still
        had queued is dropped.
        """
        self._exports.pop(session, None)
        self._paused.discard(session)
        self._post(PeerRemoved(session))

    def add_channel(self, channel: Channel) -> None:
        """Subscribe a channel (the FIB programmer) to the Loc-RIB's publications."""
        self.core.add_channel(channel)

    def remove_channel(self, channel: Channel) -> None:
        """Unsubscribe a channel."""
        self.core.remove_channel(channel)

    def start(self) -> None:
        """Start the task (and the selection deferral timer, when restarting)."""
        loop = asyncio.get_running_loop()
        if self.gc is not None:
            self.gc.start()
        self._task = loop.create_task(self.run(), name="rib")
        self._post(Started())

    async def close(self) -> None:
        """Stop the task and its timer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.gc is not None:
            self.gc.stop()

    def sweep(self) -> int:
        """Free what nothing uses any more (see ``RibCore.sweep``)."""
        return self.core.sweep()

    def compact(self) -> int:
        """Idle spells: rebuild oversized tables, then give freed memory back to the system.

        The core's tables and the hooks' (the FIB's record).
        """
        rebuilt = self.core.compact() + sum(hook() for hook in self.compact_hooks)
        give_back_memory()
        return rebuilt

    # -- the sink the sessions call (never blocks, never does RIB work) --------------------------

    def session_up(self, session: RibSession, up: SessionUp) -> None:
        """The session is Established."""
        export = self._exports.get(session)
        if export is not None:
            self._post(PeerUp(session, up, export(session, up)))

    def session_down(self, session: RibSession, down: SessionDown) -> None:
        """The session ended."""
        self._paused.discard(session)
        self._post(PeerDown(session, down))

    def updates(self, session: RibSession, updates: tuple[Update, ...]) -> bool:
        """Queue UPDATEs; False asks the session to stop reading until the RIB drains."""
        self._post(UpdatesIn(session, updates, time.perf_counter()))
        for update in updates:
            for reach in update.reach:
                self._queued += len(reach.prefixes)
            for gone in update.unreach:
                self._queued += len(gone.prefixes)
        if self._queued > INBOX_HIGH:
            self._paused.add(session)
            return False
        return True

    def route_refresh(self, session: RibSession, refresh: RouteRefreshReceived) -> None:
        """The peer asked for our routes again (or brackets its own refresh, RFC 7313)."""
        self._post(RefreshIn(session, refresh.refresh))

    def state_changed(self, session: RibSession, change: StateChange) -> None:
        """Tell the status output; while deferring, look again at whom selection waits for."""
        if self.status_hook is not None:
            self.status_hook()
        if self.core.loc.deferring:
            self._post(PeerStateChanged(session, session.coming_up))

    def write_blocked(self, session: RibSession, blocked: bool) -> None:
        """The session's write buffer passed its high-water mark (or drained below low)."""
        self.core.set_writable(session, not blocked)
        if not blocked:
            self._wake.set()

    # -- the node's own routes, the kernel ------------------------------------------------------

    def originate(
        self,
        family: Family,
        prefixes: list[int],
        attrs: PathAttributes | None,
        origin: Origin,
        *,
        protocol: str = "",
        interface: str | None = None,
        preference: int | None = None,
        kernel: KernelFacts | None = None,
    ) -> None:
        """Announce (``attrs``) or withdraw (None) routes of this node (see ``Originate``)."""
        self._post(
            Originate(
                family, tuple(prefixes), attrs, origin, protocol, interface, preference, kernel
            )
        )

    def set_resolver(self, resolve: Resolve) -> None:
        """Resolve next hops through ``resolve`` from now on (kernel sync has started)."""
        self.core.loc.next_hops.resolve = resolve
        self.next_hops_changed()

    def next_hops_changed(self) -> None:
        """The kernel routes next hops resolve through changed: decide again where it matters."""
        self._post(NextHopsChanged())

    # -- the task --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Let the core work whenever there is work, in slices, forever."""
        loop = asyncio.get_running_loop()
        core = self.core
        while True:
            await self._wake.wait()
            self._wake.clear()
            while core.has_work:
                start = time.perf_counter()
                cpu = time.thread_time()
                actions = core.work(loop.time(), _slice_over(start + SLICE_SECONDS))
                self._carry_out(actions)
                # Wall time includes whatever else the machine ran meanwhile; CPU time is ours.
                self.longest_slice = max(self.longest_slice, time.perf_counter() - start)
                self.longest_slice_cpu = max(self.longest_slice_cpu, time.thread_time() - cpu)
                if self.gc is not None:
                    self.gc.busy()
                if core.has_work:
                    await asyncio.sleep(0)
            self._queued = 0
            self._resume_sessions()
            self._rearm()
            if self.status_hook is not None:
                self.status_hook()

    def _carry_out(self, actions: list[object]) -> None:
        now = time.perf_counter()
        for action in actions:
            if isinstance(action, Send):
                session: RibSession = action.peer  # type: ignore[assignment]
                # Words made for a session that has ended do not go to its successor, which
                # gets a table of its own (and may have negotiated otherwise).
                if session.established_conn == action.conn:
                    session.send(action.data)
            elif isinstance(action, UpdatesDone):
                self.update_latency.observe(now - action.received_at)
            elif isinstance(action, Cease):
                ended: RibSession = action.peer  # type: ignore[assignment]
                ended.cease(action.notification, action.reason, action.restart_after)
            elif isinstance(action, DeferralDone) and self.deferral_done_hook is not None:
                self.deferral_done_hook()

    def _resume_sessions(self) -> None:
        if self._paused and self._queued < INBOX_LOW:
            paused, self._paused = self._paused, set()
            for session in paused:
                session.resume_reading()

    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer_when == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer_when = deadline
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        # A loop with a coarser clock may fire a little before the deadline; the deadline armed
        # has come all the same (else the same deadline would be armed and fire again at once).
        self.core.handle_timer(max(asyncio.get_running_loop().time(), deadline))
        self._wake.set()
        self._rearm()
