"""BIRD 1.6's control socket, answered by Myna: what Calico's tools, birdc and operators send.

Data flow: ``BirdSocket`` listens on a UNIX socket (``control.bird_socket`` for the IPv4
protocols, ``bird6_socket`` for the IPv6 ones, as Calico runs ``bird`` and ``bird6``; in BIRD
mode the path of ``-s``, bound by ``bgpd.bird_run`` before privileges were dropped and handed
over in ``PREBOUND``). Each client is greeted with ``0001 BIRD <version> ready.``; each line it
sends is parsed (``bird_control.commands``) and answered from the daemon's state through the
control API's views and the RIB's read API, framed as BIRD frames replies
(``bird_control.replies``). Commands and where their answers come from:

* ``show status`` -- ``bird_control.replies.BIRD_VERSION`` first (the liveness probe wants a
  first line starting ``BIRD``, calico-node's status ``BIRD v...``), router id, times, then
  ``0024 Graceful restart recovery in progress`` with BIRD's two continuation lines while the
  RIB defers selection (BIRD's ``-R`` recovery; the readiness probe waits for it to end), and
  ``0013 Daemon is up and running`` (``nest/cmds.c``, ``nest/proto.c``);
* ``show protocols [all] [NAME|"PATTERN"]`` -- ``bird_control.protocols``;
* ``show route ...`` -- ``bird_control.routes``;
* ``show interfaces [summary]`` -- ``bird_control.interfaces``;
* ``show static [NAME]`` -- the static protocol's routes as configured (``1009`` lines);
* ``show memory`` -- BIRD's table (``1018``): the process's resident memory as the total, the
  parts BIRD counts (its routing tables, attributes, protocols) not being separable in Python;
* ``configure [soft] ["FILE"]`` -- re-read and apply the file, the path SIGHUP takes
  (``ControlApi.apply_file``): ``0002-Reading configuration from FILE``, then ``0003
  Reconfigured``, or ``8002 FILE:LINE:COL message`` for a file that does not read (nothing
  changes), or ``8002`` with why a change that needs a restart was refused; ``configure
  check`` reads and reports, ``0020 Configuration OK``; ``configure soft`` applies as
  ``configure`` does (BIRD's soft mode leaves routes a changed filter would now refuse in
  place; Myna cannot leave part of a policy behind, so it applies the new one, restarting
  what changed); ``configure undo`` is not supported; ``configure confirm`` answers ``0019
  Nothing to do`` (Myna has no timed configuration to confirm); another FILE than the
  running one is refused (the daemon reloads the file it was started with);
* ``show bfd sessions`` -- from a BIRD file, BIRD 1.6's table (``1020``: the bfd protocol's
  name, ``%-25s %-10s %-10s %-10s  %8s %8s`` headings, times as protocol times, intervals
  as ``%3u.%03u`` seconds); from a YAML config, BIRD 2's, as the BFD work defined it.

Anything else: BIRD's ``9001 syntax error``, or ``9001 ... is not supported by Myna`` for a
command BIRD has and Myna does not run, so a client never waits for an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from bgpd.bird_control.commands import (
    Command,
    CommandError,
    Configure,
    ShowInterfaces,
    ShowProtocols,
    ShowRoute,
    ShowStatic,
    Simple,
    parse,
)
from bgpd.bird_control.interfaces import Interfaces
from bgpd.bird_control.protocols import ProtocolView
from bgpd.bird_control.replies import BIRD_VERSION, Framer, Line, full_time, proto_time
from bgpd.bird_control.routes import RouteView
from bgpd.control_api import ControlApi, RequestError

LOG = logging.getLogger("myna.bird_socket")
BFD_HEADINGS = (
    f"{'IP address':<25} {'Interface':<10} {'State':<10} {'Since':<12}  "
    f"{'Interval':>8} {'Timeout':>8}"
)
_BFD_SHORT_TIME = 20 * 3600  # BIRD 2's TM_ISO_SHORT_MS: the time of day for 20 h, then the date
# Control sockets bound by ``bgpd.bird_run`` while it still could (before dropping privileges).
PREBOUND: dict[Path, socket.socket] = {}


def _bfd_since(stamp: float) -> str:
    """BIRD 2's protocol time format: ``05:08:55.342`` within 20 hours, else ``2026-12-07``."""
    if time.time() - stamp >= _BFD_SHORT_TIME:
        return time.strftime("%Y-%m-%d", time.localtime(stamp))
    millis = int(stamp * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{millis:03d}"


def _size(text: str, value: int) -> str:
    """BIRD's ``print_size``: ``%-17s %4u %cB``, scaled to kB, MB, GB past 10000."""
    units = " kMG"
    index = 0
    while value >= 10000 and index < 3:
        value = (value + 512) // 1024
        index += 1
    return f"{text:<17} {value:4d} {units[index]}B"


class BirdSocket:
    """One BIRD-compatible socket, for the protocols of one address family."""

    def __init__(self, api: ControlApi, path: Path, ipv6: bool) -> None:
        self.api = api
        self.path = path
        self.ipv6 = ipv6
        self.protocols = ProtocolView(api.daemon, ipv6, api.started)
        self.interfaces = Interfaces(ipv6)
        self.routes = RouteView(api.daemon, self.protocols, self.interfaces)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen (on the socket bound for us, else replacing a file a dead process left)."""
        sock = PREBOUND.pop(self.path, None)
        if sock is not None:
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        else:
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
            # Gone already, or not ours to remove any more (-u dropped root): as BIRD, go on.
            with contextlib.suppress(OSError):
                self.path.unlink()

    # -- answers -------------------------------------------------------------------------------

    def parse(self, line: str) -> Command:
        """The command of a line; CommandError with BIRD's reply when there is none."""
        self.protocols.front = self.api.bird
        names = {p.name for p in self.protocols.protocols()}
        return parse(line, self.ipv6, names)

    async def prepare(self, command: Command) -> None:
        """Read what the answer needs from outside the daemon (netlink, the BFD engine)."""
        if isinstance(command, (ShowInterfaces, ShowRoute)):
            await self.interfaces.refresh()
        if command == Simple("show bfd sessions"):
            await self.api.daemon.bfd.refresh()

    def answer(self, command: Command) -> Iterator[list[Line]]:
        """The reply to a command, in pieces (only ``show route`` has more than one)."""
        if isinstance(command, ShowRoute):
            yield from self.routes.show(command)
            return
        if isinstance(command, ShowProtocols):
            selected = self.protocols.select(command.name, command.pattern)
            yield self.protocols.show(selected, command.verbose)
        elif isinstance(command, ShowInterfaces):
            yield self.interfaces.show(command.summary)
        elif isinstance(command, ShowStatic):
            yield self._static(command.name)
        elif isinstance(command, Configure):
            yield self._configure(command)
        elif command == Simple("show status"):
            yield self._status()
        elif command == Simple("show memory"):
            yield self._memory()
        elif command == Simple("show bfd sessions"):
            yield self._bfd_sessions()
        elif command == Simple("configure confirm"):
            yield [(19, "Nothing to do")]
        else:
            name = command.name if isinstance(command, Simple) else type(command).__name__
            yield [(9001, f"{name} is not supported by Myna")]

    def _status(self) -> list[Line]:
        api = self.api
        lines: list[Line] = [
            (1000, f"BIRD {BIRD_VERSION}"),
            (1011, f"Router ID is {api.daemon.config.router_id}"),
            (1011, f"Current server time is {full_time(time.time())}"),
            (1011, f"Last reboot on {full_time(api.started)}"),
            (1011, f"Last reconfiguration on {full_time(api.reconfigured)}"),
        ]
        view = api.daemon.rib.view
        deadline = view.deferral_deadline
        if view.deferring:
            left = 0 if deadline is None else deadline - asyncio.get_running_loop().time()
            lines += [
                (24, "Graceful restart recovery in progress"),
                (24, f"  Waiting for {len(view.deferral_waiting())} protocols to recover"),
                (24, f"  Wait timer is {max(0, int(left))}/{int(view.selection_deferral)}"),
            ]
        lines.append((13, "Daemon is up and running"))
        return lines

    @staticmethod
    def _memory() -> list[Line]:
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open("/proc/self/statm") as statm,
        ):
            usage = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return [
            (1018, "BIRD memory usage"),
            (1018, _size("Total:", usage)),
            (0, ""),
        ]

    def _static(self, name: str | None) -> list[Line]:
        front = self.api.bird
        routes = [
            r for r in self.api.daemon.config.static_routes if name is None or r.protocol == name
        ]
        if front is None and not routes:
            return [(0, "")]
        lines: list[Line] = []
        for route in routes:
            if route.kind == "via":
                what = f"via {route.gateway}"
            elif route.kind == "device":
                what = f"dev {route.device}"
            else:
                what = route.kind
            lines.append((1009, f"{route.prefix} {what}"))
        return [*lines, (0, "")]

    def _configure(self, command: Configure) -> list[Line]:
        api = self.api
        path = str(api.config_path)
        if command.file is not None and command.file != path:
            return [(8002, f"{command.file}: Myna reloads only the file it runs from, {path}")]
        lines: list[Line] = [(2, f"Reading configuration from {path}")]
        try:
            if command.check:
                api.load()
                return [*lines, (20, "Configuration OK")]
            plan = api.apply_file()
        except RequestError as error:
            LOG.error("configure: %s", error)
            text = str(error).rpartition(":\n")[2] if ":\n" in str(error) else str(error)
            return [*lines, (8002, text.strip())]
        LOG.info("configure: %s", plan.summary())
        return [*lines, (3, "Reconfigured")]

    def _bfd_sessions_16(self, name: str | None) -> list[Line]:
        """BIRD 1.6's table (``proto/bfd/bfd.c`` ``bfd_show_sessions``), for a BIRD file."""
        if name is None:
            return [(9001, "There is no BFD protocol running")]
        lines: list[Line] = [
            (1020, f"{name}:"),
            (1020, f"{'IP address':<25} {'Interface':<10} {'State':<10} {'Since':<10}  "
                   f"{'Interval':>8} {'Timeout':>8}"),
        ]  # fmt: skip
        for row in self.api.bfd():
            if (":" in row["peer"]) != self.ipv6 or "local_discriminator" not in row:
                continue
            interval = row["tx_interval_ms"] if row["packets_out"] else 0
            timeout = row["detection_time_ms"]
            lines.append(
                (
                    1020,
                    f"{row['peer']:<25} {row['interface'] or '---':<10} {row['state']:<10} "
                    f"{proto_time(row['since']):<10}  {interval // 1000:3d}.{interval % 1000:03d}"
                    f"  {timeout // 1000:3d}.{timeout % 1000:03d}",
                )
            )
        return [*lines, (0, "")]

    def _bfd_sessions(self) -> list[Line]:
        front = self.api.bird
        if front is not None:
            bfd = next((p.name for p in front.protocols if p.kind == "BFD"), None)
            return self._bfd_sessions_16(bfd)
        rows = [r for r in self.api.bfd() if (":" in r["peer"]) == self.ipv6]
        if not self.api.daemon.bfd.peers:
            return [(9001, "There is no BFD protocol running")]
        lines: list[Line] = [(1020, "bfd1:"), (1020, BFD_HEADINGS)]
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
        return [*lines, (0, "")]

    # -- the connection ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        try:
            writer.write(framer.frame([(1, f"BIRD {BIRD_VERSION} ready.")]))
            while line := await reader.readline():
                text = line.decode(errors="replace").strip()
                if text in ("quit", "exit"):
                    break
                if not text:
                    continue
                await self._reply(text, framer, writer)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _reply(self, text: str, framer: Framer, writer: asyncio.StreamWriter) -> None:
        try:
            command = self.parse(text)
            await self.prepare(command)
        except CommandError as error:
            writer.write(framer.frame([(error.code, error.text)]))
            await writer.drain()
            return
        except OSError as error:  # netlink refused us: say so rather than hang the client
            writer.write(framer.frame([(8000, f"cannot read the interfaces: {error}")]))
            await writer.drain()
            return
        pieces = self.answer(command)
        piece = next(pieces)
        for following in pieces:
            writer.write(framer.frame_part(piece))
            await writer.drain()  # a large table: the event loop runs between the pieces
            piece = following
        writer.write(framer.frame(piece))
        await writer.drain()
