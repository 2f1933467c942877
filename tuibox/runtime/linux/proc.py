"""Kernel facts about processes, read from /proc."""

from __future__ import annotations

import os
import time


def read_stat(pid: int) -> tuple[str, int] | None:
    """Return (state letter, start time in clock ticks) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def start_time(pid: int) -> int | None:
    st = read_stat(pid)
    return None if st is None else st[1]


def is_alive(pid: int, starttime: int | None) -> bool:
    """True when pid exists, is the same process (start time), and is not a zombie."""
    if pid <= 0:
        return False
    st = read_stat(pid)
    if st is None:
        return False
    state, started = st
    if starttime is not None and started != starttime:
        return False
    return state not in ("Z", "X")


def parent_of(pid: int) -> int | None:
    """The parent pid of pid (0 for a process whose parent is outside its PID namespace)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2 :].split()[1])


def comm(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


def wait_gone(pid: int, starttime: int | None, timeout: float) -> bool:
    """Poll until the process is gone or a zombie; no fixed sleep after the signal."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while is_alive(pid, starttime):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True
