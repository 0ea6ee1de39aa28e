"""The BIRD-compatible command line (``myna bird [-p] -c FILE``) and ``myna check`` of BIRD files.

Role: confd checks a rendered file with ``bird -p -c FILE`` and runit starts ``bird -R -s
SOCKET -d -c FILE``; with Myna installed under the names ``bird``/``bird6`` (symlinks, as
busybox does) those commands reach ``bird_main``. It accepts BIRD 1.6's options, reads the
file exactly as Myna would run it (parse, compile every filter and function, build the
``DaemonConfig``), and with ``-p`` stops there: exit 0, or BIRD's ``bird: FILE:LINE:COL
message`` on stderr and exit 1. What ``print``/``eval`` write while the file is read goes to
stderr as BIRD's does.

Running (without ``-p``) goes through ``run_hook``, ``bgpd.bird_run.run_bird`` (imported only
then: ``-p`` needs none of the daemon), with the ``DaemonConfig`` and the ``BirdRunOptions``
(which carry the file as read, for the BIRD control socket's protocol list).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.calico_facts import calico_facts
from bgpd.bird_config.config_model import BirdConfig
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.daemon_config import daemon_config_from_bird
from bgpd.bird_config.errors import BirdConfigError
from bgpd.bird_config.file_kinds import is_bird6
from bgpd.bird_config.filter_codegen import FilterMode
from bgpd.bird_config.filter_compiler import compile_filter
from bgpd.bird_config.values import BirdType
from bgpd.config import DaemonConfig

VERSION = "1.6.8 (Myna)"
_V4_SOCKET = "/var/run/bird.ctl"
_V6_SOCKET = "/var/run/bird6.ctl"


@dataclass(frozen=True, slots=True)
class BirdRunOptions:
    """What BIRD's command line says about running (not about routing)."""

    config_file: Path
    socket: Path
    pid_file: Path | None
    graceful_recovery: bool  # -R: wait for the peers' End-of-RIB before choosing routes
    foreground: bool  # -f or -d
    debug: bool  # -d
    debug_file: Path | None
    user: str | None
    group: str | None
    ipv6: bool = False  # bird6
    gr_wait: int = 240  # ``graceful restart wait``: -R's longest wait, in seconds
    bird_config: BirdConfig | None = None  # the file as read


def _run(config: DaemonConfig, options: BirdRunOptions) -> int:
    from bgpd.bird_run import run_bird  # noqa: PLC0415 - the daemon stack, only to run it

    return run_bird(config, options)


# Runs Myna from the config (tests may replace it).
run_hook: Callable[[DaemonConfig, BirdRunOptions], int] = _run
_program_name = "bird"


def _program() -> str:
    return _program_name


def bird_parser(prog: str) -> argparse.ArgumentParser:
    """BIRD 1.6's options (``bird -h``)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Myna, reading and running a BIRD 1.x configuration."
    )
    parser.add_argument("-c", dest="config", help="the configuration file")
    parser.add_argument("-d", dest="debug", action="store_true", help="debug, in the foreground")
    parser.add_argument("-D", dest="debug_file", help="debug messages to this file")
    parser.add_argument("-f", dest="foreground", action="store_true", help="in the foreground")
    parser.add_argument("-g", dest="group", help="run as this group")
    parser.add_argument("-l", dest="local", action="store_true", help="files in the cwd")
    parser.add_argument("-p", dest="parse_only", action="store_true", help="check and exit")
    parser.add_argument("-P", dest="pid_file", help="write a PID file")
    parser.add_argument("-R", dest="recovery", action="store_true", help="graceful recovery")
    parser.add_argument("-s", dest="socket", help="the control socket")
    parser.add_argument("-u", dest="user", help="run as this user")
    parser.add_argument("--version", action="version", version=f"BIRD version {VERSION}")
    return parser


def compile_everything(config: BirdConfig) -> None:
    """Compile every filter and function once, so that whatever Myna cannot run fails now."""
    for protocol in [*config.protocols, *config.templates.values()]:
        compile_filter(protocol.import_filter, mode=FilterMode.IMPORT)
        compile_filter(protocol.export_filter)
    for definition in config.filters.values():
        compile_filter(ast.FilterProgram(ast.FilterKind.FILTER, definition, config.ipv6))
    for function in config.functions.values():
        args = tuple(ast.Constant(function.position, BirdType.VOID, None) for _ in function.params)
        call = ast.Call(function.position, function.name, function, args)
        probe = ast.FilterDef(function.name, function.position)
        probe.body = (ast.CallCommand(function.position, call),)
        compile_filter(ast.FilterProgram(ast.FilterKind.FILTER, probe, config.ipv6))


def load(path: str, ipv6: bool) -> tuple[BirdConfig, DaemonConfig]:
    """Read, compile and convert ``path``; BirdConfigError for any problem."""
    config = read_bird_config(path, ipv6=ipv6)
    compile_everything(config)
    return config, daemon_config_from_bird(config)


def _print_line(line: str) -> None:
    print(f"{_program()}: {line}", file=sys.stderr)


def bird_main(argv: list[str], *, ipv6: bool | None = False, prog: str = "bird") -> int:
    """``bird``/``bird6`` with BIRD's options (see the module docstring).

    ``ipv6=None`` (``myna bird``): bird6's language when the file is named ``bird6*``.
    """
    global _program_name  # noqa: PLW0603 - the name BIRD's messages start with
    _program_name = "bird"
    args = bird_parser(prog).parse_args(argv)
    if ipv6 is None:
        ipv6 = args.config is not None and is_bird6(Path(args.config))
    default_name = "bird6.conf" if ipv6 else "bird.conf"
    config_file = args.config or (default_name if args.local else f"/etc/bird/{default_name}")
    local_socket = "bird6.ctl" if ipv6 else "bird.ctl"
    socket = args.socket or (local_socket if args.local else (_V6_SOCKET if ipv6 else _V4_SOCKET))
    try:
        config = read_bird_config(config_file, ipv6=ipv6, printer=_print_line)
    except BirdConfigError as error:
        print(f"{_program()}: {error}", file=sys.stderr)
        return 1
    try:
        compile_everything(config)
        daemon = daemon_config_from_bird(config)
    except BirdConfigError as error:
        print(f"{_program()}: {error}", file=sys.stderr)
        return 1
    if args.parse_only:
        return 0
    options = BirdRunOptions(
        config_file=Path(config_file),
        socket=Path(socket),
        pid_file=Path(args.pid_file) if args.pid_file else None,
        graceful_recovery=args.recovery,
        foreground=args.foreground or args.debug,
        debug=args.debug,
        debug_file=Path(args.debug_file) if args.debug_file else None,
        user=args.user,
        group=args.group,
        ipv6=ipv6,
        gr_wait=240 if config.graceful_restart_wait is None else config.graceful_restart_wait,
        bird_config=config,
    )
    return run_hook(daemon, options)


def check_bird(path: Path, ipv6: bool | None = None) -> tuple[DaemonConfig, dict[str, Any]]:
    """``myna check`` of a BIRD file: the effective config and the recognised Calico inputs."""
    six = is_bird6(path) if ipv6 is None else ipv6
    config, daemon = load(str(path), six)
    return daemon, calico_facts(config)
