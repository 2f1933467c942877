"""Paying the kernel's cgroup grace period while the CLI imports, instead of after.

Moving a process into a cgroup (a write to `cgroup.procs`) takes the kernel's global
threadgroup rwsem for writing. After a quiet spell that rwsem is in its readers' fast mode,
and switching it to writer mode waits for an RCU grace period (`rcu_sync_enter`): 5-16 ms of
sleep on this kernel, in the middle of `run` (the init joins its cgroups) and `exec` (the
child joins the box's). It switches back only a grace period after the last writer left
(~30-40 ms here), so a writer that keeps coming keeps it in writer mode, where a migration
costs ~0.1 ms.

So `run`, `create` and `exec` start this warmer first thing (cli/__init__.py), before their
imports: a thread that moves the process into the cgroup it is already in (`0` in its own
`cgroup.procs`: the same lock, no change), once (that write sleeps through the grace period
while the main thread imports and validates), then every 2 ms until `stop()`, which the
cgroups stage calls once the init is in its cgroups, `exec.start` once the child joined, and
the CLI when it returns. The box's own migrations find the rwsem in writer mode.

A thread, not a process: a forked helper cost ~3.5 ms of CPU (copy-on-write faults of the
whole interpreter, its exit), which a loaded machine pays in wall time too; the thread costs
~0.1 ms. And no fork ever runs beside it, so the rule that boxes are forked from a
single-threaded process holds: `os.register_at_fork` stops the thread before every os.fork
(and joins it) and starts it again in the parent after, the raw clone of a user-namespace
box does the same by hand (`before_fork`, `after_fork`), and a child keeps no warmer. (Right
after the init's fork the parent's pid_for_children is still the box's, where the kernel
refuses to start a thread: `spawn_init` resumes it once that is set back. `exec`'s child
joins its cgroups at once, so there it just stays stopped until `stop`.)
Stopping waits for the thread's current write, at worst the rest of the first grace period,
which the fork's box would wait for at its attach anyway. The thread imports nothing, opens
nothing, takes no lock of the interpreter's but the GIL, and writes nothing but `0` into one
file, whose fd the main thread opens (at `start`, and after each fork) above `FD_BASE` and
closes before each fork: no box can inherit it (it is closed at every fork), and a caller's
`--preserve-fds N` (checked while it runs) can only name it with N >= 253, which then fails
in the init (a descriptor closed by then), never hands it over.

Measured on this 2-core VM: a cold first migration 5-27 ms, warm ~0.1 ms
(tests/integration/test_warmer.py, docs/BENCHMARKS.md). Without a cgroup.procs it can open
(no cgroupfs, not root), the thread just ends.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INTERVAL = 0.002  # a grace period is 5-16 ms here: a write every 2 ms never lets it lapse
# A warmer nobody stopped (a bug) must not keep the host's rwsem in writer mode for ever.
MAX_SECONDS = 10.0
# Where the warmer's one fd goes (F_DUPFD_CLOEXEC): far above the 3 .. 3+N-1 a caller passes
# with --preserve-fds; below the usual 1024 limit (a lower one: no warmer).
FD_BASE = 256


class _Warmer:
    """The one warmer of this process (module state: `start` makes it, forks pause it)."""

    def __init__(self) -> None:
        self.owner = 0  # the pid that started it: a forked child has none
        self.wanted = False  # between start() and stop(): run again after a fork
        self.running = False
        self.fd = -1  # its cgroup.procs, above FD_BASE; closed across forks
        self.stop: Any = None  # _thread locks: held by us until the thread must end,
        self.done: Any = None  # held by the thread until it has ended
        self.hooked = False


_W = _Warmer()


def procs_candidates(self_cgroup: str, root: str = "/sys/fs/cgroup") -> list[str]:
    """The `cgroup.procs` files of the cgroups a process is in, from its /proc/PID/cgroup
    text: v1 hierarchies first (mounted at ROOT/<controllers>, the usual layout), then the
    unified one (ROOT itself on a pure v2 host, ROOT/unified on a hybrid one). The rwsem is
    global, so any one of them will do."""
    v1: list[str] = []
    v2: list[str] = []
    for line in self_cgroup.splitlines():
        hier, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2 or not path.startswith("/") or "/.." in path:
            continue
        if hier == "0" and not controllers:
            for base in (root, f"{root}/unified"):
                v2.append(f"{base}{path.rstrip('/')}/cgroup.procs")
        elif controllers:
            name = controllers.removeprefix("name=")
            v1.append(f"{root}/{name}{path.rstrip('/')}/cgroup.procs")
    return v1 + v2


def _open_own_procs() -> int:
    """Our cgroup.procs, as an fd above FD_BASE (-1: none we can write, or no room there)."""
    import fcntl

    try:
        with open("/proc/self/cgroup") as f:
            text = f.read()
    except OSError:
        return -1
    for path in procs_candidates(text):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_BASE)
        except OSError:
            return -1
        finally:
            os.close(fd)
    return -1


def _loop(fd: int, stop: Any, done: Any) -> None:
    # (imports nothing: a thread that imported could hold the import lock across a fork)
    try:
        deadline = time.monotonic() + MAX_SECONDS
        while time.monotonic() < deadline:
            try:
                os.write(fd, b"0")
            except OSError:
                pass  # refused after the lock was taken (a v2 inner node): warm all the same
            if stop.acquire(True, INTERVAL):  # released by _halt; waits without the GIL
                break
    finally:
        done.release()


def _spawn() -> None:
    import _thread

    fd = _open_own_procs()
    if fd < 0:
        return
    stop, done = _thread.allocate_lock(), _thread.allocate_lock()
    stop.acquire()
    done.acquire()
    try:
        _thread.start_new_thread(_loop, (fd, stop, done))
    except RuntimeError:
        os.close(fd)
        return
    _W.fd, _W.stop, _W.done, _W.running = fd, stop, done, True


def _halt() -> None:
    """End the thread, wait until it has (its write in progress finishes first), close its fd."""
    if not _W.running or _W.owner != os.getpid():
        return
    _W.stop.release()
    _W.done.acquire()  # releases the GIL while it waits
    os.close(_W.fd)
    _W.fd, _W.running = -1, False


def start() -> None:
    """Start warming; a no-op when it runs already, or in a process with other threads
    (the TUI never forks boxes itself), or when it cannot (no cgroup.procs, a low fd limit)."""
    if _W.wanted:
        return
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    if not _W.hooked:
        os.register_at_fork(before=before_fork, after_in_parent=after_fork, after_in_child=_child)
        _W.hooked = True
    _W.owner = os.getpid()
    _W.wanted = True
    _spawn()


def stop() -> None:
    """Stop warming for good (the box's migrations are done); a no-op without a warmer."""
    if _W.owner != os.getpid():
        return
    _W.wanted = False
    _halt()


def before_fork() -> None:
    """No thread and no fd of ours across a fork (os.fork's hook; by hand around a raw
    clone)."""
    _halt()


def after_fork() -> None:
    """In the parent after a fork: warm again if nobody stopped it meanwhile."""
    if _W.wanted and not _W.running and _W.owner == os.getpid():
        _spawn()


def _child() -> None:
    # A fork (the init, the monitor, a hook) has no thread and no fd of ours, and must not
    # start or stop one.
    _W.wanted = False
    _W.running = False
    _W.owner = 0
    _W.fd = -1
