"""Start the Myna daemon from a BIRD file with BIRD's command line, for the benchmarks.

Run by ``bench.birdcfg_myna`` inside a benchmark namespace, with the file's directory as the
working directory (as runit starts calico-node's BIRD):

    .venv/bin/python -m bench.bird_launch -R -d -s DIR/bird.ctl -c DIR/bird.cfg

Role and data flow: the arguments go to ``bgpd.bird_config.cli.bird_main``, BIRD 1.6's
command line, which reads the file, compiles every filter and builds the ``DaemonConfig``
(``bird_config.cli.load``'s path), then hands it to ``cli.run_hook``. When the daemon
wiring of ``myna bird`` has set that hook (branch ``bird-dropin``), it is used as it is;
until then this module sets a stand-in that gives the daemon its control socket in the
file's directory (BIRD's ``-s`` is the BIRD-protocol socket) and runs ``bgpd.daemon.run``
(uvloop, SIGTERM stops it). The stand-in takes ``-R`` as the daemon takes every start: it
defers route selection for the graceful-restart peers that are up (the benchmarks' clients do
not negotiate graceful restart, so nothing waits), and it reads no file again on SIGHUP.
"""

from __future__ import annotations

import sys

from bgpd import daemon
from bgpd.bird_config import cli
from bgpd.config import ControlModel, DaemonConfig


def _run(config: DaemonConfig, options: cli.BirdRunOptions) -> int:
    """The stand-in ``run_hook``: control sockets beside the file, then the daemon."""
    control = ControlModel(
        socket=options.config_file.resolve().parent / "myna.ctl", bird_socket=options.socket
    )
    return daemon.run(config.model_copy(update={"control": control}))


def main(argv: list[str] | None = None) -> int:
    """BIRD's command line; the daemon runs until SIGTERM."""
    if cli.run_hook.__name__ == "_not_wired":
        cli.run_hook = _run
    return cli.bird_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
