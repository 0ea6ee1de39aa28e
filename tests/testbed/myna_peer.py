"""Myna itself as a peer of the test bed: ``myna run`` in a host's namespace.

Data flow: ``_launch`` renders the YAML config (the neighbors, the prefixes to announce, the
bed's short timers) into ``workdir`` and starts ``.venv/bin/myna run -c FILE`` with its log in
``workdir/myna.log``. The daemon writes a JSON status file (``rundir/status.json``) on every
session state change and after each burst of UPDATEs; ``session_state`` and
``received_prefixes`` read it (the control socket replaces it in the daemon issue).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .peers import REPO_ROOT, PeerDaemon, PeerError, State, normalise_prefix, normalise_state

MYNA = REPO_ROOT / ".venv" / "bin" / "myna"


class MynaPeer(PeerDaemon):
    """Myna under test (see the module docstring)."""

    kind = "myna"

    @property
    def config_path(self) -> Path:
        """The YAML file the daemon runs with."""
        return self.workdir / "myna.yaml"

    @property
    def status_path(self) -> Path:
        """The JSON status file the daemon keeps."""
        return self.rundir / "status.json"

    @property
    def control_path(self) -> Path:
        """The daemon's control socket (``myna show -s PATH ...``)."""
        return self.rundir / "myna.ctl"

    def config(self) -> dict[str, Any]:
        """The config as data (tests may tweak it before ``start``)."""
        return {
            "router_id": self.router_id,
            "local_as": self.local_as,
            "listen": {"addresses": ["0.0.0.0", "::"], "port": 179},
            "timers": {
                "hold_time": self.hold_time,
                "keepalive_time": self.keepalive_time,
                "connect_delay": 0.5,
                "connect_retry": 2,
                "error_wait": [1, 4],
            },
            "announce": list(self.prefixes),
            "status_file": str(self.status_path),
            "control": {"socket": str(self.control_path)},
            "log_level": "debug",
            "peers": [
                {
                    "address": n.address,
                    "as": n.remote_as,
                    "port": n.port,
                    "passive": n.passive,
                    **({"password": n.password} if n.password else {}),
                    **({"route_reflector_client": True} if n.rr_client else {}),
                }
                for n in self.neighbors
            ],
        }

    def _launch(self) -> None:
        self.status_path.unlink(missing_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self._spawn(MYNA, "run", "-c", self.config_path, log="myna.log")

    def _status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError) as exc:
            raise PeerError(f"{self}: no status file yet ({exc})") from None
        return data

    def _peer(self, neighbor_address: str) -> dict[str, Any]:
        address = self.neighbor(neighbor_address).address
        peers: dict[str, Any] = self._status()["peers"]
        if address not in peers:
            raise PeerError(f"{self}: no session with {address} in the status file")
        peer: dict[str, Any] = peers[address]
        return peer

    def session_state(self, neighbor_address: str) -> State:
        """The state Myna's status file reports."""
        return normalise_state(self._peer(neighbor_address)["state"])

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        """The prefixes Myna holds from the neighbor."""
        routes: dict[str, list[str]] = self._peer(neighbor_address)["routes"]
        return frozenset(normalise_prefix(p) for prefixes in routes.values() for p in prefixes)
