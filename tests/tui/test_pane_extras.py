"""Terminal panes beyond typing: recording to asciicast and playing it back, mouse selection
and copy, mouse reporting to programs that ask for it, scrollback search, resizes. On the fake
backend, whose panes run a local /bin/sh (tests/tui/test_panes.py has the helpers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import refresh, wait_until
from fake_backend import FakeBackend
from test_panes import lines, no_leftovers, open_pane, screen_of, tab_label, type_line

__all__ = ["no_leftovers"]  # the fixture, shared with test_panes.py

from tuibox.app import TuiboxApp
from tuibox.screens.recordings import PlayerScreen, RecordingsScreen
from tuibox.widgets.cast_player import CastPlayer
from tuibox.widgets.terminal_tabs import TerminalTabs

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
