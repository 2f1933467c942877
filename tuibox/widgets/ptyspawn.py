"""Start a local program on a new pty, for tests, benchmarks and demos of `TerminalPane`.

The TUI itself gets its pty from the runtime's exec; this is the local stand-in.

`os.posix_spawn` instead of `pty.fork()` or `Popen(preexec_fn=...)`: the app has threads, and
forking Python there is unsafe, while posix_spawn runs no Python in the child. `setsid=True`
makes the child a session leader before its file actions run, so opening the slave by path as
fd 0 makes it the controlling terminal (no O_NOCTTY): job control and ctrl+c work. There is no
Popen object, so nothing else reaps the child: the caller (the pane) owns the pid.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import termios
from collections.abc import Mapping, Sequence

# Dispositions a Python parent may have set to "ignore" and exec would pass on.
_RESET_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
    signal.SIGWINCH,
)


def set_window_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def default_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TERM"] = "xterm-256color"
    # A stale size in the environment would override the pty's.
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


def spawn_local(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    rows: int = 24,
    columns: int = 80,
) -> tuple[int, int]:
    """Run argv (found on PATH) on a new pty; returns (master fd, pid).

    The size is set before the program starts, so its first screen already fits."""
    if not argv:
        raise ValueError("spawn_local needs a program to run")
    master, slave = os.openpty()
    try:
        set_window_size(master, rows, columns)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
            (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 0, 2),
        ]
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env) if env is not None else default_env(),
            file_actions=actions,
            setsid=True,
            setsigdef=_RESET_SIGNALS,
            setsigmask=(),
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return master, pid
