"""Kernel FIB sync over netlink: learning the node's blocks, programming routes from peers.

The sync is ``kernel_learner`` (the node's own routes, Felix's blackholes, into the RIB),
``fib_programmer`` (a channel of the RIB: the selected routes into the kernel, recorded in a
``kernel_table``), ``next_hop_resolver`` (next hops through the kernel's routes, for the RIB's
decision and the FIB's gateways) and ``kernel_events`` (one notification monitor feeding them
all, with resyncs). Below them is the netlink layer: Myna encodes and decodes its own
route messages (pyroute2 builds about 4,000 a second; this layer writes over 100,000 and reads
dumps at several hundred thousand), and keeps pyroute2 for the test bed only. Sans-I/O at the
core, like the BGP codec in ``speaker/``: bytes in, frozen values out, and back; the asyncio
layer is a thin shell that moves bytes and matches replies.

Data flow: the owner of the FIB (``fib_programmer``) hands ``RouteChange(op, KernelRoute)``
values to ``route_writer.RouteWriter``, which encodes them (``route_messages``), sends them in
64 KiB batches and resolves one future per batch to a ``BatchResult`` with an errno and an
``Advice`` per change. ``netlink_socket.dump_routes`` / ``dump_links`` / ``dump_addresses``
read the kernel's tables (``route_dump`` reads runs of same-shaped routes in C), redoing a dump
the kernel flags as interrupted; ``netlink_socket.Monitor`` delivers route, link and address
notifications and reports an overrun (ENOBUFS), after which the owner resyncs from dumps.

Modules:

- ``netlink_codes``: every netlink number as an enum (message types, flags, RTA_*, RTN_*,
  RTPROT_*, RT_SCOPE_*, RTNH_F_*, families, multicast groups, socket options).
- ``netlink_messages``: headers, acks, dump ends, links, addresses, dump requests, and the
  codec's errors.
- ``route_messages``: ``KernelRoute`` / ``NextHop``, batched route encoding,
  ``parse_messages``.
- ``route_dump``: the fast reader of route dump datagrams.
- ``netlink_socket``: socket opening, dumps, ``Monitor``.
- ``route_writer``: ``RouteWriter``, ``BatchResult``, ``advise``.
- ``namespaces``: ``call_in_namespace``, for sockets inside another network namespace.
"""
