"""Keys as a fast typist and a k9s / lazydocker user send them."""

from __future__ import annotations

from collections.abc import Callable

from conftest import refresh
from textual import events
from textual.widgets import Input

from tuibox.app import TuiboxApp
from tuibox.screens.create import CreateBoxScreen

SIZE = (140, 45)


def type_at_once(app: TuiboxApp, keys: str) -> None:
    """Queue keys the way a terminal delivers a burst: all before the app handles the first
    (Pilot's press waits for the app to settle after each key, which hides the race)."""
    for key in keys:
        app.post_message(events.Key(key, key))


async def test_keys_typed_right_after_c_fill_the_name(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        type_at_once(app, "cweb1")
        for _ in range(5):
            await app.workers.wait_for_complete()
            await pilot.pause(0.02)
        assert isinstance(app.screen, CreateBoxScreen)
        assert app.screen.query_one("#name", Input).value == "web1"
