"""A stand-in for ``Rib.originate`` that keeps what the RIB would hold of the node's own routes.

Data flow: kernel-sync watchers (``KernelLearner``, ``ConnectedRoutes``, ``StaticRoutes``)
call ``originate`` as they would the RIB's; the recorder keeps, per prefix, the sources it is
announced from (a source is what the RIB interns one by: origin, protocol, interface,
preference, facts) and a log of every call, so a test can check both what is held and that a
prefix never went away between two calls.
"""

from __future__ import annotations

from rib.route import KernelFacts, Origin
from speaker.path_attributes import PathAttributes
from speaker.wire_codes import Family

SourceKey = tuple[Origin, str, str | None, int | None, KernelFacts | None]


class OriginateRecorder:
    """Records ``originate`` calls as the RIB would apply them."""

    def __init__(self) -> None:
        self.held: dict[int, dict[SourceKey, PathAttributes]] = {}
        self.log: list[tuple[int, bool]] = []  # (prefix, announced?) per prefix per call
        self.gaps = 0  # times a prefix held before was held by no source after a call

    @property
    def now(self) -> set[int]:
        """The prefixes announced from at least one source."""
        return set(self.held)

    def originate(
        self,
        _family: Family,
        prefixes: list[int],
        attrs: PathAttributes | None,
        origin: Origin,
        *,
        protocol: str = "",
        interface: str | None = None,
        preference: int | None = None,
        kernel: KernelFacts | None = None,
    ) -> None:
        key = (origin, protocol, interface, preference, kernel)
        for prefix in prefixes:
            self.log.append((prefix, attrs is not None))
            sources = self.held.setdefault(prefix, {})
            if attrs is None:
                sources.pop(key, None)
                if not sources:
                    del self.held[prefix]
                    self.gaps += 1
            else:
                sources[key] = attrs

    def facts(self, prefix: int) -> list[KernelFacts | None]:
        """The facts of every source the prefix is announced from."""
        return [key[4] for key in self.held.get(prefix, {})]
