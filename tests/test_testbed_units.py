"""Unit tests of the test bed's pure parts: waiting, address checks, states, rendered configs.

Data flow: nothing here starts a daemon or makes a namespace, so these run anywhere, as any
user, in milliseconds. Hosts are built on a ``Topology`` that is never entered, which makes the
objects (names, addresses, paths) and nothing on the machine; each daemon's config is rendered
from them and checked for the options the interop tests rely on (passive, MD5, short timers,
the right family per session).
"""

from __future__ import annotations

import itertools

import pytest
from testbed import Bird2Peer, Bird16Peer, ExaBgpPeer, FrrPeer, GoBgpPeer, Neighbor, State
from testbed.peers import normalise_prefix, normalise_state
from testbed.topology import Host, Topology, check_address, wait_for


def test_wait_for_returns_the_first_value_that_satisfies_until() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter), 5, "three", until=lambda n: n >= 3, interval=0) == 3


def test_wait_for_timeout_names_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the answer; last seen: 41"):
        wait_for(lambda: 41, 0.05, "the answer", until=lambda n: n == 42, interval=0.01)


def test_wait_for_keeps_exceptions_as_observations() -> None:
    def probe() -> int:
        raise ConnectionRefusedError("daemon not up")

    with pytest.raises(AssertionError, match="ConnectionRefusedError: daemon not up"):
        wait_for(probe, 0.05, "the daemon", interval=0.01)


def test_wait_for_stops_at_once_on_assertion_error_from_the_probe() -> None:
    calls = []

    def probe() -> bool:
        calls.append(1)
        raise AssertionError("the daemon died")

    with pytest.raises(AssertionError, match="the daemon died"):
        wait_for(probe, 10, "anything")
    assert len(calls) == 1


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db9::1", "fe80::1"]
)
def test_addresses_outside_the_bed_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="outside the test bed"):
        Neighbor(address, 64512)


def test_addresses_inside_the_bed_are_normalised() -> None:
    assert Neighbor("2001:0db8:0::0005", 64512).address == "2001:db8::5"
    assert check_address("198.19.255.1") == "198.19.255.1"
    assert check_address("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("Established", State.ESTABLISHED),
        ("ESTABLISHED", State.ESTABLISHED),
        ("OpenSent", State.OPEN_SENT),
        ("open_confirm", State.OPEN_CONFIRM),
        ("Close", State.IDLE),
        ("Clearing", State.IDLE),
        (" active ", State.ACTIVE),
    ],
)
def test_states_are_normalised(raw: str, state: State) -> None:
    assert normalise_state(raw) is state
    assert state == state.value  # a State compares equal to its RFC 4271 name


def test_unknown_state_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown BGP session state"):
        normalise_state("Dancing")


def test_prefixes_are_normalised() -> None:
    assert normalise_prefix("2001:0db8:0001::/48") == "2001:db8:1::/48"
    assert normalise_prefix("198.19.1.0/24") == "198.19.1.0/24"


def _hosts() -> tuple[Host, Host]:
    topo = Topology()  # never entered: makes no namespace, directory or process
    return Host(topo, "a", 1), Host(topo, "b", 2)


def test_hosts_get_their_numbers_addresses() -> None:
    a, b = _hosts()
    assert (b.ipv4, b.ipv6) == ("198.18.0.2", "2001:db8::2")
    assert b.address_for(a.ipv6) == b.ipv6
    assert b.address_for(a.ipv4) == b.ipv4
    assert a.netns.startswith("myna") and a.netns.endswith("-a")
    assert a.command("true")[:3] == ["ip", "netns", "exec"]


def test_hosts_can_only_be_added_inside_the_with_block() -> None:
    with pytest.raises(RuntimeError, match="with block"):
        Topology().add_host("a")


def _neighbors(b: Host) -> list[Neighbor]:
    return [
        Neighbor(b.ipv4, 64513, password="k3y"),
        Neighbor(b.ipv6, 64513, passive=True, port=1179),
    ]


def test_bird2_config() -> None:
    a, b = _hosts()
    peer = Bird2Peer(a, a.ipv4, 64512, _neighbors(b), ["198.19.1.0/24", "2001:db8:1::/48"])
    config = peer._render(peer._bird_processes()[0])
    assert "protocol bgp peer_198_18_0_2 {" in config
    assert "protocol bgp peer_2001_db8__2 {" in config
    assert 'password "k3y";' in config
    assert "neighbor 2001:db8::2 port 1179 as 64513;" in config
    assert config.count("passive on;") == 1
    assert "local 2001:db8::1 as 64512;" in config
    assert "route 198.19.1.0/24 blackhole;" in config
    assert "route 2001:db8:1::/48 blackhole;" in config
    assert "hold time 9;" in config and "connect retry time 1;" in config


def test_bird16_config_splits_the_families() -> None:
    a, b = _hosts()
    peer = Bird16Peer(a, a.ipv4, 64512, _neighbors(b), ["198.19.1.0/24", "2001:db8:1::/48"])
    four, six = peer._bird_processes()
    assert (four.label, six.label) == ("bird", "bird6")
    config4, config6 = peer._render(four), peer._render(six)
    assert "198.18.0.2" in config4 and "2001:db8::2" not in config4
    assert "2001:db8::2" in config6 and "198.18.0.2" not in config6
    assert "198.19.1.0/24" in config4 and "2001:db8:1::/48" in config6


def test_frr_config() -> None:
    a, b = _hosts()
    config = FrrPeer(a, a.ipv4, 64512, _neighbors(b), ["198.19.1.0/24"]).render()
    assert " neighbor 198.18.0.2 password k3y" in config
    assert " neighbor 2001:db8::2 passive" in config
    assert " neighbor 2001:db8::2 port 1179" in config
    assert " neighbor 198.18.0.2 timers connect 1" in config
    assert " timers bgp 3 9" in config
    ipv4, ipv6 = config.split(" address-family ipv4 unicast")[1].split(" address-family ipv6")
    assert "neighbor 198.18.0.2 activate" in ipv4 and "2001:db8::2" not in ipv4
    assert "neighbor 2001:db8::2 activate" in ipv6
    assert "network 198.19.1.0/24" in ipv4


def test_gobgp_config() -> None:
    a, b = _hosts()
    config = GoBgpPeer(a, a.ipv4, 64512, _neighbors(b)).render()
    assert 'auth-password = "k3y"' in config
    assert "passive-mode = true" in config and "passive-mode = false" in config
    assert "remote-port = 1179" in config
    assert "connect-retry = 1" in config
    assert 'afi-safi-name = "ipv6-unicast"' in config


def test_exabgp_config() -> None:
    a, b = _hosts()
    peer = ExaBgpPeer(a, a.ipv4, 64512, _neighbors(b), ["198.19.1.0/24", "2001:db8:1::/48"])
    config = peer.render(peer.workdir / "exabgp_api.py")
    block4, block6 = config.split("neighbor 198.18.0.2 {")[1].split("neighbor 2001:db8::2 {")
    assert 'md5-password "k3y";' in block4 and "passive" not in block4
    assert "route 198.19.1.0/24 next-hop self;" in block4 and "2001:db8:1::" not in block4
    assert "passive true;" in block6 and "listen 179;" in block6 and "connect 1179;" in block6
    assert "family { ipv6 unicast; }" in block6


def test_duplicate_neighbors_are_refused() -> None:
    a, b = _hosts()
    with pytest.raises(ValueError, match="duplicate"):
        Bird2Peer(a, a.ipv4, 64512, [Neighbor(b.ipv4, 1), Neighbor(b.ipv4, 2)])
