"""Myna's BFD runtime as a process of its own inside a test host's namespace.

Data flow: ``tests/testbed/bfd_peers.py`` starts this script in a namespace with the path of a
JSON list of ``PeerConfig`` fields, an events file and a status file. It starts a
``BfdService`` (whose engine process starts in the same namespace), adds the sessions, appends
one JSON line per state change (and per change of the peer's state or of whether it is
heard) to the events file (with the engine's monotonic time of the
change: the clock is the same in every namespace) and rewrites the status file (write, then
rename) every 100 ms. SIGTERM closes the service and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bfd.auth import AuthKey, AuthSettings
from bfd.ipc import PeerConfig
from bfd.service import BfdRemoteChange, BfdService, BfdStateChange
from bfd.wire_codes import AuthType, HopMode


class EventFile:
    """A ``BfdListener`` writing each change as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", buffering=1)

    def bfd_state_changed(self, change: BfdStateChange) -> None:
        record = {
            "key": change.key,
            "old": change.old.label,
            "new": change.new.label,
            "diagnostic": int(change.diagnostic),
            "remote_state": change.remote_state.label,
            "at": change.at,
            "failure": change.failure,
        }
        self.file.write(json.dumps(record) + "\n")

    def bfd_remote_changed(self, change: BfdRemoteChange) -> None:
        record = {
            "key": change.key,
            "remote": change.state.label,
            "heard": change.heard,
            "remote_diagnostic": int(change.diagnostic),
            "at": change.at,
        }
        self.file.write(json.dumps(record) + "\n")

    def bfd_session_failed(self, key: str, reason: str) -> None:
        self.file.write(json.dumps({"key": key, "failed": reason}) + "\n")


def config_from(raw: dict[str, Any]) -> PeerConfig:
    auth = raw.pop("auth", None)
    settings = None
    if auth is not None:
        settings = AuthSettings(
            AuthType[auth["type"]], (AuthKey(auth.get("key_id", 1), auth["secret"].encode()),)
        )
    return PeerConfig(**{**raw, "mode": HopMode(raw.get("mode", "single-hop")), "auth": settings})


async def main(config_path: str, events_path: str, status_path: str) -> None:
    service = BfdService()
    await service.start()
    events = EventFile(Path(events_path))
    for raw in json.loads(Path(config_path).read_text()):
        service.add_session(config_from(raw), events)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    status = Path(status_path)
    while not stop.is_set():
        snapshot = await service.status()
        record = {"sessions": snapshot.sessions, "dropped": snapshot.dropped,
                  "engine_pid": service.engine_pid}  # fmt: skip
        temporary = status.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    await service.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
