"""`tuibox run` of /bin/true against `runc run` and `crun run` on the same busybox bundle.

Usage: .venv/bin/python bench/run_bench.py [--rounds N]
Prints medians and ratios against runc and crun; all cases run interleaved in one invocation.
bench/startup_bench.py measures this and exec, state, list, create + start + delete together.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    TUIBOX,
    have,
    in_private_mount_ns,
    interleaved,
    make_bundle,
    report,
    rmtree,
    tempdir,
    time_once,
)


def main() -> int:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 30
    in_private_mount_ns()
    base = tempdir("tuibox-bench-run-")
    state = base
    try:
        bundle = make_bundle(base, ["/bin/true"])
        # State roots on tmpfs, as each runtime's default (/run/runc, /run/crun, /run/tuibox).
        state = tempdir("tuibox-bench-state-", "/run")
        roots = {k: state / f"root-{k}" for k in ("tuibox", "runc", "crun")}
        cases = {
            "tuibox run": lambda i: time_once(
                [*TUIBOX, "--root", str(roots["tuibox"]), "run", "--bundle", str(bundle), f"b{i}"]
            ),
        }
        if have("runc"):
            cases["runc run"] = lambda i: time_once(
                ["runc", "--root", str(roots["runc"]), "run", "--bundle", str(bundle), f"r{i}"]
            )
        if have("crun"):
            cases["crun run"] = lambda i: time_once(
                ["crun", "--root", str(roots["crun"]), "run", "--bundle", str(bundle), f"c{i}"]
            )
        # warm the page cache and each runtime once
        for fn in cases.values():
            fn(10_000)
        # 0.1 s apart: each runtime's first cgroup migration starts cold (common.interleaved)
        results = interleaved(cases, rounds, settle=0.1)
        report(
            f"run /bin/true, {rounds} rounds",
            results,
            "runc run" if "runc run" in cases else "tuibox run",
            also=("crun run",),
        )
    finally:
        for rt in ("runc", "crun"):
            root = state / f"root-{rt}"
            if root.exists() and have(rt):
                for d in root.iterdir():
                    subprocess.run(
                        [rt, "--root", str(root), "delete", "-f", d.name], capture_output=True
                    )
        rmtree(base)
        rmtree(state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
