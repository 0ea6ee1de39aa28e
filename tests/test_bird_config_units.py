"""Units of the BIRD configuration front-end: options read, errors, prefix sets, paths, CLI.

What ``bird -p`` cannot tell (it only says accepted or not) is checked here against BIRD
1.6's documented meaning: the value each protocol option leaves in the configuration and in
Myna's ``DaemonConfig``; the error format (``FILE:LINE:COL message``, whose fault it is);
prefix-set and path-mask matching against straightforward models of BIRD's documented
semantics (hypothesis); the ``myna bird`` / ``myna check`` command lines, including the
``bird``/``bird6`` symlink. Addresses are from 198.18.0.0/15 and 2001:db8::/32.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bird16_oracle import both
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd import cli as myna_cli
from bgpd.bird_config import cli as bird_cli
from bgpd.bird_config import config_model as m
from bgpd.bird_config.as_paths import MaskItem, MaskItemKind, path_matches
from bgpd.bird_config.cli import BirdRunOptions, bird_main
from bgpd.bird_config.config_parser import read_bird_config
from bgpd.bird_config.daemon_config import daemon_config_from_bird
from bgpd.bird_config.errors import BirdConfigError
from bgpd.bird_config.file_kinds import is_bird6, is_bird_config
from bgpd.bird_config.keywords import KEYWORDS_V4, KEYWORDS_V6
from bgpd.bird_config.prefix_sets import BirdTrie, PrefixPattern, PrefixPatternSet
from bgpd.config import DaemonConfig

EVERY_OPTION = """\
# every option the Calico templates use, and a few more
router id 198.19.0.1;
listen bgp address 198.19.0.1 port 1179;
define LOCAL_AS = 64512;
log stderr all;
debug protocols { states, routes };
timeformat protocol iso long;
filter kernel_out { if net ~ 198.18.0.0/15 then { krt_metric = 7; accept; } reject; }
protocol kernel k1 {
  learn; persist; scan time 7;
  merge paths on;
  graceful restart on;
  device routes;
  kernel table 100;
  import all;
  export filter kernel_out;
}
protocol device { scan time 3; }
protocol bfd { interface "eth*" { interval 50 ms; multiplier 3; }; }
protocol direct d1 { interface -"cali*", -"kube-ipvs*", "*"; }
protocol static s1 {
  route 198.18.1.0/24 blackhole;
  route 198.18.2.0/24 unreachable;
  route 198.18.3.0/24 prohibit;
  route 198.18.4.0/24 via 198.19.0.254;
  route 198.18.5.0/24 via "eth0";
  preference 150;
}
template bgp bgp_base {
  description "Connection to BGP peer";
  local as LOCAL_AS;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
protocol bgp ext from bgp_base {
  local 198.19.0.1 as 64512;
  neighbor 198.19.0.2 port 1179 as 64513;
  source address 198.19.0.1;
  passive on;
  multihop 3;
  ttl security off;
  password "s3cret";
  next hop keep;
  allow local as 2;
  keepalive time 20;
  hold time 60;
  graceful restart time 90;
  import limit 1000 action restart;
  import where net ~ [198.18.0.0/15+];
  export none;
}
protocol bgp rr1 from bgp_base {
  neighbor 198.19.0.3 as 64512;
  ttl security on;
  direct;
  rr client;
  rr cluster id 198.19.0.100;
  next hop self;
  add paths tx;
  gateway direct;
  graceful restart off;
  debug all;
  bfd on;
  disabled no;
  preference 120;
  import all;
  export filter { bgp_community.add((64512, 1)); accept; };
}
"""


def _write(tmp_path: Path, text: str, name: str = "bird.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_option_is_accepted_by_bird_and_myna(tmp_path: Path) -> None:
    bird, myna = both(_write(tmp_path, EVERY_OPTION))
    assert bird == myna == (0, "")


def test_every_option_reads_as_bird_documents_it() -> None:
    config = read_bird_config("every.conf", text=EVERY_OPTION)
    assert config.router_id == 0xC6130001
    assert (config.listen_address, config.listen_port) == (0xC6130001, 1179)
    assert config.debug_protocols == ("states", "routes")
    kernel = config.of_type(m.ProtocolType.KERNEL)[0]
    assert isinstance(kernel, m.KernelProtocol)
    assert (kernel.learn, kernel.persist, kernel.scan_time) == (True, True, 7)
    assert (kernel.merge_paths, kernel.graceful_restart, kernel.device_routes) == (16, True, True)
    assert kernel.kernel_table == 100
    static = config.of_type(m.ProtocolType.STATIC)[0]
    assert isinstance(static, m.StaticProtocol)
    assert [r.kind for r in static.routes] == [
        m.RouteKind.BLACKHOLE,
        m.RouteKind.UNREACHABLE,
        m.RouteKind.PROHIBIT,
        m.RouteKind.VIA,
        m.RouteKind.DEVICE,
    ]
    assert (static.routes[3].gateway, static.routes[4].device) == (0xC61300FE, "eth0")
    ext, rr1 = config.of_type(m.ProtocolType.BGP)
    assert isinstance(ext, m.BgpProtocol)
    assert isinstance(rr1, m.BgpProtocol)
    # inherited from the template
    assert (ext.connect_delay, ext.connect_retry, ext.error_wait) == (2, 5, (5, 30))
    assert ext.add_paths is m.AddPaths.ON
    assert ext.description == "Connection to BGP peer"
    assert (ext.neighbor, ext.port, ext.remote_as, ext.local_as) == (0xC6130002, 1179, 64513, 64512)
    assert (ext.passive, ext.multihop, ext.ttl_security, ext.password) == (True, 3, False, "s3cret")
    assert (ext.next_hop, ext.allow_local_as) == (m.NextHopMode.KEEP, 2)
    assert (ext.keepalive_time, ext.hold_time, ext.graceful_restart_time) == (20, 60, 90)
    assert ext.import_limit == m.Limit(1000, m.LimitAction.RESTART)
    assert (rr1.rr_client, rr1.rr_cluster_id, rr1.next_hop) == (
        True,
        0xC6130064,
        m.NextHopMode.SELF,
    )
    assert (rr1.ttl_security, rr1.effective_multihop()) == (True, 0)
    assert (rr1.add_paths, rr1.gateway, rr1.graceful_restart) == (
        m.AddPaths.TX,
        m.GatewayMode.DIRECT,
        m.GracefulRestart.OFF,
    )
    assert (rr1.bfd, rr1.preference, rr1.debug) == (m.BfdMode.ON, 120, m.DEBUG_FLAGS)


def test_every_option_becomes_the_daemon_config() -> None:
    daemon = daemon_config_from_bird(read_bird_config("every.conf", text=EVERY_OPTION))
    assert str(daemon.router_id) == "198.19.0.1"
    assert daemon.local_as == 64512
    assert (list(daemon.listen.addresses), daemon.listen.port) == (["198.19.0.1"], 1179)
    ext, rr1 = daemon.peers
    assert (ext.name, ext.address, ext.port, ext.asn) == ("ext", "198.19.0.2", 1179, 64513)
    assert (ext.passive, ext.source_address, ext.password) == (True, "198.19.0.1", "s3cret")
    assert (ext.multihop, ext.ttl_security, ext.next_hop_mode) == (3, 0, "keep")
    assert (ext.restart_time, ext.allow_own_as, ext.graceful_restart) == (90, 2, True)
    assert (ext.timers.hold_time, ext.timers.keepalive_time) == (60, 20)
    assert (ext.timers.connect_delay, ext.timers.connect_retry) == (2.0, 5.0)
    assert ext.timers.error_wait == (5.0, 30.0)
    assert ext.max_prefixes is not None
    assert (ext.max_prefixes.limit, ext.max_prefixes.action) == (1000, "cease")
    assert ext.import_filter is not None
    assert ext.import_filter.name.startswith("(where")
    assert ext.export_filter is not None
    assert ext.export_filter.name == "none"
    # ttl security on a direct session: GTSM over one hop
    assert (rr1.multihop, rr1.ttl_security, rr1.next_hop_mode) == (1, 1, "self")
    assert (rr1.route_reflector_client, rr1.graceful_restart, rr1.add_paths) == (True, False, "tx")
    # BIRD's "bfd on": BFD advises the session, a BFD down is a hard failure (not graceful);
    # single hop (direct): the interface block is chosen where the peer's interface is known
    assert rr1.bfd is not None and (rr1.bfd.enabled, rr1.bfd.graceful) == (True, False)
    assert rr1.bfd.multihop is False
    assert [(r.patterns, r.min_tx, r.multiplier) for r in rr1.bfd.interfaces] == [
        (("eth*",), 50.0, 3)
    ]
    assert (rr1.gateway, rr1.preference) == ("direct", 120)
    assert str(daemon.cluster_id) == "198.19.0.100"
    assert daemon.kernel.learn and daemon.kernel.program
    assert (daemon.kernel.table, daemon.kernel.device_routes) == (100, True)
    assert daemon.kernel.reconcile_interval == 30.0  # scan time 7: the safety net's 30 s
    assert daemon.kernel.export_filter is not None
    assert daemon.kernel.export_filter.name == "kernel_out"
    assert [
        (r.prefix, r.kind, r.gateway, r.device, r.preference) for r in daemon.static_routes
    ] == [
        ("198.18.1.0/24", "blackhole", None, None, 150),
        ("198.18.2.0/24", "unreachable", None, None, 150),
        ("198.18.3.0/24", "prohibit", None, None, 150),
        ("198.18.4.0/24", "via", "198.19.0.254", None, 150),
        ("198.18.5.0/24", "device", None, "eth0", 150),
    ]
    assert daemon.direct is not None
    assert list(daemon.direct.interfaces) == ["-cali*", "-kube-ipvs*", "*"]
    assert daemon.log_level == "debug"  # log stderr all


def test_the_yaml_front_end_still_means_what_it_meant() -> None:
    # the new DaemonConfig fields are optional: a YAML config without them is unchanged
    from bgpd.config import DaemonConfig  # noqa: PLC0415

    config = DaemonConfig.model_validate(
        {
            "router_id": "198.19.0.1",
            "local_as": 64512,
            "peers": [{"address": "198.19.0.2", "as": 64512}],
        }
    )
    peer = config.peers[0]
    assert (peer.import_filter, peer.export_filter, peer.name) == (None, None, None)
    assert config.static_routes == ()
    assert config.direct is None
    assert (config.kernel.import_filter, config.kernel.export_filter) == (None, None)
    assert config.kernel.device_routes is False


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("protocol device {\n  scan time;\n}\n", "unit.conf:2:12 syntax error"),
        ("router id 198.19.0.1;\nprotocol ospf {}\n", "unit.conf:2:10"),
        (
            "router id 198.19.0.1;\nprotocol kernel { persist; }\nprotocol rip {}\n",
            "unit.conf:3:10",
        ),
    ],
)
def test_errors_name_file_line_and_column(text: str, message: str) -> None:
    with pytest.raises(BirdConfigError) as caught:
        read_bird_config("unit.conf", text=text)
    assert str(caught.value).startswith(message)


def test_an_unsupported_construct_is_an_error_saying_so() -> None:
    with pytest.raises(BirdConfigError) as caught:
        read_bird_config("unit.conf", text="router id 1.2.3.4;\nprotocol ospf o1 {}\n")
    assert str(caught.value).startswith("unit.conf:2:")
    assert "not supported by Myna" in str(caught.value)


def test_a_missing_file_is_reported_as_bird_does(tmp_path: Path) -> None:
    bird, myna = both(tmp_path / "absent.conf")
    assert bird == myna
    assert bird[0] == 1
    assert "Unable to open configuration file" in bird[1]


def test_myna_needs_a_router_id_where_bird_would_pick_one() -> None:
    config = read_bird_config("unit.conf", text="protocol device {}\n")
    with pytest.raises(BirdConfigError) as caught:
        daemon_config_from_bird(config)
    assert "not supported by Myna" in str(caught.value)


# --- keywords: a keyword cannot be a symbol name ------------------------------------------------


def test_keywords_are_bird_16_keywords(tmp_path: Path) -> None:
    """``define KW = 1;`` is a syntax error exactly for BIRD's keywords (bird and bird6)."""
    mismatched = []
    names = [*sorted(KEYWORDS_V6), "myna", "calico", "ipv4", "prefixes", "routes2"]
    for index, name in enumerate(names):
        for ipv6 in (False, True):
            path = _write(
                tmp_path,
                f"router id 1.2.3.4;\ndefine {name} = 1;\nprotocol device {{}}\n",
                f"k{index}{'6' if ipv6 else ''}.conf",
            )
            bird, myna = both(path, ipv6)
            keyword = name in (KEYWORDS_V6 if ipv6 else KEYWORDS_V4)
            if bird != myna or (bird[0] == 0) == keyword:
                mismatched.append((name, ipv6, bird, myna))
    assert mismatched == []


# --- prefix sets: fast lookup == BIRD's trie == the documented rule -----------------------------


def _model_match(patterns: list[PrefixPattern], address: int, length: int, bits: int) -> bool:
    """BIRD's documentation: ``a/l{lo,hi}`` matches ``p/pl`` when lo <= pl <= hi and the
    first min(l, pl) bits of ``a`` and ``p`` agree."""
    for pattern in patterns:
        compared = min(pattern.length, length)
        shift = bits - compared
        if pattern.low <= length <= pattern.high and (pattern.address >> shift == address >> shift):
            return True
    return False


def _patterns(bits: int) -> st.SearchStrategy[list[PrefixPattern]]:
    @st.composite
    def one(draw: st.DrawFn) -> PrefixPattern:
        length = draw(st.integers(0, bits))
        address = draw(st.integers(0, (1 << bits) - 1))
        address &= ((1 << length) - 1) << (bits - length) if length else 0
        low = draw(st.integers(0, bits))
        high = draw(st.integers(low, bits))
        return PrefixPattern(address, length, low, high)

    return st.lists(one(), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), bits=st.sampled_from([32, 128]))
def test_prefix_set_matching(data: st.DataObject, bits: int) -> None:
    patterns = data.draw(_patterns(bits))
    fast = PrefixPatternSet(tuple(patterns), bits)
    trie = BirdTrie(bits)
    for pattern in patterns:
        trie.add(pattern)
    # routes near the patterns, where the answers differ
    for _ in range(20):
        base = data.draw(st.sampled_from(patterns)).address
        flip = data.draw(st.integers(0, bits - 1))
        address = base ^ (data.draw(st.booleans()) << flip)
        length = data.draw(st.integers(0, bits))
        address &= ((1 << length) - 1) << (bits - length) if length else 0
        want = _model_match(patterns, address, length, bits)
        assert fast.matches(address << 8 | length) == want
        assert trie.match(address, length) == want


# --- path masks -------------------------------------------------------------------------------


def _mask_model(path: list[int], mask: list[MaskItem]) -> bool:
    """BIRD's documentation: ``*`` any run of ASes, ``?`` any one, ``n`` that AS, whole path."""
    if not mask:
        return not path
    head, rest = mask[0], mask[1:]
    if head.kind is MaskItemKind.ASTERISK:
        return any(_mask_model(path[i:], rest) for i in range(len(path) + 1))
    if not path:
        return False
    if head.kind is MaskItemKind.QUESTION or head.low <= path[0] <= head.high:
        return _mask_model(path[1:], rest)
    return False


_ASNS = st.sampled_from([64512, 64513, 65000, 1, 4200000000])
_ITEMS = st.one_of(
    st.just(MaskItem(MaskItemKind.ASTERISK)),
    st.just(MaskItem(MaskItemKind.QUESTION)),
    _ASNS.map(lambda asn: MaskItem(MaskItemKind.ASN, asn, asn)),
)


@settings(max_examples=300, deadline=None)
@given(path=st.lists(_ASNS, max_size=6), mask=st.lists(_ITEMS, max_size=5))
def test_path_mask_matching_of_sequences(path: list[int], mask: list[MaskItem]) -> None:
    as_path = ((2, tuple(path)),) if path else ()
    assert path_matches(as_path, tuple(mask)) == _mask_model(path, mask)


# --- command lines ------------------------------------------------------------------------------


def _run_bird(argv: list[str], cwd: Path, ipv6: bool = False) -> tuple[int, str]:
    stderr = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(stderr):
            status = bird_main(argv, ipv6=ipv6)
    finally:
        os.chdir(old)
    return status, stderr.getvalue()


def test_bird_p_exit_status(tmp_path: Path) -> None:
    _write(tmp_path, "router id 198.19.0.1;\nprotocol device {}\n", "good.conf")
    _write(tmp_path, "router id 198.19.0.1;\nprotocol device {\n", "bad.conf")
    assert _run_bird(["-p", "-c", "good.conf"], tmp_path) == (0, "")
    status, message = _run_bird(["-p", "-c", "bad.conf"], tmp_path)
    # BIRD 1.6 reports an unexpected end of file at line 1, column 0 (its end-of-file
    # handling resets the line counter before the parser sees the error)
    assert (status, message) == (1, "bird: bad.conf:1:0 syntax error\n")
    assert both(tmp_path / "bad.conf")[0] == (status, message)


def test_running_hands_birds_command_line_to_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without -p the run hook gets the file's config and what the command line says about
    running (the processes themselves: tests/test_bird_process.py)."""
    _write(tmp_path, "router id 198.19.0.1;\ngraceful restart wait 7;\nprotocol device {}\n",
           "good.conf")  # fmt: skip
    seen: list[tuple[DaemonConfig, BirdRunOptions]] = []
    monkeypatch.setattr(bird_cli, "run_hook", lambda c, o: seen.append((c, o)) or 0)
    argv = ["-R", "-s", str(tmp_path / "bird.ctl"), "-d", "-P", str(tmp_path / "pid"),
            "-u", "nobody", "-g", "nogroup", "-c", "good.conf"]  # fmt: skip
    assert _run_bird(argv, tmp_path, ipv6=True) == (0, "")
    ((config, options),) = seen
    assert config.router_id == "198.19.0.1"
    assert (options.socket, options.pid_file) == (tmp_path / "bird.ctl", tmp_path / "pid")
    assert (options.graceful_recovery, options.foreground, options.debug) == (True, True, True)
    assert (options.user, options.group, options.ipv6, options.gr_wait) == (
        "nobody", "nogroup", True, 7,
    )  # fmt: skip
    assert options.bird_config is not None and options.bird_config.ipv6
    assert not (tmp_path / "bird.ctl").exists()  # the hook binds it, not the parser


def test_file_kind_detection(tmp_path: Path) -> None:
    assert is_bird_config(_write(tmp_path, "router id 1.2.3.4;\n", "x.cfg"))
    assert not is_bird_config(_write(tmp_path, "router_id: 1.2.3.4\n", "x.yaml"))
    assert is_bird_config(_write(tmp_path, "router id 1.2.3.4;\nprotocol device {}\n", "noext"))
    assert not is_bird_config(_write(tmp_path, "router_id: 1.2.3.4\nlocal_as: 1\n", "noext2"))
    assert is_bird6(Path("/etc/calico/confd/config/bird6.cfg"))
    assert not is_bird6(Path("/etc/calico/confd/config/bird.cfg"))


def test_myna_check_prints_the_effective_config_of_a_bird_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, EVERY_OPTION, "bird.cfg")
    assert myna_cli.main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "router_id: 198.19.0.1" in out
    assert "name: rr1" in out
    assert "s3cret" not in out  # passwords are redacted as for the YAML
    assert "# Calico inputs recognised" in out


def test_myna_check_of_a_bad_bird_file_names_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "router id 198.19.0.1;\nprotocol device { scan; }\n", "bird.cfg")
    assert myna_cli.main(["check", "-c", str(path)]) == 2
    # column 23: where BIRD 1.6 puts it (the ';' after "scan")
    assert f"{path}:2:23 syntax error" in capsys.readouterr().err


def test_myna_check_of_yaml_is_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "router_id: 198.19.0.1\nlocal_as: 64512\n", "myna.yaml")
    assert myna_cli.main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "local_as: 64512" in out
    assert "Calico inputs" not in out


@pytest.mark.parametrize(("name", "ipv6"), [("bird", False), ("bird6", True)])
def test_started_as_bird_through_a_symlink(tmp_path: Path, name: str, ipv6: bool) -> None:
    # a busybox-style symlink: argv[0]'s name chooses BIRD's command line
    script = tmp_path / "myna-entry"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom bgpd.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    link = tmp_path / name
    link.symlink_to(script)
    # bird6 reads IPv6 addresses, bird does not
    _write(
        tmp_path,
        "router id 198.19.0.1;\nprotocol static { route 2001:db8::/32 blackhole; }\n",
        "x.conf",
    )
    result = subprocess.run(
        [str(link), "-p", "-c", "x.conf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert (result.returncode == 0) == ipv6, result.stderr
    version = subprocess.run(
        [str(link), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert version.returncode == 0
    assert "BIRD version" in version.stdout + version.stderr


def test_myna_bird_subcommand(tmp_path: Path) -> None:
    _write(tmp_path, "router id 198.19.0.1;\nprotocol device {}\n", "good.conf")
    assert myna_cli.main(["bird", "-p", "-c", str(tmp_path / "good.conf")]) == 0
    assert myna_cli.main(["bird6", "-p", "-c", str(tmp_path / "good.conf")]) == 0


def test_myna_bird_reads_a_bird6_file_as_bird6_does(tmp_path: Path) -> None:
    """`myna bird -p -c bird6.cfg` reads it as BIRD 1.6's bird6 does (the corpus check runs every
    file through `myna bird`); `bird` by its own name stays an IPv4 router, as BIRD's is."""
    text = "router id 198.19.0.1;\nprotocol static { route 2001:db8:1::/122 blackhole; }\n"
    _write(tmp_path, text, "bird6.cfg")
    assert myna_cli.main(["bird", "-p", "-c", str(tmp_path / "bird6.cfg")]) == 0
    assert bird_main(["-p", "-c", str(tmp_path / "bird6.cfg")], ipv6=False) == 1
