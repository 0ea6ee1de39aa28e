"""A daemon run from a BIRD 1.x file: BIRD 1.6 itself, or Myna as ``myna bird``, side by side.

Data flow: ``BirdFileDaemon`` writes the test's BIRD configuration text into ``workdir`` and
starts, in the host's namespace, either BIRD 1.6.8 (``.cache/bird16``) or Myna's BIRD
front-end (``.venv/bin/myna bird``) with the command line calico-node's runit script uses:
``-R -s SOCKET -d -c FILE`` (plus ``-P PIDFILE``). Both answer BIRD's control protocol on
``socket``; the test talks to it from the test process (a UNIX socket needs no namespace):
``converse`` sends one command and returns the raw reply lines, ``client`` runs a BIRD
client (1.6's ``birdc``, BIRD 2's ``birdcl``) in the namespace. Session states and received
prefixes come from the socket as the other BIRD peers' do (``show protocols all NAME``'s
``BGP state:``, ``show route protocol NAME``), so one test drives either program the same way
and compares what they print. ``reload`` rewrites the file and sends SIGHUP (confd's ``sv hup
bird``); ``configure`` asks over the socket instead.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from calico_bird_clients import converse

from .bird import BIRD16_SBIN
from .peers import REPO_ROOT, Neighbor, PeerDaemon, PeerError, State, normalise_prefix
from .peers import normalise_state as _normalise_state
from .topology import Host

MYNA = REPO_ROOT / ".venv" / "bin" / "myna"
_BGP_STATE = re.compile(r"^\s*BGP state:\s+(\w+)", re.MULTILINE)


class BirdFileDaemon(PeerDaemon):
    """BIRD 1.6 (``program="bird16"``) or Myna (``"myna"``) run from one BIRD file."""

    kind = "bird-file"

    def __init__(
        self,
        host: Host,
        config: str,
        protocols: dict[str, str],
        *,
        program: str,
        ipv6: bool = False,
        recovery: bool = True,
        local_as: int = 64512,
    ) -> None:
        neighbors = [Neighbor(address, local_as) for address in protocols]
        # One work and run dir for both programs: the same file path and socket path, so that
        # what they print about them is comparable (their logs are apart, by program).
        super().__init__(host, host.ipv4, local_as, neighbors, name="bird-file")
        if program not in ("bird16", "myna"):
            raise ValueError(f"program {program!r}: bird16 or myna")
        self.program = program
        self.config = config
        self.protocols = protocols  # neighbor address -> protocol name
        self.ipv6 = ipv6
        self.recovery = recovery
        self.label = "bird6" if ipv6 else "bird"

    @property
    def config_path(self) -> Path:
        """The BIRD file both programs read."""
        return self.workdir / f"{self.label}.cfg"

    @property
    def socket(self) -> Path:
        """The control socket (``-s``)."""
        return self.rundir / f"{self.label}.ctl"

    @property
    def pid_file(self) -> Path:
        """``-P``."""
        return self.rundir / f"{self.label}.pid"

    def _launch(self) -> None:
        self.config_path.write_text(self.config)
        if self.program == "bird16":
            argv: list[str | Path] = [BIRD16_SBIN / self.label]
        else:
            argv = [MYNA, self.label]
        if self.recovery:
            argv.append("-R")
        argv += ["-s", self.socket, "-d", "-c", self.config_path, "-P", self.pid_file]
        self._spawn(*argv, log=f"{self.program}-{self.label}.log")

    # -- the control socket --------------------------------------------------------------------

    def converse(self, command: str) -> list[str]:
        """The raw reply lines (the greeting first) to ``command``."""
        return converse(self.socket, command)

    def text(self, command: str) -> str:
        """The raw reply as one string."""
        return "\n".join(self.converse(command))

    def client(self, client: Path | str, *command: str) -> str:
        """A BIRD client's output for ``command`` against this daemon, run in the namespace."""
        return self._run(client, "-s", self.socket, *command)

    def session_state(self, neighbor_address: str) -> State:
        name = self.protocols[self.neighbor(neighbor_address).address]
        output = self.text(f"show protocols all {name}")
        match = _BGP_STATE.search(output)
        if match is None:
            raise PeerError(f"no BGP state for {name}: {output}")
        return _normalise_state(match.group(1))

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        name = self.protocols[self.neighbor(neighbor_address).address]
        prefixes = set()
        for line in self.converse(f"show route protocol {name}"):
            text = line[5:] if line[:4].isdigit() else line[1:]
            first = text.split(maxsplit=1)[0] if text[:1].strip() else ""
            if "/" in first:
                prefixes.add(normalise_prefix(first))
        return frozenset(prefixes)

    @property
    def pid(self) -> int:
        """The daemon's PID (the program's own: ``ip netns exec`` execs in place)."""
        return self.processes[0].pid

    def reload(self, config: str) -> None:
        """Write ``config`` and send SIGHUP, as confd's ``sv hup bird`` does."""
        self.config = config
        self.config_path.write_text(config)
        os.kill(self.pid, signal.SIGHUP)
