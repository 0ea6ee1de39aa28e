"""Real TCP on loopback: two Myna daemons in one event loop, 127.0.0.1 and 127.0.0.2.

Covers what the in-memory FSM tests cannot: sockets, the listener matching peers by source
address, TCP-MD5 keys (same key up, wrong key never up), GTSM, refusing strangers with Cease
6/5, and the hold timer noticing a peer that stops answering. Every wait polls a condition
with a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from loopback_daemons import free_port, wait_for
from uvloop_runner import on_uvloop

from bgpd.config import parse_config
from bgpd.daemon import Daemon
from speaker.listener import REFUSALS_LOGGED, Listener
from speaker.nlri import prefix_from_text
from speaker.session_events import State
from speaker.wire_codes import Family

A, B = "127.0.0.1", "127.0.0.2"


def config(me: str, port: int, peer: str, peer_port: int, top: str = "", **peer_extra: Any) -> Any:
    """A daemon at ``me`` with one iBGP peer; short timers so tests are quick."""
    extra = "".join(f"\n    {k}: {v}" for k, v in peer_extra.items())
    announce = top or f'announce: ["{"198.19.1.0/26" if me == A else "198.19.2.0/26"}"]'
    return parse_config(
        f"""
router_id: {"198.18.0.1" if me == A else "198.18.0.2"}
local_as: 64512
listen: {{addresses: ["{me}"], port: {port}}}
timers: {{hold_time: 3, connect_delay: 0.1, connect_retry: 0.5, error_wait: [0.2, 1]}}
control: {{socket: null}}
{announce}
peers:
  - address: {peer}
    as: 64512
    port: {peer_port}
    source_address: {me}{extra}
"""
    )


@asynccontextmanager
async def daemons(
    a_extra: dict[str, Any] | None = None,
    b_extra: dict[str, Any] | None = None,
    a_top: str = "",
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Daemon A (active) and B (passive) peering over loopback; both closed afterwards."""
    port_a, port_b = free_port(A), free_port(B)
    a = Daemon(config(A, port_a, B, port_b, a_top, **(a_extra or {})))
    b = Daemon(config(B, port_b, A, port_a, passive="true", **(b_extra or {})))
    started: list[Daemon] = []
    try:
        for daemon in (b, a):
            await daemon.start()
            started.append(daemon)
        yield a, b
    finally:
        for daemon in started:
            await daemon.close()


def routes(daemon: Daemon, peer: str) -> set[str]:
    """The prefixes ``daemon`` holds from ``peer`` (as the status file would show)."""
    status: dict[str, Any] = daemon.status.status()
    peers: dict[str, Any] = status["peers"]
    return {p for prefixes in peers[peer]["routes"].values() for p in prefixes}


@on_uvloop
async def test_sessions_come_up_and_exchange_routes() -> None:
    async with daemons() as (a, b):
        await wait_for(
            "both Established",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
        )
        await wait_for(
            "routes exchanged",
            lambda: routes(a, B) == {"198.19.2.0/26"} and routes(b, A) == {"198.19.1.0/26"},
        )
        # The passive side never connected: exactly one connection each.
        assert len(a.session(B).connections) == 1 and len(b.session(A).connections) == 1


@on_uvloop
async def test_a_timer_armed_in_the_past_does_not_kill_the_session() -> None:
    """uvloop answers ``call_at`` in the past with a plain Handle (no ``when()``): re-arming over
    it must work, and the session stays up and keeps its KEEPALIVEs going."""
    async with daemons() as (a, b):
        await wait_for(
            "both Established",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
        )
        session = a.session(B)
        real = session.fsm.next_deadline
        session.fsm.next_deadline = lambda: asyncio.get_running_loop().time() - 1  # type: ignore[method-assign]
        session._reschedule()
        session._reschedule()
        session.fsm.next_deadline = real  # type: ignore[method-assign]
        sent = session.messages_sent
        # hold time 3 s: KEEPALIVEs every second; two more prove the timer runs on.
        await wait_for("KEEPALIVEs go on", lambda: session.messages_sent >= sent + 2)
        assert session.state == State.ESTABLISHED


@on_uvloop
async def test_md5_same_key_comes_up() -> None:
    async with daemons({"password": "s3cret"}, {"password": "s3cret"}) as (a, b):
        await wait_for(
            "Established with MD5",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
        )
        await wait_for("routes over the signed session", lambda: routes(a, B) == {"198.19.2.0/26"})


@on_uvloop
async def test_md5_wrong_key_never_comes_up() -> None:
    async with daemons({"password": "right"}, {"password": "wrong"}) as (a, b):
        # Give A several connect attempts: the kernel drops every unsigned/mis-signed SYN.
        await wait_for("three connect attempts", lambda: a.session(B).fsm.connect_attempts >= 3)
        assert a.session(B).state != State.ESTABLISHED
        assert b.session(A).state != State.ESTABLISHED
        assert not b.session(A).connections


@on_uvloop
async def test_md5_one_side_only_never_comes_up() -> None:
    async with daemons({"password": "only-a"}, {}) as (a, b):
        await wait_for("three connect attempts", lambda: a.session(B).fsm.connect_attempts >= 3)
        assert b.session(A).state != State.ESTABLISHED


@on_uvloop
async def test_gtsm_both_sides_comes_up() -> None:
    async with daemons({"ttl_security": 1}, {"ttl_security": 1}) as (a, b):
        await wait_for(
            "Established with GTSM",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
        )
        conn = a.session(B).connections[a.session(B).established_conn or 0]
        assert conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
        assert sock.getsockopt(socket.IPPROTO_IP, 21) == 255  # IP_MINTTL


@on_uvloop
async def test_gtsm_receiver_drops_low_ttl_sender() -> None:
    # B requires TTL 255; A sends with TTL 64 (the multihop default). The handshake completes
    # on B's listener, but from then on B's socket drops A's segments: A's OPEN never arrives
    # at B, A's hold timer ends each attempt, and the session never comes up.
    async with daemons({}, {"ttl_security": 1}) as (a, b):
        await wait_for("three connect attempts", lambda: a.session(B).fsm.connect_attempts >= 3)
        assert a.session(B).state != State.ESTABLISHED
        assert b.session(A).state not in (State.OPEN_CONFIRM, State.ESTABLISHED)


@on_uvloop
async def test_stranger_is_refused_with_cease_6_5_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with daemons() as (a, _b):
        port = a.listener.bound_port
        loop = asyncio.get_running_loop()
        for _ in range(3):
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind(("127.0.0.3", 0))
            await loop.sock_connect(sock, (A, port))
            data = b""
            while len(data) < 21:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 64), 5)
                if not chunk:
                    break
                data += chunk
            sock.close()
            assert data[:16] == b"\xff" * 16
            length, kind, code, subcode = struct.unpack(">HBBB", data[16:21])
            assert (length, kind, code, subcode) == (21, 3, 6, 5)
        refused = [r for r in caplog.records if "127.0.0.3" in r.getMessage()]
        assert len(refused) == 1


@on_uvloop
async def test_hold_timer_notices_a_silent_peer_and_session_returns() -> None:
    async with daemons() as (a, b):
        await wait_for(
            "both Established",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
        )
        # Freeze B: it stops reading and stops sending (as a SIGSTOPped process would).
        conn = b.session(A).connections[b.session(A).established_conn or 0]
        assert conn.transport is not None
        conn.transport.pause_reading()
        for timer in list(b.session(A).fsm._timers):
            b.session(A).fsm._timers.pop(timer)
        b.session(A)._reschedule()
        await wait_for(
            "A's hold timer (3 s) expires",
            # Counted, not read from last_error: the session may be back (and the error
            # cleared) before a poll sees it.
            lambda: a.session(B).counters.notifications_sent.get((4, 0)) == 1,
            timeout=8,
        )
        await wait_for(
            "the session comes back",
            lambda: (
                a.session(B).state == State.ESTABLISHED and b.session(A).state == State.ESTABLISHED
            ),
            timeout=20,
        )


CALICO_NODE = """
announce: ["198.19.1.0/26", "198.19.1.5/32", "198.18.200.0/24", "198.19.9.0/26"]
ip_pools:
  - {cidr: 198.19.0.0/16, ipip_mode: Always}
  - {cidr: 198.19.9.0/24, disable_bgp_export: true}
blocks: ["198.19.1.0/26"]
communities: {calico-block: "64512:100"}
prefix_advertisements: [{cidr: 198.19.1.0/26, communities: [calico-block, "64512:7"]}]
"""


@on_uvloop
async def test_calico_default_export_policy() -> None:
    # Exported: our own block, exactly, with its prefix-advertisement communities. Not exported:
    # a workload /32 inside our block, a prefix outside every pool, a pool with export disabled.
    async with daemons(a_top=CALICO_NODE) as (a, b):
        await wait_for("the block at B", lambda: routes(b, A) == {"198.19.1.0/26"})
        (best, _) = b.rib.view.lookup(Family.IPV4_UNICAST, prefix_from_text("198.19.1.0/26"))
        assert best is not None
        assert set(best.attrs.communities) == {64512 << 16 | 100, 64512 << 16 | 7}
        # All four are in A's own Loc-RIB: only export held three back.
        for text in ("198.19.1.0/26", "198.19.1.5/32", "198.18.200.0/24", "198.19.9.0/26"):
            assert a.rib.view.lookup(Family.IPV4_UNICAST, prefix_from_text(text))[0] is not None


class _Recorder:
    """The part of an asyncio transport ``Listener.refuse`` uses."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def test_refused_strangers_are_remembered_up_to_a_bound(caplog: pytest.LogCaptureFixture) -> None:
    # A scan of the BGP port from many addresses: each gets its Cease, memory stays bounded.
    listener = Listener([], 0)
    transports = [_Recorder() for _ in range(REFUSALS_LOGGED + 500)]
    with caplog.at_level("WARNING", logger="myna"):
        for n, transport in enumerate(transports):
            listener.refuse(f"2001:db8::{n:x}", transport)  # type: ignore[arg-type]
        listener.refuse("2001:db8::1", _Recorder())  # type: ignore[arg-type]  # again: not logged
    assert all(t.closed and t.written[16:21] == bytes((0, 21, 3, 6, 5)) for t in transports)
    assert len(listener.refused) == REFUSALS_LOGGED
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == REFUSALS_LOGGED + 1
    assert "are not logged" in lines[-1]
