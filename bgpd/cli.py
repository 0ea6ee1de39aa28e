"""The ``myna`` command line: one entry point, one subcommand per job.

Data flow: argv -> argparse -> the subcommand's function, which prints to stdout and returns
the exit status. ``run -c FILE`` starts the daemon (``bgpd.daemon``), ``check -c FILE``
validates a config and prints it (passwords hidden) whether it is Myna's YAML or a BIRD 1.x
file (``bgpd.bird_config``: recognised by name or content), ``bird`` and ``bird6`` take BIRD's
own command line (``-p -c FILE`` checks a file as ``bird -p`` does; Myna started under the
name ``bird`` or ``bird6`` behaves as these), ``show`` and ``reload`` talk to a running
daemon over its control socket (``cli_show``), ``decode`` turns a BGP message in hex (as
tcpdump or a log shows it) into the values Myna's codec reads from it, ``lab`` builds a
small Calico cluster in network namespaces and shows Myna converging in it (``bgpd.lab``).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from bgpd.bird_config.file_kinds import bird_program_for, is_bird_config
from bgpd.cli_show import add_commands, run_command
from bgpd.config import ConfigError, DaemonConfig, load_config
from bgpd.daemon import run
from bgpd.lab import add_arguments as add_lab_arguments
from speaker.codec_errors import CodecError, MessageError
from speaker.messages import decode_wire
from speaker.negotiated import Negotiated
from speaker.wire_codes import Family, error_name


def _version() -> str:
    try:
        return version("myna")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _decode(args: argparse.Namespace) -> int:
    text = "".join(args.hex).replace(":", "").replace(" ", "")
    try:
        wire = bytes.fromhex(text)
    except ValueError:
        print("myna decode: the message is not hex (your input)", file=sys.stderr)
        return 2
    add_path = frozenset(Family) if args.add_path else frozenset()
    neg = Negotiated(
        asn4=not args.two_octet_as,
        add_path_receive=add_path,
        extended_message=len(wire) > 4096,
    )
    try:
        print(decode_wire(wire, neg))
    except MessageError as exc:
        print(
            f"the peer's message is malformed: {error_name(exc.code, exc.subcode)}: {exc.reason}"
            f" (NOTIFICATION data {exc.data.hex() or 'empty'})"
        )
        return 1
    except CodecError as exc:
        print(f"cannot decode: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="myna", description="Myna, a BGP daemon for Calico.")
    parser.add_argument("--version", action="version", version=f"myna {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    decode = sub.add_parser("decode", help="decode one BGP message given in hex")
    decode.add_argument("hex", nargs="+", help="the whole message, marker included")
    decode.add_argument("--two-octet-as", action="store_true", help="session without RFC 6793")
    decode.add_argument("--add-path", action="store_true", help="NLRI carry path identifiers")
    for name, text in (("run", "run the daemon"), ("check", "validate a config file")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "-c", "--config", type=Path, required=True, help="the YAML (or, for check, BIRD) file"
        )
    check = sub.choices["check"]
    family = check.add_mutually_exclusive_group()
    family.add_argument(
        "-4",
        dest="bird_ipv6",
        action="store_false",
        default=None,
        help="a BIRD file in bird's (IPv4) language",
    )
    family.add_argument(
        "-6",
        dest="bird_ipv6",
        action="store_true",
        help="a BIRD file in bird6's language (default: by its name)",
    )
    for name in ("bird", "bird6"):
        cmd = sub.add_parser(
            name, help=f"BIRD 1.6's {name} command line (-p -c FILE to check)", add_help=False
        )
        cmd.add_argument("bird_args", nargs=argparse.REMAINDER)
    add_commands(sub)
    add_lab_arguments(
        sub.add_parser("lab", help="build a Calico-like cluster in namespaces, show Myna converge")
    )
    return parser


def redacted(config: DaemonConfig) -> dict[str, object]:
    """The effective config as data, passwords replaced (they never reach a terminal)."""
    data = config.model_dump(mode="json", by_alias=True)
    peers = data.get("peers", [])
    mesh = data.get("mesh") or {}
    bfd_blocks = [block["bfd"] for block in [*peers, mesh] if block.get("bfd")]
    bfd_blocks += [rule for bfd in bfd_blocks for rule in bfd.get("interfaces") or ()]
    for section in [*peers, mesh, *bfd_blocks]:
        if section.get("password") is not None:
            section["password"] = "<hidden>"
    return data


def _load(path: Path) -> DaemonConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"myna: invalid config (nothing started):\n{exc}", file=sys.stderr)
        return None


def _check_bird(path: Path, ipv6: bool | None) -> int:
    from bgpd.bird_config.cli import check_bird  # noqa: PLC0415 - see _bird_main
    from bgpd.bird_config.errors import BirdConfigError  # noqa: PLC0415

    try:
        config, facts = check_bird(path, ipv6)
    except BirdConfigError as exc:
        print(f"myna: invalid config (nothing started):\n{exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(redacted(config), sort_keys=False))
    print("# Calico inputs recognised in the file (shown only: Myna's behaviour comes from the")
    print("# compiled filters above, not from these)")
    print(yaml.safe_dump({"calico": facts}, sort_keys=False))
    return 0


def _bird_main(words: list[str], ipv6: bool | None, prog: str) -> int:
    # BIRD's reader and filter compiler are loaded only for BIRD's files: a daemon run from
    # YAML keeps their memory (~1.3 MiB of RSS) to itself.
    from bgpd.bird_config.cli import bird_main  # noqa: PLC0415

    return bird_main(words, ipv6=ipv6, prog=prog)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Started as ``bird`` or ``bird6`` (a symlink to ``myna``, argv[0]), Myna takes BIRD's
    command line.
    """
    if argv is None:
        program = bird_program_for(sys.argv[0])
        if program is not None:
            return _bird_main(sys.argv[1:], ipv6=program == "bird6", prog=program)
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in ("bird", "bird6"):
        # BIRD's options are not myna's: argparse would take "-p" for one of its own. `myna
        # bird` reads a bird6* file as bird6 would (as `myna check` does); under the name
        # `bird` (argv[0]) the family is the program's, as BIRD's.
        return _bird_main(
            words[1:], ipv6=True if words[0] == "bird6" else None, prog=f"myna {words[0]}"
        )
    args = build_parser().parse_args(argv)
    if args.command == "check" and is_bird_config(args.config):
        return _check_bird(args.config, args.bird_ipv6)
    if args.command == "version":
        print(f"myna {_version()}")
        return 0
    if args.command == "lab":
        # not at the top: ``myna bird`` starts (two daemons per Calico node) need none of it
        from bgpd.lab_bird import run_lab_command  # noqa: PLC0415

        return run_lab_command(args)
    if args.command in ("show", "reload"):
        return run_command(args)
    if args.command in ("run", "check"):
        config = _load(args.config)
        if config is None:
            return 2
        if args.command == "check":
            print(yaml.safe_dump(redacted(config), sort_keys=False))
            return 0
        try:
            return run(config, args.config)
        except (OSError, ConfigError) as exc:
            print(f"myna: {exc}", file=sys.stderr)
            return 1
    return _decode(args)


if __name__ == "__main__":
    raise SystemExit(main())
