"""Relay between the user's terminal and a box process's pty master (`exec -t`).

Our terminal goes into raw mode (when we forward its input), so every key, ctrl-c included,
reaches the box's terminal, whose line discipline turns it into signals there. Window size
changes (SIGWINCH) are copied to the pty (TIOCSWINSZ), which signals the box's foreground
process group. Signals are noticed through `_signal.set_wakeup_fd`, so one `select` waits for
keys, output and signals alike.
"""

from __future__ import annotations

import _signal
import errno
import os
import select
import termios
import tty

from tuibox.runtime.process.exec import ExecHandle, get_size, set_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Recorder(Protocol):
        """Where a recorded session goes (`tuibox.asciicast.CastWriter`)."""

        def output(self, data: bytes) -> None: ...
        def resize(self, rows: int, columns: int) -> None: ...


_RELAYED = (_signal.SIGWINCH, _signal.SIGCHLD, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT)


def write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            select.select([], [fd], [])


def relay(
    handle: ExecHandle,
    stdin: int = 0,
    stdout: int = 1,
    forward_stdin: bool = True,
    recorder: Recorder | None = None,
) -> int:
    """Copy until the process exits and its output is drained; returns its exit status.
    With a `recorder`, every output chunk and window size change is also handed to it."""
    master = handle.master_fd
    if master is None:
        raise ValueError("relay needs a process with a pty")
    raw = forward_stdin and os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if raw else None
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_handlers = {s: _signal.getsignal(s) for s in _RELAYED}
    old_wakeup = _signal.set_wakeup_fd(wake_w)
    for s in _RELAYED:
        _signal.signal(s, lambda *_: None)  # a Python handler, so the wakeup fd is written
    os.set_blocking(master, False)
    pending = b""  # keys not yet taken by the pty
    stdin_open = forward_stdin
    master_open = True
    try:
        if raw:
            tty.setraw(stdin, termios.TCSANOW)
        while True:
            if handle.poll() is not None:
                _drain(master, stdout, recorder)
                break
            if not master_open:
                handle.wait()
                break
            readers = [master, wake_r] + ([stdin] if stdin_open and not pending else [])
            writers = [master] if pending else []
            ready_r, ready_w, _ = select.select(readers, writers, [], 1.0)
            if wake_r in ready_r:
                for signum in os.read(wake_r, 256):
                    _on_signal(handle, signum, stdin, stdout, recorder)
            if master in ready_r:
                master_open = _copy_out(master, stdout, recorder)
            if stdin in ready_r:
                data = os.read(stdin, 65536)
                if data:
                    pending += data
                else:
                    stdin_open = False
            if pending and (master in ready_w or not writers):
                try:
                    pending = pending[os.write(master, pending) :]
                except BlockingIOError:
                    pass  # the pty is full: select says when it drains
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            except (termios.error, OSError):
                pass  # our terminal was hung up (a closed pane): nothing left to restore
        _signal.set_wakeup_fd(old_wakeup)
        for s, h in old_handlers.items():
            _signal.signal(s, h)
        os.close(wake_r)
        os.close(wake_w)
        handle.close()
    return handle.returncode if handle.returncode is not None else 1


def _on_signal(
    handle: ExecHandle, signum: int, stdin: int, stdout: int, recorder: Recorder | None
) -> None:
    if signum == _signal.SIGWINCH:
        size = get_size(stdin) or get_size(stdout)
        if size is not None and handle.master_fd is not None:
            set_size(handle.master_fd, *size)
            if recorder is not None:
                recorder.resize(*size)
    elif signum in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
        # In raw mode ctrl-c arrives as a key; these come from elsewhere (kill, a closed window).
        handle.signal(signum)


def _copy_out(master: int, stdout: int, recorder: Recorder | None = None) -> bool:
    """Copy what the pty has; False once every slave end is closed (EIO)."""
    try:
        data = os.read(master, 65536)
    except BlockingIOError:
        return True
    except OSError as e:
        if e.errno == errno.EIO:
            return False
        raise
    if not data:
        return False
    if recorder is not None:
        recorder.output(data)
    write_all(stdout, data)
    return True


def _drain(master: int, stdout: int, recorder: Recorder | None = None) -> None:
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        if recorder is not None:
            recorder.output(data)
        write_all(stdout, data)
