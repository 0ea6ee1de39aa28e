"""GoBGP peer: ``gobgpd`` in one host's namespace, driven and queried with the ``gobgp`` CLI.

Data flow: ``_launch`` writes ``gobgpd.toml`` into ``workdir`` and starts gobgpd in the
foreground with its gRPC API on 127.0.0.1:50051 (each namespace has its own loopback, so every
peer can use that port; the CLI must run inside the same namespace) and pprof off (it would
otherwise take localhost:6060). GoBGP's config file cannot hold routes, so ``start`` then waits
for the API to answer and adds each prefix with ``gobgp global rib add``; ``announce`` and
``withdraw`` do the same while it runs.

Queries: ``gobgp neighbor <addr> -j`` gives ``state.session_state``, GoBGP's enum (1 Idle ..
6 Established, or its name in some versions); ``gobgp neighbor <addr> adj-in -a <afi> -j`` the
received prefixes, as the keys of a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from .peers import PeerDaemon, PeerError, State, is_ipv6, normalise_prefix, normalise_state
from .topology import wait_for

GOBGPD = Path("/usr/bin/gobgpd")
GOBGP = Path("/usr/bin/gobgp")
API_ADDRESS, API_PORT = "127.0.0.1", 50051
API_TIMEOUT = 15.0
CONNECT_RETRY = 1  # seconds
# After a session resets GoBGP stays Idle this long before it tries again (default 30 s).
IDLE_HOLD_AFTER_RESET = 1

# GoBGP's api.PeerState.SessionState enum.
_SESSION_STATES = {
    0: State.IDLE,  # UNKNOWN
    1: State.IDLE,
    2: State.CONNECT,
    3: State.ACTIVE,
    4: State.OPEN_SENT,
    5: State.OPEN_CONFIRM,
    6: State.ESTABLISHED,
}


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


class GoBgpPeer(PeerDaemon):
    """GoBGP 3.x: one ``[[neighbors]]`` per Neighbor, prefixes added through the API."""

    kind = "gobgp"

    def start(self) -> Self:
        super().start()
        if self.prefixes:
            wait_for(
                lambda: self._checked(lambda: self.gobgp("global")),
                API_TIMEOUT,
                f"{self}'s gRPC API to answer",
            )
            for prefix in self.prefixes:
                self._rib("add", prefix)
        return self

    def _launch(self) -> None:
        config = self.workdir / "gobgpd.toml"
        config.write_text(self.render())
        self._spawn(
            GOBGPD, "-f", config,
            "-p",  # plain-text log lines instead of JSON
            "--api-hosts", f"{API_ADDRESS}:{API_PORT}",
            "--pprof-disable",
            log="gobgpd.log",
        )  # fmt: skip

    def render(self) -> str:
        """gobgpd's TOML config."""
        lines = [
            "[global.config]",
            f"  as = {self.local_as}",
            f'  router-id = "{self.router_id}"',
            # Listen on this host's own addresses only.
            f'  local-address-list = ["{self.host.ipv4}", "{self.host.ipv6}"]',
        ]
        for neighbor in self.neighbors:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{neighbor.address}"',
                f"    peer-as = {neighbor.remote_as}",
            ]
            if neighbor.password is not None:
                lines.append(f"    auth-password = {_toml_string(neighbor.password)}")
            lines += [
                "  [neighbors.timers.config]",
                f"    connect-retry = {CONNECT_RETRY}",
                f"    hold-time = {self.hold_time}",
                f"    keepalive-interval = {self.keepalive_time}",
                f"    idle-hold-time-after-reset = {IDLE_HOLD_AFTER_RESET}",
                "  [neighbors.transport.config]",
                f'    local-address = "{self.local_address(neighbor)}"',
                f"    remote-port = {neighbor.port}",
                f"    passive-mode = {'true' if neighbor.passive else 'false'}",
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                f'      afi-safi-name = "{"ipv6" if neighbor.ipv6 else "ipv4"}-unicast"',
            ]
        return "\n".join(lines) + "\n"

    def gobgp(self, *args: str) -> str:
        """The ``gobgp`` CLI's output for ``args``, run in the namespace against this gobgpd."""
        return self._run(GOBGP, "--host", API_ADDRESS, "--port", str(API_PORT), *args)

    def _json(self, *args: str) -> Any:
        output = self.gobgp(*args, "-j")
        if not output.strip():
            return None
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            raise PeerError(f"gobgp {' '.join(args)}: {output.strip()}") from None

    def session_state(self, neighbor_address: str) -> State:
        neighbor = self.neighbor(neighbor_address)
        data = self._json("neighbor", neighbor.address)
        try:
            raw = data["state"].get("session_state", 0)
        except (KeyError, TypeError, AttributeError):
            raise PeerError(f"no state for {neighbor.address} in {data}") from None
        if isinstance(raw, int):
            return _SESSION_STATES[raw]
        return normalise_state(str(raw))

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        neighbor = self.neighbor(neighbor_address)
        afi = "ipv6" if neighbor.ipv6 else "ipv4"
        data = self._json("neighbor", neighbor.address, "adj-in", "-a", afi)
        if not data:
            return frozenset()
        return frozenset(normalise_prefix(prefix) for prefix in data)

    def _apply_prefixes(self) -> None:
        wanted = set(self.prefixes)
        present: set[str] = set()
        for afi in ("ipv4", "ipv6"):
            data = self._json("global", "rib", "-a", afi)
            for prefix, paths in (data or {}).items():
                # Local routes are the ones with no neighbor behind them.
                if any("neighbor-ip" not in path for path in paths):
                    present.add(normalise_prefix(prefix))
        for prefix in sorted(present - wanted):
            self._rib("del", prefix)
        for prefix in sorted(wanted - present):
            self._rib("add", prefix)

    def _rib(self, verb: str, prefix: str) -> None:
        self.gobgp("global", "rib", verb, "-a", "ipv6" if is_ipv6(prefix) else "ipv4", prefix)
