"""The control socket: a UNIX socket speaking one JSON object per line each way.

Data flow: ``ControlSocket.start`` binds the configured path (its directory made if missing),
owned by root with mode 0600, or 0660 and the configured group's so that its members may use
it too; the file system's permissions are the access check. Each line a client sends is a
request for ``ControlApi.handle``; each answer goes back as one line. ``request`` is the
client side the CLI uses. A socket file left by a dead daemon is replaced; one that a running
daemon still answers on is not: two daemons must not share a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from bgpd.control_api import ControlApi

LOG = logging.getLogger("myna.control")
MAX_REQUEST = 1 << 16  # octets in one request line


class ControlSocketError(Exception):
    """The control socket cannot be opened or reached (says why and what to do)."""


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


class ControlSocket:
    """The daemon's end (see the module docstring)."""

    def __init__(self, api: ControlApi, path: Path, group: str | None = None) -> None:
        self.api = api
        self.path = path
        self.group = group
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind and listen."""
        gid = -1
        if self.group is not None:
            try:
                gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise ControlSocketError(
                    f"control.group {self.group!r} does not exist (the config's fault)"
                ) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _alive(self.path):
                raise ControlSocketError(
                    f"another daemon answers on {self.path}: stop it or set control.socket"
                )
            self.path.unlink()
        old_umask = os.umask(0o177)  # never world- or group-accessible, even for an instant
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        if gid != -1:
            os.chown(self.path, -1, gid)
            self.path.chmod(0o660)
        LOG.info("control socket on %s", self.path)

    async def close(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    answer = await self.api.handle_async(request)
                except ValueError as error:
                    answer = {"ok": False, "error": f"not a JSON request: {error}"}
                except Exception as error:  # ours: answer and log, never take the daemon down
                    LOG.exception("control request %r failed", line[:200])
                    answer = {"ok": False, "error": f"internal error (a Myna bug): {error}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()


def request(path: Path, command: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """Send one request and return the answer (the CLI's side; blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise ControlSocketError(f"no control socket at {path}: is myna running?") from None
        except PermissionError:
            raise ControlSocketError(
                f"permission denied on {path}: run as root or as a member of control.group"
            ) from None
        except OSError as error:
            raise ControlSocketError(f"cannot reach {path}: {error.strerror}") from None
        sock.sendall(json.dumps({"command": command, **fields}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ControlSocketError(f"the daemon closed {path} without answering")
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer
