"""A yes/no question that names exactly what will happen (used before destroying boxes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


def destroy_question(boxes: Sequence[tuple[str, bool]]) -> str:
    """The question before destroying (name, still running) boxes: each name once, with what
    happens to it."""
    end = "Its state, mounts, cgroup and network go away; this cannot be undone."
    if len(boxes) == 1:
        name, live = boxes[0]
        first = f"Destroy box {name}?"
        if live:
            first += " It is still running: killed first (--force)."
        return f"{first}\n{end}"
    lines = [f"Destroy {len(boxes)} boxes?"]
    lines += [
        f"  {name}" + ("  (still running: killed first, --force)" if live else "")
        for name, live in boxes
    ]
    return "\n".join([*lines, end.replace("Its", "Their")])


def quit_question(panes: Sequence[str]) -> str:
    """The question before quitting with live terminal panes (their titles, "shell: web")."""
    shells = any(p.startswith("shell") for p in panes)
    attached = any(p.startswith("attach") for p in panes)
    what = " and ".join(
        w for w, on in (("ends their shells", shells), ("detaches their consoles", attached)) if on
    )
    count = "1 terminal pane is" if len(panes) == 1 else f"{len(panes)} terminal panes are"
    lines = [f"Quit tuibox? {count} still open:", *(f"  {p}" for p in panes)]
    if what:
        lines.append(f"Quitting {what}; the boxes keep running.")
    return "\n".join(lines)


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = "confirm.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"),
        Binding("y", "confirm", "Yes", id="confirm.yes"),
    ]

    def __init__(self, question: str, confirm: str = "Yes", id: str | None = None) -> None:
        super().__init__(id=id)
        self.question = question
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(self.question, id="question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(f"{self.confirm_label} (y)", id="confirm", variant="error")

    def on_mount(self) -> None:
        # Cancel has the focus: a stray Enter must never destroy anything.
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
