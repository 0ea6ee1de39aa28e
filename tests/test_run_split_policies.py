"""A Loc-RIB run asked once per class (``rib.run_split``) gives every prefix BIRD's own verdict.

Data flow: Calico's filters are compiled twice from BIRD text, memoised (with the run
splitter) and plain (``memoise=False``: the generated code run for each prefix, the behaviour
the oracle tests hold to BIRD 1.6); a run of prefixes around the filters' constants is split
and the one verdict asked for each group must be the plain verdict of every prefix in it. Then
the two users of the split, the kernel's ``FibProgrammer`` and the update groups, must leave
the same kernel and the same peer table as prefix-by-prefix work.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter

import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st
from rib_harness import V4, FakeSession, announce, export_settings, settle, up_event
from test_bird_filter_compiled import (
    _SOURCES,
    EXPORT_DEFAULTS,
    KERNEL_PROGRAMMING,
    RR_CLIENT_PEER,
    compiled,
    ibgp_context,
    route,
)
from test_kernel_sync_units import PEER, programmer, route_via
from uvloop_runner import on_uvloop

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.filter_compiler import compile_filter
from bgpd.bird_config.prefix_classes import PrefixClasses
from bgpd.peer_policies import bird_export_policy
from kernel_sync.fib_programmer import program_all
from rib.adj_rib_out import ExportPolicy, ExportSettings
from rib.loc_rib import Change, Run
from rib.policy import Action, PolicyCheck, Verdict
from rib.rib_task import ExportFactory, Rib, RibSession
from rib.route import Route
from rib.run_split import splitter_of, whole_run, with_splitter
from speaker.nlri import prefix_from_text
from speaker.path_attributes import PathAttributes
from speaker.session_events import SessionUp
from speaker.update_message import Unreach, Update
from speaker.wire_codes import Family

V6 = Family.IPV6_UNICAST
# Every constant test changes the verdict: a group across any edge gives some prefix a wrong one
EDGES = """
filter edges {
  if net = 198.18.65.0/26 then reject;
  if net ~ 198.18.65.0/26 then { bgp_community.add((65001, 2)); accept; }
  if net ~ 198.18.64.0/18 then accept;
  reject;
}
"""
V6_POOLS = """
filter v6_pools {
  if net = 2001:db8:1:40::/58 then reject;
  if net ~ 2001:db8:1::/48 then { bgp_community.add((65001, 1)); accept; }
  if net ~ 2001:db8::/32 && defined(bgp_local_pref) then accept;
  reject;
}
"""


def _both(text: str, name: str, ipv6: bool = False) -> tuple[PolicyCheck, PolicyCheck]:
    """(memoised with its splitter, plain code) of one filter."""
    head = "router id 198.19.0.1;\n"
    config = read_bird_config("unit.conf", ipv6=ipv6, text=head + text + "\nprotocol device {}\n")
    program = ast.FilterProgram(ast.FilterKind.FILTER, config.filters[name], ipv6)
    memo = compile_filter(program, name=name).check
    plain = compile_filter(program, name=name, memoise=False).check
    return memo, plain


FILTERS = {
    "export_ibgp": _both(EXPORT_DEFAULTS, "export_ibgp"),
    "export_ebgp": _both(EXPORT_DEFAULTS, "export_ebgp"),
    "kernel": _both(KERNEL_PROGRAMMING, "calico_kernel_programming"),
    "edges": _both(EDGES, "edges"),
}
V6_FILTER = _both(V6_POOLS, "v6_pools", ipv6=True)
# Around the constants: 198.18.64.0/18 (pool) and 198.18.65.0/26 (block), each edge inside
V4_BASES = [0xC6123F80, 0xC6124000, 0xC61240C0, 0xC6124100, 0xC6124130, 0xC6127F80, 0xC6128000]
V6_BASES = [0x20010DB8_0001_0040 << 64, 0x20010DB8_0000_FFFF << 64, 0x20010DB8_0002 << 80]


def _same(got: Verdict, want: Verdict) -> bool:
    return (got.action, got.attrs, got.priority, got.preference, got.tunnel) == (
        want.action,
        want.attrs,
        want.priority,
        want.preference,
        want.tunnel,
    )


def _run(bases: list[int], width: int, draws: list[tuple[int, int, int]]) -> list[int]:
    """Distinct prefixes: (base, offset, length) draws, each made a network of its length."""
    prefixes: dict[int, None] = {}
    for base, offset, length in draws:
        address = bases[base % len(bases)] + (offset << (width - 32 if width > 32 else 0))
        network = address & ~((1 << (width - length)) - 1) & ((1 << width) - 1)
        prefixes[network << 8 | length] = None
    return list(prefixes)


def _check_split(
    memo: PolicyCheck, plain: PolicyCheck, family: Family, prefixes: list[int]
) -> None:
    split = splitter_of(memo)
    assert split is not None
    groups = split(prefixes)
    assert Counter(p for g in groups for p in g) == Counter(prefixes)  # nothing lost nor doubled
    for source in _SOURCES:
        for rt in (route(source), route(source, local_pref=100), route(source, local_pref=5000)):
            for group in groups:
                verdict = memo(group[0], family, rt)
                for prefix in group:
                    assert _same(verdict, plain(prefix, family, rt)), (hex(prefix), source)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(FILTERS)),
    one_length=st.sampled_from([None, 32, 26, 24, 18]),
    draws=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 400), st.integers(14, 32)), min_size=1
    ),
)
def test_a_split_v4_run_gets_each_prefix_its_own_verdict(
    name: str, one_length: int | None, draws: list[tuple[int, int, int]]
) -> None:
    if one_length is not None:  # one length: the bisect path, as Calico's runs of /32s or /26s
        draws = [(b, o, one_length) for b, o, _ in draws]
    memo, plain = FILTERS[name]
    _check_split(memo, plain, V4, _run(V4_BASES, 32, draws))


@settings(max_examples=100, deadline=None)
@given(
    one_length=st.sampled_from([None, 128, 64, 58]),
    draws=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 1 << 16), st.integers(30, 128)), min_size=1
    ),
)
def test_a_split_v6_run_gets_each_prefix_its_own_verdict(
    one_length: int | None, draws: list[tuple[int, int, int]]
) -> None:
    if one_length is not None:
        draws = [(b, o, one_length) for b, o, _ in draws]
    memo, plain = V6_FILTER
    _check_split(memo, plain, V6, _run(V6_BASES, 128, draws))


def test_a_run_of_one_pool_is_asked_once() -> None:
    memo, _ = FILTERS["export_ibgp"]
    split = splitter_of(memo)
    assert split is not None
    inside = [prefix_from_text(f"198.18.{n}.{k}/32") for n in range(66, 120) for k in range(256)]
    assert len(split(inside)) == 1


def test_filters_say_how_far_they_can_be_split() -> None:
    text = """
filter no_prefix { if bgp_local_pref > 10 then accept; reject; }
filter prints_no_prefix { print "seen"; accept; }
filter reads_len { if net.len > 24 then accept; reject; }
"""
    assert splitter_of(compiled(text, "no_prefix")) is whole_run
    assert splitter_of(compiled(text, "prints_no_prefix")) is None  # BIRD prints per route
    assert splitter_of(compiled(text, "reads_len")) is None
    check = compiled(EXPORT_DEFAULTS, "export_ibgp")
    assert splitter_of(bird_export_policy(check)) is splitter_of(check)
    assert splitter_of(program_all) is whole_run


def test_all_and_none_are_one_answer_per_run_also_through_bgps_export_view() -> None:
    # ``export all`` towards a BGP peer goes through BIRD's export view of the route, which
    # never reads the prefix either: asked per prefix, it made propagation 12 times slower.
    for kind in (ast.FilterKind.ALL, ast.FilterKind.NONE):
        program = ast.FilterProgram(kind, None, False)
        for context in (None, ibgp_context()):
            check = compile_filter(program, bgp_export=context).check
            assert splitter_of(check) is whole_run, (kind, context)
    exported = compile_filter(
        ast.FilterProgram(ast.FilterKind.ALL, None, False), bgp_export=ibgp_context()
    ).check
    prefixes = [prefix_from_text(f"198.18.{n}.0/26") for n in range(4)]
    static = _SOURCES[-1]  # BIRD exports a static route to an iBGP peer; a BGP one it would not
    assert {exported(p, V4, route(static)).action for p in prefixes} == {Action.ACCEPT}
    assert {exported(p, V4, route(_SOURCES[0])).action for p in prefixes} == {Action.REJECT}


# --- the kernel: a run programs what its prefixes one by one would ------------------------------

POOL = ipaddress.ip_network("198.19.0.0/23")
REFUSED = ipaddress.ip_network("198.19.3.0/24")
TESTS = PrefixClasses(
    [(int(n.netmask) << 8, int(n.network_address) << 8, n.prefixlen) for n in (POOL, REFUSED)],
    [],
    [],
)


def _kernel_answer(prefix: int, _family: Family, _route: Route) -> tuple[bool, str | None, None]:
    address = ipaddress.ip_address(prefix >> 8)
    if address in REFUSED:
        return False, None, None
    return True, "tunl0" if address in POOL else None, None


@on_uvloop
async def test_a_split_run_programs_what_its_changes_one_by_one_would() -> None:
    def split_policy(prefix: int, family: Family, route: Route) -> tuple[bool, str | None, None]:
        return _kernel_answer(prefix, family, route)

    with_splitter(split_policy, TESTS.splitter(V4))
    devices = {"tunl0": 7}
    prefixes = [prefix_from_text(f"198.19.{n}.{64 * k}/26") for n in range(5) for k in range(4)]
    one_by_one, _, _ = programmer(policy=_kernel_answer, ifindex=devices.__getitem__)
    in_a_run, _, _ = programmer(policy=split_policy, ifindex=devices.__getitem__)
    # the same prefixes via another path first: the refused ones must then be deleted
    for fib in (one_by_one, in_a_run):
        fib.publish([Change(V4, p, None, (), route_via("198.18.0.9"), ()) for p in prefixes])
    assert in_a_run.installed == one_by_one.installed
    for step in (route_via("198.18.0.2"), None, route_via("198.18.0.3")):
        one_by_one.publish(
            [Change(V4, p, None, (), step, (step,) if step else ()) for p in prefixes]
        )
        in_a_run.publish([Run(V4, PEER, 0, step, prefixes)])
        assert in_a_run.installed == one_by_one.installed
        assert in_a_run._queue == one_by_one._queue
    assert len(in_a_run.installed) == 16  # 198.19.3.0/24 refused


# --- the update groups: a peer behind a split export holds what a per-prefix one holds -----------

BLOCKS = [prefix_from_text(f"198.18.{n}.{64 * k}/26") for n in range(62, 68) for k in range(4)]


def _export_policy(family: Family, prefix: int, rt: Route) -> PathAttributes | None:
    memo, _ = FILTERS["export_ibgp"]
    verdict = memo(prefix, family, rt)
    if verdict[0] != Action.ACCEPT:
        return None
    return rt.attrs if verdict[1] is None else verdict[1]


async def _play(script: list[tuple[list[int], int | None]]) -> None:
    split_export = bird_export_policy(FILTERS["export_ibgp"][0])
    assert splitter_of(split_export) is not None

    def factory(policy: ExportPolicy) -> ExportFactory:
        def build(session: RibSession, up: SessionUp) -> ExportSettings:
            return dataclasses.replace(export_settings(session, up), policy=policy)  # type: ignore[arg-type]

        return build

    rib = Rib(64512, int(ipaddress.IPv4Address("198.18.0.1")))
    sender = FakeSession("198.18.0.2")
    split_peer, plain_peer = FakeSession("198.18.0.4"), FakeSession("198.18.0.5")
    rib.add_peer(sender, export_settings)  # type: ignore[arg-type]  # the harness types it loosely
    rib.add_peer(split_peer, factory(split_export))
    rib.add_peer(plain_peer, factory(_export_policy))
    rib.start()
    rib.session_up(sender, up_event(sender, "198.18.0.2", asn=64999))
    for peer, router_id in ((split_peer, "198.18.0.4"), (plain_peer, "198.18.0.5")):
        rib.session_up(peer, up_event(peer, router_id))
    await settle(rib)
    for prefixes, med in script:
        if med is None:
            rib.updates(sender, (Update(unreach=(Unreach(V4, tuple(prefixes)),)),))
        else:
            path = ((2, (64999,)),)
            rib.updates(sender, announce(sender, prefixes, "198.18.0.2", med=med, as_path=path))
        await settle(rib)
        assert split_peer.table() == plain_peer.table()
    await rib.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=24, unique=True),
            st.sampled_from([None, 0, 1]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_split_export_sends_what_a_per_prefix_one_sends(
    script: list[tuple[list[int], int | None]],
) -> None:
    uvloop.run(_play(script))


def test_rr_client_source_splits_too() -> None:
    # a reflected route (the reflector's case): one class per run inside the pool
    memo, plain = FILTERS["export_ibgp"]
    prefixes = [prefix_from_text(f"198.18.70.{n}/32") for n in range(64)]
    rt = route(RR_CLIENT_PEER, local_pref=100)
    split = splitter_of(memo)
    assert split is not None
    (group,) = split(prefixes)
    assert all(_same(memo(group[0], V4, rt), plain(p, V4, rt)) for p in group)
