"""Keys as a fast typist and a k9s / lazydocker user send them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import refresh
from fake_backend import FakeBackend
from textual import events
from textual.widgets import DataTable, Input, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.create import CreateBoxScreen
from tuibox.screens.inspect import InspectScreen
from tuibox.screens.logs import LogsScreen
from tuibox.screens.processes import ProcessesScreen

SIZE = (140, 45)


def type_at_once(app: TuiboxApp, keys: str) -> None:
    """Queue keys the way a terminal delivers a burst: all before the app handles the first
    (Pilot's press waits for the app to settle after each key, which hides the race)."""
    for key in keys:
        app.post_message(events.Key(key, key))


async def test_keys_typed_right_after_c_fill_the_name(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        type_at_once(app, "cweb1")
        for _ in range(5):
            await app.workers.wait_for_complete()
            await pilot.pause(0.02)
        assert isinstance(app.screen, CreateBoxScreen)
        assert app.screen.query_one("#name", Input).value == "web1"


async def test_list_moves_with_j_k_g_G_home_end(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        table = app.screen.query_one("#boxes", DataTable)
        last = table.row_count - 1
        assert last >= 2 and table.cursor_row == 0
        moves = [("j", 1), ("j", 2), ("k", 1), ("G", last), ("g", 0), ("end", last), ("home", 0)]
        for key, row in moves:
            await pilot.press(key)
            assert table.cursor_row == row, key


@pytest.mark.parametrize(
    ("key", "screen"), [("t", ProcessesScreen), ("l", LogsScreen), ("y", InspectScreen)]
)
async def test_q_and_escape_leave_a_sub_view_not_the_app(
    make_app: Callable[..., TuiboxApp], key: str, screen: type
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        for leave in ("q", "escape"):
            await pilot.press(key)
            await pilot.pause(0.1)  # the logs view follows forever: no waiting for workers
            assert isinstance(app.screen, screen)
            await pilot.press(leave)
            await pilot.pause()
            assert isinstance(app.screen, BoxesScreen) and app.is_running


async def test_space_toggles_a_form_switch_and_enter_submits(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CreateBoxScreen)
        switch = form.query_one("#network", Switch)
        switch.focus()
        await pilot.pause()
        await pilot.press("space")
        assert switch.value is True
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert switch.value is True  # Enter did not toggle it: it created the box
        assert any(c[0] == "run" for c in fake.calls)
        assert isinstance(app.screen, BoxesScreen)
