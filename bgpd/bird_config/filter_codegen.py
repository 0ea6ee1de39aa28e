"""BIRD filter expressions and commands -> Python source, with BIRD 1.6's semantics.

Role: the code generator behind ``filter_compiler``. Each expression becomes a Python
expression string plus its static BIRD type (``SType``: one type, and whether the value may be
undefined); each command becomes lines of Python. Because the type of every expression is
known here, most operations are plain Python (``(a + b) & 0xFFFFFFFF``, ``prefix & M == V``)
and BIRD's run-time type errors are generated only where they can happen.

Why source code and not a tree of closures: one flat Python function per filter runs the
common path with a handful of local-variable reads and compares, where a closure tree pays a
call per node (the Calico filters have 20 to 60 nodes); ``compile()`` runs once per filter.

How BIRD's semantics map:

* An undefined value is ``None``. Reading an unset attribute is not an error in BIRD 1.6: it
  gives an undefined value, which ``defined()`` tests, which sorts before everything in
  ``<``/``<=`` and equals only another undefined value; arithmetic, ``~``, ``if`` and ``&&``
  on it are run-time errors (``FilterError``), which reject the route.
* Integers are unsigned 32-bit and wrap (``2147483647 - 4294967295`` is 2147483648).
* ``accept``/``reject`` anywhere, in a function too, end the whole filter: calls in command
  position are inlined (a ``while True`` loop around a function body turns its ``return``
  into ``break``); a function called inside an expression becomes a nested function that
  unwinds with ``Terminal``. Variables are BIRD's: one cell per variable, cleared when their
  function or filter starts (so a function's variables are plain locals of the filter).
* Attributes the filter reads or writes are locals (``a_<name>``) initialised from the route;
  the verdict is built from their final values (``runtime.VerdictMaker``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config import runtime
from bgpd.bird_config.errors import BirdConfigError, Position, not_supported
from bgpd.bird_config.value_sets import TreeSet
from bgpd.bird_config.values import BirdType, RouteSourceCode, as_int

U32 = 0xFFFFFFFF
_INT_LIKE = frozenset(
    {BirdType.INT, BirdType.PAIR, BirdType.QUAD, BirdType.EC, BirdType.IP, BirdType.BOOL}
)
_ORDERED = _INT_LIKE | {BirdType.LC, BirdType.PREFIX, BirdType.STRING, BirdType.VOID}
_LISTS = frozenset({BirdType.CLIST, BirdType.ECLIST, BirdType.LCLIST})


class FilterMode(Enum):
    """How attribute writes behave: BIRD runs import filters and export filters differently.

    In an export filter (and ``show route filter``) BIRD keeps every write in temporary
    attributes: ``unset(bgp_med)`` removes the attribute from what is sent, but reading
    ``bgp_med`` afterwards finds the route's own value again. In an import filter it is gone.
    """

    IMPORT = "import"
    EXPORT = "export"


@dataclass(frozen=True, slots=True)
class SType:
    """A static BIRD type: ``base`` (None: always undefined) and whether it may be undefined."""

    base: BirdType | None
    void: bool = False

    def may_void(self) -> bool:
        """The value may be undefined at run time."""
        return self.void or self.base is None


VOID = SType(None, True)


class CExpr(NamedTuple):
    """A compiled expression: Python code, its type, and its value when known now."""

    code: str
    stype: SType
    constant: tuple[object] | None = None  # (value,) for a constant
    pure: bool = False  # evaluating it has no effect and cannot fail


def _unsupported(position: Position, what: str) -> BirdConfigError:
    return not_supported(position, what)


@dataclass
class FunctionClosure:
    """A function compiled as a nested Python function (called inside an expression)."""

    name: str
    stype: SType
    assigned: frozenset[str] = frozenset()  # the locals it sets (maybe to undefined)


@dataclass
class Generator:
    """Generates the body of one filter function (see the module docstring).

    ``route`` is False for BIRD's parse-time evaluation, where any route access is the
    run-time error "No route to access". The program's entry point is written by
    ``filter_compiler``; this class provides expressions, commands and the bookkeeping it
    needs (constants, accept/reject sites, attributes used and written).
    """

    ipv6: bool
    mode: FilterMode
    route: bool
    constants: dict[str, object] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    prelude: list[str] = field(default_factory=list)
    attrs_read: set[str] = field(default_factory=set)
    attrs_written: set[str] = field(default_factory=set)
    attrs_unset: set[str] = field(default_factory=set)
    variables: set[str] = field(default_factory=set)
    sites: list[str] = field(default_factory=list)
    uses_facts: bool = False
    uses_preference: bool = False
    writes_preference: bool = False
    prints: bool = False
    closures: dict[int, FunctionClosure] = field(default_factory=dict)
    # parameters bound to constants while an inlined call's body is generated
    bound: dict[int, CExpr] = field(default_factory=dict)
    # locals known to hold a defined value here (flow-sensitive: after `x = 5`, inside
    # `if defined(x)`), so their reads skip the undefined-value checks
    nonvoid: frozenset[str] = frozenset()
    dead: bool = False  # the code being generated cannot be reached
    _indent: int = 1
    _temps: int = 0
    _inline_depth: int = 0
    _inline_budget: int = 200
    _closure_depth: int = 0
    _loop_depth: int = 0
    reason_prefix: str = ""
    file_of: Callable[[Position], str] = str

    # -- emitting ---------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        """Add a line of the function body at the current indentation."""
        self.lines.append("    " * self._indent + line)

    def constant(self, value: object, hint: str = "k") -> str:
        """A name in the generated module's namespace holding ``value``."""
        name = f"_{hint}{len(self.constants)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        """A fresh local name."""
        self._temps += 1
        return f"t{self._temps}"

    def site(self, position: Position, what: str) -> int:
        """A new accept/reject place; its reason names the filter and the line."""
        self.sites.append(f"{self.reason_prefix}{what} at {self.file_of(position)}")
        return len(self.sites) - 1

    # -- types ------------------------------------------------------------------------------

    def _fail(self, message: str, position: Position) -> str:
        return f"_fail({message!r}, {position.line})"

    def _after(self, codes: list[str], failure: str) -> str:
        """Evaluate ``codes`` in order (for their errors), then ``failure``."""
        if not codes:
            return failure
        return f"({', '.join(codes)}, {failure})[-1]"

    # -- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.Expr) -> CExpr:
        """Compile an expression."""
        handler = _EXPR_HANDLERS.get(type(node))
        if handler is None:
            raise _unsupported(node.position, f"the expression {type(node).__name__}")
        return handler(self, node)

    def _constant(self, node: ast.Constant) -> CExpr:
        return self.value(node.bird_type, node.value)

    def value(self, bird_type: BirdType, value: object) -> CExpr:
        """A constant of ``bird_type``."""
        if bird_type == BirdType.VOID or value is None:
            return CExpr("None", VOID, (None,), True)
        if isinstance(value, bool):
            code = repr(value)
        elif isinstance(value, int):
            code = str(value)
        elif isinstance(value, str):
            code = repr(value)
        else:
            code = self.constant(value)
        return CExpr(code, SType(bird_type), (value,), True)

    def _variable(self, node: ast.VariableRef) -> CExpr:
        known = self.bound.get(node.variable.serial)
        if known is not None:
            return known
        name = f"v{node.variable.serial}"
        self.variables.add(name)
        return CExpr(name, SType(node.variable.declared, name not in self.nonvoid), None, True)

    def _route_read(self, position: Position) -> str | None:
        """None where a route exists; else code raising BIRD's "No route to access"."""
        return None if self.route else f"_no_route({position.line})"

    def _static(self, node: ast.StaticRead) -> CExpr:
        attr = node.attr
        no_route = self._route_read(node.position)
        if no_route is not None:
            return CExpr(no_route, SType(attr.bird_type))
        if attr is ast.StaticAttr.NET:
            return CExpr("prefix", SType(BirdType.PREFIX), None, True)
        if attr is ast.StaticAttr.IFINDEX:
            raise _unsupported(node.position, "ifindex (Myna does not know interface indexes)")
        if attr is ast.StaticAttr.CAST:
            return CExpr("0", SType(BirdType.ENUM_RTC), None, True)  # RTC_UNICAST, always
        self.uses_facts = True
        code = {
            ast.StaticAttr.FROM: "f_.from_address",
            ast.StaticAttr.GW: "(f_.gateway if f_.gateway is not None else _nh(attrs.next_hop))",
            ast.StaticAttr.PROTO: "f_.proto",
            ast.StaticAttr.SOURCE: "f_.source",
            ast.StaticAttr.SCOPE: "f_.scope",
            ast.StaticAttr.DEST: "f_.dest",
            ast.StaticAttr.IFNAME: "f_.ifname",
        }[attr]
        if attr is ast.StaticAttr.GW:
            return CExpr(f"({code} or 0)", SType(BirdType.IP), None, True)
        return CExpr(code, SType(attr.bird_type), None, True)

    def _dynamic(self, node: ast.DynamicRead) -> CExpr:
        no_route = self._route_read(node.position)
        attr = node.attr
        if no_route is not None:
            return CExpr(no_route, SType(attr.read_type, True))
        self.attrs_read.add(attr.name)
        name = f"a_{attr.name}"
        void = attr.read_type not in _LISTS and name not in self.nonvoid
        return CExpr(name, SType(attr.read_type, void), None, True)

    def _preference(self, node: ast.PreferenceRead) -> CExpr:
        no_route = self._route_read(node.position)
        if no_route is not None:
            return CExpr(no_route, SType(BirdType.INT))
        self.uses_preference = True
        return CExpr("a_pref", SType(BirdType.INT), None, True)

    def known_variable(self, serial: int) -> CExpr | None:
        """A variable whose value is a constant in the code being generated."""
        return self.bound.get(serial)

    def _not(self, node: ast.Not) -> CExpr:
        operand = self.expr(node.operand)
        if operand.stype == SType(BirdType.BOOL):
            return CExpr(f"(not {operand.code})", SType(BirdType.BOOL), None, operand.pure)
        return CExpr(
            f"(not _need_bool({operand.code}, 'Not applied to non-boolean', {node.position.line}))",
            SType(BirdType.BOOL),
        )

    def _defined(self, node: ast.Defined) -> CExpr:
        if (
            self.route
            and isinstance(node.operand, ast.StaticRead)
            and node.operand.attr is not ast.StaticAttr.IFINDEX
        ):
            return CExpr("True", SType(BirdType.BOOL), (True,), True)  # never undefined
        operand = self.expr(node.operand)
        if not operand.stype.may_void() and operand.pure:
            return CExpr("True", SType(BirdType.BOOL), (True,), True)
        if operand.stype.base is None:
            return CExpr(f"({operand.code} is not None)", SType(BirdType.BOOL))
        return CExpr(f"({operand.code} is not None)", SType(BirdType.BOOL), None, operand.pure)

    def need_bool(self, compiled: CExpr, message: str, position: Position) -> str:
        """Code of a bool operand, with BIRD's error when it is not one."""
        if compiled.stype == SType(BirdType.BOOL):
            return compiled.code
        if compiled.stype.base == BirdType.BOOL:
            return f"_need_bool({compiled.code}, {message!r}, {position.line})"
        return self._after([compiled.code], self._fail(message, position))

    def _binary(self, node: ast.Binary) -> CExpr:
        op = node.op
        if op in (ast.BinaryOp.AND, ast.BinaryOp.OR):
            return self._logic(node)
        if (
            op in (ast.BinaryOp.EQUAL, ast.BinaryOp.NOT_EQUAL)
            and self.route
            and _is_source_read(node.left)
            and isinstance(node.right, ast.Constant)
            and node.right.bird_type == BirdType.ENUM_RTS
            and node.right.value == RouteSourceCode.BGP
        ):
            # The hot test of Calico's filters, without looking the source's facts up.
            negate = " not" if op is ast.BinaryOp.NOT_EQUAL else ""
            return CExpr(f"(src.origin is{negate} _ORIGIN_BGP)", SType(BirdType.BOOL), None, True)
        left = self.expr(node.left)
        right = self.expr(node.right)
        if op in (ast.BinaryOp.ADD, ast.BinaryOp.SUBTRACT, ast.BinaryOp.MULTIPLY):
            return self._arithmetic(node, left, right)
        if op is ast.BinaryOp.DIVIDE:
            return self._arithmetic(node, left, right)
        if op in (ast.BinaryOp.EQUAL, ast.BinaryOp.NOT_EQUAL):
            return self._equality(node, left, right)
        if op in (ast.BinaryOp.LESS, ast.BinaryOp.LESS_EQUAL):
            return self._ordering(node, left, right)
        return self._match(node, left, right)

    def _logic(self, node: ast.Binary) -> CExpr:
        message = "Can't do boolean operation on non-booleans"
        left = self.expr(node.left)
        right = self.expr(node.right)
        word = "and" if node.op is ast.BinaryOp.AND else "or"
        lcode = self.need_bool(left, message, node.position)
        rcode = self.need_bool(right, message, node.position)
        pure = left.pure and right.pure and left.stype == right.stype == SType(BirdType.BOOL)
        if left.constant is not None and left.pure and left.stype == SType(BirdType.BOOL):
            decided = left.constant[0]
            if (word == "and" and decided is False) or (word == "or" and decided is True):
                return CExpr(repr(decided), SType(BirdType.BOOL), (decided,), True)
            return CExpr(rcode, SType(BirdType.BOOL), right.constant, right.pure)
        return CExpr(f"({lcode} {word} {rcode})", SType(BirdType.BOOL), None, pure)

    def _arithmetic(self, node: ast.Binary, left: CExpr, right: CExpr) -> CExpr:
        line = node.position.line
        lt, rt = left.stype, right.stype
        result = SType(BirdType.INT)
        if lt.base == BirdType.INT and rt.base == BirdType.INT:
            if node.op is ast.BinaryOp.DIVIDE:
                inner = "_divide({a}, {b}, {line})"
            else:
                symbol = {ast.BinaryOp.ADD: "+", ast.BinaryOp.SUBTRACT: "-"}.get(node.op, "*")
                inner = f"(({{a}} {symbol} {{b}}) & {U32})"
            if not lt.may_void() and not rt.may_void():
                return CExpr(inner.format(a=left.code, b=right.code, line=line), result)
            a = self.temp() if lt.may_void() else left.code
            b = self.temp() if rt.may_void() else right.code
            body = inner.format(a=a, b=b, line=line)
            checks = []
            if lt.may_void():
                checks.append(f"(({a} := {left.code}) is None)")
            if rt.may_void():
                checks.append(f"(({b} := {right.code}) is None)")
            error = f"_arith_error({a}, {int(BirdType.INT)}, {b}, {int(BirdType.INT)}, {line})"
            if not lt.may_void() and not left.pure:
                # evaluate the left operand first, as BIRD does
                a2 = self.temp()
                checks.insert(0, f"(({a2} := {left.code}) is None)")
                body = inner.format(a=a2, b=b, line=line)
                error = error.replace(f"_arith_error({a},", f"_arith_error({a2},", 1)
            return CExpr(f"({error} if {' | '.join(checks)} else {body})", result)
        # Anything else fails at run time; BIRD's message depends on the values' types.
        ta = int(lt.base) if lt.base is not None else 0
        tb = int(rt.base) if rt.base is not None else 0
        return CExpr(f"_arith_error({left.code}, {ta}, {right.code}, {tb}, {line})", result)

    def _equality(self, node: ast.Binary, left: CExpr, right: CExpr) -> CExpr:
        negate = node.op is ast.BinaryOp.NOT_EQUAL
        pure = left.pure and right.pure
        lb, rb = left.stype.base, right.stype.base
        quad_ip = not self.ipv6 and {lb, rb} == {BirdType.IP, BirdType.QUAD}
        if lb == rb or quad_ip:
            if lb in (BirdType.SET, BirdType.PREFIX_SET):
                code = f"_same_sets({left.code}, {right.code})"
            else:
                code = f"({left.code} == {right.code})"
        elif lb is None or rb is None:
            # an undefined value equals only another undefined value
            code = f"({left.code} == {right.code})"
        else:
            # Values of two types are never equal, except two undefined ones.
            code = f"_both_void({left.code}, {right.code})"
        if negate:
            code = f"(not {code})"
        return CExpr(code, SType(BirdType.BOOL), None, pure)

    def _ordering(self, node: ast.Binary, left: CExpr, right: CExpr) -> CExpr:
        or_equal = node.op is ast.BinaryOp.LESS_EQUAL
        symbol = "<=" if or_equal else "<"
        lb, rb = left.stype.base, right.stype.base
        line = node.position.line
        result = SType(BirdType.BOOL)
        quad_ip = not self.ipv6 and {lb, rb} == {BirdType.IP, BirdType.QUAD}
        same = lb == rb or quad_ip or lb is None or rb is None
        base = lb or rb
        comparable = base is None or base in _ORDERED or base.is_enum
        if not same or not comparable:
            # only an undefined value compares with another type (or with paths, lists...)
            return CExpr(f"_less_mixed({left.code}, {right.code}, {or_equal}, {line})", result)
        pure = left.pure and right.pure
        if not left.stype.may_void() and not right.stype.may_void():
            return CExpr(f"({left.code} {symbol} {right.code})", result, None, pure)
        if not right.stype.may_void() and left.pure:
            # Calico's `krt_metric < 1024`: undefined sorts first.
            code = f"({left.code} is None or {left.code} {symbol} {right.code})"
            return CExpr(code, result, None, pure)
        helper = "_less_equal" if or_equal else "_less"
        return CExpr(f"{helper}({left.code}, {right.code})", result, None, pure)

    def _match(self, node: ast.Binary, left: CExpr, right: CExpr) -> CExpr:
        code = self._match_code(node, left, right)
        if node.op is ast.BinaryOp.NOT_MATCH:
            code = f"(not {code})"
        return CExpr(code, SType(BirdType.BOOL))

    def _match_code(self, node: ast.Binary, left: CExpr, right: CExpr) -> str:
        word = "!~" if node.op is ast.BinaryOp.NOT_MATCH else "~"
        fail = self._fail(f"{word} applied on unknown type pair", node.position)
        guard = left.stype.may_void() or right.stype.may_void()
        a = self.temp() if guard else left.code
        b = self.temp() if guard and right.stype.may_void() else right.code
        code = self._match_operands(node, left, right, a, b, fail=fail)
        if code is None:
            return self._after([left.code, right.code], fail)
        if not guard:
            return code
        checks = [f"(({a} := {left.code}) is None)"]
        if b != right.code:
            checks.append(f"(({b} := {right.code}) is None)")
        else:
            checks.append(f"({right.code} is None)" if right.stype.may_void() else "False")
        return f"({fail} if {' | '.join(checks)} else {code})"

    def _match_operands(
        self, node: ast.Binary, left: CExpr, right: CExpr, a: str, b: str, *, fail: str
    ) -> str | None:
        lb, rb = left.stype.base, right.stype.base
        pair = (lb, rb)
        if pair == (BirdType.PREFIX, BirdType.PREFIX):
            return self._prefix_in_prefix(a, right, b)
        if pair == (BirdType.IP, BirdType.PREFIX):
            return self._ip_in_prefix(a, right, b)
        if pair == (BirdType.PREFIX, BirdType.PREFIX_SET):
            return f"{b}.matches({a})"
        if pair == (BirdType.PATH, BirdType.PATH_MASK):
            return f"_path_match({a}, {b}.items)"
        if pair == (BirdType.INT, BirdType.PATH):
            return f"_path_contains({b}, {a})"
        if rb == BirdType.CLIST and (
            lb in (BirdType.PAIR, BirdType.QUAD) or (lb == BirdType.IP and not self.ipv6)
        ):
            return f"({a} in {b})"
        if pair in ((BirdType.EC, BirdType.ECLIST), (BirdType.LC, BirdType.LCLIST)):
            return f"({a} in {b})"
        if pair == (BirdType.STRING, BirdType.STRING):
            if right.constant is not None:
                matcher = self.constant(runtime.PatternMemo(str(right.constant[0])), "pm")
                return f"{matcher}[{a}]"
            return f"_patmatch({b}, {a})"
        if rb == BirdType.SET:
            if right.constant is None:
                static = int(lb) if lb else 0
                return f"_set_match({a}, {static}, {b}, {self.ipv6}, {node.position.line})"
            return self._set_match(a, lb, right.constant[0], fail)
        return None

    def _prefix_in_prefix(self, a: str, right: CExpr, b: str) -> str:
        if right.constant is not None:
            outer = as_int(right.constant[0])
            length = outer & 0xFF
            mask = _network_mask(length, self._bits)
            value = outer & mask
            if a == "prefix":
                return f"(({a} & {mask}) == {value} and ({a} & 255) >= {length})"
            return f"_prefix_in({a}, {outer}, {self._bits})"
        return f"_prefix_in({a}, {b}, {self._bits})"

    def _ip_in_prefix(self, a: str, right: CExpr, b: str) -> str:
        if right.constant is not None:
            outer = as_int(right.constant[0])
            length = outer & 0xFF
            shift = self._bits - length
            return f"(({a} >> {shift}) == {(outer >> 8) >> shift})"
        return f"_ip_in({a}, {b}, {self._bits})"

    def _set_match(self, a: str, lb: BirdType | None, values: object, fail: str) -> str | None:
        assert isinstance(values, TreeSet)
        item = values.item_type
        name = self.constant(values, "set")
        if lb == item or (not self.ipv6 and lb == BirdType.QUAD and item == BirdType.IP):
            return f"{name}.contains({a})"
        if lb == BirdType.CLIST:
            ok = item in (BirdType.PAIR, BirdType.QUAD) or (item == BirdType.IP and not self.ipv6)
            return f"_list_in_set({a}, {name})" if ok else self._after([a], fail)
        if lb == BirdType.ECLIST:
            return f"_list_in_set({a}, {name})" if item == BirdType.EC else self._after([a], fail)
        if lb == BirdType.LCLIST:
            return f"_list_in_set({a}, {name})" if item == BirdType.LC else self._after([a], fail)
        if lb == BirdType.PATH:
            if item == BirdType.INT:
                return f"_path_in_set({a}, {name})"
            return f"_path_mismatched_set({a}, {name})"
        return None

    @property
    def _bits(self) -> int:
        return 128 if self.ipv6 else 32

    # -- methods, lists, constructors --------------------------------------------------------

    def _method(self, node: ast.MethodCall) -> CExpr:
        operand = self.expr(node.operand)
        base = operand.stype.base
        line = node.position.line
        method = node.method
        result = SType(BirdType.INT)
        code = operand.code
        if method is ast.Method.IP:
            if base == BirdType.PREFIX and not operand.stype.may_void():
                return CExpr(f"({code} >> 8)", SType(BirdType.IP), None, operand.pure)
            return CExpr(f"_method_ip({code}, {int(base or 0)}, {line})", SType(BirdType.IP))
        if method is ast.Method.LEN:
            if operand.stype.may_void() or base not in (BirdType.PREFIX, BirdType.PATH, *_LISTS):
                return CExpr(f"_method_len({code}, {int(base or 0)}, {line})", result)
            if base == BirdType.PREFIX:
                return CExpr(f"({code} & 255)", result, None, operand.pure)
            if base == BirdType.PATH:
                return CExpr(f"_path_length({code})", result, None, operand.pure)
            return CExpr(f"len({code})", result, None, operand.pure)
        helper = {
            ast.Method.FIRST: "_path_first",
            ast.Method.LAST: "_path_last",
            ast.Method.LAST_NONAGGREGATED: "_path_last_nonaggregated",
        }[method]
        if base == BirdType.PATH and not operand.stype.may_void():
            return CExpr(f"{helper}({code})", result, None, operand.pure)
        return CExpr(f"_path_method({helper}, {code}, {int(base or 0)}, {line})", result)

    def _ip_mask(self, node: ast.IpMask) -> CExpr:
        operand = self.expr(node.operand)
        length = self.expr(node.length)
        return CExpr(
            f"_ip_mask({operand.code}, {int(operand.stype.base or 0)}, {length.code}, "
            f"{int(length.stype.base or 0)}, {self._bits}, {node.position.line})",
            SType(BirdType.IP),
        )

    def _empty(self, node: ast.EmptyList) -> CExpr:
        return CExpr("()", SType(node.bird_type), ((),), True)

    def _prepend(self, node: ast.Prepend) -> CExpr:
        path = self.expr(node.path)
        asn = self.expr(node.asn)
        if path.stype == SType(BirdType.PATH) and asn.stype == SType(BirdType.INT):
            return CExpr(f"_path_prepend({path.code}, {asn.code})", SType(BirdType.PATH))
        return CExpr(
            f"_prepend_checked({path.code}, {int(path.stype.base or 0)}, {asn.code}, "
            f"{int(asn.stype.base or 0)}, {node.position.line})",
            SType(BirdType.PATH),
        )

    def _list_op(self, node: ast.ListOp) -> CExpr:
        target = self.expr(node.target)
        value = self.expr(node.value)
        base = target.stype.base
        result = SType(base if base in (*_LISTS, BirdType.PATH) else BirdType.CLIST)
        single = _LIST_ITEMS.get(base) if base is not None else None
        if (
            single is not None
            and value.stype.base in single
            and not target.stype.may_void()
            and not value.stype.may_void()
            and node.operation in (ast.ListOperation.ADD, ast.ListOperation.DELETE)
            and (value.stype.base != BirdType.IP or not self.ipv6)
        ):
            # the common case (Calico's bgp_community.add((a, b))): no run-time type dispatch
            helper = "_list_add" if node.operation is ast.ListOperation.ADD else "_list_delete"
            return CExpr(f"{helper}({target.code}, {value.code})", result)
        item_type = 0
        if value.constant is not None and isinstance(value.constant[0], TreeSet):
            item_type = int(value.constant[0].item_type)
        return CExpr(
            f"_list_op({node.operation.value!r}, {target.code}, {int(base or 0)}, "
            f"{value.code}, {int(value.stype.base or 0)}, {item_type}, {self.ipv6}, "
            f"{node.position.line})",
            result,
        )

    def _pair(self, node: ast.PairOf) -> CExpr:
        first = self.expr(node.first)
        second = self.expr(node.second)
        return CExpr(
            f"_make_pair({first.code}, {int(first.stype.base or 0)}, {second.code}, "
            f"{int(second.stype.base or 0)}, {node.position.line})",
            SType(BirdType.PAIR),
        )

    def _ec(self, node: ast.EcOf) -> CExpr:
        key = self.expr(node.key)
        value = self.expr(node.value)
        return CExpr(
            f"_make_ec({node.kind}, {key.code}, {int(key.stype.base or 0)}, {value.code}, "
            f"{int(value.stype.base or 0)}, {self.ipv6}, {node.position.line})",
            SType(BirdType.EC),
        )

    def _lc(self, node: ast.LcOf) -> CExpr:
        parts = [self.expr(p) for p in (node.first, node.second, node.third)]
        args = ", ".join(f"{p.code}, {int(p.stype.base or 0)}" for p in parts)
        return CExpr(f"_make_lc({args}, {node.position.line})", SType(BirdType.LC))

    def _path_mask(self, node: ast.PathMaskOf) -> CExpr:
        parts = []
        for part in node.parts:
            if part.expr is None:
                parts.append(f"({int(part.kind)}, {part.low}, {part.high})")
            else:
                value = self.expr(part.expr)
                parts.append(
                    f"_mask_asn({value.code}, {int(value.stype.base or 0)}, {node.position.line})"
                )
        return CExpr(f"_make_mask(({', '.join(parts)},))", SType(BirdType.PATH_MASK))


def _is_source_read(node: ast.Expr) -> bool:
    return isinstance(node, ast.StaticRead) and node.attr is ast.StaticAttr.SOURCE


def _network_mask(length: int, bits: int) -> int:
    """The mask over a prefix int keeping ``length`` network bits and dropping the length."""
    return (((1 << length) - 1) << (bits - length)) << 8


# list type -> the item types ``add``/``delete`` take one at a time
_LIST_ITEMS: dict[BirdType, tuple[BirdType, ...]] = {
    BirdType.CLIST: (BirdType.PAIR, BirdType.QUAD, BirdType.IP),
    BirdType.ECLIST: (BirdType.EC,),
    BirdType.LCLIST: (BirdType.LC,),
}

_EXPR_HANDLERS: dict[type, Callable[[Any, Any], CExpr]] = {
    ast.Constant: Generator._constant,
    ast.VariableRef: Generator._variable,
    ast.StaticRead: Generator._static,
    ast.DynamicRead: Generator._dynamic,
    ast.PreferenceRead: Generator._preference,
    ast.Not: Generator._not,
    ast.Defined: Generator._defined,
    ast.Binary: Generator._binary,
    ast.MethodCall: Generator._method,
    ast.IpMask: Generator._ip_mask,
    ast.EmptyList: Generator._empty,
    ast.Prepend: Generator._prepend,
    ast.ListOp: Generator._list_op,
    ast.PairOf: Generator._pair,
    ast.EcOf: Generator._ec,
    ast.LcOf: Generator._lc,
    ast.PathMaskOf: Generator._path_mask,
}
