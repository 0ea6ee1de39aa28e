"""The benchmark clients' receive path: bytes stamped on arrival, decoded later in slices.

The UPDATE messages are written out here octet by octet from RFC 4271 §4.1 and §4.3 (marker,
length, type; withdrawn length, withdrawn routes, attribute length, ORIGIN, AS_PATH, NEXT_HOP,
LOCAL_PREF, NLRI), not made by Myna's encoder, and the expected tables and times follow from
what is fed in. The clock the clients read is a number the test moves by hand.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator

import pytest

from bench import bgp_clients
from speaker.negotiated import negotiate

SENDER = "198.18.0.10"  # client 0, whose routes the receivers get
RECEIVER = "198.18.0.11"


def prefix(text: str) -> int:
    """``network << 8 | length``, the clients' form of a prefix."""
    net = ipaddress.IPv4Network(text)
    return int(net.network_address) << 8 | net.prefixlen


def update(*texts: str, next_hop: str = SENDER) -> bytes:
    """A whole UPDATE message announcing ``texts`` with a Calico node's iBGP attributes."""
    attrs = (
        bytes([0x40, 1, 1, 0])  # ORIGIN IGP
        + bytes([0x40, 2, 0])  # AS_PATH, empty (iBGP)
        + bytes([0x40, 3, 4])  # NEXT_HOP
        + ipaddress.IPv4Address(next_hop).packed
        + bytes([0x40, 5, 4, 0, 0, 0, 100])  # LOCAL_PREF 100
    )
    nlri = b""
    for text in texts:
        net = ipaddress.IPv4Network(text)
        nlri += bytes([net.prefixlen]) + net.network_address.packed[: (net.prefixlen + 7) // 8]
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(time, "perf_counter", fake)
    yield fake


def receivers(count: int, want: int) -> tuple[list[bgp_clients.Client], bgp_clients.Fleet]:
    fleet = bgp_clients.Fleet(count)
    clients = []
    for i in range(count):
        address = str(ipaddress.IPv4Address(RECEIVER) + i)
        client = bgp_clients.Client(fleet, i + 1, address, [], want)
        opened = bgp_clients._our_open(address)
        client.neg = negotiate(opened, bgp_clients._our_open(SENDER), bgp_clients.AS, 64512)
        client.cache = fleet.cache_for(client.neg)
        client.expected_hop = lambda _p: ipaddress.IPv4Address(SENDER).packed
        clients.append(client)
    return clients, fleet


def test_before_t0_messages_are_handled_as_they_come(clock: Clock) -> None:
    (client,), fleet = receivers(1, want=1)
    client.data_received(update("198.18.1.1/32"))
    assert client.held == {prefix("198.18.1.1/32")} and client.done_at == 100.0
    assert not fleet.ready


def test_a_clients_time_is_when_the_bytes_came_not_when_they_were_decoded(clock: Clock) -> None:
    (client,), fleet = receivers(1, want=3)
    fleet.recording = True
    client.data_received(update("198.18.1.1/32", "198.18.1.2/32"))
    clock.now = 100.25
    client.data_received(update("198.18.1.3/32"))
    assert client.held == set() and client.done_at is None  # only queued
    assert list(fleet.ready) == [client]  # queued once, not once per arrival
    clock.now = 107.0  # the decoding runs late
    assert fleet.digest(until=108.0) is False  # all of it, within the budget
    assert client.held == {prefix(f"198.18.1.{i}/32") for i in (1, 2, 3)}
    assert client.done_at == 100.25 and fleet.all_done.is_set()
    assert fleet.digest_lag == 7.0  # the first bytes waited from 100.0 to 107.0


def test_a_message_split_across_reads_counts_from_its_last_part(clock: Clock) -> None:
    (client,), fleet = receivers(1, want=1)
    fleet.recording = True
    message = update("198.18.1.1/32")
    client.data_received(message[:10])
    clock.now = 100.5
    client.data_received(message[10:])
    fleet.digest(until=200.0)
    assert client.done_at == 100.5


def test_digest_stops_at_its_budget_and_carries_on_where_it_stopped(clock: Clock) -> None:
    clients, fleet = receivers(2, want=2)
    fleet.recording = True
    for client in clients:
        client.data_received(update("198.18.1.1/32") + update("198.18.1.2/32"))
    # the clock stands at the budget's end: one message per call
    assert fleet.digest(until=100.0) is True
    assert [len(c.held) for c in clients] == [1, 0]
    assert fleet.digest(until=100.0) is True
    assert [len(c.held) for c in clients] == [2, 0] and fleet.pending == 1
    assert fleet.digest(until=100.0) is True  # the second client's first message
    assert fleet.digest(until=100.0) is False
    assert [len(c.held) for c in clients] == [2, 2] and fleet.all_done.is_set()
    assert all(c.done_at == 100.0 for c in clients)


def test_the_reflectors_second_copy_of_an_update_is_not_decoded_again(clock: Clock) -> None:
    clients, fleet = receivers(2, want=1)
    fleet.recording = True
    for client in clients:
        client.data_received(update("198.19.1.0/26"))
    fleet.digest(until=200.0)
    assert (fleet.decoded, fleet.cache_hits) == (1, 1)
    assert all(c.held == {prefix("198.19.1.0/26")} for c in clients)


def test_a_bare_keepalive_is_no_progress_for_the_stall_check(clock: Clock) -> None:
    (client,), fleet = receivers(1, want=1)
    fleet.recording = True
    fleet.last_progress = 0.0
    client.data_received(b"\xff" * 16 + b"\x00\x13\x04")  # RFC 4271 §4.4: 19 octets
    assert fleet.last_progress == 0.0
    client.data_received(update("198.18.1.1/32"))
    assert fleet.last_progress == 100.0


def test_a_digest_that_dies_ends_the_run_with_its_reason() -> None:
    async def run() -> bgp_clients.Fleet:
        fleet = bgp_clients.Fleet(1)

        async def broken() -> None:
            raise ValueError("no such attribute")

        task = asyncio.ensure_future(broken())
        task.add_done_callback(fleet.digest_ended)
        await asyncio.wait_for(fleet.all_done.wait(), 5)
        return fleet

    fleet = asyncio.run(run())
    assert fleet.failure == "decoding failed: ValueError('no such attribute')"
