"""The warmer (process/warmer.py) on the real kernel: while it runs, moving a fresh process
into a fresh cgroup skips the RCU grace period (5-16 ms here when cold, ~0.1 ms warm); no
fork ever runs beside its thread, which is warming again after the fork and gone once stopped.

Runs in its own process: it forks, which pytest's process should not do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, unique
from tests.integration.actions_helpers import wait_for

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from tuibox.runtime.process import warmer

def tasks():
    return len(os.listdir("/proc/self/task"))

at_fork = []
def check():  # registered first, so it runs after the warmer's own hook, right before fork
    deadline = time.monotonic() + 0.05  # the thread's OS-level exit trails its last word
    while tasks() > 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    at_fork.append([warmer._W.running, tasks(), warmer._W.fd])
os.register_at_fork(before=check)

hier = "/sys/fs/cgroup/pids" if os.path.isdir("/sys/fs/cgroup/pids") else "/sys/fs/cgroup"
base = os.path.join(hier, "tuibox-warmer-test-%d" % os.getpid())
os.mkdir(base)
out = {{"moves": [], "after_fork": [], "after_stop": []}}
try:
    for i in range(5):
        time.sleep(0.3)  # long enough for any earlier writer mode to lapse
        warmer.start()
        time.sleep(0.3)  # the thread's first write pays the grace period meanwhile
        child = os.fork()
        if child == 0:
            time.sleep(5)
            os._exit(0)
        out["after_fork"].append([warmer._W.running, tasks(), warmer._W.fd >= warmer.FD_BASE])
        d = os.path.join(base, "c%d" % i)
        os.mkdir(d)
        t0 = time.perf_counter()
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(child))
        out["moves"].append((time.perf_counter() - t0) * 1000)
        warmer.stop()
        time.sleep(0.05)
        out["after_stop"].append([warmer._W.running, tasks()])
        os.kill(child, 9)
        os.waitpid(child, 0)
        os.rmdir(d)
finally:
    os.rmdir(base)
out["at_fork"] = at_fork
print(json.dumps(out))
"""


def test_a_migration_with_the_warmer_running_skips_the_grace_period() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(repo=str(REPO))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Cold, such a write sleeps 5-27 ms on this kernel (docs/BENCHMARKS.md); another
    # process's migration (other tests) may warm one by chance, hardly four of five.
    moves = sorted(out["moves"])
    assert moves[3] < 3.0, moves
    # No thread beside a fork; warming again right after it; nothing left once stopped.
    # ... and no fd of the warmer's for the child to inherit (its own is closed, -1)
    assert out["at_fork"] == [[False, 1, -1]] * 5
    assert out["after_fork"] == [[True, 2, True]] * 5
    assert out["after_stop"] == [[False, 1]] * 5


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_no_warmer_is_left_while_the_program_runs(tb: TB, make_bundle: Callable[..., Path]) -> None:
    # A foreground run and an exec wait for their program: by then the warmer has stopped
    # (cgroups stage attach, exec.start), or it would keep the host's rwsem in writer mode.
    name = unique()
    run = subprocess.Popen(
        tb.argv("run", "--bundle", str(make_bundle(["sleep", "5"])), name),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: name in tb.names() and tb.state(name)["status"] == "running")
        assert _threads(run.pid) == 1
        exe = subprocess.Popen(
            tb.argv("exec", name, "sleep", "2"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # the exec'd process is the exec CLI's own child (in the box's pid namespace)
            wait_for(lambda: b"sleep 2" in _children_cmdlines(exe.pid))
            assert _threads(exe.pid) == 1
        finally:
            assert exe.wait(timeout=30) == 0
    finally:
        assert run.wait(timeout=30) == 0


def _children_cmdlines(parent: int) -> bytes:
    """The command lines of a process's children, as the host sees them."""
    out = b""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rpartition(b")")[2].split()[1])
                if ppid == parent:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        out += f.read().replace(b"\0", b" ") + b"\n"
            except (OSError, ValueError):
                continue
    return out
