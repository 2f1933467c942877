"""A log viewer that only renders the lines on screen, with search highlight and match jumps,
arrival times, wrapping and a tail.

Logs can be large and grow every half second; like Textual's own `Log`, this uses the line
API (render_line) so the cost of a repaint is the height of the window, not the log.

A screen row is a (line, piece) pair: without wrapping every line is one piece; with wrapping
a line takes as many rows as its width needs. The rows shown are the lines from `first` on
(the tail), or only the matching ones (matches only).
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

MAX_LINES = 100_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|\r")
MATCH = Style(reverse=True)
CURRENT = Style(bgcolor="yellow", color="black", bold=True)
STAMP = Style(dim=True)
STAMP_WIDTH = 9  # "HH:MM:SS "
NO_STAMP = "--:--:-- "  # read when the view opened: the log file keeps no times


class LogView(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"logview--current-line"}
    DEFAULT_CSS = """
    LogView > .logview--current-line { background: $accent 30%; }
    """

    follow: var[bool] = var(True)
    """Keep the newest line in view; off as soon as the user scrolls up, on again at the end."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.stamps: list[float | None] = []  # when each line arrived (None: already there)
        self._partial = ""
        self.query_text = ""
        self.only_matches = False
        self.show_times = False
        self.wrap = False
        self.first = 0  # lines before this index are hidden by the tail
        self.current: int | None = None  # index into self.lines of the selected match
        self._shown: list[int] | None = None  # line indices shown while filtering
        self._rows: tuple[list[int], list[int]] | None = None  # (line, piece) per row: wrap
        self._cache: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)

    # ---- content

    def clear(self) -> None:
        self.lines.clear()
        self.stamps.clear()
        self._partial = ""
        self.first = 0
        self.current = None
        self._changed()

    def append(self, text: str, when: float | None = None) -> None:
        """Add decoded output that arrived at `when` (None: it was in the file already); a
        trailing partial line is shown and completed by later text."""
        if not text:
            return
        stamp = when
        if self._partial and self.lines:
            self.lines.pop()
            stamp = self.stamps.pop()  # a line's time is when its first bytes came
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        for n, piece in enumerate(pieces):
            self.lines.append(_ANSI.sub("", piece))
            self.stamps.append(stamp if n == 0 else when)
        if self._partial:
            self.lines.append(_ANSI.sub("", self._partial))
            self.stamps.append(stamp if not pieces else when)
        if len(self.lines) > MAX_LINES:
            drop = len(self.lines) - MAX_LINES
            del self.lines[:drop]
            del self.stamps[:drop]
            self.first = max(0, self.first - drop)
            if self.current is not None:
                self.current = self.current - drop if self.current >= drop else None
        self._changed()
        if self.follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Only a move by the user (or a jump) changes scroll_y between appends.
        self.follow = new >= self.max_scroll_y

    # ---- display options

    def set_tail(self, count: int | None) -> None:
        """Show only the last `count` lines there are now (new ones still come); None: all."""
        self.first = 0 if count is None else max(0, len(self.lines) - count)
        if self.current is not None and self.current < self.first:
            self.current = None
        self._changed()
        self.scroll_end(animate=False, immediate=False, x_axis=False)

    def set_times(self, on: bool) -> None:
        self.show_times = on
        self._changed()

    def set_wrap(self, on: bool) -> None:
        self.wrap = on
        self.scroll_to(x=0, animate=False)
        self._changed()

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap:
            self._changed()

    # ---- search

    @property
    def matches(self) -> list[int]:
        if not self.query_text:
            return []
        q = self.query_text.lower()
        lines = self.lines
        return [i for i in range(self.first, len(lines)) if q in lines[i].lower()]

    def set_query(self, text: str) -> None:
        self.query_text = text
        self.current = None
        self._changed()

    def set_only_matches(self, on: bool) -> None:
        self.only_matches = on
        self._changed()

    def jump(self, forward: bool = True) -> int | None:
        """Select the next (or previous) match after the current one; return its line index."""
        found = self.matches
        if not found:
            self.current = None
            self._changed()
            return None
        if self.current is None:
            top = self._row_to_line(int(self.scroll_y))[0] if self.row_count() else 0
            pick = next((i for i in found if i >= top), found[0]) if forward else found[-1]
        elif forward:
            pick = next((i for i in found if i > self.current), found[0])
        else:
            pick = next((i for i in reversed(found) if i < self.current), found[-1])
        self.current = pick
        self.follow = False
        self._cache.clear()
        y = self._line_to_row(pick)
        if y is not None:
            self.scroll_to(y=max(0, y - self.size.height // 2), animate=False)
        self.refresh()
        return pick

    # ---- rows

    def _changed(self) -> None:
        filtering = self.only_matches and self.query_text
        self._shown = self.matches if filtering else None
        self._cache.clear()
        prefix = STAMP_WIDTH if self.show_times else 0
        if self.wrap:
            width = max(1, self.scrollable_content_region.width)
            rows_line: list[int] = []
            rows_piece: list[int] = []
            shown = self._shown if self._shown is not None else range(self.first, len(self.lines))
            for i in shown:
                count = max(1, -(-(prefix + cell_len(self.lines[i])) // width))
                rows_line.extend([i] * count)
                rows_piece.extend(range(count))
            self._rows = (rows_line, rows_piece)
            self.virtual_size = Size(width, len(rows_line))
        else:
            self._rows = None
            width = prefix + max((cell_len(line) for line in self.lines[-2000:]), default=0)
            # Never narrower than before: a long line that scrolled out keeps its scroll room.
            self.virtual_size = Size(max(width, self.virtual_size.width), self.visible_count())
        self.refresh()

    def visible_count(self) -> int:
        """How many lines are shown (a wrapped line counts once)."""
        return len(self._shown) if self._shown is not None else len(self.lines) - self.first

    def row_count(self) -> int:
        return len(self._rows[0]) if self._rows is not None else self.visible_count()

    def _row_to_line(self, y: int) -> tuple[int, int]:
        if self._rows is not None:
            return self._rows[0][y], self._rows[1][y]
        return (self._shown[y] if self._shown is not None else self.first + y), 0

    def _line_to_row(self, index: int) -> int | None:
        order = self._rows[0] if self._rows is not None else self._shown
        if order is None:
            return index - self.first if index >= self.first else None
        at = bisect_left(order, index)
        return at if at < len(order) and order[at] == index else None

    # ---- rendering

    def _strip(self, index: int) -> Strip:
        """The whole of line `index`, stamp included, styled (cached)."""
        key = (index, hash(self.query_text), self.show_times)
        strip = self._cache.get(key)
        if strip is not None:
            return strip
        style = self.rich_style
        line = self.lines[index]
        text = Text(line, no_wrap=True, style=style)
        pattern = re.compile(re.escape(self.query_text), re.IGNORECASE)
        if self.query_text:
            text.highlight_regex(pattern, MATCH)
        if index == self.current:
            text.stylize(self.get_component_rich_style("logview--current-line"))
            text.highlight_regex(pattern, CURRENT)
        if self.show_times:
            when = self.stamps[index]
            stamp = time.strftime("%H:%M:%S ", time.localtime(when)) if when else NO_STAMP
            text = Text.assemble((stamp, style + STAMP), text, no_wrap=True)
        strip = Strip(text.render(self.app.console), text.cell_len)
        self._cache[key] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if row >= self.row_count():
            return Strip.blank(width, style)
        index, piece = self._row_to_line(row)
        strip = self._strip(index)
        if self._rows is not None:
            start = piece * width
            return strip.crop_extend(start, start + width, style).apply_offsets(0, row)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, row)
