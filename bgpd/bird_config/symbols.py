"""Names in a BIRD configuration: what each symbol is, and BIRD's scoping rules.

Role: the parser asks ``SymbolTable.find`` what a name means (a constant, variable, function,
filter, protocol, template or routing table) and defines names with ``define``; BIRD's
errors for misuse ("Symbol already defined") come from here.

Scoping (BIRD's ``cf_push_scope``/``cf_define_symbol``): a filter or function body opens a
scope for its parameters and local variables; a name is looked up innermost first among the
open scopes; defining a name already defined in the current scope is an error, while defining
one of an outer scope shadows it until the scope closes. The table ``master`` exists from the
start (``rt_preconfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bgpd.bird_config.errors import BirdConfigError, Position


class SymbolKind(Enum):
    """BIRD's symbol classes (``SYM_*``), as ``cf_symbol_class_name`` names them."""

    CONSTANT = "constant"
    VARIABLE = "variable"
    FUNCTION = "function"
    FILTER = "filter"
    PROTOCOL = "protocol"
    TEMPLATE = "protocol template"
    TABLE = "routing table"


@dataclass(slots=True)
class Symbol:
    """A defined name; ``value`` is what it names (Constant, Variable, FunctionDef...)."""

    name: str
    kind: SymbolKind
    value: object
    position: Position
    scope: int = 0


@dataclass
class SymbolTable:
    """Open scopes, innermost last; the first is the global one."""

    scopes: list[dict[str, Symbol]] = field(default_factory=lambda: [{}])

    def __post_init__(self) -> None:
        self.scopes[0]["master"] = Symbol(
            "master", SymbolKind.TABLE, "master", Position("", 0, 0), 0
        )

    def find(self, name: str) -> Symbol | None:
        """The symbol ``name`` means here, None if it means nothing yet."""
        for scope in reversed(self.scopes):
            symbol = scope.get(name)
            if symbol is not None:
                return symbol
        return None

    def define(self, name: str, kind: SymbolKind, value: object, at: Position) -> Symbol:
        """Give ``name`` a meaning in the current scope (``cf_define_symbol``)."""
        current = self.scopes[-1]
        if name in current:
            raise BirdConfigError(at, "Symbol already defined")
        symbol = Symbol(name, kind, value, at, len(self.scopes) - 1)
        current[name] = symbol
        return symbol

    def push(self) -> None:
        """Open a scope (a filter or function body)."""
        self.scopes.append({})

    def pop(self) -> None:
        """Close the innermost scope; its names are forgotten."""
        self.scopes.pop()

    def global_symbols(self) -> dict[str, Symbol]:
        """Every name defined at the top level."""
        return self.scopes[0]
