"""Policy tables for ``rib.policy`` and ``rib.calico_policy``.

Data flow: each table row builds a route (a ``Source`` and an interned attribute set), runs it
through a compiled check and compares the verdict. Addresses are from 198.18.0.0/15 and
2001:db8::/32 only.
"""

from __future__ import annotations

import pytest

from rib.calico_policy import (
    CalicoPolicyInputs,
    EncapMode,
    IpPool,
    PrefixAdvertisement,
    compile_export,
    compile_import,
    compile_kernel_programming,
    filter_from_crd,
)
from rib.policy import (
    Action,
    AddCommunity,
    Direction,
    Filter,
    LimitAction,
    LimitDecision,
    MatchOperator,
    PeerContext,
    PeerType,
    PrefixLength,
    PrefixLimit,
    PrefixSet,
    PrependAsPath,
    Rule,
    RuleSource,
    SetLocalPref,
    SetPriority,
    as_path_loops,
    as_rib_policy,
    compile_filters,
    next_hop_is_own,
    parse_community,
    prepend_as_path,
)
from rib.route import Origin, Route, RouteTable, Source
from speaker.nlri import prefix_from_text as pfx
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST
V6 = Family.IPV6_UNICAST
SEQ, SET = 2, 1
NODE_AS = 64512
IBGP = PeerContext(ibgp=True, local_as=NODE_AS)
EBGP = PeerContext(ibgp=False, local_as=NODE_AS)
RR_CLIENT = PeerContext(ibgp=True, rr_client=True, local_as=NODE_AS)

BGP_PEER = Source("198.19.0.2", origin=Origin.BGP, asn=NODE_AS)
STATIC = Source("static", origin=Origin.STATIC)

ROUTES = RouteTable()  # the tests' own intern table (each RIB core has its own)


def kernel(interface: str | None = "cali0a1b2c") -> Source:
    return Source("kernel", origin=Origin.KERNEL, interface=interface)


def comm(text: str) -> int:
    value = parse_community(text)
    assert isinstance(value, int)
    return value


def attrs(**fields: object) -> PathAttributes:
    fields.setdefault("next_hop", bytes((198, 19, 0, 2)))
    return ATTRIBUTES.intern(PathAttributes(**fields))  # type: ignore[arg-type]


def route(source: Source = BGP_PEER, **fields: object) -> Route:
    return ROUTES.intern(source, attrs(**fields))


def one_rule(rule: Rule, family: Family = V4) -> Filter:
    if family == V4:
        return Filter("t", export_v4=(rule,), import_v4=(rule,))
    return Filter("t", export_v6=(rule,), import_v6=(rule,))


def decide(
    rules: Filter | list[Filter],
    prefix: str,
    rt: Route | None = None,
    peer: PeerContext = IBGP,
    direction: Direction = Direction.EXPORT,
    priority: int | None = None,
):
    filters = rules if isinstance(rules, list) else [rules]
    family = V6 if ":" in prefix else V4
    check = compile_filters(filters, direction, peer)
    return check(pfx(prefix), family, rt or route(), priority)


# --- match operators --------------------------------------------------------------------------

IN, NOT_IN, EQ, NE = (
    MatchOperator.IN,
    MatchOperator.NOT_IN,
    MatchOperator.EQUAL,
    MatchOperator.NOT_EQUAL,
)

OPERATOR_CASES = [
    # (operator, rule cidr, prefixLength, route prefix, matches)
    (EQ, "198.18.0.0/16", None, "198.18.0.0/16", True),
    (EQ, "198.18.0.0/16", None, "198.18.0.0/17", False),
    (EQ, "198.18.0.0/16", None, "198.19.0.0/16", False),
    (NE, "198.18.0.0/16", None, "198.18.0.0/16", False),
    (NE, "198.18.0.0/16", None, "198.18.0.0/24", True),
    (IN, "198.18.0.0/16", None, "198.18.0.0/16", True),
    (IN, "198.18.0.0/16", None, "198.18.7.9/32", True),
    (IN, "198.18.0.0/16", None, "198.18.0.0/15", False),  # shorter: contains the rule, not in it
    (IN, "198.18.0.0/16", None, "198.19.0.0/24", False),
    (IN, "198.18.0.0/16", PrefixLength(24, 26), "198.18.5.0/24", True),
    (IN, "198.18.0.0/16", PrefixLength(24, 26), "198.18.5.64/26", True),
    (IN, "198.18.0.0/16", PrefixLength(24, 26), "198.18.5.64/27", False),
    (IN, "198.18.0.0/16", PrefixLength(24, 26), "198.18.4.0/23", False),
    (IN, "198.18.0.0/16", PrefixLength(max=24), "198.18.0.0/16", True),  # min defaults to /16
    (IN, "198.18.0.0/16", PrefixLength(max=24), "198.18.0.0/25", False),
    (IN, "198.18.0.0/16", PrefixLength(min=8), "198.18.0.0/15", False),  # min clamps to /16
    (NOT_IN, "198.18.0.0/16", None, "198.19.0.0/24", True),
    (NOT_IN, "198.18.0.0/16", None, "198.18.1.0/24", False),
    (NOT_IN, "198.18.0.0/16", PrefixLength(24, 24), "198.18.1.0/25", True),
    (NOT_IN, "198.18.0.0/16", PrefixLength(24, 24), "198.18.1.0/24", False),
    (EQ, "2001:db8:1::/48", None, "2001:db8:1::/48", True),
    (NE, "2001:db8:1::/48", None, "2001:db8:1::/64", True),
    (IN, "2001:db8:1::/48", PrefixLength(min=64), "2001:db8:1:2::/64", True),
    (IN, "2001:db8:1::/48", PrefixLength(min=64), "2001:db8:1::/48", False),
    (IN, "2001:db8:1::/48", PrefixLength(min=64), "2001:db8:2::/64", False),
    (NOT_IN, "2001:db8:1::/48", PrefixLength(120, 128), "2001:db8:1::/64", True),
]


@pytest.mark.parametrize(("op", "cidr", "plen", "prefix", "matches"), OPERATOR_CASES)
def test_match_operators(op, cidr, plen, prefix, matches):
    family = V6 if ":" in cidr else V4
    rule = Rule(Action.ACCEPT, op, cidr, plen)
    verdict = decide(one_rule(rule, family), prefix)
    assert verdict.action == (Action.ACCEPT if matches else Action.NO_MATCH)


def test_rules_of_one_family_ignore_the_other():
    flt = one_rule(Rule(Action.REJECT), V4)  # no conditions: matches every IPv4 route
    assert decide(flt, "198.18.0.0/24").action == Action.REJECT
    assert decide(flt, "2001:db8::/64").action == Action.NO_MATCH


# --- the other conditions ---------------------------------------------------------------------

CONDITION_CASES = [
    # (rule keyword arguments, route, priority, matches)
    ({"source": RuleSource.REMOTE_PEERS}, route(BGP_PEER), None, True),
    ({"source": RuleSource.REMOTE_PEERS}, route(kernel()), None, False),
    ({"source": RuleSource.REMOTE_PEERS}, route(STATIC), None, False),
    ({"interface": "cali*"}, route(kernel("cali0a1b2c")), None, True),
    ({"interface": "cali*"}, route(kernel("eth0")), None, False),
    ({"interface": "cali*"}, route(BGP_PEER), None, False),  # no device known
    ({"interface": "?th0"}, route(kernel("eth0")), None, True),
    ({"interface": "*.calico"}, route(kernel("vxlan.calico")), None, True),
    ({"interface": "*.calico"}, route(kernel("vxlan-calico")), None, False),
    ({"communities": ("65000:100",)}, route(communities=(comm("65000:100"),)), None, True),
    ({"communities": ("65000:100",)}, route(communities=(comm("65000:200"),)), None, False),
    ({"communities": ("65000:10:20",)}, route(large_communities=((65000, 10, 20),)), None, True),
    ({"communities": ("65000:10:20",)}, route(communities=(comm("65000:10"),)), None, False),
    (
        {"communities": ("65000:100", "65000:10:20")},
        route(communities=(comm("65000:100"),)),
        None,
        False,  # every listed value must be present
    ),
    ({"as_path_prefix": (64600,)}, route(as_path=((SEQ, (64600, 64601)),)), None, True),
    ({"as_path_prefix": (64600, 64601)}, route(as_path=((SEQ, (64600, 64601)),)), None, True),
    ({"as_path_prefix": (64601,)}, route(as_path=((SEQ, (64600, 64601)),)), None, False),
    ({"as_path_prefix": (64600,)}, route(as_path=((SET, (64600,)),)), None, False),
    (
        {"as_path_prefix": (64600, 64601)},
        route(as_path=((SEQ, (64600,)), (SEQ, (64601, 64700)))),
        None,
        True,
    ),
    ({"as_path_prefix": (64600,)}, route(), None, False),
    ({"priority": 512}, route(), 512, True),
    ({"priority": 512}, route(), 1024, False),
    ({"priority": 512}, route(), None, False),
    (
        {"source": RuleSource.REMOTE_PEERS, "communities": ("65000:100",)},
        route(kernel(), communities=(comm("65000:100"),)),
        None,
        False,  # all conditions must hold
    ),
]


@pytest.mark.parametrize(("kwargs", "rt", "priority", "matches"), CONDITION_CASES)
def test_conditions(kwargs, rt, priority, matches):
    flt = one_rule(Rule(Action.REJECT, **kwargs))
    verdict = decide(flt, "198.18.1.0/26", rt, priority=priority)
    assert verdict.action == (Action.REJECT if matches else Action.NO_MATCH)


@pytest.mark.parametrize(
    ("peer_type", "peer", "matches"),
    [
        (PeerType.IBGP, IBGP, True),
        (PeerType.IBGP, RR_CLIENT, True),
        (PeerType.IBGP, EBGP, False),
        (PeerType.EBGP, EBGP, True),
        (PeerType.EBGP, IBGP, False),
        (PeerType.RR_CLIENT, RR_CLIENT, True),
        (PeerType.RR_CLIENT, IBGP, False),
        (None, EBGP, True),
    ],
)
def test_peer_type(peer_type, peer, matches):
    flt = one_rule(Rule(Action.ACCEPT, IN, "198.18.0.0/15", peer_type=peer_type))
    verdict = decide(flt, "198.18.1.0/26", peer=peer)
    assert verdict.action == (Action.ACCEPT if matches else Action.NO_MATCH)


# --- actions and operations -------------------------------------------------------------------

BASE_PATH = ((SEQ, (64600,)),)

OPERATION_CASES = [
    # (operations, expected changed fields or None for unchanged, expected priority)
    ((), None, None),
    ((AddCommunity("65000:100"),), {"communities": (comm("65000:100"),)}, None),
    ((AddCommunity("65000:10:20"),), {"large_communities": ((65000, 10, 20),)}, None),
    ((PrependAsPath((65001, 65002)),), {"as_path": ((SEQ, (65001, 65002, 64600)),)}, None),
    ((PrependAsPath(own_as_times=3),), {"as_path": ((SEQ, (NODE_AS,) * 3 + (64600,)),)}, None),
    ((SetLocalPref(200),), {"local_pref": 200}, None),
    ((SetPriority(100),), None, 100),
    (
        (AddCommunity("65000:100"), PrependAsPath((65001,)), SetPriority(512)),
        {"communities": (comm("65000:100"),), "as_path": ((SEQ, (65001, 64600)),)},
        512,
    ),
    (
        (PrependAsPath((65001,)), PrependAsPath((65002,))),
        {"as_path": ((SEQ, (65002, 65001, 64600)),)},
        None,
    ),
]


@pytest.mark.parametrize(("ops", "changed", "priority"), OPERATION_CASES)
def test_operations(ops, changed, priority):
    rt = route(as_path=BASE_PATH)
    flt = one_rule(Rule(Action.ACCEPT, IN, "198.18.0.0/15", operations=ops))
    verdict = decide(flt, "198.18.1.0/26", rt, peer=EBGP)
    assert verdict.action == Action.ACCEPT
    assert verdict.priority == priority
    if changed is None:
        assert verdict.attrs is None
        assert verdict.attrs_for(rt.attrs) is rt.attrs
    else:
        assert verdict.attrs == rt.attrs._replace(**changed)
        assert ATTRIBUTES.intern(verdict.attrs) is verdict.attrs  # interned


def test_reject_action_and_adding_a_present_community_changes_nothing():
    assert decide(one_rule(Rule(Action.REJECT, IN, "198.18.0.0/15")), "198.18.1.0/26").action == (
        Action.REJECT
    )
    rt = route(communities=(comm("65000:100"),))
    flt = one_rule(Rule(Action.ACCEPT, operations=(AddCommunity("65000:100"),)))
    assert decide(flt, "198.18.1.0/26", rt).attrs is None


def test_edits_are_cached_per_attribute_set():
    check = compile_filters(
        [one_rule(Rule(Action.ACCEPT, operations=(AddCommunity("65000:100"),)))],
        Direction.EXPORT,
        IBGP,
    )
    rt = route(as_path=BASE_PATH)
    first = check(pfx("198.18.1.0/26"), V4, rt)
    # A million prefixes with one set: one edit, one verdict object.
    assert check(pfx("198.18.2.0/26"), V4, rt) is first
    other = check(pfx("198.18.2.0/26"), V4, route(as_path=((SEQ, (64601,)),)))
    assert other is not first
    assert other.attrs is not None
    assert other.attrs.communities == (comm("65000:100"),)


def test_first_match_wins_and_no_match_falls_through_to_the_next_filter():
    first = Filter(
        "first",
        export_v4=(
            Rule(Action.REJECT, IN, "198.18.0.0/16"),
            Rule(Action.ACCEPT, IN, "198.18.0.0/15"),
        ),
    )
    second = Filter("second", export_v4=(Rule(Action.ACCEPT, IN, "198.19.0.0/16"),))
    assert decide([first, second], "198.18.1.0/24").action == Action.REJECT
    verdict = decide([first, second], "198.19.1.0/24")
    assert verdict.action == Action.ACCEPT
    assert verdict.reason.startswith("first exportV4 rule 1")

    narrow = Filter("narrow", export_v4=(Rule(Action.REJECT, EQ, "198.18.5.0/24"),))
    verdict = decide([narrow, second], "198.19.6.0/24")
    assert verdict.action == Action.ACCEPT
    assert verdict.reason.startswith("second")
    assert decide([narrow], "198.18.6.0/24").action == Action.NO_MATCH
    assert decide([], "198.18.6.0/24").action == Action.NO_MATCH


def test_import_and_export_lists_are_separate():
    flt = Filter("f", import_v4=(Rule(Action.REJECT),))
    assert decide(flt, "198.18.0.0/24", direction=Direction.IMPORT).action == Action.REJECT
    assert decide(flt, "198.18.0.0/24", direction=Direction.EXPORT).action == Action.NO_MATCH


@pytest.mark.parametrize(
    "make",
    [
        lambda: Rule(Action.REJECT, operations=(SetPriority(1),)),
        lambda: Rule(Action.ACCEPT, EQ, "198.18.0.0/16", PrefixLength(16, 24)),
        lambda: Rule(Action.ACCEPT, cidr="198.18.0.0/16"),
        lambda: Rule(Action.ACCEPT, match_operator=IN),
        lambda: Rule(Action.NO_MATCH),
        lambda: Rule(Action.ACCEPT, operations=(PrependAsPath(),)),
        lambda: compile_filters(
            [Filter("v6-in-v4", export_v4=(Rule(Action.ACCEPT, IN, "2001:db8::/32"),))],
            Direction.EXPORT,
            IBGP,
        ),
        lambda: parse_community("65536:1"),
        lambda: parse_community("1:2:3:4"),
        lambda: parse_community("no-export"),
    ],
)
def test_invalid_configuration_is_refused(make):
    with pytest.raises(ValueError):
        make()


def test_rib_adapter():
    flt = Filter(
        "f",
        export_v4=(
            Rule(Action.REJECT, EQ, "198.18.0.0/24"),
            Rule(Action.ACCEPT, EQ, "198.18.1.0/24", operations=(SetLocalPref(50),)),
        ),
    )
    policy = as_rib_policy(compile_filters([flt], Direction.EXPORT, IBGP))
    rt = route()
    assert policy(V4, pfx("198.18.0.0/24"), rt) is None
    edited = policy(V4, pfx("198.18.1.0/24"), rt)
    assert edited is not None
    assert edited.local_pref == 50
    assert policy(V4, pfx("198.18.2.0/24"), rt) is rt.attrs  # no match: Calico's default Accept


# --- Calico defaults --------------------------------------------------------------------------

INPUTS = CalicoPolicyInputs(
    pools=(
        IpPool("198.18.0.0/16"),
        IpPool("198.19.128.0/18", disable_bgp_export=True),
        IpPool("2001:db8:1::/48"),
    ),
    own_blocks=("198.18.1.0/26", "198.19.128.0/26", "2001:db8:1::/122"),
    prefix_advertisements=(
        PrefixAdvertisement("198.18.0.0/16", ("mesh-tag", "65000:10:20")),
        PrefixAdvertisement("198.18.1.0/24", ("65000:300",)),
    ),
    communities=(("mesh-tag", "65000:100"),),
    service_cidrs=("198.19.0.0/24",),
)
POOL_COMMS = {"communities": (comm("65000:100"),), "large_communities": ((65000, 10, 20),)}
BLOCK_COMMS = {
    "communities": (comm("65000:100"), comm("65000:300")),
    "large_communities": ((65000, 10, 20),),
}

EXPORT_CASES = [
    # (prefix, source, peer, priority, action, changed attributes or None)
    ("198.18.1.0/26", STATIC, IBGP, None, Action.ACCEPT, BLOCK_COMMS),  # own block, exact
    ("198.18.1.5/32", kernel(), IBGP, None, Action.REJECT, None),  # workload /32 in own block
    ("198.18.1.5/32", kernel(), IBGP, 1024, Action.REJECT, None),
    ("198.18.1.5/32", kernel(), IBGP, 512, Action.ACCEPT, BLOCK_COMMS),  # elevated priority
    ("198.18.33.0/26", BGP_PEER, IBGP, None, Action.ACCEPT, POOL_COMMS),  # another node's block
    ("198.18.33.0/26", BGP_PEER, EBGP, None, Action.ACCEPT, POOL_COMMS),
    ("198.19.128.64/26", BGP_PEER, IBGP, None, Action.REJECT, None),  # BGP export disabled
    ("198.19.128.0/26", STATIC, IBGP, None, Action.REJECT, None),  # own block, disabled pool
    ("198.19.0.0/24", STATIC, IBGP, None, Action.ACCEPT, None),  # advertised service range
    ("198.19.0.10/32", STATIC, EBGP, None, Action.ACCEPT, None),
    ("198.19.64.0/24", BGP_PEER, EBGP, None, Action.REJECT, None),  # not Calico's
    ("198.18.40.0/26", kernel("vxlan.calico"), IBGP, None, Action.REJECT, None),  # tunnel route
    ("198.18.40.0/26", kernel("vxlan.calico"), EBGP, None, Action.ACCEPT, POOL_COMMS),
    ("198.18.40.0/26", kernel("wireguard.cali"), IBGP, None, Action.REJECT, None),
    ("198.18.40.0/26", kernel("bpfout.cali"), EBGP, None, Action.REJECT, None),  # local only
    ("2001:db8:1::/122", STATIC, IBGP, None, Action.ACCEPT, None),
    ("2001:db8:1::5/128", kernel(), IBGP, None, Action.REJECT, None),
    ("2001:db8:1:0:1::/122", BGP_PEER, IBGP, None, Action.ACCEPT, None),
    ("2001:db8:2::/64", BGP_PEER, IBGP, None, Action.REJECT, None),
]


@pytest.mark.parametrize(
    ("prefix", "source", "peer", "priority", "action", "changed"), EXPORT_CASES
)
def test_calico_export_defaults(prefix, source, peer, priority, action, changed):
    check = compile_export(INPUTS, peer)
    rt = route(source)
    family = V6 if ":" in prefix else V4
    for _ in range(2):  # the second call answers from the per-prefix memo
        verdict = check(pfx(prefix), family, rt, priority)
        assert verdict.action == action, verdict.reason
        if changed is None:
            assert verdict.attrs is None
        else:
            assert verdict.attrs == rt.attrs._replace(**changed)


def test_v328_behaviour_without_priority_exception():
    inputs = CalicoPolicyInputs(
        pools=INPUTS.pools, own_blocks=INPUTS.own_blocks, normal_route_priority=None
    )
    check = compile_export(inputs, IBGP)
    assert check(pfx("198.18.1.5/32"), V4, route(kernel()), 1).action == Action.REJECT


def test_tunl0_routes_are_tunnel_routes_when_felix_owns_ipip():
    rt = route(kernel("tunl0"))
    assert compile_export(INPUTS, IBGP)(pfx("198.18.40.0/26"), V4, rt).action == Action.ACCEPT
    inputs = CalicoPolicyInputs(pools=INPUTS.pools, felix_programs_ipip=True)
    assert compile_export(inputs, IBGP)(pfx("198.18.40.0/26"), V4, rt).action == Action.REJECT
    assert compile_export(inputs, EBGP)(pfx("198.18.40.0/26"), V4, rt).action == Action.ACCEPT


def test_user_export_filters_run_first_and_are_final():
    filters = [
        Filter(
            "user",
            export_v4=(
                Rule(Action.REJECT, EQ, "198.18.33.0/26"),
                Rule(Action.ACCEPT, IN, "198.19.64.0/18"),
                Rule(Action.ACCEPT, EQ, "198.18.1.9/32"),
            ),
        )
    ]
    check = compile_export(INPUTS, EBGP, filters)
    rt = route()
    assert check(pfx("198.18.33.0/26"), V4, rt).action == Action.REJECT  # a pool route, refused
    outside = check(pfx("198.19.64.0/24"), V4, rt)
    assert outside.action == Action.ACCEPT  # not Calico's, exported anyway
    assert outside.reason.startswith("user")
    # BIRD: the user's accept ends the filter, so calico_aggr and apply_communities never run.
    inside = check(pfx("198.18.1.9/32"), V4, rt)
    assert (inside.action, inside.attrs) == (Action.ACCEPT, None)
    fallthrough = check(pfx("198.18.34.0/26"), V4, rt)
    assert fallthrough.action == Action.ACCEPT
    assert fallthrough.attrs == rt.attrs._replace(**POOL_COMMS)


IMPORT_CASES = [
    # (prefix, route attributes, allow_own_as, action)
    ("198.18.33.0/26", {}, 0, Action.ACCEPT),
    ("198.18.1.0/26", {}, 0, Action.REJECT),  # our own block
    ("198.18.1.7/32", {}, 0, Action.REJECT),  # inside it
    ("2001:db8:1::/122", {}, 0, Action.REJECT),
    ("2001:db8:1:0:1::/122", {}, 0, Action.ACCEPT),
    ("198.18.33.0/26", {"as_path": ((SEQ, (64600, NODE_AS)),)}, 0, Action.REJECT),  # loop
    ("198.18.33.0/26", {"as_path": ((SEQ, (64600, NODE_AS)),)}, 1, Action.ACCEPT),
    ("198.18.33.0/26", {"as_path": ((SEQ, (NODE_AS, 64600)), (SET, (NODE_AS,)))}, 1, Action.REJECT),
    ("198.18.33.0/26", {"as_path": ((SEQ, (NODE_AS, 64600)), (SET, (NODE_AS,)))}, 2, Action.ACCEPT),
    ("198.18.33.0/26", {"next_hop": bytes((198, 19, 0, 1))}, 0, Action.REJECT),  # our address
]


@pytest.mark.parametrize(("prefix", "fields", "allow", "action"), IMPORT_CASES)
def test_calico_import(prefix, fields, allow, action):
    own = frozenset({bytes((198, 19, 0, 1))})
    check = compile_import(INPUTS, EBGP, allow_own_as=allow, own_addresses=own)
    family = V6 if ":" in prefix else V4
    assert check(pfx(prefix), family, route(**fields)).action == action


def test_user_import_accept_lets_a_more_specific_of_an_own_block_in():
    migrated = Filter(
        "vm",
        import_v4=(
            Rule(
                Action.ACCEPT,
                communities=("65000:777",),
                operations=(SetPriority(512),),
            ),
        ),
    )
    check = compile_import(INPUTS, IBGP, [migrated])
    tagged = route(communities=(comm("65000:777"),))
    verdict = check(pfx("198.18.1.7/32"), V4, tagged)
    assert (verdict.action, verdict.priority) == (Action.ACCEPT, 512)
    assert check(pfx("198.18.1.7/32"), V4, route()).action == Action.REJECT


@pytest.mark.parametrize(
    ("path", "allow", "loops"),
    [
        ((), 0, False),
        (((SEQ, (64600,)),), 0, False),
        (((SEQ, (NODE_AS,)),), 0, True),
        (((SEQ, (NODE_AS,)),), 1, False),
        (((SEQ, (NODE_AS, 64600, NODE_AS)),), 1, True),
        (((SEQ, (NODE_AS, 64600, NODE_AS)),), 2, False),
        (((SEQ, (64600,)), (SET, (NODE_AS, 64601))), 0, True),
    ],
)
def test_as_path_loops(path, allow, loops):
    assert as_path_loops(path, NODE_AS, allow) is loops


def test_own_next_hop():
    own = frozenset({bytes((198, 19, 0, 1)), bytes.fromhex("fe80" + "00" * 12 + "0001")})
    assert next_hop_is_own(bytes((198, 19, 0, 1)), own)
    assert not next_hop_is_own(bytes((198, 19, 0, 2)), own)
    global_v6 = bytes.fromhex("20010db8" + "00" * 11 + "02")
    assert next_hop_is_own(global_v6 + bytes.fromhex("fe80" + "00" * 12 + "0001"), own)
    assert not next_hop_is_own(global_v6, own)


# --- kernel programming -----------------------------------------------------------------------

KERNEL_INPUTS = CalicoPolicyInputs(
    pools=(
        IpPool("198.18.0.0/16", ipip_mode=EncapMode.ALWAYS),
        IpPool("198.19.0.0/17", ipip_mode=EncapMode.CROSS_SUBNET),
        IpPool("198.19.128.0/18", vxlan_mode=EncapMode.ALWAYS),
        IpPool("198.19.192.0/19"),
        IpPool("2001:db8:1::/48", vxlan_mode=EncapMode.CROSS_SUBNET),
        IpPool("2001:db8:2::/48"),
    ),
    service_cidrs=("198.19.240.0/24",),
    node_networks=("198.19.224.0/24",),
)
ON_SUBNET = bytes((198, 19, 224, 7))
OFF_SUBNET = bytes((198, 19, 225, 7))

KERNEL_CASES = [
    # (prefix, next hop, accept, tunnel)
    ("198.18.5.0/26", OFF_SUBNET, True, "tunl0"),
    ("198.19.1.0/26", ON_SUBNET, True, None),  # CrossSubnet, same subnet: direct
    ("198.19.1.0/26", OFF_SUBNET, True, "tunl0"),
    ("198.19.130.0/26", ON_SUBNET, False, None),  # VXLAN: Felix's
    ("198.19.200.0/26", OFF_SUBNET, True, None),  # no encapsulation
    ("198.19.240.5/32", ON_SUBNET, False, None),  # advertised service range
    ("198.19.230.0/24", ON_SUBNET, True, None),  # outside every pool
    ("2001:db8:1::/122", b"", False, None),
    ("2001:db8:2::/122", b"", True, None),
]


@pytest.mark.parametrize(("prefix", "next_hop", "accept", "tunnel"), KERNEL_CASES)
def test_kernel_programming(prefix, next_hop, accept, tunnel):
    check = compile_kernel_programming(KERNEL_INPUTS)
    family = V6 if ":" in prefix else V4
    verdict = check(pfx(prefix), family, route(next_hop=next_hop))
    assert (verdict.accept, verdict.tunnel) == (accept, tunnel), verdict.reason


def test_kernel_programming_when_felix_owns_ipip():
    inputs = CalicoPolicyInputs(pools=KERNEL_INPUTS.pools, felix_programs_ipip=True)
    check = compile_kernel_programming(inputs)
    assert not check(pfx("198.18.5.0/26"), V4, route()).accept


# --- the CRD ----------------------------------------------------------------------------------


def test_filter_from_crd():
    spec = {
        "exportV4": [
            {
                "action": "Accept",
                "matchOperator": "In",
                "cidr": "198.18.0.0/16",
                "source": "RemotePeers",
            },
            {"action": "Reject", "interface": "*.calico"},
        ],
        "importV4": [
            {
                "action": "Accept",
                "matchOperator": "In",
                "cidr": "198.19.0.0/16",
                "prefixLength": {"min": 30},
                "peerType": "eBGP",
                "communities": {"values": ["65000:100"]},
                "asPathPrefix": [64600, 64601],
                "operations": [
                    {"addCommunity": {"value": "65000:10:20"}},
                    {"prependASPath": {"prefix": [64700]}},
                    {"setPriority": {"value": 512}},
                ],
            },
            {"action": "Reject", "matchOperator": "NotIn", "cidr": "198.19.0.0/16"},
        ],
        "exportV6": [{"action": "Reject", "priority": 512}],
        "importV6": [{"action": "Accept", "matchOperator": "Equal", "cidr": "2001:db8::/64"}],
    }
    flt = filter_from_crd("my-filter", spec)
    assert flt.export_v4[0] == Rule(
        Action.ACCEPT, IN, "198.18.0.0/16", source=RuleSource.REMOTE_PEERS
    )
    assert flt.export_v4[1] == Rule(Action.REJECT, interface="*.calico")
    assert flt.import_v4[0] == Rule(
        Action.ACCEPT,
        IN,
        "198.19.0.0/16",
        PrefixLength(min=30),
        peer_type=PeerType.EBGP,
        communities=("65000:100",),
        as_path_prefix=(64600, 64601),
        operations=(AddCommunity("65000:10:20"), PrependAsPath((64700,)), SetPriority(512)),
    )
    assert flt.import_v4[1].match_operator is NOT_IN
    assert flt.export_v6 == (Rule(Action.REJECT, priority=512),)
    assert flt.import_v6 == (Rule(Action.ACCEPT, EQ, "2001:db8::/64"),)


@pytest.mark.parametrize(
    "spec",
    [
        {"exportV4": [{"action": "Allow"}]},
        {"exportV4": [{"action": "Accept", "cidr": "2001:db8::/32", "matchOperator": "In"}]},
        {"exportV4": [{"action": "Accept", "nextHop": "198.18.0.1"}]},
        {"exportV4": [{"action": "Accept", "operations": [{"setMed": {"value": 1}}]}]},
        {"exportV4": "Accept"},
    ],
)
def test_filter_from_crd_refuses_bad_specs(spec):
    with pytest.raises(ValueError):
        filter_from_crd("bad", spec)


# --- small pieces -----------------------------------------------------------------------------


def test_prefix_limit_warns_once_per_excursion():
    limit = PrefixLimit(100, LimitAction.WARN)
    decisions = [limit.check(n, V4).decision for n in (100, 101, 150, 90, 101)]
    assert decisions == [
        LimitDecision.NOTHING,
        LimitDecision.WARN,
        LimitDecision.NOTHING,
        LimitDecision.NOTHING,
        LimitDecision.WARN,
    ]


@pytest.mark.parametrize(
    ("family", "data"),
    [
        (V4, bytes.fromhex("00010100000064")),
        (V6, bytes.fromhex("00020100000064")),
    ],
)
def test_prefix_limit_cease_carries_rfc4486_data(family, data):
    limit = PrefixLimit(100, LimitAction.CEASE, restart_after=30.0)
    assert limit.check(100, family).decision == LimitDecision.NOTHING
    outcome = limit.check(101, family)
    assert outcome.decision == LimitDecision.CEASE
    assert (outcome.code, outcome.subcode, outcome.data) == (6, 1, data)
    assert outcome.restart_after == 30.0


def test_prefix_set_and_prepend():
    blocks = PrefixSet([pfx("198.18.1.0/26"), pfx("198.18.0.0/16")], V4)
    assert blocks.covering(pfx("198.18.1.5/32")) == pfx("198.18.0.0/16")  # the shortest member
    assert blocks.covering(pfx("198.19.1.5/32")) is None
    assert blocks.covering(pfx("198.18.0.0/15")) is None
    assert prepend_as_path(((SET, (1, 2)),), (3,)) == ((SEQ, (3,)), (SET, (1, 2)))
    assert prepend_as_path((), (3, 4)) == ((SEQ, (3, 4)),)
