"""pytest set-up for every test under tests/: assertion rewriting for the shared helper modules.

Data flow: pytest loads this file before it imports any test module. ``register_assert_rewrite``
marks the helper modules that the tests import as top-level modules and that hold ``assert``
statements of their own (``neutral_form``'s cross-check helpers, ``rfc7606_builders``'s
baseline builder), so pytest rewrites those asserts the way it rewrites a test module's and a
failing one reports the values it compared. Nothing else is configured here.
"""

import pytest

pytest.register_assert_rewrite("neutral_form", "rfc7606_builders")
