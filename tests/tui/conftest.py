"""Fixtures for the TUI tests: the app on the in-memory fake, or on the real runtime.

`make_app` gives fast, deterministic apps (fixed clock, no timed polling: tests refresh
explicitly with `refresh(pilot)`). `real_app` runs the real runtime (queries in-process,
mutations through the CLI, as the app does by default) against a private --root
(the `tb` fixture of tests/conftest.py destroys what is left and checks for leaks); tests
using it must be marked `root`.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_backend import FakeBackend, fixed_clock, sample_boxes
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from tuibox.app import TuiboxApp
from tuibox.service import InProcessBackend


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Times are shown in local time: pin the zone so snapshots match on every machine.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # Pilot tests are coroutines; a fresh event loop each keeps them independent without
    # adding an asyncio plugin to the project's test dependencies.
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(sample_boxes())


@pytest.fixture
def make_app(fake: FakeBackend) -> Callable[..., TuiboxApp]:
    def make(**options: Any) -> TuiboxApp:
        options.setdefault("backend", fake)
        options.setdefault("clock", fixed_clock)
        options.setdefault("refresh_interval", 3600.0)
        options.setdefault("privileged", True)
        return TuiboxApp(**options)

    return make


@pytest.fixture
def real_backend(tb: Any) -> InProcessBackend:
    # The app's default: queries in-process, everything else through the real CLI.
    return InProcessBackend(str(tb.root), str(tb.data_root))


@pytest.fixture
def real_app(real_backend: InProcessBackend) -> TuiboxApp:
    return TuiboxApp(backend=real_backend, refresh_interval=0.5, privileged=True)


async def refresh(pilot: Pilot[Any]) -> None:
    """One poll of the runtime, finished and drawn."""
    app = pilot.app
    assert isinstance(app, TuiboxApp)
    await app.workers.wait_for_complete()
    await pilot.pause()
    app.request_refresh()
    # The list, then the stats call it starts from its message handler.
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def wait_until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `check` while the app runs (for the real runtime, where things take time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            app = pilot.app
            state = {
                "screen": type(app.screen).__name__,
                "boxes": [(b.name, b.status) for b in getattr(app, "boxes", [])],
                "list_error": getattr(app, "list_error", None),
                "unavailable": getattr(app, "unavailable", None),
                "notifications": [n.message for n in app._notifications],
            }
            raise AssertionError(f"timed out after {timeout} s; app state: {state}")
        await pilot.pause(0.1)


def text_of(widget: Any) -> str:
    """The plain text a Static (or Label) shows."""
    assert isinstance(widget, Static), widget
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()
