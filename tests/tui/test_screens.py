"""Processes, logs, help and not-root screens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import refresh, text_of
from fake_backend import FakeBackend
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens import processes as processes_screen
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.help import HelpScreen
from tuibox.screens.logs import LogsScreen
from tuibox.screens.not_root import NotRootScreen
from tuibox.screens.processes import ProcessesScreen
from tuibox.screens.signal import SignalScreen
from tuibox.widgets.logview import LogView

SIZE = (140, 40)
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


async def open_on(pilot: Any, name: str, key: str) -> Any:
    await refresh(pilot)
    pilot.app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
    await pilot.pause()
    await pilot.press(key)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.screen


# ---- processes


async def test_processes_tree(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "t")
        assert isinstance(screen, ProcessesScreen)
        table = screen.query_one("#processes", DataTable)
        rows = [[plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        # One namespace per column: pid and parent in the box, then on the host.
        assert [r[0] for r in rows] == ["1", "7", "8", "9"]
        assert [r[1] for r in rows] == ["-", "1", "1", "8"]  # init's parent is outside
        assert [r[2] for r in rows] == ["4242", "4243", "4244", "4245"]
        assert [r[3] for r in rows] == ["4241", "4242", "4242", "4244"]
        assert [r[8] for r in rows] == [
            "httpd -f -p 80",
            "├─ sleep 1000",
            "└─ httpd -f -p 80",
            "   └─ httpd worker",
        ]
        # CPU % is measured between two polls: nothing to show on the first.
        assert rows[2][4] == "nobody" and rows[2][6] == "-" and rows[2][7] == "3.2M"
        assert "4 processes" in text_of(screen.query_one("#ps-status"))


async def test_processes_cpu_between_polls(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(processes_screen, "monotonic", lambda: clock[0])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "t")
        assert isinstance(screen, ProcessesScreen)
        fake.cpu_times[8] = 1.5  # 1.5 s of CPU in the 2 s since the first poll
        clock[0] += 2.0
        screen.poll()
        await app.workers.wait_for_complete()
        assert screen.cpu[4244] == 75.0 and screen.cpu[4242] == 0.0
        clock[0] += 1.0  # stopped (SIGSTOP): no CPU time since, so 0 at once
        screen.poll()
        await app.workers.wait_for_complete()
        assert screen.cpu[4244] == 0.0


async def test_processes_view_clears_when_its_box_goes(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "t")
        assert isinstance(screen, ProcessesScreen)
        assert screen.query_one("#processes", DataTable).row_count == 4
        await fake.destroy("web", force=True)
        await refresh(pilot)
        assert screen.query_one("#processes", DataTable).row_count == 0
        assert "destroyed" in text_of(screen.query_one("#ps-status"))
        await pilot.press("q")  # leaves the view, not the app
        assert isinstance(app.screen, BoxesScreen)


async def test_enter_on_a_box_opens_processes(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "enter")
        assert isinstance(screen, ProcessesScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)


async def test_signal_a_process(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "t")
        await pilot.press("down", "j", "K")
        assert isinstance(app.screen, SignalScreen)
        await pilot.press("down", "down", "down", "enter")  # TERM KILL INT HUP
        await app.workers.wait_for_complete()
        assert ("signal", "web", "4244", "HUP") in fake.calls
        assert app.screen is screen


async def test_processes_unavailable_is_explained(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.unavailable["ps"] = "unknown command 'ps' (see 'tuibox --help')"
    app = make_app(probe=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_on(pilot, "web", "t")
        assert isinstance(screen, ProcessesScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "unknown command 'ps'" in text_of(screen.query_one("#ps-status"))
        await pilot.press("escape")
        # Known now: the key is greyed on the list, with the reason.
        assert app.screen.check_action("processes", ()) is None


# ---- logs


LOG = b"".join(
    f"line {i} {'ERROR disk full' if i % 10 == 3 else 'ok'}\n".encode() for i in range(60)
)


async def test_logs_follow_new_output(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.logs["web"] = b"hello\npartial"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW["web"])
        app.push_screen(LogsScreen("web", poll=0.05))
        await pilot.pause(0.2)
        view = app.screen.query_one(LogView)
        assert view.lines == ["hello", "partial"]
        fake.logs["web"] += b" line\nnext\n"
        await pilot.pause(0.3)
        assert view.lines == ["hello", "partial line", "next"]
        fake.logs["web"] = b"restarted\n"  # truncated: shown from the start again
        await pilot.pause(0.3)
        assert view.lines == ["restarted"]


async def test_logs_search_highlight_and_n(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.logs["web"] = LOG
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        app.push_screen(LogsScreen("web", poll=0.05))
        await pilot.pause(0.2)
        screen = app.screen
        view = screen.query_one(LogView)
        assert len(view.lines) == 60
        assert screen.check_action("next_match", ()) is False  # no search yet
        await pilot.press("home")  # search goes forward from the top of the window
        assert not view.follow
        await pilot.press("slash", *"error", "enter")
        assert view.matches == [3, 13, 23, 33, 43, 53]
        assert view.current == 3
        await pilot.press("n", "n")
        assert view.current == 23
        await pilot.press("N", "N", "N")
        assert view.current == 53  # wraps around
        assert "6/6" in text_of(screen.query_one("#logs-status"))
        await pilot.press("m")
        assert view.visible_count() == 6
        await pilot.press("m")
        assert view.visible_count() == 60


async def test_logs_without_log_file(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        app.boxes[0] = app.boxes[0].__class__(id="nolog", status="running")
        app.push_screen(LogsScreen("nolog"))
        await pilot.pause(0.1)
        assert "no log file" in text_of(app.screen.query_one("#logs-status"))


# ---- help


async def test_help_lists_every_binding(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {(k.description, k.binding_id) for k in help_screen.keys}
        for cls in (BoxesScreen, ProcessesScreen, LogsScreen):
            for b in Binding.make_bindings(cls.BINDINGS):
                assert (b.description, b.id) in listed, (cls.__name__, b)
        assert ("Quit", "app.quit") in listed
        assert ("Theme", "app.theme") in listed
        shown = text_of(help_screen.query_one("#help-keys"))
        for action in ("Create", "Destroy", "Next", "Signal", "Quit"):
            assert action in shown
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)


async def test_help_shows_greyed_keys_with_reason(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW["web"])
        await pilot.press("question_mark")
        start = next(k for k in app.screen.keys if k.binding_id == "box.start")
        assert start.enabled is False and "web is running" in str(start.reason)


async def test_help_follows_a_keymap(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.set_keymap({"box.start": "S", "logs.next": "j"})
        await refresh(pilot)
        await pilot.press("question_mark")
        keys = {k.binding_id: k.keys for k in app.screen.keys}
        assert keys["box.start"] == "S"
        assert keys["logs.next"] == "j"


# ---- not root


async def test_not_root_screen(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app(privileged=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, NotRootScreen)
        text = text_of(app.screen.query_one("#why"))
        assert "needs root (or CAP_SYS_ADMIN)" in text and "sudo tuibox" in text
        assert "namespaces" in text
        assert fake.calls == []  # never touched the runtime
        await pilot.press("q")
    # Nothing was done: a script running `tuibox` sees the failure.
    assert app.return_code == 1 and app.return_value == 1
