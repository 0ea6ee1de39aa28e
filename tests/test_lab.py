"""``myna lab`` end to end: both phases converge, the report shows them, nothing is left behind.

Data flow: each test runs ``python -m bgpd.cli lab`` as a child process (it needs root: it makes
network namespaces), reads what it printed, and then looks at the machine for what the lab might
have left: namespaces named ``mynalab-<its pid>-``, and processes whose command line mentions
that prefix (every Myna daemon of the lab runs with a config in its ``/tmp/mynalab-<pid>-*``
dir). One test lets the lab finish; the other interrupts it with SIGINT while the mesh daemons
run. The config builders are checked against the daemon's own validation without root.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bgpd.config import parse_config
from bgpd.lab import Node, host_blocks, host_config, reflector_config

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent
LAB_TIMEOUT = 120.0  # the lab itself takes a few seconds; this only guards a hung run


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("myna lab needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.fail("myna lab needs iproute2's ip; ./dev installs it", pytrace=False)


def lab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bgpd.cli", "lab", *args]


def leftovers(pid: int) -> tuple[list[str], list[int]]:
    """Namespaces and processes of the lab whose process was ``pid``."""
    prefix = f"mynalab-{pid}-"
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    namespaces = [line.split()[0] for line in listing.stdout.splitlines() if prefix in line]
    processes = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if prefix.encode() in (entry / "cmdline").read_bytes():
                    processes.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return namespaces, processes


def stop(process: subprocess.Popen[str]) -> None:
    """Make sure a lab that outlived its test tears itself down (SIGINT), then reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def phase_text(output: str, title: str) -> str:
    """The part of the output that reports one phase."""
    start = output.index(f"== {title}")
    end = output.find("\n== ", start + 1)
    return output[start : end if end >= 0 else None]


def test_lab_converges_in_both_phases_and_cleans_up(root: None) -> None:
    process = subprocess.Popen(
        lab_command(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=LAB_TIMEOUT)
    finally:
        stop(process)
    assert process.returncode == 0, output
    hosts = [Node(f"h{n}", n, "", host_blocks(n, 2)) for n in range(1, 5)]
    for title in ("phase 1, node-to-node mesh", "phase 2, two route reflectors"):
        text = phase_text(output, title)
        assert re.search(rf"{title}: converged in \d+\.\d\d s from starting the daemons", text)
        routes = text[text.index("kernel routes of each host") :]
        per_host = re.split(r"\n  (?=h\d )", routes)[1:]
        assert len(per_host) == 4, routes
        for host, table in zip(hosts, per_host, strict=True):
            assert table.startswith(f"{host.name} "), table
            for other in hosts:
                for block in other.blocks:
                    if other == host:
                        assert f"blackhole {block} proto 80" in table, (host, table)
                    else:
                        route = f"{block} via {other.address} dev eth0 proto bird metric 32"
                        assert route in table, (host, table)
        assert "Established" in text
        for state in ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm"):
            assert f" {state} " not in text, text
    assert re.search(r"phase 1, node-to-node mesh +converged in \d+\.\d\d s", output)
    assert re.search(r"phase 2, two route reflectors +converged in \d+\.\d\d s", output)
    assert "tearing down (6 daemons, 7 namespaces)... done" in output
    assert leftovers(process.pid) == ([], [])


def test_lab_interrupted_tears_down(root: None, tmp_path: Path) -> None:
    log = tmp_path / "lab.out"
    with log.open("w") as out:
        process = subprocess.Popen(
            lab_command(), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        deadline = time.monotonic() + LAB_TIMEOUT
        # The mesh daemons are started and running: interrupt the wait for convergence.
        while not re.search(r"starting Myna in h1, h2, h3, h4\.\.\. done", log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        namespaces, processes = leftovers(process.pid)
        assert len(namespaces) == 7
        assert len(processes) >= 4  # the four mesh daemons
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        stop(process)
    output = log.read_text()
    assert process.returncode == 130, output
    assert "interrupted (SIGINT)" in output
    assert re.search(r"tearing down \(4 daemons, 7 namespaces\)\.\.\. done", output), output
    assert leftovers(process.pid) == ([], [])


def test_lab_configs_are_valid_daemon_configs(tmp_path: Path) -> None:
    """What the lab writes passes the daemon's own validation (no root needed)."""
    hosts = [Node(f"h{n}", n, f"x-h{n}", host_blocks(n, 5)) for n in range(1, 4)]
    reflectors = [Node("rr1", 201, "x-rr1"), Node("rr2", 202, "x-rr2")]
    assert hosts[0].blocks[:2] == ("198.19.2.0/26", "198.19.2.64/26")  # 5 blocks: two /24s
    assert hosts[1].blocks[0] == "198.19.4.0/26"
    mesh = parse_config(yaml.safe_dump(host_config(hosts[0], hosts[1:], tmp_path)))
    assert mesh.kernel.program and mesh.kernel.learn
    assert [p.address for p in mesh.peers] == ["198.18.0.2", "198.18.0.3"]
    assert mesh.control.socket == tmp_path / "h1.ctl"
    reflector = parse_config(
        yaml.safe_dump(reflector_config(reflectors[0], hosts, reflectors[1:], tmp_path))
    )
    assert reflector.reflector_cluster_id() is not None
    assert [p.route_reflector_client for p in reflector.peers] == [True, True, True, False]
    assert not reflector.kernel.program
