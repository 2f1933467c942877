"""The details pane (issue 17 item 6): address and ports first, reachable with Tab and
scrollable from the keyboard."""

from __future__ import annotations

from collections.abc import Callable

from conftest import refresh, text_of
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tuibox.app import TuiboxApp


async def test_details_address_first_and_keyboard_scroll(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await refresh(pilot)
        app.screen.query_one("#boxes", DataTable).move_cursor(row=3)  # "web"
        await refresh(pilot)
        lines = [ln for ln in text_of(app.screen.query_one("#details-body", Static)).splitlines()]
        assert lines[1].split()[:2] == ["address", "10.88.0.2"], lines[:4]
        assert lines[2].split()[:2] == ["ports", "8080:80"], lines[:4]
        pane = app.screen.query_one("#details-text", VerticalScroll)
        for _ in range(6):
            if app.focused is pane:
                break
            await pilot.press("tab")
        assert app.focused is pane
        assert pane.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert pane.scroll_y > 0
