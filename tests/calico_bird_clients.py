"""Calico's readers of BIRD's control socket, their parsing rules ported to Python for the tests.

Data flow: a test talks to a socket (BIRD 1.6's or Myna's) with ``converse`` the way the Go
clients do (one command, the greeting and the reply read line by line), then hands the lines
to the reader it wants to play. Each function names the file and function of
projectcalico/calico (master 87c15906) whose rules it follows; only the rules are ported
(which lines are accepted, which columns are read, what makes the caller fail), not the code:

* ``scan_peers``: ``calicoctl/calicoctl/commands/node/status.go`` ``scanBIRDPeers`` and
  ``bgpPeer.unmarshalBIRD`` (``calicoctl node status``), the same rules as
  ``node/pkg/health/bird/bird.go`` ``scanBIRDPeers`` (the readiness probe's ``GetPeers``);
* ``gr_in_progress``: ``node/pkg/health/bird/bird.go`` ``GRInProgress``;
* ``bird_ready``: ``node/pkg/health/health.go`` ``checkBIRDReady`` (``calico-node -bird-ready``);
* ``bird_live``: ``node/pkg/health/health.go`` ``RunOutput``'s ``-bird-live`` check of
  ``birdcl -s SOCKET show status``;
* ``ps_contains``: ``calicoctl/calicoctl/commands/node/status.go`` ``psContains``;
* ``status_fields``: ``node/pkg/status/populators/bird_status.go`` ``scanBIRDStatus`` and
  ``birdStatus.unmarshalBIRD``;
* ``peer_details``: ``node/pkg/status/populators/peers.go`` ``bgpPeer.complete``;
* ``scan_routes``: ``node/pkg/status/populators/route.go`` ``scanBIRDRoutes``,
  ``route.unmarshalBIRD`` and ``route.toNodeStatusAPI``.

A line that the Go reader rejects raises ``ClientError`` with the Go reader's message, so a
test fails exactly where Calico would.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 2.0  # birdTimeOut in every one of them
EXPECTED_HEADINGS = ["name", "proto", "table", "state", "since", "info"]
PEER_NAME = re.compile(r"^(Global|Node|Mesh)_(.+)$")  # bgpPeerRegex
CALICOCTL_TYPES = {"Global": "global", "Mesh": "node-to-node mesh", "Node": "node specific"}
VIA = re.compile(
    r"(?P<dest>\S*)\s*via\s(?P<gateway>\S*)\s*on\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*"
)
DEV = re.compile(r"(?P<dest>\S*)\s*dev\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*")
BLACKHOLE = re.compile(r"(?P<dest>\S*)\s*blackhole\s\[(?P<from>\S*)\s.*\].*")
UNREACHABLE = re.compile(r"(?P<dest>\S*)\s*unreachable\s\[(?P<from>\S*)\s.*\].*")


class ClientError(Exception):
    """What the Go reader returns as an error for this output."""


def _final(line: str) -> bool:
    return len(line) >= 5 and line[:4].isdigit() and line[4] == " "


def converse(path: Path | str, command: str, sock: socket.socket | None = None) -> list[str]:
    """The greeting (on a new connection) and the reply to ``command``, line by line."""
    own = sock is None
    conn = sock or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if own:
            conn.settimeout(TIMEOUT)
            conn.connect(str(path))
        conn.sendall(command.encode() + b"\n")
        data = b""
        lines: list[str] = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            lines = data.decode().split("\n")
            complete = lines[:-1]
            replies = [line for line in complete if not line.startswith("0001 ")]
            if replies and _final(replies[-1]):
                return complete
        return [line for line in lines if line]
    finally:
        if own:
            conn.close()


@dataclass(frozen=True)
class Peer:
    """One row calicoctl / the readiness probe keeps (bgpPeer)."""

    peer_ip: str
    peer_type: str
    state: str
    since: str
    bgp_state: str
    info: str


def _unmarshal_peer(line: str, separator: str) -> Peer | None:
    """``bgpPeer.unmarshalBIRD``: None for a row that is not a Calico BGP peer."""
    columns = line.split()
    if len(columns) < 6 or columns[1] != "BGP":
        return None
    match = PEER_NAME.match(columns[0])
    if match is None or match.group(1) not in CALICOCTL_TYPES:
        return None
    return Peer(
        peer_ip=match.group(2).replace("_", separator),
        peer_type=CALICOCTL_TYPES[match.group(1)],
        state=columns[3],
        since=columns[4],
        bgp_state=columns[5],
        info=" ".join(columns[6:]),
    )


def scan_peers(lines: list[str], ipv6: bool = False) -> list[Peer]:
    """``scanBIRDPeers`` of ``show protocols`` output."""
    separator = ":" if ipv6 else "."
    peers = []
    for line in lines:
        if line.startswith("0000"):
            break
        if line.startswith("0001"):
            continue
        if line.startswith("2002"):
            if line[5:].split() != EXPECTED_HEADINGS:
                raise ClientError("unknown BIRD table output format")
        elif line.startswith("1002"):
            peer = _unmarshal_peer(line[5:], separator)
            if peer is not None:
                peers.append(peer)
        elif line.startswith(" "):
            peer = _unmarshal_peer(line[1:], separator)
            if peer is not None:
                peers.append(peer)
        else:
            raise ClientError(f"unexpected output line from BIRD: '{line}'")
    return peers


def gr_in_progress(lines: list[str]) -> bool:
    """``GRInProgress`` of ``show status`` output."""
    for line in lines:
        if line.startswith("0013"):
            break
        if line.startswith(("0001", "1000", "1011", " ")):
            continue
        if line.startswith("0024"):
            return True
        raise ClientError(f"unexpected output line from BIRD: '{line}'")
    return False


def bird_ready(peers: list[Peer], gr: bool, within_threshold: bool) -> str | None:
    """``checkBIRDReady``: None when ready, else the error text."""
    down = [p.peer_ip for p in peers if p.bgp_state != "Established"]
    if not peers:
        return None
    if within_threshold:
        if down:
            return f"BGP not established with {','.join(down)}"
        return "graceful restart in progress" if gr else None
    if len(peers) > len(down):
        return None
    return f"BGP not established with {','.join(down)}"


def bird_live(output: str) -> bool:
    """``-bird-live``: ``birdcl -s SOCKET show status`` printed text starting with BIRD."""
    return output.startswith("BIRD")


def ps_contains(wanted: list[str], cmdlines: list[list[str]]) -> bool:
    """``psContains``: some process whose argument i equals ``wanted[i]`` for some i."""
    for cmds in cmdlines:
        if any(i < len(cmds) and cmds[i] == word for i, word in enumerate(wanted)):
            return True
    return False


def cmdline(pid: int) -> list[str]:
    """gopsutil's ``CmdlineSlice``: /proc/PID/cmdline, trailing NULs cut, split on NUL."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
    return raw.decode().split("\0") if raw else []


def status_fields(lines: list[str]) -> dict[str, object]:
    """``scanBIRDStatus``: ready, version, router id and the three times."""
    status: dict[str, object] = {"ready": False}

    def unmarshal(text: str) -> None:
        if "BIRD" in text and "ready" in text:
            status["ready"] = True
        elif text.startswith("BIRD v"):
            status["version"] = text.removeprefix("BIRD ")
        else:
            for key, prefix in (
                ("router_id", "Router ID is "),
                ("server_time", "Current server time is "),
                ("last_boot", "Last reboot on "),
                ("last_reconfig", "Last reconfiguration on "),
            ):
                if text.startswith(prefix):
                    status[key] = text.removeprefix(prefix)

    for line in lines:
        if line.startswith("0013"):
            break
        if line.startswith(("0001", "1000", "1011")):
            unmarshal(line[5:])
        elif line.startswith(" "):
            unmarshal(line[1:])
        else:
            break  # "unexpected output line from BIRD" is a warning there, and the scan stops
    return status


def peer_details(lines: list[str]) -> tuple[str | None, str | None]:
    """``bgpPeer.complete``: the ``BGP state:`` and ``Neighbor address:`` values."""
    state = address = None
    for line in lines:
        if line.startswith("0000"):
            break
        if "BGP state:" in line:
            state = line.replace("BGP state:", " ").strip()
        elif "Neighbor address:" in line:
            address = line.replace("Neighbor address:", " ").strip()
    return state, address


@dataclass(frozen=True)
class NodeRoute:
    """One CalicoNodeRoute (route.toNodeStatusAPI)."""

    type: str  # FIB (primary) or RIB
    destination: str
    gateway: str
    interface: str
    source_type: str
    peer_ip: str


def _source(learned_from: str, separator: str) -> tuple[str, str]:
    if learned_from.startswith("kernel"):
        return "Kernel", ""
    if learned_from.startswith("static"):
        return "Static", ""
    if learned_from.startswith("direct"):
        return "Direct", ""
    match = PEER_NAME.match(learned_from)
    if match is None:
        raise ClientError(
            f"not a valid line: session name '{learned_from}' is not a correct format"
        )
    kind = "NodeMesh" if match.group(1) == "Mesh" else "BGPPeer"
    return kind, match.group(2).replace("_", separator)


def scan_routes(lines: list[str], ipv6: bool = False) -> list[NodeRoute]:
    """``scanBIRDRoutes`` of ``show route`` output, converted as ``Populate`` converts them."""
    separator = ":" if ipv6 else "."
    out = []
    previous = ""
    for line in lines:
        if line.startswith("0000"):
            break
        if line.startswith("0001"):
            continue
        if line.startswith("1007"):
            text = line[5:]
        elif line.startswith(" "):
            text = line[1:]
        else:
            raise ClientError(f"unexpected output line from BIRD: {line}")
        # A line with none of the four words keeps the previous destination and no protocol,
        # which toNodeStatusAPI then refuses (an ECMP "\tvia" line would do that).
        fields: dict[str, str] = {"dest": "", "gateway": "", "iface": "", "from": ""}
        for needle, regex in ((" via ", VIA), (" dev ", DEV), (" blackhole ", BLACKHOLE),
                              (" unreachable ", UNREACHABLE)):  # fmt: skip
            if needle in text:
                match = regex.search(text)
                if match is None:
                    fields = {}  # "Failed to parse": the line is skipped
                    break
                fields = match.groupdict()
                fields.setdefault("gateway", "N/A")
                fields.setdefault("iface", needle.strip())
                break
        if not fields:
            continue
        dest = fields["dest"] or previous
        if not dest:
            continue
        previous = dest
        kind, peer_ip = _source(fields["from"], separator)
        out.append(
            NodeRoute(
                type="FIB" if "] *" in text else "RIB",
                destination=dest,
                gateway=fields["gateway"],
                interface=fields["iface"],
                source_type=kind,
                peer_ip=peer_ip,
            )
        )
    return out
