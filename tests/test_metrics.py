"""``/metrics``, ``/healthz`` and ``/readyz`` of real daemons on loopback, scraped over HTTP.

Daemons run in this test's uvloop with ``metrics: {enabled: true, port: 0}`` (the bound port is
``daemon.metrics.bound_port``) and no control socket; pages are fetched with asyncio streams (a
blocking client would stall the daemons sharing the loop) and parsed with prometheus-client's
own parser. A hand-written peer (raw socket, exact messages) pins the message counters and
keeps the daemon in graceful-restart selection deferral until it sends End-of-RIB. Kernel sync
is never enabled: its metrics are checked with a ``FibProgrammer`` on a fake route writer.
Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from loopback_daemons import free_port, running, wait_for
from prometheus_client.parser import text_string_to_metric_families
from uvloop_runner import on_uvloop

from bgpd.config import DaemonConfig, Peer, parse_config
from bgpd.daemon import Daemon, capabilities_for
from kernel_sync.fib_programmer import FibProgrammer
from kernel_sync.kernel_events import KernelEvents
from kernel_sync.route_messages import RouteChange
from kernel_sync.route_writer import BatchResult
from rib.loc_rib import Change
from rib.route import Route, Source
from speaker.control_messages import KEEPALIVE_MESSAGE
from speaker.nlri import prefix_from_text
from speaker.open_message import encode_open, open_for
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import State
from speaker.update_message import encode_end_of_rib
from speaker.wire_codes import Family

A, B, C = "127.0.0.1", "127.0.0.2", "127.0.0.3"
V4 = "ipv4_unicast"
ROUTER_IDS = {A: "198.18.0.1", B: "198.18.0.2", C: "198.18.0.3"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def config(me: str, port: int, peers: list[tuple[str, int, str]], top: str = "") -> DaemonConfig:
    """A daemon at ``me`` with iBGP ``peers`` (address, port, extra YAML), metrics on port 0."""
    peer_yaml = "".join(
        f"\n  - {{address: {address}, as: 64512, port: {peer_port}, source_address: {me}{extra}}}"
        for address, peer_port, extra in peers
    )
    return parse_config(
        f"""
router_id: {ROUTER_IDS[me]}
local_as: 64512
listen: {{addresses: ["{me}"], port: {port}}}
timers: {{hold_time: 3, connect_delay: 0.1, connect_retry: 0.5, error_wait: [0.2, 1]}}
metrics: {{enabled: true, address: {me}, port: 0}}
control: {{socket: null}}
{top}
peers:{peer_yaml if peers else " []"}
"""
    )


async def http(
    daemon: Daemon, path: str, method: str = "GET", headers: str = ""
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request to the daemon's metrics server."""
    server = daemon.metrics
    assert server is not None and server.bound_port
    reader, writer = await asyncio.open_connection(server.address, server.bound_port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: myna\r\n{headers}\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), fields, body.decode()


async def scrape(daemon: Daemon) -> Samples:
    """Every sample of /metrics by (name, labels)."""
    status, _, body = await http(daemon, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value (None when absent)."""
    return samples.get((name, frozenset(labels.items())))


async def scraped(
    daemon: Daemon, what: str, condition: Callable[[Samples], bool], timeout: float = 10.0
) -> Samples:
    """Scrape until ``condition`` holds; the samples that satisfied it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        samples = await scrape(daemon)
        if condition(samples):
            return samples
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def established(*pairs: tuple[Daemon, str]) -> Callable[[], bool]:
    return lambda: all(d.session(peer).state == State.ESTABLISHED for d, peer in pairs)


@on_uvloop
async def test_scrape_counts_session_routes_reset_and_cease() -> None:
    port_a, port_b = free_port(A), free_port(B)
    a = Daemon(config(A, port_a, [(B, port_b, "")], 'announce: ["198.19.1.0/26"]'))
    b = Daemon(config(B, port_b, [(A, port_a, ", passive: true")], 'announce: ["198.19.2.0/26"]'))
    async with running(b, a):
        await wait_for("both Established", established((a, B), (b, A)))
        # A has B's route and has advertised its own; every UPDATE B sent has reached A.
        b_sent: list[Samples] = []

        def exchanged(samples: Samples) -> bool:
            return (
                value(samples, "myna_peer_prefixes_accepted", peer=B, family=V4) == 1
                and value(samples, "myna_peer_prefixes_advertised", peer=B, family=V4) == 1
                and value(samples, "myna_peer_messages_received_total", peer=B, type="update")
                == value(b_sent[-1], "myna_peer_messages_sent_total", peer=A, type="update")
            )

        async def a_after_b() -> Samples:
            b_sent.append(await scrape(b))
            return await scrape(a)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        samples = await a_after_b()
        while not exchanged(samples):
            assert loop.time() < deadline, "routes were not exchanged"
            await asyncio.sleep(0.05)
            samples = await a_after_b()

        states = {s: value(samples, "myna_peer_state", peer=B, state=s.label) for s in State}
        assert states.pop(State.ESTABLISHED) == 1
        assert set(states.values()) == {0}
        uptime = value(samples, "myna_peer_uptime_seconds", peer=B)
        assert uptime is not None and 0 <= uptime < 60
        assert value(samples, "myna_peer_messages_sent_total", peer=B, type="open") == 1
        assert value(samples, "myna_peer_messages_received_total", peer=B, type="open") == 1
        for direction in ("sent", "received"):
            keepalives = value(
                samples, f"myna_peer_messages_{direction}_total", peer=B, type="keepalive"
            )
            assert keepalives is not None and keepalives >= 1
            assert (
                value(samples, f"myna_peer_messages_{direction}_total", peer=B, type="notification")
                == 0
            )
            octets = value(samples, f"myna_peer_{direction}_bytes_total", peer=B)
            assert octets is not None and octets > 0
        # One UPDATE with B's block and one End-of-RIB at least.
        updates = value(samples, "myna_peer_messages_received_total", peer=B, type="update")
        assert updates is not None and updates >= 2
        assert value(samples, "myna_peer_prefixes_received_total", peer=B, family=V4) == 1
        assert value(samples, "myna_loc_rib_prefixes", family=V4) == 2
        assert value(samples, "myna_adj_rib_in_routes", family=V4) == 1
        assert value(samples, "myna_rib_selection_deferred") == 0
        assert value(samples, "myna_peer_flaps_total", peer=B) == 0
        latency = value(samples, "myna_rib_update_latency_seconds_count")
        assert latency is not None and latency >= 1
        assert value(samples, "myna_rib_update_latency_seconds_bucket", le="+Inf") == latency
        assert not [k for k in samples if k[0].startswith("myna_peer_notifications")]
        assert not [k for k in samples if k[0].startswith("myna_kernel")]  # kernel sync is off
        assert value(samples, "process_cpu_seconds_total") is not None

        # A resets the session with an administrative shutdown (Cease 6/2).
        a.session(B).stop("metrics test")
        await wait_for("B sees the session end", lambda: b.session(A).state != State.ESTABLISHED)
        samples = await scrape(a)
        assert (
            value(samples, "myna_peer_notifications_sent_total", peer=B, code="6", subcode="2") == 1
        )
        assert value(samples, "myna_peer_messages_sent_total", peer=B, type="notification") == 1
        assert value(samples, "myna_peer_flaps_total", peer=B) == 1
        assert value(samples, "myna_peer_state", peer=B, state="Idle") == 1
        assert value(samples, "myna_peer_uptime_seconds", peer=B) == 0
        samples_b = await scraped(
            b,
            "A's routes withdrawn at B",
            lambda s: value(s, "myna_peer_prefixes_accepted", peer=A, family=V4) == 0,
        )
        assert (
            value(
                samples_b, "myna_peer_notifications_received_total", peer=A, code="6", subcode="2"
            )
            == 1
        )
        assert (
            value(samples_b, "myna_peer_messages_received_total", peer=A, type="notification") == 1
        )
        assert value(samples_b, "myna_peer_flaps_total", peer=A) == 1

        # Back up: a second OPEN each way, A's block received a second time, still one flap.
        a.session(B).start()
        await wait_for("Established again", established((a, B), (b, A)))
        samples_b = await scraped(
            b,
            "A's route back at B",
            lambda s: value(s, "myna_peer_prefixes_accepted", peer=A, family=V4) == 1,
        )
        assert value(samples_b, "myna_peer_prefixes_received_total", peer=A, family=V4) == 2
        assert value(samples_b, "myna_peer_messages_received_total", peer=A, type="open") == 2
        assert value(samples_b, "myna_peer_flaps_total", peer=A) == 1
        assert value(samples_b, "myna_peer_state", peer=A, state="Established") == 1


class HandWrittenPeer:
    """B as raw bytes: an OPEN with graceful restart (no Restart State flag), then silence."""

    def __init__(self) -> None:
        self.sent = 0  # octets written
        self.sock = socket.socket()

    async def connect(self, port: int) -> None:
        self.sock.setblocking(False)
        self.sock.bind((B, 0))
        await asyncio.get_running_loop().sock_connect(self.sock, (A, port))

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)
        self.sent += len(data)

    async def establish(self) -> None:
        peer = Peer.model_validate({"address": A, "as": 64512, "add_paths": "off"})
        caps = capabilities_for(peer, 64512, restarting=False)
        # Hold time 0: no KEEPALIVEs either way once Established.
        await self.send(encode_open(open_for(64512, 0, 0xC6120002, caps)))
        await self.send(KEEPALIVE_MESSAGE)


@on_uvloop
async def test_readyz_waits_for_established_and_end_of_selection_deferral() -> None:
    # Nobody listens at B's port: A's own connects fail; B connects in by hand instead.
    a = Daemon(config(A, free_port(A), [(B, free_port(B), "")]))
    peer = HandWrittenPeer()
    async with running(a):
        status, _, body = await http(a, "/readyz")
        assert status == 503
        assert "BGP not established with 127.0.0.2" in body
        assert "graceful restart in progress" in body
        assert (await http(a, "/healthz"))[0] == 200

        await peer.connect(a.listener.bound_port)
        await peer.establish()
        await wait_for("Established with the hand-written peer", established((a, B)))
        # Established, but B is a graceful-restart peer that has not sent End-of-RIB yet.
        status, _, body = await http(a, "/readyz")
        assert (status, body) == (
            503,
            "not ready: graceful restart in progress: best-path selection waits for End-of-RIB\n",
        )
        assert value(await scrape(a), "myna_rib_selection_deferred") == 1

        await peer.send(encode_end_of_rib(Family.IPV4_UNICAST))
        await wait_for("selection deferral over", lambda: not a.rib.view.deferring)
        status, _, body = await http(a, "/readyz")
        assert (status, body) == (200, "ready: BGP established with 1 of 1 peers\n")
        samples = await scraped(
            a,
            "the End-of-RIB counted",
            lambda s: value(s, "myna_peer_messages_received_total", peer=B, type="update") == 1,
        )
        # Exactly what the hand-written peer sent.
        for kind, count in (("open", 1), ("keepalive", 1), ("notification", 0)):
            assert value(samples, "myna_peer_messages_received_total", peer=B, type=kind) == count
        assert value(samples, "myna_peer_received_bytes_total", peer=B) == peer.sent
        assert value(samples, "myna_peer_prefixes_received_total", peer=B, family=V4) is None
        assert value(samples, "myna_rib_selection_deferred") == 0

        peer.sock.close()
        await wait_for("session down", lambda: a.session(B).state != State.ESTABLISHED)
        status, _, body = await http(a, "/readyz")
        assert status == 503 and "BGP not established with 127.0.0.2" in body
        assert value(await scrape(a), "myna_peer_flaps_total", peer=B) == 1


@on_uvloop
async def test_readyz_threshold_rules_and_no_peers() -> None:
    port_a, port_b = free_port(A), free_port(B)
    # A also has C, which never answers; A does not defer selection.
    a = Daemon(config(A, port_a, [(B, port_b, ""), (C, free_port(C), "")], "selection_deferral: 0"))
    b = Daemon(config(B, port_b, [(A, port_a, ", passive: true")]))
    lonely = Daemon(config(C, free_port(C), []))
    async with running(b, a, lonely):
        # No peers: ready (calico-node's rule), and no selection deferral to wait through.
        await wait_for("no deferral without peers", lambda: not lonely.rib.view.deferring)
        assert await http(lonely, "/readyz") == (
            200,
            {
                "content-type": "text/plain; charset=utf-8",
                "content-length": "31",
                "connection": "close",
            },
            "ready: no BGP peers configured\n",
        )
        await wait_for("A and B Established", established((a, B), (b, A)))
        status, _, body = await http(a, "/readyz")
        assert status == 503
        assert body == (
            "not ready: BGP not established with 127.0.0.3 "
            "(every peer must be up in the first 30 s)\n"
        )
        assert a.metrics is not None
        a.metrics.ready_threshold = 0.0  # past the start-up window: one peer up suffices
        assert (await http(a, "/readyz"))[::2] == (
            200,
            "ready: BGP established with 1 of 2 peers\n",
        )
        b.session(A).stop("gone")
        await wait_for("A's session to B down", lambda: a.session(B).state != State.ESTABLISHED)
        status, _, body = await http(a, "/readyz")
        assert status == 503 and "(no peer is up)" in body


@on_uvloop
async def test_http_paths_methods_and_content_types() -> None:
    daemon = Daemon(config(A, free_port(A), []))
    async with running(daemon):
        status, fields, body = await http(daemon, "/metrics")
        assert status == 200 and fields["content-type"].startswith("text/plain")
        assert "# TYPE myna_rib_update_latency_seconds histogram" in body
        status, fields, body = await http(
            daemon, "/metrics", headers="Accept: application/openmetrics-text; version=1.0.0\r\n"
        )
        assert status == 200 and fields["content-type"].startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n")
        status, fields, body = await http(daemon, "/healthz", method="HEAD")
        assert (status, body, fields["content-length"]) == (200, "", "27")
        assert (await http(daemon, "/nothing"))[0] == 404
        status, fields, _ = await http(daemon, "/metrics", method="POST")
        assert (status, fields["allow"]) == (405, "GET, HEAD")
        assert (await http(daemon, "/healthz?verbose=1"))[0] == 200
    assert daemon.metrics is not None and daemon.metrics._server is None  # closed with it


class FakeWriter:
    """A ``RouteWriter`` whose kernel accepts every change on the next turn of the loop."""

    def submit(self, changes: list[RouteChange]) -> asyncio.Future[BatchResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchResult] = loop.create_future()
        loop.call_soon(future.set_result, BatchResult(changes, [0] * len(changes), {}))
        return future


@on_uvloop
async def test_kernel_metrics_come_from_kernel_sync() -> None:
    daemon = Daemon(config(A, free_port(A), []))
    async with running(daemon):
        fib = FibProgrammer(FakeWriter())  # type: ignore[arg-type]
        daemon.fib = fib
        daemon.rib.add_channel(fib)
        daemon.kernel_events = KernelEvents()  # not started: no netlink socket
        daemon.kernel_events.resyncs = 2
        source = Source("127.0.0.2", address=0x7F000002, router_id=0xC6120002, asn=64512)
        route = Route(source, ATTRIBUTES.intern(PathAttributes(next_hop=bytes([127, 0, 0, 2]))))
        prefix = prefix_from_text("198.19.2.0/26")
        fib.publish([Change(Family.IPV4_UNICAST, prefix, None, (), route, (route,))])
        samples = await scraped(
            daemon,
            "the write acknowledged",
            lambda s: value(s, "myna_kernel_write_latency_seconds_count") == 1,
        )
        assert value(samples, "myna_kernel_routes_installed") == 1
        assert value(samples, "myna_kernel_route_writes_total") == 1
        assert value(samples, "myna_kernel_route_write_errors_total") == 0
        assert value(samples, "myna_kernel_route_repairs_total") == 0
        assert value(samples, "myna_kernel_resyncs_total") == 2
        assert value(samples, "myna_kernel_monitor_overruns_total") == 0
        assert value(samples, "myna_kernel_write_latency_seconds_bucket", le="+Inf") == 1
        latency = value(samples, "myna_kernel_write_latency_seconds_sum")
        assert latency is not None and 0 <= latency < 5
        assert value(samples, "myna_kernel_routes_learned") is None  # no learner
