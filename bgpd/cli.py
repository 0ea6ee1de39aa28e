"""The ``myna`` command line: one entry point, one subcommand per job.

Data flow: argv -> argparse -> the subcommand's function, which prints to stdout and returns
the exit status. ``run -c FILE`` starts the daemon (``bgpd.daemon``), ``check -c FILE``
validates a config and prints it (passwords hidden), ``show`` and ``reload`` talk to a running
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

from bgpd.cli_show import add_commands, run_command
from bgpd.config import ConfigError, DaemonConfig, load_config
from bgpd.daemon import run
from bgpd.lab import add_arguments as add_lab_arguments
from bgpd.lab import run_lab
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
        cmd.add_argument("-c", "--config", type=Path, required=True, help="the YAML config file")
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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"myna {_version()}")
        return 0
    if args.command == "lab":
        return run_lab(args)
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
