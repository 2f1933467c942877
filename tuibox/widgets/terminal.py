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
import signal
import time
from typing import ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tuibox.widgets.ptyspawn import set_window_size
from tuibox.widgets.vt_keys import encode_key, normalize_key
from tuibox.widgets.vt_screen import (
    BRACKETED_PASTE,
    DECCKM,
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
            key_display="^]",
            priority=True,
            id="terminal.detach",
        ),
        # Zoom from inside: the owner toggles it; alt+z (ESC z) is bound by neither readline
        # nor vi, so a program hardly misses it.
        Binding(ZOOM_KEY, "zoom", "Zoom", priority=True, id="terminal.zoom"),
        # Taken by the app or screen before the focused widget sees them; the program gets them.
        Binding("ctrl+q", "send_key('ctrl+q')", show=False, priority=True),
        Binding("ctrl+p", "send_key('ctrl+p')", show=False, priority=True),
        Binding("tab", "send_key('tab')", show=False, priority=True),
        Binding("shift+tab", "send_key('shift+tab')", show=False, priority=True),
    ]

    class Detached(Message):
        """The user pressed the detach key: the owner should move focus or close the pane."""

        def __init__(self, pane: TerminalPane) -> None:
            super().__init__()
            self.pane = pane

        @property
        def control(self) -> TerminalPane:
            return self.pane

    class ZoomToggled(Message):
        """The user pressed the zoom key inside the pane: the owner zooms or un-zooms it."""

        def __init__(self, pane: TerminalPane) -> None:
            super().__init__()
            self.pane = pane

        @property
        def control(self) -> TerminalPane:
            return self.pane

    class Exited(Message):
        """The program exited; `status` as `os.waitstatus_to_exitcode` (-N: killed by
        signal N), or None when the pane has no pid or another owner reaped it."""

        def __init__(self, pane: TerminalPane, status: int | None) -> None:
            super().__init__()
            self.pane = pane
            self.status = status

        @property
        def control(self) -> TerminalPane:
            return self.pane

    def __init__(
        self,
        fd: int,
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
        self._vt.resize(columns, lines)
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
            try:
                self._vt.feed(b"".join(chunks))
            except Exception as exc:
                # Output pyte cannot parse must not take the app down with it; the parser
                # has reset itself and the next bytes are read normally.
                self.log.error(f"terminal: output not understood: {exc!r}")
            self._schedule_flush()
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
        if action == "send_key":
            return not self.exited
        return True

    def action_send_key(self, key: str) -> None:
        data = encode_key(key, None, app_cursor=self._vt.mode(DECCKM))
        if data is not None:
            self.live()
            self.write(data)

    def action_detach(self) -> None:
        self.post_message(self.Detached(self))

    def action_zoom(self) -> None:
        self.post_message(self.ZoomToggled(self))

    def on_key(self, event: events.Key) -> None:
        if self.exited:
            return
        key = event.key
        if key in ("shift+pageup", "shift+pagedown"):
            page = max(1, self._vt.screen.lines - 1)
            self.scroll_history(page if key == "shift+pageup" else -page)
        else:
            data = encode_key(key, event.character, app_cursor=self._vt.mode(DECCKM))
            if data is None:
                return
            self.live()
            self.write(data)
        event.stop()
        event.prevent_default()

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
        if not self._offset and not self.exited and MOUSE_MODES & screen.mode:
            x, y = event.x + 1, event.y + 1
            button = 64 if up else 65
            if self._vt.mode(MOUSE_SGR):
                self.write(f"\x1b[<{button};{x};{y}M".encode())
            elif x < 223 and y < 223:
                self.write(bytes([0x1B, 0x5B, 0x4D, 32 + button, 32 + x, 32 + y]))
        elif screen.alternate and not self.exited:
            # Full-screen programs have no scrollback here: scroll them, like xterm's
            # alternateScroll, by cursor keys.
            key = "up" if up else "down"
            data = encode_key(key, None, app_cursor=self._vt.mode(DECCKM)) or b""
            self.write(data * WHEEL_LINES)
        else:
            self.scroll_history(WHEEL_LINES if up else -WHEEL_LINES)

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
