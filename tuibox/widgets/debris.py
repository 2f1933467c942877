"""The debris line under the box list: how much `tuibox gc` would clean up, and the clean-up.

Finding debris walks every cgroup hierarchy and lease store, so it is not done on every poll:
once at start, every INTERVAL seconds, and when a box leaves the list (a destroy, or a box
dir deleted by hand) or turns `debris`/`unknown`. It runs in a worker (the in-process
backend reads in a thread); the clean-up itself is the CLI's `gc --yes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from rich.markup import escape
from textual import work
from textual.widgets import Static

from tuibox.service import BoxRow, DebrisRow, GcResult, ServiceError
from tuibox.widgets.quiet import show

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

INTERVAL = 30.0
SHOWN_IN_QUESTION = 12  # more items than this are counted, not listed, in the dialog
BAD_STATUSES = frozenset({"debris", "unknown"})


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def item_line(item: DebrisRow) -> str:
    return f"{item.kind} {item.box or '-'}: {item.action}"


def question(items: Sequence[DebrisRow]) -> str:
    """The confirm dialog's text: every item (up to a screenful) and what gc does to it."""
    lines = [f"Clean up {plural(len(items), 'item')} left by boxes that no longer exist?", ""]
    lines += [f"  {escape(item_line(i))}" for i in items[:SHOWN_IN_QUESTION]]
    if len(items) > SHOWN_IN_QUESTION:
        lines.append(f"  … and {len(items) - SHOWN_IN_QUESTION} more")
    lines += ["", "Processes found in left-over cgroups are killed (tuibox gc --yes)."]
    return "\n".join(lines)


def result_text(result: GcResult) -> str:
    """What went, for the toast ("" when nothing did)."""
    done = [i for i in result.items if not any(_names(i, f) for f in result.failures)]
    if not done:
        return ""
    text = f"removed {plural(len(done), 'item')}: " + ", ".join(
        f"{i.kind} {i.box or i.path}" for i in done[:SHOWN_IN_QUESTION]
    )
    if len(done) > SHOWN_IN_QUESTION:
        text += f", … ({len(done) - SHOWN_IN_QUESTION} more)"
    return text


def _names(item: DebrisRow, failure: str) -> bool:
    # gc's failure lines start with the item's path, or `box 'NAME'` (a tear-down)
    return item.path in failure or f"box {item.box!r}" in failure


class DebrisLine(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="status-line hidden", markup=False)
        self.items: list[DebrisRow] = []
        self._names: frozenset[str] = frozenset()
        self._bad: frozenset[str] = frozenset()
        self.collecting = False  # one `gc --yes` at a time

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def on_mount(self) -> None:
        self.set_interval(INTERVAL, self.check)
        self.check()

    def boxes_changed(self, boxes: Sequence[BoxRow]) -> None:
        """After each list poll: look again only when a box left or went bad."""
        names = frozenset(b.name for b in boxes)
        bad = frozenset(b.name for b in boxes if b.status in BAD_STATUSES)
        left, worse = self._names - names, bad - self._bad
        self._names, self._bad = names, bad
        if left or worse:
            self.check()

    def check(self) -> None:
        self._find()

    @work(exclusive=True, exit_on_error=False, group="debris")
    async def _find(self) -> None:
        try:
            items = await self.tapp.backend.debris()
        except ServiceError:
            return  # the next look may work; the list shows the runtime's own errors
        self._show(items)

    def _show(self, items: list[DebrisRow]) -> None:
        had = bool(self.items)
        self.items = items
        key = self.tapp.keymap.get("box.gc", "C")
        kinds = sorted({i.kind for i in items})
        message = (
            f"debris: {plural(len(items), 'item')} left by boxes that no longer exist "
            f"({', '.join(kinds)}) · {key} cleans up"
            if items
            else ""
        )
        show(self, message)
        self.set_class(not items, "hidden")
        if had != bool(items) and self.is_attached:
            self.screen.refresh_bindings()  # the clean-up key shows only while there is debris

    def collect(self) -> None:
        if self.collecting:
            self.app.notify("a clean-up is already running", severity="warning")
            return
        self.collecting = True
        self._collect()

    @work(exit_on_error=False, group="debris-collect")
    async def _collect(self) -> None:
        try:
            result = await self.tapp.backend.collect_debris()
        except ServiceError as exc:
            self.app.notify(
                escape(exc.message), title="clean up debris", severity="error", timeout=10
            )
        else:
            if result.failures:
                self.app.notify(
                    "\n".join(escape(f) for f in result.failures),
                    title="clean up debris: not everything went",
                    severity="error",
                    timeout=12,
                )
            if text := result_text(result):
                self.app.notify(escape(text), title="clean up debris", timeout=8)
            elif not result.failures:
                self.app.notify("no debris was left to clean up", title="clean up debris")
        finally:
            self.collecting = False
        self.tapp.request_refresh()
        self.check()
