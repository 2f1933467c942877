"""Pick a signal to send (to a box's init, or to one process of a box)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tuibox.service import SIGNALS

MEANING = {
    "TERM": "ask it to terminate",
    "KILL": "kill it now (cannot be caught)",
    "INT": "interrupt, as ctrl+c does",
    "HUP": "hang up (many daemons reload)",
    "STOP": "suspend it (cannot be caught)",
    "CONT": "continue it after STOP",
}


class SignalScreen(ModalScreen[str | None]):
    CSS_PATH = "signal.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="signal.cancel"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="signal-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield OptionList(
                *(Option(f"SIG{s:<5} {MEANING[s]}", id=s) for s in SIGNALS), id="signals"
            )

    @on(OptionList.OptionSelected, "#signals")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
