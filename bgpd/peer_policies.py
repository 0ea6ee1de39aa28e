"""Each peer's import and export policy, from the config, compiled once per distinct input.

Role: turn what the config says about policy into the functions the RIB calls. Two kinds of
config lead here, and nothing downstream knows which one it was:

* Calico's objects (``ip_pools``, ``blocks``, ``filters``: BGPFilter specs...): Calico's
  default policies (``rib.calico_policy``) around the peer's BGPFilters; the update group then
  applies the session rules (RFC 4271 9.2 iBGP split horizon, RFC 4456 reflection, next hop,
  AS_PATH and LOCAL_PREF rewrites: ``rib.adj_rib_out``).
* BIRD filters (``Peer.import_filter`` / ``export_filter``, from a ``bird.cfg``): the compiled
  filter is the whole policy of that direction. On export it starts from BIRD's BGP export
  view (``bgpd.bird_config.bgp_export``: BIRD's refusals, next hop, AS_PATH, LOCAL_PREF and
  reflection), so its verdict is what is sent and the group's own rules stay out of it
  (``ExportSettings.final``). On import, Myna's protocol checks come first (AS-path loop as
  ``allow local as`` permits, a next hop that is ours: BIRD drops such routes while decoding),
  then the filter; its ``preference =`` gives the route its own preference (``Preferred``).

The kernel's policy (which best routes are written, with which metric and tunnel) comes from
here too (``kernel_policy``): the kernel protocol's BIRD export filter, else Calico's
``calico_kernel_programming`` when pools are configured, else every BGP route.

Data flow: ``Daemon`` asks ``import_policy``/``import_per_route`` when it adds a peer and
``export_factory`` for the function that builds the peer's ``ExportSettings`` when its session
comes up (our address on the session is known only then). Compiled export filters are shared
by every session with the same BIRD export context, so those peers share an update group.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from bgpd.bird_config.bgp_export import BgpExportContext
from bgpd.bird_config.filter_identity import FunctionKeys, filter_key
from bgpd.config import BirdFilterModel, DaemonConfig, Peer
from kernel_sync.fib_programmer import KernelAnswer, KernelPolicy, program_all
from reflector.rules import PeerRole, Reflection
from rib.adj_rib_out import ExportPolicy, ExportSettings, NextHopMode, accept_all
from rib.calico_policy import (
    CalicoPolicyInputs,
    EncapMode,
    IpPool,
    PrefixAdvertisement,
    compile_export,
    compile_import,
    compile_kernel_programming,
    filter_from_crd,
    import_reads_prefix,
)
from rib.graceful_restart import peer_speaks_llgr
from rib.policy import (
    Action,
    Direction,
    PeerContext,
    PolicyCheck,
    Verdict,
    as_rib_policy,
    compile_filters,
)
from rib.rib_events import ImportPolicy
from rib.rib_task import RibSession
from rib.route import Preferred, Route
from rib.run_split import splitter_of, with_splitter
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.session_events import SessionUp
from speaker.wire_codes import Family

ExportFactory = Callable[[RibSession, SessionUp], ExportSettings]


def calico_inputs(config: DaemonConfig) -> CalicoPolicyInputs:
    """What Calico's default policies read, from the config."""
    return CalicoPolicyInputs(
        pools=tuple(
            IpPool(p.cidr, p.disable_bgp_export, EncapMode(p.ipip_mode), EncapMode(p.vxlan_mode))
            for p in config.ip_pools
        ),
        own_blocks=config.blocks,
        prefix_advertisements=tuple(
            PrefixAdvertisement(a.cidr, a.communities) for a in config.prefix_advertisements
        ),
        communities=tuple(config.communities.items()),
        service_cidrs=config.service_cidrs,
        node_networks=tuple(
            str(ipaddress.ip_interface(a).network)
            for a in (config.ipv4_address, config.ipv6_address)
            if a is not None
        ),
    )


def reflection_for(config: DaemonConfig, peer: Peer) -> Reflection | None:
    """RFC 4456 towards ``peer``: None unless the node reflects and the peer is iBGP."""
    cluster_id = config.reflector_cluster_id()
    if cluster_id is None or peer.asn != config.local_as_for(peer):
        return None
    role = PeerRole.CLIENT if peer.route_reflector_client else PeerRole.NON_CLIENT
    return Reflection(cluster_id, role, config.client_to_client)


BIRD_DEFAULT_LOCAL_PREF = 100  # BIRD 1.6's default bgp_local_pref (Calico never sets it)


def bird_export_policy(check: PolicyCheck) -> ExportPolicy:
    """A compiled BIRD export filter as the groups call it: the set to send, or None."""
    accept = Action.ACCEPT

    def policy(family: Family, prefix: int, route: Route) -> PathAttributes | None:
        verdict = check(prefix, family, route)
        if verdict[0] != accept:
            return None  # BIRD: a filter that decides nothing rejects
        attrs = verdict[1]
        return route.attrs if attrs is None else attrs

    return with_splitter(policy, splitter_of(check))


def bird_import_policy(checks: PolicyCheck, bird: PolicyCheck) -> ImportPolicy:
    """Myna's protocol checks (``checks``), then a compiled BIRD import filter."""
    accept = Action.ACCEPT

    def policy(family: Family, prefix: int, route: Route) -> PathAttributes | Preferred | None:
        if checks(prefix, family, route)[0] != accept:
            return None
        if route.attrs.local_pref is None:
            # BIRD 1.6 gives a received route without LOCAL_PREF (an eBGP peer's) its
            # ``default bgp_local_pref``, 100, while decoding it (bgp_decode_attrs): the
            # filters read it, the kernel's metric comes from it and iBGP peers are sent it.
            attrs = ATTRIBUTES.intern(route.attrs._replace(local_pref=BIRD_DEFAULT_LOCAL_PREF))
            route = route._replace(attrs=attrs)
        verdict = bird(prefix, family, route)
        if verdict[0] != accept:
            return None
        attrs = route.attrs if verdict[1] is None else verdict[1]
        if verdict.preference is not None:
            return Preferred(attrs, verdict.preference)
        return attrs

    return policy


def filter_identity(bird: BirdFilterModel, functions: FunctionKeys | None = None) -> object:
    """What makes two filters the same filter, so they compile once: BIRD's ``filter_same``.

    Calico writes the same inline filter into every mesh peer's protocol: those peers share
    one compiled function and one update group. ``filter_key`` compares what the filter means
    (following calls into the functions it calls, ignoring positions and names), so the key
    holds across a reload too (``Policies(reuse=...)``): a filter read again, or moved, is the
    same filter; one whose function changed is not. A verdict's reason names the first of the
    filters' places. ``functions``: the called functions' keys, kept between calls.
    """
    return filter_key(bird.program, functions)


def kernel_policy(config: DaemonConfig, inputs: CalicoPolicyInputs) -> KernelPolicy:
    """Which best routes the kernel gets, and how (see the module docstring)."""
    bird = config.kernel.export_filter
    if bird is not None:
        check = bird.compile(export=True)
        accept = Action.ACCEPT
        answers: dict[int, tuple[Verdict, KernelAnswer]] = {}

        def filtered(prefix: int, family: Family, route: Route) -> KernelAnswer:
            verdict = check(prefix, family, route)
            hit = answers.get(id(verdict))
            if hit is not None and hit[0] is verdict:
                return hit[1]
            answer: KernelAnswer = (
                (True, verdict.tunnel or None, verdict.priority)
                if verdict[0] == accept
                else (False, None, None)
            )
            if len(answers) >= 4096:
                answers.clear()
            answers[id(verdict)] = (verdict, answer)
            return answer

        return with_splitter(filtered, splitter_of(check))
    if config.ip_pools:
        calico = compile_kernel_programming(inputs)

        def pools(prefix: int, family: Family, route: Route) -> KernelAnswer:
            verdict = calico(prefix, family, route)
            return verdict.accept, verdict.tunnel, None

        return pools
    return program_all


class Policies:
    """Import and export policies per peer, compiled once per distinct set of inputs.

    Peers with the same session type and filters share one export function, which keeps them
    in one update group (the group key compares the function).
    """

    def __init__(self, config: DaemonConfig, reuse: Policies | None = None) -> None:
        """Policies for ``config``; ``reuse``: those of the config before a reload.

        BIRD filters are keyed by what they mean (``filter_identity`` follows calls into
        functions), so those compiled then serve again, and peers kept and peers re-filtered
        to the same text share update groups.
        """
        self.config = config
        self.inputs = calico_inputs(config)
        self.filters = {name: filter_from_crd(name, spec) for name, spec in config.filters.items()}
        self._exports: dict[tuple[bool, int, bool, tuple[str, ...]], ExportPolicy] = {}
        self._bird_exports: dict[tuple[object, BgpExportContext], ExportPolicy] = (
            {} if reuse is None else dict(reuse._bird_exports)
        )
        self._bird_imports: dict[object, tuple[PolicyCheck, bool]] = (
            {} if reuse is None else dict(reuse._bird_imports)
        )
        self._identities: dict[int, tuple[BirdFilterModel, object]] = {}
        self._function_keys: FunctionKeys = {}  # every peer's filter calls Calico's function
        own = {ipaddress.ip_address(config.router_id).packed}
        own.update(
            ipaddress.ip_address(p.source_address).packed for p in config.peers if p.source_address
        )
        self.own_addresses = frozenset(own)

    def retarget(self, config: DaemonConfig) -> None:
        """Serve ``config`` with the same compiled policies (a reload that changed no input).

        The identities worked out for the old file's filter objects are dropped: the new file's
        objects get their own at their sessions' next coming up, and the old ones are freed.
        """
        self.config = config
        self._identities.clear()
        self._function_keys.clear()

    def _identity(self, bird: BirdFilterModel) -> object:
        """``filter_identity``, worked out once per filter object (each session up asks)."""
        hit = self._identities.get(id(bird))
        if hit is None or hit[0] is not bird:
            hit = self._identities[id(bird)] = (
                bird,
                filter_identity(bird, self._function_keys),
            )
        return hit[1]

    def _context(self, peer: Peer) -> PeerContext:
        return PeerContext(
            ibgp=peer.asn == self.config.local_as_for(peer),
            rr_client=peer.route_reflector_client,
            local_as=self.config.local_as_for(peer),
        )

    # -- export ------------------------------------------------------------------------------

    def export(self, peer: Peer) -> ExportPolicy:
        """The peer's Calico export policy: its filters, then Calico's defaults (pools set)."""
        key = (
            peer.asn == self.config.local_as_for(peer),
            self.config.local_as_for(peer),
            peer.route_reflector_client,
            peer.filters,
        )
        policy = self._exports.get(key)
        if policy is None:
            filters = [self.filters[name] for name in peer.filters]
            if self.config.ip_pools:
                policy = as_rib_policy(compile_export(self.inputs, self._context(peer), filters))
            elif not any(f.export_v4 or f.export_v6 for f in filters):
                policy = accept_all  # nothing to check: the groups skip the call per prefix
            else:
                check = compile_filters(filters, Direction.EXPORT, self._context(peer))
                policy = as_rib_policy(check)
            self._exports[key] = policy
        return policy

    def bird_export(self, export: BirdFilterModel, context: BgpExportContext) -> ExportPolicy:
        """A BIRD export filter towards sessions of ``context``, compiled once per context."""
        key = (self._identity(export), context)
        policy = self._bird_exports.get(key)
        if policy is None:
            policy = bird_export_policy(export.compile(export=True, bgp_export=context))
            self._bird_exports[key] = policy
        return policy

    def export_factory(self, peer: Peer) -> ExportFactory:
        """What builds the peer's export settings when its session comes up."""
        config = self.config
        local_as = config.local_as_for(peer)
        reflect = reflection_for(config, peer)
        mode = NextHopMode(peer.next_hop_mode)
        bird = peer.export_filter
        calico = None if bird is not None else self.export(peer)
        cluster_id = config.reflector_cluster_id()

        def settings(session: RibSession, up: SessionUp) -> ExportSettings:
            local = session.local_address()
            packed = ipaddress.ip_address(local).packed if local else b""
            llgr = peer_speaks_llgr(up.received_open)
            if bird is not None:
                context = BgpExportContext(
                    internal=peer.asn == local_as,
                    local_as=local_as,
                    source_address=packed,
                    next_hop_self=mode is NextHopMode.SELF,
                    next_hop_keep=mode is NextHopMode.KEEP,
                    rr_client=peer.route_reflector_client,
                    cluster_id=cluster_id,
                    router_id=int(ipaddress.IPv4Address(config.router_id)),
                    peer_llgr_aware=llgr,
                )
                policy = self.bird_export(bird, context)
            else:
                assert calico is not None
                policy = calico
            return ExportSettings(
                local_as=local_as,
                next_hop_v4=packed if len(packed) == 4 else b"",
                next_hop_v6=packed if len(packed) == 16 else b"",
                next_hop_mode=mode,
                policy=policy,
                llgr=llgr,
                add_path_limit=peer.add_paths_limit,
                add_path_all=peer.add_paths_send == "all",
                reflect=reflect,
                final=bird is not None,
            )

        return settings

    # -- import ------------------------------------------------------------------------------

    def _bird_import(self, bird: BirdFilterModel) -> tuple[PolicyCheck, bool]:
        key = self._identity(bird)
        hit = self._bird_imports.get(key)
        if hit is None:
            compiled = bird.compiled(export=False)
            hit = self._bird_imports[key] = (compiled.check, compiled.reads_prefix)
        return hit

    def import_policy(self, peer: Peer) -> ImportPolicy:
        """The peer's import policy: loop and own-next-hop checks, then its filters.

        Calico's objects: the peer's BGPFilters and the node's own blocks; a BIRD import
        filter: that filter alone after the checks.
        """
        if peer.import_filter is not None:
            checks = compile_import(
                CalicoPolicyInputs(),
                self._context(peer),
                allow_own_as=peer.allow_own_as,
                own_addresses=self.own_addresses,
            )
            return bird_import_policy(checks, self._bird_import(peer.import_filter)[0])
        filters = [self.filters[name] for name in peer.filters]
        check = compile_import(
            self.inputs,
            self._context(peer),
            filters,
            allow_own_as=peer.allow_own_as,
            own_addresses=self.own_addresses,
        )
        return as_rib_policy(check)

    def import_per_route(self, peer: Peer) -> bool:
        """Whether the import policy's answer is the same for every prefix of an UPDATE."""
        if peer.import_filter is not None:
            return not self._bird_import(peer.import_filter)[1]
        filters = [self.filters[name] for name in peer.filters]
        return not import_reads_prefix(self.inputs, filters)
