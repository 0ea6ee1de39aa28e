"""BIRD filters compiled into Myna policy checks, and BIRD's parse-time evaluation.

Role: ``compile_filter`` turns a ``FilterProgram`` (a protocol's ``import``/``export``) into a
closure of the shape of ``rib.policy.PolicyCheck``:

    check(prefix, family, route, priority=None) -> Verdict

with BIRD 1.6's result for the route: ACCEPT or REJECT (a run-time error, or a filter that
ends without deciding, is a reject, as in BIRD), the attribute set as the filter left it
(interned, None when unchanged; edits cached per attribute set), ``priority`` = a written
``krt_metric``, ``tunnel`` = a written ``krt_tunnel``, ``preference`` = a written
``preference``. ``ConstantEvaluator`` is BIRD's ``f_eval`` for the parser (``define``,
``eval``, numbers in parentheses), where there is no route.

How a route looks to a filter (BIRD attribute -> Myna):

==================  =========================================================================
``net``             the ``prefix`` argument (``net.ip``, ``net.len``)
``source``          RTS_BGP for ``Origin.BGP`` sources; else ``Source.kernel.kind``
                    (RTS_STATIC, RTS_INHERIT for kernel routes, RTS_DEVICE,
                    RTS_STATIC_DEVICE); without ``KernelFacts``: RTS_INHERIT for
                    ``Origin.KERNEL``, RTS_STATIC for ``Origin.STATIC``
``proto``           ``Source.protocol`` (else ``Source.name``)
``from``            the peer's address (``Source.address``) for BGP routes, else 0.0.0.0
``gw``              ``KernelFacts.gateway``; for BGP routes the next hop
``ifname``          ``Source.interface`` ("" when None)
``dest``            ``KernelFacts.dest``; RTD_ROUTER for BGP routes
``scope``           ``KernelFacts.scope``; SCOPE_UNIVERSE otherwise
``cast``            RTC_UNICAST
``preference``      ``Source.preference``, else BIRD's default (BGP 100, kernel 10, static
                    200, direct 240)
``bgp_*``           the route's ``PathAttributes``: a field at its default (None, empty) is
                    an undefined attribute; ``bgp_origin`` and ``bgp_path`` are undefined for
                    routes not from BGP (BIRD's kernel, static and device routes have none)
``krt_metric``      the ``priority`` argument, else ``KernelFacts.metric`` of a kernel route
``krt_source``      ``KernelFacts.protocol`` of a kernel route (80: Felix)
``krt_prefsrc``     ``KernelFacts.preferred_source``; ``krt_realm``: ``KernelFacts.realm``
``krt_tunnel``      undefined until written (Calico's fork)
==================  =========================================================================

Not supported (the config is refused where they appear): writing ``from``, ``gw``, ``dest``,
``ifname``, ``scope``, ``krt_source``, ``krt_prefsrc``, ``krt_realm``; ``ifindex``;
``unset`` of ``bgp_origin``, ``bgp_path``, ``bgp_next_hop``; ``quitbird``; a function whose
value is used and may have different types.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bgpd.bird_config import as_paths, runtime, runtime_ops
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.errors import BirdConfigError, Position
from bgpd.bird_config.filter_codegen import (
    _EXPR_HANDLERS,
    VOID,
    CExpr,
    FilterMode,
    FunctionClosure,
    Generator,
    SType,
)
from bgpd.bird_config.values import BirdType, as_int, format_value
from rib.policy import Action, PolicyCheck, Verdict
from rib.route import Origin
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.bird_filter")

_FIELDS = {
    "bgp_origin": "origin",
    "bgp_path": "as_path",
    "bgp_next_hop": "next_hop",
    "bgp_med": "med",
    "bgp_local_pref": "local_pref",
    "bgp_atomic_aggr": "atomic_aggregate",
    "bgp_aggregator": "aggregator",
    "bgp_community": "communities",
    "bgp_originator_id": "originator_id",
    "bgp_cluster_list": "cluster_list",
    "bgp_ext_community": "extended_communities",
    "bgp_large_community": "large_communities",
}
_INITIAL = {
    "bgp_origin": "(attrs.origin if bgp else None)",
    "bgp_path": "(attrs.as_path if bgp else None)",
    "bgp_next_hop": "_nh(attrs.next_hop)",
    "bgp_med": "attrs.med",
    "bgp_local_pref": "attrs.local_pref",
    "bgp_atomic_aggr": "(0 if attrs.atomic_aggregate else None)",
    "bgp_aggregator": "(0 if attrs.aggregator is not None else None)",
    "bgp_community": "attrs.communities",
    "bgp_originator_id": "attrs.originator_id",
    "bgp_cluster_list": "attrs.cluster_list",
    "bgp_ext_community": "attrs.extended_communities",
    "bgp_large_community": "attrs.large_communities",
    "krt_metric": (
        "(priority if priority is not None else "
        "(None if src.kernel is None else _route_facts(src).krt_metric))"
    ),
    "krt_source": "(None if src.kernel is None else _route_facts(src).krt_source)",
    "krt_prefsrc": "(None if src.kernel is None else _route_facts(src).krt_prefsrc)",
    "krt_realm": "(None if src.kernel is None else _route_facts(src).krt_realm)",
    "krt_tunnel": "None",
}
_WRITE_RULES: dict[ast.StorageType, tuple[frozenset[BirdType], str]] = {
    ast.StorageType.INT: (frozenset(), "Setting int attribute to non-int value"),
    ast.StorageType.ROUTER_ID: (
        frozenset({BirdType.QUAD, BirdType.INT}),
        "Setting quad attribute to non-quad value",
    ),
    ast.StorageType.IP_ADDRESS: (frozenset({BirdType.IP}), "Setting ip attribute to non-ip value"),
    ast.StorageType.AS_PATH: (
        frozenset({BirdType.PATH}),
        "Setting path attribute to non-path value",
    ),
    ast.StorageType.INT_SET: (
        frozenset({BirdType.CLIST}),
        "Setting clist attribute to non-clist value",
    ),
    ast.StorageType.EC_SET: (
        frozenset({BirdType.ECLIST}),
        "Setting eclist attribute to non-eclist value",
    ),
    ast.StorageType.LC_SET: (
        frozenset({BirdType.LCLIST}),
        "Setting lclist attribute to non-lclist value",
    ),
    ast.StorageType.STRING: (
        frozenset({BirdType.STRING}),
        "Setting string attribute to non-string value",
    ),
}
_READ_ONLY_HERE = frozenset({"krt_source", "krt_prefsrc", "krt_realm"})
_NO_UNSET = frozenset({"bgp_origin", "bgp_path", "bgp_next_hop"})
_ACCEPT_MARK = "\x01"  # ... site "\x00": replaced once the accept expression is known
_INLINE_LIMIT = 400


@dataclass
class _Frame:
    """Where commands are being generated: what ``return`` and ``accept`` become."""

    in_closure: bool  # accept/reject unwind with Terminal
    returns: str  # "error" (filter level), "break" (inlined function), "return" (closure)
    return_types: list[SType] = field(default_factory=list)
    assigned: set[str] | None = None  # names a closure body assigns (its nonlocals)
    break_states: list[frozenset[str]] = field(default_factory=list)  # at each `return`


class ProgramGenerator(Generator):
    """Commands, calls and the whole function (see ``filter_codegen`` for expressions)."""

    def __init__(self, ipv6: bool, mode: FilterMode, route: bool) -> None:
        super().__init__(ipv6=ipv6, mode=mode, route=route)
        self._frames: list[_Frame] = [_Frame(False, "error")]
        self._inlined = 0
        self.flags: set[str] = set()

    # -- bookkeeping ----------------------------------------------------------------------------

    @property
    def frame(self) -> _Frame:
        """The innermost frame."""
        return self._frames[-1]

    def assign(self, name: str, code: str, defined: bool | None = None) -> None:
        """``name = code``, remembered for the nonlocal lists of closures.

        ``defined`` says whether the value is known to be defined (None: not a BIRD value).
        """
        for frame in self._frames:
            if frame.assigned is not None:
                frame.assigned.add(name)
        self.emit(f"{name} = {code}")
        if defined is True:
            self.nonvoid = self.nonvoid | {name}
        elif defined is False:
            self.nonvoid = self.nonvoid - {name}

    def _merge(self, states: list[tuple[frozenset[str], bool]]) -> None:
        """After branches: what all reachable ones agree is defined."""
        alive = [state for state, dead in states if not dead]
        if not alive:
            self.dead = True
            return
        self.dead = False
        merged = alive[0]
        for state in alive[1:]:
            merged = merged & state
        self.nonvoid = merged

    # -- commands ----------------------------------------------------------------------------

    def commands(self, commands: tuple[ast.Command, ...]) -> None:
        """Generate ``commands`` at the current indentation (``pass`` for none)."""
        before = len(self.lines)
        for command in commands:
            self.command(command)
        if len(self.lines) == before:
            self.emit("pass")

    def block(self, commands: tuple[ast.Command, ...]) -> None:
        """An indented block."""
        self._indent += 1
        self.commands(commands)
        self._indent -= 1

    def command(self, node: ast.Command) -> None:
        """Generate one command."""
        if isinstance(node, ast.If):
            self._if(node)
        elif isinstance(node, ast.Assign):
            self._assign(node)
        elif isinstance(node, ast.Return):
            self._return(node)
        elif isinstance(node, ast.SetDynamic):
            self._set_dynamic(node)
        elif isinstance(node, ast.UnsetDynamic):
            self._unset(node)
        elif isinstance(node, ast.SetPreference):
            self._set_preference(node)
        elif isinstance(node, ast.Terminate):
            self._terminate(node)
        elif isinstance(node, ast.CallCommand):
            self._call_command(node.call)
        elif isinstance(node, ast.Case):
            self._case(node)
        elif isinstance(node, ast.SetStatic):
            raise runtime_unsupported(node.position, f"setting {node.attr.name.lower()}")
        else:
            raise runtime_unsupported(node.position, f"the command {type(node).__name__}")

    def _if(self, node: ast.If) -> None:
        condition = self.expr(node.condition)
        code = self._condition(condition, node.position)
        if condition.constant is not None and condition.pure and isinstance(code, str):
            decided = condition.constant[0]
            if decided is True:
                self.commands(node.then)
                return
            if decided is False:
                if node.otherwise is not None:
                    self.commands(node.otherwise)
                return
        before = self.nonvoid
        self.emit(f"if {code}:")
        self.nonvoid = before | _defined_when_true(node.condition)
        self.dead = False
        self.block(node.then)
        branches = [(self.nonvoid, self.dead)]
        self.nonvoid, self.dead = before, False
        if node.otherwise is not None:
            self.emit("else:")
            self.block(node.otherwise)
        branches.append((self.nonvoid, self.dead))
        self._merge(branches)

    def _condition(self, condition: CExpr, position: Position) -> str:
        if condition.stype == SType(BirdType.BOOL):
            return condition.code
        if condition.stype.base == BirdType.BOOL:
            return f"_truth({condition.code}, {position.line})"
        return self._after([condition.code], self._fail("If requires boolean expression", position))

    def _assign(self, node: ast.Assign) -> None:
        variable = node.variable
        value = self.expr(node.value)
        name = f"v{variable.serial}"
        self.variables.add(name)
        code = self.checked_for_variable(value, variable.declared, node.position)
        self.assign(name, code, not value.stype.may_void())

    def checked_for_variable(self, value: CExpr, declared: BirdType, position: Position) -> str:
        """BIRD's ``FI_SET`` check: the declared type, undefined, or (bird) an IP for a quad."""
        base = value.stype.base
        if base is None or base == declared:
            return value.code
        if not self.ipv6 and declared == BirdType.QUAD and base == BirdType.IP:
            return value.code
        message = "Assigning to variable of incompatible type"
        if value.stype.may_void():
            return f"_void_or_fail({value.code}, {message!r}, {position.line})"
        return self._after([value.code], self._fail(message, position))

    def _return(self, node: ast.Return) -> None:
        value = self.expr(node.value)
        frame = self.frame
        if frame.returns == "return":
            frame.return_types.append(value.stype)
            self.emit(f"return {value.code}")
        elif frame.returns == "break":
            if not value.pure:
                self.emit(f"_ = {value.code}")
            frame.break_states.append(self.nonvoid)
            self.emit("break")
        else:
            # `return` in a filter: BIRD ends it without accept nor reject, an error
            if not value.pure:
                self.emit(f"_ = {value.code}")
            self.emit("return _NO_DECISION" if not frame.in_closure else "raise _Terminal(4, -1)")
        self.dead = True

    def _set_dynamic(self, node: ast.SetDynamic) -> None:
        attr = node.attr
        value = self.expr(node.value)
        if attr.name in _READ_ONLY_HERE:
            raise runtime_unsupported(node.position, f"setting {attr.name}")
        line = node.position.line
        if attr.storage is ast.StorageType.OPAQUE:
            fail = self._fail("Setting opaque attribute is not allowed", node.position)
            self.emit(f"_ = {self._after([value.code], fail)}")
            return
        allowed, message = _WRITE_RULES[attr.storage]
        base = value.stype.base
        if attr.storage is ast.StorageType.INT:
            fits = base == BirdType.INT or (base is not None and base.is_enum)
        elif attr.storage is ast.StorageType.ROUTER_ID:
            fits = base in allowed or (base == BirdType.IP and not self.ipv6)
        else:
            fits = base in allowed
        if not fits:
            code = self._after([value.code], self._fail(message, node.position))
        elif value.stype.may_void():
            code = f"_need_value({value.code}, {message!r}, {line})"
        else:
            code = value.code
        if not self.route:
            self.emit(f"_ = {code}")
            self.emit(f"_no_route({line})")
            return
        self.attrs_written.add(attr.name)
        self.assign(f"a_{attr.name}", code, True)
        self._mark_written(attr)

    def _mark_written(self, attr: ast.DynamicAttr) -> None:
        if attr.name in _FIELDS:
            self.flags.add("dirty")
            self.assign("dirty", "True")
        elif attr.name == "krt_metric":
            self.flags.add("w_krt_metric")
            self.assign("w_krt_metric", "True")
        if f"u_{attr.name}" in self.flags:
            self.assign(f"u_{attr.name}", "False")

    def _unset(self, node: ast.UnsetDynamic) -> None:
        attr = node.attr
        if attr.name in _NO_UNSET or attr.name in _READ_ONLY_HERE:
            raise runtime_unsupported(node.position, f"unset({attr.name})")
        if not self.route:
            self.emit(f"_no_route({node.position.line})")
            return
        self.attrs_written.add(attr.name)
        self.attrs_read.add(attr.name)
        empty = (
            "()"
            if attr.read_type in (BirdType.CLIST, BirdType.ECLIST, BirdType.LCLIST)
            else ("None")
        )
        if self.mode is FilterMode.EXPORT and not attr.temporary and attr.name in _FIELDS:
            # reads find the route's own value again; what is sent lacks the attribute
            self.flags.add(f"u_{attr.name}")
            self.assign(f"a_{attr.name}", _INITIAL[attr.name], False)
            self._mark_written(attr)
            self.assign(f"u_{attr.name}", "True")
            return
        self.assign(f"a_{attr.name}", empty, empty == "()")
        self._mark_written(attr)

    def _set_preference(self, node: ast.SetPreference) -> None:
        value = self.expr(node.value)
        line = node.position.line
        if value.stype == SType(BirdType.INT) and value.constant is not None:
            number = as_int(value.constant[0])
            code = (
                value.code
                if number <= 0xFFFF
                else (self._fail("Setting preference value out of bounds", node.position))
            )
        else:
            code = f"_check_preference({value.code}, {int(value.stype.base or 0)}, {line})"
        if not self.route:
            self.emit(f"_ = {code}")
            self.emit(f"_no_route({line})")
            return
        self.writes_preference = True
        self.assign("a_pref", code)
        self.flags.add("w_pref")
        self.assign("w_pref", "True")

    def _terminate(self, node: ast.Terminate) -> None:
        kind = node.kind
        if kind is ast.Termination.QUITBIRD:
            raise runtime_unsupported(node.position, "quitbird")
        if node.values:
            self.prints = True
            for value in node.values:
                compiled = self.expr(value)
                bird_type = compiled.stype.base or BirdType.VOID
                self.emit(f"_pb.append(_format({compiled.code}, {int(bird_type)}))")
        logs = kind is ast.Termination.PRINT or (
            kind is not ast.Termination.PRINTN and bool(node.values)
        )
        if logs:
            self.prints = True
            self.emit("_print(_pb)")
        if kind in (ast.Termination.PRINT, ast.Termination.PRINTN):
            return
        label = {ast.Termination.ACCEPT: "accept", ast.Termination.REJECT: "reject"}.get(
            kind, "error"
        )
        site = self.site(node.position, label)
        if self.frame.in_closure:
            self.emit(f"raise _Terminal({int(kind)}, {site})")
        elif kind is ast.Termination.ACCEPT:
            self.emit(f"return {_ACCEPT_MARK}{site}\x00")
        else:
            self.emit(f"return _rejects[{site}]")
        self.dead = True

    def _case(self, node: ast.Case) -> None:
        subject = self.expr(node.subject)
        items: list[tuple[object, object, int]] = []
        for index, arm in enumerate(node.arms):
            items.extend((low, high, index) for low, high in arm.items)
        table = runtime_case_table(items, node.item_type, node.otherwise is not None, self.ipv6)
        name = self.constant(table, "case")
        found = self.temp()
        base = int(subject.stype.base or 0)
        self.emit(f"{found} = {name}.find({subject.code}, {base})")
        keyword = "if"
        before = self.nonvoid
        branches = [(before, False)]  # no arm at all may run
        arms = [arm.commands for arm in node.arms]
        if node.otherwise is not None:
            arms.append(node.otherwise)
        for index, commands in enumerate(arms):
            number = index if index < len(node.arms) else -1
            self.emit(f"{keyword} {found} == {number}:")
            self.nonvoid, self.dead = before, False
            self.block(commands)
            branches.append((self.nonvoid, self.dead))
            keyword = "elif"
        self._merge(branches)

    # -- calls -------------------------------------------------------------------------------

    def _call_command(self, call: ast.Call) -> None:
        function = call.function
        if function is None:
            return  # BIRD: a call of the function being defined runs nothing
        if self._inlined >= _INLINE_LIMIT:
            self.emit(f"_ = {self._call(call).code}")
            return
        self._inlined += 1
        assigned = _assigned_variables(function.body)
        bound: dict[int, CExpr] = {}
        for param, arg in zip(function.params, call.args, strict=True):
            value = self.expr(arg)
            fits = value.stype.base in (None, param.declared)
            if value.constant is not None and value.pure and fits and param.serial not in assigned:
                # a constant argument the body never reassigns: used as the constant
                bound[param.serial] = value
                continue
            name = f"v{param.serial}"
            self.variables.add(name)
            code = self.checked_for_variable(value, param.declared, arg.position)
            self.assign(name, code, not value.stype.may_void())
        saved = {serial: self.bound.get(serial) for serial in bound}
        self.bound.update(bound)
        for local in function.locals:
            name = f"v{local.serial}"
            self.variables.add(name)
            self.assign(name, "None", False)
        outer = self.frame
        if _contains_return(function.body):
            frame = _Frame(outer.in_closure, "break", [], outer.assigned)
            self._frames.append(frame)
            self.emit("while True:")
            self._indent += 1
            self.commands(function.body)
            self.emit("break")
            self._indent -= 1
            self._frames.pop()
            self._merge([(self.nonvoid, self.dead), *((s, False) for s in frame.break_states)])
        else:
            self.commands(function.body)
        for serial, previous in saved.items():
            if previous is None:
                del self.bound[serial]
            else:
                self.bound[serial] = previous

    def _call(self, node: ast.Call) -> CExpr:
        function = node.function
        if function is None:
            return CExpr("None", VOID, (None,), True)
        closure = self.closures.get(id(function))
        if closure is None:
            closure = self._closure(function)
        args = []
        for param, arg in zip(function.params, node.args, strict=True):
            value = self.expr(arg)
            args.append(self.checked_for_variable(value, param.declared, arg.position))
        # what the function assigns may be undefined after the call
        self.nonvoid = self.nonvoid - closure.assigned
        return CExpr(f"{closure.name}({', '.join(args)})", closure.stype)

    def _closure(self, function: ast.FunctionDef) -> FunctionClosure:
        name = f"_fn{len(self.closures)}"
        saved_lines, saved_indent = self.lines, self._indent
        self.lines, self._indent = [], 1
        frame = _Frame(True, "return", [], set())
        self._frames.append(frame)
        saved_state = (self.nonvoid, self.dead, self.bound)
        self.nonvoid, self.dead, self.bound = frozenset(), False, {}
        try:
            params = [f"p{i}" for i in range(len(function.params))]
            for param, local in zip(function.params, params, strict=True):
                self.variables.add(f"v{param.serial}")
                self.assign(f"v{param.serial}", local)
            for variable in function.locals:
                self.variables.add(f"v{variable.serial}")
                self.assign(f"v{variable.serial}", "None")
            fallthrough = self._closure_body(function)
        finally:
            self._frames.pop()
            body, self.lines, self._indent = self.lines, saved_lines, saved_indent
            self.nonvoid, self.dead, self.bound = saved_state
        stype = _union(function, [*frame.return_types, fallthrough])
        header = [f"def {name}({', '.join(params)}):"]
        if frame.assigned:
            header.append(f"    nonlocal {', '.join(sorted(frame.assigned))}")
        self.prelude.extend(header + body)
        closure = FunctionClosure(name, stype, frozenset(frame.assigned or ()))
        self.closures[id(function)] = closure
        return closure

    def _closure_body(self, function: ast.FunctionDef) -> SType:
        """The body; returns the type of the value BIRD gives when no ``return`` ran."""
        body = function.body
        if not body:
            self.emit("return None")
            return VOID
        self.commands(body[:-1])
        last = body[-1]
        if isinstance(last, ast.If):
            condition = self.expr(last.condition)
            flag = self.temp()
            self.emit(f"{flag} = {self._condition(condition, last.position)}")
            self.emit(f"if {flag}:")
            self.block(last.then)
            if last.otherwise is not None:
                self.emit("else:")
                self.block(last.otherwise)
                self.emit(f"return {flag}")
            else:
                # BIRD's `if` without else gives FALSE when its block ran
                self.emit(f"return not {flag}")
            return SType(BirdType.BOOL)
        if isinstance(last, ast.CallCommand) and last.call.function is not None:
            value = self._call(last.call)
            self.emit(f"return {value.code}")
            return value.stype
        if isinstance(last, ast.Case):
            raise runtime_unsupported(
                last.position, f"the value of function {function.name} ending in a case"
            )
        self.command(last)
        self.emit("return None")
        return VOID


_EXPR_HANDLERS[ast.Call] = ProgramGenerator._call  # calls need commands: defined here


def runtime_unsupported(position: Position, what: str) -> BirdConfigError:
    """The error for a filter construct Myna does not implement."""
    from bgpd.bird_config.errors import not_supported  # noqa: PLC0415

    return not_supported(position, what)


def runtime_case_table(
    items: list[tuple[object, object, int]], item_type: BirdType | None, has_else: bool, ipv6: bool
) -> CaseTable:
    """The lookup table of a ``case``."""
    return CaseTable(items, item_type, has_else, ipv6)


class CaseTable:
    """BIRD's ``case``: its arms' values in a ``find_tree`` tree, searched as BIRD does.

    A subject of another type than the arms' is "incomparable" to every item, and BIRD's tree
    walk then stops at the root: that arm runs. An undefined subject finds the ``else:`` arm.
    """

    def __init__(
        self,
        items: list[tuple[object, object, int]],
        item_type: BirdType | None,
        has_else: bool,
        ipv6: bool,
    ) -> None:
        entries: list[tuple[int, object, object, int]] = [(0, None, None, -1)] if has_else else []
        entries.extend((1, low, high, arm) for low, high, arm in items)
        entries.sort(key=lambda e: (e[0], e[1]) if e[0] else (0, 0))  # void (else) first
        self.item_type = int(item_type) if item_type is not None else 0
        self.ipv6 = ipv6
        self.nodes = entries
        self.root = self._build(0, len(entries))

    def _build(self, low: int, high: int) -> tuple[Any, ...] | None:
        if low >= high:
            return None
        middle = (low + high) // 2
        return (self.nodes[middle], self._build(low, middle), self._build(middle + 1, high))

    def _compare(self, typed: int, item: object, value: object, value_type: int) -> int:
        item_type = self.item_type if typed else int(BirdType.VOID)
        if item_type != value_type:
            if item_type == int(BirdType.VOID):
                return -1
            if value_type == int(BirdType.VOID):
                return 1
            ip_quad = {item_type, value_type} == {int(BirdType.IP), int(BirdType.QUAD)}
            if not (ip_quad and not self.ipv6):
                return 999
        if item == value:
            return 0
        return -1 if item < value else 1  # type: ignore[operator]

    def _find(self, value: object, value_type: int) -> int | None:
        node = self.root
        while node is not None:
            (typed, low, high, arm_number), left, right = node
            arm = int(arm_number)
            first = self._compare(typed, low, value, value_type)
            if first != 1 and self._compare(typed, high, value, value_type) != -1:
                return arm
            node = right if first == -1 else left
        return None

    def find(self, value: object, static: int) -> int:
        """The arm to run: its index, -1 for ``else:``, -2 for none."""
        value_type = int(BirdType.VOID) if value is None or static == 0 else static
        arm = self._find(value, value_type)
        if arm is None:
            arm = self._find(None, int(BirdType.VOID))
        return -2 if arm is None else arm


def _defined_when_true(condition: ast.Expr) -> frozenset[str]:
    """Locals a true ``condition`` proves defined: ``defined(x)``, alone or in ``&&``."""
    if isinstance(condition, ast.Defined):
        operand = condition.operand
        if isinstance(operand, ast.DynamicRead):
            return frozenset({f"a_{operand.attr.name}"})
        if isinstance(operand, ast.VariableRef):
            return frozenset({f"v{operand.variable.serial}"})
    if isinstance(condition, ast.Binary) and condition.op is ast.BinaryOp.AND:
        return _defined_when_true(condition.left) | _defined_when_true(condition.right)
    return frozenset()


def _assigned_variables(commands: tuple[ast.Command, ...]) -> set[int]:
    """The serials of the variables ``commands`` assign (directly, not in called functions)."""
    found: set[int] = set()
    for command in commands:
        if isinstance(command, ast.Assign):
            found.add(command.variable.serial)
        elif isinstance(command, ast.If):
            found |= _assigned_variables(command.then)
            if command.otherwise is not None:
                found |= _assigned_variables(command.otherwise)
        elif isinstance(command, ast.Case):
            for arm in command.arms:
                found |= _assigned_variables(arm.commands)
            if command.otherwise is not None:
                found |= _assigned_variables(command.otherwise)
    return found


def _contains_return(commands: tuple[ast.Command, ...]) -> bool:
    for command in commands:
        if isinstance(command, ast.Return):
            return True
        if isinstance(command, ast.If) and (
            _contains_return(command.then)
            or (command.otherwise is not None and _contains_return(command.otherwise))
        ):
            return True
        if isinstance(command, ast.Case) and (
            any(_contains_return(arm.commands) for arm in command.arms)
            or (command.otherwise is not None and _contains_return(command.otherwise))
        ):
            return True
    return False


def _union(function: ast.FunctionDef, types: list[SType]) -> SType:
    bases = {t.base for t in types if t.base is not None}
    if len(bases) > 1:
        raise runtime_unsupported(
            function.position,
            f"using the value of function {function.name}, which has more than one type",
        )
    void = any(t.may_void() for t in types)
    return SType(next(iter(bases)) if bases else None, void)


# --- the generated module ---------------------------------------------------------------------


def _format(value: object, type_code: int, ipv6: bool = False) -> str:
    return format_value(BirdType(type_code), value, ipv6)


def _namespace(ipv6: bool, printer: Callable[[str], None]) -> dict[str, Any]:
    def print_buffer(buffer: list[str]) -> None:
        printer("".join(buffer))
        buffer.clear()

    return {
        "_fail": runtime.fail,
        "_no_route": runtime.no_route,
        "_need_bool": runtime.need_bool,
        "_less": runtime.less,
        "_less_equal": runtime.less_equal,
        "_less_mixed": runtime.less_mixed,
        "_patmatch": runtime.patmatch,
        "_route_facts": runtime.route_facts,
        "_nh": runtime.next_hop_address,
        "_Terminal": runtime.Terminal,
        "_FilterError": runtime.FilterError,
        "_UNSET": runtime.UNSET,
        "_NO_DECISION": runtime.NO_DECISION,
        "_WRONG_FAMILY": runtime.WRONG_FAMILY,
        "_ORIGIN_BGP": Origin.BGP,
        "_arith_error": runtime_ops.arith_error,
        "_divide": runtime_ops.divide,
        "_both_void": runtime_ops.both_void,
        "_same_sets": runtime_ops.same_sets,
        "_prefix_in": runtime_ops.prefix_in,
        "_ip_in": runtime_ops.ip_in,
        "_path_match": runtime_ops.path_match,
        "_path_contains": runtime_ops.path_contains,
        "_list_in_set": runtime_ops.list_in_set,
        "_path_in_set": runtime_ops.path_in_set,
        "_path_mismatched_set": runtime_ops.path_mismatched_set,
        "_set_match": runtime_ops.set_match,
        "_method_ip": runtime_ops.method_ip,
        "_method_len": runtime_ops.method_len,
        "_path_method": runtime_ops.path_method,
        "_path_length": as_paths.path_length,
        "_path_first": as_paths.path_first,
        "_path_last": as_paths.path_last,
        "_path_last_nonaggregated": as_paths.path_last_nonaggregated,
        "_path_prepend": as_paths.path_prepend,
        "_ip_mask": runtime_ops.ip_mask,
        "_prepend_checked": runtime_ops.prepend_checked,
        "_list_op": runtime_ops.list_op,
        "_make_pair": runtime_ops.make_pair,
        "_make_ec": runtime_ops.make_ec,
        "_make_lc": runtime_ops.make_lc,
        "_mask_asn": runtime_ops.mask_asn,
        "_make_mask": runtime_ops.make_mask,
        "_need_value": runtime_ops.need_value,
        "_void_or_fail": runtime_ops.void_or_fail,
        "_check_preference": runtime_ops.check_preference,
        "_truth": runtime_ops.truth,
        "_format": functools.partial(_format, ipv6=ipv6),
        "_print": print_buffer,
    }


def _log_print(text: str) -> None:
    LOG.info("%s", text)


class ConstantEvaluator:
    """BIRD's parse-time ``f_eval``: a term's value, or None after a run-time error.

    What ``print`` writes while parsing (and the messages of run-time errors, as BIRD logs
    them: ``filters, line N: ...``) is collected in ``printed``.
    """

    def __init__(self, ipv6: bool, printer: Callable[[str], None] | None = None) -> None:
        self.ipv6 = ipv6
        self.printed: list[str] = []
        self._printer = printer

    def _print(self, line: str) -> None:
        self.printed.append(line)
        if self._printer is not None:
            self._printer(line)

    def evaluate(self, expr: ast.Expr) -> tuple[BirdType, object] | None:
        """The value of ``expr`` (with its type), None when it fails."""
        generator = ProgramGenerator(self.ipv6, FilterMode.EXPORT, route=False)
        compiled = generator.expr(expr)
        lines = [
            "def _evaluate():",
            *(f"    {name} = None" for name in sorted(generator.variables | generator.flags)),
            "    _pb = []",
            *(f"    {line}" for line in generator.prelude),
            f"    return {compiled.code}",
        ]
        namespace = _namespace(self.ipv6, self._print)
        namespace.update(generator.constants)
        exec(compile("\n".join(lines), "<bird constant>", "exec"), namespace)
        try:
            value = namespace["_evaluate"]()
        except runtime.FilterError as error:
            self._print(f"filters, line {error.line}: {error.message}")
            return None
        except runtime.Terminal:
            return None
        return (compiled.stype.base or BirdType.VOID) if value is not None else BirdType.VOID, value


# --- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A compiled filter: the check and the generated source (for ``myna check --debug``)."""

    check: PolicyCheck
    source: str


def compile_filter(
    program: ast.FilterProgram,
    *,
    name: str = "",
    mode: FilterMode = FilterMode.EXPORT,
    log: Callable[[str], None] = _log_print,
    file_of: Callable[[Position], str] | None = None,
) -> CompiledFilter:
    """``program`` as a ``PolicyCheck`` (see the module docstring)."""
    family = Family.IPV6_UNICAST if program.ipv6 else Family.IPV4_UNICAST
    label = name or program.name
    if program.kind is not ast.FilterKind.FILTER or program.filter is None:
        verdict = Verdict(
            Action.ACCEPT if program.kind is ast.FilterKind.ALL else Action.REJECT,
            reason=f"{label}: {program.kind.value}",
        )

        def fixed(prefix: int, fam: Family, route: Any, priority: int | None = None) -> Verdict:
            return verdict if fam is family else runtime.WRONG_FAMILY

        return CompiledFilter(fixed, f"# {program.kind.value}")
    definition = program.filter
    generator = ProgramGenerator(program.ipv6, mode, route=True)
    generator.reason_prefix = f"{label}: "
    if file_of is not None:
        generator.file_of = file_of
    for local in definition.locals:
        generator.variables.add(f"v{local.serial}")
    generator._indent = 2
    generator.commands(definition.body)
    generator.emit("return _NO_DECISION")
    source, namespace = _assemble(generator, label)
    namespace.update(generator.constants)
    namespace["_print"] = _namespace(program.ipv6, log)["_print"]
    exec(compile(source, f"<bird filter {label}>", "exec"), namespace)
    check: PolicyCheck = namespace["_filter"]
    return CompiledFilter(check, source)


def _assemble(generator: ProgramGenerator, label: str) -> tuple[str, dict[str, Any]]:
    written = sorted(generator.attrs_written & set(_FIELDS), key=list(_FIELDS).index)
    fields = tuple(_FIELDS[name] for name in written)
    maker = runtime.VerdictMaker(tuple(generator.sites), fields, generator.ipv6)
    namespace = _namespace(generator.ipv6, _log_print)
    namespace.update(
        {
            "_vm": maker,
            "_accepts": maker.accepts,
            "_plain": maker.plain,
            "_rejects": maker.rejects,
            "_FAMILY": Family.IPV6_UNICAST if generator.ipv6 else Family.IPV4_UNICAST,
            "_LABEL": label,
        }
    )
    values = "None"
    if written:
        parts = [
            f"(_UNSET if u_{n} else a_{n})" if f"u_{n}" in generator.flags else f"a_{n}"
            for n in written
        ]
        values = f"(({', '.join(parts)},) if dirty else None)"
    priority = (
        "(a_krt_metric if w_krt_metric else None)"
        if ("w_krt_metric" in generator.flags)
        else "None"
    )
    preference = "(a_pref if w_pref else None)" if generator.writes_preference else "None"
    tunnel = "a_krt_tunnel" if "krt_tunnel" in generator.attrs_written else "None"
    plain = values == "None" and priority == preference == tunnel == "None"

    def accept(site: str) -> str:
        if plain:
            return f"_accepts[{site}]"
        if values == "None":
            key = f"({site}, {priority}, {preference}, {tunnel})"
            return f"(_plain.get({key}) or _vm.make_plain({key}))"
        return f"_vm.accept({site}, attrs, {values}, {priority}, {preference}, {tunnel})"

    init: list[str] = []
    used = generator.attrs_read | generator.attrs_written
    needs_bgp = any(n in used for n in ("bgp_origin", "bgp_path"))
    if generator.uses_facts or generator.uses_preference:
        init.append("f_ = _route_facts(src)")
    if needs_bgp:
        init.append("bgp = src.origin is _ORIGIN_BGP")
    init.extend(f"a_{n} = {_INITIAL[n]}" for n in sorted(used))
    if generator.uses_preference:
        init.append("a_pref = f_.preference")
    elif generator.writes_preference:
        init.append("a_pref = None")
    init.extend(f"{flag} = False" for flag in sorted(generator.flags))
    init.extend(f"{name} = None" for name in sorted(generator.variables))
    if generator.prints:
        init.append("_pb = []")
    body = [_replace_accepts(line, accept) for line in generator.lines]
    prelude = [_replace_accepts("    " + line, accept) for line in generator.prelude]
    terminal = [
        "    except _Terminal as _t:",
        "        if _t.kind == 2:",
        f"            return {accept('_t.site')}",
        "        if _t.site < 0:",
        "            return _NO_DECISION",
        "        return _rejects[_t.site]",
    ]
    source = "\n".join(
        [
            "def _filter(prefix, family, route, priority=None):",
            "    if family is not _FAMILY:",
            "        return _WRONG_FAMILY",
            "    src = route.source",
            "    attrs = route.attrs",
            *(f"    {line}" for line in init),
            *prelude,
            "    try:",
            *body,
            *(terminal if generator.closures else []),
            "    except _FilterError as _e:",
            "        return _vm.error(_LABEL, _e)",
            "",
        ]
    )
    return source, namespace


def _replace_accepts(line: str, accept: Callable[[str], str]) -> str:
    while "\x01" in line:
        start = line.index("\x01")
        end = line.index("\x00", start)
        line = line[:start] + accept(line[start + 1 : end]) + line[end + 1 :]
    return line
