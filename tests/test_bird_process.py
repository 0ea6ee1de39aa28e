"""``bird`` / ``bird6`` as processes: BIRD 1.6's command-line contract, kept by ``myna bird``.

Data flow: each test writes a small BIRD file (no kernel protocol: nothing here touches a
routing table; BGP listens on a loopback address and a free port) and starts Myna as runit or
an operator would -- ``myna bird ...``, ``myna bird6 ...`` or a symlink named ``bird`` -- as a
subprocess, then reads what the rest of the system reads: ``/proc/PID/cmdline`` (calicoctl's
process check, ``calico_bird_clients.ps_contains``), the PID file, the control socket, the
process's session, credentials and capabilities. Every process a test starts is stopped by
its PID in a ``finally``, the daemonized one too. The ``-R`` test runs an in-process Myna as
the BGP peer (on 127.0.0.2) and reads the Restart State flag from the OPEN it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from calico_bird_clients import cmdline, converse, gr_in_progress, ps_contains
from loopback_daemons import free_port
from loopback_daemons import wait_for as async_wait_for
from testbed.topology import wait_for
from uvloop_runner import on_uvloop

from bgpd.config import parse_config
from bgpd.daemon import Daemon
from speaker.capabilities import GracefulRestartCapability
from speaker.wire_codes import GracefulRestartFlag

MYNA = Path(sys.executable).with_name("myna")


def bird_file(port: int, peer: str | None = None, peer_port: int = 179, wait: int = 3) -> str:
    """A BIRD file listening on 127.0.0.1:PORT, with one iBGP peer when given."""
    lines = [
        "router id 198.18.0.1;",
        f"listen bgp address 127.0.0.1 port {port};",
        f"graceful restart wait {wait};",
        "protocol device { }",
    ]
    if peer is not None:
        lines += [
            "protocol bgp Mesh_127_0_0_2 {",
            "  local as 64512;",
            f"  neighbor {peer} port {peer_port} as 64512;",
            "  source address 127.0.0.1;",
            "  direct; graceful restart; hold time 9;",
            "  connect delay time 1; connect retry time 1; error wait time 1,2;",
            "  import all; export all;",
            "}",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def stopped_at_exit(*pids: int) -> Iterator[None]:
    """SIGKILL whatever of ``pids`` still runs when the test leaves (pass or fail)."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def answers(path: Path) -> list[str]:
    """The socket's ``show status`` reply; an exception while it does not answer."""
    return converse(path, "show status")


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("how", "program"),
    [("myna bird", "bird"), ("myna bird6", "bird6"), ("symlink bird", "bird")],
)
def test_the_process_is_called_bird_as_calicoctl_looks_for_it(
    tmp_path: Path, how: str, program: str
) -> None:
    config = tmp_path / f"{program}.cfg"
    config.write_text(bird_file(free_port("127.0.0.1")).replace("127.0.0.1", "::1", 1)
                      if program == "bird6" else bird_file(free_port("127.0.0.1")))  # fmt: skip
    sock, pid_file = tmp_path / f"{program}.ctl", tmp_path / f"{program}.pid"
    if how.startswith("symlink"):
        (tmp_path / "bird").symlink_to(MYNA)
        argv = [str(tmp_path / "bird")]
    else:
        argv = [str(MYNA), program]
    process = start([*argv, "-f", "-c", str(config), "-s", str(sock), "-P", str(pid_file)],
                    tmp_path / "myna.log")  # fmt: skip
    with stopped_at_exit(process.pid):
        status = wait_for(lambda: answers(sock), 30, f"{how}'s socket", until=bool)
        assert status[0].startswith("0001 BIRD v0.3.3+birdv1.6.8")
        # calicoctl node status: gopsutil's CmdlineSlice, argv[0] exactly "bird"/"bird6"
        assert cmdline(process.pid) == [program]
        assert ps_contains([program], [cmdline(process.pid)])
        assert Path(f"/proc/{process.pid}/comm").read_text().strip() == program
        assert pid_file.read_text() == f"{process.pid}\n"
        assert sock.stat().st_mode & 0o777 == 0o660  # BIRD's cli_init_unix
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert not pid_file.exists() and not sock.exists()  # BIRD removes both at exit


def test_without_d_or_f_it_forks_into_the_background_as_bird_does(tmp_path: Path) -> None:
    config = tmp_path / "bird.cfg"
    config.write_text(bird_file(free_port("127.0.0.1")))
    sock, pid_file = tmp_path / "bird.ctl", tmp_path / "bird.pid"
    parent = start([str(MYNA), "bird", "-c", str(config), "-s", str(sock), "-P", str(pid_file)],
                   tmp_path / "myna.log")  # fmt: skip
    with stopped_at_exit(parent.pid):
        assert parent.wait(30) == 0  # the parent returns at once, as BIRD's does
        daemon = int(wait_for(pid_file.read_text, 30, "the PID file", until=str.strip))
    with stopped_at_exit(daemon):
        assert daemon != parent.pid and alive(daemon)
        assert os.getsid(daemon) == daemon  # setsid: no controlling terminal, its own session
        assert os.readlink(f"/proc/{daemon}/fd/0") == os.devnull
        assert os.readlink(f"/proc/{daemon}/fd/1") == os.devnull
        assert cmdline(daemon) == ["bird"]
        wait_for(lambda: answers(sock), 30, "the daemon's socket", until=bool)
        os.kill(daemon, signal.SIGTERM)
        wait_for(lambda: not alive(daemon), 15, "the daemon to exit")
        assert not pid_file.exists() and not sock.exists()


def test_a_second_bird_on_a_live_socket_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bird.cfg"
    config.write_text(bird_file(free_port("127.0.0.1")))
    sock = tmp_path / "bird.ctl"
    first = start([str(MYNA), "bird", "-f", "-c", str(config), "-s", str(sock)],
                  tmp_path / "first.log")  # fmt: skip
    with stopped_at_exit(first.pid):
        wait_for(lambda: answers(sock), 30, "the first daemon's socket", until=bool)
        second = subprocess.run(
            [str(MYNA), "bird", "-f", "-c", str(config), "-s", str(sock)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert (second.returncode, second.stderr) == (1, "bird: I found another BIRD running.\n")
        assert answers(sock)[0].startswith("0001 ")  # the first one still answers
        # A dead daemon's socket file is no obstacle: it is replaced (BIRD unlinks it).
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    sock.touch(exist_ok=True)
    third = start([str(MYNA), "bird", "-f", "-c", str(config), "-s", str(sock)],
                  tmp_path / "third.log")  # fmt: skip
    with stopped_at_exit(third.pid):
        wait_for(lambda: answers(sock), 30, "the new daemon's socket", until=bool)


@pytest.mark.skipif(os.geteuid() != 0, reason="-u and -g change credentials: root only")
def test_u_and_g_drop_to_the_user_keeping_birds_capabilities(tmp_path: Path) -> None:
    config = tmp_path / "bird.cfg"
    config.write_text(bird_file(free_port("127.0.0.1")))
    sock = tmp_path / "bird.ctl"
    process = start([str(MYNA), "bird", "-f", "-u", "nobody", "-g", "nogroup", "-c",
                     str(config), "-s", str(sock)], tmp_path / "myna.log")  # fmt: skip
    with stopped_at_exit(process.pid):
        wait_for(lambda: answers(sock), 30, "the socket", until=bool)
        status = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
            if ":\t" in line
        )
        nobody = 65534
        assert status["Uid"].split() == [str(nobody)] * 4
        assert status["Gid"].split() == [str(nobody)] * 4
        assert status["Groups"].strip() == ""
        caps = int(status["CapEff"], 16)
        assert caps == sum(1 << cap for cap in (10, 11, 12, 13))  # BIRD's four, no more
        assert (sock.stat().st_uid, sock.stat().st_gid) == (nobody, nobody)
        assert sock.stat().st_mode & 0o777 == 0o660
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


@on_uvloop
async def test_r_sets_the_restart_flag_and_defers_selection_without_r_neither(
    tmp_path: Path,
) -> None:
    peer_port, port = free_port("127.0.0.2"), free_port("127.0.0.1")
    peer_config = {
        "router_id": "198.18.0.2",
        "local_as": 64512,
        "listen": {"addresses": ["127.0.0.2"], "port": peer_port},
        "control": {"socket": None},
        "timers": {"hold_time": 9, "connect_delay": 0.1, "connect_retry": 0.5},
        "peers": [{"address": "127.0.0.1", "as": 64512, "port": port, "passive": True,
                   "source_address": "127.0.0.2"}],
    }  # fmt: skip
    peer = Daemon(parse_config(yaml.safe_dump(peer_config)))
    await peer.start()
    try:
        for recovery in (True, False):
            config = tmp_path / f"bird-{recovery}.cfg"
            config.write_text(bird_file(port, "127.0.0.2", peer_port, wait=30))
            sock = tmp_path / f"bird-{recovery}.ctl"
            argv = [str(MYNA), "bird", *(["-R"] if recovery else []), "-d", "-c", str(config),
                    "-s", str(sock)]  # fmt: skip
            with (tmp_path / "myna.log").open("ab") as log:
                process = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log)
            with stopped_at_exit(process.pid):
                first: list[list[str]] = []

                def first_status(path: Path = sock, seen: list[list[str]] = first) -> bool:
                    with contextlib.suppress(OSError):
                        seen.append(converse(path, "show status"))
                    return bool(seen)

                # The socket opens before the sessions start: recovery, if any, is on.
                await async_wait_for("the bird process's socket", first_status, 30)
                assert gr_in_progress(first[0]) == recovery, first[0]
                session = peer.session("127.0.0.1")
                await async_wait_for(
                    "the bird process's session",
                    lambda s=session: s.fsm.established is not None,
                    30,
                )
                conn = session.fsm.established
                assert conn is not None and conn.received_open is not None
                restart = next(
                    c
                    for c in conn.received_open.capabilities
                    if isinstance(c, GracefulRestartCapability)
                )
                flagged = bool(restart.restart_flags & GracefulRestartFlag.RESTART_STATE)
                assert flagged == recovery
                # End-of-RIB from the one peer ends recovery long before the 30 s wait.
                await async_wait_for(
                    "graceful-restart recovery to end",
                    lambda path=sock: not gr_in_progress(converse(path, "show status")),
                    20,
                )
                process.send_signal(signal.SIGTERM)
                await process.wait()
            await async_wait_for(
                "the session to end", lambda s=session: s.fsm.established is None, 30
            )
    finally:
        await peer.close()


def test_d_file_gets_the_debug_lines_and_stderr_stays_at_the_configs_level(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bird.cfg"
    config.write_text(bird_file(free_port("127.0.0.1"), "127.0.0.9", free_port("127.0.0.9")))
    sock, debug, log = tmp_path / "bird.ctl", tmp_path / "debug.log", tmp_path / "myna.log"
    process = start([str(MYNA), "bird", "-f", "-D", str(debug), "-c", str(config), "-s",
                     str(sock)], log)  # fmt: skip
    with stopped_at_exit(process.pid):
        wait_for(
            lambda: debug.read_text() if debug.exists() else "",
            30,
            "a debug line in the -D file",
            until=lambda text: "connecting to port" in text,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert "connecting to port" not in log.read_text()  # the config asks for info, not debug
