"""The terminal emulation model: pyte's Screen with scrollback, an alternate screen and a fast
path for plain lines. No Textual here; `terminal.py` draws what this holds.

Why not pyte as it is (GUIDE section 3):

- `HistoryScreen` is 4-5x slower than `Screen`, so lines are kept as they scroll off the top
  instead (`index`).
- pyte 0.8.2 has no alternate screen; modes 47/1047/1049 swap the row buffer here.
- pyte draws one character at a time (a namedtuple `_replace` per cell) and renumbers every row
  of its dict on each scroll. A `cat` of a big file is mostly plain ASCII lines ending in CR LF,
  so such runs (also with SGR colours among the text) are drawn in bulk, scrolling is a deque
  rotation, and rows drawn that way are kept as their text (a `str` in the default style, a
  `PlainRow` of text in one style, or a tuple of `PlainRow` runs) instead of a dict of cells,
  until something other than the renderer reads them.
"""

from __future__ import annotations

import copy
import functools
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, Cursor, StaticDefaultDict

Row = StaticDefaultDict[int, Char]

DECCKM = 1 << 5  # application cursor keys; pyte shifts private modes left by 5
BRACKETED_PASTE = 2004 << 5
MOUSE_X10 = 1000 << 5
MOUSE_BUTTONS = 1002 << 5
MOUSE_ANY = 1003 << 5
MOUSE_SGR = 1006 << 5
MOUSE_MODES = frozenset({MOUSE_X10, MOUSE_BUTTONS, MOUSE_ANY})

_ALT_47, _ALT_1047, _ALT_1049, _SAVE_CURSOR_1048 = 47, 1047, 1049, 1048
_ALT_MODES = frozenset({_ALT_47, _ALT_1047, _ALT_1049, _SAVE_CURSOR_1048})

# C0/C1 controls reaching `draw` (pyte's text pattern lets most of them through) would make pyte
# stop drawing the rest of the run; a terminal ignores them.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
# Whole lines of printable ASCII, each ended by CR LF: what `cat`, `seq` and logs produce.
_PLAIN_LINES = re.compile("(?:[ -~]*\r\n)+")
# The same with SGR sequences among the text: coloured `ls`, `grep`, logs. Possessive, so a
# line that turns out to hold something else fails in linear time, without backtracking.
_STYLED_LINES = re.compile("(?:(?:[ -~]++|\x1b\\[[0-9;]*+m)*+\r\n)+")
_SGR_SPLIT = re.compile("\x1b\\[([0-9;]*)m")
# A complete CSI sequence with plain numeric parameters (SGR colours, cursor moves, erases).
_CSI = re.compile("\x1b\\[(\\??)([0-9;]*)([@-~])")


class PlainRow(NamedTuple):
    """A row of printable ASCII in one style, starting at column 0."""

    text: str
    attrs: Char


# A row as stored: a pyte row; or, for rows drawn in bulk, plain text in the default style,
# text in one style, runs of styled text from column 0 (a tuple of PlainRow); or blank.
Runs = tuple[PlainRow, ...]
RawRow = Row | str | PlainRow | Runs | None
HistoryRow = RawRow
_PLAIN_STYLE = Char(" ")[1:]  # the style fields of an unstyled cell


class _Cells(dict[str, Char]):
    """Char cells of one style, made once per character: `_replace` per cell is pyte's cost."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, data: str) -> Char:
        cell = self.attrs._replace(data=data)
        self[data] = cell
        return cell


class RowBuffer:
    """The screen's rows behind the dict interface pyte uses, with O(1) full-screen scrolling.

    A slot holds any `RawRow`; reading a slot through `[]` turns it into a pyte row, so pyte's
    own methods only ever see dicts. The renderer reads `raw()`, which leaves it as it is.
    """

    __slots__ = ("_materialize", "_rows")

    def __init__(self, lines: int, materialize: Callable[[RawRow], Row]) -> None:
        self._rows: deque[RawRow] = deque([None] * lines)
        self._materialize = materialize

    def _fit(self, y: int) -> None:
        if y >= len(self._rows):
            self._rows.extend([None] * (y + 1 - len(self._rows)))

    def __getitem__(self, y: int) -> Row:
        self._fit(y)
        row = self._rows[y]
        if row.__class__ is not StaticDefaultDict:
            row = self._materialize(row)
            self._rows[y] = row
        return row

    def __setitem__(self, y: int, row: RawRow) -> None:
        self._fit(y)
        self._rows[y] = row

    def __contains__(self, y: object) -> bool:
        return isinstance(y, int) and 0 <= y < len(self._rows) and self._rows[y] is not None

    def __iter__(self) -> Iterator[int]:
        return iter([y for y, row in enumerate(self._rows) if row is not None])

    def __len__(self) -> int:
        return len(self._rows)

    def pop(self, y: int, default: Any = None) -> Any:
        if y not in self:
            return default
        row = self._rows[y]
        self._rows[y] = None
        return row

    def keys(self) -> list[int]:
        return list(self)

    def values(self) -> list[Row]:
        return [self[y] for y in self]

    def items(self) -> list[tuple[int, Row]]:
        return [(y, self[y]) for y in self]

    def clear(self) -> None:
        self._rows = deque([None] * len(self._rows))

    def raw(self, y: int) -> RawRow:
        return self._rows[y] if 0 <= y < len(self._rows) else None

    def scroll_up(self) -> RawRow:
        """Drop the top row (returned) and add a blank one at the bottom."""
        row = self._rows.popleft()
        self._rows.append(None)
        return row

    def set_lines(self, lines: int) -> None:
        while len(self._rows) > lines:
            self._rows.pop()
        self._fit(lines - 1)

    def crop_columns(self, columns: int) -> None:
        for y, row in enumerate(self._rows):
            if row is None:
                continue
            if isinstance(row, str):
                self._rows[y] = row[:columns]
                continue
            if isinstance(row, PlainRow):
                if len(row.text) > columns:
                    self._rows[y] = PlainRow(row.text[:columns], row.attrs)
                continue
            cells = self[y]
            for x in [x for x in cells if x >= columns]:
                del cells[x]


class _AltSave(NamedTuple):
    buffer: RowBuffer
    cursor: Cursor | None


class VTScreen(pyte.Screen):
    """A pyte screen with scrollback (`history`), an alternate screen and bulk line drawing."""

    def __init__(
        self,
        columns: int,
        lines: int,
        scrollback: int = 10_000,
        on_reply: Callable[[str], None] | None = None,
    ) -> None:
        # pyte's __init__ calls reset(), which reads these.
        self.history: deque[HistoryRow] = deque(maxlen=scrollback)
        self.pushed = 0  # lines ever added to history; lets a scrolled-back view hold still
        self._alt: _AltSave | None = None
        self._saved_1048: Cursor | None = None
        self._cells: dict[Char, _Cells] = {}
        self._sgr: dict[tuple[Char, bool, tuple[int, ...]], Char] = {}
        self._on_reply = on_reply
        # Absolute numbers (pushed + y) of main-screen rows that continue on the next row:
        # the text wrapped there at the right margin. A resize re-wraps such lines.
        self.wrapped: set[int] = set()
        self._drawing = False
        super().__init__(columns, lines)
        self._use(RowBuffer(lines, self._materialize))

    # ---- helpers

    def _use(self, rows: RowBuffer) -> None:
        """Make `rows` the buffer pyte's own methods read and write."""
        self.rows = rows
        # pyte declares `buffer` as a concrete Dict; its methods only use the mapping
        # interface, which RowBuffer implements (with cheap scrolling).
        self.buffer = rows  # type: ignore[assignment]

    @property
    def alternate(self) -> bool:
        return self._alt is not None

    def _cells_for(self, attrs: Char) -> _Cells:
        cells = self._cells.get(attrs)
        if cells is None:
            if len(self._cells) > 1024:  # programs cycling through truecolour styles
                self._cells.clear()
            cells = self._cells[attrs] = _Cells(attrs)
        return cells

    def _materialize(self, raw: RawRow) -> Row:
        row: Row = StaticDefaultDict(self.default_char)
        if raw:
            self._paint(row, raw)
        return row

    def _paint(self, row: Row, raw: RawRow) -> None:
        """Write a stored row's cells into a pyte row."""
        if isinstance(raw, dict):
            row.update(raw)
            return
        runs = runs_of(raw)
        if runs is None:
            return
        x = 0
        for text, attrs in runs:
            get = self._cells_for(attrs).__getitem__
            row.update(zip(range(x, x + len(text)), map(get, text), strict=True))
            x += len(text)

    def _push(self, row: RawRow) -> None:
        if self._alt is not None:
            return  # what scrolls off a full-screen program's page is not history
        self.history.append(row if row else None)
        self.pushed += 1

    def _mark_wrap(self, y: int) -> None:
        if self._alt is None:
            self.wrapped.add(self.pushed + y)
            if len(self.wrapped) > 2 * (self.history.maxlen or 10_000) + 4096:
                first = self.pushed - len(self.history)
                self.wrapped = {a for a in self.wrapped if a >= first}

    def _unmark(self, top: int, bottom: int) -> None:
        """Forget wraps of screen rows top..bottom (erased or moved)."""
        if self._alt is None and self.wrapped:
            self.wrapped.difference_update(range(self.pushed + top, self.pushed + bottom + 1))

    def _full_margins(self) -> bool:
        m = self.margins
        return m is None or (m.top == 0 and m.bottom == self.lines - 1)

    def write_process_input(self, data: str) -> None:
        if self._on_reply is not None:
            self._on_reply(data)

    # ---- pyte overrides

    def reset(self) -> None:
        alt = getattr(self, "_alt", None)
        if alt is not None:  # RIS returns to the normal screen, as in xterm
            self._alt = None
            self._use(alt.buffer)
        super().reset()
        self.wrapped = set()

    def linefeed(self) -> None:
        if self._drawing:  # inside pyte's own draw, a line feed is a wrap
            self._mark_wrap(self.cursor.y)
        super().linefeed()

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        self._unmark(self.cursor.y, self.cursor.y)
        super().erase_in_line(how, private)

    def insert_lines(self, count: int | None = None) -> None:
        self._unmark(0, self.lines - 1)
        super().insert_lines(count)

    def delete_lines(self, count: int | None = None) -> None:
        self._unmark(0, self.lines - 1)
        super().delete_lines(count)

    def select_graphic_rendition(self, *attrs: int) -> None:
        # pyte rebuilds the style through a dict and `_replace` on every SGR; programs repeat a
        # handful of them, so remember the outcome of each (style before, parameters).
        key = (self.cursor.attrs, mo.DECSCNM in self.mode, attrs)
        after = self._sgr.get(key)
        if after is None:
            super().select_graphic_rendition(*attrs)
            if len(self._sgr) > 4096:
                self._sgr.clear()
            after = self._sgr[key] = self.cursor.attrs
        self.cursor.attrs = after

    def draw(self, data: str) -> None:
        charset = self.g1_charset if self.charset else self.g0_charset
        if not data.isprintable():
            data = _CONTROLS.sub("", data)
        if not data.isascii() or charset is not cs.LAT1_MAP or mo.IRM in self.mode:
            self._drawing = True
            try:
                super().draw(data)
            finally:
                self._drawing = False
            return
        cursor = self.cursor
        columns = self.columns
        x = cursor.x
        if x + len(data) <= columns:  # the usual case: no wrap
            self.rows[cursor.y].update(
                zip(
                    range(x, x + len(data)),
                    map(self._cells_for(cursor.attrs).__getitem__, data),
                    strict=True,
                )
            )
            cursor.x = x + len(data)
            self.dirty.add(cursor.y)
            return
        get = self._cells_for(cursor.attrs).__getitem__
        wrap = mo.DECAWM in self.mode
        start, end = 0, len(data)
        while start < end:
            if cursor.x >= columns:
                if not wrap:  # each further character overwrites the last column
                    self.rows[cursor.y][columns - 1] = get(data[-1])
                    cursor.x = columns
                    break
                self.dirty.add(cursor.y)
                self._mark_wrap(cursor.y)
                self.carriage_return()
                self.linefeed()
            x = cursor.x
            take = min(end - start, columns - x)
            self.rows[cursor.y].update(
                zip(range(x, x + take), map(get, data[start : start + take]), strict=True)
            )
            start += take
            cursor.x = x + take
        self.dirty.add(cursor.y)

    def index(self) -> None:
        margins = self.margins
        bottom = self.lines - 1 if margins is None else margins.bottom
        if self.cursor.y != bottom or not self._full_margins():
            super().index()
            return
        self.dirty.update(range(self.lines))
        self._push(self.rows.scroll_up())

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:  # xterm's "erase saved lines", sent by `clear`
            self.history.clear()
        if how == 0:
            self._unmark(self.cursor.y, self.lines - 1)
        elif how == 1:
            self._unmark(0, self.cursor.y)
        else:
            self._unmark(0, self.lines - 1)
        super().erase_in_display(how, *args, **kwargs)

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and _ALT_MODES.intersection(modes):
            if _SAVE_CURSOR_1048 in modes or _ALT_1049 in modes:
                self._saved_1048 = copy.copy(self.cursor)
            if {_ALT_47, _ALT_1047, _ALT_1049}.intersection(modes):
                self._enter_alt(clear=_ALT_47 not in modes)
            modes = tuple(m for m in modes if m not in _ALT_MODES)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and _ALT_MODES.intersection(modes):
            if {_ALT_47, _ALT_1047, _ALT_1049}.intersection(modes):
                self._leave_alt()
            if _SAVE_CURSOR_1048 in modes or _ALT_1049 in modes:
                saved = self._saved_1048
                if saved is not None:
                    self.cursor = copy.copy(saved)
                    self.ensure_hbounds()
                    self.ensure_vbounds()
            modes = tuple(m for m in modes if m not in _ALT_MODES)
        super().reset_mode(*modes, **kwargs)

    def _enter_alt(self, clear: bool) -> None:
        if self._alt is not None:
            if clear:
                self.rows.clear()
            return
        self._alt = _AltSave(self.rows, None)
        self._use(RowBuffer(self.lines, self._materialize))
        self.dirty.update(range(self.lines))

    def _leave_alt(self) -> None:
        if self._alt is None:
            return
        self._use(self._alt.buffer)
        self._alt = None
        self.dirty.update(range(self.lines))

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize keeping the cursor's line on screen: rows leave at the top (into history)
        only when the cursor would otherwise fall below the new bottom. pyte instead always
        drops rows from the top, which loses a shell prompt sitting near the top."""
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        if columns != self.columns and self._alt is None:
            self._reflow(columns)
        if lines < self.lines:
            drop = max(0, self.cursor.y - (lines - 1))
            for _ in range(drop):
                self._push(self.rows.scroll_up())
            self.cursor.y -= drop
            saved = self._saved_1048
            if self._alt is not None and saved is not None:
                # The normal screen's prompt is where its saved cursor is: keep that row too.
                drop = max(0, saved.y - (lines - 1))
                for _ in range(drop):
                    row = self._alt.buffer.scroll_up()
                    self.history.append(row if row else None)
                    self.pushed += 1
                saved.y -= drop
        self.rows.set_lines(lines)
        if self._alt is not None:
            self._alt.buffer.set_lines(lines)
        if columns < self.columns:
            self.rows.crop_columns(columns)
            if self._alt is not None:
                self._alt.buffer.crop_columns(columns)
        else:
            # pyte sets tab stops once, at reset, for the width it had then.
            self.tabstops |= {t for t in range(8, columns, 8) if t >= self.columns}
        self.tabstops = {t for t in self.tabstops if t < columns}
        self.lines, self.columns = lines, columns
        self.margins = None
        self.cursor.x = min(self.cursor.x, columns)
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))

    # ---- reflow

    def _reflow(self, columns: int) -> None:
        """Re-wrap the history and the screen at a new width: rows joined by a wrap become
        one line again, then each line is cut at `columns`. The cursor stays on its
        character; the screen shows the last rows, the rest is history. Lines that neither
        wrapped nor are too long keep their row as it is (most of them: cheap)."""
        old_columns = self.columns
        history = list(self.history)
        first = self.pushed - len(history)
        screen_rows = [self.rows.raw(y) for y in range(self.lines)]
        last = self.cursor.y
        for y in range(self.lines - 1, last, -1):
            if screen_rows[y]:
                last = y
                break
        rows = history + screen_rows[: last + 1]
        cursor_index = len(history) + self.cursor.y
        wrapped = self.wrapped
        out: list[RawRow] = []
        out_wraps: list[int] = []
        cursor: tuple[int, int] = (len(history) + self.cursor.y, self.cursor.x)
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) - 1 and first + j in wrapped:
                j += 1
            if j == i and _row_width(rows[i], self.default_char) <= columns:
                if i == cursor_index:
                    cursor = (len(out), self.cursor.x)
                out.append(rows[i])
                i += 1
                continue
            cells: list[Char] = []
            cursor_at: int | None = None
            for k in range(i, j + 1):
                if k == cursor_index:
                    cursor_at = len(cells) + self.cursor.x
                row_cells = self._cells_of(rows[k])
                if k < j:  # a wrapped row is full by definition
                    row_cells = row_cells[:old_columns]
                    row_cells += [self.default_char] * (old_columns - len(row_cells))
                cells += row_cells
            while cells and cells[-1] == self.default_char:
                cells.pop()
            start = len(out)
            chunks = _cut(cells, columns)
            if cursor_at is not None:
                r, x = divmod(cursor_at, columns)
                pending = self.cursor.x >= old_columns
                if pending and x == 0 and r == len(chunks) and r and cursor_at == len(cells):
                    r, x = r - 1, columns  # the next character wraps: still so
                chunks += [[]] * (r + 1 - len(chunks))
                cursor = (start + r, x)
            for n, chunk in enumerate(chunks):
                out.append(self._row_from_cells(chunk))
                if n < len(chunks) - 1:
                    out_wraps.append(start + n)
            i = j + 1
        top = max(0, min(cursor[0], len(out) - self.lines))
        keep = self.history.maxlen
        dropped = max(0, top - keep) if keep is not None else 0
        self.history = deque(out[dropped:top], maxlen=keep)
        self.pushed = first + top
        self.rows._rows = deque(out[top : top + self.lines])
        self.rows.set_lines(self.lines)
        self.wrapped = {first + n for n in out_wraps if n >= dropped}
        self.cursor.y = cursor[0] - top
        self.cursor.x = min(cursor[1], columns)
        self.dirty.update(range(self.lines))

    def _cells_of(self, raw: RawRow) -> list[Char]:
        if isinstance(raw, dict):
            width = max(raw) + 1 if raw else 0
            return [raw[x] for x in range(width)]
        cells: list[Char] = []
        for text, attrs in runs_of(raw) or ():
            get = self._cells_for(attrs).__getitem__
            cells += map(get, text)
        return cells

    def _row_from_cells(self, cells: list[Char]) -> RawRow:
        if not cells:
            return None
        if all(c[1:] == _PLAIN_STYLE and len(c.data) == 1 for c in cells):
            return "".join([c.data for c in cells])  # compact, as the bulk path keeps them
        row: Row = StaticDefaultDict(self.default_char)
        row.update(enumerate(cells))
        return row

    # ---- bulk path

    def can_take_lines(self) -> bool:
        """Whether `draw_lines` would do exactly what pyte does with the same bytes."""
        return (
            self.cursor.x == 0
            and self._full_margins()
            and mo.DECAWM in self.mode
            and mo.IRM not in self.mode
            and (self.g1_charset if self.charset else self.g0_charset) is cs.LAT1_MAP
        )

    def draw_lines(self, lines: list[str]) -> None:
        """Draw printable-ASCII lines, each followed by CR LF, from column 0."""
        columns = self.columns
        wraps: list[int] = []
        if max(map(len, lines), default=0) > columns:  # long lines wrap onto several rows
            parts: list[str] = []
            for line in lines:
                split = _split(line, columns) if line else [""]
                wraps.extend(range(len(parts), len(parts) + len(split) - 1))
                parts += split
            lines = parts
        attrs = self.cursor.attrs
        if attrs[1:] == _PLAIN_STYLE:  # the common case: the strings are the rows
            self._place_rows(lines, wraps)
        else:
            self._place_rows([PlainRow(line, attrs) if line else None for line in lines], wraps)

    def draw_styled_lines(self, lines: list[str]) -> None:
        """Draw lines of printable ASCII and SGR sequences, each followed by CR LF, from
        column 0, wrapping at the right margin as `draw` does."""
        columns = self.columns
        sgr = self.select_graphic_rendition
        params = _sgr_params
        cursor = self.cursor
        rows: list[RawRow] = []
        wraps: list[int] = []
        for line in lines:
            row: list[PlainRow] = []
            x = 0
            for k, part in enumerate(_SGR_SPLIT.split(line)):  # text, parameters, text, ...
                if k % 2:
                    sgr(*params(part))
                    continue
                if x + len(part) <= columns:  # no wrap: the usual case
                    if part:
                        row.append(PlainRow(part, cursor.attrs))
                        x += len(part)
                    continue
                while part:
                    if x == columns:  # a character past the margin wraps, as in `draw`
                        wraps.append(len(rows))
                        rows.append(self._row_of(row))
                        row, x = [], 0
                    take = part[: columns - x]
                    row.append(PlainRow(take, cursor.attrs))
                    x += len(take)
                    part = part[len(take) :]
            rows.append(self._row_of(row))
        self._place_rows(rows, wraps)

    @staticmethod
    def _row_of(runs: list[PlainRow]) -> RawRow:
        """A fresh row holding runs of text laid from column 0."""
        if not runs:
            return None
        if len(runs) == 1:
            text, attrs = runs[0]
            return text if attrs[1:] == _PLAIN_STYLE else runs[0]
        return tuple(runs)

    def _place_rows(self, rows: Sequence[RawRow], wraps: Sequence[int] = ()) -> None:
        """Put one row per line from the cursor down, with a line feed after each, as CR LF
        would: each new row is laid over the row under the cursor, which is blank once the
        screen has scrolled. `wraps`: indexes of rows that continue on the next one."""
        bottom = self.lines - 1
        y = first_y = self.cursor.y
        count = len(rows)
        if self._alt is None:
            # Row i lands on absolute line pushed + first_y + i whatever scrolls happen.
            base = self.pushed + first_y
            if self.wrapped:
                self.wrapped.difference_update(range(base, base + count))
            self.wrapped.update(base + i for i in wraps)
        i = 0
        while i < count and y < bottom:
            self._overlay(y, rows[i])
            y += 1
            i += 1
        self.cursor.x = 0
        if i == count:
            self.cursor.y = y
            self.dirty.update(range(first_y, y + 1))
            return
        # The rest starts on the bottom row and scrolls once per row. Laid end to end, the
        # screen's rows, then the remaining new rows, then a blank: the first `scrolls` of
        # those go to history and the last `self.lines` are the new screen.
        self._overlay(bottom, rows[i])
        laid: list[RawRow] = [row if row else None for row in self.rows._rows]
        laid += rows[i + 1 :]
        laid.append(None)
        scrolls = count - i
        if self._alt is None:
            keep = self.history.maxlen
            first = 0 if keep is None else max(0, scrolls - keep)
            self.history.extend(laid[first:scrolls])
            self.pushed += scrolls
        self.rows._rows = deque(laid[scrolls:])
        self.cursor.y = bottom
        self.dirty.update(range(self.lines))

    def _overlay(self, y: int, new: RawRow) -> None:
        """Write a fresh row's cells over row y, keeping old cells beyond them."""
        if not new:
            return
        slots = self.rows._rows
        old = slots[y]
        if not old or (_compact_text(new) is not None and _covers(new, old)):
            slots[y] = new
            return
        self._paint(self.rows[y], new)


_PLAIN = Char(" ")


def runs_of(row: RawRow) -> Runs | None:
    """A compact row's runs of text from column 0; None for a pyte row."""
    if row is None:
        return ()
    if isinstance(row, str):
        return (PlainRow(row, _PLAIN),)
    if isinstance(row, PlainRow):
        return (row,)
    if isinstance(row, dict):
        return None
    return row


def _compact_text(row: RawRow) -> str | None:
    if isinstance(row, str):
        return row
    if isinstance(row, PlainRow):
        return row.text
    return None


def _covers(new: RawRow, old: RawRow) -> bool:
    """Whether compact row `new` hides every cell of compact row `old` in the same style."""
    new_text, old_text = _compact_text(new), _compact_text(old)
    if new_text is None or old_text is None or len(new_text) < len(old_text):
        return False
    new_style = new.attrs if isinstance(new, PlainRow) else None
    old_style = old.attrs if isinstance(old, PlainRow) else None
    return new_style == old_style or len(old_text) == 0


@functools.lru_cache(maxsize=1024)
def _sgr_params(text: str) -> tuple[int, ...]:
    """SGR parameters as pyte's parser reads them ("" -> 0, capped at 9999)."""
    return tuple(min(int(p or 0), 9999) for p in text.split(";"))


def _row_width(row: RawRow, blank: Char) -> int:
    """Columns a row uses, trailing blanks of the default style not counted."""
    if isinstance(row, dict):
        x = max(row) if row else -1
        while x >= 0 and row[x] == blank:
            x -= 1
        return x + 1
    return sum(len(run.text) for run in runs_of(row) or ())


def _cut(cells: list[Char], columns: int) -> list[list[Char]]:
    """Cells in rows of `columns`; a wide character is not split from its second half."""
    chunks: list[list[Char]] = []
    start = 0
    while start < len(cells):
        end = min(start + columns, len(cells))
        if end < len(cells) and cells[end].data == "" and end - start > 1:
            end -= 1  # the next cell is the right half of a wide character: keep them together
        chunks.append(cells[start:end])
        start = end
    return chunks or [[]]


def _split(line: str, columns: int) -> list[str]:
    return [line[i : i + columns] for i in range(0, len(line), columns)]


class VTStream(pyte.ByteStream):
    """pyte's ByteStream with the common cases dispatched without its per-character parser:
    runs of whole plain lines go to `draw_lines`, and CR, LF, BS, HT, BEL in the ground state
    call the screen directly (what the parser would do, one generator send fewer)."""

    def __init__(self, screen: VTScreen) -> None:
        super().__init__(screen)
        self.screen = screen
        self._direct: dict[str, Callable[[], None]] = {
            "\r": screen.carriage_return,
            "\n": screen.linefeed,
            "\x0b": screen.linefeed,
            "\x0c": screen.linefeed,
            "\x08": screen.backspace,
            "\t": screen.tab,
            "\x07": screen.bell,
        }
        self._csi: dict[str, Callable[..., None]] = {
            final: getattr(screen, name) for final, name in self.csi.items()
        }

    # pyte's ByteStream.feed takes bytes where its base Stream.feed takes str (pyte ignores
    # the same override error in its own source); this keeps ByteStream's signature.
    def feed(self, data: bytes) -> None:  # type: ignore[override]
        if self.use_utf8:
            self.feed_text(self.utf8_decoder.decode(data))
        else:
            self.feed_text(data.decode("latin-1"))

    def feed_text(self, data: str) -> None:
        screen = self.screen
        direct = self._direct
        send = self._send_to_parser
        match_text = self._text_pattern.match
        match_lines = _PLAIN_LINES.match
        match_styled = _STYLED_LINES.match
        match_csi = _CSI.match
        csi = self._csi
        plain = self._taking_plain_text
        offset, length = 0, len(data)
        while offset < length:
            if not plain:
                plain = send(data[offset])
                offset += 1
                continue
            if screen.cursor.x == 0 and screen.can_take_lines():
                m = match_lines(data, offset)
                if m is not None:
                    lines = m.group().split("\r\n")
                    lines.pop()
                    screen.draw_lines(lines)
                    offset = m.end()
                    continue
                m = match_styled(data, offset)
                if m is not None:
                    lines = m.group().split("\r\n")
                    lines.pop()
                    screen.draw_styled_lines(lines)
                    offset = m.end()
                    continue
            m = match_text(data, offset)
            if m is not None:
                screen.draw(m.group())
                offset = m.end()
                continue
            char = data[offset]
            if char == "\x1b":
                m = match_csi(data, offset)
                if m is not None:
                    # Same parameters and dispatch as pyte's parser, without a generator send
                    # per byte: coloured output is mostly SGR sequences.
                    private, params, final = m.groups()
                    control = csi.get(final, screen.debug)
                    args = _sgr_params(params)
                    if private:
                        control(*args, private=True)
                    else:
                        control(*args)
                    offset = m.end()
                    continue
            offset += 1
            handler = direct.get(char)
            if handler is not None:
                handler()
            else:
                plain = send(char)
        self._taking_plain_text = plain


class VirtualTerminal:
    """A screen and its stream: feed bytes in, read rows and modes out."""

    def __init__(
        self,
        columns: int = 80,
        lines: int = 24,
        scrollback: int = 10_000,
        on_reply: Callable[[bytes], None] | None = None,
    ) -> None:
        reply = (lambda s: on_reply(s.encode())) if on_reply is not None else None
        self.screen = VTScreen(columns, lines, scrollback=scrollback, on_reply=reply)
        self.stream = VTStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)

    def resize(self, columns: int, lines: int) -> None:
        self.screen.resize(lines=lines, columns=columns)

    def mode(self, mode: int) -> bool:
        return mode in self.screen.mode

    def row(self, y: int) -> RawRow:
        return self.screen.rows.raw(y)

    def display_lines(self) -> list[str]:
        return [row_text(self.row(y), self.screen.columns) for y in range(self.screen.lines)]

    def history_lines(self) -> list[str]:
        return [row_text(row, None) for row in self.screen.history]


def row_text(row: RawRow, columns: int | None) -> str:
    """The characters of a row, trailing blanks removed."""
    if not isinstance(row, dict):
        runs = runs_of(row) or ()
        text = "".join([run.text for run in runs])
        return (text[:columns] if columns is not None else text).rstrip()
    if not row:
        return ""
    width = max(row) + 1
    if columns is not None:
        width = min(width, columns)
    return "".join([row[x].data for x in range(width)]).rstrip()
