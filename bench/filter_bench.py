"""Calico's filters compiled from BIRD text against the hand-written ``rib.calico_policy``.

Run it:  .venv/bin/python -m bench.filter_bench [--count N] [--repeat R] [--json] [--save DIR]

Rows (nanoseconds per route, best of ``--repeat`` passes, one core):
  kernel   ``calico_kernel_programming`` on BGP routes (what the kernel protocol's export runs)
  export   the iBGP export of a mesh peer (``calico_export_to_bgp_peers(true); reject;``) on
           the node's routes: Felix's /32s on cali* devices inside its blocks, the blocks'
           static blackholes, other nodes' blocks learned over BGP, service and outside routes

Each row runs ``--count`` distinct prefixes once per pass (a prefix is decided once per
update in the RIB, so a per-prefix memo does not help the hand-written side: its first
classification of a prefix is what is timed), plus the same prefix again and again (the
per-call floor). The BIRD side is the text confd renders for the same Calico inputs
(``INPUTS``), read and compiled by ``bgpd.bird_config``; both sides get the same routes, and
the benchmark first checks they agree on every one.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.results_file import machine, save
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.filter_codegen import FilterMode
from bgpd.bird_config.filter_compiler import compile_filter
from rib.calico_policy import (
    CalicoPolicyInputs,
    EncapMode,
    IpPool,
    PrefixAdvertisement,
    compile_export,
    compile_kernel_programming,
)
from rib.policy import Action, PeerContext
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, RouteTable, Source
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

ROUTES = RouteTable()  # this module's own intern table (each RIB core has its own)
V4 = Family.IPV4_UNICAST
NODE_AS = 64512
INPUTS = CalicoPolicyInputs(
    pools=(IpPool("198.18.0.0/16"), IpPool("198.19.0.0/17", vxlan_mode=EncapMode.ALWAYS)),
    own_blocks=("198.18.4.0/26", "198.18.4.64/26", "198.18.9.0/26"),
    prefix_advertisements=(PrefixAdvertisement("198.18.0.0/16", ("64512:100",)),),
    service_cidrs=("198.19.200.0/24",),
)

# What confd renders for INPUTS (bird_aggr.cfg, bird_ipam.cfg, the mesh peer's export filter)
BIRD_TEXT = """
router id 198.18.0.1;
function reject_local_routes () {
  if (defined(ifname)) then { if (ifname ~ "bpf*.cali") then { reject; } }
}
function apply_communities () {
  if ( net ~ 198.18.0.0/16 ) then { bgp_community.add((64512, 100)); }
}
function calico_aggr () {
  if ( net = 198.18.4.0/26 ) then { accept; }
  if ( net ~ 198.18.4.0/26 && krt_metric < 1024 ) then { accept; }
  if ( net ~ 198.18.4.0/26 ) then { reject; }
  if ( net = 198.18.4.64/26 ) then { accept; }
  if ( net ~ 198.18.4.64/26 && krt_metric < 1024 ) then { accept; }
  if ( net ~ 198.18.4.64/26 ) then { reject; }
  if ( net = 198.18.9.0/26 ) then { accept; }
  if ( net ~ 198.18.9.0/26 && krt_metric < 1024 ) then { accept; }
  if ( net ~ 198.18.9.0/26 ) then { reject; }
}
function calico_export_to_bgp_peers(bool internal_peer) {
  if (internal_peer) then {
    if (defined(ifname)) then {
      if ((ifname ~ "*.cali") || (ifname ~ "*.calico")) then { reject; }
    }
  }
  reject_local_routes();
  apply_communities();
  calico_aggr();
  if ( net ~ 198.19.200.0/24 ) then { accept; }
  if (net ~ 198.18.0.0/16) then { accept; }
  if (net ~ 198.19.0.0/17) then { accept; }
}
filter calico_kernel_programming {
  if ( net ~ 198.19.200.0/24 ) then { reject; }
  if (net ~ 198.19.0.0/17) then { reject; } # VXLAN routes are handled by Felix.
  if (net ~ 198.18.0.0/16) then { accept; }
  accept;
}
filter mesh_export { calico_export_to_bgp_peers(true); reject; }
protocol device {}
"""


def _prefix(text: str) -> int:
    network = ipaddress.IPv4Network(text)
    return int(network.network_address) << 8 | network.prefixlen


def routes(count: int) -> list[tuple[int, Route, int | None]]:
    """``count`` distinct (prefix, route, kernel priority): the mix the module docstring names."""
    peer = Source("198.18.0.2", origin=Origin.BGP, address=0xC6120002, asn=NODE_AS, protocol="Mesh")
    workload = Source(
        "kernel", origin=Origin.KERNEL, interface="cali0123456789", protocol="kernel1",
        kernel=KernelFacts(LocalKind.KERNEL, Destination.DEVICE, metric=0, protocol=3),
    )  # fmt: skip
    static = Source(
        "static", origin=Origin.STATIC, protocol="static1",
        kernel=KernelFacts(LocalKind.STATIC, Destination.BLACKHOLE),
    )  # fmt: skip
    learned = ROUTES.intern(
        peer, ATTRIBUTES.intern(PathAttributes(next_hop=bytes((198, 18, 0, 2)), local_pref=100))
    )
    local_attrs = ATTRIBUTES.intern(PathAttributes())
    felix = ROUTES.intern(workload, local_attrs)
    blackhole = ROUTES.intern(static, local_attrs)
    found: list[tuple[int, Route, int | None]] = []
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    for index in range(count):
        kind = index % 8
        if kind < 3:  # a workload /32 in one of the node's blocks
            block = ("198.18.4.0", "198.18.4.64", "198.18.9.0")[kind]
            address = int(ipaddress.IPv4Address(block)) + index // 8 % 64
            found.append((address << 8 | 32, felix, 0))
        elif kind == 3:  # a block blackhole (the same three, again and again)
            found.append(
                (
                    _prefix(("198.18.4.0/26", "198.18.4.64/26", "198.18.9.0/26")[index % 3]),
                    blackhole,
                    None,
                )
            )
        elif kind < 7:  # another node's block, learned over BGP (in the pool or the VXLAN pool)
            address = base + (index * 64) % (1 << 17)
            found.append((address << 8 | 26, learned, None))
        else:  # a route outside every pool
            address = int(ipaddress.IPv4Address("203.0.113.0")) + index % 256
            found.append((address << 8 | 32, learned, None))
    return found


Check = Callable[..., Any]


def _time(check: Check, batch: list[tuple[int, Route, int | None]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for prefix, route, priority in batch:
            check(prefix, V4, route, priority)
        best = min(best, (time.perf_counter_ns() - start) / len(batch))
    return best


def _bird_checks() -> tuple[Check, Check]:
    config = read_bird_config("bench.conf", text=BIRD_TEXT)
    kernel = ast.FilterProgram(ast.FilterKind.FILTER, config.filters["calico_kernel_programming"])
    export = ast.FilterProgram(ast.FilterKind.FILTER, config.filters["mesh_export"])
    return (
        compile_filter(kernel, mode=FilterMode.EXPORT).check,
        compile_filter(export, mode=FilterMode.EXPORT).check,
    )


def _agree(
    hand: Check, bird: Check, batch: list[tuple[int, Route, int | None]], kernel: bool
) -> None:
    """Both sides decide every route alike (else the timing compares different work)."""
    for prefix, route, priority in batch:
        verdict = bird(prefix, V4, route, priority)
        if kernel:
            want = hand(prefix, V4, route)
            same = want.accept == (verdict.action is Action.ACCEPT)
        else:
            want = hand(prefix, V4, route, priority)
            same = want.action is verdict.action and want.attrs_for(
                route.attrs
            ) == verdict.attrs_for(route.attrs)
        if not same:
            raise SystemExit(
                f"the two sides disagree on {prefix:#x} {route.source}: {want} / {verdict}"
            )


def measure(count: int, repeat: int) -> list[dict[str, Any]]:
    """The rows: ns per route for each side and filter."""
    batch = routes(count)
    bird_kernel, bird_export = _bird_checks()
    hand_kernel = compile_kernel_programming(INPUTS)
    hand_export = compile_export(INPUTS, PeerContext(ibgp=True, local_as=NODE_AS))

    def hand_kernel_check(prefix: int, family: Family, route: Route, priority: int | None) -> Any:
        return hand_kernel(prefix, family, route)

    bgp_only = [entry for entry in batch if entry[1].source.origin == Origin.BGP]
    _agree(hand_kernel, bird_kernel, bgp_only, kernel=True)
    _agree(hand_export, bird_export, batch, kernel=False)
    rows = []
    for name, hand, bird, work in (
        ("kernel", hand_kernel_check, bird_kernel, bgp_only),
        ("export", hand_export, bird_export, batch),
    ):
        # a fresh hand-written export memo, as for prefixes it has not seen
        hand_ns = _time(hand, work, repeat)
        bird_ns = _time(bird, work, repeat)
        one = work[:1] * len(work)
        rows.append(
            {
                "filter": name,
                "routes": len(work),
                "hand_ns": round(hand_ns),
                "bird_ns": round(bird_ns),
                "ratio": round(bird_ns / hand_ns, 2),
                "hand_same_ns": round(_time(hand, one, repeat)),
                "bird_same_ns": round(_time(bird, one, repeat)),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table."""
    lines = [
        "| filter | routes | hand-written ns/route | compiled BIRD ns/route | ratio "
        "| same prefix: hand | same prefix: BIRD |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['filter']} | {r['routes']} | {r['hand_ns']} | {r['bird_ns']} | {r['ratio']} | "
        f"{r['hand_same_ns']} | {r['bird_same_ns']} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and maybe save) its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", help="directory for the dated results")
    args = parser.parse_args(argv)
    rows = measure(args.count, args.repeat)
    if args.json:
        json.dump({"rows": rows, "machine": machine()}, sys.stdout)
        print()
    else:
        print(table(rows))
    if args.save:
        save(
            "filters",
            "Calico's filters: compiled BIRD text against rib.calico_policy",
            f"python -m bench.filter_bench --count {args.count} --repeat {args.repeat}",
            table(rows),
            {"rows": rows},
            args.save,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
