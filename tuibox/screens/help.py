"""`?`: every key of the app a user acts with, derived from the bindings (see bindings_info).

A text page, not a table widget: ↓/↑/PgDn scroll it (a table's row cursor would move instead)
and the "not now because" column wraps instead of being cut at 80 columns. Widget internals
(a table's cursor moves, focus cycling, Textual's copy key) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from tuibox.screens.bindings_info import KeyInfo, all_keys, is_user_action

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp


ID_COLUMN_FROM = 90  # narrower than this, the ids (for remapping) give their room to reasons


class KeysPage:
    """One table per section, all with the same column widths so the columns line up; the ID
    column only when there is room for it beside the reasons."""

    def __init__(self, keys: list[KeyInfo]) -> None:
        self.keys = keys

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keys = self.keys
        with_ids = options.max_width >= ID_COLUMN_FROM
        key_width = max((len(k.keys) for k in keys), default=3)
        action_width = max((len(k.description) for k in keys), default=6)
        id_width = max((len(k.binding_id or "") for k in keys), default=2)
        sections: dict[str, list[KeyInfo]] = {}
        for info in keys:
            sections.setdefault(info.section, []).append(info)
        for n, (title, infos) in enumerate(sections.items()):
            table = Table(
                title=Text(title, style="bold underline"),
                title_justify="left",
                box=None,
                show_header=n == 0,
                header_style="bold",
                pad_edge=False,
                expand=True,
            )
            table.add_column("KEY", width=key_width, no_wrap=True)
            table.add_column("ACTION", width=action_width, no_wrap=True)
            if with_ids:
                table.add_column("ID", width=id_width, no_wrap=True, style="dim")
            table.add_column("NOT NOW BECAUSE", ratio=1, style="dim italic", overflow="fold")
            for info in infos:
                style = "dim" if info.enabled is False else ""
                cells: list[RenderableType] = [
                    Text(info.keys, style=f"bold {style}".strip()),
                    Text(info.description, style=style),
                ]
                if with_ids:
                    cells.append(info.binding_id or "")
                cells.append(info.reason or "")
                table.add_row(*cells)
            yield table


def keys_page(keys: list[KeyInfo]) -> KeysPage:
    return KeysPage(keys)


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
        app = cast("TuiboxApp", self.app)
        self.keys = [k for k in all_keys(app, self.under) if is_user_action(k)]
        with Vertical(classes="dialog", id="help-dialog"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(keys_page(self.keys), id="help-keys")
            yield Static(
                "↓ ↑ PgDn scroll · Esc close · dim: not possible now · ctrl+p: every action · "
                'remap: TUIBOX_KEYS="box.start=S,box.stop=X" (ids, shown when wide)',
                id="help-note",
                classes="status-line",
            )

    def on_mount(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss()
