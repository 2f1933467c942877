"""The network map and the limits dialog on the real runtime (root): the map's bridge, veth
names and addresses are the kernel's and the records' own; a limit set in the dialog is in the
box's cgroup file."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from textual.widgets import DataTable, Input

from tests.integration.actions_helpers import cgpath, v1_file
from tests.integration.test_network import Net, _free_port, net  # noqa: F401 - the fixture
from tuibox.app import TuiboxApp
from tuibox.runtime.cgroups.hierarchy import detect
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.limits import LimitsScreen
from tuibox.screens.netmap import NetworkMapScreen
from tuibox.screens.networks import NetworksScreen
from tuibox.service import InProcessBackend
from tuibox.widgets.table_sync import cursor_key

pytestmark = pytest.mark.root


def links_on(bridge: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return {x["ifname"]: x for x in json.loads(out) if x.get("master") == bridge}


def map_lines(screen: NetworkMapScreen) -> list[str]:
    from rich.text import Text
    from textual.widgets import Tree

    tree = screen.query_one("#netmap", Tree)
    lines = []
    for n in range(tree.last_line + 1):
        node = tree.get_node_at_line(n)
        if node is not None:
            label = node.label
            lines.append(label.plain if isinstance(label, Text) else str(label))
    return lines


async def test_map_shows_the_kernels_veths_and_jumps(
    tb: Any,
    net: Net,  # noqa: F811 - the fixture: a bridge and subnet of this test's own
    busybox_rootfs: Path,
) -> None:
    tag = uuid.uuid4().hex[:5]
    names = [f"map{tag}a", f"map{tag}b"]
    port = _free_port()
    for name, publish in zip(names, (["-p", f"127.0.0.1:{port}:80"], []), strict=True):
        tb("run", "-d", "--rootfs", str(busybox_rootfs), "--network", "default", *publish,
           "--", name, "sleep", "1000")  # fmt: skip
    records = {
        n: json.loads((Path(tb.root) / n / "state.json").read_text())["extra"] for n in names
    }
    app = TuiboxApp(
        backend=InProcessBackend(str(tb.root), str(tb.data_root)),
        refresh_interval=0.5,
        privileged=True,
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: all(app.box(n) for n in names))
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, NetworkMapScreen)
        await wait_until(pilot, lambda: screen.data is not None or screen.error is not None)
        assert screen.error is None, screen.error
        lines = map_lines(screen)
        bridge_line = next(x for x in lines if x.startswith(net.bridge))
        assert f"{net.subnet}  gw {net.gateway}  NAT on" in bridge_line
        assert "2 boxes share it" in bridge_line
        kernel = links_on(net.bridge)
        for name in names:
            iface = records[name]["network"]["interfaces"][0]
            line = next(x for x in lines if x.startswith(name))
            words = line.split()
            # The address and the host end the runtime recorded, and that veth is on the bridge.
            assert words[1] == iface["address"], (line, iface)
            assert words[2] == iface["host"] and iface["host"] in kernel, (line, kernel)
            assert words[1].partition("/")[0] == records[name]["address"]
            assert "veth missing" not in line and line.endswith("running")
        assert f"ports 127.0.0.1:{port}→80/tcp" in next(x for x in lines if x.startswith(names[0]))
        assert "ports" not in next(x for x in lines if x.startswith(names[1]))
        assert len(kernel) == 2
        # Enter on the second box: the map closes, the list's cursor is on it.
        tree = screen.query_one("#netmap")
        row = next(i for i, x in enumerate(lines) if x.startswith(names[1]))
        tree.cursor_line = row  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen))
        table = app.screen.query_one("#boxes", DataTable)
        await wait_until(pilot, lambda: cursor_key(table) == names[1])
        # The networks screen: the leases say who is on it, and removing it is refused.
        await pilot.press("N")
        nets = app.screen
        assert isinstance(nets, NetworksScreen)
        await wait_until(pilot, lambda: nets.loaded)
        row = next(n for n in nets.networks if n.name == "default")
        assert (row.bridge, row.subnet, row.nat, row.boxes) == (net.bridge, net.subnet, True,
                                                                tuple(names))  # fmt: skip
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, NetworksScreen)
        refused = f"network default still has boxes: {', '.join(names)} (destroy them first)"
        assert refused in [n.message for n in app._notifications]
    tb("destroy", "--force", *names)


def limit_file(tb: Any, name: str, controller: str, v1: str) -> str:
    return v1_file(controller, cgpath(tb, name), v1)


@pytest.mark.skipif(
    not {"memory", "pids"} <= set(detect().v1),
    reason="reads the v1 control files (this host's); the v2 writes are unit-tested",
)
async def test_limits_dialog_changes_the_cgroup(tb: Any, busybox_rootfs: Path) -> None:
    name = f"lim{uuid.uuid4().hex[:6]}"
    tb("run", "-d", "--rootfs", str(busybox_rootfs), "--memory", "64m", "--pids-limit", "40",
       "--", name, "sleep", "1000")  # fmt: skip
    assert limit_file(tb, name, "memory", "memory.limit_in_bytes") == str(64 << 20)
    app = TuiboxApp(
        backend=InProcessBackend(str(tb.root), str(tb.data_root)),
        refresh_interval=0.5,
        privileged=True,
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.box(name) is not None)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        screen.go_to_box(name)
        await wait_until(pilot, lambda: cursor_key(screen.query_one("#boxes", DataTable)) == name)
        await pilot.press("L")
        dialog = app.screen
        assert isinstance(dialog, LimitsScreen)
        assert dialog.query_one("#memory", Input).value == "64m"
        assert dialog.query_one("#pids", Input).value == "40"
        dialog.query_one("#memory", Input).value = "96m"
        dialog.query_one("#pids", Input).value = "77"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen), timeout=20)
        await wait_until(
            pilot, lambda: (b := app.box(name)) is not None and b.limits.memory == 96 << 20
        )
    assert limit_file(tb, name, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert limit_file(tb, name, "pids", "pids.max") == "77"
    tb("destroy", "--force", name)
