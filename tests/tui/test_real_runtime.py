"""The TUI against the real runtime (root): the issue's end-to-end check, through the screens."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from textual.widgets import DataTable, Input, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.create import CreateBoxScreen
from tuibox.screens.processes import ProcessesScreen
from tuibox.widgets.table_sync import cursor_key

pytestmark = pytest.mark.root


def status_of(app: TuiboxApp, name: str) -> str | None:
    box = app.box(name)
    return box.status if box else None


@pytest.mark.parametrize("source", ["image", "rootfs"])
async def test_create_watch_and_destroy_a_box(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path, source: str
) -> None:
    app = real_app
    name = f"tui-{uuid.uuid4().hex[:6]}"
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateBoxScreen))
        form = app.screen
        form.query_one("#name", Input).value = name
        if source == "rootfs":
            form.query_one("#rootfs", Input).value = str(busybox_rootfs)
        else:  # the form's default: the built-in busybox image
            form.query_one("#memory", Input).value = "64m"
        form.query_one("#command", Input).value = "sleep 1000"
        form.query_one("#terminal", Switch).value = False
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen), timeout=30)
        await wait_until(pilot, lambda: status_of(app, name) == "running", timeout=15)
        box = app.box(name)
        assert box is not None and box.pid > 0
        if source == "image":
            assert box.image == "busybox" and box.limits.memory == 64 * 1024 * 1024
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        await wait_until(pilot, lambda: cursor_key(screen.query_one("#boxes", DataTable)) == name)
        # The CLI sees what the TUI made.
        assert name in tb("list", "-q").stdout.split()

        # ps, stats, pause and resume have landed: they must work, not be greyed out.
        assert not {"ps", "stats", "pause", "resume"} & set(app.unavailable), app.unavailable
        await wait_until(pilot, lambda: name in app.history.latest)  # one stats call
        assert app.stats_error is None

        await pilot.press("t")
        ps = app.screen
        assert isinstance(ps, ProcessesScreen)
        await wait_until(pilot, lambda: bool(ps.processes) or ps.error is not None)
        assert ps.error is None, ps.error
        assert any("sleep" in p.command for p in ps.processes)
        await pilot.press("escape")

        await pilot.press("p")
        await wait_until(pilot, lambda: status_of(app, name) == "paused")
        await pilot.press("u")
        await wait_until(pilot, lambda: status_of(app, name) == "running")

        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert name in app.screen.question
        await pilot.press("y")
        await wait_until(pilot, lambda: app.box(name) is None, timeout=30)
    assert not (Path(tb.root) / name).exists()
    assert f"/{name}" not in Path("/proc/self/mountinfo").read_text()
