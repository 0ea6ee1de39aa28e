"""The daemon as operators use it: control socket and ``myna show``, reload (the CLI's and
SIGHUP's), the BIRD-compatible socket read by BIRD's own client, systemd's notify protocol,
JSON logs, the Calico mesh section and ``myna check``.

Data flow: in-process tests run several daemons on loopback addresses (127.0.0.x) in one uvloop
event loop, with config files and sockets in pytest's tmp_path, and drive them the way an
operator does: the ``myna`` CLI and ``birdcl`` as subprocesses. The systemd test runs ``myna
run`` as a process with a datagram socket of the test's as ``NOTIFY_SOCKET``. Every wait polls
a condition with a deadline. Kernel sync stays off: nothing here touches a routing table.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from loopback_daemons import free_port, wait_for
from uvloop_runner import on_uvloop

import bgpd.daemon as daemon_module
from bgpd.cli import redacted
from bgpd.config import load_config, parse_config
from bgpd.daemon import Daemon
from speaker.control_messages import Notification
from speaker.session_events import State

MYNA = [sys.executable, "-m", "bgpd.cli"]
BIRDCL = "/usr/sbin/birdcl"
B, C, D = "127.0.0.2", "127.0.0.3", "127.0.0.4"  # A, the daemon under test, is 127.0.0.1


def node(me: str, port: int, peers: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """One daemon's config as data: short timers, no kernel, no default control socket."""
    return {
        "router_id": f"198.18.0.{me.rsplit('.', 1)[1]}",
        "local_as": 64512,
        "listen": {"addresses": [me], "port": port},
        "timers": {
            "hold_time": 3,
            "connect_delay": 0.1,
            "connect_retry": 0.5,
            "error_wait": [0.2, 1],
        },
        "control": {"socket": None},
        "announce": [f"198.19.{me.rsplit('.', 1)[1]}.0/26"],
        "peers": peers,
        **top,
    }


def peer(address: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"address": address, "as": 64512, "port": port, "source_address": "127.0.0.1",
            **extra}  # fmt: skip


async def run(*cmd: str | Path, timeout: float = 30) -> tuple[int, str, str]:
    """A command as a subprocess, without blocking the daemons' event loop."""
    process = await asyncio.create_subprocess_exec(
        *map(str, cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def myna(*args: str | Path) -> tuple[int, str, str]:
    return await run(*MYNA, *args)


class Cluster:
    """Daemon A (127.0.0.1, from a file, with sockets) and passive neighbours B, C, D..."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports = {f"127.0.0.{n}": free_port(f"127.0.0.{n}") for n in range(1, 6)}
        self.file = tmp / "a.yaml"
        self.control = tmp / "a.ctl"
        self.bird = tmp / "bird.ctl"
        self.daemons: dict[str, Daemon] = {}

    def a_config(self, neighbours: dict[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
        peers = [
            peer(address, self.ports[address], **extra) for address, extra in neighbours.items()
        ]
        data = node("127.0.0.1", self.ports["127.0.0.1"], peers, **top)
        data["control"] = {"socket": str(self.control), "bird_socket": str(self.bird)}
        return data

    def write(self, data: dict[str, Any]) -> None:
        self.file.write_text(yaml.safe_dump(data))

    async def neighbour(self, address: str) -> Daemon:
        a = "127.0.0.1"
        data = node(address, self.ports[address], [
            {"address": a, "as": 64512, "port": self.ports[a], "source_address": address,
             "passive": True}])  # fmt: skip
        daemon = Daemon(parse_config(yaml.safe_dump(data)))
        await daemon.start()
        self.daemons[address] = daemon
        return daemon

    async def start_a(self) -> Daemon:
        daemon = Daemon(load_config(self.file), self.file)
        await daemon.start()
        self.daemons["127.0.0.1"] = daemon
        return daemon

    async def close(self) -> None:
        for daemon in self.daemons.values():
            await daemon.close()


@asynccontextmanager
async def cluster(tmp: Path) -> AsyncIterator[Cluster]:
    made = Cluster(tmp)
    try:
        yield made
    finally:
        await made.close()


def established(daemon: Daemon, *addresses: str) -> bool:
    names = {s.name: s for s in daemon.sessions}
    return all(a in names and names[a].state == State.ESTABLISHED for a in addresses)


def received(daemon: Daemon, address: str) -> set[str]:
    return {p for ps in daemon.api.received(address).values() for p in ps}


@on_uvloop
async def test_reload_resets_only_the_peers_whose_settings_changed(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        for address in (B, C, D):
            await c.neighbour(address)
        c.write(c.a_config({B: {}, C: {}}))
        a = await c.start_a()
        await wait_for("A established with B and C", lambda: established(a, B, C))
        await wait_for("B's route at A", lambda: received(a, B) == {"198.19.2.0/26"})
        kept, kept_since = a.session(B), a.session(B).fsm.established_at
        old_c = a.session(C)

        # C's hold time changes, D is added, B stays as it is.
        c.write(c.a_config({B: {}, C: {"timers": {"hold_time": 9, "connect_delay": 0.1}}, D: {}}))
        code, out, err = await myna("reload", "-s", c.control)
        assert code == 0, err
        assert out.strip() == "reload: 1 peers kept, 1 reset, 1 added, 0 removed"
        assert a.session(B) is kept and kept.fsm.established_at == kept_since
        assert a.session(C) is not old_c and old_c.state == State.IDLE
        await wait_for("C back and D up", lambda: established(a, B, C, D))
        assert kept.fsm.established_at == kept_since  # B never went down
        assert a.session(C).fsm.settings.hold_time == 9

        # An invalid file changes nothing and says why.
        c.file.write_text(c.file.read_text().replace("hold_time: 3", "hold_time: 2"))
        code, _, err = await myna("reload", "-s", c.control)
        assert code == 1 and "not valid, nothing changed" in err and "hold time" in err
        assert established(a, B, C, D) and a.session(B) is kept

        # A removed peer's routes leave the Loc-RIB; SIGHUP's path (reload_from_file).
        await wait_for("C's route at A", lambda: received(a, C) == {"198.19.3.0/26"})
        c.write(c.a_config({B: {}, D: {}}))
        a.reload_from_file()
        assert C not in {s.name for s in a.sessions}
        await wait_for(
            "C's route gone from the Loc-RIB",
            lambda: all(r["prefix"] != "198.19.3.0/26" for r in a.api.routes({})),
        )
        assert a.session(B) is kept and kept.fsm.established_at == kept_since

        # A setting the running daemon cannot take over is refused, by name.
        c.write(c.a_config({B: {}, D: {}}, router_id="198.18.0.99"))
        code, _, err = await myna("reload", "-s", c.control)
        assert code == 1 and "router_id needs a restart" in err


@on_uvloop
async def test_show_commands_over_the_control_socket(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        await c.neighbour(B)
        c.write(c.a_config({B: {"kind": "mesh"}}))
        a = await c.start_a()
        await wait_for("routes exchanged", lambda: received(a, B) == {"198.19.2.0/26"})
        code, out, _ = await myna("show", "peers", "--json", "-s", c.control)
        assert code == 0
        (row,) = json.loads(out)
        assert (row["address"], row["state"], row["kind"]) == (B, "Established", "mesh")
        assert row["name"] == "Mesh_127_0_0_2" and row["received"] == 1
        await wait_for("A's route advertised", lambda: a.api.peers()[0]["advertised"] == 1)
        code, out, _ = await myna("show", "peers", "-s", c.control)
        assert re.search(r"^127\.0\.0\.2\s+64512\s+mesh\s+Established\s", out, re.M), out
        code, out, _ = await myna("show", "routes", "--json", "-s", c.control)
        assert {r["prefix"]: r["from"] for r in json.loads(out)} == {
            "198.19.1.0/26": "static",
            "198.19.2.0/26": B,
        }
        code, out, _ = await myna("show", "routes", "198.19.2.0/26", "--json", "-s", c.control)
        (path,) = json.loads(out)
        assert path["best"] and path["next_hop"] == B
        code, out, _ = await myna("show", "routes", "198.19.300.0/26", "-s", c.control)
        assert code == 1
        code, out, _ = await myna("show", "rib", "-s", c.control)
        assert "Loc-RIB: ipv4_unicast 2" in out
        code, out, _ = await myna("show", "status", "--json", "-s", c.control)
        status = json.loads(out)
        assert status["established"] == 1 and status["router_id"] == "198.18.0.1"
        code, _, err = await myna("show", "status", "-s", tmp_path / "nothing.ctl")
        assert code == 1 and "is myna running" in err


def parse_like_calicoctl(output: str) -> list[tuple[str, str, str, str, str]]:
    """calicoctl node status's reading of ``show protocols`` (scanBIRDPeers, unmarshalBIRD)."""
    peers = []
    for line in output.splitlines():
        if line.startswith("0000"):
            break
        if line.startswith("0001"):
            continue
        if line.startswith("2002"):
            assert line[5:].split() == ["name", "proto", "table", "state", "since", "info"]
            continue
        if line.startswith("1002"):
            row = line[5:]
        elif line.startswith(" "):
            row = line[1:]
        else:
            raise AssertionError(f"calicoctl would reject the line {line!r}")
        columns = row.split()
        match = re.match(r"^(Global|Node|Mesh)_(.+)$", columns[0])
        if len(columns) >= 6 and columns[1] == "BGP" and match:
            kind = {"Global": "global", "Mesh": "node-to-node mesh", "Node": "node specific"}
            ip = match.group(2).replace("_", ".")
            peers.append((ip, kind[match.group(1)], columns[3], columns[4], columns[5]))
    return peers


async def bird_socket(path: Path, command: str) -> str:
    """The raw reply, read the way calicoctl reads it."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(command.encode() + b"\n")
    lines = [await reader.readline()]  # the greeting
    while not (lines[-1][:4].isdigit() and lines[-1][4:5] == b" " and len(lines) > 1):
        lines.append(await asyncio.wait_for(reader.readline(), 5))
    writer.close()
    return b"".join(lines).decode()


@on_uvloop
async def test_the_bird_socket_answers_calicoctl_and_birdcl(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        await c.neighbour(B)  # C never runs: its peer stays down
        c.write(c.a_config({B: {"kind": "mesh"}, C: {"kind": "global"}}))
        a = await c.start_a()
        # Selection deferral waits for End-of-RIB from B: the readiness probe's "0024".
        code, out, _ = await run(BIRDCL, "-s", c.bird, "show", "status")
        assert code == 0 and out.startswith("BIRD v"), out  # liveness: starts with BIRD
        assert "Graceful restart recovery in progress" in out
        await wait_for("B Established", lambda: established(a, B))
        await wait_for("deferral over", lambda: not a.rib.view.deferring, timeout=30)
        table = parse_like_calicoctl(await bird_socket(c.bird, "show protocols"))
        assert table[0][:3] == (B, "node-to-node mesh", "up")
        assert table[0][4] == "Established"
        assert table[1][:3] == (C, "global", "start")
        assert re.fullmatch(r"\d\d:\d\d:\d\d", table[0][3])
        code, out, _ = await run(BIRDCL, "-s", c.bird, "show", "protocols", "all", "Mesh_127_0_0_2")
        assert "Neighbor address: 127.0.0.2" in out and "BGP state:          Established" in out
        assert "1 imported" in out
        code, out, _ = await run(BIRDCL, "-s", c.bird, "show", "status")
        assert "Graceful restart" not in out and "Daemon is up and running" in out
        code, out, _ = await run(BIRDCL, "-s", c.bird, "show", "route")
        # BIRD 1.6's route line (nest/rt-table.c rt_show_rte), which calico-node's viaRegex reads
        line = (
            r"198\.19\.2\.0/26\s+via 127\.0\.0\.2 on lo "
            r"\[Mesh_127_0_0_2 [\d:]{8}\] \* \(100/0\) \[i\]"
        )
        assert re.search(line, out), out
        # An import limit ended C's session: BIRD 1.6 stores BE_AUTO_DOWN, and a protocol
        # that is down shows the error alone (bgp_get_status, bgp_show_proto_info).
        session_c = next(s for s in a.sessions if s.name == C)
        session_c.cease(Notification(6, 1), "import limit reached", None)
        table = parse_like_calicoctl(await bird_socket(c.bird, "show protocols"))
        assert table[1][:3] == (C, "global", "down"), table
        assert table[1][4:] == ("Automatic",), table  # calicoctl keeps the first word
        name = "Global_" + C.replace(".", "_")
        out = await bird_socket(c.bird, f"show protocols all {name}")
        assert "BGP state:          Down" in out, out
        assert "Last error:       Automatic shutdown: Route limit exceeded" in out, out


def test_the_mesh_section_becomes_peers_and_check_hides_passwords(tmp_path: Path) -> None:
    config = parse_config(
        yaml.safe_dump(
            {
                "router_id": "198.18.0.1",
                "local_as": 64512,
                "ipv4_address": "198.18.0.1/24",
                "mesh": {
                    "enabled": True,
                    "nodes": ["198.18.0.1", "198.18.0.2", "198.18.0.3"],
                    "password": "mesh-secret",
                    "restart_time": 300,
                },
                "peers": [{"address": "198.18.0.3", "as": 64999, "password": "tor-secret"}],
            }
        )
    )
    by_address = {p.address: p for p in config.peers}
    assert set(by_address) == {"198.18.0.2", "198.18.0.3"}  # not ourselves, not twice
    mesh = by_address["198.18.0.2"]
    assert (mesh.kind, mesh.asn, mesh.passive, mesh.restart_time) == ("mesh", 64512, "auto", 300)
    assert mesh.source_address == "198.18.0.1" and config.is_passive(mesh) is True
    assert by_address["198.18.0.3"].kind == "global"
    printed = yaml.safe_dump(redacted(config))
    assert "secret" not in printed and printed.count("<hidden>") == 3


def test_systemd_notify_json_logs_and_sighup(tmp_path: Path) -> None:
    """``myna run`` as systemd runs it: READY=1, watchdog pings, STOPPING=1; JSON log lines
    carry the peer; SIGHUP applies the file again."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp_path / "notify.sock"
    notify.bind(str(notify_path))
    notify.settimeout(10)
    port = free_port("127.0.0.1")
    data = node("127.0.0.1", port, [peer("127.0.0.9", free_port("127.0.0.9"))],
                log_format="json", selection_deferral=0)  # fmt: skip
    data["control"] = {"socket": str(tmp_path / "a.ctl")}
    file = tmp_path / "a.yaml"
    file.write_text(yaml.safe_dump(data))
    log = tmp_path / "myna.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
    with log.open("w") as out:
        process = subprocess.Popen([*MYNA, "run", "-c", str(file)], env=env, stderr=out)
    try:
        messages: list[str] = []

        def receive_until(text: str) -> None:
            deadline = time.monotonic() + 15
            while not any(text in m for m in messages):
                assert time.monotonic() < deadline, f"no {text} in {messages}"
                messages.append(notify.recv(4096).decode())

        receive_until("READY=1")
        first = len(messages)
        receive_until("WATCHDOG=1")
        messages[first:] = [m for m in messages[first:] if m != "WATCHDOG=1"]
        receive_until("WATCHDOG=1")  # pinged again: the loop keeps turning
        data["peers"].append(peer("127.0.0.8", free_port("127.0.0.8")))
        file.write_text(yaml.safe_dump(data))
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "1 added" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        notify.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    tagged = [line for line in lines if line.get("peer") == "127.0.0.9"]
    assert tagged and all(line["message"].startswith("[127.0.0.9]") for line in tagged)
    assert any(line["message"].startswith("reload: 1 peers kept") for line in lines)


def test_calico_reflector_topology_from_the_node_list() -> None:
    """Mesh off, reflectors listed: nodes peer with reflectors; a reflector's clients are the
    peers of another cluster (or none); reflectors of one cluster are plain iBGP peers."""
    nodes = [
        "198.18.0.1",
        "198.18.0.2",
        {"address": "198.18.0.100", "cluster_id": "198.19.255.1"},
        {"address": "198.18.0.101", "cluster_id": "198.19.255.1"},
    ]

    def peers_of(me: str, enabled: bool = False) -> dict[str, tuple[str, bool]]:
        config = parse_config(
            yaml.safe_dump(
                {
                    "router_id": me,
                    "local_as": 64512,
                    "mesh": {"enabled": enabled, "nodes": nodes},
                }
            )
        )
        return {p.address: (p.kind, p.route_reflector_client) for p in config.peers}

    assert peers_of("198.18.0.1") == {
        "198.18.0.100": ("global", False),
        "198.18.0.101": ("global", False),
    }
    reflector = parse_config(
        yaml.safe_dump({"router_id": "198.18.0.100", "local_as": 64512, "mesh": {"nodes": nodes}})
    )
    assert reflector.cluster_id == "198.19.255.1"  # from its own node entry
    assert {p.address: p.route_reflector_client for p in reflector.peers} == {
        "198.18.0.1": True,
        "198.18.0.2": True,
        "198.18.0.101": False,
    }
    # With the mesh on, reflectors take no part in it.
    assert peers_of("198.18.0.1", enabled=True) == {"198.18.0.2": ("mesh", False)}
    assert peers_of("198.18.0.100", enabled=True) == {}


@on_uvloop
async def test_a_peer_with_its_own_local_as(tmp_path: Path) -> None:
    """Calico's BGPPeer localASNumber: A presents AS 64600 to B (eBGP, AS 64700)."""
    async with cluster(tmp_path) as c:
        b_data = node(B, c.ports[B], [{"address": "127.0.0.1", "as": 64600,
                      "port": c.ports["127.0.0.1"], "source_address": B, "passive": True}],
                      local_as=64700)  # fmt: skip
        b = Daemon(parse_config(yaml.safe_dump(b_data)))
        await b.start()
        c.daemons[B] = b
        c.write(c.a_config({B: {"as": 64700, "local_as": 64600}}, node_name="node-a"))
        a = await c.start_a()
        await wait_for("A's route at B", lambda: received(b, "127.0.0.1") == {"198.19.1.0/26"})
        (path,) = b.api.routes({"prefix": "198.19.1.0/26"})
        assert path["as_path"] == [64600]  # prepended with the overriding AS, not 64512
        assert a.api.status()["node_name"] == "node-a"


@on_uvloop
async def test_the_status_file_is_written_off_the_event_loop(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # A write and rename that took 30 ms and more on the event loop held up a Felix block's
    # learning: changes are written by a worker thread; start and stop write at once.
    status = tmp_path / "status.json"
    data = node("127.0.0.1", free_port("127.0.0.1"), [], status_file=str(status))
    daemon = Daemon(parse_config(yaml.safe_dump(data)))
    writers: list[int] = []
    write = daemon_module._write_atomically

    def recording(path: Path, text: str) -> None:
        writers.append(threading.get_ident())
        write(path, text)

    monkeypatch.setattr(daemon_module, "_write_atomically", recording)
    await daemon.start()
    try:
        assert writers == [threading.get_ident()]  # at start: at once, on the loop
        assert json.loads(status.read_text())["router_id"] == "198.18.0.1"
        daemon.status.changed()
        await wait_for("the status file rewritten", lambda: len(writers) == 2, timeout=5)
        assert writers[1] != threading.get_ident()
    finally:
        await daemon.close()
    assert len(writers) == 3 and writers[2] == threading.get_ident()  # at stop: at once
