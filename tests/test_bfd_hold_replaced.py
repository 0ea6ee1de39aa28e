"""The bounded hold survives the replacement of the held BFD session (a review's finding).

``bgpd.bfd_hold``: "``HoldLimit`` decides when that belief is reached: the session has been
held for ``limit`` seconds and for the last ``limit`` seconds the peer has not been heard at
all". The "heard" half comes only from ``RemoteChanged`` reports of the *current* session key
(``BfdPeers.remote_changed`` ignores other keys), and a session reports only a *change* of
(remote state, heard), starting from (Down, not heard). When the held session is replaced
(``_sync``: its path changed on a reload, e.g. ``bfd.local``, the hop mode, ``source_address``)
the ``HoldLimit`` keeps the old session's last word: if that was "heard", the new session,
which never hears the peer, never says "not heard" (nothing changed from its initial
(Down, False)), so ``deadline`` stays None and the hold is unbounded again, although the peer
has sent nothing since the replacement.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import yaml

from bfd import ipc
from bfd.service import BfdRemoteChange, BfdStateChange
from bfd.wire_codes import Diagnostic, State
from bgpd.bfd_peers import BfdPeers
from bgpd.config import Peer, parse_config
from speaker.session_events import SessionSettings
from speaker.session_fsm import PeerFsm

NAME = "198.18.0.2"


class _Engine:
    def __init__(self) -> None:
        self.running = True
        self.calls: list[tuple[str, Any]] = []
        self.listeners: dict[str, Any] = {}

    def add_session(self, config: ipc.PeerConfig, listener: Any) -> None:
        self.calls.append(("add", config))
        self.listeners[config.key] = listener

    def reconfigure_session(self, config: ipc.PeerConfig) -> None:
        self.calls.append(("reconfigure", config))

    def remove_session(self, key: str) -> None:
        self.calls.append(("remove", key))
        self.listeners.pop(key, None)

    def stop(self) -> None:
        self.running = False


class _Session:
    def __init__(self) -> None:
        self.name = NAME
        self.fsm = PeerFsm(SessionSettings(local_as=64512, router_id=1, peer_as=64512))
        self.log = logging.LoggerAdapter(logging.getLogger("test"), {})
        self.observers: list[Any] = []
        self.verdicts: list[str] = []

    def local_address(self) -> str | None:
        return None

    def bfd_down(self) -> None:
        self.verdicts.append("down")

    def bfd_up(self, why: str) -> None:
        self.verdicts.append(f"up: {why}")


def _peer(**fields: Any) -> Peer:
    data = {"router_id": "198.18.0.1", "local_as": 64512,
            "peers": [{"address": NAME, "as": 64512, **fields}]}  # fmt: skip
    (parsed,) = parse_config(yaml.safe_dump(data)).peers
    return parsed


def test_a_replaced_session_that_never_hears_the_peer_still_ends_the_hold() -> None:
    engine, session, wiring = _Engine(), _Session(), BfdPeers()
    wiring.service = engine  # type: ignore[assignment]
    cfg = {"hold_limit": "60 s"}
    wiring.attach(_peer(source_address="198.18.0.1", bfd=cfg), session)  # type: ignore[arg-type]
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
    wiring.attach(_peer(source_address="198.18.0.5", bfd=cfg), session)  # type: ignore[arg-type]
    assert [what for what, _ in engine.calls] == ["add", "remove", "add"]
    # From here on the peer sends nothing at all (its operator removed BFD, no AdminDown);
    # the new session never hears it, so it never reports a change. Hours later:
    wiring.hold_due(NAME, t0 + 10 + 3600)
    assert session.verdicts[-1].startswith("up"), (
        "held for an hour with nothing heard since the replacement: hold_limit 60 s ignored",
        session.verdicts,
    )
    wiring.stop()
