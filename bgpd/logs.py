"""Log lines: one per event, tagged with the peer they are about, as text or as JSON.

Data flow: every part of Myna logs through ``logging`` under ``myna.*``; sessions log through
``speaker.transport.PeerLog``, which puts the peer's address in front of the text and in the
record's ``peer`` field. ``configure_logging`` (at start and after a reload that changes
``log_level`` / ``log_format``) installs one handler on stderr, which systemd's journal or the
container runtime collects: plain text by default, one JSON object per line with
``log_format: json`` (time, level, logger, peer when there is one, message, exception).
Passwords never reach a line: the config's secrets are read where they are used and never
formatted.

The JSON formatter is these few lines rather than a dependency (python-json-logger would do
it): the run-time dependencies are kept few.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from bgpd.config import DaemonConfig

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        peer = getattr(record, "peer", None)
        if peer is not None:
            out["peer"] = peer
        out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(config: DaemonConfig) -> None:
    """Log to stderr at the configured level, as text or JSON (replacing earlier handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
