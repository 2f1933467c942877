"""`?`: every key of the app, derived from the bindings (see bindings_info)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static

from tuibox.screens.bindings_info import KeyInfo, all_keys

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under
        self.keys: list[KeyInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=False)
            yield Static(
                "Greyed keys are not possible for the selected box now. ctrl+p opens the "
                "command palette with every action. Remap keys with TUIBOX_KEYS="
                '"box.start=S,box.stop=X" (ids above).',
                id="help-note",
                classes="status-line",
            )

    def on_mount(self) -> None:
        app = cast("TuiboxApp", self.app)
        self.keys = all_keys(app, self.under)
        table: DataTable[Any] = self.query_one("#help-table", DataTable)
        table.add_column("KEY", key="key")
        table.add_column("ACTION", key="description")
        table.add_column("ID", key="id")
        table.add_column("NOT NOW BECAUSE", key="reason")
        section = None
        for n, info in enumerate(self.keys):
            if info.section != section:
                section = info.section
                title = Text(section, style="bold underline")
                table.add_row(title, "", "", "", key=f"section-{n}")
            style = "dim" if info.enabled is False else ""
            table.add_row(
                Text(info.keys, style=f"bold {style}".strip()),
                Text(info.description, style=style),
                Text(info.binding_id or "", style="dim"),
                Text(info.reason or "", style="dim italic"),
                key=f"key-{n}",
            )
        table.focus()

    def action_close(self) -> None:
        self.dismiss()
