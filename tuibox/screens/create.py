"""The create form: everything `tuibox run -d` takes, checked inline, Enter creates and starts.

Names and limits are checked with the runtime's own rules as they are typed into; every other
check is the runtime's: its error line is shown under the field it names, in the form's words
(the field's label, never the CLI flag). An error goes as soon as its field is fixed.

Empty fields are empty: the grey italic "e.g." text in a field is an example, never a value
that is sent (podman-tui and docker's own forms leave limits empty the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from tuibox.service import CreateOptions, ServiceError, limit_problem, split_words
from tuibox.service import name_problem as name_problem  # bundle.py uses it from here
from tuibox.widgets.form_field import form_field
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
FORM_MAX = 26  # rows of fields at most (all of them, at 160x48)
FORM_CHROME = 11
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
LABELS = {
    "name": "Name",
    "image": "Image",
    "rootfs": "Rootfs",
    "command": "Command",
    "hostname": "Hostname",
    "network": "Network",
    "ports": "Ports",
    "memory": "Memory",
    "cpus": "CPUs",
    "pids": "Pids",
    "env": "Env",
}
# The CLI's flags as a runtime error may name them -> the form's field.
FLAG_FIELDS = {
    "--memory": "memory",
    "--cpus": "cpus",
    "--pids-limit": "pids",
    "--hostname": "hostname",
    "--rootfs": "rootfs",
    "--image": "image",
    "--network": "network",
    "--publish": "ports",
    "-p": "ports",
    "--env": "env",
    "-e": "env",
}
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


def port_hint(exposed: Sequence[str]) -> str:
    """ExposedPorts ("80/tcp") as the Ports field's suggestion ("80:80")."""
    ports = [p.partition("/")[0] for p in exposed if p.partition("/")[0].isdigit()]
    return " ".join(f"{p}:{p}" for p in ports)


def form_message(message: str) -> str:
    """A runtime error in the form's words: "--memory 'x': ..." -> "Memory: 'x': ...",
    "env: ..." -> "Env: ..."."""
    word, _, rest = message.partition(" ")
    field = FLAG_FIELDS.get(word)
    if field is not None and rest:
        return f"{LABELS[field]}: {rest}"
    head, colon, rest = message.partition(": ")
    if colon and head in LABELS:
        return f"{LABELS[head]}: {rest}"
    return message


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

    def __init__(
        self, suggested_name: str, image: str | None = None, ports: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self.suggested_name = suggested_name
        # Prefilled from the images screen: that image, and its ExposedPorts as a hint.
        self.image = image or DEFAULT_IMAGE
        self.exposed = tuple(ports)
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
                yield from form_field("Name", Input(self.suggested_name, id="name", compact=True))
                yield from form_field(
                    "Image",
                    Select(
                        compact=True,
                        options=[(n, n) for n in dict.fromkeys((DEFAULT_IMAGE, self.image))],
                        value=self.image,
                        allow_blank=False,
                        id="image",
                    ),
                )
                yield from form_field(
                    "or rootfs",
                    Input(
                        compact=True,
                        placeholder="e.g. /srv/rootfs (a directory, instead of the image)",
                        suggester=PathSuggester(),
                        id="rootfs",
                    ),
                )
                yield from form_field("Command", Input(command, id="command", compact=True))
                yield from form_field(
                    "Hostname",
                    Input(compact=True, placeholder="default: the box's name", id="hostname"),
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
                yield from form_field(
                    "Ports",
                    Input(
                        compact=True,
                        placeholder=port_hint(self.exposed) or "e.g. 8080:80 8443:443 (HOST:BOX)",
                        id="ports",
                    ),
                )
                with Horizontal(classes="row limits"):
                    yield Label("Memory", classes="field-label")
                    yield Input(compact=True, placeholder="e.g. 256m", id="memory")
                    yield Label("CPUs", classes="field-label short")
                    yield Input(compact=True, placeholder="e.g. 0.5", id="cpus")
                    yield Label("Pids", classes="field-label short")
                    yield Input(compact=True, placeholder="e.g. 100", id="pids")
                yield Label("empty: no limit", id="limits-note", classes="field-note")
                for name in ("memory", "cpus", "pids"):
                    yield Label("", id=f"{name}-error", classes="field-error hidden")
                yield from form_field(
                    "Env",
                    Input(compact=True, placeholder="e.g. KEY=value OTHER='with spaces'", id="env"),
                )
            yield Static("", id="form-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create & start", id="submit", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        if self.defaults_note:
            self._note("command", self.defaults_note)
        if self.exposed:
            self._note("ports", f"the image exposes {', '.join(self.exposed)}")
        self.load_images()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # The focused field's label lights up too: the eye finds the row before the field.
        for label in self.query(".field-label.-focused"):
            label.remove_class("-focused")
        widget = event.widget
        siblings = list(widget.parent.children) if widget.parent is not None else []
        at = siblings.index(widget) if widget in siblings else 0
        if at and isinstance(label := siblings[at - 1], Label):
            label.add_class("-focused")

    def on_resize(self, event: events.Resize) -> None:
        # The buttons stay on screen: the fields scroll when the terminal is short (80x24).
        # Rows the dialog needs besides the fields: its border, padding, title and buttons.
        room = int(event.size.height * 0.9) - FORM_CHROME
        self.query_one("#create-form").styles.max_height = max(4, min(FORM_MAX, room))

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
        if self.image not in names:
            names.append(self.image)
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
        message = form_message(message)
        if field not in FIELDS:
            self.query_one("#form-error", Static).update(message)
            return
        # Under its field only: the same line twice on screen reads as two problems.
        label = self.query_one(f"#{field}-error", Label)
        label.set_classes("field-error")
        label.update(message)
        target = self.query(f"#{field}")
        if target:
            target.first().focus()

    def problem(self, field: str) -> str | None:
        """What is wrong with `field` as far as the form can tell before the runtime."""
        value = self._value(field) if field not in ("network", "image") else ""
        if field == "name":
            return name_problem(value, {b.name for b in self.tapp.boxes})
        if field in ("command", "env"):
            try:
                words = split_words(value)
            except ValueError as exc:
                return f"{LABELS[field]}: {exc}"
            if field == "env" and (bad := [e for e in words if "=" not in e or e[0] == "="]):
                return f"Env: {bad[0]!r} is not KEY=value"
        if field == "ports" and value and not self.query_one("#network", Switch).value:
            return "Ports: publishing ports needs the network: turn Network on"
        if field in ("memory", "cpus", "pids") and value:
            return limit_problem(field, value)
        return None

    @on(Input.Changed)
    def _revalidate(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        if field in FIELDS:
            self._recheck(field)

    @on(Switch.Changed, "#network")
    def _network_changed(self) -> None:
        self._recheck("ports")
        self._recheck("network")

    def _recheck(self, field: str) -> None:
        """A shown error is checked again as its field changes: gone once fixed, updated while
        still wrong. A runtime error the form cannot check goes with the first change."""
        label = self.query_one(f"#{field}-error", Label)
        if label.has_class("hidden") or label.has_class("field-note"):
            return
        if problem := self.problem(field):
            label.update(problem)
        else:
            label.update("")
            label.add_class("hidden")

    def collect(self) -> CreateOptions | tuple[str, str]:
        """The options, or (field, message) for the first problem found before the runtime."""
        for field in FIELDS:
            if problem := self.problem(field):
                return (field, problem)
        network = self.query_one("#network", Switch).value
        image = self.query_one("#image", Select).value
        return CreateOptions(
            name=self._value("name"),
            image=image if isinstance(image, str) else DEFAULT_IMAGE,
            rootfs=self._value("rootfs") or None,
            command=split_words(self._value("command") or "/bin/sh"),
            hostname=self._value("hostname") or None,
            terminal=self.query_one("#terminal", Switch).value,
            network=network,
            ports=tuple(self._value("ports").replace(",", " ").split()),
            memory=self._value("memory") or None,
            cpus=self._value("cpus") or None,
            pids=self._value("pids") or None,
            env=split_words(self._value("env")),
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
