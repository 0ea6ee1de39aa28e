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


FunctionKeys = dict[int, tuple[ast.FunctionDef, object]]
"""Keys of called functions already walked, by ``id`` (the function kept, so an id reused
after it is gone cannot match): ``filter_key``'s ``functions``. A kept key stays right only
while its function is not changed: the parser finishes a ``FunctionDef`` before anything keys
it, and nothing changes one after (a change would need a new table)."""

_FIELDS: dict[type, tuple[str, ...]] = {}  # a node class's fields that count, in order


def filter_key(
    program: ast.FilterProgram, functions: FunctionKeys | None = None
) -> tuple[object, ...]:
    """A hashable value equal for two programs exactly when BIRD's ``filter_same`` holds.

    ``functions``: keys of functions walked before, to share between calls. Calico writes one
    inline filter per peer, each calling ``calico_export_to_bgp_peers``; walking that function
    again for every peer took about 0.5 ms of each session's coming up (``Policies`` keeps
    one table until a reload retargets it). A function's key depends on nothing but the
    function.
    """
    if program.filter is None:
        return (program.kind.value, program.ipv6)
    memo: FunctionKeys = {} if functions is None else functions
    definition = program.filter
    return (
        program.kind.value,
        program.ipv6,
        _key(definition.locals, memo),
        _key(definition.body, memo),
    )


def _key(value: Any, memo: FunctionKeys) -> Any:
    """``value`` with positions and identities taken out (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, Enum)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_key(item, memo) for item in value)
    fields = _FIELDS.get(type(value))
    if fields is not None:  # a node seen before: the common case, without the checks below
        return (type(value).__name__, *(_key(getattr(value, name), memo) for name in fields))
    if isinstance(value, ast.FunctionDef):
        # Calico's export function is called from every peer's filter: key it once.
        known = memo.get(id(value))
        if known is None or known[0] is not value:
            known = memo[id(value)] = (
                value,
                (
                    "function",
                    value.name,
                    _key(value.params, memo),
                    _key(value.locals, memo),
                    _key(value.body, memo),
                ),
            )
        return known[1]
    if isinstance(value, ast.FilterDef):
        return ("filter", _key(value.locals, memo), _key(value.body, memo))
    if isinstance(value, TreeSet):
        return ("set", value.item_type, _key(value.items, memo))
    if isinstance(value, PrefixPatternSet):
        return ("prefix set", value.bits, tuple(sorted(value.patterns, key=repr)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _IGNORED)
        return _key(value, memo)
    if isinstance(value, (frozenset, set)):
        return frozenset(_key(item, memo) for item in value)
    return value
