"""The TUI against the real runtime where the kernel is the truth (root): CPU of a stopped
process, the processes view's pids in both namespaces, concurrent stops."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.processes import ProcessesScreen

pytestmark = pytest.mark.root


def host_ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


async def test_stopped_process_cpu_is_0_and_pids_per_namespace(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path
) -> None:
    name = f"tk-{uuid.uuid4().hex[:6]}"
    # Init (box pid 1) spins; its child sleeps: a parent and a child inside the box.
    script = "sleep 777 & while :; do :; done"
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sh", "-c", script)
    app = real_app
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen) and bool(app.box(name)))
        box = app.box(name)
        assert box is not None
        app.push_screen(ProcessesScreen(name))
        await wait_until(pilot, lambda: isinstance(app.screen, ProcessesScreen))
        ps = app.screen
        assert isinstance(ps, ProcessesScreen)
        await wait_until(pilot, lambda: (ps.cpu.get(box.pid) or 0.0) > 40.0, timeout=15)

        init = next(p for p in ps.processes if p.pid == box.pid)
        sleeper = next(p for p in ps.processes if p.command == "sleep 777")
        assert (init.box_pid, init.box_ppid) == (1, 0)  # its parent is on the host
        assert init.ppid == host_ppid(box.pid)
        assert sleeper.box_ppid == 1 and sleeper.ppid == box.pid
        assert sleeper.box_pid > 1 and sleeper.pid != sleeper.box_pid
        assert sleeper.ppid == host_ppid(sleeper.pid)

        os.kill(box.pid, signal.SIGSTOP)
        try:
            stopped_at = time.monotonic()
            seen = ps.processes
            # The next sample that starts after the stop: 0, not a decaying average.
            await wait_until(pilot, lambda: ps.processes is not seen)
            seen = ps.processes
            await wait_until(pilot, lambda: ps.processes is not seen)
            assert ps.cpu[box.pid] == 0.0
            assert ps._cpu_before[(box.pid, init.started)][0] > stopped_at
            # The box's own CPU (the list's stats, a cgroup delta) is 0 as well.
            stats = app.history.latest
            before = stats.get(name)
            await wait_until(pilot, lambda: app.history.latest.get(name) is not before)
            before = app.history.latest.get(name)
            await wait_until(pilot, lambda: app.history.latest.get(name) is not before)
            latest = app.history.latest[name]
            assert latest.cpu_percent == 0.0
        finally:
            os.kill(box.pid, signal.SIGCONT)


async def test_bulk_stop_is_concurrent(real_app: TuiboxApp, tb: Any, busybox_rootfs: Path) -> None:
    names = [f"tk-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for name in names:
        # As init (pid 1 of its namespace) sleep ignores SIGTERM: each stop waits out -t.
        tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    app = real_app
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: all(app.box(n) for n in names))
        t0 = time.monotonic()
        app.perform("stop", names, timeout=2)
        await wait_until(pilot, lambda: set(app.pending) == set(names), timeout=2)
        await wait_until(
            pilot, lambda: all(app.box(n).status == "stopped" for n in names), timeout=20
        )
        took = time.monotonic() - t0
    # One after another would take 3 x 2 s; together about one timeout.
    assert 2.0 <= took < 5.0, took
