"""Errors in a BIRD configuration, worded and placed as BIRD 1.6 places them.

Role: every problem the reader finds in a file (lexer, parser, parse-time evaluation, the
protocols' own checks, and constructs Myna does not implement) is one ``BirdConfigError``
carrying the file, line and column. BIRD 1.6.8 prints ``bird: FILE:LINE:COL message`` and
exits 1 (``sysdep/unix/main.c``: ``die("%s:%d:%d %s", ...)``); ``str()`` of the error is that
``FILE:LINE:COL message`` part, so ``myna bird -p`` prints exactly what BIRD prints and
``myna check`` prefixes it with what it is (the config's fault).

Where BIRD points: the column is the first byte of the last token the lexer read (its
``chno - toklen + 1``), which for a syntax error is the offending token; checks BIRD makes
after the whole file was read (``protos_postconfig``) point at line 1 of the main file, as
BIRD's end-of-file handling resets the line counter.
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_SUPPORTED = "not supported by Myna"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a token starts: the file name as BIRD names it, line (1-based), column (1-based)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# For the one error BIRD prints without a place: the main file cannot be read.
NO_POSITION = Position("", 0, 0)


class BirdConfigError(Exception):
    """A BIRD configuration the reader refuses, with BIRD's ``FILE:LINE:COL message``."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message if position is NO_POSITION else f"{position} {message}")
        self.position = position
        self.message = message


def not_supported(position: Position, what: str) -> BirdConfigError:
    """The error for a construct BIRD 1.6 accepts but Myna does not implement."""
    return BirdConfigError(position, f"{what} is {NOT_SUPPORTED}")
