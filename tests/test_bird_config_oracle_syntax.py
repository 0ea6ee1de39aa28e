"""Myna accepts exactly the configurations BIRD 1.6 accepts (``bird -p`` as the oracle).

Two sources of configurations, each run through ``bird -p`` and ``myna bird -p`` (see
``bird16_oracle``) and compared on exit status and stderr (BIRD's ``FILE:LINE:COL message``,
so positions too):

* handwritten ones, each aimed at one rule of the grammar or one of BIRD's checks, valid and
  invalid (``CASES``);
* Calico's rendered files mutated at random from a fixed seed: a token deleted, doubled,
  replaced by another, or swapped with its neighbour (``_mutations``).

Where Myna refuses a construct it does not implement ("... is not supported by Myna"), the
configuration is outside the compared set; the tests check such refusals are rare and name
them. The file that sets Calico's ``krt_tunnel`` is left out: only Calico's BIRD fork has it.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from bird16_oracle import both

from bgpd.bird_config.errors import BirdConfigError
from bgpd.bird_config.lexer import Lexer, Token, TokenKind

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "calico-confd-corpus"
UNSUPPORTED = "not supported by Myna"

_DEVICE = "protocol device {}\n"
_BGP = "protocol bgp p {{ local as 1; neighbor 10.0.0.2 as {remote}; {extra} }}\n"

CASES: dict[str, str] = {
    "minimal": _DEVICE,
    "no protocol": "router id 1.2.3.4;\n",
    "empty file": "",
    "router id number": "router id 5;\n" + _DEVICE,
    "router id expression": "router id (1 + 1);\n" + _DEVICE,
    "router id constant": "define R = 1.2.3.4;\nrouter id R;\n" + _DEVICE,
    "router id string constant": 'define R = "x";\nrouter id R;\n' + _DEVICE,
    "router id missing": "router id;\n" + _DEVICE,
    "listen": "listen bgp address 10.0.0.1 port 1790;\n" + _DEVICE,
    "listen port constant": "define P = 1790;\nlisten bgp port P;\n" + _DEVICE,
    "listen bad": "listen bgp address;\n" + _DEVICE,
    "graceful restart wait": "graceful restart wait 120;\n" + _DEVICE,
    "log": 'log stderr all;\nlog syslog name "x" { info, warning };\n' + _DEVICE,
    "log bad category": "log stderr { nope };\n" + _DEVICE,
    "timeformat": 'timeformat protocol iso long;\ntimeformat route "%T";\n' + _DEVICE,
    "debug protocols": "debug protocols { states, routes };\n" + _DEVICE,
    "debug protocols all": "debug protocols all;\n" + _DEVICE,
    "stray semicolons": ";;\n" + _DEVICE + ";\n",
    "no router id is refused": "protocol device {}\n",
    "two device protocols": _DEVICE + _DEVICE,
    "device template and protocol": "template device t {}\nprotocol device {}\n",
    "kernel": "protocol kernel { learn; persist; scan time 2; import all; export none; "
    "graceful restart; merge paths on limit 4; kernel table 254; metric 20; }\n" + _DEVICE,
    "kernel device routes": "protocol kernel { persist; device routes; }\n"
    "protocol kernel k2 { persist; kernel table 7; device routes off; }\n" + _DEVICE,
    "kernel merge limit": "protocol kernel { persist; merge paths yes limit 300; }\n",
    "two kernels one table": "protocol kernel { persist; }\nprotocol kernel { persist; }\n",
    "kernel scan times differ": "protocol kernel k1 { persist; scan time 2; table master; }\n"
    "protocol kernel k2 { persist; scan time 3; }\n",
    "kernel booleans": "protocol kernel { learn 0; persist (1); graceful restart yes; "
    "merge paths 1; }\n",
    "kernel without merge paths is refused": "protocol kernel { persist; merge paths no; }\n",
    "direct": 'protocol direct { interface -"cali*", -"kube-ipvs*", "*"; }\n',
    "direct bad pattern": "protocol direct { interface -; }\n",
    "static routes": "protocol static { route 10.0.0.0/8 blackhole; route 10.1.0.0/16 "
    "unreachable; route 10.2.0.0/16 prohibit; route 10.3.0.0/16 via 10.0.0.1; route "
    '10.4.0.0/16 via "eth0"; route 10.5.0.0:255.255.0.0 drop; route 10.6.0.0/16 reject; }\n',
    "static host bits": "protocol static { route 10.0.0.1/8 blackhole; }\n",
    "static bad netmask": "protocol static { route 10.0.0.0:255.0.255.0 blackhole; }\n",
    "static long prefix": "protocol static { route 10.0.0.0/33 blackhole; }\n",
    "static no target": "protocol static { route 10.0.0.0/8; }\n",
    "static empty options": "protocol static { route 10.0.0.0/8 blackhole {}; }\n",
    "protocol names": "protocol static static1 {}\nprotocol static {}\nprotocol static {}\n",
    "duplicate name": "protocol static a {}\nprotocol device a {}\n",
    "name of a function": "function a() { return 1; }\nprotocol static a {}\n",
    "from template": "template static t { preference 5; }\nprotocol static s from t {}\n",
    "from protocol": "protocol static t {}\nprotocol static s from t { disabled; }\n",
    "from unknown": "protocol static s from t {}\n",
    "from other type": "template device t {}\nprotocol static s from t {}\n",
    "from only": "template static t {}\nprotocol static from t {}\nprotocol static from t {}\n",
    "generic options": "protocol static { preference 10; disabled off; debug { states }; "
    'description "x"; table master; import all; export none; }\n',
    "bad table": "protocol static { table other; }\n",
    "preference too big": "protocol static { preference 65536; }\n",
    "import limit": "protocol static { import limit 10 action warn; }\n",
    "import limit off": "protocol static { import limit off; }\n",
    "bgp": _BGP.format(
        remote=1,
        extra="multihop; passive; rr client; rr cluster id 1.2.3.4; "
        "next hop self; add paths rx; gateway recursive; allow local as 2; connect delay time 2; "
        "connect retry time 5; error wait time 5,30; keepalive time 10; hold time 30; "
        'graceful restart on; graceful restart time 60; password "pw"; ttl security on; '
        "source address 10.0.0.1; bfd graceful; igp table master;",
    ),
    "bgp local with address": "protocol bgp p { local 10.0.0.1 as 1; neighbor 10.0.0.2 as 2; }\n",
    "bgp neighbor port": _BGP.format(remote=2, extra="neighbor port 180;"),
    "bgp neighbor port zero": "protocol bgp p { local as 1; neighbor 10.0.0.2 port 0 as 2; }\n",
    "bgp two neighbors": _BGP.format(remote=2, extra="neighbor 10.0.0.3 as 2;"),
    "bgp no local as": "protocol bgp p { neighbor 10.0.0.2 as 2; }\n",
    "bgp no neighbor": "protocol bgp p { local as 1; }\n",
    "bgp no remote as": "protocol bgp p { local as 1; neighbor 10.0.0.2; }\n",
    "bgp ebgp rr client": _BGP.format(remote=2, extra="rr client;"),
    "bgp multihop direct gateway": _BGP.format(remote=2, extra="multihop 2; gateway direct;"),
    "bgp ibgp direct gateway": _BGP.format(remote=1, extra="gateway direct;"),
    "bgp multihop range": _BGP.format(remote=2, extra="multihop 256;"),
    "bgp direct": _BGP.format(remote=1, extra="direct; gateway direct;"),
    "bgp add paths": _BGP.format(remote=1, extra="add paths tx; add paths off; add paths;"),
    "bgp template not checked": "template bgp t { local as 1; }\n" + _DEVICE,
    "bgp from template": "template bgp t { local as 1; }\nprotocol bgp p from t { "
    "neighbor 10.0.0.2 as 1; }\n",
    "bgp template neighbor twice": "template bgp t { local as 1; neighbor 10.0.0.3 as 1; }\n"
    "protocol bgp p from t { neighbor 10.0.0.2 as 1; }\n",
    "bgp bfd multihop": _BGP.format(remote=2, extra="multihop; bfd on;"),
    "filter named": "filter f { accept; }\nprotocol static { import filter f; }\n",
    "filter missing": "protocol static { import filter f; }\n",
    "filter where": "protocol static { import where net ~ 10.0.0.0/8; }\n",
    "filter inline": "protocol static { export filter int x; { x = 1; if x > 0 then accept; "
    "reject; }; }\n",
    "filter not a filter": "function f() { accept; }\nprotocol static { import filter f; }\n",
    "function params": "function f(int a; prefix b) { if b.len > a then accept; }\n"
    "filter g { f(1, net); reject; }\n" + _DEVICE,
    "function comma params": "function f(int a, int b) { accept; }\n" + _DEVICE,
    "function wrong arity": "function f(int a) { accept; }\nfilter g { f(); }\n" + _DEVICE,
    "call non-function": "filter g { h(); }\n" + _DEVICE,
    "call before definition": "filter g { f(); }\nfunction f() { accept; }\n" + _DEVICE,
    "assign to attribute": "filter g { bgp_med = 5; bgp_local_pref = 1; accept; }\n" + _DEVICE,
    "assign to static is refused": "filter g { gw = 10.0.0.1; accept; }\n" + _DEVICE,
    "assign to read-only": "filter g { net = 10.0.0.0/8; accept; }\n" + _DEVICE,
    "assign to non-variable": "filter g { x = 5; accept; }\n" + _DEVICE,
    "undefined variable": "filter g { if x then accept; }\n" + _DEVICE,
    "set of type": "filter g int set s; prefix set p; { accept; }\n" + _DEVICE,
    "set of strings": "filter g string set s; { accept; }\n" + _DEVICE,
    "dangling else": "filter g { if true then if false then accept; else reject; }\n" + _DEVICE,
    "comparison chain": "filter g { if 1 = 1 = 1 then accept; }\n" + _DEVICE,
    "not binds tight": "filter g { if !1 = 1 then accept; }\n" + _DEVICE,
    "case": "filter g { case net.len { 8: accept; 16..24, 32: reject; else: accept; } }\n"
    + _DEVICE,
    "case else with space": "filter g { case 1 { else : accept; } }\n" + _DEVICE,
    "case symbol arm": "define X = 1;\nfilter g { case 1 { X: accept; } }\n" + _DEVICE,
    "attribute methods": "filter g { bgp_path.prepend(1); bgp_community.add((1,2)); "
    "bgp_community.delete([(1,*)]); bgp_community.filter([(1,*)]); bgp_path.empty; "
    "bgp_large_community.add((1,2,3)); accept; }\n" + _DEVICE,
    "empty a number attribute": "filter g { bgp_med.empty; accept; }\n" + _DEVICE,
    "unset": "filter g { unset(bgp_med); accept; }\n" + _DEVICE,
    "print and terminations": 'filter g { print "a", 1; printn "b"; accept "c"; }\n' + _DEVICE,
    "pair constant out of range": "filter g { if (70000, 1) ~ bgp_community then accept; }\n"
    + _DEVICE,
    "pair of booleans": "filter g { if (true, 1) ~ bgp_community then accept; }\n" + _DEVICE,
    "ec constant": "filter g { bgp_ext_community.add((rt, 65536, 70000)); accept; }\n" + _DEVICE,
    "pair set reversed": "filter g { if bgp_community ~ [(5..1, 2)] then accept; }\n" + _DEVICE,
    "prefix set bad range": "filter g { if net ~ [10.0.0.0/8{24,16}] then accept; }\n" + _DEVICE,
    "prefix set host bits": "filter g { if net ~ [10.0.0.1/8] then accept; }\n" + _DEVICE,
    "path masks": "filter g { if bgp_path ~ [= 1 * 2..3 ? =] && bgp_path ~ / 1 ? / then "
    "accept; }\n" + _DEVICE,
    "define set": "define S = [1, 2];\nfilter g { if 1 ~ S then accept; }\n" + _DEVICE,
    "define runtime error": "define S = 1 + true;\n" + _DEVICE,
    "eval": "eval 1 + 1;\n" + _DEVICE,
    "eval non-int": "eval true;\n" + _DEVICE,
    "quoted symbol": "function 'a-b.c:d'() { accept; }\nfilter g { 'a-b.c:d'(); }\n" + _DEVICE,
    "quoted keyword": "filter g { 'accept'; }\n" + _DEVICE,
    "keyword as name": "filter area { accept; }\n" + _DEVICE,
    "enum as name": "define RTS_BGP = 1;\n" + _DEVICE,
    "lower-case enum is a name": "define rts_bgp = 1;\n" + _DEVICE,
    "long symbol": "define " + "a" * 65 + " = 1;\n" + _DEVICE,
    "symbol of 64": "define " + "a" * 64 + " = 1;\n" + _DEVICE,
    "number out of range": "define X = 4294967296;\n" + _DEVICE,
    "hex number": "define X = 0xFFFFFFFF;\n" + _DEVICE,
    "bad address": "define X = 256.0.0.1;\n" + _DEVICE,
    "ipv6 in bird": "define X = 2001:db8::1;\n" + _DEVICE,
    "unterminated string": 'define X = "abc\n;\n' + _DEVICE,
    "unterminated string at end": 'define X = "abc',
    "unterminated comment": _DEVICE + "/* no end\n",
    "nested comment": "/* a /* b */ */\n" + _DEVICE,
    "comments": "# hash\n/* block\n spanning */ protocol device { # inside\n}\n",
    "carriage return": "protocol device {}\r\n",
    "unknown character": "protocol device { @ }\n",
    "missing brace at end": "protocol device {\n",
    "missing brace no newline": "protocol device {",
    "trailing blanks": "protocol device {  ",
    "trailing comment": "protocol device { # x",
    "unsupported bgp option is refused": _BGP.format(remote=1, extra="enable route refresh;"),
    "unsupported protocol is refused": "protocol ospf {}\n",
}


# Myna needs a router id to run (BIRD would pick one from the interfaces): every case but
# these starts with one.
_WITHOUT_ROUTER_ID = frozenset({"no router id is refused", "empty file"})


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_handwritten_configuration_is_read_as_bird_reads_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bird.cfg"
    prefix = "" if name in _WITHOUT_ROUTER_ID else "router id 1.2.3.4;\n"
    path.write_text(prefix + CASES[name])
    bird, myna = both(path)
    if UNSUPPORTED in myna[1]:
        assert name.endswith("is refused"), f"{name}: Myna refuses {myna[1]!r}"
        assert myna[0] == 1
        return
    assert myna == bird


def _with_includes(tmp_path: Path, main: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    path = tmp_path / "bird.cfg"
    path.write_text(main)
    return path


INCLUDES: dict[str, tuple[str, dict[str, str]]] = {
    "relative": ('include "a.cfg";\n', {"a.cfg": _DEVICE}),
    "subdirectory": ('include "d/a.cfg";\n', {"d/a.cfg": 'include "b.cfg";\n', "d/b.cfg": _DEVICE}),
    "glob": ('include "p*.cfg";\n', {"p1.cfg": "protocol static s1 {}\n", "p2.cfg": _DEVICE}),
    "glob nothing": ('include "none*.cfg";\n' + _DEVICE, {}),
    "missing": ('include "nope.cfg";\n' + _DEVICE, {}),
    "error inside": ('include "a.cfg";\n', {"a.cfg": "protocol device {\n  nonsense;\n}\n"}),
    "not at line start": ('protocol device {} include "a.cfg";\n', {"a.cfg": ""}),
    "indented": ('  include "a.cfg";\n', {"a.cfg": _DEVICE}),
    "inside a block": (
        'protocol static {\ninclude "r.cfg";\n}\n', {"r.cfg": "route 10.0.0.0/8 drop;"}
    ),
    "too deep": (
        'include "i1.cfg";\n', {f"i{n}.cfg": f'include "i{n + 1}.cfg";\n' for n in range(1, 9)}
    ),
    "empty name": ('include "";\n' + _DEVICE, {}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(INCLUDES))
def test_includes_are_read_as_bird_reads_them(tmp_path: Path, name: str) -> None:
    main, files = INCLUDES[name]
    path = _with_includes(tmp_path, "router id 1.2.3.4;\n" + main, files)
    bird, myna = both(path)
    assert myna == bird


# --- Calico's files, mutated -----------------------------------------------------------------

_REPLACEMENTS = (
    "{", "}", ";", "(", ")", "as", "1", "10.0.0.1", "accept", "reject", "filter", "=", "then",
    "if", "else", "net", "~", "10.0.0.0/8", '"x"', ",", "protocol", "bgp", "function", "..",
    "[", "]", "where", "all", "none", "import", "export", "local", "neighbor", "multihop",
    "print", "define", "x1", "RTS_BGP", "true", "!", "&&", "-", "+empty+", "[=", "=]", "*",
    ".", "len", "case", "return", "krt_metric", "bgp_path", "prepend",
)  # fmt: skip


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(f"the confd corpus is missing: {CORPUS}", pytrace=False)
    return sorted(
        path
        for path in CORPUS.rglob("bird*.cfg")
        if path.name in ("bird.cfg", "bird6.cfg") and "krt_tunnel" not in _all_text(path)
    )


def _all_text(path: Path) -> str:
    return "".join(p.read_text() for p in path.parent.glob("*.cfg"))


def _main_tokens(text: str, ipv6: bool) -> list[Token]:
    lexer = Lexer("main.cfg", ipv6=ipv6, text=text)
    found = []
    while True:
        try:
            token = lexer.next()
        except BirdConfigError:
            break
        if token.kind is TokenKind.END:
            break
        if token.position.file == "main.cfg":
            found.append(token)
    return found


def _span(text: str, token: Token) -> tuple[int, int]:
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[: token.position.line - 1])
    start += token.position.column - 1
    end = start + 1
    while (
        end <= len(text)
        and _main_tokens(text[start:end], False)[:1] != []
        and (text[start:end].strip() == text[start:end])
    ):
        end += 1
    # the token's text as written: the lexer's longest match from its start
    length = len(token.text)
    if token.kind is TokenKind.TEXT:
        length = len(str(token.value)) + 2
    elif token.kind is TokenKind.SYMBOL and text[start] == "'":
        length += 2
    return start, start + length


def _mutated(text: str, ipv6: bool, rng: random.Random) -> str:
    tokens = _main_tokens(text, ipv6)
    index = rng.randrange(len(tokens))
    start, end = _span(text, tokens[index])
    how = rng.choice(("delete", "double", "replace", "swap"))
    if how == "delete":
        return text[:start] + text[end:]
    if how == "double":
        return text[:start] + text[start:end] + " " + text[start:]
    if how == "replace":
        return text[:start] + rng.choice(_REPLACEMENTS) + text[end:]
    if index + 1 >= len(tokens):
        return text
    start2, end2 = _span(text, tokens[index + 1])
    return text[:start] + text[start2:end2] + text[end:start2] + text[start:end] + text[end2:]


def _mutations(seed: int, count: int) -> list[tuple[Path, int]]:
    rng = random.Random(seed)
    files = _corpus_files()
    return [(rng.choice(files), rng.randrange(1 << 30)) for _ in range(count)]


@pytest.mark.parametrize(("source", "seed"), _mutations(seed=14, count=240))
def test_a_mutated_calico_file_is_accepted_exactly_when_bird_accepts_it(
    tmp_path: Path, source: Path, seed: int
) -> None:
    ipv6 = source.name == "bird6.cfg"
    for included in source.parent.glob("*.cfg"):
        shutil.copy(included, tmp_path)
    mutated = _mutated(source.read_text(), ipv6, random.Random(seed))
    path = tmp_path / "main.cfg"
    path.write_text(mutated)
    bird, myna = both(path, ipv6)
    if UNSUPPORTED in myna[1]:
        # outside what Myna implements; which constructs these are is visible in the log
        assert myna[0] == 1
        print(f"{source} #{seed}: {myna[1].strip()}")
        return
    assert myna == bird, f"{source} mutated with seed {seed}"


def _every_corpus_file() -> list[Path]:
    if not CORPUS.is_dir():
        return [Path("<corpus missing>")]
    return sorted(p for p in CORPUS.rglob("bird*.cfg") if p.name in ("bird.cfg", "bird6.cfg"))


@pytest.mark.parametrize("path", _every_corpus_file(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_the_corpus_is_read_as_stock_bird_16_reads_it(path: Path) -> None:
    """Stock BIRD 1.6 accepts every file but the one that sets krt_tunnel (Calico's fork)."""
    if not CORPUS.is_dir():
        pytest.fail(f"the confd corpus is missing: {CORPUS}", pytrace=False)
    ipv6 = path.name == "bird6.cfg"
    bird, myna = both(path, ipv6)
    assert myna == (0, "")  # Myna has Calico's krt_tunnel too
    fork_only = "krt_tunnel" in "".join(
        p.read_text() for p in path.parent.glob("bird6_*.cfg" if ipv6 else "bird_*.cfg")
    )
    if fork_only:
        assert bird[0] == 1
        assert "You may set only variables." in bird[1]
    else:
        assert bird == (0, "")
