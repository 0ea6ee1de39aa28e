"""BGP peers that run BFD for their sessions (RFC 5882): BIRD 2, FRR (bgpd + bfdd) and Myna.

Data flow: each class extends the test bed's peer of that daemon with one ``BfdSpec`` for all
its neighbors and renders it the way operators write it:

- ``Bird2BfdPeer``: ``protocol bfd { interface "eth0" {...}; multihop {...}; }`` and ``bfd on;``
  (or ``bfd graceful;``) in each ``protocol bgp``, as Calico users put it into confd's custom
  templates; a multihop spec makes the BGP session ``multihop;`` (Calico's rendering) so that
  BIRD asks for a multihop BFD session (RFC 5883), with a ``direct`` protocol to resolve next
  hops. ``kernel=True`` adds Calico's kernel protocol (BGP routes exported, proto bird).
- ``FrrBfdPeer``: bfdd beside zebra and bgpd, a ``profile`` with the timers, ``neighbor X
  bfd`` and ``bfd profile`` in bgpd; eBGP, with ``ebgp-multihop`` for a multihop spec (FRR
  picks multihop BFD for a multihop eBGP session); no authentication (bfdd 8.4 has none).
- ``MynaBfdPeer``: ``myna run`` with ``peers[].bfd`` and kernel programming on; its control
  socket answers ``myna show bfd``.

``RouteWatch`` runs ``ip -ts monitor route`` in a host and tells when a prefix was deleted or
added (wall clock, microseconds), for the timing assertions; ``cut_path`` / ``heal_path`` drop
everything on a host's ``eth0`` with nftables, links up, so that only BFD can notice.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bgpd.control_socket import request

from .bfd_peers import BFDD, NFT
from .bird import Bird2Peer, protocol_name
from .frr import VTYSH, FrrPeer
from .myna_peer import MynaPeer
from .peers import Neighbor, PeerError
from .topology import Host

METRICS_PORT = 9179
_BIRD_AUTH = {
    "simple": "simple",
    "keyed_md5": "keyed md5",
    "meticulous_md5": "meticulous keyed md5",
    "keyed_sha1": "keyed sha1",
    "meticulous_sha1": "meticulous keyed sha1",
}


@dataclass(frozen=True)
class BfdSpec:
    """BFD as both ends configure it: timers, hop mode, authentication, BIRD's graceful."""

    interval_ms: int = 100
    multiplier: int = 3
    multihop: bool = False
    auth: str = "none"  # bgpd.bfd_config's names
    secret: str = ""
    graceful: bool = False

    @property
    def detection(self) -> float:
        """The Detection Time both ends negotiate, in seconds (RFC 5880 6.8.4)."""
        return self.interval_ms * self.multiplier / 1000


class Bird2BfdPeer(Bird2Peer):
    """BIRD 2 with ``protocol bfd`` and ``bfd on`` (or ``bfd graceful``) in its BGP sessions."""

    kind = "bird2"

    def __init__(self, *args: Any, bfd: BfdSpec, kernel: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bfd = bfd
        self.kernel = kernel
        self.bfd_on = True  # False: "bfd on" left out of the sessions (then ``reconfigure``)

    def reconfigure(self) -> None:
        """Write the config again and ``birdc configure`` it (BIRD's own reload)."""
        self._apply_prefixes()

    def _session_options(self, neighbor: Neighbor) -> list[str]:
        lines = super()._session_options(neighbor)
        if self.bfd.multihop:
            lines = ["multihop;" if line == "direct;" else line for line in lines]
        if not self.bfd_on:
            return lines
        if self.bfd.graceful:
            # Graceful restart for the family (not BIRD's default "aware", which lists none,
            # so that nothing would be kept), and BFD failures handled by it.
            lines += ["graceful restart on;", "bfd graceful;"]
        else:
            lines.append("bfd on;")
        return lines

    def _render(self, process: object) -> str:
        text = super()._render(process)  # type: ignore[arg-type]
        spec = self.bfd
        options = [
            f"min rx interval {spec.interval_ms} ms;",
            f"min tx interval {spec.interval_ms} ms;",
            f"multiplier {spec.multiplier};",
        ]
        if spec.auth != "none":
            options += [f"authentication {_BIRD_AUTH[spec.auth]};", f'password "{spec.secret}";']
        block = " ".join(options)
        extra = [
            "protocol bfd {",
            f'  interface "eth0" {{ {block} }};',
            f"  multihop {{ {block} }};",
            "}",
            # Next hops of a multihop session resolve through the connected networks.
            "protocol direct { ipv4; ipv6; }",
        ]
        if self.kernel:
            extra += [
                f"protocol kernel kernel_{family} {{ {family} {{ import none; "
                "export where source = RTS_BGP; }; merge paths on; }"
                for family in ("ipv4", "ipv6")
            ]
        return text + "\n".join(extra) + "\n"

    def bfd_sessions(self) -> str:
        """``birdc show bfd sessions``."""
        return self.birdc("show", "bfd", "sessions")

    def protocol(self, neighbor_address: str) -> str:
        """``show protocols all`` of the neighbor's session."""
        neighbor = self.neighbor(neighbor_address)
        return self.birdc("show", "protocols", "all", protocol_name(neighbor), ipv6=neighbor.ipv6)


class FrrBfdPeer(FrrPeer):
    """FRR 8.4: bgpd with ``neighbor X bfd`` and a bfdd profile; eBGP, multihop as the spec."""

    kind = "frr"

    def __init__(self, *args: Any, bfd: BfdSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if bfd.auth != "none":
            raise ValueError("FRR 8.4's bfdd has no BFD authentication")
        self.bfd = bfd

    def render(self) -> str:
        lines = super().render().splitlines()
        extra = []
        for neighbor in self.neighbors:
            extra += [f" neighbor {neighbor.address} bfd",
                      f" neighbor {neighbor.address} bfd profile fast"]  # fmt: skip
            if self.bfd.multihop:
                extra.append(f" neighbor {neighbor.address} ebgp-multihop 255")
        # After "router bgp" and its first settings, before the address families.
        at = next(i for i, line in enumerate(lines) if line.startswith(" address-family"))
        return "\n".join([*lines[:at], *extra, *lines[at:]]) + "\n"

    def _launch(self) -> None:
        super()._launch()
        bfdd_conf = self.rundir / "bfdd.conf"
        bfdd_conf.write_text(
            "hostname bfdd\nbfd\n profile fast\n"
            f"  detect-multiplier {self.bfd.multiplier}\n"
            f"  receive-interval {self.bfd.interval_ms}\n"
            f"  transmit-interval {self.bfd.interval_ms}\n !\n!\n"
        )
        shutil.chown(bfdd_conf, "frr", "frr")
        common = ["-z", str(self.rundir / "zserv.api"), "--vty_socket", str(self.rundir),
                  "-P", "0", "--log", "stdout"]  # fmt: skip
        self._spawn(BFDD, "-f", bfdd_conf, "-i", self.rundir / "bfdd.pid",
                    "--bfdctl", self.rundir / "bfdd.sock", *common, log="bfdd.log")  # fmt: skip

    def bfd_peers(self) -> str:
        """bfdd's ``show bfd peers``."""
        return self._run(VTYSH, "--vty_socket", self.rundir, "-d", "bfdd", "-c", "show bfd peers")


class MynaBfdPeer(MynaPeer):
    """Myna with ``bfd`` on every neighbor and kernel programming on."""

    kind = "myna"

    def __init__(
        self, *args: Any, bfd: BfdSpec, bird_socket: bool = False, metrics: bool = False,
        hold_limit: str | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.bfd = bfd
        self.bird_socket = bird_socket
        self.metrics = metrics
        self.hold_limit = hold_limit  # bfd.hold_limit (None: the default)

    def bfd_block(self) -> dict[str, Any]:
        """The ``bfd:`` of each peer."""
        spec = self.bfd
        block: dict[str, Any] = {
            "min_tx": spec.interval_ms,
            "min_rx": spec.interval_ms,
            "multiplier": spec.multiplier,
            "multihop": spec.multihop,
            "graceful": spec.graceful,
        }
        if spec.auth != "none":
            block.update(auth=spec.auth, password=spec.secret)
        if self.hold_limit is not None:
            block["hold_limit"] = self.hold_limit
        return block

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["timers"].update(connect_retry=1, error_wait=[1, 2])
        config["kernel"] = {"program": True}
        if self.bird_socket:
            config["control"]["bird_socket"] = str(self.rundir / "bird.ctl")
            config["control"]["bird6_socket"] = str(self.rundir / "bird6.ctl")
        if self.metrics:
            config["metrics"] = {"enabled": True, "address": "127.0.0.1", "port": METRICS_PORT}
        for peer in config["peers"]:
            peer["bfd"] = self.bfd_block()
            if not self.bfd.multihop:
                peer["multihop"] = 1  # one hop away, as BIRD's "direct"
        return config

    def show(self, what: str) -> Any:
        """``myna show WHAT --json``'s data, over the control socket."""
        answer = request(self.control_path, what)
        if not answer.get("ok"):
            raise PeerError(f"myna show {what}: {answer.get('error')}")
        return answer["data"]

    def bfd_row(self, peer: str) -> dict[str, Any]:
        """``myna show bfd``'s row for ``peer``."""
        for row in self.show("bfd"):
            if row["peer"] == peer:
                return dict(row)
        raise PeerError(f"no BFD session for {peer} in {self.show('bfd')}")

    def scrape(self) -> str:
        """``/metrics``, fetched inside the host's namespace."""
        fetch = (
            "import urllib.request; print(urllib.request.urlopen("
            f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=10).read().decode())"
        )
        return self.host.run(sys.executable, "-c", fetch).stdout

    def kernel_routes(self) -> str:
        """The namespace's routes of protocol bird (12), IPv4 and IPv6."""
        return self.host.ip("route", "show", "proto", "bird") + self.host.ip(
            "-6", "route", "show", "proto", "bird"
        )


class RouteWatch:
    """``ip -ts monitor route`` in ``host``: when each prefix was added and deleted."""

    def __init__(self, host: Host, log: Path) -> None:
        self.log = log
        log.unlink(missing_ok=True)
        self.process = host.popen("ip", "-ts", "monitor", "route", log=log)

    def events(self, prefix: str) -> list[tuple[float, str]]:
        """(wall-clock time, "add" or "del") for every change of ``prefix``, in order."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if not line.startswith("[") or "]" not in line:
                continue
            stamp, _, rest = line[1:].partition("] ")
            words = rest.split()
            deleted = words[:1] == ["Deleted"]
            words = words[1:] if deleted else words
            if words[:1] in (["blackhole"], ["unreachable"]):
                words = words[1:]
            if words[:1] == [prefix]:
                at = datetime.fromisoformat(stamp).timestamp()
                out.append((at, "del" if deleted else "add"))
        return out

    def stop(self) -> None:
        """Stop the monitor (the topology would stop it anyway)."""
        self.process.terminate()
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()


def cut_path(host: Host) -> None:
    """Drop everything in and out of ``host``'s eth0, silently (the link stays up)."""
    rules = """
table inet pathcut {
  chain in { type filter hook input priority -10; iifname "eth0" drop; }
  chain out { type filter hook output priority -10; oifname "eth0" drop; }
}
"""
    host.run(str(NFT), "-f", "-", stdin=rules)


def heal_path(host: Host) -> None:
    """Remove ``cut_path``'s rules."""
    host.run(str(NFT), "delete", "table", "inet", "pathcut")
