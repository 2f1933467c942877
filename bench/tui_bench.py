"""What a TUI refresh costs with many running boxes (issue 5: under 100 ms of CPU each).

Usage (root): .venv/bin/python bench/tui_bench.py [--boxes 50] [--rounds 20] [--seconds 10]

1. Starts N boxes (`tuibox run -d --rootfs R NAME sleep 1000`, a busybox rootfs built into a
   temp dir) in a private --root.
2. Backend queries: `list_boxes()` + `stats()` (what one refresh asks), --rounds times, for
   the in-process backend (the app's default) and the all-CLI one. CPU is this process's
   (`time.process_time`, every thread) plus its children's (`RUSAGE_CHILDREN`: the CLIs).
3. A headless app (`App.run_test`) polling every second for --seconds, at 160x60 and 120x40:
   the CPU between two finished refreshes (list, stats, table update and the repaint), i.e.
   everything the app spends per tick, idle rendering included. The boxes are younger than a
   minute, so each row's uptime changes every second: every visible row is drawn again on
   every tick, the worst case for the list.
Prints medians; every box is destroyed at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tuibox.app
from bench.common import rmtree
from tuibox.app import StatsRefreshed, TuiboxApp
from tuibox.service import Backend, CliBackend, InProcessBackend


def arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def cpu() -> float:
    """CPU seconds of this process (all threads) and of its reaped children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuibox", "--root", str(root), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def start_boxes(root: Path, rootfs: Path, names: list[str]) -> None:
    def run(name: str) -> None:
        proc = cli(root, "run", "-d", "--rootfs", str(rootfs), name, "sleep", "1000")
        if proc.returncode != 0:
            raise RuntimeError(f"run {name}: {proc.stderr.strip()}")

    # Two at a time: the machine has two cores, and this is set-up, not the measurement.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, names))


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


async def query_costs(backend: Backend, rounds: int) -> list[float]:
    await backend.list_boxes()  # warm: imports, the first stats sample
    await backend.stats()
    costs = []
    for _ in range(rounds):
        t0 = cpu()
        await backend.list_boxes()
        await backend.stats()
        costs.append(cpu() - t0)
        await asyncio.sleep(0.05)  # some CPU % to compute, as between real polls
    return costs


class MeteredApp(TuiboxApp):
    """The real app; notes the CPU clock each time a refresh has been handled and drawn."""

    # Textual reads a relative CSS_PATH beside the subclass's module: point at the app's.
    CSS_PATH = str(Path(tuibox.app.__file__).parent / TuiboxApp.CSS_PATH)

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend=backend, refresh_interval=1.0, privileged=True, probe=False)
        self.marks: list[float] = []

    def on_stats_refreshed(self, message: StatsRefreshed) -> None:
        # TuiboxApp's own handler runs too (Textual calls each class's); this one only waits
        # for the repaint that follows it.
        self.call_after_refresh(lambda: self.marks.append(cpu()))


async def app_costs(
    backend: Backend, seconds: int, expect: int, size: tuple[int, int]
) -> tuple[list[float], int]:
    app = MeteredApp(backend)
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 60
        while len(app.boxes) < expect and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await pilot.pause(2.5)  # two ticks to warm up (first stats sample, caches)
        start = len(app.marks)
        await pilot.pause(seconds)
        marks = app.marks[start:]
        shown = len(app.boxes)
    return [b - a for a, b in itertools.pairwise(marks)], shown


def main() -> int:
    if os.geteuid() != 0:
        print("tui_bench needs root (it runs boxes)", file=sys.stderr)
        return 2
    n = arg("--boxes", 50)
    rounds = arg("--rounds", 20)
    seconds = arg("--seconds", 10)
    # /var/tmp, not /tmp: a state root swept away mid-run would strand 50 boxes.
    base = Path(tempfile.mkdtemp(prefix="tuibox-tui-bench-", dir="/var/tmp"))
    root, data = base / "state", base / "data"
    # Names unique on the host: a box's cgroup is /tuibox/NAME whatever its --root.
    names = [f"tuib{os.getpid()}-{i:02d}" for i in range(n)]
    try:
        from tuibox.runtime.images.busybox import build_busybox_rootfs

        rootfs = base / "rootfs"
        build_busybox_rootfs(rootfs)
        t0 = time.perf_counter()
        start_boxes(root, rootfs, names)
        print(f"{n} boxes running after {time.perf_counter() - t0:.1f} s")

        backends: dict[str, Callable[[], Backend]] = {
            "in-process": lambda: InProcessBackend(str(root), str(data)),
            "cli": lambda: CliBackend(str(root), str(data)),
        }
        print(f"\nlist + stats of {n} boxes, CPU per refresh (median of {rounds})")
        for label, make in backends.items():
            costs = asyncio.run(query_costs(make(), rounds))
            print(f"  {label:<11} {median_ms(costs):>7} ms   (min {min(costs) * 1000:.1f})")

        # Boxes younger than a minute show their uptime in seconds, so every row changes on
        # every tick: the worst case for drawing the list.
        print(f"\nheadless app, 1 s polls for {seconds} s: CPU per refresh tick (median)")
        runs = [("in-process", (160, 60)), ("in-process", (120, 40)), ("cli", (160, 60))]
        for label, size in runs:
            ticks, shown = asyncio.run(app_costs(backends[label](), seconds, n, size))
            where = f"{label} {size[0]}x{size[1]}"
            if not ticks:
                print(f"  {where:<20} no refresh finished")
                continue
            print(
                f"  {where:<20} {median_ms(ticks):>7} ms   (max {max(ticks) * 1000:.1f}, "
                f"{len(ticks)} ticks, {shown} boxes listed)"
            )
    finally:
        # One CLI call for all of them; a box that never started is simply not found.
        left = [p.name for p in root.iterdir()] if root.is_dir() else []
        if left:
            done = cli(root, "destroy", "--force", *left)
            if done.returncode != 0:
                print(f"destroy: {done.stderr.strip()}", file=sys.stderr)
        rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
