"""ExaBGP 5 peer: the project's pip-installed ExaBGP, observed and driven through its API.

Data flow: ``_launch`` writes ``exabgp.conf`` (one ``neighbor`` block per Neighbor, the prefixes
as ``static`` routes with next hop self) and a small API helper, ``exabgp_api.py``, into
``workdir``, and starts ExaBGP in the foreground. ExaBGP runs the helper as its API process:
the helper appends every JSON message ExaBGP writes to it (``neighbor-changes`` state messages
and parsed received UPDATEs) to ``events.jsonl``, and copies each line written to the FIFO
``commands`` in ``rundir`` to ExaBGP as an API command (``announce``/``withdraw``).

ExaBGP has no CLI to ask for a session's state here (its CLI pipes are turned off with
``exabgp_api_cli=false``), so ``session_state`` reads the last state message for the neighbor
from ``events.jsonl``: none yet -> Active (ExaBGP is connecting, or listening when passive),
``connected`` (TCP up, OPEN sent) -> OpenSent, ``up`` -> Established, ``down`` or ``shutdown``
-> Idle; Idle also once ExaBGP has exited. ``received_prefixes`` replays the neighbor's UPDATE
messages from the file, starting after its last session change.

Environment: ``exabgp_api_cli=false`` (else it wants CLI named pipes), ``exabgp_daemon_user=root``
(else it drops to nobody and cannot write its files), ``exabgp_api_ack=false`` (else it writes
"done" after each command into the event stream). A passive neighbor gets ``listen 179``:
ExaBGP accepts connections only on ports a neighbor (or ``exabgp_tcp_bind``) names.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any

from .peers import Neighbor, PeerDaemon, State, normalise_prefix
from .topology import wait_for

EXABGP = Path(sys.executable).with_name("exabgp")
ENVIRONMENT = {
    "exabgp_api_cli": "false",
    "exabgp_daemon_user": "root",
    "exabgp_api_ack": "false",
    "exabgp_daemon_daemonize": "false",
    "exabgp_log_destination": "stdout",
    "exabgp_log_level": "INFO",
}
COMMAND_TIMEOUT = 10.0

_EVENT_STATES = {
    "connected": State.OPEN_SENT,
    "up": State.ESTABLISHED,
    "down": State.IDLE,
    "shutdown": State.IDLE,
}

# Runs under ExaBGP as its API process, in the namespace.
_API_HELPER = '''\
"""ExaBGP API helper: ExaBGP's messages to a file, and commands from a FIFO to ExaBGP."""
import os
import sys
import threading

events_path, fifo_path = sys.argv[1], sys.argv[2]


def forward_commands():
    # Opened read-write, the FIFO always has a writer (us), so it never reaches end of file
    # between commands: reopening it after each one lost a command written in that gap.
    with os.fdopen(os.open(fifo_path, os.O_RDWR), "r") as fifo:
        for line in fifo:
            sys.stdout.write(line)
            sys.stdout.flush()


threading.Thread(target=forward_commands, daemon=True).start()
with open(events_path, "a") as events:
    for line in sys.stdin:  # ends when ExaBGP exits
        events.write(line)
        events.flush()
'''


def _quote(text: str) -> str:
    return json.dumps(text)


class ExaBgpPeer(PeerDaemon):
    """ExaBGP 5: state and received routes from its JSON API messages."""

    kind = "exabgp"
    _announced: dict[str, set[str]]  # per neighbor: the prefixes ExaBGP sends it now

    @property
    def events_path(self) -> Path:
        """The file the API helper appends ExaBGP's JSON messages to."""
        return self.workdir / "events.jsonl"

    @property
    def fifo_path(self) -> Path:
        """The FIFO whose lines the API helper passes to ExaBGP as commands."""
        return self.rundir / "commands"

    def _launch(self) -> None:
        helper = self.workdir / "exabgp_api.py"
        helper.write_text(_API_HELPER)
        self.events_path.write_text("")  # a restart starts a fresh history
        if not self.fifo_path.exists():
            os.mkfifo(self.fifo_path)
        config = self.workdir / "exabgp.conf"
        config.write_text(self.render(helper))
        self._announced = {n.address: set(self.prefixes_for(n)) for n in self.neighbors}
        self._spawn(EXABGP, config, log="exabgp.log", env=ENVIRONMENT)

    def render(self, helper: Path) -> str:
        """ExaBGP's config; ``helper`` is the API helper script."""
        lines = [
            "process observer {",
            f"    run {sys.executable} {helper} {self.events_path} {self.fifo_path};",
            "    encoder json;",
            "}",
        ]
        for neighbor in self.neighbors:
            family = "ipv6" if neighbor.ipv6 else "ipv4"
            lines += [
                f"neighbor {neighbor.address} {{",
                f"    router-id {self.router_id};",
                f"    local-address {self.local_address(neighbor)};",
                f"    local-as {self.local_as};",
                f"    peer-as {neighbor.remote_as};",
                f"    hold-time {self.hold_time};",
            ]
            if neighbor.passive:
                lines += ["    passive true;", "    listen 179;"]
            if neighbor.port != 179:
                lines.append(f"    connect {neighbor.port};")
            if neighbor.password is not None:
                lines.append(f"    md5-password {_quote(neighbor.password)};")
            lines.append(f"    family {{ {family} unicast; }}")
            routes = self.prefixes_for(neighbor)
            if routes:
                lines.append("    static {")
                lines += [f"        route {prefix} next-hop self;" for prefix in routes]
                lines.append("    }")
            lines += [
                "    api {",
                "        processes [ observer ];",
                "        neighbor-changes;",
                "        receive { parsed; update; }",
                "    }",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def events(self) -> list[dict[str, Any]]:
        """Every JSON message ExaBGP has sent to the API helper since the last start."""
        try:
            text = self.events_path.read_text()
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            # A line still being written, or a non-JSON reply: neither is an event.
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def _events_for(self, neighbor: Neighbor) -> list[dict[str, Any]]:
        return [event for event in self.events() if _peer_of(event) == neighbor.address]

    def session_state(self, neighbor_address: str) -> State:
        neighbor = self.neighbor(neighbor_address)
        if not self.running:
            return State.IDLE
        state = State.ACTIVE
        for event in self._events_for(neighbor):
            if event.get("type") == "state":
                state = _EVENT_STATES.get(str(event["neighbor"].get("state")), State.IDLE)
        return state

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        neighbor = self.neighbor(neighbor_address)
        prefixes: set[str] = set()
        for event in self._events_for(neighbor):
            if event.get("type") == "state":
                prefixes.clear()  # a new or closed session: its Adj-RIB-In starts empty
                continue
            update = event.get("neighbor", {}).get("message", {}).get("update")
            if event.get("type") != "update" or not isinstance(update, dict):
                continue
            for nlris in update.get("withdraw", {}).values():
                prefixes.difference_update(_nlri_prefixes(nlris))
            for by_next_hop in update.get("announce", {}).values():
                for nlris in by_next_hop.values():
                    prefixes.update(_nlri_prefixes(nlris))
        return frozenset(prefixes)

    def command(self, line: str) -> None:
        """Send one API command (e.g. ``neighbor X announce route P next-hop self``) to ExaBGP."""
        data = (line.rstrip("\n") + "\n").encode()

        def write() -> bool:
            # O_NONBLOCK: fail with ENXIO instead of blocking while the helper has not opened
            # the FIFO yet.
            try:
                fd = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    return False
                raise
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return True

        wait_for(lambda: self._checked(write), COMMAND_TIMEOUT, f"{self}'s API helper to read")

    def _apply_prefixes(self) -> None:
        # The API changes what ExaBGP sends, not its config: keep the file in step for restarts.
        (self.workdir / "exabgp.conf").write_text(self.render(self.workdir / "exabgp_api.py"))
        for neighbor in self.neighbors:
            announced = self._announced[neighbor.address]
            wanted = set(self.prefixes_for(neighbor))
            for prefix in sorted(announced - wanted):
                self.command(f"neighbor {neighbor.address} withdraw route {prefix}")
            for prefix in sorted(wanted - announced):
                self.command(f"neighbor {neighbor.address} announce route {prefix} next-hop self")
            self._announced[neighbor.address] = wanted


def _peer_of(event: dict[str, Any]) -> str | None:
    neighbor = event.get("neighbor")
    address = neighbor.get("address", {}).get("peer") if isinstance(neighbor, dict) else None
    return ipaddress.ip_address(address).compressed if isinstance(address, str) else None


def _nlri_prefixes(nlris: object) -> set[str]:
    prefixes = set()
    for item in nlris if isinstance(nlris, list) else []:
        nlri = item.get("nlri") if isinstance(item, dict) else item
        if isinstance(nlri, str) and "/" in nlri:
            prefixes.add(normalise_prefix(nlri))
    return prefixes
