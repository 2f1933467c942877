"""Every key of the app, read from the Bindings themselves (for the help screen and palette).

Nothing here is written by hand: the open screen's keys come from Textual's `active_bindings`
(keymap applied, enabled state from `check_action`), the other screens' from their BINDINGS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import ActiveBinding, Binding
from textual.dom import DOMNode
from textual.screen import Screen

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp


@dataclass(frozen=True)
class KeyInfo:
    section: str
    keys: str
    description: str
    action: str
    binding_id: str | None
    enabled: bool | None  # None: not known (the screen is not open)
    reason: str | None
    node: DOMNode | None  # where the action runs, when it can run from here


def class_bindings(cls: type) -> list[Binding]:
    """The bindings a DOM class declares, inherited ones included, later ones winning."""
    by_key: dict[str, Binding] = {}
    for base in reversed(cls.__mro__):
        for b in Binding.make_bindings(base.__dict__.get("BINDINGS", [])):
            by_key[b.key] = b
    return list(by_key.values())


def section_title(node: DOMNode, screen: Screen[Any]) -> str:
    if isinstance(node, App):
        return "everywhere"
    if node is screen:
        return str(getattr(screen, "HELP_TITLE", type(screen).__name__))
    # A widget may name its section in people's words ("lists"), not by its class.
    return str(getattr(node, "HELP_TITLE", f"{type(node).__name__.lower()} (focused)"))


def _reason(node: DOMNode, action: str) -> str | None:
    explain = getattr(node, "action_reason", None)
    return explain(action) if callable(explain) else None


# Textual's own keys without an id that are still a user's action (the rest of its id-less
# keys are widget internals: cursor moves, focus cycling, copy).
USER_ACTIONS_WITHOUT_ID = frozenset({"command_palette"})
DESCRIPTIONS = {"command_palette": "Command palette"}  # Textual's says "palette"


def is_user_action(info: KeyInfo) -> bool:
    """An action a person would look up: ours (they all have ids) or the palette; not a
    table's cursor moves, tab focus cycling or Textual's copy key."""
    return info.binding_id is not None or info.action in USER_ACTIONS_WITHOUT_ID


def current_keys(screen: Screen[Any]) -> list[KeyInfo]:
    """The keys of `screen` as the user can press them now, grouped per action: two keys for
    one action (q and Textual's ctrl+q for quit) are one entry with both keys."""
    grouped: dict[tuple[int, str], tuple[ActiveBinding, list[str], str | None]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or binding.system:
            continue
        key_of = (id(active.node), binding.action)
        first, keys, ident = grouped.get(key_of, (active, [], None))
        keys.append(screen.app.get_key_display(binding.with_key(key)))
        # Ours (with an id) describes the entry; its key comes first.
        if binding.id is not None and ident is None:
            first, ident = active, binding.id
            keys.insert(0, keys.pop())
        grouped[key_of] = (first, keys, ident)
    out = []
    for active, keys, ident in grouped.values():
        b = active.binding
        out.append(
            KeyInfo(
                section=section_title(active.node, screen),
                keys=", ".join(keys),
                description=DESCRIPTIONS.get(b.action, b.description),
                action=b.action,
                binding_id=ident,
                enabled=active.enabled,
                reason=None if active.enabled else _reason(active.node, b.action),
                node=active.node,
            )
        )
    order = {"everywhere": 2}
    # Ours (they have ids) before Textual's generic keys (focus, copy) in each section.
    out.sort(
        key=lambda k: (order.get(k.section, 0 if k.node is screen else 1), k.binding_id is None)
    )
    return out


def hidden_keys(app: TuiboxApp, screen: Screen[Any]) -> list[KeyInfo]:
    """Keys of the open screen that its `check_action` hides now (False, not greyed: e.g.
    the pane keys while no pane is open), listed as not possible, with the reason."""
    shown = {(a.binding.action, a.binding.id) for a in screen.active_bindings.values()}
    out: dict[tuple[str, str | None], KeyInfo] = {}  # one entry per action, keys together
    for b in class_bindings(type(screen)):
        if not b.description or b.system or (b.action, b.id) in shown:
            continue
        if screen.check_action(b.action, ()) is not False:
            continue  # not hidden: absent because a focused widget took its key
        key = app.keymap.get(b.id, b.key) if b.id else b.key
        keys = ", ".join(app.get_key_display(b.with_key(k)) for k in key.split(","))
        seen = out.get((b.action, b.id))
        if seen is not None:
            if keys not in seen.keys.split(", "):
                out[(b.action, b.id)] = replace(seen, keys=f"{seen.keys}, {keys}")
            continue
        out[(b.action, b.id)] = KeyInfo(
            section=section_title(screen, screen),
            keys=keys,
            description=b.description,
            action=b.action,
            binding_id=b.id,
            enabled=False,
            reason=_reason(screen, b.action),
            node=screen,
        )
    return list(out.values())


def other_keys(app: TuiboxApp, screen: Screen[Any]) -> list[KeyInfo]:
    """Keys of the main screens that are not open, as their classes declare them."""
    from tuibox.screens.boxes import BoxesScreen
    from tuibox.screens.inspect import InspectScreen
    from tuibox.screens.logs import LogsScreen
    from tuibox.screens.processes import ProcessesScreen
    from tuibox.widgets.terminal import TerminalPane

    out: list[KeyInfo] = []
    sections: list[tuple[type, str]] = [
        (BoxesScreen, BoxesScreen.HELP_TITLE),
        (ProcessesScreen, ProcessesScreen.HELP_TITLE),
        (LogsScreen, LogsScreen.HELP_TITLE),
        (InspectScreen, InspectScreen.HELP_TITLE),
        # The pane's keys (its leave key above all) are worth knowing before opening one.
        (TerminalPane, "terminal pane"),
    ]
    for cls, title in sections:
        if isinstance(screen, cls) or isinstance(screen.focused, cls):
            continue
        # One entry per action, its keys together ("j, ↓  Down"), as for the open screen.
        by_action: dict[str, KeyInfo] = {}
        for b in class_bindings(cls):
            if not b.description or b.system or b.key in ("tab", "shift+tab"):
                continue
            key = app.keymap.get(b.id, b.key) if b.id else b.key
            shown = ", ".join(app.get_key_display(b.with_key(k)) for k in key.split(","))
            seen = by_action.get(b.action)
            if seen is not None:
                by_action[b.action] = replace(seen, keys=f"{seen.keys}, {shown}")
                continue
            by_action[b.action] = KeyInfo(
                section=title,
                keys=shown,
                description=b.description,
                action=b.action,
                binding_id=b.id,
                enabled=None,
                reason=None,
                node=None,
            )
        out.extend(by_action.values())
    return out


def all_keys(app: TuiboxApp, screen: Screen[Any]) -> list[KeyInfo]:
    current = current_keys(screen)
    hidden = hidden_keys(app, screen)
    # Right after the open screen's own keys, before the app-wide ones.
    at = next((i for i, k in enumerate(current) if k.node is not screen), len(current))
    return current[:at] + hidden + current[at:] + other_keys(app, screen)
