"""The networks screen (N), the network map (m) and the limits dialog (L), on the fake runtime:
open, navigate, act, and every error the user can meet (one line, naming the field)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from conftest import refresh, text_of
from fake_backend import FakeBackend
from rich.text import Text
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Label, Static, Tree

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.limits import LimitsScreen
from tuibox.screens.netmap import NetworkMapScreen
from tuibox.screens.networks import NetworkFormScreen, NetworksScreen
from tuibox.service import Limits, limit_changes, limits_problem, network_problem
from tuibox.service import NetworkOptions as Opts
from tuibox.widgets.table_sync import cursor_key

SIZE = (120, 36)
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


async def on_box(pilot: Any, name: str) -> BoxesScreen:
    await refresh(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BoxesScreen)
    screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
    await pilot.pause()
    return screen


async def settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def error_of(screen: Any, field: str) -> str:
    label = screen.query_one(f"#{field}-error", Label)
    return "" if label.has_class("hidden") else text_of(label).strip()


def notes(app: TuiboxApp) -> list[str]:
    return [n.message for n in app._notifications]


# ---- networks


async def open_networks(pilot: Any) -> NetworksScreen:
    await on_box(pilot, "web")
    await pilot.press("N")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, NetworksScreen)
    return screen


async def test_networks_list_details_and_back(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_networks(pilot)
        table = screen.query_one("#networks", DataTable)
        assert table.row_count == 2
        row = [str(c) for c in table.get_row("default")]
        assert row == ["default", "tuibox0", "10.88.0.0/16", "10.88.0.1", "on", "1: web"]
        details = text_of(screen.query_one("#net-details", Static))
        assert "boxes (1): web" in details and "made by tuibox" in details
        await pilot.press("down")
        assert cursor_key(table) == "lab"
        details = text_of(screen.query_one("#net-details", Static))
        assert "NAT off" in details and "no boxes" in details
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen) and app.is_running
        await pilot.press("N")
        await settle(pilot)
        await pilot.press("q")  # q leaves the sub-view, never the app
        assert isinstance(app.screen, BoxesScreen) and app.is_running


async def test_remove_refused_while_boxes_use_it(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_networks(pilot)
        assert cursor_key(screen.query_one("#networks", DataTable)) == "default"
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, NetworksScreen)  # no question: refused at once
        assert "network default still has boxes: web (destroy them first)" in notes(app)
        assert not any(c[:2] == ("network", "rm") for c in fake.calls)


async def test_remove_asks_then_removes(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_networks(pilot)
        await pilot.press("down", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Remove network lab" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert ("network", "rm", "lab") in fake.calls
        assert [n.name for n in screen.networks] == ["default"]
        # The runtime's refusal (a box joined meanwhile) is shown as it says it.
        fake.fail["network"] = "network 'default' still has boxes: web (destroy them first)"
        screen.remove_named("default")
        await settle(pilot)
        assert "network 'default' still has boxes: web (destroy them first)" in notes(app)


async def test_create_form_inline_errors_then_create(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_networks(pilot)
        await pilot.press("c")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NetworkFormScreen)
        await pilot.press("enter")
        assert "invalid or reserved network name ''" in error_of(form, "name")
        await pilot.press(*"lab", "enter")
        assert error_of(form, "name") == "network 'lab' already exists"
        await pilot.press("backspace", "backspace", "backspace", *"web2", "enter")
        assert error_of(form, "name") == ""
        assert error_of(form, "subnet").startswith("subnet: required")
        form.query_one("#subnet", Input).value = "10.214.0.1/24"
        await pilot.press("enter")
        assert error_of(form, "subnet") == "subnet: subnet '10.214.0.1/24' has host bits set"
        form.query_one("#subnet", Input).value = "10.215.0.0/24"
        await pilot.pause()
        assert error_of(form, "subnet") == ""  # gone as soon as the field changed
        form.query_one("#gateway", Input).value = "10.9.0.1"
        form.query_one("#subnet", Input).focus()
        await pilot.press("enter")
        assert "gateway 10.9.0.1 is outside the subnet 10.215.0.0/24" in error_of(form, "gateway")
        assert "--" not in error_of(form, "gateway")
        form.query_one("#gateway", Input).value = ""
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, NetworksScreen)
        assert ("network", "create", "--subnet", "10.215.0.0/24", "--", "web2") in fake.calls
        assert cursor_key(screen.query_one("#networks", DataTable)) == "web2"


async def test_networks_list_error(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await on_box(pilot, "web")
        fake.fail["network"] = "cannot read /run/tuibox/.network: permission denied"
        await pilot.press("N")
        await settle(pilot)
        status = text_of(app.screen.query_one("#net-status", Static))
        assert "cannot list networks: cannot read /run/tuibox/.network" in status


# ---- the map


def tree_lines(screen: NetworkMapScreen) -> list[str]:
    tree = screen.query_one("#netmap", Tree)
    out = []
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None:
            label = node.label
            out.append(label.plain if isinstance(label, Text) else str(label))
    return out


async def test_map_shows_bridges_and_jumps_to_a_box(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    from tuibox.runtime.network.veth import host_name

    fake.box_networks["db"] = "lab"
    fake.boxes["db"] = fake.boxes["db"].__class__(
        **{**fake.boxes["db"].__dict__, "address": "10.214.0.7"}
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await on_box(pilot, "batch")
        await pilot.press("m")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NetworkMapScreen)
        lines = tree_lines(screen)
        assert gc.isenabled()  # deferred while the map opened, back once it was drawn
        assert lines[0] == "host · 2 networks"
        assert lines[1].startswith("tuibox0  network default  10.88.0.0/16  gw 10.88.0.1  NAT on")
        web = lines[2].split()
        assert web[:5] == ["web", "10.88.0.2/16", host_name(fake.root, "web", 0), "↔", "eth0"]
        assert "ports 8080→80/tcp" in lines[2] and lines[2].endswith("running")
        assert "NAT off" in lines[3] and "1 box" in lines[3]
        assert lines[4].split()[:2] == ["db", "10.214.0.7/24"]
        await pilot.press("down", "down")  # root -> tuibox0 -> web
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen)
        assert cursor_key(app.screen.query_one("#boxes", DataTable)) == "web"
        # From the networks screen: both close, the list's cursor moves.
        await pilot.press("N")
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, NetworkMapScreen)
        await pilot.press("down", "down", "down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen)
        assert cursor_key(app.screen.query_one("#boxes", DataTable)) == "db"


async def test_map_shares_and_errors(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    from fake_backend import many_boxes

    for box in many_boxes(3):
        fake.boxes[box.name] = box
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await on_box(pilot, "web")
        await pilot.press("m")
        await settle(pilot)
        lines = tree_lines(app.screen)  # type: ignore[arg-type]
        assert "4 boxes share it" in lines[1]
        assert [line.split()[0] for line in lines[2:6]] == ["n00", "n01", "n02", "web"]
        fake.fail["network"] = "network state is corrupt: /run/x/network.json"
        await pilot.press("r")
        await settle(pilot)
        status = text_of(app.screen.query_one("#netmap-status", Static))
        assert "cannot read the networks: network state is corrupt" in status
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)


# ---- limits


async def test_limits_prefilled_validated_applied(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await on_box(pilot, "web")
        await pilot.press("L")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LimitsScreen)
        values = {k: dialog.query_one(f"#{k}", Input).value for k in ("memory", "cpus", "pids")}
        assert values == {"memory": "256m", "cpus": "0.5", "pids": "100"}
        dialog.query_one("#memory", Input).value = "lots"
        await pilot.press("enter")
        message = error_of(dialog, "memory")
        assert message == "memory 'lots': not a size (a number with b, k, m, g or t)"
        assert "\n" not in message and "--" not in message
        dialog.query_one("#memory", Input).value = "128m"
        await pilot.pause()
        assert error_of(dialog, "memory") == ""
        dialog.query_one("#cpus", Input).value = "0"
        await pilot.press("enter")
        assert error_of(dialog, "cpus") == "cpus '0': must be from 0.01 to 4096"
        dialog.query_one("#cpus", Input).value = ""
        await pilot.press("enter")
        assert error_of(dialog, "cpus").startswith("cpus: a live box's CPU limit can be changed")
        dialog.query_one("#cpus", Input).value = "1.5"
        dialog.query_one("#pids", Input).value = "x"
        await pilot.press("enter")
        assert error_of(dialog, "pids") == "pids 'x': must be an integer"
        dialog.query_one("#pids", Input).value = ""  # no limit
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BoxesScreen)
        assert ("update", "web", "memory=128m", "cpus=1.5", "pids=-1") in fake.calls
        assert fake.boxes["web"].limits == Limits(memory=128 << 20, cpus=1.5, pids=None)
        assert "limits of web updated" in notes(app)


async def test_limits_runtime_error_and_greyed(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_box(pilot, "old")  # stopped: update needs a live box
        assert screen.check_action("limits", ()) is None
        reason = screen.action_reason("limits")
        assert reason == "old is stopped; limits needs created or paused or running"
        await pilot.press("L")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen)
        screen.query_one("#boxes", DataTable).move_cursor(row=ROW["db"])
        await pilot.pause()
        await pilot.press("L")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LimitsScreen)
        assert dialog.query_one("#memory", Input).value == ""  # no limit yet
        fake.fail["update"] = "cannot write memory.limit_in_bytes: device or resource busy"
        dialog.query_one("#memory", Input).value = "64m"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LimitsScreen)
        shown = text_of(dialog.query_one("#form-error", Static)).strip()
        assert shown == "cannot write memory.limit_in_bytes: device or resource busy"
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)


async def test_palette_finds_network_and_limit(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await on_box(pilot, "web")
        for query, wanted in (("network", "Networks"), ("map", "Network map"), ("limit", "Limits")):
            await pilot.press("ctrl+p")
            assert isinstance(app.screen, CommandPalette)
            await pilot.press(*query)
            await pilot.pause(0.3)
            results = app.screen.query_one(CommandList)
            prompts = [
                Text.from_markup(str(results.get_option_at_index(i).prompt)).plain
                for i in range(results.option_count)
            ]
            assert any(p.startswith(wanted) for p in prompts), (query, prompts)
            await pilot.press("escape")
            await pilot.pause()


def test_pure_helpers() -> None:
    assert limit_changes({"memory": "256m", "cpus": "", "pids": "5"}, {"memory": "256m ",
           "cpus": "2", "pids": ""}) == {"cpus": "2", "pids": "-1"}  # fmt: skip
    assert limits_problem({"memory": "1m"}) == ("memory", "memory '1m': the minimum is 6m")
    assert limits_problem({"memory": "-1", "pids": "-1", "cpus": "0.25"}) is None
    assert network_problem(Opts("a", "10.1.0.0/31")) == (
        "subnet",
        "subnet 10.1.0.0/31 is too small (at most /30)",
    )
    assert network_problem(Opts("a", "10.1.0.0/24", bridge="x" * 16))[0] == "bridge"  # type: ignore[index]
    assert network_problem(Opts("default", "10.1.0.0/24"))[0] == "name"  # type: ignore[index]
    assert network_problem(Opts("ok-1", "10.1.0.0/24", gateway="10.1.0.9")) is None
