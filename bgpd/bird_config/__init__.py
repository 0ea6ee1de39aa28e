"""Myna's reader of BIRD 1.x configuration files (``bird.cfg`` / ``bird6.cfg`` from confd).

Files, in the order data flows through them:

* ``lexer``, ``keywords``: bytes (and included files) -> tokens, as BIRD 1.6's flex lexer.
* ``parse_base``, ``symbols``, ``value_parser``, ``filter_parser``, ``protocol_items``,
  ``bfd_items`` (``protocol bfd``), ``config_parser``: tokens -> ``BirdConfig``
  (``config_model``) holding protocols and filters (``filter_ast``, ``attributes``), with
  BIRD's errors (``errors``: ``FILE:LINE:COL message``).
* ``filter_codegen`` (expressions), ``filter_commands`` (statements), ``filter_compiler``
  (the whole filter, and parse-time evaluation): a filter -> one Python function with the
  shape of ``rib.policy.PolicyCheck`` and BIRD 1.6's semantics, calling ``runtime`` and
  ``runtime_ops``; values: ``values``, ``value_sets``, ``prefix_sets``, ``as_paths``;
  ``prefix_classes`` memoises the verdicts of filters that read the prefix only through
  constant tests; ``bgp_export`` is BIRD's BGP export view under a BGP export filter.
* ``daemon_config``: ``BirdConfig`` -> Myna's ``DaemonConfig`` (the same internal config the
  YAML front-end builds), with ``bfd_map`` for each BGP peer's BFD settings;
  ``calico_facts``: what of Calico's inputs a file shows.
* ``cli``: ``myna bird -p -c FILE``, ``myna check`` of BIRD files, running as ``bird``/``bird6``;
  ``file_kinds``: whether a file or a program name is BIRD's, without loading the rest.
"""
