"""A bird.cfg's filters and protocols drive the RIB as BIRD's would: the wiring, without sockets.

Data flow: each test writes a small Calico-shaped ``bird.cfg`` (Calico's mesh template, its
``calico_kernel_programming``, a static blackhole block; addresses in 198.18.0.0/15), builds
the ``DaemonConfig`` with the BIRD front-end, and hands what ``bgpd.peer_policies`` and
``bgpd.local_routes`` make of it to a sans-I/O ``RibCore`` (``rib_core_harness``) and to a
``FibProgrammer`` fed by hand. What peers receive and what the kernel would get are read back.

The expected values are BIRD 1.6's behaviour for these filters, worked out from its source
(``proto/bgp/attrs.c``: ``bgp_create_attrs``, ``bgp_import_control``; ``nest/rt-table.c``:
``rte_better`` compares preference first) and the filter text; that each filter's verdicts equal
BIRD 1.6's is checked against the binary in ``test_interop_bird_filters``/
``test_bird_filter_oracle_eval``, and the whole daemon against BIRD 1.6 in namespaces in
``test_bird_differential``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from rib_core_harness import CoreBed
from rib_harness import FakeSession, up_event

from bgpd.bird_config.bgp_export import BgpExportContext
from bgpd.bird_config.cli import load
from bgpd.config import DaemonConfig
from bgpd.local_routes import StaticRoutes, kernel_import
from bgpd.peer_policies import Policies, kernel_policy
from kernel_sync.connected_routes import ConnectedRoutes
from kernel_sync.fib_programmer import FibProgrammer, FibSettings
from kernel_sync.kernel_learner import Announcement, kernel_facts
from kernel_sync.netlink_codes import RouteType
from kernel_sync.netlink_messages import Address
from kernel_sync.route_messages import KernelRoute
from rib.loc_rib import Change
from rib.rib_events import Originate
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, Source
from speaker.nlri import prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.wire_codes import Family

V4 = Family.IPV4_UNICAST
LP_FROM_KERNEL = 2147483647 - 1024  # the export filter's bgp_local_pref for a local route

BIRD_CFG = """
router id 198.18.0.1;
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
  if (net ~ 198.19.128.0/17) then { reject; }
  accept;
}
function calico_export_to_bgp_peers(bool internal_peer) {
  if (internal_peer) then {
    if (defined(ifname)) then {
      if ((ifname ~ "*.cali") || (ifname ~ "tunl0")) then { reject; }
    }
  }
  if ( net = 198.19.1.0/26 ) then { accept; }
  if ( net ~ 198.19.1.0/26 && krt_metric < 1024 ) then { accept; }
  if ( net ~ 198.19.1.0/26 ) then { reject; }
  if (net ~ 198.19.0.0/16) then { accept; }
}
protocol kernel {
  learn;
  persist;
  scan time 2;
  import all;
  export filter calico_kernel_programming;
  graceful restart;
  merge paths on;
}
protocol device { scan time 2; }
protocol direct { interface -"cali*", "*"; }
protocol static {
  route 198.19.1.0/26 blackhole;
  route 198.18.10.4/32 via 198.18.0.254;
}
template bgp bgp_template {
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
}
"""

PEER = """
protocol bgp Mesh_198_18_0_{n} from bgp_template {{
  neighbor 198.18.0.{n} as 64512;
  source address 198.18.0.1;
  multihop;
  import filter {{
    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then
      preference = 200;
    accept;
  }};
  export filter {{
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {{
      krt_metric = 2147483647 - bgp_local_pref;
    }} else {{
      if (!defined(krt_metric)) then {{ krt_metric = 1024; }}
      bgp_local_pref = 2147483647 - krt_metric;
    }}
    calico_export_to_bgp_peers(true);
    reject;
  }};
}}
"""
BIRD_CFG += PEER.format(n=2) + PEER.format(n=3)


@pytest.fixture
def config(tmp_path: Path) -> DaemonConfig:
    (tmp_path / "bird.cfg").write_text(BIRD_CFG)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        return load("bird.cfg", False)[1]
    finally:
        os.chdir(old)


def p(text: str) -> int:
    return prefix_from_text(text)


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def mesh(config: DaemonConfig) -> tuple[CoreBed, Policies]:
    """The node's RIB core with its two mesh peers up, policies from the config."""
    bed = CoreBed()
    policies = Policies(config)
    for peer in config.peers:
        factory = policies.export_factory(peer)
        session = bed.add(
            peer.name or peer.address,
            peer.address,
            import_policy=policies.import_policy(peer),
            # the factory reads only the peer's OPEN; a throwaway session keeps ``s`` as it is
            export=lambda s, f=factory: f(s, up_event(FakeSession(s.name), s.name)),  # type: ignore[misc]
            protocol=peer.name or "",
            preference=peer.preference,
        )
        session.local = "198.18.0.1"
    for peer in config.peers:
        bed.up(peer.name or peer.address)
    bed.run()
    return bed, policies


def originate_into(bed: CoreBed) -> StaticRoutes:
    def originate(family: Family, prefixes: list[int], attrs: PathAttributes | None,
                  origin: Origin, **kw: object) -> None:  # fmt: skip
        bed.handle(Originate(family, tuple(prefixes), attrs, origin, **kw))  # type: ignore[arg-type]

    return StaticRoutes(originate)


def test_the_front_end_gives_bird_preferences_and_static_routes(config: DaemonConfig) -> None:
    """BIRD 1.6's defaults: kernel 10, static 200, direct 240, BGP 100."""
    assert config.kernel.preference == 10
    assert config.direct is not None and config.direct.preference == 240
    assert [(r.prefix, r.kind, r.preference) for r in config.static_routes] == [
        ("198.19.1.0/26", "blackhole", 200),
        ("198.18.10.4/32", "via", 200),
    ]
    assert [peer.preference for peer in config.peers] == [100, 100]
    assert config.families == ("ipv4",)


def test_a_static_block_goes_to_every_mesh_peer_as_bird_sends_it(config: DaemonConfig) -> None:
    """bgp_create_attrs for a static blackhole to an iBGP peer: ORIGIN IGP, empty AS_PATH,
    NEXT_HOP our source address; the export filter sets LOCAL_PREF 2^31-1 - 1024 (krt_metric
    undefined on a static route: 1024). The via route is outside the pool: rejected."""
    bed, _ = mesh(config)
    originate_into(bed).apply(config.static_routes)
    bed.run()
    for name in ("Mesh_198_18_0_2", "Mesh_198_18_0_3"):
        table = bed[name].table()
        assert set(table) == {p("198.19.1.0/26")}
        attrs = table[p("198.19.1.0/26")]
        assert attrs.origin == 0
        assert attrs.as_path == ()
        assert attrs.next_hop == ipaddress.IPv4Address("198.18.0.1").packed
        assert attrs.local_pref == LP_FROM_KERNEL
        assert attrs.med is None


def test_mesh_peers_with_the_same_inline_filters_share_one_update_group(
    config: DaemonConfig,
) -> None:
    """Calico writes the filters into each peer's protocol; one encode serves them all."""
    bed, _ = mesh(config)
    assert len(bed.core.groups) == 1


def test_ibgp_routes_are_not_sent_to_ibgp_peers_and_preference_comes_from_the_filter(
    config: DaemonConfig,
) -> None:
    """bgp_import_control refuses an iBGP route towards an iBGP non-client; the import filter
    gives a LOCAL_PREF above 2^31-1 - 1024 preference 200, others keep BGP's 100."""
    bed, _ = mesh(config)
    bed.announce("Mesh_198_18_0_2", [p("198.19.2.0/26")], local_pref=LP_FROM_KERNEL)
    bed.announce("Mesh_198_18_0_2", [p("198.19.3.0/26")], local_pref=LP_FROM_KERNEL + 1)
    bed.run()
    assert bed["Mesh_198_18_0_3"].table() == {}
    two = bed.core.loc.lookup(V4, p("198.19.2.0/26"))[0]
    three = bed.core.loc.lookup(V4, p("198.19.3.0/26"))[0]
    assert two is not None and two.preference == 0 and two.source.preference == 100
    assert three is not None and three.preference == 200


def test_our_own_static_block_beats_a_peer_route_for_it_unless_the_peer_has_preference(
    config: DaemonConfig,
) -> None:
    """rte_better: static 200 over BGP 100 for the node's own block."""
    bed, _ = mesh(config)
    originate_into(bed).apply(config.static_routes)
    bed.announce("Mesh_198_18_0_2", [p("198.19.1.0/26")], local_pref=100)
    bed.run()
    best = bed.core.loc.lookup(V4, p("198.19.1.0/26"))[0]
    assert best is not None and best.source.origin == Origin.STATIC


def test_the_kernel_export_filter_sets_metric_and_refuses_what_felix_owns(
    config: DaemonConfig,
) -> None:
    """calico_kernel_programming: krt_metric 2^31-1 - LOCAL_PREF for a BGP route (1024 for
    a mesh route), rejects the range Felix programs; static routes are written as BIRD's
    kernel protocol writes them (blackhole; via the gateway), learned kernel routes never."""
    policy = kernel_policy(config, Policies(config).inputs)
    peer = Source("198.18.0.2", Origin.BGP, address=ip("198.18.0.2"), protocol="Mesh_198_18_0_2")
    bgp = Route(peer, ATTRIBUTES.intern(PathAttributes(next_hop=bytes([198, 18, 0, 2]),
                                                       local_pref=LP_FROM_KERNEL)))  # fmt: skip
    assert policy(p("198.19.2.0/26"), V4, bgp) == (True, None, 1024)
    assert policy(p("198.19.200.0/26"), V4, bgp)[0] is False

    fib = FibProgrammer(None, FibSettings(metric=32), policy, ifindex=lambda _n: 5)  # type: ignore[arg-type]
    static = Source(
        "static", Origin.STATIC, protocol="static1", preference=200,
        kernel=KernelFacts(kind=LocalKind.STATIC, dest=Destination.BLACKHOLE),
    )  # fmt: skip
    block = Route(static, ATTRIBUTES.intern(PathAttributes()))
    want = fib.desired(Change(V4, p("198.19.1.0/26"), None, (), block, (block,)))
    assert want is not None and want.type == RouteType.BLACKHOLE and want.priority == 32
    via = Source(
        "static", Origin.STATIC, protocol="static1", preference=200,
        kernel=KernelFacts(kind=LocalKind.STATIC, dest=Destination.ROUTER,
                           gateway=ip("198.18.0.254")),
    )  # fmt: skip
    routed = Route(via, ATTRIBUTES.intern(PathAttributes()))
    want = fib.desired(Change(V4, p("198.18.10.4/32"), None, (), routed, (routed,)))
    assert want is not None and want.gateway == bytes([198, 18, 0, 254])
    assert want.type == RouteType.UNICAST
    felix_route = KernelRoute(
        socket.AF_INET, p("198.19.5.0/26"), protocol=80, type=RouteType.BLACKHOLE
    )
    learned = Source("kernel", Origin.KERNEL, kernel=kernel_facts(felix_route))
    felix = Route(learned, ATTRIBUTES.intern(PathAttributes()))
    assert fib.desired(Change(V4, p("198.19.5.0/26"), None, (), felix, (felix,))) is None
    device = Source("direct", Origin.STATIC, interface="eth0",
                    kernel=KernelFacts(kind=LocalKind.DEVICE, dest=Destination.DEVICE))  # fmt: skip
    connected = Route(device, ATTRIBUTES.intern(PathAttributes()))
    # BIRD's kernel protocol leaves device routes out unless "device routes" is on
    assert fib.desired(Change(V4, p("198.18.0.0/24"), None, (), connected, (connected,))) is None


def test_kernel_routes_are_described_as_bird_sees_them() -> None:
    """krt: a blackhole is RTD_BLACKHOLE, a route with a gateway RTD_ROUTER with ``gw``, one
    without RTD_DEVICE; krt_metric is the kernel's priority, krt_source its protocol."""
    hole = kernel_facts(KernelRoute(socket.AF_INET, p("198.19.5.0/26"), protocol=80,
                                    type=RouteType.BLACKHOLE))  # fmt: skip
    assert (hole.dest, hole.protocol, hole.metric, hole.kind) == (
        Destination.BLACKHOLE, 80, 0, LocalKind.KERNEL)  # fmt: skip
    gateway = bytes([198, 18, 0, 9])
    routed = kernel_facts(
        KernelRoute(socket.AF_INET, p("198.20.0.0/24"), protocol=4, priority=100,
                    gateway=gateway, oif=2)
    )  # fmt: skip
    assert (routed.dest, routed.gateway, routed.metric) == (
        Destination.ROUTER, ip("198.18.0.9"), 100)  # fmt: skip
    device = kernel_facts(KernelRoute(socket.AF_INET, p("198.20.1.0/24"), protocol=4, oif=2))
    assert device.dest == Destination.DEVICE


def test_a_kernel_import_filter_refuses_and_edits(tmp_path: Path) -> None:
    """The kernel protocol's import filter sees the learned route's facts."""
    text = BIRD_CFG.replace(
        "  import all;\n  export filter calico_kernel_programming;",
        "  import filter { if krt_source = 80 then { preference = 50; accept; } reject; };\n"
        "  export filter calico_kernel_programming;",
    )
    (tmp_path / "bird.cfg").write_text(text)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        config = load("bird.cfg", False)[1]
    finally:
        os.chdir(old)
    assert config.kernel.import_filter is not None
    describe = kernel_import(config.kernel.import_filter)
    assert describe is not None
    plain = Announcement(ATTRIBUTES.intern(PathAttributes()), KernelFacts(protocol=80, metric=0),
                         None, "kernel1", 10)  # fmt: skip
    felix = KernelRoute(socket.AF_INET, p("198.19.5.0/26"), protocol=80, type=RouteType.BLACKHOLE)
    described = describe((V4, felix.prefix), felix, plain)
    assert described is not None and described.preference == 50
    other = plain._replace(kernel=KernelFacts(protocol=4, metric=0))
    assert describe((V4, felix.prefix), felix, other) is None


def test_connected_networks_follow_birds_direct_rules() -> None:
    """rt-dev.c: first matching pattern decides, ``-`` excludes; secondary and link/host-scope
    addresses give no route; only interfaces that are up."""
    names = {1: "lo", 2: "eth0", 3: "cali123", 4: "eth1"}
    up = {1: True, 2: True, 3: True, 4: False}
    said: list[tuple[list[int], bool, str | None]] = []

    def originate(_f: Family, prefixes: list[int], attrs: PathAttributes | None,
                  _o: Origin, **kw: object) -> None:  # fmt: skip
        said.append((prefixes, attrs is not None, kw["interface"]))  # type: ignore[arg-type]

    direct = ConnectedRoutes(
        originate, ("-cali*", "*"), link_name=names.get, link_up=lambda i: up[i],
        families=frozenset({V4, Family.IPV6_UNICAST}),
    )  # fmt: skip
    v4, v6 = socket.AF_INET, socket.AF_INET6
    addresses = [
        Address(v4, 1, bytes([127, 0, 0, 1]), 8, scope=254),  # host scope
        Address(v4, 2, bytes([198, 18, 0, 1]), 24),
        Address(v4, 2, bytes([198, 18, 0, 7]), 24, flags=0x01),  # secondary
        Address(v4, 3, bytes([198, 18, 9, 1]), 32),  # cali*: excluded
        Address(v4, 4, bytes([198, 18, 4, 1]), 24),  # down
        Address(v6, 2, ipaddress.IPv6Address("2001:db8::1").packed, 64),
        Address(v6, 2, ipaddress.IPv6Address("fe80::1").packed, 64, scope=253),  # link scope
    ]
    got = direct.connected(addresses)
    assert got == {
        (V4, p("198.18.0.0/24"), "eth0"),
        (Family.IPV6_UNICAST, p("2001:db8::/64"), "eth0"),
    }
    direct.apply(got)
    direct.apply({(V4, p("198.18.0.0/24"), "eth0")})
    assert said[-1] == ([p("2001:db8::/64")], False, "eth0")


def test_the_ipv4_and_ipv6_daemons_of_one_node_keep_to_their_own_family() -> None:
    """bird and bird6 both write protocol 12 routes into the main table: each owns only its
    family's, or one would adopt (and later delete) the other's."""
    v4_only = FibSettings(families=frozenset({socket.AF_INET}))
    fib = FibProgrammer(None, v4_only)  # type: ignore[arg-type]
    ours4 = KernelRoute(socket.AF_INET, p("198.19.2.0/26"), gateway=bytes([198, 18, 0, 2]))
    ours6 = KernelRoute(socket.AF_INET6, p("2001:db8:1::/122"),
                        gateway=ipaddress.IPv6Address("2001:db8::2").packed)  # fmt: skip
    fib.adopt([ours4, ours6])
    assert fib.adopted == {(V4, ours4.prefix)}


def test_a_route_without_local_pref_gets_birds_default_before_the_import_filter(
    config: DaemonConfig,
) -> None:
    """BIRD 1.6 in test_bird_differential: an eBGP peer's route (no LOCAL_PREF) is sent to
    iBGP peers with LOCAL_PREF 100 and written to the kernel at 2147483647 - 100, as
    calico_kernel_programming reads bgp_local_pref = 100 (bgp_decode_attrs attaches the
    default local pref to every received route lacking one)."""
    policies = Policies(config)
    peer = config.peers[0]
    source = Source(peer.address, Origin.BGP, address=ip(peer.address), protocol=peer.name or "")
    bare = Route(source, ATTRIBUTES.intern(PathAttributes(next_hop=bytes([198, 18, 0, 2]),
                                                          as_path=((2, (64999,)),))))  # fmt: skip
    attrs = policies.import_policy(peer)(V4, p("198.19.2.0/26"), bare)
    assert isinstance(attrs, PathAttributes) and attrs.local_pref == 100
    kept = Route(source, attrs)
    assert kernel_policy(config, policies.inputs)(p("198.19.2.0/26"), V4, kept) == (
        True,
        None,
        2147483547,
    )
    # a route that has one keeps it
    high = bare._replace(attrs=ATTRIBUTES.intern(bare.attrs._replace(local_pref=7)))
    assert policies.import_policy(peer)(V4, p("198.19.2.0/26"), high) is high.attrs


def test_a_reload_reuses_what_the_same_filters_compiled_to(tmp_path: Path) -> None:
    """A file read again (confd rewrote it, a line moved) compiles to the same export functions
    for the same filters, so peers kept across the reload and peers re-filtered to the same
    text stay in one update group; a changed filter gets its own."""
    (tmp_path / "bird.cfg").write_text(BIRD_CFG)
    (tmp_path / "moved.cfg").write_text("# confd wrote a comment\n\n" + BIRD_CFG)
    changed = BIRD_CFG.replace(
        "calico_export_to_bgp_peers(true);\n    reject;",
        "calico_export_to_bgp_peers(true);\n    accept;",
        1,
    )
    assert changed != BIRD_CFG
    (tmp_path / "changed.cfg").write_text(changed)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        first, moved, other = (
            load(name, False)[1] for name in ("bird.cfg", "moved.cfg", "changed.cfg")
        )
    finally:
        os.chdir(old)
    context = BgpExportContext(
        internal=True,
        local_as=64512,
        source_address=socket.inet_aton("198.18.0.1"),
        next_hop_self=False,
        next_hop_keep=False,
        rr_client=False,
        cluster_id=None,
        router_id=int(ipaddress.IPv4Address("198.18.0.1")),
        peer_llgr_aware=False,
    )
    before = Policies(first)

    def export(policies: Policies, config: DaemonConfig) -> object:
        bird = config.peers[0].export_filter
        assert bird is not None
        return policies.bird_export(bird, context)

    original = export(before, first)  # what the running peers' groups use
    assert export(Policies(moved, reuse=before), moved) is original
    assert export(Policies(moved), moved) is not original  # compiled anew
    assert export(Policies(other, reuse=before), other) is not original
