"""BIRD 1.6's command language, the part Myna answers: a line -> a command, or BIRD's error.

Data flow: ``parse(line, ipv6, protocols)`` splits the line into words (a ``"quoted"`` word is
a pattern, as BIRD's TEXT token) and follows BIRD's grammar (``nest/config.Y``,
``sysdep/unix/config.Y``) for: ``show status``, ``show memory``, ``show protocols [all]
[NAME | "PATTERN"]``, ``show interfaces [summary]``, ``show route [PREFIX | for PREFIX|IP]
[table master] [all] [primary] [filtered] [protocol NAME] [stats | count]``, ``show static
[NAME]``, ``show bfd sessions`` (BIRD 2's, for the BFD work), ``configure [soft] ["FILE"]``,
``configure check ["FILE"]``, ``configure confirm``. It raises ``CommandError`` with BIRD's
reply for what BIRD would refuse: ``9001 syntax error`` for an unknown word, ``9001 Invalid
prefix`` for a prefix with host bits set, ``9001 NAME is not a protocol`` in ``show route``,
``9002 NAME is not a protocol`` in ``show protocols`` (where BIRD looks the symbol up after
parsing), and for commands BIRD has but Myna does not run (``restart``, ``filter``/``where``
in ``show route``, ``configure timeout``...) ``9001`` saying so, so that a client never waits.
Keywords are full words: BIRD's clients expand abbreviations before sending.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

NOT_BY_MYNA = "is not supported by Myna"


class CommandError(Exception):
    """BIRD's reply to a command it refuses: its code and text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def syntax_error() -> CommandError:
    """What BIRD answers to a line its grammar does not accept."""
    return CommandError(9001, "syntax error")


@dataclass(frozen=True, slots=True)
class Simple:
    """A command without arguments: ``show status``, ``show memory``, ``configure confirm``..."""

    name: str


@dataclass(frozen=True, slots=True)
class ShowProtocols:
    """``show protocols [all] [NAME | "PATTERN"]``: ``name`` is exact, ``pattern`` a glob."""

    verbose: bool
    name: str | None = None
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ShowInterfaces:
    """``show interfaces [summary]``."""

    summary: bool


@dataclass(frozen=True, slots=True)
class ShowStatic:
    """``show static [NAME]``."""

    name: str | None


@dataclass(frozen=True, slots=True)
class ShowRoute:
    """``show route ...``; ``network`` is (address, length) of the prefix or address given."""

    network: tuple[int, int] | None = None
    longest_match: bool = False  # ``for``: the most specific network holding it
    verbose: bool = False  # ``all``
    primary: bool = False
    filtered: bool = False
    protocol: str | None = None
    stats: int = 0  # 1: ``stats`` (the routes and a count), 2: ``count`` (the count only)


@dataclass(frozen=True, slots=True)
class Configure:
    """``configure [soft] ["FILE"]`` or ``configure check ["FILE"]``."""

    check: bool
    soft: bool = False
    file: str | None = None


Command = Simple | ShowProtocols | ShowInterfaces | ShowStatic | ShowRoute | Configure


def _words(line: str) -> list[str]:
    """Words; a double-quoted string stays one word, its quotes kept (BIRD's TEXT)."""
    words: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char.isspace():
            index += 1
        elif char == '"':
            end = line.find('"', index + 1)
            if end < 0:
                raise CommandError(9001, "Unterminated string")
            words.append(line[index : end + 1])
            index = end + 1
        else:
            end = index
            while end < len(line) and not line[end].isspace() and line[end] != '"':
                end += 1
            words.append(line[index:end])
            index = end
    return words


def _quoted(word: str) -> bool:
    return len(word) >= 2 and word[0] == '"' and word[-1] == '"'


def _symbol(word: str) -> bool:
    return (
        bool(word)
        and (word[0].isalpha() or word[0] == "_")
        and all(c.isalnum() or c == "_" for c in word)
    )


def _network(word: str, ipv6: bool, prefix_only: bool) -> tuple[int, int]:
    """A prefix (``198.19.2.0/26``) or, unless ``prefix_only``, an address (a full length)."""
    address, slash, length = word.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise syntax_error() from None
    if (ip.version == 6) != ipv6:
        raise syntax_error()  # bird reads no IPv6 address, bird6 no IPv4 one
    bits = ip.max_prefixlen
    if not slash:
        if prefix_only:
            raise syntax_error()
        return int(ip), bits
    if not length.isdigit() or int(length) > bits:
        raise CommandError(9001, "Invalid prefix length")
    plen = int(length)
    if int(ip) & ((1 << (bits - plen)) - 1):
        raise CommandError(9001, "Invalid prefix")
    return int(ip), plen


def _looks_like_network(word: str) -> bool:
    return bool(word) and (word[0].isdigit() or ":" in word)


def parse(line: str, ipv6: bool, protocols: Collection[str]) -> Command:
    """The command of ``line`` (see the module docstring); ``protocols``: the known names."""
    words = _words(line)
    if not words:
        raise syntax_error()
    head = words[0]
    if head == "show" and len(words) >= 2:
        return _show(words[1], words[2:], ipv6, protocols)
    if head == "configure":
        return _configure(words[1:])
    if head in ("restart", "enable", "disable", "reload", "down", "debug", "mrtdump", "eval",
                "echo", "dump", "restrict", "add", "delete", "flush"):  # fmt: skip
        raise CommandError(9001, f"{head} {NOT_BY_MYNA}")
    raise syntax_error()


def _show(what: str, rest: list[str], ipv6: bool, protocols: Collection[str]) -> Command:
    if what in ("status", "memory") and not rest:
        return Simple(f"show {what}")
    if what == "protocols":
        verbose = bool(rest) and rest[0] == "all"
        args = rest[1:] if verbose else rest
        if not args:
            return ShowProtocols(verbose)
        if len(args) > 1:
            raise syntax_error()
        if _quoted(args[0]):
            return ShowProtocols(verbose, pattern=args[0][1:-1])
        if not _symbol(args[0]):
            raise syntax_error()
        if args[0] not in protocols:
            raise CommandError(9002, f"{args[0]} is not a protocol")
        return ShowProtocols(verbose, name=args[0])
    if what == "interfaces" and rest in ([], ["summary"]):
        return ShowInterfaces(bool(rest))
    if what == "static" and len(rest) <= 1:
        if rest and (not _symbol(rest[0]) or rest[0] not in protocols):
            raise CommandError(9001, f"{rest[0]} is not a protocol")
        return ShowStatic(rest[0] if rest else None)
    if what == "bfd" and rest == ["sessions"]:
        return Simple("show bfd sessions")
    if what == "route":
        return _show_route(rest, ipv6, protocols)
    if what in ("ospf", "rip", "babel", "roa", "symbols", "bfd"):
        raise CommandError(9001, f"show {what} {NOT_BY_MYNA}")
    raise syntax_error()


def _show_route(words: list[str], ipv6: bool, protocols: Collection[str]) -> ShowRoute:
    fields: dict[str, object] = {}
    index = 0

    def take() -> str:
        nonlocal index
        if index >= len(words):
            raise syntax_error()
        index += 1
        return words[index - 1]

    while index < len(words):
        word = take()
        if word == "for":
            if "network" in fields:
                raise CommandError(9001, "Only one prefix expected")
            fields["network"] = _network(take(), ipv6, prefix_only=False)
            fields["longest_match"] = True
        elif _looks_like_network(word):
            if "network" in fields:
                raise CommandError(9001, "Only one prefix expected")
            fields["network"] = _network(word, ipv6, prefix_only=True)
        elif word in ("all", "primary", "filtered"):
            fields[{"all": "verbose"}.get(word, word)] = True
        elif word in ("stats", "count"):
            fields["stats"] = 1 if word == "stats" else 2
        elif word == "protocol":
            name = take()
            if "protocol" in fields:
                raise CommandError(9001, "Protocol specified twice")
            if not _symbol(name) or name not in protocols:
                raise CommandError(9001, f"{name} is not a protocol")
            fields["protocol"] = name
        elif word == "table":
            name = take()
            if name != "master":
                raise CommandError(9001, f"{name} is not a table")
        elif word in ("filter", "where", "export", "preexport", "noexport"):
            raise CommandError(9001, f"show route {word} {NOT_BY_MYNA}")
        else:
            raise syntax_error()
    return ShowRoute(**fields)  # type: ignore[arg-type]


def _configure(words: list[str]) -> Configure | Simple:
    if words in (["confirm"], ["undo"]):
        return Simple(f"configure {words[0]}")
    check = soft = False
    if words and words[0] in ("check", "soft"):
        check, soft = words[0] == "check", words[0] == "soft"
        words = words[1:]
    file = None
    if words and _quoted(words[0]):
        file = words[0][1:-1]
        words = words[1:]
    if words and words[0] == "timeout" and not check:
        raise CommandError(9001, f"configure timeout {NOT_BY_MYNA}")
    if words:
        raise syntax_error()
    return Configure(check, soft, file)
