"""LiveTable draws exactly what DataTable draws, while laying out only what changed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from tuibox.widgets.table_sync import LiveTable, sync_rows

COLUMNS = ("name", "state", "cpu")


class Twins(App[None]):
    """The same rows in a plain DataTable and in a LiveTable, side by side."""

    def compose(self) -> ComposeResult:
        yield DataTable(id="plain", cursor_type="row", zebra_stripes=True)
        yield LiveTable(id="live", cursor_type="row", zebra_stripes=True)

    def tables(self) -> list[DataTable[Any]]:
        return [self.query_one("#plain", DataTable), self.query_one("#live", DataTable)]

    def on_mount(self) -> None:
        for table in self.tables():
            for key in COLUMNS:
                table.add_column(key.upper(), key=key)
            table.styles.height = 8


def rows(cpu: dict[str, float], order: list[str]) -> list[tuple[str, list[Any]]]:
    return [
        (name, [Text(name, style="bold"), Text("running", style="green"), f"{cpu[name]:.1f}%"])
        for name in order
    ]


def drawn(table: DataTable[Any]) -> list[Strip]:
    # Through the widget's own pass, as the compositor asks for it.
    return table.render_lines(Region(0, 0, table.size.width, table.size.height))


def same(app: Twins, plain: list[Strip] | None = None, live: list[Strip] | None = None) -> None:
    plain = plain if plain is not None else drawn(app.tables()[0])
    live = live if live is not None else drawn(app.tables()[1])
    assert [s.text for s in live] == [s.text for s in plain]
    # Styles and meta too: the meta carries the row a click lands on.
    assert [list(s) for s in live] == [list(s) for s in plain]


async def focused_drawing(app: Twins, pilot: Any, table: DataTable[Any]) -> list[Strip]:
    table.focus()
    await pilot.pause()
    return drawn(table)


async def test_live_table_draws_what_a_data_table_draws() -> None:
    app = Twins()
    async with app.run_test(size=(60, 20)) as pilot:
        app.set_focus(None)  # both unfocused: the same pseudo-classes
        cpu = {"web": 1.0, "db": 2.0, "old": 0.0, "batch": 5.0}
        order = sorted(cpu)
        for table in app.tables():
            sync_rows(table, rows(cpu, order), COLUMNS, "name")
        await pilot.pause()
        same(app)
        # One cell changes: the live table re-draws only that line, and still agrees.
        cpu["db"] = 12.5
        for table in app.tables():
            sync_rows(table, rows(cpu, order), COLUMNS, "name")
        await pilot.pause()
        same(app)
        assert "12.5%" in "".join(s.text for s in drawn(app.tables()[1]))
        # A new order: cached lines must not follow their rows to the wrong place.
        order = sorted(cpu, key=lambda n: -cpu[n])
        for table in app.tables():
            sync_rows(table, rows(cpu, order), COLUMNS, "name")
            table.move_cursor(row=2)
        await pilot.pause()
        same(app)
        # A wider value widens its column in both.
        cpu["web"] = 1234.5
        for table in app.tables():
            sync_rows(table, rows(cpu, order), COLUMNS, "name")
        await pilot.pause()
        same(app)
        # Focus and a theme change restyle everything.
        plain, live = app.tables()
        same(app, await focused_drawing(app, pilot, plain), await focused_drawing(app, pilot, live))
        app.theme = "textual-light"
        await pilot.pause()
        same(app, await focused_drawing(app, pilot, plain), await focused_drawing(app, pilot, live))


async def test_a_removed_and_re_added_row_is_drawn_anew() -> None:
    app = Twins()
    async with app.run_test(size=(60, 20)) as pilot:
        app.set_focus(None)
        for table in app.tables():
            sync_rows(table, rows({"a": 1.0, "b": 2.0}, ["a", "b"]), COLUMNS, "name")
        await pilot.pause()
        for table in app.tables():
            sync_rows(table, rows({"a": 1.0}, ["a"]), COLUMNS, "name")
        await pilot.pause()
        for table in app.tables():
            sync_rows(table, rows({"a": 1.0, "b": 9.0}, ["a", "b"]), COLUMNS, "name")
        await pilot.pause()
        same(app)
        assert "9.0%" in "".join(s.text for s in drawn(app.tables()[1]))
