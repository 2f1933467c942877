"""Paying the kernel's cgroup grace period while the CLI imports, instead of after.

Moving a process into a cgroup (a write to `cgroup.procs`) takes the kernel's global
threadgroup rwsem for writing. After a quiet spell that rwsem is in its readers' fast mode,
and switching it to writer mode waits for an RCU grace period (`rcu_sync_enter`): 8-16 ms
of sleep on this kernel, in the middle of `run` (the init joins its cgroups) and `exec` (the
child joins the box's). It switches back only one grace period after the last writer left,
so a writer that keeps coming keeps it in writer mode, where a migration costs ~30 us.

So `run`, `create` and `exec` fork this helper first thing (cli/__init__.py), before their
imports: it moves itself into the cgroup it is already in (`0` in its own `cgroup.procs`,
which takes the same lock and changes nothing), once (that write pays the grace period,
while the CLI imports and validates on the other core), then every 2 ms until `stop()`.
The box's own migrations then find the rwsem in writer mode. `stop()` is called once they
are done (cgroups stage attach, exec's child joined: told only, not waited for) and reaped soon
after (a foreground run's start, the CLI's return), so no process of tuibox's outlives the
verb (an engine's subreaper must never inherit one) and none lingers as a zombie.
The helper imports nothing, holds no fd of the caller's (the box's stdio
pipes stay closable) and gives up on its own after `MAX_SECONDS` or if the CLI dies.

Measured on this 2-core VM: a cold first migration 5-14 ms, with the helper 0.3 ms
(docs/BENCHMARKS.md). Without cgroup v1 or v2 files it can write, the helper just exits.
"""

from __future__ import annotations

import os
import sys

# [pid, write end of its stop pipe (-1 once told to stop), our pid] until it is reaped (a
# fork of ours, the init or a monitor, must not stop or reap it).
_HELPER: list[int] = []
INTERVAL = 0.002  # one grace period is ~10 ms: writes every 2 ms never let it lapse
MAX_SECONDS = 5.0


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
    with open("/proc/self/cgroup") as f:
        text = f.read()
    for path in procs_candidates(text):
        try:
            return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return -1


def _helper(stop_fd: int, parent: int) -> None:  # pragma: no cover - the forked helper
    import select
    import time

    try:
        # Nothing of the caller's: its stdio may be an engine's pipes to the box.
        os.closerange(0, stop_fd)
        os.closerange(stop_fd + 1, 1 << 20)
        try:
            with open("/proc/self/comm", "w") as f:
                f.write("tuibox-warm")
        except OSError:
            pass
        fd = _open_own_procs()
        deadline = time.monotonic() + MAX_SECONDS
        while fd >= 0:
            try:
                os.write(fd, b"0")
            except OSError:
                pass  # refused after the lock was taken (a v2 inner node): warm all the same
            if select.select([stop_fd], [], [], INTERVAL)[0]:
                break
            if os.getppid() != parent or time.monotonic() > deadline:
                break
    finally:
        os._exit(0)


def start() -> None:
    """Fork the helper; a no-op when one runs, or when threads run (a fork would be unsafe;
    the TUI never forks boxes itself), or when the fork fails."""
    if _HELPER or ("threading" in sys.modules and sys.modules["threading"].active_count() > 1):
        return
    try:
        r, w = os.pipe2(os.O_CLOEXEC)
    except OSError:
        return
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return
    if pid == 0:  # pragma: no cover - the helper
        _helper(r, parent)
    os.close(r)
    _HELPER[:] = [pid, w, parent]


def stop(wait: bool = True) -> None:
    """Tell the helper to leave; with `wait`, reap it too (at most one grace period if it is
    still in its first write). `wait=False` keeps the reaping (a few hundred us: the helper
    must wake up and exit) off the critical path, for a later `stop()`. A no-op without one."""
    if not _HELPER or _HELPER[2] != os.getpid():
        return
    pid, w, _ = _HELPER
    if w >= 0:
        try:
            os.write(w, b"x")
        except OSError:
            pass
        os.close(w)
        _HELPER[1] = -1
    if not wait:
        return
    _HELPER.clear()
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return
