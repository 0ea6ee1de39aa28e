"""BFD peers for interop tests: Myna's runtime, BIRD 2's ``protocol bfd`` and FRR's bfdd, and
the nftables rule that cuts a path silently.

Data flow: each peer renders its config into the host's work dir and starts its processes
through ``Host.popen`` (so the topology stops them by PID whatever happens); ``state(peer)``
reads the session's state back, normalised to the RFC names (``Up``, ``Down``, ``Init``,
``AdminDown``): BIRD from ``birdc show bfd sessions``, FRR from ``vtysh -c 'show bfd peers
json'``, Myna from the status file ``bfd_runner.py`` rewrites every 100 ms. ``Myna.events()``
gives every state change with the engine's monotonic time, which the tests compare with
``time.monotonic()`` taken around the nftables commands (one clock for all namespaces).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bird import BIRD2, BIRDC2
from .frr import FRR_USER, VTYSH, ZEBRA
from .topology import Host, stop_processes, wait_for

BFDD = Path("/usr/lib/frr/bfdd")
NFT = Path("/usr/sbin/nft")
RUNNER = Path(__file__).with_name("bfd_runner.py")
START_TIMEOUT = 15.0
_STATE_NAMES = {"up": "Up", "down": "Down", "init": "Init", "admindown": "AdminDown",
                "admin-down": "AdminDown", "shutdown": "AdminDown"}  # fmt: skip


@dataclass(frozen=True)
class BfdNeighbor:
    """One session as both ends configure it: the far address, our address, and how."""

    address: str
    local: str
    multihop: bool = False
    auth_type: str | None = None  # bfd.wire_codes.AuthType name; BIRD's spelling is derived
    secret: str = ""
    interval_ms: int = 100
    multiplier: int = 3


_BIRD_AUTH = {
    "SIMPLE_PASSWORD": "simple",
    "KEYED_MD5": "keyed md5",
    "METICULOUS_KEYED_MD5": "meticulous keyed md5",
    "KEYED_SHA1": "keyed sha1",
    "METICULOUS_KEYED_SHA1": "meticulous keyed sha1",
}


@dataclass
class Myna:
    """Myna's BFD runtime (``bfd_runner.py``) in ``host``'s namespace."""

    host: Host
    neighbors: list[BfdNeighbor]
    workdir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir = self.host.workdir / "myna-bfd"

    def start(self) -> Myna:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sessions = []
        for neighbor in self.neighbors:
            raw: dict[str, Any] = {
                "key": neighbor.address,
                "peer": neighbor.address,
                "local": neighbor.local,
                "mode": "multihop" if neighbor.multihop else "single-hop",
                "interface": None if neighbor.multihop else "eth0",
                "desired_min_tx_us": neighbor.interval_ms * 1000,
                "required_min_rx_us": neighbor.interval_ms * 1000,
                "detect_mult": neighbor.multiplier,
            }
            if neighbor.auth_type:
                raw["auth"] = {"type": neighbor.auth_type, "secret": neighbor.secret}
            sessions.append(raw)
        config = self.workdir / "sessions.json"
        config.write_text(json.dumps(sessions))
        self.events_file.unlink(missing_ok=True)
        self.process = self.host.popen(
            sys.executable, str(RUNNER), str(config), str(self.events_file),
            str(self.status_file), log=self.workdir / "runner.log",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """SIGTERM the runner: the service closes, and the engine tells every peer AdminDown."""
        stop_processes([self.process], grace=5.0)

    @property
    def events_file(self) -> Path:
        return self.workdir / "events.jsonl"

    @property
    def status_file(self) -> Path:
        return self.workdir / "status.json"

    def status(self, peer: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.status_file.read_text())["sessions"][peer]
        return data

    def state(self, peer: str) -> str:
        return _STATE_LABELS[self.status(peer)["state"]]

    def events(self, peer: str) -> list[dict[str, Any]]:
        """The session's state changes (and failures), in order."""
        return [e for e in self._records(peer) if "remote" not in e]

    def remote_events(self, peer: str) -> list[dict[str, Any]]:
        """The changes of what the session knows of its peer (state, heard), in order."""
        return [e for e in self._records(peer) if "remote" in e]

    def _records(self, peer: str) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["key"] == peer]

    def log_tail(self) -> str:
        log = self.workdir / "runner.log"
        return log.read_text()[-3000:] if log.exists() else "(no runner log)"


_STATE_LABELS = {0: "AdminDown", 1: "Down", 2: "Init", 3: "Up"}


@dataclass
class BirdBfd:
    """BIRD 2 with a ``protocol bfd`` holding one ``neighbor`` per BfdNeighbor."""

    host: Host
    neighbors: list[BfdNeighbor]

    def render(self) -> str:
        first = self.neighbors[0]
        options = [
            f"min rx interval {first.interval_ms} ms;",
            f"min tx interval {first.interval_ms} ms;",
            f"multiplier {first.multiplier};",
        ]
        if first.auth_type:
            options += [f"authentication {_BIRD_AUTH[first.auth_type]};",
                        f'password "{first.secret}";']  # fmt: skip
        block = " ".join(options)
        lines = [
            "log stderr all;",
            f"router id {self.host.ipv4};",
            "protocol device {}",
            "protocol bfd {",
            f'  interface "eth0" {{ {block} }};',
            f"  multihop {{ {block} }};",
        ]
        for neighbor in self.neighbors:
            if neighbor.multihop:
                lines.append(f"  neighbor {neighbor.address} local {neighbor.local} multihop on;")
            else:
                lines.append(f'  neighbor {neighbor.address} dev "eth0";')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def start(self) -> BirdBfd:
        workdir = self.host.workdir / "bird-bfd"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "bird.conf"
        config.write_text(self.render())
        self.socket = self.host.topology.rundir / f"{self.host.name}-bird-bfd.ctl"
        self.process = self.host.popen(
            str(BIRD2), "-f", "-c", str(config), "-s", str(self.socket),
            "-P", str(self.host.topology.rundir / f"{self.host.name}-bird-bfd.pid"),
            log=workdir / "bird.log",
        )  # fmt: skip
        return self

    def sessions(self) -> str:
        return self.host.run(str(BIRDC2), "-s", str(self.socket), "show", "bfd", "sessions").stdout

    def state(self, peer: str) -> str:
        if self.process.poll() is not None:
            raise AssertionError(f"BIRD exited with status {self.process.returncode}")
        for line in self.sessions().splitlines():
            words = line.split()
            if words and words[0] == peer:
                # IP address, Interface, State, Since, Interval, Timeout
                state = next(w for w in words[1:] if w.lower() in _STATE_NAMES)
                return _STATE_NAMES[state.lower()]
        return "absent"


@dataclass
class FrrBfd:
    """FRR 8.4's bfdd (with its zebra) holding one ``peer`` per BfdNeighbor; no authentication."""

    host: Host
    neighbors: list[BfdNeighbor]

    def render(self) -> str:
        lines = ["hostname bfdd", "bfd"]
        for neighbor in self.neighbors:
            if neighbor.multihop:
                lines.append(f" peer {neighbor.address} multihop local-address {neighbor.local}")
            else:
                lines.append(f" peer {neighbor.address} interface eth0")
            lines += [
                f"  detect-multiplier {neighbor.multiplier}",
                f"  receive-interval {neighbor.interval_ms}",
                f"  transmit-interval {neighbor.interval_ms}",
                " !",
            ]
        return "\n".join([*lines, "!"]) + "\n"

    def start(self) -> FrrBfd:
        rundir = self.host.topology.rundir / f"{self.host.name}-frr-bfd"
        rundir.mkdir(parents=True, exist_ok=True)
        shutil.chown(rundir, FRR_USER, FRR_USER)
        self.rundir = rundir
        workdir = self.host.workdir / "frr-bfd"
        workdir.mkdir(parents=True, exist_ok=True)
        zebra_conf = rundir / "zebra.conf"
        zebra_conf.write_text("hostname zebra\n")
        bfdd_conf = rundir / "bfdd.conf"
        bfdd_conf.write_text(self.render())
        for path in (zebra_conf, bfdd_conf):
            shutil.chown(path, FRR_USER, FRR_USER)
        zserv = rundir / "zserv.api"
        common = ["-z", str(zserv), "--vty_socket", str(rundir), "-P", "0", "--log", "stdout"]
        self.processes = [
            self.host.popen(str(ZEBRA), "-f", str(zebra_conf), "-i", str(rundir / "zebra.pid"),
                            *common, log=workdir / "zebra.log"),
        ]  # fmt: skip
        wait_for(zserv.exists, 10, "FRR zebra's zserv socket")
        self.processes.append(
            self.host.popen(str(BFDD), "-f", str(bfdd_conf), "-i", str(rundir / "bfdd.pid"),
                            "--bfdctl", str(rundir / "bfdd.sock"), *common,
                            log=workdir / "bfdd.log")
        )  # fmt: skip
        return self

    def peers(self) -> list[dict[str, Any]]:
        for process in self.processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[4]} exited with {process.returncode}")
        output = self.host.run(
            str(VTYSH), "--vty_socket", str(self.rundir), "-d", "bfdd", "-c",
            "show bfd peers json",
        ).stdout  # fmt: skip
        data: list[dict[str, Any]] = json.loads(output)
        return data

    def state(self, peer: str) -> str:
        for record in self.peers():
            if record.get("peer") == peer:
                return _STATE_NAMES.get(str(record.get("status")).lower(), str(record["status"]))
        return "absent"


def cut(host: Host) -> None:
    """Drop every BFD packet in and out of ``host``, silently (the links stay up)."""
    rules = """
table inet bfdcut {
  chain in { type filter hook input priority -10; udp dport { 3784, 4784 } drop; }
  chain out { type filter hook output priority -10; udp dport { 3784, 4784 } drop; }
}
"""
    host.run(str(NFT), "-f", "-", stdin=rules)


def heal(host: Host) -> None:
    """Remove ``cut``'s rules."""
    host.run(str(NFT), "delete", "table", "inet", "bfdcut")


def bird_sessions_text(bird: BirdBfd) -> str:
    """birdc's table, for failure messages."""
    try:
        return bird.sessions()
    except subprocess.CalledProcessError as error:
        return str(error)
