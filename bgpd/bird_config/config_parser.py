"""The parser of a BIRD 1.x configuration's structure: top-level statements and protocols.

Role: ``read_bird_config(path)`` is the front door: lexer -> this parser (with the filter
language of ``FilterParser`` underneath) -> a ``BirdConfig``, or a ``BirdConfigError`` with
BIRD's ``FILE:LINE:COL message``. It is what ``myna bird -p`` runs.

It follows BIRD 1.6.8's grammar (``nest/config.Y``, ``proto/bgp/config.Y``,
``proto/static/config.Y``, ``proto/bfd/config.Y`` in ``bfd_items``, ``sysdep/unix/config.Y``,
``sysdep/unix/krt.Y``, ``sysdep/linux/netlink.Y``) for the statements Calico's templates write
and the options around them, and runs the checks BIRD runs while parsing and after
(``bgp_check_config``, the kernel protocols' post-config checks, "No protocol is specified").
A statement or option BIRD 1.6 has but Myna does not implement (``protocol ospf``, ``table``,
``enable route refresh``...) is refused with "... is not supported by Myna" at its first
token, never skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.bfd_items import BfdItemParser
from bgpd.bird_config.errors import BirdConfigError, Position
from bgpd.bird_config.lexer import Lexer, Token, TokenKind
from bgpd.bird_config.symbols import SymbolKind

_UNSUPPORTED_PROTOCOLS = ("ospf", "rip", "pipe", "babel", "radv", "mrt")
_DEFAULT_PREFERENCES = {
    m.ProtocolType.KERNEL: 10,
    m.ProtocolType.DEVICE: 240,
    m.ProtocolType.DIRECT: 240,
    m.ProtocolType.STATIC: 200,
    m.ProtocolType.BGP: 100,
    m.ProtocolType.BFD: 0,
}
_PROTOCOL_CLASSES: dict[m.ProtocolType, type[m.ProtocolConfig]] = {
    m.ProtocolType.KERNEL: m.KernelProtocol,
    m.ProtocolType.DEVICE: m.DeviceProtocol,
    m.ProtocolType.DIRECT: m.DirectProtocol,
    m.ProtocolType.STATIC: m.StaticProtocol,
    m.ProtocolType.BGP: m.BgpProtocol,
    m.ProtocolType.BFD: m.BfdProtocol,
}
_LIMIT_ACTIONS = {a.value: a for a in m.LimitAction}
_LOG_CATEGORIES = ("debug", "trace", "info", "remote", "warning", "error", "auth", "fatal", "bug")


class ConfigParser(BfdItemParser):
    """The whole configuration (see the module docstring)."""

    def __init__(self, lexer: Lexer, printer: Callable[[str], None] | None = None) -> None:
        super().__init__(lexer, printer)
        self.config = m.BirdConfig(main_file=lexer.files[0], ipv6=lexer.ipv6)
        self._name_counters: dict[m.ProtocolType, int] = {}
        self._last_kernel: m.KernelProtocol | None = None
        self._device_defined = False

    # -- the file ----------------------------------------------------------------------------

    def parse(self) -> m.BirdConfig:
        """Read everything; the checks BIRD makes at the end of the file run last."""
        while not self.at_kind(TokenKind.END):
            self._statement()
        self._postconfig()
        config = self.config
        config.files = list(self.lexer.files)
        config.printed = self.printed
        return config

    def _statement(self) -> None:
        token = self.peek()
        if token.is_(";"):
            self.advance()
            return
        handler = _STATEMENTS.get(token.text) if token.kind is TokenKind.KEYWORD else None
        if handler is None:
            raise self.syntax_error()
        handler(self, token)

    def _definition(self, _token: Token) -> None:
        self.expect("define")
        name = self.expect_kind(TokenKind.SYMBOL)
        self.expect("=")
        expr = self.term()
        self.expect(";")
        result = self.evaluate(expr)
        if result is None:
            raise self.error_here("Runtime error")
        bird_type, value = result
        constant = ast.Constant(name.position, bird_type, value, indirect=True)
        self.symbols.define(name.text, SymbolKind.CONSTANT, constant, name.position)
        self.config.constants[name.text] = (bird_type, value)

    def _router(self, token: Token) -> None:
        self.expect("router")
        self.expect("id")
        if self.at("from"):
            raise self.unsupported(token, "router id from")
        self.config.router_id = self.router_id()
        self.expect(";")

    def _listen(self, _token: Token) -> None:
        self.expect("listen")
        self.expect("bgp")
        while not self.at(";"):
            option = self.peek()
            if self.accept("address"):
                self.config.listen_address = self.address()
            elif self.accept("port"):
                self.config.listen_port = self.number()
            elif option.is_("v6only") or option.is_("dual"):
                raise self.unsupported(option, f"listen bgp {option.text}")
            else:
                raise self.syntax_error()
        self.advance()

    def _graceful(self, _token: Token) -> None:
        self.expect("graceful")
        self.expect("restart")
        self.expect("wait")
        self.config.graceful_restart_wait = self.number()
        self.expect(";")

    def _debug(self, token: Token) -> None:
        self.expect("debug")
        if self.accept("protocols"):
            self.config.debug_protocols = self._debug_mask()
            self.expect(";")
            return
        following = self.peek()
        if following.is_("commands") or following.is_("latency"):
            raise self.unsupported(token, f"debug {following.text}")
        raise self.syntax_error()

    def _debug_mask(self) -> tuple[str, ...]:
        if self.accept("all"):
            return m.DEBUG_FLAGS
        if self.accept("off"):
            return ()
        self.expect("{")
        flags = [self._debug_flag()]
        while self.accept(","):
            flags.append(self._debug_flag())
        self.expect("}")
        return tuple(f for f in m.DEBUG_FLAGS if f in flags)

    def _debug_flag(self) -> str:
        token = self.advance()
        if token.kind is TokenKind.KEYWORD and token.text in m.DEBUG_FLAGS:
            return token.text
        raise self.syntax_error(token)

    def _log(self, _token: Token) -> None:
        self.expect("log")
        if self.accept("syslog"):
            target, path = "syslog", self.text() if self.accept("name") else None
        elif self.accept("stderr"):
            target, path = "stderr", None
        else:
            target, path = "file", self.text()
            try:  # BIRD opens (creates) the file while reading the configuration
                with open(path, "a"):
                    pass
            except OSError as exc:
                raise self.error_here(f"Unable to open log file `{path}': {exc.strerror}") from None
        if self.accept("all"):
            categories: tuple[str, ...] = _LOG_CATEGORIES
        else:
            self.expect("{")
            found = [self._log_category()]
            while self.accept(","):
                found.append(self._log_category())
            self.expect("}")
            categories = tuple(c for c in _LOG_CATEGORIES if c in found)
        self.expect(";")
        self.config.logs.append(m.LogTarget(target, path, categories))

    def _log_category(self) -> str:
        token = self.advance()
        if token.kind is TokenKind.KEYWORD and token.text in _LOG_CATEGORIES:
            return token.text
        raise self.syntax_error(token)

    def _timeformat(self, _token: Token) -> None:
        self.expect("timeformat")
        which = self.advance()
        if which.kind is not TokenKind.KEYWORD or which.text not in (
            "route", "protocol", "base", "log",
        ):  # fmt: skip
            raise self.syntax_error(which)
        if self.at_kind(TokenKind.TEXT):
            spec = str(self.advance().value)
            if not self.at(";"):
                limit = self.number()
                spec = f"{spec} {limit} {self.expect_kind(TokenKind.TEXT).value}"
        elif self.at("iso") or self.at("old"):
            style = self.advance().text
            length = self.advance()
            if not (length.is_("short") or length.is_("long")):
                raise self.syntax_error(length)
            spec = f"{style} {length.text}"
        else:
            raise self.syntax_error()
        self.expect(";")
        self.config.timeformats[which.text] = spec

    def _eval(self, _token: Token) -> None:
        self.expect("eval")
        expr = self.term()
        self.evaluate_int(expr, self.error_ahead)

    def _function(self, _token: Token) -> None:
        function = self.function_definition()
        self.config.functions[function.name] = function

    def _filter(self, _token: Token) -> None:
        definition = self.filter_definition()
        self.config.filters[definition.name] = definition

    def _unsupported_statement(self, token: Token) -> None:
        raise self.unsupported(token, f"the statement {token.text!r}")

    # -- protocols -----------------------------------------------------------------------------

    def _protocol(self, start: Token) -> None:
        self.advance()
        template = start.text == "template"
        type_token = self.advance()
        if type_token.kind is TokenKind.KEYWORD and type_token.text in _UNSUPPORTED_PROTOCOLS:
            raise self.unsupported(type_token, f"protocol {type_token.text}")
        try:
            protocol_type = m.ProtocolType(type_token.text)
        except ValueError:
            raise self.syntax_error(type_token) from None
        if type_token.kind is not TokenKind.KEYWORD:
            raise self.syntax_error(type_token)
        if protocol_type is m.ProtocolType.DEVICE:
            if self._device_defined:
                raise self.error_here("Kernel device protocol already defined")
            self._device_defined = True
        protocol = self._new_protocol(protocol_type, start.position, template)
        self.expect("{")
        while not self.at("}"):
            if self.accept(";"):
                continue
            self.item_closed = False
            if not self._generic_item(protocol) and not self.protocol_item(protocol):
                raise self.syntax_error()
            if not self.item_closed:  # options checked after their ";" read it themselves
                self.expect(";")
        self.advance()
        if isinstance(protocol, m.BgpProtocol) and not template:
            self.check_bgp(protocol)
        if template:
            self.config.templates[protocol.name] = protocol
        else:
            self.config.protocols.append(protocol)
        if isinstance(protocol, m.KernelProtocol):
            self._last_kernel = protocol

    def _new_protocol(
        self, protocol_type: m.ProtocolType, at: Position, template: bool
    ) -> m.ProtocolConfig:
        protocol = _PROTOCOL_CLASSES[protocol_type](
            type=protocol_type, name="", position=at, template=template,
            preference=_DEFAULT_PREFERENCES[protocol_type],
            debug=self.config.debug_protocols,
        )  # fmt: skip
        name_token: Token | None = None
        if self.at_kind(TokenKind.SYMBOL):
            name_token = self.advance()
        source: m.ProtocolConfig | None = None
        if self.accept("from"):
            origin = self.expect_kind(TokenKind.SYMBOL)
            symbol = self.symbols.find(origin.text)
            if symbol is None or symbol.kind not in (SymbolKind.TEMPLATE, SymbolKind.PROTOCOL):
                raise self.error_here("Template or protocol name expected")
            source = symbol.value  # type: ignore[assignment]
            assert isinstance(source, m.ProtocolConfig)
            if source.type is not protocol_type:
                raise self.error_here("Can't copy configuration from a different protocol type")
        if name_token is not None:
            # BIRD defines the name once it has read the token after it
            name, where = name_token.text, self.peek().position
        else:
            name, where = self._default_name(protocol_type), at
        if source is not None:
            protocol = copy.deepcopy(source)
            protocol.inherits = source.name
            protocol.position, protocol.template = at, template
            if isinstance(protocol, m.BfdProtocol):  # BIRD's bfd_copy_config: generic part only
                protocol.interfaces, protocol.neighbors = [], []
                protocol.multihop_block = None
        protocol.name = name
        kind = SymbolKind.TEMPLATE if template else SymbolKind.PROTOCOL
        self.symbols.define(name, kind, protocol, where)
        return protocol

    def _default_name(self, protocol_type: m.ProtocolType) -> str:
        while True:
            count = self._name_counters.get(protocol_type, 0) + 1
            self._name_counters[protocol_type] = count
            name = f"{protocol_type.value}{count}"
            if self.symbols.find(name) is None:
                return name

    def _generic_item(self, protocol: m.ProtocolConfig) -> bool:
        token = self.peek()
        if token.kind is not TokenKind.KEYWORD:
            return False
        text = token.text
        if text == "preference":
            self.advance()
            value = self.number()
            if value > 0xFFFF:
                raise self.error_here("Invalid preference")
            protocol.preference = value
        elif text == "disabled":
            self.advance()
            protocol.disabled = self.switch()
        elif text == "debug":
            self.advance()
            protocol.debug = self._debug_mask()
        elif text == "description":
            self.advance()
            protocol.description = self.text()
        elif text == "table":
            self.advance()
            protocol.table = self.table_name()
        elif text in ("import", "export"):
            return self._filter_item(protocol, token)
        elif text in ("mrtdump", "receive", "vrf", "router"):
            raise self.unsupported(token, f"the protocol option {text!r}")
        else:
            return False
        return True

    def _filter_item(self, protocol: m.ProtocolConfig, token: Token) -> bool:
        self.advance()
        direction = token.text
        if self.accept("limit"):
            if direction == "export":
                raise self.unsupported(token, "export limit")
            protocol.import_limit = self._limit()
            return True
        if self.at("keep"):
            raise self.unsupported(token, "import keep filtered")
        program = self._imexport()
        if direction == "import":
            protocol.import_filter = program
        else:
            protocol.export_filter = program
        return True

    def _imexport(self) -> ast.FilterProgram:
        if self.accept("all"):
            return ast.FilterProgram(ast.FilterKind.ALL, None, self.ipv6)
        if self.accept("none"):
            return ast.FilterProgram(ast.FilterKind.NONE, None, self.ipv6)
        if self.at("where"):
            return ast.FilterProgram(ast.FilterKind.FILTER, self.where_filter(), self.ipv6)
        self.expect("filter")
        return ast.FilterProgram(ast.FilterKind.FILTER, self.filter_reference(), self.ipv6)

    def _limit(self) -> m.Limit | None:
        if self.accept("off"):
            return None
        limit = self.number()
        action = m.LimitAction.DISABLE
        if self.accept("action"):
            token = self.advance()
            found = _LIMIT_ACTIONS.get(token.text) if token.kind is TokenKind.KEYWORD else None
            if found is None:
                raise self.syntax_error(token)
            action = found
        return m.Limit(limit, action)

    # -- after the file ------------------------------------------------------------------------

    def _postconfig(self) -> None:
        # BIRD checks these once the file is read: its position is then line 1, where the
        # end-of-file handling left the counter.
        at = self.peek().position
        kernels = [p for p in self.config.protocols if isinstance(p, m.KernelProtocol)]
        attached: dict[tuple[str, int | None], str] = {}
        for kernel in kernels:
            assert self._last_kernel is not None
            if kernel.scan_time != self._last_kernel.scan_time:
                raise BirdConfigError(
                    at, "All kernel syncers must use the same table scan interval"
                )
            key = (kernel.table, None)
            if key in attached:
                raise BirdConfigError(
                    at, f"Kernel syncer ({attached[key]}) already attached to table {kernel.table}"
                )
            attached[key] = kernel.name
        if not self.config.protocols:
            raise BirdConfigError(at, "No protocol is specified in the config file")
        if self.ipv6 and self.config.router_id is None:
            raise BirdConfigError(at, "Router ID must be configured manually on IPv6 routers")


_STATEMENTS: dict[str, Callable[[ConfigParser, Token], None]] = {
    "define": ConfigParser._definition,
    "router": ConfigParser._router,
    "listen": ConfigParser._listen,
    "graceful": ConfigParser._graceful,
    "debug": ConfigParser._debug,
    "log": ConfigParser._log,
    "timeformat": ConfigParser._timeformat,
    "eval": ConfigParser._eval,
    "function": ConfigParser._function,
    "filter": ConfigParser._filter,
    "protocol": ConfigParser._protocol,
    "template": ConfigParser._protocol,
    "table": ConfigParser._unsupported_statement,
    "roa": ConfigParser._unsupported_statement,
    "mrtdump": ConfigParser._unsupported_statement,
    "watchdog": ConfigParser._unsupported_statement,
}


def read_bird_config(
    path: str,
    *,
    ipv6: bool = False,
    text: str | None = None,
    printer: Callable[[str], None] | None = None,
) -> m.BirdConfig:
    """Read a BIRD 1.x configuration (bird6's language with ``ipv6``); BirdConfigError if bad.

    ``printer`` gets each line parse-time ``print``/``eval`` writes, at once (BIRD logs them
    while it reads, before any error).
    """
    lexer = Lexer(path, ipv6=ipv6, text=text)
    return ConfigParser(lexer, printer).parse()
