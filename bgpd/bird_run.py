"""``bird`` / ``bird6`` running: BIRD 1.6's process contract around Myna's daemon.

Role: ``bgpd.bird_config.cli.bird_main`` reads the BIRD file and the command line; without
``-p`` it calls ``run_hook``, which this module sets to ``run_bird``. What follows is BIRD
1.6.8's ``sysdep/unix/main.c`` step by step, so that runit, confd, calicoctl and calico-node's
probes see the process they expect:

1. ``test_old_bird``: a control socket that still answers means another daemon runs there:
   ``bird: I found another BIRD running.``, exit 1. A dead one's file is replaced.
2. The control socket is bound now, while we are still root (``cli_init_unix``): mode 0660,
   owned by the ``-u``/``-g`` user and group when given. ``bgpd.bird_socket`` serves it later.
3. ``-g GROUP``: setgid and no supplementary groups; ``-u USER``: setresuid keeping the four
   capabilities BIRD keeps (``sysdep/linux/syspriv.h``: NET_BIND_SERVICE, NET_BROADCAST,
   NET_ADMIN, NET_RAW), which are what Myna needs too (port 179, routes, GTSM and BFD).
4. ``-P FILE`` is opened (``Cannot create PID file ...`` otherwise, exit 1).
5. Without ``-d`` or ``-f``, BIRD forks once: the parent exits 0, the child calls setsid and
   puts /dev/null on stdin, stdout and stderr. Myna does the same; its log lines, which go to
   stderr, then go to the file of the config's first ``log "FILE"`` statement, or to syslog
   (BIRD's default for a daemon without ``log`` lines, and what ``log syslog`` asks for).
6. The PID file gets the daemon's PID; it and the control socket are removed at exit.
7. The process title becomes ``bird`` (``bird6``), exactly: calicoctl finds BIRD by the first
   word of ``/proc/PID/cmdline`` (gopsutil's CmdlineSlice) and the title is what that file
   then holds (``setproctitle`` rewrites the argument area). Started as ``myna bird`` or
   through a ``bird`` symlink alike.
8. ``-R`` (``graceful_restart_recovery``): BIRD sets the Restart State flag in its OPENs and
   holds its exports (to peers and to the kernel) until every graceful-restart protocol has
   sent End-of-RIB or ``graceful restart wait`` (240 s by default) has passed; ``show status``
   says ``0024 Graceful restart recovery in progress`` meanwhile. Myna's selection deferral
   is that (its length: ``graceful restart wait``, else 240). Without ``-R`` there is no
   deferral and no Restart State flag, as in BIRD. One difference, on purpose: BIRD without
   ``-R`` also clears the Forwarding State bit and prunes its old kernel routes at the first
   scan; Myna keeps the bit and its kernel routes (it removes the ones no peer announced
   again a minute after the start), since it does keep forwarding across the restart.
9. SIGHUP re-reads the file and applies it (``ControlApi.apply_file``, the path YAML reloads
   take too; see ``bgpd.reload_plan`` for what restarts); SIGTERM and SIGINT stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import grp
import logging
import logging.handlers
import os
import pwd
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import setproctitle

from bgpd import bird_socket
from bgpd.bird_config import cli as bird_cli
from bgpd.bird_config.cli import BirdRunOptions
from bgpd.bird_config.config_model import BirdConfig
from bgpd.bird_config.errors import BirdConfigError
from bgpd.bird_control.protocols import BirdFront
from bgpd.config import ConfigError, ControlModel, DaemonConfig
from bgpd.daemon import Daemon, run
from bgpd.reload_plan import ReloadPlan

LOG = logging.getLogger("myna.bird")
# BIRD's restricted capabilities (sysdep/linux/syspriv.h drop_uid)
_CAP_NET_BIND_SERVICE, _CAP_NET_BROADCAST, _CAP_NET_ADMIN, _CAP_NET_RAW = 10, 11, 12, 13
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_KEEPCAPS = 8


class BirdDiedError(Exception):
    """What BIRD's ``die()`` would print before exiting 1 (the message only)."""


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def run_config(config: DaemonConfig, options: BirdRunOptions) -> DaemonConfig:
    """What the command line changes in the file's config: the sockets and ``-R``.

    The same function on every reload, so an unchanged file gives an equal config.
    """
    control = ControlModel(
        socket=None,  # Myna's own control socket: one per bird and bird6 would share its path
        bird_socket=None if options.ipv6 else options.socket,
        bird6_socket=options.socket if options.ipv6 else None,
    )
    return config.model_copy(
        update={
            "control": control,
            "selection_deferral": float(options.gr_wait) if options.graceful_recovery else 0.0,
        }
    )


@dataclass
class _Privileges:
    uid: int | None
    gid: int | None


def _ids(options: BirdRunOptions) -> _Privileges:
    """``-u``/``-g`` as numbers (BIRD's ``get_uid``/``get_gid``: a number, else a name)."""
    uid = gid = None
    if options.user is not None:
        if options.user.isdigit():
            uid = int(options.user)
        else:
            try:
                uid = pwd.getpwnam(options.user).pw_uid
            except KeyError:
                raise BirdDiedError(f"Cannot find user '{options.user}'") from None
    if options.group is not None:
        if options.group.isdigit():
            gid = int(options.group)
        else:
            try:
                gid = grp.getgrnam(options.group).gr_gid
            except KeyError:
                raise BirdDiedError(f"Cannot find group '{options.group}'") from None
    return _Privileges(uid or None, gid or None)  # BIRD: 0 means "not given"


def _test_old_bird(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return
    raise BirdDiedError("I found another BIRD running.")


def _bind_control_socket(path: Path, ids: _Privileges) -> socket.socket:
    """BIRD's ``cli_init_unix``: unlink, bind, chown to -u/-g, mode 0660."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sock.bind(str(path))
        sock.listen(64)
        if ids.uid is not None or ids.gid is not None:
            os.chown(path, -1 if ids.uid is None else ids.uid, -1 if ids.gid is None else ids.gid)
        path.chmod(0o660)
    except OSError as error:
        sock.close()
        raise BirdDiedError(f"Cannot create control socket {path}: {error.strerror}") from None
    return sock


def _drop_privileges(ids: _Privileges) -> None:
    """BIRD's ``drop_gid`` and ``drop_uid`` (see the module docstring)."""
    if ids.gid is not None:
        try:
            os.setgid(ids.gid)
            os.setgroups([])
        except OSError as error:
            raise BirdDiedError(f"setgid: {error.strerror}") from None
    if ids.uid is None:
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    caps = sum(
        1 << cap
        for cap in (_CAP_NET_BIND_SERVICE, _CAP_NET_BROADCAST, _CAP_NET_ADMIN, _CAP_NET_RAW)
    )
    try:
        os.seteuid(ids.uid)  # as BIRD: the effective uid first, while CAP_SETUID is still held
    except OSError as error:
        raise BirdDiedError(f"seteuid: {error.strerror}") from None
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(caps, caps, 0), _CapData(0, 0, 0))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise BirdDiedError(f"capset: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise BirdDiedError(f"prctl: {os.strerror(ctypes.get_errno())}")
    try:
        os.setresuid(ids.uid, ids.uid, ids.uid)
    except OSError as error:
        raise BirdDiedError(f"setresuid: {error.strerror}") from None


def _open_pid_file(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return path.open("a")  # BIRD: O_WRONLY|O_CREAT, truncated when the PID is written
    except OSError as error:
        raise BirdDiedError(f"Cannot create PID file {path}: {error.strerror}") from None


def _daemonize(log_file: str | None) -> None:
    """BIRD's fork: the parent exits 0 at once, the child leaves the terminal's session."""
    if os.fork() > 0:
        os._exit(0)  # the parent leaves without running the child's cleanups
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    target = null
    if log_file is not None:
        with contextlib.suppress(OSError):
            target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(target, 2)  # Myna logs to stderr: the config's log file, else nothing
    for fd in {null, target}:
        if fd > 2:
            os.close(fd)


def _log_file(config: BirdConfig) -> str | None:
    return next((t.path for t in config.logs if t.target == "file" and t.path), None)


def _wants_syslog(config: BirdConfig) -> str | None:
    """The syslog name for a daemon logging there: ``log syslog``, or no file target at all."""
    syslog = next((t for t in config.logs if t.target == "syslog"), None)
    if syslog is not None:
        return syslog.path or "bird"
    return None if _log_file(config) else "bird"


def _add_syslog(name: str) -> None:
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.SysLogHandler) for h in root.handlers):
        return  # still there (configure_logging replaces handlers only when the level changes)
    try:
        handler = logging.handlers.SysLogHandler(address="/dev/log")
    except OSError:
        return  # no syslog daemon here: nothing to hand the lines to, as BIRD's syslog()
    handler.ident = f"{name}: "
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def run_bird(config: DaemonConfig, options: BirdRunOptions) -> int:
    """The run hook (see the module docstring): 0 when stopped by a signal, else 1."""
    program = "bird6" if options.ipv6 else "bird"
    bird_config = options.bird_config
    try:
        if bird_config is None:
            bird_config, _ = bird_cli.load(str(options.config_file), options.ipv6)
        ids = _ids(options)
        _test_old_bird(options.socket)
        listening = _bind_control_socket(options.socket, ids)
        _drop_privileges(ids)
        pid_file = _open_pid_file(options.pid_file)
    except (BirdDiedError, BirdConfigError) as error:
        print(f"bird: {error}", file=sys.stderr)  # bird6 says "bird: " too (its die())
        return 1
    config = run_config(config, options)
    if not options.foreground:
        _daemonize(_log_file(bird_config))
    if pid_file is not None:
        pid_file.truncate(0)
        pid_file.write(f"{os.getpid()}\n")
        pid_file.close()
    setproctitle.setproctitle(program)
    bird_socket.PREBOUND[options.socket] = listening
    front = BirdFront(bird_config, options)
    syslog = None if options.foreground else _wants_syslog(bird_config)

    def setup(daemon: Daemon) -> None:
        api = daemon.api
        api.bird = front

        def loader() -> DaemonConfig:
            try:
                new_bird, new_config = bird_cli.load(str(options.config_file), options.ipv6)
            except BirdConfigError as error:
                raise ConfigError(str(error)) from None
            front.pending = new_bird
            return run_config(new_config, options)

        def reloaded(_plan: ReloadPlan) -> None:
            front.applied()
            if syslog is not None:
                _add_syslog(syslog)  # a log level change installs the stderr handler again

        api.loader = loader
        api.reloaded.append(reloaded)
        if syslog is not None:
            _add_syslog(syslog)
        if options.debug_file is not None:
            # -D: every debug line to the file, the other handlers at the config's level.
            root = logging.getLogger()
            for handler in root.handlers:
                handler.setLevel(root.level)
            debug = logging.FileHandler(options.debug_file)
            debug.setLevel(logging.DEBUG)
            root.addHandler(debug)
            root.setLevel(logging.DEBUG)

    try:
        return run(config, options.config_file, setup=setup)
    finally:
        for path in (options.pid_file, options.socket):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
