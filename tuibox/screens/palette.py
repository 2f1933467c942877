"""Command palette (ctrl+p): every action of the open screen and the app, plus "go to box".

Built from the same bindings as the footer and the help screen, so a new key is in the palette
without extra work. An action not possible now is still listed, with the reason.

People search with their own words ("exec", "ports", "limits"), not ours: `ALIASES` gives an
action more titles, one line each (the title, then the binding id it runs). A new screen adds
its lines there; an alias is listed only while its binding is active, so it carries the same
key, greying and reason as the binding itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from tuibox.screens.bindings_info import KeyInfo, current_keys, is_user_action

if TYPE_CHECKING:
    from textual.app import SystemCommand

    from tuibox.app import TuiboxApp

# Keys that only make sense pressed, not chosen from a list.
SKIP_ACTIONS = frozenset({"command_palette"})
# Textual's own palette commands that our bindings already list (with their key).
DUPLICATE_SYSTEM_COMMANDS = frozenset({"Theme", "Quit"})


class Alias(NamedTuple):
    title: str
    binding_id: str


ALIASES: list[Alias] = [
    Alias("Exec a shell in the box (pane)", "box.shell"),
    Alias("Exec a shell in the box (full terminal)", "box.shell_suspend"),
    Alias("Attach to the box's console", "box.attach"),
    Alias("Create a box from an image", "box.create"),
    Alias("Create a box from a bundle (config.json)", "box.create_bundle"),
    Alias("Ports, address and network of the box (inspect)", "box.inspect"),
    Alias("Limits: memory, CPUs and pids of the box (inspect)", "box.inspect"),
    Alias("Image and rootfs of the box (inspect)", "box.inspect"),
    Alias("Send a signal to the box", "box.kill"),
    Alias("Remove the box (destroy)", "box.destroy"),
]

Entry = tuple[str, str, Callable[[], Awaitable[None]]]


def without_duplicates(commands: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    """Textual's system commands minus those our bindings list already (for the app)."""
    return (c for c in commands if c.title not in DUPLICATE_SYSTEM_COMMANDS)


class ActionCommands(Provider):
    def _entries(self, aliases: bool = True) -> list[Entry]:
        entries: list[Entry] = []
        seen: set[tuple[int, str]] = set()
        by_id: dict[str, KeyInfo] = {}
        for info in current_keys(self.screen):
            # A table's cursor keys and Textual's copy key are no commands (as in the help).
            if info.action in SKIP_ACTIONS or info.node is None or not is_user_action(info):
                continue
            mark = (id(info.node), info.action)
            if mark in seen:
                continue
            seen.add(mark)
            if info.binding_id:
                by_id[info.binding_id] = info
            entries.append((info.description, self._help(info), partial(self._run, info)))
        for alias in ALIASES if aliases else ():
            if (target := by_id.get(alias.binding_id)) is not None:
                help_text = f"{target.description} · {self._help(target)}"
                entries.append((alias.title, help_text, partial(self._run, target)))
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

    @staticmethod
    def _help(info: KeyInfo) -> str:
        help_text = f"key {info.keys}"
        if info.enabled is False:
            help_text += f" · not now: {info.reason or 'not possible in this state'}"
        return help_text

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
        # The list shown before typing: each action once; the aliases are for searching.
        for title, help_text, callback in self._entries(aliases=False):
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
