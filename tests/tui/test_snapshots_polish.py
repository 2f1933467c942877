"""SVG snapshots of the help page, the create form (with a wrapped error) and the log view at
the three sizes users run tuibox in: 80x24, 100x30 and 160x48."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_backend import FakeBackend
from test_snapshots import on_box
from textual.pilot import Pilot
from textual.widgets import Input

from tuibox.app import TuiboxApp
from tuibox.screens.logs import LogsScreen

SIZES = [(80, 24), (100, 30), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_page(snap_compare: Any, make_app: Callable[..., TuiboxApp], size: Any) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=on_box("web", "question_mark"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_create_form_with_an_error(
    snap_compare: Any, make_app: Callable[..., TuiboxApp], size: Any
) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await on_box("web", "c")(pilot)
        pilot.app.screen.query_one("#name", Input).value = "-bad/name"
        await pilot.press("enter")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_log_view_with_times_search_and_tail(
    snap_compare: Any, make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.logs["web"] = b"".join(
        f"line {i} {'ERROR' if i % 7 == 3 else 'ok'}\n".encode() for i in range(40)
    )

    async def before(pilot: Pilot[Any]) -> None:
        await on_box("web")(pilot)
        pilot.app.push_screen(LogsScreen("web", poll=3600))
        await pilot.pause(0.2)
        await pilot.press("T", "2", "0", "enter", "t", "slash", *"error", "enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=before)
