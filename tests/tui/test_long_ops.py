"""Long operations: shown at once, not queued twice, and run concurrently on a selection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from conftest import refresh
from fake_backend import FakeBackend
from rich.text import Text
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen

SIZE = (140, 40)


def state_cell(app: TuiboxApp, name: str) -> str:
    cell = app.screen.query_one("#boxes", DataTable).get_cell(name, "state")
    return cell.plain if isinstance(cell, Text) else str(cell)


async def test_stop_shows_stopping_at_once_and_a_second_x_is_not_queued(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.stop_gate = asyncio.Event()  # the box ignores SIGTERM: stop waits out its timeout
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        screen.go_to_box("web")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert state_cell(app, "web") == "stopping…"
        app.request_refresh()  # a poll meanwhile still says running: the row keeps its word
        await pilot.pause(0.1)
        assert state_cell(app, "web") == "stopping…"
        await pilot.press("x", "x")
        await pilot.pause(0.1)
        assert [c for c in fake.calls if c[0] == "stop"] == [("stop", "web")]
        fake.stop_gate.set()
        await refresh(pilot)
        assert state_cell(app, "web").startswith("stopped") and app.pending == {}


async def test_bulk_stop_runs_concurrently(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.stop_gate = asyncio.Event()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("A")  # select all; the stopped one is skipped
        await pilot.press("x")
        await pilot.pause(0.2)
        # All three stops are under way before the first one returns.
        stops = sorted(c[1] for c in fake.calls if c[0] == "stop")
        assert stops == ["batch", "db", "web"]
        assert {state_cell(app, n) for n in stops} == {"stopping…"}
        fake.stop_gate.set()
        await refresh(pilot)
        assert all(state_cell(app, n).startswith("stopped") for n in stops)
