"""True metrics (sparklines against a fixed top) and a layout that adapts to small terminals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import refresh
from fake_backend import FakeBackend
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.widgets.sparklines import ScaledSparkline, bars

MIB = 1024 * 1024


def test_bars_are_drawn_against_the_top_not_their_own_range() -> None:
    # 124 KiB of a 64 MiB limit: the lowest bar, however flat the history.
    assert bars([124 * 1024] * 30, 10, 64 * MIB).plain == "▁" * 10
    assert bars([0, 32 * MIB, 64 * MIB], 3, 64 * MIB).plain == "▁▅█"
    assert bars([100.0, 0.0], 2, 100.0).plain == "█▁"  # a stopped process drops at once
    assert bars([], 5, 1.0).plain == ""


async def test_memory_sparkline_uses_the_limit(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        screen.go_to_box("web")  # 256 MiB limit, 4-7 MiB used
        await refresh(pilot)
        spark = screen.query_one("#mem-spark", ScaledSparkline)
        assert spark.top == 256 * MIB
        assert set(spark.render().plain) == {"▁"}
        label = str(screen.query_one("#mem-label").render())
        assert "share of the limit" in label


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_small_terminals_keep_the_essentials(
    make_app: Callable[..., TuiboxApp], size: tuple[int, int]
) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await refresh(pilot)
        screen = app.screen
        table = screen.query_one("#boxes", DataTable)
        # name, state, CPU and memory are on screen without scrolling sideways.
        widths = [c.get_render_width(table) for c in table.ordered_columns]
        keys = [c.key.value for c in table.ordered_columns]
        assert keys[:5] == ["sel", "name", "state", "cpu", "mem"]
        assert sum(widths[:5]) <= table.scrollable_content_region.width
        # The details give way first: the list keeps most of the rows.
        details = screen.query_one("#details")
        assert details.outer_size.height <= max(6, size[1] * 0.35 + 1)
        assert table.outer_size.height > details.outer_size.height
        # The footer fits: no key is cut, and a pair is not drawn as a chord ("sx").
        shown = [k for k in screen.query(FooterKey) if k.display]
        assert shown and all(k.region.right <= size[0] for k in shown)
        labels = {(k.key_display, k.description) for k in shown}
        assert ("s", "Start") in labels and ("x", "Stop") in labels
        assert ("c", "Create") in labels and ("?", "Help") in labels


async def test_at_rest_the_rows_are_not_rebuilt(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await refresh(pilot)
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        built: list[str] = []
        cells = BoxesScreen.cells
        monkeypatch.setattr(
            BoxesScreen, "cells", lambda self, box: built.append(box.name) or cells(self, box)
        )
        for _ in range(3):  # same boxes, same stats, same minute: nothing to rebuild
            await refresh(pilot)
        assert built == []
        await fake.pause("web")
        await refresh(pilot)
        assert "web" in built
        assert "paused" in str(screen.query_one("#boxes", DataTable).get_cell("web", "state"))
