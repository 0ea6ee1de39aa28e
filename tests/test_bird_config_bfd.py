"""BIRD 1.6's ``protocol bfd`` in a bird.cfg: read as ``bird -p`` reads it, mapped as BIRD runs it.

Syntax: stock BIRD 1.6.8 is the oracle (``bird16_oracle``): every case is run through ``bird
-p`` and ``myna bird -p`` and both outcomes (exit status, stderr: BIRD's ``FILE:LINE:COL
message`` and its parse-time warnings) must be equal, valid files and invalid ones alike; what
BIRD 2 added (``accept``, ``strict bind``, ``zero udp6 checksum rx``, BGP's ``bfd { ... }``)
is among the invalid ones; a dense BFD configuration mutated at random (a token deleted,
doubled, replaced or swapped) is compared the same way. Cases Myna refuses ("not supported by
Myna") are named so.

Mapping: the ``bfd`` block each BGP peer gets, with expected values from BIRD 1.6.8's source
and documentation: the defaults of ``proto/bfd/bfd.h`` (``BFD_DEFAULT_MIN_RX_INT`` 10 ms,
``BFD_DEFAULT_MIN_TX_INT`` 100 ms, ``BFD_DEFAULT_IDLE_TX_INT`` 1 s, ``BFD_DEFAULT_MULTIPLIER``
5); ``bgp_update_bfd`` (a multihop BGP session asks for a multihop BFD session, a direct one
for a session on the neighbor's interface); ``bfd_find_iface_config`` (the multihop block,
else the first interface block matching, else the defaults: "the first matching interface
block is used", BIRD's documentation of interface patterns); ``bfd_add_request`` (sessions are
found by address, so a ``neighbor`` entry decides the session); ``expr_us``'s u32 arithmetic;
``bfd_copy_config`` (``from`` copies no block nor neighbor); packets.c's password handling
(the first password signs; 16 / 20 octets of it are used). The daemon side: the interface
blocks choose at session start by the interface whose connected network holds the peer.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from bird16_oracle import both
from test_bfd_wiring import Engine, Session
from test_bird_config_oracle_syntax import _mutated

from bfd.wire_codes import AuthType, HopMode
from bgpd import bfd_peers
from bgpd.bfd_config import BfdModel
from bgpd.bfd_peers import BfdPeers, connected_interface
from bgpd.bird_config import config_model as m
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.daemon_config import daemon_config_from_bird
from bgpd.bird_config.errors import BirdConfigError
from bgpd.cli import main as myna_main
from bgpd.config import ConfigError, Peer, parse_config

UNSUPPORTED = "not supported by Myna"
_HEAD = "router id 198.18.0.1;\nprotocol device {}\n"
# BGP protocols asking for BFD (so that the neighbor entries of the cases have a client)
_BGP = (
    "template bgp t { local as 64512; source address 198.18.0.1; bfd on; }\n"
    "protocol bgp p2 from t { neighbor 198.18.0.2 as 64512; }\n"
    "protocol bgp p3 from t { neighbor 198.18.0.3 as 64513; }\n"
)
_BGP6 = (
    "template bgp t { local as 64512; source address 2001:db8::1; bfd on; }\n"
    "protocol bgp p2 from t { neighbor 2001:db8::2 as 64512; }\n"
)


def _bfd(body: str) -> str:
    return f"protocol bfd {{ {body} }}\n"


def _block(options: str) -> str:
    return _bfd(f'interface "eth*" {{ {options} }};')


VALID: dict[str, str] = {
    "empty": _bfd(""),
    "named": "protocol bfd b1 {}\n",
    "stray semicolons": _bfd(";;"),
    "interface without options": _bfd('interface "eth*";'),
    "interface with empty options": _bfd('interface "eth*" {};'),
    "several patterns and blocks": _bfd(
        'interface -"eth1", "eth*" { interval 50 ms; }; interface "ens*", "-x" { multiplier 3; };'
    ),
    "pattern with a zero-length prefix": _bfd('interface "eth*" 0.0.0.0/0;'),
    "pattern with a zero-length netmask": _bfd('interface "eth*" 0.0.0.0:0.0.0.0;'),
    "every interval": _block(
        "interval 20 ms; min rx interval 10 ms; min tx interval 1 s; idle tx interval 2 s;"
    ),
    "microseconds": _block("min rx interval 500 us;"),
    "interval expressions": "define I = 30;\n"
    + _block("interval I ms; min tx interval (I * 2) ms;"),
    "interval wraps as u32": _block("interval 5000 s;"),
    "interval of zero": _block("interval 0 ms;"),
    "multiplier": _block("multiplier 3;"),
    "multiplier beyond an octet": _block("multiplier 300;"),
    "passive": _block("passive; passive off; passive yes; passive 0;"),
    "authentication none": _block("authentication none;"),
    "authentication simple": _block('authentication simple; password "s3cret";'),
    "authentication keyed md5": _block('authentication keyed md5; password "s3cret";'),
    "authentication keyed sha1": _block('authentication keyed sha1; password "s3cret";'),
    "authentication meticulous md5": _block(
        'authentication meticulous keyed md5; password "s3cret";'
    ),
    "authentication meticulous sha1": _block(
        'authentication meticulous keyed sha1; password "s3cret";'
    ),
    "password with an id": _block('authentication simple; password "s3cret" { id 7; };'),
    "password with empty options": _block('authentication simple; password "s3cret" {};'),
    "password constant": 'define PW = "s3cret";\n' + _block("authentication simple; password PW;"),
    "passwords block": _block(
        'authentication keyed md5; passwords { password "a"; password "b" { id 5; }; };'
    ),
    "empty passwords block": _block("passwords { };"),
    "first id written stays": _block('authentication simple; password "x" { id 5; id 6; };'),
    "authentication without password warns": _block("authentication keyed sha1;"),
    "password without authentication warns": _block('password "s3cret";'),
    "both warnings in order": _bfd(
        'interface "a" { password "x"; }; interface "b" { authentication simple; };'
    ),
    "multihop block": _bfd("multihop { interval 200 ms; multiplier 4; };"),
    "multihop without options": _bfd("multihop;"),
    "two multihop blocks": _bfd("multihop { interval 1 s; }; multihop { multiplier 3; };"),
    "neighbor": _bfd("neighbor 198.18.0.2;") + _BGP,
    "neighbor dev": _bfd('neighbor 198.18.0.2 dev "eth0";') + _BGP,
    "neighbor dev constant": 'define D = "eth0";\n' + _bfd("neighbor 198.18.0.2 dev D;") + _BGP,
    "neighbor percent": _bfd("neighbor 198.18.0.2 % eth0;") + _BGP,
    "neighbor local": _bfd("neighbor 198.18.0.2 local 198.18.0.1;") + _BGP,
    "neighbor multihop": _bfd("neighbor 198.18.0.2 local 198.18.0.1 multihop;") + _BGP,
    "neighbor multihop on": _bfd("neighbor 198.18.0.2 local 198.18.0.1 multihop on;") + _BGP,
    "neighbor multihop off": _bfd('neighbor 198.18.0.2 dev "eth0" multihop off;') + _BGP,
    "neighbor multihop zero": _bfd('neighbor 198.18.0.2 dev "eth0" multihop 0;') + _BGP,
    "neighbor address constant": "define N = 198.18.0.2;\n" + _bfd("neighbor N;") + _BGP,
    "generic options": _bfd(
        'description "x"; debug all; preference 5; import all; export none; table master;'
    ),
    "template": 'template bfd t { interface "eth*" { interval 50 ms; }; }\n'
    + "protocol bfd from t { disabled no; }\n",
    "bfd on without a bfd protocol": _BGP,
    "bfd graceful": _bfd("")
    + "protocol bgp p { local as 1; neighbor 198.18.0.2 as 2; bfd graceful; }\n",
}

INVALID: dict[str, str] = {
    "interval without unit": _block("interval 100;"),
    "interval with a wrong unit": _block("interval 100 ns;"),
    "min without rx or tx": _block("min interval 10 ms;"),
    "min rx without interval": _block("min rx 10 ms;"),
    "idle rx": _block("idle rx interval 1 s;"),
    "multiplier without value": _block("multiplier;"),
    "authentication missing": _block("authentication;"),
    "authentication keyed alone": _block('authentication keyed; password "x";'),
    "authentication md5 alone": _block('authentication md5; password "x";'),
    "authentication meticulous md5": _block('authentication meticulous md5; password "x";'),
    "authentication keyed sha256": _block('authentication keyed sha256; password "x";'),
    "password without text": _block("authentication simple; password;"),
    "password id zero": _block('authentication simple; password "x" { id 0; };'),
    "password id zero after another": _block(
        'authentication simple; password "x" { id 3; id 0; };'
    ),
    "password id zero before another": _block(
        'authentication simple; password "x" { id 0; id 3; };'
    ),
    "password id without semicolon": _block('authentication simple; password "x" { id 1 };'),
    "password algorithm": _block(
        'authentication keyed md5; password "x" { algorithm keyed md5; };'
    ),
    "password algorithm hmac": _block(
        'authentication simple; password "x" { algorithm hmac sha256; };'
    ),
    "password bad algorithm": _block('authentication simple; password "x" { algorithm md5; };'),
    "passwords item without semicolon": _block('passwords { password "x" };'),
    "passwords not a password": _block("passwords { id 5; };"),
    "unknown block option": _block("hello 5;"),
    "a warning, then an error": _bfd('interface "a" { password "x"; }; interface "b" { hello; };'),
    "a warning, then the algorithm error": _bfd(
        'interface "a" { password "x" { algorithm keyed sha1; }; };'
    ),
    "block option without semicolon": _block("interval 10 ms"),
    "empty block option": _block(";"),
    "block without semicolon": _bfd('interface "eth*" {}'),
    "interface without pattern": _bfd("interface;"),
    "interface with braces only": _bfd("interface { };"),
    "interface trailing comma": _bfd('interface "eth*", ;'),
    "interface dash only": _bfd("interface -;"),
    "interface address": _bfd('interface "eth*" 198.18.0.1;'),
    "interface prefix": _bfd('interface "eth*" 198.18.0.0/15 { interval 10 ms; };'),
    "interface prefix first": _bfd('interface 198.18.0.0/15, "x";'),
    "interface invalid prefix": _bfd('interface "eth*" 198.18.0.1/15;'),
    "interface prefix too long": _bfd('interface "eth*" 198.18.0.0/33;'),
    "interface bad netmask": _bfd('interface "eth*" 198.18.0.0:255.0.255.0;'),
    "interface string constant": 'define I = "eth*";\n' + _bfd("interface I;"),
    "interface ipv6 in bird": _bfd('interface "eth*" 2001:db8::/32;'),
    "multihop with a pattern": _bfd('multihop "x" { };'),
    "multihop with a number": _bfd("multihop 5;"),
    "neighbor without address": _bfd("neighbor;"),
    "neighbor prefix": _bfd("neighbor 198.18.0.0/15;"),
    "neighbor ipv6 in bird": _bfd("neighbor 2001:db8::1;"),
    "neighbor not an address": "define N = 5;\n" + _bfd("neighbor N;"),
    "neighbor local not an address": 'define N = "x";\n' + _bfd("neighbor 198.18.0.2 local N;"),
    "prefix length not a number": 'define N = "x";\n' + _bfd('interface "eth*" 198.18.0.0/N;'),
    "neighbor dev unquoted": _bfd("neighbor 198.18.0.2 dev eth0;"),
    "neighbor percent string": _bfd('neighbor 198.18.0.2 % "eth0";'),
    "neighbor percent keyword": _bfd("neighbor 198.18.0.2 % dev;"),
    "neighbor options out of order": _bfd("neighbor 198.18.0.2 multihop local 198.18.0.1;"),
    "neighbor local then dev": _bfd('neighbor 198.18.0.2 local 198.18.0.1 dev "eth0";'),
    "neighbor multihop without local": _bfd("neighbor 198.18.0.2 multihop on;"),
    "neighbor bare multihop without local": _bfd("neighbor 198.18.0.2 multihop;"),
    "neighbor multihop zero local": _bfd("neighbor 198.18.0.2 local 0.0.0.0 multihop 1;"),
    "neighbor dev and multihop": _bfd('neighbor 198.18.0.2 dev "eth0" multihop yes;'),
    "neighbor percent and bare multihop": _bfd("neighbor 198.18.0.2 % eth0 multihop;"),
    "unknown protocol option": _bfd("interval 10 ms;"),
    "bfd protocol name twice": "protocol bfd b {}\nprotocol bfd b {}\n",
    "from another type": "template bgp t { local as 1; }\nprotocol bfd from t {}\n",
    "bird 2: accept": _bfd("accept ipv4 direct;"),
    "bird 2: strict bind": _bfd("strict bind yes;"),
    "bird 2: zero udp6 checksum rx": _bfd("zero udp6 checksum rx;"),
    "bird 2: bfd block in bgp": "protocol bgp p { local as 1; neighbor 198.18.0.2 as 2; "
    "bfd { interval 100 ms; }; }\n",
    "bird 2: bfd graceful block": "protocol bgp p { local as 1; neighbor 198.18.0.2 as 2; "
    "bfd graceful { }; }\n",
}

INVALID6: dict[str, str] = {
    "neighbor ipv4 in bird6": _bfd("neighbor 198.18.0.2;"),
    "interface ipv6 prefix": _bfd('interface "eth*" 2001:db8::/32;'),
}
VALID6: dict[str, str] = {
    "neighbor": _bfd("neighbor 2001:db8::2 local 2001:db8::1 multihop on;") + _BGP6,
    "interface with zero-length prefix": _bfd('interface "eth*" ::/0 { interval 50 ms; };'),
}

REFUSED: dict[str, str] = {
    "password validity times": _block('password "x" { generate from "01-01-2020 00:00:00"; };'),
    "password accept to": _block('password "x" { accept to "01-01-2030 00:00:00"; };'),
    "a second bfd protocol": "protocol bfd {}\nprotocol bfd {}\n",
    "a disabled bfd protocol": _bfd("disabled;"),
    "a neighbor without a client": _bfd("neighbor 198.18.0.9;") + _BGP,
    "a neighbor of a bgp protocol without bfd": _bfd("neighbor 198.18.0.2;")
    + "protocol bgp p2 { local as 64512; neighbor 198.18.0.2 as 64512; }\n",
    "an idle tx interval under 1 s in use": _bfd("multihop { idle tx interval 500 ms; };") + _BGP,
}


def _write(tmp_path: Path, body: str, name: str = "bird.cfg") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize("name", sorted(VALID))
def test_bird_16_accepts_it_and_so_does_myna(tmp_path: Path, name: str) -> None:
    bird, myna = both(_write(tmp_path, _HEAD + VALID[name]))
    assert bird[0] == 0, bird
    assert myna == bird


@pytest.mark.parametrize("name", sorted(INVALID))
def test_bird_16_refuses_it_with_the_same_message_at_the_same_place(
    tmp_path: Path, name: str
) -> None:
    bird, myna = both(_write(tmp_path, _HEAD + INVALID[name]))
    assert bird[0] == 1, bird
    assert myna == bird


@pytest.mark.parametrize("name", sorted(VALID6))
def test_bird6_accepts_it_and_so_does_myna(tmp_path: Path, name: str) -> None:
    bird, myna = both(_write(tmp_path, _HEAD + VALID6[name], "bird6.cfg"), ipv6=True)
    assert bird[0] == 0, bird
    assert myna == bird


@pytest.mark.parametrize("name", sorted(INVALID6))
def test_bird6_refuses_it_and_so_does_myna(tmp_path: Path, name: str) -> None:
    bird, myna = both(_write(tmp_path, _HEAD + INVALID6[name], "bird6.cfg"), ipv6=True)
    assert bird[0] == 1, bird
    assert myna == bird


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_myna_cannot_run_is_refused_by_name(tmp_path: Path, name: str) -> None:
    bird, myna = both(_write(tmp_path, _HEAD + REFUSED[name]))
    assert bird[0] == 0, bird  # BIRD runs it
    assert myna[0] == 1 and UNSUPPORTED in myna[1], myna


# --- the mapping ----------------------------------------------------------------------------


def _peers(text: str, ipv6: bool = False) -> dict[str, Peer]:
    head = "router id 198.18.0.1;\nprotocol device {}\n"
    config = read_bird_config("bird6.cfg" if ipv6 else "bird.cfg", ipv6=ipv6, text=head + text)
    return {peer.name or peer.address: peer for peer in daemon_config_from_bird(config).peers}


def _bfd_of(text: str, name: str = "p", ipv6: bool = False) -> BfdModel:
    bfd = _peers(text, ipv6)[name].bfd
    assert bfd is not None
    return bfd


def _refusal(text: str) -> str:
    head = "router id 198.18.0.1;\nprotocol device {}\n"
    with pytest.raises(BirdConfigError) as caught:
        daemon_config_from_bird(read_bird_config("bird.cfg", text=head + text))
    assert UNSUPPORTED in str(caught.value)
    return str(caught.value)


IBGP = "protocol bgp p { local as 64512; source address 198.18.0.1; neighbor 198.18.0.2 as 64512; "
EBGP = "protocol bgp p { local as 64512; neighbor 198.18.0.2 as 64513; "  # direct: one hop
DEFAULTS = (10.0, 100.0, 1000.0, 5, False)  # proto/bfd/bfd.h: rx 10 ms, tx 100 ms, idle 1 s, 5


def _timers(bfd: BfdModel) -> tuple[float, float, float, int, bool]:
    return (bfd.min_rx, bfd.min_tx, bfd.idle_tx, bfd.multiplier, bfd.passive)


def test_bfd_off_is_no_block_and_on_without_a_bfd_protocol_runs_no_session() -> None:
    # bfd_submit_request: with no bfd protocol the request waits on bfd_wait_list forever
    peers = _peers(
        EBGP
        + "}\n"
        + IBGP.replace("p {", "q {").replace(".0.2 as", ".0.3 as")
        + "bfd graceful; }\n"
    )
    assert peers["p"].bfd is None
    bfd = peers["q"].bfd
    assert bfd is not None and not bfd.enabled and bfd.graceful
    assert not peers["q"].bfd_enabled


def test_a_bfd_protocol_without_blocks_gives_birds_defaults() -> None:
    bfd = _bfd_of("protocol bfd {}\n" + IBGP + "bfd on; }\n")
    assert (bfd.enabled, bfd.graceful, bfd.auth, bfd.interfaces) == (True, False, "none", ())
    assert _timers(bfd) == DEFAULTS
    assert _bfd_of("protocol bfd {}\n" + IBGP + "bfd graceful; }\n").graceful


MULTIHOP_BLOCK = (
    "protocol bfd {\n"
    '  interface "eth*" { interval 20 ms; multiplier 2; };\n'
    "  multihop { min rx interval 300 ms; min tx interval 200 ms; idle tx interval 2 s;"
    " multiplier 4; passive; };\n"
    "}\n"
)


@pytest.mark.parametrize(
    "session",
    [IBGP + "bfd on; }", EBGP + "multihop 2; source address 198.18.0.1; bfd on; }",
     EBGP + "multihop 1; source address 198.18.0.1; bfd on; }"],
    ids=["ibgp-default-multihop", "ebgp-multihop-2", "ebgp-multihop-1"],
)  # fmt: skip
def test_a_multihop_session_takes_the_multihop_block(session: str) -> None:
    # bgp_update_bfd: cf->multihop (iBGP's default 64, or multihop N, even 1) -> iface NULL
    # -> bfd_find_iface_config returns cf->multihop
    bfd = _bfd_of(MULTIHOP_BLOCK + session + "\n")
    assert bfd.multihop is True and bfd.interfaces == ()
    assert _timers(bfd) == (300.0, 200.0, 2000.0, 4, True)


def test_a_multihop_session_without_a_multihop_block_gets_the_defaults() -> None:
    bfd = _bfd_of('protocol bfd { interface "eth*" { interval 20 ms; }; }\n' + IBGP + "bfd on; }\n")
    assert bfd.multihop is True and _timers(bfd) == DEFAULTS and bfd.interfaces == ()


def test_a_single_hop_session_carries_the_interface_blocks_to_run_time() -> None:
    text = (
        "protocol bfd {\n"
        '  interface -"eth1", "eth*" { interval 20 ms; multiplier 2; };\n'
        '  interface "eth1", "-ens3", "ens*" { min tx interval 50 ms; authentication simple;'
        ' password "pw"; };\n'
        '  interface "lo" { };\n'  # BIRD's defaults: still a match, it shadows nothing after
        "  multihop { interval 1 s; };\n"
        "}\n"
    )
    for session in (EBGP + "bfd on; }\n", IBGP + "direct; bfd on; }\n"):
        bfd = _bfd_of(text + session)
        assert bfd.multihop is False  # direct: single-hop BFD on the neighbor's interface
        assert _timers(bfd) == DEFAULTS  # no block matching: bfd_default_iface
        assert [rule.patterns for rule in bfd.interfaces] == [
            ("-eth1", "eth*"), ("eth1", "-ens3", "ens*"), ("lo",),
        ]  # fmt: skip
        # iface_patt_find: the first block whose pattern list admits the interface
        eth0, eth1, ens3, ens4 = (bfd.for_interface(n) for n in ("eth0", "eth1", "ens3", "ens4"))
        assert _timers(eth0) == (20.0, 20.0, 1000.0, 2, False) and eth0.auth == "none"
        assert (eth1.min_tx, eth1.auth, eth1.password, eth1.key_id) == (50.0, "simple", "pw", 1)
        assert _timers(ens3) == DEFAULTS and ens3.auth == "none"  # excluded, no later block
        assert ens4.auth == "simple"
        assert _timers(bfd.for_interface("lo")) == DEFAULTS
        assert bfd.for_interface("wlan0") == bfd.for_interface(None)
        assert bfd.for_interface("eth0").interfaces == ()


def test_a_pattern_list_is_read_in_order_and_the_first_match_decides() -> None:
    # iface_patt_match walks the list and returns at the first pattern matching the name:
    # "eth*" before -"eth1" admits eth1 too
    bfd = _bfd_of('protocol bfd { interface "eth*", -"eth1" { interval 20 ms; }; }\n'
                  + EBGP + "bfd on; }\n")  # fmt: skip
    assert bfd.for_interface("eth1").min_tx == 20.0


def test_a_dash_inside_the_quotes_negates_as_birds_iface_patt_match_does() -> None:
    text = (
        'protocol bfd { interface "-eth1", -"-ens*", "*" { interval 20 ms; }; }\n'
        + EBGP + "bfd on; }\n"
    )  # fmt: skip
    bfd = _bfd_of(text)
    (rule,) = bfd.interfaces
    assert rule.patterns == ("-eth1", "ens*", "*")
    assert bfd.for_interface("eth1").min_tx == 100.0  # excluded
    assert bfd.for_interface("ens5").min_tx == 20.0  # -"-ens*": a double negation
    assert bfd.for_interface("eth0").min_tx == 20.0


def test_blocks_that_all_say_the_defaults_are_not_carried() -> None:
    bfd = _bfd_of('protocol bfd { interface "eth*"; interface "ens*" { multiplier 5; }; }\n'
                  + EBGP + "bfd on; }\n")  # fmt: skip
    assert bfd.interfaces == () and _timers(bfd) == DEFAULTS


def test_a_neighbor_entry_decides_the_path_and_its_interface_the_block() -> None:
    text = (
        "protocol bfd {\n"
        '  interface "eth0" { interval 20 ms; };\n'
        '  interface "eth1" { interval 30 ms; };\n'
        "  multihop { interval 40 ms; };\n"
        '  neighbor 198.18.0.2 dev "eth1";\n'
        "  neighbor 198.18.0.3 local 198.18.0.1 multihop on;\n"
        "  neighbor 198.18.0.4 % eth0 local 198.18.0.9;\n"
        "  neighbor 198.18.0.5;\n"
        "}\n"
        "template bgp t { local as 64512; source address 198.18.0.1; bfd on; }\n"
        "protocol bgp p2 from t { neighbor 198.18.0.2 as 64512; }\n"  # iBGP: multihop itself
        "protocol bgp p3 from t { neighbor 198.18.0.3 as 64513; }\n"  # eBGP direct itself
        "protocol bgp p4 from t { neighbor 198.18.0.4 as 64513; }\n"
        "protocol bgp p5 from t { neighbor 198.18.0.5 as 64512; }\n"
    )
    peers = {name: _bfd_of(text, name) for name in ("p2", "p3", "p4", "p5")}
    # bfd_add_request finds the neighbor's session by address: its path, its interface's block
    assert (peers["p2"].multihop, peers["p2"].min_tx, peers["p2"].interfaces) == (False, 30.0, ())
    assert (peers["p3"].multihop, peers["p3"].min_tx) == (True, 40.0)
    assert peers["p3"].local == "198.18.0.1"
    assert (peers["p4"].multihop, peers["p4"].min_tx, peers["p4"].local) == (
        False, 20.0, "198.18.0.9",
    )  # fmt: skip
    # single hop with no interface named: the interface blocks go to run time
    assert peers["p5"].multihop is False and len(peers["p5"].interfaces) == 2


def test_birds_units_and_integer_widths() -> None:
    def block(options: str) -> BfdModel:
        return _bfd_of(f"protocol bfd {{ multihop {{ {options} }}; }}\n" + IBGP + "bfd on; }\n")

    assert (block("interval 1 s;").min_rx, block("interval 1 s;").min_tx) == (1000.0, 1000.0)
    assert block("min rx interval 500 us;").min_rx == 0.5
    assert block("idle tx interval 3 s;").idle_tx == 3000.0
    # expr_us: (u32) 4295 * 1000000 wraps to 32704 us
    assert block("min tx interval 4295 s;").min_tx == 32.704
    # the multiplier is BIRD's u8: 261 is 5
    assert block("multiplier 261;").multiplier == 5
    assert block("passive;").passive and not block("passive no;").passive


AUTH_NAMES = {
    "simple": "simple", "keyed md5": "keyed_md5", "keyed sha1": "keyed_sha1",
    "meticulous keyed md5": "meticulous_md5", "meticulous keyed sha1": "meticulous_sha1",
}  # fmt: skip


@pytest.mark.parametrize("bird_name", sorted(AUTH_NAMES))
def test_authentication_is_the_blocks_type_and_first_password(bird_name: str) -> None:
    block = f'multihop {{ authentication {bird_name}; password "s3cret"; }};'
    bfd = _bfd_of(f"protocol bfd {{ {block} }}\n" + IBGP + "bfd on; }\n")
    assert (bfd.auth, bfd.password, bfd.key_id) == (AUTH_NAMES[bird_name], "s3cret", 1)
    assert bfd.auth_settings(bfd.password) is not None


def test_password_ids_and_lengths_as_bird_sends_them() -> None:
    def auth(options: str) -> tuple[str, str | None, int]:
        bfd = _bfd_of(f"protocol bfd {{ multihop {{ {options} }}; }}\n" + IBGP + "bfd on; }\n")
        return bfd.auth, bfd.password, bfd.key_id

    assert auth('authentication keyed md5; password "k" { id 7; };') == ("keyed_md5", "k", 7)
    # the first id written is the one that stays (right recursion)
    assert auth('authentication simple; password "k" { id 7; id 9; };') == ("simple", "k", 7)
    # BIRD sends MIN(length, 16) octets of a simple password; strncpy()s 16 / 20 for keyed
    assert auth('authentication simple; password "%s";' % ("a" * 20))[1] == "a" * 16
    assert auth('authentication keyed md5; password "%s";' % ("b" * 30))[1] == "b" * 16
    assert auth('authentication keyed sha1; password "%s";' % ("c" * 30))[1] == "c" * 20
    # passwords without authentication are not used (BIRD warned while reading)
    assert auth('password "k";') == ("none", None, 1)
    block = 'multihop { authentication keyed sha1; password "k" { id 3; }; };'
    model = _bfd_of(f"protocol bfd {{ {block} }}\n" + IBGP + "bfd on; }\n")
    settings = model.auth_settings(model.password)
    assert settings is not None
    assert (settings.auth_type, settings.send_key.key_id) == (AuthType.KEYED_SHA1, 3)


def test_a_template_copies_no_block_nor_neighbor() -> None:
    # bfd_copy_config: "neighbors and ifaces are non-sharable"; the multihop block is not copied
    text = (
        'template bfd t { interface "eth*" { interval 20 ms; }; multihop { interval 30 ms; };'
        " neighbor 198.18.0.7; }\n"
        "protocol bfd from t {}\n"
    )
    assert _bfd_of(text + EBGP + "bfd on; }\n").interfaces == ()
    assert _timers(_bfd_of(text + IBGP + "bfd on; }\n")) == DEFAULTS
    (protocol,) = read_bird_config("bird.cfg", text=_HEAD + text).of_type(m.ProtocolType.BFD)
    assert isinstance(protocol, m.BfdProtocol)
    assert (protocol.interfaces, protocol.multihop_block, protocol.neighbors) == ([], None, [])


def test_bird6() -> None:
    text = (
        'protocol bfd { interface "eth*" { interval 20 ms; };'
        " neighbor 2001:db8::3 local 2001:db8::1 multihop on; }\n"
        "template bgp t { local as 64512; source address 2001:db8::1; bfd on; }\n"
        "protocol bgp p2 from t { neighbor 2001:db8::2 as 64513; }\n"
        "protocol bgp p3 from t { neighbor 2001:db8::3 as 64513; }\n"
    )
    p2, p3 = _bfd_of(text, "p2", ipv6=True), _bfd_of(text, "p3", ipv6=True)
    assert p2.multihop is False and p2.interfaces[0].patterns == ("eth*",)
    assert (p3.multihop, p3.local) == (True, "2001:db8::1")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("protocol bfd {}\nprotocol bfd {}\n", "a second bfd protocol"),
        ("protocol bfd { disabled; }\n", "a disabled protocol"),
        ("protocol bfd { neighbor 198.18.0.9; }\n" + IBGP + "bfd on; }\n",
         "3:16 a BFD neighbor without a BGP protocol with bfd on"),
        ("protocol bfd { neighbor 198.18.0.2; }\n" + IBGP + "}\n", "a BFD neighbor without"),
        ("protocol bfd { multihop { idle tx interval 999 ms; }; }\n" + IBGP + "bfd on; }\n",
         "3:16 a BFD idle tx interval under 1 s"),
        ("protocol bfd { multihop { interval 0 ms; }; }\n" + IBGP + "bfd on; }\n",
         "a BFD min rx interval of 0"),
        ("protocol bfd { multihop { min tx interval 536870912 ms; }; }\n" + IBGP + "bfd on; }\n",
         "a BFD min tx interval of 0"),
        ("protocol bfd { multihop { multiplier 256; }; }\n" + IBGP + "bfd on; }\n",
         "a BFD multiplier of 0"),
        ("protocol bfd { multihop { authentication simple; }; }\n" + IBGP + "bfd on; }\n",
         "BFD authentication without a password"),
        ('protocol bfd { multihop { authentication simple; password "a"; password "b"; }; }\n'
         + IBGP + "bfd on; }\n", "3:64 a second BFD password"),
        ('protocol bfd { multihop { authentication simple; password "a" { id 256; }; }; }\n'
         + IBGP + "bfd on; }\n", "a BFD password id above 255"),
        ('protocol bfd { multihop { authentication simple; password ""; }; }\n'
         + IBGP + "bfd on; }\n", "an empty BFD password"),
        ('protocol bfd { interface "x" { passive; idle tx interval 10 ms; }; }\n'
         + EBGP + "bfd on; }\n", "a BFD idle tx interval under 1 s"),
    ],
)  # fmt: skip
def test_what_bird_would_run_but_myna_cannot_is_refused_at_its_place(text: str, what: str) -> None:
    assert what in _refusal(text)


def test_a_block_no_peer_uses_is_not_judged() -> None:
    # BIRD would use the multihop block for no session: nothing of it reaches Myna
    text = "protocol bfd { multihop { idle tx interval 10 ms; }; }\n" + EBGP + "bfd on; }\n"
    assert _bfd_of(text).enabled


def test_myna_check_shows_each_peers_effective_bfd_passwords_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        _HEAD + 'protocol bfd { interface "eth*" { authentication keyed sha1; password "s3cret";'
        " }; multihop { interval 300 ms; }; }\n" + EBGP + "bfd graceful; }\n"
        + IBGP.replace("p {", "q {").replace(".0.2 as", ".0.3 as") + "bfd on; }\n"
    )  # fmt: skip
    path = _write(tmp_path, text)
    assert myna_main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    shown = yaml.safe_load(out.split("# Calico inputs")[0])
    p, q = (peer["bfd"] for peer in shown["peers"])
    assert (p["enabled"], p["graceful"], p["multihop"]) == (True, True, False)
    assert p["interfaces"][0]["patterns"] == ["eth*"]
    assert p["interfaces"][0]["auth"] == "keyed_sha1"
    assert p["interfaces"][0]["password"] == "<hidden>"
    assert (q["multihop"], q["min_tx"], q["min_rx"], q["interfaces"]) == (True, 300.0, 300.0, [])


# --- the daemon: choosing the interface's block at session start --------------------------


def test_the_connected_interface_is_the_one_whose_network_holds_the_peer() -> None:
    assert connected_interface("127.0.0.1") == "lo"
    assert connected_interface("127.1.2.3") == "lo"  # 127.0.0.0/8 on lo
    assert connected_interface("::1") == "lo"
    # an address on no connected network: tests/test_interop_bird_cfg_bfd.py, in a namespace


LOOPBACK_PEER = "127.0.0.2"


def _wired_peer(bfd: dict[str, Any]) -> Peer:
    data = {"router_id": "198.18.0.1", "local_as": 64512, "peers": [
        {"address": LOOPBACK_PEER, "as": 64512, "multihop": 1, "bfd": bfd}]}  # fmt: skip
    (peer,) = parse_config(yaml.safe_dump(data)).peers
    return peer


@pytest.mark.asyncio
async def test_a_single_hop_session_takes_its_interfaces_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wiring, engine, session = BfdPeers(), Engine(), Session(local="127.0.0.1")
    wiring.service = engine  # type: ignore[assignment]
    session.name = LOOPBACK_PEER
    rules = [
        {"patterns": ["-lo", "*"], "min_tx": 20},
        {"patterns": ["l?"], "min_tx": 30, "multiplier": 3, "auth": "simple", "password": "pw"},
    ]
    wiring.attach(_wired_peer({"interfaces": rules}), session)  # type: ignore[arg-type]
    ((what, config),) = engine.calls
    # 127.0.0.2 is on lo (127.0.0.0/8): the second block
    assert what == "add" and config.mode is HopMode.SINGLE_HOP
    assert (config.desired_min_tx_us, config.detect_mult) == (30_000, 3)
    assert config.auth is not None and config.auth.auth_type is AuthType.SIMPLE_PASSWORD
    await wiring.refresh()
    assert wiring.rows[0]["auth"] == "simple"
    # the peer on no connected network: no session yet, and the wiring tries again
    monkeypatch.setattr(bfd_peers, "connected_interface", lambda _address: None)
    wiring.detach(LOOPBACK_PEER)
    engine.calls.clear()
    wiring.attach(_wired_peer({"interfaces": rules}), session)  # type: ignore[arg-type]
    entry = wiring.peers[LOOPBACK_PEER]
    assert engine.calls == [] and entry.retry is not None
    assert entry.error.startswith("the peer is on no connected network")
    await wiring.close()


@pytest.mark.asyncio
async def test_the_neighbor_entrys_local_address_is_the_sessions() -> None:
    wiring, engine, session = BfdPeers(), Engine(), Session(local="127.0.0.1")
    wiring.service = engine  # type: ignore[assignment]
    session.name = LOOPBACK_PEER
    wiring.attach(_wired_peer({"local": "127.0.0.9", "multihop": True}), session)  # type: ignore[arg-type]
    ((_, config),) = engine.calls
    assert (config.local, config.mode) == ("127.0.0.9", HopMode.MULTIHOP)
    await wiring.close()


# --- a BFD configuration mutated at random, BIRD 1.6 as the oracle ---------------------------

MUTATED_SOURCE = (
    _HEAD + "define MS = 100;\n"
    "protocol bfd b1 {\n"
    '  interface -"eth1", "eth*", "ens*" 0.0.0.0/0 {\n'
    "    interval 50 ms; min rx interval 10 ms; min tx interval (MS * 2) ms;\n"
    "    idle tx interval 2 s; multiplier 3; passive off;\n"
    '    authentication meticulous keyed sha1; password "s3cret" { id 3; };\n'
    "  };\n"
    '  interface "lo";\n'
    "  multihop { min rx interval 500 us; authentication simple;"
    ' passwords { password "a" { id 9; }; }; };\n'
    '  neighbor 198.18.0.2 dev "eth0" local 198.18.0.1 multihop off;\n'
    "  neighbor 198.18.0.3 local 198.18.0.1 multihop on;\n"
    '  description "bfd"; debug { states };\n'
    "}\n" + _BGP
)


def _mutations(count: int) -> list[int]:
    rng = random.Random(15)
    return [rng.randrange(1 << 30) for _ in range(count)]


@pytest.mark.parametrize("seed", _mutations(150))
def test_a_mutated_bfd_configuration_is_read_as_bird_reads_it(tmp_path: Path, seed: int) -> None:
    text = _mutated(MUTATED_SOURCE, False, random.Random(seed))
    bird, myna = both(_write(tmp_path, text))
    if UNSUPPORTED in myna[1]:  # outside what Myna runs (see REFUSED)
        assert myna[0] == 1
        return
    assert myna == bird, text


def test_the_new_model_fields_are_checked_in_yaml_too() -> None:
    bfd = _wired_peer({"local": "127.0.0.9", "interfaces": [
        {"patterns": ["eth*"], "min_tx": "50 ms"}]}).bfd  # fmt: skip
    assert bfd is not None and bfd.local == "127.0.0.9"
    assert bfd.interfaces[0].min_tx == 50.0
    for wrong in (
        {"local": "not-an-address"},
        {"interfaces": [{"patterns": []}]},
        {"interfaces": [{"patterns": ["-"]}]},
        {"interfaces": [{"patterns": ["eth*"], "idle_tx": 10}]},
        {"interfaces": [{"patterns": ["eth*"], "auth": "simple"}]},  # no password
        {"interfaces": [{"patterns": ["eth*"], "graceful": True}]},  # a peer's, not a block's
    ):
        with pytest.raises(ConfigError):
            _wired_peer(wrong)
