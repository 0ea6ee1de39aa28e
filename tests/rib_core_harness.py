"""Driving the sans-I/O RIB core without an event loop: peers as plain objects, time by hand.

Data flow: a test builds a ``CoreBed`` (a ``RibCore`` and its clock), adds ``FakeSession`` peers
(``rib_harness``), brings their sessions up with ``SessionUp`` events negotiated from two OPENs,
feeds UPDATEs and timers, and calls ``run`` to let the core work to completion; every ``Send``
action is handed to its peer (which decodes what it holds, ``FakeSession.table``), every other
action is kept in ``actions``. ``advance`` moves the clock and fires what is due.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace

from rib_harness import LOCAL_AS, FakeSession, announce, export_settings, up_event

from reflector.rules import PeerRole, Reflection
from rib.adj_rib_out import ExportSettings, Send
from rib.decision import DecisionOptions
from rib.next_hops import Resolve
from rib.rib_core import RibCore
from rib.rib_events import (
    ImportPolicy,
    PeerAdded,
    PeerDown,
    PeerSettings,
    PeerUp,
    RibEvent,
    UpdatesIn,
    accept_import,
)
from speaker.capabilities import Capability
from speaker.session_events import SessionDown
from speaker.update_message import Unreach, Update
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


class CoreBed:
    """A RIB core, its peers by name, and the time."""

    def __init__(
        self,
        router_id: str = "198.18.0.1",
        *,
        options: DecisionOptions | None = None,
        cluster_id: str | None = None,
        resolve: Resolve | None = None,
        selection_deferral: float = 0.0,
    ) -> None:
        self.core = RibCore(
            LOCAL_AS,
            ip(router_id),
            options,
            cluster_id=None if cluster_id is None else ip(cluster_id),
            resolve=resolve,
            selection_deferral=selection_deferral,
        )
        self.now = 100.0
        self.peers: dict[str, FakeSession] = {}
        self.exports: dict[str, Callable[[FakeSession], ExportSettings]] = {}
        self.actions: list[object] = []
        self.connections = 0  # each session gets a connection id of its own, as the FSM's

    def __getitem__(self, name: str) -> FakeSession:
        return self.peers[name]

    def add(
        self,
        name: str,
        address: str,
        *,
        rr_client: bool = False,
        import_policy: ImportPolicy = accept_import,
        export: Callable[[FakeSession], ExportSettings] | None = None,
        protocol: str = "",
        preference: int | None = None,
    ) -> FakeSession:
        """Configure a peer (its session is not up yet)."""
        session = FakeSession(address)
        self.peers[name] = session
        self.exports[name] = export or (lambda s: export_settings(s, s.negotiated))
        settings = PeerSettings(
            name=address,
            address=ip(address),
            packed_address=ipaddress.ip_address(address).packed,
            import_policy=import_policy,
            import_per_route=import_policy is accept_import,
            rr_client=rr_client,
            log=session.log,
            protocol=protocol,
            preference=preference,
        )
        self.core.handle(PeerAdded(session, settings), self.now)
        return session

    def handle(self, event: RibEvent) -> None:
        self.core.handle(event, self.now)

    def up(
        self,
        name: str,
        router_id: str | None = None,
        *,
        asn: int = LOCAL_AS,
        ours: tuple[Capability, ...] | None = None,
        theirs: tuple[Capability, ...] | None = None,
    ) -> None:
        """The peer's session comes up (what it held from an earlier session is forgotten).

        Like the transport, the session is on its new connection from now on: words the core
        still makes for the old one are not delivered (``run``).
        """
        session = self.peers[name]
        session.sent.clear()
        self.connections += 1
        up = up_event(
            session, router_id or session.name, asn=asn, ours=ours, theirs=theirs,
            conn=self.connections,
        )  # fmt: skip
        self.handle(PeerUp(session, up, self.exports[name](session)))

    def down(self, name: str, graceful: bool = False) -> None:
        session = self.peers[name]
        session.established_conn = None
        self.handle(PeerDown(session, SessionDown("test", graceful)))

    def announce(
        self, name: str, prefixes: list[int], next_hop: str | None = None, **attrs: object
    ) -> None:
        session = self.peers[name]
        updates = announce(session, prefixes, next_hop or session.name, **attrs)
        self.handle(UpdatesIn(session, updates))

    def withdraw(self, name: str, prefixes: list[int]) -> None:
        update = Update(unreach=(Unreach(V4, tuple(prefixes)),))
        self.handle(UpdatesIn(self.peers[name], (update,)))

    def run(self, should_yield: Callable[[], bool] = lambda: False) -> list[object]:
        """Let the core work until it is done (or ``should_yield``); deliver its writes."""
        out: list[object] = []
        while True:
            actions = self.core.work(self.now, should_yield)
            for action in actions:
                if isinstance(action, Send):
                    deliver(action)
                else:
                    out.append(action)
            if not self.core.has_work:
                break
        self.actions.extend(out)
        return out

    def advance(self, seconds: float) -> list[object]:
        """Move the clock, fire the timers that are due, work."""
        self.now += seconds
        self.core.handle_timer(self.now)
        return self.run()


def deliver(send: Send) -> None:
    """What the shell does with a ``Send``: write it if the session is still on its connection."""
    session: FakeSession = send.peer  # type: ignore[assignment]
    if session.established_conn == send.conn:
        session.send(send.data)


def reflecting(cluster_id: str) -> Callable[[FakeSession], ExportSettings]:
    """Export settings towards a route-reflector client."""

    def export(session: FakeSession) -> ExportSettings:
        return replace(
            export_settings(session, session.negotiated),
            reflect=Reflection(ip(cluster_id), PeerRole.CLIENT),
        )

    return export
