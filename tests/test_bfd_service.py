"""The daemon-facing BFD API with its engine process, without peers: messages, failures, exits.

Sessions that reach peers are tested in ``test_interop_bfd.py`` (namespaces, root); here the
engine runs in this test's own namespace and no session ever binds a socket.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bfd import ipc
from bfd.auth import AuthKey, AuthSettings
from bfd.ipc import PeerConfig
from bfd.service import BfdError, BfdRemoteChange, BfdService, BfdStateChange
from bfd.wire_codes import AuthType, Diagnostic, HopMode, State


class Heard:
    def __init__(self) -> None:
        self.changes: list[BfdStateChange] = []
        self.failures: list[tuple[str, str]] = []
        self.remote: list[BfdRemoteChange] = []
        self.event = asyncio.Event()

    def bfd_state_changed(self, change: BfdStateChange) -> None:
        self.changes.append(change)
        self.event.set()

    def bfd_remote_changed(self, change: BfdRemoteChange) -> None:
        self.remote.append(change)

    def bfd_session_failed(self, key: str, reason: str) -> None:
        self.failures.append((key, reason))
        self.event.set()


def test_messages_survive_the_wire() -> None:
    config = PeerConfig(
        key="k",
        peer="2001:db8::2",
        local="2001:db8::1",
        mode=HopMode.MULTIHOP,
        desired_min_tx_us=100_000,
        auth=AuthSettings(AuthType.KEYED_SHA1, (AuthKey(3, b"\x00\xffkey"),), 3),
        min_ttl=250,
        idle_tx_us=2_000_000,
    )
    for message in (
        ipc.AddSession(config),
        ipc.ReconfigureSession(config),
        ipc.RemoveSession("k"),
        ipc.SetAdminDown("k", True),
        ipc.StatusRequest(7),
        ipc.SessionStateChanged("k", 3, 1, 1, 3, 12.5),
        ipc.RemoteStateChanged("k", 0, True, 7, 13.5),
        ipc.SessionFailed("k", "why"),
    ):
        assert ipc.decode(ipc.encode(message)) == message
    with pytest.raises(ValueError, match="unknown"):
        ipc.decode(b'{"kind": "Nope"}')


def test_failure_means_up_to_down_not_by_the_peer_admin() -> None:
    def change(old: State, new: State, remote: State) -> BfdStateChange:
        return BfdStateChange("k", old, new, Diagnostic.NO_DIAGNOSTIC, remote, 0.0)

    assert change(State.UP, State.DOWN, State.UP).failure
    assert change(State.UP, State.DOWN, State.DOWN).failure
    # RFC 5882 3.2: the peer's AdminDown is not a path failure.
    assert not change(State.UP, State.DOWN, State.ADMIN_DOWN).failure
    assert not change(State.INIT, State.DOWN, State.DOWN).failure
    assert not change(State.UP, State.ADMIN_DOWN, State.UP).failure


@pytest.mark.asyncio
async def test_a_session_that_cannot_be_made_is_reported_to_its_listener() -> None:
    service = BfdService()
    await service.start()
    try:
        assert service.engine_pid not in (None, os.getpid())
        heard = Heard()
        service.add_session(PeerConfig(key="x", peer="198.18.0.2", interface="nosuchif0"), heard)
        await asyncio.wait_for(heard.event.wait(), 10)
        ((key, reason),) = heard.failures
        assert key == "x" and "OSError" in reason
        status = await service.status()
        assert status.sessions == {}
        with pytest.raises(ValueError, match="reconfigure"):
            service.reconfigure_session(PeerConfig(key="x", peer="198.18.0.2"))
        with pytest.raises(ValueError, match="exists"):
            service.add_session(PeerConfig(key="y", peer="198.18.0.3", interface="no0"), heard)
            service.add_session(PeerConfig(key="y", peer="198.18.0.3", interface="no0"), heard)
    finally:
        await service.close()


@pytest.mark.asyncio
async def test_an_engine_that_dies_is_reported_to_every_listener() -> None:
    service = BfdService()
    await service.start()
    heard = Heard()
    assert service.engine_pid is not None
    # Stopped, the engine cannot answer the request; killed, it never will.
    os.kill(service.engine_pid, signal.SIGSTOP)
    service.add_session(PeerConfig(key="kept", peer="198.18.0.2", interface="no0"), heard)
    os.kill(service.engine_pid, signal.SIGKILL)
    await asyncio.wait_for(heard.event.wait(), 10)
    assert heard.failures == [("kept", "the BFD engine exited")]
    with pytest.raises(BfdError, match="not running"):
        service.set_admin_down("kept", True)
    await service.close()
