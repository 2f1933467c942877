"""The main screen: every box in the state root, live, with the actions on the selection."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import ColumnKey

from tuibox.app import BoxesAware
from tuibox.service import GUARDS, BoxRow, ServiceError, SpecSummary, allowed, allowed_states
from tuibox.widgets.box_details import BoxDetails
from tuibox.widgets.debris import DebrisLine
from tuibox.widgets.format import (
    STATUS_ORDER,
    human_duration,
    memory_text,
    percent_text,
    short,
    since,
    status_text,
)
from tuibox.widgets.quiet import show
from tuibox.widgets.table_sync import LiveTable, cursor_key, sync_rows
from tuibox.widgets.terminal import TerminalPane
from tuibox.widgets.terminal_tabs import TerminalTab, TerminalTabs, exit_text

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

# (key, header label, sort key). Labels get a sort arrow, so each keeps room for one.
# The essential columns first: a narrow terminal cuts the table on the right (it scrolls).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("sel", " "),
    ("name", "NAME"),
    ("state", "STATE"),
    ("cpu", "CPU %"),
    ("mem", "MEM / LIMIT"),
    ("uptime", "UPTIME"),
    ("image", "IMAGE/ROOTFS"),
    ("command", "COMMAND"),
    ("pid", "PID"),
    ("address", "ADDRESS"),
    ("ports", "PORTS"),
)
COLUMN_KEYS = tuple(k for k, _ in COLUMNS)
SORTABLE = COLUMN_KEYS[1:]
# A key per sortable column, left to right (1 = NAME ... 0 = MEM): press it again to reverse.
SORT_KEYS = dict(zip("1234567890", SORTABLE, strict=True))
_DIGITS = re.compile(r"(\d+)")
SELECTED_MARK = "●"
# The footer shows, in this order, as many of these bindings (by id) as fit its width; the
# rest are in the help screen (?) and the palette. Pairs such as start and stop are two items,
# not a group: a group's keys were drawn together ("sx") and read like a chord.
FOOTER_ORDER = (
    "app.help",
    "pane.focus",
    "pane.close",
    "box.create",
    "box.start",
    "box.stop",
    "box.shell",
    "box.logs",
    "box.destroy",
    "box.filter",
    "box.restart",
    "box.attach",
    "box.processes",
    "box.inspect",
    "box.pause",
    "box.resume",
    "box.kill",
    "box.select",
    "box.sort",
    "box.create_bundle",
    "box.gc",
)
FOOTER_RESERVED = 34  # the app's "q Quit", "I Images" and the palette's "^p palette"

# Action -> the runtime verb it needs (for "unavailable" greying).
VERB_OF: dict[str, str] = {
    "start": "start",
    "stop": "stop",
    "restart": "restart",
    "pause": "pause",
    "resume": "resume",
    "kill": "kill",
    "destroy": "destroy",
    "shell": "exec",
    "shell_suspend": "exec",
    "attach": "attach",
    "processes": "ps",
    "logs": "logs",
    "limits": "update",
}
# What a row's state says while its verb runs.
PENDING: dict[str, str] = {
    "start": "starting…",
    "stop": "stopping…",
    "restart": "restarting…",
    "pause": "pausing…",
    "resume": "resuming…",
    "kill": "signalling…",
    "destroy": "destroying…",
}
# Actions on the one box under the cursor; the others act on the whole selection.
SINGLE = frozenset({"shell", "shell_suspend", "attach", "processes", "logs", "limits"})
# Actions on the terminal panes: hidden from the footer while no pane is open.
PANE_ACTIONS = frozenset({"focus_pane", "close_pane", "next_pane", "zoom_pane", "record_pane"})


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """q1, q2, q10 rather than q1, q10, q2: runs of digits compare as numbers."""
    parts = []
    for chunk in _DIGITS.split(text):
        if chunk:
            parts.append((0, int(chunk)) if chunk.isdigit() else (1, chunk.lower()))
    return tuple(parts)


def sort_value(box: BoxRow, column: str, app: TuiboxApp) -> Any:
    stats = app.history.latest.get(box.name)
    now = app.clock()
    match column:
        case "state":
            return STATUS_ORDER.get(box.status, 9)
        case "image":
            return natural_key(box.source)
        case "command":
            return natural_key(" ".join(box.command))
        case "pid":
            return box.pid
        case "address":
            return box.address or ""
        case "ports":
            return ",".join(box.ports)
        case "uptime":
            up = since(box.started, now) if box.status in ("running", "paused") else None
            return up if up is not None else -1.0
        case "cpu":
            return stats.cpu_percent if stats else -1.0
        case "mem":
            return stats.memory_usage if stats else -1
    return natural_key(box.name)


def matches(box: BoxRow, text: str) -> bool:
    if not text:
        return True
    hay = " ".join(
        (box.name, box.status, box.source, " ".join(box.command), box.address or "", *box.ports)
    ).lower()
    return all(word in hay for word in text.lower().split())


def suggest_name(taken: set[str], prefix: str = "box") -> str:
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


class BoxesScreen(Screen[None], BoxesAware):
    HELP_TITLE = "box list"
    CSS_PATH = "boxes.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        # Help first: the footer cuts off at the right on narrow terminals.
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("c", "create", "Create", id="box.create", tooltip="Create and start a new box"),
        Binding("s", "start", "Start", id="box.start"),
        Binding(
            "x",
            "stop",
            "Stop",
            id="box.stop",
            tooltip="SIGTERM, then SIGKILL after a timeout",
        ),
        Binding("r", "restart", "Restart", id="box.restart"),
        Binding("p", "pause", "Pause", id="box.pause"),
        Binding("u", "resume", "Resume", id="box.resume"),
        Binding("d", "destroy", "Destroy", id="box.destroy"),
        Binding(
            "e",
            "shell",
            "Shell",
            id="box.shell",
            tooltip="Open /bin/sh in the box, in a terminal pane below the list",
        ),
        Binding(
            "a",
            "attach",
            "Attach",
            id="box.attach",
            tooltip="A terminal pane on the box's own console (boxes made with a terminal)",
        ),
        Binding(
            "E",
            "shell_suspend",
            "Shell (full terminal)",
            id="box.shell_suspend",
            show=False,
            tooltip="Suspend the TUI and run /bin/sh in the box in the real terminal",
        ),
        Binding("f", "focus_pane", "To pane", id="pane.focus", tooltip="Type into the pane"),
        Binding(
            "w",
            "close_pane",
            "Close pane",
            id="pane.close",
            tooltip="Close the terminal pane; a shell ends, an attach detaches",
        ),
        Binding("n", "next_pane", "Next pane", id="pane.next", show=False),
        # alt+z as well: the key that zooms from inside a pane (where z goes to the program).
        Binding("z,alt+z", "zoom_pane", "Zoom pane", id="pane.zoom", show=False),
        Binding("R", "record_pane", "Record pane", id="pane.record", show=False),
        Binding("V", "recordings", "Recordings", id="box.recordings", show=False),
        Binding("t", "processes", "Processes", id="box.processes"),
        Binding("l", "logs", "Logs", id="box.logs"),
        Binding("y", "inspect", "Inspect", id="box.inspect", tooltip="Everything about the box"),
        Binding("K", "kill", "Kill", id="box.kill", tooltip="Send a signal to the box's init"),
        Binding("slash", "filter", "Filter", id="box.filter"),
        Binding(
            "space",
            "toggle_select",
            "Select",
            id="box.select",
            tooltip="Add the box to (or remove it from) the selection for bulk actions",
        ),
        Binding("o", "sort", "Sort", id="box.sort", tooltip="Sort by the next column"),
        Binding(
            "b",
            "create_bundle",
            "From bundle",
            id="box.create_bundle",
            tooltip="Create a box from an existing bundle's config.json",
        ),
        # Not in the footer (it is full): in the help screen and the palette.
        Binding("N", "networks", "Networks", id="box.networks", show=False),
        Binding("m", "network_map", "Network map", id="box.network_map", show=False),
        Binding(
            "L",
            "limits",
            "Limits (memory, cpus, pids)",
            id="box.limits",
            show=False,
            tooltip="Change the box's limits live (tuibox update)",
        ),
        Binding("A", "select_all", "Select all", id="box.select_all", show=False),
        Binding("O", "sort_reverse", "Reverse sort", id="box.sort_reverse", show=False),
        *(
            Binding(
                key,
                f"sort_by('{column}')",
                f"Sort by {column}",
                id=f"box.sort_{column}",
                show=False,
            )
            for key, column in SORT_KEYS.items()
        ),
        Binding("i", "toggle_details", "Details", id="box.details", show=False),
        Binding("escape", "clear", "Clear filter/selection", id="box.clear", show=False),
        Binding(
            "C",
            "gc",
            "Clean up debris",
            id="box.gc",
            tooltip="Remove what boxes that no longer exist left behind (tuibox gc --yes)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self.selected: set[str] = set()
        self.pending_select: str | None = None
        self.specs: dict[str, SpecSummary | None] = {}
        self._details_for: str | None = None
        self._binding_state: tuple[Any, ...] = ()
        self._details_hidden_before_panes = False
        self._footer_bindings: dict[str, Binding] = {}
        self._last_inputs: tuple[Any, ...] = ()

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="filter: words in name, state, image, command, address",
            id="filter",
            classes="hidden",
        )
        table = LiveTable(id="boxes", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="list-status", classes="status-line")
        yield DebrisLine(id="debris")
        yield BoxDetails(id="details")
        yield TerminalTabs(id="panes")
        yield Footer()

    def on_resize(self) -> None:
        self._fit_footer()

    def _fit_footer(self) -> None:
        """Show in the footer the bindings of FOOTER_ORDER that fit, in that order."""
        panes = self.is_mounted and self.panes.count > 0
        room = self.size.width - FOOTER_RESERVED
        wanted: set[str] = set()
        for ident in FOOTER_ORDER:
            binding = self._footer_bindings.get(ident)
            if binding is None or (ident.startswith("pane.") and not panes):
                continue
            if ident == "box.gc" and not (self.is_mounted and self.debris.items):
                continue
            cost = len(self.app.get_key_display(binding)) + len(binding.description) + 3
            if cost > room:
                break
            room -= cost
            wanted.add(ident)
        table = self._bindings.key_to_bindings
        changed = False
        for key, bindings in table.items():
            new = [
                replace(b, show=b.id in wanted) if b.id in self._footer_bindings else b
                for b in bindings
            ]
            if [b.show for b in new] != [b.show for b in bindings]:
                table[key] = new
                changed = True
        if changed:
            self.refresh_bindings()

    def on_mount(self) -> None:
        # What the footer may show: the bindings that are shown by default.
        self._footer_bindings = {
            b.id: b
            for bindings in self._bindings.key_to_bindings.values()
            for b in bindings
            if b.show and b.id in FOOTER_ORDER
        }
        table = self.query_one("#boxes", DataTable)
        for key, label in COLUMNS:
            table.add_column(Text(label + "  ") if key != "sel" else label, key=key)
        self._update_headers()
        table.focus()
        self.boxes_changed()

    # ---- data

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#boxes", DataTable)

    def visible_boxes(self) -> list[BoxRow]:
        app = self.tapp
        shown = [b for b in app.boxes if matches(b, self.filter_text)]
        shown.sort(key=lambda b: natural_key(b.name))
        shown.sort(key=lambda b: sort_value(b, self.sort_column, app), reverse=self.sort_reverse)
        return shown

    def cells(self, box: BoxRow) -> list[Any]:
        app = self.tapp
        now = app.clock()
        live = box.status in ("running", "paused")
        stats = app.history.latest.get(box.name) if live else None
        state = status_text(box.status)
        if box.status == "stopped" and box.exit_status is not None:
            state.append(f" ({box.exit_status}{' OOM' if box.oom_killed else ''})")
        if box.restarts:
            state.append(f" ↻{box.restarts}", style="yellow")
        if (verb := app.pending.get(box.name)) is not None:
            # At once, before the runtime answers: a stop that waits out its timeout is
            # otherwise "running" for seconds, and the user presses x again.
            state = Text(PENDING.get(verb, f"{verb}…"), style="bold magenta")
        chosen = box.name in self.selected
        memory = stats.memory_limit or box.limits.memory if stats else None
        cells: dict[str, Any] = {
            "sel": Text(SELECTED_MARK, style="bold yellow") if chosen else " ",
            "name": Text(box.name, style="bold" if chosen else ""),
            "state": state,
            "cpu": percent_text(stats.cpu_percent) if stats else "-",
            "mem": memory_text(stats.memory_usage, memory) if stats else "-",
            "uptime": human_duration(since(box.started, now), coarse=True) if live else "-",
            "image": short(box.source, 28),
            "command": short(" ".join(box.command), 28),
            "pid": str(box.pid) if box.pid else "-",
            "address": box.address or "-",
            "ports": short(",".join(box.ports), 20) or "-",
        }
        return [cells[k] for k in COLUMN_KEYS]

    def boxes_changed(self) -> None:
        """Called by the app after each poll: update the table in place, then the rest."""
        if not self.is_mounted:
            return
        app = self.tapp
        table = self.table
        names = {b.name for b in app.boxes}
        self.selected &= names
        # At rest nothing the list shows has changed since the last poll: then only the
        # details (their sparklines move every sample) are drawn again, whatever the number
        # of boxes, instead of building and comparing every row's cells each second.
        inputs = self._list_inputs()
        if inputs == self._last_inputs:
            self._update_details()
            return
        self._last_inputs = inputs
        shown = self.visible_boxes()
        sync_rows(table, [(b.name, self.cells(b)) for b in shown], COLUMN_KEYS, "name")
        if self.pending_select and self.pending_select in {b.name for b in shown}:
            table.move_cursor(row=table.get_row_index(self.pending_select))
            self.pending_select = None
        self._update_status(len(shown))
        self.query_one(DebrisLine).boxes_changed(app.boxes)
        self._update_details()
        self._maybe_refresh_bindings()

    def _list_inputs(self) -> tuple[Any, ...]:
        """Everything the rows, the title and the status line are made of."""
        app = self.tapp
        now = app.clock()
        latest = app.history.latest
        # Uptimes show seconds under a minute, then minutes: the clock counts only as finely.
        young = any(
            (up := since(b.started, now)) is not None and up < 60
            for b in app.boxes
            if b.status in ("running", "paused")
        )
        tick = int(now.timestamp()) if young else int(now.timestamp() // 60)
        return (
            tuple(app.boxes),
            tuple(latest.get(b.name) for b in app.boxes),
            tuple(sorted(app.pending.items())),
            frozenset(self.selected),
            self.filter_text,
            self.sort_column,
            self.sort_reverse,
            self.pending_select,
            app.list_error,
            young,
            tick,
        )

    def _update_status(self, shown: int) -> None:
        app = self.tapp
        total = len(app.boxes)
        table = self.table
        title = f"boxes {shown}" if shown == total else f"boxes {shown} of {total}"
        if self.filter_text:
            title += f" · filter “{self.filter_text}”"
        if self.selected:
            title += f" · {len(self.selected)} selected"
        if table.border_title != title:
            table.border_title = title
        if app.list_error:
            message: str | Text = Text(f"cannot list boxes: {app.list_error}", style="bold red")
        elif not total:
            message = "No boxes yet. Press c to create one (busybox, /bin/sh), or b for a bundle."
        elif not shown:
            message = "No box matches the filter. Press escape to clear it."
        else:
            message = ""
        status = self.query_one("#list-status", Static)
        show(status, message)
        status.set_class(not message, "hidden")

    def current_box(self) -> BoxRow | None:
        key = cursor_key(self.table)
        return self.tapp.box(key) if key else None

    def targets(self) -> list[BoxRow]:
        """The selection if there is one, else the box under the cursor."""
        app = self.tapp
        if self.selected:
            return [b for b in app.boxes if b.name in self.selected]
        box = self.current_box()
        return [box] if box else []

    # ---- details

    def _update_details(self) -> None:
        box = self.current_box()
        if box is not None and box.name not in self.specs:
            self.specs[box.name] = None
            self.load_spec(box)
        details = self.query_one(BoxDetails)
        reason = self.tapp.unavailable.get("stats") or self.tapp.stats_error
        details.show(
            box,
            self.specs.get(box.name) if box else None,
            self.tapp.clock(),
            self.tapp.history,
            reason,
        )

    @work(group="spec", exit_on_error=False)
    async def load_spec(self, box: BoxRow) -> None:
        try:
            spec = await self.tapp.backend.spec(box)
        except ServiceError:
            spec = None
        self.specs[box.name] = spec
        self._update_details()

    @on(DataTable.RowHighlighted, "#boxes")
    def _row_highlighted(self) -> None:
        self._update_details()
        self._maybe_refresh_bindings()

    @on(DataTable.RowSelected, "#boxes")
    def _row_selected(self) -> None:
        if self.check_action("processes", ()):
            self.action_processes()

    @on(DataTable.HeaderSelected, "#boxes")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value or "name"
        if column not in SORTABLE:
            return
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._resort()

    # ---- bindings state

    def action_reason(self, action: str) -> str | None:
        """Why an action cannot run now, or None when it can (shared by keys and palette)."""
        if action in PANE_ACTIONS:
            return None if self.is_mounted and self.panes.count else "no terminal pane is open"
        if action == "gc":
            return None if self.is_mounted and self.debris.items else "no debris found"
        verb = VERB_OF.get(action)
        if verb is None:
            return None
        app = self.tapp
        if verb in app.unavailable:
            return app.unavailable[verb]
        if action == "restart" and "stop" in app.unavailable:
            return app.unavailable["stop"]
        boxes = self.targets()
        if action in SINGLE:
            box = self.current_box()
            boxes = [box] if box else []
        if not boxes:
            return "no box selected"
        if action == "attach" and not boxes[0].terminal:
            return f"{boxes[0].name} has no console (made without a terminal, -t); use Shell"
        if any(allowed(action, b.status) for b in boxes):
            return None
        states = " or ".join(sorted(allowed_states(action))) or "never"
        if len(boxes) == 1:
            return f"{boxes[0].name} is {boxes[0].status}; {action} needs {states}"
        return f"none of {len(boxes)} boxes is {states}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in PANE_ACTIONS:
            # False hides them: pane keys are noise in the footer until a pane is open.
            return self.is_mounted and self.panes.count > 0
        if action == "gc":  # hidden too, until there is debris to clean up
            return self.is_mounted and bool(self.debris.items)
        # None, not False: a greyed key stays in the footer, so the user learns it exists.
        return None if self.action_reason(action) else True

    def _maybe_refresh_bindings(self) -> None:
        # Refreshing the footer every poll would repaint it every second; only on a change.
        state = (
            *(self.action_reason(a) is None for a in VERB_OF),
            self.panes.count if self.is_mounted else 0,
            self.is_mounted and bool(self.debris.items),
        )
        if state != self._binding_state:
            self._binding_state = state
            self._fit_footer()
            self.refresh_bindings()

    # ---- actions

    def _act(self, verb: str, **options: Any) -> None:
        names = [b.name for b in self.targets() if allowed(verb, b.status)]
        if names:
            self.tapp.perform(verb, names, **options)

    def action_start(self) -> None:
        self._act("start")

    def action_stop(self) -> None:
        self._act("stop")

    def action_restart(self) -> None:
        self._act("restart")

    def action_pause(self) -> None:
        self._act("pause")

    def action_resume(self) -> None:
        self._act("resume")

    def action_kill(self) -> None:
        from tuibox.screens.signal import SignalScreen

        names = [b.name for b in self.targets() if allowed("kill", b.status)]
        if not names:
            return

        def chosen(sig: str | None) -> None:
            if sig:
                self.tapp.perform("kill", names, sig=sig)

        self.app.push_screen(SignalScreen(f"Send a signal to {', '.join(names)}"), chosen)

    def action_destroy(self) -> None:
        from tuibox.screens.confirm import ConfirmScreen, destroy_question

        boxes = self.targets()
        if not boxes:
            return
        names = [b.name for b in boxes]
        question = destroy_question([(b.name, b.status not in GUARDS["destroy"]) for b in boxes])

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.selected -= set(names)
                self.tapp.perform("destroy", names)

        self.app.push_screen(ConfirmScreen(question, confirm="Destroy"), confirmed)

    @property
    def debris(self) -> DebrisLine:
        return self.query_one("#debris", DebrisLine)

    def action_gc(self) -> None:
        from tuibox.screens.confirm import ConfirmScreen
        from tuibox.widgets.debris import question

        line = self.debris

        def confirmed(yes: bool | None) -> None:
            if yes:
                line.collect()

        if line.items:
            self.app.push_screen(ConfirmScreen(question(line.items), confirm="Clean up"), confirmed)

    async def action_shell(self) -> None:
        box = self.current_box()
        if box:
            await self.open_pane(box.name, "shell")

    async def action_attach(self) -> None:
        box = self.current_box()
        if box:
            await self.open_pane(box.name, "attach")

    def action_shell_suspend(self) -> None:
        box = self.current_box()
        if box:
            self.tapp.shell_in_real_terminal(box.name)

    # ---- terminal panes

    @property
    def panes(self) -> TerminalTabs:
        return self.query_one("#panes", TerminalTabs)

    async def open_pane(self, name: str, mode: str, shell: str = "/bin/sh") -> TerminalTab | None:
        """A terminal pane on box `name`: a new shell, or its console (one attach per box)."""
        tabs = self.panes
        if mode == "attach" and (open_tab := tabs.find(name, mode)) is not None:
            tabs.active = open_tab.id or ""
            tabs.focus_current()
            return open_tab
        try:
            command = self.tapp.backend.terminal_command(name, mode, shell)
        except (ServiceError, ValueError) as exc:
            self.app.notify(str(exc), title=f"{mode} {name}", severity="error")
            return None
        self._panes_shown(True)
        tab = await tabs.open(name, mode, command.argv, command.env)
        self._maybe_refresh_bindings()
        return tab

    def _panes_shown(self, shown: bool) -> None:
        if shown == self.has_class("with-panes"):
            return
        details = self.query_one(BoxDetails)
        if shown:
            # The panes take the details' room; the user can still bring them back (i).
            self._details_hidden_before_panes = details.has_class("hidden")
            details.add_class("hidden")
        else:
            details.set_class(self._details_hidden_before_panes, "hidden")
            if self.maximized is not None:
                self.minimize()
        self.set_class(shown, "with-panes")

    def on_terminal_pane_detached(self, message: TerminalPane.Detached) -> None:
        # The program keeps running in its tab; the keys come back to the list.
        if self.maximized is not None:
            self.minimize()
        self.table.focus()

    def on_terminal_pane_zoom_toggled(self, message: TerminalPane.ZoomToggled) -> None:
        self.action_zoom_pane()
        message.pane.focus()  # the keys stay in the pane, zoomed or not

    def on_terminal_pane_exited(self, message: TerminalPane.Exited) -> None:
        tab = next((t for t in self.panes.tabs() if t.terminal is message.pane), None)
        if tab is not None and message.status:
            # A non-zero end is worth a word even when that tab is not in view.
            self.app.notify(
                f"{tab.base_title}: {exit_text(message.status)}", severity="warning", timeout=6
            )
        self.tapp.request_refresh()
        self.refresh_bindings()

    def on_terminal_tab_failed(self, message: TerminalTab.Failed) -> None:
        self.app.notify(message.error, title=message.tab.base_title, severity="error")

    def action_focus_pane(self) -> None:
        self.panes.focus_current()

    def action_next_pane(self) -> None:
        self.panes.cycle()

    async def action_close_pane(self) -> None:
        tabs = self.panes
        tab = tabs.current
        if tab is None:
            return
        # Closed from inside (an exited pane has the keys): go on in the next pane. Closed
        # from the list: stay on the list.
        from_inside = self.focused is not None and tab in self.focused.ancestors_with_self
        await tabs.close(tab)
        if tabs.count == 0:
            self._panes_shown(False)
            self.table.focus()
        elif not (from_inside and tabs.focus_current()):
            self.table.focus()
        self._maybe_refresh_bindings()

    def action_record_pane(self) -> None:
        self.panes.post_record_request()

    def action_recordings(self) -> None:
        from tuibox.screens.recordings import RecordingsScreen

        self.app.push_screen(RecordingsScreen())

    def action_zoom_pane(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximize(self.panes, container=False)
            self.panes.focus_current()

    def action_processes(self) -> None:
        from tuibox.screens.processes import ProcessesScreen

        box = self.current_box()
        if box:
            self.app.push_screen(ProcessesScreen(box.name))

    def action_inspect(self) -> None:
        from tuibox.screens.inspect import InspectScreen

        box = self.current_box()
        if box:
            self.app.push_screen(InspectScreen(box.name))

    def action_logs(self) -> None:
        from tuibox.screens.logs import LogsScreen

        box = self.current_box()
        if box:
            self.app.push_screen(LogsScreen(box.name))

    def action_create(self) -> None:
        from tuibox.screens.create import CreateBoxScreen

        taken = {b.name for b in self.tapp.boxes}
        self.app.push_screen(CreateBoxScreen(suggest_name(taken)), self._created)

    def action_create_bundle(self) -> None:
        from tuibox.screens.bundle import BundleScreen

        taken = {b.name for b in self.tapp.boxes}
        self.app.push_screen(BundleScreen(suggest_name(taken)), self._created)

    def _created(self, name: str | None) -> None:
        if name:
            self.pending_select = name
            self.filter_text = ""
            self.query_one("#filter", Input).value = ""
            self.tapp.request_refresh()

    def action_toggle_select(self) -> None:
        box = self.current_box()
        if box is None:
            return
        self.selected ^= {box.name}
        self.boxes_changed()
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.action_cursor_down()

    def action_select_all(self) -> None:
        shown = {b.name for b in self.visible_boxes()}
        self.selected = set() if shown <= self.selected else self.selected | shown
        self.boxes_changed()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.boxes_changed()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if not self.filter_text:
            self.query_one("#filter", Input).add_class("hidden")
        self.table.focus()

    def action_clear(self) -> None:
        field = self.query_one("#filter", Input)
        if self.filter_text or field.has_focus:
            field.value = ""
            field.add_class("hidden")
            self.table.focus()
        elif self.selected:
            self.selected.clear()
            self.boxes_changed()

    def action_sort(self) -> None:
        i = SORTABLE.index(self.sort_column)
        self.sort_column = SORTABLE[(i + 1) % len(SORTABLE)]
        self.sort_reverse = False
        self._resort()

    def action_sort_by(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._resort()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        self._update_headers()
        self.boxes_changed()

    def _update_headers(self) -> None:
        table = self.table
        arrow = "▼" if self.sort_reverse else "▲"
        for key, label in COLUMNS:
            if key == "sel":
                continue
            table.columns[ColumnKey(key)].label = Text(
                f"{label} {arrow}" if key == self.sort_column else f"{label}  "
            )
        # Which column sorts, which comes next (o), and the direct keys.
        nxt = SORTABLE[(SORTABLE.index(self.sort_column) + 1) % len(SORTABLE)]
        label_of = dict(COLUMNS)
        table.border_subtitle = (
            f"sort {label_of[self.sort_column]} {arrow} · o: {label_of[nxt]} · 1-9,0: a column"
        )
        # Labels are cached with the rendered header; this drops the caches.
        table.notify_style_update()
        table.refresh()

    def go_to_box(self, name: str) -> None:
        """Put the cursor on a box (clearing a filter that hides it)."""
        if name not in {b.name for b in self.visible_boxes()}:
            self.filter_text = ""
            self.query_one("#filter", Input).value = ""
        self.pending_select = name
        self.boxes_changed()
        self.table.focus()

    def action_networks(self) -> None:
        from tuibox.screens.networks import NetworksScreen

        self.app.push_screen(NetworksScreen())

    @work(exclusive=True, exit_on_error=False, group="netmap-open")
    async def action_network_map(self) -> None:
        from tuibox.screens.netmap import open_network_map

        await open_network_map(self.tapp)

    def action_limits(self) -> None:
        from tuibox.screens.limits import LimitsScreen

        box = self.current_box()
        if box is None or not allowed("limits", box.status):
            return

        def done(changed: bool | None) -> None:
            if changed:
                self.app.notify(f"limits of {box.name} updated", timeout=4)
                self.tapp.request_refresh()

        self.app.push_screen(LimitsScreen(box), done)

    def action_toggle_details(self) -> None:
        self.query_one(BoxDetails).toggle_class("hidden")
