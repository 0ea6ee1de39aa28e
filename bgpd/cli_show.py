"""``myna show ...`` and ``myna reload``: control-socket requests printed for people or as JSON.

Data flow: the CLI sends one request over the control socket (``control_socket.request``) and
prints the answer: a plain table by default, the answer's data as JSON with ``--json`` (what
scripts and tests read). Errors say whose they are: the daemon's refusal (an invalid config on
reload), or the socket that cannot be reached (is myna running, are you root).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgpd.control_socket import ControlSocketError, request

DEFAULT_SOCKET = Path("/run/myna/myna.ctl")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Columns padded to the widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    return "\n".join(lines)


def _since(stamp: float) -> str:
    seconds = int(time.time() - stamp)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _peers(data: list[dict[str, Any]]) -> str:
    if not data:
        return "no peers configured"
    rows = [
        [
            p["address"],
            str(p["as"]),
            p["kind"] + (" (rr client)" if p.get("route_reflector_client") else ""),
            p["state"],
            _since(p["since"]),
            str(p["received"]),
            str(p["advertised"]),
            p["last_error"] if p["state"] != "Established" else "",
        ]
        for p in data
    ]
    header = ["PEER", "AS", "TYPE", "STATE", "SINCE", "RECEIVED", "ADVERTISED", "LAST ERROR"]
    return table(rows, header)


def _routes(data: list[dict[str, Any]]) -> str:
    if not data:
        return "no routes"
    rows = []
    for r in data:
        mark = "*" if r.get("best", True) else (" =" if r.get("ecmp") else " ")
        hops = ", ".join(r.get("ecmp_next_hops", [])) or r["next_hop"] or "self"
        path = " ".join(map(str, r["as_path"])) or "i"
        rows.append([mark + " " + r["prefix"], hops, r["from"], path, r.get("stale", "")])
    return table(rows, ["PREFIX", "NEXT HOP", "FROM", "AS PATH", "STALE"])


def _bfd(data: list[dict[str, Any]]) -> str:
    if not data:
        return "no peer enables BFD"

    def ms(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        return "" if value is None else f"{value:g}"

    rows = [
        [
            r["peer"],
            r["state"] + (" (BGP held)" if r.get("bgp_held") else ""),
            r.get("mode") or "",
            str(r.get("local_discriminator", "")),
            str(r.get("remote_discriminator", "")),
            ms(r, "tx_interval_ms"),
            ms(r, "rx_interval_ms"),
            ms(r, "detection_time_ms"),
            r.get("last_diagnostic") or "",
            _since(r["since"]),
            r.get("error") or "",
        ]
        for r in data
    ]
    header = ["PEER", "STATE", "MODE", "LOCAL DISCR", "REMOTE DISCR", "TX MS", "RX MS",
              "DETECT MS", "LAST DIAGNOSTIC", "SINCE", "ERROR"]  # fmt: skip
    return table(rows, header)


def _rib(data: dict[str, Any]) -> str:
    lines = ["Loc-RIB: " + ", ".join(f"{f} {n}" for f, n in data["loc_rib"].items())]
    lines.append(f"update groups: {data['update_groups']}")
    rows = [
        [peer, ", ".join(f"{f} {n}" for f, n in counts.items()) or "0"]
        for peer, counts in data["adj_rib_in"].items()
    ]
    if rows:
        lines.append(table(rows, ["ADJ-RIB-IN OF", "ROUTES"]))
    return "\n".join(lines)


def _status(data: dict[str, Any]) -> str:
    lines = [
        f"myna {data['version']}{', node ' + data['node_name'] if data.get('node_name') else ''}"
        f", router id {data['router_id']}, AS {data['local_as']}, "
        f"pid {data['pid']}, up {_since(data['started'])}",
        f"peers: {data['established']} of {data['peers']} established; "
        f"Loc-RIB: {data['loc_rib']} prefixes",
    ]
    if data["graceful_restart_recovery"]:
        lines.append("graceful restart recovery in progress (selection deferred)")
    if data["kernel"]:
        lines.append("kernel: " + ", ".join(f"{k} {v}" for k, v in data["kernel"].items()))
    return "\n".join(lines)


FORMATS: dict[str, Callable[[Any], str]] = {
    "peers": _peers,
    "routes": _routes,
    "rib": _rib,
    "status": _status,
    "bfd": _bfd,
}


def add_commands(sub: Any) -> None:
    """Add ``show`` and ``reload`` to the CLI's subparsers."""
    show = sub.add_parser(
        "show", help="show peers, routes, the RIB, BFD sessions or the daemon's status"
    )
    show.add_argument("what", choices=sorted(FORMATS))
    show.add_argument("prefix", nargs="?", help="routes: every path of this prefix")
    show.add_argument("--json", action="store_true", help="print the answer as JSON")
    reload = sub.add_parser("reload", help="apply the config file again (as SIGHUP does)")
    for cmd in (show, reload):
        cmd.add_argument(
            "-s", "--socket", type=Path, default=DEFAULT_SOCKET, help="the control socket"
        )


def run_command(args: argparse.Namespace) -> int:
    """Run ``show`` or ``reload``; returns the exit status."""
    try:
        if args.command == "reload":
            answer = request(args.socket, "reload", timeout=60)
        else:
            fields = {"prefix": args.prefix} if args.prefix else {}
            answer = request(args.socket, args.what, **fields)
    except ControlSocketError as error:
        print(f"myna: {error}", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"myna: {answer.get('error')}", file=sys.stderr)
        return 1
    data = answer["data"]
    if args.command == "reload":
        print(data["summary"])
    elif args.json:
        print(json.dumps(data, indent=1))
    else:
        print(FORMATS[args.what](data))
    return 0
