"""Every bird.cfg / bird6.cfg Calico renders loads, and means what its Calico inputs say.

What is checked, per corpus file (projectcalico/calico's rendered templates, read from
``../shared/calico-confd-corpus`` beside the repository; its absence fails the test):

* ``myna bird -p -c FILE`` run in the file's folder, as confd's check_cmd does, exits 0
  with nothing on stderr (an include the folder lacks reads as empty: the folder is copied
  and the missing file created empty);
* the ``DaemonConfig`` Myna builds from it holds the router id, AS, listen address, and the
  peers (name, address, port, AS, local AS, passive, source address, password, TTL
  security, multihop, restart time, route-reflector client and cluster id, next-hop mode,
  allowed local AS, and which BGPFilter functions and Calico export function their
  filters call) that ``calico_confd_model`` works out from the scenario's Calico resources;
* what ``myna check`` recognises of Calico's inputs (pools, their kernel-programming
  decision, blocks, static routes, community advertisements, BGPFilters) equals the
  resources' too.

The expectations never come from Myna's reading of the files: ``calico_confd_model``
restates Calico's rendering rules over ``input.yaml`` (or, for the scenarios Calico builds
in code, ``calico_inline_scenarios``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest
from calico_confd_model import ExpectedConfig, Scenario, expected, load_resources, merge
from calico_inline_scenarios import inline_scenario

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.cli import bird_main, check_bird
from bgpd.config import BirdFilterModel, DaemonConfig

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "calico-confd-corpus"
_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"\s*;', re.MULTILINE)


def _corpus() -> Path:
    if not (CORPUS / "README.md").is_file():
        pytest.fail(f"the Calico corpus is missing: {CORPUS} (CI puts it beside the clone)")
    return CORPUS


def _files() -> list[str]:
    if not CORPUS.is_dir():
        return ["<corpus missing>"]
    return sorted(
        str(p.relative_to(CORPUS)) for name in ("bird.cfg", "bird6.cfg") for p in CORPUS.rglob(name)
    )


FILES = _files()


def _scenario(folder: Path) -> Scenario:
    relative = str(folder.relative_to(CORPUS))
    parent_input = folder.parent / "input.yaml"
    parent = load_resources(parent_input) if parent_input.is_file() else None
    own = folder / "input.yaml"
    if own.is_file():
        resources = load_resources(own)
        if parent is not None and folder.name.startswith("step"):
            resources = merge(parent, resources)  # a step applies on top of its parent
        return Scenario(
            resources,
            router_id_hash=relative == "mesh/hash",  # CALICO_ROUTER_ID=hash
            # CALICO_ROUTER_ID=10.10.10.10 (the node has no IPv4 address)
            router_id="10.10.10.10" if relative == "mesh/static-routes-no-ipv4-address" else None,
        )
    scenario = inline_scenario(relative, parent)
    if scenario is None:
        pytest.fail(f"no Calico inputs known for {relative}")
    return scenario


def _ready_folder(path: Path, tmp_path: Path) -> Path:
    """The file's folder, or a copy of it where a missing include exists, empty."""
    missing = [
        name for name in _INCLUDE.findall(path.read_text()) if not (path.parent / name).exists()
    ]
    if not missing:
        return path
    copy = tmp_path / path.parent.name
    shutil.copytree(path.parent, copy)
    for name in missing:
        (copy / name).write_text("")
    return copy / path.name


@contextlib.contextmanager
def _cwd(directory: Path):  # type: ignore[no-untyped-def]
    old = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def _calls(model: BirdFilterModel) -> tuple[str, ...]:
    """The functions a Calico filter calls at its top level, with constant arguments."""
    definition = model.program.filter
    assert definition is not None, f"{model.name} is {model.program.kind.value}, not a filter"
    found = []
    for command in definition.body:
        if isinstance(command, ast.CallCommand):
            args = []
            for arg in command.call.args:
                assert isinstance(arg, ast.Constant)
                args.append(str(arg.value).lower())
            found.append(command.call.name + (f"({', '.join(args)})" if args else ""))
    return tuple(found)


def _peer_view(config: DaemonConfig) -> list[dict[str, object]]:
    return [
        {
            "name": p.name,
            "address": p.address,
            "port": p.port,
            "asn": p.asn,
            "local_as": p.local_as or config.local_as,
            "passive": p.passive,
            "source_address": p.source_address,
            "password": p.password,
            "ttl_security": p.ttl_security,
            "multihop": p.multihop,
            "restart_time": p.restart_time,
            "rr_client": p.route_reflector_client,
            "next_hop": p.next_hop_mode,
            "allow_local_as": p.allow_own_as,
            "import_calls": _calls(p.import_filter) if p.import_filter else None,
            "export_calls": _calls(p.export_filter) if p.export_filter else None,
        }
        for p in config.peers
    ]


def _expected_peer_view(want: ExpectedConfig) -> list[dict[str, object]]:
    return [
        {
            "name": p.name,
            "address": p.address,
            "port": p.port,
            "asn": p.asn,
            "local_as": p.local_as or want.local_as,
            "passive": p.passive,
            "source_address": p.source_address,
            "password": p.password,
            "ttl_security": p.ttl_security,
            "multihop": p.multihop,
            "restart_time": p.restart_time,
            "rr_client": p.rr_client,
            "next_hop": p.next_hop,
            "allow_local_as": p.allow_local_as,
            "import_calls": p.import_calls,
            "export_calls": (
                *p.export_calls,
                f"calico_export_to_bgp_peers({'true' if p.internal else 'false'})",
            ),
        }
        for p in want.peers
    ]


def test_the_corpus_is_there() -> None:
    corpus = _corpus()
    assert len(FILES) >= 100, f"only {len(FILES)} bird.cfg / bird6.cfg files under {corpus}"


@pytest.mark.parametrize("relative", FILES)
def test_bird_p_accepts_it(relative: str, tmp_path: Path) -> None:
    path = _ready_folder(_corpus() / relative, tmp_path)
    stderr = io.StringIO()
    with _cwd(path.parent), contextlib.redirect_stderr(stderr):
        status = bird_main(["-p", "-c", path.name], ipv6=path.name.startswith("bird6"))
    assert (status, stderr.getvalue()) == (0, "")


@pytest.mark.parametrize("relative", FILES)
def test_effective_config_matches_calico_inputs(relative: str, tmp_path: Path) -> None:
    corpus = _corpus()
    path = _ready_folder(corpus / relative, tmp_path)
    ipv6 = path.name.startswith("bird6")
    want = expected(_scenario((corpus / relative).parent), ipv6)
    with _cwd(path.parent):
        config, facts = check_bird(Path(path.name))

    assert str(config.router_id) == want.router_id
    if want.peers:  # a file without BGP protocols says nothing of the AS
        assert config.local_as == want.local_as
    assert [str(a) for a in config.listen.addresses] == [want.listen_address]
    assert config.listen.port == want.listen_port
    assert _peer_view(config) == _expected_peer_view(want)
    cluster_ids = {p.cluster_id for p in want.peers if p.cluster_id}
    assert ({str(config.cluster_id)} if config.cluster_id else set()) == cluster_ids
    for peer in config.peers:
        # Calico's bgp_template: graceful restart, add paths on, gateway recursive
        assert peer.graceful_restart
        assert peer.add_paths == "on"
        assert peer.gateway == "recursive"
    assert (config.log_level == "debug") == want.debug

    # Calico's objects as myna check recognises them
    exported = set(facts["pools_exported"])
    assert want.pools_exported <= exported
    assert exported - want.pools_exported <= want.service_cidrs | _service_ips(exported, want)
    assert set(facts["pools_export_disabled"]) - want.service_cidrs == (want.pools_export_disabled)
    kernel = {rule["cidr"]: rule["action"] for rule in facts["kernel_programming"]}
    pools_in_kernel = {c: a for c, a in kernel.items() if c not in want.service_cidrs}
    assert pools_in_kernel == want.kernel_pool_actions
    assert all(kernel[c] == "reject" for c in kernel if c in want.service_cidrs)
    if want.blocks is not None:
        assert set(facts["blocks"]) == want.blocks
    statics = {
        (r.prefix, r.kind, str(r.gateway) if r.gateway else None) for r in config.static_routes
    }
    blackholes = {prefix for prefix, kind, _ in statics if kind == "blackhole"}
    if want.blackholes is not None:
        assert want.blackholes <= blackholes
        assert blackholes - want.blackholes <= want.service_cidrs | _service_ips(blackholes, want)
    assert {(prefix, gateway) for prefix, kind, gateway in statics if kind == "via"} == (
        want.static_via
    )
    advertised = {a["cidr"]: set(a["communities"]) for a in facts["prefix_advertisements"]}
    assert advertised == want.communities
    assert set(facts["bgp_filters"]) == want.bgp_filters


def _service_ips(prefixes: set[str], want: ExpectedConfig) -> set[str]:
    """Single service addresses (from Kubernetes Services) inside an advertised range."""
    import ipaddress  # noqa: PLC0415 - only here

    ranges = [ipaddress.ip_network(c) for c in want.service_cidrs]
    return {
        p
        for p in prefixes
        if ipaddress.ip_network(p).prefixlen in (32, 128)
        and any(ipaddress.ip_network(p).subnet_of(r) for r in ranges)  # type: ignore[arg-type]
    }
