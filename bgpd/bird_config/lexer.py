"""The lexer of BIRD 1.x configuration files, with ``include``, as BIRD 1.6.8's ``cf-lex.l``.

Role: bytes of the main file (and of every file it includes) in, one stream of ``Token`` out,
each with the position BIRD would report for it. The parser pulls tokens with ``next()``.

Data flow and rules (flex semantics: the longest match wins, the earlier rule on a tie):

* ``include "FILE";`` at the start of a line (after blanks) pushes FILE, read relative to the
  including file's directory, and the lexer continues inside it; a name with ``*``, ``?`` or
  ``[`` is a glob, whose matches are read in sorted order, directories skipped, none at all
  being no error; at most 8 files deep. A file that cannot be opened is an error at the
  include line. Errors inside an included file name it as BIRD does (``dir/FILE``).
* Comments: ``#`` to the end of the line, ``/* ... */`` (not nested). Only space and tab are
  blanks: a carriage return is an unknown character, as in BIRD.
* Numbers: decimal or ``0x`` hex, at most 2^32-1. ``a.b.c.d`` is an IPv4 address (in bird6 a
  router id or quad); IPv6 addresses are recognised by BIRD's pattern and refused by ``bird``.
* Identifiers ``[A-Za-z_][A-Za-z_0-9]*`` or quoted ``'...'`` (letters, digits, ``-``, ``.``,
  ``:``) become a keyword token when BIRD reserves the word, an enum constant token for
  ``RTS_BGP`` and friends, and a symbol otherwise. ``krt_tunnel`` is a keyword too: Myna reads
  the configuration language of Calico's BIRD fork, which adds it.
* Strings ``"..."`` have no escapes and end on the same line.

Positions: the column is the 1-based byte offset of the token's first byte in its line, which
is what BIRD's ``chno - toklen + 1`` gives. Text is decoded as Latin-1 so that one character
is one byte.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from dataclasses import dataclass, field
from enum import Enum, auto

from bgpd.bird_config.errors import NO_POSITION, BirdConfigError, Position
from bgpd.bird_config.keywords import KEYWORDS_V4, KEYWORDS_V6
from bgpd.bird_config.values import ENUM_CONSTANTS_V4, ENUM_CONSTANTS_V6, BirdType

MAX_INCLUDE_DEPTH = 8
SYMBOL_MAX_LENGTH = 64
CALICO_FORK_KEYWORDS = frozenset({"krt_tunnel"})


class TokenKind(Enum):
    """What a token is; punctuation and keywords carry their text in ``Token.text``."""

    NUM = auto()  # value: int
    IPV4 = auto()  # value: int (bird: IPA; bird6: RTRID, a quad)
    IPV6 = auto()  # value: int (bird6 only)
    SYMBOL = auto()  # value: the name
    KEYWORD = auto()
    ENUM = auto()  # value: (BirdType, code)
    TEXT = auto()  # value: the string
    PUNCT = auto()  # one of = { } : ; , . ( ) + * / % < > ~ [ ] ? ! | - and the pairs below
    ELSE_COLON = auto()  # "else:" in a case
    END = auto()


_PAIRS = {"..": "..", "!=": "!=", "!~": "!~", "<=": "<=", ">=": ">=", "&&": "&&", "||": "||"}
_PAIRS |= {"[=": "[=", "=]": "=]"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text as written (keywords lower case), value, position."""

    kind: TokenKind
    text: str
    value: object
    position: Position

    def number(self) -> int:
        """The value of a number or address token."""
        assert isinstance(self.value, int)
        return self.value

    def is_(self, text: str) -> bool:
        """A keyword or punctuation token spelled ``text``."""
        return self.text == text and self.kind in (TokenKind.KEYWORD, TokenKind.PUNCT)

    def describe(self) -> str:
        """How messages name this token."""
        if self.kind is TokenKind.END:
            return "end of file"
        return repr(self.text)


_DIGITS = r"[0-9]+"
_XDIGITS = r"[0-9a-fA-F]"
_V4 = rf"{_DIGITS}\.{_DIGITS}\.{_DIGITS}\.{_DIGITS}"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("ipv4", _V4),
        # BIRD's IPv6 rule is (head)(tail) with two choices each; flex wants the longest
        # match, so the four combinations are tried and the longest kept.
        ("ipv6", rf"{_XDIGITS}*::{_V4}"),
        ("ipv6", rf"{_XDIGITS}*::{_XDIGITS}*"),
        ("ipv6", rf"(?:{_XDIGITS}*:){{3,}}{_V4}"),
        ("ipv6", rf"(?:{_XDIGITS}*:){{3,}}{_XDIGITS}*"),
        ("hex", rf"0x{_XDIGITS}+"),
        ("decimal", _DIGITS),
        ("else_colon", r"else:"),
        ("symbol", r"[A-Za-z_][A-Za-z_0-9]*"),
        ("quoted", r"'[A-Za-z_0-9\-.:]*'"),
        ("ddot", r"\.\."),
        ("punct", r"[={}:;,.()+*/%<>~\[\]?!|-]"),
        ("text", r'"[^"\n]*"'),
        ("unterminated", r'"[^"\n]*\n'),
        ("pair", r"!=|!~|<=|>=|&&|\|\||\[=|=\]"),
    )
)
# _scan's answer when an include pushed a file: the caller reads on from the new top.
_PUSHED = Token(TokenKind.END, "", None, Position("", 0, 0))
_INCLUDE = re.compile(r'[ \t]*include[ \t]*"[^\n]*"[ \t]*;')
_BLANKS = re.compile(r"[ \t]+")


@dataclass
class _Source:
    """One file being read: its text and where the lexer is in it."""

    name: str  # as BIRD names it in messages
    text: str
    depth: int
    offset: int = 0
    line: int = 1
    line_start: int = 0
    pending: list[str] = field(default_factory=list)  # further glob matches, in order


class Lexer:
    """Tokens of ``path`` and the files it includes (see the module docstring).

    ``ipv6`` selects bird6's language (keywords, address tokens). ``files`` lists every file
    read, for ``myna check``.
    """

    def __init__(self, path: str, *, ipv6: bool = False, text: str | None = None) -> None:
        self.ipv6 = ipv6
        self.keywords = (KEYWORDS_V6 if ipv6 else KEYWORDS_V4) | CALICO_FORK_KEYWORDS
        self.enums = ENUM_CONSTANTS_V6 if ipv6 else ENUM_CONSTANTS_V4
        self.files: list[str] = [path]
        self._texts: dict[str, str] = {}
        if text is None:
            text = self._read(path, None)
        self._texts[path] = text
        self._stack = [_Source(path, text, depth=1)]
        self.last: Token | None = None

    # -- files ---------------------------------------------------------------------------------

    def _read(self, name: str, at: Position | None) -> str:
        try:
            with open(name, "rb") as handle:
                text = handle.read().decode("latin-1")
                self._texts[name] = text
                return text
        except OSError as exc:
            if at is None:
                raise BirdConfigError(
                    NO_POSITION, f"Unable to open configuration file {name}: {exc.strerror}"
                ) from None
            raise BirdConfigError(
                at, f"Unable to open included file {name}: {exc.strerror}"
            ) from None

    def _include(self, source: _Source, token_text: str, at: Position) -> None:
        start = token_text.index('"') + 1
        argument = token_text[start : token_text.index('"', start)]
        if not argument:
            raise BirdConfigError(at, "Include with empty argument")
        depth = source.depth + 1
        if depth > MAX_INCLUDE_DEPTH:
            raise BirdConfigError(at, "Max include depth reached")
        if not argument.startswith("/"):
            argument = f"{os.path.dirname(source.name) or '.'}/{argument}"
        if not any(c in argument for c in "?*["):
            self.files.append(argument)
            self._stack.append(_Source(argument, self._read(argument, at), depth))
            return
        matches = [m for m in sorted(glob.glob(argument)) if not os.path.isdir(m)]
        if not matches:
            return
        self.files.extend(matches)
        first, rest = matches[0], matches[1:]
        self._stack.append(_Source(first, self._read(first, at), depth, pending=rest))

    def text_between(self, start: Position, last: Token) -> str:
        """The text from ``start`` to the end of token ``last`` ("" across files)."""
        if start.file != last.position.file or start.file not in self._texts:
            return ""
        lines = self._texts[start.file].splitlines(keepends=True)
        if last.position.line > len(lines):
            return ""
        begin = sum(len(line) for line in lines[: start.line - 1]) + start.column - 1
        end = sum(len(line) for line in lines[: last.position.line - 1]) + last.position.column - 1
        return self._texts[start.file][begin : end + len(last.text)]

    # -- tokens --------------------------------------------------------------------------------

    def next(self) -> Token:
        """The next token (``END`` at the end of the main file, then again and again)."""
        while True:
            source = self._stack[-1]
            token = self._scan(source)
            if token is _PUSHED:
                continue
            if token is not None:
                self.last = token
                return token
            # end of this file
            if source.pending:
                name = source.pending.pop(0)
                text = self._read(name, None)
                self._stack[-1] = _Source(name, text, source.depth, pending=source.pending)
                continue
            if len(self._stack) > 1:
                self._stack.pop()
                continue
            # BIRD resets the line counter at the end of the main file ("Why this?").
            end = Token(TokenKind.END, "", None, Position(source.name, 1, _end_column(source)))
            self.last = end
            return end

    def _position(self, source: _Source, offset: int) -> Position:
        return Position(source.name, source.line, offset - source.line_start + 1)

    def _scan(self, source: _Source) -> Token | None:
        """The next token of ``source``, ``_PUSHED`` after an include, None at its end."""
        text = source.text
        while source.offset < len(text):
            offset = source.offset
            char = text[offset]
            if char == "\n":
                source.offset += 1
                source.line += 1
                source.line_start = source.offset
                continue
            if offset == source.line_start or text[offset - 1] == "\n":
                match = _INCLUDE.match(text, offset)
                if match is not None:
                    source.offset = match.end()
                    self._include(source, match.group(0), self._position(source, offset))
                    return _PUSHED
            if char in " \t":
                blank = _BLANKS.match(text, offset)
                assert blank is not None
                source.offset = blank.end()
                continue
            if char == "#":
                end = text.find("\n", offset)
                source.offset = len(text) if end < 0 else end
                continue
            if text.startswith("/*", offset):
                self._comment(source)
                continue
            return self._token(source, offset)
        return None

    def _comment(self, source: _Source) -> None:
        text = source.text
        source.offset += 2
        while True:
            if source.offset >= len(text):
                # BIRD's column: the characters read on the last line (0 after a newline)
                at = Position(source.name, source.line, source.offset - source.line_start)
                raise BirdConfigError(at, "Unterminated comment")
            if text.startswith("*/", source.offset):
                source.offset += 2
                return
            if text.startswith("/*", source.offset):
                at = self._position(source, source.offset)
                raise BirdConfigError(at, "Comment nesting not supported")
            if text[source.offset] == "\n":
                source.line += 1
                source.line_start = source.offset + 1
            source.offset += 1

    def _token(self, source: _Source, offset: int) -> Token:
        text = source.text
        best_name, best_end = "", offset
        for name, pattern in _RULES:
            match = pattern.match(text, offset)
            if match is not None and match.end() > best_end:
                best_name, best_end = name, match.end()
        at = self._position(source, offset)
        if not best_name:
            raise BirdConfigError(at, "Unknown character")
        lexeme = text[offset:best_end]
        if best_name == "unterminated":
            raise BirdConfigError(at, "Unterminated string")
        source.offset = best_end
        return self._make(best_name, lexeme, at)

    def _make(self, rule: str, lexeme: str, at: Position) -> Token:
        if rule == "ipv4":
            value = _ipv4(lexeme)
            if value is None:
                raise BirdConfigError(at, f"Invalid IPv4 address {lexeme}")
            return Token(TokenKind.IPV4, lexeme, value, at)
        if rule == "ipv6":
            if not self.ipv6:
                message = "This is an IPv4 router, therefore IPv6 addresses are not supported"
                raise BirdConfigError(at, message)
            address = ipv6_from_text(lexeme)
            if address is None:
                raise BirdConfigError(at, f"Invalid IPv6 address {lexeme}")
            return Token(TokenKind.IPV6, lexeme, address, at)
        if rule in ("hex", "decimal"):
            number = int(lexeme, 16 if rule == "hex" else 10)
            if number > 0xFFFFFFFF:
                raise BirdConfigError(at, "Number out of range")
            return Token(TokenKind.NUM, lexeme, number, at)
        if rule == "else_colon":
            return Token(TokenKind.ELSE_COLON, lexeme, None, at)
        if rule in ("symbol", "quoted"):
            name = lexeme[1:-1] if rule == "quoted" else lexeme
            if name in self.keywords:
                return Token(TokenKind.KEYWORD, name, None, at)
            enum = self.enums.get(name)
            if enum is not None:
                return Token(TokenKind.ENUM, name, enum, at)
            if len(name) > SYMBOL_MAX_LENGTH:
                raise BirdConfigError(at, "Symbol too long")
            return Token(TokenKind.SYMBOL, name, name, at)
        if rule == "text":
            return Token(TokenKind.TEXT, lexeme, lexeme[1:-1], at)
        return Token(TokenKind.PUNCT, _PAIRS.get(lexeme, lexeme), None, at)


def _end_column(source: _Source) -> int:
    """BIRD's column at the end of the main file: its last lexeme's start.

    That is ``chno - toklen + 1``, where a newline leaves 0, a run of blanks counts as one
    lexeme and a comment's characters one each.
    """
    text = source.text
    if not text:
        return 1  # nothing read: chno and toklen are both 0
    if text.endswith("\n"):
        return 0
    line_start = text.rfind("\n") + 1
    line = text[line_start:]
    comment = _comment_start(line)
    if comment is not None:
        return len(line)
    stripped = line.rstrip(" \t")
    if len(stripped) < len(line):
        return len(stripped) + 1
    return _last_token_start(line) + 1


def _comment_start(line: str) -> int | None:
    """Where a ``#`` comment starts in ``line`` (outside strings), None if none."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return index
    return None


def _last_token_start(line: str) -> int:
    """The 0-based start of the last token of ``line`` (approximated by longest match)."""
    best = 0
    offset = 0
    while offset < len(line):
        if line[offset] in " \t":
            offset += 1
            continue
        end = offset + 1
        for _, pattern in _RULES:
            match = pattern.match(line, offset)
            if match is not None and match.end() > end:
                end = match.end()
        best = offset
        offset = end
    return best


def _ipv4(text: str) -> int | None:
    """BIRD's ``ip4_pton`` on ``a.b.c.d`` (each part at most 255, leading zeros allowed)."""
    value = 0
    for part in text.split("."):
        number = int(part)
        if number > 255:
            return None
        value = value << 8 | number
    return value


def ipv6_from_text(text: str) -> int | None:
    """BIRD's ``ip6_pton``; None where BIRD refuses the text.

    BIRD leaves the missing words of an address without ``::`` and with fewer than eight
    groups uninitialised; here they are zero.
    """
    rest = text
    if rest.startswith(":"):
        if not rest.startswith("::"):
            return None
        rest = rest[1:]
    words: list[int] = []
    fill = -1
    index = 0
    while index < len(rest):
        if rest[index] == ":":
            if fill >= 0:
                return None
            fill = len(words)
            index += 1
            continue
        start = index
        while index < len(rest) and rest[index] in "0123456789abcdefABCDEF":
            index += 1
        digits = rest[start:index]
        if len(digits) > 4:
            return None
        word = int(digits, 16) if digits else 0
        if index < len(rest) and rest[index] == ":" and index + 1 < len(rest):
            index += 1
        elif (
            index < len(rest)
            and rest[index] == "."
            and (len(words) == 6 or (len(words) < 6 and fill >= 0))
        ):
            tail = _ipv4(rest[start:]) if re.fullmatch(_V4, rest[start:]) else None
            if tail is None:
                return None
            words.extend((tail >> 16, tail & 0xFFFF))
            break
        elif index < len(rest):
            return None
        if len(words) >= 8:
            return None
        words.append(word)
    if fill >= 0:
        words = words[:fill] + [0] * (8 - len(words)) + words[fill:]
    words += [0] * (8 - len(words))
    value = 0
    for word in words[:8]:
        value = value << 16 | word
    return value


def ip_text(address: int, ipv6: bool) -> str:
    """An address int as ``ipaddress`` writes it (for configs and messages)."""
    return str(ipaddress.IPv6Address(address) if ipv6 else ipaddress.IPv4Address(address))


def token_bird_type(token: Token, ipv6: bool) -> BirdType:
    """The type of an address token: an IP, or in bird6 a dotted quad (router id)."""
    if token.kind is TokenKind.IPV4 and ipv6:
        return BirdType.QUAD
    return BirdType.IP
