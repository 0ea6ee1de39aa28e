"""Values written in BIRD's filter language: sets, prefix sets, path masks, constants.

Role: the part of the filter parser that reads the literal values of BIRD 1.6
(``filter/config.Y``: ``set_item``, ``switch_item``, ``fprefix_set``, ``bgp_path``, the
constructors' parse-time checks) and BIRD's parse-time evaluation of constant terms
(``f_eval``, ``f_eval_int``). ``FilterParser`` builds on it.

Sets are built the way BIRD builds them: ``(a..b, c)`` is one item per value of the first
half (``f_new_pair_set``), ``(a, *)`` one range, ranges are checked (16-bit halves, from not
above to), and items of one set must have one type (Myna refuses a mix, which BIRD's tree
cannot search).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.as_paths import MaskItem, MaskItemKind, PathMask
from bgpd.bird_config.errors import BirdConfigError, Position
from bgpd.bird_config.filter_compiler import ConstantEvaluator
from bgpd.bird_config.lexer import Lexer, Token, TokenKind
from bgpd.bird_config.parse_base import ParserBase
from bgpd.bird_config.prefix_sets import PrefixPattern, PrefixPatternSet
from bgpd.bird_config.symbols import SymbolKind
from bgpd.bird_config.value_sets import SetItem, TreeSet
from bgpd.bird_config.values import BirdType, format_ip

SET_ELEMENT_TYPES = frozenset(
    {BirdType.INT, BirdType.PAIR, BirdType.QUAD, BirdType.EC, BirdType.LC, BirdType.IP}
)
EC_KINDS = {"rt": 0x0002, "ro": 0x0003, "generic": 0xFFFF}
EC_KIND_WORDS = ("rt", "ro", "generic", "unknown")
_U16 = 0xFFFF
_ALL32 = 0xFFFFFFFF


class ValueParser(ParserBase):
    """Literal values and parse-time evaluation (see the module docstring)."""

    def __init__(self, lexer: Lexer, printer: Callable[[str], None] | None = None) -> None:
        super().__init__(lexer)
        self.evaluator = ConstantEvaluator(self.ipv6, printer)
        self.printed = self.evaluator.printed  # what parse-time ``print``s wrote, in order

    def term(self, min_precedence: int = 1) -> ast.Expr:
        """A term (``FilterParser`` reads them)."""
        raise NotImplementedError

    def symbol_value(self, token: Token) -> ast.Expr:
        """A constant's or variable's value (``FilterParser`` resolves them)."""
        raise NotImplementedError

    def evaluate(self, expr: ast.Expr) -> tuple[BirdType, object] | None:
        """BIRD's ``f_eval``: the value, or None after a run-time error (already logged)."""
        return self.evaluator.evaluate(expr)

    def evaluate_int(self, expr: ast.Expr, error: Callable[[str], BirdConfigError]) -> int:
        """BIRD's ``f_eval_int``: an int or "Integer expression expected"."""
        result = self.evaluate(expr)
        if result is None or result[0] != BirdType.INT:
            raise error("Integer expression expected")
        value = result[1]
        assert isinstance(value, int)
        return value

    def _ec_kind(self) -> int:
        token = self.advance()
        if token.text == "unknown":
            return self.expect_kind(TokenKind.NUM).number()
        return EC_KINDS[token.text]

    def _ec_value(self, kind: int, ipv4_key: bool, key: int, value: int) -> int:
        if kind == 0xFFFF:
            return (key << 32 | value) & (1 << 64) - 1
        if ipv4_key:
            check_u16(value, self.here())
            return ((kind | 0x0100) << 48 | key << 16 | value) & (1 << 64) - 1
        if key < 0x10000:
            return ((kind << 48) | key << 32 | value) & (1 << 64) - 1
        check_u16(value, self.here())
        return ((kind | 0x0200) << 48 | key << 16 | value) & (1 << 64) - 1

    def _valid_prefix(self, address: Token, length_token: Token) -> int:
        value = address.value
        length = length_token.value
        assert isinstance(value, int) and isinstance(length, int)
        host_bits = self.bits - length if length <= self.bits else 0
        if length > self.bits or value & ((1 << host_bits) - 1):
            raise self.error_here(
                f"Invalid network prefix: {format_ip(value, self.ipv6)}/{_signed(length)}."
            )
        return value << 8 | length

    def _path_mask(self, at: Position, closing: str) -> ast.Expr:
        parts: list[ast.MaskPart] = []
        old_style = closing == "/"
        while not self.at(closing):
            token = self.peek()
            if token.kind is TokenKind.NUM:
                self.advance()
                low = token.number()
                if not old_style and self.accept(".."):
                    high = self.expect_kind(TokenKind.NUM).number()
                    parts.append(ast.MaskPart(MaskItemKind.ASN_RANGE, low, high))
                else:
                    parts.append(ast.MaskPart(MaskItemKind.ASN, low, low))
            elif token.is_("?"):
                self.advance()
                kind = MaskItemKind.ASTERISK if old_style else MaskItemKind.QUESTION
                parts.append(ast.MaskPart(kind))
            elif token.is_("*") and not old_style:
                self.advance()
                parts.append(ast.MaskPart(MaskItemKind.ASTERISK))
            elif not old_style and token.kind is TokenKind.SYMBOL:
                self.advance()
                parts.append(ast.MaskPart(MaskItemKind.ASN, expr=self.symbol_value(token)))
            elif not old_style and token.is_("("):
                self.advance()
                expr = self.term()
                self.expect(")")
                parts.append(ast.MaskPart(MaskItemKind.ASN, expr=expr))
            else:
                raise self.syntax_error()
        self.advance()
        if any(part.expr is not None for part in parts):
            return ast.PathMaskOf(at, tuple(parts))
        items = tuple(MaskItem(p.kind, p.low, p.high) for p in parts)
        return indirect(ast.Constant(at, BirdType.PATH_MASK, PathMask(items)))

    def _set_constant(self, at: Position) -> ast.Expr:
        first = self.peek()
        if (
            first.kind in (TokenKind.IPV4, TokenKind.IPV6)
            and not (self.ipv6 and first.kind is TokenKind.IPV4)
            and self.at("/", 1)
        ):
            return self._prefix_set(at)
        items, item_type = self._items(switch=False)
        self.expect("]")
        return ast.Constant(at, BirdType.SET, TreeSet(items, item_type))

    def _prefix_set(self, at: Position) -> ast.Expr:
        patterns = [self._prefix_pattern()]
        while self.accept(","):
            patterns.append(self._prefix_pattern())
        self.expect("]")
        return ast.Constant(at, BirdType.PREFIX_SET, PrefixPatternSet(tuple(patterns), self.bits))

    def _prefix_pattern(self) -> PrefixPattern:
        address = self.advance()
        if address.kind not in (TokenKind.IPV4, TokenKind.IPV6) or (
            self.ipv6 and address.kind is TokenKind.IPV4
        ):
            raise self.syntax_error(address)
        self.expect("/")
        length_token = self.expect_kind(TokenKind.NUM)
        prefix = self._valid_prefix(address, length_token)
        length = prefix & 0xFF
        if self.accept("+"):
            return PrefixPattern(prefix >> 8, length, length, self.bits)
        if self.accept("-"):
            return PrefixPattern(prefix >> 8, length, 0, length)
        if self.accept("{"):
            low = self.expect_kind(TokenKind.NUM).number()
            self.expect(",")
            high = self.expect_kind(TokenKind.NUM).number()
            self.expect("}")
            if not low <= high <= self.bits:
                raise self.error_here(
                    f"Invalid prefix pattern range: {{{_signed(low)}, {_signed(high)}}}."
                )
            return PrefixPattern(prefix >> 8, length, low, high)
        return PrefixPattern(prefix >> 8, length, length, length)

    def _items(self, switch: bool) -> tuple[list[SetItem], BirdType]:
        """``set_items`` (or ``switch_items``): the items and their one type."""
        items: list[SetItem] = []
        item_type: BirdType | None = None
        start = self.peek()
        while True:
            new_items, new_type = self._item(switch)
            if item_type is None:
                item_type = new_type
            elif new_type != item_type:
                raise self.unsupported(start, "a set with values of different types")
            items.extend(new_items)
            if not self.accept(","):
                break
        assert item_type is not None
        return items, item_type

    def _item(self, switch: bool) -> tuple[list[SetItem], BirdType]:
        if self.at("("):
            return self._parenthesised_item(switch)
        low_type, low = self._atom(switch)
        if not self.accept(".."):
            return [SetItem(low, low)], low_type
        high_type, high = self._atom(switch)
        if high_type != low_type:
            raise self.unsupported(self.previous or self.peek(), "a range between two types")
        return [SetItem(low, high)], low_type

    def _atom(self, switch: bool) -> tuple[BirdType, object]:
        token = self.advance()
        kind = token.kind
        if kind is TokenKind.NUM:
            return BirdType.INT, token.value
        if kind is TokenKind.IPV4 and self.ipv6:
            return BirdType.QUAD, token.value
        if kind in (TokenKind.IPV4, TokenKind.IPV6):
            return BirdType.IP, token.value
        if kind is TokenKind.ENUM:
            return enum_value(token)
        if token.is_("("):
            expr = self.term()
            self.expect(")")
            if switch:
                return BirdType.INT, self.evaluate_int(expr, self.error_here)
            result = self.evaluate(expr)
            if result is None or (result[0] not in SET_ELEMENT_TYPES and not result[0].is_enum):
                raise self.error_here("Set-incompatible type")
            return result
        if kind is TokenKind.SYMBOL and not switch:
            symbol = self.symbols.find(token.text)
            if symbol is None or symbol.kind is not SymbolKind.CONSTANT:
                raise self.error_here(f"{token.text}: constant expected")
            constant = symbol.value
            assert isinstance(constant, ast.Constant)
            if constant.bird_type not in SET_ELEMENT_TYPES and not constant.bird_type.is_enum:
                raise self.error_here(f"{token.text}: set-incompatible type")
            return constant.bird_type, constant.value
        raise self.syntax_error(token)

    def _cnum(self) -> int:
        """``cnum``: a term evaluated now to an int (BIRD reads the next token first)."""
        expr = self.term()
        return self.evaluate_int(expr, self.error_ahead)

    def _parenthesised_item(self, switch: bool) -> tuple[list[SetItem], BirdType]:
        """``( ... )`` in a set: a pair, extended or large community item, or ``(term)``."""
        token = self.peek(1)
        if token.kind is TokenKind.KEYWORD and token.text in EC_KIND_WORDS:
            return self._ec_item()
        if token.is_("*"):
            return self._wildcard_item()
        # "(term)" alone is a set atom, maybe the start of a range
        self.expect("(")
        expr = self.term()
        if self.at(")"):
            self.advance()
            low: object
            if switch:
                low_type, low = BirdType.INT, self.evaluate_int(expr, self.error_here)
            else:
                result = self.evaluate(expr)
                if result is None or (result[0] not in SET_ELEMENT_TYPES and not result[0].is_enum):
                    raise self.error_here("Set-incompatible type")
                low_type, low = result
            if not self.accept(".."):
                return [SetItem(low, low)], low_type
            high_type, high = self._atom(switch)
            if high_type != low_type:
                raise self.unsupported(self.previous or self.peek(), "a range between two types")
            return [SetItem(low, high)], low_type
        first = self.evaluate_int(expr, self.error_ahead)
        if self.accept(".."):
            return self._range_first_item(first, self._cnum())
        self.expect(",")
        if self.accept("*"):
            if self.accept(","):  # (a, *, *)
                self.expect("*")
                self.expect(")")
                return [SetItem((first, 0, 0), (first, _ALL32, _ALL32))], BirdType.LC
            self.expect(")")  # (a, *)
            return self._pair_items(first, first, 0, _U16)
        second = self._cnum()
        if self.accept(".."):
            second_high = self._cnum()
            if self.accept(","):  # (a, b..c, *)
                self.expect("*")
                self.expect(")")
                return [SetItem((first, second, 0), (first, second_high, _ALL32))], BirdType.LC
            self.expect(")")  # (a, b..c)
            return self._pair_items(first, first, second, second_high)
        if self.accept(","):
            return self._lc_item(first, second)
        self.expect(")")
        if self.accept(".."):  # (a, b) .. (c, d)
            self.expect("(")
            first_high = self._cnum()
            self.expect(",")
            second_high = self._cnum()
            self.expect(")")
            return self._pair_items(first, first_high, second, second_high)
        return self._pair_items(first, first, second, second)

    def _range_first_item(self, first: int, last: int) -> tuple[list[SetItem], BirdType]:
        """``(a..b, ...)``: a pair set (one item per first value) or a large-community range."""
        self.expect(",")
        if self.accept("*"):
            if self.accept(","):  # (a..b, *, *)
                self.expect("*")
                self.expect(")")
                return [SetItem((first, 0, 0), (last, _ALL32, _ALL32))], BirdType.LC
            self.expect(")")  # (a..b, *): one range
            return self._pair_items(first, last, 0, _U16)
        second = self._cnum()
        second_high = self._cnum() if self.accept("..") else second
        self.expect(")")
        return self._pair_set(first, last, second, second_high)

    def _wildcard_item(self) -> tuple[list[SetItem], BirdType]:
        self.expect("(")
        self.expect("*")
        self.expect(",")
        if self.accept("*"):
            if self.accept(","):
                self.expect("*")
                self.expect(")")
                return [SetItem((0, 0, 0), (_ALL32, _ALL32, _ALL32))], BirdType.LC
            self.expect(")")
            return self._pair_items(0, _U16, 0, _U16)
        second = self._cnum()
        second_high = self._cnum() if self.accept("..") else second
        self.expect(")")
        return self._pair_set(0, _U16, second, second_high)

    def _lc_item(self, first: int, second: int) -> tuple[list[SetItem], BirdType]:
        """After ``(a, b,``: the rest of a large-community item."""
        if self.accept("*"):  # (a, b, *)
            self.expect(")")
            return [SetItem((first, second, 0), (first, second, _ALL32))], BirdType.LC
        third = self._cnum()
        if self.accept(".."):  # (a, b, c..d)
            third_high = self._cnum()
            self.expect(")")
            return [SetItem((first, second, third), (first, second, third_high))], BirdType.LC
        self.expect(")")
        if not self.accept(".."):  # (a, b, c)
            return [SetItem((first, second, third), (first, second, third))], BirdType.LC
        self.expect("(")  # (a, b, c) .. (d, e, f)
        first_high = self._cnum()
        self.expect(",")
        second_high = self._cnum()
        self.expect(",")
        third_high = self._cnum()
        self.expect(")")
        return [SetItem((first, second, third), (first_high, second_high, third_high))], (
            BirdType.LC
        )

    def _pair_items(
        self, first: int, first_high: int, second: int, second_high: int
    ) -> tuple[list[SetItem], BirdType]:
        """``f_new_pair_item``: one range from (first, second) to (first_high, second_high)."""
        _check_pair_values(self, first, first_high, second, second_high)
        return [SetItem(first << 16 | second, first_high << 16 | second_high)], BirdType.PAIR

    def _pair_set(
        self, first: int, first_high: int, second: int, second_high: int
    ) -> tuple[list[SetItem], BirdType]:
        """``f_new_pair_set``: for each first value, its range of second values."""
        _check_pair_values(self, first, first_high, second, second_high)
        return [
            SetItem(a << 16 | second, a << 16 | second_high) for a in range(first, first_high + 1)
        ], BirdType.PAIR

    def _ec_item(self) -> tuple[list[SetItem], BirdType]:
        self.expect("(")
        kind = self._ec_kind()
        self.expect(",")
        key = self._cnum()
        self.expect(",")
        if self.accept("*"):
            low, high = 0, _ALL32
        else:
            low = self._cnum()
            high = self._cnum() if self.accept("..") else low
        self.expect(")")
        if kind != 0xFFFF and key >= 0x10000:
            check_u16(low, self.here())
            if high == _ALL32:
                high = _U16
            else:
                check_u16(high, self.here())
        return [
            SetItem(self._ec_value(kind, False, key, low), self._ec_value(kind, False, key, high))
        ], BirdType.EC


def enum_value(token: Token) -> tuple[BirdType, int]:
    """The (type, code) of an enum constant token (``RTS_BGP``)."""
    value = token.value
    assert isinstance(value, tuple)
    enum_type, code = value
    return enum_type, code


def check_u16(value: int, at: Position) -> None:
    """BIRD's ``check_u16``: a pair half or community value fits in 16 bits."""
    if value > _U16:
        raise BirdConfigError(at, f"Value {_signed(value)} out of range (0-65535)")


def _signed(value: int) -> int:
    """``%d`` of a value BIRD holds as an int."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _check_pair_values(
    parser: ValueParser, first: int, first_high: int, second: int, second_high: int
) -> None:
    for value in (first, first_high, second, second_high):
        check_u16(value, parser.here())
    if first_high < first or second_high < second:
        raise parser.error_here("From value cannot be higher that To value in pair sets")


def indirect(constant: ast.Constant) -> ast.Constant:
    """The constant marked as BIRD's FI_CONSTANT_INDIRECT (see ``Constant.indirect``)."""
    return dataclasses.replace(constant, indirect=True)


def direct(expr: ast.Expr) -> bool:
    """A constant BIRD folds constructors of (FI_CONSTANT, not FI_CONSTANT_INDIRECT)."""
    return isinstance(expr, ast.Constant) and not expr.indirect
