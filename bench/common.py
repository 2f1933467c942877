"""Helpers the benchmarks share: a busybox bundle, timing of whole commands, a private
mount namespace so crun works on this host's hybrid cgroups (see GUIDE.md section 3)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# TUIBOX_BIN: another launcher (a worktree's own, whose sys.path names that checkout).
TUIBOX = [os.environ.get("TUIBOX_BIN") or str(Path(sys.executable).with_name("tuibox"))]


def in_private_mount_ns() -> None:
    """Re-exec this benchmark in a private mount namespace without the cgroup2 mount.

    crun 1.8 refuses this host's hybrid layout; all runtimes then run in the same namespace,
    so the comparison stays fair. The host's own mount table is not touched."""
    if os.environ.get("TUIBOX_BENCH_NS") == "1":
        return
    env = dict(os.environ, TUIBOX_BENCH_NS="1")
    script = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'
    argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        sys.executable,
        *sys.argv,
    ]
    os.execvpe("unshare", argv, env)


def make_bundle(base: Path, args: Sequence[str], terminal: bool = False) -> Path:
    from tuibox.runtime.images.busybox import build_busybox_rootfs
    from tuibox.runtime.spec import starter_spec

    bundle = base / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    if not (bundle / "rootfs").exists():
        build_busybox_rootfs(bundle / "rootfs")
    spec = starter_spec(list(args), rootfs="rootfs", terminal=terminal)
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


def time_once(argv: Sequence[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode().strip()}")
    return elapsed


def interleaved(
    cases: dict[str, Callable[[int], float]], rounds: int, settle: float = 0.0
) -> dict[str, list[float]]:
    """Run each case once per round, in turn, so drift on the machine hits all alike.

    `settle`: seconds of sleep before each case. A cgroup migration leaves the kernel's
    threadgroup rwsem in writer mode for ~30-40 ms here (process/warmer.py), so a runtime
    started right after another's migration skips the grace period a user's lone command
    pays; 0.1 s lets each case start cold."""
    results: dict[str, list[float]] = {k: [] for k in cases}
    for i in range(rounds):
        for name, fn in cases.items():
            if settle:
                time.sleep(settle)
            results[name].append(fn(i))
    return results


def report(
    title: str, results: dict[str, list[float]], base: str, also: Sequence[str] = ()
) -> dict[str, float]:
    """Medians and mins; each case's median as a ratio to `base`'s and to each of `also`'s
    (all measured in the same interleaved run)."""
    medians = {k: statistics.median(v) * 1000 for k, v in results.items() if v}
    refs = [base, *(a for a in also if a in medians and a != base)]
    print(f"\n{title}")
    head = "".join(f" {'/' + r.split()[0]:>8}" for r in refs)
    print(f"{'case':<30} {'median ms':>10} {'min ms':>9}{head}")
    for name, med in medians.items():
        lo = min(results[name]) * 1000
        cols = ""
        for r in refs:
            ratio = med / medians[r] if r in medians else float("nan")
            cols += f" {ratio:>7.2f}x"
        print(f"{name:<30} {med:>10.1f} {lo:>9.1f}{cols}")
    return medians


def time_quiet(
    argv: Sequence[str], cwd: Path | None = None, cpu: list[float] | None = None
) -> float:
    """`time_once` with stdio on /dev/null and stderr kept in a file: an engine-mode create
    hands its stdio to the box's init, and a pipe would not see EOF before the box exits.

    `cpu`: gets the CPU time (user + system) of the command and the descendants it reaped,
    a figure a loaded machine skews less than the wall time."""
    import resource

    with tempfile.TemporaryFile() as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed: {err.read().decode().strip()}")
    return elapsed


def load() -> str:
    """The machine's load average and CPU count, for the report (other work skews figures)."""
    with open("/proc/loadavg") as f:
        one, five, fifteen = f.read().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} CPUs"


def tempdir(prefix: str, where: str = "/tmp") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
