"""The parser of BIRD 1.6's filter language: terms, commands, functions and filters.

Role: recursive descent over BIRD's grammar (``filter/config.Y``), building ``filter_ast``
nodes. It is layered under ``ConfigParser``, which calls ``function_definition``,
``filter_definition``, ``filter_reference`` (``import filter X|{...}``, ``where``) and
``term``/``evaluate`` where the file's structure holds numbers and values. Literal values
(sets, prefix sets, path masks) and parse-time evaluation are in ``value_parser``.

What BIRD does while parsing, this does too: constant parts are evaluated now (``define``,
``(term)`` where a number or set item is expected, pair/community constructors of literals)
with BIRD's errors, and names are resolved now (a call needs a function defined earlier, an
assignment a variable). Terms follow BIRD's precedence: ``&&``/``||`` lowest (left
associative), then the comparisons and ``~`` (not associative: ``a = b = c`` is a syntax
error), ``+ -``, ``* /``, then ``!`` (so ``!a = b`` is ``(!a) = b``, as in BIRD), then
``.len`` and friends.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.attributes import (
    DYNAMIC_ATTRIBUTES,
    STATIC_ATTRIBUTES,
    UNSUPPORTED_ATTRIBUTES,
)
from bgpd.bird_config.errors import Position
from bgpd.bird_config.lexer import Lexer, Token, TokenKind
from bgpd.bird_config.symbols import SymbolKind
from bgpd.bird_config.value_parser import (
    EC_KIND_WORDS,
    SET_ELEMENT_TYPES,
    ValueParser,
    check_u16,
    direct,
    enum_value,
    indirect,
)
from bgpd.bird_config.values import BirdType, as_int

_TYPES = {
    "int": BirdType.INT,
    "bool": BirdType.BOOL,
    "ip": BirdType.IP,
    "prefix": BirdType.PREFIX,
    "pair": BirdType.PAIR,
    "quad": BirdType.QUAD,
    "ec": BirdType.EC,
    "lc": BirdType.LC,
    "string": BirdType.STRING,
    "bgpmask": BirdType.PATH_MASK,
    "bgppath": BirdType.PATH,
    "clist": BirdType.CLIST,
    "eclist": BirdType.ECLIST,
    "lclist": BirdType.LCLIST,
}
_PREC_LOGIC, _PREC_COMPARE, _PREC_SUM, _PREC_PRODUCT, _PREC_NOT = 1, 2, 3, 4, 5
_BINARY: dict[str, tuple[int, ast.BinaryOp, bool]] = {
    # text: (precedence, operator, operands swapped)
    "&&": (_PREC_LOGIC, ast.BinaryOp.AND, False),
    "||": (_PREC_LOGIC, ast.BinaryOp.OR, False),
    "=": (_PREC_COMPARE, ast.BinaryOp.EQUAL, False),
    "!=": (_PREC_COMPARE, ast.BinaryOp.NOT_EQUAL, False),
    "<": (_PREC_COMPARE, ast.BinaryOp.LESS, False),
    "<=": (_PREC_COMPARE, ast.BinaryOp.LESS_EQUAL, False),
    ">": (_PREC_COMPARE, ast.BinaryOp.LESS, True),
    ">=": (_PREC_COMPARE, ast.BinaryOp.LESS_EQUAL, True),
    "~": (_PREC_COMPARE, ast.BinaryOp.MATCH, False),
    "!~": (_PREC_COMPARE, ast.BinaryOp.NOT_MATCH, False),
    "+": (_PREC_SUM, ast.BinaryOp.ADD, False),
    "-": (_PREC_SUM, ast.BinaryOp.SUBTRACT, False),
    "*": (_PREC_PRODUCT, ast.BinaryOp.MULTIPLY, False),
    "/": (_PREC_PRODUCT, ast.BinaryOp.DIVIDE, False),
}
_METHODS = {m.value: m for m in ast.Method}
_TERMINATIONS = {
    "quitbird": ast.Termination.QUITBIRD,
    "accept": ast.Termination.ACCEPT,
    "reject": ast.Termination.REJECT,
    "error": ast.Termination.ERROR,
    "print": ast.Termination.PRINT,
    "printn": ast.Termination.PRINTN,
}
_EMPTY_BY_STORAGE = {
    ast.StorageType.AS_PATH: BirdType.PATH,
    ast.StorageType.INT_SET: BirdType.CLIST,
    ast.StorageType.EC_SET: BirdType.ECLIST,
    ast.StorageType.LC_SET: BirdType.LCLIST,
}


class FilterParser(ValueParser):
    """The filter language (see the module docstring)."""

    def __init__(self, lexer: Lexer, printer: Callable[[str], None] | None = None) -> None:
        super().__init__(lexer, printer)
        self._serials = itertools.count(1)
        self._owner = ""  # the function or filter being parsed
        self._defining: ast.FunctionDef | None = None
        self._inline_filters = itertools.count(1)

    # -- parse-time evaluation ---------------------------------------------------------------

    # -- definitions ---------------------------------------------------------------------------

    def type_name(self) -> BirdType:
        """``type``: ``int``, ``prefix set``..."""
        token = self.peek()
        if token.kind is not TokenKind.KEYWORD or token.text not in _TYPES:
            raise self.syntax_error()
        self.advance()
        bird_type = _TYPES[token.text]
        while self.accept("set"):
            if bird_type in SET_ELEMENT_TYPES:
                bird_type = BirdType.SET
            elif bird_type == BirdType.PREFIX:
                bird_type = BirdType.PREFIX_SET
            else:
                raise self.error_here("You can't create sets of this type.")
        return bird_type

    def _declaration(self) -> ast.Variable:
        declared = self.type_name()
        name = self.expect_kind(TokenKind.SYMBOL)
        variable = ast.Variable(name.text, declared, self._owner, next(self._serials))
        self.symbols.define(name.text, SymbolKind.VARIABLE, variable, name.position)
        return variable

    def _declarations(self) -> tuple[ast.Variable, ...]:
        """``decls``: ``type name;`` until the body's ``{``."""
        found = []
        while not self.at("{"):
            found.append(self._declaration())
            self.expect(";")
        return tuple(found)

    def function_definition(self) -> ast.FunctionDef:
        """``function NAME ( [type name {; type name}] ) decls { cmds }``."""
        start = self.expect("function")
        name = self.expect_kind(TokenKind.SYMBOL)
        function = ast.FunctionDef(name.text, start.position)
        self.symbols.define(name.text, SymbolKind.FUNCTION, function, name.position)
        self.symbols.push()
        self._owner, self._defining = name.text, function
        try:
            self.expect("(")
            params = []
            if not self.at(")"):
                params.append(self._declaration())
                while self.accept(";"):
                    params.append(self._declaration())
            self.expect(")")
            # BIRD attaches the parameters only once the whole body is read: a call of the
            # function inside its own body sees none (and runs nothing).
            local_vars = self._declarations()
            body = self._block_body()
        finally:
            self.symbols.pop()
            self._owner, self._defining = "", None
        function.params, function.locals, function.body = tuple(params), local_vars, body
        return function

    def filter_definition(self) -> ast.FilterDef:
        """``filter NAME decls { cmds }``."""
        start = self.expect("filter")
        name = self.expect_kind(TokenKind.SYMBOL)
        definition = ast.FilterDef(name.text, start.position)
        self.symbols.define(name.text, SymbolKind.FILTER, definition, name.position)
        self._filter_body(definition)
        return definition

    def _filter_body(self, definition: ast.FilterDef) -> None:
        start = self.peek().position
        self.symbols.push()
        self._owner = definition.name
        try:
            definition.locals = self._declarations()
            definition.body = self._block_body()
        finally:
            self.symbols.pop()
            self._owner = ""
        assert self.previous is not None
        definition.source_text = self.lexer.text_between(start, self.previous)

    def filter_reference(self) -> ast.FilterDef:
        """``filter``: a filter's name, or an inline ``decls { cmds }``."""
        token = self.peek()
        if token.kind is TokenKind.SYMBOL:
            self.advance()
            symbol = self.symbols.find(token.text)
            if symbol is None or symbol.kind is not SymbolKind.FILTER:
                raise self.error_here("No such filter.")
            assert isinstance(symbol.value, ast.FilterDef)
            return symbol.value
        definition = ast.FilterDef(f"(inline {next(self._inline_filters)})", token.position)
        self._filter_body(definition)
        return definition

    def where_filter(self) -> ast.FilterDef:
        """``where term``: accept when the term is true, reject otherwise."""
        start = self.expect("where")
        condition = self.term()
        accept = ast.Terminate(start.position, ast.Termination.ACCEPT, ())
        reject = ast.Terminate(start.position, ast.Termination.REJECT, ())
        definition = ast.FilterDef(f"(where {next(self._inline_filters)})", start.position)
        definition.body = (ast.If(start.position, condition, (accept,), None), reject)
        return definition

    # -- commands ------------------------------------------------------------------------------

    def _block_body(self) -> tuple[ast.Command, ...]:
        self.expect("{")
        commands = self._commands()
        self.expect("}")
        return commands

    def _commands(self) -> tuple[ast.Command, ...]:
        found = []
        while self._starts_command():
            found.append(self.command())
        return tuple(found)

    def _starts_command(self) -> bool:
        token = self.peek()
        if token.kind is TokenKind.SYMBOL:
            return True
        if token.kind is not TokenKind.KEYWORD:
            return False
        return (
            token.text in ("if", "return", "preference", "unset", "case")
            or token.text in _TERMINATIONS
            or token.text in STATIC_ATTRIBUTES
            or token.text in DYNAMIC_ATTRIBUTES
            or token.text in UNSUPPORTED_ATTRIBUTES
        )

    def _block(self) -> tuple[ast.Command, ...]:
        """``block``: one command or ``{ cmds }``."""
        if self.at("{"):
            return self._block_body()
        return (self.command(),)

    def command(self) -> ast.Command:
        """``cmd``."""
        token = self.peek()
        at = token.position
        if token.kind is TokenKind.SYMBOL:
            return self._symbol_command(token)
        text = token.text
        if text == "if":
            self.advance()
            condition = self.term()
            self.expect("then")
            then = self._block()
            otherwise = self._block() if self.accept("else") else None
            return ast.If(at, condition, then, otherwise)
        if text == "return":
            self.advance()
            value = self.term()
            self.expect(";")
            return ast.Return(at, value)
        if text == "preference":
            self.advance()
            self.expect("=")
            value = self.term()
            self.expect(";")
            return ast.SetPreference(at, value)
        if text == "unset":
            self.advance()
            self.expect("(")
            attr = self._dynamic_attribute(self.advance())
            if attr is None:
                raise self.syntax_error(self.previous)
            self.expect(")")
            self.expect(";")
            return ast.UnsetDynamic(at, attr)
        if text == "case":
            return self._case()
        if text in _TERMINATIONS:
            self.advance()
            values = self._print_list()
            self.expect(";")
            return ast.Terminate(at, _TERMINATIONS[text], values)
        if text in STATIC_ATTRIBUTES:
            self.advance()
            static = STATIC_ATTRIBUTES[text]
            self.expect("=")
            value = self.term()
            self.expect(";")
            if not static.writable:
                raise self.error_here("This static attribute is read-only.")
            return ast.SetStatic(at, static, value)
        return self._attribute_command(token)

    def _symbol_command(self, token: Token) -> ast.Command:
        if self.at("(", 1):
            call = self._call()
            self.expect(";")
            return ast.CallCommand(token.position, call)
        self.advance()
        self.expect("=")
        value = self.term()
        self.expect(";")
        symbol = self.symbols.find(token.text)
        if symbol is None or symbol.kind is not SymbolKind.VARIABLE:
            raise self.error_here("You may set only variables.")
        assert isinstance(symbol.value, ast.Variable)
        return ast.Assign(token.position, symbol.value, value)

    def _attribute_command(self, token: Token) -> ast.Command:
        attr = self._dynamic_attribute(self.advance())
        if attr is None:
            raise self.syntax_error(token)
        at = token.position
        if self.accept("="):
            value = self.term()
            self.expect(";")
            return ast.SetDynamic(at, attr, value)
        self.expect(".")
        method = self.advance()
        read = ast.DynamicRead(at, attr)
        if method.is_("empty"):
            self.expect(";")
            empty_type = _EMPTY_BY_STORAGE.get(attr.storage)
            if empty_type is None:
                raise self.error_here("Can't empty that attribute")
            return ast.SetDynamic(at, attr, ast.EmptyList(at, empty_type))
        operation = (
            {
                "add": ast.ListOperation.ADD,
                "delete": ast.ListOperation.DELETE,
                "filter": ast.ListOperation.FILTER,
            }.get(method.text)
            if method.kind is TokenKind.KEYWORD
            else None
        )
        if not method.is_("prepend") and operation is None:
            raise self.syntax_error(method)
        self.expect("(")
        argument = self.term()
        self.expect(")")
        self.expect(";")
        if operation is None:
            return ast.SetDynamic(at, attr, ast.Prepend(at, read, argument))
        return ast.SetDynamic(at, attr, ast.ListOp(at, operation, read, argument))

    def _dynamic_attribute(self, token: Token) -> ast.DynamicAttr | None:
        """The attribute a keyword names, None if it names none; unsupported ones fail."""
        if token.kind is not TokenKind.KEYWORD:
            return None
        if token.text in UNSUPPORTED_ATTRIBUTES:
            raise self.unsupported(token, f"the route attribute {token.text}")
        return DYNAMIC_ATTRIBUTES.get(token.text)

    def _print_list(self) -> tuple[ast.Expr, ...]:
        if self.at(";"):
            return ()
        values = [self.term()]
        while self.accept(","):
            values.append(self.term())
        return tuple(values)

    def _case(self) -> ast.Command:
        start = self.expect("case")
        subject = self.term()
        self.expect("{")
        arms: list[ast.CaseArm] = []
        otherwise: tuple[ast.Command, ...] | None = None
        item_type: BirdType | None = None
        while not self.at("}"):
            if self.at_kind(TokenKind.ELSE_COLON):
                self.advance()
                commands = self._commands()
                # BIRD keeps every "else:" arm in its tree; the lookup finds one of them.
                otherwise = commands if otherwise is None else otherwise
                continue
            items, kind = self._items(switch=True)
            self.expect(":")
            if item_type is None:
                item_type = kind
            elif kind != item_type:
                raise self.unsupported(start, "a case with values of different types")
            arms.append(ast.CaseArm(tuple((i.low, i.high) for i in items), self._commands()))
        self.expect("}")
        return ast.Case(start.position, subject, item_type, tuple(arms), otherwise)

    # -- terms ---------------------------------------------------------------------------------

    def term(self, min_precedence: int = _PREC_LOGIC) -> ast.Expr:
        """``term`` (see the module docstring for precedence)."""
        left = self._unary()
        while True:
            token = self.peek()
            info = _BINARY.get(token.text) if token.kind is TokenKind.PUNCT else None
            if info is None or info[0] < min_precedence:
                return left
            precedence, op, swapped = info
            self.advance()
            right = self.term(precedence + 1)
            if precedence == _PREC_COMPARE:
                after = self.peek()
                if after.kind is TokenKind.PUNCT and _BINARY.get(after.text, (0,))[0] == (
                    _PREC_COMPARE
                ):
                    raise self.syntax_error(after)
            if swapped:
                left, right = right, left
            left = ast.Binary(token.position, op, left, right)

    def _unary(self) -> ast.Expr:
        token = self.peek()
        if token.is_("!"):
            self.advance()
            return ast.Not(token.position, self.term(_PREC_NOT))
        return self._postfix(self._primary())

    def _postfix(self, operand: ast.Expr) -> ast.Expr:
        while self.at("."):
            self.advance()
            token = self.advance()
            if token.is_("mask"):
                self.expect("(")
                length = self.term()
                self.expect(")")
                operand = ast.IpMask(operand.position, operand, length)
                continue
            method = _METHODS.get(token.text) if token.kind is TokenKind.KEYWORD else None
            if method is None:
                raise self.syntax_error(token)
            operand = ast.MethodCall(operand.position, method, operand)
        return operand

    def _primary(self) -> ast.Expr:
        token = self.peek()
        at = token.position
        kind = token.kind
        if kind is TokenKind.NUM:
            self.advance()
            return ast.Constant(at, BirdType.INT, token.value)
        if kind is TokenKind.TEXT:
            self.advance()
            return ast.Constant(at, BirdType.STRING, token.value)
        if kind is TokenKind.ENUM:
            self.advance()
            enum_type, code = enum_value(token)
            return ast.Constant(at, enum_type, code)
        if kind is TokenKind.IPV4 and self.ipv6:
            self.advance()
            return ast.Constant(at, BirdType.QUAD, token.value)
        if kind in (TokenKind.IPV4, TokenKind.IPV6):
            self.advance()
            if self.at("/"):
                return self._prefix_constant(token)
            return indirect(ast.Constant(at, BirdType.IP, token.value))
        if kind is TokenKind.SYMBOL:
            if self.at("(", 1):
                return self._call()
            return self.symbol_value(self.advance())
        if kind is TokenKind.PUNCT:
            return self._punct_primary(token)
        if kind is TokenKind.KEYWORD:
            return self._keyword_primary(token)
        raise self.syntax_error()

    def _punct_primary(self, token: Token) -> ast.Expr:
        at = token.position
        text = token.text
        if text == "(":
            return self._parenthesis()
        if text == "[":
            self.advance()
            return self._set_constant(at)
        if text == "[=":
            self.advance()
            return self._path_mask(at, "=]")
        if text == "/":
            self.advance()
            return self._path_mask(at, "/")
        if text == "+":
            self.advance()
            self.expect("empty")
            self.expect("+")
            return ast.EmptyList(at, BirdType.PATH)
        if text == "-":
            dashes = 0
            while self.accept("-"):
                dashes += 1
                if dashes == 3:
                    break
            self.expect("empty")
            for _ in range(dashes):
                self.expect("-")
            return ast.EmptyList(at, (BirdType.CLIST, BirdType.ECLIST, BirdType.LCLIST)[dashes - 1])
        raise self.syntax_error()

    def _keyword_primary(self, token: Token) -> ast.Expr:
        at = token.position
        text = token.text
        if text in ("true", "false"):
            self.advance()
            return ast.Constant(at, BirdType.BOOL, text == "true")
        if text == "defined":
            self.advance()
            self.expect("(")
            operand = self.term()
            self.expect(")")
            return ast.Defined(at, operand)
        if text == "preference":
            self.advance()
            return ast.PreferenceRead(at)
        if text in STATIC_ATTRIBUTES:
            self.advance()
            return ast.StaticRead(at, STATIC_ATTRIBUTES[text])
        if text in ("prepend", "add", "delete", "filter"):
            self.advance()
            self.expect("(")
            first = self.term()
            self.expect(",")
            second = self.term()
            self.expect(")")
            if text == "prepend":
                return ast.Prepend(at, first, second)
            return ast.ListOp(at, ast.ListOperation(text), first, second)
        if text == "roa_check":
            raise self.unsupported(token, "roa_check")
        attr = self._dynamic_attribute(token)
        if attr is not None:
            self.advance()
            return ast.DynamicRead(at, attr)
        raise self.syntax_error()

    def _parenthesis(self) -> ast.Expr:
        start = self.expect("(")
        at = start.position
        kind_token = self.peek()
        if kind_token.kind is TokenKind.KEYWORD and kind_token.text in EC_KIND_WORDS:
            kind = self._ec_kind()
            self.expect(",")
            key = self.term()
            self.expect(",")
            value = self.term()
            self.expect(")")
            return self._ec_constructor(at, kind, key, value)
        first = self.term()
        if self.accept(")"):
            return first
        self.expect(",")
        second = self.term()
        if self.accept(")"):
            return self._pair_constructor(at, first, second)
        self.expect(",")
        third = self.term()
        self.expect(")")
        return self._lc_constructor(at, first, second, third)

    def _pair_constructor(self, at: Position, first: ast.Expr, second: ast.Expr) -> ast.Expr:
        if direct(first) and direct(second):
            assert isinstance(first, ast.Constant) and isinstance(second, ast.Constant)
            if first.bird_type != BirdType.INT or second.bird_type != BirdType.INT:
                raise self.error_here(
                    "Can't operate with value of non-integer type in pair constructor"
                )
            a, b = as_int(first.value), as_int(second.value)
            check_u16(a, self.here())
            check_u16(b, self.here())
            return ast.Constant(at, BirdType.PAIR, a << 16 | b)
        return ast.PairOf(at, first, second)

    def _ec_constructor(self, at: Position, kind: int, key: ast.Expr, value: ast.Expr) -> ast.Expr:
        key_value: int | None = None
        ipv4_key = False
        if isinstance(key, ast.Constant) and (direct(key) or not self.ipv6):
            allowed = (BirdType.INT, BirdType.QUAD) + ((BirdType.IP,) if not direct(key) else ())
            if key.bird_type not in allowed:
                raise self.error_here(
                    "Can't operate with key of non-integer/IPv4 type in EC constructor"
                )
            key_value = as_int(key.value)
            ipv4_key = key.bird_type != BirdType.INT
        value_number: int | None = None
        if direct(value):
            assert isinstance(value, ast.Constant)
            if value.bird_type != BirdType.INT:
                raise self.error_here(
                    "Can't operate with value of non-integer type in EC constructor"
                )
            value_number = as_int(value.value)
        if key_value is None or value_number is None:
            return ast.EcOf(at, kind, key, value)
        return ast.Constant(
            at, BirdType.EC, self._ec_value(kind, ipv4_key, key_value, value_number)
        )

    def _lc_constructor(
        self, at: Position, first: ast.Expr, second: ast.Expr, third: ast.Expr
    ) -> ast.Expr:
        parts = (first, second, third)
        if all(direct(p) for p in parts):
            constants = [p for p in parts if isinstance(p, ast.Constant)]
            if any(c.bird_type != BirdType.INT for c in constants):
                raise self.error_here(
                    "LC - Can't operate with value of non-integer type in tuple constructor"
                )
            value = tuple(int(c.value) for c in constants)  # type: ignore[call-overload]
            return indirect(ast.Constant(at, BirdType.LC, value))
        return ast.LcOf(at, first, second, third)

    def _prefix_constant(self, address: Token) -> ast.Expr:
        self.expect("/")
        length = self.expect_kind(TokenKind.NUM)
        prefix = self._valid_prefix(address, length)
        return indirect(ast.Constant(address.position, BirdType.PREFIX, prefix))

    def symbol_value(self, token: Token) -> ast.Expr:
        """``symbol``: a constant or variable (BIRD decides once it sees what follows)."""
        symbol = self.symbols.find(token.text)
        if symbol is not None and symbol.kind is SymbolKind.CONSTANT:
            constant = symbol.value
            assert isinstance(constant, ast.Constant)
            return indirect(ast.Constant(token.position, constant.bird_type, constant.value))
        if symbol is not None and symbol.kind is SymbolKind.VARIABLE:
            assert isinstance(symbol.value, ast.Variable)
            return ast.VariableRef(token.position, symbol.value)
        raise self.error_ahead(f"{token.text}: variable expected.")

    def _call(self) -> ast.Call:
        name = self.advance()
        self.expect("(")
        args: list[ast.Expr] = []
        if not self.at(")"):
            args.append(self.term())
            while self.accept(","):
                args.append(self.term())
        self.expect(")")
        symbol = self.symbols.find(name.text)
        if symbol is None or symbol.kind is not SymbolKind.FUNCTION:
            raise self.error_here("You can't call something which is not a function. Really.")
        function = symbol.value
        assert isinstance(function, ast.FunctionDef)
        recursive = function is self._defining
        params = () if recursive else function.params
        if len(params) != len(args):
            raise self.error_here(f"Wrong number of arguments for function {name.text}.")
        return ast.Call(name.position, name.text, None if recursive else function, tuple(args))

    # -- path masks ----------------------------------------------------------------------------

    # -- sets ----------------------------------------------------------------------------------
