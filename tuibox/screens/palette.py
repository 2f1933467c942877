"""Command palette (ctrl+p): every action of the open screen and the app, plus "go to box".

Built from the same bindings as the footer and the help screen, so a new key is in the palette
without extra work. An action not possible now is still listed, with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from tuibox.screens.bindings_info import KeyInfo, current_keys

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

# Keys that only make sense pressed, not chosen from a list.
SKIP_ACTIONS = frozenset(
    {"command_palette", "app.focus_next", "app.focus_previous", "screen.copy_text", "help_quit"}
)


class ActionCommands(Provider):
    def _entries(self) -> list[tuple[str, str, Callable[[], Awaitable[None]]]]:
        entries: list[tuple[str, str, Callable[[], Awaitable[None]]]] = []
        seen: set[tuple[int, str]] = set()
        for info in current_keys(self.screen):
            if info.action in SKIP_ACTIONS or info.node is None:
                continue
            mark = (id(info.node), info.action)
            if mark in seen:
                continue
            seen.add(mark)
            help_text = f"key {info.keys}"
            if info.enabled is False:
                help_text += f" · not now: {info.reason or 'not possible in this state'}"
            entries.append((info.description, help_text, partial(self._run, info)))
        app = cast("TuiboxApp", self.app)
        goto = getattr(self.screen, "go_to_box", None)
        if callable(goto):
            for box in app.boxes:
                entries.append(
                    (
                        f"Go to box {box.name}",
                        f"{box.status} · {box.source}",
                        partial(self._goto, goto, box.name),
                    )
                )
        return entries

    async def _run(self, info: KeyInfo) -> None:
        node = cast(DOMNode, info.node)
        state = node.check_action(info.action.rpartition(".")[2], ())
        if not state:
            self.app.notify(
                info.reason or f"{info.description} is not possible now", severity="warning"
            )
            return
        await self.app.run_action(info.action, node)

    async def _goto(self, goto: Callable[[str], Any], name: str) -> None:
        goto(name)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
