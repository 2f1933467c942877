"""Live processes of one box, as a tree by parent, with a signal for the process on a row.

CPU % is measured between two polls of this screen (from each process's CPU time), not
averaged over the process's life as ps(1) does: a process stopped with SIGSTOP shows 0 on the
next poll instead of a slowly decaying figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuibox.app import BoxesAware
from tuibox.service import ProcessRow, ServiceError, ServiceUnavailable
from tuibox.widgets.format import human_bytes, percent_text, status_text
from tuibox.widgets.quiet import show as show_text
from tuibox.widgets.table_sync import LiveTable, cursor_key, sync_rows

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

# One pid namespace per column: the box's pids first (what its programs see), then the host's.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("box_pid", "PID"),
    ("box_ppid", "PPID"),
    ("pid", "HOST PID"),
    ("ppid", "HOST PPID"),
    ("user", "USER"),
    ("state", "S"),
    ("cpu", "CPU %"),
    ("rss", "RSS"),
    ("command", "COMMAND"),
)
COLUMN_KEYS = tuple(k for k, _ in COLUMNS)


def tree_order(rows: Sequence[ProcessRow]) -> list[tuple[ProcessRow, str]]:
    """Depth-first by parent, with tree-drawing prefixes for the command column."""
    by_host = {r.pid: r for r in rows}
    children: dict[int, list[ProcessRow]] = {}
    roots: list[ProcessRow] = []
    for r in rows:
        parent = by_host.get(r.ppid)
        if parent is None or parent is r:
            roots.append(r)
        else:
            children.setdefault(parent.pid, []).append(r)
    out: list[tuple[ProcessRow, str]] = []
    seen: set[int] = set()

    def walk(r: ProcessRow, lead: str, branch: str) -> None:
        if r.pid in seen:
            return
        seen.add(r.pid)
        out.append((r, lead + branch))
        kids = sorted(children.get(r.pid, ()), key=lambda p: p.pid)
        cont = lead + ("   " if branch == "└─ " else "│  " if branch else "")
        for i, kid in enumerate(kids):
            walk(kid, cont, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in sorted(roots, key=lambda p: p.pid):
        walk(root, "", "")
    # A cycle (pid reuse between two polls) must not hide processes.
    out += [(r, "") for r in rows if r.pid not in seen]
    return out


class ProcessesScreen(Screen[None], BoxesAware):
    HELP_TITLE = "processes"
    CSS_PATH = "processes.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "back", "Back", id="ps.back"),
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("K", "signal", "Signal", id="ps.signal", tooltip="Send a signal to this process"),
    ]

    def __init__(self, box_name: str) -> None:
        super().__init__()
        self.box_name = box_name
        self.processes: list[ProcessRow] = []
        self.error: str | None = None
        self.gone = False
        self.cpu: dict[int, float | None] = {}  # host pid -> CPU % since the last poll
        # (host pid, start time) -> (when, CPU seconds) at the last poll
        self._cpu_before: dict[tuple[int, object], tuple[float, float]] = {}

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="ps-title")
        yield LiveTable(id="processes", cursor_type="row", zebra_stripes=True)
        yield Static("", id="ps-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#processes", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.boxes_changed()
        self._timer = self.set_interval(self.tapp.refresh_interval, self.poll)
        self.poll()

    def boxes_changed(self) -> None:
        if not self.query("#ps-title"):
            return  # pushed, not composed yet: on_mount calls this once it is
        box = self.tapp.box(self.box_name)
        title = Text.assemble(("processes of ", ""), (self.box_name, "bold"), "  ")
        if box is None:
            title.append("(the box is gone)", style="red")
            if self.is_mounted and not self.gone:
                self._box_gone()
        else:
            title.append_text(status_text(box.status))
            if box.pid:
                title.append(f"  init pid {box.pid} on the host")
        self.query_one("#ps-title", Static).update(title)

    def _box_gone(self) -> None:
        # Its processes died with it: listing them still would show pids that may be reused.
        self.gone = True
        self._timer.stop()
        self.workers.cancel_group(self, "ps")
        self.processes = []
        self.query_one("#processes", DataTable).clear()
        show_text(
            self.query_one("#ps-status", Static), "the box was destroyed: q or escape to go back"
        )

    @work(exclusive=True, exit_on_error=False, group="ps")
    async def poll(self) -> None:
        app = self.tapp
        if self.gone:
            return
        if "ps" in app.unavailable:
            self._timer.stop()
            self.show_error(app.unavailable["ps"])
            return
        try:
            rows = await app.backend.processes(self.box_name)
        except ServiceUnavailable as exc:
            app.mark_unavailable("ps", exc.message)
            self._timer.stop()
            self.show_error(exc.message)
            return
        except ServiceError as exc:
            self.show_error(exc.message)
            return
        self.show(rows)

    def show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#ps-status", Static).update(
            Text(f"processes unavailable: {message}", style="bold red")
        )

    def _measure_cpu(self, rows: list[ProcessRow]) -> None:
        now = monotonic()
        before, self._cpu_before = self._cpu_before, {}
        self.cpu = {}
        for r in rows:
            key = (r.pid, r.started)
            last = before.get(key)
            if last is not None and now > last[0]:
                used = max(r.cpu_time - last[1], 0.0)
                self.cpu[r.pid] = round(used / (now - last[0]) * 100, 1)
            else:
                self.cpu[r.pid] = None  # first sight: nothing to measure against yet
            self._cpu_before[key] = (now, r.cpu_time)

    def show(self, rows: list[ProcessRow]) -> None:
        if self.gone:
            return  # a poll that finished after the box went
        self.error = None
        self.processes = rows
        self._measure_cpu(rows)
        table = self.query_one("#processes", DataTable)
        cells = [
            (
                str(r.pid),
                [
                    str(r.box_pid) if r.box_pid else "-",
                    str(r.box_ppid) if r.box_ppid else "-",
                    str(r.pid),
                    str(r.ppid),
                    r.user,
                    r.state,
                    percent_text(self.cpu.get(r.pid)),
                    human_bytes(r.rss),
                    Text(prefix, style="dim") + Text(r.command),
                ],
            )
            for r, prefix in tree_order(rows)
        ]
        sync_rows(table, cells, COLUMN_KEYS, "pid")
        total_cpu = sum(c for c in self.cpu.values() if c is not None)
        total_rss = sum(r.rss for r in rows)
        self.query_one("#ps-status", Static).update(
            f"{len(rows)} processes · CPU {percent_text(total_cpu)} · RSS {human_bytes(total_rss)}"
        )

    def current_process(self) -> ProcessRow | None:
        key = cursor_key(self.query_one("#processes", DataTable))
        return next((p for p in self.processes if str(p.pid) == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":
            return True if self.current_process() and self.tapp.box(self.box_name) else None
        return True

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()

    def action_back(self) -> None:
        self.dismiss()

    def action_signal(self) -> None:
        from tuibox.screens.signal import SignalScreen

        proc = self.current_process()
        if proc is None:
            return

        def chosen(sig: str | None) -> None:
            if sig:
                self.send(proc, sig)

        label = f"Signal process {proc.box_pid or proc.pid} ({proc.command[:40]})"
        self.app.push_screen(SignalScreen(label), chosen)

    @work(group="signal", exit_on_error=False)
    async def send(self, proc: ProcessRow, sig: str) -> None:
        box = self.tapp.box(self.box_name)
        if box is None:
            self.notify(f"box {self.box_name!r} is gone", severity="error")
            return
        try:
            await self.tapp.backend.signal_process(box, proc, sig)
        except ServiceError as exc:
            self.notify(exc.message, title=f"signal {sig}", severity="error")
            return
        self.notify(f"sent SIG{sig} to {proc.box_pid or proc.pid}", timeout=3)
        self.poll()
