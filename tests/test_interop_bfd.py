"""Myna's BFD runtime against BIRD 2 and FRR 8.4's bfdd, in network namespaces.

Each test builds host ``a`` (Myna) and host ``b`` (the other daemon) on one bridge, runs a
standalone BFD session (no BGP) single hop or multihop, over IPv4 or IPv6, with or without
authentication (BIRD only: bfdd 8.4 has none), and checks both ends report Up. Then an
nftables rule in ``b`` drops every BFD packet, links staying up: Myna must go Down within its
Detection Time (3 x 100 ms, RFC 5880 6.8.4) + 100 ms of the rule being in place; the
measured time is printed. Removing the rule brings both ends back Up. A wrong password keeps
the session Down on both ends.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from testbed.bfd_peers import BfdNeighbor, BirdBfd, FrrBfd, Myna, cut, heal
from testbed.topology import Host, Topology, wait_for

pytest_plugins = ("testbed.fixtures",)
pytestmark = pytest.mark.interop

DETECTION = 0.3  # 3 x 100 ms
SLACK = 0.1
UP_TIMEOUT = 20.0


def _neighbors(
    a: Host, b: Host, ipv6: bool, multihop: bool, **auth: str
) -> tuple[BfdNeighbor, BfdNeighbor]:
    a_address, b_address = (a.ipv6, b.ipv6) if ipv6 else (a.ipv4, b.ipv4)
    return (
        BfdNeighbor(b_address, a_address, multihop, **auth),  # Myna's view
        BfdNeighbor(a_address, b_address, multihop, **auth),  # the peer's view
    )


def _up_both(
    myna: Myna, peer: BirdBfd | FrrBfd, myna_view: BfdNeighbor, peer_view: BfdNeighbor
) -> None:
    wait_for(lambda: myna.state(myna_view.address), UP_TIMEOUT, "Myna's session Up",
             until=lambda s: s == "Up")  # fmt: skip
    wait_for(lambda: peer.state(peer_view.address), UP_TIMEOUT, f"{type(peer).__name__} Up",
             until=lambda s: s == "Up")  # fmt: skip
    # Up first runs at the slow rate (1 s, RFC 5880 6.8.3); the fast intervals take a Poll
    # Sequence after it, which a loaded machine may finish a little later.
    wait_for(lambda: myna.status(myna_view.address), UP_TIMEOUT, "the 100 ms intervals",
             until=lambda s: s["detection_time_us"] == int(DETECTION * 1_000_000))  # fmt: skip


def _cut_and_heal(
    b: Host, myna: Myna, peer: BirdBfd | FrrBfd, mine: BfdNeighbor, theirs: BfdNeighbor
) -> float:
    """Cut, check Myna's Down time, heal, check both Up; the measured detection delay."""
    downs_before = len([e for e in myna.events(mine.address) if e.get("new") == "Down"])
    started = time.monotonic()
    cut(b)
    in_place = time.monotonic()
    events = wait_for(
        lambda: [e for e in myna.events(mine.address) if e.get("new") == "Down"],
        5, "Myna's session to go Down", until=lambda downs: len(downs) > downs_before,
    )  # fmt: skip
    down = events[-1]
    took = down["at"] - in_place
    print(f"\n{type(peer).__name__} {mine}: Down {took * 1000:.0f} ms after the rule was in "
          f"place ({(down['at'] - started) * 1000:.0f} ms after nft started)")  # fmt: skip
    assert down["diagnostic"] == 1  # Control Detection Time Expired
    assert down["failure"] is True
    assert took <= DETECTION + SLACK
    # Not before the last packet could have arrived plus a Detection Time: at most one
    # interval (100 ms) before the rule started.
    assert down["at"] - started >= DETECTION - 0.1
    wait_for(lambda: peer.state(theirs.address), 5, "the peer's session Down",
             until=lambda s: s != "Up")  # fmt: skip
    heal(b)
    _up_both(myna, peer, mine, theirs)
    return took


@pytest.mark.parametrize("multihop", [False, True], ids=["single-hop", "multihop"])
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_bird2(topology: Topology, ipv6: bool, multihop: bool) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, theirs = _neighbors(a, b, ipv6, multihop)
    bird = BirdBfd(b, [theirs]).start()
    myna = Myna(a, [mine]).start()
    _up_both(myna, bird, mine, theirs)
    status = myna.status(mine.address)
    assert status["tx_interval_us"] == status["rx_interval_us"] == 100_000
    assert status["detection_time_us"] == 300_000
    _cut_and_heal(b, myna, bird, mine, theirs)


@pytest.mark.parametrize(
    "auth_type",
    ["SIMPLE_PASSWORD", "KEYED_MD5", "METICULOUS_KEYED_MD5", "KEYED_SHA1", "METICULOUS_KEYED_SHA1"],
)
def test_bird2_authentication(topology: Topology, auth_type: str) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, theirs = _neighbors(a, b, False, False, auth_type=auth_type, secret="s3cret")
    bird = BirdBfd(b, [theirs]).start()
    myna = Myna(a, [mine]).start()
    _up_both(myna, bird, mine, theirs)
    _cut_and_heal(b, myna, bird, mine, theirs)
    assert myna.status(mine.address)["auth_failures"] == 0


@pytest.mark.parametrize("auth_type", ["KEYED_SHA1", "SIMPLE_PASSWORD"])
def test_bird2_wrong_password_stays_down(topology: Topology, auth_type: str) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, _ = _neighbors(a, b, False, False, auth_type=auth_type, secret="wrong")
    _, theirs = _neighbors(a, b, False, False, auth_type=auth_type, secret="right")
    bird = BirdBfd(b, [theirs]).start()
    myna = Myna(a, [mine]).start()
    # BIRD sends once a second while Down: wait for several of its packets to be refused.
    wait_for(lambda: myna.status(mine.address)["auth_failures"], UP_TIMEOUT,
             "Myna to refuse BIRD's packets", until=lambda n: n >= 3)  # fmt: skip
    status = myna.status(mine.address)
    assert status["state"] == 1 and status["packets_in"] == 0
    assert set(status["dropped"]) == {"AUTH_DIGEST_MISMATCH"}
    assert myna.events(mine.address) == []
    assert bird.state(theirs.address) != "Up"


@pytest.mark.parametrize("multihop", [False, True], ids=["single-hop", "multihop"])
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_frr_bfdd(topology: Topology, ipv6: bool, multihop: bool) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, theirs = _neighbors(a, b, ipv6, multihop)
    frr = FrrBfd(b, [theirs]).start()
    myna = Myna(a, [mine]).start()
    _up_both(myna, frr, mine, theirs)
    _cut_and_heal(b, myna, frr, mine, theirs)
    # Stopping Myna is administrative: bfdd hears AdminDown, diagnostic 7 (RFC 5882 3.2).
    myna.stop()
    record = wait_for(
        lambda: next(p for p in frr.peers() if p["peer"] == theirs.address), 5,
        "bfdd to see Myna's AdminDown", until=lambda p: p["status"] != "up",
    )  # fmt: skip
    assert record["remote-diagnostic"] == "administratively down", record


_SEND = """
import socket, struct, sys
peer, your, ttl, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in peer else socket.AF_INET
sock = socket.socket(family, socket.SOCK_DGRAM)
if family == socket.AF_INET6:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
else:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
sock.bind(("", 49999))
# RFC 5880 4.1: version 1, state Up, Detect Mult 3, Length 24, My Discriminator 0x1234.
good = struct.pack("!BBBBIIIII", 0x20, 0xC0, 3, 24, 0x1234, your, 100000, 100000, 0)
data = {"good": good, "garbage": b"\\x00\\x01garbage", "version": b"\\x40" + good[1:]}[kind]
sock.sendto(data, (peer, 3784))
"""


def test_wrong_ttl_malformed_and_unknown_packets_are_dropped_and_counted(
    topology: Topology,
) -> None:
    a, b = topology.add_host("a"), topology.add_host("b")
    mine, theirs = _neighbors(a, b, False, False)
    bird = BirdBfd(b, [theirs]).start()
    myna = Myna(a, [mine]).start()
    _up_both(myna, bird, mine, theirs)
    ours = myna.status(mine.address)["local_discriminator"]

    def send(your: int, ttl: int, kind: str) -> None:
        b.run(sys.executable, "-c", _SEND, a.ipv4, str(your), str(ttl), kind)

    send(ours, 64, "good")  # RFC 5881 5: TTL not 255 is discarded once demultiplexed
    send(ours ^ 0xFFFF, 255, "good")  # 6.8.6: no session for this Your Discriminator
    send(0, 255, "good")  # 6.8.6: Your Discriminator 0 in state Up
    send(ours, 255, "garbage")  # 6.8.6: version
    send(ours, 255, "version")
    wait_for(lambda: myna.status(mine.address)["dropped"], 10, "the TTL drop counted",
             until=lambda d: d.get("TTL_NOT_255") == 1)  # fmt: skip
    engine = wait_for(
        lambda: json.loads(myna.status_file.read_text())["dropped"], 10, "engine drops",
        until=lambda d: sum(v for k, v in d.items() if k != "SEND_ERRORS") >= 4,
    )  # fmt: skip
    assert engine["UNKNOWN_DISCRIMINATOR"] == 1
    assert engine["ZERO_DISCRIMINATOR_NOT_DOWN"] == 1
    assert engine["BAD_VERSION"] == 2
    assert myna.state(mine.address) == "Up"
    assert [e["new"] for e in myna.events(mine.address)] in (["Init", "Up"], ["Up"])
