"""BFD (RFC 5880, 5881, 5883): fast detection of a dead path to a BGP peer, for RFC 5882 clients.

Layers, innermost first, each in its own file:

- ``wire_codes``: the RFC's numbers as enums (states, diagnostics, auth types, ports, reasons a
  packet is dropped).
- ``packet``: the Control packet codec, bytes in and frozen ``ControlPacket`` out (and back),
  with the reception rules of RFC 5880 6.8.6 that need no session.
- ``auth``: RFC 5880 6.7 authentication: signing what we send, checking what we receive,
  sequence-number windows.
- ``session_events`` and ``session_fsm``: one session's state machine, sans-I/O: fed decoded
  packets, timer expiries and the current time; answers with actions (send this packet, the
  state changed). Its transition table is in ``session_fsm``.
- ``demux``: which session a received packet belongs to (Your Discriminator, or the address
  pair / interface for Your Discriminator 0, RFC 5881 3 and RFC 5883 4).
- ``engine``: the I/O loop that owns the UDP sockets, the sessions and their timers, run in a
  process of its own (``engine_main``) so that the daemon's event loop, its garbage
  collections and C calls that hold the GIL cannot delay a packet; ``ipc`` is the message
  format on the pipe between the two.
- ``service``: the asyncio-side API the daemon (its BGP sessions, RFC 5882) uses.
"""
