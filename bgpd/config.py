"""The daemon's YAML configuration, validated by pydantic before anything starts.

Data flow: ``load_config(path)`` reads the file, validates it into ``DaemonConfig`` and raises
``ConfigError`` with one line per problem (where, what is wrong, what is expected) otherwise;
``bgpd.daemon`` turns the models into ``SessionSettings`` and ``TransportSettings`` for each
peer. This is the first, minimal schema; the daemon issue grows it into Calico's objects.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bgpd.bfd_config import BfdModel, bfd_from_yaml
from bgpd.bird_config.bgp_export import BgpExportContext
from bgpd.bird_config.filter_ast import FilterProgram
from rib.calico_policy import filter_from_crd
from rib.policy import PolicyCheck

if TYPE_CHECKING:
    from bgpd.bird_config.filter_compiler import CompiledFilter

Asn = Annotated[int, Field(ge=1, le=0xFFFFFFFF)]
HoldTime = Annotated[int, Field(ge=0, le=65535)]


class ConfigError(Exception):
    """The configuration file is wrong (the config's fault): each line names one problem."""


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Timers(_Model):
    """Session timers; the defaults are Calico's BIRD settings."""

    hold_time: HoldTime = 240
    keepalive_time: Annotated[int, Field(ge=1)] | None = None
    connect_delay: Annotated[float, Field(ge=0)] = 2.0
    connect_retry: Annotated[float, Field(gt=0)] = 5.0
    error_wait: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = (5.0, 30.0)
    send_hold_time: Annotated[float, Field(gt=0)] | None = None

    @field_validator("hold_time")
    @classmethod
    def _hold(cls, value: int) -> int:
        if value in (1, 2):
            raise ValueError("hold time must be 0 or at least 3 seconds (RFC 4271)")
        return value


class BirdFilterModel(_Model):
    """A BIRD 1.x filter a protocol imports or exports through (``bgpd.bird_config``).

    Set, it is the whole policy of that direction (it replaces Calico's built-in defaults
    that ``ip_pools``, ``blocks`` and ``filters`` give); ``compile()`` gives the
    ``rib.policy.PolicyCheck``. ``name`` is what the config calls it (``all``, ``none``, the
    filter's name, ``(inline N)``), ``defined_at`` where (``file:line``); ``program`` is the
    parsed filter (``bgpd.bird_config.filter_ast.FilterProgram``), not shown by ``myna check``.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        arbitrary_types_allowed=True,
        defer_build=True,
    )

    name: str
    defined_at: str = ""
    program: FilterProgram = Field(exclude=True, repr=False)

    def compile(
        self, export: bool = True, bgp_export: BgpExportContext | None = None
    ) -> PolicyCheck:
        """The filter as a policy check (BIRD's export or import semantics of ``unset``).

        ``bgp_export``: the filter is a BGP peer's export filter; the check then starts from
        what BIRD's BGP protocol makes of each route before its export filter (refusals,
        ORIGIN / AS_PATH / NEXT_HOP / LOCAL_PREF, route reflection) and its verdict carries
        the complete attribute set to send: see ``bgpd.bird_config.bgp_export``.
        """
        return self.compiled(export, bgp_export).check

    def compiled(
        self, export: bool = True, bgp_export: BgpExportContext | None = None
    ) -> CompiledFilter:
        """``compile`` with what else the compiler knows (``reads_prefix``, the source)."""
        from bgpd.bird_config.filter_codegen import FilterMode  # noqa: PLC0415 - heavy, rare
        from bgpd.bird_config.filter_compiler import compile_filter  # noqa: PLC0415

        mode = FilterMode.EXPORT if export else FilterMode.IMPORT
        return compile_filter(self.program, name=self.name, mode=mode, bgp_export=bgp_export)


class PrefixLimitModel(_Model):
    """A maximum number of prefixes per family from one peer."""

    limit: Annotated[int, Field(ge=0, le=0xFFFFFFFF)]
    action: Literal["warn", "cease"] = "cease"
    restart_after: Annotated[float, Field(gt=0)] | None = 60.0  # after a cease; None: stay down


class Peer(_Model):
    """One BGP neighbour."""

    address: str
    asn: Asn = Field(alias="as")
    # Calico BGPPeer localASNumber: the AS we present to this peer instead of local_as
    local_as: Asn | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 179
    # "auto": Calico's mesh rule, passive towards a peer whose address sorts higher as text
    passive: bool | Literal["auto"] = False
    source_address: str | None = None
    password: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ttl_security: Annotated[int, Field(ge=0, le=254)] = 0
    multihop: Annotated[int, Field(ge=1, le=255)] = 64
    graceful_restart: bool = True
    restart_time: Annotated[int, Field(ge=0, le=4095)] = 120
    # RFC 9494: keep a lost peer's routes, least preferred, this long after its restart time
    long_lived_stale_time: Annotated[int, Field(ge=0, le=0xFFFFFF)] = 0
    next_hop_mode: Literal["auto", "self", "keep"] = "auto"
    # RFC 7911; Calico runs BIRD with "add paths on" (receive and send)
    add_paths: Literal["off", "rx", "tx", "on"] = "on"
    add_paths_send: Literal["ecmp", "all"] = "ecmp"  # which paths go out under ADD-PATH
    add_paths_limit: Annotated[int, Field(ge=1, le=255)] = 16  # at most this many per prefix
    filters: tuple[str, ...] = ()  # names from the top-level filters (Calico BGPFilter specs)
    # How confd would name the peer: Mesh_<ip> (node-to-node mesh), Node_<ip> (a node-specific
    # BGPPeer) or Global_<ip> (a global BGPPeer); calicoctl node status shows it.
    kind: Literal["mesh", "node", "global"] = "global"
    allow_own_as: Annotated[int, Field(ge=0, le=10)] = 0  # Calico numAllowedLocalASNumbers
    # RFC 4456: the peer is a client of ours (BIRD's "rr client"); iBGP peers only
    route_reflector_client: bool = False
    max_prefixes: PrefixLimitModel | None = None
    timers: Timers | None = None
    bfd: BfdModel | None = None  # RFC 5882: BFD advises this session (bgpd.bfd_config)
    # From a BIRD configuration (each None/default keeps Myna's own behaviour):
    name: str | None = None  # the session's name as BIRD's protocol (Mesh_10_0_0_2...)
    preference: Annotated[int, Field(ge=0, le=65535)] | None = None  # of routes it gives us
    gateway: Literal["direct", "recursive"] | None = None  # BIRD: how next hops resolve
    import_filter: BirdFilterModel | None = None
    export_filter: BirdFilterModel | None = None

    _normal_address = field_validator("address")(lambda cls, v: _ip(v))
    _bfd = field_validator("bfd", mode="before")(lambda cls, v: bfd_from_yaml(v))

    @field_validator("source_address")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else _ip(value)

    @model_validator(mode="after")
    def _one_password(self) -> Peer:
        given = [n for n in ("password", "password_file", "password_env") if getattr(self, n)]
        if len(given) > 1:
            raise ValueError(f"give at most one of password, password_file, password_env: {given}")
        return self

    @model_validator(mode="after")
    def _bfd_as_it_runs(self) -> Peer:
        if self.bfd is not None:  # frozen, but nobody has seen this one yet: RFC 5881 3
            bfd = self.bfd.for_hop_mode(self.bfd_multihop(), self.address)
            object.__setattr__(self, "bfd", bfd)
        return self

    def secret(self) -> str | None:
        """The TCP-MD5 password, read from where the config says (never logged)."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"peer {self.address}: cannot read password_file {self.password_file}: "
                    f"{exc.strerror}"
                ) from exc
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"peer {self.address}: password_env {self.password_env} is not set"
                )
            return value
        return self.password

    @property
    def ipv6(self) -> bool:
        """The session runs over IPv6 (and carries IPv6 unicast)."""
        return ":" in self.address

    @property
    def bfd_enabled(self) -> bool:
        """BFD advises this peer's session."""
        return self.bfd is not None and self.bfd.enabled

    @property
    def one_hop(self) -> bool:
        """The peer is configured one hop away (BIRD's ``direct``): TTL 1 or GTSM's 1 hop."""
        return self.multihop == 1 or self.ttl_security == 1

    def bfd_multihop(self) -> bool:
        """RFC 5883 multihop BFD, or RFC 5881 single hop: as configured, else as the session."""
        if self.bfd is not None and self.bfd.multihop is not None:
            return self.bfd.multihop
        return not self.one_hop


class IpPoolModel(_Model):
    """A Calico IP pool (what Calico's default export and kernel policies read)."""

    cidr: str
    ipip_mode: Literal["Never", "Always", "CrossSubnet"] = "Never"
    vxlan_mode: Literal["Never", "Always", "CrossSubnet"] = "Never"
    disable_bgp_export: bool = False
    disabled: bool = False  # Calico: no new allocations; existing blocks are still routed

    _network = field_validator("cidr")(lambda cls, v: _network(v))


class PrefixAdvertisementModel(_Model):
    """Calico's prefixAdvertisements: communities added to routes inside ``cidr``."""

    cidr: str
    communities: tuple[str, ...]

    _network = field_validator("cidr")(lambda cls, v: _network(v))


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a prefix (host bits set?)") from None


_ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_PROTOCOLS = {"boot": 3, "static": 4, "bird": 12, "felix": 80}


class LearnFilterModel(_Model):
    """Which kernel routes are announced as this node's (BIRD's ``learn`` with a filter).

    The default is what Calico needs: Felix's blackhole routes for the node's IPAM blocks
    (protocol 80). Add e.g. ``protocols: [80, static], types: [blackhole, unicast],
    interfaces: ["eth*"], prefixes: ["198.19.0.0/16"]`` to announce static routes too.
    """

    protocols: tuple[int, ...] = (80,)
    types: tuple[str, ...] = ("blackhole",)
    interfaces: tuple[str, ...] = ()  # device globs; empty: any (a route without one too)
    prefixes: tuple[str, ...] = ()  # learned routes must lie inside one; empty: anywhere

    @field_validator("protocols", mode="before")
    @classmethod
    def _protocols(cls, value: object) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)):
            raise ValueError("protocols is a list of numbers or names")
        out = []
        for item in value:
            number = _PROTOCOLS.get(item) if isinstance(item, str) else item
            if not isinstance(number, int) or not 0 < number < 256:
                names = ", ".join(_PROTOCOLS)
                raise ValueError(f"{item!r} is not a route protocol (1-255 or one of {names})")
            out.append(number)
        return tuple(out)

    @field_validator("types")
    @classmethod
    def _types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item not in _ROUTE_TYPES:
                raise ValueError(f"{item!r} is not a route type ({', '.join(_ROUTE_TYPES)})")
        return value

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_network(text) for text in value)

    def type_numbers(self) -> frozenset[int]:
        """The RTN_* numbers of ``types``."""
        return frozenset(_ROUTE_TYPES[t] for t in self.types)


class MetricsModel(_Model):
    """Prometheus metrics, /healthz and /readyz over HTTP (prometheus-client)."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9179

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _ip(value)


class ControlModel(_Model):
    """The control socket (``myna show ...``, ``myna reload``) and BIRD's, for calicoctl."""

    socket: Path | None = Path("/run/myna/myna.ctl")
    group: str | None = None  # members of this group may use it too (root always may)
    # BIRD's control-socket protocol, the part calicoctl and calico-node's probes use.
    bird_socket: Path | None = None  # IPv4 peers, e.g. /var/run/calico/bird.ctl
    bird6_socket: Path | None = None  # IPv6 peers, e.g. /var/run/calico/bird6.ctl


class KernelModel(_Model):
    """Writing the best BGP routes into the kernel (BIRD's kernel protocol), and learning."""

    program: bool = False
    learn: bool = False  # announce Felix's block blackholes (protocol 80) found in the kernel
    learn_filter: LearnFilterModel = LearnFilterModel()
    table: Annotated[int, Field(ge=1, le=0xFFFFFFFF)] = 254
    protocol: Annotated[int, Field(ge=1, le=255)] = 12  # "bird": what Felix and calicoctl expect
    metric: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 32
    # BIRD's protocol name for it, what filters read as ``proto`` on learned routes
    name: str = "kernel1"
    # the preference of learned routes (BIRD's kernel protocol: 10, below BGP's 100); None:
    # Myna's default, which puts the node's own routes above what peers say of them
    preference: Annotated[int, Field(ge=0, le=65535)] | None = None
    # BIRD's "device routes": also write routes that go out of an interface without a
    # gateway (RTD_DEVICE); BIRD's kernel protocol leaves them out by default.
    device_routes: bool = False
    # BIRD filters of the kernel protocol: which learned routes enter (import) and which
    # routes are written, with krt_metric / krt_tunnel (export); None: learn_filter and
    # Calico's pools decide.
    import_filter: BirdFilterModel | None = None
    export_filter: BirdFilterModel | None = None
    # A safety net only (changes arrive as notifications): re-read the kernel this often and
    # repair drift. BIRD polls every 2 s in Calico's config ("scan time 2"); 0 turns it off.
    reconcile_interval: Annotated[float, Field(ge=0)] = 30.0
    # Resolve next hops that are not neighbours through the kernel's routes (BIRD's
    # "gateway recursive"); off: write them as they are (the kernel refuses unreachable ones).
    recursive_next_hops: bool = True
    # The notification socket's receive buffer; a small one makes overruns (ENOBUFS) likely.
    monitor_buffer: Annotated[int, Field(ge=1024)] = 32 << 20

    @model_validator(mode="after")
    def _own_protocol_not_learned(self) -> KernelModel:
        if self.protocol in self.learn_filter.protocols:
            raise ValueError(
                f"kernel.learn_filter.protocols holds {self.protocol}, the protocol our own "
                "routes are written with: Myna would announce what it learned from peers"
            )
        return self


class Listen(_Model):
    """Where the BGP port is opened."""

    addresses: tuple[str, ...] = ("0.0.0.0", "::")
    port: Annotated[int, Field(ge=0, le=65535)] = 179

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_ip(a) for a in value)


class NodeModel(_Model):
    """One Calico node as the topology rules see it.

    Its address, and its cluster id when it is a route reflector (Node spec.bgp
    .routeReflectorClusterID).
    """

    address: str
    cluster_id: str | None = None

    _normal_address = field_validator("address")(lambda cls, v: _ip(v))

    @field_validator("cluster_id")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4-formatted cluster id") from None
        return value


class MeshModel(_Model):
    """Calico's topology: the node-to-node mesh, or route reflectors (BGPConfiguration).

    Calico reads the nodes from its datastore; Myna takes them here (an address, or
    ``{address, cluster_id}`` for a route reflector) and derives the peers as confd does:

    * ``enabled: true``: every node without a cluster id peers with every other such node
      (kind ``mesh``, Mesh_<ip>, passive towards the higher address); reflectors take no part;
    * ``enabled: false`` with reflectors listed: a node peers with every reflector, a reflector
      with every other node (kind ``global``); on a reflector, a peer whose cluster id differs
      from its own is its route-reflector client, and reflectors of one cluster are plain iBGP
      peers of each other.

    A peer listed under ``peers`` with the same address wins over the derived one.
    """

    enabled: bool = False
    nodes: tuple[NodeModel, ...] = ()  # every node, this one included (it is skipped)
    password: str | None = None  # nodeMeshPassword
    password_file: Path | None = None
    password_env: str | None = None
    restart_time: Annotated[int, Field(ge=0, le=4095)] = 120  # nodeMeshMaxRestartTime
    keepalive_time: Annotated[int, Field(ge=1)] | None = None  # nodeMeshKeepAliveTime
    # BFD for every derived peer, as operators add "bfd on" to confd's mesh template
    bfd: BfdModel | None = None

    _bfd = field_validator("bfd", mode="before")(lambda cls, v: bfd_from_yaml(v))

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return [{"address": v} if isinstance(v, str) else v for v in value]
        return value


class StaticRouteModel(_Model):
    """A route this node originates itself, as BIRD's static protocol does.

    ``kind`` is what it does (a blackhole of a Calico block, or a service IP via a gateway);
    ``protocol`` the BIRD protocol name filters read as ``proto``.
    """

    prefix: str
    kind: Literal["blackhole", "unreachable", "prohibit", "via", "device"] = "blackhole"
    gateway: str | None = None
    device: str | None = None
    protocol: str = "static1"
    preference: Annotated[int, Field(ge=0, le=65535)] = 200

    _network = field_validator("prefix")(lambda cls, v: _network(v))

    @model_validator(mode="after")
    def _target(self) -> StaticRouteModel:
        if (self.kind == "via") != (self.gateway is not None):
            raise ValueError("a via route has a gateway, and only it")
        if (self.kind == "device") != (self.device is not None):
            raise ValueError("a device route has a device, and only it")
        return self


class DirectModel(_Model):
    """Connected networks of interfaces this node originates (BIRD's direct protocol).

    ``interfaces`` are BIRD's patterns in order, the first that matches decides: ``"eth*"``
    includes, ``"-cali*"`` excludes.
    """

    interfaces: tuple[str, ...] = ("*",)
    protocol: str = "direct1"
    preference: Annotated[int, Field(ge=0, le=65535)] = 240


class DaemonConfig(_Model):
    """The whole file."""

    node_name: str | None = None  # Calico's Node name (shown by `myna show status`)
    router_id: str
    local_as: Asn
    listen: Listen = Listen()
    timers: Timers = Timers()
    peers: tuple[Peer, ...] = ()
    mesh: MeshModel = MeshModel()
    announce: tuple[str, ...] = ()
    # Calico's view of the cluster: with pools given, Calico's default export policy applies
    # (only pool and own-block routes, never more-specifics of our own blocks).
    ip_pools: tuple[IpPoolModel, ...] = ()
    blocks: tuple[str, ...] = ()  # this node's IPAM blocks (the kernel issue learns them)
    prefix_advertisements: tuple[PrefixAdvertisementModel, ...] = ()
    communities: dict[str, str] = {}  # named communities for prefix advertisements
    service_cidrs: tuple[str, ...] = ()
    # Calico Node spec.bgp.ipv4Address / ipv6Address (CIDR form): the node's subnet decides
    # which routes of an IPIP CrossSubnet pool go straight to the next hop.
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    filters: dict[str, dict[str, Any]] = {}  # name -> Calico BGPFilter spec
    kernel: KernelModel = KernelModel()
    status_file: Path | None = None
    metrics: MetricsModel = MetricsModel()
    control: ControlModel = ControlModel()
    log_format: Literal["text", "json"] = "text"
    # RFC 4724 selection deferral: after a start, wait this long at most for End-of-RIB from
    # the graceful-restart peers that are up before choosing routes (0: do not wait).
    selection_deferral: Annotated[float, Field(ge=0)] = 30.0
    # ... and during the first this-many seconds, also for peers that are not up yet (a peer
    # in its error wait refuses us briefly); a peer down for good delays selection this long.
    selection_deferral_peer_wait: Annotated[float, Field(ge=0)] = 5.0
    log_level: str = "info"
    # RFC 4456 route reflection: Calico's routeReflectorClusterID (IPv4-formatted). Unset, a
    # node with any route_reflector_client peer uses its router id.
    cluster_id: str | None = None
    client_to_client: bool = True  # off: routes from clients go to non-clients only
    # Octets of UPDATEs a peer may have waiting to be taken; past it the RIB holds its output
    # and keeps only the latest state per prefix (bounded memory for a peer that stops reading)
    output_buffer: Annotated[int, Field(ge=65536)] = 4 << 20
    # Routes of the node itself beyond what the kernel gives (BIRD's static and direct
    # protocols); exported as the peers' filters say.
    static_routes: tuple[StaticRouteModel, ...] = ()
    direct: DirectModel | None = None
    # The address families of the node's own routes: learned from the kernel, connected, and
    # written into it (BIRD's bird handles IPv4 only, bird6 IPv6 only); the peers' families
    # follow from their addresses.
    families: tuple[Literal["ipv4", "ipv6"], ...] = ("ipv4", "ipv6")

    @field_validator("router_id")
    @classmethod
    def _router_id(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a dotted-quad router id") from None
        if value == "0.0.0.0":
            raise ValueError("router id 0.0.0.0 is not allowed (RFC 6286)")
        return value

    @field_validator("announce")
    @classmethod
    def _announce(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for text in value:
            try:
                out.append(str(ipaddress.ip_network(text)))
            except ValueError:
                raise ValueError(f"{text!r} is not a prefix (host bits set?)") from None
        return tuple(out)

    @model_validator(mode="after")
    def _topology_peers(self) -> DaemonConfig:
        mesh = self.mesh
        reflectors = {n.address: n.cluster_id for n in mesh.nodes if n.cluster_id is not None}
        if not mesh.enabled and not reflectors:
            return self
        own = {self.router_id}
        for text in (self.ipv4_address, self.ipv6_address):
            if text is not None:
                own.add(str(ipaddress.ip_interface(text).ip))
        mine = next((n.cluster_id for n in mesh.nodes if n.address in own), None)
        if mine is not None and self.cluster_id is None:
            object.__setattr__(self, "cluster_id", mine)
        mine = self.cluster_id
        listed = {p.address for p in self.peers}
        added = []
        for node in mesh.nodes:
            if node.address in own or node.address in listed:
                continue
            if mesh.enabled:
                if mine is not None or node.cluster_id is not None:
                    continue  # the mesh is among nodes that are no reflectors
                added.append(self._derived_peer(node.address, "mesh", False))
            elif mine is not None:
                added.append(self._derived_peer(node.address, "global", node.cluster_id != mine))
            elif node.cluster_id is not None:
                added.append(self._derived_peer(node.address, "global", False))
        object.__setattr__(self, "peers", self.peers + tuple(added))
        return self

    def _derived_peer(self, address: str, kind: str, client: bool) -> Peer:
        mesh = self.mesh
        source = None
        if ":" in address and self.ipv6_address is not None:
            source = str(ipaddress.ip_interface(self.ipv6_address).ip)
        elif ":" not in address and self.ipv4_address is not None:
            source = str(ipaddress.ip_interface(self.ipv4_address).ip)
        timers = None
        if mesh.keepalive_time is not None:
            timers = self.timers.model_copy(
                update={"keepalive_time": mesh.keepalive_time,
                        "hold_time": max(self.timers.hold_time, 3 * mesh.keepalive_time)}
            )  # fmt: skip
        return Peer.model_validate(
            {
                "address": address,
                "as": self.local_as,
                "kind": kind,
                "passive": "auto",
                "source_address": source,
                "password": mesh.password,
                "password_file": mesh.password_file,
                "password_env": mesh.password_env,
                "restart_time": mesh.restart_time,
                "timers": timers,
                "route_reflector_client": client,
                "bfd": mesh.bfd,
            }
        )

    @field_validator("ipv4_address", "ipv6_address")
    @classmethod
    def _interface(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_interface(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an address with its prefix length") from None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level is one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _auto_passive_needs_our_address(self) -> DaemonConfig:
        for peer in self.peers:
            if peer.passive == "auto" and peer.ipv6 and peer.source_address is None:
                raise ValueError(
                    f"peer {peer.address}: passive auto compares our address with the peer's; "
                    "give the IPv6 source_address"
                )
        return self

    def local_as_for(self, peer: Peer) -> int:
        """The AS we are towards ``peer`` (its ``local_as`` override, else ours)."""
        return peer.local_as if peer.local_as is not None else self.local_as

    def is_passive(self, peer: Peer) -> bool:
        """Whether we wait for ``peer`` to connect (resolving Calico's "auto" rule)."""
        if peer.passive != "auto":
            return peer.passive
        ours = peer.source_address or self.router_id
        # confd's mesh template compares the two addresses as strings, not as numbers.
        return peer.address > ours

    @field_validator("blocks", "service_cidrs")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_network(v) for v in value)

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, spec in value.items():
            try:
                filter_from_crd(name, spec)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"filter {name}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _known_filters(self) -> DaemonConfig:
        for peer in self.peers:
            unknown = [f for f in peer.filters if f not in self.filters]
            if unknown:
                raise ValueError(f"peer {peer.address}: no filter named {', '.join(unknown)}")
        return self

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IPv4-formatted cluster id (like routeReflectorClusterID)"
            ) from None
        if value == "0.0.0.0":
            raise ValueError("cluster id 0.0.0.0 is not allowed (RFC 4456 ids are non-zero)")
        return value

    @model_validator(mode="after")
    def _clients_are_internal(self) -> DaemonConfig:
        for peer in self.peers:
            if peer.route_reflector_client and peer.asn != self.local_as:
                raise ValueError(
                    f"peer {peer.address}: route_reflector_client needs an iBGP peer "
                    f"(as {peer.asn} is not local_as {self.local_as})"
                )
        return self

    def reflector_cluster_id(self) -> int | None:
        """The RFC 4456 cluster id in use, None when the node is no route reflector.

        The configured one, else the router id on a node with clients (BIRD's default too).
        """
        if self.cluster_id is not None:
            return int(ipaddress.IPv4Address(self.cluster_id))
        if any(peer.route_reflector_client for peer in self.peers):
            return int(ipaddress.IPv4Address(self.router_id))
        return None

    @model_validator(mode="after")
    def _unique_peers(self) -> DaemonConfig:
        # A peer is its address; named peers (BIRD protocols) are their address and port, as
        # Calico runs two sessions to one address on two ports (sessions go by name then).
        seen: set[str] = set()
        seen_named: set[tuple[str, int]] = set()
        names: set[str] = set()
        for peer in self.peers:
            if peer.name is None:
                if peer.address in seen or any(a == peer.address for a, _ in seen_named):
                    raise ValueError(f"peer {peer.address} is listed twice")
                seen.add(peer.address)
                continue
            if peer.address in seen or (peer.address, peer.port) in seen_named:
                raise ValueError(f"peer {peer.address} port {peer.port} is listed twice")
            if peer.name in names:
                raise ValueError(f"peer name {peer.name} is used twice")
            seen_named.add((peer.address, peer.port))
            names.add(peer.name)
        return self


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest YAML node on the path ``loc`` (1-based), None without one."""
    line = None
    for step in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
            if node is not None:
                line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
            if node is not None:
                line = node.start_mark.line + 1
        else:
            break
    return line


def parse_config(text: str, source: str = "<config>") -> DaemonConfig:
    """Validate YAML text; raises ``ConfigError`` listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        lines = []
        for err in exc.errors(include_url=False):
            where = _where(err["loc"])
            line = _line_of(tree, err["loc"])
            if line is not None:
                where = f"line {line}: {where}"
            # Never echo what was given for a password, nor a block that holds one (a model's
            # own check, e.g. two passwords given, reports the whole block as its input).
            given = err.get("input")
            holds_password = isinstance(given, dict) and any("password" in str(k) for k in given)
            shown = err["type"] != "missing" and "password" not in where and not holds_password
            lines.append(
                f"{source}: {where}: {err['msg']}" + (f" (got {err['input']!r})" if shown else "")
            )
        raise ConfigError("\n".join(lines)) from None


def load_config(path: Path) -> DaemonConfig:
    """Read and validate the file at ``path``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    return parse_config(text, str(path))
