"""The inspect screen: `y` on the list opens it, it shows the box's address first, env values
stay masked until `v`, scroll keys work, Esc and q go back to the list without quitting."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import refresh, text_of, wait_until
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.inspect import InspectScreen

SIZE = (100, 30)


async def open_inspect(pilot: Any, row: int = 3) -> InspectScreen:
    await refresh(pilot)
    pilot.app.screen.query_one("#boxes", DataTable).move_cursor(row=row)  # "web"
    await pilot.pause()
    await pilot.press("y")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, InspectScreen)
    return screen


def body_text(screen: InspectScreen) -> str:
    return "\n".join(text_of(s) for s in screen.query(Static).results(Static) if s.id != "in-title")


async def test_y_opens_inspect_and_esc_goes_back(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspect(pilot)
        assert screen.box_name == "web"
        sections = [key for key, _ in screen.section_lines]
        assert sections[:2] == ["summary", "network"]  # where to reach the box comes first
        text = body_text(screen)
        assert "address: 10.88.0.2" in text and "8080:80" in text
        assert "TOKEN=*****" in text and "s3cret" not in text
        await pilot.press("v")
        await pilot.pause()
        assert "TOKEN=s3cret" in body_text(screen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen) and app.is_running
        await open_inspect(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen) and app.is_running


async def test_inspect_scrolls_from_the_keyboard(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=(80, 12)) as pilot:
        screen = await open_inspect(pilot)
        body = screen.query_one("#in-body", VerticalScroll)
        assert body.max_scroll_y > 0
        await pilot.press("G")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("g")
        await pilot.pause()
        assert body.scroll_y == 0
        await pilot.press("j", "j")
        await pilot.pause()
        assert body.scroll_y == 2
        await pilot.press("k")
        await pilot.pause()
        assert body.scroll_y == 1
        await pilot.press("pagedown")
        await pilot.pause()
        assert body.scroll_y > 2
        await pilot.press("g", "n")
        await pilot.pause()
        assert body.scroll_y == screen.section_lines[1][1] and screen.current_section() == "network"
        await pilot.press("z")
        await pilot.pause()
        assert screen.folded == {"network"} and "10.88.0.2" not in body_text(screen)
        await pilot.press("c")
        await pilot.pause()
        assert screen.folded == {key for key, _ in screen.section_lines}


@pytest.mark.root
async def test_inspect_a_real_box(real_app: TuiboxApp, tb: Any, busybox_rootfs: Path) -> None:
    """On the real runtime: the screen shows the box's init pid and its own namespaces."""
    name = f"tui-{uuid.uuid4().hex[:6]}"
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    pid = tb.state(name)["pid"]
    app = real_app
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#boxes", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)  # the only box in this root
        table.move_cursor(row=0)
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, InspectScreen))
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        await wait_until(pilot, lambda: bool(screen.query("#in-text")))
        text = body_text(screen)
        assert f"init: {pid}" in text
        assert f"inode: {os.stat(f'/proc/{pid}/ns/pid').st_ino}" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen) and app.is_running
