"""A detached box's log on disk: written capped and rotated, read across the rotation.

The log lives beside the box's writable layer under the data root
(`<data>/boxes/<root tag>-<name>/box.log`, `extra["log"]` in the record), never in the
RAM-backed state root. Its writer (`CappedLog`, used by the monitor's pump and by the
console keeper) keeps at most `max_size` bytes in `box.log`; when the next bytes would pass
the cap, `box.log` becomes `box.log.1` (replacing the older one) and a new `box.log` starts,
so at most twice the cap is on disk (docker's json-file with max-file=2, in spirit). The cut
is at a byte, not a line: `box.log.1` followed by `box.log` is the output as it was written.

A write that fails (a full disk, a removed directory) drops its bytes and counts them; the
next write that succeeds is preceded by one line saying how many were lost. The writer never
waits for room: a box whose disk is full keeps running, it loses output instead.

Imported only by processes that write or read a log (the monitor after its fork, the keeper,
`logs`): nothing here is on `tuibox run`'s start-up path.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DEFAULT_MAX_SIZE = 10 << 20  # docker's json-file has no cap by default; podman's 10 MB-ish
NAME = "box.log"
ROTATED_SUFFIX = ".1"
CHUNK = 65536


def no_cap(max_size: int) -> bool:
    """`--log-max-size -1` (or 0): the log grows without a cap."""
    return max_size <= 0


class CappedLog:
    """Appends to `path`, rotating to `path.1` at `max_size` bytes (<= 0: never)."""

    __slots__ = ("dropped", "fd", "lost", "max_size", "path", "size")

    def __init__(self, path: str, max_size: int) -> None:
        self.path = path
        self.max_size = max_size
        self.fd = -1
        self.size = 0
        self.dropped = 0  # bytes lost since the last successful write (not yet noted)
        self.lost = 0  # bytes lost over the log's life
        self._open()

    def _open(self) -> None:
        try:
            self.fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
        except OSError:
            self.fd = -1
            return
        try:
            self.size = os.fstat(self.fd).st_size
        except OSError:
            self.size = 0

    def _write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)  # a seam: tests make it fail as a full disk does

    def _rotate(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.rename(self.path, self.path + ROTATED_SUFFIX)
        except OSError:
            pass  # gone (a destroy), or cannot: a fresh box.log is still the best we can do
        self.size = 0
        self._open()

    def write(self, data: bytes) -> None:
        """Write all of `data`, or drop (and count) what cannot be written. Never raises."""
        view = memoryview(data)
        if self.dropped and view and not self._note():
            self._drop(len(view))
            return
        while view:
            if self.fd < 0:
                self._open()
                if self.fd < 0:
                    self._drop(len(view))
                    return
            cap = self.max_size
            if not no_cap(cap) and self.size >= cap:
                self._rotate()
                continue
            room = len(view) if no_cap(cap) else min(len(view), cap - self.size)
            try:
                n = self._write(self.fd, view[:room])
            except OSError:
                n = 0
            if n <= 0:
                self._drop(len(view))
                return
            self.size += n
            view = view[n:]

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.lost += count

    def _note(self) -> bool:
        """One line in place of what was lost, once there is room again."""
        line = f"\n[tuibox: {self.dropped} bytes of output lost: the log could not be written]\n"
        pending, self.dropped = self.dropped, 0
        before = self.lost
        self.write(line.encode())
        if self.lost != before:  # still no room: the note is not counted as output
            self.lost = before
            self.dropped = pending
            return False
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_read(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1


def _ino(fd_or_path: int | str) -> int:
    try:
        return os.stat(fd_or_path).st_ino
    except OSError:
        return -1


def _read_all(fd: int) -> Iterator[bytes]:
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return
        yield chunk


def read_log(
    path: str, follow: bool = False, running: Callable[[], bool] | None = None, poll: float = 0.2
) -> Iterator[bytes]:
    """The log's bytes in order: `path.1`, then `path`; with `follow`, new bytes as they come
    until `running()` says the writer is done, following rotations (the file we read becomes
    `path.1`: its rest is read, then the new `path`). FileNotFoundError when neither exists."""
    cur = _open_read(path)
    old = _open_read(path + ROTATED_SUFFIX)
    try:
        if old >= 0 and cur >= 0 and _ino(old) == _ino(cur):
            # Rotated between the two opens: `cur` is that older file already.
            os.close(old)
            old = -1
        if old >= 0:
            yield from _read_all(old)
            os.close(old)
            old = -1
        if cur < 0:
            cur = _open_read(path)
            if cur < 0:
                raise FileNotFoundError(path)
        while True:
            yield from _read_all(cur)
            if not follow:
                return
            now = _ino(path)
            if now not in (-1, _ino(cur)):
                # Rotated: what was written to our file before it was renamed, then the
                # file in between if there was a second rotation, then the new one.
                yield from _read_all(cur)
                mine = _ino(cur)
                os.close(cur)
                cur = -1
                between = _open_read(path + ROTATED_SUFFIX)
                if between >= 0:
                    if _ino(between) != mine:
                        yield from _read_all(between)
                    os.close(between)
                cur = _open_read(path)
                if cur < 0:
                    continue_after = time.monotonic() + 1.0
                    while cur < 0 and time.monotonic() < continue_after:
                        time.sleep(0.01)
                        cur = _open_read(path)
                    if cur < 0:
                        return
                continue
            if running is not None and not running():
                yield from _read_all(cur)  # what the writer added before it stopped
                return
            time.sleep(poll)
    finally:
        for fd in (cur, old):
            if fd >= 0:
                os.close(fd)
