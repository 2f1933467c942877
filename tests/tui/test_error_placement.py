"""The bundle form places a runtime error by its kind, never by words in its message."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from conftest import refresh, text_of
from fake_backend import FakeBackend
from textual.widgets import Input, Label

from tuibox.app import TuiboxApp
from tuibox.screens.bundle import BundleScreen


def error_of(screen: BundleScreen, field: str) -> str:
    label = screen.query_one(f"#{field}-error", Label)
    return "" if label.has_class("hidden") else text_of(label).strip()


async def test_bundle_errors_go_where_their_kind_says(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"ociVersion": "1.0.2"}))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await refresh(pilot)
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BundleScreen)
        form.query_one("#bundle", Input).value = str(tmp_path)
        # Made by someone else since the last refresh: the form's own check cannot know.
        fake.boxes["late"] = replace(fake.boxes["old"], id="late")
        form.query_one("#name", Input).value = "late"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert error_of(form, "name") == "box name 'late' is already in use"
        assert error_of(form, "bundle") == ""
        # A bundle problem whose text happens to say "name" stays under the bundle.
        fake.fail["create"] = "config.json: process.user.name is not supported"
        form.query_one("#name", Input).value = "fresh"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert error_of(form, "bundle") == "config.json: process.user.name is not supported"
        assert error_of(form, "name") == ""
