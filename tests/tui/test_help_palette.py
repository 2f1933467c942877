"""The help page lists what a user does (not a table's cursor keys), once each, scrolls with
the arrow keys and wraps its reasons; the palette lists each command once and finds the
actions by the words people type (image, port, limit, exec)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import Any

from conftest import refresh, wait_until
from fake_backend import FakeBackend
from rich.console import Console
from textual.command import Command, CommandList, CommandPalette
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tuibox.app import TuiboxApp
from tuibox.screens.help import HelpScreen, keys_page
from tuibox.screens.inspect import InspectScreen

ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


def shown_text(widget: Static, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(keys_page(widget.screen.keys))  # type: ignore[attr-defined]
    return console.export_text()


async def open_help(pilot: Any, box: str = "web") -> HelpScreen:
    await refresh(pilot)
    pilot.app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW[box])
    await pilot.pause()
    await pilot.press("question_mark")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HelpScreen)
    return screen


async def test_help_lists_user_actions_once(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_help(pilot)
        assert not [k for k in screen.keys if "(focused)" in k.section]  # no class names
        # The list's own keys (j/k, g/G) are ours, in a section named in people's words.
        listed = {k.keys: k.description for k in screen.keys if k.section == "lists"}
        assert listed.get("k, ↑") == "Up" and listed.get("end, G") == "Last row", listed
        described = [k.description for k in screen.keys]
        for internal in ("Cursor up", "Cursor down", "Page Left", "Copy selected text"):
            assert internal not in described, internal
        per_section = Counter((k.section, k.description) for k in screen.keys)
        assert max(per_section.values()) == 1, per_section.most_common(3)
        quit_key = next(k for k in screen.keys if k.binding_id == "app.quit")
        assert quit_key.keys == "q, ^q"  # Textual's ctrl+q joins ours, not a second line
        assert any(k.description == "Command palette" for k in screen.keys)
        # A screen that is not open: one line per action, its keys together.
        down = [k for k in screen.keys if k.section == "inspect" and k.description == "Down"]
        assert [k.keys for k in down] == ["j, ↓"]


async def test_help_scrolls_and_wraps_at_80_columns(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_help(pilot)
        scroll = screen.query_one("#help-scroll", VerticalScroll)
        assert app.focused is scroll
        assert scroll.max_scroll_y > 10
        await pilot.press("down")
        assert scroll.scroll_y == 1
        await pilot.press("pagedown")
        assert scroll.scroll_y > 5
        await pilot.press("end")
        assert scroll.scroll_y == scroll.max_scroll_y
        # Every reason is there in full, wrapped inside the dialog's width.
        keys = screen.query_one("#help-keys", Static)
        width = keys.content_region.width
        assert width < 80
        text = shown_text(keys, width)
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        flat = " ".join(text.split())
        reasons = {k.reason for k in screen.keys if k.reason}
        assert reasons
        for reason in reasons:
            words = reason.split()
            # Each word of a reason is shown (a cut column would lose the last ones).
            assert words[-1] in flat, reason
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def palette_titles(pilot: Any, query: str) -> list[str]:
    app = pilot.app
    await pilot.press("ctrl+p")
    await pilot.pause()
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    await pilot.press(*query) if query else None
    await pilot.pause(0.4)
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)
    listed = palette.query_one(CommandList)
    titles = [
        str(opt.hit.text)
        for i in range(listed.option_count)
        if isinstance(opt := listed.get_option_at_index(i), Command)
    ]
    await pilot.press("escape")
    await pilot.pause()
    return titles


async def test_palette_lists_each_command_once_and_finds_common_words(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await refresh(pilot)
        app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW["web"])
        everything = await palette_titles(pilot, "")
        assert everything.count("Theme") == 1 and everything.count("Quit") == 1
        assert len(everything) == len(set(everything)), Counter(everything).most_common(2)
        for word in ("image", "port", "limit", "exec"):
            found = await palette_titles(pilot, word)
            assert [t for t in found if word in t.lower()], (word, found)
        # An alias runs its action: "ports" -> the inspector of the selected box.
        await pilot.press("ctrl+p", *"ports, address")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, InspectScreen), 5)
        assert app.screen.box_name == "web"
