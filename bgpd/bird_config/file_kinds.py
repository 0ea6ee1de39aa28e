"""Which front-end a command line or a file is for: BIRD's (``bird``/``bird6``) or Myna's YAML.

Kept apart from ``cli`` so that ``myna`` can decide without loading BIRD's parser and filter
compiler: a daemon started from YAML never imports them.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def is_bird_config(path: Path) -> bool:
    """Whether ``path`` holds a BIRD configuration rather than Myna's YAML.

    By name first (``.yaml``/``.yml`` are YAML, ``.cfg``/``.conf`` BIRD); otherwise a file
    whose YAML is not a mapping of settings is taken for BIRD's language.
    """
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return False
    if suffix in (".cfg", ".conf"):
        return True
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return True
    return not isinstance(data, dict)


def is_bird6(path: Path) -> bool:
    """bird6's language: Calico names the file bird6.cfg (or bird6.conf)."""
    return path.name.startswith("bird6")


def bird_program_for(argv0: str) -> str | None:
    """``bird`` or ``bird6`` when Myna runs under that name (a symlink), else None."""
    name = os.path.basename(argv0)
    return name if name in ("bird", "bird6") else None
