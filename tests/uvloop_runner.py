"""``on_uvloop``: run an async test function on uvloop, as the daemon runs.

Data flow: test modules decorate ``async def test_...`` with it; pytest sees a plain function
that runs the coroutine to completion in a fresh uvloop event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop


def on_uvloop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on uvloop."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        uvloop.run(test(*args, **kwargs))

    return run
