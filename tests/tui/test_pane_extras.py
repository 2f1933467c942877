"""Terminal panes beyond typing: recording to asciicast and playing it back, mouse selection
and copy, mouse reporting to programs that ask for it, scrollback search, resizes. On the fake
backend, whose panes run a local /bin/sh (tests/tui/test_panes.py has the helpers)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pexpect
from conftest import refresh, wait_until
from fake_backend import FakeBackend
from test_panes import lines, no_leftovers, open_pane, screen_of, tab_label, type_line

__all__ = ["no_leftovers"]  # the fixture, shared with test_panes.py

from tuibox.app import TuiboxApp
from tuibox.screens.recordings import PlayerScreen, RecordingsScreen
from tuibox.widgets.cast_player import CastPlayer
from tuibox.widgets.terminal_tabs import TerminalTabs
from tuibox.widgets.vt_screen import row_text

SIZE = (120, 40)


async def test_alt_r_records_the_pane_and_the_list_plays_it_back(
    make_app: Callable[..., TuiboxApp],
    fake: FakeBackend,
    no_leftovers: list[int],
    tmp_path: Path,
) -> None:
    fake.data_root = str(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None
        await type_line(pilot, "echo before-$((1+1))")
        await wait_until(pilot, lambda: "before-2" in lines(pane))
        await pilot.press("alt+r")
        tabs = screen_of(app).query_one(TerminalTabs)
        assert pane.recording is not None and pane.recording.startswith(str(tmp_path))
        assert "REC" in tab_label(tabs, tab)
        await type_line(pilot, "echo during-$((2+2))")
        await wait_until(pilot, lambda: "during-4" in lines(pane))
        await pilot.press("alt+r")
        assert pane.recording is None and "REC" not in tab_label(tabs, tab)
        await type_line(pilot, "echo after-$((3+3))")
        await wait_until(pilot, lambda: "after-6" in lines(pane))

        files = list((tmp_path / "recordings").glob("web-shell-*.cast"))
        assert len(files) == 1
        cast = files[0]
        assert (cast.stat().st_mode & 0o777) == 0o600
        head, *events = [json.loads(x) for x in cast.read_text().splitlines()]
        assert head["version"] == 2 and (head["width"], head["height"]) == (
            pane.size.width,
            pane.size.height,
        )
        text = "".join(e[2] for e in events if e[1] == "o")
        # The first event draws the screen as it was (so "before" shows), then what followed.
        assert "before-2" in events[0][2]
        assert "during-4" in text and "after-6" not in text
        if shutil.which("asciinema"):  # Debian's player takes the pane's file too
            child = pexpect.spawn("asciinema", ["cat", str(cast)], encoding="utf-8", timeout=20)
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0 and "during-4" in str(child.before)

        # The list (V from the box list), Enter plays it; f speeds it up.
        pane.action_detach()
        await pilot.pause()
        await pilot.press("V")
        await wait_until(pilot, lambda: isinstance(app.screen, RecordingsScreen))
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PlayerScreen))
        player = app.screen.query_one(CastPlayer)
        await pilot.press("f", "f")
        assert player.speed == 4.0
        await wait_until(pilot, lambda: player.finished, 10)
        shown = player.screen_text()
        assert "before-2" in shown and "during-4" in shown and "after-6" not in shown
        assert player.size.width == head["width"]
        await pilot.press("r")  # restart: the screen is drawn again from the start
        assert not player.finished
        await pilot.press("G")
        await wait_until(pilot, lambda: player.finished)
        assert "during-4" in player.screen_text()
        await pilot.press("escape", "escape")
        assert screen_of(app) is app.screen


async def test_a_bad_recording_is_one_line_and_no_player(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, tmp_path: Path
) -> None:
    fake.data_root = str(tmp_path)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "broken.cast").write_text('{"version": 1}\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("V")
        await wait_until(pilot, lambda: isinstance(app.screen, RecordingsScreen))
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RecordingsScreen)
        messages = [n.message for n in app._notifications]
        assert any("not an asciicast v2 file" in m for m in messages)


async def test_dragging_selects_and_copies_through_osc52(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None
        await type_line(pilot, "echo alpha-$((1+1)) beta-gamma")
        await wait_until(pilot, lambda: "alpha-2 beta-gamma" in lines(pane))
        y = lines(pane).index("alpha-2 beta-gamma")
        osc: list[str] = []
        driver = app._driver
        assert driver is not None
        real_write = driver.write
        driver.write = lambda data: (osc.append(data), real_write(data))[1]  # type: ignore[method-assign]
        # Drag from "beta" to the end of the line below (the next prompt): two lines.
        await pilot.mouse_down(pane, offset=(8, y))
        await pilot.hover(pane, offset=(0, y + 1))
        await pilot.mouse_up(pane, offset=(0, y + 1))
        await pilot.pause()
        assert pane.copied == "beta-gamma\n$"
        assert app.clipboard == "beta-gamma\n$"
        assert any("\x1b]52;c;YmV0YS1nYW1tYQok\x07" in data for data in osc)  # base64 of it
        # The selection is drawn over the cells; a key clears it (and goes to the shell).
        strip = pane.render_line(y)
        styles = [seg.style for seg in strip if seg.text.strip()]
        assert any(s is not None and s.bgcolor is not None for s in styles)
        await pilot.press("space")
        assert pane.selection_text == ""
        # A click alone selects and copies nothing.
        await pilot.click(pane, offset=(2, y))
        assert pane.copied == "beta-gamma\n$"


async def test_mouse_reports_reach_a_program_that_asks_for_them(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int], tmp_path: Path
) -> None:
    out = tmp_path / "mouse.out"
    script = tmp_path / "mouse.sh"
    # Asks for button-event tracking in SGR encoding, reads 28 bytes of reports raw, turns it off.
    script.write_text(
        "stty raw -echo\n"  # first: the reports must not meet the line discipline
        "printf '\\033[?1002h\\033[?1006h'\n"
        f"head -c 28 > {out}\n"
        "stty sane\n"
        "printf '\\033[?1002l\\033[?1006l'\n"
        "echo mouse-done\n"
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None
        await type_line(pilot, f"sh {script}")
        from tuibox.widgets.vt_screen import MOUSE_BUTTONS, MOUSE_SGR

        await wait_until(pilot, lambda: pane._vt.mode(MOUSE_BUTTONS) and pane._vt.mode(MOUSE_SGR))
        await pilot.mouse_down(pane, offset=(3, 2))
        await pilot.hover(pane, offset=(7, 2))  # a drag: reported in mode 1002
        await pilot.mouse_up(pane, offset=(7, 2))
        await pilot.hover(pane, offset=(9, 2))  # no button held: not reported
        await wait_until(pilot, lambda: "mouse-done" in lines(pane))
        assert out.read_bytes() == b"\x1b[<0;4;3M\x1b[<32;8;3M\x1b[<0;8;3m"
        assert pane.copied is None  # reported, not selected
        assert not pane._vt.mode(MOUSE_BUTTONS)  # the program turned it off again


async def test_scrollback_search_highlights_and_n_moves_between_matches(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None
        await type_line(pilot, "seq 1000 1300")
        await wait_until(pilot, lambda: "1300" in lines(pane))
        await pilot.press("alt+s")
        await pilot.pause()
        await pilot.press(*"1077")
        await pilot.pause()
        assert [m[1:] for m in pane.matches] == [(0, 4)]
        assert pane.scroll_offset_lines > 0  # scrolled back to it
        assert "1077" in lines(pane)
        strip = pane.render_line(lines(pane).index("1077"))
        assert any(seg.style is not None and seg.style.bgcolor is not None for seg in strip)
        # Enter: back in the pane, n/N go through the matches of a wider search.
        line = tab.query_one("SearchLine")
        line.value = "12"  # type: ignore[attr-defined]
        await pilot.pause()
        total = sum(str(n).count("12") for n in range(1000, 1301))  # 1212 has two
        assert len(pane.matches) == total
        await pilot.press("enter")
        assert app.focused is pane
        # The view was at 1077: the match shown is the newest above its bottom, 1012.
        first = pane.current_match
        assert first is not None and row_text(pane._row_abs(first[0]), None) == "1012"
        await pilot.press("N")
        newer = pane.current_match
        assert newer is not None and newer[0] > first[0]
        await pilot.press("n")
        assert pane.current_match == first
        await pilot.press("n")  # older than the oldest: wraps to the newest, "1299"
        assert pane.current_match == pane.matches[-1]
        for _ in range(40):  # far back: the view follows the match
            await pilot.press("n")
        assert pane.current_match is not None
        shown = lines(pane)
        text = pane._row_abs(pane.current_match[0])
        assert row_text(text, None) in shown
        await pilot.press("escape")  # back to the live screen, highlights gone
        assert pane.scroll_offset_lines == 0 and not pane.matches
        await type_line(pilot, "echo still-$((2*3))")
        await wait_until(pilot, lambda: "still-6" in lines(pane))


async def test_a_resize_keeps_the_scrollback_and_tells_the_program(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None
        await type_line(pilot, "seq 1 200; printf '%0250d\\n' 0")
        await wait_until(pilot, lambda: "200" in pane.scrollback_lines + lines(pane))

        def zero_rows() -> list[str]:
            return [x for x in pane.scrollback_lines + lines(pane) if x and set(x) == {"0"}]

        await wait_until(pilot, lambda: sum(map(len, zero_rows())) == 250)
        width = pane.size.width
        assert [len(x) for x in zero_rows()] == [width, width, 250 - 2 * width]
        before = [x for x in pane.scrollback_lines if x]
        assert before[:3] == ["$ seq 1 200; printf '%0250d\\n' 0", "1", "2"]
        await pilot.resize_terminal(90, 30)
        await wait_until(pilot, lambda: pane.size.width == 90)
        # The scrollback is kept, and the long line re-wrapped at the new width.
        assert [x for x in pane.scrollback_lines if x][:3] == before[:3]
        new = pane.size.width
        assert [len(x) for x in zero_rows()] == [new, new, 250 - 2 * new]
        await type_line(pilot, "stty size")
        await wait_until(pilot, lambda: f"{pane.size.height} {new}" in lines(pane))
