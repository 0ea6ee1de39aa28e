"""BIRD 1.6's filter operations on values whose type is only known at run time.

Role: the generated code calls these where the compiler cannot settle an operation on types
alone (an operand may be undefined, or the types do not fit, which is an error only if the
code runs). Each function is the matching branch of BIRD's ``interpret()``
(``filter/filter.c``), with its error message; errors raise ``runtime.FilterError``.

Types are passed as BIRD's ``T_*`` codes of the operand's static type (0: always undefined);
a ``None`` value is undefined whatever its static type.
"""

from __future__ import annotations

from typing import Any

from bgpd.bird_config import as_paths
from bgpd.bird_config.as_paths import MaskItem, MaskItemKind, PathMask
from bgpd.bird_config.runtime import FilterError
from bgpd.bird_config.value_sets import (
    TreeSet,
    list_add,
    list_delete,
    list_filter_list,
    list_filter_set,
    list_matches_set,
    list_union,
)
from bgpd.bird_config.values import BirdType

U32 = 0xFFFFFFFF
_VOID = int(BirdType.VOID)
_INT = int(BirdType.INT)
_PAIR = int(BirdType.PAIR)
_QUAD = int(BirdType.QUAD)
_IP = int(BirdType.IP)
_PREFIX = int(BirdType.PREFIX)
_PATH = int(BirdType.PATH)
_CLIST = int(BirdType.CLIST)
_ECLIST = int(BirdType.ECLIST)
_LCLIST = int(BirdType.LCLIST)
_EC = int(BirdType.EC)
_LC = int(BirdType.LC)
_SET = int(BirdType.SET)


def _type(value: Any, static: int) -> int:
    """The run-time type: the static one, or void for an undefined value."""
    return _VOID if value is None or static == 0 else static


def arith_error(a: Any, ta: int, b: Any, tb: int, line: int) -> Any:
    """An arithmetic operation that cannot run: BIRD's message for these operand types."""
    first, second = _type(a, ta), _type(b, tb)
    if first != second:
        raise FilterError("Can't operate with values of incompatible types", line)
    if first == _VOID:
        raise FilterError("Can't operate with values of type void", line)
    raise FilterError("Usage of unknown type", line)


def divide(a: int, b: int, line: int) -> int:
    """Unsigned integer division."""
    if b == 0:
        raise FilterError("Mother told me not to divide by 0", line)
    return a // b


def both_void(a: Any, b: Any) -> bool:
    """``=`` of values of two different types: true only when both are undefined."""
    return a is None and b is None


def same_sets(a: Any, b: Any) -> bool:
    """``=`` of two sets or two prefix sets: BIRD compares their trees."""
    if a is None or b is None:
        return a is b
    return bool(a.same(b))


def prefix_in(inner: int, outer: int, bits: int) -> bool:
    """``prefix ~ prefix``: ``inner`` lies inside ``outer``."""
    length = outer & 0xFF
    if inner & 0xFF < length:
        return False
    shift = bits - length + 8
    return inner >> shift == outer >> shift


def ip_in(address: int, outer: int, bits: int) -> bool:
    """``ip ~ prefix``."""
    shift = bits - (outer & 0xFF)
    return address >> shift == (outer >> 8) >> shift


def path_contains(path: Any, asn: int) -> bool:
    """``asn ~ bgp_path``."""
    return as_paths.path_contains(path, asn)


def path_match(path: Any, items: tuple[MaskItem, ...]) -> bool:
    """``bgp_path ~ mask``."""
    return as_paths.path_matches(path, items)


def list_in_set(items: tuple[Any, ...], values: TreeSet) -> bool:
    """``clist ~ set``."""
    return list_matches_set(items, values)


def path_in_set(path: Any, values: TreeSet) -> bool:
    """``bgp_path ~ [set of ints]``."""
    return as_paths.path_matches_set(path, values)


def path_mismatched_set(path: Any, values: TreeSet) -> bool:
    """``bgp_path ~`` a set of non-ints.

    BIRD's tree lookup compares an int with items of another type, gets "incomparable" and
    takes the tree's root as a match, so any AS in the path matches a non-empty set.
    """
    return bool(values.items) and any(asns for _, asns in path)


def set_match(value: Any, static: int, values: Any, ipv6: bool, line: int) -> bool:
    """``value ~ set`` where the set is not a constant (a variable of a set type)."""
    if value is None or values is None:
        raise FilterError("~ applied on unknown type pair", line)
    item = int(values.item_type)
    if static == item or (not ipv6 and static == _QUAD and item == _IP):
        return bool(values.contains(value))
    if static == _CLIST and (item in (_PAIR, _QUAD) or (item == _IP and not ipv6)):
        return list_matches_set(value, values)
    if (static, item) in ((_ECLIST, _EC), (_LCLIST, _LC)):
        return list_matches_set(value, values)
    if static == _PATH:
        if item == _INT:
            return as_paths.path_matches_set(value, values)
        return path_mismatched_set(value, values)
    raise FilterError("~ applied on unknown type pair", line)


def method_ip(value: Any, static: int, line: int) -> int:
    """``.ip``."""
    if _type(value, static) != _PREFIX:
        raise FilterError("Prefix expected", line)
    return int(value) >> 8


def method_len(value: Any, static: int, line: int) -> int:
    """``.len``."""
    kind = _type(value, static)
    if kind == _PREFIX:
        return int(value) & 0xFF
    if kind == _PATH:
        return as_paths.path_length(value)
    if kind in (_CLIST, _ECLIST, _LCLIST):
        return len(value)
    raise FilterError("Prefix, path, clist or eclist expected", line)


def path_method(helper: Any, value: Any, static: int, line: int) -> int:
    """``.first``, ``.last``, ``.last_nonaggregated``."""
    if _type(value, static) != _PATH:
        raise FilterError("AS path expected", line)
    return int(helper(value))


def ip_mask(value: Any, static: int, length: Any, length_static: int, bits: int, line: int) -> int:  # noqa: PLR0917 - called positionally by generated code
    """``ip.mask(len)``."""
    if _type(length, length_static) != _INT:
        raise FilterError("Integer expected", line)
    if _type(value, static) != _IP:
        raise FilterError("You can mask only IP addresses", line)
    return int(value) & bird_mask(int(length), bits)


def _u32_mask(length: int) -> int:
    """BIRD's ``u32_mkmask``: ``~((1 << (32 - n)) - 1)`` with x86's shift count mod 32."""
    if not length:
        return 0
    return ~((1 << ((32 - length) & 31)) - 1) & U32


def bird_mask(length: int, bits: int) -> int:
    """BIRD's ``ipa_mkmask`` (a length beyond the address is not refused, only odd)."""
    if bits == 32:
        return _u32_mask(length)
    mask = 0
    for _ in range(4):  # ip6_mkmask: four 32-bit words
        if not length:
            word = 0
        elif length >= 32:
            word, length = U32, length - 32
        else:
            word, length = _u32_mask(length), 0
        mask = mask << 32 | word
    return mask


def prepend_checked(path: Any, path_static: int, asn: Any, asn_static: int, line: int) -> Any:
    """``prepend(path, asn)`` with BIRD's checks."""
    if _type(path, path_static) != _PATH:
        raise FilterError("Can't prepend to non-path", line)
    if _type(asn, asn_static) != _INT:
        raise FilterError("Can't prepend non-integer", line)
    return as_paths.path_prepend(path, asn)


def list_op(  # noqa: PLR0917 - called positionally by generated code
    operation: str,
    target: Any,
    target_static: int,
    value: Any,
    value_static: int,
    set_item: int,
    ipv6: bool,
    line: int,
) -> Any:
    """``add``/``delete``/``filter`` (``FI_CLIST_ADD_DEL``) on a path or a community list."""
    kind = _type(target, target_static)
    given = _type(value, value_static)
    if given == _SET and value is not None:
        set_item = int(value.item_type)
    if kind == _PATH:
        return _path_op(operation, target, given, value, set_item, line)
    if kind == _CLIST:
        if given in (_PAIR, _QUAD) or (given == _IP and not ipv6):
            return _list_single(operation, target, value, "Can't filter pair", line)
        if given == _SET and (set_item in (_PAIR, _QUAD) or (set_item == _IP and not ipv6)):
            return _list_many(operation, target, value, True, line)
        if given == _CLIST:
            return _list_many(operation, target, value, False, line)
        raise FilterError("Can't add/delete non-pair", line)
    if kind in (_ECLIST, _LCLIST):
        single, word = (_EC, "ec") if kind == _ECLIST else (_LC, "lc")
        if given == _SET and set_item == single:
            return _list_many(operation, target, value, True, line)
        if given == kind:
            return _list_many(operation, target, value, False, line)
        if given != single:
            raise FilterError(f"Can't add/delete non-{word}", line)
        return _list_single(operation, target, value, f"Can't filter {word}", line)
    raise FilterError("Can't add/delete to non-[e|l]clist", line)


def _path_op(operation: str, path: Any, given: int, value: Any, set_item: int, line: int) -> Any:  # noqa: PLR0917 - called positionally by generated code
    values: TreeSet | None = None
    key = 0
    if given == _INT:
        key = int(value)
    elif given == _SET and set_item == _INT:
        values = value
    else:
        raise FilterError("Can't delete non-integer (set)", line)
    if operation == "add":
        raise FilterError("Can't add to path", line)
    keep = operation == "filter"
    if keep and values is None:
        raise FilterError("Can't filter integer", line)
    return as_paths.path_filter(path, values, key, keep)


def _list_single(operation: str, items: Any, value: Any, filter_error: str, line: int) -> Any:
    if operation == "add":
        return list_add(items, value)
    if operation == "delete":
        return list_delete(items, value)
    raise FilterError(filter_error, line)


def _list_many(operation: str, items: Any, other: Any, is_set: bool, line: int) -> Any:
    if operation == "add":
        if is_set:
            raise FilterError("Can't add set", line)
        return list_union(items, other)
    keep = operation == "filter"
    if is_set:
        return list_filter_set(items, other, keep)
    return list_filter_list(items, other, keep)


def make_pair(a: Any, ta: int, b: Any, tb: int, line: int) -> int:
    """``(a, b)`` built at run time."""
    if _type(a, ta) != _INT or _type(b, tb) != _INT:
        raise FilterError("Can't operate with value of non-integer type in pair constructor", line)
    if a > 0xFFFF or b > 0xFFFF:
        raise FilterError("Can't operate with value out of bounds in pair constructor", line)
    return int(a) << 16 | int(b)


def make_ec(kind: int, key: Any, tk: int, value: Any, tv: int, ipv6: bool, line: int) -> int:  # noqa: PLR0917 - called positionally by generated code
    """``(kind, key, value)`` built at run time (``FI_EC_CONSTRUCT``)."""
    key_type = _type(key, tk)
    if key_type == _INT:
        ipv4_key = False
    elif key_type == _QUAD or (key_type == _IP and not ipv6):
        ipv4_key = True
    else:
        raise FilterError("Can't operate with key of non-integer/IPv4 type in EC constructor", line)
    if _type(value, tv) != _INT:
        raise FilterError("Can't operate with value of non-integer type in EC constructor", line)
    key_number, number = int(key), int(value)
    full = (1 << 64) - 1
    if kind == 0xFFFF:
        return (key_number << 32 | number) & full
    if ipv4_key:
        result, check = ((kind | 0x0100) << 48 | key_number << 16 | number) & full, True
    elif key_number < 0x10000:
        result, check = (kind << 48 | key_number << 32 | number) & full, False
    else:
        result, check = ((kind | 0x0200) << 48 | key_number << 16 | number) & full, True
    if check and number > 0xFFFF:
        raise FilterError("Can't operate with value out of bounds in EC constructor", line)
    return result


def make_lc(a: Any, ta: int, b: Any, tb: int, c: Any, tc: int, line: int) -> tuple[int, int, int]:  # noqa: PLR0917 - called positionally by generated code
    """``(a, b, c)`` built at run time."""
    if _type(a, ta) != _INT or _type(b, tb) != _INT or _type(c, tc) != _INT:
        raise FilterError("Can't operate with value of non-integer type in LC constructor", line)
    return (int(a), int(b), int(c))


def mask_asn(value: Any, static: int, line: int) -> tuple[int, int, int]:
    """A path-mask item given by an expression."""
    if _type(value, static) != _INT:
        raise FilterError("Error resolving path mask template: value not an integer", line)
    return (int(MaskItemKind.ASN), int(value), int(value))


def make_mask(parts: tuple[tuple[int, int, int], ...]) -> PathMask:
    """A path mask from (kind, low, high) parts."""
    return PathMask(tuple(MaskItem(MaskItemKind(k), low, high) for k, low, high in parts))


def need_value(value: Any, message: str, line: int) -> Any:
    """``value``, or the error when it is undefined."""
    if value is None:
        raise FilterError(message, line)
    return value


def void_or_fail(value: Any, message: str, line: int) -> Any:
    """An undefined value, or the error (a value of the wrong type for a variable)."""
    if value is not None:
        raise FilterError(message, line)
    return None


def check_preference(value: Any, static: int, line: int) -> int:
    """``preference = value``."""
    if _type(value, static) != _INT:
        raise FilterError("Can't set preference to non-integer", line)
    if value > 0xFFFF:
        raise FilterError("Setting preference value out of bounds", line)
    return int(value)


def truth(value: Any, line: int) -> bool:
    """An ``if`` condition that may not be a bool."""
    if value is True or value is False:
        return value
    raise FilterError("If requires boolean expression", line)
