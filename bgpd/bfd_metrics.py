"""Prometheus metric families for the BFD sessions, read from the wiring's last status.

Data flow: ``bgpd.metrics.MetricsServer`` asks the BFD engine for its status
(``BfdPeers.refresh``) before it answers a scrape of ``/metrics``; its collector then calls
``bfd_metrics(bfd)``, which turns ``BfdPeers.rows`` into metric families, as ``bgpd.metrics``
does for the sessions: nothing is counted per packet on the daemon's side, the engine keeps
the counters (``bfd.session_events.SessionCounters``) and they are read at scrape time. A
session replaced by a new one (its path changed) starts its counters again, which Prometheus
reads as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from bgpd.bfd_peers import BfdPeers


def bfd_metrics(bfd: BfdPeers) -> Iterator[Metric]:
    """One family per figure, one sample per BFD-enabled peer (and per drop reason)."""
    peer = ["peer"]
    up = GaugeMetricFamily(
        "myna_bfd_session_up", "1 while the peer's BFD session is Up, 0 otherwise.", labels=peer
    )
    held = GaugeMetricFamily(
        "myna_bfd_bgp_held",
        "1 while a BFD failure holds the peer's BGP session down (RFC 5882 4.1).",
        labels=peer,
    )
    changes = CounterMetricFamily(
        "myna_bfd_session_state_changes_total", "BFD state changes of the session.", labels=peer
    )
    detection = GaugeMetricFamily(
        "myna_bfd_session_detection_time_seconds",
        "The negotiated Detection Time (RFC 5880 6.8.4); 0 before the peer was heard.",
        labels=peer,
    )
    tx_interval = GaugeMetricFamily(
        "myna_bfd_session_tx_interval_seconds",
        "The negotiated interval between our packets (before jitter, RFC 5880 6.8.7).",
        labels=peer,
    )
    packets_in = CounterMetricFamily(
        "myna_bfd_session_packets_received_total",
        "BFD packets from the peer that passed every check.",
        labels=peer,
    )
    packets_out = CounterMetricFamily(
        "myna_bfd_session_packets_sent_total", "BFD packets sent to the peer.", labels=peer
    )
    auth_failures = CounterMetricFamily(
        "myna_bfd_session_auth_failures_total",
        "BFD packets from the peer refused by authentication (RFC 5880 6.7).",
        labels=peer,
    )
    silence = GaugeMetricFamily(
        "myna_bfd_session_longest_silence_seconds",
        "Longest wait between two of the peer's packets while both sides were Up.",
        labels=peer,
    )
    dropped = CounterMetricFamily(
        "myna_bfd_session_dropped_total",
        "BFD packets for the session discarded, by reason.",
        labels=["peer", "reason"],
    )
    for row in bfd.rows:
        name = row["peer"]
        up.add_metric([name], 1.0 if row["state"] == "Up" else 0.0)
        held.add_metric([name], 1.0 if row["bgp_held"] else 0.0)
        if "local_discriminator" not in row:
            continue  # no session in the engine: nothing counted
        changes.add_metric([name], row["state_changes"])
        detection.add_metric([name], row["detection_time_ms"] / 1000)
        tx_interval.add_metric([name], row["tx_interval_ms"] / 1000)
        packets_in.add_metric([name], row["packets_in"])
        packets_out.add_metric([name], row["packets_out"])
        auth_failures.add_metric([name], row["auth_failures"])
        silence.add_metric([name], row["longest_silence_ms"] / 1000)
        for reason, count in sorted(row["dropped"].items()):
            dropped.add_metric([name, reason.lower()], count)
    yield from (up, held, changes, detection, tx_interval, packets_in, packets_out)
    yield from (auth_failures, silence, dropped)
    if bfd.service is not None:
        engine_dropped = CounterMetricFamily(
            "myna_bfd_dropped_total",
            "BFD packets discarded before reaching a session (malformed, unknown "
            "discriminator, no session for the addresses), and send errors, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(bfd.engine_dropped.items()):
            engine_dropped.add_metric([reason.lower()], count)
        yield engine_dropped
        yield CounterMetricFamily(
            "myna_bfd_packets_received_total",
            "BFD datagrams the engine read, before any check.",
            value=bfd.engine_packets_in,
        )
