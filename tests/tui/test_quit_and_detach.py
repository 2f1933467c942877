"""Quitting with live terminal panes asks first and names them; a remapped detach key is
shown as itself (footer and help), never as the default ^]."""

from __future__ import annotations

from collections.abc import Callable

from conftest import refresh, wait_until
from test_panes import no_leftovers, open_pane  # noqa: F401 (an autouse fixture)
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.widgets.terminal import TerminalPane
from tuibox.widgets.terminal_tabs import TerminalTabs

SIZE = (120, 40)


async def test_quit_with_live_panes_asks_and_names_them(
    make_app: Callable[..., TuiboxApp],
    no_leftovers: list[int],  # noqa: F811
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await open_pane(pilot, "web", "e", no_leftovers)
        await pilot.press("ctrl+right_square_bracket")  # back to the list, the shell runs on
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        question = app.screen.question
        assert "1 terminal pane is still open" in question and "shell: web" in question
        assert "ends their shells" in question
        await pilot.press("q")  # a second q does not stack a second question
        assert len([s for s in app.screen_stack if isinstance(s, ConfirmScreen)]) == 1
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen) and app.is_running
        # The palette's Quit and ctrl+q take the same way.
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: app._exit)  # type: ignore[attr-defined]


async def test_quit_without_panes_does_not_ask(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app._exit  # type: ignore[attr-defined]


async def test_a_remapped_detach_key_shows_itself(
    make_app: Callable[..., TuiboxApp],
    no_leftovers: list[int],  # noqa: F811
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.set_keymap({"terminal.detach": "ctrl+x"})
        await refresh(pilot)
        # In the help before any pane is open.
        await pilot.press("question_mark")
        detach = next(k for k in app.screen.keys if k.binding_id == "terminal.detach")
        assert detach.keys == "^x"
        await pilot.press("escape")
        tab = await open_pane(pilot, "web", "e", no_leftovers)
        pane = tab.terminal
        assert isinstance(pane, TerminalPane) and app.focused is pane
        shown = {
            app.get_key_display(a.binding): a.binding.description
            for a in app.screen.active_bindings.values()
            if a.binding.show
        }
        assert shown.get("^x") == "Detach" and "^]" not in shown
        await pilot.press("ctrl+x")
        assert app.focused is app.screen.query_one("#boxes", DataTable)

        # A pane made with its own detach key (TerminalTabs(detach_key=...)) as well.
        tabs = app.screen.query_one(TerminalTabs)
        assert tabs is not None
        other = TerminalPane(-1, None, detach_key="ctrl+b")
        keys = {
            app.get_key_display(b): b.description
            for bindings in other._bindings.key_to_bindings.values()
            for b in bindings
            if b.show
        }
        assert keys.get("^b") == "Detach" and "^]" not in keys


async def test_destroy_dialog_names_each_box_once(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        table = app.screen.query_one("#boxes", DataTable)
        for row in (0, 2, 3):  # batch (created), old (stopped), web (running)
            table.move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        question = app.screen.question
        for name in ("batch", "web", "old"):
            assert question.count(name) == 1, (name, question)
        assert question.startswith("Destroy 3 boxes?")
        lines = {line.split()[0]: line for line in question.splitlines()[1:4]}
        assert "--force" in lines["web"]
        assert "--force" not in lines["batch"] + lines["old"]
        await pilot.press("escape")
        # One box: its name once, and why --force.
        await pilot.press("escape")  # clears the selection
        table.move_cursor(row=3)
        await pilot.press("d")
        question = app.screen.question  # type: ignore[attr-defined]
        assert question.count("web") == 1 and "still running" in question
