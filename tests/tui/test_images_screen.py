"""The images screen: `I` opens it from the box list; it lists layers, shared and unique
sizes and the boxes using each image; pulls with a progress row; removes after a confirmation
(refused while boxes use the image); inspects the config; opens the create form prefilled."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from conftest import refresh, text_of, wait_until
from fake_backend import NOW, FakeBackend, fixed_clock
from textual.widgets import DataTable, Input, Select, Static, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.create import CreateBoxScreen, port_hint
from tuibox.screens.images import ImageInspectScreen, ImagesScreen, PullScreen
from tuibox.service import BoxRow
from tuibox.widgets.format import human_bytes

SIZE = (110, 30)


async def open_images(pilot: Any) -> ImagesScreen:
    await refresh(pilot)
    await pilot.press("I")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ImagesScreen)
    return screen


def rows(screen: ImagesScreen) -> list[list[str]]:
    table = screen.query_one("#images", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def select(screen: ImagesScreen, name: str) -> None:
    table = screen.query_one("#images", DataTable)
    names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    table.move_cursor(row=names.index(name))


async def test_i_lists_images_with_layers_sizes_and_users(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_images(pilot)
        got = {r[0]: r for r in rows(screen)}
        # The sample boxes all come from busybox; alpine has two layers, one shared.
        users = sum(1 for b in app.boxes if b.image == "busybox")
        mb = human_bytes
        assert got["busybox"][1:] == ["1", mb(2_000_000), "-", mb(2_000_000), str(users), "busybox"]
        assert got["alpine"][1:6] == ["2", mb(8_000_000), mb(3_000_000), mb(5_000_000), "-"]
        assert "2 images" in text_of(screen.query_one("#images-status", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BoxesScreen)


async def test_pull_shows_progress_then_the_new_image(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.registry["host:5000/app:1"] = ("app-1", 3, 40_000_000)
    fake.pull_gate = asyncio.Event()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_images(pilot)
        await pilot.press("P")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PullScreen)
        dialog.query_one("#reference", Input).value = "host:5000/app:1"
        dialog.query_one("#tls", Switch).value = False
        await pilot.press("enter")
        label = screen.query_one("#pull-label", Static)
        half = f"download {human_bytes(20_000_000)} / {human_bytes(40_000_000)}"
        await wait_until(pilot, lambda: half in text_of(label))
        assert not screen.query_one("#pull-row").has_class("hidden")
        assert text_of(label).strip() == f"pulling host:5000/app:1: {half}"
        assert screen.check_action("pull", ()) is None  # one pull at a time
        fake.pull_gate.set()
        await wait_until(pilot, lambda: any(r[0] == "app-1" for r in rows(screen)))
        assert screen.query_one("#pull-row").has_class("hidden")
        assert ("pull", "host:5000/app:1") in fake.calls
        # A reference the registry lacks: one notification, no row.
        await pilot.press("P")
        await pilot.pause()
        app.screen.query_one("#reference", Input).value = "nope"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.pulling is None and ("pull", "nope") in fake.calls)
        await pilot.pause()
        assert any("was not found" in str(n.message) for n in app._notifications)
        assert len(rows(screen)) == 3


async def test_remove_asks_first_and_is_refused_while_used(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_images(pilot)
        select(screen, "alpine")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Layers other images use are kept" in text_of(app.screen.query_one("#question"))
        await pilot.press("n")  # cancelled: nothing happens
        await pilot.pause()
        assert [r[0] for r in rows(screen)] == ["busybox", "alpine"]
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: [r[0] for r in rows(screen)] == ["busybox"])
        select(screen, "busybox")
        await pilot.press("d")
        await pilot.pause()
        assert "the removal will be refused" in text_of(app.screen.query_one("#question"))
        await pilot.press("y")
        await wait_until(pilot, lambda: ("image", "rm", "busybox") in fake.calls)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert any("is in use by" in str(n.message) for n in app._notifications)
        assert [r[0] for r in rows(screen)] == ["busybox"]


async def test_inspect_shows_the_config(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_images(pilot)
        select(screen, "alpine")
        await pilot.press("y")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ImageInspectScreen)
        body = text_of(app.screen.query_one("#image-body", Static))
        assert '"Cmd": [' in body and '"80/tcp"' in body
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_create_from_an_image_prefills_the_form(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_images(pilot)
        select(screen, "alpine")
        await pilot.press("c")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CreateBoxScreen)
        assert form.query_one("#image", Select).value == "alpine"
        assert form.query_one("#name", Input).value == "alpine-1"
        assert form.query_one("#ports", Input).placeholder == "80:80"
        assert "exposes 80/tcp" in text_of(form.query_one("#ports-error"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "alpine-1" in fake.boxes)
        assert fake.boxes["alpine-1"].image == "alpine"


def test_port_hint_reads_exposed_ports() -> None:
    assert port_hint(("80/tcp", "53/udp", "x/tcp")) == "80:80 53:53"
    assert port_hint(()) == ""


async def test_opens_fast_with_fifty_boxes() -> None:
    boxes = [
        BoxRow(id=f"b{i:02d}", status="running", pid=1000 + i, image="busybox", created=NOW)
        for i in range(50)
    ]
    fake = FakeBackend(boxes)
    app = TuiboxApp(backend=fake, clock=fixed_clock, refresh_interval=3600.0, privileged=True)
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("I")  # warm: the module's first import is not the screen's cost
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        # Timed as bench/images_screen_bench.py does: key to rows drawn, not pilot.press
        # (which also waits for every widget of the list of 50 to go idle). The 150 ms goal
        # is the bench's, on a quiet machine; here other tests share the cores, so the
        # median of five must stay within twice that (a blocking call would take seconds).
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            app.simulate_key("I")
            while not (isinstance(app.screen, ImagesScreen) and rows(app.screen)):
                await asyncio.sleep(0.001)
            await app.screen.query_one("#images").wait_for_refresh()
            times.append(time.perf_counter() - t0)
            assert rows(app.screen)[0][5] == "50"
            await pilot.press("escape")
            await pilot.pause()
        assert statistics.median(times) < 0.3, times
