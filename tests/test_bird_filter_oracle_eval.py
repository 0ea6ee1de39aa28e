"""BIRD 1.6 and Myna agree on the values of the filter language (``bird -p`` as the oracle).

What is compared: the exact stderr and exit status of ``bird -p`` and ``myna bird -p`` on a
file whose ``eval`` runs a function that ``print``s an expression (BIRD logs prints while it
reads the file). So every value the compiled filters compute without a route is checked
against BIRD 1.6.8 itself: arithmetic and its wrap-around, comparisons (with undefined
values), ``~`` on prefixes, prefix sets, sets with ranges, pair and community sets, paths and
path masks, community lists and their operations, extended and large communities, strings
and their patterns, enums, constants, functions and their odd fall-through values,
recursion, ``case``, ``printn``, and the run-time errors (their message and the stop).

The expressions are hand-picked for the corner cases, plus random well- and ill-typed
expressions from a fixed seed (``_random_batches``). The route-dependent part of the
semantics is checked live in ``test_interop_bird_filters.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from bird16_oracle import both

EXPRESSIONS_V4 = (
    "1 + 2",
    "4294967295 + 1",
    "0 - 1",
    "2147483647 - 4294967295",
    "3 * 1431655766",
    "7 / 2",
    "7 / 0",
    "1 = 1",
    "1 != 2",
    "1 < 2",
    "2 <= 2",
    "3 > 2",
    "3 >= 4",
    "true && false",
    "true || 1",
    "false && 1",
    "!true",
    "!1",
    "1 + true",
    "true = 1",
    '"a" = "a"',
    '"abc" < "abd"',
    '"abc" ~ "a*"',
    '"abc" ~ "a?c"',
    '"abc" ~ "**"',
    '"a*c" ~ "**"',
    '"abc" ~ "*?"',
    '"ab?" ~ "*?"',
    '"eth0" ~ "eth*"',
    '"eth0" !~ "eth*"',
    "10.0.0.0/8",
    "10.1.2.0/24 ~ 10.0.0.0/8",
    "10.0.0.0/8 ~ 10.1.2.0/24",
    "10.0.0.0/8 ~ 10.0.0.0/8",
    "10.1.2.3 ~ 10.0.0.0/8",
    "10.1.2.0/24 ~ [10.0.0.0/8{16,24}]",
    "10.1.2.0/25 ~ [10.0.0.0/8{16,24}]",
    "10.1.0.0/16 ~ [10.0.0.0/8+]",
    "10.0.0.0/7 ~ [10.0.0.0/8-]",
    "8.0.0.0/6 ~ [10.0.0.0/8-]",
    "0.0.0.0/0 ~ [10.0.0.0/8{0,8}]",
    "[10.0.0.0/8{16,24}, 1.2.0.0/16+, 192.168.0.0/16-]",
    "[1, 5..10, 3]",
    "5 ~ [1, 5..10, 3]",
    "11 ~ [1, 5..10, 3]",
    "[(1,2), (3,*)]",
    "(3,5) ~ [(1,2), (3,*)]",
    "(1,3) ~ [(1,2), (3,*)]",
    "(1..3, 5)",
    "[(1..3, 5)]",
    "(2,5) ~ [(1..3, 5)]",
    "[(*, 5)] = [(*, 5)]",
    "(65535, 65535)",
    "(65536, 1)",
    "(1, 2) = (1, 2)",
    "(1, 2) < (1, 3)",
    "(1, 2, 3)",
    "(1, 2, 3) ~ [(1, 2, *)]",
    "(1, 3, 3) ~ [(1, 2, *)]",
    "(1, 2, 3) ~ [(1, 2..5, *)]",
    "(1, 6, 3) ~ [(1, 2..5, *)]",
    "(rt, 1, 2)",
    "(rt, 65536, 2)",
    "(ro, 1.2.3.4, 5)",
    "(generic, 1, 2)",
    "(unknown 5, 1, 2)",
    "(rt, 1, 2) ~ [(rt, 1, *)]",
    "(rt, 2, 2) ~ [(rt, 1, *)]",
    "prepend(+empty+, 65000)",
    "prepend(prepend(+empty+, 1), 2)",
    "prepend(prepend(+empty+, 1), 2).len",
    "prepend(prepend(+empty+, 1), 2).first",
    "prepend(prepend(+empty+, 1), 2).last",
    "+empty+.first",
    "prepend(prepend(+empty+, 1), 2) ~ [= 2 1 =]",
    "prepend(prepend(+empty+, 1), 2) ~ [= 2 * =]",
    "prepend(prepend(+empty+, 1), 2) ~ [= * 2 =]",
    "prepend(prepend(+empty+, 1), 2) ~ [= ? 1 =]",
    "prepend(prepend(+empty+, 1), 2) ~ [= 1..3 1 =]",
    "prepend(prepend(+empty+, 1), 2) ~ / ? 1 /",
    "prepend(prepend(+empty+, 1), 2) ~ / 2 ? /",
    "1 ~ prepend(+empty+, 1)",
    "2 ~ prepend(+empty+, 1)",
    "delete(prepend(prepend(+empty+, 1), 2), 1)",
    "filter(prepend(prepend(+empty+, 1), 2), [1])",
    "delete(prepend(prepend(+empty+, 1), 2), [1..5])",
    "add(-empty-, (1,2))",
    "add(add(-empty-, (1,2)), (1,2))",
    "add(add(-empty-, (1,2)), (3,4))",
    "delete(add(add(-empty-, (1,2)), (3,4)), (1,2))",
    "delete(add(add(-empty-, (1,2)), (3,4)), [(1,*)])",
    "filter(add(add(-empty-, (1,2)), (3,4)), [(1,*)])",
    "(1,2) ~ add(-empty-, (1,2))",
    "add(-empty-, (1,2)) ~ [(1,2)]",
    "add(-empty-, (1,2)).len",
    "add(--empty--, (rt, 1, 2))",
    "add(---empty---, (1, 2, 3))",
    "add(---empty---, (1, 2, 3)) ~ [(1, *, *)]",
    "(1, 2, 3) ~ add(---empty---, (1, 2, 3))",
    "1.2.3.4.mask(16)",
    "10.1.2.0/24.ip",
    "10.1.2.0/24.len",
    "10.1.2.0/24 = 10.1.2.0/24",
    "10.1.2.0/24 < 10.1.2.0/25",
    "1.2.3.4 < 1.2.3.5",
    "RTS_BGP",
    "RTS_BGP = RTS_BGP",
    "RTS_BGP = 11",
    "RTS_BGP ~ [RTS_BGP, RTS_STATIC]",
    "RTD_BLACKHOLE",
    "ORIGIN_IGP < ORIGIN_EGP",
    "defined(1)",
    '1 = "a"',
    '1 < "a"',
    '"a" + "b"',
    "(1, 2) + (1, 2)",
    "[1, 2] = [1, 2]",
    "[1, 2] = [1, 3]",
    "255.255.255.255.mask(0)",
    "255.255.255.255.mask(1)",
    "255.255.255.255.mask(31)",
    "255.255.255.255.mask(32)",
    "255.255.255.255.mask(33)",
    "255.255.255.255.mask(255)",
    "255.255.255.255.mask(256)",
    "255.255.255.255.mask(2147483648)",
    "255.255.255.255.mask(4294967295)",
)
EXPRESSIONS_V6 = (
    "2001:db8::/32",
    "2001:db8::1",
    "::",
    "::1",
    "::ffff:1.2.3.4",
    "::1.2.3.4",
    "1:0:0:1:0:0:0:1",
    "1:0:0:0:1:0:0:1",
    "2001:db8:0:0:1::",
    "2001:db8::/32 ~ 2001::/16",
    "2001:db8::1 ~ 2001:db8::/32",
    "2001:db8:1::/48 ~ [2001:db8::/32{40,48}]",
    "2001:db8:1::/49 ~ [2001:db8::/32{40,48}]",
    "[2001:db8::/32+, fd00::/8-]",
    "2001:db8::1.mask(64)",
    "2001:db8::1.mask(200)",
    "2001:db8::/32.ip",
    "1.2.3.4",
    "1.2.3.4 = 1.2.3.4",
    "(ro, 1.2.3.4, 5)",
    "2001:db8::1 < 2001:db8::2",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "0:0:0:0:0:ffff:0:1",
)
PROGRAMS = {
    "void": (
        'function f() int x; int y; bool b; { print x < 1, " ", x <= x, " ", x '
        '= x, " ", x != 1, " ", defined(x), " ", 1 > x; return 1; }'
    ),
    "void_arith": "function f() int x; { print x + 1; return 1; }",
    "void_if": 'function f() bool b; { if b then print "y"; else print "n"; return 1; }',
    "void_and": "function f() bool b; { print true && b; return 1; }",
    "void_and2": "function f() bool b; { print false && b; return 1; }",
    "assign_type": 'function f() int x; { x = "a"; return 1; }',
    "assign_quad": "function f() quad q; { q = 1.2.3.4; print q; return 1; }",
    "params": (
        "function g(int a; int b) { return a * 10 + b; }\nfunction f() { print "
        'g(1, 2), " ", g(3, 4); return 1; }'
    ),
    "param_type": 'function g(int a) { return a; }\nfunction f() { print g("x"); return 1; }',
    "param_void": (
        "function g(int a) { return defined(a); }\nfunction f() int v; { print g(v); return 1; }"
    ),
    "fall_if": (
        'function g(int a) { if a > 1 then print "big"; }\nfunction f() { print '
        'g(5), " ", g(0); return 1; }'
    ),
    "fall_ifelse": (
        'function g(int a) { if a > 1 then print "big"; else print "small"; '
        '}\nfunction f() { print g(5), " ", g(0); return 1; }'
    ),
    "fall_void": "function g(int a) { print a; }\nfunction f() { print g(5); return 1; }",
    "accept_in_expr": "function g() { accept; }\nfunction f() { print g(); return 1; }",
    "recursion": (
        'function g() int x; { x = 5; g(); print "in g"; return 7; }\nfunction '
        "f() { print g(); return 1; }"
    ),
    "case": (
        'function f() int i; { i = 5; case i { 1: print "one"; 2..6: print '
        '"range"; else: print "else"; } return 1; }'
    ),
    "case_else": (
        'function f() int i; { i = 50; case i { 1: print "one"; 2..6: print '
        '"range"; else: print "else"; } return 1; }'
    ),
    "case_void": 'function f() int i; { case i { 1: print "one"; else: print "else"; } return 1; }',
    "case_mismatch": (
        'function f() { case "x" { 1: print "one"; 2: print "two"; 3: print "three"; } return 1; }'
    ),
    "case_pairs": 'function f() { case (1,2) { (1,1): print "a"; (1,2): print "b"; } return 1; }',
    "printn": 'function f() { printn "a"; printn "b", 1; print "c"; return 1; }',
    "printn_lost": 'function f() { printn "a"; return 1; }',
    "define": (
        "define ONE = 1;\ndefine P = 10.0.0.0/8;\ndefine S = [1, 2];\nfunction "
        'f() { print ONE + 1, " ", 10.1.0.0/16 ~ P, " ", 2 ~ S, " ", (ONE, 2); '
        "return 1; }"
    ),
    "define_ec": "define K = 65536;\nfunction f() { print (rt, K, 70000); return 1; }",
    "ec_const_err": "function f() { print (rt, 65536, 70000); return 1; }",
    "pair_runtime": "function f() int a; { a = 70000; print (a, 1); return 1; }",
    "lc_runtime": "function f() int a; { a = 70000; print (a, a, a); return 1; }",
    "mask_expr": (
        'function f() int a; { a = 5; print prepend(+empty+, 5) ~ [= a =], " '
        '", prepend(+empty+, 6) ~ [= (a+1) =]; return 1; }'
    ),
    "sets_var": "function f() int set s; { s = [1..5]; print 3 ~ s; return 1; }",
    "str_var": 'function f() string s; { s = "eth*"; print "eth0" ~ s; return 1; }',
    "prefix_var": (
        "function f() prefix p; ip i; { p = 10.0.0.0/8; i = 10.2.3.4; print i "
        '~ p, " ", p.ip, " ", p.len, " ", i.mask(8); return 1; }'
    ),
    "nested_return": (
        "function g(int a) { if a > 1 then { if a > 5 then return 2; return 1; "
        "} return 0; }\nfunction f() { print g(9), g(3), g(0); return 1; }"
    ),
    "len_err": "function f() { print 5.len; return 1; }",
    "not_match_void": "function f() int x; { print x ~ [1]; return 1; }",
    "clist_set": (
        "function f() clist c; { c = add(add(-empty-, (1,2)), (2,3)); print c "
        '~ [(1, *)], " ", c ~ [(5, *)], " ", filter(c, [(2,*)]), " ", '
        "delete(c, c); return 1; }"
    ),
    "clist_union": (
        "function f() clist c; clist d; { c = add(-empty-, (1,2)); d = "
        'add(-empty-, (3,4)); print add(c, d), " ", add(c, c); return 1; }'
    ),
    "path_ops": (
        "function f() bgppath p; { p = prepend(prepend(prepend(+empty+, 3), "
        '2), 1); print p, " ", p.len, " ", delete(p, 2), " ", filter(p, '
        '[1,3]), " ", p ~ [1], " ", p ~ [7]; return 1; }'
    ),
    "if_nonbool": 'function f() { if 1 then print "x"; return 1; }',
    "not_nonbool": "function f() { print !5; return 1; }",
    "error_cmd": 'function f() { error "oops"; }',
    "ip_quad_cmp": (
        'function f() quad q; { q = 1.2.3.4; print q = 1.2.3.4, " ", 1.2.3.4 = '
        'q, " ", q < 1.2.3.5; return 1; }'
    ),
    "bool_cmp": (
        'function f() { print true < false, " ", false < true, " ", true = true; return 1; }'
    ),
    "enum_cmp": 'function f() { print RTS_BGP < RTS_STATIC, " ", RTS_BGP = RTD_ROUTER; return 1; }',
    "enum_mixed_lt": "function f() { print RTS_BGP < RTD_ROUTER; return 1; }",
    "string_cmp": 'function f() { print "a" < "b", " ", "b" <= "a"; return 1; }',
    "path_cmp_err": "function f() { print +empty+ < +empty+; return 1; }",
    "path_eq": (
        'function f() { print +empty+ = +empty+, " ", prepend(+empty+, 1) = '
        'prepend(+empty+, 1), " ", prepend(+empty+,1) = prepend(+empty+,2); '
        "return 1; }"
    ),
    "mask_eq": 'function f() { print [= 1 * =] = [= 1 * =], " ", [= 1 =] = [= 2 =]; return 1; }',
    "pset_eq": (
        'function f() { print [1.0.0.0/8] = [1.0.0.0/8], " ", [1.0.0.0/8] = '
        "[2.0.0.0/8]; return 1; }"
    ),
    "prefix_print": (
        "function f() { print [10.0.0.0/8{16,24}, 10.0.0.0/8+, 11.0.0.0/8-, 0.0.0.0/0]; return 1; }"
    ),
    "set_print": (
        'function f() { print [5, 1..3, 2], " ", [(1,2)..(1,5)], " ", [(1, 2, '
        "3)..(4, 5, 6)]; return 1; }"
    ),
    "overlap_set": (
        'function f() { print 4 ~ [1..10, 3, 4], " ", 9 ~ [5..10, 1..6, 2], " '
        '", 8 ~ [1, 2..3, 5..9, 4]; return 1; }'
    ),
    "div": 'function f() { print 4294967295 / 2, " ", 1 / 3; return 1; }',
    "mul_wrap": 'function f() { print 65536 * 65536, " ", 65537 * 65537; return 1; }',
    "quoted": (
        "function 'my-fn.x:y'() { return 5; }\nfunction f() { print 'my-fn.x:y'(); return 1; }"
    ),
    "unset_noroute": "function f() { unset(bgp_med); return 1; }",
    "pref_noroute": "function f() { preference = 5; return 1; }",
}


def _program(functions: str, name: str = "f") -> str:
    return f"{functions}\neval {name}();\nrouter id 1.2.3.4;\nprotocol device {{}}\n"


def _expression(expr: str) -> str:
    return _program(f"function f() {{ print {expr}; return 1; }}")


@pytest.mark.parametrize("expr", EXPRESSIONS_V4)
def test_an_expression_prints_as_in_bird(tmp_path: Path, expr: str) -> None:
    path = tmp_path / "bird.cfg"
    path.write_text(_expression(expr))
    bird, myna = both(path)
    assert myna == bird


@pytest.mark.parametrize("expr", EXPRESSIONS_V6)
def test_an_ipv6_expression_prints_as_in_bird6(tmp_path: Path, expr: str) -> None:
    path = tmp_path / "bird6.cfg"
    path.write_text(_expression(expr))
    bird, myna = both(path, ipv6=True)
    assert myna == bird


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_program_runs_as_in_bird(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bird.cfg"
    path.write_text(_program(PROGRAMS[name]))
    bird, myna = both(path)
    assert myna == bird


# --- random expressions ----------------------------------------------------------------------

_ATOMS = {
    "int": ("0", "1", "2", "5", "7", "255", "256", "65535", "65536", "2147483647",
            "2147483648", "4294967295", "(1+1)"),
    "bool": ("true", "false", "(1 = 1)", "(2 < 1)"),
    "string": ('"eth0"', '"cali1"', '"a*"', '"x.cali"', '""', '"*.cali"', '"?"'),
    "prefix": ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "0.0.0.0/0", "192.168.1.64/26",
               "10.1.2.3/32"),
    "ip": ("10.1.2.3", "0.0.0.0", "255.255.255.255", "192.168.1.65"),
    "pair": ("(1,2)", "(65535,0)", "(0,65535)", "(100,200)"),
    "pset": ("[10.0.0.0/8{16,24}]", "[10.0.0.0/8+, 192.168.0.0/16-]", "[0.0.0.0/0{1,8}]",
             "[10.1.2.0/24, 10.1.0.0/16{16,16}]"),
    "iset": ("[1, 5..10]", "[0..2147483648]", "[7]", "[1..3, 2..9]"),
    "cset": ("[(1,2), (3,*)]", "[(100, 200..300)]", "[(*, 2)]", "[(1..3, 0..5)]"),
    "path": ("+empty+", "prepend(+empty+, 1)", "prepend(prepend(+empty+, 2), 1)",
             "prepend(prepend(prepend(+empty+, 3), 2), 1)"),
    "mask": ("[= * =]", "[= 1 * =]", "[= * 3 =]", "[= ? ? =]", "[= 1..2 * =]", "/ 1 ? /"),
    "clist": ("-empty-", "add(-empty-, (1,2))", "add(add(-empty-, (1,2)), (3,4))"),
    "lc": ("(1,2,3)", "(4294967295, 0, 7)"),
}  # fmt: skip
_TYPES = tuple(_ATOMS)


def _random_expression(rng: random.Random, kind: str, depth: int = 0) -> str:
    def sub(inner: str) -> str:
        return _random_expression(rng, inner, depth + 1)

    if depth > 2 or rng.random() < 0.3:
        return rng.choice(_ATOMS[kind])
    if kind == "int":
        op = rng.choice("+-*/")
        other = rng.choice(_TYPES) if rng.random() < 0.1 else "int"
        return rng.choice(
            (f"({sub(other)} {op} {sub('int')})", f"{sub('path')}.len", f"{sub('path')}.first",
             f"{sub('path')}.last", f"{sub('clist')}.len", f"{rng.choice(_ATOMS['prefix'])}.len")
        )  # fmt: skip
    if kind == "bool":
        left = rng.choice(_TYPES)
        right = left if rng.random() < 0.85 else rng.choice(_TYPES)
        compare = rng.choice(("=", "!=", "<", "<=", ">", ">="))
        return rng.choice(
            (f"({sub(left)} {compare} {sub(right)})", f"({sub('bool')} && {sub('bool')})",
             f"({sub('bool')} || {sub('bool')})", f"!{sub('bool')}",
             f"({sub('prefix')} ~ {sub('prefix')})", f"({sub('prefix')} ~ {sub('pset')})",
             f"({sub('ip')} ~ {sub('prefix')})", f"({sub('int')} ~ {sub('iset')})",
             f"({sub('pair')} ~ {sub('cset')})", f"({sub('pair')} ~ {sub('clist')})",
             f"({sub('clist')} ~ {sub('cset')})", f"({sub('path')} ~ {sub('mask')})",
             f"({sub('int')} ~ {sub('path')})", f"({sub('string')} ~ {sub('string')})",
             f"({sub('path')} ~ {sub('iset')})", f"({sub('lc')} ~ [(1, 2, *)])",
             f"({sub(rng.choice(_TYPES))} !~ {sub(rng.choice(_TYPES))})",
             f"defined({sub(rng.choice(_TYPES))})")
        )  # fmt: skip
    if kind == "path":
        return rng.choice(
            (f"prepend({sub('path')}, {sub('int')})",
             f"delete({sub('path')}, {rng.choice(('1', '2', *_ATOMS['iset']))})",
             f"filter({sub('path')}, {rng.choice(_ATOMS['iset'])})")
        )  # fmt: skip
    if kind == "clist":
        return rng.choice(
            (f"add({sub('clist')}, {sub('pair')})",
             f"delete({sub('clist')}, {rng.choice((sub('pair'), *_ATOMS['cset']))})",
             f"filter({sub('clist')}, {rng.choice(_ATOMS['cset'])})",
             f"add({sub('clist')}, {sub('clist')})")
        )  # fmt: skip
    if kind == "pair":
        return rng.choice((rng.choice(_ATOMS["pair"]), f"({sub('int')}, {sub('int')})"))
    if kind == "ip":
        return rng.choice(
            (rng.choice(_ATOMS["ip"]), f"{sub('prefix')}.ip",
             f"{rng.choice(_ATOMS['ip'])}.mask({sub('int')})")
        )  # fmt: skip
    return rng.choice(_ATOMS[kind])


def _random_batches(seed: int, batches: int, size: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [_random_expression(rng, rng.choice(_TYPES)) for _ in range(size)] for _ in range(batches)
    ]


@pytest.mark.parametrize("batch", _random_batches(seed=20260822, batches=60, size=10))
def test_random_expressions_print_as_in_bird(tmp_path: Path, batch: list[str]) -> None:
    # One file, one eval per expression: a run-time error stops BIRD (and Myna) there, so the
    # rest of the batch is compared only as far as both got.
    functions = "".join(
        f"function f{i}() {{ print {expr}; return 1; }}\neval f{i}();\n"
        for i, expr in enumerate(batch)
    )
    path = tmp_path / "bird.cfg"
    path.write_text(f"{functions}router id 1.2.3.4;\nprotocol device {{}}\n")
    bird, myna = both(path)
    assert myna == bird, batch
