"""`tuibox exec NAME /bin/true` against `runc exec` and `crun exec` on the same running box
(one busybox bundle running `sleep`, each runtime under its own --root in a temp dir), and the
cost of one `stats` call for 1 and for 50 boxes.

Usage: .venv/bin/python bench/exec_bench.py [--rounds N] [--boxes N]
Runs in a private mount namespace without the cgroup2 mount (crun 1.8 needs that here; every
runtime runs in it, so the comparison stays fair). Everything it starts is deleted with each
runtime and, failing that, killed by pid.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
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

# A detached box inherits the runtime's stdio: a pipe here would never see end-of-file.
X0 = f"bench{os.getpid()}-x"
QUIET = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def _arg(flag: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else default


def _check(proc: subprocess.CompletedProcess[bytes], what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed with exit status {proc.returncode}")


def _pid_of(runtime: str, root: Path, name: str) -> int:
    out = subprocess.run([runtime, "--root", str(root), "state", name], capture_output=True)
    return int(json.loads(out.stdout)["pid"]) if out.returncode == 0 else 0


def _remember(pids: list[int], starts: dict[int, int | None], pid: int) -> None:
    from tuibox.runtime.linux import proc

    pids.append(pid)
    starts[pid] = proc.start_time(pid) if pid > 0 else None


def main() -> int:
    # SIGTERM (timeout, ctrl-c elsewhere) must still reach the clean-up below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rounds = _arg("--rounds", 30)
    many = _arg("--boxes", 50)
    in_private_mount_ns()
    base = tempdir("tuibox-bench-exec-")
    roots = {k: base / f"root-{k}" for k in ("tuibox", "runc", "crun")}
    started: dict[str, list[str]] = {k: [] for k in roots}
    pids: list[int] = []  # init pids of what we started, for the last-resort kill
    starts: dict[int, int | None] = {}
    tb = [*TUIBOX, "--root", str(roots["tuibox"])]
    try:
        bundle = make_bundle(base, ["sleep", "100000"])
        run = {
            "tuibox": [*tb, "run", "-d", "--bundle", str(bundle)],
            "runc": ["runc", "--root", str(roots["runc"]), "run", "-d", "--bundle", str(bundle)],
            "crun": ["crun", "--root", str(roots["crun"]), "run", "-d", "--bundle", str(bundle)],
        }
        for rt in ("tuibox", "runc", "crun"):
            if rt != "tuibox" and not have(rt):
                continue
            started[rt].append(X0)
            _check(subprocess.run([*run[rt], X0], **QUIET), f"{rt} run")
            if rt != "tuibox":
                _remember(pids, starts, _pid_of(rt, roots[rt], X0))
        _remember(pids, starts, int(json.loads(subprocess.check_output([*tb, "state", X0]))["pid"]))

        cases = {"tuibox exec": lambda i: time_once([*tb, "exec", X0, "/bin/true"])}
        for rt in ("runc", "crun"):
            if started[rt]:
                argv = [rt, "--root", str(roots[rt]), "exec", X0, "/bin/true"]
                cases[f"{rt} exec"] = lambda i, argv=argv: time_once(argv)
        for fn in cases.values():
            fn(0)  # warm the page cache and each runtime once
        results = interleaved(cases, rounds, settle=0.1)  # each starts cold (common.py)
        base_case = "runc exec" if "runc exec" in cases else "tuibox exec"
        title = f"exec /bin/true in a running box, {rounds} rounds"
        report(title, results, base_case, also=("crun exec",))

        # ---- stats: 1 box, then `many` boxes ------------------------------------------------
        print(f"\nstats (the CLI call includes its one {0.2:.1f} s sampling sleep)")
        print(f"{'case':<44} {'median ms':>10} {'min ms':>9}")
        from tuibox.runtime.box import Runtime

        lib = Runtime(roots["tuibox"])
        for count in (1, many):
            while len(started["tuibox"]) < count:
                # unique: the default cgroup path is /tuibox/<name> whatever the state root
                name = f"bench{os.getpid()}-{len(started['tuibox'])}"
                started["tuibox"].append(name)
                _check(subprocess.run([*run["tuibox"], name], **QUIET), "tuibox run")
                _remember(pids, starts, lib.get(name).pid)
            names = started["tuibox"][:count]
            cli = [*tb, "stats", "--no-stream", "--format", "json", *names]
            wall = [time_once(cli) for _ in range(max(rounds // 3, 5))]
            sample = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                rows = lib.stats(names, interval=0)  # what one poll reads, without the sleep
                sample.append(time.perf_counter() - t0)
            assert len(rows) == count
            for label, values in (
                (f"tuibox stats --no-stream, {count} box(es) (CLI)", wall),
                (f"Runtime.stats, {count} box(es), one sample (library)", sample),
            ):
                med, lo = statistics.median(values) * 1000, min(values) * 1000
                print(f"{label:<44} {med:>10.2f} {lo:>9.2f}")
    finally:
        for name in started["tuibox"]:
            subprocess.run([*tb, "destroy", "--force", name], capture_output=True)
        for rt in ("runc", "crun"):
            for name in started[rt]:
                subprocess.run([rt, "--root", str(roots[rt]), "delete", "-f", name],
                               capture_output=True)  # fmt: skip
        from tuibox.runtime.linux import proc

        for pid in pids:
            # Only if it is still the very process we started (same start time).
            if pid > 0 and starts.get(pid) and proc.is_alive(pid, starts[pid]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        rmtree(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
