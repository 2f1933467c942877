"""`L` on the list: the selected box's memory, CPU and pids limits, changed live (`tuibox
update`). The fields start with the current values; an emptied field means "no limit" (memory,
pids). Each problem is one line under its field, naming the field as the form does (never the
CLI's flag), and goes as soon as the field changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tuibox.service import (
    BoxRow,
    ServiceError,
    limit_changes,
    limits_problem,
    limits_text,
)

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

FIELDS: tuple[tuple[str, str, str], ...] = (
    ("memory", "Memory", "empty: no limit · 64m, 1g"),
    ("cpus", "CPUs", "e.g. 0.5 (of one CPU)"),
    ("pids", "Pids", "empty: no limit · e.g. 100"),
)
FIELD_KEYS = tuple(k for k, _, _ in FIELDS)


class LimitsScreen(ModalScreen[bool]):
    CSS_PATH = "networks.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="limits.cancel"),
        Binding("ctrl+s", "submit", "Apply", id="limits.submit"),
    ]

    def __init__(self, box: BoxRow) -> None:
        super().__init__()
        self.box = box
        self.before = limits_text(box.limits)
        self.busy = False

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="limits-dialog"):
            yield Label(f"Limits of {self.box.name}", classes="dialog-title")
            for key, label, placeholder in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(label, classes="field-label")
                    yield Input(self.before[key], id=key, compact=True, placeholder=placeholder)
                yield Label("", id=f"{key}-error", classes="field-error hidden")
            yield Static(
                "Applied at once to the running box (its cgroup); Enter applies, Esc cancels.",
                id="limits-note",
                classes="status-line",
            )
            yield Static("", id="form-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Apply", id="submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#memory", Input).focus()

    def values(self) -> dict[str, str]:
        return {k: self.query_one(f"#{k}", Input).value for k in FIELD_KEYS}

    def show_error(self, message: str, field: str | None = None) -> None:
        if field is None:
            # The runtime's own error: under the field it starts with, if it names one.
            field = next((k for k in FIELD_KEYS if message.startswith(k)), None)
        if field in FIELD_KEYS:
            label = self.query_one(f"#{field}-error", Label)
            label.update(message)
            label.remove_class("hidden")
            self.query_one(f"#{field}", Input).focus()
        else:
            self.query_one("#form-error", Static).update(message)

    def _clear(self, key: str) -> None:
        label = self.query_one(f"#{key}-error", Label)
        label.update("")
        label.add_class("hidden")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id in FIELD_KEYS:
            self._clear(event.input.id or "")
            self.query_one("#form-error", Static).update("")

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        if self.busy:
            return
        for key in FIELD_KEYS:
            self._clear(key)
        self.query_one("#form-error", Static).update("")
        changes = limit_changes(self.before, self.values())
        if not changes:
            self.dismiss(False)
            return
        problem = limits_problem(changes)
        if problem is not None:
            self.show_error(problem[1], problem[0])
            return
        self.apply(changes)

    @work(exclusive=True, exit_on_error=False, group="limits")
    async def apply(self, changes: dict[str, str]) -> None:
        self.busy = True
        button = self.query_one("#submit", Button)
        button.disabled = True
        try:
            await self.tapp.backend.update_limits(self.box.name, changes)
        except ServiceError as exc:
            self.show_error(exc.message)
            return
        finally:
            self.busy = False
            button.disabled = False
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(False)
