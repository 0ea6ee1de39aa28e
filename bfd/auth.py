"""RFC 5880 6.7 authentication: signing what a session sends, checking what it receives.

Data flow: ``session_fsm`` owns one ``AuthState`` per session (when its settings carry an
``AuthSettings``). To send, it builds the ``ControlPacket`` without a section and calls
``sign``, which adds the section (password, or sequence number and keyed MD5 / SHA1 digest)
and returns the octets. On receipt, after 6.8.6's A-bit rules, it calls ``check``: None when
the packet is authentic (the receive sequence number then moves on), else the ``DropReason``.

Two choices where the RFC leaves room:

- The sequence number (6.7.3, 6.7.4) rises with every packet for the meticulous types, as
  required; for plain keyed MD5 / SHA1 the RFC says it MAY rise with every packet and SHOULD
  rise "when the session state changes, or when the transmitted BFD Control packet carries
  different contents than the previously transmitted packet". It rises on such a change (the
  session says so: ``changed``), so that an old packet (a Down) cannot be replayed with the
  number of a newer one (an Up), and otherwise once a second (as BIRD does), so that a burst
  of lost packets longer than the receiver's window of 3 x Detect Mult does not lock the
  session out until that receiver forgets the number.
- 6.7.3 has the receiver learn the sequence number (bfd.AuthSeqKnown) before it checks the
  digest. Here it is learned only from a packet whose digest matched, so that a forged packet
  cannot move the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from bfd.packet import AuthSection, ControlPacket, encode
from bfd.wire_codes import AuthType, DropReason

_SEQUENCE = struct.Struct("!xI")  # the reserved octet, then the sequence number
_DIGEST_SIZE = {
    AuthType.KEYED_MD5: 16,
    AuthType.METICULOUS_KEYED_MD5: 16,
    AuthType.KEYED_SHA1: 20,
    AuthType.METICULOUS_KEYED_SHA1: 20,
}
_MAX_PASSWORD = 16  # 4.2: 1 to 16 octets
_SEQUENCE_SPACE = 1 << 32


@dataclass(frozen=True, slots=True)
class AuthKey:
    """One configured key: its Auth Key ID and its secret (password or key)."""

    key_id: int
    secret: bytes


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """A session's authentication: the type, the keys accepted, and the one sent with.

    Every key in ``keys`` is accepted on receipt (so keys can be rolled over); ``send_key_id``
    (default: the first key's) signs what is sent. Raises ValueError naming the configuration
    mistake: it is the operator's to fix.
    """

    auth_type: AuthType
    keys: tuple[AuthKey, ...]
    send_key_id: int | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("BFD authentication configured without a key")
        ids = [key.key_id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"BFD authentication key ids repeat: {ids}")
        limit = _DIGEST_SIZE.get(self.auth_type, _MAX_PASSWORD)
        for key in self.keys:
            if not 0 <= key.key_id <= 255:
                raise ValueError(f"BFD key id {key.key_id} is not 0-255")
            if not 1 <= len(key.secret) <= limit:
                raise ValueError(
                    f"BFD {self.auth_type.name} key {key.key_id} must be 1-{limit} octets, "
                    f"not {len(key.secret)}"
                )
        if self.send_key_id is not None and self.send_key_id not in ids:
            raise ValueError(f"BFD send key id {self.send_key_id} is not among {ids}")

    @property
    def send_key(self) -> AuthKey:
        """The key what we send is signed with."""
        wanted = self.keys[0].key_id if self.send_key_id is None else self.send_key_id
        return next(key for key in self.keys if key.key_id == wanted)

    def key(self, key_id: int) -> AuthKey | None:
        """The configured key with this id, if any."""
        return next((key for key in self.keys if key.key_id == key_id), None)

    @classmethod
    def single(cls, auth_type: AuthType, secret: str | bytes, key_id: int = 1) -> AuthSettings:
        """One key, id ``key_id``: what a plain ``password "..."`` line configures."""
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(auth_type, (AuthKey(key_id, raw),))


class AuthState:
    """bfd.XmitAuthSeq, bfd.RcvAuthSeq and bfd.AuthSeqKnown of one session (6.8.1)."""

    __slots__ = ("last_increment", "rcv_seq", "seq_known", "xmit_seq")

    def __init__(self, xmit_seq: int | None = None) -> None:
        # 6.8.1: XmitAuthSeq MUST be initialised to a random 32-bit value.
        self.xmit_seq = secrets.randbits(32) if xmit_seq is None else xmit_seq
        self.rcv_seq = 0
        self.seq_known = False
        self.last_increment: float | None = None

    def forget(self) -> None:
        """6.8.1: nothing received for twice the Detection Time; learn the number afresh."""
        self.seq_known = False


def sign(
    packet: ControlPacket,
    settings: AuthSettings,
    state: AuthState,
    now: float,
    *,
    changed: bool = False,
) -> bytes:
    """``packet`` (built without a section) with its authentication section, as octets.

    ``changed``: its contents differ from the packet sent before it (Poll and Final aside),
    which moves a keyed MD5 / SHA1 sequence number on (6.7.3, 6.7.4).
    """
    key = settings.send_key
    auth_type = settings.auth_type
    if auth_type is AuthType.SIMPLE_PASSWORD:
        section = AuthSection(auth_type, key.key_id, key.secret)
        return encode(_with_auth(packet, section))
    due = state.last_increment is not None and (changed or now - state.last_increment >= 1)
    if auth_type.meticulous or due:
        state.xmit_seq = (state.xmit_seq + 1) % _SEQUENCE_SPACE
        state.last_increment = now
    elif state.last_increment is None:
        state.last_increment = now
    size = _DIGEST_SIZE[auth_type]
    prefix = _SEQUENCE.pack(state.xmit_seq)
    padded = key.secret.ljust(size, b"\0")
    unsigned = encode(_with_auth(packet, AuthSection(auth_type, key.key_id, prefix + padded)))
    digest = _digest(auth_type, unsigned)
    return unsigned[: len(unsigned) - size] + digest


def check(packet: ControlPacket, settings: AuthSettings, state: AuthState) -> DropReason | None:
    """None when ``packet`` (A bit set) is authentic under ``settings``; else why not (6.7)."""
    section = packet.auth
    assert section is not None, "check() is for packets with the A bit set"
    auth_type = settings.auth_type
    if section.auth_type != auth_type:
        return DropReason.AUTH_TYPE_MISMATCH
    key = settings.key(section.key_id)
    if key is None:
        return DropReason.AUTH_KEY_UNKNOWN
    if auth_type is AuthType.SIMPLE_PASSWORD:
        # 6.7.2: the Auth Len must be the password's length + 3, and the password match.
        if section.length != len(key.secret) + 3:
            return DropReason.AUTH_LENGTH_WRONG
        if not hmac.compare_digest(section.body, key.secret):
            return DropReason.AUTH_DIGEST_MISMATCH
        return None
    if section.length != auth_type.auth_length:
        return DropReason.AUTH_LENGTH_WRONG
    (sequence,) = _SEQUENCE.unpack_from(section.body)
    if state.seq_known and not _in_window(
        sequence, state.rcv_seq, packet.detect_mult, auth_type.meticulous
    ):
        return DropReason.AUTH_SEQUENCE_OUT_OF_WINDOW
    size = _DIGEST_SIZE[auth_type]
    received = section.body[-size:]
    wire = packet.wire
    with_key = wire[: len(wire) - size] + key.secret.ljust(size, b"\0")
    if len(wire) != packet.length or not hmac.compare_digest(
        _digest(auth_type, with_key), received
    ):
        return DropReason.AUTH_DIGEST_MISMATCH
    state.rcv_seq = sequence
    state.seq_known = True
    return None


def _in_window(sequence: int, last: int, detect_mult: int, meticulous: bool) -> bool:
    """6.7.3 / 6.7.4: last (+1 if meticulous) up to last + 3 x Detect Mult, mod 2**32."""
    ahead = (sequence - last) % _SEQUENCE_SPACE
    return (1 if meticulous else 0) <= ahead <= 3 * detect_mult


def _digest(auth_type: AuthType, data: bytes) -> bytes:
    if auth_type in (AuthType.KEYED_MD5, AuthType.METICULOUS_KEYED_MD5):
        return hashlib.md5(data, usedforsecurity=False).digest()
    return hashlib.sha1(data, usedforsecurity=False).digest()


def _with_auth(packet: ControlPacket, section: AuthSection) -> ControlPacket:
    return dataclasses.replace(packet, auth=section)
