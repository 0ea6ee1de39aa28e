"""The RIB: a sans-I/O core, its asyncio shell, the Loc-RIB, the decision, the update groups.

Data flow: sessions feed the shell (``rib_task.Rib``), which turns what they say into events
(``rib_events``) for the core (``rib_core.RibCore``). The core applies routes to the Loc-RIB
(``loc_rib``, the one table of record: every candidate per prefix, no separate Adj-RIB-In),
whose decision process (``decision``, RFC 4271 9.1) picks the best route and ECMP set with the
next hops resolved (``next_hops``), and publishes each batch of changes to its channels: the
update groups (``adj_rib_out``: one export and one encoding per group, nothing stored per
prefix) and the FIB programmer (``kernel_sync``). Graceful restart, long-lived graceful
restart and enhanced route refresh walk a peer's routes (``graceful_restart``); the per-peer
state is ``peer_rib``. Policy is ``policy`` (Calico's BGPFilter) and ``calico_policy``
(confd's default rules). Readers (control socket, BIRD socket, metrics) use ``rib_view``.
``route`` is what a route is; ``shards`` and ``gc_schedule`` keep dict resizes and garbage
collection from stalling the loop and give memory back after mass withdrawals.
"""
