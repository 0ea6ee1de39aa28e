"""BIRD 1.6's control-socket answers, built from Myna's state.

Role: ``bgpd.bird_socket`` serves the socket; these modules make the replies, each one concern:
``replies`` (framing, reply codes, BIRD's time formats, the version line), ``commands`` (the
command language: a line -> a command, or BIRD's error reply), ``protocols`` (the protocol
list of the BIRD file, or of a YAML config, with their state: ``show protocols [all]``),
``routes`` (``show route ...``), ``interfaces`` (``show interfaces``, and which interface a
next hop is on). Formats are BIRD 1.6.8's (``nest/``, ``proto/bgp/``, ``sysdep/unix/`` of the
source; checked line by line against a running BIRD 1.6 by ``tests/test_interop_bird_socket``).
"""
