"""The daemon's config file: what is accepted, and the one-line-per-problem errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgpd.config import ConfigError, load_config, parse_config
from bgpd.daemon import session_settings, transport_settings

GOOD = """
router_id: 198.18.0.5
local_as: 64512
peers:
  - {address: 198.18.0.10, as: 64512, passive: auto}
  - {address: 198.18.0.2, as: 64512, passive: auto}
  - {address: 198.18.0.3, as: 64513, passive: true, password_env: MYNA_TEST_MD5, ttl_security: 1}
  - {address: "2001:db8::7", as: 64512, source_address: "2001:db8::5", passive: auto}
"""


def test_a_good_file_becomes_session_and_transport_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MYNA_TEST_MD5", "from-the-environment")
    config = parse_config(GOOD)
    peers = {p.address: p for p in config.peers}
    # Calico's mesh rule compares addresses as strings: "198.18.0.10" < "198.18.0.5".
    assert not config.is_passive(peers["198.18.0.10"])
    assert not config.is_passive(peers["198.18.0.2"])
    assert config.is_passive(peers["198.18.0.3"])
    assert config.is_passive(peers["2001:db8::7"])
    settings = session_settings(config, peers["198.18.0.3"])
    assert settings.router_id == 0xC6120005 and settings.peer_as == 64513
    assert (settings.hold_time, settings.connect_delay, settings.connect_retry) == (240, 2.0, 5.0)
    assert (settings.error_wait_min, settings.error_wait_max) == (5.0, 30.0)
    transport = transport_settings(peers["198.18.0.3"])
    assert transport.password == "from-the-environment" and transport.ttl_security == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("router_id: x\nlocal_as: 1", "router_id: Value error, 'x' is not a dotted-quad router id"),
        ("router_id: 1.2.3.4", "local_as: Field required"),
        (
            "router_id: 1.2.3.4\nlocal_as: 1\nbogus: 2",
            "line 3: bogus: Extra inputs are not permitted",
        ),
        (
            "router_id: 1.2.3.4\nlocal_as: 1\ntimers: {hold_time: 2}",
            "line 3: timers.hold_time: Value error, hold time must be 0 or at least 3 seconds",
        ),
        (
            "router_id: 1.2.3.4\nlocal_as: 1\npeers: [{address: '2001:db8::1', as: 1, "
            "passive: auto}]",
            "give the IPv6 source_address",
        ),
        ("router_id: 1.2.3.4\nlocal_as: 1\npeers: [{address: 1.2.3.5}]", "peers.0.as: Field"),
        ("- a list", "expected a mapping of settings at the top level"),
        ("a: [unclosed", "line 1 column 13: not valid YAML: expected ',' or ']'"),
    ],
)
def test_each_problem_is_one_line_saying_where_and_what(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "myna.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("myna.yaml")
    assert len(str(caught.value).splitlines()) == 1


def test_a_password_never_appears_in_an_error() -> None:
    text = "router_id: 1.2.3.4\nlocal_as: 1\npeers: [{address: 1.2.3.5, as: 1, password: [s3cr3t]}]"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "s3cr3t" not in str(caught.value)
    assert "peers.0.password" in str(caught.value)


def test_the_example_configs_are_valid() -> None:
    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
    wanted = {"mesh-node.yaml", "reflector.yaml", "reflector-client.yaml"}
    assert wanted <= {p.name for p in examples}
    configs = {path.name: load_config(path) for path in examples}
    # The reflector example reflects (its clients marked), the client example does not.
    reflector = configs["reflector.yaml"]
    assert reflector.reflector_cluster_id() is not None
    assert any(p.route_reflector_client for p in reflector.peers)
    assert configs["reflector-client.yaml"].reflector_cluster_id() is None
