"""Terminal panes in tabs: each tab runs one program on its own pty (a shell, an attach).

A tab is mounted first and its program spawned only once the tab has been laid out, at the
tab's size: the program's first screen already fits (container TUI users ask for the size to be
right from the first frame of an exec). `ptyspawn.spawn_local` uses posix_spawn, which runs no
Python in the child, so spawning from this threaded process is safe.

The pane (`TerminalPane`) owns the process: closing a tab unmounts the pane, which hangs the
program up (SIGHUP) and reaps it. A program that exits leaves its tab open, labelled with the
exit status, until the user closes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input, Static, TabbedContent, TabPane

from tuibox.asciicast import recording_name
from tuibox.widgets.ptyspawn import spawn_local
from tuibox.widgets.terminal import DEFAULT_DETACH_KEY, TerminalPane

MODES = ("shell", "attach")


def exit_text(status: int | None) -> str:
    """`status` as TerminalPane.Exited gives it: -N means killed by signal N."""
    if status is None:
        return "exited"
    if status < 0:
        return f"killed by signal {-status}"
    return f"exited {status}"


class SearchLine(Input):
    """The scrollback search line under a pane: matches follow each keystroke; Enter goes
    back to the pane (n/N move between matches there), Esc closes the search."""

    DEFAULT_CSS = """
    SearchLine {
        dock: bottom;
        height: 1;
        border: none;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close search", id="terminal.search_close"),
    ]

    def __init__(self, pane: TerminalPane) -> None:
        super().__init__(placeholder="search the scrollback (Enter: to the pane, Esc: close)")
        self.pane = pane

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        found = self.pane.search(event.value)
        self.border_subtitle = f"{found} matches"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value and not self.pane.matches:
            self.notify(f"not found: {event.value}", severity="warning", timeout=3)
        self.pane.focus()

    async def action_close(self) -> None:
        self.pane.clear_search()
        self.pane.live()
        self.pane.focus()
        await self.remove()


class TerminalTab(TabPane):
    """One tab: a box, a mode, the argv to run, and (once spawned) its TerminalPane."""

    class Started(Message):
        """The program runs: its pane is mounted and focused."""

        def __init__(self, tab: TerminalTab) -> None:
            super().__init__()
            self.tab = tab

    class Failed(Message):
        """The program could not be started (`error` says why)."""

        def __init__(self, tab: TerminalTab, error: str) -> None:
            super().__init__()
            self.tab = tab
            self.error = error

    def __init__(
        self,
        title: str,
        *,
        box: str,
        mode: str,
        argv: tuple[str, ...],
        env: dict[str, str] | None,
        detach_key: str = DEFAULT_DETACH_KEY,
        id: str | None = None,
    ) -> None:
        super().__init__(title, id=id)
        self.base_title = title
        self.box = box
        self.mode = mode
        self.argv = argv
        self.env = env
        self.detach_key = detach_key
        self.terminal: TerminalPane | None = None
        self.error: str | None = None

    @property
    def exited(self) -> bool:
        return self.error is not None or (self.terminal is not None and self.terminal.exited)

    @property
    def running(self) -> bool:
        return self.terminal is not None and not self.terminal.exited

    def on_terminal_pane_search_requested(self, message: TerminalPane.SearchRequested) -> None:
        message.stop()
        line = next(iter(self.query(SearchLine)), None)
        if line is None:
            line = SearchLine(message.pane)
            self.mount(line)
        line.focus()

    def on_resize(self, event: events.Resize) -> None:
        # The first real size is when the program starts; later resizes are the pane's own
        # business (it passes them on to the pty).
        if self.terminal is not None or self.error is not None:
            return
        size = self.content_size
        if size.width < 2 or size.height < 2:
            return
        try:
            fd, pid = spawn_local(self.argv, env=self.env, rows=size.height, columns=size.width)
        except OSError as exc:
            self.error = f"cannot start {self.argv[0]}: {(exc.strerror or str(exc)).lower()}"
            self.mount(Static(self.error, classes="pane-error"))
            self.post_message(self.Failed(self, self.error))
            return
        self.terminal = TerminalPane(fd, pid, detach_key=self.detach_key)
        self.mount(self.terminal)
        self.terminal.focus()
        self.post_message(self.Started(self))


class TerminalTabs(TabbedContent):
    """The tabbed area of terminal panes; the screen decides when it is shown."""

    ALLOW_MAXIMIZE = True  # z: the panes fill the screen

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._serial = 0

    # ---- queries

    def tabs(self) -> Iterator[TerminalTab]:
        yield from self.query(TerminalTab)

    @property
    def count(self) -> int:
        return sum(1 for _ in self.tabs())

    @property
    def current(self) -> TerminalTab | None:
        pane = self.active_pane
        return pane if isinstance(pane, TerminalTab) else None

    def find(self, box: str, mode: str) -> TerminalTab | None:
        """A live tab of this box and mode, if one is open."""
        return next((t for t in self.tabs() if (t.box, t.mode) == (box, mode) and t.running), None)

    # ---- opening and closing

    def title_for(self, box: str, mode: str) -> str:
        title = f"{mode}: {box}"
        same = sum(1 for t in self.tabs() if (t.box, t.mode) == (box, mode))
        return f"{title} ({same + 1})" if same else title

    async def open(
        self,
        box: str,
        mode: str,
        argv: tuple[str, ...],
        env: dict[str, str] | None = None,
        detach_key: str = DEFAULT_DETACH_KEY,
    ) -> TerminalTab:
        """Add a tab and make it active; its program starts once the tab has a size."""
        self._serial += 1
        tab = TerminalTab(
            self.title_for(box, mode),
            box=box,
            mode=mode,
            argv=argv,
            env=env,
            detach_key=detach_key,
            id=f"term-{self._serial}",
        )
        await self.add_pane(tab)
        self.active = tab.id or ""
        return tab

    async def close(self, tab: TerminalTab) -> None:
        """Remove the tab; unmounting its pane hangs its program up."""
        if tab.id is not None:
            await self.remove_pane(tab.id)

    def focus_current(self) -> bool:
        tab = self.current
        if tab is None or tab.terminal is None:
            return False
        tab.terminal.focus()
        return True

    def cycle(self, step: int = 1) -> None:
        ids = [t.id for t in self.tabs() if t.id]
        if not ids:
            return
        at = ids.index(self.active) if self.active in ids else -1
        self.active = ids[(at + step) % len(ids)]
        self.focus_current()

    # ---- recording

    def recordings_dir(self) -> str | None:
        """<data root>/recordings, from the app's backend (None when it has no data root)."""
        data_root = getattr(getattr(self.app, "backend", None), "data_root", None)
        return os.path.join(data_root, "recordings") if isinstance(data_root, str) else None

    def toggle_recording(self, tab: TerminalTab | None = None) -> tuple[bool, str]:
        """Start or stop recording the tab's pane (the current one by default).

        Returns (recording now, the file or why not)."""
        tab = tab or self.current
        if tab is None or tab.terminal is None:
            return False, "no terminal pane to record"
        pane = tab.terminal
        if pane.recording is not None:
            path = pane.stop_recording() or ""
            self._label(tab)
            return False, path
        if pane.exited:
            return False, "the program in this pane has exited"
        folder = self.recordings_dir()
        if folder is None:
            return False, "no data root to keep recordings in"
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            path = os.path.join(folder, recording_name(tab.box, tab.mode))
            pane.start_recording(path, title=tab.base_title)
        except OSError as exc:
            return False, f"cannot record: {(exc.strerror or str(exc)).lower()}: {folder}"
        self._label(tab)
        return True, path

    def _label(self, tab: TerminalTab, status: str | None = None) -> None:
        if not tab.id:
            return
        pane = tab.terminal
        if status is not None:
            self.get_tab(tab.id).label = Text(f"{tab.base_title} · {status}", style="dim")
        elif pane is not None and pane.recording is not None:
            label = Text(tab.base_title)
            label.append(" ● REC", style="bold red")
            self.get_tab(tab.id).label = label
        else:
            self.get_tab(tab.id).label = Text(tab.base_title)

    def post_record_request(self) -> None:
        """Toggle recording of the current pane, as its own alt+r does."""
        tab = self.current
        if tab is not None and tab.terminal is not None:
            tab.terminal.action_record()

    def on_terminal_pane_record_requested(self, message: TerminalPane.RecordRequested) -> None:
        message.stop()
        tab = next((t for t in self.tabs() if t.terminal is message.pane), None)
        if tab is None:
            return
        recording, text = self.toggle_recording(tab)
        if recording:
            self.notify(f"recording to {text}", title=tab.base_title, timeout=4)
        elif text.endswith(".cast"):
            self.notify(f"recording saved: {text}", title=tab.base_title, timeout=6)
        else:
            self.notify(text, title=tab.base_title, severity="warning")

    # ---- program exits

    def on_terminal_pane_exited(self, message: TerminalPane.Exited) -> None:
        # Not stopped: the screen hears about it too (footer keys change with it).
        for tab in self.tabs():
            if tab.terminal is message.pane and tab.id:
                self._label(tab, exit_text(message.status))

    def on_terminal_tab_failed(self, message: TerminalTab.Failed) -> None:
        if message.tab.id:
            label = Text(f"{message.tab.base_title} · failed", style="dim")
            self.get_tab(message.tab.id).label = label
