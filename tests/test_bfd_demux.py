"""Which session a packet belongs to: RFC 5880 6.8.6, RFC 5881 3 (single hop), 5883 4 (multihop)."""

from __future__ import annotations

import pytest

from bfd.demux import Binding, Demultiplexer, canonical
from bfd.packet import ControlPacket
from bfd.wire_codes import DropReason, HopMode, State

SINGLE, MULTI = HopMode.SINGLE_HOP, HopMode.MULTIHOP


def packet(your: int, state: State = State.DOWN) -> ControlPacket:
    return ControlPacket(state, 77, your, 10**6, 10**6, 3)


@pytest.fixture
def demux() -> Demultiplexer[str]:
    table: Demultiplexer[str] = Demultiplexer()
    table.add(1, Binding(SINGLE, "198.18.0.2", ifindex=2), "eth0 to .2")
    table.add(2, Binding(SINGLE, "198.18.0.2", ifindex=3), "eth1 to .2")
    table.add(3, Binding(SINGLE, "2001:db8::2"), "v6 to ::2, any interface")
    table.add(4, Binding(MULTI, "198.18.0.9", local="198.18.0.1"), "multihop .1-.9")
    table.add(5, Binding(MULTI, "198.18.0.9", local="198.18.0.5"), "multihop .5-.9")
    return table


def test_nonzero_your_discriminator_selects_the_session(demux: Demultiplexer[str]) -> None:
    assert demux.lookup(packet(2, State.UP), SINGLE, "198.18.0.2", "198.18.0.1", 3) == "eth1 to .2"
    # "If no session is found, the packet MUST be discarded."
    assert demux.lookup(packet(9, State.UP), SINGLE, "198.18.0.2", "x", 3) is (
        DropReason.UNKNOWN_DISCRIMINATOR
    )


def test_a_known_discriminator_alone_selects_within_its_hop_mode(
    demux: Demultiplexer[str],
) -> None:
    # RFC 5880 6.3: "all further received packets are demultiplexed based on the Your
    # Discriminator field only (which means that, among other things, the source address
    # field can change or the interface over which the packets are received can change".
    up = packet(2, State.UP)
    assert demux.lookup(up, SINGLE, "198.18.0.3", "198.18.0.1", 3) == "eth1 to .2"
    assert demux.lookup(up, SINGLE, "198.18.0.2", "198.18.0.1", 2) == "eth1 to .2"
    assert demux.lookup(packet(4, State.UP), MULTI, "198.18.0.8", "198.18.0.5", 0) == (
        "multihop .1-.9"
    )
    # The other port is the other hop mode: a multihop packet (any TTL) never reaches a
    # single-hop session, whose TTL 255 rule (RFC 5881 5) would not be checked there.
    assert demux.lookup(up, MULTI, "198.18.0.2", "198.18.0.1", 3) is DropReason.WRONG_PEER
    assert demux.lookup(packet(4, State.UP), SINGLE, "198.18.0.9", "198.18.0.1", 2) is (
        DropReason.WRONG_PEER
    )


def test_zero_discriminator_only_in_down_and_admin_down(demux: Demultiplexer[str]) -> None:
    for state in (State.INIT, State.UP):
        # "If the Your Discriminator field is zero and the State field is not Down or
        # AdminDown, the packet MUST be discarded."
        assert demux.lookup(packet(0, state), SINGLE, "198.18.0.2", "198.18.0.1", 2) is (
            DropReason.ZERO_DISCRIMINATOR_NOT_DOWN
        )
    for state in (State.DOWN, State.ADMIN_DOWN):
        assert demux.lookup(packet(0, state), SINGLE, "198.18.0.2", "198.18.0.1", 2) == "eth0 to .2"


def test_zero_discriminator_single_hop_by_address_and_interface(demux: Demultiplexer[str]) -> None:
    # RFC 5881 3: "associated with the session bound to the remote system, interface, and
    # protocol".
    assert demux.lookup(packet(0), SINGLE, "198.18.0.2", "198.18.0.1", 3) == "eth1 to .2"
    assert demux.lookup(packet(0), SINGLE, "198.18.0.2", "198.18.0.1", 4) is (
        DropReason.NO_SESSION_FOR_ADDRESS
    )
    assert demux.lookup(packet(0), SINGLE, "2001:db8::2", "2001:db8::1", 7) == (
        "v6 to ::2, any interface"
    )
    # The multihop port is another protocol: a single-hop session is not found there.
    assert demux.lookup(packet(0), MULTI, "198.18.0.2", "198.18.0.1", 3) is (
        DropReason.NO_SESSION_FOR_ADDRESS
    )


def test_zero_discriminator_multihop_by_address_pair(demux: Demultiplexer[str]) -> None:
    # RFC 5883 4: demultiplexed by the source and destination address pair.
    assert demux.lookup(packet(0), MULTI, "198.18.0.9", "198.18.0.5", 0) == "multihop .5-.9"
    assert demux.lookup(packet(0), MULTI, "198.18.0.9", "198.18.0.1", 6) == "multihop .1-.9"
    assert demux.lookup(packet(0), MULTI, "198.18.0.9", "198.18.0.7", 0) is (
        DropReason.NO_SESSION_FOR_ADDRESS
    )


def test_duplicates_are_refused_and_removal_frees(demux: Demultiplexer[str]) -> None:
    with pytest.raises(ValueError, match="in use"):
        demux.add(1, Binding(SINGLE, "198.18.0.7"), "x")
    with pytest.raises(ValueError, match="exists already"):
        demux.add(9, Binding(SINGLE, "198.18.0.2", ifindex=2), "x")
    demux.remove(1)
    assert demux.free(1) and not demux.free(0)
    assert demux.lookup(packet(1, State.UP), SINGLE, "198.18.0.2", "x", 2) is (
        DropReason.UNKNOWN_DISCRIMINATOR
    )
    assert demux.conflicting(Binding(SINGLE, "198.18.0.2", ifindex=3)) == ["eth1 to .2"]
    assert demux.conflicting(Binding(SINGLE, "198.18.0.2", ifindex=2)) == []
    assert demux.conflicting(Binding(MULTI, "198.18.0.9", local="198.18.0.1")) == ["multihop .1-.9"]
    demux.add(9, Binding(SINGLE, "198.18.0.2", ifindex=2), "again")
    assert len(demux) == 5


def test_canonical_addresses() -> None:
    assert canonical("::ffff:198.18.0.1") == "198.18.0.1"
    assert canonical("2001:0db8::0001%eth0") == "2001:db8::1"
