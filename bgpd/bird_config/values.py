"""The values of BIRD 1.6's filter language: their types, constants, and printed form.

Role: one place for what a BIRD value is, shared by the parser (constants, parse-time
evaluation), the compiler (static types) and the compiled filters at run time (``print``).
Codes and constants are BIRD 1.6.8's own (``filter/filter.h``, ``nest/route.h``,
``lib/ip.h``), so a value prints and compares exactly as BIRD's does.

How values are held in Python (the compiler knows each expression's BIRD type, so the Python
object need not carry it):

=================  ============================================================
BIRD type          Python value
=================  ============================================================
void (undefined)   ``None``
int, pair, quad    ``int`` (unsigned 32 bits; a pair is ``a << 16 | b``)
bool               ``bool``
enum (RTS_ ...)    ``int`` (the constant's code)
ip                 ``int`` (the address, 32 or 128 bits by the daemon's family)
prefix             ``int`` in Myna's prefix form, ``address << 8 | length``
string             ``str``
ec                 ``int`` (64 bits)
lc                 ``tuple[int, int, int]``
bgppath            Myna's ``AsPath``: ``((segment type, (asn, ...)), ...)``
clist / eclist     ``tuple[int, ...]``
lclist             ``tuple[tuple[int, int, int], ...]``
set, prefix set    ``value_sets.TreeSet`` / ``prefix_sets.PrefixPatternSet``
bgpmask            ``as_paths.PathMask``
=================  ============================================================

Data flow: the lexer and parser build constants with these codes; ``format_value`` is what
``print`` writes to the log (BIRD's ``val_format``).
"""

from __future__ import annotations

import ipaddress
from enum import IntEnum


class BirdType(IntEnum):
    """BIRD's ``T_*`` type codes."""

    VOID = 0x01
    INT = 0x10
    BOOL = 0x11
    PAIR = 0x12
    QUAD = 0x13
    ENUM_RTS = 0x30
    ENUM_BGP_ORIGIN = 0x31
    ENUM_SCOPE = 0x32
    ENUM_RTC = 0x33
    ENUM_RTD = 0x34
    ENUM_ROA = 0x35
    ENUM_RA_PREFERENCE = 0x36
    ENUM_EMPTY = 0x3F  # what reading bgp_atomic_aggr / bgp_aggregator gives when set
    IP = 0x20
    PREFIX = 0x21
    STRING = 0x22
    PATH_MASK = 0x23
    PATH = 0x24
    CLIST = 0x25
    EC = 0x26
    ECLIST = 0x27
    LC = 0x28
    LCLIST = 0x29
    SET = 0x80
    PREFIX_SET = 0x81

    @property
    def is_enum(self) -> bool:
        """One of the enumerations (``T_ENUM_LO .. T_ENUM_HI``)."""
        return 0x30 <= self <= 0x3F

    @property
    def label(self) -> str:
        """The type's name as a BIRD config spells it (for messages)."""
        return _TYPE_LABELS.get(self, self.name.lower())


_TYPE_LABELS = {
    BirdType.PATH_MASK: "bgpmask",
    BirdType.PATH: "bgppath",
    BirdType.PREFIX_SET: "prefix set",
}


class RouteSourceCode(IntEnum):
    """``RTS_*``: which protocol made a route (the ``source`` attribute)."""

    DUMMY = 0
    STATIC = 1
    INHERIT = 2  # learned from the kernel (an "alien" route, e.g. Felix's)
    DEVICE = 3  # a connected network (protocol direct)
    STATIC_DEVICE = 4  # a static route ``via "ifname"``
    REDIRECT = 5
    RIP = 6
    OSPF = 7
    OSPF_IA = 8
    OSPF_EXT1 = 9
    OSPF_EXT2 = 10
    BGP = 11
    PIPE = 12
    BABEL = 13


class RouteDestCode(IntEnum):
    """``RTD_*``: where a route sends packets (the ``dest`` attribute)."""

    ROUTER = 0
    DEVICE = 1
    BLACKHOLE = 2
    UNREACHABLE = 3
    PROHIBIT = 4
    MULTIPATH = 5


class ScopeCode(IntEnum):
    """``SCOPE_*``."""

    HOST = 0
    LINK = 1
    SITE = 2
    ORGANIZATION = 3
    UNIVERSE = 4
    UNDEFINED = 5


class CastCode(IntEnum):
    """``RTC_*``."""

    UNICAST = 0
    BROADCAST = 1
    MULTICAST = 2
    ANYCAST = 3


class BgpOriginCode(IntEnum):
    """``ORIGIN_*``."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class RoaCode(IntEnum):
    """``ROA_*``."""

    UNKNOWN = 0
    VALID = 1
    INVALID = 2


class RaPreferenceCode(IntEnum):
    """``RA_PREF_*`` (bird6 only: the RAdv protocol)."""

    LOW = 0x18
    MEDIUM = 0x00
    HIGH = 0x08


_ENUMS: tuple[tuple[str, BirdType, type[IntEnum]], ...] = (
    ("RTS_", BirdType.ENUM_RTS, RouteSourceCode),
    ("RTD_", BirdType.ENUM_RTD, RouteDestCode),
    ("SCOPE_", BirdType.ENUM_SCOPE, ScopeCode),
    ("RTC_", BirdType.ENUM_RTC, CastCode),
    ("ORIGIN_", BirdType.ENUM_BGP_ORIGIN, BgpOriginCode),
    ("ROA_", BirdType.ENUM_ROA, RoaCode),
)


def _enum_constants(ipv6: bool) -> dict[str, tuple[BirdType, int]]:
    table = {
        prefix + member.name: (bird_type, int(member))
        for prefix, bird_type, codes in _ENUMS
        for member in codes
    }
    if ipv6:
        for member in RaPreferenceCode:
            table["RA_PREF_" + member.name] = (BirdType.ENUM_RA_PREFERENCE, int(member))
    return table


# Enum names are case-sensitive keywords in BIRD: RTS_BGP is the constant, rts_bgp a symbol.
ENUM_CONSTANTS_V4 = _enum_constants(ipv6=False)
ENUM_CONSTANTS_V6 = _enum_constants(ipv6=True)

U32 = 0xFFFFFFFF
AS_SET = 1
AS_SEQUENCE = 2


def as_int(value: object) -> int:
    """A value the caller knows to be an int (a number, address, prefix or code)."""
    assert isinstance(value, int)
    return value


def enum_name(bird_type: BirdType, code: int) -> str | None:
    """The constant's name (``RTS_BGP``), None for a code that has none."""
    for prefix, enum_type, codes in _ENUMS:
        if enum_type == bird_type:
            try:
                return prefix + codes(code).name
            except ValueError:
                return None
    return None


# --- printing (BIRD's val_format) --------------------------------------------------------------


def format_ip(address: int, ipv6: bool) -> str:
    """BIRD's ``%I``: dotted quad, or its own IPv6 form (``ip6_ntop``)."""
    if not ipv6:
        return str(ipaddress.IPv4Address(address))
    words = [(address >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best_pos = best_len = cur_pos = cur_len = 0
    for i, word in enumerate(words):
        if word:
            cur_len = 0
        else:
            if not cur_len:
                cur_pos = i
            cur_len += 1
            if cur_len > best_len:
                best_pos, best_len = cur_pos, cur_len
    if best_len < 2:
        best_pos = -1
    third = (address >> 32) & U32
    if best_pos == 0 and ((best_len == 5 and third == 0xFFFF) or best_len == 6):
        low = address & U32
        head = "ffff:" if third else ""
        return f"::{head}{low >> 24}.{(low >> 16) & 0xFF}.{(low >> 8) & 0xFF}.{low & 0xFF}"
    out: list[str] = []
    i = 0
    while i < 8:
        if i == best_pos:
            i += best_len - 1
            out.append(":")
            if i == 7:
                out.append(":")
        else:
            if i:
                out.append(":")
            out.append(f"{words[i]:x}")
        i += 1
    return "".join(out)


def format_quad(value: int) -> str:
    """BIRD's ``%R``: a router id or quad as a dotted quad."""
    return f"{value >> 24}.{(value >> 16) & 0xFF}.{(value >> 8) & 0xFF}.{value & 0xFF}"


def format_prefix(prefix: int, ipv6: bool) -> str:
    """``address/length`` from Myna's prefix int."""
    return f"{format_ip(prefix >> 8, ipv6)}/{prefix & 0xFF}"


def format_ec(value: int) -> str:
    """BIRD's ``ec_format``."""
    kind_code = value >> 48
    if kind_code & 0xF0FF == 0x0002:
        kind = "rt"
    elif kind_code & 0xF0FF == 0x0003:
        kind = "ro"
    else:
        kind = f"unknown 0x{kind_code:x}"
    high = value >> 56
    if high in (0x00, 0x40):
        return f"({kind}, {(value >> 32) & 0xFFFF}, {value & U32})"
    if high in (0x01, 0x41):
        return f"({kind}, {format_quad((value >> 16) & U32)}, {value & 0xFFFF})"
    if high in (0x02, 0x42):
        return f"({kind}, {(value >> 16) & U32}, {value & 0xFFFF})"
    return f"(generic, 0x{(value >> 32) & U32:x}, 0x{value & U32:x})"


def format_lc(value: tuple[int, int, int]) -> str:
    """BIRD's ``lc_format``."""
    return f"({value[0]}, {value[1]}, {value[2]})"


def format_path(path: tuple[tuple[int, tuple[int, ...]], ...]) -> str:
    """BIRD's ``as_path_format``: sequences as numbers, sets in braces."""
    out: list[str] = []
    for seg_type, asns in path:
        if seg_type == AS_SET:
            out.append("{" + "".join(f" {a}" for a in asns) + " }")
        else:
            out.extend(str(a) for a in asns)
    return " ".join(out)


def format_value(bird_type: BirdType, value: object, ipv6: bool) -> str:
    """What BIRD's ``print`` writes for a value of ``bird_type``."""
    if value is None or bird_type == BirdType.VOID:
        return "(void)"
    if bird_type == BirdType.BOOL:
        return "TRUE" if value else "FALSE"
    if bird_type == BirdType.INT:
        return str(value)
    if bird_type == BirdType.STRING:
        return str(value)
    if bird_type == BirdType.IP:
        return format_ip(value, ipv6)  # type: ignore[arg-type]
    if bird_type == BirdType.PREFIX:
        return format_prefix(value, ipv6)  # type: ignore[arg-type]
    if bird_type == BirdType.PAIR:
        number: int = value  # type: ignore[assignment]
        return f"({number >> 16},{number & 0xFFFF})"
    if bird_type == BirdType.QUAD:
        return format_quad(value)  # type: ignore[arg-type]
    if bird_type == BirdType.EC:
        return format_ec(value)  # type: ignore[arg-type]
    if bird_type == BirdType.LC:
        return format_lc(value)  # type: ignore[arg-type]
    if bird_type.is_enum:
        return f"(enum {int(bird_type):x}){value}"
    if bird_type == BirdType.PATH:
        return f"(path {format_path(value)})"  # type: ignore[arg-type]
    if bird_type == BirdType.CLIST:
        items: tuple[int, ...] = value  # type: ignore[assignment]
        return "(clist " + " ".join(f"({c >> 16},{c & 0xFFFF})" for c in items) + ")"
    if bird_type == BirdType.ECLIST:
        return "(eclist " + " ".join(format_ec(c) for c in value) + ")"  # type: ignore[attr-defined]
    if bird_type == BirdType.LCLIST:
        return "(lclist " + " ".join(format_lc(c) for c in value) + ")"  # type: ignore[attr-defined]
    formatter = getattr(value, "bird_format", None)
    if formatter is not None:  # sets, prefix sets, path masks
        return str(formatter(ipv6))
    return f"[unknown type {int(bird_type):x}]"
