"""The create form: everything `tuibox run -d` takes, checked inline, Enter creates and starts.

Names are checked with the runtime's own rule (same message as the CLI would print); every
other check is the runtime's: its error line is shown under the field it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from tuibox.service import CreateOptions, ServiceError, split_words
from tuibox.service import name_problem as name_problem  # bundle.py uses it from here
from tuibox.widgets.form_switch import FormSwitch
from tuibox.widgets.path_suggester import PathSuggester

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

DEFAULT_IMAGE = "busybox"
# A box's own default is /bin/sh on a terminal, which the console keeper holds open so the
# user can attach later. Without the keeper (a runtime whose `attach` does not work) nothing
# holds that terminal and the shell exits at once, so the form then proposes a box that stays
# up. The switch is the probe's verdict on `attach`: nothing to flip by hand when it lands.
WITH_CONSOLE = ("/bin/sh", True)
WITHOUT_CONSOLE = ("sleep infinity", False)  # busybox's sleep takes "infinity"
SHELLS = frozenset({"sh", "/bin/sh", "bash", "/bin/bash", "ash", "/bin/ash"})
FIELDS = (
    "name",
    "image",
    "rootfs",
    "command",
    "hostname",
    "network",
    "ports",
    "memory",
    "cpus",
    "pids",
    "env",
)
# Words in a runtime error that say which field it is about (first match wins).
FIELD_HINTS: tuple[tuple[str, str], ...] = (
    ("hostname", "hostname"),
    ("rootfs", "rootfs"),
    ("image", "image"),
    ("port", "ports"),
    ("memory", "memory"),
    ("cpu", "cpus"),
    ("pids", "pids"),
    ("env", "env"),
    ("network", "network"),
    ("name", "name"),
    ("command", "command"),
    ("executable", "command"),
    ("not found", "command"),
)


def field_for(message: str) -> str | None:
    low = message.lower()
    return next((f for word, f in FIELD_HINTS if word in low), None)


def form_defaults(unavailable: dict[str, str]) -> tuple[str, bool, str | None]:
    """(command, terminal, why) for a new box; `why` says why it is not a shell on a console."""
    if "attach" in unavailable:
        why = f"no console keeper here ({unavailable['attach']}): a box that stays up instead"
        return (*WITHOUT_CONSOLE, why)
    return (*WITH_CONSOLE, None)


class CreateBoxScreen(ModalScreen[str | None]):
    CSS_PATH = "create.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="create.cancel"),
        Binding("ctrl+s", "submit", "Create & start", id="create.submit"),
        # Reached only from fields that do not take Enter themselves (the switches).
        Binding("enter", "submit", "Create & start", id="create.enter", show=False),
    ]

    def __init__(self, suggested_name: str) -> None:
        super().__init__()
        self.suggested_name = suggested_name
        self.busy = False
        self.defaults_note: str | None = None

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        command, terminal, self.defaults_note = form_defaults(self.tapp.unavailable)
        with Vertical(classes="dialog", id="create-dialog"):
            yield Label("Create and start a box", classes="dialog-title")
            with VerticalScroll(id="create-form"):
                yield from self._field("Name", Input(self.suggested_name, id="name", compact=True))
                yield from self._field(
                    "Image",
                    Select(
                        compact=True,
                        options=[(DEFAULT_IMAGE, DEFAULT_IMAGE)],
                        value=DEFAULT_IMAGE,
                        allow_blank=False,
                        id="image",
                    ),
                )
                yield from self._field(
                    "or rootfs",
                    Input(
                        compact=True,
                        placeholder="a rootfs directory (used instead of the image)",
                        suggester=PathSuggester(),
                        id="rootfs",
                    ),
                )
                yield from self._field("Command", Input(command, id="command", compact=True))
                yield from self._field(
                    "Hostname", Input(compact=True, placeholder="same as the name", id="hostname")
                )
                with Horizontal(classes="row switches"):
                    yield Label("Terminal", classes="field-label")
                    yield FormSwitch(
                        terminal,
                        id="terminal",
                        tooltip="Give the box a pty, kept by a console keeper: attach to it (-t)",
                    )
                    yield Label("Network", classes="field-label")
                    yield FormSwitch(False, id="network", tooltip="Join the default bridge network")
                yield Label("", id="network-error", classes="field-error hidden")
                yield from self._field(
                    "Ports",
                    Input(compact=True, placeholder="HOST:BOX, e.g. 8080:80 8443:443", id="ports"),
                )
                with Horizontal(classes="row limits"):
                    yield Label("Memory", classes="field-label")
                    yield Input(compact=True, placeholder="256m", id="memory")
                    yield Label("CPUs", classes="field-label short")
                    yield Input(compact=True, placeholder="0.5", id="cpus")
                    yield Label("Pids", classes="field-label short")
                    yield Input(compact=True, placeholder="100", id="pids")
                for name in ("memory", "cpus", "pids"):
                    yield Label("", id=f"{name}-error", classes="field-error hidden")
                yield from self._field(
                    "Env",
                    Input(compact=True, placeholder="KEY=value OTHER='with spaces'", id="env"),
                )
            yield Static("", id="form-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create & start", id="submit", variant="primary")
        yield Footer()

    @staticmethod
    def _field(label: str, widget: Any) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(label, classes="field-label")
            yield widget
        yield Label("", id=f"{widget.id}-error", classes="field-error hidden")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        if self.defaults_note:
            self._note("command", self.defaults_note)
        self.load_images()

    def _note(self, field: str, text: str) -> None:
        label = self.query_one(f"#{field}-error", Label)
        label.update(text)
        label.set_classes("field-note" if text else "field-error hidden")

    @on(Switch.Changed, "#terminal")
    @on(Input.Changed, "#command")
    def _shell_without_terminal(self) -> None:
        # Not an error (sh -c scripts are fine): a bare shell without a terminal reads an
        # empty stdin and exits at once, which surprises people.
        command = self._value("command")
        bare_shell = command in SHELLS and not self.query_one("#terminal", Switch).value
        if bare_shell:
            self._note("command", "without a terminal a shell reads nothing and exits at once")
        elif self.query_one("#command-error", Label).has_class("field-note"):
            self._note("command", self.defaults_note or "")

    @work(exclusive=True, exit_on_error=False, group="images")
    async def load_images(self) -> None:
        if "image" in self.tapp.unavailable:
            self._image_note(self.tapp.unavailable["image"])
            return
        try:
            images = [i.name for i in await self.tapp.backend.images()]
        except ServiceError as exc:
            self._image_note(exc.message)
            return
        names = [DEFAULT_IMAGE] + [n for n in images if n != DEFAULT_IMAGE]
        select = self.query_one("#image", Select)
        current = select.value
        select.set_options((n, n) for n in names)
        select.value = current if current in names else DEFAULT_IMAGE

    def _image_note(self, reason: str) -> None:
        # Not an error: the default image still works, the list of others is just unknown.
        self._note("image", f"only the default image: {reason}")

    # ---- validation

    def _value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def clear_errors(self) -> None:
        for name in FIELDS:
            label = self.query_one(f"#{name}-error", Label)
            if label.has_class("field-note"):
                continue
            label.update("")
            label.add_class("hidden")
        self.query_one("#form-error", Static).update("")

    def show_error(self, message: str, field: str | None = None) -> None:
        field = field or field_for(message)
        self.query_one("#form-error", Static).update(message)
        if field in FIELDS:
            label = self.query_one(f"#{field}-error", Label)
            label.set_classes("field-error")
            label.update(message)
            target = self.query(f"#{field}")
            if target:
                target.first().focus()

    def collect(self) -> CreateOptions | tuple[str, str]:
        """The options, or (field, message) for the first problem found before the runtime."""
        taken = {b.name for b in self.tapp.boxes}
        name = self._value("name")
        if problem := name_problem(name, taken):
            return ("name", problem)
        try:
            command = split_words(self._value("command") or "/bin/sh")
        except ValueError as exc:
            return ("command", f"command: {exc}")
        try:
            env = split_words(self._value("env"))
        except ValueError as exc:
            return ("env", f"env: {exc}")
        if bad := [e for e in env if "=" not in e or e.startswith("=")]:
            return ("env", f"env: {bad[0]!r} is not KEY=value")
        ports = tuple(self._value("ports").replace(",", " ").split())
        network = self.query_one("#network", Switch).value
        if ports and not network:
            return ("ports", "publishing ports needs the network: turn Network on")
        image = self.query_one("#image", Select).value
        return CreateOptions(
            name=name,
            image=image if isinstance(image, str) else DEFAULT_IMAGE,
            rootfs=self._value("rootfs") or None,
            command=command,
            hostname=self._value("hostname") or None,
            terminal=self.query_one("#terminal", Switch).value,
            network=network,
            ports=ports,
            memory=self._value("memory") or None,
            cpus=self._value("cpus") or None,
            pids=self._value("pids") or None,
            env=env,
        )

    # ---- submit

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        if self.busy:
            return
        self.clear_errors()
        result = self.collect()
        if isinstance(result, tuple):
            self.show_error(result[1], result[0])
            return
        self.create(result)

    @work(exclusive=True, exit_on_error=False, group="create")
    async def create(self, options: CreateOptions) -> None:
        self.busy = True
        button = self.query_one("#submit", Button)
        button.disabled = True
        button.label = "Creating…"
        try:
            await self.tapp.backend.run(options)
        except ServiceError as exc:
            self.show_error(exc.message)
            return
        finally:
            self.busy = False
            button.disabled = False
            button.label = "Create & start"
        self.dismiss(options.name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
