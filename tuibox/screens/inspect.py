"""A box inspected full-screen (k9s `describe`): every section of `tuibox inspect`,
foldable and jumpable (n/N), scrollable from the keyboard, env values masked until `v`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from tuibox.service import ServiceError, inspect_text

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

# Order on screen: what a user looks for first (where to reach the box) comes first.
FIRST = ("network", "pids", "exit", "restart", "env")
# Sections that are values, not tables, shown together in the summary.
SCALARS = ("id", "status", "image", "command", "hostname", "created", "started", "finished")
MASK = "*****"


def masked_env(env: list[str], show: bool) -> list[str]:
    if show:
        return env
    return [e.partition("=")[0] + "=" + MASK if "=" in e else e for e in env]


def section_order(data: dict[str, Any]) -> list[str]:
    rest = [k for k in data if k not in FIRST and k not in SCALARS and k != "env_masked"]
    return [k for k in FIRST if k in data] + rest


class InspectScreen(Screen[None]):
    HELP_TITLE = "inspect"
    CSS_PATH = "inspect.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="inspect.back"),
        Binding("q", "back", "Back", id="inspect.back_q", show=False),
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("v", "reveal", "Show/hide env", id="inspect.reveal"),
        Binding("j,down", "scroll(1)", "Down", id="inspect.down", show=False),
        Binding("k,up", "scroll(-1)", "Up", id="inspect.up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", id="inspect.page_down", show=False),
        Binding("pageup", "page(-1)", "Page up", id="inspect.page_up", show=False),
        Binding("g,home", "edge(0)", "Top", id="inspect.top", show=False),
        Binding("G,end", "edge(1)", "Bottom", id="inspect.bottom", show=False),
        Binding("n", "jump(1)", "Next section", id="inspect.next"),
        Binding("N", "jump(-1)", "Previous section", id="inspect.prev", show=False),
        Binding("c", "collapse", "Fold/unfold all", id="inspect.collapse"),
        Binding("z,enter", "fold", "Fold section", id="inspect.fold"),
        Binding("r", "reload", "Reload", id="inspect.reload", show=False),
    ]

    def __init__(self, box_name: str) -> None:
        super().__init__()
        self.box_name = box_name
        self.data: dict[str, Any] | None = None
        self.show_env = False
        self.error: str | None = None
        self.folded: set[str] = set()
        self.section_lines: list[tuple[str, int]] = []

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(("inspect ", ""), (self.box_name, "bold")), id="in-title")
        yield VerticalScroll(Static("gathering…", id="in-wait"), id="in-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#in-body").focus()
        self.gather()

    @work(exclusive=True, exit_on_error=False, group="inspect")
    async def gather(self) -> None:
        # Off the UI thread: the backend reads /proc and the cgroup files in a worker thread.
        try:
            data = await self.tapp.backend.inspect(self.box_name)
        except ServiceError as exc:
            self.error = exc.message
            self.query_one("#in-body").remove_children()
            self.query_one("#in-body").mount(
                Static(Text(f"inspect failed: {exc.message}", style="bold red"), id="in-error")
            )
            return
        self.data = data
        await self.render_data()

    def sections(self) -> list[tuple[str, str, str]]:
        """(key, title, text) of each section, in screen order."""
        data = self.data or {}
        out = [("summary", "summary", inspect_text({k: data[k] for k in SCALARS if k in data}))]
        for key in section_order(data):
            value = data[key]
            title = key
            if key == "env" and isinstance(value, list):
                value = masked_env([str(e) for e in value], self.show_env)
                title = "env" + ("" if self.show_env else "  (values masked: v shows them)")
            if isinstance(value, dict):
                text = inspect_text(value)
            elif isinstance(value, list):
                text = inspect_text({"": value}) if value else "-"
                text = "\n".join(line.removeprefix(": ") for line in text.splitlines())
            else:
                text = "-" if value is None else str(value)
            out.append((key, title, text.rstrip() or "-"))
        return out

    async def render_data(self) -> None:
        # One Static for the whole body: a widget per section (Collapsible) cost ~10 ms each
        # to mount, the whole budget of the screen with a few of them.
        if self.data is None:
            return
        body = self.query_one("#in-body", VerticalScroll)
        text = Text()
        self.section_lines = []
        line = 0
        for key, title, content in self.sections():
            folded = key in self.folded
            self.section_lines.append((key, line))
            text.append(f"{'▶' if folded else '▼'} {title}\n", style="bold reverse")
            line += 1
            if not folded:
                text.append(content + "\n\n")
                line += content.count("\n") + 2
        wait = self.query("#in-wait")
        if wait:
            await wait.remove()
        shown = self.query("#in-text")
        if shown:
            shown.first(Static).update(text)
        else:
            await body.mount(Static(text, id="in-text"))

    def action_back(self) -> None:
        self.app.pop_screen()

    async def action_reveal(self) -> None:
        self.show_env = not self.show_env
        await self.render_data()

    def action_reload(self) -> None:
        self.gather()

    def action_scroll(self, lines: int) -> None:
        body = self.query_one("#in-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        body = self.query_one("#in-body", VerticalScroll)
        body.scroll_relative(y=direction * max(body.size.height - 1, 1), animate=False)

    def action_edge(self, end: int) -> None:
        body = self.query_one("#in-body", VerticalScroll)
        if end:
            body.scroll_end(animate=False)
        else:
            body.scroll_home(animate=False)

    def action_jump(self, direction: int) -> None:
        body = self.query_one("#in-body", VerticalScroll)
        tops = [line for _, line in self.section_lines]
        if not tops:
            return
        y = body.scroll_y
        if direction > 0:
            target = next((t for t in tops if t > y + 0.5), tops[-1])
        else:
            target = next((t for t in reversed(tops) if t < y - 0.5), 0)
        body.scroll_to(y=target, animate=False)

    def current_section(self) -> str | None:
        y = self.query_one("#in-body", VerticalScroll).scroll_y
        current = None
        for key, line in self.section_lines:
            if line <= y + 0.5:
                current = key
        return current

    async def action_fold(self) -> None:
        """Fold (or unfold) the section at the top of the view."""
        key = self.current_section()
        if key is not None:
            self.folded ^= {key}
            await self.render_data()

    async def action_collapse(self) -> None:
        keys = {key for key, _ in self.section_lines}
        self.folded = set() if keys <= self.folded else keys
        await self.render_data()
