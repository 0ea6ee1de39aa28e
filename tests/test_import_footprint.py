"""What a daemon run from Myna's YAML loads: not BIRD's front-end, BFD engine or Prometheus.

Each of those costs RSS on every Calico host (issue 16's "no memory lost": the fan-out row's
idle daemon grew by 5 MiB when they were imported unconditionally). They are imported where
a config uses them; this keeps them out of a plain ``myna run`` start.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

from pydantic import BaseModel

from bgpd import bfd_config, config

# Packages a YAML daemon without BFD, BIRD sockets or metrics must not import at start.
HEAVY = (
    "prometheus_client",  # bgpd.metrics, only with metrics.enabled
    "bfd.service",  # the BFD engine, only once a peer enables BFD
    "bfd.engine",
    "bgpd.bird_config.cli",  # BIRD's reader and compiler, only for bird.cfg
    "bgpd.bird_config.config_parser",
    "bgpd.bird_config.filter_compiler",
    "bgpd.bird_socket",  # BIRD's control socket, only when configured
    "bgpd.bird_control",
)


def test_a_yaml_daemon_start_imports_none_of_the_optional_parts() -> None:
    code = (
        "import json, sys\nimport bgpd.cli, bgpd.daemon\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert "bgpd.daemon" in loaded  # the probe ran
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_the_optional_parts_still_load_when_asked_for() -> None:
    code = (
        "import bgpd.cli\n"
        "from bgpd.bird_config.cli import bird_main\n"
        "from bgpd.metrics import MetricsServer\n"
        "from bgpd.bird_socket import BirdSocket\n"
        "from bfd.service import BfdService\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "ok"


def test_every_config_model_builds_its_schema() -> None:
    # The models build their validators on first use (``defer_build``): a schema that cannot
    # be built would otherwise surface only when a config using it is loaded.
    models = [
        value
        for module in (config, bfd_config)
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
    ]
    assert len(models) > 10
    for model in models:
        assert model.model_rebuild(force=True) is not False, model
        assert model.__pydantic_complete__, model
