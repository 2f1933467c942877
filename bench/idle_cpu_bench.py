"""The TUI's CPU at rest: a headless app over 0, 20 and 50 sleeping boxes (issue 17: <= 2 %).

Usage (root): .venv/bin/python bench/idle_cpu_bench.py [--boxes 50,20,0] [--seconds 30]

Starts the largest count of real boxes (`tuibox run -d --rootfs R NAME sleep 1000`, a busybox
rootfs) in a private --root, waits until they are a minute old (at rest: an uptime column in
seconds would change every row every second), then for each count (largest first, destroying
boxes between) runs the real app headless in its own process (`App.run(headless=True)`,
160x48, the default 1 s refresh, the in-process backend: the app's default) and reads its CPU
time (utime + stime, fields 14-15 of /proc/PID/stat) over --seconds after a 5 s warm-up.
Prints the CPU % of one core over the whole window and the median over 5 s slices, plus the
machine's load average (other work on the machine shows up in the figures). Every box is
destroyed at the end.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import rmtree
from bench.tui_bench import cli, start_boxes

TICKS = os.sysconf("SC_CLK_TCK")
SLICE = 5.0
AGE = 62.0  # seconds
APP = """
import sys
from tuibox.app import TuiboxApp
from tuibox.service import InProcessBackend
app = TuiboxApp(backend=InProcessBackend(sys.argv[1], sys.argv[2]), privileged=True)
app.run(headless=True, size=(160, 48))
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # Fields 14 and 15 (utime, stime), counted from 1 with the comm field as 2.
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(root: Path, data: Path, seconds: float) -> tuple[float, float]:
    """(CPU % over the window, median CPU % over its slices) of one headless app."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    app = subprocess.Popen(
        [sys.executable, "-c", APP, str(root), str(data)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        time.sleep(5.0)  # imports, first list and stats sample, first paint
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with {app.returncode}")
        marks = [(time.monotonic(), cpu_seconds(app.pid))]
        end = marks[0][0] + seconds
        while time.monotonic() < end:
            time.sleep(min(SLICE, end - time.monotonic()))
            marks.append((time.monotonic(), cpu_seconds(app.pid)))
    finally:
        app.terminate()
        app.wait(10)
    (t0, c0), (t1, c1) = marks[0], marks[-1]
    slices = [(cb - ca) / (tb - ta) * 100 for (ta, ca), (tb, cb) in itertools.pairwise(marks)]
    return (c1 - c0) / (t1 - t0) * 100, statistics.median(slices)


def main() -> int:
    if os.geteuid() != 0:
        print("idle_cpu_bench needs root (it runs boxes)", file=sys.stderr)
        return 2
    counts = sorted(
        (int(n) for n in sys.argv[sys.argv.index("--boxes") + 1].split(","))
        if "--boxes" in sys.argv
        else (50, 20, 0),
        reverse=True,
    )
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 30
    base = Path(tempfile.mkdtemp(prefix="tuibox-idle-bench-", dir="/var/tmp"))
    root, data = base / "state", base / "data"
    root.mkdir(parents=True)
    names = [f"tuid{os.getpid()}-{i:02d}" for i in range(counts[0])]
    try:
        from tuibox.runtime.images.busybox import build_busybox_rootfs

        rootfs = base / "rootfs"
        build_busybox_rootfs(rootfs)
        t0 = time.perf_counter()
        start_boxes(root, rootfs, names)
        print(f"{len(names)} boxes running after {time.perf_counter() - t0:.1f} s")
        # At rest means what a user sees after a while: boxes younger than a minute show
        # their uptime in seconds, so every row would change every second.
        time.sleep(max(0.0, AGE - (time.perf_counter() - t0)))
        print(f"headless app at rest, 160x48, 1 s refresh, {seconds:.0f} s after a 5 s warm-up")
        for n in counts:
            extra = names[n:]
            if extra:
                done = cli(root, "destroy", "--force", *extra)
                if done.returncode != 0:
                    raise RuntimeError(f"destroy: {done.stderr.strip()}")
                del names[n:]
            load = os.getloadavg()[0]
            whole, median = measure(root, data, seconds)
            print(
                f"  {n:>3} boxes: {whole:5.2f} % of a core (median of {SLICE:.0f} s slices "
                f"{median:5.2f} %), load average {load:.2f}",
                flush=True,
            )
    finally:
        left = (
            [p.name for p in root.iterdir() if not p.name.startswith(".")] if root.is_dir() else []
        )
        if left:
            done = cli(root, "destroy", "--force", *left)
            if done.returncode != 0:
                print(f"destroy: {done.stderr.strip()}", file=sys.stderr)
        rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
