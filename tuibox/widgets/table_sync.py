"""Bring a DataTable to a wanted list of rows by editing it in place.

Clearing and refilling a table every second loses the cursor and the scroll position and
repaints everything; here unchanged cells are left alone, rows are added or removed by key, and
the order is fixed with one `sort`, so a live list does not flicker or jump under the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


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
                    grows = cell_len(cell_key(new)) > table.columns[column].content_width  # type: ignore[index]
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
