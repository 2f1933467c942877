"""The TUI's `r` (restart) and `s` (start a stopped box) on the real runtime (root)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import wait_until
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.widgets.table_sync import cursor_key

pytestmark = pytest.mark.root


async def test_r_restarts_and_s_starts_a_stopped_box(real_app: TuiboxApp, tb: Any) -> None:
    """Done when: restart from the TUI gives a new pid and the same files in its writable
    layer; `s` on a stopped box likewise."""
    app = real_app
    name = f"tr-{uuid.uuid4().hex[:6]}"
    # Ends on SIGTERM (a pid 1 without a handler ignores it: `r` would wait 10 s for the KILL).
    program = "date +%N >> /runs; trap 'exit 143' TERM; sleep 1000 & wait"
    tb("run", "-d", "--image", "busybox", name, "sh", "-c", program)

    def box() -> Any:
        return app.box(name)

    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen))
        await wait_until(pilot, lambda: box() is not None and box().status == "running")
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        await wait_until(pilot, lambda: cursor_key(screen.query_one("#boxes", DataTable)) == name)
        first = box().pid
        await pilot.press("r")
        await wait_until(
            pilot, lambda: box().status == "running" and box().pid not in (0, first), timeout=30
        )
        second = box().pid
        runs = tb("exec", name, "cat", "/runs").stdout.split()
        assert len(runs) == 2  # the same writable layer: the first run's line is still there

        tb("stop", "-t", "1", name)
        await wait_until(pilot, lambda: box().status == "stopped")
        await pilot.press("s")
        await wait_until(
            pilot, lambda: box().status == "running" and box().pid not in (0, second), timeout=30
        )
        assert len(tb("exec", name, "cat", "/runs").stdout.split()) == 3
        assert not [n.message for n in app._notifications if "cannot" in n.message]
    tb("destroy", "--force", name)
