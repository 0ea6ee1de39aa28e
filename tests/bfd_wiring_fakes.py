"""The BFD wiring's collaborators as fakes: the BFD service and a BGP session, recording.

Used by ``test_bfd_wiring`` and ``test_bfd_rfc_rules`` to drive ``bgpd.bfd_peers.BfdPeers``
without an engine process or a BGP connection.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from bfd import ipc
from bfd.service import BfdStatus
from bgpd.config import Peer, parse_config
from speaker.session_events import SessionSettings
from speaker.session_fsm import PeerFsm

NAME = "198.18.0.2"


class Engine:
    """What the wiring asked of the BFD service."""

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

    async def status(self) -> BfdStatus:
        return BfdStatus({}, {}, 0)

    def stop(self) -> None:
        self.running = False

    async def close(self) -> None:
        self.stop()


class Session:
    """A BGP session as the wiring sees it; records the BFD verdicts."""

    def __init__(self, local: str | None = None) -> None:
        self.name = NAME
        self.fsm = PeerFsm(SessionSettings(local_as=64512, router_id=1, peer_as=64512))
        self.log = logging.LoggerAdapter(logging.getLogger("test"), {})
        self.observers: list[Any] = []
        self.verdicts: list[str] = []
        self.local = local

    def local_address(self) -> str | None:
        return self.local

    def bfd_down(self) -> None:
        self.verdicts.append("down")

    def bfd_up(self, why: str) -> None:
        self.verdicts.append(f"up: {why}")


def peer(**fields: Any) -> Peer:
    data = {"router_id": "198.18.0.1", "local_as": 64512,
            "peers": [{"address": NAME, "as": 64512, **fields}]}  # fmt: skip
    (parsed,) = parse_config(yaml.safe_dump(data)).peers
    return parsed
