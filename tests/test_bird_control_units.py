"""The BIRD front-end's pieces without a network: framing, filter identity, reload plans of BIRD
files, command parsing, route lines of this node's own routes, Calico's parsers.

Data flow: plain function calls. Expected texts come from BIRD 1.6.8, not from Myna: the
``CAPTURED`` lines were printed by BIRD 1.6.8 (``birdc show route all`` over its socket, in
the namespace run that ``test_interop_bird_socket`` automates) for a Calico node's static
block, its eth0 network, a Felix blackhole it learned (proto 80) and a mesh route through a
recursive gateway; Myna renders the same routes from the facts the RIB gives a filter
(``rib.route.Source``: protocol, preference, ``KernelFacts``), here without a daemon (the live
comparison shows the same lines from the running daemon's RIB). The samples for Calico's
parsers are the ones in the comments of Calico's own Go files.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from calico_bird_clients import (
    ClientError,
    bird_ready,
    gr_in_progress,
    scan_peers,
    scan_routes,
    status_fields,
)

from bgpd.bird_config import filter_identity
from bgpd.bird_config.cli import load
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.filter_identity import FunctionKeys, filter_key
from bgpd.bird_control.commands import CommandError, ShowRoute, parse
from bgpd.bird_control.interfaces import Interface, Interfaces, scope_of
from bgpd.bird_control.protocols import _caps, _from_bird
from bgpd.bird_control.replies import Framer, proto_time
from bgpd.bird_control.routes import RouteView, bgp_attribute_lines
from bgpd.config import parse_config
from bgpd.peer_policies import Policies
from bgpd.reload_plan import plan_reload
from kernel_sync.netlink_messages import Link
from rib.route import Destination, KernelFacts, LocalKind, Origin, Route, Source
from speaker.capabilities import (
    AddPathCapability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    RouteRefreshCapability,
)
from speaker.control_messages import Notification
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_connection import ErrorKind, SessionError

# BIRD 1.6.8, `show route all` on a Calico-like node (times are normalised before comparing).
CAPTURED = {
    "static": ["198.19.1.0/26      blackhole [static1 06:23:04] * (200)",
               "\tType: static unicast univ"],
    "direct": ["198.18.0.0/24      dev eth0 [direct1 06:23:04] * (240)",
               "\tType: device unicast univ"],
    "kernel": ["198.19.1.5/32      blackhole [kernel1 06:23:05] * (10)",
               "\tType: inherit unicast univ", "\tKernel.source: 80", "\tKernel.metric: 0"],
    "mesh": ["198.19.2.0/26      via 198.18.0.2 on eth0 [Mesh_198_18_0_2 06:23:07] * (100/0) [i]",
             "\tType: BGP unicast univ", "\tBGP.origin: IGP", "\tBGP.as_path: ",
             "\tBGP.next_hop: 198.18.0.2", "\tBGP.local_pref: 100"],
}  # fmt: skip
_TIME = re.compile(r"\d\d:\d\d:\d\d")

BIRD_FILE = """\
include "functions.cfg";
router id 198.18.0.1;
protocol static {{ route 198.19.1.0/26 blackhole; }}
template bgp mesh {{
  local as 64512;
  connect delay time 1;
}}
protocol bgp Mesh_198_18_0_2 from mesh {{
  neighbor 198.18.0.2 as 64512;
  export filter {{ calico_export(); reject; }};
}}
protocol bgp Mesh_198_18_0_3 from mesh {{
  neighbor 198.18.0.3 as 64512;
  export filter {{ {c_export} }};
}}
"""
FUNCTIONS = """\
function calico_export() {{
  if ( net = {block} ) then {{ accept; }}
}}
"""


def read(tmp: Path, c_export: str = "calico_export(); reject;", block: str = "198.19.1.0/26",
         above: str = "") -> object:  # fmt: skip
    (tmp / "functions.cfg").write_text(FUNCTIONS.format(block=block))
    (tmp / "bird.cfg").write_text(above + BIRD_FILE.format(c_export=c_export))
    return load(str(tmp / "bird.cfg"), ipv6=False)


def test_framing_is_birds_per_client_continuation() -> None:
    framer = Framer()
    assert framer.frame([(1, "BIRD v ready.")]) == b"0001 BIRD v ready.\n"
    assert framer.frame([(1002, "a"), (1002, "b"), (1006, "c"), (0, "")]) == (
        b"1002-a\n b\n1006-c\n0000 \n"
    )
    # BIRD's last_reply spans replies: a reply starting with the code that ended the last one
    # still shows its code (a final line always does), and a part continues the framing.
    assert framer.frame_part([(1007, "x")]) == b"1007-x\n"
    assert framer.frame([(1007, "y"), (0, "")]) == b" y\n0000 \n"


def test_protocol_times_switch_to_the_date_after_20_hours() -> None:
    now = time.time()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", proto_time(now - 19 * 3600, now))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", proto_time(now - 21 * 3600, now))


def test_a_filter_read_again_or_moved_is_the_same_filter(tmp_path: Path) -> None:
    _, first = read(tmp_path)  # type: ignore[misc]
    _, again = read(tmp_path, above="# confd wrote a comment\n\n\n")  # type: ignore[misc]
    export_a = first.peers[0].export_filter
    export_b = again.peers[0].export_filter
    assert export_a.defined_at != export_b.defined_at  # moved by three lines
    assert filter_key(export_a.program) == filter_key(export_b.program)
    plan = plan_reload(first, again)
    assert (plan.kept, plan.reset, plan.refused) == (["198.18.0.2", "198.18.0.3"], [], [])


def test_a_changed_filter_refilters_its_protocol_only(tmp_path: Path) -> None:
    _, before = read(tmp_path)  # type: ignore[misc]
    _, after = read(tmp_path, c_export="calico_export(); accept;")  # type: ignore[misc]
    plan = plan_reload(before, after)
    # BIRD 1.6 (proto_reconfigure): same options, another export filter: re-fed, not restarted.
    assert (plan.kept, plan.reset) == (["198.18.0.2"], [])
    assert plan.filters_only == plan.export_changed == ["198.18.0.3"]
    assert plan.import_changed == [] and not plan.kernel_refeed


def test_a_changed_function_changes_every_filter_calling_it(tmp_path: Path) -> None:
    _, before = read(tmp_path)  # type: ignore[misc]
    _, after = read(tmp_path, block="198.19.1.64/26")  # type: ignore[misc]
    plan = plan_reload(before, after)
    # A block claimed rewrites calico_aggr(): every export filter calling it is re-fed.
    assert (plan.kept, plan.reset) == ([], [])
    assert plan.filters_only == plan.export_changed == ["198.18.0.2", "198.18.0.3"]
    assert plan.static_changed is False


def test_function_keys_kept_between_calls_change_no_verdict(tmp_path: Path) -> None:
    # Policies keeps the called functions' keys between session-ups (one walk per function,
    # not one per peer): the keys, and so BIRD's verdicts above, must stay what they were.
    _, before = read(tmp_path)  # type: ignore[misc]
    _, moved = read(tmp_path, above="# confd wrote a comment\n\n\n")  # type: ignore[misc]
    _, changed = read(tmp_path, block="198.19.1.64/26")  # type: ignore[misc]
    shared: FunctionKeys = {}
    programs = [p.export_filter.program for c in (before, moved, changed) for p in c.peers]
    kept = [filter_key(program, shared) for program in programs]
    assert kept == [filter_key(program) for program in programs]
    assert kept[0] == kept[2] != kept[4]  # moved: the same filter; function changed: another
    # one entry per function object: each config's calico_export, called by both its peers
    assert sorted(known[0].name for known in shared.values()) == ["calico_export"] * 3


def test_a_kept_function_key_saves_the_walk_of_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = read(tmp_path)  # type: ignore[misc]
    programs = [p.export_filter.program for p in config.peers]
    called = programs[0].filter.body[0].call.function  # calico_export, which both peers call
    assert called is not None and called is programs[1].filter.body[0].call.function
    walks = []
    key = filter_identity._key

    def counting(value: object, memo: FunctionKeys) -> object:
        if value is called.body:
            walks.append(value)
        return key(value, memo)

    monkeypatch.setattr(filter_identity, "_key", counting)
    for program in programs:
        filter_key(program)
    assert len(walks) == 2  # a table per call: the body walked for each peer
    shared: FunctionKeys = {}
    for program in programs:
        filter_key(program, shared)
    assert len(walks) == 3  # one table: walked for the first peer only


def test_policies_retargeted_by_a_reload_key_the_new_files_filters_afresh(
    tmp_path: Path,
) -> None:
    _, before = read(tmp_path)  # type: ignore[misc]
    _, after = read(tmp_path, block="198.19.1.64/26")  # type: ignore[misc]
    policies = Policies(before)
    old = policies._identity(before.peers[0].export_filter)
    policies.retarget(after)
    new = policies._identity(after.peers[0].export_filter)
    assert new != old and new == filter_key(after.peers[0].export_filter.program)
    assert len(policies._function_keys) == 1  # the old file's function was let go


def test_static_routes_and_protocol_names_are_compared(tmp_path: Path) -> None:
    _, before = read(tmp_path)  # type: ignore[misc]
    text = (tmp_path / "bird.cfg").read_text()
    text = text.replace("route 198.19.1.0/26", "route 198.19.7.0/26")
    (tmp_path / "bird.cfg").write_text(text.replace("Mesh_198_18_0_3", "Node_198_18_0_3"))
    _, after = load(str(tmp_path / "bird.cfg"), ipv6=False)
    plan = plan_reload(before, after)
    assert plan.static_changed
    # A renamed protocol is another protocol: BIRD stops the old one, starts the new one.
    assert (plan.kept, plan.reset) == (["198.18.0.2"], ["198.18.0.3"])
    assert plan.filters_only == []
    assert "static routes changed" in plan.summary()


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("show route for", (9001, "syntax error")),
        ("hello", (9001, "syntax error")),
        ("show protocols all nosuch", (9002, "nosuch is not a protocol")),
        ("show route protocol nosuch", (9001, "nosuch is not a protocol")),
        ("show route 198.19.2.1/26", (9001, "Invalid prefix")),
        ("show route 198.19.0.0/24 for 198.19.0.1", (9001, "Only one prefix expected")),
        ("show route 2001:db8::/32", (9001, "syntax error")),  # bird reads IPv4 only
        ("restart Mesh_198_18_0_2", (9001, "restart is not supported by Myna")),
        ("configure timeout 30", (9001, "configure timeout is not supported by Myna")),
    ],
)
def test_commands_bird_refuses_get_birds_replies(line: str, reply: tuple[int, str]) -> None:
    with pytest.raises(CommandError) as error:
        parse(line, ipv6=False, protocols={"Mesh_198_18_0_2"})
    assert (error.value.code, error.value.text) == reply


def test_show_route_arguments() -> None:
    command = parse("show route for 198.19.2.5 all protocol Mesh_198_18_0_2 count", False,
                    {"Mesh_198_18_0_2"})  # fmt: skip
    assert command == ShowRoute(
        network=(int(ipaddress.IPv4Address("198.19.2.5")), 32),
        longest_match=True,
        verbose=True,
        protocol="Mesh_198_18_0_2",
        stats=2,
    )


def _view() -> RouteView:
    config = parse_config(
        "router_id: 198.18.0.1\nlocal_as: 64512\ncontrol: {socket: null}\n"
        "peers: [{address: 198.18.0.2, as: 64512, name: Mesh_198_18_0_2, gateway: recursive}]\n"
    )
    daemon = SimpleNamespace(
        config=config, peer_configs={p.address: p for p in config.peers}, sessions=[]
    )
    interfaces = Interfaces(ipv6=False)
    eth0 = Interface(Link(2, "eth0", 0x1 | 0x2 | 0x1000 | 0x10000, 1500))
    eth0.primary = ipaddress.ip_interface("198.18.0.1/24")
    eth0.addresses = [eth0.primary]
    interfaces.interfaces = [eth0]
    protocols = SimpleNamespace(ipv6=False, started=time.time(), protocols=list)
    return RouteView(daemon, protocols, interfaces)  # type: ignore[arg-type]


def _local(kind: LocalKind, dest: Destination, name: str, preference: int, **facts: object
           ) -> Route:  # fmt: skip
    origin = Origin.KERNEL if kind is LocalKind.KERNEL else Origin.STATIC
    source = Source(
        name,
        origin,
        protocol=name,
        preference=preference,
        interface=facts.pop("interface", None),  # type: ignore[arg-type]
        kernel=KernelFacts(kind=kind, dest=dest, **facts),
    )  # type: ignore[arg-type]
    return Route(source, ATTRIBUTES.intern(PathAttributes()))


@pytest.mark.parametrize(
    ("name", "network", "route"),
    [
        ("static", "198.19.1.0/26",
         _local(LocalKind.STATIC, Destination.BLACKHOLE, "static1", 200)),
        ("direct", "198.18.0.0/24",
         _local(LocalKind.DEVICE, Destination.DEVICE, "direct1", 240, interface="eth0")),
        ("kernel", "198.19.1.5/32",
         _local(LocalKind.KERNEL, Destination.BLACKHOLE, "kernel1", 10, protocol=80, metric=0)),
        ("mesh", "198.19.2.0/26",
         Route(Source("198.18.0.2", Origin.BGP, address=int(ipaddress.IPv4Address("198.18.0.2"))),
               ATTRIBUTES.intern(PathAttributes(next_hop=bytes([198, 18, 0, 2]),
                                                local_pref=100)))),
    ],
)  # fmt: skip
def test_route_lines_are_bird_16s(name: str, network: str, route: Route) -> None:
    view = _view()
    protocol = route.source.protocol or "Mesh_198_18_0_2"
    lines = [view.line(network, route, True, protocol)] + [t for _, t in view.details(route)]
    assert [_TIME.sub("T", line) for line in lines] == [
        _TIME.sub("T", line) for line in CAPTURED[name]
    ]


def test_attribute_lines_follow_birds_code_order_and_formats() -> None:
    attrs = PathAttributes(
        origin=2, as_path=((2, (64513, 64514)), (1, (1, 2))), next_hop=bytes(4),
        med=5, atomic_aggregate=True, aggregator=(64513, int(ipaddress.IPv4Address("1.2.3.4"))),
        originator_id=int(ipaddress.IPv4Address("9.9.9.9")),
        cluster_list=(int(ipaddress.IPv4Address("7.7.7.7")),),
    )  # fmt: skip
    assert bgp_attribute_lines(attrs) == [
        "\tBGP.origin: Incomplete",
        "\tBGP.as_path: 64513 64514 { 1 2 }",  # as_path_format: a set in braces, spaced
        "\tBGP.next_hop: 0.0.0.0",
        "\tBGP.med: 5",
        "\tBGP.atomic_aggr: ",
        "\tBGP.aggregator: 1.2.3.4 AS64513",
        "\tBGP.originator_id: 9.9.9.9",
        "\tBGP.cluster_list: 7.7.7.7",
    ]


def test_address_scopes_are_birds() -> None:
    addresses = ("127.0.0.1", "10.1.2.3", "198.18.0.1", "fe80::1", "fd00::1", "2001:db8::1")
    scopes = {a: scope_of(ipaddress.ip_address(a)) for a in addresses}
    assert scopes == {"127.0.0.1": "host", "10.1.2.3": "site", "198.18.0.1": "univ",
                      "fe80::1": "link", "fd00::1": "site", "2001:db8::1": "univ"}  # fmt: skip


# -- Calico's parsers on the samples in their own source comments ---------------------------------


def test_the_ported_parsers_read_calicos_own_samples() -> None:
    # calicoctl/.../node/status.go, scanBIRDPeers' comment
    peers = scan_peers([
        "0001 BIRD 1.5.0 ready.",
        "2002-name     proto    table    state  since       info",
        "1002-kernel1  Kernel   master   up     2016-11-21",
        " device1  Device   master   up     2016-11-21",
        " Mesh_172_17_8_102 BGP      master   up     2016-11-21  Established",
        "0000",
    ])  # fmt: skip
    assert [(p.peer_ip, p.peer_type, p.state, p.bgp_state) for p in peers] == [
        ("172.17.8.102", "node-to-node mesh", "up", "Established")
    ]
    with pytest.raises(ClientError, match="unknown BIRD table output format"):
        scan_peers(["2002-name proto table state since"])
    with pytest.raises(ClientError, match="unexpected output line"):
        scan_peers(["1003-something"])
    # node/pkg/health/bird/bird.go, GRInProgress' comment
    status = [
        "0001 BIRD v0.3.2+birdv1.6.3 ready.", "1000-BIRD v0.3.2+birdv1.6.3",
        "1011-Router ID is 172.18.0.4", " Current server time is 2018-04-03 22:59:51",
        " Last reboot on 2018-04-03 22:59:26", " Last reconfiguration on 2018-04-03 22:59:26",
        "0024-Graceful restart recovery in progress", "   Waiting for 1 protocols to recover",
        "   Wait timer is 215/240", "0013 Daemon is up and running",
    ]  # fmt: skip
    assert gr_in_progress(status)
    assert bird_ready(peers, True, within_threshold=True) == "graceful restart in progress"
    # node/pkg/status/populators/bird_status.go, scanBIRDStatus' comment
    fields = status_fields(status)
    assert (fields["version"], fields["router_id"]) == ("v0.3.2+birdv1.6.3", "172.18.0.4")
    # node/pkg/status/populators/route.go, scanBIRDRoutes' comment
    routes = scan_routes([
        "0001 BIRD v0.3.3+birdv1.6.8 ready.",
        "1007-0.0.0.0/0          via 172.17.0.1 on eth0 [kernel1 20:10:57] * (10)",
        " 192.168.110.128/26 via 172.17.0.5 on eth0 [Mesh_172_17_0_5 20:10:57] * (100/0) [i]",
        " 192.168.162.128/26 blackhole [static1 20:10:56] * (200)",
        " 192.168.162.128/32 dev tunl0 [direct1 20:10:56] * (240)",
        "0000",
    ])  # fmt: skip
    assert [(r.destination, r.gateway, r.interface, r.source_type, r.peer_ip) for r in routes] == [
        ("0.0.0.0/0", "172.17.0.1", "eth0", "Kernel", ""),
        ("192.168.110.128/26", "172.17.0.5", "eth0", "NodeMesh", "172.17.0.5"),
        ("192.168.162.128/26", "N/A", "blackhole", "Static", ""),
        ("192.168.162.128/32", "N/A", "tunl0", "Direct", ""),
    ]


def test_session_errors_read_as_birds_error_classes() -> None:
    # BIRD 1.6.8's words (bgp.c bgp_err_classes, bgp_last_errmsg; packets.c bgp_msg_table,
    # each text found in the unpacked binary by `strings`), for what Myna records.
    from bgpd.bird_control.bird_errors import bird_error  # noqa: PLC0415

    def text(kind: ErrorKind, words: str, code: int | None = None, subcode: int = 0) -> str:
        note = None if code is None else Notification(code, subcode)
        return bird_error(SessionError(kind, words, note))

    connect = "connect failed: [Errno 111] Connect call failed ('198.18.0.9', 179)"
    assert text(ErrorKind.SOCKET, connect) == "Socket: Connection refused"
    assert text(ErrorKind.SOCKET, "connection lost: closed by the peer") == (
        "Socket: Connection closed"
    )
    shutdown = 'NOTIFICATION received: Cease/Administrative Shutdown (6/2): "bye"'
    assert text(ErrorKind.RECEIVED, shutdown, 6, 2) == "Received: Administrative shutdown"
    assert text(ErrorKind.SENT, "hold timer expired: the peer went silent", 4) == (
        "BGP Error: Hold timer expired"
    )
    assert text(ErrorKind.SENT, "bad peer AS", 2, 2) == "BGP Error: Bad peer AS"
    assert text(ErrorKind.RECEIVED, "x", 9, 9) == "Received: Unknown error 9.9"
    assert text(ErrorKind.BFD, "BFD session down") == "Error: BFD session down"
    assert text(ErrorKind.GRACEFUL, "the peer reconnected") == "Error: Graceful restart"
    assert text(ErrorKind.LIMIT, "limit", 6, 1) == "Automatic shutdown: Route limit exceeded"
    assert text(ErrorKind.STOPPED, "stopped by the operator", 6, 2) == ""  # BE_MAN_DOWN
    # bgp_hold_timeout with long-lived graceful restart ready stores no error
    llgr = "hold timer expired: the peer went silent (long-lived graceful restart)"
    assert text(ErrorKind.OTHER, llgr) == ""
    assert bird_error(None) == ""


def test_neighbor_caps_are_the_words_bird_16_prints() -> None:
    # What ExaBGP offers in test_bird_differential (refresh, enhanced refresh, graceful restart
    # for IPv4 unicast, AS4, ADD-PATH receive, extended messages), as BIRD 1.6.8's
    # ``show protocols all`` lists it: no ext-messages.
    offered = (
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
        GracefulRestartCapability(0, 120, ((1, 1, 0),)),
        FourOctetAsCapability(65000),
        AddPathCapability(((1, 1, 1),)),
        ExtendedMessageCapability(),
    )
    assert _caps(offered) == " refresh enhanced-refresh restart-able AS4 add-path-rx"


def test_the_session_line_says_multihop_for_any_multihop_setting() -> None:
    # BIRD 1.6.8 in test_bird_differential (ttl_security/explicit_node): an eBGP protocol with
    # ``ttl security on; multihop 1`` shows "Session: external multihop AS4 add-path-tx".
    text = """
router id 198.18.0.1;
protocol bgp Hop1 { local as 64512; neighbor 198.18.0.2 as 64513; ttl security on; multihop 1; }
protocol bgp Direct { local as 64512; neighbor 198.18.0.3 as 64513; direct; }
protocol bgp Ebgp { local as 64512; neighbor 198.18.0.4 as 64513; }
protocol bgp Ibgp { local as 64512; neighbor 198.18.0.5 as 64512; }
"""
    config = read_bird_config("bird.cfg", text=text)
    assert {p.name: _from_bird(p, False).multihop for p in config.protocols} == {
        "Hop1": True,
        "Direct": False,
        "Ebgp": False,
        "Ibgp": True,
    }
