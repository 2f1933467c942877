"""CastPlayer: an asciicast v2 recording replayed into the same terminal emulation as a pane.

The player is a `TerminalPane` without a program: events are fed to its `vt_screen` at the
times the file gives, scaled by `speed`, so what it shows is what the pane showed. Its size is
the recording's (the header's width and height, then each "r" event), not the widget's: a
recording is replayed at the size it was made at and the screen scrolls around it.
"""

from __future__ import annotations

import time

from textual import events
from textual.message import Message
from textual.timer import Timer

from tuibox.asciicast import CastEvent, CastHeader, read_cast
from tuibox.widgets.terminal import TerminalPane

SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class CastPlayer(TerminalPane):
    """Plays one recording; posts `Finished` at its end. Keys are left to the screen."""

    DEFAULT_CSS = """
    CastPlayer {
        width: auto;
        height: auto;
    }
    """

    class Finished(Message):
        def __init__(self, player: CastPlayer) -> None:
            super().__init__()
            self.player = player

    def __init__(self, path: str, *, id: str | None = None) -> None:
        # Raises CastError/OSError for a bad file: the screen says so before mounting us.
        header, cast_events = read_cast(path)
        super().__init__(None, None, id=id)
        self.path = path
        self.header: CastHeader = header
        self.events: list[CastEvent] = [e for e in cast_events if e.kind in ("o", "r")]
        self.duration = self.events[-1].time if self.events else 0.0
        self.speed = 1.0
        self.paused = False
        self.finished = False
        self._next = 0  # index of the next event to show
        self._base_pos = 0.0  # recording time at `_base_clock`
        self._base_clock = 0.0
        self._timer: Timer | None = None
        self._resize_to(header.width, header.height)

    # ---- control

    @property
    def position(self) -> float:
        """Seconds into the recording."""
        if self.paused or self.finished or not self._base_clock:
            return self._base_pos
        return min(
            self.duration, self._base_pos + (time.monotonic() - self._base_clock) * self.speed
        )

    def _rebase(self) -> None:
        self._base_pos = self.position
        self._base_clock = time.monotonic()

    def set_speed(self, speed: float) -> None:
        self._rebase()
        self.speed = speed
        self._tick()

    def faster(self) -> None:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))

    def slower(self) -> None:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))

    def toggle_pause(self) -> None:
        if self.finished:
            self.restart()
            return
        self._rebase()
        self.paused = not self.paused
        self._tick()

    def restart(self) -> None:
        self.feed(b"\x1bc")  # RIS: a fresh screen
        self._resize_to(self.header.width, self.header.height)
        self._next = 0
        self._base_pos = 0.0
        self._base_clock = time.monotonic()
        self.finished = self.paused = False
        self._tick()

    def skip_to_end(self) -> None:
        self._base_pos = self.duration
        self._base_clock = time.monotonic()
        self._tick()

    # ---- playing

    def on_mount(self) -> None:
        super().on_mount()
        self._base_clock = time.monotonic()
        self._tick()

    def _tick(self) -> None:
        if self._timer is not None:
            self._timer.stop()  # this call replaces the one it had planned
            self._timer = None
        if self.paused or self.finished or not self.is_mounted:
            return
        now = self.position
        chunk: list[bytes] = []
        events_ = self.events
        while self._next < len(events_) and events_[self._next].time <= now:
            event = events_[self._next]
            self._next += 1
            if event.kind == "o":
                chunk.append(event.data.encode())
                continue
            if chunk:  # output before a resize is drawn at the old size
                self.feed(b"".join(chunk))
                chunk = []
            columns, _, rows = event.data.partition("x")
            if columns.isdigit() and rows.isdigit():
                self._resize_to(int(columns), int(rows))
        if chunk:
            self.feed(b"".join(chunk))
        if self._next >= len(events_):
            self._base_pos, self.finished = self.duration, True
            self.post_message(self.Finished(self))
            return
        wait = (events_[self._next].time - now) / self.speed
        self._timer = self.set_timer(max(0.001, wait), self._tick, name="cast-tick")

    def _resize_to(self, columns: int, lines: int) -> None:
        columns, lines = max(1, columns), max(1, lines)
        self._vt.resize(columns, lines)
        self.styles.width = columns
        self.styles.height = lines
        self._lines.clear()
        self._history_strips.clear()
        self.refresh(layout=True)

    # ---- a player has no program: its size is the recording's, its keys the screen's

    def _apply_size(self) -> None:
        pass

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return False

    def _reporting(self, event: events.MouseEvent) -> bool:
        return False  # a recorded program's mouse modes have no program to report to

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in ("send_key", "record", "detach")

    def on_key(self, event: events.Key) -> None:
        pass

    def on_paste(self, event: events.Paste) -> None:
        pass
