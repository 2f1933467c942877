"""One row of a dialog's form: its label, the input, and the line its error goes on
(`#<id>-error`, hidden until a check fills it). Shared by the create and network forms."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label


def form_field(label: str, widget: Widget) -> ComposeResult:
    with Horizontal(classes="row"):
        yield Label(label, classes="field-label")
        yield widget
    yield Label("", id=f"{widget.id}-error", classes="field-error hidden")
