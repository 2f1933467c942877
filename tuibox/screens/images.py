"""The images screen (`I` on the box list): the store's images with their layers, shared and
unique sizes and the boxes made from each; pull (with a progress row), remove (confirmed),
inspect (the config JSON), and create a box from one (the create form, prefilled).

Everything goes through the service: the list and inspect are CLI reads, pull and rm are CLI
mutations (the TUI never writes the store itself)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    Static,
    Switch,
)

from tuibox.app import BoxesAware
from tuibox.service import ImageRow, PullProgress, ServiceError
from tuibox.widgets.format import human_bytes
from tuibox.widgets.table_sync import cursor_key, sync_rows

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"),
    ("layers", "LAYERS"),
    ("size", "SIZE"),
    ("shared", "SHARED"),
    ("unique", "UNIQUE"),
    ("boxes", "BOXES"),
    ("source", "SOURCE"),
)
COLUMN_KEYS = tuple(k for k, _ in COLUMNS)


def image_cells(row: ImageRow, boxes: int) -> list[Any]:
    return [
        Text(row.name, style="bold"),
        str(row.layers),
        human_bytes(row.size),
        human_bytes(row.shared_size) if row.shared_size else "-",
        human_bytes(row.unique_size),
        str(boxes) if boxes else "-",
        Text(row.source, style="dim"),
    ]


class ImagesScreen(Screen[None], BoxesAware):
    HELP_TITLE = "images"
    CSS_PATH = "images.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="images.back"),
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("P", "pull", "Pull", id="images.pull", tooltip="Pull an image from a registry"),
        Binding("c", "create", "Create box", id="images.create", tooltip="A box from the image"),
        Binding("y", "inspect", "Inspect", id="images.inspect", tooltip="The image's config"),
        Binding("d", "remove", "Remove", id="images.remove", tooltip="Remove the image"),
        Binding("R", "reload", "Reload", id="images.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.images: list[ImageRow] = []
        self.error: str | None = None
        self.pulling: str | None = None

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("images", id="images-title")
        table: DataTable[Any] = DataTable(id="images", cursor_type="row", zebra_stripes=True)
        yield table
        # The pull row (a label and a ProgressBar) is mounted by the first pull: most
        # visits never pull, and every widget adds to the time the screen takes to open.
        yield Static("", id="images-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#images", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.load()

    def boxes_changed(self) -> None:
        if self.images:
            self.show(self.images)

    def _users(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for b in self.tapp.boxes:
            if b.image:
                counts[b.image] = counts.get(b.image, 0) + 1
        return counts

    @work(exclusive=True, exit_on_error=False, group="images")
    async def load(self) -> None:
        try:
            rows = await self.tapp.backend.images()
        except ServiceError as exc:
            self.error = exc.message
            self._status(Text(f"images unavailable: {exc.message}", style="bold red"))
            return
        self.error = None
        self.show(rows)

    def show(self, rows: list[ImageRow]) -> None:
        self.images = rows
        users = self._users()
        table = self.query_one("#images", DataTable)
        cells = [(r.name, image_cells(r, users.get(r.name, 0))) for r in rows]
        sync_rows(table, cells, COLUMN_KEYS, "name")
        shared = sum(r.shared_size for r in rows)
        unique = sum(r.unique_size for r in rows)
        self._status(
            f"{len(rows)} images · unique {human_bytes(unique)} · shared layers "
            f"{human_bytes(shared)} (counted once per image)"
        )
        # No refresh_bindings here: the table's RowHighlighted does it, and every refresh
        # recomposes the footer (its widgets are most of this screen's opening cost).

    def _status(self, text: str | Text) -> None:
        self.query_one("#images-status", Static).update(text)

    def current(self) -> ImageRow | None:
        key = cursor_key(self.query_one("#images", DataTable))
        return next((i for i in self.images if i.name == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The row keys stay lit (they do nothing on an empty list): greying them out would
        # refresh the bindings when the first rows arrive, and each refresh recomposes the
        # footer, the largest part of the time this screen takes to open.
        if action == "pull":
            return None if self.pulling else True
        return True

    # ---- actions

    def action_back(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.load()

    def action_create(self) -> None:
        from tuibox.screens.boxes import suggest_name
        from tuibox.screens.create import CreateBoxScreen

        image = self.current()
        if image is None:
            return
        taken = {b.name for b in self.tapp.boxes}

        def created(name: str | None) -> None:
            if name:
                self.tapp.request_refresh()
                self.notify(f"box {name!r} created from {image.name}", timeout=3)

        screen = CreateBoxScreen(
            suggest_name(taken, image.name[:20]), image=image.name, ports=image.ports
        )
        self.app.push_screen(screen, created)

    def action_inspect(self) -> None:
        image = self.current()
        if image is not None:
            self.inspect(image.name)

    @work(exclusive=True, exit_on_error=False, group="image-inspect")
    async def inspect(self, name: str) -> None:
        try:
            data = await self.tapp.backend.inspect_image(name)
        except ServiceError as exc:
            self.notify(exc.message, title=f"inspect {name}", severity="error")
            return
        self.app.push_screen(ImageInspectScreen(name, data))

    def action_remove(self) -> None:
        from tuibox.screens.confirm import ConfirmScreen

        image = self.current()
        if image is None:
            return
        users = self._users().get(image.name, 0)
        question = f"Remove image {image.name!r}?"
        if image.layers > 1 or image.shared_size:
            question += " Layers other images use are kept."
        if users:
            question += f" {users} box(es) use it: the removal will be refused."

        def answered(yes: bool | None) -> None:
            if yes:
                self.remove_image(image.name)

        self.app.push_screen(ConfirmScreen(question, "Remove"), answered)

    @work(exit_on_error=False, group="image-rm")
    async def remove_image(self, name: str) -> None:
        try:
            await self.tapp.backend.remove_image(name)
        except ServiceError as exc:
            self.notify(exc.message, title=f"remove {name}", severity="error")
            return
        self.notify(f"removed image {name}", timeout=3)
        self.load()

    def action_pull(self) -> None:
        def chosen(answer: tuple[str, bool] | None) -> None:
            if answer:
                self.pull(*answer)

        self.app.push_screen(PullScreen(), chosen)

    @work(exclusive=True, exit_on_error=False, group="image-pull")
    async def pull(self, reference: str, tls_verify: bool) -> None:
        if not self.query("#pull-row"):
            await self.mount(
                Horizontal(
                    Static("", id="pull-label"),
                    ProgressBar(id="pull-bar", show_eta=False),
                    id="pull-row",
                    classes="hidden",
                ),
                before="#images-status",
            )
        row = self.query_one("#pull-row")
        label = self.query_one("#pull-label", Static)
        bar = self.query_one("#pull-bar", ProgressBar)
        self.pulling = reference
        self.refresh_bindings()
        row.remove_class("hidden")
        label.update(f"pulling {reference}: asking the registry")
        bar.update(total=None, progress=0)

        def report(p: PullProgress) -> None:
            label.update(
                f"pulling {reference}: {p.phase} {human_bytes(p.done)} / {human_bytes(p.total)}"
            )
            bar.update(total=p.total or None, progress=p.done)

        try:
            name = await self.tapp.backend.pull(reference, tls_verify, report)
        except ServiceError as exc:
            self.notify(exc.message, title=f"pull {reference}", severity="error")
            return
        finally:
            self.pulling = None
            row.add_class("hidden")
            self.refresh_bindings()
        self.notify(f"pulled {reference} as {name}", timeout=4)
        self.load()


class PullScreen(ModalScreen[tuple[str, bool] | None]):
    """Asks for a reference (docker's syntax) and whether to verify TLS."""

    CSS_PATH = "images.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pull.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="pull-dialog"):
            yield Label("Pull an image", classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("Reference", classes="field-label")
                yield Input(placeholder="alpine, host:5000/app:1, x@sha256:...", id="reference")
            with Horizontal(classes="row"):
                yield Label("Verify TLS", classes="field-label")
                yield Switch(True, id="tls", tooltip="Off: a plain-http registry")
            yield Static("", id="pull-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Pull", id="submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#reference", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        ref = self.query_one("#reference", Input).value.strip()
        if not ref:
            self.query_one("#pull-error", Static).update("a reference is needed")
            return
        self.dismiss((ref, self.query_one("#tls", Switch).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ImageInspectScreen(ModalScreen[None]):
    """The image's record and config, as JSON."""

    CSS_PATH = "images.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="image-inspect.close"),
    ]

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.image_name = name
        self.data = data

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="image-inspect-dialog"):
            yield Label(f"image {self.image_name}", classes="dialog-title")
            with VerticalScroll(id="image-json"):
                body = Text(json.dumps(self.data, indent=2, sort_keys=True))  # no markup
                yield Static(body, id="image-body")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss()
