"""The box list: rendering, live refresh keeping the cursor, filter, sort, multi-select."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import refresh, text_of
from fake_backend import NOW, FakeBackend
from rich.text import Text
from textual.widgets import DataTable, Input
from textual.widgets.data_table import ColumnKey

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen, natural_key
from tuibox.service import BoxRow
from tuibox.widgets.table_sync import cursor_key

SIZE = (140, 40)


def table_of(app: TuiboxApp) -> DataTable[Any]:
    return app.screen.query_one("#boxes", DataTable)


def names_in(app: TuiboxApp) -> list[str]:
    t = table_of(app)
    return [str(t.get_row_at(i)[1]) for i in range(t.row_count)]


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


async def test_lists_every_box_with_its_columns(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        assert isinstance(app.screen, BoxesScreen)
        assert names_in(app) == ["batch", "db", "old", "web"]
        web = [plain(c) for c in table_of(app).get_row("web")]
        assert web[2] == "running"
        assert web[3] == "31.5%"  # from the one stats call
        assert web[4] == "7.0M / 256.0M"
        assert web[5] == "1h02m"  # uptime from the fixed clock
        assert web[6:] == ["busybox", "httpd -f -p 80", "4242", "10.88.0.2", "8080:80"]
        state = table_of(app).get_row("old")[2]
        assert (
            isinstance(state, Text) and state.plain == "stopped (1)" and "red" in str(state.style)
        )


async def test_one_list_and_one_stats_call_per_refresh(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        fake.calls.clear()
        await refresh(pilot)
        assert sorted(c[0] for c in fake.calls) == ["list", "stats"]


async def test_refresh_keeps_cursor_on_the_same_box(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("down", "down")  # batch -> db -> old
        assert cursor_key(table_of(app)) == "old"
        # A new box that sorts before the cursor and a removed one after it.
        fake.boxes["aaa"] = BoxRow(id="aaa", status="created", created=NOW)
        del fake.boxes["web"]
        await refresh(pilot)
        assert names_in(app) == ["aaa", "batch", "db", "old"]
        assert cursor_key(table_of(app)) == "old"
        assert table_of(app).cursor_row == 3


async def test_refresh_updates_cells_in_place(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        table = table_of(app)
        await pilot.press("down")
        fake.boxes["db"] = BoxRow(**{**fake.boxes["db"].__dict__, "status": "running"})
        await refresh(pilot)
        assert plain(table.get_row("db")[2]) == "running"
        assert table_of(app) is table and cursor_key(table) == "db"


async def test_filter_by_typing_after_slash(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("slash", *"box run")
        assert names_in(app) == ["web"]
        assert "filter" in str(table_of(app).border_title)
        await pilot.press("enter")  # back to the table, filter kept
        assert table_of(app).has_focus and names_in(app) == ["web"]
        await pilot.press("escape")
        assert names_in(app) == ["batch", "db", "old", "web"]
        assert app.screen.query_one("#filter", Input).has_class("hidden")


async def test_filter_without_match_says_so(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("slash", *"zzz")
        assert names_in(app) == []
        assert "No box matches" in text_of(app.screen.query_one("#list-status"))


async def test_sort_by_key_and_by_header_click(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("o")  # name -> state
        assert names_in(app) == ["web", "db", "batch", "old"]
        assert plain(table_of(app).columns["state"].label).endswith("▲")  # type: ignore[index]
        await pilot.press("O")
        assert names_in(app) == ["old", "batch", "db", "web"]
        # Clicking a header sorts by it; clicking it again reverses.
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        table = table_of(app)
        table.post_message(DataTable.HeaderSelected(table, ColumnKey("pid"), 5, Text("PID")))
        await pilot.pause()
        assert names_in(app) == ["old", "web", "db", "batch"]
        table.post_message(DataTable.HeaderSelected(table, ColumnKey("pid"), 5, Text("PID")))
        await pilot.pause()
        assert names_in(app) == ["batch", "db", "web", "old"]


async def test_header_click_with_the_mouse(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        # The CPU % header: offset of the column inside the table, on the header row.
        table = table_of(app)
        x = sum(c.get_render_width(table) for c in table.ordered_columns[:3]) + 2
        await pilot.click("#boxes", offset=(x, 1))
        await pilot.pause()
        assert screen.sort_column == "cpu"


async def test_space_selects_for_bulk_stop(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        await pilot.press("down", "space", "space")  # db and old selected, cursor on web
        assert screen.selected == {"db", "old"}
        assert plain(table_of(app).get_row("db")[0]) == "●"
        await pilot.press("x")  # stop: only db (paused) can stop; old is already stopped
        await app.workers.wait_for_complete()
        assert ("stop", "db") in fake.calls and ("stop", "old") not in fake.calls
        assert fake.boxes["db"].status == "stopped"
        await pilot.press("escape")
        assert screen.selected == set()


async def test_select_all_then_bulk_destroy_confirms_with_names(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("A", "d")
        from tuibox.screens.confirm import ConfirmScreen

        assert isinstance(app.screen, ConfirmScreen)
        question = app.screen.question
        for name in ("batch", "db", "old", "web"):
            assert name in question
        assert "--force" in question
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await refresh(pilot)
        assert fake.boxes == {}
        assert ("destroy", "--force", "web") in fake.calls and ("destroy", "old") in fake.calls
        assert "No boxes yet" in text_of(app.screen.query_one("#list-status"))


async def test_list_error_is_shown_not_raised(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        fake.fail["list"] = "cannot read state root /run/tuibox-test: permission denied"
        await refresh(pilot)
        status = text_of(app.screen.query_one("#list-status"))
        assert "permission denied" in status
        assert any("permission denied" in n.message for n in app._notifications)
        assert names_in(app) == ["batch", "db", "old", "web"]  # the last good list stays


async def test_details_pane_follows_the_cursor(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("end", "ctrl+end")
        await pilot.pause()
        body = text_of(app.screen.query_one("#details-body"))
        assert "web" in body and "10.88.0.2" in body and "256.0M" in body
        assert "/proc" in body  # mounts from the spec
        assert "31.5%" in text_of(app.screen.query_one("#cpu-label"))


def test_names_sort_naturally() -> None:
    names = ["q10", "q2", "Q3", "q1", "q11", "a", "box-1", "box-10", "box-9"]
    assert sorted(names, key=natural_key) == [
        "a", "box-1", "box-9", "box-10", "q1", "q2", "Q3", "q10", "q11",
    ]  # fmt: skip


async def test_direct_sort_keys_and_hint(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        table = screen.query_one("#boxes", DataTable)
        assert "sort NAME ▲ · o: STATE" in str(table.border_subtitle)
        await pilot.press("2")
        assert (screen.sort_column, screen.sort_reverse) == ("state", False)
        assert "sort STATE ▲ · o: CPU %" in str(table.border_subtitle)
        await pilot.press("2")  # again: reversed
        assert (screen.sort_column, screen.sort_reverse) == ("state", True)
        await pilot.press("4")
        assert screen.sort_column == "mem"
        await pilot.press("0")  # the last column
        assert screen.sort_column == "ports"
