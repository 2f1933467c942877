"""The output of a detached box, followed live, with search (highlight, n/N, matches only),
arrival times, wrapping and a tail (the last N lines).

Escape leaves one thing at a time, as in less, vim and k9s: the open search or tail field,
then the search itself (highlight, matches only), and only then the view.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from tuibox.service import LOG_READ_LIMIT, ServiceError
from tuibox.widgets.logview import LogView

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

POLL = 0.5  # seconds between reads of new bytes


class LogsScreen(Screen[None]):
    HELP_TITLE = "logs"
    CSS_PATH = "logs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="logs.back"),
        Binding("slash", "search", "Search", id="logs.search"),
        # Short words: with a search on, every key of this view fits a 100-column footer.
        Binding("n", "next_match", "Next", id="logs.next", tooltip="Next match"),
        Binding("N", "previous_match", "Prev", id="logs.previous", tooltip="Previous match"),
        Binding(
            "m",
            "only_matches",
            "Filter",
            id="logs.only_matches",
            tooltip="Show only the lines that match the search",
        ),
        Binding("f", "follow", "Follow", id="logs.follow", tooltip="Keep showing new lines"),
        Binding(
            "t",
            "times",
            "Times",
            id="logs.times",
            tooltip="Show when tuibox read each line (the log file keeps no times)",
        ),
        Binding("w", "wrap", "Wrap", id="logs.wrap", tooltip="Wrap long lines"),
        Binding("T", "tail", "Tail", id="logs.tail", tooltip="Show only the last N lines"),
        # Last, and off the footer: with a search on, the keys above fill 100 columns.
        Binding("question_mark", "app.help", "Help", id="app.help", show=False),
    ]

    def __init__(self, box_name: str, poll: float = POLL) -> None:
        super().__init__()
        self.box_name = box_name
        self.poll = poll
        self.error: str | None = None

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="logs-title")
        yield LogView(id="log")
        yield Input(
            placeholder="search (Enter: next match, Escape: close)", id="search", classes="hidden"
        )
        yield Input(
            placeholder="show the last N lines (empty: all; Escape: close)",
            type="integer",
            id="tail",
            classes="hidden",
        )
        yield Static("", id="logs-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        box = self.tapp.box(self.box_name)
        self.query_one("#logs-title", Static).update(
            Text.assemble("log of ", (self.box_name, "bold"), f"  {box.log if box else ''}")
        )
        self.view.focus()
        self.watch(self.view, "follow", lambda _: self._update_status(), init=False)
        self.tail(box.log if box else "")

    @work(exclusive=True, exit_on_error=False, group="logs")
    async def tail(self, path: str) -> None:
        if not path:
            self.error = "this box has no log file (it was not started detached)"
            self._update_status()
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # What is in the files when the view opens has no time (the log keeps none); what
        # comes after is stamped as it is read.
        catching_up = True
        # The older output first: the log rotated at its cap is box.log.1 (runtime/logfile.py).
        offset = 0
        while True:
            try:
                chunk = await self.tapp.backend.read_log(path + ".1", offset)
            except ServiceError:
                break
            if chunk.data:
                self.view.append(decoder.decode(chunk.data))
            offset = chunk.offset
            if chunk.reset or len(chunk.data) < LOG_READ_LIMIT:
                break
        offset = 0
        while True:
            try:
                chunk = await self.tapp.backend.read_log(path, offset)
            except ServiceError as exc:
                self.error = exc.message
                self._update_status()
                await asyncio.sleep(self.poll * 4)
                continue
            self.error = None
            if chunk.reset:
                self.view.clear()
                decoder.reset()
            if chunk.data:
                when = None if catching_up else time.time()
                self.view.append(decoder.decode(chunk.data), when)
                self._update_status()
            offset = chunk.offset
            # A full read means more is waiting: read on at once (catch up), else wait.
            if len(chunk.data) < LOG_READ_LIMIT:
                catching_up = False
                await asyncio.sleep(self.poll)

    def _update_status(self) -> None:
        view = self.view
        parts = [f"{len(view.lines)} lines"]
        if view.first:
            parts[0] = f"last {len(view.lines) - view.first} of {len(view.lines)} lines"
        if view.query_text:
            found = view.matches
            where = f"{found.index(view.current) + 1}/" if view.current in found else ""
            parts.append(f"“{view.query_text}”: {where}{len(found)} matches")
            if view.only_matches:
                parts.append("matches only")
        if view.show_times:
            parts.append("times as read (--: already in the file)")
        if view.wrap:
            parts.append("wrapped")
        parts.append("following" if view.follow else "paused (f to follow)")
        status = Text(" · ".join(parts))
        if self.error:
            status = Text(self.error, style="bold red")
        self.query_one("#logs-status", Static).update(status)

    # ---- search

    def action_search(self) -> None:
        field = self.query_one("#search", Input)
        field.remove_class("hidden")
        field.focus()

    @on(Input.Changed, "#search")
    def _query_changed(self, event: Input.Changed) -> None:
        self.view.set_query(event.value)
        self._update_status()
        self.refresh_bindings()

    @on(Input.Submitted, "#search")
    def _query_submitted(self, event: Input.Submitted) -> None:
        # As in less: the prompt goes, the highlight stays (Escape clears it).
        self.view.jump(forward=True)
        self._close_field(event.input)
        self._update_status()

    def action_next_match(self) -> None:
        self.view.jump(forward=True)
        self._update_status()

    def action_previous_match(self) -> None:
        self.view.jump(forward=False)
        self._update_status()

    def action_only_matches(self) -> None:
        self.view.set_only_matches(not self.view.only_matches)
        self._update_status()

    def action_follow(self) -> None:
        view = self.view
        view.follow = not view.follow
        if view.follow:
            view.scroll_end(animate=False)
        self._update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_match", "previous_match", "only_matches"):
            # Hidden, not greyed, until there is a search: the footer keeps room for the
            # keys that work now (it is cut at 80 columns otherwise).
            views = self.query(LogView)
            return bool(views and views.first().query_text)
        return True

    def action_times(self) -> None:
        self.view.set_times(not self.view.show_times)
        self._update_status()

    def action_wrap(self) -> None:
        self.view.set_wrap(not self.view.wrap)
        self._update_status()

    def action_tail(self) -> None:
        field = self.query_one("#tail", Input)
        field.value = ""
        field.remove_class("hidden")
        field.focus()

    @on(Input.Submitted, "#tail")
    def _tail_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.view.set_tail(int(text) if text.isdigit() else None)
        self._close_field(event.input)
        self._update_status()

    def _close_field(self, field: Input) -> None:
        field.add_class("hidden")
        self.view.focus()
        self.refresh_bindings()

    def action_back(self) -> None:
        """Close the innermost thing open: a field, then the search, then the view."""
        for field in self.query(Input):
            if field.has_focus or not field.has_class("hidden"):
                if field.id == "search" and field.has_focus:
                    field.value = ""  # Escape while typing cancels that search
                self._close_field(field)
                return
        if self.view.query_text:
            self.query_one("#search", Input).value = ""
            self.view.set_only_matches(False)
            self.view.set_query("")
            self._update_status()
            self.refresh_bindings()
            return
        self.dismiss()
