"""The control API: what ``myna show ...`` and ``myna reload`` ask, answered from the daemon.

Data flow: ``control_socket`` reads one JSON request per line (``{"command": "peers"}``,
``{"command": "routes", "prefix": "198.19.1.0/26"}``, ``{"command": "reload"}``...) and calls
``ControlApi.handle``, which runs on the event loop between two RIB slices, reads the daemon's
state (sessions, RIB, kernel sync) without changing it, and returns plain JSON-able data; the
CLI turns that into tables. ``reload`` loads and validates the file the daemon was started
with, then applies it (``Daemon.reload``); an invalid file changes nothing and the answer lists
its problems. Where the file is read from is ``loader``: Myna's YAML by default, a BIRD file
for the BIRD front-end (``bgpd.bird_run``), so SIGHUP, ``myna reload`` and BIRD's
``configure`` take one path; ``reloaded`` hooks run after a reload was applied. The status
file and the BIRD-compatible socket read the same views. ``bfd``
needs the BFD engine's status, which is asked for over its socket: the socket calls
``handle_async``, which refreshes it first (``BfdPeers.refresh``).
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bgpd.config import ConfigError, DaemonConfig, load_config
from rib.route import Route
from speaker.nlri import prefix_family, prefix_from_text, prefix_text
from speaker.wire_codes import Family

if TYPE_CHECKING:
    from bgpd.bird_control.protocols import BirdFront
    from bgpd.daemon_state import DaemonState
    from bgpd.reload_plan import ReloadPlan

ROUTE_LIMIT = 10_000  # `show routes` without a prefix lists at most this many
VERSION = "0.1.0"


class RequestError(Exception):
    """The request is wrong (the caller's fault): unknown command, bad prefix."""


def peer_kind(daemon: DaemonState, address: str) -> str:
    """``mesh``, ``node`` or ``global``: how confd names the peer's BIRD protocol."""
    peer = daemon.peer_configs.get(address)
    return getattr(peer, "kind", "global") if peer is not None else "global"


def bird_name(kind: str, address: str) -> str:
    """``Mesh_198_18_0_2``: confd's protocol name (dots and colons become underscores)."""
    prefix = {"mesh": "Mesh", "node": "Node"}.get(kind, "Global")
    return f"{prefix}_{address.replace('.', '_').replace(':', '_')}"


def _address(next_hop: bytes) -> str:
    if len(next_hop) >= 16:
        return str(ipaddress.ip_address(next_hop[:16]))
    return str(ipaddress.ip_address(next_hop)) if len(next_hop) == 4 else ""


def route_view(route: Route) -> dict[str, Any]:
    """One path as data."""
    attrs = route.attrs
    out: dict[str, Any] = {
        "from": route.source.name,
        "origin": route.source.origin.name.lower(),
        "next_hop": _address(attrs.next_hop),
        "as_path": [asn for _, asns in attrs.as_path for asn in asns],
    }
    if attrs.local_pref is not None:
        out["local_pref"] = attrs.local_pref
    if attrs.med is not None:
        out["med"] = attrs.med
    if attrs.communities:
        out["communities"] = [f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities]
    if attrs.originator_id is not None:
        out["originator_id"] = str(ipaddress.IPv4Address(attrs.originator_id))
    if attrs.cluster_list:
        out["cluster_list"] = [str(ipaddress.IPv4Address(c)) for c in attrs.cluster_list]
    if route.path_id:
        out["path_id"] = route.path_id
    if route.stale:
        out["stale"] = route.stale.name.lower()
    return out


class ControlApi:
    """Answers control requests from the daemon's state (see the module docstring)."""

    def __init__(self, daemon: DaemonState, config_path: Path | None) -> None:
        self.daemon = daemon
        self.config_path = config_path
        self.started = time.time()
        self.reconfigured = self.started  # wall clock of the last reload applied
        # Reads and validates the file again; ConfigError (with every problem) when invalid.
        self.loader: Callable[[], DaemonConfig] | None = None
        if config_path is not None:
            self.loader = lambda: load_config(config_path)
        self.reloaded: list[Callable[[ReloadPlan], None]] = []
        self.bird: BirdFront | None = None  # the BIRD file as applied, in BIRD mode
        self._commands: dict[str, Callable[[dict[str, Any]], Any]] = {
            "status": self.status,
            "peers": self.peers,
            "routes": self.routes,
            "rib": self.rib,
            "reload": self.reload,
            "bfd": self.bfd,
        }

    async def handle_async(self, request: dict[str, Any]) -> dict[str, Any]:
        """``handle``, after reading what the request needs from the BFD engine."""
        if request.get("command") == "bfd":
            await self.daemon.bfd.refresh()
        return self.handle(request)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request -> ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": ...}``."""
        command = request.get("command")
        handler = self._commands.get(str(command))
        if handler is None:
            known = ", ".join(sorted(self._commands))
            return {"ok": False, "error": f"unknown command {command!r} (known: {known})"}
        try:
            return {"ok": True, "data": handler(request)}
        except RequestError as error:
            return {"ok": False, "error": str(error)}

    # --- views -----------------------------------------------------------------------------

    def status(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        """The daemon as a whole."""
        daemon = self.daemon
        sessions = daemon.sessions
        return {
            "version": VERSION,
            "node_name": daemon.config.node_name,
            "router_id": daemon.config.router_id,
            "local_as": daemon.config.local_as,
            "pid": os.getpid(),
            "started": self.started,
            "uptime": time.time() - self.started,
            "peers": len(sessions),
            "established": sum(1 for s in sessions if s.state.label == "Established"),
            "loc_rib": daemon.rib.view.prefix_count(),
            "graceful_restart_recovery": daemon.rib.view.deferring,
            "kernel": daemon.status.kernel(),
        }

    def peers(self, _request: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every configured peer: state, since when, why, prefixes."""
        daemon = self.daemon
        out = []
        for session in daemon.sessions:
            peer = daemon.rib.view.peer(session.name)
            config = daemon.peer_configs.get(session.name)
            kind = peer_kind(daemon, session.name)
            out.append(
                {
                    "address": session.name,
                    "as": config.asn if config is not None else None,
                    "kind": kind,
                    "name": bird_name(kind, session.name),
                    "state": session.state.label,
                    "since": session.state_since,
                    "info": session.state_info,
                    "last_error": session.fsm.last_error,
                    "received": sum(peer.received.values()) if peer is not None else 0,
                    "advertised": daemon.rib.view.advertised(session.name),
                    "route_reflector_client": bool(peer is not None and peer.rr_client),
                }
            )
        return out

    def bfd(self, _request: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every BFD-enabled peer's session, as last read from the engine."""
        return self.daemon.bfd.rows

    def routes(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Loc-RIB routes: every candidate of one prefix, or the best of all (up to a limit)."""
        view = self.daemon.rib.view
        text = request.get("prefix")
        if text:
            try:
                prefix, family = prefix_from_text(str(text)), prefix_family(str(text))
            except ValueError:
                raise RequestError(f"{text!r} is not a prefix like 198.19.1.0/26") from None
            best, ecmp = view.lookup(family, prefix)
            return [
                {
                    "prefix": prefix_text(prefix, family),
                    **route_view(route),
                    "best": route is best,
                    "ecmp": route in ecmp,
                }
                for route in view.candidates(family, prefix)
            ]
        out: list[dict[str, Any]] = []
        for family in view.families():
            for prefix, best, ecmp in view.best_routes(family):
                if len(out) >= ROUTE_LIMIT:
                    return out
                row = {"prefix": prefix_text(prefix, family), **route_view(best)}
                if len(ecmp) > 1:
                    row["ecmp_next_hops"] = sorted(_address(r.attrs.next_hop) for r in ecmp)
                out.append(row)
        return out

    def rib(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Table sizes: Loc-RIB per family, routes received per peer, update groups."""
        view = self.daemon.rib.view
        families = {f.name.lower(): 0 for f in (Family.IPV4_UNICAST, Family.IPV6_UNICAST)}
        for family in view.families():
            families[family.name.lower()] = sum(1 for _ in view.best_routes(family))
        received = {
            peer.name: {f.name.lower(): count for f, count in sorted(peer.received.items())}
            for peer in view.peers()
        }
        return {
            "loc_rib": families,
            "adj_rib_in": received,
            "update_groups": view.update_groups,
        }

    def received(self, address: str) -> dict[str, list[str]]:
        """The prefixes a peer gave us, by family (the status file's test view)."""
        view = self.daemon.rib.view
        peer = view.peer(address)
        if peer is None:
            return {}
        return {
            family.name.lower(): [
                prefix_text(prefix, family) for prefix in view.received(address, family)
            ]
            for family, count in sorted(peer.received.items())
            if count <= ROUTE_LIMIT
        }

    # --- commands --------------------------------------------------------------------------

    def load(self) -> DaemonConfig:
        """The config file read and validated again; RequestError (nothing changed) if not."""
        if self.loader is None:
            raise RequestError("the daemon was not started from a file: nothing to reload")
        try:
            return self.loader()
        except ConfigError as error:
            raise RequestError(
                f"{self.config_path} is not valid, nothing changed:\n{error}"
            ) from None

    def apply_file(self) -> ReloadPlan:
        """Read the config file again and apply it; RequestError when nothing was applied."""
        plan = self.daemon.reload(self.load())
        if plan.refused:
            raise RequestError(plan.summary())
        self.reconfigured = time.time()
        for hook in self.reloaded:
            hook(plan)
        return plan

    def reload(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Read the config file again and apply it (nothing changes when it is invalid)."""
        plan = self.apply_file()
        return {
            "summary": plan.summary(),
            "kept": plan.kept,
            "reset": plan.reset,
            "added": plan.added,
            "removed": plan.removed,
        }
