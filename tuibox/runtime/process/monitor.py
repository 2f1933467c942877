"""Forking a box's init into its PID namespace, and the detached box's monitor: a forked
process that stays the init's parent, reaps it and records its exit status (or, for a
terminal box, becomes its console keeper).

Imported by box.py on `tuibox run`'s start-up path: C modules and our lean ones only. A
destroy needs only `monitors_of`/`monitors_in`: the init's code and ctypes are imported by
the functions that fork.
"""

from __future__ import annotations

import _signal
import os
import time

from tuibox.runtime import state as st
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.linux import proc
from tuibox.runtime.linux.proc import exit_code
from tuibox.runtime.process import warmer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.process.sync import Channel


# The monitor's /proc/PID/comm: how a destroy finds it (even from a damaged record) to wait
# until it has gone, so nothing of the box outlives the destroy.
MONITOR_COMM = b"tuibox-monitor"


def monitors_of(pids: list[int], known: object = None) -> list[tuple[int, int]]:
    """(pid, start time) of the monitors that are parents of `pids`, and of the one a record
    names (`known`, its extra["monitor"]: the init may be reaped already, the monitor not)."""
    out: list[tuple[int, int]] = []
    if isinstance(known, list) and len(known) == 2 and all(type(v) is int for v in known):
        out.append((known[0], known[1]))
    for pid in pids:
        parent = proc.parent_of(pid)
        if not parent or parent == os.getpid() or proc.comm(parent) != MONITOR_COMM:
            continue
        started = proc.start_time(parent)
        if started is not None and (parent, started) not in out:
            out.append((parent, started))
    return out


def monitors_in(box_dir: str) -> list[tuple[int, int]]:
    """(pid, start time) of every monitor of the box at `box_dir`, found from /proc alone:
    a create killed before its record named the monitor leaves one no record knows."""
    out = []
    box_dir = os.path.realpath(box_dir)
    for name in os.listdir("/proc"):
        if not name.isdigit() or proc.comm(int(name)) != MONITOR_COMM:
            continue
        try:
            if os.readlink(f"/proc/{name}/cwd") != box_dir:
                continue
        except OSError:
            continue
        started = proc.start_time(int(name))
        if started is not None:
            out.append((int(name), started))
    return out


def fork_monitor(plan: InitPlan, child: Channel, parent: Channel, box_dir: str) -> tuple[int, int]:
    """Fork the detached box's monitor, which forks the init; (init's host pid, monitor's)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    monitor = os.fork()
    if monitor == 0:  # pragma: no cover - runs in the forked monitor
        os.close(r)
        parent.close()
        monitor_main(plan, child, w, box_dir)
    os.close(w)
    raw = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        raw += chunk
    os.close(r)
    if not raw:
        os.waitpid(monitor, 0)
        raise TuiboxError("box monitor failed to start the init")
    return int(raw), monitor


def spawn_init(plan: InitPlan, child: Channel, parent: Channel | None) -> int:
    """Fork the init inside the box's PID namespace (new or joined); return its host pid."""
    from tuibox.runtime.linux import syscalls as sc
    from tuibox.runtime.process.init import run as init_run

    pid_ns = plan.spec.namespace("pid")
    userns = plan.userns
    own = None
    clone_flags = 0
    if pid_ns is not None and not pid_ns.path and userns is not None and userns.join_fd is None:
        # Made by the clone itself, so that the new user namespace owns it (userns.py).
        clone_flags = sc.CLONE_NEWPID
    elif pid_ns is not None:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if pid_ns.path:
            fd = os.open(pid_ns.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.CLONE_NEWPID)
            finally:
                os.close(fd)
        else:
            sc.unshare(sc.CLONE_NEWPID)
    try:
        # Born non-dumpable: in the box's PID namespace it is visible from the first instant.
        clone = None if userns is None else (lambda: userns.fork(plan, clone_flags))
        pid = sc.fork_unexposed(b"tuibox-init", clone)
    except BaseException:
        _restore_pid_ns(own)
        raise
    if pid == 0:  # pragma: no cover - the box's init
        sc.close_fds_except({*child.fds(), plan.fifo_fd, *(plan.stdio or ()), *plan.keep_fds})
        init_run(plan, child)
    _restore_pid_ns(own)
    # No thread can start while our pid_for_children is the box's (the kernel refuses
    # CLONE_THREAD then), so the CLI's warmer could not resume in os.fork's hook: now it can.
    warmer.after_fork()
    if userns is not None:
        userns.after_fork(pid)
    return pid


def _restore_pid_ns(own: int | None) -> None:
    # Later forks of this process (hooks, helpers) must stay in the host's PID namespace.
    if own is not None:
        from tuibox.runtime.linux import syscalls as sc

        sc.setns(own, sc.CLONE_NEWPID)
        os.close(own)


def monitor_main(
    plan: InitPlan, child: Channel, pid_pipe: int, box_dir: str
) -> None:  # pragma: no cover
    """The detached box's parent: start the init, report its pid, reap it, record the exit."""
    from tuibox.runtime.linux import syscalls as sc

    code = 1
    try:
        os.setsid()
        for s in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGTERM, _signal.SIGQUIT):
            _signal.signal(s, _signal.SIG_IGN)
        began = time.monotonic()
        init_pid = spawn_init(plan, child, None)
        sc.set_comm(MONITOR_COMM)  # after the fork: the init must not inherit the name
        os.chdir(box_dir)  # how `monitors_in` knows its box when no record names it
        os.write(pid_pipe, str(init_pid).encode())
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keeper_fds = plan.console.monitor_fds() if plan.console is not None else None
        pipe = plan.log_pipe
        sc.close_fds_except({0, 1, 2, *(keeper_fds or ()), *((pipe,) if pipe >= 0 else ())})
        if keeper_fds is not None:
            # A detached terminal box: this monitor also keeps its console. Imported only
            # now, in this process, so the CLI pays nothing; it records the exit itself.
            from tuibox.runtime.process.keeper import keep_console

            status = keep_console(*keeper_fds, init_pid, box_dir, plan.log_path, plan.log_max_size)
        elif pipe >= 0:
            # The box's 1-2 are a pipe: copy it into the capped log (logpump.py), drained
            # before the exit is recorded so the last line is in the log when `wait` returns.
            from tuibox.runtime.process.logpump import Pump

            pump = None
            try:
                pump = Pump(pipe, plan.log_path, plan.log_max_size)
                status = pump.until_exit(init_pid)
            except Exception:
                status = wait_child(init_pid)  # a broken pump must not lose the exit
            status = exit_code(status)
            st.record_exit(box_dir, status, attempts=120)
            if pump is not None:
                pump.to_end()
        else:
            status = exit_code(wait_child(init_pid))
            # A full state disk must not lose it: this process has nothing else to do.
            st.record_exit(box_dir, status, attempts=120)
        if plan.restart:
            # Its policy may start the box again (after a backoff): process/restart.py.
            from tuibox.runtime.process.restart import after_exit

            after_exit(box_dir, status, time.monotonic() - began)
        code = 0
    except BaseException:
        pass
    os._exit(code)


def wait_child(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0
