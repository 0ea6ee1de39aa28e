"""What a configuration reload changes: which peers stay, which are reset, added or removed.

Data flow: ``myna reload`` (over the control socket) and SIGHUP load and validate the new file
(nothing changes when it is invalid), then ``plan_reload(old, new)`` compares the two configs
without touching anything and returns a ``ReloadPlan``; the daemon carries it out. A peer is
*kept* (its session stays Established, its routes stay) when everything that decides its
session and its routes is equal: its own settings (the password as read now, from the file or
the environment, included), the global timers it inherits, and the policy inputs (pools, blocks,
filters, communities, service ranges) its import and export policies are compiled from. A
change in those inputs resets every peer, since the compiled policies are shared. Settings
that the running daemon cannot take over (router id, AS, listen addresses, reflection, kernel,
metrics and control sockets) refuse the reload with a message naming them: they need a
restart, which graceful restart and persisted kernel routes make hitless.

Both front-ends come through here: a BIRD file (``bgpd.bird_config``) gives the same
``DaemonConfig``, whose peers carry their BIRD protocol name and compiled-to-be filters. Read
again, such a file gives new filter objects, and every position shifts when a line is added
above: settings are therefore compared as values (``comparable``), filters with BIRD's own
``filter_same`` (``bgpd.bird_config.filter_identity``), which follows calls into functions and
ignores positions and names. So, as BIRD 1.6 does on ``configure`` (``nest/proto.c``:
``protos_commit`` keeps a protocol whose ``proto_reconfigure`` finds the same options), a peer
whose options and filters read the same is kept however the file around it moved; one whose
options or filters changed is reset (BIRD 1.6 restarts a BGP protocol whose options changed;
for a changed filter it asks the peer for a ROUTE-REFRESH or re-feeds the export, which
Myna's RIB cannot do to a running session: Myna restarts it, as BIRD does when the peer lacks
route refresh; such peers are also listed in ``filters_only``); a protocol renamed is a
removed one and a new one, as in BIRD. The kernel protocol's options and filters need a
restart of Myna (the FIB's policy is fixed at start); changed static routes or direct
interfaces are named in ``static_changed`` and ``direct_changed`` for the daemon.

A peer's ``bfd`` settings are not part of what resets it: BFD only advises the session (RFC
5882 2), and 3.3 asks that configuring BFD, or setting it up again, not disturb its clients, so
``bgpd.bfd_peers`` changes the BFD session alone (in place where the path is the same, as
BIRD reconfigures its BFD sessions, else by a new session) and the BGP session stays
Established with its routes. Such peers are listed in ``bfd_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bgpd.bfd_config import BfdSecretError
from bgpd.bird_config.filter_identity import filter_key
from bgpd.config import BirdFilterModel, ConfigError, DaemonConfig, Peer

# Top-level settings a running daemon cannot take over.
NEEDS_RESTART = (
    "router_id",
    "local_as",
    "listen",
    "cluster_id",
    "client_to_client",
    "kernel",
    "metrics",
    "control",
    "status_file",
    "ipv4_address",
    "ipv6_address",
)
# Top-level settings that every peer's compiled policies read.
POLICY_INPUTS = (
    "ip_pools",
    "blocks",
    "prefix_advertisements",
    "communities",
    "service_cidrs",
    "filters",
)


@dataclass
class ReloadPlan:
    """The outcome of comparing two configs (peers by address)."""

    kept: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bfd_changed: list[str] = field(default_factory=list)  # kept peers whose BFD settings changed
    # Reset peers whose filters or preference alone changed: BIRD 1.6 would re-feed their
    # export and ask them for a ROUTE-REFRESH instead of restarting (still reset here).
    filters_only: list[str] = field(default_factory=list)
    announce_changed: bool = False
    static_changed: bool = False  # BIRD's static protocol: its routes differ
    direct_changed: bool = False  # BIRD's direct protocol: its interfaces differ
    log_changed: bool = False
    refused: list[str] = field(default_factory=list)  # settings that need a restart

    def summary(self) -> str:
        """One line for the log and the CLI."""
        if self.refused:
            return "reload refused: changing " + ", ".join(self.refused) + " needs a restart"
        parts = [
            f"{len(self.kept)} peers kept",
            f"{len(self.reset)} reset",
            f"{len(self.added)} added",
            f"{len(self.removed)} removed",
        ]
        if self.bfd_changed:
            parts.append(f"BFD updated for {len(self.bfd_changed)}")
        if self.announce_changed:
            parts.append("announced prefixes updated")
        if self.static_changed:
            parts.append("static routes changed")
        if self.direct_changed:
            parts.append("direct interfaces changed")
        return "reload: " + ", ".join(parts)


def comparable(value: Any) -> Any:
    """``value`` as plain data that compares equal exactly when the settings are the same.

    Pydantic models become their fields; a BIRD filter becomes its ``filter_key`` (the parsed
    program's objects compare by identity, and its ``defined_at`` is a line number).
    """
    if isinstance(value, BirdFilterModel):
        return ("bird filter", filter_key(value.program))
    if isinstance(value, BaseModel):
        return (
            type(value).__name__,
            tuple((name, comparable(getattr(value, name))) for name in type(value).model_fields),
        )
    if isinstance(value, (tuple, list)):
        return tuple(comparable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), comparable(v)) for k, v in value.items()))
    return value


def _changed(old: DaemonConfig, new: DaemonConfig, name: str) -> bool:
    return bool(comparable(getattr(old, name)) != comparable(getattr(new, name)))


def _secret(peer: Peer) -> str | None:
    try:
        return peer.secret()
    except ConfigError:
        return None  # unreadable: the new config's check reports it


def _peer_key(config: DaemonConfig, peer: Peer, secret: str | None) -> tuple[object, ...]:
    without_bfd = peer.model_copy(update={"bfd": None})  # BFD changes reset no BGP session
    return (
        comparable(without_bfd),
        secret,
        comparable(peer.timers or config.timers),
        config.is_passive(peer),
    )


def _unfiltered(peer: Peer) -> Peer:
    """The peer without what BIRD 1.6 reloads rather than restarts: filters and preference."""
    return peer.model_copy(
        update={"import_filter": None, "export_filter": None, "preference": None}
    )


def _bfd_key(peer: Peer) -> tuple[object, ...]:
    bfd = peer.bfd
    if bfd is None or not bfd.enabled:
        return (None,)
    try:
        secret = bfd.secret(peer.address)
    except BfdSecretError:
        secret = None  # unreadable: the BFD wiring logs it when it tries
    return (bfd, secret, peer.bfd_multihop(), peer.source_address)


def plan_reload(
    old: DaemonConfig, new: DaemonConfig, secrets_in_use: dict[str, str | None] | None = None
) -> ReloadPlan:
    """Compare ``old`` and ``new`` (see the module docstring).

    ``secrets_in_use`` holds the password each running session was started with (a password
    file may have changed since: the file is what ``old`` names, not what it held).
    """
    in_use = secrets_in_use or {}
    plan = ReloadPlan()
    plan.refused = [name for name in NEEDS_RESTART if _changed(old, new, name)]
    if (
        old.reflector_cluster_id() != new.reflector_cluster_id()
        and "cluster_id" not in plan.refused
    ):
        # The first route-reflector client makes the node a reflector: the loop check on
        # receipt must then know our cluster id, which the running RIB was built without.
        plan.refused.append("cluster_id (in use: the first or last route_reflector_client)")
    if plan.refused:
        return plan
    policies_changed = any(_changed(old, new, n) for n in POLICY_INPUTS)
    before = {p.address: p for p in old.peers}
    after = {p.address: p for p in new.peers}
    for address, peer in after.items():
        if address not in before:
            plan.added.append(address)
        elif policies_changed or _peer_key(
            old, before[address], in_use.get(address, _secret(before[address]))
        ) != _peer_key(new, peer, _secret(peer)):
            plan.reset.append(address)
            if not policies_changed and _peer_key(
                old, _unfiltered(before[address]), in_use.get(address, _secret(before[address]))
            ) == _peer_key(new, _unfiltered(peer), _secret(peer)):
                plan.filters_only.append(address)
        else:
            plan.kept.append(address)
            if _bfd_key(before[address]) != _bfd_key(peer):
                plan.bfd_changed.append(address)
    plan.removed = [address for address in before if address not in after]
    plan.announce_changed = old.announce != new.announce
    plan.static_changed = _changed(old, new, "static_routes")
    plan.direct_changed = _changed(old, new, "direct")
    plan.log_changed = (old.log_level, old.log_format) != (new.log_level, new.log_format)
    return plan
