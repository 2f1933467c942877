"""`cat` of a 20 MB file in TerminalPane against tmux, and the pane's keystroke echo latency.

Usage: .venv/bin/python bench/terminal_cat.py [--runs N] [--mb MB] [--kinds text,short,colour]
                                              [--keys N]

For each kind of file (text: ~60-byte lines; short: `seq`-like 7-byte lines, the worst case
for per-line costs; colour: text lines with SGR colours) a file ending in a sentinel line is
written to a temp dir. The pane runs /bin/sh in a headless Textual app at 80x24 and the clock
stops when the sentinel has been painted (the compositor asked the pane for a line holding
it). tmux runs the same shell in a detached 80x24 session on its own socket, polled with
capture-pane. Prints medians and the ratio pane/tmux; then the median time from a key event
to the echoed character's paint.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events
from textual.app import App, ComposeResult
from textual.strip import Strip

from tuibox.widgets.ptyspawn import spawn_local
from tuibox.widgets.terminal import TerminalPane

WIDTH, HEIGHT = 80, 24
SHELL = ["env", "-i", "PS1=$ ", "PATH=/usr/bin:/bin", "TERM=xterm-256color", "/bin/sh"]
TIMEOUT = 300.0


def write_file(path: Path, kind: str, size: int, sentinel: str) -> None:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while"]
    words += ["a", "terminal", "keeps", "up"]
    with path.open("w") as f:
        written, i = 0, 0
        while written < size:
            if kind == "short":
                line = f"{i}\n"
            elif kind == "colour":
                line = f"\x1b[3{i % 8}m{i:08d}\x1b[0m {' '.join(words[: 4 + i % 9])}\n"
            else:
                line = f"{i:08d} {' '.join(words[: 4 + i % 9])}\n"
            f.write(line)
            written += len(line)
            i += 1
        f.write(sentinel + "\n")


# ---- the pane


class PaneApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.pid: int | None = None

    def compose(self) -> ComposeResult:
        fd, self.pid = spawn_local(SHELL, rows=HEIGHT, columns=WIDTH)
        yield TerminalPane(fd, self.pid)

    def on_mount(self) -> None:
        self.query_one(TerminalPane).focus()


class PaintSpy:
    """Notes when the compositor first asks the pane for a line containing `marker`."""

    def __init__(self, pane: TerminalPane) -> None:
        self.marker: str | None = None
        self.seen: float | None = None
        self._render_line = pane.render_line
        pane.render_line = self  # type: ignore[method-assign]

    def expect(self, marker: str) -> None:
        self.marker, self.seen = marker, None

    def __call__(self, y: int) -> Strip:
        strip = self._render_line(y)
        if self.seen is None and self.marker is not None and self.marker in strip.text:
            self.seen = time.perf_counter()
        return strip


async def until(check: Callable[[], object], what: str, step: float = 0.0) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waiting for {what}")
        await asyncio.sleep(step)


def at_prompt(pane: TerminalPane) -> bool:
    shown = [line for line in pane.screen_text().split("\n") if line.strip()]
    return bool(shown) and shown[-1].rstrip() == "$"


async def pane_runs(
    files: list[tuple[Path, str]], keys: int = 40
) -> tuple[list[float], list[float]]:
    """Seconds per cat run, and per-keystroke echo latencies."""
    app = PaneApp()
    cats: list[float] = []
    echoes: list[float] = []
    async with app.run_test(size=(WIDTH, HEIGHT), headless=True) as pilot:
        pane = app.query_one(TerminalPane)
        spy = PaintSpy(pane)
        try:
            await until(lambda: at_prompt(pane), "the prompt", 0.01)
            for path, sentinel in files:
                await pilot.pause()
                spy.expect(sentinel)
                start = time.perf_counter()
                pane.write(f"cat {path}\r".encode())
                await until(lambda: spy.seen is not None, "the sentinel", 0.005)
                assert spy.seen is not None
                cats.append(spy.seen - start)
                await until(lambda: at_prompt(pane), "the prompt after cat", 0.01)
                pane.write(b"clear\r")
                await until(lambda: at_prompt(pane) and "clear" not in pane.screen_text(), "clear")
            for i in range(keys):
                # Typing pace (50 keys/s) rather than back to back: output closer than a frame
                # (1/60 s) to the previous repaint waits for the next frame by design.
                await asyncio.sleep(0.02)
                await pilot.pause()
                char = "xyzw"[i % 4]
                spy.expect(f"$ {char}")
                start = time.perf_counter()
                app.post_message(events.Key(char, char))
                await until(lambda: spy.seen is not None, "the echo")
                assert spy.seen is not None
                echoes.append(spy.seen - start)
                app.post_message(events.Key("backspace", None))
                await until(lambda: at_prompt(pane), "the erase", 0.001)
        finally:
            if app.pid is not None:
                try:
                    os.kill(app.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return cats, echoes


# ---- tmux


def tmux_runs(files: list[tuple[Path, str]]) -> list[float]:
    socket = f"tuibox-bench-{uuid.uuid4().hex[:8]}"
    base = ["tmux", "-L", socket, "-f", "/dev/null"]

    def capture() -> str:
        return subprocess.run(
            [*base, "capture-pane", "-p", "-t", "bench"], capture_output=True, text=True
        ).stdout

    def wait(check: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not check(capture()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"tmux: waiting for {what}")
            time.sleep(0.005)

    def prompt(screen: str) -> bool:
        shown = [line for line in screen.split("\n") if line.strip()]
        return bool(shown) and shown[-1].rstrip() == "$"

    times = []
    session = [*base, "new-session", "-d", "-s", "bench", "-x", str(WIDTH), "-y", str(HEIGHT)]
    subprocess.run([*session, " ".join(_quote(a) for a in SHELL)], check=True)
    try:
        wait(prompt, "the prompt")
        for path, sentinel in files:
            start = time.perf_counter()
            subprocess.run([*base, "send-keys", "-t", "bench", f"cat {path}", "Enter"], check=True)
            wait(lambda screen, s=sentinel: s in screen, "the sentinel")
            times.append(time.perf_counter() - start)
            wait(prompt, "the prompt after cat")
            subprocess.run([*base, "send-keys", "-t", "bench", "clear", "Enter"], check=True)
            wait(lambda screen: prompt(screen) and "clear" not in screen, "clear")
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
    return times


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def main() -> int:
    args = sys.argv[1:]
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else 3
    mb = float(args[args.index("--mb") + 1]) if "--mb" in args else 20.0
    kinds = ["text", "short", "colour"]
    if "--kinds" in args:
        kinds = args[args.index("--kinds") + 1].split(",")
    keys = int(args[args.index("--keys") + 1]) if "--keys" in args else 40
    have_tmux = shutil.which("tmux") is not None
    base = Path(tempfile.mkdtemp(prefix="tuibox-bench-term-"))
    all_echoes: list[float] = []
    try:
        for kind in kinds:
            files = []
            for run in range(runs):
                sentinel = f"END-OF-CAT-{uuid.uuid4().hex[:12]}"
                path = base / f"{kind}-{run}.txt"
                write_file(path, kind, int(mb * 1_000_000), sentinel)
                files.append((path, sentinel))
            pane, echoes = asyncio.run(pane_runs(files, keys))
            all_echoes += echoes
            line = f"cat {mb:g} MB ({kind} lines), {WIDTH}x{HEIGHT}, median of {runs}: "
            line += f"pane {statistics.median(pane):.2f} s"
            if have_tmux:
                tmux = tmux_runs(files)
                line += f", tmux {statistics.median(tmux):.2f} s"
                line += f", ratio {statistics.median(pane) / statistics.median(tmux):.1f}x"
            print(line, flush=True)
            for path, _ in files:
                path.unlink()
        median = statistics.median(all_echoes)
        p90 = statistics.quantiles(all_echoes, n=10)[-1]
        print(
            f"keystroke to painted echo in the pane: median {median * 1e3:.2f} ms"
            f" (p90 {p90 * 1e3:.2f} ms, {len(all_echoes)} keys)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
