"""Compiled BIRD filters on Myna routes: verdicts, edits, caching, BGP export view.

Data flow: each test reads a small configuration (``read_bird_config`` on a string), compiles
one of its filters with ``compile_filter`` and calls the closure on routes built from Myna's
``Source`` / interned attribute sets, as the RIB will. The expected verdicts are BIRD 1.6's,
worked out from its documented semantics and its source (``filter/filter.c``,
``proto/bgp/attrs.c``, ``sysdep/unix/krt.c``), not from Myna's output; the value semantics
themselves are checked against the BIRD binary in ``test_bird_filter_oracle_eval.py`` and the
route-dependent ones live in ``test_interop_bird_filters.py``. Addresses are from
198.18.0.0/15 and 2001:db8::/32 only.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.bgp_export import NO_EXPORT, BgpExportContext
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.filter_codegen import FilterMode
from bgpd.bird_config.filter_compiler import compile_filter
from rib.policy import Action, PolicyCheck, Verdict
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, RouteTable, Source
from speaker.nlri import prefix_from_text as pfx
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

ROUTES = RouteTable()  # this module's own intern table (each RIB core has its own)
V4 = Family.IPV4_UNICAST
V6 = Family.IPV6_UNICAST
NODE_AS = 64512
SEQ = 2

# Calico's kernel-programming filter (bird_ipam.cfg) with one pool, stock BIRD's language
KERNEL_PROGRAMMING = """
filter calico_kernel_programming {
  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {
      krt_metric = 1024;
      if (defined(bgp_local_pref)) then {
          krt_metric = 2147483647 - bgp_local_pref;
      }
      if (krt_metric < 1024) then {
          preference = 200;
      }
  }
  if (net ~ 198.18.64.0/18) then { accept; }
  accept;
}
"""

# Calico's export defaults (bird_aggr.cfg + bird_ipam.cfg) for one block and one pool
EXPORT_DEFAULTS = """
function reject_local_routes () {
  if (defined(ifname)) then {
     if (ifname ~ "bpf*.cali") then { reject; }
  }
}
function apply_communities () {
  if (net ~ 198.18.64.0/18) then { bgp_community.add((65001, 300)); }
}
function calico_aggr () {
  if ( net = 198.18.65.0/26 ) then { accept; }
  if ( net ~ 198.18.65.0/26 && krt_metric < 1024 ) then { accept; }
  if ( net ~ 198.18.65.0/26 ) then { reject; }
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
  if (net ~ 198.18.64.0/18) then { accept; }
}
filter export_ibgp { calico_export_to_bgp_peers(true); reject; }
filter export_ebgp { calico_export_to_bgp_peers(false); reject; }
"""


def compiled(
    text: str,
    name: str,
    *,
    ipv6: bool = False,
    mode: FilterMode = FilterMode.EXPORT,
    context: BgpExportContext | None = None,
    log: list[str] | None = None,
) -> PolicyCheck:
    # BIRD wants at least one protocol in a file, bird6 a router id
    config = read_bird_config(
        "unit.conf", ipv6=ipv6, text="router id 198.19.0.1;\n" + text + "\nprotocol device {}\n"
    )
    program = ast.FilterProgram(ast.FilterKind.FILTER, config.filters[name], ipv6)
    printer = log.append if log is not None else (lambda _line: None)
    return compile_filter(program, name=name, mode=mode, log=printer, bgp_export=context).check


def attrs(**fields: object) -> PathAttributes:
    fields.setdefault("next_hop", bytes((198, 19, 0, 2)))
    return ATTRIBUTES.intern(PathAttributes(**fields))  # type: ignore[arg-type]


IBGP_PEER = Source(
    "198.19.0.2",
    origin=Origin.BGP,
    address=0xC6130002,
    router_id=0xC6130002,
    asn=NODE_AS,
    protocol="Mesh_198_19_0_2",
)
EBGP_PEER = Source(
    "198.19.1.1", origin=Origin.BGP, address=0xC6130101, asn=65001, ibgp=False, protocol="ext"
)
RR_CLIENT_PEER = Source(
    "198.19.0.3",
    origin=Origin.BGP,
    address=0xC6130003,
    router_id=0x0A000003,
    asn=NODE_AS,
    rr_client=True,
    protocol="Node_198_19_0_3",
)
FELIX_BLACKHOLE = Source(
    "kernel",
    origin=Origin.KERNEL,
    protocol="kernel1",
    kernel=KernelFacts(LocalKind.KERNEL, Destination.BLACKHOLE, metric=0, protocol=80),
)
WORKLOAD = Source(
    "kernel",
    origin=Origin.KERNEL,
    interface="cali1234",
    protocol="kernel1",
    kernel=KernelFacts(LocalKind.KERNEL, Destination.DEVICE, metric=0, protocol=4),
)
BPF_WORKLOAD = Source(
    "kernel",
    origin=Origin.KERNEL,
    interface="bpf0.cali",
    protocol="kernel1",
    kernel=KernelFacts(LocalKind.KERNEL, Destination.DEVICE, metric=0, protocol=4),
)
STATIC_BLACKHOLE = Source(
    "static",
    origin=Origin.STATIC,
    protocol="static1",
    kernel=KernelFacts(LocalKind.STATIC, Destination.BLACKHOLE),
)
STATIC_VIA = Source(
    "static",
    origin=Origin.STATIC,
    interface="eth0",
    protocol="static2",
    kernel=KernelFacts(LocalKind.STATIC, Destination.ROUTER, gateway=0xC6130001),
)


def route(source: Source, **fields: object) -> Route:
    if source.origin != Origin.BGP:
        fields.setdefault("next_hop", b"")
    return ROUTES.intern(source, attrs(**fields))


def run(check: PolicyCheck, prefix: str, rt: Route, priority: int | None = None) -> Verdict:
    family = V6 if ":" in prefix else V4
    return check(pfx(prefix), family, rt, priority)


# --- Calico's kernel programming: krt_metric, preference ---------------------------------------


def test_kernel_programming_gives_bgp_routes_a_metric_from_local_pref() -> None:
    check = compiled(KERNEL_PROGRAMMING, "calico_kernel_programming")
    verdict = run(check, "198.18.64.0/26", route(IBGP_PEER, local_pref=100))
    assert verdict.action is Action.ACCEPT
    assert verdict.priority == 2147483647 - 100
    assert verdict.preference is None  # 2147483547 is not below 1024
    assert verdict.attrs is None  # krt_metric and preference are not BGP attributes
    assert verdict.tunnel is None


def test_kernel_programming_low_metric_raises_preference() -> None:
    check = compiled(KERNEL_PROGRAMMING, "calico_kernel_programming")
    verdict = run(check, "198.18.64.0/26", route(IBGP_PEER, local_pref=2147483000))
    assert (verdict.action, verdict.priority, verdict.preference) == (Action.ACCEPT, 647, 200)


def test_kernel_programming_without_local_pref_uses_1024() -> None:
    # an eBGP route has no LOCAL_PREF: the first assignment stands
    check = compiled(KERNEL_PROGRAMMING, "calico_kernel_programming")
    verdict = run(check, "198.18.200.0/24", route(EBGP_PEER, as_path=((SEQ, (65001,)),)))
    assert (verdict.action, verdict.priority, verdict.preference) == (Action.ACCEPT, 1024, None)


def test_kernel_programming_leaves_non_bgp_routes_alone() -> None:
    check = compiled(KERNEL_PROGRAMMING, "calico_kernel_programming")
    for source in (STATIC_BLACKHOLE, FELIX_BLACKHOLE, WORKLOAD):
        verdict = run(check, "198.18.65.0/26", route(source))
        assert (verdict.action, verdict.priority, verdict.preference) == (Action.ACCEPT, None, None)


def test_kernel_programming_keeps_a_metric_the_route_has() -> None:
    # !defined(krt_metric): a metric an import set (the caller's priority) skips the block
    check = compiled(KERNEL_PROGRAMMING, "calico_kernel_programming")
    verdict = run(check, "198.18.64.0/26", route(IBGP_PEER, local_pref=100), priority=77)
    assert (verdict.action, verdict.priority) == (Action.ACCEPT, None)


# --- Calico's export defaults --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "source", "filter_name", "accepted"),
    [
        ("198.18.65.0/26", STATIC_BLACKHOLE, "export_ibgp", True),  # the block itself
        # inside the block: krt_metric undefined (static route) sorts before 1024: accepted
        ("198.18.65.4/32", STATIC_BLACKHOLE, "export_ibgp", True),
        # a Felix route inside the block has krt_metric 0 < 1024
        ("198.18.65.4/32", WORKLOAD, "export_ebgp", True),
        ("198.18.65.4/32", WORKLOAD, "export_ibgp", True),
        ("198.18.65.4/32", BPF_WORKLOAD, "export_ebgp", False),  # reject_local_routes
        ("198.18.66.0/26", FELIX_BLACKHOLE, "export_ibgp", True),  # in the pool
        ("198.19.66.0/26", FELIX_BLACKHOLE, "export_ibgp", False),  # outside every pool
    ],
)
def test_calico_export_defaults(
    prefix: str, source: Source, filter_name: str, accepted: bool
) -> None:
    verdict = run(compiled(EXPORT_DEFAULTS, filter_name), prefix, route(source))
    assert verdict.action is (Action.ACCEPT if accepted else Action.REJECT)


def test_interface_suffix_rejected_towards_internal_peers_only() -> None:
    odd = Source(
        "kernel",
        origin=Origin.KERNEL,
        interface="vxlan.calico",
        kernel=KernelFacts(LocalKind.KERNEL, Destination.DEVICE, metric=0),
    )
    rt = route(odd)
    assert run(compiled(EXPORT_DEFAULTS, "export_ibgp"), "198.18.70.0/24", rt).action is (
        Action.REJECT
    )
    assert run(compiled(EXPORT_DEFAULTS, "export_ebgp"), "198.18.70.0/24", rt).action is (
        Action.ACCEPT
    )


def test_community_added_in_a_function_survives_the_accept_in_another() -> None:
    check = compiled(EXPORT_DEFAULTS, "export_ibgp")
    rt = route(STATIC_BLACKHOLE)
    verdict = run(check, "198.18.65.0/26", rt)
    assert verdict.action is Action.ACCEPT
    assert verdict.attrs is not None
    assert verdict.attrs.communities == ((65001 << 16) | 300,)
    # the edit is made once per attribute set: other prefixes get the very same objects
    in_pool = run(check, "198.18.64.0/24", rt)
    assert in_pool.attrs is verdict.attrs
    assert run(check, "198.18.65.0/26", rt) is verdict
    assert run(check, "198.18.100.0/24", rt) is in_pool  # same accept, same edit


# --- control flow ------------------------------------------------------------------------------

FLOW = """
function pick(int n) {
  if n = 1 then accept;
  if n = 2 then reject;
  return n * 10;
}
filter f
int x;
{
  x = pick(bgp_local_pref);
  if x = 30 then { bgp_med = x; accept; }
  reject;
}
filter no_decision { if net ~ 198.18.0.0/16 then accept; }
filter undefined_read { bgp_med = bgp_med + 1; accept; }
filter case_of {
  case bgp_local_pref {
    1, 2: accept;
    3 .. 9: bgp_med = 3; accept;
    else: reject;
  }
}
"""


@pytest.mark.parametrize(
    ("local_pref", "action", "med"),
    [(1, Action.ACCEPT, None), (2, Action.REJECT, None), (3, Action.ACCEPT, 30)],
)
def test_accept_and_reject_inside_a_function_end_the_filter(
    local_pref: int, action: Action, med: int | None
) -> None:
    verdict = run(compiled(FLOW, "f"), "198.18.1.0/24", route(IBGP_PEER, local_pref=local_pref))
    assert verdict.action is action
    if med is not None:
        assert verdict.attrs is not None
        assert verdict.attrs.med == med
    else:
        assert verdict.attrs is None


def test_falling_off_the_end_of_a_filter_rejects() -> None:
    # BIRD: "Filter ... did not return accept nor reject. Make up your mind"; the route is dropped
    check = compiled(FLOW, "no_decision")
    assert run(check, "198.18.1.0/24", route(IBGP_PEER)).action is Action.ACCEPT
    assert run(check, "198.19.1.0/24", route(IBGP_PEER)).action is Action.REJECT


def test_arithmetic_on_an_undefined_attribute_is_a_runtime_error_that_rejects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    check = compiled(FLOW, "undefined_read")
    with caplog.at_level(logging.ERROR):
        assert run(check, "198.18.1.0/24", route(IBGP_PEER)).action is Action.REJECT
    verdict = run(check, "198.18.1.0/24", route(IBGP_PEER, med=4))
    assert verdict.action is Action.ACCEPT
    assert verdict.attrs is not None
    assert verdict.attrs.med == 5


@pytest.mark.parametrize(
    ("local_pref", "action", "med"),
    [(2, Action.ACCEPT, None), (5, Action.ACCEPT, 3), (10, Action.REJECT, None)],
)
def test_case(local_pref: int, action: Action, med: int | None) -> None:
    verdict = run(
        compiled(FLOW, "case_of"), "198.18.1.0/24", route(IBGP_PEER, local_pref=local_pref)
    )
    assert verdict.action is action
    assert (verdict.attrs.med if verdict.attrs else None) == med


def test_a_route_of_the_other_family_is_rejected() -> None:
    check = compiled(FLOW, "no_decision")
    assert check(pfx("2001:db8::/32"), V6, route(IBGP_PEER)).action is Action.REJECT


# --- route attributes read ---------------------------------------------------------------------

READS = """
filter kernel_facts {
  if source = RTS_INHERIT && dest = RTD_BLACKHOLE && krt_source = 80 && proto = "kernel1"
  then accept;
  reject;
}
filter static_facts {
  if source = RTS_STATIC && dest = RTD_ROUTER && gw = 198.19.0.1 && ifname = "eth0"
     && preference = 200 then accept;
  reject;
}
filter bgp_facts {
  if source = RTS_BGP && from = 198.19.0.2 && bgp_next_hop = 198.19.0.2
     && bgp_path ~ [= 65001 * =] && bgp_path.len = 2 && bgp_path.first = 65001
     && bgp_path.last = 65002 && (65001, 7) ~ bgp_community
     && bgp_large_community ~ [(64512, 1, *)] && net.len = 24 && net.ip = 198.18.1.0
  then accept;
  reject;
}
filter edits {
  bgp_path.prepend(64512);
  bgp_community.delete([(65001, *)]);
  bgp_large_community.add((64512, 2, 3));
  bgp_local_pref = 50;
  bgp_origin = ORIGIN_INCOMPLETE;
  accept;
}
"""


def test_kernel_route_facts() -> None:
    check = compiled(READS, "kernel_facts")
    assert run(check, "198.18.65.0/26", route(FELIX_BLACKHOLE)).action is Action.ACCEPT
    assert run(check, "198.18.65.3/32", route(WORKLOAD)).action is Action.REJECT


def test_static_route_facts() -> None:
    check = compiled(READS, "static_facts")
    assert run(check, "198.18.80.0/24", route(STATIC_VIA)).action is Action.ACCEPT
    assert run(check, "198.18.80.0/24", route(STATIC_BLACKHOLE)).action is Action.REJECT


def test_bgp_route_facts() -> None:
    check = compiled(READS, "bgp_facts")
    rt = route(
        IBGP_PEER,
        as_path=((SEQ, (65001, 65002)),),
        communities=((65001 << 16) | 7,),
        large_communities=((64512, 1, 9),),
    )
    assert run(check, "198.18.1.0/24", rt).action is Action.ACCEPT
    assert run(check, "198.18.1.0/25", rt).action is Action.REJECT


def test_attribute_edits_build_one_interned_set() -> None:
    check = compiled(READS, "edits")
    rt = route(
        EBGP_PEER,
        as_path=((SEQ, (65001,)),),
        communities=((65001 << 16) | 7, (65002 << 16) | 1),
    )
    verdict = run(check, "198.18.1.0/24", rt)
    assert verdict.action is Action.ACCEPT
    assert verdict.attrs == attrs(
        as_path=((SEQ, (64512, 65001)),),
        communities=((65002 << 16) | 1,),
        large_communities=((64512, 2, 3),),
        local_pref=50,
        origin=2,
    )
    assert verdict.attrs is ATTRIBUTES.intern(verdict.attrs)


def test_print_goes_to_the_log() -> None:
    # printn only fills BIRD's line buffer: the next print writes it out, an accept does not
    # (FI_PRINT_AND_DIE commits only with something to print), and each run starts afresh
    lines: list[str] = []
    text = """
filter p { print "net ", net, " len ", net.len; printn "a"; printn "b"; accept; }
filter q { printn "a"; printn "b"; print "c"; accept "done"; }
"""
    run(compiled(text, "p", log=lines), "198.18.1.0/24", route(IBGP_PEER))
    assert lines == ["net 198.18.1.0/24 len 24"]
    lines.clear()
    run(compiled(text, "q", log=lines), "198.18.1.0/24", route(IBGP_PEER))
    assert lines == ["abc", "done"]


# --- IPv6 --------------------------------------------------------------------------------------


def test_ipv6_filter() -> None:
    text = """
filter v6 {
  if net ~ [ 2001:db8:1::/48{64,128} ] then { bgp_med = 6; accept; }
  reject;
}
"""
    check = compiled(text, "v6", ipv6=True)
    rt = ROUTES.intern(IBGP_PEER, attrs(next_hop=bytes.fromhex("20010db8000000000000000000000002")))
    assert run(check, "2001:db8:1:2::/64", rt).action is Action.ACCEPT
    assert run(check, "2001:db8:1::/48", rt).action is Action.REJECT
    assert check(pfx("198.18.0.0/24"), V4, rt).action is Action.REJECT


# --- BGP export view (bgp_import_control) ------------------------------------------------------

EXPORT_VIEW = """
filter show_view {
  if defined(bgp_local_pref) && bgp_local_pref = 100 then bgp_med = 1;
  accept;
}
"""
SOURCE_ADDRESS = bytes((198, 19, 0, 1))


def ibgp_context(**changes: object) -> BgpExportContext:
    fields: dict[str, object] = {
        "internal": True,
        "local_as": NODE_AS,
        "source_address": SOURCE_ADDRESS,
        "peer_address": 0xC6130009,
        "router_id": 0xC6130001,
    }
    fields.update(changes)
    return BgpExportContext(**fields)  # type: ignore[arg-type]


def test_static_route_exported_gets_bgp_attributes_before_the_filter() -> None:
    check = compiled(EXPORT_VIEW, "show_view", context=ibgp_context())
    verdict = run(check, "198.18.65.0/26", route(STATIC_BLACKHOLE))
    assert verdict.action is Action.ACCEPT
    assert verdict.attrs == attrs(
        origin=0, as_path=(), next_hop=SOURCE_ADDRESS, local_pref=100, med=1
    )


def test_ebgp_export_view_prepends_our_as_and_zeroes_med() -> None:
    context = ibgp_context(internal=False)
    check = compiled("filter a { accept; }", "a", context=context)
    static = run(check, "198.18.65.0/26", route(STATIC_BLACKHOLE))
    # LOCAL_PREF is set by BIRD here too; the BGP encoder leaves it out towards eBGP peers
    assert static.attrs == attrs(
        as_path=((SEQ, (NODE_AS,)),), next_hop=SOURCE_ADDRESS, local_pref=100
    )
    learned = route(IBGP_PEER, as_path=((SEQ, (65001,)),), med=50, local_pref=100)
    verdict = run(check, "198.18.1.0/24", learned)
    assert verdict.attrs == attrs(
        as_path=((SEQ, (NODE_AS, 65001)),), med=0, local_pref=100, next_hop=SOURCE_ADDRESS
    )


def test_ibgp_route_not_reflected_between_non_clients() -> None:
    check = compiled("filter a { accept; }", "a", context=ibgp_context())
    assert run(check, "198.18.1.0/24", route(IBGP_PEER)).action is Action.REJECT


def test_reflection_to_a_client_adds_originator_and_cluster() -> None:
    check = compiled("filter a { accept; }", "a", context=ibgp_context(rr_client=True))
    verdict = run(check, "198.18.1.0/24", route(IBGP_PEER, local_pref=100))
    assert verdict.action is Action.ACCEPT
    # iBGP keeps a non-zero next hop
    assert verdict.attrs == attrs(
        local_pref=100, originator_id=IBGP_PEER.router_id, cluster_list=(0xC6130001,)
    )
    looped = route(RR_CLIENT_PEER, cluster_list=(0xC6130001,))
    assert run(check, "198.18.1.0/24", looped).action is Action.REJECT


def test_no_export_stays_inside_the_as() -> None:
    learned = route(EBGP_PEER, as_path=((SEQ, (65001,)),), communities=(NO_EXPORT,))
    external = compiled("filter a { accept; }", "a", context=ibgp_context(internal=False))
    internal = compiled("filter a { accept; }", "a", context=ibgp_context())
    assert run(external, "198.18.1.0/24", learned).action is Action.REJECT
    assert run(internal, "198.18.1.0/24", learned).action is Action.ACCEPT


def test_never_back_to_the_peer_it_came_from() -> None:
    context = ibgp_context(internal=False, peer_address=EBGP_PEER.address)
    check = compiled("filter a { accept; }", "a", context=context)
    rt = route(EBGP_PEER, as_path=((SEQ, (65001,)),))
    assert run(check, "198.18.1.0/24", rt).action is Action.REJECT


def test_import_mode_unset() -> None:
    # in an import filter unset() removes the attribute; the verdict carries the set without it
    text = "filter u { unset(bgp_med); accept; }"
    check = compiled(text, "u", mode=FilterMode.IMPORT)
    verdict = run(check, "198.18.1.0/24", route(IBGP_PEER, med=9))
    assert verdict.action is Action.ACCEPT
    assert verdict.attrs is not None
    assert verdict.attrs.med is None


# --- prefix classes: the memo gives what the code gives ------------------------------------------

OPAQUE = """
filter uses_len { if net.len > 24 then accept; reject; }
filter prints { print net; if net ~ 198.18.0.0/16 then accept; reject; }
filter copies_net prefix p; { p = net; if p ~ 198.18.0.0/16 then accept; reject; }
"""


@pytest.mark.parametrize("name", ["uses_len", "prints", "copies_net"])
def test_a_filter_reading_the_prefix_otherwise_is_not_memoised(name: str) -> None:
    config = read_bird_config(
        "unit.conf", text="router id 198.19.0.1;\n" + OPAQUE + "protocol device {}\n"
    )
    program = ast.FilterProgram(ast.FilterKind.FILTER, config.filters[name])
    compiled_filter = compile_filter(program, name=name, log=lambda _line: None)
    assert compiled_filter.check.__name__ == "_filter"  # the generated function itself


def test_calico_filters_are_memoised() -> None:
    check = compiled(EXPORT_DEFAULTS, "export_ibgp")
    assert check.__name__ == "memo_check"


_SOURCES = (IBGP_PEER, EBGP_PEER, FELIX_BLACKHOLE, WORKLOAD, BPF_WORKLOAD, STATIC_BLACKHOLE)


@settings(max_examples=300, deadline=None)
@given(
    address=st.sampled_from(
        [0xC6124100, 0xC6124104, 0xC6124000, 0xC6130000, 0xC6124140, 0xC6120000]
    ),
    offset=st.integers(0, 255),
    length=st.integers(14, 32),
    source=st.sampled_from(_SOURCES),
    priority=st.sampled_from([None, 0, 512, 5000]),
)
def test_memoised_verdicts_equal_the_code(
    address: int, offset: int, length: int, source: Source, priority: int | None
) -> None:
    config = read_bird_config(
        "unit.conf", text="router id 198.19.0.1;\n" + EXPORT_DEFAULTS + "protocol device {}\n"
    )
    program = ast.FilterProgram(ast.FilterKind.FILTER, config.filters["export_ibgp"])
    memo = _MEMO_CHECKS.setdefault("m", compile_filter(program, name="m").check)
    plain = _MEMO_CHECKS.setdefault("p", compile_filter(program, name="p", memoise=False).check)
    network = (address + offset) & ~((1 << (32 - length)) - 1) & 0xFFFFFFFF
    prefix = network << 8 | length
    rt = route(source)
    for _ in range(2):  # the second call comes from the memo
        got, want = memo(prefix, V4, rt, priority), plain(prefix, V4, rt, priority)
        assert (got.action, got.attrs, got.priority, got.preference) == (
            want.action,
            want.attrs,
            want.priority,
            want.preference,
        )


_MEMO_CHECKS: dict[str, PolicyCheck] = {}
