"""The warmer (process/warmer.py) on the real kernel: with it running, moving a fresh process
into a fresh cgroup skips the RCU grace period (5-16 ms here when cold, ~0.1 ms warm); the
helper holds none of its caller's fds, names itself, and is gone once stopped.

Runs in its own process: the warmer forks, which pytest's process should not do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from tuibox.runtime.process import warmer

hier = "/sys/fs/cgroup/pids" if os.path.isdir("/sys/fs/cgroup/pids") else "/sys/fs/cgroup"
base = os.path.join(hier, "tuibox-warmer-test-%d" % os.getpid())
os.mkdir(base)
keep = os.open("/dev/null", os.O_RDONLY)  # an fd of the caller's: the helper must not hold it
out = {{"moves": [], "helper": []}}
try:
    for i in range(3):
        time.sleep(0.3)  # long enough for any earlier writer mode to lapse
        warmer.start()
        pid = warmer._HELPER[0]
        time.sleep(0.3)  # its first write pays the grace period meanwhile
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        fds = sorted(os.listdir("/proc/%d/fd" % pid))
        child = os.fork()
        if child == 0:
            time.sleep(5)
            os._exit(0)
        d = os.path.join(base, "c%d" % i)
        os.mkdir(d)
        t0 = time.perf_counter()
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(child))
        out["moves"].append((time.perf_counter() - t0) * 1000)
        warmer.stop()
        out["helper"].append([comm, len(fds), os.path.exists("/proc/%d" % pid)])
        os.kill(child, 9)
        os.waitpid(child, 0)
        os.rmdir(d)
finally:
    os.rmdir(base)
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
    # Cold, the first of these writes sleeps 5-16 ms on this kernel (docs/BENCHMARKS.md).
    moves = sorted(out["moves"])
    assert moves[1] < 3.0, moves
    for comm, nfds, alive in out["helper"]:
        # its stop pipe and its own cgroup.procs: nothing of the caller's
        assert (comm, nfds, alive) == ("tuibox-warm", 2, False)
