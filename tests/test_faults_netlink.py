"""A netlink ENOBUFS storm: Myna's kernel learning ends equal to the kernel, and so does its peer.

Role: the transport faults of ``test_faults_transport.py`` need no kernel; this one does. Myna
(``myna run`` in a namespace of the test bed) learns Felix's block blackholes (protocol 80)
through a notification socket of 1 KiB (``kernel.monitor_buffer``), so that bursts of route
changes overflow it (ENOBUFS) again and again; BIRD 2 in another namespace is its iBGP peer.

Data flow: the test writes bursts of thousands of blackhole adds and deletes into Myna's
namespace with ``ip -batch``, one burst straight after the other and with no wait between
them, several rounds, and ends with a known set in the kernel. It then reads the kernel's own
set (``ip -j route show proto 80``) and waits, with deadlines, until Myna's learned routes
(its control socket, ``routes``) and BIRD's received routes (``birdc``) are exactly that set.
The periodic safety-net re-read is off (``reconcile_interval: 0``): only the overrun re-reads
may bring Myna back in line. The status file must count overruns and re-reads.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from originate_recorder import OriginateRecorder
from testbed import Bird2Peer, Host, Neighbor, Topology
from testbed.myna_peer import MynaPeer
from testbed.topology import wait_for

from bgpd.control_socket import request
from kernel_sync import kernel_learner
from kernel_sync.kernel_learner import KernelLearner
from kernel_sync.netlink_codes import MessageType, RouteType
from kernel_sync.netlink_messages import Header
from kernel_sync.route_messages import KernelRoute
from speaker.nlri import prefix_from_text
from speaker.wire_codes import Family

pytest_plugins = ("testbed.fixtures",)

AS = 64512
ROUNDS = 4
BURST = 3000


class LearningMyna(MynaPeer):
    """Myna learning blackholes through a tiny notification buffer, no periodic re-read."""

    def config(self) -> dict[str, Any]:
        """The bed's config with kernel learning on."""
        return {
            **super().config(),
            "kernel": {"learn": True, "monitor_buffer": 1024, "reconcile_interval": 0},
        }


def block(n: int) -> str:
    """The n-th /28 of 198.19.0.0/16 (4096 of them)."""
    return f"198.19.{n // 16}.{n % 16 * 16}/28"


def kernel_blocks(host: Host) -> frozenset[str]:
    output = host.run("ip", "-4", "-j", "route", "show", "proto", "80", "type", "blackhole").stdout
    return frozenset(r["dst"] for r in json.loads(output or "[]"))


def learned(daemon: MynaPeer) -> frozenset[str]:
    answer = request(daemon.control_path, "routes")
    assert answer["ok"], answer
    return frozenset(r["prefix"] for r in answer["data"] if r["origin"] == "kernel")


def difference(got: frozenset[str], want: frozenset[str]) -> dict[str, object]:
    """What ``got`` lacks and has too much of, in short (empty when equal)."""
    out: dict[str, object] = {}
    for name, extra in (("missing", want - got), ("extra", got - want)):
        if extra:
            out[name] = (len(extra), sorted(extra)[:5])
    return out


def batch(host: Host, verb: str, blocks: list[str]) -> None:
    host.run(
        "ip", "-batch", "-", stdin="".join(f"route {verb} blackhole {b} proto 80\n" for b in blocks)
    )


def storm(host: Host, present: set[int], first_round: int) -> None:
    """``ROUNDS`` rounds: a burst of adds, then most of what was there deleted, back to back."""
    for r in range(first_round, first_round + ROUNDS):
        new = [n % 4096 for n in range(r * BURST, (r + 1) * BURST) if n % 4096 not in present]
        batch(host, "add", [block(n) for n in new])
        present.update(new)
        doomed = sorted(present)[: len(present) * 2 // 3]
        batch(host, "del", [block(n) for n in doomed])
        present.difference_update(doomed)


def converged(host: Host, daemon: MynaPeer, bird: Bird2Peer, present: set[int]) -> dict[str, Any]:
    """Myna's learned routes, BIRD's received ones and the status file all equal the kernel's."""
    kernel = kernel_blocks(host)
    assert kernel == {block(n) for n in present}
    assert 500 < len(kernel) < 4096
    wait_for(lambda: difference(learned(daemon), kernel), 60,
             "Myna's learned set equal to the kernel's", until=lambda diff: diff == {})  # fmt: skip
    bird.wait_prefixes(host.ipv4, kernel, exact=True, timeout=60)
    # The status file is written a moment after each change: wait for the last write.
    status: dict[str, Any] = wait_for(
        lambda: json.loads(daemon.status_path.read_text())["kernel"], 10,
        "the status file counting the learned routes",
        until=lambda k: k["learned"] == len(kernel),
    )  # fmt: skip
    return status


@pytest.mark.interop
def test_enobufs_storm_ends_with_the_kernel_set(topology: Topology) -> None:
    m, b = topology.add_host("myna"), topology.add_host("bird")
    daemon = LearningMyna(m, m.ipv4, AS, [Neighbor(b.ipv4, AS)]).start()
    bird = Bird2Peer(b, b.ipv4, AS, [Neighbor(m.ipv4, AS)]).start()
    daemon.wait_established(b.ipv4)
    present: set[int] = set()
    storm(m, present, 0)
    first = converged(m, daemon, bird, present)
    assert first["overruns"] >= 1 and first["resyncs"] >= 1, first
    # Again, on a daemon that already lived through overruns: its monitor must still listen.
    storm(m, present, ROUNDS)
    second = converged(m, daemon, bird, present)
    assert second["overruns"] > first["overruns"], (first, second)
    assert second["resyncs"] > first["resyncs"], (first, second)


# ---------------------------------------------------------------------------------------------
# The race the storm can hit, pinned without a kernel: notifications read while a re-read's
# dump is under way are newer than what the dump saw of those routes.


def blackhole(text: str) -> KernelRoute:
    return KernelRoute(
        socket.AF_INET, prefix_from_text(text), protocol=80, type=RouteType.BLACKHOLE
    )


def test_notifications_during_a_resync_dump_win_over_the_dump(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = OriginateRecorder()
    learner = KernelLearner(recorder.originate)
    gone, new = blackhole("198.19.1.0/26"), blackhole("198.19.2.0/26")
    learner.on_kernel(Header(0, MessageType.NEWROUTE, 0, 0, 0), gone)

    async def dump(**_: object) -> list[KernelRoute]:
        # The kernel dumped ``gone``; then it was deleted and ``new`` added, and the monitor's
        # notifications of that were read before the dump's last datagram.
        learner.on_kernel(Header(0, MessageType.DELROUTE, 0, 0, 0), gone)
        learner.on_kernel(Header(0, MessageType.NEWROUTE, 0, 0, 0), new)
        return [gone]

    monkeypatch.setattr(kernel_learner, "dump_routes", dump)
    asyncio.run(learner.resync())
    assert recorder.now == {new.prefix}
    assert set(learner.learned) == {(Family.IPV4_UNICAST, new.prefix)}
