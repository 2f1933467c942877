"""Recordings of terminal panes (<data root>/recordings/*.cast) and a player for one.

A pane is recorded with alt+r from inside it (or R on the list); `tuibox exec/attach --record
FILE` write the same format anywhere. The list shows the newest first; Enter replays one in
`CastPlayer`, at real speed, with keys to speed it up, pause, restart or jump to the end.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuibox.asciicast import CastError, read_cast
from tuibox.widgets.cast_player import CastPlayer
from tuibox.widgets.format import human_bytes

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp


def recordings_dir(app: TuiboxApp) -> str:
    return os.path.join(app.backend.data_root, "recordings")


def list_recordings(folder: str) -> list[tuple[str, os.stat_result]]:
    """(path, stat) of each .cast file, newest first; none when the folder is missing."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        if not name.endswith(".cast"):
            continue
        path = os.path.join(folder, name)
        try:
            out.append((path, os.stat(path)))
        except OSError:
            continue
    out.sort(key=lambda item: item[1].st_mtime, reverse=True)
    return out


class RecordingsScreen(Screen[None]):
    HELP_TITLE = "recordings"
    CSS_PATH = "recordings.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="rec.back"),
        Binding("q", "back", "Back", id="rec.back_q", show=False),
        Binding("enter", "play", "Play", id="rec.play"),
        Binding("question_mark", "app.help", "Help", id="app.help"),
    ]

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="rec-title")
        table: DataTable[Any] = DataTable(id="recordings", cursor_type="row", zebra_stripes=True)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#recordings", DataTable)
        for key, label in (("name", "RECORDING"), ("size", "SIZE"), ("when", "MODIFIED")):
            table.add_column(label, key=key)
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        folder = recordings_dir(self.tapp)
        items = list_recordings(folder)
        table = self.query_one("#recordings", DataTable)
        table.clear()
        for path, st in items:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
            table.add_row(os.path.basename(path), human_bytes(st.st_size), when, key=path)
        title = Text.assemble(("recordings in ", ""), (folder, "bold"))
        if not items:
            title.append("  (none yet: alt+r in a terminal pane records it)", style="dim")
        self.query_one("#rec-title", Static).update(title)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_play(self) -> None:
        table = self.query_one("#recordings", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key:
            self.play(str(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.play(str(event.row_key.value))

    def play(self, path: str) -> None:
        try:
            read_cast(path)  # a bad file is one line here, not a screen that fails to mount
        except (CastError, OSError) as exc:
            message = str(exc) if isinstance(exc, CastError) else f"{path}: {exc.strerror}"
            self.app.notify(message, title="cannot play", severity="error")
            return
        self.app.push_screen(PlayerScreen(path))


class PlayerScreen(Screen[None]):
    HELP_TITLE = "recording player"
    CSS_PATH = "recordings.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="player.back"),
        Binding("q", "back", "Back", id="player.back_q", show=False),
        Binding("space", "pause", "Pause/Play", id="player.pause"),
        Binding("f", "faster", "Faster", id="player.faster"),
        Binding("plus", "faster", "Faster", id="player.faster_plus", show=False),
        Binding("minus", "slower", "Slower", id="player.slower"),
        Binding("r", "restart", "Restart", id="player.restart"),
        Binding("G", "end", "End", id="player.end"),
        Binding("question_mark", "app.help", "Help", id="app.help"),
    ]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.player = CastPlayer(path, id="player")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="player-status")
        with ScrollableContainer(id="player-box"):
            yield self.player
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.25, self.show_status)
        self.show_status()

    def show_status(self) -> None:
        p = self.player
        state = "finished" if p.finished else "paused" if p.paused else "playing"
        text = Text.assemble(
            (os.path.basename(self.path), "bold"),
            f"  {p.header.width}x{p.header.height}  {p.position:.1f}/{p.duration:.1f} s",
            f"  speed {p.speed:g}x  ",
            (state, "reverse" if state != "playing" else ""),
        )
        self.query_one("#player-status", Static).update(text)

    def on_cast_player_finished(self, message: CastPlayer.Finished) -> None:
        self.show_status()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_pause(self) -> None:
        self.player.toggle_pause()
        self.show_status()

    def action_faster(self) -> None:
        self.player.faster()
        self.show_status()

    def action_slower(self) -> None:
        self.player.slower()
        self.show_status()

    def action_restart(self) -> None:
        self.player.restart()
        self.show_status()

    def action_end(self) -> None:
        self.player.skip_to_end()
        self.show_status()
