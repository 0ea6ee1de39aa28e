"""The part of BIRD's control-socket protocol that Calico's tools use, answered by Myna.

Data flow: with ``control: {bird_socket: /var/run/calico/bird.ctl}`` (and ``bird6_socket`` for
the IPv6 peers, as Calico runs ``bird`` and ``bird6``), ``BirdSocket`` listens on a UNIX socket,
greets each client with ``0001 BIRD 1.6.8 ready.`` and answers one command per line in BIRD
1.6's reply format: four-digit codes, ``-`` on every line of a reply but the last of its code,
continuation lines starting with a space, ``0000`` at the end of a table. The answers come from
the same views as ``myna show`` (``ControlApi``):

* ``show protocols`` -- the table ``calicoctl node status`` parses (headings exactly
  ``name proto table state since info``; peers named ``Mesh_<ip>``, ``Node_<ip>`` or
  ``Global_<ip>`` with dots or colons as underscores, proto ``BGP``, state up/start, since as
  one token, info the BGP state and the last error);
* ``show protocols all NAME`` -- the details CalicoNodeStatus reads (routes, BGP state,
  neighbour address and AS);
* ``show status`` -- ``BIRD 1.6.8`` first (the liveness probe), ``0024 Graceful restart
  recovery in progress`` while selection is deferred (the readiness probe), ``0013`` daemon up;
* ``show route`` -- the best routes in BIRD's one-line-per-route form;
* ``show bfd sessions`` -- BIRD 2's table (``1020`` lines: the protocol name, the headings
  ``IP address  Interface  State  Since  Interval  Timeout``, one row per session; ``0000`` at
  the end; ``9001 There is no BFD protocol running`` without one), as BIRD 2.0.12 prints it:
  since as ``HH:MM:SS.mmm`` for the last 20 hours and the date before, interval (what we send
  at) and timeout (the Detection Time) in seconds; the interface is ``---`` as for BIRD's
  multihop sessions, since Myna binds no session to a device.

Anything else gets ``9001`` (BIRD's syntax error), so a tool never waits for an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from bgpd.control_api import ControlApi

LOG = logging.getLogger("myna.bird_socket")
BIRD_VERSION = "1.6.8"
HEADINGS = "name     proto    table    state  since       info"
BFD_HEADINGS = (
    f"{'IP address':<25} {'Interface':<10} {'State':<10} {'Since':<12}  "
    f"{'Interval':>8} {'Timeout':>8}"
)
_BFD_SHORT_TIME = 20 * 3600  # BIRD 2's TM_ISO_SHORT_MS: the time of day for 20 h, then the date


def _clock(stamp: float) -> str:
    """BIRD's "since": the time of day today, else the date (one token either way)."""
    local = time.localtime(stamp)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d", local)


def _bfd_since(stamp: float) -> str:
    """BIRD 2's protocol time format: ``05:08:55.342`` within 20 hours, else ``2026-12-07``."""
    if time.time() - stamp >= _BFD_SHORT_TIME:
        return time.strftime("%Y-%m-%d", time.localtime(stamp))
    millis = int(stamp * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{millis:03d}"


def _reply(lines: list[tuple[int, str]]) -> bytes:
    """Lines framed as BIRD frames them.

    A line whose code differs from the line before starts with the code and ``-``, or with the
    code and a space when it ends the reply; a further line of the same code starts with a
    space.
    """
    out = []
    previous = None
    for index, (code, text) in enumerate(lines):
        if code == previous:
            out.append(f" {text}")
        else:
            out.append(f"{code:04d}{' ' if index == len(lines) - 1 else '-'}{text}")
        previous = code
    return ("\n".join(out) + "\n").encode()


class BirdSocket:
    """One BIRD-compatible socket, for the peers of one address family."""

    def __init__(self, api: ControlApi, path: Path, ipv6: bool) -> None:
        self.api = api
        self.path = path
        self.ipv6 = ipv6
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen (replacing a socket file a dead process left)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old_umask)
        LOG.info("BIRD-compatible socket on %s", self.path)

    async def close(self) -> None:
        """Stop listening and remove the file."""
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _peers(self) -> list[dict[str, Any]]:
        return [p for p in self.api.peers() if (":" in p["address"]) == self.ipv6]

    def answer(self, command: str) -> bytes:
        """The reply to one command line."""
        words = command.split()
        if words[:2] == ["show", "protocols"]:
            if len(words) >= 4 and words[2] == "all":
                return self._protocol_details(words[3])
            return self._protocols(self._peers())
        if words[:2] == ["show", "status"]:
            return self._status()
        if words[:2] == ["show", "route"]:
            return self._routes()
        if words[:3] == ["show", "bfd", "sessions"]:
            return self._bfd_sessions()
        return _reply([(9001, "syntax error, unexpected CF_SYM_UNDEFINED")])

    @staticmethod
    def _row(peer: dict[str, Any]) -> str:
        established = peer["state"] == "Established"
        info = peer["state"]
        if not established and peer["last_error"]:
            info += f" {peer['last_error']}"
        state = "up" if established else "start"
        return f"{peer['name']:<8} BGP      master   {state:<6} {_clock(peer['since']):<11} {info}"

    def _protocols(self, peers: list[dict[str, Any]]) -> bytes:
        lines = [(2002, HEADINGS)] + [(1002, self._row(p)) for p in peers] + [(0, "")]
        return _reply(lines)

    def _protocol_details(self, name: str) -> bytes:
        peer = next((p for p in self._peers() if p["name"] == name), None)
        if peer is None:
            return _reply([(8003, "No protocols match")])
        lines = [(2002, HEADINGS), (1002, self._row(peer))]
        details = [
            "  Description:    Connection to BGP peer",
            "  Preference:     100",
            "  Input filter:   ACCEPT",
            "  Output filter:  (myna export policy)",
            f"  Routes:         {peer['received']} imported, {peer['advertised']} exported, "
            "0 preferred",
            f"  BGP state:          {peer['state']}",
            f"    Neighbor address: {peer['address']}",
            f"    Neighbor AS:      {peer['as']}",
        ]
        if peer["last_error"]:
            details.append(f"    Last error:       {peer['last_error']}")
        lines += [(1006, text) for text in details] + [(0, "")]
        return _reply(lines)

    def _status(self) -> bytes:
        status = self.api.status()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["started"]))
        lines = [
            (1000, f"BIRD {BIRD_VERSION}"),
            (1011, f"Router ID is {status['router_id']}"),
            (1011, f"Current server time is {time.strftime('%Y-%m-%d %H:%M:%S')}"),
            (1011, f"Last reboot on {started}"),
            (1011, f"Last reconfiguration on {started}"),
        ]
        if status["graceful_restart_recovery"]:
            lines.append((24, "Graceful restart recovery in progress"))
        lines.append((13, "Daemon is up and running"))
        return _reply(lines)

    def _routes(self) -> bytes:
        names = {p["address"]: p["name"] for p in self._peers()}
        lines = []
        for route in self.api.routes({}):
            if (":" in route["prefix"]) != self.ipv6:
                continue
            source = names.get(route["from"], route["from"])
            hops = route.get("ecmp_next_hops") or [route["next_hop"]]
            where = f"via {hops[0]}" if hops[0] else "blackhole"
            path = " ".join(map(str, route["as_path"]))
            lines.append(
                (1007, f"{route['prefix']:<18} {where} [{source}] * (100) [{path or 'i'}]")
            )
        return _reply([*lines, (0, "")])

    def _bfd_sessions(self) -> bytes:
        rows = [r for r in self.api.bfd() if (":" in r["peer"]) == self.ipv6]
        if not self.api.daemon.bfd.peers:
            return _reply([(9001, "There is no BFD protocol running")])
        lines = [(1020, "bfd1:"), (1020, BFD_HEADINGS)]
        for row in rows:
            if "local_discriminator" not in row:
                continue  # no session in the engine: BIRD lists sessions only
            interval = row["tx_interval_ms"] / 1000 if row["packets_out"] else 0.0
            lines.append(
                (
                    1020,
                    f"{row['peer']:<25} {row['interface'] or '---':<10} {row['state']:<10} "
                    f"{_bfd_since(row['since']):<12}  {interval:7.3f}  "
                    f"{row['detection_time_ms'] / 1000:7.3f}",
                )
            )
        return _reply([*lines, (0, "")])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(_reply([(1, f"BIRD {BIRD_VERSION} ready.")]))
            while line := await reader.readline():
                command = line.decode(errors="replace").strip()
                if command in ("quit", "exit"):
                    break
                if command.split()[:2] == ["show", "bfd"]:
                    await self.api.daemon.bfd.refresh()  # the engine's status, first
                if command:
                    writer.write(self.answer(command))
                    await writer.drain()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
