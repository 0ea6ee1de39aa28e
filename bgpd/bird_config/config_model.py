"""A BIRD 1.x configuration as read: global settings, protocols, filters and functions.

Role: what ``ConfigParser`` produces and ``daemon_config`` turns into Myna's ``DaemonConfig``.
It keeps BIRD's own terms and defaults (a BGP hold time of 240, connect retry 120, a kernel
scan time of 60...) so that ``myna check`` can show what the file says; nothing here knows
about Myna's daemon.

Templates: ``protocol bgp X from T`` starts from a copy of T as it was when X was read (BIRD's
``proto_copy_config``), so the dataclasses are copied with ``copy.deepcopy`` and then
overwritten item by item. BGP defaults that depend on other settings (multihop, gateway
mode) are resolved by ``BgpProtocol.resolve`` after the protocol's block, as BIRD's
``bgp_check_config`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bgpd.bird_config.errors import Position
from bgpd.bird_config.filter_ast import FilterDef, FilterKind, FilterProgram, FunctionDef
from bgpd.bird_config.values import BirdType


class ProtocolType(Enum):
    """The protocol types Myna reads (``protocol <type>``)."""

    KERNEL = "kernel"
    DEVICE = "device"
    DIRECT = "direct"
    STATIC = "static"
    BGP = "bgp"
    BFD = "bfd"


class GracefulRestart(Enum):
    """BGP ``graceful restart``: off, aware (BIRD's default: helper only) or on."""

    OFF = "off"
    AWARE = "aware"
    ON = "on"


class NextHopMode(Enum):
    """BGP ``next hop self|keep`` (none: BIRD's default rules)."""

    DEFAULT = "default"
    SELF = "self"
    KEEP = "keep"


class GatewayMode(Enum):
    """BGP ``gateway direct|recursive`` (default: direct for single-hop, else recursive)."""

    DIRECT = "direct"
    RECURSIVE = "recursive"


class AddPaths(Enum):
    """BGP ``add paths``: off, rx, tx or on (both)."""

    OFF = "off"
    RX = "rx"
    TX = "tx"
    ON = "on"


class BfdMode(Enum):
    """BGP ``bfd on|off|graceful``: whether the session asks the bfd protocol for a session."""

    OFF = "off"
    ON = "on"
    GRACEFUL = "graceful"


class BfdAuth(Enum):
    """``authentication none|simple|keyed md5|...`` in a bfd protocol's block (Myna's names)."""

    NONE = "none"
    SIMPLE = "simple"
    KEYED_MD5 = "keyed_md5"
    KEYED_SHA1 = "keyed_sha1"
    METICULOUS_MD5 = "meticulous_md5"
    METICULOUS_SHA1 = "meticulous_sha1"


class LimitAction(Enum):
    """``import limit N [action warn|block|restart|disable]``."""

    WARN = "warn"
    BLOCK = "block"
    RESTART = "restart"
    DISABLE = "disable"


class RouteKind(Enum):
    """What a static route does."""

    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    VIA = "via"  # via a gateway address
    DEVICE = "device"  # via "ifname"


DEBUG_FLAGS = ("states", "routes", "filters", "interfaces", "events", "packets")


@dataclass(frozen=True, slots=True)
class Limit:
    """A route limit and what happens when it is exceeded."""

    limit: int
    action: LimitAction = LimitAction.DISABLE


@dataclass(frozen=True, slots=True)
class InterfacePattern:
    """One item of ``interface -"cali*", "*"``: a glob, included or excluded."""

    pattern: str
    include: bool = True


@dataclass(frozen=True, slots=True)
class BfdPassword:
    """``password "..." [{ id N; }]``: the text and its key id (BIRD numbers them from 1)."""

    password: str
    key_id: int
    position: Position


@dataclass
class BfdSettings:
    """One ``interface PATTERNS { ... }`` or ``multihop { ... }`` block of a bfd protocol.

    BIRD's ``struct bfd_iface_config``, with its defaults (proto/bfd/bfd.h: 10 ms, 100 ms,
    1 s, 5); intervals in microseconds as BIRD keeps them (``expr_us``: u32 arithmetic), the
    multiplier as its u8. ``patterns`` is empty for the multihop block.
    """

    position: Position
    patterns: tuple[InterfacePattern, ...] = ()
    min_rx_us: int = 10_000
    min_tx_us: int = 100_000
    idle_tx_us: int = 1_000_000
    multiplier: int = 5
    passive: bool = False
    auth: BfdAuth = BfdAuth.NONE
    passwords: tuple[BfdPassword, ...] = ()


@dataclass(frozen=True, slots=True)
class BfdNeighbor:
    """``neighbor ADDR [dev "IFACE" | % IFACE] [local ADDR] [multihop BOOL]``."""

    address: int
    interface: str | None
    local: int | None
    multihop: bool
    position: Position


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """``route PREFIX blackhole|unreachable|prohibit|via IP|via "dev"``."""

    prefix: int  # Myna's prefix int
    kind: RouteKind
    gateway: int | None = None
    device: str | None = None
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class LogTarget:
    """``log stderr|syslog [name N]|"file" all|{categories}``."""

    target: str  # "stderr", "syslog" or "file"
    path: str | None  # the file, or the syslog name
    categories: tuple[str, ...]


@dataclass
class ProtocolConfig:
    """What every protocol has (BIRD's generic protocol options)."""

    type: ProtocolType
    name: str
    position: Position
    template: bool = False  # a ``template``, not a protocol
    inherits: str | None = None  # ``from NAME``
    preference: int = 0
    disabled: bool = False
    debug: tuple[str, ...] = ()
    description: str | None = None
    table: str = "master"
    import_filter: FilterProgram = field(default_factory=lambda: FilterProgram(FilterKind.ALL))
    export_filter: FilterProgram = field(default_factory=lambda: FilterProgram(FilterKind.NONE))
    import_limit: Limit | None = None


@dataclass
class KernelProtocol(ProtocolConfig):
    """``protocol kernel``: routes to and from the kernel."""

    persist: bool = False
    scan_time: int = 60
    learn: bool = False
    graceful_restart: bool = False
    merge_paths: int = 0  # 0: off; else at most this many next hops (BIRD's default 16)
    kernel_table: int | None = None
    metric: int = 0  # BIRD 1.6: no RTA_PRIORITY unless set (the kernel: 0, IPv6 1024)
    device_routes: bool = False  # export routes through an interface, without a gateway


@dataclass
class DeviceProtocol(ProtocolConfig):
    """``protocol device``: interface state."""

    scan_time: int = 60


@dataclass
class DirectProtocol(ProtocolConfig):
    """``protocol direct``: connected networks; ``interfaces`` holds every pattern list."""

    interfaces: list[tuple[InterfacePattern, ...]] = field(default_factory=list)


@dataclass
class StaticProtocol(ProtocolConfig):
    """``protocol static``."""

    routes: list[StaticRoute] = field(default_factory=list)


@dataclass
class BgpProtocol(ProtocolConfig):
    """``protocol bgp`` with BIRD 1.6's defaults."""

    local_as: int = 0
    source_address: int | None = None
    neighbor: int | None = None
    port: int = 179
    remote_as: int = 0
    rr_client: bool = False
    rr_cluster_id: int | None = None
    hold_time: int = 240
    keepalive_time: int | None = None  # None: a third of the hold time
    multihop: int | None = None  # None: not set (iBGP multihop 64, eBGP direct); 0: direct
    next_hop: NextHopMode = NextHopMode.DEFAULT
    gateway: GatewayMode | None = None
    connect_delay: int = 5
    connect_retry: int = 120
    error_wait: tuple[int, int] = (60, 300)
    password: str | None = None
    passive: bool = False
    add_paths: AddPaths = AddPaths.OFF
    allow_local_as: int = 0  # -1: any number (``allow local as`` without a number)
    graceful_restart: GracefulRestart = GracefulRestart.AWARE
    graceful_restart_time: int = 120
    ttl_security: bool = False
    bfd: BfdMode = BfdMode.OFF
    igp_table: str | None = None

    @property
    def internal(self) -> bool:
        """iBGP: the neighbor is in our AS."""
        return self.local_as == self.remote_as

    def effective_multihop(self) -> int:
        """BIRD's default: iBGP multihop (64), eBGP direct (0)."""
        if self.multihop is not None:
            return self.multihop
        return 64 if self.internal else 0

    def effective_gateway(self) -> GatewayMode:
        """BIRD's default: recursive when multihop, else direct."""
        if self.gateway is not None:
            return self.gateway
        return GatewayMode.RECURSIVE if self.effective_multihop() else GatewayMode.DIRECT


@dataclass
class BfdProtocol(ProtocolConfig):
    """``protocol bfd``: its interface blocks (first match wins), multihop block, neighbors.

    ``protocol bfd from T`` copies only the generic options (BIRD 1.6's ``bfd_copy_config``
    starts the interface and neighbor lists afresh, and the multihop block is not copied).
    """

    interfaces: list[BfdSettings] = field(default_factory=list)
    multihop_block: BfdSettings | None = None
    neighbors: list[BfdNeighbor] = field(default_factory=list)


@dataclass
class BirdConfig:
    """The whole file (and its includes)."""

    main_file: str
    ipv6: bool
    files: list[str] = field(default_factory=list)
    router_id: int | None = None
    listen_address: int | None = None
    listen_port: int | None = None
    graceful_restart_wait: int | None = None
    logs: list[LogTarget] = field(default_factory=list)
    debug_protocols: tuple[str, ...] = ()
    timeformats: dict[str, str] = field(default_factory=dict)
    constants: dict[str, tuple[BirdType, object]] = field(default_factory=dict)
    functions: dict[str, FunctionDef] = field(default_factory=dict)
    filters: dict[str, FilterDef] = field(default_factory=dict)
    protocols: list[ProtocolConfig] = field(default_factory=list)
    templates: dict[str, ProtocolConfig] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)  # what parse-time print/eval wrote

    def of_type(self, protocol_type: ProtocolType) -> list[ProtocolConfig]:
        """The protocols (not templates) of one type, in file order."""
        return [p for p in self.protocols if p.type is protocol_type]
