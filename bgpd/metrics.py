"""Prometheus metrics, ``/healthz`` and ``/readyz`` over HTTP, served from the daemon's own loop.

Data flow: nothing is updated per event for Prometheus. The sessions keep plain ints
(``speaker.session_counters.SessionCounters``, owned by each ``PeerFsm``), the RIB and kernel
sync keep theirs (``Rib.update_latency``, ``FibProgrammer.counters`` and ``write_latency``,
``KernelEvents.resyncs``...), and ``DaemonCollector`` reads them, with the sessions' states and
the RIB's table sizes, only when Prometheus scrapes. ``MetricsServer`` is a small HTTP/1.1
server on ``asyncio.start_server``: each request is answered in the event loop that runs the
daemon, so the collector reads the daemon's dicts between two of its steps, never while a
step is half done. (prometheus-client's own ``start_http_server`` answers from a thread, which
would read those dicts while the loop changes them.) A scrape costs a few microseconds per
peer and per family: table sizes come from the RIB's read API (counts it keeps), never from
walking a table.

``/healthz`` answers 200 whenever the loop answers at all (a loop stuck in a long step does
not answer, and the probe times out). ``/readyz`` applies calico-node's rules for BIRD
(``calico-node -bird-ready``, ``node/pkg/health``): no peers configured is ready; within the
first ``ready_threshold`` seconds (30, calico's ``--threshold-time``) every configured peer must
be Established, afterwards one suffices; and never while graceful-restart recovery runs (the
RIB defers best-path selection, RFC 4724). Calico counts its threshold from the nodename
file's mtime; Myna counts it from the moment the daemon started its sessions. Calico only
checks graceful restart inside the threshold; Myna checks it always (selection deferral ends
on its own timer anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from speaker.session_counters import MESSAGE_TYPES, LatencyHistogram, SessionCounters
from speaker.session_events import State
from speaker.wire_codes import Family

if TYPE_CHECKING:
    from bgpd.daemon_state import DaemonState
    from speaker.transport import PeerSession

LOG = logging.getLogger("myna.metrics")

READY_THRESHOLD = 30.0  # seconds; calico-node's -bird-ready --threshold-time default
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request or read the answer
REQUEST_LIMIT = 16384  # octets of request line and headers
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}
_TEXT = "text/plain; charset=utf-8"


def _family(family: Family) -> str:
    return family.name.lower()  # ipv4_unicast, ipv6_unicast


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def histogram(name: str, documentation: str, values: LatencyHistogram) -> HistogramMetricFamily:
    """A ``LatencyHistogram`` as a Prometheus histogram family."""
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[(_le(bound), count) for bound, count in values.cumulative()],
        sum_value=values.sum,
    )


class DaemonCollector(Collector):
    """Reads the daemon's state at scrape time (see the module docstring)."""

    def __init__(self, daemon: DaemonState, clock: asyncio.AbstractEventLoop) -> None:
        self.daemon = daemon
        self.clock = clock  # the loop whose time() the FSMs' timestamps are in

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the registry must not call ``collect`` to learn names."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read now."""
        yield from self._sessions()
        yield from self._prefixes()
        yield from self._rib()
        yield from self._kernel()

    def _sessions(self) -> Iterator[Metric]:
        peer = ["peer"]
        state = GaugeMetricFamily(
            "myna_peer_state",
            "1 for the RFC 4271 state the session is in, 0 for the others.",
            labels=["peer", "state"],
        )
        uptime = GaugeMetricFamily(
            "myna_peer_uptime_seconds",
            "Seconds since the session reached Established; 0 when it is not Established.",
            labels=peer,
        )
        flaps = CounterMetricFamily(
            "myna_peer_flaps_total", "Times the session left Established.", labels=peer
        )
        attempts = CounterMetricFamily(
            "myna_peer_connect_attempts_total", "Outgoing TCP connections tried.", labels=peer
        )
        received = CounterMetricFamily(
            "myna_peer_messages_received_total",
            "BGP messages received, by type.",
            labels=["peer", "type"],
        )
        sent = CounterMetricFamily(
            "myna_peer_messages_sent_total",
            "BGP messages written to the peer's socket, by type.",
            labels=["peer", "type"],
        )
        bytes_in = CounterMetricFamily(
            "myna_peer_received_bytes_total", "Octets read from the peer.", labels=peer
        )
        bytes_out = CounterMetricFamily(
            "myna_peer_sent_bytes_total", "Octets written to the peer.", labels=peer
        )
        note_labels = ["peer", "code", "subcode"]
        notes_in = CounterMetricFamily(
            "myna_peer_notifications_received_total",
            "NOTIFICATION messages received, by error code and subcode.",
            labels=note_labels,
        )
        notes_out = CounterMetricFamily(
            "myna_peer_notifications_sent_total",
            "NOTIFICATION messages sent, by error code and subcode.",
            labels=note_labels,
        )
        now = self.clock.time()
        for session in self.daemon.sessions:
            name = session.name
            fsm = session.fsm
            current = session.state
            for each in State:
                state.add_metric([name, each.label], 1.0 if each == current else 0.0)
            since = fsm.established_at
            up = now - since if current == State.ESTABLISHED and since is not None else 0.0
            uptime.add_metric([name], max(0.0, up))
            counters: SessionCounters = session.counters
            flaps.add_metric([name], counters.flaps)
            attempts.add_metric([name], fsm.connect_attempts)
            for kind in MESSAGE_TYPES:
                received.add_metric([name, kind.name.lower()], counters.received[kind])
                sent.add_metric([name, kind.name.lower()], counters.sent[kind])
            bytes_in.add_metric([name], counters.received_bytes)
            bytes_out.add_metric([name], counters.sent_bytes)
            for (code, subcode), count in sorted(counters.notifications_received.items()):
                notes_in.add_metric([name, str(code), str(subcode)], count)
            for (code, subcode), count in sorted(counters.notifications_sent.items()):
                notes_out.add_metric([name, str(code), str(subcode)], count)
        yield from (state, uptime, flaps, attempts, received, sent, bytes_in, bytes_out)
        yield from (notes_in, notes_out)

    def _prefixes(self) -> Iterator[Metric]:
        labels = ["peer", "family"]
        received = CounterMetricFamily(
            "myna_peer_prefixes_received_total",
            "Prefixes the peer announced (NLRI in its UPDATEs, before import policy).",
            labels=labels,
        )
        withdrawn = CounterMetricFamily(
            "myna_peer_prefixes_withdrawn_total",
            "Prefixes the peer withdrew (including RFC 7606 treat-as-withdraw).",
            labels=labels,
        )
        accepted = GaugeMetricFamily(
            "myna_peer_prefixes_accepted",
            "Routes from the peer kept after import policy (paths with ADD-PATH; stale ones "
            "included during graceful restart).",
            labels=labels,
        )
        advertised = GaugeMetricFamily(
            "myna_peer_prefixes_advertised",
            "Routes (paths with ADD-PATH) the peer currently holds from us, all families.",
            labels=labels,
        )
        view = self.daemon.rib.view
        for session in self.daemon.sessions:
            name = session.name
            counters = session.counters
            for family, count in sorted(counters.prefixes_received.items()):
                received.add_metric([name, _family(family)], count)
            for family, count in sorted(counters.prefixes_withdrawn.items()):
                withdrawn.add_metric([name, _family(family)], count)
            peer = view.peer(name)
            if peer is None:
                continue
            for family in sorted(set(peer.families) | set(peer.received)):
                accepted.add_metric([name, _family(family)], peer.received.get(family, 0))
            # The update group counts routes, not families: one figure, under the family the
            # session speaks (the peer's first).
            families = sorted(peer.families)
            if families:
                advertised.add_metric([name, _family(families[0])], view.advertised(name))
        yield from (received, withdrawn, accepted, advertised)

    def _rib(self) -> Iterator[Metric]:
        rib = self.daemon.rib
        family = ["family"]
        loc = GaugeMetricFamily(
            "myna_loc_rib_prefixes",
            "Prefixes in the Loc-RIB (each with its candidates, best route and ECMP set).",
            labels=family,
        )
        view = rib.view
        for fam in view.families():
            loc.add_metric([_family(fam)], view.prefix_count(fam))
        adj_in = GaugeMetricFamily(
            "myna_adj_rib_in_routes",
            "Routes received from every peer and kept after import policy (the Loc-RIB's "
            "candidates; Myna keeps no separate Adj-RIB-In).",
            labels=family,
        )
        totals: dict[Family, int] = {}
        for peer in view.peers():
            for fam, count in peer.received.items():
                totals[fam] = totals.get(fam, 0) + count
        for fam, count in sorted(totals.items()):
            adj_in.add_metric([_family(fam)], count)
        yield loc
        yield adj_in
        yield GaugeMetricFamily(
            "myna_rib_selection_deferred",
            "1 while best-path selection waits for End-of-RIB after a restart (RFC 4724).",
            value=1.0 if rib.view.deferring else 0.0,
        )
        yield GaugeMetricFamily(
            "myna_rib_update_groups",
            "Update groups (peers sharing one export and encoding).",
            value=rib.view.update_groups,
        )
        yield CounterMetricFamily(
            "myna_rib_prefixes_processed_total",
            "Prefix changes applied to the Loc-RIB.",
            value=rib.view.prefixes_processed,
        )
        yield GaugeMetricFamily(
            "myna_rib_longest_slice_seconds",
            "Longest stretch of RIB work between two yields to the event loop (wall time).",
            value=rib.longest_slice,
        )
        yield histogram(
            "myna_rib_update_latency_seconds",
            "Seconds from a batch of UPDATEs decoded (one socket read) until its routes are "
            "in the Loc-RIB and the changes handed to the update groups and kernel sync.",
            rib.update_latency,
        )

    def _kernel(self) -> Iterator[Metric]:
        daemon = self.daemon
        fib = daemon.fib
        if fib is not None:
            yield GaugeMetricFamily(
                "myna_kernel_routes_installed",
                "BGP routes Myna holds in the kernel's FIB.",
                value=len(fib.installed),
            )
            yield GaugeMetricFamily(
                "myna_kernel_routes_waiting",
                "Selected routes waiting for the kernel (missing device, unresolved next hop, "
                "refused write to retry).",
                value=len(fib.waiting),
            )
            for key, name, doc in (
                ("writes", "myna_kernel_route_writes_total", "Route writes sent to the kernel."),
                ("errors", "myna_kernel_route_write_errors_total", "Route writes refused."),
                ("repairs", "myna_kernel_route_repairs_total", "Drifted routes written again."),
                ("retries", "myna_kernel_route_retries_total", "Rounds of waiting routes retried."),
            ):
                yield CounterMetricFamily(name, doc, value=fib.counters[key])
            yield histogram(
                "myna_kernel_write_latency_seconds",
                "Seconds from a batch of route writes submitted to netlink until its last ack.",
                fib.write_latency,
            )
        events = daemon.kernel_events
        if events is not None:
            yield CounterMetricFamily(
                "myna_kernel_resyncs_total",
                "Re-reads of the kernel's tables (overruns, link or address changes, periodic).",
                value=events.resyncs,
            )
            yield CounterMetricFamily(
                "myna_kernel_monitor_overruns_total",
                "Times kernel notifications were lost (ENOBUFS).",
                value=events.overruns,
            )
        if daemon.learner is not None:
            yield GaugeMetricFamily(
                "myna_kernel_routes_learned",
                "Kernel routes announced as this node's own (Felix's blocks, static routes).",
                value=len(daemon.learner.learned),
            )


class MetricsServer:
    """HTTP ``/metrics``, ``/healthz`` and ``/readyz`` for one daemon (module docstring).

    ``port`` 0 picks a free port; ``bound_port`` says which once ``start`` returned.
    """

    def __init__(
        self,
        daemon: DaemonState,
        address: str = "127.0.0.1",
        port: int = 9179,
        ready_threshold: float = READY_THRESHOLD,
    ) -> None:
        self.daemon = daemon
        self.address = address
        self.port = port
        self.ready_threshold = ready_threshold
        self.bound_port = 0
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(daemon, self._loop))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (the readiness threshold counts from the server's creation)."""
        self._server = await asyncio.start_server(
            self._serve, self.address, self.port, reuse_address=True, limit=REQUEST_LIMIT
        )
        self.bound_port = int(self._server.sockets[0].getsockname()[1])
        host = f"[{self.address}]" if ":" in self.address else self.address
        LOG.info("metrics on http://%s:%d/metrics", host, self.bound_port)

    async def close(self) -> None:
        """Stop listening and drop the connections still open."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._clients):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    # -- answers -------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """calico-node's BIRD readiness rules (module docstring): (ready, why)."""
        sessions: list[PeerSession] = self.daemon.sessions
        if not sessions:
            return True, "ready: no BGP peers configured"
        down = [s.name for s in sessions if s.state != State.ESTABLISHED]
        up = len(sessions) - len(down)
        problems: list[str] = []
        if self.daemon.rib.view.deferring:
            problems.append(
                "graceful restart in progress: best-path selection waits for End-of-RIB"
            )
        age = self._loop.time() - self.started
        if down and (age < self.ready_threshold or not up):
            rule = (
                f"every peer must be up in the first {self.ready_threshold:g} s"
                if age < self.ready_threshold
                else "no peer is up"
            )
            problems.append(f"BGP not established with {','.join(down)} ({rule})")
        if problems:
            return False, "not ready: " + "; ".join(problems)
        return True, f"ready: BGP established with {up} of {len(sessions)} peers"

    def answer(self, method: str, path: str, accept: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if method not in ("GET", "HEAD"):
            return 405, _TEXT, b"only GET and HEAD\n"
        if path == "/metrics":
            encoder, content_type = choose_encoder(accept)
            return 200, content_type, encoder(self.registry)
        if path == "/healthz":
            return 200, _TEXT, b"ok: the event loop answers\n"
        if path == "/readyz":
            ready, why = self.readiness()
            return (200 if ready else 503), _TEXT, why.encode() + b"\n"
        return 404, _TEXT, b"not found: try /metrics, /healthz or /readyz\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            words = lines[0].split()
            accept = ""
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "accept":
                    accept = value.strip()
            if len(words) != 3 or not words[2].startswith("HTTP/"):
                status, content_type, body = 400, _TEXT, b"bad request\n"
                method = "GET"
            else:
                method, target = words[0], words[1]
                try:
                    status, content_type, body = self.answer(method, target.split("?")[0], accept)
                except Exception:
                    LOG.exception("answering %s %s failed", method, target)
                    status, content_type, body = 500, _TEXT, b"internal error\n"
            response = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                + ("Allow: GET, HEAD\r\n" if status == 405 else "")
                + "Connection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(response if method == "HEAD" else response + body)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_TIMEOUT)
