"""Myna's reader of BIRD 1.x configuration files (``bird.cfg`` / ``bird6.cfg`` from confd).

Files, in the order data flows through them:

* ``lexer``, ``keywords``: bytes (and included files) -> tokens, as BIRD 1.6's flex lexer.
* ``parse_base``, ``symbols``, ``filter_parser``, ``config_parser``: tokens -> ``BirdConfig``
  (``config_model``) holding protocols and filters (``filter_ast``), with BIRD's errors
  (``errors``: ``FILE:LINE:COL message``).
* ``filter_codegen``, ``filter_compiler``, ``runtime``, ``runtime_ops``, ``values``,
  ``value_sets``, ``prefix_sets``, ``as_paths``, ``attributes``: a filter -> one Python
  function with the shape of ``rib.policy.PolicyCheck`` and BIRD 1.6's semantics.
* ``daemon_config``: ``BirdConfig`` -> Myna's ``DaemonConfig`` (the same internal config the
  YAML front-end builds), ``calico_facts``: what of Calico's inputs a file shows.
* ``cli``: ``myna bird -p -c FILE``, ``myna check`` for BIRD files, running as ``bird``/``bird6``.
"""
