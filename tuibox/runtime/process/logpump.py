"""The monitor's log pump: a detached box's stdout and stderr are a pipe whose read end the
monitor keeps; it copies what comes into the capped log (`runtime/logfile.py`).

Why a pipe and not the file itself as fds 1-2: only a writer we control can cap and rotate
(a program's O_APPEND fd cannot be redirected to a new file), and only it can drop output on
a full disk instead of stalling the program in write(2).

Order at the end, so the last line written before exit is in the log: the init's exit is
seen (pidfd), it is reaped, the pipe is drained of what is already in it, *then* the caller
records the exit; afterwards `to_end` copies on until no process holds the pipe (a box
without its own PID namespace may leave children behind; destroy kills them).

Imported by the monitor after its fork (never by the CLI): select and our logfile only.
"""

from __future__ import annotations

import os
import select
import time

from tuibox.runtime.logfile import CHUNK, CappedLog

DRAIN_SECONDS = 1.0  # at exit, a writer that never pauses must not hold up the status


class Pump:
    __slots__ = ("log", "pipe")

    def __init__(self, pipe: int, path: str, max_size: int) -> None:
        self.pipe = pipe
        self.log = CappedLog(path, max_size)
        os.set_blocking(pipe, False)

    def _copy(self, limit: int) -> bool | None:
        """Up to `limit` reads; False at EOF (no writer left), None when the pipe is empty."""
        for _ in range(limit):
            try:
                data = os.read(self.pipe, CHUNK)
            except BlockingIOError:
                return None
            except InterruptedError:
                continue
            if not data:
                return False
            self.log.write(data)
        return True

    def until_exit(self, pid: int) -> int:
        """Copy output until the init (our child) exits; reap it, drain what it wrote, and
        return its wait status."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(self.pipe, select.POLLIN)
            pipe_open = True
            try:
                while True:
                    events = poller.poll()
                    if any(fd == pidfd for fd, _ in events):
                        break
                    if pipe_open and self._copy(16) is False:
                        poller.unregister(self.pipe)  # EOF: only the exit is left to see
                        pipe_open = False
            finally:
                os.close(pidfd)
        status = _reap(pid)
        self.drain()
        return status

    def drain(self) -> None:
        """What is in the pipe now (bounded in time: a child left behind may write on)."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            if self._copy(64) is not True:
                return

    def to_end(self) -> None:
        """Copy until no process holds the pipe's write end, then close both ends."""
        os.set_blocking(self.pipe, True)
        try:
            while self._copy(64) is not False:
                pass
        except OSError:
            pass
        finally:
            os.close(self.pipe)
            self.log.close()


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0
