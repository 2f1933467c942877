"""A log viewer that only renders the lines on screen, with search highlight and match jumps.

Logs can be large and grow every half second; like Textual's own `Log`, this uses the line
API (render_line) so the cost of a repaint is the height of the window, not the log.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

MAX_LINES = 100_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|\r")
MATCH = Style(reverse=True)
CURRENT = Style(bgcolor="yellow", color="black", bold=True)


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
        self._partial = ""
        self.query_text = ""
        self.only_matches = False
        self.current: int | None = None  # index into self.lines of the selected match
        self._view: list[int] | None = None  # line indices shown while filtering
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(1024)

    # ---- content

    def clear(self) -> None:
        self.lines.clear()
        self._partial = ""
        self.current = None
        self._changed()

    def append(self, text: str) -> None:
        """Add decoded output; a trailing partial line is shown and completed by later text."""
        if not text:
            return
        if self._partial and self.lines:
            self.lines.pop()
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        self.lines.extend(_ANSI.sub("", p) for p in pieces)
        if self._partial:
            self.lines.append(_ANSI.sub("", self._partial))
        if len(self.lines) > MAX_LINES:
            drop = len(self.lines) - MAX_LINES
            del self.lines[:drop]
            if self.current is not None:
                self.current = self.current - drop if self.current >= drop else None
        self._changed()
        if self.follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Only a move by the user (or a jump) changes scroll_y between appends.
        self.follow = new >= self.max_scroll_y

    # ---- search

    @property
    def matches(self) -> list[int]:
        if not self.query_text:
            return []
        q = self.query_text.lower()
        return [i for i, line in enumerate(self.lines) if q in line.lower()]

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
            top = self._view_to_line(int(self.scroll_y)) if self.visible_count() else 0
            pick = next((i for i in found if i >= top), found[0]) if forward else found[-1]
        elif forward:
            pick = next((i for i in found if i > self.current), found[0])
        else:
            pick = next((i for i in reversed(found) if i < self.current), found[-1])
        self.current = pick
        self.follow = False
        self._cache.clear()
        y = self._line_to_view(pick)
        if y is not None:
            self.scroll_to(y=max(0, y - self.size.height // 2), animate=False)
        self.refresh()
        return pick

    # ---- rendering

    def _changed(self) -> None:
        self._view = self.matches if self.only_matches and self.query_text else None
        self._cache.clear()
        width = max((cell_len(line) for line in self.lines[-2000:]), default=0)
        self.virtual_size = Size(max(width, self.virtual_size.width), self.visible_count())
        self.refresh()

    def visible_count(self) -> int:
        return len(self._view) if self._view is not None else len(self.lines)

    def _view_to_line(self, y: int) -> int:
        return self._view[y] if self._view is not None else y

    def _line_to_view(self, index: int) -> int | None:
        if self._view is None:
            return index
        try:
            return self._view.index(index)
        except ValueError:
            return None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if row >= self.visible_count():
            return Strip.blank(width, style)
        index = self._view_to_line(row)
        key = (index, hash(self.query_text))
        strip = self._cache.get(key)
        if strip is None:
            line = self.lines[index]
            text = Text(line, no_wrap=True, style=style)
            pattern = re.compile(re.escape(self.query_text), re.IGNORECASE)
            if self.query_text:
                text.highlight_regex(pattern, MATCH)
            if index == self.current:
                text.stylize(self.get_component_rich_style("logview--current-line"))
                text.highlight_regex(pattern, CURRENT)
            strip = Strip(text.render(self.app.console), cell_len(line))
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, row)
