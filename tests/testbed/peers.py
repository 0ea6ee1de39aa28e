"""What every BGP peer of the test bed shares: ``Neighbor``, ``State`` and the ``PeerDaemon`` base.

Data flow: a test builds a daemon on a ``Host`` with its router id, AS, ``Neighbor`` list and
prefixes to originate, then calls ``start()``. The subclass (one module per daemon: ``bird``,
``frr``, ``gobgp``, ``exabgp_peer``) writes its config into ``workdir`` (kept for post-mortems,
under the topology's work dir) and puts sockets and pid files in ``rundir`` (a short path under
the topology's run dir, since Unix socket paths are limited to 108 bytes), then launches its
processes through ``Host.popen``, so the topology's teardown stops them however the test ends.
Queries go back through the daemon's own CLI inside the namespace, or, for ExaBGP, through the
event file its API helper writes; each answer is normalised here: session states to ``State``,
prefixes to their compressed ``ipaddress`` text.

A new kind of peer (Myna itself, later) subclasses ``PeerDaemon`` and implements ``_launch``
(write the config, call ``_spawn`` once per process) and ``session_state`` (from its CLI, log or
status file); ``received_prefixes`` and ``_apply_prefixes`` are optional.
"""

from __future__ import annotations

import abc
import enum
import ipaddress
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from .topology import Host, check_address, stop_processes, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOLD_TIME = 9
DEFAULT_KEEPALIVE_TIME = 3
SESSION_TIMEOUT = 30.0
LOG_TAIL_LINES = 30

T = TypeVar("T")


class State(enum.StrEnum):
    """The RFC 4271 session states, the names every peer's ``session_state`` is normalised to."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


_STATE_NAMES: dict[str, State] = {state.value.lower(): state for state in State}
# States some daemons name beyond RFC 4271's six, all of them "no session, not trying yet".
_STATE_NAMES.update(
    {
        "close": State.IDLE,  # BIRD, while the protocol shuts down
        "passive": State.ACTIVE,  # BIRD 2, a passive protocol waiting for the peer to connect
        "down": State.IDLE,  # BIRD, a disabled protocol
        "clearing": State.IDLE,  # FRR, flushing a dropped session's routes
        "deleted": State.IDLE,  # FRR
        "unknown": State.IDLE,  # GoBGP's enum value 0
    }
)


def normalise_state(raw: str) -> State:
    """``raw``, a daemon's name for a session state, as a ``State`` (ValueError if unknown)."""
    key = raw.strip().lower().replace("_", "").replace("-", "")
    try:
        return _STATE_NAMES[key]
    except KeyError:
        raise ValueError(f"unknown BGP session state {raw!r}") from None


def normalise_prefix(prefix: str) -> str:
    """``prefix`` as ``ipaddress`` prints it, so prefixes from different daemons compare equal."""
    return ipaddress.ip_network(prefix).with_prefixlen


def is_ipv6(address_or_prefix: str) -> bool:
    """Whether ``address_or_prefix`` (an address or a prefix) is IPv6."""
    return ipaddress.ip_network(address_or_prefix, strict=False).version == 6


@dataclass(frozen=True)
class Neighbor:
    """One configured BGP neighbor of a peer: whom to talk to, and how.

    The session runs over the address's family and carries that family's unicast routes only.
    ``passive``: never initiate the TCP connection, only accept it. ``password``: TCP MD5
    (RFC 2385) key. ``port``: the neighbor's TCP port, for connections this side initiates.
    ``rr_client``: the neighbor is a route-reflector client of this side (RFC 4456); the peer
    kinds that can reflect write it into their config (Myna: ``route_reflector_client``).
    """

    address: str
    remote_as: int
    passive: bool = False
    password: str | None = None
    port: int = 179
    rr_client: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", check_address(self.address))

    @property
    def ipv6(self) -> bool:
        """Whether the session runs over IPv6 (and so carries IPv6 unicast)."""
        return is_ipv6(self.address)


class PeerError(RuntimeError):
    """A peer's CLI gave no usable answer (daemon not up yet, unknown neighbor, bad output)."""


class PeerDaemon(abc.ABC):
    """A BGP daemon in one host's namespace, talking to ``neighbors``, originating ``prefixes``.

    ``start()`` returns at once (GoBGP waits for its API to add routes); use ``wait_established``
    and ``wait_prefixes`` to wait for the session and the routes. ``stop()`` sends SIGTERM (the
    daemon closes its sessions with a NOTIFICATION), ``kill()`` SIGKILL (the peer only sees the
    TCP connection close). ``start()`` may be called again after either.
    """

    kind: ClassVar[str] = "peer"

    def __init__(
        self,
        host: Host,
        router_id: str,
        local_as: int,
        neighbors: Sequence[Neighbor],
        prefixes: Iterable[str] = (),
        *,
        hold_time: int = DEFAULT_HOLD_TIME,
        keepalive_time: int = DEFAULT_KEEPALIVE_TIME,
        name: str | None = None,
    ) -> None:
        self.host = host
        self.router_id = str(ipaddress.IPv4Address(router_id))
        self.local_as = local_as
        self.neighbors = tuple(neighbors)
        addresses = [neighbor.address for neighbor in self.neighbors]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"duplicate neighbor addresses in {addresses}")
        self.prefixes: list[str] = [normalise_prefix(prefix) for prefix in prefixes]
        self.hold_time = hold_time
        self.keepalive_time = keepalive_time
        self.name = name or self.kind
        self.workdir = host.workdir / self.name
        self.rundir = host.topology.rundir / f"{host.name}-{self.name}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host.name}, AS{self.local_as})"

    # -- what a subclass provides -------------------------------------------------------------

    @abc.abstractmethod
    def _launch(self) -> None:
        """Write the config files and start the daemon's processes with ``_spawn``."""

    @abc.abstractmethod
    def session_state(self, neighbor_address: str) -> State:
        """The session with ``neighbor_address`` as the daemon reports it now."""

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        """The prefixes the daemon holds from ``neighbor_address`` now (Adj-RIB-In)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list received prefixes")

    def _apply_prefixes(self) -> None:
        """Make the running daemon originate exactly ``self.prefixes``."""
        raise NotImplementedError(f"{type(self).__name__} cannot change prefixes while running")

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Write the config and start the daemon; returns self, to allow ``Peer(...).start()``."""
        if self.running:
            raise RuntimeError(f"{self} is already running")
        stop_processes(self.processes)  # the survivors of a half-dead daemon (zebra alone)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self._launch()
        return self

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every process of the daemon, SIGKILL what outlives ``grace`` seconds."""
        stop_processes(self.processes, grace=grace)

    def kill(self) -> None:
        """SIGKILL every process of the daemon at once, as a crash would."""
        stop_processes(self.processes, signum=signal.SIGKILL)

    @property
    def running(self) -> bool:
        """Whether every process the daemon started is still alive."""
        return bool(self.processes) and all(p.poll() is None for p in self.processes)

    # -- routes -------------------------------------------------------------------------------

    def announce(self, *prefixes: str) -> None:
        """Originate ``prefixes`` too, on the running daemon."""
        for prefix in map(normalise_prefix, prefixes):
            if prefix not in self.prefixes:
                self.prefixes.append(prefix)
        self._apply_prefixes()

    def withdraw(self, *prefixes: str) -> None:
        """Stop originating ``prefixes``, on the running daemon."""
        gone = {normalise_prefix(prefix) for prefix in prefixes}
        self.prefixes = [prefix for prefix in self.prefixes if prefix not in gone]
        self._apply_prefixes()

    def prefixes_for(self, neighbor: Neighbor) -> list[str]:
        """The originated prefixes of ``neighbor``'s session family."""
        return [prefix for prefix in self.prefixes if is_ipv6(prefix) == neighbor.ipv6]

    # -- waiting ------------------------------------------------------------------------------

    def wait_state(
        self, neighbor_address: str, state: State, timeout: float = SESSION_TIMEOUT
    ) -> None:
        """Poll until the session with ``neighbor_address`` is in ``state``."""
        self._wait(
            lambda: self._checked(lambda: self.session_state(neighbor_address)),
            timeout,
            f"{self}'s session with {neighbor_address} to be {state}",
            until=lambda seen: seen == state,
        )

    def wait_established(self, neighbor_address: str, timeout: float = SESSION_TIMEOUT) -> None:
        """Poll until the session with ``neighbor_address`` is Established."""
        self.wait_state(neighbor_address, State.ESTABLISHED, timeout)

    def wait_not_established(
        self, neighbor_address: str, timeout: float = SESSION_TIMEOUT
    ) -> State:
        """Poll until the session with ``neighbor_address`` has left Established; the state."""
        return self._wait(
            lambda: self._checked(lambda: self.session_state(neighbor_address)),
            timeout,
            f"{self}'s session with {neighbor_address} to leave Established",
            until=lambda seen: seen != State.ESTABLISHED,
        )

    def wait_prefixes(
        self,
        neighbor_address: str,
        expected: Iterable[str],
        timeout: float = SESSION_TIMEOUT,
        *,
        exact: bool = False,
    ) -> frozenset[str]:
        """Poll until ``expected`` (all of it, or exactly it) came from ``neighbor_address``."""
        wanted = frozenset(map(normalise_prefix, expected))
        return self._wait(
            lambda: self._checked(lambda: self.received_prefixes(neighbor_address)),
            timeout,
            f"{self} to hold {'exactly ' if exact else ''}{sorted(wanted)} from {neighbor_address}",
            until=lambda seen: seen == wanted if exact else wanted <= seen,
        )

    def _wait(
        self, probe: Callable[[], T], timeout: float, what: str, *, until: Callable[[T], object]
    ) -> T:
        try:
            return wait_for(probe, timeout, what, until=until)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.log_tail()}") from None

    def _checked(self, probe: Callable[[], T]) -> T:
        # An AssertionError ends wait_for at once: a daemon that died (a config it rejected,
        # a crash) will not come back, so waiting out the deadline would only hide why.
        for process in self.processes:
            code = process.poll()
            if code is not None:
                raise AssertionError(f"{self}: {process.args!r} exited with status {code}")
        if not self.processes:
            raise AssertionError(f"{self} was never started")
        return probe()

    # -- diagnostics --------------------------------------------------------------------------

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of every log file of this daemon, for failure messages."""
        parts = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log}\n" + "\n".join(text))
        return "\n".join(parts) or f"(no logs in {self.workdir})"

    # -- for subclasses -----------------------------------------------------------------------

    def _spawn(
        self, *argv: str | Path, log: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start one process of the daemon in the namespace, output to ``workdir/<log>``."""
        process = self.host.popen(*map(str, argv), log=self.workdir / log, env=env)
        self.processes.append(process)
        return process

    def _run(self, *argv: str | Path, timeout: float = 10.0) -> str:
        """Run a CLI command of the daemon in the namespace; its stdout."""
        return self.host.run(*map(str, argv), timeout=timeout).stdout

    def neighbor(self, address: str) -> Neighbor:
        """The configured neighbor with ``address`` (in any spelling)."""
        wanted = ipaddress.ip_address(address).compressed
        for neighbor in self.neighbors:
            if neighbor.address == wanted:
                return neighbor
        raise KeyError(f"{self} has no neighbor {address}")

    def local_address(self, neighbor: Neighbor) -> str:
        """This host's address facing ``neighbor``."""
        return self.host.address_for(neighbor.address)
