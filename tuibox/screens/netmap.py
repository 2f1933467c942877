"""The network map (`m`): each bridge with its subnet, gateway and NAT, and under it every box
on it, with the host end of its veth, its address and its published ports; a netconf's
point-to-point veths (no bridge) last. Enter on a box closes the map and puts the list's
cursor on it.

All of it comes from what the runtime recorded (box records, the networks' state, the
leases) in one worker-thread call: no netlink query, so it opens as fast with 50 boxes as
with 2. A veth whose host end is gone (/sys/class/net) is flagged."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, Tree
from textual.widgets.tree import TreeNode

from tuibox.service import BoxLink, NetworkMap, NetworkRow, ServiceError
from tuibox.widgets.format import status_text

if TYPE_CHECKING:
    from tuibox.app import TuiboxApp

HINT = "enter: go to the box · space: fold a bridge · r: reload · esc: back"


def port_text(port: str) -> str:
    """'127.0.0.1:8080:80/tcp' -> '127.0.0.1:8080→80/tcp'."""
    body, slash, proto = port.partition("/")
    host, _, box = body.rpartition(":")
    return f"{host}→{box}{slash}{proto}" if host else port


def bridge_label(net: NetworkRow, links: list[BoxLink]) -> Text:
    boxes = sorted({link.box for link in links})
    text = Text()
    text.append(net.bridge, style="bold cyan")
    if net.name != net.bridge:
        text.append(f"  network {net.name}")
    text.append(f"  {net.subnet or 'subnet unknown'}")
    if net.gateway:
        text.append(f"  gw {net.gateway}")
    text.append("  NAT ")
    text.append("on" if net.nat else "off", style="green" if net.nat else "dim")
    if len(boxes) > 1:
        text.append(f"  · {len(boxes)} boxes share it", style="yellow")
    elif boxes:
        text.append("  · 1 box", style="dim")
    else:
        text.append("  · no boxes", style="dim")
    return text


def link_label(link: BoxLink, name_width: int) -> Text:
    text = Text()
    text.append(link.box.ljust(name_width), style="bold")
    text.append("  ")
    text.append(f"{link.address or 'no address':<18}")
    if link.veth:
        text.append(f" {link.veth}", style="magenta")
        text.append(f" ↔ {link.box_ifname or '?'}", style="dim")
        if link.veth_present is False:
            text.append(" (veth missing)", style="bold red")
    else:
        text.append(" no veth", style="dim")
    if link.ports:
        text.append("  ports ")
        text.append(" ".join(port_text(p) for p in link.ports), style="green")
    text.append("  ")
    text.append_text(status_text(link.status))
    return text


def fill_tree(tree: Tree[str], data: NetworkMap) -> None:
    """The whole map into `tree` (cleared first); node data: a box name on box leaves."""
    tree.clear()
    root = tree.root
    root.set_label(Text(f"host · {len(data.networks)} networks", style="bold"))
    for net in data.networks:
        links = data.on(net.bridge)
        node: TreeNode[str] = root.add(bridge_label(net, links), expand=True)
        width = max((len(link.box) for link in links), default=0)
        for link in links:
            node.add_leaf(link_label(link, width), data=link.box)
    alone = data.on(None)
    if alone:
        node = root.add(Text("no bridge (point-to-point veths)", style="bold"), expand=True)
        width = max(len(link.box) for link in alone)
        for link in alone:
            node.add_leaf(link_label(link, width), data=link.box)
    root.expand()


class NetworkMapScreen(Screen[None]):
    HELP_TITLE = "network map"
    CSS_PATH = "networks.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="netmap.back"),
        Binding("q", "back", "Back", id="netmap.back_q", show=False),
        Binding("question_mark", "app.help", "Help", id="app.help"),
        Binding("r", "reload", "Reload", id="netmap.reload"),
    ]

    def __init__(self, data: NetworkMap | None = None, error: str | None = None) -> None:
        """`data` (or the `error` that stopped it): the map read before the screen was pushed
        (open_network_map), so its first frame is the whole map, not an empty tree drawn a
        moment earlier (a second full-screen render: half the cost of opening)."""
        super().__init__()
        self.data = data
        self.error = error

    @property
    def tapp(self) -> TuiboxApp:
        return cast("TuiboxApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        tree: Tree[str] = Tree("host", id="netmap")
        tree.guide_depth = 3
        yield tree
        yield Static(HINT, id="netmap-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.map_tree.border_title = "network map"
        self.map_tree.focus()
        if self.data is not None:
            self.show(self.data)
        elif self.error is not None:
            self.show_error(self.error)
        else:
            self.load()

    @property
    def map_tree(self) -> Tree[str]:
        return cast("Tree[str]", self.query_one("#netmap", Tree))

    @work(exclusive=True, exit_on_error=False, group="netmap")
    async def load(self) -> None:
        try:
            data = await self.tapp.backend.network_map()
        except ServiceError as exc:
            self.show_error(exc.message)
            return
        self.show(data)

    def show(self, data: NetworkMap) -> None:
        self.error = None
        self.data = data
        fill_tree(self.map_tree, data)
        status = HINT if data.networks or data.links else "No networks yet. " + HINT
        self.query_one("#netmap-status", Static).update(status)

    def show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#netmap-status", Static).update(
            Text(f"cannot read the networks: {message}", style="bold red")
        )

    @on(Tree.NodeSelected, "#netmap")
    def _selected(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data:
            self.go_to_box(event.node.data)

    def go_to_box(self, name: str) -> None:
        """Close the map (and the networks screen under it) and put the list on `name`."""
        from tuibox.screens.boxes import BoxesScreen

        app = self.app
        # pop_screen takes the screen off the stack at once (its removal follows): not
        # awaited, as this screen's own handler cannot wait for this screen to go.
        while len(app.screen_stack) > 1 and not isinstance(app.screen, BoxesScreen):
            app.pop_screen()
        if isinstance(app.screen, BoxesScreen):
            app.screen.go_to_box(name)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.load()


async def open_network_map(app: TuiboxApp) -> None:
    """Read the map, then push its screen with it (see NetworkMapScreen).

    The cyclic garbage collector waits until the map has been drawn: making a screen
    allocates enough to set off a full collection of the app's heap most times, measured at
    60-80 ms of the ~150 ms an open took with 50 boxes (bench/netmap_bench.py). Deferred, it
    runs right after the first frame, while the user reads."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            data = await app.backend.network_map()
        except ServiceError as exc:
            screen = NetworkMapScreen(error=exc.message)
        else:
            screen = NetworkMapScreen(data)
        await app.push_screen(screen)
    finally:
        if collecting:
            # After the screen's next refresh (its first frame), or at once if none comes.
            if app.screen_stack and app.screen.is_attached:
                app.screen.call_after_refresh(gc.enable)
            else:
                gc.enable()
