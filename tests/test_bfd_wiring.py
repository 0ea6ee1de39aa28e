"""The daemon's BFD wiring (``bgpd.bfd_peers``) between the config, the engine and the sessions.

The engine is replaced by a recorder of the calls the wiring makes (add, reconfigure, remove)
and the BGP session by a recorder of the verdicts it is fed, so that each rule is checked on its
own, without sockets or root: RFC 5882 3.2 and 4.2 (only a fall from Up that is not the peer's
AdminDown is a failure), 4.1 (an administratively disabled BFD, or none at all, holds nothing
down), 3.3 (configuring BFD again disturbs no client: timers change in place, RFC 5880 6.8.3;
a new path is a new session), the local address rule (the source address, else the
Established session's, else the kernel's route to the peer), and the end of a hold after a
BFD failure: the peer's AdminDown (4.1, MUST), or the hold limit when the peer's BFD has
fallen silent (4.1, "does not support BFD": ``bgpd.bfd_hold``).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from bfd_wiring_fakes import NAME, Engine, Session, peer

from bfd.service import BfdRemoteChange, BfdStateChange
from bfd.wire_codes import Diagnostic, HopMode, State
from bgpd import bfd_peers
from bgpd.bfd_peers import BfdPeers
from speaker.session_events import State as BgpState
from speaker.session_events import StateChange


def change(old: State, new: State, remote: State, diagnostic: Diagnostic) -> BfdStateChange:
    return BfdStateChange(NAME, old, new, diagnostic, remote, time.monotonic())


@pytest.fixture
def wired() -> tuple[BfdPeers, Engine, Session]:
    wiring, engine, session = BfdPeers(), Engine(), Session()
    wiring.service = engine  # type: ignore[assignment]
    return wiring, engine, session


@pytest.mark.asyncio
async def test_a_session_is_made_from_the_config(wired: tuple[BfdPeers, Engine, Session]) -> None:
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd={"min_tx": 300, "multiplier": 3}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    ((what, config),) = engine.calls
    assert what == "add" and config.key == NAME and config.peer == NAME
    assert (config.local, config.mode) == ("198.18.0.1", HopMode.MULTIHOP)
    # BIRD's defaults but for what was given, in microseconds.
    assert (config.desired_min_tx_us, config.required_min_rx_us, config.detect_mult) == (
        300_000, 10_000, 3,
    )  # fmt: skip
    assert config.idle_tx_us == 1_000_000 and config.auth is None


@pytest.mark.asyncio
async def test_only_a_fall_from_up_that_is_no_admin_down_takes_bgp_down(
    wired: tuple[BfdPeers, Engine, Session],
) -> None:
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    listener = engine.listeners[NAME]
    up = change(State.INIT, State.UP, State.UP, Diagnostic.NO_DIAGNOSTIC)
    listener.bfd_state_changed(up)
    # The peer said AdminDown: not a failure (RFC 5882 3.2), and nothing to hold (4.1).
    listener.bfd_state_changed(
        change(State.UP, State.DOWN, State.ADMIN_DOWN, Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN)
    )
    listener.bfd_state_changed(up)
    # The path failed: BGP goes down.
    listener.bfd_state_changed(
        change(State.UP, State.DOWN, State.UP, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED)
    )
    # A session coming up from Down never was a failure (3.3).
    listener.bfd_state_changed(change(State.DOWN, State.INIT, State.DOWN, Diagnostic.NO_DIAGNOSTIC))
    listener.bfd_state_changed(up)
    assert session.verdicts == [
        "up: BFD session Up",
        "up: BFD administratively down",
        "up: BFD session Up",
        "down",
        "up: BFD session Up",
    ]


@pytest.mark.asyncio
async def test_timers_change_in_place_and_a_new_path_is_a_new_session(
    wired: tuple[BfdPeers, Engine, Session],
) -> None:
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    assert [what for what, _ in engine.calls] == ["add"]  # nothing changed: nothing sent
    wiring.attach(peer(source_address="198.18.0.1", bfd={"min_rx": 200}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    what, config = engine.calls[-1]
    assert what == "reconfigure" and config.key == NAME and config.required_min_rx_us == 200_000
    old_listener = engine.listeners[NAME]
    wiring.attach(peer(source_address="198.18.0.9", bfd={"min_rx": 200}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    assert engine.calls[-2:-1] == [("remove", NAME)]
    what, config = engine.calls[-1]
    assert what == "add" and config.key == f"{NAME}#1" and config.local == "198.18.0.9"
    # The old session's last words (its AdminDown) change nothing.
    old_listener.bfd_state_changed(
        change(State.UP, State.DOWN, State.UP, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED)
    )
    assert session.verdicts == []
    wiring.attach(peer(source_address="198.18.0.9", bfd=False), session)  # type: ignore[arg-type]
    assert engine.calls[-1] == ("remove", f"{NAME}#1") and wiring.peers == {}


@pytest.mark.asyncio
async def test_no_bfd_session_holds_nothing_down(
    wired: tuple[BfdPeers, Engine, Session],
) -> None:
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    listener = engine.listeners[NAME]
    listener.bfd_state_changed(change(State.INIT, State.UP, State.UP, Diagnostic.NO_DIAGNOSTIC))
    listener.bfd_state_changed(
        change(State.UP, State.DOWN, State.UP, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED)
    )
    assert session.verdicts[-1] == "down"
    listener.bfd_session_failed(NAME, "ValueError: bad")  # the engine dropped the session
    assert session.verdicts[-1] == "up: no BFD session (ValueError: bad)"
    # Disabling BFD for a held peer releases it too.
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    listener = engine.listeners[NAME]
    listener.bfd_state_changed(change(State.INIT, State.UP, State.UP, Diagnostic.NO_DIAGNOSTIC))
    listener.bfd_state_changed(
        change(State.UP, State.DOWN, State.UP, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED)
    )
    wiring.attach(peer(source_address="198.18.0.1", bfd=False), session)  # type: ignore[arg-type]
    assert session.verdicts[-1] == "up: BFD disabled"


@pytest.mark.asyncio
async def test_the_local_address_is_the_one_bgp_uses(
    wired: tuple[BfdPeers, Engine, Session],
) -> None:
    wiring, engine, session = wired
    # No source address, no session yet: the kernel's route to the peer decides; here, in this
    # test's namespace, that is the route to 127.0.0.2 (loopback), from 127.0.0.1.
    session.name = "127.0.0.2"
    wiring.attach(peer(bfd=True).model_copy(update={"address": "127.0.0.2"}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    ((_, config),) = engine.calls
    assert config.local == "127.0.0.1"
    # The BGP session came up from another address: the BFD session follows it.
    session.local = "127.0.0.3"
    (observe,) = session.observers
    observe(session, StateChange(BgpState.OPEN_CONFIRM, BgpState.ESTABLISHED, "up"))
    assert engine.calls[-2] == ("remove", "127.0.0.2")
    assert engine.calls[-1][1].local == "127.0.0.3"


@pytest.mark.asyncio
async def test_a_multihop_peer_without_a_route_waits(
    wired: tuple[BfdPeers, Engine, Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring, engine, session = wired
    # RFC 5883 4: a multihop session is an address pair; with no route to the peer there is
    # no local address yet, so no session, and the wiring tries again.
    monkeypatch.setattr(bfd_peers, "route_source", lambda _address: None)
    wiring.attach(peer(bfd=True), session)  # type: ignore[arg-type]
    entry = wiring.peers[NAME]
    assert engine.calls == []
    assert entry.error.startswith("no route to the peer") and entry.retry is not None
    assert wiring.rows == []
    await wiring.refresh()
    assert [(row["peer"], row["state"]) for row in wiring.rows] == [(NAME, "none")]
    monkeypatch.setattr(bfd_peers, "route_source", lambda _address: "198.18.0.1")
    wiring.attach(peer(bfd=True), session)  # type: ignore[arg-type]
    assert engine.calls[0][1].local == "198.18.0.1" and entry.retry is None
    await wiring.close()


def held(entry: bfd_peers.BfdPeer) -> bool:
    """``entry.failed``, read through a call: mypy would keep an assert's narrowing of it."""
    return entry.failed


def armed(entry: bfd_peers.BfdPeer) -> bool:
    """Whether the hold timer is armed (a call, for the same reason)."""
    return entry.hold_timer is not None


def remote(state: State, heard: bool, at: float, diagnostic: int = 0) -> BfdRemoteChange:
    return BfdRemoteChange(NAME, state, heard, diagnostic, at)


@pytest.mark.asyncio
async def test_a_peer_that_goes_silent_for_the_hold_limit_gets_bgp_back(
    wired: tuple[BfdPeers, Engine, Session], caplog: pytest.LogCaptureFixture
) -> None:
    # RFC 5882 4.1: "If it is believed that the neighboring system does not support BFD, the
    # establishment of a control protocol adjacency SHOULD NOT be blocked." The peer's BFD
    # went away without AdminDown (BIRD with "bfd on" removed): after hold_limit (90 s here)
    # held with nothing heard, BGP goes free, with a warning that says whose side it is.
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd={"hold_limit": "90 s"}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    listener = engine.listeners[NAME]
    entry = wiring.peers[NAME]
    t0 = time.monotonic()
    listener.bfd_remote_changed(remote(State.DOWN, True, t0))
    listener.bfd_state_changed(BfdStateChange(NAME, State.INIT, State.UP, 0, State.UP, t0))
    failed_at = t0 + 10
    listener.bfd_state_changed(BfdStateChange(
        NAME, State.UP, State.DOWN, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED, State.UP, failed_at
    ))  # fmt: skip
    listener.bfd_remote_changed(remote(State.UP, False, failed_at))
    assert session.verdicts == ["up: BFD session Up", "down"]
    # The timer is armed for the deadline, on the loop's (monotonic) clock.
    assert armed(entry)
    assert entry.hold_timer is not None
    loop = asyncio.get_running_loop()
    assert entry.hold_timer.when() == pytest.approx(loop.time() + failed_at + 90 - t0, abs=1)
    wiring.hold_due(NAME, failed_at + 89)
    assert session.verdicts[-1] == "down" and held(entry)
    # Heard again (the path back, its BFD sending Down: it runs BFD, the hold goes on), then
    # silent once more: the 90 s count from there.
    listener.bfd_remote_changed(remote(State.DOWN, True, failed_at + 50))
    assert not armed(entry)
    wiring.hold_due(NAME, failed_at + 200)
    assert held(entry)
    listener.bfd_remote_changed(remote(State.DOWN, False, failed_at + 60))
    wiring.hold_due(NAME, failed_at + 149)
    assert held(entry)
    with caplog.at_level(logging.WARNING, "test"):
        wiring.hold_due(NAME, failed_at + 150)
    assert session.verdicts[-1] == "up: no BFD from the peer for 90 s (it runs no BFD)"
    assert not held(entry) and not armed(entry)
    (warning,) = [
        r.getMessage() for r in caplog.records if "no packet from the peer" in r.getMessage()
    ]
    assert "run no BFD any more (its side" in warning
    # BFD comes back later and fails again: BGP goes down again (and is held again).
    listener.bfd_state_changed(BfdStateChange(NAME, State.INIT, State.UP, 0, State.UP, t0 + 500))
    listener.bfd_state_changed(BfdStateChange(
        NAME, State.UP, State.DOWN, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED, State.UP, t0 + 600
    ))  # fmt: skip
    assert session.verdicts[-2:] == ["up: BFD session Up", "down"]
    assert held(entry)
    # hold_limit null: RFC 5882 4.1 read strictly, held until BFD is Up.
    wiring.attach(peer(source_address="198.18.0.1", bfd={"hold_limit": None}),
                  session)  # type: ignore[arg-type]  # fmt: skip
    listener.bfd_remote_changed(remote(State.UP, False, t0 + 600))
    assert not armed(entry)
    wiring.hold_due(NAME, t0 + 10_000)
    assert held(entry) and session.verdicts[-1] == "down"
    await wiring.close()


@pytest.mark.asyncio
async def test_the_peers_admin_down_releases_a_hold_only_when_heard(
    wired: tuple[BfdPeers, Engine, Session],
) -> None:
    # RFC 5882 4.1: "If the session state on either the local or remote system (if known) is
    # AdminDown ... the establishment of a control protocol adjacency MUST be allowed."
    wiring, engine, session = wired
    wiring.attach(peer(source_address="198.18.0.1", bfd=True), session)  # type: ignore[arg-type]
    listener = engine.listeners[NAME]
    t0 = time.monotonic()
    listener.bfd_state_changed(BfdStateChange(NAME, State.INIT, State.UP, 0, State.UP, t0))
    listener.bfd_state_changed(BfdStateChange(
        NAME, State.UP, State.DOWN, Diagnostic.CONTROL_DETECTION_TIME_EXPIRED, State.UP, t0 + 1
    ))  # fmt: skip
    listener.bfd_remote_changed(remote(State.UP, False, t0 + 1))
    listener.bfd_remote_changed(remote(State.DOWN, True, t0 + 5))  # back, still running BFD
    assert session.verdicts[-1] == "down"
    listener.bfd_remote_changed(remote(State.ADMIN_DOWN, True, t0 + 6, diagnostic=7))
    assert session.verdicts[-1] == "up: BFD administratively down at the peer"
    assert not wiring.peers[NAME].failed
    await wiring.close()


def test_a_replaced_session_that_never_hears_the_peer_still_ends_the_hold() -> None:
    """The bounded hold survives the replacement of the held BFD session (a review's finding).

    A session reports only changes of (remote state, heard) from (Down, not heard): a new one
    that never hears the peer says nothing, so the hold's "heard" must start again with it,
    or a hold the old session's "heard" left unbounded stays so (``bgpd.bfd_hold``).
    """
    engine, session, wiring = Engine(), Session(), BfdPeers()
    wiring.service = engine  # type: ignore[assignment]
    cfg = {"hold_limit": "60 s"}
    wiring.attach(peer(source_address="198.18.0.1", bfd=cfg), session)  # type: ignore[arg-type]
    listener = engine.listeners[NAME]
    t0 = time.monotonic()
    listener.bfd_remote_changed(BfdRemoteChange(NAME, State.DOWN, True, 0, t0))
    listener.bfd_state_changed(BfdStateChange(NAME, State.INIT, State.UP, 0, State.UP, t0))
    # The peer's Detection Time for us ran out (a one-way loss): it says Down, we fall from Up.
    listener.bfd_remote_changed(BfdRemoteChange(NAME, State.DOWN, True, 1, t0 + 10))
    listener.bfd_state_changed(BfdStateChange(
        NAME, State.UP, State.DOWN, Diagnostic.NEIGHBOR_SIGNALED_SESSION_DOWN, State.DOWN, t0 + 10
    ))  # fmt: skip
    assert session.verdicts[-1] == "down"
    # A reload moves the session to another local address: the session is replaced.
    wiring.attach(peer(source_address="198.18.0.5", bfd=cfg), session)  # type: ignore[arg-type]
    assert [what for what, _ in engine.calls] == ["add", "remove", "add"]
    # From here on the peer sends nothing at all (its operator removed BFD, no AdminDown);
    # the new session never hears it, so it never reports a change. Hours later:
    wiring.hold_due(NAME, t0 + 10 + 3600)
    assert session.verdicts[-1].startswith("up"), (
        "held for an hour with nothing heard since the replacement: hold_limit 60 s ignored",
        session.verdicts,
    )
    wiring.stop()
