"""One netlink monitor for the daemon, its notifications handed to every kernel watcher.

Data flow: ``KernelEvents.start`` opens one ``Monitor`` (route, link and address groups) and
then lets each watcher read its starting state (``resync``: a dump), so that no change falls
between a dump and listening. Every notification goes to every watcher's ``on_kernel``. Two
things make the notifications incomplete, and both end in every watcher reading the kernel
again (``resync``, debounced so a burst costs one dump each):

* an overrun (ENOBUFS, or an undecodable datagram): notifications were lost;
* a link changing state or an address coming or going: when a device goes down the kernel
  flushes the IPv4 routes through it without sending RTM_DELROUTE for them, so what was
  learned through it, what we installed through it and what next hops resolved through it
  are known only by reading again.

The watchers are the ``KernelLearner`` (kernel -> RIB), the ``NextHopResolver`` and the
``FibProgrammer`` (RIB -> kernel, which repairs drift from what it sees here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from kernel_sync.netlink_codes import MessageType
from kernel_sync.netlink_messages import Address, Header, Link
from kernel_sync.netlink_socket import (
    DEFAULT_RCVBUF,
    Monitor,
    drop_own_new_routes,
    dump_links,
)
from kernel_sync.route_messages import KernelRoute

LOG = logging.getLogger("myna.kernel")

RESYNC_DELAY = 0.05  # seconds: one re-read for a burst of link/address changes or overruns


class KernelWatcher(Protocol):
    """What ``KernelEvents`` feeds."""

    def on_kernel(self, header: Header, value: KernelRoute | Link | Address) -> None:
        """One notification (route, link or address)."""

    async def resync(self) -> None:
        """Read the kernel again and make the watcher's view equal to it."""


class KernelEvents:
    """The daemon's netlink monitor and its watchers (see the module docstring)."""

    def __init__(
        self,
        rcvbuf: int = DEFAULT_RCVBUF,
        reconcile_interval: float = 0.0,
        own_protocol: int | None = None,
    ) -> None:
        self.rcvbuf = rcvbuf
        self.own_protocol = own_protocol  # its RTM_NEWROUTE notifications are filtered out
        self.reconcile_interval = reconcile_interval
        self.watchers: list[KernelWatcher] = []
        self.links: dict[int, Link] = {}  # by ifindex: whether each device is up, by name
        self.resyncs = 0
        self.overruns = 0
        self._monitor: Monitor | None = None
        self._resync_due: asyncio.TimerHandle | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._again = False
        self._periodic: asyncio.TimerHandle | None = None
        self.after_resync: Callable[[], None] = lambda: None  # e.g. the status file's refresh

    async def start(self) -> None:
        """Listen first, then read the links and let every watcher read its starting state."""
        self._monitor = Monitor(self._on_message, self._on_overrun, rcvbuf=self.rcvbuf)
        if self.own_protocol is not None:
            drop_own_new_routes(self._monitor.sock, self.own_protocol)
        self._monitor.start()
        await self._read_all()
        self._schedule_periodic()

    def _schedule_periodic(self) -> None:
        if self.reconcile_interval > 0 and self._monitor is not None:
            loop = asyncio.get_running_loop()
            self._periodic = loop.call_later(self.reconcile_interval, self._periodic_check)

    def _periodic_check(self) -> None:
        self.schedule_resync("periodic check", quiet=True)
        self._schedule_periodic()

    def close(self) -> None:
        """Stop listening (idempotent)."""
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        if self._resync_due is not None:
            self._resync_due.cancel()
        if self._resync_task is not None:
            self._resync_task.cancel()
        if self._periodic is not None:
            self._periodic.cancel()

    def link_up(self, ifindex: int) -> bool:
        """Whether the device can forward (up with a carrier); unknown devices cannot."""
        link = self.links.get(ifindex)
        return link is not None and link.is_up and link.has_carrier

    def link_name(self, ifindex: int) -> str | None:
        """The device's name, None when unknown."""
        link = self.links.get(ifindex)
        return None if link is None else link.name

    def ifindex(self, name: str) -> int:
        """The index of the device called ``name``; OSError when there is none (as the C call)."""
        for link in self.links.values():
            if link.name == name:
                return link.ifindex
        raise OSError(f"no device {name}")

    async def _read_all(self) -> None:
        self.links = {link.ifindex: link for link in await dump_links()}
        for watcher in self.watchers:
            await watcher.resync()

    def _on_message(self, header: Header, value: KernelRoute | Link | Address) -> None:
        if isinstance(value, Link):
            old = self.links.get(value.ifindex)
            if header.type == MessageType.DELLINK:
                self.links.pop(value.ifindex, None)
            else:
                self.links[value.ifindex] = value
            changed = (
                old is None
                or header.type == MessageType.DELLINK
                or (
                    (old.is_up, old.has_carrier, old.name)
                    != (value.is_up, value.has_carrier, value.name)
                )
            )
            if changed:
                self.schedule_resync(f"device {value.name} changed")
        elif isinstance(value, Address):
            self.schedule_resync("an address changed")
        for watcher in self.watchers:
            watcher.on_kernel(header, value)

    def _on_overrun(self) -> None:
        self.overruns += 1
        self.schedule_resync("kernel notifications were lost (ENOBUFS)")

    def schedule_resync(self, why: str, *, quiet: bool = False) -> None:
        """Read everything again soon; once for a burst of causes."""
        if self._resync_due is not None:
            return
        if self._resync_task is not None and not self._resync_task.done():
            self._again = True  # a re-read is running: one more after it, it may have missed this
            return
        if not quiet:
            LOG.info("reading the kernel's tables again: %s", why)
        loop = asyncio.get_running_loop()
        self._resync_due = loop.call_later(RESYNC_DELAY, self._start_resync)

    def _start_resync(self) -> None:
        self._resync_due = None
        self._resync_task = asyncio.get_running_loop().create_task(self._resync())

    async def _resync(self) -> None:
        self.resyncs += 1
        try:
            await self._read_all()
            self.after_resync()
        except OSError as error:
            LOG.error("reading the kernel's tables failed: %s; trying again in 1 s", error)
            await asyncio.sleep(1.0)
            self._again = True
        if self._again:
            self._again = False
            self._resync_task = None
            self.schedule_resync("changes during the last re-read")
