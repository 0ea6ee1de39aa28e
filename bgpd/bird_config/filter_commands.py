"""BIRD filter commands, calls and functions -> Python statements.

Role: the statement half of the code generator (``filter_codegen`` has the expressions);
``filter_compiler`` assembles its output into the function of one filter. Commands become
lines of Python: ``if``, assignments to variables and attributes (with BIRD's run-time type
checks), ``accept``/``reject`` (a ``return`` of the verdict, or ``Terminal`` inside a
function called from an expression), ``print``, ``case`` (``runtime.CaseTable``, which
searches its values as BIRD's tree does) and calls (inlined; see ``filter_codegen``).

While it generates, it tracks which locals are known to hold a defined value (after
``x = 5``, inside ``if defined(x)``), so later reads skip the undefined-value checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.errors import BirdConfigError, Position, not_supported
from bgpd.bird_config.filter_codegen import (
    _EXPR_HANDLERS,
    VOID,
    CExpr,
    FilterMode,
    FunctionClosure,
    Generator,
    SType,
)
from bgpd.bird_config.runtime import CaseTable
from bgpd.bird_config.values import BirdType, as_int

FIELDS = {
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
INITIAL = {
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
        "(None if src.origin is _ORIGIN_BGP else _route_facts(src).krt_metric))"
    ),
    "krt_source": "(None if src.origin is _ORIGIN_BGP else _route_facts(src).krt_source)",
    "krt_prefsrc": "(None if src.origin is _ORIGIN_BGP else _route_facts(src).krt_prefsrc)",
    "krt_realm": "(None if src.origin is _ORIGIN_BGP else _route_facts(src).krt_realm)",
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
ACCEPT_MARK = "\x01"  # ... site "\x00": replaced once the accept expression is known
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
        self._closure_count = 0
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
        if attr.name in FIELDS:
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
        if self.mode is FilterMode.EXPORT and not attr.temporary and attr.name in FIELDS:
            # reads find the route's own value again; what is sent lacks the attribute
            self.flags.add(f"u_{attr.name}")
            self.assign(f"a_{attr.name}", INITIAL[attr.name], False)
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
            self.emit(f"return {ACCEPT_MARK}{site}\x00")
        else:
            self.emit(f"return _rejects[{site}]")
        self.dead = True

    def _case(self, node: ast.Case) -> None:
        subject = self.expr(node.subject)
        items: list[tuple[object, object, int]] = []
        for index, arm in enumerate(node.arms):
            items.extend((low, high, index) for low, high in arm.items)
        table = CaseTable(items, node.item_type, node.otherwise is not None, self.ipv6)
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
        self._closure_count += 1
        name = f"_fn{self._closure_count}"
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
    return not_supported(position, what)


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
