"""RFC 4456 route reflection in the RIB, without sockets: who gets which route, ORIGINATOR_ID and
CLUSTER_LIST, loop checks on receipt and their log, client-to-client off, ADD-PATH, one encoding
per update group; and the config that turns it on.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import replace

import pytest
from rib_harness import (
    LOCAL_AS,
    V4,
    FakeSession,
    announce,
    capabilities,
    end_of_rib,
    export_settings,
    settle,
    up_event,
)
from uvloop_runner import on_uvloop

from bgpd.config import ConfigError, parse_config
from bgpd.peer_policies import reflection_for
from reflector.loop_check import LoopCheck, LoopLog, LoopReason
from reflector.rules import PeerRole, Reflection
from rib.adj_rib_out import ExportSettings
from rib.rib_task import Rib
from rib.route import Origin, Source
from speaker.nlri import prefix_from_text
from speaker.path_attributes import PathAttributes
from speaker.update_message import Unreach, Update

RR = "198.18.0.1"  # the reflector's router id (and its address towards every peer)
CLUSTER = "198.19.255.1"
EXTERNAL_AS = 64999


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def block(n: int) -> int:
    """198.19.n.0/26."""
    return prefix_from_text(f"198.19.{n}.0/26")


Export = Callable[[object, object], ExportSettings]


def settings(role: PeerRole | None, client_to_client: bool = True, **extra: object) -> Export:
    """The export settings the daemon builds for an iBGP peer of a reflector (role None: eBGP)."""

    def export(session: object, up: object) -> ExportSettings:
        reflect = None if role is None else Reflection(ip(CLUSTER), role, client_to_client)
        return replace(export_settings(session, up), reflect=reflect, **extra)  # type: ignore[arg-type]

    return export


class Bed:
    """A reflector RIB and its peers by name: c* clients, n* non-clients, e* eBGP peers.

    Peer ``x`` with number N has address and router id 198.18.0.N and next hop 198.18.0.N.
    """

    def __init__(
        self,
        peers: dict[str, int],
        client_to_client: bool = True,
        add_path: frozenset[str] = frozenset(),
        add_path_settings: dict[str, object] | None = None,
        cluster_id: str | None = CLUSTER,
    ) -> None:
        self.rib = Rib(LOCAL_AS, ip(RR), cluster_id=None if cluster_id is None else ip(cluster_id))
        self.numbers = peers
        self.sessions: dict[str, FakeSession] = {}
        for name, number in peers.items():
            session = FakeSession(f"198.18.0.{number}")
            self.sessions[name] = session
            role = {"c": PeerRole.CLIENT, "n": PeerRole.NON_CLIENT}.get(name[0])
            extra = (add_path_settings or {}) if name in add_path else {}
            self.rib.add_peer(
                session,
                settings(role, client_to_client, **extra),
                rr_client=name.startswith("c"),
            )
        self.rib.start()
        for name, session in self.sessions.items():
            caps = capabilities(add_path=3) if name in add_path else None
            asn = EXTERNAL_AS if name.startswith("e") else LOCAL_AS
            self.rib.session_up(
                session, up_event(session, session.name, asn=asn, ours=caps, theirs=caps)
            )

    def __getitem__(self, name: str) -> FakeSession:
        return self.sessions[name]

    def announce(self, name: str, prefixes: list[int], **fields: object) -> None:
        """``name`` announces ``prefixes`` with its own address as next hop."""
        session = self.sessions[name]
        if name.startswith("e"):
            fields.setdefault("as_path", ((2, (EXTERNAL_AS,)),))
        else:
            fields.setdefault("local_pref", 100)
        self.rib.updates(session, announce(session, prefixes, session.name, **fields))

    def withdraw(self, name: str, prefixes: list[int]) -> None:
        self.rib.updates(self.sessions[name], (Update(unreach=(Unreach(V4, tuple(prefixes)),)),))

    def held(self, name: str) -> dict[int, PathAttributes]:
        return self.sessions[name].table()

    def group_of(self, name: str) -> object:
        return self.rib.core.peers[self.sessions[name]].group


NH2 = bytes([198, 18, 0, 2])


# -- who gets what (RFC 4456 section 6) ------------------------------------------------------------


@on_uvloop
async def test_client_routes_go_to_clients_and_non_clients_reflected() -> None:
    bed = Bed({"c2": 2, "c3": 3, "n4": 4, "n5": 5})
    bed.announce("c2", [block(2)])
    await settle(bed.rib)
    for name in ("c3", "n4", "n5"):
        held = bed.held(name)
        assert set(held) == {block(2)}, name
        attrs = held[block(2)]
        # RFC 4456 8: ORIGINATOR_ID is the client's router id, our cluster id is the whole
        # CLUSTER_LIST, and the next hop is the client's own (not ours).
        assert attrs.originator_id == ip("198.18.0.2")
        assert attrs.cluster_list == (ip(CLUSTER),)
        assert attrs.next_hop == NH2
        assert attrs.local_pref == 100
    # A route never goes back to the client it came from (BIRD's rule).
    assert block(2) not in bed.held("c2")
    await bed.rib.close()


@on_uvloop
async def test_non_client_routes_go_to_clients_only() -> None:
    bed = Bed({"c2": 2, "c3": 3, "n4": 4, "n5": 5})
    bed.announce("n4", [block(4)])
    await settle(bed.rib)
    for name in ("c2", "c3"):
        attrs = bed.held(name)[block(4)]
        assert attrs.originator_id == ip("198.18.0.4")
        assert attrs.cluster_list == (ip(CLUSTER),)
    assert bed.held("n5") == {}  # plain iBGP split horizon between non-clients
    assert bed.held("n4") == {}
    # Withdrawn by the non-client: withdrawn from the clients.
    bed.withdraw("n4", [block(4)])
    await settle(bed.rib)
    assert bed.held("c2") == bed.held("c3") == {}
    await bed.rib.close()


@on_uvloop
async def test_ebgp_and_own_routes_go_everywhere_unreflected() -> None:
    bed = Bed({"c2": 2, "n4": 4, "e9": 9})
    bed.announce("e9", [block(9)])
    bed.rib.originate(V4, [block(1)], PathAttributes(), Origin.STATIC)
    bed.announce("c2", [block(2)])
    await settle(bed.rib)
    for name in ("c2", "n4"):
        held = bed.held(name)
        assert {block(1), block(9)} <= set(held)
        for prefix in (block(1), block(9)):
            assert held[prefix].originator_id is None and held[prefix].cluster_list == ()
        assert held[block(9)].next_hop == bytes([198, 18, 0, 9])  # next hop kept (auto, iBGP)
    # The eBGP peer gets the client's route as an ordinary route: nothing of RFC 4456 on the
    # wire (those attributes never leave the AS), next hop self, our AS prepended.
    external = bed.held("e9")[block(2)]
    assert external.originator_id is None and external.cluster_list == ()
    assert external.as_path == ((2, (LOCAL_AS,)),)
    assert external.next_hop == bytes([198, 18, 0, 1])
    await bed.rib.close()


@on_uvloop
async def test_present_originator_id_is_kept_and_cluster_id_prepended() -> None:
    bed = Bed({"c2": 2, "c3": 3})
    # c2 is itself a reflector of another cluster: the route already names its originator.
    bed.announce("c2", [block(2)], originator_id=ip("198.18.0.77"), cluster_list=(ip("1.1.1.1"),))
    await settle(bed.rib)
    attrs = bed.held("c3")[block(2)]
    assert attrs.originator_id == ip("198.18.0.77")
    assert attrs.cluster_list == (ip(CLUSTER), ip("1.1.1.1"))
    await bed.rib.close()


@on_uvloop
async def test_client_to_client_off_sends_client_routes_to_non_clients_only() -> None:
    bed = Bed({"c2": 2, "c3": 3, "n4": 4}, client_to_client=False)
    bed.announce("c2", [block(2)])
    bed.announce("n4", [block(4)])
    await settle(bed.rib)
    assert set(bed.held("c3")) == {block(4)}  # the non-client's route, not the client's
    assert set(bed.held("c2")) == {block(4)}
    assert set(bed.held("n4")) == {block(2)}
    assert bed.held("n4")[block(2)].cluster_list == (ip(CLUSTER),)
    await bed.rib.close()


@on_uvloop
async def test_without_reflection_ibgp_routes_stay_unreflected() -> None:
    """A node that is no reflector (no ``reflect`` in its settings) keeps RFC 4271 9.2."""
    bed = Bed({"x2": 2, "x3": 3}, cluster_id=None)
    bed.announce("x2", [block(2)])
    await settle(bed.rib)
    assert bed.held("x3") == {}
    await bed.rib.close()


# -- update groups and encodings -------------------------------------------------------------------


@on_uvloop
async def test_clients_and_non_clients_are_separate_groups_each_encoding_once() -> None:
    bed = Bed({"c2": 2, "c3": 3, "c4": 4, "n5": 5, "n6": 6})
    await settle(bed.rib)
    clients = bed.group_of("c2")
    non_clients = bed.group_of("n5")
    assert clients is bed.group_of("c3") is bed.group_of("c4")
    assert non_clients is bed.group_of("n6")
    assert clients is not non_clients and bed.rib.view.update_groups == 2
    before = (clients.encodings, non_clients.encodings)  # type: ignore[attr-defined]
    for session in bed.sessions.values():
        session.sent.clear()
    bed.announce("c2", [block(2), block(3), block(4)])
    await settle(bed.rib)
    after = (clients.encodings, non_clients.encodings)  # type: ignore[attr-defined]
    assert after == (before[0] + 1, before[1] + 1)  # one encoding per group, not per member
    # The same bytes to every member but c2, whose own routes they are all about (a route never
    # goes back to the peer it came from, as in BIRD).
    assert bed["c3"].sent == bed["c4"].sent != [] and bed["c2"].sent == []
    assert bed["n5"].sent == bed["n6"].sent != []
    # One attribute set, reflected once: every prefix in one UPDATE.
    (update,) = bed["n5"].updates_received()
    assert len(update.reach) == 1 and len(update.reach[0].prefixes) == 3
    await bed.rib.close()


@on_uvloop
async def test_a_batch_mixing_sources_is_encoded_once_and_never_sent_back_to_its_source() -> None:
    """BIRD's rule (``bgp_preexport``: a route never goes back to the peer it came from) holds
    in a batch that mixes sources too: one encoding for the group, each client the other's."""
    bed = Bed({"c2": 2, "c3": 3, "c4": 4})
    await settle(bed.rib)
    clients = bed.group_of("c2")
    before = clients.encodings  # type: ignore[attr-defined]
    for session in bed.sessions.values():
        session.sent.clear()
    bed.announce("c2", [block(2)])
    bed.rib.updates(bed["c2"], (end_of_rib(),))
    bed.announce("c3", [block(3)])  # in the same inbox drain: one batch, two sources
    bed.rib.updates(bed["c3"], (end_of_rib(),))  # Calico's nodes send one after their blocks
    await settle(bed.rib)
    assert clients.encodings == before + 1  # type: ignore[attr-defined]
    assert set(bed.held("c4")) == {block(2), block(3)}
    assert set(bed.held("c2")) == {block(3)} and set(bed.held("c3")) == {block(2)}
    # c2's and c3's bytes are c4's, less their own routes' UPDATE.
    assert b"".join(bed["c2"].sent) in b"".join(bed["c4"].sent)
    assert b"".join(bed["c3"].sent) in b"".join(bed["c4"].sent)
    await bed.rib.close()


def test_the_group_key_includes_the_role() -> None:
    base = ExportSettings(local_as=LOCAL_AS, next_hop_v4=NH2, next_hop_v6=b"")
    client = replace(base, reflect=Reflection(ip(CLUSTER), PeerRole.CLIENT))
    non_client = replace(base, reflect=Reflection(ip(CLUSTER), PeerRole.NON_CLIENT))
    assert client != non_client and hash(client) != hash(non_client)
    assert client == replace(base, reflect=Reflection(ip(CLUSTER), PeerRole.CLIENT))
    assert replace(client, reflect=Reflection(ip(CLUSTER), PeerRole.CLIENT, False)) != client


# -- ADD-PATH --------------------------------------------------------------------------------------


def paths(session: FakeSession, prefix: int) -> dict[int, PathAttributes]:
    """The ADD-PATH paths ``session`` holds for ``prefix``: path id -> attributes."""
    held: dict[int, PathAttributes] = {}
    for update in session.updates_received():
        for gone in update.unreach:
            for p, path_id in zip(gone.prefixes, gone.path_ids or (), strict=True):
                if p == prefix:
                    held.pop(path_id, None)
        for reach in update.reach:
            for p, path_id in zip(reach.prefixes, reach.path_ids or (), strict=True):
                if p == prefix:
                    held[path_id] = reach.attributes
    return held


@on_uvloop
async def test_add_path_reflects_each_path_of_the_ecmp_set() -> None:
    bed = Bed({"c2": 2, "c3": 3, "n4": 4, "n5": 5}, add_path=frozenset({"c3", "n5"}))
    for name in ("c2", "n4"):
        bed.announce(name, [block(7)])  # equal routes: one ECMP set of two
    await settle(bed.rib)
    _, ecmp = bed.rib.view.lookup(V4, block(7))
    assert len(ecmp) == 2
    # The client gets both paths, each reflected with its own originator.
    got = paths(bed["c3"], block(7))
    assert sorted((a.originator_id, a.cluster_list, a.next_hop[-1]) for a in got.values()) == [
        (ip("198.18.0.2"), (ip(CLUSTER),), 2),
        (ip("198.18.0.4"), (ip(CLUSTER),), 4),
    ]
    # The non-client gets only the client's path: n4's is non-client to non-client.
    got = paths(bed["n5"], block(7))
    assert [a.originator_id for a in got.values()] == [ip("198.18.0.2")]
    # The client's path goes: the non-client keeps none, the client keeps n4's.
    bed.withdraw("c2", [block(7)])
    await settle(bed.rib)
    assert paths(bed["n5"], block(7)) == {}
    assert [a.originator_id for a in paths(bed["c3"], block(7)).values()] == [ip("198.18.0.4")]
    await bed.rib.close()


@on_uvloop
async def test_add_path_all_paths_limit_counts_exported_paths_only() -> None:
    bed = Bed(
        {"c2": 2, "n4": 4, "n5": 5, "n6": 6},
        add_path=frozenset({"n6"}),
        add_path_settings={"add_path_all": True, "add_path_limit": 1},
    )
    # Two non-client paths rank before the client's (higher LOCAL_PREF) but may not go to a
    # non-client: the client's path still gets the one place ("all paths", limit 1).
    bed.announce("n4", [block(7)], local_pref=300)
    bed.announce("n5", [block(7)], local_pref=200)
    bed.announce("c2", [block(7)], local_pref=100)
    await settle(bed.rib)
    got = paths(bed["n6"], block(7))
    assert [a.originator_id for a in got.values()] == [ip("198.18.0.2")]
    assert [a.local_pref for a in got.values()] == [100]
    await bed.rib.close()


# -- loop checks on receipt (RFC 4456 section 8) ---------------------------------------------------


@on_uvloop
async def test_our_router_id_as_originator_id_is_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As a client, Myna gets its own routes back from a Myna reflector: they must not count."""
    bed = Bed({"n2": 2, "n3": 3}, cluster_id=None)  # no reflector: ORIGINATOR_ID still checked
    bed.announce("n2", [block(5)])  # a valid path first, from the same peer
    await settle(bed.rib)
    assert bed.rib.view.lookup(V4, block(5))[0] is not None
    caplog.set_level(logging.INFO, logger="test.peer")
    looped = {"originator_id": ip(RR), "cluster_list": (ip("198.19.0.9"),)}
    for n in (1, 2, 3):
        bed.announce("n2", [block(5), block(6 + n)], **looped)
    await settle(bed.rib)
    # Ignored: treated as a withdrawal of that prefix from that peer.
    assert bed.rib.view.lookup(V4, block(5)) == (None, ())
    assert bed.rib.view.prefix_count() == 0
    assert bed.rib.view.received(bed["n2"].name, V4) == []
    lines = [r.getMessage() for r in caplog.records if "reflection loop" in r.getMessage()]
    assert len(lines) == 1, lines  # once per peer within the interval, not per route
    assert "ORIGINATOR_ID is our router id 198.18.0.1" in lines[0]
    assert bed.rib.core.loops.ignored_total == 6
    await bed.rib.close()


@on_uvloop
async def test_our_cluster_id_in_cluster_list_is_ignored() -> None:
    """Another reflector of our cluster reflected it already (two reflectors, one cluster)."""
    bed = Bed({"n2": 2, "c3": 3})
    bed.announce("n2", [block(2)], originator_id=ip("198.18.0.50"), cluster_list=(ip(CLUSTER),))
    bed.announce("n2", [block(4)], originator_id=ip("198.18.0.50"), cluster_list=(ip("1.2.3.4"),))
    await settle(bed.rib)
    assert bed.rib.view.lookup(V4, block(2)) == (None, ())
    assert set(bed.held("c3")) == {block(4)}
    assert bed.held("c3")[block(4)].cluster_list == (ip(CLUSTER), ip("1.2.3.4"))
    await bed.rib.close()


def test_loop_check_and_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    check = LoopCheck(ip(RR), ip(CLUSTER))
    assert check(PathAttributes(originator_id=ip(RR))) is LoopReason.ORIGINATOR_ID
    assert check(PathAttributes(cluster_list=(1, ip(CLUSTER)))) is LoopReason.CLUSTER_LIST
    assert check(PathAttributes(originator_id=5, cluster_list=(1, 2))) is None
    assert LoopCheck(ip(RR))(PathAttributes(cluster_list=(ip(RR),))) is None  # not a reflector
    now = [100.0]
    log = LoopLog(check, interval=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="test.loops")
    adapters = {
        name: logging.LoggerAdapter(logging.getLogger("test.loops"), {"peer": name})
        for name in ("a", "b")
    }
    log.ignored("a", adapters["a"], LoopReason.CLUSTER_LIST, 3)
    log.ignored("b", adapters["b"], LoopReason.ORIGINATOR_ID, 1)  # another peer: its own line
    log.ignored("a", adapters["a"], LoopReason.CLUSTER_LIST, 4)  # suppressed, counted
    now[0] += 59
    log.ignored("a", adapters["a"], LoopReason.CLUSTER_LIST, 5)  # still suppressed
    now[0] += 2
    log.ignored("a", adapters["a"], LoopReason.CLUSTER_LIST, 1)  # interval over: 4 + 5 + 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("ignored 3 routes") and "cluster id 198.19.255.1" in lines[0]
    assert lines[1].startswith("ignored 1 routes") and "router id 198.18.0.1" in lines[1]
    assert lines[2].startswith("ignored 10 routes")
    assert log.ignored_total == 14


def test_reflection_rules_table() -> None:
    client = Source("198.18.0.2", router_id=2, rr_client=True)
    non_client = Source("198.18.0.4", router_id=4)
    rows = [
        # (role, client_to_client, source, reflected?)
        (PeerRole.CLIENT, True, client, True),
        (PeerRole.NON_CLIENT, True, client, True),
        (PeerRole.CLIENT, True, non_client, True),
        (PeerRole.NON_CLIENT, True, non_client, False),
        (PeerRole.CLIENT, False, client, False),
        (PeerRole.NON_CLIENT, False, client, True),
        (PeerRole.CLIENT, False, non_client, True),
        (PeerRole.NON_CLIENT, False, non_client, False),
    ]
    for role, c2c, source, expected in rows:
        assert Reflection(7, role, c2c).allows(source) is expected, (role, c2c, source.name)
    assert Reflection(7, PeerRole.CLIENT).reflect(PathAttributes(), client) == (2, (7,))


# -- config ----------------------------------------------------------------------------------------

REFLECTOR = f"""
router_id: {RR}
local_as: {LOCAL_AS}
peers:
  - {{address: 198.18.0.2, as: {LOCAL_AS}, route_reflector_client: true}}
  - {{address: 198.18.0.3, as: {LOCAL_AS}}}
  - {{address: 198.18.0.9, as: {EXTERNAL_AS}}}
"""


def test_config_cluster_id_defaults_to_the_router_id_on_a_node_with_clients() -> None:
    config = parse_config(REFLECTOR)
    assert config.cluster_id is None and config.client_to_client
    assert config.reflector_cluster_id() == ip(RR)
    peers = {p.address: p for p in config.peers}
    assert reflection_for(config, peers["198.18.0.2"]) == Reflection(ip(RR), PeerRole.CLIENT)
    assert reflection_for(config, peers["198.18.0.3"]) == Reflection(ip(RR), PeerRole.NON_CLIENT)
    assert reflection_for(config, peers["198.18.0.9"]) is None  # eBGP: never reflected
    set_id = parse_config(REFLECTOR + f"cluster_id: {CLUSTER}\nclient_to_client: false\n")
    assert set_id.reflector_cluster_id() == ip(CLUSTER)
    peer = set_id.peers[0]
    assert reflection_for(set_id, peer) == Reflection(ip(CLUSTER), PeerRole.CLIENT, False)


def test_config_without_clients_or_cluster_id_reflects_nothing() -> None:
    config = parse_config(f"router_id: {RR}\nlocal_as: 1\npeers: [{{address: 198.18.0.2, as: 1}}]")
    assert config.reflector_cluster_id() is None
    assert reflection_for(config, config.peers[0]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cluster_id: 198.19.255",
            "cluster_id: Value error, '198.19.255' is not an IPv4-formatted cluster id",
        ),
        ("cluster_id: 0.0.0.0", "cluster_id: Value error, cluster id 0.0.0.0 is not allowed"),
        (
            "peers: [{address: 198.18.0.9, as: 64999, route_reflector_client: true}]",
            "peer 198.18.0.9: route_reflector_client needs an iBGP peer (as 64999 is not "
            "local_as 64512)",
        ),
        ("client_to_client: maybe", "client_to_client: Input should be a valid boolean"),
    ],
)
def test_config_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"router_id: {RR}\nlocal_as: {LOCAL_AS}\n{text}", "rr.yaml")
    assert expected in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
