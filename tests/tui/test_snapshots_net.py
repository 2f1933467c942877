"""SVG snapshots of the networks screen, the network map and the limits dialog (issue 17) at
80x24, 100x30 and 160x48, on the fake runtime. Update with `--snapshot-update` after a
deliberate change and look at the SVGs in tests/tui/__snapshots__/ before committing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import refresh
from fake_backend import FakeBackend
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tuibox.app import TuiboxApp

SIZES = [(80, 24), (100, 30), (160, 48)]
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}


def press_on(name: str, *keys: str) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        await refresh(pilot)
        pilot.app.screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.app.workers.wait_for_complete()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return before


def on_lab(fake: FakeBackend) -> None:
    """db on `lab` too, so the map shows two bridges with boxes."""
    fake.box_networks["db"] = "lab"
    fake.boxes["db"] = replace(fake.boxes["db"], address="10.214.0.7")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_networks_screen(
    snap_compare: Any, make_app: Callable[..., TuiboxApp], fake: FakeBackend, size: tuple[int, int]
) -> None:
    on_lab(fake)
    assert snap_compare(make_app(), terminal_size=size, run_before=press_on("web", "N"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_network_map(
    snap_compare: Any, make_app: Callable[..., TuiboxApp], fake: FakeBackend, size: tuple[int, int]
) -> None:
    on_lab(fake)
    assert snap_compare(make_app(), terminal_size=size, run_before=press_on("web", "m"))


def test_limits_dialog(snap_compare: Any, make_app: Callable[..., TuiboxApp]) -> None:
    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=press_on("web", "L"))
