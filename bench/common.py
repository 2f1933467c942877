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


def interleaved(cases: dict[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """Run each case once per round, in turn, so drift on the machine hits all alike."""
    results: dict[str, list[float]] = {k: [] for k in cases}
    for i in range(rounds):
        for name, fn in cases.items():
            results[name].append(fn(i))
    return results


def report(title: str, results: dict[str, list[float]], base: str) -> dict[str, float]:
    medians = {k: statistics.median(v) * 1000 for k, v in results.items() if v}
    print(f"\n{title}")
    print(f"{'case':<28} {'median ms':>10} {'min ms':>9} {'ratio':>7}")
    for name, med in medians.items():
        lo = min(results[name]) * 1000
        ratio = med / medians[base] if base in medians else float("nan")
        print(f"{name:<28} {med:>10.1f} {lo:>9.1f} {ratio:>6.2f}x")
    return medians


def tempdir(prefix: str, where: str = "/tmp") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
