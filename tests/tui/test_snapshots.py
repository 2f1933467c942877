"""SVG snapshots of the main screens on the fake runtime (fixed clock, no timed polls).

Update after a deliberate UI change with `pytest tests/tui --snapshot-update` and review the
SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import refresh, wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tuibox.app import TuiboxApp
from tuibox.widgets.terminal_tabs import TerminalTabs

SIZE = (120, 36)
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


def on_box(name: str, *keys: str) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        await refresh(pilot)
        pilot.app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
            await pilot.app.workers.wait_for_complete()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor would make the SVG flaky
        await pilot.pause()

    return before


def test_box_list(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_box("batch"))


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_box_list_sizes(
    snap_compare: Any, make_app: Callable[..., TuiboxApp], size: tuple[int, int]
) -> None:
    # Small terminals keep name, state, CPU and memory; the details shrink first.
    assert snap_compare(make_app(), terminal_size=size, run_before=on_box("web"))


def test_details_of_a_running_box(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_box("web"))


def test_create_form(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=on_box("web", "c"))


def test_processes(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_box("web", "t"))


def test_help(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(
        make_app(), terminal_size=(120, 40), run_before=on_box("web", "question_mark")
    )


def test_terminal_panes(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await on_box("web")(pilot)
        tabs = pilot.app.screen.query_one(TerminalTabs)

        def shown() -> str:
            tab = tabs.current
            return tab.terminal.screen_text() if tab and tab.terminal else ""

        for _ in range(2):  # two shells: the second tab is numbered
            await pilot.press("e")
            await wait_until(pilot, lambda: "$" in shown())
            await pilot.press("ctrl+right_square_bracket")
        await pilot.press("f", *"echo", "space", *"hello", "enter")
        await wait_until(pilot, lambda: "\nhello" in shown())
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)
