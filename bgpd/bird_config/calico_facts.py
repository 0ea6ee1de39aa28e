"""What a BIRD file rendered by Calico's confd reveals of Calico's objects (informational).

Role: ``myna check`` shows, beside the effective configuration, the Calico inputs it can
recognise in the file's filters and protocols: IP pools (from ``calico_export_to_bgp_peers``
and ``calico_kernel_programming``), the node's blocks (``calico_aggr``), prefix
advertisements (``apply_communities``), BGPFilter names (functions named
``bgp_<name>_importFilterV4``...), the peers by kind. Nothing uses this to decide anything:
Myna's behaviour comes from the compiled filters. A file not written by confd gives empty
lists.

Data flow: ``calico_facts(BirdConfig) -> dict`` of plain values, printed as YAML.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.values import BirdType, as_int

_BGP_FILTER = re.compile(r"^bgp_(.+)_(import|export)Filter(V4|V6)$")
_KINDS = (("Mesh_", "mesh"), ("Node_", "node"), ("Global_", "global"), ("Local_Workload_", "local"))


def _text(prefix: int, ipv6: bool) -> str:
    address = ipaddress.IPv6Address(prefix >> 8) if ipv6 else ipaddress.IPv4Address(prefix >> 8)
    return f"{address}/{prefix & 0xFF}"


def _net_test(condition: ast.Expr, op: ast.BinaryOp) -> int | None:
    """The prefix P of ``net ~ P`` / ``net = P`` (``op``), None for anything else."""
    if (
        isinstance(condition, ast.Binary)
        and condition.op is op
        and isinstance(condition.left, ast.StaticRead)
        and condition.left.attr is ast.StaticAttr.NET
        and isinstance(condition.right, ast.Constant)
        and condition.right.bird_type == BirdType.PREFIX
    ):
        return as_int(condition.right.value)
    return None


def _decision(commands: tuple[ast.Command, ...]) -> str | None:
    """Accept / reject / tunnel / cross-subnet: what a pool's block of the kernel filter does."""
    kinds = {c.kind for c in commands if isinstance(c, ast.Terminate)}
    tunnels = [c for c in commands if isinstance(c, ast.SetDynamic) and c.attr.name == "krt_tunnel"]
    if any(isinstance(c, ast.If) for c in commands):
        return "ipip-cross-subnet"
    if tunnels:
        return "ipip"
    if ast.Termination.REJECT in kinds:
        return "reject"
    if ast.Termination.ACCEPT in kinds:
        return "accept"
    return None


def _pool_rules(body: tuple[ast.Command, ...], ipv6: bool) -> list[dict[str, str]]:
    rules = []
    for command in body:
        if isinstance(command, ast.If):
            prefix = _net_test(command.condition, ast.BinaryOp.MATCH)
            decision = _decision(command.then)
            if prefix is not None and decision is not None:
                rules.append({"cidr": _text(prefix, ipv6), "action": decision})
    return rules


def _communities(function: ast.FunctionDef | None, ipv6: bool) -> list[dict[str, Any]]:
    found = []
    for command in function.body if function is not None else ():
        if not isinstance(command, ast.If):
            continue
        prefix = _net_test(command.condition, ast.BinaryOp.MATCH)
        if prefix is None:
            continue
        values: list[str] = []
        for inner in command.then:
            if isinstance(inner, ast.SetDynamic) and isinstance(inner.value, ast.ListOp):
                added = inner.value.value
                if isinstance(added, ast.Constant) and added.bird_type == BirdType.PAIR:
                    pair = as_int(added.value)
                    values.append(f"{pair >> 16}:{pair & 0xFFFF}")
                elif isinstance(added, ast.Constant) and added.bird_type == BirdType.LC:
                    values.append(":".join(str(v) for v in added.value))  # type: ignore[attr-defined]
        if values:
            found.append({"cidr": _text(prefix, ipv6), "communities": values})
    return found


def calico_facts(config: m.BirdConfig) -> dict[str, Any]:
    """The Calico inputs recognisable in ``config`` (see the module docstring)."""
    ipv6 = config.ipv6
    export = config.functions.get("calico_export_to_bgp_peers")
    exported: list[str] = []
    export_disabled: list[str] = []
    for command in export.body if export is not None else ():
        if isinstance(command, ast.If):
            prefix = _net_test(command.condition, ast.BinaryOp.MATCH)
            decision = _decision(command.then)
            if prefix is not None and decision == "accept":
                exported.append(_text(prefix, ipv6))
            elif prefix is not None and decision == "reject":
                export_disabled.append(_text(prefix, ipv6))
    kernel = config.filters.get("calico_kernel_programming")
    aggregation = config.functions.get("calico_aggr")
    blocks = []
    for command in aggregation.body if aggregation is not None else ():
        if isinstance(command, ast.If):
            prefix = _net_test(command.condition, ast.BinaryOp.EQUAL)
            if prefix is not None and _decision(command.then) == "accept":
                blocks.append(_text(prefix, ipv6))
    filters = sorted(
        {match.group(1) for name in config.functions if (match := _BGP_FILTER.match(name))}
    )
    peers = []
    for protocol in config.protocols:
        if isinstance(protocol, m.BgpProtocol):
            kind = next((k for p, k in _KINDS if protocol.name.startswith(p)), "other")
            peers.append({"name": protocol.name, "kind": kind})
    return {
        "pools_exported": exported,
        "pools_export_disabled": export_disabled,
        "kernel_programming": _pool_rules(kernel.body, ipv6) if kernel is not None else [],
        "blocks": blocks,
        "prefix_advertisements": _communities(config.functions.get("apply_communities"), ipv6),
        "bgp_filters": filters,
        "peers": peers,
    }
