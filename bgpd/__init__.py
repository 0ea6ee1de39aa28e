"""The daemon: config, the ``myna`` command, control socket, BIRD socket, metrics, the lab.

``daemon`` wires sessions, the RIB and kernel sync together; ``config`` validates the YAML;
``cli`` / ``cli_show`` are the command line; ``control_api`` / ``control_socket`` answer
``myna show``; ``bird_socket`` answers BIRD's control protocol for Calico's tools;
``metrics`` serves Prometheus; ``reload_plan`` decides what a reload resets; ``lab`` builds a
Calico cluster in network namespaces.
"""
