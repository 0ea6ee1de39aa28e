"""BGP sessions: the sans-I/O wire codec and session FSM, and their uvloop transport.

Bytes and events in, values and actions out (``update_message``, ``open_message``,
``session_fsm`` with its one transition table); ``transport`` and ``listener`` are the thin
asyncio shell; ``socket_options`` sets TCP-MD5, GTSM and TTL.
"""
