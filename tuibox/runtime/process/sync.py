"""The typed handshake between the runtime (parent) and the box's init (child).

One JSON object per line over a pair of pipes (no socket module: it costs ~5 ms to import).
The child says `namespaces` once its namespaces exist (the parent then places it in cgroups
and wires the network), waits for `continue`, and ends with `ready` or
`error{step, errno, msg}`. The child's write end is close-on-exec, so a successful execve
shows up in the parent as end-of-file.
"""

from __future__ import annotations

import errno as errno_mod
import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import (
    CommandNotExecutable,
    CommandNotFound,
    InitError,
    TuiboxError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """(parent end, child end). Both pipes are close-on-exec."""
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        return cls(up_r, down_w), cls(down_r, up_w)

    def fds(self) -> tuple[int, int]:
        return self.rfd, self.wfd

    def send(self, kind: str, **fields: Any) -> None:
        fields["type"] = kind
        data = fastjson.dumps(fields).encode() + b"\n"
        while data:
            data = data[os.write(self.wfd, data) :]

    def recv(self) -> dict[str, Any] | None:
        """The next message, or None at end-of-file (the peer exec'd or died)."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg: dict[str, Any] = fastjson.loads(line)
        return msg

    def expect(self, kind: str) -> dict[str, Any]:
        """Wait for `kind`; turn an error message or a silent death into an exception."""
        msg = self.recv()
        if msg is None:
            raise TuiboxError(f"box init exited before sending {kind!r}")
        if msg["type"] == "error":
            raise error_from_message(msg)
        if msg["type"] != kind:
            raise TuiboxError(f"box init sent {msg['type']!r}, expected {kind!r}")
        return msg

    def send_error(self, step: str, exc: BaseException) -> None:
        err = exc.errno if isinstance(exc, OSError) and exc.errno else 0
        if isinstance(exc, OSError) and exc.strerror and exc.filename is None:
            text = exc.strerror
        elif isinstance(exc, OSError) and exc.errno:
            name = exc.filename if exc.filename is not None else ""
            text = f"{os.strerror(exc.errno).lower()}: {name}".rstrip(": ")
        else:
            text = str(exc)
        self.send("error", step=step, errno=err, msg=text)

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.rfd = self.wfd = -1


def error_from_message(msg: dict[str, Any]) -> InitError:
    step = str(msg.get("step", "init"))
    err = int(msg.get("errno", 0))
    text = str(msg.get("msg", "unknown error"))
    if step == "lookup" and err == errno_mod.ENOENT:
        return CommandNotFound(step, text, err)
    if step == "lookup" and err in (errno_mod.EACCES, errno_mod.ENOEXEC, errno_mod.EISDIR):
        return CommandNotExecutable(step, text, err)
    return InitError(step, text if text.startswith(step) else f"{step}: {text}", err)
