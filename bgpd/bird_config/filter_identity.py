"""BIRD's ``filter_same``: whether two filters, read from two versions of a file, are one filter.

Role: a reload (SIGHUP, ``configure``) reads the file again into new objects; the reload plan
(``bgpd.reload_plan``) must tell a filter that changed from one that was merely read again or
moved (a line added above it shifts every position). BIRD 1.6 compares the instruction trees
(``filter/filter.c``: ``filter_same`` -> ``i_same``), following calls into the called
function's body, never positions nor the filter's name. ``filter_key`` gives the same verdict
as a hashable value: two programs are the same filter when their keys are equal.

The key walks the parsed tree (``filter_ast``): every node becomes its class name and its
fields, without ``position`` (where it was written), ``serial`` (the variable's number in the
file, which an added function shifts) and ``source_text``; a called ``FunctionDef`` becomes
its name, parameters, locals and body (BIRD's ``i_same`` of ``P('c','a')`` compares the
callee too, so editing ``calico_aggr`` changes every filter that calls it). Sets become their
items. A value of a type this module does not know stays itself, compared with ``==``: at
worst a filter looks changed when it is not (a restart too many), never the reverse.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.prefix_sets import PrefixPatternSet
from bgpd.bird_config.value_sets import TreeSet

_IGNORED = frozenset({"position", "serial", "source_text"})


def filter_key(program: ast.FilterProgram) -> tuple[object, ...]:
    """A hashable value equal for two programs exactly when BIRD's ``filter_same`` holds."""
    if program.filter is None:
        return (program.kind.value, program.ipv6)
    memo: dict[int, object] = {}
    definition = program.filter
    return (
        program.kind.value,
        program.ipv6,
        _key(definition.locals, memo),
        _key(definition.body, memo),
    )


def _key(value: Any, memo: dict[int, object]) -> Any:
    """``value`` with positions and identities taken out (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, Enum)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_key(item, memo) for item in value)
    if isinstance(value, ast.FunctionDef):
        # Calico's export function is called from every peer's filter: key it once per walk.
        known = memo.get(id(value))
        if known is None:
            known = memo[id(value)] = (
                "function",
                value.name,
                _key(value.params, memo),
                _key(value.locals, memo),
                _key(value.body, memo),
            )
        return known
    if isinstance(value, ast.FilterDef):
        return ("filter", _key(value.locals, memo), _key(value.body, memo))
    if isinstance(value, TreeSet):
        return ("set", value.item_type, _key(value.items, memo))
    if isinstance(value, PrefixPatternSet):
        return ("prefix set", value.bits, tuple(sorted(value.patterns, key=repr)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            *(
                _key(getattr(value, f.name), memo)
                for f in dataclasses.fields(value)
                if f.name not in _IGNORED
            ),
        )
    if isinstance(value, (frozenset, set)):
        return frozenset(_key(item, memo) for item in value)
    return value
