"""Create a box from an existing OCI bundle (a directory holding config.json)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static, Switch

from tuibox.screens.create import name_problem
from tuibox.service import ServiceError
from tuibox.widgets.form_switch import FormSwitch
from tuibox.widgets.path_suggester import PathSuggester

# Errors about the name itself go under the name field; everything else under the bundle.
NAME_KINDS = frozenset({"exists", "invalid-name"})

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp


def bundle_problem(path: str) -> str | None:
    if not path:
        return "bundle: give the directory that holds config.json"
    if not os.path.isdir(path):
        return f"bundle {path}: no such directory"
    if not os.path.isfile(os.path.join(path, "config.json")):
        return f"bundle {path}: no config.json in it"
    return None


class BundleScreen(ModalScreen[str | None]):
    CSS_PATH = "create.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="bundle.cancel"),
        Binding("ctrl+s", "submit", "Create", id="bundle.submit"),
        # Reached only from fields that do not take Enter themselves (the switch).
        Binding("enter", "submit", "Create", id="bundle.enter", show=False),
    ]

    def __init__(self, suggested_name: str) -> None:
        super().__init__()
        self.suggested_name = suggested_name
        self.busy = False

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="bundle-dialog"):
            yield Label("Create a box from config.json", classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("Bundle", classes="field-label")
                yield Input(
                    compact=True,
                    placeholder="/path/to/bundle (the directory with config.json)",
                    suggester=PathSuggester(),
                    id="bundle",
                )
            yield Label("", id="bundle-error", classes="field-error hidden")
            with Horizontal(classes="row"):
                yield Label("Name", classes="field-label")
                yield Input(self.suggested_name, id="name", compact=True)
            yield Label("", id="name-error", classes="field-error hidden")
            with Horizontal(classes="row switches"):
                yield Label("Start it", classes="field-label")
                yield FormSwitch(True, id="start")
            yield Static("", id="form-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="submit", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#bundle", Input).focus()

    def show_error(self, message: str, field: str | None) -> None:
        self.query_one("#form-error", Static).update(message)
        if field:
            label = self.query_one(f"#{field}-error", Label)
            label.update(message)
            label.remove_class("hidden")
            self.query_one(f"#{field}", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        if self.busy:
            return
        for field in ("bundle", "name"):
            self.query_one(f"#{field}-error", Label).add_class("hidden")
        self.query_one("#form-error", Static).update("")
        path = os.path.abspath(os.path.expanduser(self.query_one("#bundle", Input).value.strip()))
        if problem := bundle_problem(self.query_one("#bundle", Input).value.strip() and path):
            self.show_error(problem, "bundle")
            return
        name = self.query_one("#name", Input).value.strip()
        if problem := name_problem(name, {b.name for b in self.tapp.boxes}):
            self.show_error(problem, "name")
            return
        self.create(name, path, self.query_one("#start", Switch).value)

    @work(exclusive=True, exit_on_error=False, group="create")
    async def create(self, name: str, bundle: str, start: bool) -> None:
        self.busy = True
        try:
            await self.tapp.backend.create_from_bundle(name, bundle)
        except ServiceError as exc:
            self.busy = False
            # Where to show it, from the error's kind (never its text).
            self.show_error(exc.message, "name" if exc.kind in NAME_KINDS else "bundle")
            return
        if start:
            try:
                await self.tapp.backend.start(name)
            except ServiceError as exc:
                # The box exists now (created); say why it did not start, then close.
                self.tapp.notify(exc.message, title=f"start {name}", severity="error")
        self.busy = False
        self.dismiss(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
