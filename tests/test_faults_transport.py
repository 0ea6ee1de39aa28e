"""Transport faults against a running Myna: RST mid-UPDATE, a zero-window peer, 200 flaps.

Role: the session and RIB survive what TCP and misbehaving peers do, and the other sessions do
not notice. Each test runs Myna ``M`` and a witness Myna ``W`` (iBGP, each announcing a block)
in one uvloop loop on loopback (``fault_injector.pair``); the raw injector
(``fault_injector.RawPeer``) plays the faulty peer from 127.0.0.2 (eBGP, AS 64496, so M passes
its routes on to W and W shows whether the other session converged). The netlink ENOBUFS storm
needs a real kernel and lives in ``test_faults_netlink.py``.

Data flow per test: the injector connects to M's listener, exchanges OPENs and sends UPDATEs
built with Myna's encoder; the test then breaks the connection (half an UPDATE and an RST;
never reading while sending KEEPALIVEs; connect-reset loops) and reads the outcome from M's and
W's Loc-RIBs (control API), M's session state and counters, and the process (tasks, file
descriptors, traced memory, the RIB's tables). Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import tracemalloc
from typing import Any

from fault_injector import (
    V4,
    M,
    RawPeer,
    W,
    announce,
    blocks_exchanged,
    established,
    in_loc_rib,
    open_bytes,
    pair,
)
from loopback_daemons import running, wait_for
from uvloop_runner import on_uvloop

from bgpd.daemon import Daemon
from rib.route import Origin
from speaker.control_messages import KEEPALIVE_MESSAGE
from speaker.negotiated import Negotiated
from speaker.nlri import prefix_from_text, prefix_text
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import State
from speaker.update_message import encode_end_of_rib

INJ = "127.0.0.2"
INJ_AS = 64496
EBGP = Negotiated(asn4=True, ibgp=False)
ATTRS = PathAttributes(origin=0, as_path=((2, (INJ_AS,)),), next_hop=bytes((198, 18, 0, 2)))
ROUTES_SENT = [prefix_from_text(f"198.18.{16 + i}.0/24") for i in range(8)]
ROUTES_TEXT = [prefix_text(p, V4) for p in ROUTES_SENT]
HALF_PREFIX = prefix_from_text("198.18.99.0/24")  # only ever sent in a cut UPDATE


def injector_peer(**extra: Any) -> dict[str, Any]:
    return {"address": INJ, "as": INJ_AS, "timers": {"error_wait": [0.01, 0.02]}, **extra}


def holds(daemon: Daemon, source: str, texts: list[str]) -> bool:
    return all(in_loc_rib(daemon, t, source) for t in texts)


def holds_none(daemon: Daemon, texts: list[str]) -> bool:
    return not any(daemon.api.routes({"prefix": t}) for t in texts)


def stale_flags(daemon: Daemon, texts: list[str]) -> set[str]:
    return {r.get("stale", "fresh") for t in texts for r in daemon.api.routes({"prefix": t})}


async def ready(m: Daemon) -> None:
    session = m.session(INJ)
    await wait_for(
        "M ready for the injector",
        lambda: session.state == State.ACTIVE and not session.connections,
    )


async def connect_and_announce(
    m: Daemon, graceful: int | None, restarting: bool = False, med: int | None = None
) -> RawPeer:
    """An established injector session that announced ``ROUTES_SENT`` (and End-of-RIB)."""
    await ready(m)
    peer = await RawPeer(INJ, M, m.listener.bound_port).connect()
    message = open_bytes(
        INJ_AS, "198.18.0.2", families=(V4,), graceful=graceful, restarting=restarting
    )
    await peer.handshake(message)
    await wait_for("Established", lambda: m.session(INJ).state == State.ESTABLISHED)
    attrs = ATTRS._replace(med=med)
    await peer.send(announce(V4, attrs, ROUTES_SENT, EBGP) + encode_end_of_rib(V4))
    return peer


async def half_update_then_reset(m: Daemon, peer: RawPeer) -> None:
    """Half of a valid UPDATE (cut inside its NLRI), then an RST."""
    whole = announce(V4, ATTRS._replace(med=7), [HALF_PREFIX], EBGP)
    half = whole[: len(whole) // 2]
    await peer.send(half)
    conn = m.session(INJ).fsm.established
    assert conn is not None
    await wait_for("M holding the half message", lambda: conn.reader.buffered == len(half))
    peer.reset()
    await wait_for("M's session down", lambda: m.session(INJ).state != State.ESTABLISHED)


@on_uvloop
async def test_half_update_then_reset_without_graceful_restart() -> None:
    m, w = pair([injector_peer()])
    async with running(w, m):
        await wait_for("M and W up with their blocks", lambda: blocks_exchanged(m, w))
        peer = await connect_and_announce(m, graceful=None)
        await wait_for("the injector's routes at W", lambda: holds(w, M, ROUTES_TEXT))
        await half_update_then_reset(m, peer)
        # No graceful restart: withdrawn at once, at M and at W; the half UPDATE never applied.
        await wait_for("the routes withdrawn at M", lambda: holds_none(m, ROUTES_TEXT))
        await wait_for("the routes withdrawn at W", lambda: holds_none(w, ROUTES_TEXT))
        assert not m.api.routes({"prefix": prefix_text(HALF_PREFIX, V4)})
        assert "connection lost" in m.session(INJ).fsm.last_error
        assert m.session(INJ).counters.notifications_sent == {}
        assert established(m, w) and blocks_exchanged(m, w)
        assert m.session(W).counters.flaps == 0
        # The injector can come straight back.
        peer = await connect_and_announce(m, graceful=None)
        await wait_for("the routes back at W", lambda: holds(w, M, ROUTES_TEXT))
        peer.close()


@on_uvloop
async def test_half_update_then_reset_with_graceful_restart() -> None:
    m, w = pair([injector_peer()])
    async with running(w, m):
        await wait_for("M and W up with their blocks", lambda: blocks_exchanged(m, w))
        peer = await connect_and_announce(m, graceful=5)
        await wait_for("the injector's routes at W", lambda: holds(w, M, ROUTES_TEXT))
        await half_update_then_reset(m, peer)
        # RFC 4724 4.2: kept, marked stale, still best (W keeps them too).
        await wait_for("the routes stale at M", lambda: stale_flags(m, ROUTES_TEXT) == {"stale"})
        assert holds(w, M, ROUTES_TEXT)
        assert not m.api.routes({"prefix": prefix_text(HALF_PREFIX, V4)})
        # The peer restarts and announces only half of them again, then End-of-RIB: the
        # stale rest goes, at M and at W.
        await ready(m)
        peer = await RawPeer(INJ, M, m.listener.bound_port).connect()
        await peer.handshake(
            open_bytes(INJ_AS, "198.18.0.2", families=(V4,), graceful=5, restarting=True)
        )
        await wait_for("Established again", lambda: m.session(INJ).state == State.ESTABLISHED)
        kept, dropped = ROUTES_TEXT[:4], ROUTES_TEXT[4:]
        await peer.send(announce(V4, ATTRS, ROUTES_SENT[:4], EBGP) + encode_end_of_rib(V4))
        await wait_for("the stale rest swept at M", lambda: holds_none(m, dropped))
        await wait_for("the stale rest gone at W", lambda: holds_none(w, dropped))
        assert stale_flags(m, kept) == {"fresh"}
        assert holds(w, M, kept)
        # Reset again, and this time the peer does not come back within its restart time.
        peer.reset()
        await wait_for("stale again", lambda: stale_flags(m, kept) == {"stale"})
        await wait_for("swept after the restart time", lambda: holds_none(m, kept), timeout=15)
        await wait_for("gone at W", lambda: holds_none(w, kept))
        assert established(m, w) and blocks_exchanged(m, w)
        assert m.session(W).counters.flaps == 0


# ---------------------------------------------------------------------------------------------
# A peer that stops reading but keeps sending KEEPALIVEs (zero window)

# Routes with distinct attribute sets (a MED each, 16 communities): one UPDATE of about 125
# octets per route. 40,000 of them make about 5 MB: more than the socket buffers take, so the
# transport's own buffer passes its 4 MB high-water mark too. 200 are a Calico node's table:
# they fit in the kernel's buffers and never reach that mark.
MANY, FEW = 40_000, 200
COMMUNITIES = tuple(64512 << 16 | n for n in range(16))
SEND_HOLD = 2.0


def many_prefixes(count: int) -> list[int]:
    """``count`` /32s from 198.18.128.0/17 and 198.19.128.0/17."""
    bases = (prefix_from_text("198.18.128.0/32"), prefix_from_text("198.19.128.0/32"))
    return [bases[i >> 15] + ((i & 0x7FFF) << 8) for i in range(count)]


async def stuck_peer(m: Daemon, w: Daemon, count: int) -> RawPeer:
    """An injector that stopped reading while M sends it ``count`` routes; W gets them all.

    The injector keeps sending KEEPALIVEs (it is alive, it only stopped reading) until M's
    Send Hold Timer ends the session; W, in the same update group, must get every route
    meanwhile.
    """
    await wait_for("M and W up with their blocks", lambda: blocks_exchanged(m, w))
    await ready(m)
    peer = await RawPeer(INJ, M, m.listener.bound_port, rcvbuf=1).connect()
    await peer.handshake(open_bytes(64512, "198.18.0.2", families=(V4,), hold_time=30))
    session = m.session(INJ)
    await wait_for("Established", lambda: session.state == State.ESTABLISHED)
    for i, prefix in enumerate(many_prefixes(count)):
        m.rib.originate(V4, [prefix], PathAttributes(med=i, communities=COMMUNITIES), Origin.STATIC)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while session.state == State.ESTABLISHED:
        await peer.send(KEEPALIVE_MESSAGE)
        assert loop.time() - started < 30, "the Send Hold Timer never fired"
        await asyncio.sleep(0.2)
    assert loop.time() - started >= SEND_HOLD
    assert "send hold timer expired" in session.fsm.last_error
    assert session.counters.notifications_sent == {(8, 0): 1}
    assert session.counters.flaps == 1 and not session.connections
    await wait_for("W holding every route", lambda: received(w, M) == count + 1)
    assert established(m, w) and m.session(W).counters.flaps == 0
    return peer


def zero_window_pair() -> tuple[Daemon, Daemon]:
    # KEEPALIVEs every second: M looks at the peer's progress each time it sends one.
    timers = {"send_hold_time": SEND_HOLD, "hold_time": 30, "keepalive_time": 1}
    return pair([{"address": INJ, "as": 64512, "timers": {**timers, "error_wait": [5, 10]}}])


def established_connections(port: int) -> str:
    """``ss`` lines of the established TCP connections whose local port is ``port``."""
    return subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@on_uvloop
async def test_zero_window_peer_with_a_calico_sized_table_gets_send_hold_expired() -> None:
    m, w = zero_window_pair()
    async with running(w, m):
        peer = await stuck_peer(m, w, FEW)
        # M closed its end (the routes wait in the kernel's buffer, no longer in M's).
        assert not established_connections(m.listener.bound_port)
        # Reading at last, the injector finds the NOTIFICATION after the UPDATEs, then the end.
        note = await peer.notification(timeout=30)
        assert (note.code, note.subcode) == (8, 0)
        await peer.closed()
        peer.close()


@on_uvloop
async def test_zero_window_peer_with_a_big_backlog_is_reset_after_a_grace_period() -> None:
    m, w = zero_window_pair()
    async with running(w, m):
        peer = await stuck_peer(m, w, MANY)
        # Megabytes still wait in M's own buffer: closing waits for them to be flushed. The
        # peer never reads, so after a grace period M resets the connection rather than keep
        # the socket and its queue for as long as the peer holds its window shut.
        port = m.listener.bound_port
        assert established_connections(port)
        await wait_for("M's socket released", lambda: not established_connections(port), 15)
        peer.close()


# ---------------------------------------------------------------------------------------------
# 200 flaps: nothing accumulates

FLAPS, WARM_UP, MIDWAY = 200, 40, 120
FLAP_TEXT = ROUTES_TEXT[:3]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def received(daemon: Daemon, peer: str) -> int:
    """Routes the RIB keeps from ``peer``."""
    status = daemon.rib.view.peer(peer)
    return 0 if status is None else sum(status.received.values())


def tables(m: Daemon) -> dict[str, int]:
    session = m.session(INJ)
    return {
        "sessions": len(m.sessions),
        "rib peers": len(m.rib.view.peers()),
        "update groups": m.rib.view.update_groups,
        "listener sessions": len(m.listener.sessions),
        "connections": len(session.connections),
        "fsm connections": len(session.fsm.connections),
        "fsm timers": len(session.fsm._timers),
        "connect tasks": len(session._connecting),
        "loc-rib": m.rib.view.prefix_count(),
        "ROUTES": m.rib.view.route_objects,
        "ATTRIBUTES": len(ATTRIBUTES),
    }


async def flap(m: Daemon, n: int) -> None:
    """Connect, OPEN, a few UPDATEs (a new MED each time), seen in the Loc-RIB, then an RST.

    Every other flap negotiates graceful restart (the routes go stale, then are replaced).
    """
    graceful = n % 2 == 0
    peer = await connect_and_announce(
        m, graceful=1 if graceful else None, restarting=graceful, med=n
    )
    await wait_for("the flap's routes in", lambda: holds(m, INJ, FLAP_TEXT))
    peer.reset()
    await wait_for("down", lambda: m.session(INJ).state != State.ESTABLISHED)


async def settled(m: Daemon, w: Daemon) -> dict[str, Any]:
    """Wait until nothing of the injector is left and an idle collection ran; measure."""
    await ready(m)
    await wait_for("the injector's routes gone at M", lambda: holds_none(m, ROUTES_TEXT))
    await wait_for("and at W", lambda: holds_none(w, ROUTES_TEXT))
    # Each RIB sweeps its own intern table of routes; W's routes hold attribute sets of the
    # process-wide table M's sweep measures, so W's sweep runs first (its idle spell's work).
    w.rib.sweep()
    schedule = m.rib.gc
    assert schedule is not None
    collections = schedule.full_collections
    await wait_for("an idle full collection", lambda: schedule.full_collections > collections)
    gc.collect()
    return {
        "tasks": len(asyncio.all_tasks()),
        "fds": fds(),
        "memory": traced_memory(),
        **tables(m),
    }


def traced_memory() -> int:
    """Octets allocated since tracing started and still alive, the harness's own left out.

    pytest keeps every log record of a test (its "Captured log" report): logging is turned
    down while flapping, and what logging and pytest allocate is not counted either.
    """
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, logging.__file__),
            tracemalloc.Filter(False, "*/_pytest/*"),
            tracemalloc.Filter(False, tracemalloc.__file__),
        ]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


@on_uvloop
async def test_200_flaps_leave_nothing_behind() -> None:
    m, w = pair([injector_peer()])
    quiet = logging.getLogger("myna")
    level = quiet.level
    async with running(w, m):
        assert m.rib.gc is not None
        # The daemon's idle maintenance (full collection, intern-table sweep), sooner than its
        # production pace so the test need not wait minutes for it.
        m.rib.gc.idle_after, m.rib.gc.min_interval = 0.05, 0.0
        await wait_for("M and W up with their blocks", lambda: blocks_exchanged(m, w))
        # Logging off while measuring: pytest keeps every record of a test, which would grow.
        quiet.setLevel(logging.ERROR)
        tracemalloc.start()
        try:
            for n in range(WARM_UP):
                await flap(m, n)
            warm = await settled(m, w)
            for n in range(WARM_UP, MIDWAY):
                await flap(m, n)
            mid = await settled(m, w)
            for n in range(MIDWAY, FLAPS):
                await flap(m, n)
            end = await settled(m, w)
        finally:
            tracemalloc.stop()
            quiet.setLevel(level)
        assert m.session(INJ).counters.flaps == FLAPS
        assert established(m, w) and blocks_exchanged(m, w)
        assert m.session(W).counters.flaps == 0
        # Counts: exactly as after the warm-up (tasks, descriptors, sessions, update groups,
        # the intern tables, the FSM's timers and connections).
        changed = {k: (warm[k], end[k]) for k in warm if k != "memory" and warm[k] != end[k]}
        assert not changed, changed
        # Memory: what the first flaps allocate for good (dict and free-list growth, caches)
        # flattens out (measured: about 200 octets a flap by the second half, shrinking); a
        # leak grows with every flap. What a flap leaves when something keeps it (a Route, two
        # attribute sets and their encodings, the update group's rewrite of them) was measured
        # at 1.2 KB, a connection's objects weigh more: 400 octets a flap is the limit.
        second_half = end["memory"] - mid["memory"]
        assert second_half < (FLAPS - MIDWAY) * 400, (warm["memory"], mid["memory"], end["memory"])
