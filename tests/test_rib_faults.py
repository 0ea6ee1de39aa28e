"""The route-correctness faults a review of the RIB found (issue 16), each shown by a test.

Each test failed on commit abb4062 (the RIB before the sans-I/O rebuild); the failure is named in
its docstring. Expected values come from the RFC text cited, or from what BIRD does (named).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace

from originate_recorder import OriginateRecorder
from rib_harness import (
    LOCAL_AS,
    V4,
    FakeSession,
    announce,
    capabilities,
    export_settings,
    settle,
    up_event,
)
from uvloop_runner import on_uvloop

from bgpd.config import Peer
from bgpd.daemon import capabilities_for
from kernel_sync.fib_programmer import FibProgrammer
from kernel_sync.kernel_learner import KernelLearner, LearnFilter
from kernel_sync.netlink_codes import MessageType, RouteProtocol, RouteType
from kernel_sync.netlink_messages import Header
from kernel_sync.route_messages import KernelRoute
from reflector.rules import PeerRole, Reflection
from rib.decision import DecisionOptions
from rib.loc_rib import Change
from rib.rib_task import Rib
from rib.route import Origin, Route, Source
from speaker.capabilities import (
    Capability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
)
from speaker.nlri import prefix_from_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import SessionDown
from speaker.update_message import Unreach, Update
from speaker.wire_codes import WellKnownCommunity

CLUSTER = int(ipaddress.IPv4Address("198.19.255.1"))
P = prefix_from_text("198.19.7.0/26")


def reflector_bed(names: list[str]) -> tuple[Rib, dict[str, FakeSession]]:
    """A reflector (router id 198.18.0.1) and iBGP clients named by their address's last octet."""
    rib = Rib(LOCAL_AS, int(ipaddress.IPv4Address("198.18.0.1")), cluster_id=CLUSTER)
    sessions = {}
    for name in names:
        session = FakeSession(f"198.18.0.{name}")
        sessions[name] = session

        def export(s: object, up: object) -> object:
            return replace(
                export_settings(s, up),  # type: ignore[arg-type]
                reflect=Reflection(CLUSTER, PeerRole.CLIENT),
            )

        rib.add_peer(session, export, rr_client=True)  # type: ignore[arg-type]
    rib.start()
    for session in sessions.values():
        rib.session_up(session, up_event(session, session.name))
    return rib, sessions


def withdrawal(prefixes: list[int]) -> tuple[Update, ...]:
    return (Update(unreach=(Unreach(V4, tuple(prefixes)),)),)


@on_uvloop
async def test_a_client_holds_nothing_once_every_announcer_withdrew() -> None:
    """Abb4062: client A still held P via B (the one-source batch skipped A's withdrawal).

    BIRD's rule for what a peer holds from us: the best route, unless it came from that peer
    (``bgp_preexport``: "Do not export routes to the originating peer"), in which case nothing.
    """
    rib, peers = reflector_bed(["2", "3"])
    a, b = peers["2"], peers["3"]  # A has the lower router id: its route wins the tie
    rib.updates(b, announce(b, [P], b.name, local_pref=100))
    await settle(rib)
    assert set(a.table()) == {P} and b.table() == {}
    rib.updates(a, announce(a, [P], a.name, local_pref=100))
    await settle(rib)
    assert a.table() == {}  # the best is A's own now: what A held via B is withdrawn
    assert set(b.table()) == {P}
    rib.updates(b, withdrawal([P]))
    await settle(rib)
    assert a.table() == {} and set(b.table()) == {P}
    rib.updates(a, withdrawal([P]))
    await settle(rib)
    assert a.table() == {} and b.table() == {}
    await rib.close()


def gr_capabilities(families_flags: tuple[tuple[int, int, int], ...] | None) -> tuple[
    Capability, ...
]:  # fmt: skip
    caps: list[Capability] = [MultiprotocolCapability(1, 1), FourOctetAsCapability(LOCAL_AS)]
    if families_flags is not None:
        caps.append(GracefulRestartCapability(0, 120, families_flags))
    return tuple(caps)


async def _stale_then_back(theirs: tuple[Capability, ...]) -> Rib:
    """A GR peer announces P, drops gracefully, and comes back with ``theirs`` in its OPEN."""
    rib = Rib(LOCAL_AS, int(ipaddress.IPv4Address("198.18.0.1")))
    peer = FakeSession("198.18.0.2")
    rib.add_peer(peer, export_settings)
    rib.start()
    gr = capabilities(gr=True)
    rib.session_up(peer, up_event(peer, peer.name, ours=gr, theirs=gr))
    rib.updates(peer, announce(peer, [P], peer.name, local_pref=100))
    await settle(rib)
    rib.session_down(peer, SessionDown("test", True))
    await settle(rib)
    assert rib.view.lookup(V4, P)[0] is not None  # kept, stale
    rib.session_up(peer, up_event(peer, peer.name, ours=gr, theirs=theirs))
    await settle(rib)
    return rib


@on_uvloop
async def test_stale_routes_go_at_once_when_the_peer_returns_without_graceful_restart() -> None:
    """RFC 4724 4.2: "if the Graceful Restart Capability is not received in the re-established
    session at all, then the Receiving Speaker MUST immediately remove all the stale routes".
    Abb4062 kept them until End-of-RIB.
    """
    rib = await _stale_then_back(gr_capabilities(None))
    assert rib.view.lookup(V4, P)[0] is None
    await rib.close()


@on_uvloop
async def test_stale_routes_go_at_once_when_the_forwarding_bit_is_clear() -> None:
    """RFC 4724 4.2: "If the F bit for a specific address family is not set ... MUST
    immediately remove all the stale routes from the peer ... for that address family"."""
    rib = await _stale_then_back(gr_capabilities(((1, 1, 0),)))
    assert rib.view.lookup(V4, P)[0] is None
    await rib.close()


@on_uvloop
async def test_stale_routes_go_at_once_when_the_family_is_not_listed() -> None:
    """RFC 4724 4.2: "... or if a specific address family is not included in the newly received
    Graceful Restart Capability" (here only IPv6 is listed)."""
    rib = await _stale_then_back(gr_capabilities(((2, 1, 0x80),)))
    assert rib.view.lookup(V4, P)[0] is None
    await rib.close()


@on_uvloop
async def test_stale_routes_stay_until_end_of_rib_when_graceful_restart_is_back() -> None:
    """The counterpart: F bit set for the family, so the stale route waits for End-of-RIB."""
    rib = await _stale_then_back(gr_capabilities(((1, 1, 0x80),)))
    assert rib.view.lookup(V4, P)[0] is not None
    await rib.close()


def test_long_lived_graceful_restart_is_advertised_only_with_graceful_restart() -> None:
    """RFC 9494 4.1 ("... MUST NOT advertise the LLGR Capability without also advertising the
    Graceful Restart Capability"); abb4062 advertised LLGR alone when GR was off."""
    peer = Peer.model_validate(
        {"address": "198.18.0.2", "as": LOCAL_AS, "graceful_restart": False,
         "long_lived_stale_time": 3600}
    )  # fmt: skip
    caps = capabilities_for(peer, LOCAL_AS, restarting=False)
    assert not any(isinstance(c, LongLivedGracefulRestartCapability) for c in caps)
    assert not any(isinstance(c, GracefulRestartCapability) for c in caps)


@on_uvloop
async def test_a_received_llgr_stale_route_is_least_preferred_and_kept_from_non_llgr_peers() -> (
    None
):
    """RFC 9494 4.3: a route carrying LLGR_STALE is treated as least preferred, and is not
    advertised to a peer that did not advertise the LLGR capability. Abb4062 ranked it by its
    attributes (LOCAL_PREF 300 won) and sent it to everybody."""
    rib = Rib(LOCAL_AS, int(ipaddress.IPv4Address("198.18.0.1")))
    a, b, c = (FakeSession(f"198.18.0.{n}") for n in (2, 3, 4))
    for session in (a, b, c):
        rib.add_peer(session, export_settings)
    rib.start()
    for session, asn in ((a, 64999), (b, 64998), (c, LOCAL_AS)):
        rib.session_up(session, up_event(session, session.name, asn=asn))
    stale = (int(WellKnownCommunity.LLGR_STALE),)
    rib.updates(a, announce(a, [P], a.name, as_path=((2, (64999,)),), communities=stale,
                            local_pref=300))  # fmt: skip
    await settle(rib)
    assert P not in c.table()  # c did not advertise LLGR
    rib.updates(b, announce(b, [P], b.name, as_path=((2, (64998, 1, 2)),)))
    await settle(rib)
    best, _ = rib.view.lookup(V4, P)
    assert best is not None and best.source.name == b.name
    assert c.table()[P].next_hop == bytes([198, 18, 0, 3])
    await rib.close()


@on_uvloop
async def test_the_default_local_pref_sent_to_ibgp_comes_from_the_decision_options() -> None:
    """Abb4062 wrote LOCAL_PREF 100 whatever ``DecisionOptions.default_local_pref`` said; the
    decision process and the UPDATEs must agree on the default (BIRD: ``default bgp_local_pref``).
    """
    rib = Rib(
        LOCAL_AS,
        int(ipaddress.IPv4Address("198.18.0.1")),
        DecisionOptions(default_local_pref=250),
    )
    ebgp, ibgp = FakeSession("198.18.0.2"), FakeSession("198.18.0.3")
    rib.add_peer(ebgp, export_settings)
    rib.add_peer(ibgp, export_settings)
    rib.start()
    rib.session_up(ebgp, up_event(ebgp, ebgp.name, asn=64999))
    rib.session_up(ibgp, up_event(ibgp, ibgp.name))
    rib.updates(ebgp, announce(ebgp, [P], ebgp.name, as_path=((2, (64999,)),)))
    await settle(rib)
    assert ibgp.table()[P].local_pref == 250
    await rib.close()


def test_an_ipv4_route_with_an_ipv6_next_hop_is_not_cut_to_four_octets() -> None:
    """RFC 8950: an IPv4 route may carry an IPv6 next hop. Abb4062 programmed the first four
    octets of the IPv6 address as an IPv4 gateway (2001:db8::2 became 32.1.13.184)."""
    fib = FibProgrammer(writer=None, ifindex=lambda _name: 7)  # type: ignore[arg-type]
    source = Source("2001:db8::2", Origin.BGP, router_id=2)
    next_hop = ipaddress.IPv6Address("2001:db8::2").packed
    route = Route(source, ATTRIBUTES.intern(PathAttributes(next_hop=next_hop)))
    want = fib.desired(Change(V4, P, None, (), route, (route,)))
    if want is not None:  # programmed: through the IPv6 gateway (RTA_VIA), never a cut one
        gateways = [want.gateway, *(hop.gateway for hop in want.multipath)]
        assert next_hop in gateways
        assert next_hop[:4] not in gateways


def _kernel_route(priority: int, protocol: int, kind: int = RouteType.BLACKHOLE) -> KernelRoute:
    return KernelRoute(socket.AF_INET, P, protocol=protocol, type=kind, priority=priority)


def test_a_kernel_route_replaced_by_one_the_filter_does_not_select_is_withdrawn() -> None:
    """BIRD's kernel protocol imports the route the kernel holds now: Felix's blackhole replaced
    (same table, metric) by a route the learn filter does not select is no longer this node's.
    Abb4062 kept announcing it."""
    rib = OriginateRecorder()
    learner = KernelLearner(rib.originate)
    new = Header(0, MessageType.NEWROUTE, 0, 0, 0)
    learner.on_kernel(new, _kernel_route(0, 80))
    assert rib.now == {P}
    learner.on_kernel(new, _kernel_route(0, int(RouteProtocol.BOOT), RouteType.UNICAST))
    assert rib.now == set()


def test_deleting_one_of_two_selected_kernel_routes_keeps_the_prefix() -> None:
    """Two selected routes for one prefix (metrics 0 and 100): deleting one leaves the other, so
    the prefix stays announced, now as the metric-100 route (BIRD's krt_learn announces the
    lowest metric: krt_metric 100 is what filters read then). Abb4062 withdrew it."""
    rib = OriginateRecorder()
    learner = KernelLearner(rib.originate, LearnFilter())
    new = Header(0, MessageType.NEWROUTE, 0, 0, 0)
    gone = Header(0, MessageType.DELROUTE, 0, 0, 0)
    learner.on_kernel(new, _kernel_route(0, 80))
    learner.on_kernel(new, _kernel_route(100, 80))
    assert [f.metric for f in rib.facts(P) if f is not None] == [0]
    learner.on_kernel(gone, _kernel_route(0, 80))
    assert rib.now == {P}
    assert rib.gaps == 0  # the metric-100 route was announced before the other was withdrawn
    assert [f.metric for f in rib.facts(P) if f is not None] == [100]
    learner.on_kernel(gone, _kernel_route(100, 80))
    assert rib.now == set()
