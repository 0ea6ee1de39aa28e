"""The messages between the daemon (``service``) and the BFD engine process (``engine``).

Data flow: one ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair joins the two, so each message is one
datagram and needs no framing. A message is a frozen dataclass below, sent as JSON with its
``kind``: the daemon sends ``AddSession``, ``ReconfigureSession``, ``RemoveSession``,
``SetAdminDown`` and ``StatusRequest``; the engine answers with ``Ready``,
``SessionStateChanged``, ``RemoteStateChanged``, ``StatusReply`` and ``SessionFailed``. JSON,
not pickle: the engine is our own child, but a format that cannot run code keeps it that way,
and each message is small.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from bfd.auth import AuthKey, AuthSettings
from bfd.wire_codes import AuthType, HopMode

MAX_MESSAGE = 1 << 20  # a StatusReply of thousands of sessions still fits


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One session as the daemon asks for it (RFC 5882: what a client protocol requests).

    ``key`` names the session in every later message. ``interface`` binds a single-hop session
    to a device (and is required for an IPv6 link-local peer); ``local`` is the source
    address (required for multihop, where it is half of the demultiplexing pair, RFC 5883 4).
    ``min_ttl``: multihop packets arriving with a lower TTL are dropped (None: no check,
    since BIRD sends multihop packets with the system's default TTL); single hop always
    requires 255 (RFC 5881 5).
    """

    key: str
    peer: str
    local: str | None = None
    interface: str | None = None
    mode: HopMode = HopMode.SINGLE_HOP
    desired_min_tx_us: int = 300_000
    required_min_rx_us: int = 300_000
    detect_mult: int = 3
    passive: bool = False
    auth: AuthSettings | None = None
    min_ttl: int | None = None
    idle_tx_us: int = 1_000_000

    def same_path(self, other: PeerConfig) -> bool:
        """Whether ``other`` runs over the same path (so it may change this session in place)."""
        return (self.peer, self.local, self.interface, self.mode) == (
            other.peer,
            other.local,
            other.interface,
            other.mode,
        )


@dataclass(frozen=True, slots=True)
class AddSession:
    """Create the session (the engine answers with ``SessionFailed`` if it cannot)."""

    config: PeerConfig


@dataclass(frozen=True, slots=True)
class ReconfigureSession:
    """New intervals, multiplier, passivity or authentication for a session on the same path.

    Applied in place as RFC 5880 6.8.3 asks (a Poll sequence when the session is Up), as BIRD
    reconfigures its sessions: the session, and its clients, see no state change.
    """

    config: PeerConfig


@dataclass(frozen=True, slots=True)
class RemoveSession:
    """Forget the session; the engine tells the peer AdminDown for a Detection Time first."""

    key: str


@dataclass(frozen=True, slots=True)
class SetAdminDown:
    """RFC 5880 6.8.16: disable (True) or enable (False) the session."""

    key: str
    admin_down: bool


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Ask for every session's status; answered by the ``StatusReply`` with the same id."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The engine runs; ``pid`` is its process (or the daemon's own, in thread mode)."""

    pid: int


@dataclass(frozen=True, slots=True)
class SessionStateChanged:
    """Session ``key`` went from ``old`` to ``new`` (State values) at monotonic time ``at``.

    ``diagnostic`` is our bfd.LocalDiag after the change; ``remote_state`` the state the
    peer last sent (AdminDown there means an administrative stop, not a failure: RFC 5882 3.2).
    """

    key: str
    old: int
    new: int
    diagnostic: int
    remote_state: int
    at: float


@dataclass(frozen=True, slots=True)
class RemoteStateChanged:
    """What session ``key`` knows of its peer changed at monotonic time ``at``.

    ``state`` is the State the peer last sent, ``heard`` whether a packet came within the
    last Detection Time, ``diagnostic`` the peer's. Sent whenever either changes, whatever the
    session's own state: how the daemon learns that the peer of a failed session went
    AdminDown (RFC 5882 4.1) or stopped sending altogether.
    """

    key: str
    state: int
    heard: bool
    diagnostic: int
    at: float


@dataclass(frozen=True, slots=True)
class StatusReply:
    """Every session's ``SessionStatus`` as a dict, and the engine's own drop counters."""

    request_id: int
    sessions: dict[str, dict[str, Any]]
    dropped: dict[str, int]
    packets_in: int


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """The engine could not create session ``key``: ``reason`` says why (whose fault too)."""

    key: str
    reason: str


Message = (
    AddSession
    | ReconfigureSession
    | RemoveSession
    | SetAdminDown
    | StatusRequest
    | Ready
    | SessionStateChanged
    | RemoteStateChanged
    | StatusReply
    | SessionFailed
)
_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        AddSession,
        ReconfigureSession,
        RemoveSession,
        SetAdminDown,
        StatusRequest,
        Ready,
        SessionStateChanged,
        RemoteStateChanged,
        StatusReply,
        SessionFailed,
    )
}


def encode(message: Message) -> bytes:
    """One datagram for ``message``."""
    body: dict[str, Any] = {"kind": type(message).__name__}
    for item in dataclasses.fields(message):
        value = getattr(message, item.name)
        body[item.name] = _config_out(value) if isinstance(value, PeerConfig) else value
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """The message in one datagram (ValueError: not one of ours, a bug on the other side)."""
    body = json.loads(data)
    cls = _KINDS.get(body.pop("kind", None))
    if cls is None:
        raise ValueError(f"unknown BFD engine message {data[:80]!r}")
    if cls in (AddSession, ReconfigureSession):
        wrapped: Message = cls(_config_in(body["config"]))
        return wrapped
    message: Message = cls(**body)
    return message


def _config_out(config: PeerConfig) -> dict[str, Any]:
    out = {item.name: getattr(config, item.name) for item in dataclasses.fields(config)}
    auth = config.auth
    if auth is not None:
        out["auth"] = {
            "auth_type": int(auth.auth_type),
            "keys": [[key.key_id, key.secret.hex()] for key in auth.keys],
            "send_key_id": auth.send_key_id,
        }
    return out


def _config_in(raw: dict[str, Any]) -> PeerConfig:
    auth = raw.pop("auth")
    settings = None
    if auth is not None:
        keys = tuple(AuthKey(key_id, bytes.fromhex(secret)) for key_id, secret in auth["keys"])
        settings = AuthSettings(AuthType(auth["auth_type"]), keys, auth["send_key_id"])
    return PeerConfig(**{**raw, "mode": HopMode(raw["mode"]), "auth": settings})
