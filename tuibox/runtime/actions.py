"""The runtime actions beyond the lifecycle: exec, ps, stats, wait, signal processes, pause,
resume, update, logs, attach. Mixed into `box.Runtime`, so the CLI and the TUI see one facade.

Each verb is refresh -> guard -> act -> save like the lifecycle verbs; the modules doing the
work (cgroups, exec, ps, stats) are imported inside the verb that needs them, so `tuibox
list` or `tuibox run` pay nothing for them.
"""

from __future__ import annotations

import os
import time

from tuibox.runtime import state as st
from tuibox.runtime.errors import BoxNotFound, TuiboxError
from tuibox.runtime.guards import check, refuse_threads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from socket import socket
    from typing import Any

    from tuibox.runtime.cgroups.group import BoxCgroup
    from tuibox.runtime.process.exec import ExecHandle, ExecRequest


class Actions:
    if TYPE_CHECKING:
        root: st.StateRoot

        def get(self, name: str) -> st.BoxRecord: ...

    # ---- helpers ------------------------------------------------------------------------------

    def _cgroup(self, record: st.BoxRecord) -> BoxCgroup:
        from tuibox.runtime.cgroups import for_record

        cg = for_record(record)
        if cg is None:
            raise TuiboxError(f"box {record.id!r} has no cgroup (it was made without one)")
        return cg

    # ---- exec ---------------------------------------------------------------------------------

    def exec(
        self, name: str, req: ExecRequest, stdio: tuple[int, int, int] | None = None
    ) -> ExecHandle:
        """Start a process in the running box; returns once it has exec'd (or raises the
        child's error: CommandNotFound 127, CommandNotExecutable 126, InitError).

        Forks: call it from a single-threaded process (the CLI), never from the TUI."""
        from tuibox.runtime.process import exec as box_exec

        refuse_threads("exec")
        record = self.get(name)
        check("exec", name, record.status)
        return box_exec.start(record, req, stdio)

    # ---- queries -----------------------------------------------------------------------------

    def ps(self, name: str) -> list[dict[str, Any]]:
        from tuibox.runtime import ps

        record = self.get(name)
        check("ps", name, record.status)
        return ps.processes(self._cgroup(record).procs(), record.pid)

    def stats(self, names: list[str] | None = None, interval: float = 0.2) -> list[dict[str, Any]]:
        """One row per box (given names, else every live box); CPU % over `interval`."""
        from tuibox.runtime import stats

        return stats.collect(self.stats_records(names), interval)

    def stats_stream(
        self, names: list[str] | None = None, interval: float = 1.0
    ) -> Iterator[list[dict[str, Any]]]:
        """One list of rows (as `stats`) every `interval` seconds, for ever: each sample is
        compared with the previous one, so nothing sleeps twice (`tuibox stats`'s stream)."""
        from tuibox.runtime import stats

        before: dict[str, stats.Sample | None] = {}
        while True:
            records = self.stats_records(names)
            now = {r.id: stats.sample(r) for r in records}
            yield [stats.row(r, now[r.id], before.get(r.id)) for r in records]
            before = now
            time.sleep(max(interval, 0.1))

    def stats_records(self, names: list[str] | None = None) -> list[st.BoxRecord]:
        if names:
            return [self.get(n) for n in names]
        out = []
        for n in self.root.names():
            try:
                r = self.get(n)
            except TuiboxError:
                continue  # being created or destroyed right now
            if r.status != "stopped" and r.extra.get("cgroup_dirs"):
                out.append(r)
        return out

    def wait(self, name: str, timeout: float | None = None) -> int | None:
        """Block until the box's init exits; its exit status, or None when nobody could
        record it (its monitor was killed, so the host's init reaped it)."""
        record = self.get(name)
        d = self.root.box_dir(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        if record.status != "stopped":
            _wait_exit(record.pid, record.starttime, deadline)
        if record.extra.get("engine"):
            return None  # the engine's reaper has the status; nobody of ours writes it
        # Whoever reaps the init (the monitor, or a foreground run) writes `exit` just after.
        delay = 0.001
        settle = time.monotonic() + 5.0
        reaper = record.extra.get("monitor")
        while True:
            code = st.read_exit_status(d)
            if code is not None:
                return code
            if not os.path.isdir(d):
                raise BoxNotFound(name)
            if _gone(reaper):  # a killed monitor writes nothing: no use waiting for it
                code = st.read_exit_status(d)  # unless it wrote just before it went
                return record.exit_status if code is None else code
            if time.monotonic() > settle or (deadline is not None and time.monotonic() > deadline):
                return record.exit_status
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    # ---- output and console ---------------------------------------------------------------

    def logs(self, name: str, follow: bool = False) -> Iterator[bytes]:
        """The output of a detached box (box.log.1, then box.log), in chunks; with `follow`,
        new output until the box stops and its monitor has written the last of it."""
        from tuibox.runtime.linux import proc
        from tuibox.runtime.logfile import read_log

        record = self.get(name)
        path = record.extra.get("log")
        if not isinstance(path, str) or not path:  # a record of an older tuibox
            path = os.path.join(self.root.box_dir(record.id), "box.log")
        monitor = record.extra.get("monitor")

        def running() -> bool:
            try:
                if self.get(record.id).status != "stopped":
                    return True
            except TuiboxError:
                return False
            # The monitor drains the pipe after the exit: wait for it to leave.
            return (
                isinstance(monitor, list)
                and len(monitor) == 2
                and proc.is_alive(monitor[0], monitor[1])
            )

        chunks = read_log(path, follow, running)
        try:
            first = next(chunks, None)
        except FileNotFoundError:
            raise TuiboxError(f"box {record.id!r} has no log (it was not run detached)") from None
        if first is None:
            return
        yield first
        yield from chunks

    def attach(self, name: str) -> socket:
        """A connected socket to the console keeper of a terminal box (`create -t`): the attach
        protocol of runtime/console.py (FrameReader, send_input, send_resize). Forks nothing."""
        from tuibox.runtime import console

        return console.connect(self.root.path, name)

    # ---- signals ------------------------------------------------------------------------------

    def kill_processes(self, name: str, sig: int, pid: int | None = None) -> list[int]:
        """Signal one process of the box (host pid, checked against its cgroup) or all."""
        record = self.get(name)
        check("kill", name, record.status)
        cg = self._cgroup(record)
        if pid is None:
            return cg.signal_all(sig)
        if pid not in cg.procs():
            raise TuiboxError(f"process {pid} is not in box {name!r}")
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            raise TuiboxError(f"process {pid} of box {name!r} has exited") from None
        return [pid]

    # ---- freezer ------------------------------------------------------------------------------

    def pause(self, name: str) -> st.BoxRecord:
        with self.root.locked(name):
            record = self.get(name)
            check("pause", name, record.status)
            self._cgroup(record).freeze()
            record.status = "paused"
            self.root.write(record)
        return record

    def resume(self, name: str) -> st.BoxRecord:
        with self.root.locked(name):
            record = self.get(name)
            check("resume", name, record.status)
            self._cgroup(record).thaw()
            record.status = "running"
            self.root.write(record)
        return record

    # ---- limits -------------------------------------------------------------------------------

    def update(self, name: str, resources: dict[str, Any], where: str = "update") -> st.BoxRecord:
        """Change the limits of a live box; `resources` is a linux.resources fragment."""
        from tuibox.runtime.cgroups.resources import limits, parse_resources

        res = parse_resources(resources, where)
        if res.devices:
            raise TuiboxError("update: device rules cannot be changed on a live box")
        with self.root.locked(name):
            record = self.get(name)
            check("update", name, record.status)
            self._cgroup(record).apply(res)
            record.extra["limits"] = limits(res, record.extra.get("limits"))
            self.root.write(record)
        return record


def _wait_exit(pid: int, starttime: int | None, deadline: float | None) -> None:
    """Until pid is gone or a zombie: a pidfd when we can (no polling), else backoff."""
    import select

    from tuibox.runtime.linux import proc

    fd = -1
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        pass  # gone already, or a kernel without pidfd: poll below
    try:
        # Opened after the liveness check could race with pid reuse: check the start time.
        delay = 0.001
        while proc.is_alive(pid, starttime):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TuiboxError(f"process {pid} still running after the timeout")
            if fd >= 0:
                # Readable at exit; re-checked every second (a zombie counts as gone).
                select.select([fd], [], [], min(left, 1.0) if left is not None else 1.0)
            else:
                time.sleep(min(delay, left) if left is not None else delay)
                delay = min(delay * 2, 0.1)
    finally:
        if fd >= 0:
            os.close(fd)


def _gone(monitor: object) -> bool:
    """Whether the monitor a record names (extra["monitor"]: [pid, start time]) has gone."""
    if not (isinstance(monitor, list) and len(monitor) == 2):
        return False
    pid, started = monitor
    if type(pid) is not int or type(started) is not int:
        return False
    from tuibox.runtime.linux import proc

    return not proc.is_alive(pid, started)
