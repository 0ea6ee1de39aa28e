"""A peer's BFD settings in the YAML config (``peers[].bfd``), validated by pydantic.

Data flow: ``bgpd.config.Peer`` holds an optional ``BfdModel``; ``myna check`` prints it (the
password hidden); ``bgpd.bfd_peers`` turns it, with the peer's addresses, into the engine's
``bfd.ipc.PeerConfig`` (intervals in microseconds, the password read from where the config
says) and the session's ``bfd_graceful``.

The defaults are BIRD 2's for ``protocol bfd`` (proto/bfd/bfd.h: ``BFD_DEFAULT_MIN_RX_INT``
10 ms, ``BFD_DEFAULT_MIN_TX_INT`` 100 ms, ``BFD_DEFAULT_IDLE_TX_INT`` 1 s,
``BFD_DEFAULT_MULTIPLIER`` 5), and ``graceful: false`` is BIRD's ``bfd on`` (``bfd graceful``
is the other choice). ``multihop`` unset follows the BGP session, as BIRD does: single-hop BFD
(RFC 5881) for a peer configured one hop away (``multihop: 1`` or ``ttl_security: 1``, BIRD's
``direct``), multihop BFD (RFC 5883) otherwise, which is what Calico's ``multihop;`` peers get.
Intervals are milliseconds, or strings with BIRD's units: ``"100 ms"``, ``"1 s"``, ``"500 us"``.

Two fields carry what BIRD's ``protocol bfd`` can say per session (``bgpd.bird_config.bfd_map``
fills them from a ``bird.cfg``; YAML may use them too):

* ``local``: the session's own address (BIRD's ``neighbor ... local``); default the BGP
  session's (``source_address``, else the address the BGP session uses).
* ``interfaces``: per-interface settings for a single-hop session, BIRD's ``interface
  PATTERNS { ... }`` blocks: the first item whose ``patterns`` admit the interface the peer is
  reached on gives every session setting (timers, passivity, authentication); none admitting
  it, the block's own settings apply. The interface is only known where the daemon runs, so
  ``bgpd.bfd_peers`` chooses when it creates the session (``for_interface``), with the
  interface whose connected network holds the peer's address, as BIRD's neighbor lookup does.

``passive`` is for multihop sessions only: RFC 5880 6.1 allows a Passive end, and RFC 5881 3
has "both sides of a session MUST take the "Active" role" for single hop. The peer
(``bgpd.config.Peer``), which knows the hop mode, turns it off for a single-hop session
(``BfdModel.for_hop_mode``) with a warning rather than refuse the file: BIRD takes ``passive``
in any ``interface`` block, so a file that worked for BIRD keeps working, and ``myna check``
shows the effective value.

``hold_limit`` (Myna's own; milliseconds or a string with a unit, default 60 s, null for no
limit) ends the hold of a BGP session after a BFD failure when the peer has sent no BFD
packet at all for that long (``bgpd.bfd_hold`` says why, RFC 5882 4.1).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bfd.auth import AuthSettings
from bfd.wire_codes import MAX_INTERVAL_US, SLOW_TX_INTERVAL_US, AuthType
from bgpd.bfd_hold import DEFAULT_LIMIT
from bgpd.bird_config.runtime import patmatch

LOG = logging.getLogger("myna.config")
AuthName = Literal["none", "simple", "keyed_md5", "meticulous_md5", "keyed_sha1", "meticulous_sha1"]
AUTH_TYPES: dict[str, AuthType] = {
    "simple": AuthType.SIMPLE_PASSWORD,
    "keyed_md5": AuthType.KEYED_MD5,
    "meticulous_md5": AuthType.METICULOUS_KEYED_MD5,
    "keyed_sha1": AuthType.KEYED_SHA1,
    "meticulous_sha1": AuthType.METICULOUS_KEYED_SHA1,
}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*$")


class BfdSecretError(Exception):
    """The BFD password cannot be read from where the config says (the config's fault)."""


def _milliseconds(value: object) -> float:
    """A number (milliseconds) or a string with BIRD's unit, as milliseconds."""
    if isinstance(value, bool):
        raise ValueError("an interval is a number of milliseconds or a string like '100 ms'")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"{value!r} is not an interval: give milliseconds or e.g. '100 ms', '1 s'")


def microseconds(milliseconds: float) -> int:
    """What the packets carry."""
    return round(milliseconds * 1000)


class BfdSessionModel(BaseModel):
    """The settings one BFD session runs with: timers, passivity, authentication."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    min_tx: float = 100.0  # ms: bfd.DesiredMinTxInterval once Up
    min_rx: float = 10.0  # ms: bfd.RequiredMinRxInterval
    idle_tx: float = 1000.0  # ms: bfd.DesiredMinTxInterval while not Up (RFC 5880 6.8.3)
    multiplier: Annotated[int, Field(ge=1, le=255)] = 5
    passive: bool = False  # wait for the peer's first packet (RFC 5880 6.1)
    auth: AuthName = "none"
    password: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    key_id: Annotated[int, Field(ge=0, le=255)] = 1  # BIRD numbers passwords from 1

    @field_validator("min_tx", "min_rx", "idle_tx", mode="before")
    @classmethod
    def _interval(cls, value: object) -> float:
        return _milliseconds(value)

    @field_validator("min_tx", "min_rx")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not 1 <= microseconds(value) <= MAX_INTERVAL_US:
            raise ValueError(f"must be 1 us to {MAX_INTERVAL_US // 1000} ms, not {value} ms")
        return value

    @field_validator("idle_tx")
    @classmethod
    def _idle(cls, value: float) -> float:
        if not SLOW_TX_INTERVAL_US <= microseconds(value) <= MAX_INTERVAL_US:
            raise ValueError(
                f"must be at least 1 s (RFC 5880 6.8.3: not less than one second while the "
                f"session is not Up), not {value} ms"
            )
        return value

    @model_validator(mode="after")
    def _password_fits_auth(self) -> Self:
        given = [n for n in ("password", "password_file", "password_env") if getattr(self, n)]
        if len(given) > 1:
            raise ValueError(f"give at most one of password, password_file, password_env: {given}")
        if self.auth == "none" and given:
            raise ValueError(f"{given[0]} given but auth is none: name the authentication type")
        if self.auth != "none" and not given:
            raise ValueError(f"auth {self.auth} needs a password, password_file or password_env")
        if self.password is not None:
            self.auth_settings(self.password)  # the length rules of RFC 5880 4.2-4.4
        return self

    def secret(self, where: str) -> str | None:
        """The password, read from where the config says (never logged); None without auth."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise BfdSecretError(
                    f"{where}: cannot read bfd.password_file {self.password_file}: {exc.strerror}"
                ) from exc
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise BfdSecretError(f"{where}: bfd.password_env {self.password_env} is not set")
            return value
        return self.password

    def auth_settings(self, secret: str | None) -> AuthSettings | None:
        """RFC 5880 6.7 authentication with ``secret`` (ValueError: it does not fit the type)."""
        if self.auth == "none":
            return None
        if not secret:
            raise ValueError(f"auth {self.auth} needs a non-empty password")
        try:
            return AuthSettings.single(AUTH_TYPES[self.auth], secret, self.key_id)
        except ValueError as error:
            # AuthSettings names the rule (simple: 1-16 octets, MD5 16, SHA1 20); say it for
            # the config's words, without the password.
            raise ValueError(f"bfd password does not fit auth {self.auth}: {error}") from None


def interface_admitted(patterns: tuple[str, ...], name: str) -> bool:
    """Whether the first of ``patterns`` that matches ``name`` includes it (BIRD's rule).

    A pattern is BIRD's glob (``*``, ``?``, backslash escapes: ``patmatch``); a leading ``-``
    makes it an exclusion. No pattern matching is no.
    """
    for pattern in patterns:
        exclude = pattern.startswith("-")
        if patmatch(pattern[1:] if exclude else pattern, name):
            return not exclude
    return False


class BfdInterfaceModel(BfdSessionModel):
    """One ``bfd.interfaces`` item: the settings of sessions to peers on matching interfaces."""

    patterns: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("patterns")
    @classmethod
    def _named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(p in ("", "-") for p in value):
            raise ValueError("an interface pattern is a name or glob, '-' before it excludes")
        return value

    def admits(self, interface: str) -> bool:
        """Whether a peer reached on ``interface`` gets these settings."""
        return interface_admitted(self.patterns, interface)


class BfdModel(BfdSessionModel):
    """One peer's ``bfd:`` block (``bfd: true`` is this with every default)."""

    enabled: bool = True
    multihop: bool | None = None  # None: as the BGP session (see the module docstring)
    graceful: bool = False  # BIRD's "bfd graceful"; false is "bfd on"
    local: str | None = None  # the session's own address; None: the BGP session's
    # single hop: the first item admitting the peer's interface gives the settings, else these
    interfaces: tuple[BfdInterfaceModel, ...] = ()
    # ms: a BGP session held by a BFD failure goes free after this long without a BFD packet
    # from the peer (None: held until BFD is Up); bgpd.bfd_hold
    hold_limit: float | None = DEFAULT_LIMIT * 1000

    @field_validator("hold_limit", mode="before")
    @classmethod
    def _hold_limit(cls, value: object) -> float | None:
        if value is None:
            return None
        milliseconds = _milliseconds(value)
        if milliseconds < 1000:
            raise ValueError(f"must be at least 1 s (or null for no limit), not {milliseconds} ms")
        return milliseconds

    @field_validator("local")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.ip_address(value))

    def for_interface(self, interface: str | None) -> BfdModel:
        """The settings of a session to a peer reached on ``interface`` (None: unknown)."""
        if not self.interfaces:
            return self
        update: dict[str, object] = {"interfaces": ()}
        chosen = (
            next((rule for rule in self.interfaces if rule.admits(interface)), None)
            if interface is not None
            else None
        )
        if chosen is not None:
            update.update({name: getattr(chosen, name) for name in BfdSessionModel.model_fields})
        return self.model_copy(update=update)

    def for_hop_mode(self, multihop: bool, peer: str) -> BfdModel:
        """The block as it runs for a ``multihop`` (or single-hop) session to ``peer``.

        RFC 5881 3: "both sides of a session MUST take the "Active" role" (single hop), so
        ``passive`` is turned off there, in the block and its ``interfaces`` items, with a
        warning (module docstring).
        """
        passive = self.passive or any(rule.passive for rule in self.interfaces)
        if not passive or multihop:
            return self
        LOG.warning(
            "peer %s: bfd passive ignored: a single-hop BFD session takes the Active role "
            "(RFC 5881 3); passive is for multihop sessions",
            peer,
        )
        rules = tuple(rule.model_copy(update={"passive": False}) for rule in self.interfaces)
        return self.model_copy(update={"passive": False, "interfaces": rules})


def bfd_from_yaml(value: object) -> object:
    """``bfd: true`` / ``bfd: false`` as a block with every default, enabled or not."""
    if isinstance(value, bool):
        return {"enabled": value}
    return value
