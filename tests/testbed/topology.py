"""Network-namespace topologies for interop tests: hosts on one Linux bridge, and their teardown.

Data flow: a test enters a ``Topology`` (directly or through the ``topology`` fixture in
``testbed.fixtures``) and calls ``add_host(name)`` once per host. The topology first makes a
"switch" namespace holding bridge ``br0``; every host is a namespace of its own whose ``eth0`` is
one end of a veth pair, the other end being a bridge port in the switch namespace (the FRR
topotests layout). Host number N (1, 2, ...) gets 198.18.0.N/24 and 2001:db8::N/64 on ``eth0``,
and ``lo`` up, so every host reaches every other over IPv4 and IPv6 and nothing else.

Processes started through ``Host.popen`` are registered with the topology. Leaving the ``with``
block, whether the body returned or raised, stops them all by PID (SIGTERM, a grace period,
then SIGKILL), kills whatever is still inside one of the topology's namespaces (found with
``ip netns pids``, so daemons that forked are caught too), and deletes the namespaces.

Namespace names start with ``myna<pid>-<n>-`` (pid of the test process, n counting topologies
within it), so parallel runs and earlier runs never collide; ``remove_stale_namespaces`` deletes
what a test process that died without its teardown left behind. Everything goes through
iproute2's ``ip`` command: one short subprocess per step is fast enough and easy to replay by
hand from a failing test's output.

``wait_for`` is the one way tests wait: it polls a probe until a condition holds or a deadline
passes, and its AssertionError names what was awaited and the last value seen.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

IPV4_SUBNET = ipaddress.IPv4Network("198.18.0.0/24")
IPV6_SUBNET = ipaddress.IPv6Network("2001:db8::/64")
# Every address a test may talk to: the RFC 2544 benchmark block and the RFC 3849
# documentation block (our namespaces), plus loopback (a namespace's own control sockets).
ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv4Network("198.18.0.0/15"),
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
)
NAMESPACE_PREFIX = "myna"
TERM_GRACE_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 30.0

_HOST_NAME = re.compile(r"[a-z][a-z0-9_]{0,23}")
_STALE_NAMESPACE = re.compile(rf"{NAMESPACE_PREFIX}(\d+)-")
_topology_numbers = itertools.count(1)

T = TypeVar("T")


class CommandError(subprocess.CalledProcessError):
    """A command run for the test bed failed; unlike its base class, its text shows the output."""

    def __str__(self) -> str:
        text = super().__str__()
        for label, stream in (("stdout", self.stdout), ("stderr", self.stderr)):
            if stream:
                text += f"\n{label}: {str(stream).strip()}"
        return text


def run(
    *cmd: str,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT_SECONDS,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the test process's namespace and capture its text output."""
    result = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise CommandError(result.returncode, list(cmd), result.stdout, result.stderr)
    return result


def check_address(address: str) -> str:
    """``address`` in its compressed form, after checking it is one a test may send to."""
    ip = ipaddress.ip_address(address)
    if not any(ip in network for network in ALLOWED_NETWORKS):
        raise ValueError(
            f"{address} is outside the test bed's ranges (198.18.0.0/15, 2001:db8::/32, loopback)"
        )
    return ip.compressed


def wait_for(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    *,
    until: Callable[[T], object] = bool,
    interval: float = 0.1,
) -> T:
    """The first value of ``probe()`` for which ``until(value)`` is true, polling until ``timeout``.

    An exception from ``probe`` counts as one more observation (a CLI whose daemon is still
    starting fails a few times before it answers), so it is kept as the last value seen; only
    an AssertionError from ``probe`` ends the wait at once. On timeout the AssertionError names
    ``what`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    last: object = "<never probed>"
    while True:
        try:
            value = probe()
        except AssertionError:
            raise  # the probe's verdict that waiting longer cannot help
        except Exception as error:  # any failure is just "not yet"
            last = f"{type(error).__name__}: {error}"
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last seen: {last!r}"
            )
        time.sleep(interval)


def namespace_pids(netns: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``netns`` (empty if it is gone)."""
    result = run("ip", "netns", "pids", netns, check=False)
    return [int(word) for word in result.stdout.split()]


def _is_alive(pid: int) -> bool:
    # A zombie has exited but still answers kill(pid, 0); /proc tells them apart.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _signal_pid(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _kill_namespace_members(namespaces: Sequence[str], grace: float) -> None:
    # The registered processes are gone by now; what remains here forked away from us (a
    # daemonised child, an API helper of ExaBGP), so it gets SIGTERM, then SIGKILL.
    pids = {pid for netns in namespaces for pid in namespace_pids(netns)}
    pids.discard(os.getpid())
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            _signal_pid(pid, signum)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if _is_alive(pid)}
            time.sleep(0.05)
        if not pids:
            return


def stop_processes(
    processes: Sequence[subprocess.Popen[bytes]],
    grace: float = TERM_GRACE_SECONDS,
    signum: signal.Signals = signal.SIGTERM,
) -> None:
    """Send ``signum`` to every live process, wait up to ``grace`` s, SIGKILL the rest, reap all."""
    live = [process for process in processes if process.poll() is None]
    if signum != signal.SIGKILL:
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            live = [process for process in live if process.poll() is None]
            if not live:
                return
            time.sleep(0.05)
    for process in live:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    for process in live:
        process.wait()


def remove_stale_namespaces() -> list[str]:
    """Delete what test processes that died before their teardown left; their namespaces."""
    result = run("ip", "netns", "list", check=False)
    stale: list[str] = []
    dead: set[int] = set()
    for line in result.stdout.splitlines():
        name = line.split(" ", 1)[0]
        match = _STALE_NAMESPACE.match(name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.append(name)
            dead.add(pid)
        except PermissionError:
            pass  # alive, as another user: a parallel run, not a leftover
    _kill_namespace_members(stale, grace=1.0)
    for name in stale:
        run("ip", "netns", "delete", name, check=False)
    for pid in dead:  # and their run dirs, named like their namespaces (Topology.__enter__)
        for rundir in Path(tempfile.gettempdir()).glob(f"{NAMESPACE_PREFIX}{pid}-*"):
            shutil.rmtree(rundir, ignore_errors=True)
    return stale


class Host:
    """One namespace on the topology's bridge: its addresses, a work dir, and ways to run things."""

    def __init__(self, topology: Topology, name: str, number: int) -> None:
        self.topology = topology
        self.name = name
        self.number = number
        self.netns = f"{topology.prefix}{name}"
        self.ipv4 = str(IPV4_SUBNET.network_address + number)
        self.ipv6 = f"2001:db8::{number}"
        self.ipv4_interface = f"{self.ipv4}/{IPV4_SUBNET.prefixlen}"
        self.ipv6_interface = f"{self.ipv6}/{IPV6_SUBNET.prefixlen}"
        self.workdir = topology.workdir / name

    def __repr__(self) -> str:
        return f"Host({self.name!r}, netns={self.netns!r}, ipv4={self.ipv4}, ipv6={self.ipv6})"

    def address_for(self, peer_address: str) -> str:
        """This host's address of the same family as ``peer_address``."""
        return self.ipv6 if ipaddress.ip_address(peer_address).version == 6 else self.ipv4

    def command(self, *cmd: str) -> list[str]:
        """``cmd`` prefixed so that it runs inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *cmd]

    def run(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace, wait for it, and capture its text output."""
        return run(*self.command(*cmd), check=check, timeout=timeout, stdin=stdin)

    def ip(self, *args: str) -> str:
        """``ip -n <netns> args...``'s output, e.g. ``host.ip("route", "add", ...)``."""
        return run("ip", "-n", self.netns, *args).stdout

    def popen(
        self,
        *cmd: str,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` inside the namespace and register it for teardown.

        Its stdout and stderr go to ``log`` (appended) or are discarded. ``env`` is added to the
        test process's environment. ``ip netns exec`` execs the command in place, so the PID is
        the command's own and signals sent to it reach the command itself.
        """
        full_env = {**os.environ, **(env or {})}
        output: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            output = log.open("ab")
        try:
            process = subprocess.Popen(
                self.command(*cmd),
                stdin=stdin,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                # Its own session, so a Ctrl-C meant for pytest does not hit the daemons
                # before the teardown can stop them in order.
                start_new_session=True,
            )
        finally:
            if not isinstance(output, int):
                output.close()
        self.topology.register(process)
        return process

    def pids(self) -> list[int]:
        """PIDs of every process now inside this host's namespace."""
        return namespace_pids(self.netns)


class Topology:
    """Hosts in network namespaces on one bridge; a context manager whose exit removes it all.

    ``workdir`` holds one directory per host for daemons' configs and logs. Given (pytest's
    ``tmp_path``), it is kept after the test for post-mortems; if omitted, a temporary one is
    made and deleted on exit. ``rundir``, always temporary and deleted on exit, is a short path
    under /tmp for control sockets and pid files (Unix socket paths are limited to 108 bytes,
    pytest's are long) that other users may traverse (FRR's zebra drops to user frr).
    """

    def __init__(self, workdir: Path | None = None) -> None:
        self.prefix = f"{NAMESPACE_PREFIX}{os.getpid()}-{next(_topology_numbers)}-"
        self.switch_netns = f"{self.prefix}sw"
        self._given_workdir = workdir
        self.rundir = Path("/nonexistent")  # made on entry
        self.workdir = Path("/nonexistent") if workdir is None else workdir
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._entered = False
        self._closed = False

    def __enter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Topology can be entered once")
        self._entered = True
        try:
            self.rundir = Path(tempfile.mkdtemp(prefix=self.prefix))
            self.rundir.chmod(0o755)
            if self._given_workdir is None:
                self.workdir = self.rundir / "work"
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._add_namespace(self.switch_netns)
            self._ip_n(self.switch_netns, "link", "add", "br0", "type", "bridge")
            self._ip_n(self.switch_netns, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this topology made and has not deleted yet, the switch's first."""
        return list(self._namespaces)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every process registered through ``Host.popen``, running or not."""
        return list(self._processes)

    def register(self, process: subprocess.Popen[bytes]) -> None:
        """Have the teardown stop ``process`` (``Host.popen`` does this for its own)."""
        self._processes.append(process)

    def add_host(self, name: str) -> Host:
        """A new host ``name`` (lower case, short) with the next free number's addresses."""
        if self._closed or not self._entered:
            raise RuntimeError("add hosts inside the topology's with block")
        if not _HOST_NAME.fullmatch(name):
            raise ValueError(f"host name {name!r} must match {_HOST_NAME.pattern}")
        if name in self.hosts or name == "sw":
            raise ValueError(f"host name {name!r} is taken")
        number = len(self.hosts) + 1
        if number >= IPV4_SUBNET.num_addresses - 1:
            raise ValueError("198.18.0.0/24 has no host number left")
        host = Host(self, name, number)
        port = f"h{number}"
        self._add_namespace(host.netns)
        # Without DAD every address, the kernel's link-local one included, is usable the moment
        # it exists; BIRD and FRR put eth0's link-local address into IPv6 next hops.
        run(*host.command("sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"))
        # Both veth ends are made straight inside the two namespaces, so no interface name is
        # ever taken in the root namespace, where parallel runs would collide.
        self._ip_n(self.switch_netns, "link", "add", port, "type", "veth",
                   "peer", "name", "eth0", "netns", host.netns)  # fmt: skip
        self._ip_n(self.switch_netns, "link", "set", port, "master", "br0", "up")
        self._ip_n(host.netns, "link", "set", "lo", "up")
        self._ip_n(host.netns, "addr", "add", host.ipv4_interface, "dev", "eth0")
        # nodad: usable at once, instead of "tentative" for a second or two, so a daemon can
        # bind it as soon as the host exists.
        self._ip_n(host.netns, "-6", "addr", "add", host.ipv6_interface, "dev", "eth0", "nodad")
        self._ip_n(host.netns, "link", "set", "eth0", "up")
        host.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        """Stop every registered process, kill stragglers, delete the namespaces; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            stop_processes(self._processes)
            _kill_namespace_members(self._namespaces, grace=TERM_GRACE_SECONDS)
        finally:
            # Hosts first: deleting one takes its eth0 and, with it, the switch's veth end.
            for netns in reversed(self._namespaces):
                run("ip", "netns", "delete", netns, check=False)
            self._namespaces.clear()
            if self.rundir.name.startswith(self.prefix):
                shutil.rmtree(self.rundir, ignore_errors=True)

    def _add_namespace(self, netns: str) -> None:
        run("ip", "netns", "add", netns)
        self._namespaces.append(netns)

    @staticmethod
    def _ip_n(netns: str, *args: str) -> None:
        run("ip", "-n", netns, *args)
