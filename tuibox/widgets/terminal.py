"""TerminalPane: a terminal emulator widget on a pty master fd that someone else opened.

The pane never starts a process: the caller passes the master fd and, if it is the parent, the
child's pid (the runtime's exec for a box, `ptyspawn.spawn_local` in tests). The pane reads the
fd from the event loop (`add_reader`, at most 64 KiB per wakeup), feeds `vt_screen`, and
repaints at most ~60 times a second, only the rows that changed (line API, cached strips).

Keys go to the program. Textual 8 takes ctrl+q, ctrl+p and tab before a focused widget sees
them, so while the program runs the pane declares every key its own (`check_consume_key`,
which hides the ancestors' bindings for them) and claims those three with priority bindings.
Two keys are left to the user: the detach key (ctrl+] by default), shown in the footer, and
the zoom key (alt+z, the same key as on the list; a plain `z` goes to the program).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import signal
import time
from typing import ClassVar

from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tuibox.asciicast import CastWriter
from tuibox.widgets.ptyspawn import set_window_size
from tuibox.widgets.vt_keys import (
    MOUSE_MOVE,
    MOUSE_PRESS,
    MOUSE_RELEASE,
    encode_key,
    encode_mouse,
    normalize_key,
)
from tuibox.widgets.vt_screen import (
    BRACKETED_PASTE,
    DECCKM,
    MOUSE_ANY,
    MOUSE_BUTTONS,
    MOUSE_MODES,
    MOUSE_SGR,
    RawRow,
    VirtualTerminal,
    row_text,
    runs_of,
)

DEFAULT_DETACH_KEY = "ctrl+right_square_bracket"
ZOOM_KEY = "alt+z"
READ_BUDGET = 64 * 1024
FRAME = 1 / 60
WHEEL_LINES = 3

SELECTION_STYLE = Style(color="bright_white", bgcolor="blue")
MATCH_STYLE = Style(color="black", bgcolor="yellow")
CURRENT_MATCH_STYLE = Style(color="black", bgcolor="bright_magenta", bold=True)

# A point of the whole text: (absolute line, column). Absolute lines count every line that
# ever entered history, so they stay put while output scrolls the screen.
Point = tuple[int, int]
Match = tuple[int, int, int]  # absolute line, start column, end column

# pyte colour names -> Rich's; anything else pyte produces is six hex digits.
_NAMED = {
    "black": "black",
    "red": "red",
    "green": "green",
    "brown": "yellow",
    "blue": "blue",
    "magenta": "magenta",
    "cyan": "cyan",
    "white": "white",
    "brightblack": "bright_black",
    "brightred": "bright_red",
    "brightgreen": "bright_green",
    "brightbrown": "bright_yellow",
    "brightblue": "bright_blue",
    "brightmagenta": "bright_magenta",
    "brightcyan": "bright_cyan",
    "brightwhite": "bright_white",
}


def _color(name: str) -> Color | None:
    if name == "default":
        return None
    named = _NAMED.get(name)
    try:
        return Color.parse(named if named is not None else f"#{name}")
    except Exception:
        return None


class _Styles:
    """Rich styles for pyte cell attributes, made once per distinct attribute set."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], Style] = {}

    def __call__(self, key: tuple[object, ...]) -> Style:
        style = self._cache.get(key)
        if style is None:
            fg, bg, bold, italics, underscore, strike, reverse, blink = key
            style = Style(
                color=_color(str(fg)),
                bgcolor=_color(str(bg)),
                bold=bool(bold) or None,
                italic=bool(italics) or None,
                underline=bool(underscore) or None,
                strike=bool(strike) or None,
                reverse=bool(reverse) or None,
                blink=bool(blink) or None,
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = style
        return style


def row_segments(row: RawRow, width: int, style_of: _Styles) -> list[Segment]:
    """One row as Rich segments, consecutive cells of one style merged."""
    if not row or width <= 0:
        return []
    if isinstance(row, str):
        return [Segment(row[:width])]
    segments: list[Segment] = []
    if not isinstance(row, dict):
        room = width
        for run, attrs in runs_of(row) or ():
            if room <= 0:
                break
            segments.append(Segment(run[:room], style_of(attrs[1:])))
            room -= len(run)
        return segments
    last = min(max(row), width - 1)
    text: list[str] = []
    key: tuple[object, ...] | None = None
    for x in range(last + 1):
        cell = row[x]
        cell_key = cell[1:]
        if cell_key != key:
            if text and key is not None:
                segments.append(Segment("".join(text), style_of(key)))
                text = []
            key = cell_key
        if cell.data:  # "" is the second half of a wide character
            text.append(cell.data)
    if text and key is not None:
        segments.append(Segment("".join(text), style_of(key)))
    return segments


def _with_cursor(strip: Strip, x: int, width: int) -> Strip:
    if not 0 <= x < width:
        return strip
    before, cell, after = strip.divide([x, x + 1, width])
    reversed_already = any(seg.style is not None and seg.style.reverse for seg in cell)
    cursor = Style(reverse=not reversed_already)
    # The cursor's reverse must win over the cell's own, so it is added last.
    shown = Strip([Segment(seg.text, (seg.style or Style()) + cursor) for seg in cell])
    return Strip.join([before, shown, after])


def _highlight(strip: Strip, ranges: list[tuple[int, int, Style]], width: int) -> Strip:
    """`strip` with each [start, end) range of cells drawn in its style, over the cell's own."""
    for start, end, style in ranges:
        start, end = max(0, start), min(width, end)
        if start >= end:
            continue
        before, middle, after = strip.divide([start, end, width])
        shown = Strip([Segment(seg.text, (seg.style or Style()) + style) for seg in middle])
        strip = Strip.join([before, shown, after])
    return strip


class PaneMessage(Message):
    """What a pane tells its owner: `control` is the pane (so `@on(..., "#id")` works)."""

    def __init__(self, pane: TerminalPane) -> None:
        super().__init__()
        self.pane = pane

    @property
    def control(self) -> TerminalPane:
        return self.pane


class TerminalPane(Widget, can_focus=True):
    """A terminal on a pty master fd. Posts `Detached` and `Exited`."""

    # Textual's text selection reads a widget's `render()`, which a line API widget lacks.
    ALLOW_SELECT = False

    DEFAULT_CSS = """
    TerminalPane {
        width: 1fr;
        height: 1fr;
        background: $background;
        color: $foreground;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            DEFAULT_DETACH_KEY,
            "detach",
            "Detach",
            # No key_display: Textual spells the key itself, so a remapped key shows as itself.
            priority=True,
            id="terminal.detach",
        ),
        # Zoom from inside: the owner toggles it; alt+z (ESC z) is bound by neither readline
        # nor vi, so a program hardly misses it.
        Binding(ZOOM_KEY, "zoom", "Zoom", priority=True, id="terminal.zoom"),
        # Taken by the app or screen before the focused widget sees them; the program gets them.
        Binding(
            "alt+r",
            "record",
            "Record",
            priority=True,
            id="terminal.record",
            tooltip="Start or stop recording this pane (asciicast, under the data root)",
        ),
        Binding(
            "alt+s",
            "search",
            "Search",
            priority=True,
            id="terminal.search",
            tooltip="Search the scrollback (n/N: older/newer match, Esc: back to live)",
        ),
        Binding("ctrl+q", "send_key('ctrl+q')", show=False, priority=True),
        Binding("ctrl+p", "send_key('ctrl+p')", show=False, priority=True),
        Binding("tab", "send_key('tab')", show=False, priority=True),
        Binding("shift+tab", "send_key('shift+tab')", show=False, priority=True),
    ]

    class Detached(PaneMessage):
        """The user pressed the detach key: the owner should move focus or close the pane."""

    class RecordRequested(PaneMessage):
        """The user asked to start or stop recording: the owner knows where files go."""

    class SearchRequested(PaneMessage):
        """The user asked for the search line: the owner shows it and calls `search`."""

    class ZoomToggled(PaneMessage):
        """The user pressed the zoom key inside the pane: the owner zooms or un-zooms it."""

    class Exited(PaneMessage):
        """The program exited; `status` as `os.waitstatus_to_exitcode` (-N: killed by
        signal N), or None when the pane has no pid or another owner reaped it."""

        def __init__(self, pane: TerminalPane, status: int | None) -> None:
            super().__init__(pane)
            self.status = status

    def __init__(
        self,
        fd: int | None,
        pid: int | None,
        *,
        detach_key: str = DEFAULT_DETACH_KEY,
        scrollback: int = 10_000,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._fd: int | None = fd
        self._pid: int | None = pid
        self.exit_status: int | None = None
        self.exited = False
        self._vt = VirtualTerminal(80, 24, scrollback=scrollback, on_reply=self.write)
        self._styles = _Styles()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()  # input the pty could not take yet
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = 0.0
        self._lines: dict[int, Strip] = {}  # rendered live rows, until pyte marks them dirty
        self._history_strips: LRUCache[tuple[int, int], Strip] = LRUCache(1024)
        self._cursor_drawn: tuple[int, int] | None = None
        self._offset = 0  # rows scrolled back from the live view
        self._pushed_seen = 0
        self._recorder: CastWriter | None = None
        self._selection: tuple[Point, Point] | None = None  # anchor, end
        self._selecting = False
        self.copied: str | None = None  # the last text copied from a selection
        self._matches: list[Match] = []
        self._match_lines: dict[int, list[tuple[int, int, int]]] = {}
        self._match_index = -1
        self._mouse_cell: tuple[int, int] | None = None  # last motion reported to the program
        self._mouse_held = 0  # the button of the press last reported, until its release
        detach_key = normalize_key(detach_key)
        if detach_key != DEFAULT_DETACH_KEY:
            self._rebind_detach(detach_key)

    def _rebind_detach(self, key: str) -> None:
        table = self._bindings.key_to_bindings  # this instance's copy of the class table
        old = table.pop(DEFAULT_DETACH_KEY, [])
        detach = next(b for b in old if b.id == "terminal.detach")
        rest = [b for b in old if b.id != "terminal.detach"]
        if rest:
            table[DEFAULT_DETACH_KEY] = rest
        table[key] = [*table.get(key, []), detach.with_key(key)]

    # ---- public API

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def scrollback_lines(self) -> list[str]:
        """Lines that scrolled off the top, oldest first, trailing blanks removed."""
        return self._vt.history_lines()

    @property
    def scroll_offset_lines(self) -> int:
        """How many lines the view is scrolled back from the live screen (0: live)."""
        return self._offset

    @property
    def window_title(self) -> str:
        """The window title the program set (OSC 0/2)."""
        return self._vt.screen.title

    def screen_text(self) -> str:
        """The lines shown in the pane (scrolled back or live), joined by newlines."""
        screen = self._vt.screen
        return "\n".join(row_text(self._row_at(y), screen.columns) for y in range(screen.lines))

    @property
    def recording(self) -> str | None:
        """The file this pane's output is being recorded to, if it is."""
        return self._recorder.path if self._recorder is not None else None

    def start_recording(self, path: str, title: str = "") -> None:
        """Record from now on into `path` (asciicast v2). The recording opens with the screen
        as it is, so a player shows what the user saw, not a blank page being patched."""
        self.stop_recording()
        screen = self._vt.screen
        recorder = CastWriter(path, screen.columns, screen.lines, title=title)
        recorder.output(self.screen_ansi().encode())
        self._recorder = recorder

    def stop_recording(self) -> str | None:
        """Close the recording; returns its file (None when none was running)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        recorder.close()
        return recorder.path

    def screen_ansi(self) -> str:
        """The live screen as the bytes a terminal would need to draw it: clear, each row with
        its SGR styles, then the cursor where it is."""
        screen = self._vt.screen
        out = ["\x1b[0m\x1b[H\x1b[2J"]
        for y in range(screen.lines):
            segments = row_segments(screen.rows.raw(y), screen.columns, self._styles)
            if not segments:
                continue
            out.append(f"\x1b[{y + 1};1H")
            for seg in segments:
                style = seg.style
                if style is None or not style:
                    out.append(seg.text)
                else:
                    out.append(style.render(seg.text, color_system=ColorSystem.TRUECOLOR))
        cursor = screen.cursor
        out.append(f"\x1b[{cursor.y + 1};{min(cursor.x, screen.columns - 1) + 1}H")
        return "".join(out)

    def feed(self, data: bytes) -> None:
        """Show `data` as if the program had written it (a player's way in)."""
        try:
            self._vt.feed(data)
        except Exception as exc:
            # Output pyte cannot parse must not take the app down with it; the parser
            # has reset itself and the next bytes are read normally.
            self.log.error(f"terminal: output not understood: {exc!r}")
        self._schedule_flush()

    # ---- selection

    def _abs_line(self, y: int) -> int:
        """The absolute line shown at view line y."""
        return self._vt.screen.pushed - self._offset + y

    def _row_abs(self, line: int) -> RawRow:
        screen = self._vt.screen
        history = screen.history
        index = line - (screen.pushed - len(history))
        if 0 <= index < len(history):
            return history[index]
        return screen.rows.raw(index - len(history))

    @property
    def selection_text(self) -> str:
        """The selected text, lines joined by newlines, trailing blanks removed."""
        if self._selection is None:
            return ""
        (a_line, a_x), (b_line, b_x) = sorted(self._selection)
        out: list[str] = []
        for line in range(a_line, b_line + 1):
            text = row_text(self._row_abs(line), None)
            start = a_x if line == a_line else 0
            end = b_x + 1 if line == b_line else len(text)
            out.append(text[start:end].rstrip())
        return "\n".join(out)

    def clear_selection(self) -> None:
        if self._selection is not None:
            self._selection = None
            self.refresh()

    def select(self, start: Point, end: Point) -> str:
        """Select from `start` to `end` (view coordinates: x, y), copy it as a mouse drag does,
        and return the text."""
        self._selection = (
            (self._abs_line(start[1]), start[0]),
            (self._abs_line(end[1]), end[0]),
        )
        self.refresh()
        return self._copy_selection()

    def _copy_selection(self) -> str:
        text = self.selection_text
        if text:
            self.copied = text
            # OSC 52 through the user's terminal: works over ssh and in tmux (set-clipboard).
            self.app.copy_to_clipboard(text)
            self.notify(f"copied {len(text)} characters", timeout=2)
        return text

    # ---- search

    @property
    def matches(self) -> list[Match]:
        return list(self._matches)

    @property
    def current_match(self) -> Match | None:
        if 0 <= self._match_index < len(self._matches):
            return self._matches[self._match_index]
        return None

    def search(self, needle: str) -> int:
        """Find `needle` in the scrollback and the screen (case-insensitive unless it has
        capitals, as less's -i), show the newest match at or above the view's bottom, and
        highlight them all. Returns how many there are."""
        self._matches = []
        self._match_lines = {}
        self._match_index = -1
        if needle:
            pattern = re.compile(re.escape(needle), 0 if needle != needle.lower() else re.I)
            screen = self._vt.screen
            first = screen.pushed - len(screen.history)
            rows = [*screen.history, *(screen.rows.raw(y) for y in range(screen.lines))]
            for i, row in enumerate(rows):
                text = row_text(row, None)
                if not text:
                    continue
                for m in pattern.finditer(text):
                    self._matches.append((first + i, m.start(), m.end()))
            for n, (line, start, end) in enumerate(self._matches):
                self._match_lines.setdefault(line, []).append((start, end, n))
            if self._matches:
                bottom = self._abs_line(screen.lines - 1)
                below = [n for n, m in enumerate(self._matches) if m[0] <= bottom]
                self._match_index = below[-1] if below else len(self._matches) - 1
                self._show_match()
        self.refresh()
        return len(self._matches)

    def search_next(self, older: bool = True) -> Match | None:
        """Go to the next older (n) or newer (N) match, wrapping around."""
        if not self._matches:
            return None
        step = -1 if older else 1
        self._match_index = (self._match_index + step) % len(self._matches)
        self._show_match()
        self.refresh()
        return self.current_match

    def clear_search(self) -> None:
        if self._matches:
            self._matches, self._match_lines, self._match_index = [], {}, -1
            self.refresh()

    def _show_match(self) -> None:
        match = self.current_match
        if match is None:
            return
        screen = self._vt.screen
        top = self._abs_line(0)
        if top <= match[0] < top + screen.lines:
            return
        # Put the match in the middle of the view, as less does.
        offset = screen.pushed - match[0] + screen.lines // 2
        self._offset = max(0, min(offset, len(screen.history)))
        self._pushed_seen = screen.pushed
        self._sync_cursor()

    def write(self, data: bytes) -> None:
        """Send bytes to the program, as if typed."""
        fd = self._fd
        if fd is None or not data:
            return
        if self._out:
            self._out += data
            return
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the program is gone; EOF handling reports it
        if written < len(data):
            self._out += data[written:]
            if self._loop is not None:
                self._loop.add_writer(fd, self._drain)

    def close(self) -> None:
        """Stop reading, close the fd and hang up the program (SIGHUP). Idempotent."""
        self.stop_recording()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        fd, self._fd = self._fd, None
        if fd is not None:
            if self._loop is not None:
                self._loop.remove_reader(fd)
                self._loop.remove_writer(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        pid, self._pid = self._pid, None
        if pid is not None and not self.exited:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            _reap_later(pid, self._loop)

    def scroll_history(self, lines: int) -> None:
        """Scroll the view back (positive) or toward the live screen (negative)."""
        offset = max(0, min(self._offset + lines, len(self._vt.screen.history)))
        if offset != self._offset:
            self._offset = offset
            self.refresh()

    def live(self) -> None:
        """Return the view to the live screen."""
        self.scroll_history(-self._offset)

    # ---- lifecycle

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._fd is not None:
            os.set_blocking(self._fd, False)
            self._loop.add_reader(self._fd, self._on_readable)
        self._apply_size()

    def on_unmount(self) -> None:
        self.close()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size()

    def _apply_size(self) -> None:
        columns, lines = self.size.width, self.size.height
        if columns < 1 or lines < 1:
            return
        screen = self._vt.screen
        if (columns, lines) == (screen.columns, screen.lines):
            return
        rewrap = columns != screen.columns
        self._vt.resize(columns, lines)
        if rewrap:
            # A re-wrap renumbers lines: what pointed at them (selection, matches, the
            # scrolled view's hold) starts again from the new numbering.
            self._selection, self._selecting = None, False
            self._matches, self._match_lines, self._match_index = [], {}, -1
            self._offset = min(self._offset, len(screen.history))
            self._pushed_seen = screen.pushed
        if self._recorder is not None:
            self._recorder.resize(lines, columns)
        self._lines.clear()
        self._history_strips.clear()
        self._cursor_drawn = None
        if self._fd is not None:
            try:
                # The kernel sends SIGWINCH to the pty's foreground process group.
                set_window_size(self._fd, lines, columns)
            except OSError:
                pass
        self.refresh()

    def on_focus(self, event: events.Focus) -> None:
        self._sync_cursor()

    def on_blur(self, event: events.Blur) -> None:
        self._sync_cursor()

    # ---- reading

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        chunks: list[bytes] = []
        total = 0
        eof = False
        while total < READ_BUDGET:
            try:
                data = os.read(fd, READ_BUDGET - total)
            except BlockingIOError:
                break
            except OSError as exc:
                # EIO: every slave fd is closed, i.e. the program (and its children) exited.
                if exc.errno != errno.EIO:
                    self.log.error(f"terminal read failed: {exc}")
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
            total += len(data)
        if chunks:
            data = b"".join(chunks)
            if self._recorder is not None:
                self._recorder.output(data)
            self.feed(data)
        if eof:
            self._on_eof()

    def _drain(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            written = os.write(fd, self._out)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._out)
        del self._out[:written]
        if not self._out and self._loop is not None:
            self._loop.remove_writer(fd)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None or self._loop is None:
            return
        wait = self._last_flush + FRAME - time.monotonic()
        if wait <= 0:
            self._flush_handle = self._loop.call_soon(self._flush)
        else:
            self._flush_handle = self._loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        """Turn pyte's dirty rows into repaints: the only place output reaches the screen."""
        self._flush_handle = None
        self._last_flush = time.monotonic()
        screen = self._vt.screen
        dirty = screen.dirty
        width = self.size.width
        if self._offset:
            # Hold a scrolled-back view still while output arrives below it.
            grown = screen.pushed - self._pushed_seen
            self._offset = min(self._offset + grown, len(screen.history))
        self._pushed_seen = screen.pushed
        if not dirty:
            self._sync_cursor()
            return
        if len(dirty) >= screen.lines:
            self._lines.clear()
            top, bottom = 0, screen.lines - 1
        else:
            for y in dirty:
                self._lines.pop(y, None)
            top, bottom = min(dirty), max(dirty)
        dirty.clear()
        if self._offset:
            self.refresh()
        else:
            self.refresh(Region(0, top, width, bottom - top + 1))
        self._sync_cursor()

    def _sync_cursor(self) -> None:
        screen = self._vt.screen
        cursor = screen.cursor
        want: tuple[int, int] | None = None
        if self.has_focus and not cursor.hidden and not self._offset and not self.exited:
            want = (cursor.y, min(cursor.x, screen.columns - 1))
        if want == self._cursor_drawn:
            return
        for pos in (self._cursor_drawn, want):
            if pos is not None:
                self._lines.pop(pos[0], None)
                self.refresh(Region(0, pos[0], self.size.width, 1))
        self._cursor_drawn = want

    # ---- exit

    def _on_eof(self) -> None:
        fd = self._fd
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        self._poll_exit()

    def _poll_exit(self) -> None:
        status: int | None = None
        pid = self._pid
        if pid is not None:
            try:
                reaped, wait_status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped, wait_status = pid, -1  # not our child, or already reaped
            if reaped == 0:
                # The pty closed a moment before the process finished exiting.
                self.set_timer(0.02, self._poll_exit)
                return
            if wait_status != -1:
                status = os.waitstatus_to_exitcode(wait_status)
        self._finish(status)

    def _finish(self, status: int | None) -> None:
        self.stop_recording()
        self.exited = True
        self.exit_status = status
        self._pid = None
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        note = "[process exited]" if status is None else f"[process exited with status {status}]"
        prefix = b"\r\n" if self._vt.screen.cursor.x else b""
        self._vt.feed(prefix + note.encode())
        self._flush()
        self.refresh_bindings()
        self.post_message(self.Exited(self, status))

    # ---- input

    def check_consume_key(self, key: str, character: str | None) -> bool:
        # While the program runs every key is its own; afterwards the app's keys work again.
        return not self.exited

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("send_key", "record"):
            return not self.exited
        return True

    def action_send_key(self, key: str) -> None:
        data = encode_key(key, None, app_cursor=self._vt.mode(DECCKM))
        if data is not None:
            self.live()
            self.write(data)

    def action_detach(self) -> None:
        self.post_message(self.Detached(self))

    def action_record(self) -> None:
        self.post_message(self.RecordRequested(self))

    def action_zoom(self) -> None:
        self.post_message(self.ZoomToggled(self))

    def on_key(self, event: events.Key) -> None:
        if self.exited:
            return
        key = event.key
        self.clear_selection()
        if key in ("shift+pageup", "shift+pagedown"):
            page = max(1, self._vt.screen.lines - 1)
            self.scroll_history(page if key == "shift+pageup" else -page)
        elif (self._offset or self._matches) and self._scrollback_key(key):
            pass
        else:
            self.clear_search()  # typing to the program leaves the search
            data = encode_key(key, event.character, app_cursor=self._vt.mode(DECCKM))
            if data is None:
                return
            self.live()
            self.write(data)
        event.stop()
        event.prevent_default()

    def _scrollback_key(self, key: str) -> bool:
        """Keys of the scrolled-back view or a search (tmux's copy mode, less's keys);
        False: not one of them (the key then goes to the program)."""
        page = max(1, self._vt.screen.lines - 1)
        moves = {"up": 1, "k": 1, "down": -1, "j": -1, "pageup": page, "pagedown": -page}
        if key in moves:
            self.scroll_history(moves[key])
        elif key in ("home", "g"):
            self.scroll_history(len(self._vt.screen.history))
        elif key in ("end", "G", "escape", "q"):
            self.clear_search()
            self.live()
        elif key in ("slash", "question_mark"):
            self.post_message(self.SearchRequested(self))
        elif key in ("n", "N"):
            self.search_next(older=key == "n")
        else:
            return False
        return True

    def action_search(self) -> None:
        self.post_message(self.SearchRequested(self))

    def on_paste(self, event: events.Paste) -> None:
        if self.exited:
            return
        event.stop()
        # Terminals send Enter as CR; pasted line ends would otherwise show as LF.
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        data = text.encode()
        if self._vt.mode(BRACKETED_PASTE):
            data = b"\x1b[200~" + data + b"\x1b[201~"
        self.live()
        self.write(data)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._wheel(event, up=True)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._wheel(event, up=False)

    def _wheel(self, event: events.MouseEvent, up: bool) -> None:
        screen = self._vt.screen
        if self._reporting(event):
            self._report(MOUSE_PRESS, 4 if up else 5, event)
        elif screen.alternate and not self.exited:
            # Full-screen programs have no scrollback here: scroll them, like xterm's
            # alternateScroll, by cursor keys.
            key = "up" if up else "down"
            data = encode_key(key, None, app_cursor=self._vt.mode(DECCKM)) or b""
            self.write(data * WHEEL_LINES)
        else:
            self.scroll_history(WHEEL_LINES if up else -WHEEL_LINES)

    def _reporting(self, event: events.MouseEvent) -> bool:
        """Whether mouse events go to the program: it asked (DECSET 1000/1002/1003), the live
        screen is shown, and shift is not held (xterm's way to select in such programs)."""
        return (
            not self.exited
            and not self._offset
            and not event.shift
            and bool(MOUSE_MODES & self._vt.screen.mode)
        )

    def _report(self, kind: str, button: int, event: events.MouseEvent) -> None:
        x = max(0, min(event.x, self._vt.screen.columns - 1))
        y = max(0, min(event.y, self._vt.screen.lines - 1))
        data = encode_mouse(
            kind,
            button,
            x,
            y,
            sgr=self._vt.mode(MOUSE_SGR),
            meta=event.meta,
            ctrl=event.ctrl,
        )
        if data is not None:
            self.write(data)

    def _point(self, event: events.MouseEvent) -> Point:
        y = max(0, min(event.y, self.size.height - 1))
        x = max(0, min(event.x, self.size.width - 1))
        return self._abs_line(y), x

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self._reporting(event):
            event.stop()
            self._mouse_cell = (event.x, event.y)
            self._mouse_held = event.button
            self._report(MOUSE_PRESS, event.button, event)
            return
        if event.button != 1:
            return
        event.stop()
        point = self._point(event)
        self._selection = (point, point)
        self._selecting = True
        self.capture_mouse()
        self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._selecting and self._selection is not None:
            if event.y < 0:
                self.scroll_history(1)  # dragging above the pane scrolls back
            elif event.y >= self.size.height:
                self.scroll_history(-1)
            self._selection = (self._selection[0], self._point(event))
            self.refresh()
            return
        if not self._reporting(event):
            return
        screen = self._vt.screen
        # 1002 reports motion only between a press and its release (as the program saw them).
        held = self._mouse_held
        if not (MOUSE_ANY in screen.mode or (held and MOUSE_BUTTONS in screen.mode)):
            return
        if (event.x, event.y) == self._mouse_cell:
            return  # one report per cell, as xterm
        self._mouse_cell = (event.x, event.y)
        self._report(MOUSE_MOVE, held, event)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._selecting:
            event.stop()
            self._selecting = False
            self.release_mouse()
            if self._selection is not None and self._selection[0] == self._selection[1]:
                self.clear_selection()  # a click, not a drag: nothing to copy
                return
            self._copy_selection()
            return
        if self._reporting(event):
            event.stop()
            button, self._mouse_held = self._mouse_held or event.button, 0
            self._report(MOUSE_RELEASE, button, event)

    # ---- rendering

    def _row_at(self, y: int) -> RawRow:
        """The row shown at view line y, from history when scrolled back."""
        screen = self._vt.screen
        history = screen.history
        index = len(history) - self._offset + y
        if index < len(history):
            return history[index]
        return screen.rows.raw(index - len(history))

    def render_line(self, y: int) -> Strip:
        strip = self._render_line(y)
        if self._selection is None and not self._match_lines:
            return strip
        width = self.size.width
        line = self._abs_line(y)
        ranges: list[tuple[int, int, Style]] = []
        for start, end, n in self._match_lines.get(line, ()):
            style = CURRENT_MATCH_STYLE if n == self._match_index else MATCH_STYLE
            ranges.append((start, end, style))
        if self._selection is not None:
            (a_line, a_x), (b_line, b_x) = sorted(self._selection)
            if a_line <= line <= b_line:
                start = a_x if line == a_line else 0
                end = b_x + 1 if line == b_line else width
                ranges.append((start, end, SELECTION_STYLE))
        return _highlight(strip, ranges, width) if ranges else strip

    def _render_line(self, y: int) -> Strip:
        width = self.size.width
        screen = self._vt.screen
        if not self._offset:
            strip = self._lines.get(y)
            if strip is None:
                strip = self._live_strip(y, width)
                self._lines[y] = strip
            return strip
        history = screen.history
        index = len(history) - self._offset + y
        if index >= len(history):
            strip = self._live_strip(index - len(history), width)
        else:
            key = (screen.pushed - len(history) + index, width)
            cached = self._history_strips.get(key)
            if cached is None:
                segments = row_segments(history[index], width, self._styles)
                cached = Strip(segments).adjust_cell_length(width)
                self._history_strips[key] = cached
            strip = cached
        if y == 0:
            strip = self._with_position(strip, width)
        return strip

    def _live_strip(self, y: int, width: int) -> Strip:
        screen = self._vt.screen
        if y >= screen.lines:
            return Strip.blank(width)
        strip = Strip(row_segments(screen.rows.raw(y), width, self._styles))
        strip = strip.adjust_cell_length(width)
        if self._cursor_drawn is not None and self._cursor_drawn[0] == y and not self._offset:
            strip = _with_cursor(strip, self._cursor_drawn[1], width)
        return strip

    def _with_position(self, strip: Strip, width: int) -> Strip:
        label = f" [{self._offset}/{len(self._vt.screen.history)}] "
        if len(label) >= width:
            return strip
        head = strip.crop(0, width - len(label))
        tag = Strip([Segment(label, Style(reverse=True))])
        return Strip.join([head, tag])


def _reap_later(pid: int, loop: asyncio.AbstractEventLoop | None, tries: int = 100) -> None:
    """Collect a hung-up child without blocking; gives up after ~5 s (it stays a zombie)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if reaped or tries <= 0 or loop is None or loop.is_closed():
        return
    loop.call_later(0.05, _reap_later, pid, loop, tries - 1)
