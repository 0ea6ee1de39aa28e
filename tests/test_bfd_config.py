"""A peer's ``bfd:`` block: BIRD's defaults, units, the RFC's limits, passwords kept out of sight,
and reloads that change BFD without resetting BGP.

Expected values: BIRD 2's defaults from its source (proto/bfd/bfd.h: ``BFD_DEFAULT_MIN_RX_INT
(10 MS_)``, ``BFD_DEFAULT_MIN_TX_INT (100 MS_)``, ``BFD_DEFAULT_IDLE_TX_INT (1 S_)``,
``BFD_DEFAULT_MULTIPLIER 5``), and RFC 5880's limits: not under one second while not Up
(6.8.3), simple passwords of 1-16 octets (4.2), MD5 keys up to 16 (4.3), SHA1 keys up to 20
(4.4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bfd.wire_codes import AuthType
from bgpd.cli import redacted
from bgpd.config import ConfigError, DaemonConfig, parse_config
from bgpd.daemon import session_settings
from bgpd.reload_plan import plan_reload


def config(peers: list[dict[str, Any]]) -> DaemonConfig:
    data = {"router_id": "198.18.0.1", "local_as": 64512, "peers": peers}
    return parse_config(yaml.safe_dump(data), "myna.yaml")


def peer(**fields: Any) -> dict[str, Any]:
    return {"address": "198.18.0.2", "as": 64512, **fields}


def only_peer(**fields: Any) -> Any:
    (parsed,) = config([peer(**fields)]).peers
    return parsed


def test_defaults_are_birds_and_true_is_every_default() -> None:
    bfd = only_peer(bfd=True).bfd
    assert bfd.enabled
    assert (bfd.min_rx, bfd.min_tx, bfd.idle_tx, bfd.multiplier) == (10.0, 100.0, 1000.0, 5)
    assert (bfd.passive, bfd.graceful, bfd.auth) == (False, False, "none")  # BIRD's "bfd on"
    assert only_peer(bfd={}).bfd == bfd
    assert not only_peer(bfd=False).bfd_enabled
    assert only_peer().bfd is None


def test_intervals_take_birds_units() -> None:
    bfd = only_peer(bfd={"min_tx": "300 ms", "min_rx": "0.5 s", "idle_tx": "2 s"}).bfd
    assert (bfd.min_tx, bfd.min_rx, bfd.idle_tx) == (300.0, 500.0, 2000.0)
    assert only_peer(bfd={"min_rx": "500 us"}).bfd.min_rx == 0.5
    assert only_peer(bfd={"min_tx": 50}).bfd.min_tx == 50.0


def test_multihop_follows_the_bgp_session_unless_given() -> None:
    # Calico's peers are "multihop" (Myna's default TTL 64): RFC 5883 multihop BFD.
    assert only_peer(bfd=True).bfd_multihop()
    # One hop away (BIRD's "direct"): RFC 5881 single hop.
    assert not only_peer(bfd=True, multihop=1).bfd_multihop()
    assert not only_peer(bfd=True, ttl_security=1).bfd_multihop()
    assert not only_peer(bfd={"multihop": False}).bfd_multihop()
    assert only_peer(bfd={"multihop": True}, multihop=1).bfd_multihop()


def test_graceful_reaches_the_session_settings() -> None:
    parsed = config([peer(bfd={"graceful": True}), {**peer(bfd=True), "address": "198.18.0.3"}])
    graceful, hard = parsed.peers
    assert session_settings(parsed, graceful).bfd_graceful
    assert not session_settings(parsed, hard).bfd_graceful


@pytest.mark.parametrize(
    ("bfd", "expected"),
    [
        ({"idle_tx": 999}, "at least 1 s (RFC 5880 6.8.3"),
        ({"min_rx": 0}, "must be 1 us to"),
        ({"min_tx": "fast"}, "is not an interval"),
        ({"multiplier": 0}, "greater than or equal to 1"),
        ({"auth": "keyed_sha1"}, "needs a password"),
        ({"password": "x"}, "password given but auth is none"),
        ({"auth": "simple", "password": "p" * 17}, "1-16 octets"),
        ({"auth": "keyed_md5", "password": "p" * 17}, "1-16 octets"),
        ({"auth": "keyed_sha1", "password": "p" * 21}, "1-20 octets"),
        ({"auth": "sha256", "password": "x"}, "Input should be 'none', 'simple'"),
    ],
)
def test_what_the_rfc_or_the_config_forbids_is_one_line(bfd: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config([peer(bfd=bfd)])
    text = str(caught.value)
    assert expected in text and "peers.0.bfd" in text
    assert len(text.splitlines()) == 1
    assert "p" * 16 not in text  # the password is never echoed


def test_passwords_are_read_where_the_config_says_and_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "bfd.key"
    key.write_text("from-a-file\n")
    monkeypatch.setenv("MYNA_BFD_KEY", "from-the-env")
    parsed = config(
        [
            peer(bfd={"auth": "meticulous_sha1", "password_file": str(key), "key_id": 7}),
            peer(address="198.18.0.3", bfd={"auth": "simple", "password_env": "MYNA_BFD_KEY"}),
            peer(address="198.18.0.4", bfd={"auth": "keyed_md5", "password": "inline-s3cret"}),
        ]
    )
    settings = [p.bfd.auth_settings(p.bfd.secret(p.address)) for p in parsed.peers]
    assert settings[0].auth_type == AuthType.METICULOUS_KEYED_SHA1
    assert settings[0].send_key.key_id == 7 and settings[0].send_key.secret == b"from-a-file"
    assert settings[1].send_key.secret == b"from-the-env"
    assert settings[2].send_key.key_id == 1  # BIRD numbers passwords from 1
    printed = yaml.safe_dump(redacted(parsed))
    assert "inline-s3cret" not in printed and "<hidden>" in printed
    assert str(key) in printed  # where it is read from is no secret


def test_the_mesh_gives_bfd_to_every_derived_peer() -> None:
    data = {
        "router_id": "198.18.0.1", "local_as": 64512,
        "mesh": {"enabled": True, "nodes": ["198.18.0.1", "198.18.0.2", "198.18.0.3"],
                 "bfd": {"auth": "keyed_sha1", "password": "mesh-s3cret"}},
    }  # fmt: skip
    parsed = parse_config(yaml.safe_dump(data))
    assert [p.address for p in parsed.peers] == ["198.18.0.2", "198.18.0.3"]
    assert all(p.bfd_enabled and p.bfd.auth == "keyed_sha1" for p in parsed.peers)
    assert all(p.bfd_multihop() for p in parsed.peers)  # Calico's mesh peers are multihop
    printed = yaml.safe_dump(redacted(parsed))
    assert "mesh-s3cret" not in printed and printed.count("<hidden>") == 3


def test_a_bfd_change_is_no_bgp_reset() -> None:
    # BFD only advises the session (RFC 5882 2, 3.3): the BFD session changes, BGP stays.
    old = config([peer(bfd=True), peer(address="198.18.0.3")])
    for changed in (
        {"bfd": {"min_tx": 300}},
        {"bfd": {"auth": "keyed_sha1", "password": "k"}},
        {"bfd": False},
    ):
        new = config([peer(**changed), peer(address="198.18.0.3", bfd=True)])
        plan = plan_reload(old, new)
        assert plan.kept == ["198.18.0.2", "198.18.0.3"] and plan.reset == [], changed
        assert plan.bfd_changed == ["198.18.0.2", "198.18.0.3"], changed
        assert plan.summary().endswith("BFD updated for 2")
    plan = plan_reload(old, config([peer(bfd=True, port=1179), peer(address="198.18.0.3")]))
    assert (plan.reset, plan.bfd_changed) == (["198.18.0.2"], [])  # a BGP change still resets
