"""The parser of a BIRD 1.x configuration's structure: top-level statements and protocols.

Role: ``read_bird_config(path)`` is the front door: lexer -> this parser (with the filter
language of ``FilterParser`` underneath) -> a ``BirdConfig``, or a ``BirdConfigError`` with
BIRD's ``FILE:LINE:COL message``. It is what ``myna bird -p`` runs.

It follows BIRD 1.6.8's grammar (``nest/config.Y``, ``proto/bgp/config.Y``,
``proto/static/config.Y``, ``sysdep/unix/config.Y``, ``sysdep/unix/krt.Y``,
``sysdep/linux/netlink.Y``) for the statements Calico's templates write and the options around
them, and runs the checks BIRD runs while parsing and after (``bgp_check_config``, the kernel
protocols' post-config checks, "No protocol is specified"). A statement or option BIRD 1.6
has but Myna does not implement (``protocol ospf``, ``table``, ``enable route refresh``...) is
refused with "... is not supported by Myna" at its first token, never skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.errors import BirdConfigError, Position
from bgpd.bird_config.filter_parser import FilterParser
from bgpd.bird_config.lexer import Lexer, Token, TokenKind
from bgpd.bird_config.symbols import SymbolKind
from bgpd.bird_config.values import BirdType, as_int, format_ip

_UNSUPPORTED_PROTOCOLS = ("ospf", "rip", "pipe", "bfd", "babel", "radv", "mrt")
_DEFAULT_PREFERENCES = {
    m.ProtocolType.KERNEL: 10,
    m.ProtocolType.DEVICE: 240,
    m.ProtocolType.DIRECT: 240,
    m.ProtocolType.STATIC: 200,
    m.ProtocolType.BGP: 100,
}
_PROTOCOL_CLASSES: dict[m.ProtocolType, type[m.ProtocolConfig]] = {
    m.ProtocolType.KERNEL: m.KernelProtocol,
    m.ProtocolType.DEVICE: m.DeviceProtocol,
    m.ProtocolType.DIRECT: m.DirectProtocol,
    m.ProtocolType.STATIC: m.StaticProtocol,
    m.ProtocolType.BGP: m.BgpProtocol,
}
_LIMIT_ACTIONS = {a.value: a for a in m.LimitAction}
_LOG_CATEGORIES = ("debug", "trace", "info", "remote", "warning", "error", "auth", "fatal", "bug")
_BGP_UNSUPPORTED = {
    "interface": "interface",
    "rs": "rs client",
    "startup": "startup hold time",
    "missing": "missing lladdr",
    "path": "path metric",
    "med": "med metric",
    "igp metric": "igp metric",
    "prefer": "prefer older",
    "deterministic": "deterministic med",
    "default": "default bgp_med / bgp_local_pref",
    "start": "start delay time",
    "error forget": "error forget time",
    "disable": "disable after error / cease",
    "enable": "enable route refresh / as4 / extended messages",
    "capabilities": "capabilities",
    "advertise": "advertise ipv4",
    "setkey": "setkey",
    "route": "route limit",
    "interpret": "interpret communities",
    "secondary": "secondary",
    "allow bgp_local_pref": "allow bgp_local_pref",
    "long": "long lived graceful restart",
    "check": "check link",
}


class ConfigParser(FilterParser):
    """The whole configuration (see the module docstring)."""

    def __init__(self, lexer: Lexer, printer: Callable[[str], None] | None = None) -> None:
        super().__init__(lexer, printer)
        self.config = m.BirdConfig(main_file=lexer.files[0], ipv6=lexer.ipv6)
        self._name_counters: dict[m.ProtocolType, int] = {}
        self._last_kernel: m.KernelProtocol | None = None
        self._device_defined = False

    # -- basic values ----------------------------------------------------------------------------

    def number(self) -> int:
        """``expr``: a number, ``(term)`` evaluated now, or an int constant."""
        token = self.peek()
        if token.kind is TokenKind.NUM:
            self.advance()
            return token.number()
        if token.is_("("):
            self.advance()
            expr = self.term()
            self.expect(")")
            return self.evaluate_int(expr, self.error_here)
        if token.kind is TokenKind.SYMBOL:
            self.advance()
            value = self._constant(token, BirdType.INT)
            if value is None:
                raise self.error_here("Number expected")
            return as_int(value)
        raise self.syntax_error()

    def _constant(self, token: Token, wanted: BirdType) -> object | None:
        symbol = self.symbols.find(token.text)
        if symbol is None or symbol.kind is not SymbolKind.CONSTANT:
            return None
        constant = symbol.value
        assert isinstance(constant, ast.Constant)
        return constant.value if constant.bird_type == wanted else None

    def switch(self) -> bool:
        """``bool``: a number, ``on|yes|off|no``, or nothing (on)."""
        token = self.peek()
        if token.kind is TokenKind.KEYWORD and token.text in ("on", "yes", "off", "no"):
            self.advance()
            return token.text in ("on", "yes")
        if token.kind in (TokenKind.NUM, TokenKind.SYMBOL) or token.is_("("):
            return self.number() != 0
        return True

    def address(self) -> int:
        """``ipa``: an address of the daemon's family, or an address constant."""
        token = self.peek()
        wanted = TokenKind.IPV6 if self.ipv6 else TokenKind.IPV4
        if token.kind is wanted:
            self.advance()
            return token.number()
        if token.kind is TokenKind.SYMBOL:
            self.advance()
            value = self._constant(token, BirdType.IP)
            if value is None:
                raise self.error_ahead("IP address expected")
            return as_int(value)
        raise self.syntax_error()

    def text(self) -> str:
        """``text``: a string, or a string constant."""
        token = self.peek()
        if token.kind is TokenKind.TEXT:
            self.advance()
            return str(token.value)
        if token.kind is TokenKind.SYMBOL:
            self.advance()
            value = self._constant(token, BirdType.STRING)
            if value is None:
                raise self.error_here("String expected")
            return str(value)
        raise self.syntax_error()

    def router_id(self) -> int:
        """``idval``: a number, a dotted quad, or a constant of either."""
        token = self.peek()
        if token.kind is TokenKind.NUM or token.is_("("):
            return self.number()
        if token.kind is TokenKind.IPV4:
            self.advance()
            return token.number()
        if token.kind is TokenKind.IPV6:
            self.advance()
            raise self.error_here(
                "Router IDs must be entered as hexadecimal numbers or IPv4 addresses in IPv6 "
                "version"
            )
        if token.kind is TokenKind.SYMBOL:
            self.advance()
            symbol = self.symbols.find(token.text)
            if symbol is not None and symbol.kind is SymbolKind.CONSTANT:
                constant = symbol.value
                assert isinstance(constant, ast.Constant)
                kinds = (BirdType.INT, BirdType.QUAD) + (() if self.ipv6 else (BirdType.IP,))
                if constant.bird_type in kinds:
                    return as_int(constant.value)
            raise self.error_here("Number or IPv4 address constant expected")
        raise self.syntax_error()

    def prefix(self) -> int:
        """``prefix``: ``address/length`` or ``address:netmask``, as Myna's prefix int."""
        address = self.address()
        if self.accept("/"):
            length = self.number()
            if length > self.bits:
                raise self.error_here(f"Invalid prefix length {length}")
        elif self.accept(":"):
            mask = self.address()
            length = _mask_length(mask, self.bits)
            if length < 0:
                raise self.error_here(f"Invalid netmask {format_ip(mask, self.ipv6)}")
        else:
            raise self.syntax_error()
        if address & ((1 << (self.bits - length)) - 1):
            raise self.error_here("Invalid prefix")
        return address << 8 | length

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
                raise self.error_ahead("Kernel device protocol already defined")
            self._device_defined = True
        protocol = self._new_protocol(protocol_type, start.position, template)
        self.expect("{")
        items = _ITEMS[protocol_type]
        while not self.at("}"):
            if self.accept(";"):
                continue
            if not self._generic_item(protocol) and not items(self, protocol):
                raise self.syntax_error()
            self.expect(";")
        self.advance()
        if isinstance(protocol, m.BgpProtocol) and not template:
            self._check_bgp(protocol)
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
            name, where = name_token.text, name_token.position
        else:
            name, where = self._default_name(protocol_type), at
        if source is not None:
            protocol = copy.deepcopy(source)
            protocol.inherits = source.name
            protocol.position, protocol.template = at, template
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
            protocol.table = self._table()
        elif text in ("import", "export"):
            return self._filter_item(protocol, token)
        elif text in ("mrtdump", "receive", "vrf", "router"):
            raise self.unsupported(token, f"the protocol option {text!r}")
        else:
            return False
        return True

    def _table(self) -> str:
        token = self.expect_kind(TokenKind.SYMBOL)
        symbol = self.symbols.find(token.text)
        if symbol is None or symbol.kind is not SymbolKind.TABLE:
            raise self.error_ahead("Table name expected")
        return token.text

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

    # -- protocol-specific items -----------------------------------------------------------------

    def _kernel_item(self, protocol: m.ProtocolConfig) -> bool:
        assert isinstance(protocol, m.KernelProtocol)
        token = self.peek()
        if token.is_("persist"):
            self.advance()
            protocol.persist = self.switch()
        elif token.is_("scan"):
            self.advance()
            self.expect("time")
            protocol.scan_time = self.number()
        elif token.is_("learn"):
            self.advance()
            protocol.learn = self.switch()
        elif token.is_("graceful"):
            self.advance()
            self.expect("restart")
            protocol.graceful_restart = self.switch()
        elif token.is_("merge"):
            self.advance()
            self.expect("paths")
            on = self.switch()
            limit = 16
            if self.accept("limit"):
                limit = self.number()
                if not 0 < limit <= 255:
                    raise self.error_here("Merge paths limit must be in range 1-255")
            protocol.merge_paths = limit if on else 0
        elif token.is_("kernel"):
            self.advance()
            self.expect("table")
            protocol.kernel_table = self.number()
        elif token.is_("metric"):
            self.advance()
            protocol.metric = self.number()
        elif token.is_("device"):
            raise self.unsupported(token, "device routes")
        else:
            return False
        return True

    def _device_item(self, protocol: m.ProtocolConfig) -> bool:
        assert isinstance(protocol, m.DeviceProtocol)
        token = self.peek()
        if token.is_("scan"):
            self.advance()
            self.expect("time")
            protocol.scan_time = self.number()
            return True
        if token.is_("primary"):
            raise self.unsupported(token, "primary")
        return False

    def _direct_item(self, protocol: m.ProtocolConfig) -> bool:
        assert isinstance(protocol, m.DirectProtocol)
        token = self.peek()
        if token.is_("interface"):
            self.advance()
            patterns = [self._interface_pattern()]
            while self.accept(","):
                patterns.append(self._interface_pattern())
            protocol.interfaces.append(tuple(patterns))
            return True
        if token.is_("check"):
            raise self.unsupported(token, "check link")
        return False

    def _interface_pattern(self) -> m.InterfacePattern:
        include = not self.accept("-")
        token = self.peek()
        if token.kind is TokenKind.TEXT:
            self.advance()
            following = self.peek()
            if following.kind in (TokenKind.IPV4, TokenKind.IPV6, TokenKind.SYMBOL):
                raise self.unsupported(following, "an interface pattern with an address")
            return m.InterfacePattern(str(token.value), include)
        if token.kind in (TokenKind.IPV4, TokenKind.IPV6, TokenKind.SYMBOL):
            raise self.unsupported(token, "an interface pattern by address")
        raise self.syntax_error()

    def _static_item(self, protocol: m.ProtocolConfig) -> bool:
        assert isinstance(protocol, m.StaticProtocol)
        token = self.peek()
        if token.is_("check") or token.is_("igp"):
            raise self.unsupported(token, f"the static option {token.text!r}")
        if not token.is_("route"):
            return False
        self.advance()
        prefix = self.prefix()
        kind_token = self.advance()
        route: m.StaticRoute
        if kind_token.is_("via"):
            if self.at_kind(TokenKind.TEXT):
                device = str(self.advance().value)
                route = m.StaticRoute(
                    prefix, m.RouteKind.DEVICE, device=device, position=token.position
                )
            else:
                gateway = self.address()
                if self.at("%"):
                    raise self.unsupported(self.peek(), "a gateway with an interface scope")
                route = m.StaticRoute(
                    prefix, m.RouteKind.VIA, gateway=gateway, position=token.position
                )
        elif kind_token.kind is TokenKind.KEYWORD and kind_token.text in (
            "drop", "reject", "blackhole", "unreachable", "prohibit",
        ):  # fmt: skip
            kind = {
                "drop": m.RouteKind.BLACKHOLE,
                "reject": m.RouteKind.UNREACHABLE,
                "blackhole": m.RouteKind.BLACKHOLE,
                "unreachable": m.RouteKind.UNREACHABLE,
                "prohibit": m.RouteKind.PROHIBIT,
            }[kind_token.text]
            route = m.StaticRoute(prefix, kind, position=token.position)
        elif kind_token.is_("multipath") or kind_token.is_("recursive"):
            raise self.unsupported(kind_token, f"static {kind_token.text} routes")
        else:
            raise self.syntax_error(kind_token)
        if self.at("{"):
            opening = self.advance()
            if not self.at("}"):
                raise self.unsupported(opening, "commands on a static route")
            self.advance()
        protocol.routes.append(route)
        return True

    def _bgp_item(self, protocol: m.ProtocolConfig) -> bool:
        assert isinstance(protocol, m.BgpProtocol)
        token = self.peek()
        if token.kind is not TokenKind.KEYWORD:
            return False
        handler = _BGP_ITEMS.get(token.text)
        if handler is not None:
            self.advance()
            handler(self, protocol, token)
            return True
        second = self.peek(1).text
        for key, what in _BGP_UNSUPPORTED.items():
            words = key.split()
            if words[0] == token.text and (len(words) == 1 or words[1] == second):
                raise self.unsupported(token, what)
        return False

    def _bgp_local(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if not self.at("as"):
            protocol.source_address = self.address()
        self.expect("as")
        protocol.local_as = self.number()

    def _bgp_neighbor(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if not (self.at("as") or self.at("port") or self.at(";")):
            address = self.address()
            if self.at("%"):
                raise self.unsupported(self.peek(), "a neighbor with an interface scope")
            if protocol.neighbor is not None:
                raise self.error_ahead("Only one neighbor per BGP instance is allowed")
            protocol.neighbor = address
        while True:
            if self.accept("port"):
                port = self.number()
                if not 1 <= port <= 65535:
                    raise self.error_here("Invalid port number")
                protocol.port = port
            elif self.accept("as"):
                protocol.remote_as = self.number()
            else:
                return

    def _bgp_rr(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if self.accept("client"):
            protocol.rr_client = True
            return
        if self.at("cluster"):
            self.advance()
            self.expect("id")
            protocol.rr_cluster_id = self.router_id()
            return
        raise self.syntax_error()

    def _bgp_hold(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("time")
        protocol.hold_time = self.number()

    def _bgp_keepalive(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("time")
        protocol.keepalive_time = self.number()

    def _bgp_direct(self, protocol: m.BgpProtocol, _token: Token) -> None:
        protocol.multihop = 0

    def _bgp_multihop(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if self.at(";"):
            protocol.multihop = 64
            return
        hops = self.number()
        if not 1 <= hops <= 255:
            raise self.error_here("Multihop must be in range 1-255")
        protocol.multihop = hops

    def _bgp_next(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("hop")
        if self.accept("self"):
            protocol.next_hop = m.NextHopMode.SELF
        elif self.accept("keep"):
            protocol.next_hop = m.NextHopMode.KEEP
        else:
            raise self.syntax_error()

    def _bgp_gateway(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if self.accept("direct"):
            protocol.gateway = m.GatewayMode.DIRECT
        elif self.accept("recursive"):
            protocol.gateway = m.GatewayMode.RECURSIVE
        else:
            raise self.syntax_error()

    def _bgp_source(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("address")
        protocol.source_address = self.address()

    def _bgp_connect(self, protocol: m.BgpProtocol, _token: Token) -> None:
        which = self.advance()
        if not (which.is_("delay") or which.is_("retry")):
            raise self.syntax_error(which)
        self.expect("time")
        value = self.number()
        if which.text == "delay":
            protocol.connect_delay = value
        else:
            protocol.connect_retry = value

    def _bgp_error(self, protocol: m.BgpProtocol, token: Token) -> None:
        if self.at("forget"):
            raise self.unsupported(token, "error forget time")
        self.expect("wait")
        self.expect("time")
        low = self.number()
        self.expect(",")
        protocol.error_wait = (low, self.number())

    def _bgp_password(self, protocol: m.BgpProtocol, _token: Token) -> None:
        protocol.password = self.text()

    def _bgp_passive(self, protocol: m.BgpProtocol, _token: Token) -> None:
        protocol.passive = self.switch()

    def _bgp_add(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("paths")
        if self.accept("rx"):
            protocol.add_paths = m.AddPaths.RX
        elif self.accept("tx"):
            protocol.add_paths = m.AddPaths.TX
        else:
            protocol.add_paths = m.AddPaths.ON if self.switch() else m.AddPaths.OFF

    def _bgp_allow(self, protocol: m.BgpProtocol, token: Token) -> None:
        if self.at("bgp_local_pref"):
            raise self.unsupported(token, "allow bgp_local_pref")
        self.expect("local")
        self.expect("as")
        protocol.allow_local_as = -1 if self.at(";") else self.number()

    def _bgp_graceful(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("restart")
        if self.accept("time"):
            protocol.graceful_restart_time = self.number()
        elif self.accept("aware"):
            protocol.graceful_restart = m.GracefulRestart.AWARE
        else:
            on = self.switch()
            protocol.graceful_restart = m.GracefulRestart.ON if on else m.GracefulRestart.OFF

    def _bgp_ttl(self, protocol: m.BgpProtocol, _token: Token) -> None:
        self.expect("security")
        protocol.ttl_security = self.switch()

    def _bgp_bfd(self, protocol: m.BgpProtocol, _token: Token) -> None:
        if self.accept("graceful"):
            protocol.bfd = m.BfdMode.GRACEFUL
        else:
            protocol.bfd = m.BfdMode.ON if self.switch() else m.BfdMode.OFF

    def _bgp_igp(self, protocol: m.BgpProtocol, token: Token) -> None:
        if self.at("metric"):
            raise self.unsupported(token, "igp metric")
        self.expect("table")
        protocol.igp_table = self._table()

    def _check_bgp(self, protocol: m.BgpProtocol) -> None:
        """BIRD's ``bgp_check_config``, placed at the protocol's closing brace."""

        def fail(message: str) -> BirdConfigError:
            return self.error_here(message)

        if not protocol.local_as:
            raise fail("Local AS number must be set")
        if protocol.neighbor is None or protocol.neighbor == 0:
            raise fail("Neighbor must be configured")
        if not protocol.remote_as:
            raise fail("Remote AS number must be set")
        link_local = self.ipv6 and protocol.neighbor >> 118 == 0x3FA
        if link_local:
            raise fail("Link-local neighbor address requires specified interface")
        if not protocol.internal and protocol.rr_client:
            raise fail("Only internal neighbor can be RR client")
        multihop = protocol.effective_multihop()
        if multihop and protocol.effective_gateway() is m.GatewayMode.DIRECT:
            raise fail("Multihop BGP cannot use direct gateway mode")
        source_link_local = (
            self.ipv6
            and protocol.source_address is not None
            and protocol.source_address >> 118 == 0x3FA
        )
        if multihop and source_link_local:
            raise fail("Multihop BGP cannot be used with link-local addresses")
        if multihop and protocol.bfd is not m.BfdMode.OFF and not protocol.source_address:
            raise fail("Multihop BGP with BFD requires specified source address")

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


def _mask_length(mask: int, bits: int) -> int:
    """BIRD's ``ipa_masklen``: the length of a contiguous netmask, -1 if it is not one."""
    inverted = ~mask & ((1 << bits) - 1)
    if inverted & (inverted + 1):
        return -1
    return bits - inverted.bit_length()


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
_ITEMS: dict[m.ProtocolType, Callable[[ConfigParser, m.ProtocolConfig], bool]] = {
    m.ProtocolType.KERNEL: ConfigParser._kernel_item,
    m.ProtocolType.DEVICE: ConfigParser._device_item,
    m.ProtocolType.DIRECT: ConfigParser._direct_item,
    m.ProtocolType.STATIC: ConfigParser._static_item,
    m.ProtocolType.BGP: ConfigParser._bgp_item,
}
_BGP_ITEMS: dict[str, Callable[[ConfigParser, m.BgpProtocol, Token], None]] = {
    "local": ConfigParser._bgp_local,
    "neighbor": ConfigParser._bgp_neighbor,
    "rr": ConfigParser._bgp_rr,
    "hold": ConfigParser._bgp_hold,
    "keepalive": ConfigParser._bgp_keepalive,
    "direct": ConfigParser._bgp_direct,
    "multihop": ConfigParser._bgp_multihop,
    "next": ConfigParser._bgp_next,
    "gateway": ConfigParser._bgp_gateway,
    "source": ConfigParser._bgp_source,
    "connect": ConfigParser._bgp_connect,
    "error": ConfigParser._bgp_error,
    "password": ConfigParser._bgp_password,
    "passive": ConfigParser._bgp_passive,
    "add": ConfigParser._bgp_add,
    "allow": ConfigParser._bgp_allow,
    "graceful": ConfigParser._bgp_graceful,
    "ttl": ConfigParser._bgp_ttl,
    "bfd": ConfigParser._bgp_bfd,
    "igp": ConfigParser._bgp_igp,
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
