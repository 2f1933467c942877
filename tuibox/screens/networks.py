"""The networks of the state root (`N` on the list): `network ls` as a table, the selected
network's details and the boxes on it, `c` to create one (a form), `d` to remove one (asks
first; refused at once while boxes use it, naming them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static, Switch

from tuibox.service import NetworkOptions, NetworkRow, ServiceError, network_problem
from tuibox.widgets.form_field import form_field
from tuibox.widgets.table_sync import cursor_key, sync_rows

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"),
    ("bridge", "BRIDGE"),
    ("subnet", "SUBNET"),
    ("gateway", "GATEWAY"),
    ("nat", "NAT"),
    ("boxes", "BOXES"),
)
COLUMN_KEYS = tuple(k for k, _ in COLUMNS)
FORM_FIELDS = ("name", "subnet", "bridge", "gateway")


def boxes_text(boxes: tuple[str, ...], width: int = 30) -> str:
    if not boxes:
        return "-"
    text = f"{len(boxes)}: {', '.join(boxes)}"
    return text if len(text) <= width else text[: width - 1] + "…"


def network_cells(net: NetworkRow) -> list[Any]:
    return [
        Text(net.name, style="bold"),
        net.bridge,
        net.subnet or "-",
        net.gateway or "-",
        Text("on", style="green") if net.nat else Text("off", style="dim"),
        boxes_text(net.boxes),
    ]


def network_details(net: NetworkRow) -> Text:
    """What `inspect` of a network would say: every field, and each box on it."""
    text = Text()
    text.append(f"{net.name}", style="bold")
    text.append(f"  bridge {net.bridge}")
    owner = "made by tuibox" if net.created_bridge else "not made by tuibox (kept on removal)"
    if net.kind != "tuibox":
        owner = f"a {net.kind} bridge"
    text.append(f" ({owner})\n", style="dim")
    text.append(f"subnet {net.subnet or 'unknown'} · gateway {net.gateway or 'unknown'} · ")
    text.append(f"NAT {'on' if net.nat else 'off'}\n")
    if net.boxes:
        text.append(f"boxes ({len(net.boxes)}): ", style="bold")
        text.append(", ".join(net.boxes))
    else:
        text.append("no boxes: it can be removed (d)", style="dim")
    return text


class NetworksScreen(Screen[None]):
    HELP_TITLE = "networks"
    CSS_PATH = "networks.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="networks.back"),
        Binding("q", "back", "Back", id="networks.back_q", show=False),
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("c", "create", "Create network", id="networks.create"),
        Binding("d", "remove", "Remove network", id="networks.remove"),
        Binding("m", "map", "Network map", id="networks.map"),
        Binding("r", "reload", "Reload", id="networks.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.networks: list[NetworkRow] = []
        self.error: str | None = None
        self.loaded = False
        self.pending_select: str | None = None

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="networks", cursor_type="row", zebra_stripes=True)
        yield Static("loading…", id="net-status", classes="status-line")
        yield Static("", id="net-details")
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.border_title = "networks"
        table.focus()
        self.load()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#networks", DataTable)

    @work(exclusive=True, exit_on_error=False, group="networks")
    async def load(self) -> None:
        try:
            self.networks = await self.tapp.backend.networks()
            self.error = None
        except ServiceError as exc:
            self.error = exc.message
        self.loaded = True
        self.show_networks()

    def show_networks(self) -> None:
        table = self.table
        sync_rows(table, [(n.name, network_cells(n)) for n in self.networks], COLUMN_KEYS, "name")
        if self.pending_select and any(n.name == self.pending_select for n in self.networks):
            table.move_cursor(row=table.get_row_index(self.pending_select))
            self.pending_select = None
        table.border_title = f"networks {len(self.networks)}"
        status = self.query_one("#net-status", Static)
        if self.error:
            status.update(Text(f"cannot list networks: {self.error}", style="bold red"))
        elif not self.networks:
            status.update(
                "No networks yet: `default` appears once a box has used it. c creates one."
            )
        else:
            status.update("")
        status.set_class(not self.error and bool(self.networks), "hidden")
        self._show_details()
        self.refresh_bindings()

    def current(self) -> NetworkRow | None:
        key = cursor_key(self.table)
        return next((n for n in self.networks if n.name == key), None)

    @on(DataTable.RowHighlighted, "#networks")
    def _show_details(self) -> None:
        net = self.current()
        details = self.query_one("#net-details", Static)
        details.update(network_details(net) if net else "")
        details.set_class(net is None, "hidden")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remove":
            return True if self.current() is not None else None
        return True

    # ---- actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False, group="netmap-open")
    async def action_map(self) -> None:
        from tuibox.screens.netmap import open_network_map

        await open_network_map(self.tapp)

    def action_create(self) -> None:
        def created(name: str | None) -> None:
            if name:
                self.pending_select = name
                self.app.notify(f"network {name} created", timeout=4)
                self.load()

        taken = [n.name for n in self.networks]
        self.app.push_screen(NetworkFormScreen(taken), created)

    def action_remove(self) -> None:
        from tuibox.screens.confirm import ConfirmScreen

        net = self.current()
        if net is None:
            return
        if net.boxes:
            # The runtime refuses it too; said here at once, with the boxes to deal with.
            self.app.notify(
                f"network {net.name} still has boxes: {', '.join(net.boxes)} (destroy them first)",
                title="cannot remove",
                severity="error",
                timeout=8,
            )
            return
        question = f"Remove network {net.name} (bridge {net.bridge}, {net.subnet or '-'})?"
        if net.created_bridge:
            question += f"\nIts bridge {net.bridge} is deleted too (tuibox made it)."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.remove_named(net.name)

        self.app.push_screen(ConfirmScreen(question, confirm="Remove"), confirmed)

    @work(group="network-rm", exit_on_error=False)
    async def remove_named(self, name: str) -> None:
        try:
            await self.tapp.backend.remove_network(name)
        except ServiceError as exc:
            self.app.notify(exc.message, title=f"remove {name}", severity="error", timeout=8)
        else:
            self.app.notify(f"network {name} removed", timeout=4)
        self.load()


class NetworkFormScreen(ModalScreen[str | None]):
    """`network create` as a form: each problem shown under its field, Enter submits."""

    CSS_PATH = "networks.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="netform.cancel"),
        Binding("ctrl+s", "submit", "Create", id="netform.submit"),
    ]

    def __init__(self, taken: list[str]) -> None:
        super().__init__()
        self.taken = taken
        self.busy = False

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="netform-dialog"):
            yield Label("Create a network", classes="dialog-title")
            yield from form_field("Name", Input(id="name", compact=True, placeholder="e.g. lab"))
            yield from form_field(
                "Subnet", Input(id="subnet", compact=True, placeholder="e.g. 10.214.0.0/24")
            )
            yield from form_field(
                "Bridge", Input(id="bridge", compact=True, placeholder="empty: tb-NAME")
            )
            yield from form_field(
                "Gateway",
                Input(id="gateway", compact=True, placeholder="empty: the subnet's first address"),
            )
            with Horizontal(classes="row"):
                yield Label("NAT", classes="field-label")
                yield Switch(True, id="nat", tooltip="Outbound NAT (masquerade) for its boxes")
            yield Static("", id="form-error", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def _value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def options(self) -> NetworkOptions:
        return NetworkOptions(
            name=self._value("name"),
            subnet=self._value("subnet"),
            bridge=self._value("bridge") or None,
            gateway=self._value("gateway") or None,
            nat=self.query_one("#nat", Switch).value,
        )

    def show_error(self, message: str, field: str | None) -> None:
        if field in FORM_FIELDS:
            label = self.query_one(f"#{field}-error", Label)
            label.update(message)
            label.remove_class("hidden")
            self.query_one(f"#{field}", Input).focus()
        else:
            self.query_one("#form-error", Static).update(message)

    def clear_errors(self) -> None:
        for name in FORM_FIELDS:
            self._clear(name)
        self.query_one("#form-error", Static).update("")

    def _clear(self, name: str) -> None:
        label = self.query_one(f"#{name}-error", Label)
        label.update("")
        label.add_class("hidden")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        # A fixed field loses its error at once, not on the next submit.
        if event.input.id in FORM_FIELDS:
            self._clear(event.input.id or "")

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        if self.busy:
            return
        self.clear_errors()
        options = self.options()
        problem = network_problem(options, self.taken)
        if problem is not None:
            self.show_error(problem[1], problem[0])
            return
        self.create(options)

    @work(exclusive=True, exit_on_error=False, group="network-create")
    async def create(self, options: NetworkOptions) -> None:
        self.busy = True
        button = self.query_one("#submit", Button)
        button.disabled = True
        try:
            await self.tapp.backend.create_network(options)
        except ServiceError as exc:
            where = "name" if "already exists" in exc.message else None
            where = where or ("bridge" if "bridge" in exc.message else None)
            self.show_error(exc.message, where)
            return
        finally:
            self.busy = False
            button.disabled = False
        self.dismiss(options.name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
