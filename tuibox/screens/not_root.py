"""Shown instead of the box list when tuibox runs without the rights a runtime needs."""

from __future__ import annotations

import os
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

NOT_ROOT_STATUS = 1

# Paragraphs are single lines: the Static wraps them to the terminal's width.
EXPLANATION = "\n\n".join(
    (
        "[b]tuibox needs root (or CAP_SYS_ADMIN)[/b]",
        "You are running it as uid {uid}. A container runtime has to create namespaces, mount "
        "the box's root filesystem and /proc, make device nodes, write cgroup limits and set "
        "up the bridge network. The kernel allows those operations only to root, or to a "
        "process with CAP_SYS_ADMIN (and, for networking, CAP_NET_ADMIN).",
        "Run it again as root:\n\n    [b]sudo tuibox[/b]",
        "Boxes live in the state root ({root}); it is owned by root too, which is why listing "
        "them also needs root.",
    )
)


class NotRootScreen(Screen[None]):
    CSS_PATH = "not_root.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "leave", "Quit", id="notroot.quit"),
    ]

    def __init__(self, root: str = "/run/tuibox") -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="not-root"):
            yield Static(EXPLANATION.format(uid=os.geteuid(), root=self.root), id="why")
        yield Footer()

    def action_leave(self) -> None:
        # Nothing was done: a script that ran `tuibox` must see the failure.
        self.app.exit(NOT_ROOT_STATUS, return_code=NOT_ROOT_STATUS)
