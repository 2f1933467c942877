"""The console keeper: memory per terminal box, and keystroke-to-echo latency through attach.

Usage: .venv/bin/python bench/keeper_bench.py [--boxes N] [--keys N]

1. Starts N (default 10) `run -d -t` boxes running /bin/sh and reads each keeper's VmRSS and
   its PSS (/proc/PID/smaps_rollup: shared pages split between their users). The keeper is
   the init's parent (the box's monitor). Goal: < 15 MB RSS.
2. Runs `tuibox attach` on a pty (as a terminal pane would) and times single keystrokes from
   the write on our pty master to their echo coming back: our pty -> attach -> console.sock
   -> keeper -> the box's pty -> the shell's line discipline, and the whole way back. The
   same for `tuibox exec -it` (no keeper in between) as a reference.
Everything lives under a private --root in /tmp and is destroyed at the end.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import TUIBOX, make_bundle, rmtree, tempdir


def arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def kb_field(path: str, key: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def ppid(pid: int) -> int:
    return kb_field(f"/proc/{pid}/status", "PPid")


class PtyProcess:
    """A command on a new pty (its controlling terminal), like ptyspawn.spawn_local."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        os.set_blocking(self.master, False)

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        while needle not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{needle!r} not seen; got {buf[-200:]!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    buf += os.read(self.master, 65536)
                except BlockingIOError:
                    pass
        return buf

    def echo_latency(self, keys: int) -> list[float]:
        """Seconds from writing one key to reading its echo, for `keys` keys."""
        out = []
        for i in range(keys):
            ch = b"abcdefghijklmnopqrstuvwxyz"[i % 26 : i % 26 + 1]
            t0 = time.perf_counter()
            os.write(self.master, ch)
            self.read_until(ch)
            out.append(time.perf_counter() - t0)
            if i % 50 == 49:
                os.write(self.master, b"\x15")  # ctrl-u: keep the line short
                time.sleep(0.01)
                self.drain()
        return out

    def drain(self) -> None:
        while select.select([self.master], [], [], 0.05)[0]:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def close(self) -> None:
        os.close(self.master)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    n_boxes = arg("--boxes", 10)
    n_keys = arg("--keys", 300)
    base = tempdir("tuibox-bench-keeper-")
    root = str(base / "root")
    tb = [*TUIBOX, "--root", root]
    # Cgroups are named after boxes host-wide: unique names, so other roots cannot clash.
    names = [f"keeper-bench-{os.getpid()}-{i}" for i in range(n_boxes)]
    try:
        bundle = make_bundle(base, ["/bin/sh"], terminal=True)
        for name in names:
            subprocess.run(
                [*tb, "run", "-d", "--bundle", str(bundle), name],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        time.sleep(0.5)  # let every shell print its prompt into its keeper's ring
        rss, pss = [], []
        for name in names:
            out = subprocess.run([*tb, "state", name], check=True, capture_output=True).stdout
            init = int(out.split(b'"pid":')[1].split(b",")[0])
            keeper = ppid(init)
            rss.append(kb_field(f"/proc/{keeper}/status", "VmRSS"))
            pss.append(kb_field(f"/proc/{keeper}/smaps_rollup", "Pss"))
        print(f"\nconsole keeper memory over {n_boxes} terminal boxes (KiB)")
        print(f"{'':<6} {'median':>8} {'min':>8} {'max':>8}")
        for label, vals in (("RSS", rss), ("PSS", pss)):
            print(f"{label:<6} {statistics.median(vals):>8.0f} {min(vals):>8} {max(vals):>8}")
        verdict = "ok" if statistics.median(rss) < 15 * 1024 else "OVER GOAL"
        print(f"goal: RSS < 15 MB per keeper: {verdict}")

        latencies = {}
        for label, argv in (
            ("attach (via keeper)", [*tb, "attach", names[0]]),
            ("exec -it (direct pty)", [*tb, "exec", "-it", names[1], "/bin/sh"]),
        ):
            p = PtyProcess(argv)
            try:
                if label.startswith("attach"):
                    os.write(p.master, b"\n")
                p.read_until(b"# ")
                time.sleep(0.2)
                p.drain()
                p.echo_latency(20)  # warm-up
                latencies[label] = p.echo_latency(n_keys)
                os.write(p.master, b"\x15")
                if label.startswith("attach"):
                    os.write(p.master, b"\x1d")  # detach
                else:
                    os.write(p.master, b"exit\n")
            finally:
                p.close()
        print(f"\nkeystroke-to-echo latency, {n_keys} keys (ms)")
        print(f"{'case':<24} {'median':>8} {'p90':>8} {'min':>8}")
        for label, vals in latencies.items():
            ms = sorted(v * 1000 for v in vals)
            p90 = ms[int(len(ms) * 0.9)]
            print(f"{label:<24} {statistics.median(ms):>8.3f} {p90:>8.3f} {ms[0]:>8.3f}")
        print("(tmux on this machine: 0.34 ms, GUIDE.md section 3)")
    finally:
        for name in names:
            subprocess.run(
                [*tb, "destroy", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        rmtree(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
