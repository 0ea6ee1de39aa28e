"""BIRD prefix sets (``[ 10.0.0.0/8{16,24}, 192.168.0.0/16+, ... ]``) and their matching.

Role: the value of a prefix-set constant, and ``net ~ set`` for the compiled filters.

Semantics (BIRD 1.6 ``filter/trie.c``, "Trie for prefix sets"): a pattern
``addr/len{low,high}`` matches a prefix ``p/plen`` when ``low <= plen <= high`` and the first
``min(plen, len)`` bits of ``p`` and ``addr`` are equal; ``addr/len`` alone is
``{len,len}``, ``addr/len+`` is ``{len,max}`` and ``addr/len-`` is ``{0,len}``. A set matches
when one of its patterns does.

Data flow: the parser adds ``PrefixPattern`` values; ``PrefixPatternSet.matches`` answers for
Myna's prefix ints. Matching groups the patterns per route length once (lazily): for a route of
length ``L`` the candidates are the patterns with ``low <= L <= high``, split by how many bits
are compared (``min(L, len)``), each group a frozenset of masked addresses, so a lookup is a
shift and a set probe per group (usually one). ``BirdTrie`` is a port of BIRD's trie itself;
it is only used where BIRD's output depends on its shape (``print`` of a set, ``=`` between two
sets) and, in the tests, as the reference the fast lookup is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpd.bird_config.values import format_ip


@dataclass(frozen=True, slots=True)
class PrefixPattern:
    """``address/length{low,high}``: ``address`` has no bits set beyond ``length``."""

    address: int
    length: int
    low: int
    high: int


class PrefixPatternSet:
    """A prefix set of one address family (``bits`` 32 or 128)."""

    __slots__ = ("_by_length", "bits", "patterns", "trie")

    def __init__(self, patterns: tuple[PrefixPattern, ...], bits: int) -> None:
        self.patterns = patterns
        self.bits = bits
        self._by_length: dict[int, tuple[tuple[int, frozenset[int]], ...]] = {}
        self.trie = BirdTrie(bits)
        for pattern in patterns:
            self.trie.add(pattern)

    def _groups(self, plen: int) -> tuple[tuple[int, frozenset[int]], ...]:
        compared: dict[int, set[int]] = {}
        for pattern in self.patterns:
            if pattern.low <= plen <= pattern.high:
                bits = min(plen, pattern.length)
                compared.setdefault(bits, set()).add(pattern.address >> (self.bits - bits))
        groups = tuple((bits, frozenset(keys)) for bits, keys in sorted(compared.items()))
        self._by_length[plen] = groups
        return groups

    def matches(self, prefix: int) -> bool:
        """``net ~ set`` for Myna's prefix int ``prefix``."""
        plen = prefix & 0xFF
        groups = self._by_length.get(plen)
        if groups is None:
            groups = self._groups(plen)
        address = prefix >> 8
        top = self.bits
        return any(address >> (top - bits) in keys for bits, keys in groups)

    def same(self, other: PrefixPatternSet) -> bool:
        """BIRD's ``trie_same`` (``=`` between two prefix sets compares the tries)."""
        return self.trie.same(other.trie)

    def bird_format(self, ipv6: bool) -> str:
        """What ``print`` writes for the set (BIRD's ``trie_format``)."""
        return self.trie.format(ipv6)


class _Node:
    __slots__ = ("accept", "address", "children", "length", "mask")

    def __init__(self, length: int, address: int, mask: int, accept: int) -> None:
        self.length = length
        self.address = address
        self.mask = mask
        self.accept = accept
        self.children: list[_Node | None] = [None, None]


class BirdTrie:
    """BIRD 1.6's compressed trie with accept masks, ported from ``filter/trie.c``.

    Addresses are ints of ``bits`` bits; a node's ``accept`` mask has bit ``bits - L`` set
    (counting from the top, like BIRD's ``ipa_getbit``) when routes of length ``L`` ending at or
    below the node are accepted.
    """

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.zero = False
        self.root: _Node | None = _Node(0, 0, 0, 0)

    def _mask(self, length: int) -> int:
        full = (1 << self.bits) - 1
        return (full << (self.bits - length)) & full if length else 0

    def _bit(self, value: int, index: int) -> int:
        return (value >> (self.bits - 1 - index)) & 1

    def _common_length(self, a: int, b: int) -> int:
        diff = a ^ b
        return self.bits - diff.bit_length()

    def _attach(self, parent: _Node | None, child: _Node) -> None:
        assert parent is not None  # the root has length 0, so nothing goes above it
        parent.children[self._bit(child.address, parent.length)] = child

    def add(self, pattern: PrefixPattern) -> None:
        """``trie_add_prefix``."""
        plen, low, high = pattern.length, pattern.low, pattern.high
        if low == 0:
            self.zero = True
        else:
            low -= 1
        plen = min(plen, high)
        amask = self._mask(low) ^ self._mask(high)
        pmask = self._mask(plen)
        paddr = pattern.address & pmask
        parent: _Node | None = None
        node = self.root
        while node is not None:
            cmask = node.mask & pmask
            if paddr & cmask != node.address & cmask:
                blen = self._common_length(paddr, node.address)
                bmask = self._mask(blen)
                baccept = (amask | node.accept) & bmask
                added = _Node(plen, paddr, pmask, amask)
                branch = _Node(blen, pattern.address & bmask, bmask, baccept)
                self._attach(parent, branch)
                self._attach(branch, node)
                self._attach(branch, added)
                return
            if plen < node.length:
                amask |= node.accept & pmask
                added = _Node(plen, paddr, pmask, amask)
                self._attach(parent, added)
                self._attach(added, node)
                return
            if plen == node.length:
                node.accept |= amask
                return
            node.accept |= amask & node.mask
            parent = node
            node = node.children[self._bit(paddr, node.length)]
        self._attach(parent, _Node(plen, paddr, pmask, amask))

    def match(self, address: int, plen: int) -> bool:
        """``trie_match_prefix``."""
        if plen == 0:
            return self.zero
        pmask = self._mask(plen)
        paddr = address & pmask
        test = plen - 1
        node = self.root
        while node is not None:
            cmask = node.mask & pmask
            if paddr & cmask != node.address & cmask:
                return False
            if self._bit(node.accept, test):
                return True
            if plen <= node.length:
                return False
            node = node.children[self._bit(paddr, node.length)]
        return False

    def same(self, other: BirdTrie) -> bool:
        """``trie_same``."""

        def node_same(a: _Node | None, b: _Node | None) -> bool:
            if a is None or b is None:
                return a is b
            return (
                a.length == b.length
                and a.address == b.address
                and a.accept == b.accept
                and node_same(a.children[0], b.children[0])
                and node_same(a.children[1], b.children[1])
            )

        return self.zero == other.zero and node_same(self.root, other.root)

    def format(self, ipv6: bool) -> str:
        """``trie_format``: ``[addr/len{accept mask}, ...]``."""
        parts: list[str] = []
        if self.zero:
            parts.append(f"{format_ip(0, ipv6)}/0")

        def walk(node: _Node | None) -> None:
            if node is None:
                return
            if node.accept:
                parts.append(
                    f"{format_ip(node.address, ipv6)}/{node.length}"
                    f"{{{format_ip(node.accept, ipv6)}}}"
                )
            walk(node.children[0])
            walk(node.children[1])

        walk(self.root)
        return "[" + ", ".join(parts) + "]"
