"""Terminal panes in the box list, on the fake backend: its `terminal_command` hands the pane a
local /bin/sh with a known prompt, so the whole path (tab, pty at the pane's size, keys, exit,
close) runs for real without root. Waits are bounded polls, never sleeps asserted on.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import refresh, wait_until
from fake_backend import FakeBackend
from textual.pilot import Pilot
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.widgets.box_details import BoxDetails
from tuibox.widgets.terminal import TerminalPane
from tuibox.widgets.terminal_tabs import TerminalTab, TerminalTabs

SIZE = (120, 40)
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[list[int]]:
    """Pids of every pane program a test started; each must be gone (or reaped) at the end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def screen_of(app: TuiboxApp) -> BoxesScreen:
    screen = app.screen
    assert isinstance(screen, BoxesScreen)
    return screen


async def goto(pilot: Pilot[Any], name: str) -> BoxesScreen:
    screen = screen_of(pilot.app)
    screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
    await pilot.pause()
    return screen


def lines(pane: TerminalPane) -> list[str]:
    return [line.rstrip() for line in pane.screen_text().split("\n")]


def prompt_shown(pane: TerminalPane, prompt: str = "$") -> Callable[[], bool]:
    def check() -> bool:
        shown = [line for line in lines(pane) if line]
        return bool(shown) and shown[-1] == prompt

    return check


async def type_line(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*["space" if ch == " " else ch for ch in text], "enter")


async def open_pane(
    pilot: Pilot[Any], box: str, key: str, pids: list[int], prompt: str = "$"
) -> TerminalTab:
    """Press `key` on `box`; returns the new tab once its shell shows a prompt."""
    screen = await goto(pilot, box)
    tabs = screen.query_one(TerminalTabs)
    before = {t.id for t in tabs.tabs()}
    await pilot.press(key)
    await wait_until(pilot, lambda: any(t.id not in before for t in tabs.tabs()), 5)
    tab = next(t for t in tabs.tabs() if t.id not in before)
    await wait_until(pilot, lambda: tab.terminal is not None, 5)
    assert tab.terminal is not None and tab.terminal.pid is not None
    pids.append(tab.terminal.pid)
    await wait_until(pilot, prompt_shown(tab.terminal, prompt), 5)
    return tab


def tab_label(tabs: TerminalTabs, tab: TerminalTab) -> str:
    assert tab.id is not None
    return tabs.get_tab(tab.id).label.plain


async def test_shell_pane_runs_a_shell(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = screen_of(app)
        assert not screen.query_one(TerminalTabs).display  # no pane, no room taken
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        tabs = screen.query_one(TerminalTabs)
        assert ("terminal", "shell", "web") in fake.calls
        assert tabs.display and screen.has_class("with-panes")
        assert not screen.query_one(BoxDetails).display  # the panes take the details' room
        assert tab_label(tabs, tab) == "shell: web"
        assert app.focused is tab.terminal
        # The footer shows the detach key while the pane has the keys, and little else.
        footer_keys = {b.binding.description for b in screen.active_bindings.values()}
        assert "Detach" in footer_keys and "Create" not in footer_keys
        assert tab.terminal is not None
        await type_line(pilot, "echo hel''lo")
        await wait_until(pilot, lambda: "hello" in lines(tab.terminal))  # type: ignore[union-attr]


async def test_the_program_starts_at_the_pane_size_and_follows_it(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None

        async def stty_size(tag: str) -> tuple[int, int]:
            # Tagged, so an earlier answer still on the screen is not read again.
            await type_line(pilot, f"echo {tag} $(stty size)")
            pattern = re.compile(rf"^{tag} (\d+) (\d+)$")
            await wait_until(pilot, lambda: any(pattern.match(x) for x in lines(pane)))
            match = next(m for x in lines(pane) if (m := pattern.match(x)))
            return int(match[1]), int(match[2])

        assert await stty_size("first") == (pane.size.height, pane.size.width)
        await pilot.resize_terminal(100, 50)
        await wait_until(pilot, lambda: pane.size.width == 100)
        assert await stty_size("resized") == (pane.size.height, 100)


async def test_detach_returns_to_the_list_and_back(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        screen = screen_of(app)
        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is screen.query_one("#boxes", DataTable)
        assert tab.running  # detaching leaves the program alone
        # Back on the list, its keys work, and the pane keys are in the footer.
        shown = {b.binding.description: b.enabled for b in screen.active_bindings.values()}
        assert shown.get("Close pane") and shown.get("To pane") and "Create" in shown
        await pilot.press("f")
        assert app.focused is tab.terminal
        await type_line(pilot, "echo back")
        await wait_until(pilot, lambda: "back" in lines(tab.terminal))  # type: ignore[arg-type]
        # Zoomed, the panes fill the screen; leaving the pane un-zooms.
        await pilot.press("ctrl+right_square_bracket", "z")
        assert screen.maximized is screen.query_one(TerminalTabs)
        assert app.focused is tab.terminal
        await pilot.press("ctrl+right_square_bracket")
        assert screen.maximized is None
        assert app.focused is screen.query_one("#boxes", DataTable)


async def test_an_exited_program_says_so_and_its_tab_closes(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = screen_of(app)
        tabs = screen.query_one(TerminalTabs)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        await type_line(pilot, "exit 3")
        pane = tab.terminal
        assert pane is not None
        await wait_until(pilot, lambda: pane.exited)
        await pilot.pause()
        assert pane.exit_status == 3
        assert any("[process exited with status 3]" in x for x in lines(pane))
        assert tab_label(tabs, tab) == "shell: web · exited 3"
        assert any("exited 3" in n.message for n in app._notifications)
        # An exited pane hands its keys back: w closes it straight away.
        assert app.focused is pane
        await pilot.press("w")
        await wait_until(pilot, lambda: tabs.count == 0)
        assert not tabs.display and screen.query_one(BoxDetails).display
        assert app.focused is screen.query_one("#boxes", DataTable)


async def test_several_panes_and_closing_ends_the_program(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, no_leftovers: list[int]
) -> None:
    fake.boxes["batch"] = replace(fake.boxes["batch"], terminal=True)  # created, with console
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = screen_of(app)
        tabs = screen.query_one(TerminalTabs)
        first = await open_pane(pilot, "web", "e", no_leftovers)
        await pilot.press("ctrl+right_square_bracket")
        second = await open_pane(pilot, "web", "e", no_leftovers)
        await pilot.press("ctrl+right_square_bracket")
        console = await open_pane(pilot, "batch", "a", no_leftovers, prompt="console$")
        assert ("terminal", "attach", "batch") in fake.calls
        labels = [tab_label(tabs, t) for t in tabs.tabs()]
        assert labels == ["shell: web", "shell: web (2)", "attach: batch"]
        # One console per box: attaching again goes to the open tab.
        await pilot.press("ctrl+right_square_bracket")
        await goto(pilot, "batch")
        await pilot.press("a")
        await pilot.pause()
        assert tabs.count == 3 and tabs.current is console and app.focused is console.terminal

        await pilot.press("ctrl+right_square_bracket", "n")
        assert tabs.current is first and app.focused is first.terminal
        # Each pane is its own program: what is typed in one stays there.
        await type_line(pilot, "echo only-here")
        await wait_until(pilot, lambda: "only-here" in lines(first.terminal))  # type: ignore[arg-type]
        assert second.terminal is not None and "only-here" not in second.terminal.screen_text()

        pid = first.terminal.pid if first.terminal else None
        assert pid is not None
        await pilot.press("ctrl+right_square_bracket", "w")
        await wait_until(pilot, lambda: tabs.count == 2)
        await wait_until(pilot, lambda: not _alive(pid))  # hung up and reaped
        # Closed from the list: the keys stay on the list.
        assert tabs.display and app.focused is screen.query_one("#boxes", DataTable)


async def test_attach_needs_a_console_and_the_verb(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")  # running, but made without a terminal
        assert screen.check_action("attach", ()) is None
        assert "no console" in (screen.action_reason("attach") or "")
        await pilot.press("a")
        await pilot.pause()
        assert screen.query_one(TerminalTabs).count == 0
        screen = await goto(pilot, "db")  # a console, but paused
        assert screen.action_reason("attach") == "db is paused; attach needs created or running"

    fake.unavailable["attach"] = "this runtime has no 'attach' command yet"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "db")
        assert screen.action_reason("attach") == "this runtime has no 'attach' command yet"


async def test_pane_keys_hide_without_panes_but_are_in_the_help(
    make_app: Callable[..., TuiboxApp],
) -> None:
    from tuibox.screens.bindings_info import all_keys
    from tuibox.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        footer = {b.binding.description for b in screen.active_bindings.values()}
        assert "Close pane" not in footer and "Shell" in footer and "Attach" in footer
        described = {k.description: k for k in all_keys(app, screen)}
        for title in ("Close pane", "To pane", "Next pane", "Zoom pane", "Shell (full terminal)"):
            assert title in described, title
        assert described["Close pane"].reason == "no terminal pane is open"
        # The pane's own leave key is there before any pane is open.
        assert described["Detach"].section == "terminal pane"
        assert described["Detach"].keys == "^]"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_the_old_shell_is_still_a_key_away(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        await pilot.press("E")
        await pilot.pause()
        # Headless runs cannot suspend: the user is told, the app carries on.
        assert "a shell needs a real terminal" in [n.message for n in app._notifications]


async def test_a_program_that_cannot_start_is_reported(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.terminal_argv = ("/nonexistent/tuibox-shell",)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        tabs = screen.query_one(TerminalTabs)
        await pilot.press("e")
        await wait_until(pilot, lambda: any(t.error for t in tabs.tabs()))
        tab = next(iter(tabs.tabs()))
        assert tab_label(tabs, tab) == "shell: web · failed"
        assert any("cannot start" in n.message for n in app._notifications)
        await pilot.press("w")
        await wait_until(pilot, lambda: tabs.count == 0)


async def test_quitting_the_app_hangs_up_every_pane(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await open_pane(pilot, "web", "e", no_leftovers)
    pid = no_leftovers[0]
    # The pane's SIGHUP ends the shell; nothing may be left to reap it once the loop is gone.
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return reaped == 0


async def test_zoom_key_works_from_inside_the_pane_and_z_goes_to_the_program(
    make_app: Callable[..., TuiboxApp], no_leftovers: list[int]
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = screen_of(app)
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert pane is not None and app.focused is pane
        await pilot.press("alt+z")  # the same key zooms and un-zooms, keys stay in the pane
        assert screen.maximized is screen.query_one(TerminalTabs)
        await type_line(pilot, "echo zz")  # a plain z is the program's
        await wait_until(pilot, lambda: "zz" in lines(pane))
        assert screen.maximized is not None and app.focused is pane
        await pilot.press("alt+z")
        assert screen.maximized is None and app.focused is pane
