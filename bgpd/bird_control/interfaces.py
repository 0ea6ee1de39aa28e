"""The interfaces BIRD's device protocol would know, and which one a next hop is on.

Data flow: ``Interfaces.refresh`` reads the devices and addresses of the daemon's namespace
over netlink (``kernel_sync.netlink_socket``: ``dump_links``, ``dump_addresses``), at most
once a second; ``show interfaces`` prints them and ``show route`` asks ``device_for`` which
interface a gateway is on (the one with an address whose network holds it), as BIRD prints
``via GW on IFACE``.

BIRD 1.6's view of an interface (``sysdep/linux/netlink.c`` ``nl_parse_link``/``nl_parse_addr``,
``nest/iface.c`` ``if_show``): flags from IFF_* (loopback: MultiAccess Loopback Ignored;
point-to-point: PtP Multicast; broadcast: MultiAccess Broadcast Multicast; else MultiAccess;
AdminUp from IFF_UP, LinkUp from IFF_LOWER_UP); ``up`` when admin-up with a primary address;
the addresses of the socket's family only (bird: IPv4, bird6: IPv6), none for an admin-down
device; the primary address is the first non-secondary one of scope above link with the
lowest address (``kif_choose_primary``), listed first; scopes by BIRD's ``ip4_classify`` /
``ip6_classify`` (127/8 host, 10/8 172.16/12 192.168/16 site, fe80::/10 link, fc00::/7 site).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field

from bgpd.bird_control.replies import Line
from kernel_sync.netlink_codes import AddressFamily
from kernel_sync.netlink_messages import Link
from kernel_sync.netlink_socket import dump_addresses, dump_links

LOG = logging.getLogger("myna.bird_socket")
REFRESH_AFTER = 1.0  # seconds a snapshot is reused
_IFF_BROADCAST, _IFF_LOOPBACK, _IFF_POINTOPOINT, _IFF_MULTICAST = 0x2, 0x8, 0x10, 0x1000
_IFF_UP, _IFF_LOWER_UP = 0x1, 0x10000
_IFA_F_SECONDARY = 0x01
_SITE4 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_SITE6 = tuple(ipaddress.IPv6Network(n) for n in ("fec0::/10", "fc00::/7"))
IfAddress = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def scope_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """BIRD's scope of an interface address."""
    if address.version == 4:
        if address in ipaddress.IPv4Network("127.0.0.0/8"):
            return "host"
        return "site" if any(address in net for net in _SITE4) else "univ"
    if address == ipaddress.IPv6Address("::1"):
        return "host"
    if address in ipaddress.IPv6Network("fe80::/10"):
        return "link"
    return "site" if any(address in net for net in _SITE6) else "univ"


@dataclass
class Interface:
    """One device and its addresses of the family, primary first."""

    link: Link
    addresses: list[IfAddress] = field(default_factory=list)
    primary: IfAddress | None = None
    secondary: set[IfAddress] = field(default_factory=set)  # IFA_F_SECONDARY

    @property
    def up(self) -> bool:
        """BIRD's IF_UP: administratively up, with a primary address."""
        return bool(self.link.flags & _IFF_UP) and self.primary is not None


def _choose_primary(addresses: list[IfAddress], secondary: set[IfAddress]) -> IfAddress | None:
    best: tuple[tuple[bool, int], IfAddress] | None = None
    for interface in addresses:
        if interface in secondary:
            continue
        rank = (scope_of(interface.ip) in ("host", "link"), int(interface.ip))
        if best is None or rank < best[0]:
            best = (rank, interface)
    return None if best is None else best[1]


class Interfaces:
    """A snapshot of the namespace's interfaces for one family (see the module docstring)."""

    def __init__(self, ipv6: bool) -> None:
        self.ipv6 = ipv6
        self.interfaces: list[Interface] = []
        self._read_at = 0.0

    async def refresh(self) -> None:
        """Read the devices and addresses again, unless read within the last second."""
        now = time.monotonic()
        if self.interfaces and now - self._read_at < REFRESH_AFTER:
            return
        family = AddressFamily.INET6 if self.ipv6 else AddressFamily.INET
        links = sorted(await dump_links(), key=lambda link: link.ifindex)
        addresses = await dump_addresses(family)
        out = []
        for link in links:
            interface = Interface(link)
            mine: list[IfAddress] = []
            if link.flags & _IFF_UP:  # BIRD ignores the addresses of a device that is down
                for raw in addresses:
                    if raw.ifindex == link.ifindex:
                        ip = ipaddress.ip_address(raw.address)
                        mine.append(ipaddress.ip_interface(f"{ip}/{raw.prefix_len}"))
                        if raw.flags & _IFA_F_SECONDARY:
                            interface.secondary.add(mine[-1])
            interface.primary = _choose_primary(mine, interface.secondary)
            rest = [i for i in mine if i != interface.primary]
            interface.addresses = ([interface.primary] if interface.primary else []) + rest
            out.append(interface)
        self.interfaces = out
        self._read_at = now

    def device_for(self, gateway: str) -> str | None:
        """The interface whose network holds ``gateway`` (None: no such interface)."""
        address = ipaddress.ip_address(gateway)
        for interface in self.interfaces:
            for net in interface.addresses:
                if address in net.network and interface.up:
                    return interface.link.name
        LOG.debug("no interface for %s in %s", gateway, self.interfaces)
        self._read_at = 0.0  # read again for the next command: an address may have come since
        return None

    def show(self, summary: bool) -> list[Line]:
        """``show interfaces [summary]``."""
        if summary:
            lines: list[Line] = [(2005, "interface state address")]
            for interface in self.interfaces:
                primary = interface.primary.with_prefixlen if interface.primary else ""
                state = "up" if interface.up else "DOWN"
                lines.append((1005, f"{interface.link.name:<9} {state:<5} {primary}"))
            return [*lines, (0, "")]
        lines = []
        for interface in self.interfaces:
            link = interface.link
            lines.append(
                (
                    1001,
                    f"{link.name} {'up' if interface.up else 'DOWN'} (index={link.ifindex})",
                )
            )
            lines.append((1004, f"\t{_flags(link)} MTU={link.mtu}"))
            for address in interface.addresses:
                kind = "Primary" if address == interface.primary else "Unselected"
                if address in interface.secondary:
                    kind = "Secondary"
                lines.append(
                    (1003, f"\t{address.with_prefixlen} ({kind}, scope {scope_of(address.ip)})")
                )
        return [*lines, (0, "")]


def _flags(link: Link) -> str:
    flags = link.flags
    if flags & _IFF_LOOPBACK:
        kind, broadcast, multicast, tail = "MultiAccess", False, False, " Loopback Ignored"
    elif flags & _IFF_POINTOPOINT:
        kind, broadcast, multicast, tail = "PtP", False, True, ""
    elif flags & _IFF_BROADCAST:
        kind, broadcast, multicast, tail = "MultiAccess", True, True, ""
    else:
        kind, broadcast, multicast, tail = "MultiAccess", False, False, ""
    multicast = multicast or bool(flags & _IFF_MULTICAST)
    text = kind + (" Broadcast" if broadcast else "") + (" Multicast" if multicast else "")
    text += f" Admin{'Up' if flags & _IFF_UP else 'Down'}"
    text += f" Link{'Up' if flags & _IFF_LOWER_UP else 'Down'}"
    return text + tail
