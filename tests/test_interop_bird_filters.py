"""BIRD 1.6 and Myna's compiled filters agree on Calico's filters, route by route.

What runs: for each corpus file (one per distinct set of filters: files that differ only in
their peers share one run), BIRD 1.6.8 itself, in a network namespace, with the file as
confd writes it, after Calico's addresses are moved into the test ranges
(``bird_filter_bench.AddressMap``). Its table gets routes of every kind Calico's filters tell
apart, around every prefix the filters name:

* learned from the kernel (BIRD's ``learn``): Felix's blackholes and cluster routes (protocol
  80), workload routes on ``cali*``, routes on ``bpf0.cali``, ``vxlan.calico``, ``tunl0``,
  ``eth1``, an unreachable route, each with its kernel protocol number and metric;
* from BGP: an iBGP peer (ExaBGP, a route-reflector client) and an eBGP one, with different
  LOCAL_PREFs (one high enough for Calico's preference bump), MEDs, AS paths, communities,
  NO_EXPORT, large communities, ORIGINATOR_ID and CLUSTER_LIST, next hops other than the
  peer's;
* static: blackhole, via a gateway, via an interface, unreachable, prohibit; and the direct
  protocol's device routes, and the file's own static blackholes.

Then every named filter, every function (each way its ``bool`` arguments can go, followed
by ``accept`` and by ``reject``) and every peer's inline import and export filter runs in
BIRD (``birdc show route all filter NAME``) and in Myna (the closure ``compile_filter``
makes of the same text) on every route of that table: both must accept the same routes and
leave the same attributes, krt_metric and preference on them. For IPv4 files, the two test
sessions' exports (``show route all export``: BIRD's BGP export view, then the file's
Calico export filter) are compared with Myna's filters compiled with a
``BgpExportContext``. Myna's routes are built from BIRD's own view of each route (its
``show route all``), so both evaluate the same facts.

The file that sets ``krt_tunnel`` is left out: only Calico's fork of BIRD has it.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bird_filter_bench import (
    BGP_ATTRIBUTES,
    INTERFACES,
    AddressMap,
    BenchRoute,
    BgpSession,
    Kind,
    ShownRoute,
    bench_routes,
    bird_display,
    display,
    literals,
    myna_route,
    parse_routes,
)
from testbed import Host, Neighbor, Topology
from testbed.bird import BIRD16_SBIN, _BirdBase, _BirdProcess
from testbed.exabgp_peer import ExaBgpPeer
from testbed.requirements import require_interop
from testbed.topology import wait_for

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.bgp_export import BgpExportContext
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.filter_codegen import FilterMode
from bgpd.bird_config.filter_compiler import compile_filter
from bgpd.bird_config.values import BirdType
from rib.policy import Action, PolicyCheck
from rib.route import Route
from speaker.nlri import prefix_from_text
from speaker.wire_codes import Family

pytestmark = pytest.mark.interop

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "calico-confd-corpus"
FORK_ONLY = ("cluster_routes/enabled/bird.cfg",)  # sets krt_tunnel
TEST_AS, EBGP_AS = 64512, 65000
SETTLE_TIMEOUT = 40.0
_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"\s*;', re.MULTILINE)


# --- which files: one per distinct set of filters ----------------------------------------------


def _signature(path: Path) -> str:
    """The file's filters, functions and inline peer filters, without places: what it runs."""
    config = read_bird_config(str(path), ipv6=path.name.startswith("bird6"))

    def plain(value: object) -> str:
        return re.sub(r"position=Position\([^)]*\)", "", repr(value))

    parts = [
        f"fn {n} {plain(f.params)} {plain(f.body)}" for n, f in sorted(config.functions.items())
    ]
    parts += [f"filter {n} {plain(f.body)}" for n, f in sorted(config.filters.items())]
    inline = {
        plain(program.filter.body)
        for protocol in config.protocols
        for program in (protocol.import_filter, protocol.export_filter)
        if program.filter is not None and program.filter.name.startswith("(")
    }
    return "\n".join([*parts, *sorted(inline)])


def _representatives() -> list[str]:
    if not CORPUS.is_dir():
        return ["<corpus missing>"]
    chosen: dict[str, str] = {}
    for path in sorted([*CORPUS.rglob("bird.cfg"), *CORPUS.rglob("bird6.cfg")]):
        relative = str(path.relative_to(CORPUS))
        if relative in FORK_ONLY:
            continue
        import os  # noqa: PLC0415 - includes resolve from the file's folder

        old = Path.cwd()
        os.chdir(path.parent)
        try:
            chosen.setdefault(_signature(Path(path.name)), relative)
        finally:
            os.chdir(old)
    return sorted(chosen.values())


FILES = _representatives()


# --- the test bed -------------------------------------------------------------------------------


class DutBird(_BirdBase):
    """BIRD 1.6 (bird or bird6) running one given configuration file."""

    kind = "bird16-dut"

    def __init__(self, host: Host, ipv6: bool, config_text: str, workdir_name: str) -> None:
        feeder = "2001:db8::2" if ipv6 else "198.18.0.2"
        super().__init__(
            host, "198.18.0.1", TEST_AS, [Neighbor(feeder, TEST_AS)], name=workdir_name
        )
        self.ipv6 = ipv6
        self.config_text = config_text

    def _bird_processes(self) -> list[_BirdProcess]:
        if self.ipv6:
            return [_BirdProcess(BIRD16_SBIN / "bird6", BIRD16_SBIN / "birdc6", "bird6", True)]
        return [_BirdProcess(BIRD16_SBIN / "bird", BIRD16_SBIN / "birdc", "bird", False)]

    def _render(self, process: _BirdProcess) -> str:
        return self.config_text

    def write_files(self, files: dict[str, str]) -> None:
        """The configuration's other files, beside the main one."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (self.workdir / name).write_text(text)

    def show(self, *words: str) -> list[ShownRoute]:
        """``show route all`` + ``words``, parsed."""
        return parse_routes(self.birdc("show", "route", "all", *words, ipv6=self.ipv6))

    def bgp_state(self, protocol: str) -> str:
        output = self.birdc("show", "protocols", "all", protocol, ipv6=self.ipv6)
        match = re.search(r"BGP state:\s+(\w+)", output)
        return match.group(1) if match else "?"


@dataclass
class Bench:
    """The namespaces and the two ExaBGP feeders, kept for the whole module."""

    topology: Topology
    dut: Host
    feeder_i: ExaBgpPeer
    feeder_e: ExaBgpPeer
    tunl0_is_ipip: bool = False  # the ipip module's tunl0 exists in every namespace
    announced: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    runs: Iterator[int] = field(default_factory=lambda: itertools.count(1))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    require_interop()
    with Topology(tmp_path_factory.mktemp("birdfilters")) as topology:
        dut = topology.add_host("dut")
        feeder_i_host = topology.add_host("feedi")
        feeder_e_host = topology.add_host("feede")
        tunl0_is_ipip = False
        for index, name in enumerate(INTERFACES):
            if (
                name == "tunl0"
                and dut.run("ip", "link", "show", "tunl0", check=False).returncode == 0
            ):
                dut.ip("link", "set", "tunl0", "up")  # the ipip module's own device
                tunl0_is_ipip = True
                continue
            dut.ip("link", "add", name, "type", "veth", "peer", "name", f"peer{index}")
            dut.ip("link", "set", name, "up")
            dut.ip("link", "set", f"peer{index}", "up")
        # device routes (BIRD's direct protocol) on some of them; BIRD takes an interface
        # without an address for down, so the static route through cali1a2b3c4d needs one
        for index, name in enumerate(("bpf0.cali", "eth1", "someiface", "cali1a2b3c4d"), start=1):
            dut.ip("addr", "add", f"198.18.{index}.1/24", "dev", name)
            dut.ip("-6", "addr", "add", f"2001:db8:1:{index}::1/64", "dev", name, "nodad")
        dut_neighbors = [
            Neighbor(dut.ipv4, TEST_AS, passive=True),
            Neighbor(dut.ipv6, TEST_AS, passive=True),
        ]
        feeder_i = ExaBgpPeer(feeder_i_host, feeder_i_host.ipv4, TEST_AS, dut_neighbors).start()
        feeder_e = ExaBgpPeer(feeder_e_host, feeder_e_host.ipv4, EBGP_AS, dut_neighbors).start()
        yield Bench(topology, dut, feeder_i, feeder_e, tunl0_is_ipip)


# --- one corpus file ----------------------------------------------------------------------------


def _files_of(main: Path) -> dict[str, str]:
    """The main file and what it includes, by name (a missing include reads as empty)."""
    files = {main.name: main.read_text()}
    for name in _INCLUDE.findall(files[main.name]):
        path = main.parent / name
        files[name] = path.read_text() if path.exists() else ""
    return files


def _observes_lengths(text: str) -> bool:
    """Whether a filter could see prefix lengths, which the address map does not keep."""
    return bool(
        re.search(r"\.len\b", text)
        or re.search(r"/\d+\s*[+-]", text)
        or re.search(r"/\d+\s*\{", text)
        or re.search(r"\.mask\s*\(", text)
    )


@dataclass
class Probe:
    """One filter to run in both: its name in the configuration, and its text if added."""

    name: str
    text: str | None = None


def _probes(config: m.BirdConfig) -> list[Probe]:
    probes = [Probe(name) for name in sorted(config.filters)]
    counter = itertools.count(1)
    for name, function in sorted(config.functions.items()):
        if any(p.declared is not BirdType.BOOL for p in function.params):
            pytest.fail(f"function {name} takes a non-bool argument: add it to the probes")
        symbol = name if re.fullmatch(r"[A-Za-z_]\w*", name) else f"'{name}'"
        for values in itertools.product(("true", "false"), repeat=len(function.params)):
            call = f"{symbol}({', '.join(values)})"
            probes.extend(
                Probe(f"probe_{next(counter)}", f"{{ {call}; {ending}; }}")
                for ending in ("accept", "reject")
            )
    seen: set[str] = set()
    for protocol in config.protocols:
        for program in (protocol.import_filter, protocol.export_filter):
            definition = program.filter
            if definition is None or not definition.name.startswith("(inline"):
                continue
            if definition.source_text and definition.source_text not in seen:
                seen.add(definition.source_text)
                probes.append(Probe(f"probe_{next(counter)}", definition.source_text))
    return probes


def _session_export(config: m.BirdConfig) -> str:
    """The export filter the two test sessions use: the file's first peer's, as written."""
    for protocol in config.protocols:
        if isinstance(protocol, m.BgpProtocol):
            definition = protocol.export_filter.filter
            if definition is not None and definition.source_text:
                return f"filter {definition.source_text}"
            if protocol.export_filter.kind is not ast.FilterKind.FILTER:
                return protocol.export_filter.kind.value
            if definition is not None:
                return f"filter {definition.name}"
    if "calico_export_to_bgp_peers" in config.functions:
        return "filter { calico_export_to_bgp_peers(true); reject; }"
    return "all"


def _route_commands(
    routes: list[BenchRoute], mapping: AddressMap, ipv6: bool, tunl0: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(ip -batch lines, static route lines, iBGP announces, eBGP announces) for ``routes``.

    ``tunl0``: the device the tunl0 kind uses (the ipip module's own tunl0 carries no IPv6).
    """
    kernel: list[str] = []
    static: list[str] = []
    ibgp: list[str] = []
    ebgp: list[str] = []
    gateway = "2001:db8::2" if ipv6 else "198.18.0.2"
    other = "2001:db8::9" if ipv6 else "198.18.0.9"
    for route in routes:
        prefix = mapping.item_text(route.item, with_length=True)
        kernel_lines = {
            "kernel-blackhole-80": f"route add blackhole {prefix} proto 80",
            "kernel-dev-cali": f"route add {prefix} dev cali1a2b3c4d proto 3",
            "kernel-via-80": f"route add {prefix} via {gateway} proto 80 metric 512",
            "kernel-dev-bpf": f"route add {prefix} dev bpf0.cali proto 3",
            "kernel-dev-vxlan": f"route add {prefix} dev vxlan.calico proto 80",
            "kernel-dev-tunl0": f"route add {prefix} dev {tunl0} proto 80",
            "kernel-unreachable-4": f"route add unreachable {prefix} proto 4 metric 100",
            "kernel-dev-eth1": f"route add {prefix} dev eth1 proto 4",
            "kernel-dev-someiface": f"route add {prefix} dev someiface proto 17",
        }
        static_lines = {
            "static-blackhole": f"route {prefix} blackhole;",
            "static-via": f"route {prefix} via {gateway};",
            "static-dev": f'route {prefix} via "cali1a2b3c4d";',
            "static-unreachable": f"route {prefix} unreachable;",
            "static-prohibit": f"route {prefix} prohibit;",
        }
        if route.kind in kernel_lines:
            kernel.append(kernel_lines[route.kind])
        elif route.kind in static_lines:
            static.append(static_lines[route.kind])
        else:
            next_hop = other if route.kind == "ibgp-communities" else "self"
            line = f"announce route {prefix} next-hop {next_hop} {BGP_ATTRIBUTES[route.kind]}"
            (ibgp if route.kind.startswith("ibgp") else ebgp).append(line)
    return kernel, static, ibgp, ebgp


def _announce(bench: Bench, feeder: ExaBgpPeer, dut_address: str, lines: list[str]) -> None:
    """Make ``feeder`` send ``lines``' routes to the dut and withdraw what it sent before."""
    key = (feeder.name + feeder.host.name, dut_address)
    previous = bench.announced.get(key, set())
    for line in sorted(previous):
        prefix = line.split()[2]
        feeder.command(f"neighbor {dut_address} withdraw route {prefix}")
    for line in lines:
        feeder.command(f"neighbor {dut_address} {line}")
    bench.announced[key] = set(lines)


@dataclass
class Mismatch:
    probe: str
    route: tuple[str, str]
    bird: object
    myna: object


def _compare(
    probe: str,
    base: list[ShownRoute],
    routes: dict[tuple[str, str], Route],
    bird: list[ShownRoute],
    check: PolicyCheck,
    ipv6: bool,
    *,
    bgp_view: bool = False,
    tally: dict[str, int] | None = None,
) -> list[Mismatch]:
    family = Family.IPV6_UNICAST if ipv6 else Family.IPV4_UNICAST
    bird_results = {r.key: bird_display(r) for r in bird}
    myna_results = {}
    for shown in base:
        route = routes[shown.key]
        verdict = check(prefix_from_text(shown.prefix), family, route)
        if verdict.action is Action.ACCEPT:
            myna_results[shown.key] = display(route, shown, verdict, ipv6, bgp_view=bgp_view)
    if tally is not None:
        tally["accepted"] += len(bird_results)
        tally["rejected"] += len(base) - len(bird_results)
        tally["edited"] += sum(
            1 for r in bird if r.key in routes and bird_display(r) != _unchanged(r, base)
        )
    return [
        Mismatch(probe, key, bird_results.get(key, "rejected"), myna_results.get(key, "rejected"))
        for key in sorted(set(bird_results) | set(myna_results))
        if bird_results.get(key) != myna_results.get(key)
    ]


@pytest.mark.parametrize("relative", FILES)
def test_calico_filters_match_bird(bench: Bench, relative: str) -> None:
    if not CORPUS.is_dir():
        pytest.fail(f"the Calico corpus is missing: {CORPUS}")
    main = CORPUS / relative
    ipv6 = main.name.startswith("bird6")
    bits = 128 if ipv6 else 32
    files = _files_of(main)
    everything = "\n".join(files.values())
    v4_items, v6_items = literals(everything)
    own_items = v6_items if ipv6 else v4_items
    routes = bench_routes(own_items, bits)
    v4_map = AddressMap(v4_items | ({r.item for r in routes} if not ipv6 else set()), ipv6=False)
    v6_map = AddressMap(v6_items | ({r.item for r in routes} if ipv6 else set()), ipv6=True)
    mapping = v6_map if ipv6 else v4_map
    mapped = {name: v6_map.rewrite(v4_map.rewrite(text)) for name, text in files.items()}
    if any(_observes_lengths(text) for text in mapped.values()):
        pytest.fail(f"{relative}: a filter observes prefix lengths, which the address map moves")

    run = next(bench.runs)
    workdir = bench.topology.workdir / f"run{run}"
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in mapped.items():
        (workdir / name).write_text(text)
    corpus_config = read_bird_config(str(workdir / main.name), ipv6=ipv6)
    probes = _probes(corpus_config)
    tunl0 = "vxlan.calico" if ipv6 and bench.tunl0_is_ipip else "tunl0"
    kernel_lines, static_lines, ibgp_lines, ebgp_lines = _route_commands(
        routes, mapping, ipv6, tunl0
    )
    dut = bench.dut
    local = dut.ipv6 if ipv6 else dut.ipv4
    feeder_i = "2001:db8::2" if ipv6 else bench.feeder_i.host.ipv4
    feeder_e = "2001:db8::3" if ipv6 else bench.feeder_e.host.ipv4
    session_export = _session_export(corpus_config)
    timers = (
        "hold time 9; keepalive time 3; connect delay time 1; connect retry time 1; "
        "error wait time 1, 2;"
    )
    test_text = "\n".join(
        [
            f'include "{main.name}";',
            *(f"filter {p.name} {p.text}" for p in probes if p.text is not None),
            "protocol static test_static {",
            *(f"  {line}" for line in static_lines),
            "}",
            "protocol bgp test_ibgp {",
            f"  local {local} as {TEST_AS}; neighbor {feeder_i} as {TEST_AS}; direct; rr client;",
            f"  {timers} import all; export {session_export};",
            "}",
            "protocol bgp test_ebgp {",
            f"  local {local} as {TEST_AS}; neighbor {feeder_e} as {EBGP_AS};",
            f"  {timers} import all; export {session_export};",
            "}",
            "",
        ]
    )
    (workdir / "dut.conf").write_text(test_text)
    dut_config = read_bird_config(str(workdir / "dut.conf"), ipv6=ipv6)

    # the kernel's routes and the node's own address, before BIRD's first scan
    for proto in ("80", "3", "4", "17", "12"):
        dut.run("ip", "-6" if ipv6 else "-4", "route", "flush", "proto", proto, check=False)
    dut.run("ip", "addr", "flush", "dev", "lo", "scope", "global", check=False)
    node = corpus_config.router_id
    if node is not None:
        dut.ip("addr", "add", f"{ipaddress.IPv4Address(node)}/32", "dev", "lo")
    if corpus_config.listen_address is not None and ipv6:
        dut.ip(
            "-6",
            "addr",
            "add",
            f"{ipaddress.IPv6Address(corpus_config.listen_address)}/128",
            "dev",
            "lo",
            "nodad",
        )
    elif corpus_config.listen_address is not None and corpus_config.listen_address != node:
        dut.ip(
            "addr", "add", f"{ipaddress.IPv4Address(corpus_config.listen_address)}/32", "dev", "lo"
        )
    if kernel_lines:
        dut.run("ip", "-6" if ipv6 else "-4", "-batch", "-", stdin="\n".join(kernel_lines) + "\n")
    _announce(bench, bench.feeder_i, local, ibgp_lines)
    _announce(bench, bench.feeder_e, local, ebgp_lines)

    bird = DutBird(dut, ipv6, test_text, f"bird-run{run}")
    bird.write_files(mapped)
    bird.start()
    try:
        for protocol in ("test_ibgp", "test_ebgp"):
            wait_for(
                lambda p=protocol: bird.bgp_state(p),  # type: ignore[misc]
                SETTLE_TIMEOUT,
                f"{protocol} Established in BIRD ({relative})",
                until=lambda state: state == "Established",
            )
        expected = {
            (mapping.item_text(r.item, with_length=True), _protocol_of(r.kind)) for r in routes
        }
        wait_for(
            lambda: sorted(expected - {_normal(r.key) for r in bird.show()}),
            SETTLE_TIMEOUT,
            f"every test route in BIRD's table ({relative}; the value: those missing)",
            until=lambda missing: not missing,
        )
        base = bird.show()
        sessions = {
            "test_ibgp": BgpSession(feeder_i, TEST_AS, bench.feeder_i.router_id, True, True),
            "test_ebgp": BgpSession(feeder_e, EBGP_AS, bench.feeder_e.router_id, False),
        }
        myna_routes = {r.key: myna_route(r, sessions, ipv6) for r in base}
        mismatches: list[Mismatch] = []
        tally = {"accepted": 0, "rejected": 0, "edited": 0}
        for probe in probes:
            definition = dut_config.filters[probe.name]
            program = ast.FilterProgram(ast.FilterKind.FILTER, definition, ipv6)
            check = compile_filter(
                program, name=probe.name, mode=FilterMode.EXPORT, log=lambda _l: None
            ).check
            shown = bird.show("filter", probe.name)
            mismatches += _compare(probe.name, base, myna_routes, shown, check, ipv6, tally=tally)
        if not ipv6:
            mismatches += _export_views(
                bird, dut_config, base, myna_routes, sessions, node or 0, tally
            )
    finally:
        bird.stop()
    assert mismatches == [], _report(relative, mismatches, dut_config)
    # the comparison saw both outcomes and filters that change routes
    assert len(probes) > 0
    assert tally["accepted"] > 0 and tally["rejected"] > 0, tally
    assert tally["edited"] > 0, tally


def _unchanged(route: ShownRoute, base: list[ShownRoute]) -> tuple[int, dict[str, str]]:
    original = next(r for r in base if r.key == route.key)
    return bird_display(original)


def _normal(key: tuple[str, str]) -> tuple[str, str]:
    return str(ipaddress.ip_network(key[0])), key[1]


def _protocol_of(kind: str) -> str:
    if kind in Kind.KERNEL_KINDS:
        return "kernel1"
    if kind in Kind.STATIC_KINDS:
        return "test_static"
    return "test_ibgp" if kind.startswith("ibgp") else "test_ebgp"


def _export_views(
    bird: DutBird,
    config: m.BirdConfig,
    base: list[ShownRoute],
    routes: dict[tuple[str, str], Route],
    sessions: dict[str, BgpSession],
    router_id: int,
    tally: dict[str, int],
) -> list[Mismatch]:
    """BIRD's ``show route export`` of the two test sessions against Myna's export view."""
    mismatches = []
    best = [r for r in base if r.best]
    for name in ("test_ibgp", "test_ebgp"):
        protocol = next(p for p in config.protocols if p.name == name)
        assert isinstance(protocol, m.BgpProtocol)
        session = sessions[name]
        context = BgpExportContext(
            internal=session.internal,
            local_as=TEST_AS,
            source_address=ipaddress.IPv4Address("198.18.0.1").packed,
            peer_address=int(ipaddress.IPv4Address(session.address)),
            interface="eth0",
            rr_client=protocol.rr_client,
            router_id=router_id,
        )
        check = compile_filter(
            protocol.export_filter,
            name=name,
            mode=FilterMode.EXPORT,
            log=lambda _l: None,
            bgp_export=context,
        ).check
        exported = bird.show("export", name)
        mismatches += _compare(
            f"export {name}", best, routes, exported, check, False, bgp_view=True, tally=tally
        )
    return mismatches


def _report(relative: str, mismatches: list[Mismatch], config: m.BirdConfig) -> str:
    lines = [f"{relative}: {len(mismatches)} differences between BIRD 1.6 and Myna"]
    lines.extend(
        f"  {m.probe} {m.route}:\n    bird: {m.bird}\n    myna: {m.myna}" for m in mismatches[:25]
    )
    probes = {m.probe for m in mismatches}
    for name in sorted(probes)[:5]:
        definition = config.filters.get(name)
        if definition is not None:
            lines.append(f"  {name} = {definition.source_text}")
    return "\n".join(lines)
