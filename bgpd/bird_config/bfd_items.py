"""The options inside ``protocol bfd { ... }``: interface and multihop blocks, neighbors.

Role: the layer of the configuration parser that reads BIRD 1.6.8's ``proto/bfd/config.Y``
into ``config_model.BfdProtocol`` (``ConfigParser`` frames the protocol and reads its generic
options). What 1.6 has, and nothing else (BIRD 2's ``accept``, ``strict bind``, ``zero udp6
checksum rx`` and the BGP ``bfd { ... }`` block are syntax errors, as in ``bird -p``):

* ``interface PATTERNS [{ OPTIONS }]``: BIRD's ``iface_patt_list_nopx`` (names with ``-``
  exclusions; an address or prefix is refused with "Interface name/mask expected, not IP
  prefix" once the list ends, except a name with a zero-length prefix, which means the name);
* ``multihop [{ OPTIONS }]``: the settings of multihop sessions (the last block counts);
* ``neighbor ADDR [dev "IFACE" | % IFACE] [local ADDR] [multihop BOOL]``, with BIRD's two
  checks (not both an interface and multihop; multihop needs ``local``);
* OPTIONS: ``interval``, ``min rx interval``, ``min tx interval``, ``idle tx interval`` (a
  number and a unit ``s|ms|us``, wrapping as BIRD's u32 ``expr_us`` does), ``multiplier``
  (kept as BIRD's u8), ``passive [BOOL]``, ``authentication none|simple|[meticulous] keyed
  md5|sha1``, ``password "..." [{ id N; }]`` and ``passwords { password ...; ... }``.

BIRD's checks at the end of a block run there too: the warning "Authentication and password
options should be used together" (printed as BIRD logs it, parsing goes on) and "Password
algorithm option not available in BFD protocol". A password's ``id`` is checked as BIRD's
right-recursive rule does it, once its ``}`` is seen and from the last option back (so the
first ``id`` written is the one that stays). Validity times (``generate from`` ...) are not
supported by Myna. Which block a session uses is ``daemon_config``'s business (``bfd_map``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpd.bird_config import config_model as m
from bgpd.bird_config.lexer import Token, TokenKind
from bgpd.bird_config.protocol_items import ProtocolItemParser
from bgpd.bird_config.values import BirdType

_UNITS = {"s": 1_000_000, "ms": 1000, "us": 1}
_U32 = 0xFFFFFFFF
_AUTH = {
    ("none",): m.BfdAuth.NONE,
    ("simple",): m.BfdAuth.SIMPLE,
    ("keyed", "md5"): m.BfdAuth.KEYED_MD5,
    ("keyed", "sha1"): m.BfdAuth.KEYED_SHA1,
    ("meticulous", "keyed", "md5"): m.BfdAuth.METICULOUS_MD5,
    ("meticulous", "keyed", "sha1"): m.BfdAuth.METICULOUS_SHA1,
}
_ALGORITHMS = {"keyed": ("md5", "sha1", "sha256", "sha384", "sha512")}
_ALGORITHMS["hmac"] = _ALGORITHMS["keyed"]
_VALIDITY = ("generate", "accept", "from", "to")


@dataclass
class _Password:
    """A password while its block is read (``algorithm`` is an error only at the block's end)."""

    item: m.BfdPassword
    algorithm: bool


class BfdItemParser(ProtocolItemParser):
    """``protocol bfd``'s own options (see the module docstring)."""

    def protocol_item(self, protocol: m.ProtocolConfig) -> bool:
        """One option of ``protocol``'s type; False when the next token starts none."""
        if isinstance(protocol, m.BfdProtocol):
            return self._bfd_item(protocol)
        return super().protocol_item(protocol)

    def warn(self, message: str) -> None:
        """A warning BIRD logs while it reads the file (``bird -p`` prints it; no position)."""
        self.evaluator.log(message)

    def _bfd_item(self, protocol: m.BfdProtocol) -> bool:
        token = self.peek()
        if token.is_("interface"):
            self.advance()
            protocol.interfaces.append(self._bfd_block(token, self._bfd_patterns()))
        elif token.is_("multihop"):
            self.advance()
            protocol.multihop_block = self._bfd_block(token, ())
        elif token.is_("neighbor"):
            self.advance()
            protocol.neighbors.append(self._bfd_neighbor(token))
        else:
            return False
        return True

    # -- interface patterns ------------------------------------------------------------------

    def _bfd_patterns(self) -> tuple[m.InterfacePattern, ...]:
        """``iface_patt_list_nopx``: names only (a zero-length prefix after a name is allowed)."""
        patterns: list[m.InterfacePattern] = []
        addressed = False
        while True:
            include = not self.accept("-")
            name: str | None = None
            if self.at_kind(TokenKind.TEXT):
                name = str(self.advance().value)
            if name is None or self.peek().kind in (
                TokenKind.IPV4, TokenKind.IPV6, TokenKind.SYMBOL,
            ):  # fmt: skip
                length = self._prefix_or_ipa()
                addressed = addressed or name is None or length != 0
            if name is not None:
                patterns.append(m.InterfacePattern(name, include))
            if not self.accept(","):
                break
        if addressed:  # BIRD's iface_patt_check, once the list has ended
            raise self.error_ahead("Interface name/mask expected, not IP prefix")
        return tuple(patterns)

    def _prefix_or_ipa(self) -> int:
        """``prefix_or_ipa``: its length (an address alone is a full-length prefix)."""
        if self.peek(1).is_("/") or self.peek(1).is_(":"):
            return self.prefix() & 0xFF
        self._bfd_address()
        return self.bits

    def _bfd_address(self) -> int:
        """``ipa``; here BIRD reduces a symbol at once, so a wrong one is blamed on itself."""
        token = self.peek()
        if token.kind is TokenKind.SYMBOL and self._constant(token, BirdType.IP) is None:
            self.advance()
            raise self.error_here("IP address expected")
        return self.address()

    # -- interface and multihop blocks ---------------------------------------------------------

    def _bfd_block(self, start: Token, patterns: tuple[m.InterfacePattern, ...]) -> m.BfdSettings:
        block = m.BfdSettings(start.position, patterns)
        passwords: list[_Password] = []
        if self.accept("{"):
            while not self.at("}"):
                self._bfd_option(block, passwords)
                self.expect(";")
            self.advance()
        # bfd_iface_finish
        if (block.auth is m.BfdAuth.NONE) != (not passwords):
            self.warn("Authentication and password options should be used together")
        if any(p.algorithm for p in passwords):
            raise self.error_here("Password algorithm option not available in BFD protocol")
        block.passwords = tuple(p.item for p in passwords)
        return block

    def _bfd_option(self, block: m.BfdSettings, passwords: list[_Password]) -> None:
        token = self.advance()
        if token.is_("interval"):
            block.min_rx_us = block.min_tx_us = self._microseconds()
        elif token.is_("min"):
            which = self.advance()
            if not (which.is_("rx") or which.is_("tx")):
                raise self.syntax_error(which)
            self.expect("interval")
            if which.text == "rx":
                block.min_rx_us = self._microseconds()
            else:
                block.min_tx_us = self._microseconds()
        elif token.is_("idle"):
            self.expect("tx")
            self.expect("interval")
            block.idle_tx_us = self._microseconds()
        elif token.is_("multiplier"):
            block.multiplier = self.number() & 0xFF  # BIRD keeps it in a u8
        elif token.is_("passive"):
            block.passive = self.switch()
        elif token.is_("authentication"):
            block.auth = self._bfd_auth()
        elif token.is_("passwords"):
            self.expect("{")
            while not self.at("}"):
                self.expect("password")
                passwords.append(self._password_item(len(passwords) + 1))
                self.expect(";")
            self.advance()
        elif token.is_("password"):
            passwords.append(self._password_item(len(passwords) + 1))
        else:
            raise self.syntax_error(token)

    def _microseconds(self) -> int:
        """``expr_us``: ``(u32) expr * unit``, wrapping at 2^32 as BIRD's C does."""
        value = self.number()
        unit = self.advance()
        factor = _UNITS.get(unit.text) if unit.kind is TokenKind.KEYWORD else None
        if factor is None:
            raise self.syntax_error(unit)
        return (value & _U32) * factor & _U32

    def _bfd_auth(self) -> m.BfdAuth:
        words: list[str] = []
        while True:
            token = self.advance()
            words.append(token.text if token.kind is TokenKind.KEYWORD else "")
            found = _AUTH.get(tuple(words))
            if found is not None:
                return found
            if not any(key[: len(words)] == tuple(words) for key in _AUTH):
                raise self.syntax_error(token)

    # -- passwords -------------------------------------------------------------------------------

    def _password_item(self, number: int) -> _Password:
        """``password TEXT [{ params }]``; ``number`` is BIRD's running ``password_id``."""
        start = self.previous
        assert start is not None
        text = self.text()
        key_id, algorithm = number, False
        if self.accept("{"):
            params: list[tuple[str, int]] = []
            while not self.at("}"):
                token = self.advance()
                if token.is_("id"):
                    params.append(("id", self.number()))
                elif token.is_("algorithm"):
                    self._password_algorithm()
                    params.append(("algorithm", 0))
                elif token.kind is TokenKind.KEYWORD and token.text in _VALIDITY:
                    raise self.unsupported(token, "a password's validity times")
                else:
                    raise self.syntax_error(token)
                self.expect(";")
            for kind, value in reversed(params):  # right recursion: the last one acts first
                if kind == "algorithm":
                    algorithm = True
                    continue
                key_id = value
                if value <= 0:
                    raise self.error_ahead("Password ID has to be greated than zero.")
            self.advance()
        return _Password(m.BfdPassword(text, key_id, start.position), algorithm)

    def _password_algorithm(self) -> None:
        kind = self.advance()
        names = _ALGORITHMS.get(kind.text) if kind.kind is TokenKind.KEYWORD else None
        if names is None:
            raise self.syntax_error(kind)
        hash_name = self.advance()
        if hash_name.kind is not TokenKind.KEYWORD or hash_name.text not in names:
            raise self.syntax_error(hash_name)

    # -- neighbors -------------------------------------------------------------------------------

    def _bfd_neighbor(self, start: Token) -> m.BfdNeighbor:
        address = self._bfd_address()
        interface: str | None = None
        if self.accept("%"):
            interface = self.expect_kind(TokenKind.SYMBOL).text
        elif self.accept("dev"):
            interface = self.text()
        local = self._bfd_address() if self.accept("local") else None
        multihop = False
        if self.at("multihop"):
            keyword = self.advance()
            multihop = self.switch()
            # BIRD checks on reducing the rule: after its last token, or at the next one
            # when the switch was left empty (it had to look ahead to see that)
            fail = self.error_ahead if self.previous is keyword else self.error_here
            if multihop and interface is not None:
                raise fail("Neighbor cannot set both interface and multihop")
            if multihop and not local:
                raise fail("Multihop neighbor requires specified local address")
        return m.BfdNeighbor(address, interface, local, multihop, start.position)
