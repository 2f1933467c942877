"""TerminalPane on a real pty (a local /bin/sh through ptyspawn), and its emulation model.

Pilot tests poll the pane with a bounded wait instead of sleeping: nothing here asserts on
time, a slow machine only makes the waits longer (up to WAIT seconds each).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest
from rich.color import Color
from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Footer

from tuibox.widgets.ptyspawn import spawn_local
from tuibox.widgets.terminal import DEFAULT_DETACH_KEY, TerminalPane, _Styles, row_segments
from tuibox.widgets.vt_screen import BRACKETED_PASTE, DECCKM, PlainRow, VirtualTerminal

WAIT = 5.0
SIZE = (100, 30)
SHELL = ["env", "-i", "PS1=$ ", "PATH=/usr/bin:/bin", "TERM=xterm-256color", "/bin/sh"]


class TermApp(App[None]):
    def __init__(self, argv: list[str], detach_key: str = DEFAULT_DETACH_KEY) -> None:
        super().__init__()
        self.argv = argv
        self.detach_key = detach_key
        self.exited: list[TerminalPane.Exited] = []
        self.detached: list[TerminalPane.Detached] = []
        self.pids: list[int] = []

    def compose(self) -> ComposeResult:
        fd, pid = spawn_local(self.argv, rows=SIZE[1] - 1, columns=SIZE[0])
        self.pids.append(pid)
        yield TerminalPane(fd, pid, detach_key=self.detach_key)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TerminalPane).focus()

    def on_terminal_pane_exited(self, message: TerminalPane.Exited) -> None:
        self.exited.append(message)

    def on_terminal_pane_detached(self, message: TerminalPane.Detached) -> None:
        self.detached.append(message)


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run a coroutine test on a fresh event loop (tests/unit has no asyncio plugin)."""

    @functools.wraps(test)
    def run_it(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run_it


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Kill whatever a test's shells left running, so no test leaks processes."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


async def wait_for(pilot: Pilot[None], check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pane = pilot.app.query_one(TerminalPane)
            pytest.fail(f"timed out waiting for {what}; screen:\n{pane.screen_text()}")
        await pilot.pause(0.02)


def lines(pane: TerminalPane) -> list[str]:
    return [line.rstrip() for line in pane.screen_text().split("\n")]


def prompt_ready(pane: TerminalPane) -> Callable[[], bool]:
    """True once the last non-empty line is a bare prompt."""

    def check() -> bool:
        shown = [line for line in lines(pane) if line]
        return bool(shown) and shown[-1] == "$"

    return check


async def start_shell(pilot: Pilot[None]) -> TerminalPane:
    pane = pilot.app.query_one(TerminalPane)
    await wait_for(pilot, prompt_ready(pane), "the first prompt")
    return pane


async def run(pilot: Pilot[None], pane: TerminalPane, command: str) -> None:
    """Type a command line through the pane's key path and press enter."""
    keys = ["space" if ch == " " else ch for ch in command]
    await pilot.press(*keys, "enter")


def children_named(session: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if comm == name and int(fields[3]) == session:  # field 6: session id
            found.append(int(entry.name))
    return found


# ---- Pilot tests on a real shell


@pilot_test
async def test_echo_hello(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        await run(pilot, pane, "echo hello")
        await wait_for(pilot, lambda: "hello" in lines(pane), "hello on a line of its own")
        assert "$ echo hello" in lines(pane)


@pilot_test
async def test_red_text_renders_red(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        pane.write(b"printf '\\033[31mred\\033[0m\\n'\r")
        await wait_for(pilot, lambda: "red" in lines(pane), "the printf output")
        await pilot.pause()
        red = Color.parse("red")
        segments = [seg for y in range(pane.size.height) for seg in pane.render_line(y)]
        assert any(seg.text == "red" and seg.style and seg.style.color == red for seg in segments)


@pilot_test
async def test_stty_size_follows_the_pane(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        width, height = pane.size.width, pane.size.height
        await run(pilot, pane, "stty size")
        await wait_for(pilot, lambda: f"{height} {width}" in lines(pane), "the first size")

        await pilot.resize_terminal(80, 20)
        await wait_for(pilot, lambda: pane.size.width == 80, "the pane to shrink")
        width, height = pane.size.width, pane.size.height
        await wait_for(pilot, prompt_ready(pane), "the prompt after the resize")
        await run(pilot, pane, "stty size")
        await wait_for(pilot, lambda: f"{height} {width}" in lines(pane), "the new size")
        assert (width, height) != (SIZE[0], SIZE[1] - 1)


@pilot_test
async def test_vi_uses_the_alternate_screen_and_restores_the_shell(
    reap: list[int], tmp_path: Path
) -> None:
    app = TermApp(SHELL)
    target = tmp_path / "somefile"
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        await run(pilot, pane, "echo before-vi")
        await wait_for(pilot, lambda: "before-vi" in lines(pane), "the marker")
        await run(pilot, pane, f"busybox vi {target}")
        await wait_for(
            pilot, lambda: sum(line == "~" for line in lines(pane)) > 5, "vi's empty-line tildes"
        )
        assert "before-vi" not in lines(pane)
        # vi starts in command mode; an ESC right before ":" would read as one alt+: sequence.
        await pilot.press("colon", "q", "exclamation_mark", "enter")
        await wait_for(pilot, prompt_ready(pane), "the prompt after vi")
        assert "before-vi" in lines(pane)
        assert not any(line == "~" for line in lines(pane))


@pilot_test
async def test_scrollback_keeps_ten_thousand_lines(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        await run(pilot, pane, "seq 1 20000")
        await wait_for(
            pilot, lambda: "20000" in lines(pane) and prompt_ready(pane)(), "the end of seq"
        )
        history = pane.scrollback_lines
        assert len(history) >= 10_000
        assert history[-1] == str(20000 - (pane.size.height - 1))  # just above the screen

        live = lines(pane)
        await pilot.press("shift+pageup")
        older = [int(line) for line in lines(pane) if line.isdigit()]
        newest = min(int(line) for line in live if line.isdigit())
        assert older and min(older) < newest and max(older) <= newest  # one line of overlap
        assert pane.scroll_offset_lines > 0

        await pilot.press("shift+pagedown")
        assert pane.scroll_offset_lines == 0

        await pilot.press("shift+pageup", "shift+pageup")
        await pilot.press("x")  # any key typed returns to the live view
        assert pane.scroll_offset_lines == 0
        await wait_for(pilot, lambda: lines(pane)[-1] == "$ x" or "$ x" in lines(pane), "x")


@pilot_test
async def test_mouse_wheel_scrolls_back(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        await run(pilot, pane, "seq 1 200")
        await wait_for(pilot, lambda: "200" in lines(pane) and prompt_ready(pane)(), "seq")
        pane.post_message(events.MouseScrollUp(pane, 1, 1, 0, 0, 0, False, False, False))
        await wait_for(pilot, lambda: pane.scroll_offset_lines > 0, "the view to scroll")
        pane.post_message(events.MouseScrollDown(pane, 1, 1, 0, 0, 0, False, False, False))
        await wait_for(pilot, lambda: pane.scroll_offset_lines == 0, "the live view")


@pilot_test
async def test_ctrl_c_interrupts_sleep(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        shell = app.pids[0]
        await run(pilot, pane, "sleep 100")
        await wait_for(pilot, lambda: children_named(shell, "sleep"), "sleep to start")
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not children_named(shell, "sleep"), "sleep to die")
        await wait_for(pilot, prompt_ready(pane), "the prompt after ctrl+c")


@pilot_test
async def test_app_keys_reach_the_program(reap: list[int]) -> None:
    """ctrl+q, ctrl+p and tab would quit, open the palette and move focus; here the program
    gets them. `od -c` shows the bytes it read."""
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        await run(pilot, pane, "stty -ixon; od -c")  # -ixon: ctrl+q is a byte, not XON
        await pilot.pause(0.1)
        await pilot.press("ctrl+q", "ctrl+p", "tab", "enter", "ctrl+d")
        await wait_for(pilot, lambda: any("021" in ln and "020" in ln for ln in lines(pane)), "od")
        dump = next(line for line in lines(pane) if "021" in line)
        assert dump.split()[1:] == ["021", "020", "\\t", "\\n"]
        assert app.is_running
        assert app.focused is pane
        assert len(app.screen_stack) == 1  # no command palette


@pilot_test
async def test_detach_key_posts_detached_and_shows_in_footer(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        active = app.screen.active_bindings
        assert active[DEFAULT_DETACH_KEY].binding.description == "Detach"
        assert active[DEFAULT_DETACH_KEY].binding.id == "terminal.detach"
        assert "ctrl+q" not in {k for k, b in active.items() if b.binding.show}
        await pilot.press(DEFAULT_DETACH_KEY)
        await wait_for(pilot, lambda: app.detached, "Detached")
        assert app.detached[0].pane is pane


@pilot_test
async def test_detach_key_is_configurable(reap: list[int]) -> None:
    app = TermApp(SHELL, detach_key="f12")
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        await start_shell(pilot)
        assert DEFAULT_DETACH_KEY not in app.screen.active_bindings
        await pilot.press("f12")
        await wait_for(pilot, lambda: app.detached, "Detached")


@pilot_test
async def test_exit_status_is_reported(reap: list[int]) -> None:
    app = TermApp(["sh", "-c", "exit 3"])
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        await wait_for(pilot, lambda: app.exited, "Exited")
        pane = app.query_one(TerminalPane)
        assert app.exited[0].status == 3
        assert pane.exit_status == 3
        await wait_for(
            pilot, lambda: "[process exited with status 3]" in pane.screen_text(), "the note"
        )
        # Once the program is gone the app's own keys work again.
        assert not pane.check_consume_key("tab", "\t")


@pilot_test
async def test_exit_by_signal_is_negative(reap: list[int]) -> None:
    app = TermApp(["sh", "-c", "kill -TERM $$"])
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        await wait_for(pilot, lambda: app.exited, "Exited")
        assert app.exited[0].status == -signal.SIGTERM


@pilot_test
async def test_bracketed_paste_wraps_only_when_enabled(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        sent: list[bytes] = []
        pane.write = sent.append  # type: ignore[method-assign]
        pane.post_message(events.Paste("a\nb"))
        await wait_for(pilot, lambda: sent, "the paste")
        assert sent[-1] == b"a\rb"
        pane._vt.feed(b"\x1b[?2004h")
        pane.post_message(events.Paste("c"))
        await wait_for(pilot, lambda: len(sent) == 2, "the second paste")
        assert sent[-1] == b"\x1b[200~c\x1b[201~"


@pilot_test
async def test_close_hangs_up_the_program(reap: list[int]) -> None:
    app = TermApp(SHELL)
    async with app.run_test(size=SIZE) as pilot:
        reap.extend(app.pids)
        pane = await start_shell(pilot)
        pid = app.pids[0]
        pane.close()
        pane.close()  # idempotent
        deadline = time.monotonic() + WAIT
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert not Path(f"/proc/{pid}").exists()  # hung up and reaped, no zombie


# ---- the emulation model, without a pty


def feed(vt: VirtualTerminal, text: str) -> None:
    vt.feed(text.encode())


def test_alternate_screen_1049_restores_screen_and_cursor() -> None:
    vt = VirtualTerminal(20, 5)
    feed(vt, "shell$ ")
    feed(vt, "\x1b[?1049h\x1b[2J\x1b[Hfull screen")
    assert vt.display_lines()[0] == "full screen"
    assert vt.screen.alternate
    feed(vt, "\x1b[?1049l")
    assert vt.display_lines()[0] == "shell$"
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (0, 7)
    assert not vt.screen.alternate


@pytest.mark.parametrize("mode", ["47", "1047"])
def test_alternate_screen_47_and_1047(mode: str) -> None:
    vt = VirtualTerminal(20, 5)
    feed(vt, "main")
    feed(vt, f"\x1b[?{mode}h\x1b[Halt")
    assert vt.display_lines()[0] == "alt"
    feed(vt, f"\x1b[?{mode}l")
    assert vt.display_lines()[0] == "main"


def test_alternate_screen_does_not_feed_scrollback() -> None:
    vt = VirtualTerminal(10, 3)
    feed(vt, "\x1b[?1049h" + "".join(f"{i}\r\n" for i in range(10)))
    assert vt.history_lines() == []
    feed(vt, "\x1b[?1049l" + "".join(f"{i}\r\n" for i in range(5)))
    assert vt.history_lines() == ["0", "1", "2"]


def test_scrollback_is_bounded() -> None:
    vt = VirtualTerminal(10, 3, scrollback=100)
    feed(vt, "".join(f"{i}\n\r" for i in range(1000)))  # LF CR: not the bulk path
    history = vt.history_lines()
    assert len(history) == 100
    assert history[-1] == "997"


def test_erase_saved_lines_clears_scrollback() -> None:
    vt = VirtualTerminal(10, 3)
    feed(vt, "".join(f"{i}\r\n" for i in range(10)))
    assert vt.history_lines()
    feed(vt, "\x1b[3J")
    assert vt.history_lines() == []


def test_resize_keeps_the_cursor_line_and_pushes_the_rest_to_history() -> None:
    vt = VirtualTerminal(20, 10)
    feed(vt, "".join(f"line{i}\r\n" for i in range(8)) + "$ ")
    vt.resize(20, 4)
    assert vt.display_lines()[-1] == "$"
    assert vt.history_lines() == [f"line{i}" for i in range(5)]
    vt.resize(10, 4)
    assert vt.display_lines()[0] == "line5"


def test_resize_at_the_top_drops_nothing() -> None:
    vt = VirtualTerminal(20, 10)
    feed(vt, "$ ")
    vt.resize(20, 4)
    assert vt.display_lines()[0] == "$"
    assert vt.history_lines() == []


def test_modes_seen_by_the_pane() -> None:
    vt = VirtualTerminal(20, 5)
    assert not vt.mode(DECCKM)
    feed(vt, "\x1b[?1h\x1b[?2004h\x1b[?25l")
    assert vt.mode(DECCKM) and vt.mode(BRACKETED_PASTE)
    assert vt.screen.cursor.hidden
    feed(vt, "\x1b[?1l\x1b[?25h")
    assert not vt.mode(DECCKM) and not vt.screen.cursor.hidden


def test_device_status_report_is_answered() -> None:
    replies: list[bytes] = []
    vt = VirtualTerminal(20, 5, on_reply=replies.append)
    feed(vt, "ab\x1b[6n")
    assert replies == [b"\x1b[1;3R"]


def test_scroll_region_and_wrap() -> None:
    vt = VirtualTerminal(5, 4)
    feed(vt, "abcdefgh")  # wraps at 5 columns
    assert vt.display_lines()[:2] == ["abcde", "fgh"]
    feed(vt, "\x1b[2J\x1b[H1\r\n2\r\n3\r\n4\x1b[2;3r\x1b[3;1H\n")
    assert vt.display_lines() == ["1", "3", "", "4"]
    assert vt.history_lines() == []  # a partial region does not feed scrollback


def _random_output(rng: random.Random, size: int) -> str:
    words = ["alpha", "beta", "x" * 17, "", " ", "\x1b[1m", "\x1b[31m", "\x1b[0m", "\t", "\b"]
    words += ["\r\n", "\r\n", "\r\n", "\n", "\r", "\x1b[2;5H", "\x1b[K", "\x1b[?7l", "\x1b[?7h"]
    words += ["\x1b[2;3r", "\x1b[r", "é", "日本", "\x1b[3J", "\x1b[?1049h", "\x1b[?1049l"]
    words += ["\x1b[m", "\x1b[38;5;100m", "\x1b[1;4;7;44m", "\x1b[38;2;1;2;3m", "y" * 23]
    return "".join(rng.choice(words) for _ in range(size))


@pytest.mark.parametrize("seed", range(40))
def test_fast_paths_match_pyte(seed: int) -> None:
    """Bulk lines, the CSI shortcut and the cell cache must leave the same screen as pyte."""
    rng = random.Random(seed)
    data = _random_output(rng, 3000).replace("\x1b[?1049h", "").replace("\x1b[?1049l", "")
    data = data.replace("\x1b[3J", "")
    reference = pyte.Screen(23, 7)
    pyte.ByteStream(reference).feed(data.encode())
    vt = VirtualTerminal(23, 7)
    raw = data.encode()
    for start in range(0, len(raw), 97):  # arbitrary chunking, as reads split output
        vt.feed(raw[start : start + 97])
    ours = vt.screen
    for y in range(7):
        for x in range(23):
            assert ours.rows[y][x] == reference.buffer[y][x], (y, x)
    assert (ours.cursor.x, ours.cursor.y) == (reference.cursor.x, reference.cursor.y)
    assert ours.cursor.attrs == reference.cursor.attrs


def test_bulk_lines_go_to_history_compactly() -> None:
    vt = VirtualTerminal(10, 3)
    feed(vt, "".join(f"{i:012d}\r\n" for i in range(50)))  # wider than the screen: wraps
    history = vt.history_lines()
    assert history[:4] == ["0000000000", "00", "0000000000", "01"]
    assert all(isinstance(row, str) for row in vt.screen.history)  # no cells, no objects


def test_styled_bulk_lines_keep_their_style_in_history() -> None:
    vt = VirtualTerminal(10, 3)
    feed(vt, "\x1b[32m" + "".join(f"{i}\r\n" for i in range(20)))
    assert vt.history_lines()[-1] == "17"
    row = vt.screen.history[-1]
    assert isinstance(row, PlainRow)
    (segment,) = row_segments(row, 10, _Styles())
    assert segment.text == "17"
    assert segment.style is not None and segment.style.color == Color.parse("green")


# ---- rendering rows to segments


def segments_of(vt: VirtualTerminal, y: int) -> list[tuple[str, object]]:
    return [(seg.text, seg.style) for seg in row_segments(vt.row(y), 40, _Styles())]


def test_colours_256_and_truecolour() -> None:
    vt = VirtualTerminal(40, 3)
    feed(vt, "\x1b[31mA\x1b[38;5;196mB\x1b[48;2;1;2;3mC\x1b[0m\x1b[94mD\x1b[0m")
    styles = {text: style for text, style in segments_of(vt, 0)}
    assert styles["A"].color == Color.parse("red")  # type: ignore[attr-defined]
    assert styles["B"].color == Color.parse("#ff0000")  # type: ignore[attr-defined]
    assert styles["C"].bgcolor == Color.parse("#010203")  # type: ignore[attr-defined]
    assert styles["D"].color == Color.parse("bright_blue")  # type: ignore[attr-defined]


def test_text_attributes() -> None:
    vt = VirtualTerminal(40, 3)
    feed(vt, "\x1b[1mb\x1b[0m\x1b[3mi\x1b[0m\x1b[4mu\x1b[0m\x1b[7mr\x1b[0m plain")
    styles = {text: style for text, style in segments_of(vt, 0)}
    assert styles["b"].bold  # type: ignore[attr-defined]
    assert styles["i"].italic  # type: ignore[attr-defined]
    assert styles["u"].underline  # type: ignore[attr-defined]
    assert styles["r"].reverse  # type: ignore[attr-defined]
    assert not styles[" plain"].bold  # type: ignore[attr-defined]


def test_wide_characters_take_two_cells() -> None:
    vt = VirtualTerminal(40, 3)
    feed(vt, "日本x")
    text = "".join(text for text, _ in segments_of(vt, 0))
    assert text == "日本x"
    assert vt.screen.cursor.x == 5


def test_the_widget_does_not_import_the_runtime() -> None:
    code = (
        "import sys, tuibox.widgets.terminal; "
        "print([m for m in sys.modules if m.startswith('tuibox.runtime')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
