"""The options inside ``protocol kernel|device|direct|static|bgp { ... }``, and basic values.

Role: the layer of the configuration parser that reads one protocol-specific option
(``learn;``, ``route 10.0.0.0/26 blackhole;``, ``neighbor 10.0.0.1 as 64512;``...) into the
protocol's ``config_model`` dataclass, and the numbers, switches, addresses and prefixes
options take (BIRD's ``expr``, ``bool``, ``ipa``, ``text``, ``idval``, ``prefix``).
``ConfigParser`` frames the protocols and reads the generic options (``import``,
``export``, ``preference``...).

An option BIRD 1.6 has but Myna does not implement is refused by name ("... is not supported
by Myna"); ``check_bgp`` is BIRD's ``bgp_check_config``.
"""

from __future__ import annotations

from collections.abc import Callable

from bgpd.bird_config import config_model as m
from bgpd.bird_config import filter_ast as ast
from bgpd.bird_config.errors import BirdConfigError
from bgpd.bird_config.filter_parser import FilterParser
from bgpd.bird_config.lexer import Token, TokenKind
from bgpd.bird_config.symbols import SymbolKind
from bgpd.bird_config.values import BirdType, as_int, format_ip

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


class ProtocolItemParser(FilterParser):
    """Protocol options and the values they take (see the module docstring)."""

    item_closed = False  # the option being read has read its ";" already

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

    def table_name(self) -> str:
        """``rtable``: a routing table's name (only ``master`` exists in Myna's files)."""
        token = self.expect_kind(TokenKind.SYMBOL)
        symbol = self.symbols.find(token.text)
        if symbol is None or symbol.kind is not SymbolKind.TABLE:
            raise self.error_here("Table name expected")
        return token.text

    def close_item(self) -> None:
        """Read the option's ``;`` now (BIRD checks some options only after it)."""
        self.expect(";")
        self.item_closed = True

    def protocol_item(self, protocol: m.ProtocolConfig) -> bool:
        """Read one option of ``protocol``'s type; False when the next token starts none."""
        return _ITEMS[protocol.type](self, protocol)

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
            self.advance()
            self.expect("routes")
            protocol.device_routes = self.switch()
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
        address: int | None = None
        if not (self.at("as") or self.at("port") or self.at(";")):
            address = self.address()
            if self.at("%"):
                raise self.unsupported(self.peek(), "a neighbor with an interface scope")
        self._neighbor_options(protocol)
        if address is not None:
            self.close_item()  # BIRD checks once it has read the ";"
            if protocol.neighbor is not None:
                raise self.error_here("Only one neighbor per BGP instance is allowed")
            protocol.neighbor = address

    def _neighbor_options(self, protocol: m.BgpProtocol) -> None:
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
        self.close_item()
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
        protocol.igp_table = self.table_name()

    def check_bgp(self, protocol: m.BgpProtocol) -> None:
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


def _mask_length(mask: int, bits: int) -> int:
    """BIRD's ``ipa_masklen``: the length of a contiguous netmask, -1 if it is not one."""
    inverted = ~mask & ((1 << bits) - 1)
    if inverted & (inverted + 1):
        return -1
    return bits - inverted.bit_length()


_ITEMS: dict[m.ProtocolType, Callable[[ProtocolItemParser, m.ProtocolConfig], bool]] = {
    m.ProtocolType.KERNEL: ProtocolItemParser._kernel_item,
    m.ProtocolType.DEVICE: ProtocolItemParser._device_item,
    m.ProtocolType.DIRECT: ProtocolItemParser._direct_item,
    m.ProtocolType.STATIC: ProtocolItemParser._static_item,
    m.ProtocolType.BGP: ProtocolItemParser._bgp_item,
}
_BGP_ITEMS: dict[str, Callable[[ProtocolItemParser, m.BgpProtocol, Token], None]] = {
    "local": ProtocolItemParser._bgp_local,
    "neighbor": ProtocolItemParser._bgp_neighbor,
    "rr": ProtocolItemParser._bgp_rr,
    "hold": ProtocolItemParser._bgp_hold,
    "keepalive": ProtocolItemParser._bgp_keepalive,
    "direct": ProtocolItemParser._bgp_direct,
    "multihop": ProtocolItemParser._bgp_multihop,
    "next": ProtocolItemParser._bgp_next,
    "gateway": ProtocolItemParser._bgp_gateway,
    "source": ProtocolItemParser._bgp_source,
    "connect": ProtocolItemParser._bgp_connect,
    "error": ProtocolItemParser._bgp_error,
    "password": ProtocolItemParser._bgp_password,
    "passive": ProtocolItemParser._bgp_passive,
    "add": ProtocolItemParser._bgp_add,
    "allow": ProtocolItemParser._bgp_allow,
    "graceful": ProtocolItemParser._bgp_graceful,
    "ttl": ProtocolItemParser._bgp_ttl,
    "bfd": ProtocolItemParser._bgp_bfd,
    "igp": ProtocolItemParser._bgp_igp,
}
