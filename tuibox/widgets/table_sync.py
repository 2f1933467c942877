"""Bring a DataTable to a wanted list of rows by editing it in place, and redraw it cheaply.

Clearing and refilling a table every second loses the cursor and the scroll position and
repaints everything; here unchanged cells are left alone, rows are added or removed by key, and
the order is fixed with one `sort`, so a live list does not flicker or jump under the user.

`LiveTable` is a DataTable whose renders are cached by what they show: Textual's own caches
are all dropped whenever any cell changes, so a list whose CPU column moves every second had
every visible cell laid out by Rich again each second (~0.3 ms a cell, ~1 ms a line: over
100 ms for a screenful of 50 boxes). Now only the changed lines are drawn again, and in them
only the changed cells.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


def cell_key(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def cursor_key(table: DataTable[Any]) -> str | None:
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    return key.value


def sync_rows(
    table: DataTable[Any],
    rows: Sequence[tuple[str, Sequence[Any]]],
    column_keys: Sequence[str],
    id_column: str,
) -> bool:
    """Make `table` show `rows` (key, cells) in that order; return True if rows were added,
    removed or reordered. `id_column` must hold a value unique per row (used to reorder)."""
    before = cursor_key(table)
    wanted = {key for key, _ in rows}
    changed = False
    for gone in [k for k in table.rows if k.value not in wanted]:
        table.remove_row(gone)
        changed = True
    present = {k.value for k in table.rows}
    for key, cells in rows:
        if key in present:
            current = table.get_row(key)
            for column, old, new in zip(column_keys, current, cells, strict=True):
                if old != new:
                    # Re-measuring a column costs more than the update; only when it grows.
                    grows = cell_len(cell_key(new)) > table.columns[ColumnKey(column)].content_width
                    table.update_cell(key, column, new, update_width=grows)
        else:
            table.add_row(*cells, key=key)
            changed = True
    order = [key for key, _ in rows]
    if [r.key.value for r in table.ordered_rows] != order:
        position = {
            cell_key(cells[column_keys.index(id_column)]): i for i, (_, cells) in enumerate(rows)
        }
        table.sort(id_column, key=lambda v: position.get(cell_key(v), len(position)))
        changed = True
    if changed and before is not None and before in wanted:
        index = table.get_row_index(RowKey(before))
        if index != table.cursor_row:
            table.move_cursor(row=index, animate=False)
    return changed


def content_key(value: object) -> object | None:
    """What a cell shows, hashable; None for values it cannot vouch for (never cached)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Text):
        spans = tuple((sp.start, sp.end, sp.style) for sp in value.spans)
        return (value.plain, value.style, spans, value.justify, value.overflow, value.no_wrap)
    return None


class LiveTable(DataTable[Any]):
    """A DataTable that lays out again only what changed: cells by their content, lines by
    their row's version (bumped by add_row and update_cell); with the keys k9s and
    lazydocker users move by (j/k, g/G, Home/End)."""

    HELP_TITLE = "lists"  # the help's section for the keys below
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="list.down", show=False),
        Binding("k", "cursor_up", "Up", id="list.up", show=False),
        Binding("g,home", "first_row", "First row", id="list.first", show=False),
        Binding("G,end", "last_row", "Last row", id="list.last", show=False),
    ]

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # First: DataTable's own __init__ already clears caches (zebra_stripes' watcher).
        self._by_content: LRUCache[tuple[object, ...], list[list[Segment]]] = LRUCache(8192)
        self._lines_by_version: LRUCache[tuple[object, ...], Strip] = LRUCache(2048)
        self._row_version: dict[RowKey, int] = {}
        self._versions = itertools.count(1)
        self._widths: tuple[int, tuple[int, ...]] = (-1, ())
        self._pass_styles: dict[object, Style] = {}
        super().__init__(*args, **kwargs)

    # ---- row versions

    def add_row(self, *cells: Any, **kwargs: Any) -> RowKey:
        row_key = super().add_row(*cells, **kwargs)
        self._row_version[row_key] = next(self._versions)
        return row_key

    def update_cell(
        self, row_key: RowKey | str, column_key: Any, value: Any, *, update_width: bool = False
    ) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        key = row_key if isinstance(row_key, RowKey) else RowKey(row_key)
        self._row_version[key] = next(self._versions)

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        self._row_version.pop(row_key if isinstance(row_key, RowKey) else RowKey(row_key), None)

    def _column_widths(self) -> tuple[int, ...]:
        # Every change of a width comes with a new _update_count: computed once per count.
        at, widths = self._widths
        if at != self._update_count:
            widths = tuple(c.get_render_width(self) for c in self.ordered_columns)
            self._widths = (self._update_count, widths)
        return widths

    # ---- cached renders

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles that walk every ancestor (~0.1 ms each) are looked up once per pass, not
        # once or twice per line: they cannot change while the lines are drawn.
        self._pass_styles = {"base": self.rich_style}
        try:
            return super().render_lines(crop)
        finally:
            self._pass_styles = {}

    def render_line(self, y: int) -> Strip:
        # DataTable.render_line, with the base style of the pass.
        base = self._pass_styles.get("base")
        if base is None:
            return super().render_line(y)
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        fixed_height = 0
        for i in range(self.fixed_rows):
            fixed_key = self._row_locations.get_key(i)
            fixed_height += self.get_row_height(fixed_key) if fixed_key is not None else 0
        if self.show_header:
            fixed_height += self.get_row_height(self._header_row_key)
        if y >= fixed_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + width, base)

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        styles = self._pass_styles
        if not styles:
            return super()._get_row_style(row_index, base_style)
        # Depends on the row only through header / fixed / odd-even.
        kind = (
            -1 if row_index == -1 else -2 if row_index < self.fixed_rows else row_index % 2,
            base_style,
        )
        style = styles.get(kind)
        if style is None:
            style = styles[kind] = super()._get_row_style(row_index, base_style)
        return style

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        version: object = self._row_version.get(row_key)
        if row_key is self._header_row_key:
            # Its version is its labels (a sort arrow moves between them).
            version = tuple(content_key(c.label) for c in self.ordered_columns)
        elif version is None:  # a row added some other way: Textual's own caching
            return super()._render_line(y, x1, x2, base_style)
        # Textual's own line key, with the row's version and place instead of the table-wide
        # update count (which any cell change bumps), and the column widths.
        key = (
            y,
            x1,
            x2,
            self.size.width,
            self.cursor_coordinate,
            self.hover_coordinate,
            base_style,
            self.cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            row_key,
            line_no,
            self._row_locations.get(row_key),
            version,
            self._column_widths(),
        )
        strip = self._lines_by_version.get(key)
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
            self._lines_by_version[key] = strip
        return strip

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        if row_index < 0 or column_index < 0:  # header and labels: few, left to Textual
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        shown = content_key(self._data.get(row_key, {}).get(column_key))
        if shown is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        # Everything the render depends on: the position too, as Textual puts the row and
        # column into the segments' meta (what a mouse click reports).
        key = (
            row_index,
            column_index,
            shown,
            width,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.rows[row_key].height,
        )
        lines = self._by_content.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._by_content[key] = lines
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # A theme or CSS change restyles every cell.
        self._by_content.clear()
        self._lines_by_version.clear()

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._by_content.clear()
        self._lines_by_version.clear()

    def clear(self, columns: bool = False) -> LiveTable:
        super().clear(columns)
        self._row_version.clear()
        return self
