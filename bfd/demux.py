"""Which session a received packet belongs to: RFC 5880 6.8.6, RFC 5881 3, RFC 5883 4.

Data flow: the engine registers every session with its ``Binding`` (hop mode, peer address,
local address, interface index) and local discriminator; for each decoded packet it calls
``lookup`` with where the packet came from and arrived, and gets the session or the
``DropReason``:

- Your Discriminator nonzero selects the session by our discriminator alone (6.8.6), whatever
  the source address, the destination or the interface: RFC 5880 6.3 ("all further received
  packets are demultiplexed based on the Your Discriminator field only (which means that,
  among other things, the source address field can change or the interface over which the
  packets are received can change ...)") and RFC 5881 6 ("the source address of a BFD Control
  packet MUST NOT be used to identify the session"), as BIRD does. Only the hop mode (the
  port it arrived on) must be the session's: a single-hop session takes nothing from the
  multihop port, where the engine does not require TTL 255 (RFC 5881 5), so the TTL rule
  keeps off-link senders away from single-hop sessions whatever the discriminator says.
  Multihop sessions are open to a sender that guesses the 32-bit discriminator, as the RFCs
  have it; authentication (or ``min_ttl``) is what protects them, as RFC 5883's security
  considerations advise.
- Your Discriminator zero is only allowed in Down and AdminDown (6.8.6); the session is then
  the one bound to the peer address and the interface (single hop, RFC 5881 3), or to the
  source and destination address pair (multihop, RFC 5883 4). A session bound to no
  interface (single hop) or no local address (multihop) matches any.

No session is ever created for an unknown peer: 6.8.6 lets that be a choice, and Myna's
sessions all come from configuration.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Generic, TypeVar

from bfd.packet import ControlPacket
from bfd.wire_codes import DropReason, HopMode, State

T = TypeVar("T")


def canonical(address: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 compressed, no scope."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclass(frozen=True, slots=True)
class Binding:
    """Where one session's packets travel: its hop mode, the peer, our address, the interface.

    Addresses are in ``canonical`` form; ``ifindex`` 0 is no interface (any).
    """

    mode: HopMode
    peer: str
    local: str | None = None
    ifindex: int = 0

    def matches(self, mode: HopMode, source: str, destination: str, ifindex: int) -> bool:
        """Whether a packet from ``source`` to ``destination`` on ``ifindex`` is on this path."""
        if mode is not self.mode or source != self.peer:
            return False
        if self.mode is HopMode.SINGLE_HOP:
            return self.ifindex in (0, ifindex)
        return self.local in (None, destination)


class Demultiplexer(Generic[T]):
    """The sessions by local discriminator and by path."""

    def __init__(self) -> None:
        self._by_discriminator: dict[int, tuple[Binding, T]] = {}
        self._by_path: dict[tuple[HopMode, str], list[tuple[Binding, T]]] = {}

    def __len__(self) -> int:
        return len(self._by_discriminator)

    def add(self, discriminator: int, binding: Binding, session: T) -> None:
        """Register ``session``; ValueError if its discriminator or its path is taken."""
        if discriminator in self._by_discriminator:
            raise ValueError(f"BFD discriminator {discriminator} is in use")
        same_peer = self._by_path.setdefault((binding.mode, binding.peer), [])
        for other, _ in same_peer:
            if _overlap(other, binding):
                raise ValueError(f"a BFD session for {binding} exists already ({other})")
        same_peer.append((binding, session))
        self._by_discriminator[discriminator] = (binding, session)

    def remove(self, discriminator: int) -> None:
        """Forget the session with ``discriminator`` (nothing if there is none)."""
        entry = self._by_discriminator.pop(discriminator, None)
        if entry is None:
            return
        binding, session = entry
        same_peer = self._by_path[(binding.mode, binding.peer)]
        same_peer[:] = [(b, s) for b, s in same_peer if s is not session]
        if not same_peer:
            del self._by_path[(binding.mode, binding.peer)]

    def conflicting(self, binding: Binding) -> list[T]:
        """The sessions whose path ``binding`` overlaps (``add`` refuses it while they stay)."""
        same_peer = self._by_path.get((binding.mode, binding.peer), ())
        return [session for other, session in same_peer if _overlap(other, binding)]

    def free(self, discriminator: int) -> bool:
        """Whether ``discriminator`` may be given to a new session."""
        return discriminator != 0 and discriminator not in self._by_discriminator

    def lookup(
        self,
        packet: ControlPacket,
        mode: HopMode,
        source: str,
        destination: str,
        ifindex: int,
    ) -> T | DropReason:
        """The session ``packet`` belongs to, or why it belongs to none."""
        if packet.your_discriminator:
            entry = self._by_discriminator.get(packet.your_discriminator)
            if entry is None:
                return DropReason.UNKNOWN_DISCRIMINATOR
            binding, session = entry
            if binding.mode is not mode:
                return DropReason.WRONG_PEER  # the other hop mode's session (port)
            return session
        if packet.state not in (State.DOWN, State.ADMIN_DOWN):
            return DropReason.ZERO_DISCRIMINATOR_NOT_DOWN
        candidates = self._by_path.get((mode, source), ())
        # The most specific binding first: one naming the interface / local address.
        best: tuple[Binding, T] | None = None
        for binding, session in candidates:
            if binding.matches(mode, source, destination, ifindex) and (
                best is None or _specific(binding) > _specific(best[0])
            ):
                best = (binding, session)
        return DropReason.NO_SESSION_FOR_ADDRESS if best is None else best[1]


def _specific(binding: Binding) -> int:
    return 1 if binding.ifindex or binding.local else 0


def _overlap(a: Binding, b: Binding) -> bool:
    """Two sessions to one peer whose paths a packet with Your Discriminator 0 could not tell."""
    if a.mode is HopMode.SINGLE_HOP:
        return a.ifindex == b.ifindex
    return a.local == b.local
