"""The parsed form of BIRD 1.6's filter language: expressions, commands, functions, filters.

Role: what ``filter_parser`` builds and ``filter_compiler`` turns into Python; also what
``DaemonConfig`` carries for a peer's or the kernel protocol's filter (a ``FilterProgram``),
so that the daemon, or a later YAML front-end accepting BIRD-syntax filters, compiles it.

The nodes follow BIRD's instruction tree (``filter/config.Y``, ``f_inst``) closely enough that
each one's run-time behaviour is one of BIRD's ``FI_*`` instructions; constant parts are
already evaluated (BIRD does that while parsing: ``define``, ``(term)`` in numbers, set
items, pair and community constructors of constants). Every node carries the position of
its first token, for messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from bgpd.bird_config.as_paths import MaskItemKind
from bgpd.bird_config.errors import Position
from bgpd.bird_config.values import BirdType


class BinaryOp(Enum):
    """Binary operators; ``>`` and ``>=`` are parsed as ``<`` and ``<=`` with swapped sides."""

    ADD = "+"
    SUBTRACT = "-"
    MULTIPLY = "*"
    DIVIDE = "/"
    AND = "&&"
    OR = "||"
    EQUAL = "="
    NOT_EQUAL = "!="
    LESS = "<"
    LESS_EQUAL = "<="
    MATCH = "~"
    NOT_MATCH = "!~"


class StaticAttr(Enum):
    """Route attributes every route has (BIRD's ``SA_*``)."""

    FROM = "from"
    GW = "gw"
    NET = "net"
    PROTO = "proto"
    SOURCE = "source"
    SCOPE = "scope"
    CAST = "cast"
    DEST = "dest"
    IFNAME = "ifname"
    IFINDEX = "ifindex"

    @property
    def bird_type(self) -> BirdType:
        """The attribute's type."""
        return _STATIC_TYPES[self][0]

    @property
    def writable(self) -> bool:
        """Whether BIRD lets a filter assign it."""
        return _STATIC_TYPES[self][1]


_STATIC_TYPES: dict[StaticAttr, tuple[BirdType, bool]] = {
    StaticAttr.FROM: (BirdType.IP, True),
    StaticAttr.GW: (BirdType.IP, True),
    StaticAttr.NET: (BirdType.PREFIX, False),
    StaticAttr.PROTO: (BirdType.STRING, False),
    StaticAttr.SOURCE: (BirdType.ENUM_RTS, False),
    StaticAttr.SCOPE: (BirdType.ENUM_SCOPE, True),
    StaticAttr.CAST: (BirdType.ENUM_RTC, False),
    StaticAttr.DEST: (BirdType.ENUM_RTD, True),
    StaticAttr.IFNAME: (BirdType.STRING, True),
    StaticAttr.IFINDEX: (BirdType.INT, False),
}


class StorageType(IntEnum):
    """How BIRD stores an extended attribute (``EAF_TYPE_*``): decides what reads give."""

    INT = 0x01
    OPAQUE = 0x02
    IP_ADDRESS = 0x04
    ROUTER_ID = 0x05
    AS_PATH = 0x06
    BITFIELD = 0x09
    INT_SET = 0x0A
    EC_SET = 0x0E
    LC_SET = 0x12
    STRING = 0x13  # Calico's fork (krt_tunnel)


@dataclass(frozen=True, slots=True)
class DynamicAttr:
    """An extended route attribute (``bgp_med``, ``krt_metric``...).

    ``storage`` decides the type a read gives (an int-stored attribute reads as int even when
    it is written from an enum: ``bgp_origin`` reads as an int in BIRD 1.6); ``temporary``
    attributes (``krt_metric``, ``krt_source``) live only for the run of one filter unless the
    kernel protocol keeps them.
    """

    name: str
    storage: StorageType
    temporary: bool = False

    @property
    def read_type(self) -> BirdType:
        """The type of a read of a set attribute."""
        return _READ_TYPES[self.storage]


_READ_TYPES = {
    StorageType.INT: BirdType.INT,
    StorageType.OPAQUE: BirdType.ENUM_EMPTY,
    StorageType.IP_ADDRESS: BirdType.IP,
    StorageType.ROUTER_ID: BirdType.QUAD,
    StorageType.AS_PATH: BirdType.PATH,
    StorageType.BITFIELD: BirdType.BOOL,
    StorageType.INT_SET: BirdType.CLIST,
    StorageType.EC_SET: BirdType.ECLIST,
    StorageType.LC_SET: BirdType.LCLIST,
    StorageType.STRING: BirdType.STRING,
}


# --- expressions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expr:
    """Base of expressions."""

    position: Position


@dataclass(frozen=True, slots=True)
class Constant(Expr):
    """A value known while parsing (literal, ``define`` constant, constant constructor).

    ``indirect`` marks BIRD's FI_CONSTANT_INDIRECT kind (addresses, prefixes, large
    communities, path masks, named constants): BIRD folds a pair or community constructor only
    when its parts are direct constants, so ``(1, 2)`` is a constant pair checked while parsing
    and ``(ONE, 2)`` is built (and checked) when the filter runs.
    """

    bird_type: BirdType
    value: object
    indirect: bool = False


@dataclass(frozen=True, slots=True)
class Variable:
    """A function parameter or a local variable of a function or filter.

    ``owner`` is the function or filter name; ``declared`` its type. BIRD keeps one storage
    cell per variable (not per call), cleared when its function or filter starts.
    """

    name: str
    declared: BirdType
    owner: str
    serial: int  # unique per variable in the config


@dataclass(frozen=True, slots=True)
class VariableRef(Expr):
    """Read a variable."""

    variable: Variable


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """``left op right``."""

    op: BinaryOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """``!term``."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class Defined(Expr):
    """``defined(term)``: true unless the value is void."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class StaticRead(Expr):
    """Read ``net``, ``source``, ``ifname``...."""

    attr: StaticAttr


@dataclass(frozen=True, slots=True)
class DynamicRead(Expr):
    """Read ``bgp_local_pref``, ``krt_metric``...."""

    attr: DynamicAttr


@dataclass(frozen=True, slots=True)
class PreferenceRead(Expr):
    """Read ``preference``."""


class Method(Enum):
    """``term.ip``, ``.len``, ``.first``, ``.last``, ``.last_nonaggregated``."""

    IP = "ip"
    LEN = "len"
    FIRST = "first"
    LAST = "last"
    LAST_NONAGGREGATED = "last_nonaggregated"


@dataclass(frozen=True, slots=True)
class MethodCall(Expr):
    """``term.method``."""

    method: Method
    operand: Expr


@dataclass(frozen=True, slots=True)
class IpMask(Expr):
    """``ip.mask(len)``."""

    operand: Expr
    length: Expr


@dataclass(frozen=True, slots=True)
class EmptyList(Expr):
    """``+empty+`` (path), ``-empty-`` (clist), ``--empty--``, ``---empty---``."""

    bird_type: BirdType


@dataclass(frozen=True, slots=True)
class Prepend(Expr):
    """``prepend(path, asn)`` (and the ``.prepend`` of an attribute)."""

    path: Expr
    asn: Expr


class ListOperation(Enum):
    """``add``, ``delete``, ``filter`` on community lists (and delete/filter on paths)."""

    ADD = "add"
    DELETE = "delete"
    FILTER = "filter"


@dataclass(frozen=True, slots=True)
class ListOp(Expr):
    """``add(list, value)`` and friends."""

    operation: ListOperation
    target: Expr
    value: Expr


@dataclass(frozen=True, slots=True)
class PairOf(Expr):
    """``(a, b)`` of non-constant ints."""

    first: Expr
    second: Expr


@dataclass(frozen=True, slots=True)
class EcOf(Expr):
    """``(kind, key, value)`` extended community of non-constant parts."""

    kind: int
    key: Expr
    value: Expr


@dataclass(frozen=True, slots=True)
class LcOf(Expr):
    """``(a, b, c)`` large community of non-constant parts."""

    first: Expr
    second: Expr
    third: Expr


@dataclass(frozen=True, slots=True)
class MaskPart:
    """One item of a path mask whose ASN may be an expression (``expr`` set)."""

    kind: MaskItemKind
    low: int = 0
    high: int = 0
    expr: Expr | None = None


@dataclass(frozen=True, slots=True)
class PathMaskOf(Expr):
    """A path mask with expression items, built when it runs."""

    parts: tuple[MaskPart, ...]


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """``name(args)``; ``function`` is None for a recursive call (BIRD runs nothing then)."""

    name: str
    function: FunctionDef | None
    args: tuple[Expr, ...]


# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base of commands."""

    position: Position


@dataclass(frozen=True, slots=True)
class If(Command):
    """``if cond then block [else block]``."""

    condition: Expr
    then: tuple[Command, ...]
    otherwise: tuple[Command, ...] | None


@dataclass(frozen=True, slots=True)
class Assign(Command):
    """``variable = term``."""

    variable: Variable
    value: Expr


@dataclass(frozen=True, slots=True)
class Return(Command):
    """``return term``."""

    value: Expr


@dataclass(frozen=True, slots=True)
class SetDynamic(Command):
    """``bgp_med = term`` (also ``attr.add(x)`` etc., as set(attr, op(attr, x)))."""

    attr: DynamicAttr
    value: Expr


@dataclass(frozen=True, slots=True)
class UnsetDynamic(Command):
    """``unset(attr)``."""

    attr: DynamicAttr


@dataclass(frozen=True, slots=True)
class SetStatic(Command):
    """``gw = term``, ``dest = term``...."""

    attr: StaticAttr
    value: Expr


@dataclass(frozen=True, slots=True)
class SetPreference(Command):
    """``preference = term``."""

    value: Expr


class Termination(IntEnum):
    """BIRD's ``F_*`` codes of the break commands (and of ``print``/``printn``)."""

    PRINT = 0  # F_NOP
    PRINTN = 1  # F_NONL
    ACCEPT = 2
    REJECT = 3
    ERROR = 4
    QUITBIRD = 5


@dataclass(frozen=True, slots=True)
class Terminate(Command):
    """``accept|reject|error|quitbird|print|printn [values]``."""

    kind: Termination
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class CallCommand(Command):
    """A call whose value is dropped."""

    call: Call


@dataclass(frozen=True, slots=True)
class CaseArm:
    """The values (items of a set) an arm of ``case`` handles, and its commands."""

    items: tuple[tuple[object, object], ...]  # (low, high) pairs of one type
    commands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Case(Command):
    """``case term { items: cmds ... else: cmds }``."""

    subject: Expr
    item_type: BirdType | None  # the arms' value type (None without arms)
    arms: tuple[CaseArm, ...]
    otherwise: tuple[Command, ...] | None


# --- functions and filters ------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class FunctionDef:
    """``function name(params) locals { body }``; compared by identity."""

    name: str
    position: Position
    params: tuple[Variable, ...] = ()
    locals: tuple[Variable, ...] = ()
    body: tuple[Command, ...] = ()


@dataclass(eq=False, slots=True)
class FilterDef:
    """A named ``filter name locals { body }`` or an inline ``filter { ... }``/``where``."""

    name: str
    position: Position
    locals: tuple[Variable, ...] = ()
    body: tuple[Command, ...] = ()
    # the filter as written, its declarations and block (a ``where`` has none)
    source_text: str = ""


class FilterKind(Enum):
    """What a protocol's ``import``/``export`` holds."""

    ALL = "all"
    NONE = "none"
    FILTER = "filter"


@dataclass(frozen=True, slots=True)
class FilterProgram:
    """A protocol's import or export filter, ready to compile (``filter_compiler``).

    ``ALL`` and ``NONE`` need no code; ``FILTER`` carries the filter (named or inline, a
    ``where`` being an inline one). ``ipv6`` is the language it was read in (bird6).
    """

    kind: FilterKind
    filter: FilterDef | None = None
    ipv6: bool = False

    @property
    def name(self) -> str:
        """How the config names it: ``all``, ``none``, the filter's name or ``(inline)``."""
        if self.filter is None:
            return self.kind.value
        return self.filter.name
