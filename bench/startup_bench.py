"""Issue 16's figures: tuibox's start-up against runc and crun, all in one invocation.

Usage: .venv/bin/python bench/startup_bench.py [--rounds N] [--baseline LAUNCHER]
                                                [--only run,exec,state,lifecycle]
TUIBOX_BIN=LAUNCHER picks the tuibox measured (default: the venv's `tuibox`).

Each section runs its cases interleaved (tuibox, runc, crun, and with --baseline another
tuibox launcher, e.g. main's, to compare two builds), medians and mins, each median as a
ratio to runc's and to crun's of the same run:

- run:       `run --bundle B NAME` of /bin/true (the foreground box is removed after)
- exec:      `exec NAME /bin/true` in a running box (sleep)
- state:     `state NAME` of a created and of a running box, `list`; goal: tuibox's state
             and list <= 2x runc's state
- lifecycle: create + start + delete of /bin/true as engines call them: global `--log`,
             `create --pid-file` (engine mode, docs/OCI_CLI.md), `delete --force`

Before each case it sleeps 0.1 s, so every runtime's first cgroup migration starts cold, as a
lone command's would (see bench/common.interleaved). Everything runs in a private mount
namespace without the cgroup2 mount (crun 1.8 refuses this host's hybrid layout otherwise).
State roots are under /run, as each runtime's default. Everything started is deleted with
its own runtime and, failing that, killed by pid (only if it is still the process started).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    TUIBOX,
    have,
    in_private_mount_ns,
    interleaved,
    load,
    make_bundle,
    report,
    rmtree,
    tempdir,
    time_quiet,
)

SETTLE = 0.1
SECTIONS = ("run", "exec", "state", "lifecycle")


def _arg(flag: str, default: str) -> str:
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


class Runtimes:
    """Each runtime's argv prefix under its own state root (tuibox: and data root)."""

    def __init__(self, base: Path, state: Path, baseline: str | None) -> None:
        self.argv: dict[str, list[str]] = {}
        tuiboxes = {"tuibox": TUIBOX[0], **({"tuibox-base": baseline} if baseline else {})}
        for name, launcher in tuiboxes.items():
            data = base / f"data-{name}"
            self.argv[name] = [launcher, "--root", str(state / name), "--data-root", str(data)]
        for name in ("runc", "crun"):
            if have(name):
                self.argv[name] = [name, "--root", str(state / name)]
        self.made: dict[str, list[str]] = {k: [] for k in self.argv}
        self.pids: list[tuple[int, int | None]] = []

    def cmd(self, rt: str, *words: str) -> list[str]:
        return [*self.argv[rt], *words]

    def engine(self, rt: str, log: Path, *words: str) -> list[str]:
        # runc's global flags first, as engines put them
        return [self.argv[rt][0], "--log", str(log), *self.argv[rt][1:], *words]

    def remember(self, rt: str, name: str) -> None:
        from tuibox.runtime.linux import proc

        self.made[rt].append(name)
        out = subprocess.run(self.cmd(rt, "state", name), capture_output=True, text=True)
        if out.returncode == 0:
            import json

            pid = int(json.loads(out.stdout)["pid"])
            if pid > 0:
                self.pids.append((pid, proc.start_time(pid)))

    def clean(self) -> None:
        from tuibox.runtime.linux import proc

        for rt, names in self.made.items():
            for name in names:
                subprocess.run(self.cmd(rt, "delete", "--force", name), capture_output=True)
        for pid, started in self.pids:
            if started is not None and proc.is_alive(pid, started):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def main() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rounds = int(_arg("--rounds", "30"))
    baseline = _arg("--baseline", "") or None
    only = _arg("--only", ",".join(SECTIONS)).split(",")
    in_private_mount_ns()
    base = tempdir("tuibox-bench-startup-")
    state = tempdir("tuibox-bench-startup-", "/run")
    rts = Runtimes(base, state, baseline)
    names = list(rts.argv)
    also = ("crun",) if "crun" in names else ()
    print(f"startup_bench: {rounds} rounds; {load()} at the start")
    try:
        true = make_bundle(base / "true", ["/bin/true"])
        sleep = make_bundle(base / "sleep", ["sleep", "100000"])
        cpu: dict[str, list[float]] = {}

        def timed(rt: str, argv: list[str]) -> float:
            return time_quiet(argv, cpu=cpu.setdefault(rt, []))

        if "run" in only:
            cases: dict[str, Callable[[int], float]] = {
                rt: (lambda i, rt=rt: timed(rt, rts.cmd(rt, "run", "--bundle", str(true), f"r{i}")))
                for rt in names
            }
            for fn in cases.values():
                fn(100_000)  # warm the page cache
            cpu.clear()
            report(f"run /bin/true ({load()})", interleaved(cases, rounds, SETTLE), "runc", also)
            report("its CPU time (user + system: the runtime, the box)", cpu, "runc", also)

        running = "x0"
        if "exec" in only or "state" in only:
            for rt in names:
                time_quiet(rts.cmd(rt, "run", "-d", "--bundle", str(sleep), running))
                rts.remember(rt, running)
        if "exec" in only:
            cases = {
                rt: (lambda i, rt=rt: timed(rt, rts.cmd(rt, "exec", running, "/bin/true")))
                for rt in names
            }
            for fn in cases.values():
                fn(0)
            cpu.clear()
            report(f"exec /bin/true ({load()})", interleaved(cases, rounds, SETTLE), "runc", also)
            report("its CPU time (user + system)", cpu, "runc", also)

        if "state" in only:
            created = "c0"
            for rt in names:
                log, pid = base / f"{rt}-c0.log", base / f"{rt}-c0.pid"
                argv = rts.engine(rt, log, "create", "--pid-file", str(pid))
                time_quiet([*argv, "--bundle", str(sleep), created])
                rts.remember(rt, created)
            cases = {}
            for rt in names:
                for what, box in (("created", created), ("running", running)):
                    argv = rts.cmd(rt, "state", box)
                    cases[f"{rt} state {what}"] = lambda i, argv=argv: time_quiet(argv)
                cases[f"{rt} list"] = lambda i, rt=rt: time_quiet(rts.cmd(rt, "list"))
            results = interleaved(cases, rounds * 2)  # no migration here: no settle needed
            report(f"state and list ({load()})", results, "runc state created", also=())

        if "lifecycle" in only:
            totals: dict[str, list[float]] = {rt: [] for rt in names}
            verbs: dict[str, list[float]] = {}

            def lifecycle(rt: str, i: int) -> float:
                name, log, pid = f"l{i}", base / f"{rt}-l.log", base / f"{rt}-l.pid"
                steps = (
                    ("create", ["create", "--pid-file", str(pid), "--bundle", str(true), name]),
                    ("start", ["start", name]),
                    ("delete", ["delete", "--force", name]),
                )
                total = 0.0
                for verb, words in steps:
                    took = time_quiet(rts.engine(rt, log, *words))
                    verbs.setdefault(f"{rt} {verb}", []).append(took)
                    total += took
                return total

            cases = {rt: (lambda i, rt=rt: lifecycle(rt, i)) for rt in names}
            for fn in cases.values():
                fn(100_000)
            verbs.clear()
            totals = interleaved(cases, rounds, SETTLE)
            report(f"create + start + delete, engine mode ({load()})", totals, "runc", also)
            for verb in ("create", "start", "delete"):
                per = {rt: verbs[f"{rt} {verb}"] for rt in names}
                report(f"  {verb} alone", per, "runc", also)
        print(f"\n{load()} at the end")
    finally:
        rts.clean()
        rmtree(base)
        rmtree(state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
