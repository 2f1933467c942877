"""The Textual app: polls the runtime through the service and hands results to the screens.

The app owns what outlives a screen: the last box list, the stats history, which runtime verbs
are unavailable (and why), and the workers that run verbs. Screens read that state and ask the
app to act; they never reach the runtime themselves.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.worker import Worker

from tuibox.service import (
    GUARDS,
    Backend,
    BoxRow,
    ServiceError,
    ServiceUnavailable,
    StatsRow,
    make_backend,
)
from tuibox.widgets.sparklines import StatsHistory

CAP_SYS_ADMIN = 21
# Verbs that land in the runtime at different times; probed once so their keys start greyed.
PROBED_VERBS = ("pause", "resume", "ps", "stats", "image", "exec", "attach")
# A key whose widget vanishes before handling it must not hold the next keys for long.
KEY_HANDLING_TIMEOUT = 0.5


class BoxesRefreshed(Message):
    """A list poll finished: the new boxes, or the error that stopped it."""

    def __init__(self, boxes: list[BoxRow] | None, error: str | None) -> None:
        super().__init__()
        self.boxes = boxes
        self.error = error


class StatsRefreshed(Message):
    """A stats poll finished (the runtime samples CPU over a while, so it runs apart)."""

    def __init__(self, stats: list[StatsRow], error: str | None) -> None:
        super().__init__()
        self.stats = stats
        self.error = error


def has_admin_rights() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1)
    except OSError:
        pass
    return False


def keymap_from_env(value: str | None) -> dict[str, str]:
    """TUIBOX_KEYS="box.start=S,box.stop=X": binding id -> keys (overrides the defaults)."""
    keymap: dict[str, str] = {}
    for item in (value or "").split(";" if ";" in (value or "") else ","):
        ident, eq, keys = item.partition("=")
        if eq and ident.strip() and keys.strip():
            keymap[ident.strip()] = keys.strip()
    return keymap


def _palette_provider() -> type:
    # Lazy, as Textual allows: the provider imports the screens, which import this module.
    from tuibox.screens.palette import ActionCommands

    return ActionCommands


class TuiboxApp(App[int]):
    TITLE = "tuibox"
    CSS_PATH = "screens/common.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+t", "change_theme", "Theme", id="app.theme", show=False),
        Binding("I", "images", "Images", id="app.images", tooltip="Images: pull, remove, run"),
    ]

    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {_palette_provider}

    def __init__(
        self,
        root: str | None = None,
        data_root: str | None = None,
        backend: Backend | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh_interval: float = 1.0,
        privileged: bool | None = None,
        probe: bool = True,
    ) -> None:
        super().__init__()
        self.backend: Backend = backend or make_backend(root, data_root)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.refresh_interval = refresh_interval
        self.privileged = has_admin_rights() if privileged is None else privileged
        self.probe = probe
        self.boxes: list[BoxRow] = []
        self.list_error: str | None = None
        self.stats_error: str | None = None
        self.history = StatsHistory()
        self.unavailable: dict[str, str] = {}
        self.keymap: dict[str, str] = {}
        self._list_worker: Worker[None] | None = None
        self._stats_worker: Worker[None] | None = None
        self._notified_errors: set[str] = set()
        self.pending: dict[str, str] = {}  # box -> the verb running on it
        self._held_keys: list[events.Key] = []
        self._key_in_flight: events.Key | None = None
        self._key_deadline = 0.0
        self._key_pump_scheduled = False
        self.sub_title = self.backend.root

    # ---- start-up

    def on_mount(self) -> None:
        from tuibox.screens.boxes import BoxesScreen
        from tuibox.screens.not_root import NotRootScreen

        if keymap := keymap_from_env(os.environ.get("TUIBOX_KEYS")):
            self.set_keymap(keymap)
        if not self.privileged:
            self.push_screen(NotRootScreen(self.backend.root))
            return
        self.push_screen(BoxesScreen())
        if self.probe:
            self.probe_verbs()
        self.set_interval(self.refresh_interval, self._tick)
        self._tick()

    def set_keymap(self, keymap: Mapping[str, str]) -> None:
        # Kept so the help screen can show remapped keys for screens that are not open.
        self.keymap = dict(keymap)
        super().set_keymap(keymap)

    @work(exclusive=True, exit_on_error=False, group="probe")
    async def probe_verbs(self) -> None:
        found = await self.backend.unavailable_verbs(PROBED_VERBS)
        for verb, reason in found.items():
            self.mark_unavailable(verb, reason)

    # ---- keys typed while a screen mounts

    async def on_event(self, event: events.Event) -> None:
        # Textual forwards each key to the focused widget's queue and runs a screen's key
        # binding only when the key has bubbled back up, so keys typed fast after `c` were
        # already delivered to the list before the form existed, and then its first field
        # was focused only once the form had mounted. Keys go one at a time here: the next
        # waits until the last was handled and the current screen is mounted and focused.
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._held_keys.append(event)
            self._pump_keys()
            return
        await super().on_event(event)

    def _screen_ready(self) -> bool:
        return bool(self.screen_stack) and self.screen.is_mounted

    def _pump_keys(self) -> None:
        if self._key_in_flight is not None and time.monotonic() > self._key_deadline:
            self._key_in_flight = None  # its widget went away before handling it
        if not self._held_keys or self._key_pump_scheduled:
            return
        self._key_pump_scheduled = True
        if self._key_in_flight is None and self._screen_ready():
            # After what is already queued: a new screen's on_mount queued its focus().
            self.call_later(self._send_held_key)
        else:
            self.set_timer(0.01, self._pump_keys_again)

    def _pump_keys_again(self) -> None:
        self._key_pump_scheduled = False
        self._pump_keys()

    async def _send_held_key(self) -> None:
        self._key_pump_scheduled = False
        if self._key_in_flight is not None or not self._screen_ready():
            self._pump_keys()
            return
        event = self._held_keys.pop(0)
        target = self.focused or self.screen
        self._key_in_flight = event
        self._key_deadline = time.monotonic() + KEY_HANDLING_TIMEOUT
        await super().on_event(event)
        if event.is_forwarded:
            target.call_later(self._follow_key, event, target)
        else:  # handled here (a priority binding)
            self._key_in_flight = None
        self._pump_keys()

    def _follow_key(self, event: events.Key, node: MessagePump) -> None:
        """Runs in `node`'s queue after `node` handled `event`: on to where it bubbled."""
        if event is not self._key_in_flight:
            return
        parent = node._parent
        if event._stop_propagation or node is self or parent is None:
            self._key_in_flight = None
            self._pump_keys()
        else:
            parent.call_later(self._follow_key, event, parent)

    # ---- polling

    def _tick(self) -> None:
        # A slow runtime must not pile polls up: skip a tick while the last poll still runs
        # (cancelling it instead could starve the list forever behind a slow CLI).
        if _idle(self._list_worker):
            self._list_worker = self.refresh_boxes()

    def request_refresh(self) -> None:
        """After an action: poll now, dropping a poll that started before the action."""
        self._list_worker = self.refresh_boxes()

    @work(exclusive=True, exit_on_error=False, group="refresh")
    async def refresh_boxes(self) -> None:
        try:
            boxes = await self.backend.list_boxes()
        except ServiceError as exc:
            self.post_message(BoxesRefreshed(None, exc.message))
            return
        self.post_message(BoxesRefreshed(boxes, None))

    @work(exclusive=True, exit_on_error=False, group="stats")
    async def refresh_stats(self) -> None:
        try:
            stats = await self.backend.stats()
        except ServiceUnavailable as exc:
            self.mark_unavailable("stats", exc.message)
            self.post_message(StatsRefreshed([], None))
            return
        except ServiceError as exc:
            self.post_message(StatsRefreshed([], exc.message))
            return
        self.post_message(StatsRefreshed(stats, None))

    def on_boxes_refreshed(self, message: BoxesRefreshed) -> None:
        if message.boxes is None:
            self.list_error = message.error
            self.notify_once(f"cannot list boxes: {message.error}")
        else:
            self.list_error = None
            self.boxes = message.boxes
            # One stats call for all boxes, after a list, unless the last one is still out.
            wanted = any(b.status == "running" for b in self.boxes)
            if wanted and "stats" not in self.unavailable and _idle(self._stats_worker):
                self._stats_worker = self.refresh_stats()
                # Its answer redraws the list a moment later: redrawing now as well would
                # repaint every visible row twice a second (with 50 boxes that repaint costs
                # more CPU than all the runtime queries together).
                return
        self._boxes_changed()

    def on_stats_refreshed(self, message: StatsRefreshed) -> None:
        self.stats_error = message.error
        self.history.record(message.stats, alive=[b.name for b in self.boxes])
        self._boxes_changed()

    def _boxes_changed(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BoxesAware):
                screen.boxes_changed()

    # ---- state helpers for screens

    def box(self, name: str) -> BoxRow | None:
        return next((b for b in self.boxes if b.name == name), None)

    def mark_unavailable(self, verb: str, reason: str) -> None:
        if self.unavailable.get(verb) != reason:
            self.unavailable[verb] = reason
            if self.screen_stack:
                self.screen.refresh_bindings()

    def notify_once(self, message: str) -> None:
        """Errors that repeat every poll are shown once, not once a second."""
        if message not in self._notified_errors:
            self._notified_errors.add(message)
            self.notify(message, severity="error", timeout=8)

    # ---- verbs

    def perform(self, verb: str, names: Sequence[str], **options: Any) -> Worker[None] | None:
        """Run a verb on boxes, all at once; each failure is its own notification.

        A box already busy with a verb is skipped (a second `x` must not queue another stop),
        and each box shows what it is doing ("stopping…") until its verb returns."""
        names = [n for n in dict.fromkeys(names) if n not in self.pending]
        if not names:
            return None
        for name in names:
            self.pending[name] = verb
        self._boxes_changed()
        return self._perform(verb, names, **options)

    @work(group="actions", exit_on_error=False)
    async def _perform(self, verb: str, names: list[str], **options: Any) -> None:
        # Concurrently: the runtime serialises per box (its lock), and a stop that waits out
        # a timeout must not make the next box wait too (30 boxes, 30 timeouts).
        unavailable: list[ServiceUnavailable] = []

        async def one(name: str) -> None:
            try:
                await self._call(verb, name, **options)
            except ServiceUnavailable as exc:
                unavailable.append(exc)
            except ServiceError as exc:
                self.notify(exc.message, title=f"{verb} {name}", severity="error", timeout=8)
            finally:
                self.pending.pop(name, None)
                self.request_refresh()

        try:
            await asyncio.gather(*(one(n) for n in names))
        finally:
            for name in names:  # cancelled: nothing is pending any more
                self.pending.pop(name, None)
        if unavailable:
            exc = unavailable[0]
            self.mark_unavailable(exc.verb or verb, exc.message)
            self.notify(exc.message, title=f"{verb} is unavailable", severity="error")

    async def _call(self, verb: str, name: str, **options: Any) -> None:
        b = self.backend
        box = self.box(name)
        status = box.status if box else ""
        if verb == "start":
            await b.start(name)
        elif verb == "stop":
            await b.stop(name, options.get("timeout"))
        elif verb == "kill":
            await b.kill(name, options.get("sig", "TERM"))
        elif verb == "pause":
            await b.pause(name)
        elif verb == "resume":
            await b.resume(name)
        elif verb == "destroy":
            await b.destroy(name, force=status not in GUARDS["destroy"])
        elif verb == "restart":
            await b.restart(name, options.get("timeout"))
        else:
            raise ServiceError(f"unknown action {verb!r}")

    def shell_in_real_terminal(self, name: str, shell: str = "/bin/sh") -> None:
        """The fallback to the panes: suspend the TUI and run the shell in the real terminal
        (for programs the pane's emulation gets wrong, or a terminal's own features)."""
        argv = self.backend.shell_command(name, shell)
        try:
            with self.suspend():
                print(f"tuibox: shell in box {name!r}; exit it to come back", flush=True)
                code = subprocess.call(argv)
        except SuspendNotSupported:
            self.notify("a shell needs a real terminal", severity="error")
            return
        except OSError as exc:
            self.notify(f"cannot start a shell: {exc.strerror}", severity="error")
            return
        if code != 0:
            self.notify(f"shell in {name!r} exited with status {code}", severity="warning")
        self.request_refresh()

    # ---- app-wide actions

    def action_images(self) -> None:
        from tuibox.screens.images import ImagesScreen

        if not isinstance(self.screen, ImagesScreen):
            self.push_screen(ImagesScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        from tuibox.screens.palette import without_duplicates

        return without_duplicates(super().get_system_commands(screen))

    async def action_quit(self) -> None:
        """q, ctrl+q and the palette's Quit: ask first while terminal panes still run (quitting
        ends their shells and detaches their consoles)."""
        from tuibox.screens.confirm import ConfirmScreen, quit_question

        if isinstance(self.screen, ConfirmScreen) and self.screen.id == "confirm-quit":
            return
        if not (panes := live_panes(self)):
            self.exit()
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(
            ConfirmScreen(quit_question(panes), confirm="Quit", id="confirm-quit"), confirmed
        )

    def action_help(self) -> None:
        from tuibox.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def live_panes(app: App[Any]) -> list[str]:
    """The titles of the terminal panes whose program still runs, on every screen."""
    from tuibox.widgets.terminal_tabs import TerminalTabs

    return [
        tab.base_title
        for screen in app.screen_stack
        for tabs in screen.query(TerminalTabs)
        for tab in tabs.tabs()
        if tab.running
    ]


def _idle(worker: Worker[None] | None) -> bool:
    return worker is None or worker.is_finished


class BoxesAware:
    """Marker for screens that want `boxes_changed()` after each poll."""

    def boxes_changed(self) -> None:  # pragma: no cover - overridden
        pass
