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

Why Python source, compiled once: a filter becomes one Python function (functions inlined,
constants folded into masks and sets, each attribute read once into a local), handed to
``compile()``; a tree of closures would pay a call per AST node per route. Per route, that
function costs a few attribute reads and integer compares; on top, ``prefix_classes``
memoises its verdicts per (prefix class, source, attribute set, priority) when the filter
reads the prefix only through constant tests, as Calico's do, so a table of routes sharing
a few attribute sets costs one classification per prefix and one dict probe per route
(``bench/filter_bench.py``: within the hand-written ``rib.calico_policy``'s cost).
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bgpd.bird_config import as_paths, runtime, runtime_ops
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.bgp_export import BgpExportContext, export_view
from bgpd.bird_config.errors import Position
from bgpd.bird_config.filter_codegen import FilterMode
from bgpd.bird_config.filter_commands import FIELDS, INITIAL, ProgramGenerator
from bgpd.bird_config.prefix_classes import analyse, memoised
from bgpd.bird_config.value_sets import list_add, list_delete
from bgpd.bird_config.values import BirdType, format_value
from rib.policy import Action, PolicyCheck, Verdict
from rib.route import Origin
from rib.run_split import whole_run, with_splitter
from speaker.wire_codes import Family

LOG = logging.getLogger("myna.bird_filter")
# the generated code's name for the route's prefix (``net``)
_PREFIX_READ = re.compile(r"\bprefix\b")
_LOG_BUFFER = 1024  # BIRD's LOG_BUFFER_SIZE

# --- the generated module ---------------------------------------------------------------------


def _format(value: object, type_code: int, ipv6: bool = False) -> str:
    return format_value(BirdType(type_code), value, ipv6)


def _namespace(ipv6: bool, printer: Callable[[str], None]) -> dict[str, Any]:
    def print_buffer(buffer: list[str]) -> None:
        text = "".join(buffer)
        if len(text) >= _LOG_BUFFER:
            # BIRD's log line is a 1024-byte buffer: a full one is cut and marked
            text = text[: _LOG_BUFFER - 100] + " ... <too long>"
        printer(text)
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
        "_list_add": list_add,
        "_list_delete": list_delete,
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


def _compile(source: str, name: str) -> Any:
    """Python's compile, without its warnings about the generated code reaching the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(source, name, "exec")


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

    def log(self, line: str) -> None:
        """A line BIRD logs while parsing (a warning), in order with what ``print`` writes."""
        self._print(line)

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
    # whether the verdict can depend on the prefix (``net``): when not, the RIB asks once per
    # attribute set instead of once per prefix
    reads_prefix: bool = True


def compile_filter(
    program: ast.FilterProgram,
    *,
    name: str = "",
    mode: FilterMode = FilterMode.EXPORT,
    log: Callable[[str], None] = _log_print,
    file_of: Callable[[Position], str] | None = None,
    bgp_export: BgpExportContext | None = None,
    memoise: bool = True,
) -> CompiledFilter:
    """``program`` as a ``PolicyCheck`` (see the module docstring).

    ``bgp_export``: the filter is a BGP protocol's export filter towards that session; it
    then reads BIRD's export view of each route and gives the complete set to send
    (``bgp_export``). ``memoise``: run it once per prefix class where it reads the prefix
    only through constant tests (``prefix_classes``); off, every call runs the code.
    """
    family = Family.IPV6_UNICAST if program.ipv6 else Family.IPV4_UNICAST
    label = name or program.name
    view = export_view(bgp_export, program.ipv6) if bgp_export is not None else None
    if program.kind is not ast.FilterKind.FILTER or program.filter is None:
        return _fixed(program, label, family, view)
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
    source, namespace = _assemble(generator, label, view is not None)
    namespace.update(generator.constants)
    namespace["_print"] = _namespace(program.ipv6, log)["_print"]
    namespace["_view"] = view
    exec(_compile(source, f"<bird filter {label}>"), namespace)
    check: PolicyCheck = namespace["_filter"]
    reads_prefix = any(_PREFIX_READ.search(line) for line in generator.lines + generator.prelude)
    classes = analyse(source, namespace) if memoise else None
    if not reads_prefix and not generator.prints:
        # one answer for every prefix of a run; a filter that prints is run for each (BIRD
        # prints once per route)
        check = with_splitter(check, whole_run)
    if classes is not None:
        check = memoised(
            check,
            classes,
            family,
            runtime.WRONG_FAMILY,
            runtime.ERROR_VERDICT,
            runtime.NO_DECISION,
        )
    return CompiledFilter(check, source, reads_prefix)


def _fixed(
    program: ast.FilterProgram,
    label: str,
    family: Family,
    view: Callable[[Any], Any] | None,
) -> CompiledFilter:
    """``all`` or ``none``: no code, but a BGP export still goes through BIRD's view."""
    accept = program.kind is ast.FilterKind.ALL
    reason = f"{label}: {program.kind.value}"
    verdict = Verdict(Action.ACCEPT if accept else Action.REJECT, reason=reason)
    if accept and view is not None:
        export = view

        def exported(prefix: int, fam: Family, route: Any, priority: int | None = None) -> Verdict:
            if fam is not family:
                return runtime.WRONG_FAMILY
            seen = export(route)
            if seen is None:
                return runtime.REFUSED_BY_PROTOCOL
            attrs = seen[0]
            return verdict if attrs is route.attrs else verdict._replace(attrs=attrs)

        # Neither reads the prefix: one answer per run, as a filter that never reads ``net``
        # (a BGP peer's ``export all`` was asked for every prefix: 12x slower propagation).
        return CompiledFilter(
            with_splitter(exported, whole_run), "# all, through BIRD's BGP export view", False
        )

    def fixed(prefix: int, fam: Family, route: Any, priority: int | None = None) -> Verdict:
        return verdict if fam is family else runtime.WRONG_FAMILY

    return CompiledFilter(with_splitter(fixed, whole_run), f"# {program.kind.value}", False)


def _assemble(
    generator: ProgramGenerator, label: str, exported: bool
) -> tuple[str, dict[str, Any]]:
    written = sorted(generator.attrs_written & set(FIELDS), key=list(FIELDS).index)
    fields = tuple(FIELDS[name] for name in written)
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
            "_REFUSED": runtime.REFUSED_BY_PROTOCOL,
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
    plain = values == "None" and priority == preference == tunnel == "None" and not exported

    def accept(site: str) -> str:
        if exported:
            return (
                f"_vm.accept({site}, attrs, {values}, {priority}, {preference}, {tunnel}, "
                "route.attrs)"
            )
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
    if exported:
        init.extend(
            ("_v = _view(route)", "if _v is None:", "    return _REFUSED", "attrs, bgp = _v")
        )
    elif needs_bgp:
        init.append("bgp = src.origin is _ORIGIN_BGP")
    # the route's facts are already at hand in f_ when the filter reads any
    facts_at_hand = generator.uses_facts or generator.uses_preference
    init.extend(
        f"a_{n} = "
        + (INITIAL[n].replace("_route_facts(src)", "f_") if facts_at_hand else INITIAL[n])
        for n in sorted(used)
    )
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
