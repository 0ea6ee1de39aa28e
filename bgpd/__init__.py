"""The daemon: config, CLI, control socket, metrics and the lab (later issues fill it)."""
