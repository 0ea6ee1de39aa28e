"""FRR peer: a zebra and a bgpd of its own in one host's namespace, queried through vtysh.

Data flow: ``_launch`` writes ``bgpd.conf`` into ``workdir`` and ``zebra.conf`` into an
frr-owned ``rundir``, then starts zebra and bgpd in the foreground, both pointed at that
rundir for their pid files, zserv socket (``-z``) and vty sockets (``--vty_socket``) instead of
/var/run/frr, which every namespace would share; bgpd starts once zebra's zserv socket exists.
Zebra always drops privileges to user frr (``-u root`` is refused: root is not in group
frrvty), which is why its files sit in the rundir, a world-traversable path under /tmp, and
why it logs to stdout (captured by the test bed). bgpd runs with ``-S`` (skip the privilege
drop), so it reads its config from the workdir; zebra has no ``-S``.

Zebra is needed, not just bgpd ``-Z``: without it bgpd knows no interfaces and withdraws any
IPv6 route whose next hop is link-local, the form BIRD sends. Zebra also installs received
routes into the namespace's kernel table, which does no harm.

Prefixes to originate are ``network`` statements with ``no bgp network import-check``, so they
need no route in the RIB. Queries are ``vtysh --vty_socket <rundir> -d bgpd -c '... json'``:
``bgpState`` of ``show bgp neighbors <addr> json`` and the ``routes`` keys of
``show bgp <afi> unicast neighbors <addr> routes json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .peers import (
    Neighbor,
    PeerDaemon,
    PeerError,
    State,
    is_ipv6,
    normalise_prefix,
    normalise_state,
)
from .topology import wait_for

FRR_DIR = Path("/usr/lib/frr")
ZEBRA = FRR_DIR / "zebra"
BGPD = FRR_DIR / "bgpd"
VTYSH = Path("/usr/bin/vtysh")
FRR_USER = "frr"
CONNECT_RETRY = 1  # seconds; FRR's default is 120
ZEBRA_TIMEOUT = 10.0


class FrrPeer(PeerDaemon):
    """FRR 8.4 bgpd (with its zebra): one ``neighbor`` per Neighbor, ``network`` per prefix."""

    kind = "frr"

    def _launch(self) -> None:
        shutil.chown(self.rundir, FRR_USER, FRR_USER)
        zebra_conf = self.rundir / "zebra.conf"
        zebra_conf.write_text(f"hostname {self.host.name}-zebra\n")
        shutil.chown(zebra_conf, FRR_USER, FRR_USER)
        bgpd_conf = self.workdir / "bgpd.conf"
        bgpd_conf.write_text(self.render())
        common = [
            "-z", str(self.rundir / "zserv.api"),
            "--vty_socket", str(self.rundir),
            "-P", "0",  # no TCP vty: vtysh talks over the Unix sockets
            "--log", "stdout",
        ]  # fmt: skip
        zserv = self.rundir / "zserv.api"
        zserv.unlink(missing_ok=True)
        self._spawn(ZEBRA, "-f", zebra_conf, "-i", self.rundir / "zebra.pid", *common,
                    log="zebra.log")  # fmt: skip
        # bgpd retries a zserv socket that is not there yet only every 10 s, and a session
        # that comes up before bgpd has zebra's interfaces loses every IPv6 route with a
        # link-local next hop ("no peer interface information"), for good.
        wait_for(lambda: self._checked(zserv.exists), ZEBRA_TIMEOUT, f"{self}'s zebra to listen")
        self._spawn(BGPD, "-S", "-f", bgpd_conf, "-i", self.rundir / "bgpd.pid", *common,
                    log="bgpd.log")  # fmt: skip

    def render(self) -> str:
        """bgpd's config."""
        lines = [
            "frr defaults traditional",
            f"hostname {self.host.name}",
            "!",
            f"router bgp {self.local_as}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            # Families are activated per neighbor below: by default FRR would also run IPv4
            # unicast over an IPv6 session.
            " no bgp default ipv4-unicast",
            " no bgp network import-check",
            f" timers bgp {self.keepalive_time} {self.hold_time}",
        ]
        for neighbor in self.neighbors:
            address = neighbor.address
            lines += [
                f" neighbor {address} remote-as {neighbor.remote_as}",
                f" neighbor {address} update-source {self.local_address(neighbor)}",
                f" neighbor {address} timers connect {CONNECT_RETRY}",
                # eBGP's default 30 s between UPDATE runs would delay every change.
                f" neighbor {address} advertisement-interval 0",
            ]
            if neighbor.port != 179:
                lines.append(f" neighbor {address} port {neighbor.port}")
            if neighbor.passive:
                lines.append(f" neighbor {address} passive")
            if neighbor.password is not None:
                lines.append(f" neighbor {address} password {neighbor.password}")
        for family, ipv6 in (("ipv4", False), ("ipv6", True)):
            lines.append(f" address-family {family} unicast")
            lines += [f"  network {p}" for p in self.prefixes if is_ipv6(p) == ipv6]
            lines += [f"  neighbor {n.address} activate" for n in self.neighbors if n.ipv6 == ipv6]
            lines.append(" exit-address-family")
        return "\n".join([*lines, "!"]) + "\n"

    def vtysh(self, *commands: str) -> str:
        """vtysh's output for ``commands`` (each one ``-c``), run against this bgpd."""
        args: list[str] = []
        for command in commands:
            args += ["-c", command]
        return self._run(VTYSH, "--vty_socket", self.rundir, "-d", "bgpd", *args)

    def _json(self, command: str) -> Any:
        output = self.vtysh(command)
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            raise PeerError(f"vtysh {command!r}: {output.strip()}") from None

    def session_state(self, neighbor_address: str) -> State:
        neighbor = self.neighbor(neighbor_address)
        data = self._json(f"show bgp neighbors {neighbor.address} json")
        try:
            return normalise_state(data[neighbor.address]["bgpState"])
        except (KeyError, TypeError):
            raise PeerError(f"no bgpState for {neighbor.address} in {data}") from None

    def received_prefixes(self, neighbor_address: str) -> frozenset[str]:
        neighbor = self.neighbor(neighbor_address)
        afi = "ipv6" if neighbor.ipv6 else "ipv4"
        data = self._json(f"show bgp {afi} unicast neighbors {neighbor.address} routes json")
        routes = data.get("routes", {}) if isinstance(data, dict) else {}
        return frozenset(normalise_prefix(prefix) for prefix in routes)

    def _apply_prefixes(self) -> None:
        # Remove what is no longer wanted, add what is; vtysh applies the lines in order.
        commands = ["configure terminal", f"router bgp {self.local_as}"]
        for family, ipv6 in (("ipv4", False), ("ipv6", True)):
            wanted = {p for p in self.prefixes if is_ipv6(p) == ipv6}
            present = self._configured_networks(family)
            commands.append(f"address-family {family} unicast")
            commands += [f"no network {p}" for p in sorted(present - wanted)]
            commands += [f"network {p}" for p in sorted(wanted - present)]
            commands.append("exit-address-family")
        self.vtysh(*commands)

    def _configured_networks(self, family: str) -> set[str]:
        config = self.vtysh("show running-config")
        networks: set[str] = set()
        in_family = False
        for line in config.splitlines():
            stripped = line.strip()
            if stripped.startswith("address-family "):
                in_family = stripped == f"address-family {family} unicast"
            elif stripped == "exit-address-family":
                in_family = False
            elif in_family and stripped.startswith("network "):
                networks.add(normalise_prefix(stripped.split()[1]))
        return networks

    def neighbor_json(self, neighbor: Neighbor) -> Any:
        """bgpd's whole ``show bgp neighbors <addr> json`` record for ``neighbor``."""
        return self._json(f"show bgp neighbors {neighbor.address} json").get(neighbor.address)
