"""BIRD's ``protocol bfd`` -> each BFD-advised BGP peer's ``bfd`` block (``bgpd.bfd_config``).

Role: ``daemon_config`` asks ``BfdMapper.peer`` for the ``bfd`` field of every ``protocol
bgp`` and calls ``check_neighbors`` once all are mapped. The settings are the ones BIRD
1.6.8 gives the session that BGP protocol asks for (``proto/bgp/bgp.c``: ``bgp_update_bfd``;
``proto/bfd/bfd.c``: ``bfd_add_request``, ``bfd_get_iface``, ``bfd_find_iface_config``):

* ``bfd on`` / ``bfd graceful`` ask for a session to the neighbor from the BGP source
  address, multihop when the BGP session is (``multihop [N]``, iBGP's default), else single
  hop on the interface the neighbor is connected to. ``graceful`` is the model's ``graceful``.
* Sessions are found by the peer's address alone: a bfd ``neighbor`` entry for that address
  makes its session when the bfd protocol starts (before BGP asks, which waits for its lock),
  so that entry decides the path: ``multihop on`` (with its ``local``) or single hop (on its
  ``dev``/``%`` interface when it names one), and ``local`` becomes the model's ``local``.
* Settings come from the session's "interface": a multihop session takes the ``multihop``
  block; a single-hop one the first ``interface`` block whose patterns admit its interface;
  neither found, BIRD's defaults (10 ms rx, 100 ms tx, 1 s idle, 5: ``bfd_default_iface``,
  the model's defaults). When the interface is known from the file (a neighbor's ``dev``)
  the block is chosen here; otherwise the interface blocks go into the model's
  ``interfaces`` and the daemon chooses at session start (``BfdModel.for_interface``).
* ``authentication`` and the block's first password (its ``id``, default 1) are ``auth``,
  ``password`` and ``key_id``; BIRD sends at most 16 octets of a simple or MD5 password and 20
  of a SHA1 one, so the password is cut there as BIRD cuts it. Without ``authentication`` the
  passwords are unused, as in BIRD (which warned while reading).
* No bfd protocol: BIRD keeps the request waiting and runs no session, so the peer's block
  is ``enabled: false`` (``myna check`` shows it).

Refused ("not supported by Myna", at the construct), where BIRD would run something Myna's
model cannot say: a second or a disabled bfd protocol; a neighbor entry no BFD-advised BGP
protocol uses (a BFD session without a client); in a block a session uses, a zero interval or
multiplier, an idle tx interval under 1 s (RFC 5880 6.8.3), authentication without a password
(BIRD would send unauthenticated packets and drop every one it gets), more than one password,
an empty one, or an id above 255 (BIRD puts it in an octet and never matches it again).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bgpd.bfd_config import interface_admitted
from bgpd.bird_config import config_model as m
from bgpd.bird_config.errors import not_supported

_MAX_SECRET = {
    m.BfdAuth.SIMPLE: 16,
    m.BfdAuth.KEYED_MD5: 16,
    m.BfdAuth.METICULOUS_MD5: 16,
    m.BfdAuth.KEYED_SHA1: 20,
    m.BfdAuth.METICULOUS_SHA1: 20,
}
_SLOW_TX_US = 1_000_000  # RFC 5880 6.8.3


def _ip(address: int, ipv6: bool) -> str:
    return str(ipaddress.IPv6Address(address) if ipv6 else ipaddress.IPv4Address(address))


def patterns_text(patterns: tuple[m.InterfacePattern, ...]) -> tuple[str, ...]:
    """BIRD's pattern list in the model's words (a leading ``-`` excludes).

    BIRD also reads a ``-`` at the start of the quoted name as an exclusion (``"-eth0"``);
    both are folded into one, and a name that still starts with ``-`` is escaped.
    """
    texts: list[str] = []
    for pattern in patterns:
        include, name = pattern.include, pattern.pattern
        if name.startswith("-"):
            include, name = not include, name[1:]
        if not include:
            texts.append(f"-{name}")
        else:
            texts.append(f"\\{name}" if name.startswith("-") else name)
    return tuple(texts)


class BfdMapper:
    """The one bfd protocol of a file and what its BGP peers get from it."""

    def __init__(self, config: m.BirdConfig) -> None:
        protocols = [p for p in config.protocols if isinstance(p, m.BfdProtocol)]
        if len(protocols) > 1:
            raise not_supported(protocols[1].position, "a second bfd protocol")
        self.protocol = protocols[0] if protocols else None
        if self.protocol is not None and self.protocol.disabled:
            raise not_supported(self.protocol.position, "a disabled protocol")
        self.ipv6 = config.ipv6
        self._used: set[int] = set()  # neighbor addresses a BFD-advised BGP protocol uses

    def peer(self, bgp: m.BgpProtocol) -> dict[str, Any] | None:
        """The ``bfd`` field of the peer ``bgp`` is (None: ``bfd off``)."""
        if bgp.bfd is m.BfdMode.OFF:
            return None
        model: dict[str, Any] = {"graceful": bgp.bfd is m.BfdMode.GRACEFUL}
        bfd = self.protocol
        if bfd is None:
            return {**model, "enabled": False}
        neighbor = next((n for n in bfd.neighbors if n.address == bgp.neighbor), None)
        interface: str | None = None
        if neighbor is not None:
            self._used.add(neighbor.address)
            multihop, interface = neighbor.multihop, neighbor.interface
            if neighbor.local:
                model["local"] = _ip(neighbor.local, self.ipv6)
        else:
            multihop = bgp.effective_multihop() != 0
        model["multihop"] = multihop
        if multihop:
            return {**model, **self._settings(bfd.multihop_block)}
        if interface is not None:
            admitting = (
                block
                for block in bfd.interfaces
                if interface_admitted(patterns_text(block.patterns), interface)
            )
            return {**model, **self._settings(next(admitting, None))}
        rules = [
            {"patterns": patterns_text(block.patterns), **self._settings(block)}
            for block in bfd.interfaces
            if block.patterns
        ]
        if all(len(rule) == 1 for rule in rules):  # every block says what the defaults say
            rules = []
        return {**model, "interfaces": rules} if rules else model

    def check_neighbors(self) -> None:
        """Refuse a neighbor entry no BFD-advised BGP protocol uses (after every ``peer``)."""
        if self.protocol is None:
            return
        for neighbor in self.protocol.neighbors:
            if neighbor.address not in self._used:
                raise not_supported(
                    neighbor.position, "a BFD neighbor without a BGP protocol with bfd on"
                )

    def _settings(self, block: m.BfdSettings | None) -> dict[str, Any]:
        """A block's settings as the model's fields; only those that differ from the defaults."""
        if block is None:
            return {}  # BIRD's bfd_default_iface: the model's defaults
        where = block.position
        for value, what in ((block.min_rx_us, "min rx"), (block.min_tx_us, "min tx")):
            if value == 0:
                raise not_supported(where, f"a BFD {what} interval of 0")
        if block.idle_tx_us < _SLOW_TX_US:
            raise not_supported(
                where, "a BFD idle tx interval under 1 s (RFC 5880 6.8.3: at least 1 s while Down)"
            )
        if block.multiplier == 0:
            raise not_supported(where, "a BFD multiplier of 0")
        defaults = m.BfdSettings(where)
        given: list[tuple[str, object, object]] = [
            ("min_rx", block.min_rx_us / 1000, defaults.min_rx_us / 1000),
            ("min_tx", block.min_tx_us / 1000, defaults.min_tx_us / 1000),
            ("idle_tx", block.idle_tx_us / 1000, defaults.idle_tx_us / 1000),
            ("multiplier", block.multiplier, defaults.multiplier),
            ("passive", block.passive, defaults.passive),
        ]
        settings: dict[str, Any] = {name: value for name, value, dflt in given if value != dflt}
        if block.auth is m.BfdAuth.NONE:
            return settings
        if not block.passwords:
            raise not_supported(where, "BFD authentication without a password")
        if len(block.passwords) > 1:
            raise not_supported(block.passwords[1].position, "a second BFD password")
        password = block.passwords[0]
        if password.key_id > 255:
            raise not_supported(password.position, "a BFD password id above 255")
        secret = password.password.encode()[: _MAX_SECRET[block.auth]]
        if not secret:
            raise not_supported(password.position, "an empty BFD password")
        try:
            text = secret.decode()
        except UnicodeDecodeError:
            raise not_supported(
                password.position, "a BFD password cut by BIRD inside a character"
            ) from None
        return {**settings, "auth": block.auth.value, "password": text, "key_id": password.key_id}
