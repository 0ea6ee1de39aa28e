"""What both parsers share: the token stream with lookahead, symbols, and error helpers.

Role: ``FilterParser`` (the filter language) and ``ConfigParser`` (the file's structure and
protocols) are layered on this class. It pulls tokens from the ``Lexer`` on demand, keeps a
small lookahead buffer (BIRD's grammar needs at most three tokens to tell its rules apart
here), and turns "expected X, got Y" into BIRD's one message for it, ``syntax error``, at the
offending token, which is where BIRD's LALR parser stops too.
"""

from __future__ import annotations

from bgpd.bird_config.errors import BirdConfigError, Position, not_supported
from bgpd.bird_config.lexer import Lexer, Token, TokenKind
from bgpd.bird_config.symbols import SymbolTable


class ParserBase:
    """Token handling and symbols; see the module docstring."""

    def __init__(self, lexer: Lexer) -> None:
        self.lexer = lexer
        self.ipv6 = lexer.ipv6
        self.bits = 128 if lexer.ipv6 else 32
        self.symbols = SymbolTable()
        self._ahead: list[Token] = []
        self.previous: Token | None = None  # the last token consumed

    # -- tokens ------------------------------------------------------------------------------

    def peek(self, index: int = 0) -> Token:
        """The token ``index`` places ahead (0: the next one), without consuming it."""
        while len(self._ahead) <= index:
            self._ahead.append(self.lexer.next())
        return self._ahead[index]

    def advance(self) -> Token:
        """Consume and return the next token."""
        token = self.peek()
        self._ahead.pop(0)
        self.previous = token
        return token

    def at(self, text: str, index: int = 0) -> bool:
        """The token ``index`` ahead is the keyword or punctuation ``text``."""
        return self.peek(index).is_(text)

    def at_kind(self, kind: TokenKind, index: int = 0) -> bool:
        """The token ``index`` ahead is of ``kind``."""
        return self.peek(index).kind is kind

    def accept(self, text: str) -> Token | None:
        """Consume the next token if it is ``text``."""
        if self.at(text):
            return self.advance()
        return None

    def expect(self, text: str) -> Token:
        """Consume ``text`` or stop with a syntax error at whatever is there."""
        if not self.at(text):
            raise self.syntax_error()
        return self.advance()

    def expect_kind(self, kind: TokenKind) -> Token:
        """Consume a token of ``kind`` or stop with a syntax error."""
        if not self.at_kind(kind):
            raise self.syntax_error()
        return self.advance()

    # -- errors ------------------------------------------------------------------------------

    def syntax_error(self, token: Token | None = None) -> BirdConfigError:
        """BIRD's only parse error message, at ``token`` (default: the next one)."""
        where = token if token is not None else self.peek()
        return BirdConfigError(where.position, "syntax error")

    def error_here(self, message: str) -> BirdConfigError:
        """An error of a rule's action, placed at the last token read (consumed)."""
        return BirdConfigError(self.here(), message)

    def error_ahead(self, message: str) -> BirdConfigError:
        """An error BIRD raises once it has read the token after the construct."""
        return BirdConfigError(self.peek().position, message)

    def here(self) -> Position:
        """The position of the last token consumed."""
        assert self.previous is not None
        return self.previous.position

    def unsupported(self, token: Token, what: str) -> BirdConfigError:
        """The error for a construct BIRD reads but Myna does not implement."""
        return not_supported(token.position, what)
